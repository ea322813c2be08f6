import PQueue from 'p-queue'
import type { EncodedBatch, EncodedBody } from '../encode/index.js'

/** A batch on its way to Loki. Its entries never change after it is cut. */
export interface Batch {
  readonly id: number
  /**
   * Its entries, encoded; released when the batch ends (see finish()). Undefined for a batch
   * replayed from the spool, which has only its wire body.
   */
  data: EncodedBatch | undefined
  readonly entries: number
  /** Buffer-limit cost of its entries. */
  readonly bytes: number
  /** Aborted to end the batch early: eviction, close deadline, destroy. */
  readonly controller: AbortController
  /** The wire body: compressed (or transcoded to JSON) once, on the first attempt, and reused by every retry. */
  body: EncodedBody | undefined
  attempts: number
  /** Budget used so far: attempt and backoff time, not time waiting for an open breaker. */
  spentMs: number
  sending: boolean
  done: boolean
  /** Created only when someone waits for this batch (flush). */
  waiters: Array<() => void> | undefined
  /** Set for batches replayed from the spool: acknowledges the record once the batch ends. */
  onFinish: (() => void) | undefined
  /** The batch this one was split from (413), so whoever waits on that one learns how it ended. */
  readonly parent: Batch | undefined
  /** Entries of this batch, or of the halves split from it, that ended undelivered: dropped or spooled. */
  undelivered: number
}

let nextBatchId = 1

export function createBatch(data: EncodedBatch | undefined, entries: number, bytes: number, parent?: Batch): Batch {
  return {
    id: nextBatchId++,
    data,
    entries,
    bytes,
    controller: new AbortController(),
    body: undefined,
    attempts: 0,
    spentMs: 0,
    sending: false,
    done: false,
    waiters: undefined,
    onFinish: undefined,
    parent,
    undelivered: 0,
  }
}

/**
 * Batches between the batcher and the wire. p-queue bounds how many run at once; this class
 * owns the bookkeeping p-queue cannot give: which batches are still undelivered, how many
 * entries and bytes they hold, which are on the wire. p-queue's `timeout` and `clear()` are
 * deliberately unused: a task always runs to its end, and ending early goes through the batch's
 * own AbortSignal.
 */
export class BatchQueue {
  /** Undelivered batches, oldest first. */
  readonly pending = new Set<Batch>()
  entries = 0
  bytes = 0
  inFlightEntries = 0
  inFlightBytes = 0
  inFlightRequests = 0
  readonly #queue: PQueue
  readonly #run: (batch: Batch) => Promise<void>

  constructor(concurrency: number, run: (batch: Batch) => Promise<void>) {
    this.#queue = new PQueue({ concurrency })
    this.#run = run
  }

  enqueue(batch: Batch): void {
    this.track(batch)
    // run() never rejects, so the promise p-queue returns cannot become an unhandled rejection.
    void this.#queue.add(() => this.#run(batch))
  }

  /** Starts accounting for a batch that another task will run (the halves of a split). */
  track(batch: Batch): void {
    this.pending.add(batch)
    this.entries += batch.entries
    this.bytes += batch.bytes
  }

  setSending(batch: Batch, sending: boolean): void {
    if (batch.done || batch.sending === sending) return
    batch.sending = sending
    const sign = sending ? 1 : -1
    this.inFlightEntries += sign * batch.entries
    this.inFlightBytes += sign * batch.bytes
    this.inFlightRequests += sign
  }

  /**
   * Ends a batch's bookkeeping exactly once. Returns false if it had already ended, so a
   * delivery or a drop is counted only once even when destroy races a response. Only the
   * settlement calls this: it decides how a batch ended and counts it.
   */
  finish(batch: Batch): boolean {
    if (batch.done) return false
    this.setSending(batch, false)
    batch.done = true
    this.pending.delete(batch)
    this.entries -= batch.entries
    this.bytes -= batch.bytes
    // p-queue holds a batch in its task until a slot frees, which under a stalled Loki can be
    // long after the batch was evicted or spooled: let go of its entries and body now, so
    // memory follows maxBufferBytes rather than the number of batches cut.
    batch.data = undefined
    batch.body = undefined
    const waiters = batch.waiters
    batch.waiters = undefined
    if (waiters !== undefined) for (const w of waiters) w()
    batch.onFinish?.()
    return true
  }

  /** Resolves when the batch has ended. */
  settled(batch: Batch): Promise<void> {
    if (batch.done) return Promise.resolve()
    return new Promise((resolve) => {
      ;(batch.waiters ??= []).push(resolve)
    })
  }

  /** Batches waiting in the queue, for backoff or for the breaker: the ones eviction may take. */
  *evictable(): IterableIterator<Batch> {
    for (const b of this.pending) if (!b.sending) yield b
  }
}
