import type { Breaker } from './breaker.js'
import { encodeBodySync, type EncodeOptions } from '../encode/index.js'
import { ErrorCodes, LokiError } from '../model/errors.js'
import type { SpoolEvent } from '../model/events.js'
import { createBatch, type Batch, type BatchQueue } from './queue.js'
import { Spool, type SpoolOptions } from '../spool/spool.js'

/** The idle replay reads a record from disk at most this often, however short the timeouts. */
export const MIN_REPLAY_INTERVAL_MS = 1000

export interface SpoolReplayOptions {
  spool: Required<SpoolOptions>
  encoding: EncodeOptions
  queue: BatchQueue
  breaker: Breaker
  /** How long the idle replay waits between two records (before MIN_REPLAY_INTERVAL_MS). */
  idleIntervalMs: number
  /** Replay loads records only while the buffer holds less than this many bytes. */
  loadBelowBytes: number
  /** Bytes held against `maxBufferBytes` now: what the batcher and the queue hold. */
  bufferUsed(): number
  /** True while the client takes entries; replay stops for good once it does not. */
  open(): boolean
  /** Reports a spool problem; it is already counted in `errors`. */
  onProblem(problem: SpoolEvent): void
}

/**
 * The disk spool and its replay: writes batches that could not be delivered, and feeds them
 * back into the queue as ordinary batches once Loki can take them. It owns no batch: the
 * settlement decides that a batch ends in the spool and calls store(); a replayed batch ends
 * like any other, and its record is acknowledged (and its segment deleted) when it does.
 */
export class SpoolReplay {
  /** Entries written to disk. */
  written = 0
  /** Entries read back for replay. */
  loaded = 0
  /** Problems met: full, a write or read that failed, corrupt data skipped. */
  errors = 0
  readonly #spool: Spool
  readonly #o: SpoolReplayOptions
  /** Armed while records wait and nothing else may start their replay (see #arm). */
  #timer: NodeJS.Timeout | undefined

  constructor(o: SpoolReplayOptions) {
    this.#o = o
    this.#spool = new Spool(o.spool, (problem) => this.#problem(problem))
  }

  /** Bytes on disk. */
  get bytes(): number {
    return this.#spool.bytes
  }

  /** Replays what an earlier process left, as far as there is room. */
  start(): void {
    this.pump()
    if (this.#spool.pending) this.#arm()
  }

  /**
   * Writes a batch to disk. False when it could not be (encoding or the write failed, the spool
   * is full); the caller then drops it under its reason. Does not end the batch.
   */
  store(batch: Batch): boolean {
    let body = batch.body
    if (body === undefined) {
      try {
        if (batch.data === undefined) throw new Error('batch has neither entries nor a body')
        body = encodeBodySync(batch.data, this.#o.encoding)
      } catch (error) {
        this.#problem({ reason: 'write_failed', error: new LokiError(ErrorCodes.ENCODE, 'could not encode a batch for the spool', { cause: error }) })
        return false
      }
    }
    if (!this.#spool.write(body, batch.entries)) return false
    this.written += batch.entries
    this.#arm()
    return true
  }

  /** A batch was delivered: Loki takes pushes again, so replay what waits. */
  delivered(): void {
    if (this.#spool.pending) this.pump()
  }

  /** Loads spooled batches for replay while there is room, Loki is reachable and intake is open. */
  pump(): void {
    const o = this.#o
    if (!o.open() || o.breaker.state !== 'closed') return
    while (o.bufferUsed() < o.loadBelowBytes) if (!this.#replayNext()) return
  }

  /** Stops replaying and closes the open segment: close() and destroy(). */
  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#spool.close()
  }

  /** Forces what was written to disk and closes the segment: the process is exiting. */
  exit(): void {
    this.#spool.sync()
    this.#spool.close()
  }

  #problem(problem: SpoolEvent): void {
    this.errors++
    this.#o.onProblem(problem)
  }

  /** Queues the oldest spooled record for delivery; false when there is none. */
  #replayNext(): boolean {
    const record = this.#spool.next()
    if (record === undefined) return false
    const batch = createBatch(undefined, record.entries, record.body.body.length)
    batch.body = record.body
    batch.onFinish = record.ack
    this.loaded += record.entries
    this.#o.queue.enqueue(batch)
    return true
  }

  /**
   * Replay otherwise starts only on a delivery or the breaker closing, both of which need
   * traffic: a client that logs nothing after Loki comes back would leave its spool for the next
   * start. So while records wait and nothing is queued, one record is tried every idle interval
   * (the breaker's reset timeout, or the backoff cap without a breaker), at most once a second.
   * It waits for the breaker like any batch, which makes it the half-open probe; once Loki takes
   * it, the delivery that follows replays the rest, and if Loki refuses it, it goes back to disk
   * and the timer is armed again. One record at a time keeps a long outage from rereading and
   * rewriting the whole spool.
   */
  #arm(): void {
    const o = this.#o
    if (this.#timer !== undefined || !o.open()) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (!o.open() || !this.#spool.pending) return
      // Batches under way lead to a delivery (and a replay) or back to disk (and a new timer);
      // the timer is kept only for outcomes that do neither, such as a batch Loki rejected.
      if (o.queue.pending.size === 0) this.#replayNext()
      this.#arm()
    }, Math.max(MIN_REPLAY_INTERVAL_MS, o.idleIntervalMs))
    // Spooled records are safe on disk: waiting for Loki must not keep the process alive.
    this.#timer.unref()
  }
}
