/*
 * A client on a runtime whose `undici` is not the real one, as on Bun: there `undici` resolves to
 * a module of Bun's own whose Pool has only a request() that returns undefined and whose
 * buildConnector() throws. Reproduced here by mocking the module the same way; the client must
 * notice it at construction and send with fetch() instead, keeping its guarantees through the
 * faults a Loki shows.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import type { LokiClient as Client } from '../src/index.js'
import type { LokiTestServer } from '../src/testing/index.js'
import { FAST, assertExactlyOnce, identityHolds, seqLines } from './helpers.js'

vi.mock('undici', async (importOriginal) => {
  const real = await importOriginal<typeof import('undici')>()
  // Bun's Pool extends its EventEmitter-based Dispatcher; nothing here uses that part.
  class Pool {
    request(): void {}
  }
  const buildConnector = () => () => {
    throw new Error('Not implemented')
  }
  return { ...real, Pool, buildConnector, default: { ...real, Pool, buildConnector } }
})
// test/setup.ts loaded the client before the mock existed: load it afresh, over the mocked undici.
vi.resetModules()
const { ErrorCodes, LokiClient } = await import('../src/index.js')
const { createLokiTestServer } = await import('../src/testing/index.js')

let srv: LokiTestServer
let client: Client | undefined
beforeEach(async () => {
  srv = await createLokiTestServer()
})
afterEach(async () => {
  await client?.destroy()
  client = undefined
  await srv.close()
})

it('delivers every line exactly once through 503s, a 429 with Retry-After and a stall past the deadline', async () => {
  const cl = (client = new LokiClient({
    url: srv.url,
    labels: { app: 'bun-like' },
    ...FAST,
    // The stall costs one deadline; a short one would also cut a 503 that a loaded machine is
    // slow to deliver, and count it as a timeout instead of the status the test expects.
    requestTimeoutMs: 5000,
    concurrency: 2,
    batch: { maxEntries: 10, maxWaitMs: 10 },
    retry: { ...FAST.retry, maxRetryAfterMs: 2000 },
    breaker: false,
  }))
  const failed: string[] = []
  cl.on('failed', (e) => failed.push(e.error.code))
  const retryDelays: Array<[number | undefined, number]> = []
  cl.on('retry', (e) => retryDelays.push([(e.error as { status?: number }).status, e.delayMs]))
  srv.queueFaults(
    { type: 'status', status: 503, body: 'ingester unavailable' },
    { type: 'status', status: 503 },
    { type: 'status', status: 429, headers: { 'retry-after': '1' } },
    { type: 'stall' },
  )
  const lines = seqLines(100)
  for (const line of lines) cl.push({ line })
  let maxConnections = 0
  const watch = setInterval(() => {
    maxConnections = Math.max(maxConnections, cl.stats().connections)
  }, 5)
  try {
    const r = await cl.close({ timeoutMs: 20_000 })
    expect(r).toMatchObject({ ok: true, droppedEntries: 0 })
  } finally {
    clearInterval(watch)
  }
  assertExactlyOnce(srv.entries, lines)
  expect(identityHolds(cl)).toBe(true)
  expect(failed.filter((c) => c === ErrorCodes.HTTP_STATUS)).toHaveLength(3)
  expect(failed).toContain(ErrorCodes.REQUEST_TIMEOUT)
  // The 429's Retry-After (1 s) was honoured, not the short backoff of FAST.
  expect(retryDelays.filter(([status]) => status === 429).map(([, ms]) => ms)).toEqual([1000])
  const stats = cl.stats()
  expect(stats.connections).toBe(0)
  expect(maxConnections).toBeLessThanOrEqual(2)
  expect(stats.sent.entries).toBe(100)
})

it('a 2xx whose body trickles is delivered, not resent, and its body given up', async () => {
  const cl = (client = new LokiClient({ url: srv.url, labels: { app: 'bun-like' }, ...FAST, requestTimeoutMs: 60_000 }))
  srv.queueFaults({ type: 'slowBody', chunkBytes: 1, chunks: 1000, intervalMs: 200, status: 200 })
  cl.push({ line: 'answered slowly' })
  expect(await cl.close({ timeoutMs: 20_000 })).toMatchObject({ ok: true, droppedEntries: 0 })
  expect(srv.entries.map((e) => e.line)).toEqual(['answered slowly'])
  expect(srv.requests).toHaveLength(1)
  expect(cl.stats()).toMatchObject({ abandonedBodies: 1, connections: 0 })
})
