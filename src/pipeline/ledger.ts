import type { EventEmitter } from 'node:events'
import { LokiEntryError } from '../model/errors.js'
import type { DropEvent, FailedEvent, LokiClientEvents, RetryEvent, SentEvent, SpoolEvent } from '../model/events.js'
import { DROP_REASONS, type DropReason, type FailureClass } from '../model/types.js'
import { DropWarnings, SpoolWarnings } from '../model/warnings.js'

export type DropCounts = { total: number } & Record<DropReason, number>
export type FailureCounts = { total: number } & Record<FailureClass, number>

function emptyDrops(): DropCounts {
  const out = { total: 0 } as DropCounts
  for (const r of DROP_REASONS) out[r] = 0
  return out
}

/**
 * The counters behind `stats()` and the events that report them, in one place: every count is
 * made next to the event that tells it, so the two cannot disagree. Events go out through
 * `emit()`, which never lets a listener's exception into delivery; drops nobody listens for
 * become process warnings.
 */
export class Ledger {
  pushed = 0
  readonly sent = { entries: 0, bytes: 0, batches: 0 }
  readonly dropped: DropCounts = emptyDrops()
  truncated = 0
  readonly metadata = { renamed: 0, cut: 0 }
  retries = 0
  readonly failed: FailureCounts = { total: 0, status4xx: 0, status429: 0, status5xx: 0, network: 0, timeout: 0 }
  listenerErrors = 0
  readonly #events: EventEmitter<LokiClientEvents>
  readonly #warnings = new DropWarnings()
  readonly #spoolWarnings = new SpoolWarnings()

  constructor(events: EventEmitter<LokiClientEvents>) {
    this.#events = events
  }

  /** A batch Loki accepted. */
  delivered(e: SentEvent): void {
    this.sent.entries += e.entries
    this.sent.bytes += e.bytes
    this.sent.batches++
    this.emit('sent', e)
  }

  /** One attempt that failed, under the class the transport gave it. */
  attemptFailed(e: FailedEvent): void {
    this.failed.total++
    this.failed[e.failure]++
    this.emit('failed', e)
  }

  retry(e: RetryEvent): void {
    this.retries++
    this.emit('retry', e)
  }

  /** Entries given up on after push() accepted them. */
  drop(e: DropEvent): void {
    this.dropped[e.reason] += e.entries
    this.dropped.total += e.entries
    if (this.#events.listenerCount('drop') > 0) this.emit('drop', e)
    else this.#warnings.note(e.reason, e.entries, e.error?.message)
  }

  /** One entry push() refused; `field` and `message` say what was wrong with it, when something was. */
  refuse(reason: DropReason, field?: string, message?: string): false {
    this.dropped[reason]++
    this.dropped.total++
    // The error is built only for someone who reads it: a flood of bad entries stays cheap.
    if (this.#events.listenerCount('drop') > 0) {
      this.emit('drop', field === undefined ? { reason, entries: 1 } : { reason, entries: 1, error: new LokiEntryError(field, message!) })
    } else {
      this.#warnings.note(reason, 1, field === undefined ? undefined : LokiEntryError.describe(field, message!))
    }
    return false
  }

  /** A spool problem (counted by the spool's owner): an event, or a warning when nobody listens. */
  spool(e: SpoolEvent): void {
    if (this.#events.listenerCount('spool') > 0) this.emit('spool', e)
    else {
      const detail = e.error instanceof Error ? e.error.message : e.file === undefined ? undefined : `${e.reason} in ${e.file}`
      this.#spoolWarnings.note(e.reason, 1, detail)
    }
  }

  /** Reports drops and spool problems not yet reported by a warning; `sync` at process exit, where no timer runs. */
  flushWarnings(sync: boolean): void {
    this.#warnings.flush(sync)
    this.#spoolWarnings.flush(sync)
  }

  emit<K extends keyof LokiClientEvents>(name: K, ...args: LokiClientEvents[K]): void {
    const events = this.#events
    if (events.listenerCount(name) === 0) return
    try {
      ;(events.emit as (n: K, ...a: LokiClientEvents[K]) => boolean).call(events, name, ...args)
    } catch {
      // A throwing listener must not break delivery or reach the host as an exception.
      this.listenerErrors++
    }
  }
}
