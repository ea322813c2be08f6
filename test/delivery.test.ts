import diagnosticsChannel from 'node:diagnostics_channel'
import { EventEmitter, getEventListeners } from 'node:events'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { LokiClientOptions } from '../src/index.js'
import type { DropEvent, FailedEvent, LokiClientEvents, RetryEvent, SentEvent } from '../src/model/events.js'
import { resolveOptions } from '../src/model/options.js'
import { Batcher } from '../src/pipeline/batcher.js'
import { Breaker, type BreakerState } from '../src/pipeline/breaker.js'
import { Delivery } from '../src/pipeline/delivery.js'
import { Ledger } from '../src/pipeline/ledger.js'
import { BatchQueue, createBatch, type Batch } from '../src/pipeline/queue.js'
import { Settlement } from '../src/pipeline/settlement.js'
import { Transport } from '../src/transport/transport.js'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { waitUntil } from './helpers.js'

/*
 * Delivery driven directly, wired as the client wires it (real transport, breaker, queue and
 * settlement against a real HTTP receiver), so a test holds the batch itself: its AbortSignal,
 * its buffer share, the promise of its run.
 */

let srv: LokiTestServer
let p: Pipeline | undefined
beforeEach(async () => {
  srv = await createLokiTestServer()
})
afterEach(async () => {
  await p?.close()
  p = undefined
  await srv.close()
})

interface Pipeline {
  delivery: Delivery
  queue: BatchQueue
  settlement: Settlement
  breaker: Breaker
  states: BreakerState[]
  /** Called on each breaker state change, as a 'breaker' listener would be. */
  onBreaker: ((s: BreakerState) => void) | undefined
  sent: SentEvent[]
  failed: FailedEvent[]
  retries: RetryEvent[]
  drops: DropEvent[]
  events: EventEmitter<LokiClientEvents>
  /** A batch of `lines` (one stream) that costs `bytes` against the buffer. */
  batch(lines: readonly string[], bytes?: number): Batch
  close(): Promise<void>
}

function pipeline(options: Partial<LokiClientOptions> = {}, offloadAfterMs?: number): Pipeline {
  const opts = resolveOptions({ url: srv.url, labels: { app: 'delivery' }, breaker: false, ...options })
  const events = new EventEmitter<LokiClientEvents>()
  const ledger = new Ledger(events)
  const transport = new Transport(opts)
  const states: BreakerState[] = []
  const breaker = new Breaker(opts.breaker, (s) => {
    states.push(s)
    out.onBreaker?.(s)
  })
  const queue: BatchQueue = new BatchQueue(opts.concurrency, (b): Promise<void> => delivery.run(b))
  const settlement = new Settlement({ queue, ledger, replay: undefined })
  const delivery = new Delivery({
    queue,
    breaker,
    transport,
    encoding: { encoding: opts.encoding, gzipLevel: opts.gzipLevel },
    retry: opts.retry,
    settlement,
    ledger,
    offloadAfterMs,
  })
  const out: Pipeline = {
    delivery,
    queue,
    settlement,
    breaker,
    states,
    onBreaker: undefined,
    sent: [],
    failed: [],
    retries: [],
    drops: [],
    events,
    batch(lines, bytes = 100 * lines.length) {
      let made: Batch | undefined
      const batcher = new Batcher({ maxEntries: 1e6, maxBytes: 1e9, maxWaitMs: 60_000 }, (cut) => {
        made = createBatch(cut.data, cut.entries, bytes)
      })
      const s = batcher.stream({ selector: '{app="delivery"}', labels: { app: 'delivery' } })
      lines.forEach((line, i) => batcher.add(s, { ms: Date.now(), ns: i, precise: true }, line, Buffer.byteLength(line), undefined, 1))
      batcher.cut()
      return made!
    },
    async close() {
      breaker.shutdown()
      await transport.destroy()
    },
  }
  events.on('sent', (e) => out.sent.push(e))
  events.on('failed', (e) => out.failed.push(e))
  events.on('retry', (e) => out.retries.push(e))
  events.on('drop', (e) => out.drops.push(e))
  return out
}

const abortListeners = (b: Batch) => getEventListeners(b.controller.signal, 'abort').length
/** Timers that hold the process open (getActiveResourcesInfo() leaves unref'd ones out). */
const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

describe('listeners on a batch\'s signal', () => {
  it('a batch retried with backoff leaves none once delivered', async () => {
    p = pipeline({ retry: { minDelayMs: 1, maxDelayMs: 5 } })
    srv.queueFaults(...Array.from({ length: 3 }, () => ({ type: 'status' as const, status: 500 })))
    const b = p.batch(['a', 'b'])
    p.queue.enqueue(b)
    await p.queue.settled(b)
    expect(p.sent).toHaveLength(1)
    expect(p.retries.map((r) => r.attempt)).toEqual([2, 3, 4])
    expect(p.sent.map((e) => e.attempt)).toEqual([4])
    expect(abortListeners(b)).toBe(0)
  })

  it('a batch that waited for an open breaker leaves none once delivered', async () => {
    // Offload configured but no spool: after offloadAfterMs the batch goes on waiting for the breaker.
    for (const offloadAfterMs of [60_000, 20]) {
      p = pipeline({ breaker: { volumeThreshold: 1, resetTimeoutMs: 200 }, retry: { minDelayMs: 1, maxDelayMs: 5 } }, offloadAfterMs)
      srv.queueFaults({ type: 'status', status: 500 })
      const b = p.batch(['a'])
      p.queue.enqueue(b)
      await p.queue.settled(b)
      expect(p.states).toEqual(['open', 'halfOpen', 'closed'])
      expect(p.sent).toHaveLength(1)
      expect(abortListeners(b)).toBe(0)
      await p.close()
      p = undefined
    }
  })
})

describe('a batch ended while it waits gives its slot up at once', () => {
  const LONG = { maxRetryAfterMs: 120_000, budgetMs: 600_000 }

  it('in backoff', async () => {
    p = pipeline({ retry: LONG })
    srv.setFault({ type: 'status', status: 503, headers: { 'retry-after': '60' } })
    const b = p.batch(['a'])
    p.queue.track(b)
    const running = p.delivery.run(b)
    await waitUntil(() => p!.retries.length === 1, 'the first retry scheduled')
    // In backoff the batch is off the wire, so eviction may take it.
    expect(p.queue.inFlightRequests).toBe(0)
    expect([...p.queue.evictable()]).toEqual([b])
    // A batch in backoff does not keep the process alive (exit-time delivery is the client's job).
    await waitUntil(() => refTimers() === 0, 'no timer holding the process', 5000)
    p.settlement.undelivered(b, 'buffer_full')
    // The backoff is a minute: a cap well under it tells a woken wait from one sat out.
    let ended = false
    void running.then(() => (ended = true))
    await waitUntil(() => ended, 'run() to end')
    expect(srv.requests).toHaveLength(1)
    expect(p.drops.map((d) => d.reason)).toEqual(['buffer_full'])
  })

  it('ended by a \'retry\' listener, before its backoff starts', async () => {
    p = pipeline({ retry: LONG })
    srv.setFault({ type: 'status', status: 503, headers: { 'retry-after': '60' } })
    const b = p.batch(['a'])
    p.events.on('retry', () => p!.settlement.undelivered(b, 'buffer_full'))
    let ended = false
    void p.delivery.run(b).then(() => (ended = true))
    await waitUntil(() => ended, 'run() to end')
    expect(srv.requests).toHaveLength(1)
    expect(p.drops.map((d) => d.reason)).toEqual(['buffer_full'])
  })

  it('waiting for an open breaker, before it would be offered to the spool', async () => {
    p = pipeline({ breaker: { volumeThreshold: 1, resetTimeoutMs: 120_000 }, retry: { minDelayMs: 1, maxDelayMs: 5 } }, 60_000)
    srv.setFault({ type: 'status', status: 500 })
    const b = p.batch(['a'])
    let ended = false
    void p.delivery.run(b).then(() => (ended = true))
    await waitUntil(() => p!.states.includes('open') && p!.retries.length === 1, 'the breaker open')
    // Give the batch time to get back to waiting on the breaker (its backoff is at most 5 ms).
    await new Promise((r) => setTimeout(r, 100))
    expect(ended).toBe(false)
    // Nor does one waiting for the breaker (other tests' timers may take a moment to go).
    await waitUntil(() => refTimers() === 0, 'no timer holding the process', 5000)
    p.settlement.undelivered(b, 'buffer_full')
    await waitUntil(() => ended, 'run() to end')
    expect(srv.requests).toHaveLength(1)
  })
})

describe('attempts', () => {
  it('260 (blocked) is a failed attempt that will not be retried', async () => {
    p = pipeline({ retry: { minDelayMs: 1, maxDelayMs: 5 } })
    srv.setFault({ type: 'status', status: 260 })
    await p.delivery.run(p.batch(['a']))
    expect(srv.requests).toHaveLength(1)
    expect(p.failed.map((f) => [f.status, f.willRetry])).toEqual([[260, false]])
    expect(p.drops.map((d) => d.reason)).toEqual(['blocked'])
  })

  it('a batch ended while its body is being encoded is never attempted', async () => {
    p = pipeline({ encoding: 'json', gzip: true })
    const starts: unknown[] = []
    const onStart = (m: unknown) => starts.push(m)
    diagnosticsChannel.subscribe('lokiwire:request:start', onStart)
    try {
      const b = p.batch(['a'])
      const running = p.delivery.run(b)
      // run() is now waiting for the asynchronous gzip of the JSON body.
      p.settlement.undelivered(b, 'buffer_full')
      await running
      expect(starts).toEqual([])
      expect(srv.requests).toHaveLength(0)
      expect(p.drops.map((d) => d.reason)).toEqual(['buffer_full'])
    } finally {
      diagnosticsChannel.unsubscribe('lokiwire:request:start', onStart)
    }
  })

  it('a batch ended while its attempt comes back failed is neither reported failed nor retried', async () => {
    // A 'breaker' listener runs while the failed attempt opens the breaker, before it returns.
    p = pipeline({ breaker: { volumeThreshold: 1, resetTimeoutMs: 60_000 }, retry: { minDelayMs: 1, maxDelayMs: 5 } })
    srv.setFault({ type: 'status', status: 500 })
    const b = p.batch(['a'])
    p.onBreaker = (s) => {
      if (s === 'open') p!.settlement.undelivered(b, 'buffer_full')
    }
    await p.delivery.run(b)
    expect(p.states).toEqual(['open'])
    expect(p.drops.map((d) => d.reason)).toEqual(['buffer_full'])
    expect(p.failed).toEqual([])
    expect(p.retries).toEqual([])
  })

  it('an attempt the half-open breaker refuses (another batch has the probe) is not counted', async () => {
    p = pipeline({ concurrency: 2, breaker: { volumeThreshold: 1, resetTimeoutMs: 200 }, retry: { minDelayMs: 1, maxDelayMs: 5 } })
    // The 500 opens the breaker; the probe is held long enough for the other batch to be refused.
    srv.queueFaults({ type: 'status', status: 500 }, { type: 'slowHeaders', delayMs: 300 })
    const a = p.batch(['a'])
    const b = p.batch(['b'])
    // b starts waiting for the breaker before a does, so it is woken first at half-open; it
    // still has to encode its body, and a, which has one, takes the probe meanwhile.
    p.onBreaker = (s) => {
      if (s === 'open') p!.queue.enqueue(b)
    }
    p.queue.enqueue(a)
    await waitUntil(() => p!.states.includes('open'), 'the breaker open')
    await Promise.all([a, b].map((x) => p!.queue.settled(x)))
    expect(p.states).toEqual(['open', 'halfOpen', 'closed'])
    expect(p.sent.map((e) => [e.batchId, e.attempt]).sort()).toEqual([[a.id, 2], [b.id, 1]].sort())
    expect(p.failed).toHaveLength(1)
  })
})

describe('the retry budget', () => {
  it('counts the time of each attempt: one that runs out the budget is the last', async () => {
    // The attempt's deadline is what is left of the budget, so it uses all of it.
    p = pipeline({ requestTimeoutMs: 60_000, retry: { budgetMs: 1000, minDelayMs: 1, maxDelayMs: 5 } })
    srv.setFault({ type: 'stall' })
    const b = p.batch(['a'])
    await p.delivery.run(b)
    expect(p.failed).toHaveLength(1)
    expect(p.drops.map((d) => d.reason)).toEqual(['retries_exhausted'])
  })

  it('counts the time waited in backoff', async () => {
    // Retry-After 1 s against a 1.5 s budget: one retry fits, a second cannot.
    p = pipeline({ retry: { budgetMs: 1500, maxAttempts: 10 } })
    srv.setFault({ type: 'status', status: 503, headers: { 'retry-after': '1' } })
    const b = p.batch(['a'])
    await p.delivery.run(b)
    expect(p.failed.length).toBeLessThanOrEqual(2)
    expect(p.drops.map((d) => d.reason)).toEqual(['retries_exhausted'])
  })
})

describe('the 413 split', () => {
  it('shares the batch\'s buffer cost between the halves by encoded size, to the byte', async () => {
    p = pipeline()
    // The first half is held on the wire while the second waits its turn in the same slot.
    srv.queueFaults({ type: 'status', status: 413 }, { type: 'slowHeaders', delayMs: 1000 })
    const lines = Array.from({ length: 8 }, (_, i) => `line ${i} ${'x'.repeat(i < 2 ? 400 : 10)}`)
    const b = p.batch(lines, 10_000)
    const size = b.data!.request.length
    p.queue.enqueue(b)
    expect(p.queue.bytes).toBe(10_000)
    await waitUntil(() => srv.requests.length === 2, 'the first half on the wire')
    const [first, second] = [...p.queue.pending]
    // Each half repeats the stream's labels: their sizes add up to more than the batch's.
    expect(first!.data!.request.length + second!.data!.request.length).toBeGreaterThan(size)
    expect(p.queue.bytes).toBe(10_000)
    // The half with the long lines carries most of the cost.
    expect(first!.bytes).toBeGreaterThan(second!.bytes * 2)
    expect(second!.bytes).toBeGreaterThan(0)
    await Promise.all([first!, second!].map((c) => p!.queue.settled(c)))
    expect(p.queue.bytes).toBe(0)
    expect(srv.entries).toHaveLength(8)
    // The 413 was a failed attempt the halves retry.
    expect(p.failed.map((f) => [f.status, f.willRetry])).toEqual([[413, true]])
  })

  it('a single entry Loki finds too large is dropped as too_large, not split or retried', async () => {
    p = pipeline()
    srv.setFault({ type: 'status', status: 413, body: 'request entity too large' })
    const b = p.batch(['alone'])
    await p.delivery.run(b)
    expect(srv.requests).toHaveLength(1)
    expect(p.failed.map((f) => [f.status, f.willRetry])).toEqual([[413, false]])
    expect(p.drops.map((d) => [d.reason, d.entries])).toEqual([['too_large', 1]])
  })
})

describe('encode errors', () => {
  it('a batch the encoder cannot encode is dropped as encode_error with its cause, never thrown', async () => {
    p = pipeline({ encoding: 'json' })
    const b = p.batch(['a', 'b'])
    // A batch corrupted in memory: its stream list no longer matches its request.
    b.data = { ...b.data!, streams: [null as never] }
    await p.delivery.run(b)
    expect(p.drops).toHaveLength(1)
    expect(p.drops[0]).toMatchObject({ reason: 'encode_error', entries: 2, error: { code: 'LOKI_ENCODE', message: expect.stringMatching(/encode/) } })
    expect(p.drops[0]!.error!.cause).toBeInstanceOf(Error)
    expect(srv.requests).toHaveLength(0)
  })

  it('a batch with neither entries nor a body is dropped as encode_error', async () => {
    p = pipeline()
    const b = createBatch(undefined, 3, 300)
    p.queue.track(b)
    await p.delivery.run(b)
    expect(p.drops).toMatchObject([{ reason: 'encode_error', entries: 3, error: { code: 'LOKI_ENCODE' } }])
    // The cause says what was wrong rather than where a property read failed.
    expect((p.drops[0]!.error!.cause as Error).message).toMatch(/neither entries nor a body/)
    expect(p.queue.bytes).toBe(0)
  })
})
