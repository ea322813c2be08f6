// createLokiTestServer({ thread: true }): the receiver in a thread of its own, so a pino worker
// transport can be tested against it from the same process. Runs the built package.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { killAll, makeAppDir, removeAppDir, requireBuild, runChild } from './fixtures/app-dir.js'

let dir: string | undefined

beforeAll(() => {
  requireBuild('pino/index.js', 'testing/index.js', 'testing/index.cjs')
  dir = makeAppDir(['pino-same-process.mjs'], ['pino'])
})

afterEach(() => killAll())
afterAll(() => removeAppDir(dir))

it("pino worker transport + a same-process receiver in its own thread: end() delivers all 3,000 lines, none reported lost", async () => {
  const r = await runChild(dir!, 'pino-same-process.mjs', ['3000', 'thread'], { timeoutMs: 30_000 }).result
  expect(r.killed).toBe(false)
  expect(r.code, r.stderr).toBe(0)
  expect(r.stderr).toBe('')
  const [result, closed] = r.messages
  expect(result).toMatchObject({ stored: 3000, distinct: 3000, duplicates: 0 })
  expect((result!.statuses as number[]).every((s) => s === 204)).toBe(true)
  // close() ends the thread: nothing of the receiver is left (stdio pipes aside), and the child
  // ended by itself, which it could not with a listening socket or a live thread.
  expect((closed!.after as string[]).filter((x) => x !== 'PipeWrap' && x !== 'CloseReq')).toEqual([])
})

it('without { thread: true } the worker cannot be answered; the loss report says why and what to change', async () => {
  const r = await runChild(dir!, 'pino-same-process.mjs', ['300', 'same', '1000'], { timeoutMs: 30_000 }).result
  expect(r.killed).toBe(false)
  expect(r.code, r.stderr).toBe(0)
  expect(r.stderr).toContain('lokiwire: dropped 300 log entries (close_timeout: 300)')
  expect(r.stderr).toContain("If it is lokiwire/testing's receiver in this same process, it cannot answer while pino's transport.end() or exit hook blocks the main thread: create it with createLokiTestServer({ thread: true })")
})

it('the mirror: reads are synchronous and current, commands apply before the next request, reset and waitFor work', async () => {
  // The receiver thread needs the built entry; through a URL so type-checking does not need dist/.
  const built = new URL('../dist/testing/index.js', import.meta.url).href
  const { createLokiTestServer } = (await import(built)) as typeof import('../src/testing/index.js')
  const { LokiClient } = await import('../src/client/client.js')
  const loki = await createLokiTestServer({ thread: true })
  const client = new LokiClient({ url: loki.url, labels: { app: 't' }, retry: { maxAttempts: 1 } })
  try {
    loki.setFault({ type: 'status', status: 503 })
    client.push({ line: 'a' })
    await client.flush()
    expect(loki.requests.map((r) => r.status)).toEqual([503])
    expect(loki.entries).toEqual([])
    loki.setFault(null)
    client.push({ line: 'b' })
    await client.flush()
    // No tick in between: what the client was answered is already readable here.
    expect(loki.entries.map((e) => e.line)).toEqual(['b'])
    loki.reset()
    expect([loki.entries.length, loki.requests.length, loki.duplicates]).toEqual([0, 0, 0])
    const waited = loki.waitFor((s) => s.entries.length === 1 && s.requests[0]?.durationMs !== undefined)
    client.push({ line: 'c' })
    await waited
    expect(loki.entries[0]).toMatchObject({ line: 'c', labels: { app: 't' } })
    expect(() => loki.setFault({ type: 'partial', reject: () => true })).toThrow(/cannot be sent to the receiver thread/)
  } finally {
    await client.close()
    await loki.close()
  }
  await expect(loki.waitFor(() => false)).rejects.toThrow(/closed/)
})

it('the mirror has an answer\'s status as soon as the client does, while its body is still on the way', async () => {
  const built = new URL('../dist/testing/index.js', import.meta.url).href
  const { createLokiTestServer } = (await import(built)) as typeof import('../src/testing/index.js')
  const { request } = await import('undici')
  const loki = await createLokiTestServer({ thread: true })
  try {
    // A body that takes minutes: the exchange cannot end, and report its status, before the test reads it.
    loki.setFault({ type: 'slowBody', chunkBytes: 1, chunks: 100, intervalMs: 5000, status: 200 })
    const values = [[`${BigInt(Date.now()) * 1_000_000n}`, 'x']]
    const res = await request(loki.pushUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ streams: [{ stream: { app: 't' }, values }] }),
    })
    expect(res.statusCode).toBe(200)
    expect(loki.requests.map((r) => [r.status, r.durationMs])).toEqual([[200, undefined]])
    res.body.destroy()
  } finally {
    await loki.close()
  }
})
