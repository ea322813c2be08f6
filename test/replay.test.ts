import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { Breaker } from '../src/pipeline/breaker.js'
import { ErrorCodes, LokiError } from '../src/model/errors.js'
import type { SpoolEvent } from '../src/model/events.js'
import { BatchQueue, createBatch, type Batch } from '../src/pipeline/queue.js'
import { MIN_REPLAY_INTERVAL_MS, SpoolReplay } from '../src/pipeline/replay.js'
import { Spool } from '../src/spool/spool.js'
import { trackTimers, waitUntil, type TimerTracker } from './helpers.js'

// SpoolReplay on its own: a real spool directory and a real queue whose batches stay in flight
// until the test ends them, so what the replay loads is exactly what the queue holds.

let dir: string
let replay: SpoolReplay | undefined
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lokiwire-replay-'))
})
let timers: TimerTracker | undefined
afterEach(() => {
  replay?.stop()
  replay = undefined
  timers?.stop()
  timers = undefined
  rmSync(dir, { recursive: true, force: true })
})

const RECORD_BYTES = 1000
const spoolOptions = () => ({ dir, maxBytes: 1024 * 1024, breakerWaitMs: 1000 })

/** `n` records of one entry and RECORD_BYTES bytes each, left on disk as a previous process would. */
function leaveRecords(n: number): void {
  const spool = new Spool(spoolOptions(), () => {})
  for (let i = 0; i < n; i++) spool.write({ body: Buffer.alloc(RECORD_BYTES, 65 + (i % 26)), contentType: 'application/json', contentEncoding: undefined }, 1)
  spool.close()
}

function setup(o: { open?: () => boolean; loadBelowBytes: number; idleIntervalMs?: number; breaker?: Breaker }) {
  const running: Batch[] = []
  const queue = new BatchQueue(100, (b) => {
    running.push(b)
    return new Promise<void>(() => {}) // held until the test ends the batch
  })
  const problems: SpoolEvent[] = []
  replay = new SpoolReplay({
    spool: spoolOptions(),
    encoding: { encoding: 'protobuf', gzipLevel: 0 },
    queue,
    breaker: o.breaker ?? new Breaker(false, () => {}),
    idleIntervalMs: o.idleIntervalMs ?? 60_000,
    loadBelowBytes: o.loadBelowBytes,
    bufferUsed: () => queue.bytes,
    open: o.open ?? (() => true),
    onProblem: (p) => problems.push(p),
  })
  return { queue, replay, problems }
}

it('loads records only while the buffer is below its bound, and more as batches end', () => {
  leaveRecords(20)
  const { queue, replay, problems } = setup({ loadBelowBytes: 5 * RECORD_BYTES })
  replay.start()
  // Loading stops at the first record that reaches the bound: 5, not the 20 on disk.
  expect(replay.loaded).toBe(5)
  expect(queue.bytes).toBe(5 * RECORD_BYTES)
  const [a, b] = [...queue.pending]
  queue.finish(a!)
  queue.finish(b!)
  replay.delivered()
  expect(replay.loaded).toBe(7)
  expect(queue.pending.size).toBe(5)
  expect(problems).toEqual([])
})

it('loads nothing once the client stopped taking entries', () => {
  leaveRecords(3)
  let open = false
  const { queue, replay } = setup({ loadBelowBytes: 1024 * 1024, open: () => open })
  replay.start()
  expect(replay.loaded).toBe(0)
  expect(queue.pending.size).toBe(0)
  open = true
  replay.pump()
  expect(replay.loaded).toBe(3)
})

/** The replay's own timers still armed (the idle replay), by where they were started. */
const replayTimers = () => timers!.live().filter((site) => /replay\.[jt]s:/.test(site.split('\n')[0]!))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

it('records that did not fit are replayed while idle: one at a time, only with nothing queued, at most once a second, until the spool is empty', async () => {
  leaveRecords(3)
  timers = trackTimers()
  // Asked for a 10 ms interval; the replay still reads at most one record a second.
  const { queue, replay } = setup({ loadBelowBytes: RECORD_BYTES, idleIntervalMs: 10 })
  const started = performance.now()
  replay.start()
  expect(replay.loaded).toBe(1)
  // Loki rejected it, say: it ends without a delivery, so only the idle replay reads on.
  queue.finish([...queue.pending][0]!)
  await waitUntil(() => replay.loaded === 2, 'the idle replay to load the second record')
  // A lower bound only: load can make the timer late, never early.
  expect(performance.now() - started).toBeGreaterThanOrEqual(MIN_REPLAY_INTERVAL_MS - 50)
  // While a batch is queued the timer reads nothing more: the batch's own end replays the rest.
  await sleep(2.5 * MIN_REPLAY_INTERVAL_MS)
  expect(replay.loaded).toBe(2)
  queue.finish([...queue.pending][0]!)
  await waitUntil(() => replay.loaded === 3, 'the idle replay to load the last record')
  queue.finish([...queue.pending][0]!)
  // With the spool empty the timer stops for good rather than waking every second.
  await waitUntil(() => replayTimers().length === 0, 'the idle replay to stop once nothing waits')
  expect(queue.pending.size).toBe(0)
})

it('however many batches go to disk, one replay timer is armed, none while intake is closed, and stop() clears it', async () => {
  timers = trackTimers()
  let open = true
  const { replay, problems } = setup({ loadBelowBytes: 0, open: () => open })
  const batch = () => {
    const b = createBatch(undefined, 1, RECORD_BYTES)
    b.body = { body: Buffer.alloc(RECORD_BYTES, 66), contentType: 'application/json', contentEncoding: undefined }
    return b
  }
  for (let i = 0; i < 3; i++) expect(replay.store(batch())).toBe(true)
  expect(replayTimers()).toHaveLength(1)
  replay.stop()
  // A cleared timer leaves the tracker when node reports its destruction, just after.
  await waitUntil(() => replayTimers().length === 0, 'stop() to clear the replay timer')
  // The close deadline spools what is left after intake closed: nothing re-arms.
  open = false
  expect(replay.store(batch())).toBe(true)
  await new Promise((r) => setImmediate(r))
  expect(replayTimers()).toEqual([])
  expect(replay.written).toBe(4)
  expect(problems).toEqual([])
})

it('loads nothing while the breaker is open, even when a batch already on the wire is delivered meanwhile', async () => {
  leaveRecords(3)
  // Opens on the first retryable failure, as another batch's 503 would open it.
  const breaker = new Breaker({ errorThresholdPercentage: 1, volumeThreshold: 1, resetTimeoutMs: 60_000, rollingWindowMs: 10_000 }, () => {})
  try {
    await breaker.run(async () => ({ kind: 'retryable', status: 503, failure: 'status5xx', error: new LokiError(ErrorCodes.HTTP_STATUS, '503'), retryAfterMs: undefined }))
    expect(breaker.state).toBe('open')
    const { queue, replay } = setup({ loadBelowBytes: 1024 * 1024, breaker })
    replay.start()
    replay.delivered() // a batch that was on the wire when the breaker opened got its 2xx
    expect(replay.loaded).toBe(0)
    expect(queue.pending.size).toBe(0)
  } finally {
    breaker.shutdown()
  }
})
