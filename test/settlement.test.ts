import { randomBytes } from 'node:crypto'
import diagnosticsChannel from 'node:diagnostics_channel'
import { EventEmitter } from 'node:events'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { LokiClient } from '../src/index.js'
import { ENTRY_OVERHEAD_BYTES } from '../src/client/client.js'
import { LokiAbortError } from '../src/model/errors.js'
import type { DropEvent, LokiClientEvents, SpoolEvent } from '../src/model/events.js'
import { Ledger } from '../src/pipeline/ledger.js'
import { BatchQueue, createBatch } from '../src/pipeline/queue.js'
import { Settlement } from '../src/pipeline/settlement.js'
import type { RequestErrorMessage } from '../src/transport/diagnostics.js'
import { assertIdentity, useLoki, waitUntil } from './helpers.js'

// The end of a batch: exactly once, and the way a user can see it (stats, 'drop', the spool,
// the tracing channel).

const loki = useLoki()
let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lokiwire-settlement-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

function settlementAlone() {
  const events = new EventEmitter<LokiClientEvents>()
  const drops: DropEvent[] = []
  events.on('drop', (e) => drops.push(e))
  const ledger = new Ledger(events)
  const queue = new BatchQueue(1, () => Promise.resolve())
  return { settlement: new Settlement({ queue, ledger, replay: undefined }), ledger, queue, drops }
}

it('a batch ends once: whatever ends it again (destroy racing a response) counts and reports nothing', () => {
  const { settlement, ledger, queue, drops } = settlementAlone()
  const a = createBatch(undefined, 3, 30)
  queue.track(a)
  settlement.undelivered(a, 'rejected')
  settlement.undelivered(a, 'destroyed')
  settlement.undelivered(a, 'close_timeout') // one a spool could take, had there been one
  settlement.delivered(a, { batchId: a.id, entries: 3, bytes: 30, status: 204, attempt: 1, durationMs: 1 })
  expect(drops).toEqual([{ reason: 'rejected', entries: 3 }])
  expect(ledger.dropped).toMatchObject({ total: 3, rejected: 3, destroyed: 0, close_timeout: 0 })
  expect(ledger.sent.entries).toBe(0)

  const b = createBatch(undefined, 2, 20)
  queue.track(b)
  settlement.delivered(b, { batchId: b.id, entries: 2, bytes: 20, status: 204, attempt: 1, durationMs: 1 })
  settlement.undelivered(b, 'destroyed')
  expect(ledger.sent.entries).toBe(2)
  expect(ledger.dropped.total).toBe(3)
  expect(queue.entries).toBe(0)
})

it('with a spool, batches evicted for room go to disk whatever the overflow policy, and the next client delivers them', async () => {
  // Lines of 100 bytes in 1 KiB batches under a 4 KiB buffer, in front of a stalled Loki.
  const line = (i: number) => `seq=${String(i).padStart(8, '0')} `.padEnd(100 - ENTRY_OVERHEAD_BYTES, 'x')
  loki.srv.setFault({ type: 'stall' })
  const a = (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'evict' },
    concurrency: 1,
    requestTimeoutMs: 60_000,
    maxBufferBytes: 4096,
    overflow: 'drop-newest',
    batch: { maxBytes: 1024, maxWaitMs: 5 },
    spool: { dir },
  }))
  a.on('drop', () => {})
  const lines = Array.from({ length: 200 }, (_, i) => line(i))
  for (const l of lines) expect(a.push({ line: l })).toBe(true)
  const s = a.stats()
  expect(s.dropped.total).toBe(0)
  expect(s.spool.written).toBeGreaterThan(100)
  expect(s.bufferUsedBytes).toBeLessThanOrEqual(4096)
  assertIdentity(a)
  await a.destroy()
  const written = a.stats().spool.written
  expect(a.stats().dropped.destroyed).toBe(200 - written)

  loki.srv.setFault(null)
  loki.srv.reset()
  const b = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'evict' }, spool: { dir } }))
  await waitUntil(() => b.stats().spool.loaded === written, 'the spool replayed')
  expect(await b.close()).toMatchObject({ ok: true })
  expect(new Set(loki.srv.entries.map((e) => e.line)).size).toBe(written)
  expect(readdirSync(dir)).toEqual([])
})

it('an attempt the client aborts says why on lokiwire:request:error: dropped with its reason, or moved to the spool', async () => {
  const aborted: Error[] = []
  const onError = (m: unknown) => {
    const { error } = m as RequestErrorMessage
    if (error instanceof LokiAbortError) aborted.push(error.cause as Error)
  }
  diagnosticsChannel.subscribe('lokiwire:request:error', onError)
  try {
    loki.srv.setFault({ type: 'stall' })
    const a = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'abort' }, requestTimeoutMs: 60_000 }))
    a.on('drop', () => {})
    a.push({ line: 'destroyed on the wire' })
    await waitUntil(() => a.stats().inFlight.requests === 1, 'the request on the wire')
    await a.destroy()
    await waitUntil(() => aborted.length === 1, 'the aborted attempt reported')
    expect(aborted[0]).toBeInstanceOf(LokiAbortError)
    expect(aborted[0]!.message).toBe('batch dropped: destroyed')

    const b = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'abort' }, requestTimeoutMs: 60_000, spool: { dir } }))
    b.push({ line: 'spooled at the close deadline' })
    await waitUntil(() => b.stats().inFlight.requests === 1, 'the request on the wire')
    expect(await b.close({ timeoutMs: 50 })).toMatchObject({ ok: false, timedOut: true, spooledEntries: 1, droppedEntries: 0 })
    await waitUntil(() => aborted.length === 2, 'the aborted attempt reported')
    expect(aborted[1]!.message).toBe('batch moved to the spool')
  } finally {
    diagnosticsChannel.unsubscribe('lokiwire:request:error', onError)
  }
})

it('a replayed batch Loki still refuses goes back to disk, not dropped', async () => {
  loki.srv.setFault({ type: 'stall' })
  const a = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'again' }, requestTimeoutMs: 60_000, spool: { dir } }))
  const lines = Array.from({ length: 100 }, (_, i) => `again seq=${i}`)
  for (const l of lines) a.push({ line: l })
  await a.close({ timeoutMs: 50 })
  expect(a.stats().spool.written).toBe(100)

  // Loki is back but refuses everything: the replayed batch runs out of retries.
  loki.srv.setFault({ type: 'status', status: 503 })
  const b = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'again' }, retry: { maxAttempts: 1 }, breaker: false, spool: { dir } }))
  b.on('drop', () => {})
  await waitUntil(() => b.stats().spool.loaded === 100 && b.stats().spool.written === 100, 'the replayed batch spooled again')
  expect(b.stats()).toMatchObject({ dropped: { total: 0 }, spool: { errors: 0 } })
  assertIdentity(b)
  // What went to disk before the call is not counted by flush() or close().
  expect(await b.flush()).toMatchObject({ ok: true, spooledEntries: 0, droppedEntries: 0 })
  expect(await b.close()).toMatchObject({ ok: true, spooledEntries: 0, droppedEntries: 0 })

  loki.srv.setFault(null)
  const c = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'again' }, spool: { dir } }))
  await waitUntil(() => c.stats().spool.loaded === 100, 'the third client to replay it')
  expect(await c.close()).toMatchObject({ ok: true })
  expect(loki.srv.entries.map((e) => e.line).sort()).toEqual([...lines].sort())
})

it('a full spool: the batch is dropped under its own reason, and the spool reports full in stats and a spool event', async () => {
  loki.srv.setFault({ type: 'stall' })
  const cl = (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'full' },
    concurrency: 1,
    requestTimeoutMs: 60_000,
    maxBufferBytes: 64 * 1024,
    batch: { maxBytes: 16 * 1024, maxWaitMs: 5 },
    spool: { dir, maxBytes: 1024 * 1024 },
  }))
  const problems: SpoolEvent[] = []
  const drops: DropEvent[] = []
  cl.on('spool', (p) => problems.push(p))
  cl.on('drop', (d) => drops.push(d))
  // Lines snappy cannot shrink, 2.5 MB in all: more than the spool holds.
  for (let i = 0; i < 2500; i++) expect(cl.push({ line: randomBytes(750).toString('base64') })).toBe(true)
  const s = cl.stats()
  expect(problems.length).toBeGreaterThan(0)
  expect(problems.every((p) => p.reason === 'full')).toBe(true)
  expect(s.spool.errors).toBe(problems.length)
  expect(s.spool.written).toBeGreaterThan(0)
  expect(s.spool.bytes).toBeGreaterThan(512 * 1024)
  expect(s.spool.bytes).toBeLessThanOrEqual(1024 * 1024)
  expect(s.dropped.buffer_full).toBeGreaterThan(0)
  expect(drops.every((d) => d.reason === 'buffer_full')).toBe(true)
  expect(drops.reduce((n, d) => n + d.entries, 0)).toBe(s.dropped.total)
  assertIdentity(cl)
})

it('a replay loads records only up to half the buffer, so a spool larger than the buffer never passes maxBufferBytes', async () => {
  loki.srv.setFault({ type: 'stall' })
  const options = { url: loki.srv.url, labels: { app: 'half' }, requestTimeoutMs: 60_000, batch: { maxBytes: 16 * 1024, maxWaitMs: 5 }, spool: { dir } }
  const a = (loki.client = new LokiClient(options))
  // Lines snappy cannot shrink: about 24 records of 16 KiB, 384 KiB on disk.
  for (let i = 0; i < 3000; i++) a.push({ line: randomBytes(96).toString('base64') })
  await a.close({ timeoutMs: 50 })
  expect(a.stats().spool.written).toBe(3000)
  expect(a.stats().spool.bytes).toBeGreaterThan(256 * 1024)

  const b = (loki.client = new LokiClient({ ...options, maxBufferBytes: 64 * 1024 }))
  const s = b.stats()
  expect(s.spool.loaded).toBeGreaterThan(0)
  expect(s.spool.loaded).toBeLessThan(3000)
  expect(s.bufferUsedBytes).toBeLessThanOrEqual(64 * 1024)
  assertIdentity(b)
})

it.each([
  ['with a breaker, per breaker.resetTimeoutMs', { retry: { maxAttempts: 1, minDelayMs: 10, maxDelayMs: 50 }, breaker: { volumeThreshold: 1, resetTimeoutMs: 60_000 } }],
  ['without one, per retry.maxDelayMs', { retry: { maxAttempts: 1, minDelayMs: 10, maxDelayMs: 60_000 }, breaker: false as const }],
])('the idle replay tries a record %s', async (_name, extra) => {
  loki.srv.setFault({ type: 'status', status: 503 })
  const cl = (loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'pace' }, batch: { maxWaitMs: 5 }, spool: { dir }, ...extra }))
  cl.push({ line: 'spooled' })
  await waitUntil(() => cl.stats().spool.written === 1, 'the batch spooled')
  // The floor would allow a try every second; the interval, a minute, has not passed.
  await new Promise((r) => setTimeout(r, 2500))
  expect(cl.stats().spool.loaded).toBe(0)
  expect(loki.srv.requests).toHaveLength(1)
})

it('close() does not start replaying the spool: what waits on disk stays there for the next start', async () => {
  loki.srv.setFault({ type: 'stall' })
  const options = { url: loki.srv.url, labels: { app: 'stay' }, requestTimeoutMs: 60_000, batch: { maxBytes: 16 * 1024, maxWaitMs: 5 }, spool: { dir } }
  const a = (loki.client = new LokiClient(options))
  for (let i = 0; i < 3000; i++) a.push({ line: randomBytes(96).toString('base64') })
  await a.close({ timeoutMs: 50 })
  expect(a.stats().spool.written).toBe(3000)

  loki.srv.setFault(null)
  const b = (loki.client = new LokiClient({ ...options, maxBufferBytes: 64 * 1024 }))
  const loaded = b.stats().spool.loaded
  expect(loaded).toBeLessThan(3000)
  // Their deliveries would replay more while the client is open; closing, it takes nothing more.
  expect(await b.close()).toMatchObject({ ok: true, spooledEntries: 0, droppedEntries: 0 })
  expect(b.stats().spool.loaded).toBe(loaded)
  expect(loki.srv.entries).toHaveLength(loaded)
})
