import { LokiAbortError, type LokiError } from '../model/errors.js'
import type { SentEvent } from '../model/events.js'
import type { Ledger } from './ledger.js'
import type { Batch, BatchQueue } from './queue.js'
import type { SpoolReplay } from './replay.js'
import type { DropReason } from '../model/types.js'

/** Reasons a spool can rescue: Loki was unreachable or slow, not wrong about the data. */
const SPOOLABLE: ReadonlySet<DropReason> = new Set<DropReason>(['retries_exhausted', 'buffer_full', 'close_timeout'])

export interface SettlementOptions {
  queue: BatchQueue
  ledger: Ledger
  /** Undefined without a spool. */
  replay: SpoolReplay | undefined
}

/**
 * The one owner of the end of a batch. A batch ends exactly once, here, in one of three ways:
 * delivered, moved to the spool, or dropped with a reason; or it is split on 413 into halves
 * that each end their own way. Every end releases the batch's buffer share and memory, wakes
 * whoever waits for it (flush), aborts whatever still works on it, and is counted and reported
 * once, even when destroy() races a response.
 */
export class Settlement {
  readonly #queue: BatchQueue
  readonly #ledger: Ledger
  readonly #replay: SpoolReplay | undefined

  constructor(o: SettlementOptions) {
    this.#queue = o.queue
    this.#ledger = o.ledger
    this.#replay = o.replay
  }

  /** Loki stored the batch (2xx, not 260). */
  delivered(batch: Batch, e: SentEvent): void {
    if (!this.#queue.finish(batch)) return
    this.#ledger.delivered(e)
    this.#replay?.delivered()
  }

  /**
   * Ends a batch that was not delivered: into the spool when the reason is one a later replay
   * can fix and a spool is configured, otherwise dropped and counted under `reason`.
   */
  undelivered(batch: Batch, reason: DropReason, error?: LokiError): void {
    // A batch that already ended is refused by toSpool() and by #end(): counted once.
    if (SPOOLABLE.has(reason) && this.toSpool(batch)) return
    if (!this.#end(batch, `batch dropped: ${reason}`)) return
    this.#ledger.drop({ reason, entries: batch.entries, ...(error ? { error } : {}) })
  }

  /**
   * Moves a batch to the spool and ends it there: a long breaker wait, the process exiting.
   * False when there is no spool, it failed, or the batch had already ended.
   */
  toSpool(batch: Batch): boolean {
    if (this.#replay === undefined || batch.done || !this.#replay.store(batch)) return false
    this.#end(batch, 'batch moved to the spool')
    return true
  }

  /**
   * 413: `children` replace `parent`, which ends now without waking its waiters. Call the
   * returned function once every child has ended: whoever waits on the parent (flush) learns
   * how it ended only then, through the children's `undelivered` counts.
   */
  split(parent: Batch, children: readonly Batch[]): () => void {
    const waiters = parent.waiters
    parent.waiters = undefined
    for (const child of children) this.#queue.track(child)
    this.#queue.finish(parent)
    return () => {
      if (waiters !== undefined) for (const w of waiters) w()
    }
  }

  /** Ends an undelivered batch; false if it had already ended. */
  #end(batch: Batch, why: string): boolean {
    if (!this.#queue.finish(batch)) return false
    // On it and on every batch it was split from, so a flush waiting on one of those knows.
    for (let b: Batch | undefined = batch; b !== undefined; b = b.parent) b.undelivered += batch.entries
    batch.controller.abort(new LokiAbortError(why))
    return true
  }
}
