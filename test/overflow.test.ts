import v8 from 'node:v8'
import vm from 'node:vm'
import { expect, it } from 'vitest'
import { LokiClient } from '../src/index.js'
import { ENTRY_OVERHEAD_BYTES } from '../src/client/client.js'
import { assertIdentity, waitUntil, useLoki } from './helpers.js'

v8.setFlagsFromString('--expose-gc')

const loki = useLoki()

// Lines of a fixed size make every cost exact: 76 + 24 = 100 bytes each.
const LINE_BYTES = 100 - ENTRY_OVERHEAD_BYTES
const line = (i: number) => `seq=${String(i).padStart(8, '0')} `.padEnd(LINE_BYTES, 'x')

/** A 4 KiB buffer of 1 KiB batches in front of a stalled receiver: room for exactly 40 lines. */
function tightClient(extra: Partial<ConstructorParameters<typeof LokiClient>[0]>): LokiClient {
  loki.srv.setFault({ type: 'stall' })
  return (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'overflow' },
    maxBufferBytes: 4096,
    batch: { maxBytes: 1024, maxWaitMs: 5 },
    ...extra,
  }))
}

it('drop-newest holds the limit in bytes and counts every refused entry', async () => {
  const cl = tightClient({ overflow: 'drop-newest', requestTimeoutMs: 60_000 })
  let accepted = 0
  for (let i = 0; i < 500; i++) {
    if (cl.push({ line: line(i) })) accepted++
    const s = cl.stats()
    expect(s.bufferUsedBytes).toBeLessThanOrEqual(4096)
    assertIdentity(cl)
  }
  expect(accepted).toBe(40) // 4096 / 100, in flight included
  const s = cl.stats()
  expect(s.dropped.buffer_full).toBe(460)
  expect(s.dropped.total).toBe(460)
  expect(s.buffered.entries + s.inFlight.entries).toBe(40)
})

it('drop-oldest evicts waiting batches, never the ones on the wire, and delivers the newest', async () => {
  const cl = tightClient({ overflow: 'drop-oldest', concurrency: 1, requestTimeoutMs: 500, retry: { minDelayMs: 1, maxDelayMs: 5 } })
  for (let i = 0; i < 10; i++) cl.push({ line: line(i) })
  // The first batch (seq 0-9) goes on the wire and stalls there.
  await waitUntil(() => cl.stats().inFlight.entries === 10, 'first batch in flight')
  await loki.srv.waitFor((x) => x.requests.length === 1 && x.requests[0]!.fault === 'stall')
  for (let i = 10; i < 500; i++) {
    expect(cl.push({ line: line(i) })).toBe(true)
    expect(cl.stats().bufferUsedBytes).toBeLessThanOrEqual(4096)
    assertIdentity(cl)
  }
  const s = cl.stats()
  expect(s.inFlight.entries).toBe(10)
  const kept = s.buffered.entries
  expect(kept).toBeGreaterThan(0)
  expect(s.dropped.buffer_full).toBe(500 - 10 - kept)
  // Loki recovers; the stalled attempt hits its deadline and is retried.
  loki.srv.setFault(null)
  const r = await cl.flush({ timeoutMs: 10_000 })
  expect(r).toMatchObject({ ok: true, droppedEntries: 0 })
  const expected = [...Array.from({ length: 10 }, (_, i) => line(i)), ...Array.from({ length: kept }, (_, i) => line(500 - kept + i))]
  expect(loki.srv.entries.map((e) => e.line).sort()).toEqual(expected.sort())
  assertIdentity(cl)
})

it('under a stalled Loki, memory follows the buffer limit, not the number of batches evicted', async () => {
  // Evicted batches used to stay reachable from p-queue's waiting tasks until a slot freed.
  const gc = vm.runInNewContext('gc') as () => void
  const heap = () => {
    gc()
    gc()
    return process.memoryUsage().heapUsed
  }
  loki.srv.setFault({ type: 'stall' })
  const cl = (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'overflow' },
    concurrency: 1,
    requestTimeoutMs: 60_000,
    breaker: false,
    overflow: 'drop-oldest',
    maxBufferBytes: 1024 * 1024,
    batch: { maxBytes: 256 * 1024, maxWaitMs: 10 },
  }))
  const before = heap()
  const pad = 'x'.repeat(200)
  for (let i = 0; i < 200_000; i++) cl.push({ line: `line ${i} ${pad}` })
  await loki.srv.waitFor((x) => x.requests.length >= 1)
  const grown = heap() - before
  const s = cl.stats()
  expect(s.bufferUsedBytes).toBeLessThanOrEqual(1024 * 1024)
  expect(s.dropped.buffer_full).toBeGreaterThan(190_000)
  // 200k lines of ~210 bytes are ~45 MB: holding the evicted ones would show many times over.
  expect(grown).toBeLessThan(8 * 1024 * 1024)
  assertIdentity(cl)
})

it('eviction stops as soon as the entry fits exactly: one batch makes room for a line of its size, not two', async () => {
  // 128-byte lines in batches of exactly 8 (1 KiB) under a 4 KiB buffer: one batch on the wire,
  // three waiting, and the buffer exactly full.
  const small = (i: number) => `seq=${String(i).padStart(8, '0')} `.padEnd(128 - ENTRY_OVERHEAD_BYTES, 'x')
  const cl = tightClient({ overflow: 'drop-oldest', concurrency: 1, requestTimeoutMs: 60_000, batch: { maxBytes: 1024, maxWaitMs: 60_000 } })
  for (let i = 0; i < 8; i++) cl.push({ line: small(i) })
  await waitUntil(() => cl.stats().inFlight.entries === 8, 'first batch in flight')
  for (let i = 8; i < 32; i++) expect(cl.push({ line: small(i) })).toBe(true)
  expect(cl.stats()).toMatchObject({ bufferUsedBytes: 4096, dropped: { total: 0 } })
  // A line that costs one whole batch: evicting the oldest waiting batch leaves exactly room for it.
  expect(cl.push({ line: 'big '.padEnd(1024 - ENTRY_OVERHEAD_BYTES, 'y') })).toBe(true)
  expect(cl.stats()).toMatchObject({ bufferUsedBytes: 4096, dropped: { total: 8, buffer_full: 8 } })
  // Now the buffer holds the wire batch, two waiting ones and the 1 KiB line (a batch of its own):
  // a 2 KiB line needs two of the three waiting batches evicted, oldest first.
  expect(cl.push({ line: 'huge '.padEnd(2048 - ENTRY_OVERHEAD_BYTES, 'z') })).toBe(true)
  expect(cl.stats()).toMatchObject({ bufferUsedBytes: 4096, dropped: { total: 24, buffer_full: 24 } })
  assertIdentity(cl)
})

it('eviction cuts what waits in the batcher when no queued batch is left to evict', async () => {
  // 2 KiB batches under a 4 KiB buffer: one batch on the wire, the rest of the buffer in the batcher.
  const small = (i: number) => `seq=${String(i).padStart(8, '0')} `.padEnd(128 - ENTRY_OVERHEAD_BYTES, 'x')
  const cl = tightClient({ overflow: 'drop-oldest', concurrency: 1, requestTimeoutMs: 60_000, batch: { maxBytes: 2048, maxWaitMs: 60_000 } })
  for (let i = 0; i < 16; i++) cl.push({ line: small(i) })
  await waitUntil(() => cl.stats().inFlight.entries === 16, 'first batch in flight')
  for (let i = 16; i < 31; i++) expect(cl.push({ line: small(i) })).toBe(true)
  expect(cl.stats()).toMatchObject({ bufferUsedBytes: 3968, buffered: { entries: 15 }, dropped: { total: 0 } })
  expect(cl.push({ line: 'newest '.padEnd(256 - ENTRY_OVERHEAD_BYTES, 'y') })).toBe(true)
  expect(cl.stats()).toMatchObject({ bufferUsedBytes: 2048 + 256, buffered: { entries: 1 }, dropped: { total: 15, buffer_full: 15 } })
  assertIdentity(cl)
})

it('an entry that cannot fit even once everything off the wire is evicted is refused, not waited for', async () => {
  const small = (i: number) => `seq=${String(i).padStart(8, '0')} `.padEnd(128 - ENTRY_OVERHEAD_BYTES, 'x')
  const cl = tightClient({ overflow: 'drop-oldest', concurrency: 1, requestTimeoutMs: 60_000, batch: { maxBytes: 2048, maxWaitMs: 60_000 } })
  for (let i = 0; i < 16; i++) cl.push({ line: small(i) })
  await waitUntil(() => cl.stats().inFlight.entries === 16, 'first batch in flight')
  for (let i = 16; i < 24; i++) cl.push({ line: small(i) })
  // 2 KiB stay on the wire: a 3000-byte line cannot fit under 4 KiB whatever is evicted.
  expect(cl.push({ line: 'too big '.padEnd(3000 - ENTRY_OVERHEAD_BYTES, 'w') })).toBe(false)
  expect(cl.stats()).toMatchObject({ bufferUsedBytes: 2048, inFlight: { entries: 16 }, buffered: { entries: 0 }, dropped: { buffer_full: 9 } })
  assertIdentity(cl)
})
