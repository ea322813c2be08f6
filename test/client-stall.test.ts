import { expect, it } from 'vitest'
import { LokiClient, LokiTimeoutError } from '../src/index.js'
import type { BreakerState, FailedEvent } from '../src/index.js'
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
