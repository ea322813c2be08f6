/*
 * Process warnings, Node's channel for a library to say something went wrong without an event
 * anyone must listen to: the client reports lost entries this way only while nobody listens to
 * 'drop', so a user who handles drops hears of them once, and one who does not still hears.
 */
import type { SpoolEvent } from './events.js'
import type { DropReason } from './types.js'

/** `code` of the warning that reports entries dropped while the client had no 'drop' listener. */
export const DROPPED_WARNING = 'LOKIWIRE_DROPPED'
/** `code` of the warning that reports spool problems while the client had no 'spool' listener. */
export const SPOOL_WARNING = 'LOKIWIRE_SPOOL'
/** `code` of the warning, once per client, that an entry had no stream labels at all. */
export const NO_LABELS_WARNING = 'LOKIWIRE_NO_LABELS'
/** At most one drop (or spool) warning per client in this period; what comes between is summed into the next. */
export const DROPPED_WARNING_INTERVAL_MS = 10_000

/**
 * Emits now, synchronously, what `process.emitWarning` would emit on the next tick: in an 'exit'
 * listener there is no next tick. The default listener prints it to stderr the usual way.
 */
function emitWarningNow(message: string, code: string): void {
  const warning = new Error(message)
  warning.name = 'Warning'
  ;(warning as Error & { code: string }).code = code
  process.emit('warning', warning)
}

/** `buffer_full: 2, rejected: 1` */
function byReason(counts: Readonly<Record<string, number | undefined>>): string {
  return Object.entries(counts).map(([r, n]) => `${r}: ${n}`).join(', ')
}

/** `dropped 3 log entries (buffer_full: 2, rejected: 1)`: the words every drop report uses. */
export function droppedSummary(dropped: Partial<Record<DropReason, number>>, total: number): string {
  return `dropped ${total} log ${total === 1 ? 'entry' : 'entries'} (${byReason(dropped)})`
}

/**
 * Sums problems by reason and reports them as one warning per interval: a burst of them becomes
 * one line on stderr, and a long outage one line every DROPPED_WARNING_INTERVAL_MS.
 */
class SummedWarnings<R extends string> {
  readonly #code: string
  readonly #describe: (counts: Partial<Record<R, number>>, total: number) => string
  #pending: Partial<Record<R, number>> = {}
  #total = 0
  #lastError: string | undefined
  #lastAt = Number.NEGATIVE_INFINITY
  #timer: NodeJS.Timeout | undefined

  constructor(code: string, describe: (counts: Partial<Record<R, number>>, total: number) => string) {
    this.#code = code
    this.#describe = describe
  }

  /** Counts `n` problems nobody listened to; the warning goes out at once or when the interval ends. */
  note(reason: R, n: number, error: string | undefined): void {
    this.#pending[reason] = (this.#pending[reason] ?? 0) + n
    this.#total += n
    if (error !== undefined) this.#lastError = error
    if (this.#timer !== undefined) return
    // Even when due now, a timer: a burst pushed in one go becomes one warning, not two.
    this.#timer = setTimeout(() => this.#report(false), Math.max(0, this.#lastAt + DROPPED_WARNING_INTERVAL_MS - Date.now()))
    // Never what keeps a process alive; pending counts are reported at close and at exit.
    this.#timer.unref()
  }

  /** Reports what is pending now. `sync` for the process 'exit' event, where no tick follows. */
  flush(sync: boolean): void {
    this.#report(sync)
  }

  #report(sync: boolean): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#total === 0) return
    const message = this.#describe(this.#pending, this.#total) + (this.#lastError === undefined ? '' : `; last error: ${this.#lastError}`)
    this.#pending = {}
    this.#total = 0
    this.#lastError = undefined
    this.#lastAt = Date.now()
    try {
      if (sync) emitWarningNow(message, this.#code)
      else process.emitWarning(message, { code: this.#code })
    } catch {
      // A 'warning' listener that throws (or --throw-deprecation gone wrong) must not reach the host.
    }
  }
}

/** Drops reported while the client has no 'drop' listener. */
export class DropWarnings extends SummedWarnings<DropReason> {
  constructor() {
    super(DROPPED_WARNING, (counts, total) => `lokiwire ${droppedSummary(counts, total)} and the client has no 'drop' listener`)
  }
}

/**
 * Spool problems reported while the client has no 'spool' listener. Most also show as drops
 * (a batch the spool could not take keeps its reason), but a corrupt or unreadable record lost
 * entries no drop counts: without this, only `stats().spool.errors` would know.
 */
export class SpoolWarnings extends SummedWarnings<SpoolEvent['reason']> {
  constructor() {
    super(SPOOL_WARNING, (counts, total) => {
      return `lokiwire spool reported ${total} ${total === 1 ? 'problem' : 'problems'} (${byReason(counts)}) and the client has no 'spool' listener`
    })
  }
}

/** The warning for an entry that reached the client with no stream labels at all. */
export function warnNoLabels(): void {
  try {
    process.emitWarning(
      'lokiwire dropped an entry with no stream labels (invalid_labels): give the client default labels, e.g. ' +
        "new LokiClient({ url, labels: { app: 'api' } }), or every entry labels with non-empty values. Reported once per client.",
      { code: NO_LABELS_WARNING },
    )
  } catch {
    // As above.
  }
}
