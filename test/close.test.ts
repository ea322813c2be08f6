import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { LokiClient, type LokiClientOptions } from '../src/index.js'
import type { DropEvent } from '../src/model/events.js'
import { DROPPED_WARNING } from '../src/model/warnings.js'
import { assertExactlyOnce, assertIdentity, seqLines, trackTimers, useLoki, waitUntil, type TimerTracker } from './helpers.js'

// The end of a client's life in this process: close(), destroy() and the process exit hooks.
// The real process paths (a natural exit, process.exit(), a pino worker at exit) run the built
// package in child processes (lifecycle.test.ts, spool-process.test.ts); here the hooks the
// client registered are called directly, so what they do is checked against src/.

const loki = useLoki()
let dir: string
let timers: TimerTracker | undefined
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lokiwire-close-'))
})
afterEach(() => {
  timers?.stop()
  timers = undefined
  rmSync(dir, { recursive: true, force: true })
})

/**
 * A client and the process 'exit' listener it registered: the first client of this file to be
 * alive adds the shared listener (exit.test.ts checks that), and calling it runs the client's
 * exit path as `process.exit()` would, without ending the test's process.
 */
function clientWithExitHook(o: LokiClientOptions): { client: LokiClient; exit: () => void } {
  const before = new Set(process.listeners('exit'))
  const client = (loki.client = new LokiClient(o))
  const added = process.listeners('exit').filter((l) => !before.has(l))
  if (added.length !== 1) throw new Error(`expected the client to add one 'exit' listener, it added ${added.length}`)
  return { client, exit: () => (added[0] as () => void)() }
}

it("an idle flushOnExit client stays open through 'beforeExit': the process may go on and log again", async () => {
  const client = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'idle' }, flushOnExit: true }))
  process.emit('beforeExit', 0)
  await new Promise((r) => setImmediate(r))
  expect(client.state).toBe('open')
  expect(client.push({ line: 'after beforeExit' })).toBe(true)
  expect(await client.close()).toMatchObject({ ok: true })
  expect(loki.srv.entries.map((e) => e.line)).toEqual(['after beforeExit'])
})

it("'beforeExit' closes a flushOnExit client whose entries are all queued, none left in the batcher", async () => {
  const client = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'queued' }, flushOnExit: true, batch: { maxEntries: 1 } }))
  client.push({ line: 'cut at once' })
  expect(client.stats().buffered.entries + client.stats().inFlight.entries).toBe(1)
  process.emit('beforeExit', 0)
  await waitUntil(() => client.state === 'closed', 'the hook to close the client')
  expect(loki.srv.entries.map((e) => e.line)).toEqual(['cut at once'])
})

it('limits reports what the client runs with, defaults filled in', () => {
  const client = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'limits' }, concurrency: 3 }))
  expect(client.limits).toEqual({ maxBufferBytes: 64 * 1024 * 1024, closeTimeoutMs: 5000, concurrency: 3 })
})

it('flush() is ok only if every batch from before the call was delivered', async () => {
  const client = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'every' }, concurrency: 1, batch: { maxEntries: 1 } }))
  client.on('drop', () => {})
  loki.srv.queueFaults({ type: 'status', status: 400, body: 'bad entry' })
  expect(client.push([{ line: 'refused' }, { line: 'stored' }])).toBe(true)
  expect(await client.flush({ timeoutMs: 10_000 })).toEqual({ ok: false, timedOut: false, pendingEntries: 0, droppedEntries: 1, spooledEntries: 0 })
  expect(loki.srv.entries.map((e) => e.line)).toEqual(['stored'])
})

it('at process exit, a client with a spool writes everything undelivered to disk, requests in flight included; the next client delivers it', async () => {
  loki.srv.setFault({ type: 'stall' })
  const { client, exit } = clientWithExitHook({
    url: loki.srv.url,
    labels: { app: 'exit' },
    concurrency: 2,
    requestTimeoutMs: 60_000,
    batch: { maxEntries: 10, maxWaitMs: 60_000 },
    spool: { dir },
  })
  const drops: DropEvent[] = []
  client.on('drop', (d) => drops.push(d))
  const lines = seqLines(95)
  expect(client.push(lines.map((line) => ({ line })))).toBe(true)
  await waitUntil(() => client.stats().inFlight.requests === 2, 'two requests in flight')
  exit()
  const s = client.stats()
  // 9 full batches (2 on the wire, 7 queued) and 5 lines still in the batcher.
  expect(s.spool.written).toBe(95)
  expect(s.dropped.total).toBe(0)
  expect(drops).toEqual([])
  assertIdentity(client)
  await client.destroy()

  loki.srv.setFault(null)
  loki.srv.reset()
  const next = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'exit' }, spool: { dir } }))
  await waitUntil(() => next.stats().spool.loaded === 95, 'the next client to replay the spool')
  expect(await next.close()).toMatchObject({ ok: true })
  assertExactlyOnce(loki.srv.entries, lines)
  expect(readdirSync(dir)).toEqual([])
})

it("at process exit without a spool, everything undelivered is counted as dropped ('exit') and reported at once", async () => {
  loki.srv.setFault({ type: 'stall' })
  const { client, exit } = clientWithExitHook({
    url: loki.srv.url,
    labels: { app: 'exit' },
    concurrency: 2,
    requestTimeoutMs: 60_000,
    batch: { maxEntries: 10, maxWaitMs: 60_000 },
  })
  for (const line of seqLines(95)) client.push({ line })
  await waitUntil(() => client.stats().inFlight.requests === 2, 'two requests in flight')
  // No 'drop' listener: the loss is reported as a warning, synchronously, since no tick follows an exit.
  const warnings: string[] = []
  const onWarning = (w: Error & { code?: string }) => {
    if (w.code === DROPPED_WARNING) warnings.push(w.message)
  }
  process.on('warning', onWarning)
  try {
    exit()
  } finally {
    process.off('warning', onWarning)
  }
  expect(warnings).toEqual([expect.stringMatching(/dropped 95 log entries \(exit: 95\)/)])
  expect(client.stats().dropped).toMatchObject({ total: 95, exit: 95 })
  expect(client.stats().buffered.entries + client.stats().inFlight.entries).toBe(0)
  assertIdentity(client)
})

it("close() reports the drops nobody listened to before it resolves, not a warning interval later", async () => {
  const warnings: string[] = []
  const onWarning = (w: Error & { code?: string }) => {
    if (w.code === DROPPED_WARNING) warnings.push(w.message)
  }
  process.on('warning', onWarning)
  try {
    const client = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'warn' } }))
    client.push({ line: 1 } as never) // refused: the first warning goes out at once
    await waitUntil(() => warnings.length === 1, 'the first drop warning')
    client.push({ line: 2 } as never) // within the interval: held for the next warning
    await client.close()
    await waitUntil(() => warnings.length === 2, 'close() to report the held drop')
    expect(warnings[1]).toMatch(/dropped 1 log entry \(invalid_entry: 1\)/)
  } finally {
    process.off('warning', onWarning)
  }
})

it('destroy() while close() waits resolves after close() has, and close() counts what destroy() dropped', async () => {
  loki.srv.setFault({ type: 'stall' })
  const client = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'race' }, requestTimeoutMs: 60_000 }))
  client.on('drop', () => {})
  for (const line of seqLines(10)) client.push({ line })
  await waitUntil(() => client.stats().inFlight.requests === 1, 'the request in flight')
  let closed: unknown
  const closing = client.close({ timeoutMs: 60_000 }).then((r) => (closed = r))
  // Intake stops the moment close() is called, not when it ends.
  expect(client.state).toBe('closing')
  expect(client.push({ line: 'while closing' })).toBe(false)
  expect(client.stats().dropped.closed).toBe(1)
  await client.destroy()
  expect(closed).toMatchObject({ ok: false, timedOut: false, pendingEntries: 0, droppedEntries: 11, spooledEntries: 0 })
  expect(client.state).toBe('destroyed')
  await closing
  // Neither a later close() nor a second destroy() brings it back.
  await client.close()
  await client.destroy()
  expect(client.state).toBe('destroyed')
})

it('close() after destroy() leaves the client destroyed', async () => {
  const client = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'after' } }))
  await client.destroy()
  await client.close()
  expect(client.state).toBe('destroyed')
  expect(client.stats().state).toBe('destroyed')
})

it.each(['close', 'destroy'] as const)('%s() of a client with a spool and an open breaker leaves no timer behind, ref\'d or not', async (end) => {
  timers = trackTimers()
  loki.srv.setFault({ type: 'status', status: 503 })
  const client = (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'timers' },
    batch: { maxEntries: 10, maxWaitMs: 5 },
    retry: { maxAttempts: 1 },
    breaker: { volumeThreshold: 1, resetTimeoutMs: 60_000 },
    spool: { dir },
  }))
  client.on('drop', () => {})
  for (const line of seqLines(30)) client.push({ line })
  await waitUntil(() => client.stats().breaker === 'open' && client.stats().spool.written > 0, 'the breaker open and a batch spooled')
  await client[end]()
  await waitUntil(() => timers!.live().length === 0, `no timer left after ${end}()`, 5000).catch(() => {
    throw new Error(`timers left after ${end}():\n${timers!.live().join('\n---\n')}`)
  })
})
