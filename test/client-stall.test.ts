import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { LokiClient, LokiTimeoutError } from '../src/index.js'
import type { BreakerState, FailedEvent } from '../src/index.js'
import { resolveOptions } from '../src/model/options.js'
import { Transport } from '../src/transport/transport.js'
import { assertExactlyOnce, assertIdentity, extraResources, resources, seqLines, waitUntil, useLoki } from './helpers.js'

const loki = useLoki()

it('against a stalled Loki: connections stay within concurrency, attempts end at the deadline, flush and close keep theirs', async () => {
  loki.srv.setFault({ type: 'stall' })
  const before = resources()
  const cl = (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'stall' },
    concurrency: 2,
    requestTimeoutMs: 300,
    batch: { maxEntries: 10, maxWaitMs: 10 },
    retry: { minDelayMs: 1, maxDelayMs: 10 },
    breaker: false,
  }))
  const failures: FailedEvent[] = []
  let peakClientSockets = 0
  cl.on('failed', (e) => {
    failures.push(e)
    peakClientSockets = Math.max(peakClientSockets, cl.stats().connections)
  })
  // Server side, count requests being served at once: a socket the client already destroyed
  // can still be open in the server's books for a moment, so raw connection counts lag.
  let peakServing = 0
  loki.srv.on('change', (x) => {
    peakServing = Math.max(peakServing, x.requests.filter((r) => r.durationMs === undefined).length)
  })
  let peakInFlight = 0
  const lines = seqLines(200)
  for (const line of lines) {
    cl.push({ line })
    peakInFlight = Math.max(peakInFlight, cl.stats().inFlight.requests)
  }
  // Let several rounds of attempts time out while the pool is saturated.
  await waitUntil(() => {
    peakClientSockets = Math.max(peakClientSockets, cl.stats().connections)
    peakInFlight = Math.max(peakInFlight, cl.stats().inFlight.requests)
    return failures.length >= 6
  }, 'six timed-out attempts', 10_000)
  expect(peakInFlight).toBe(2)
  expect(peakClientSockets).toBeGreaterThan(0)
  expect(peakClientSockets).toBeLessThanOrEqual(2)
  expect(peakServing).toBe(2)
  expect(failures.every((f) => f.error instanceof LokiTimeoutError)).toBe(true)
  const ended = loki.srv.requests.filter((r) => r.durationMs !== undefined)
  expect(ended.length).toBeGreaterThan(0)
  // A stall never answers: an exchange that ended was cut by the client (its deadline; the
  // timeouts above are LokiTimeoutErrors), so no bound on the clock is needed.
  assertIdentity(cl)

  const started = Date.now()
  const flushed = await cl.flush({ timeoutMs: 400 })
  // timedOut with all 200 still pending is the deadline's doing: without it the flush would wait
  // until retries ran out and the entries were dropped. A lower bound only: load cannot shorten.
  expect(flushed.ok).toBe(false)
  expect(flushed.timedOut).toBe(true)
  expect(flushed.pendingEntries).toBe(200)
  expect(Date.now() - started).toBeGreaterThanOrEqual(390)

  const closed = await cl.close({ timeoutMs: 200 })
  expect(closed).toMatchObject({ ok: false, timedOut: true, droppedEntries: 200 })
  const s = cl.stats()
  expect(s.dropped.close_timeout).toBe(200)
  expect(s).toMatchObject({ state: 'closed', connections: 0, inFlight: { requests: 0, entries: 0 }, buffered: { entries: 0, bytes: 0 } })
  assertIdentity(cl)
  await loki.srv.waitFor((x) => x.connections.open === 0, { timeoutMs: 5000 })
  expect(extraResources(before, resources())).toEqual([])
  expect(cl.push({ line: 'after close' })).toBe(false)
  expect(cl.stats().dropped.closed).toBe(1)
})

it('close() on a healthy Loki delivers everything and releases sockets, timers and handles', async () => {
  const before = resources()
  const cl = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'close' }, batch: { maxEntries: 50 } }))
  const lines = seqLines(1000)
  for (const line of lines) cl.push({ line })
  const r = await cl.close()
  expect(r).toMatchObject({ ok: true, pendingEntries: 0, droppedEntries: 0 })
  assertExactlyOnce(loki.srv.entries, lines)
  expect(await cl.close()).toBe(r) // idempotent: the same result
  await loki.srv.waitFor((x) => x.connections.open === 0, { timeoutMs: 5000 })
  expect(extraResources(before, resources())).toEqual([])
})

it('destroy() aborts requests in flight and counts everything buffered as destroyed', async () => {
  loki.srv.setFault({ type: 'stall' })
  const before = resources()
  const cl = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'destroy' }, batch: { maxEntries: 10, maxWaitMs: 5 } }))
  for (const line of seqLines(100)) cl.push({ line })
  await waitUntil(() => cl.stats().inFlight.requests === 2, 'two requests in flight')
  await cl.destroy()
  const s = cl.stats()
  expect(s.dropped.destroyed).toBe(100)
  expect(s.connections).toBe(0)
  assertIdentity(cl)
  await loki.srv.waitFor((x) => x.connections.open === 0, { timeoutMs: 5000 })
  expect(extraResources(before, resources())).toEqual([])
})

it('retry.budgetMs is a deadline: the attempt after a backoff gets only what the budget has left, not requestTimeoutMs', async () => {
  // A fast 503, then Loki stalls: the second attempt may use only the rest of a 2 s budget.
  loki.srv.queueFaults({ type: 'status', status: 503 })
  loki.srv.setFault({ type: 'stall' })
  const cl = (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'budget' },
    requestTimeoutMs: 600_000,
    retry: { minDelayMs: 1, maxDelayMs: 5, maxAttempts: 10, budgetMs: 2000 },
    breaker: false,
  }))
  const failures: FailedEvent[] = []
  cl.on('failed', (e) => failures.push(e))
  cl.push({ line: 'on a budget' })
  // Far below requestTimeoutMs, far above the budget: only a deadline from the budget passes.
  const r = await cl.flush({ timeoutMs: 15_000 })
  expect(r).toMatchObject({ ok: false, timedOut: false, droppedEntries: 1 })
  expect(cl.stats().dropped.retries_exhausted).toBe(1)
  expect(loki.srv.requests).toHaveLength(2)
  expect(failures.map((f) => [f.attempt, f.status, f.error.code, f.willRetry])).toEqual([
    [1, 503, 'LOKI_HTTP_STATUS', true],
    [2, undefined, 'LOKI_REQUEST_TIMEOUT', false],
  ])
  expect(failures[1]!.error.message).toMatch(/retry budget/)
  assertIdentity(cl)
})

it('the breaker opens, sends nothing while open, lets one probe through half-open, and closes', async () => {
  loki.srv.setFault({ type: 'status', status: 503, body: 'ingester unavailable' })
  const cl = (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'breaker' },
    concurrency: 2,
    batch: { maxEntries: 5, maxWaitMs: 5 },
    retry: { minDelayMs: 1, maxDelayMs: 10, maxAttempts: 100 },
    breaker: { volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeoutMs: 400 },
  }))
  const states: BreakerState[] = []
  let requestsAtOpen = -1
  let requestsAtHalfOpen = -1
  cl.on('breaker', ({ state }) => {
    states.push(state)
    if (state === 'open' && requestsAtOpen < 0) requestsAtOpen = loki.srv.requests.length
    if (state === 'halfOpen' && requestsAtHalfOpen < 0) {
      requestsAtHalfOpen = loki.srv.requests.length
      loki.srv.setFault(null) // Loki recovers just before the probe
    }
  })
  const lines = seqLines(50)
  for (const line of lines) cl.push({ line })
  await waitUntil(() => states.includes('closed'), 'the breaker to close again', 10_000)
  expect(states.slice(0, 3)).toEqual(['open', 'halfOpen', 'closed'])
  // Nothing but the requests already on the wire when it opened reached Loki while open.
  expect(requestsAtHalfOpen - requestsAtOpen).toBeLessThanOrEqual(1)
  const probe = loki.srv.requests[requestsAtHalfOpen]!
  const next = loki.srv.requests[requestsAtHalfOpen + 1]
  if (next !== undefined) expect(next.at).toBeGreaterThanOrEqual(probe.at)
  expect(probe.status).toBe(204)
  const r = await cl.flush({ timeoutMs: 5000 })
  expect(r).toMatchObject({ ok: true, droppedEntries: 0 })
  assertExactlyOnce(loki.srv.entries, lines)
  assertIdentity(cl)
})

it('a failed half-open probe opens the breaker again; batches wait instead of being dropped', async () => {
  loki.srv.setFault({ type: 'status', status: 500 })
  const cl = (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'breaker2' },
    concurrency: 1,
    batch: { maxEntries: 5, maxWaitMs: 5 },
    retry: { minDelayMs: 1, maxDelayMs: 5, maxAttempts: 50 },
    breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 150 },
  }))
  const states: BreakerState[] = []
  cl.on('breaker', ({ state }) => {
    states.push(state)
    if (states.filter((s) => s === 'halfOpen').length === 2) loki.srv.setFault(null)
  })
  const lines = seqLines(20)
  for (const line of lines) cl.push({ line })
  await waitUntil(() => states.includes('closed'), 'recovery', 10_000)
  expect(states.slice(0, 5)).toEqual(['open', 'halfOpen', 'open', 'halfOpen', 'closed'])
  await cl.flush({ timeoutMs: 5000 })
  assertExactlyOnce(loki.srv.entries, lines)
  expect(cl.stats().dropped.total).toBe(0)
})

/**
 * A receiver in a child process, so that every socket left in this process is the client's.
 * `stall`: accepts connections, reads requests and never answers. `deaf`: listens with a backlog
 * of 1 and blocks its event loop, so nothing is ever accepted: the kernel completes the first
 * handshakes into the accept queue, then drops further SYNs and a client's connect() stays pending.
 */
async function startChildReceiver(mode: 'stall' | 'deaf'): Promise<{ url: string; stop: () => Promise<void> }> {
  const code = `
    const net = require('node:net')
    const srv = net.createServer((socket) => socket.resume())
    srv.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
      process.stdout.write(srv.address().port + '\\n', () => {
        // The parent kills this process; until then nothing is accepted any more.
        if (process.argv[1] === 'deaf') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
      })
    })`
  const child = spawn(process.execPath, ['-e', code, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(Number(out.trim()))
    })
    child.once('exit', (c) => reject(new Error(`receiver exited with ${c}`)))
  })
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    },
  }
}

describe('close() and destroy() resolve only once no socket and no pending connect of the client is left', () => {
  const ROUNDS = 20
  const receivers = [
    { mode: 'stall', name: 'accepts and reads requests, never answers' },
    { mode: 'deaf', name: 'never accepts: connects stay pending' },
  ] as const
  for (const { mode, name } of receivers) {
    it(`destroy() and close() against a receiver that ${name}, ${ROUNDS} rounds`, async () => {
      const receiver = await startChildReceiver(mode)
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const before = resources()
          const cl = (loki.client = new LokiClient({
            url: receiver.url,
            labels: { app: 'destroy' },
            concurrency: 4,
            connectTimeoutMs: 60_000,
            requestTimeoutMs: 60_000,
            batch: { maxEntries: 10, maxWaitMs: 1 },
          }))
          for (const line of seqLines(40)) cl.push({ line })
          await waitUntil(() => cl.stats().inFlight.requests === 4, 'four requests in flight')
          // Vary the moment: some rounds end while connects are still under way.
          for (let i = 0; i < round % 4; i++) await new Promise((r) => setImmediate(r))
          if (round % 2 === 0) await cl.destroy()
          else await cl.close({ timeoutMs: 1 })
          // No sleep or wait here: the promise resolving is the guarantee.
          expect({ round, extra: extraResources(before, resources()) }).toEqual({ round, extra: [] })
          expect(cl.stats().connections).toBe(0)
        }
      } finally {
        await loki.client?.destroy()
        await receiver.stop()
      }
    })
  }
})

it('a connect that does not complete within connectTimeoutMs is a retryable timeout, and leaves nothing behind', async () => {
  const receiver = await startChildReceiver('deaf')
  const { port } = new URL(receiver.url)
  // Fill the receiver's accept queue (backlog 1 holds two) so that the next SYN goes unanswered.
  const fillers = Array.from({ length: 4 }, () => connect({ host: '127.0.0.1', port: Number(port) }).on('error', () => {}))
  let connected = 0
  for (const f of fillers) f.once('connect', () => connected++)
  const t = new Transport(resolveOptions({ url: receiver.url, labels: { app: 'connect' }, connectTimeoutMs: 200, requestTimeoutMs: 600_000 }))
  try {
    await waitUntil(() => connected >= 2, 'the accept queue to fill')
    const before = resources()
    const r = await t.send({ body: Buffer.from('{}'), contentType: 'application/json', contentEncoding: undefined }, new AbortController().signal, { batchId: 1, attempt: 1, entries: 1 })
    expect(r).toMatchObject({ kind: 'retryable', status: undefined })
    if (r.kind !== 'retryable') return
    expect(r.error).toBeInstanceOf(LokiTimeoutError)
    expect(r.error.message).toMatch(/^request timed out: .*\(UND_ERR_CONNECT_TIMEOUT\)$/)
    await t.destroy()
    expect(extraResources(before, resources())).toEqual([])
  } finally {
    await t.destroy()
    for (const f of fillers) f.destroy()
    await receiver.stop()
  }
})
