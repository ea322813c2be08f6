import { expect, it } from 'vitest'
import { LokiClient } from '../src/index.js'
import { BatchQueue, createBatch } from '../src/pipeline/queue.js'
import { seqLines, useLoki, waitUntil } from './helpers.js'

/** A queue whose batches are only tracked, never run: the bookkeeping alone. */
const idleQueue = () => new BatchQueue(1, async () => {})

it('finish() ends a batch once: a second call returns false and changes no count or callback', () => {
  const q = idleQueue()
  const b = createBatch(undefined, 3, 30)
  const kept = createBatch(undefined, 2, 20)
  q.track(b)
  q.track(kept)
  let acked = 0
  b.onFinish = () => acked++
  q.setSending(b, true)

  expect(q.finish(b)).toBe(true)
  // Destroy racing a response ends the same batch twice: the second end must be a no-op, or
  // the client would count its entries as both sent and dropped.
  expect(q.finish(b)).toBe(false)
  expect({ entries: q.entries, bytes: q.bytes, pending: q.pending.size }).toEqual({ entries: 2, bytes: 20, pending: 1 })
  expect({ e: q.inFlightEntries, b: q.inFlightBytes, r: q.inFlightRequests }).toEqual({ e: 0, b: 0, r: 0 })
  expect(acked).toBe(1)
})

it('settled() on a batch that already ended resolves, so a late waiter cannot hang', async () => {
  const q = idleQueue()
  const b = createBatch(undefined, 1, 10)
  q.track(b)
  q.finish(b)
  const first = await Promise.race([
    q.settled(b).then(() => 'settled'),
    new Promise((resolve) => setImmediate(() => resolve('still waiting'))),
  ])
  expect(first).toBe('settled')
})

const loki = useLoki()

it('a batch on the wire counts as in flight, not as buffered, and still against the buffer limit', async () => {
  // Loki holds the request open: the one batch stays on the wire until the test ends.
  loki.srv.setFault({ type: 'stall' })
  const cl = (loki.client = new LokiClient({
    url: loki.srv.url,
    labels: { app: 'inflight' },
    requestTimeoutMs: 60_000,
    batch: { maxEntries: 5, maxWaitMs: 10 },
    breaker: false,
  }))
  for (const line of seqLines(5)) cl.push({ line })
  await waitUntil(() => cl.stats().inFlight.requests === 1, 'the batch on the wire')
  const s = cl.stats()
  expect(s.inFlight.entries).toBe(5)
  expect(s.buffered).toEqual({ entries: 0, bytes: 0 })
  expect(s.bufferUsedBytes).toBeGreaterThan(0)
  expect(cl.bufferUsedBytes).toBe(s.bufferUsedBytes)
})
