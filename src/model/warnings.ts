/*
 * Process warnings, Node's channel for a library to say something went wrong without an event
 * anyone must listen to: the client reports lost entries this way only while nobody listens to
 * 'drop', so a user who handles drops hears of them once, and one who does not still hears.
 */
import type { DropReason } from './types.js'

/** `code` of the warning that reports entries dropped while the client had no 'drop' listener. */
export const DROPPED_WARNING = 'LOKIWIRE_DROPPED'
/** `code` of the warning, once per client, that an entry had no stream labels at all. */
export const NO_LABELS_WARNING = 'LOKIWIRE_NO_LABELS'
/** At most one drop warning per client in this period; the drops between are summed into the next. */
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

/** `dropped 3 log entries (buffer_full: 2, rejected: 1)`: the words every drop report uses. */
export function droppedSummary(dropped: Partial<Record<DropReason, number>>, total: number): string {
  const reasons = Object.entries(dropped).map(([r, n]) => `${r}: ${n}`).join(', ')
  return `dropped ${total} log ${total === 1 ? 'entry' : 'entries'} (${reasons})`
}

/** Sums drops by reason and reports them as one warning per interval. */
export class DropWarnings {
  #pending: Partial<Record<DropReason, number>> = {}
  #total = 0
  #lastError: string | undefined
  #lastAt = Number.NEGATIVE_INFINITY
  #timer: NodeJS.Timeout | undefined

  /** Counts a drop nobody listened to; the warning goes out at once or when the interval ends. */
  note(reason: DropReason, entries: number, error: string | undefined): void {
    this.#pending[reason] = (this.#pending[reason] ?? 0) + entries
    this.#total += entries
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
    const message = `lokiwire ${droppedSummary(this.#pending, this.#total)} and the client has no 'drop' listener` +
      (this.#lastError === undefined ? '' : `; last error: ${this.#lastError}`)
    this.#pending = {}
    this.#total = 0
    this.#lastError = undefined
    this.#lastAt = Date.now()
    try {
      if (sync) emitWarningNow(message, DROPPED_WARNING)
      else process.emitWarning(message, { code: DROPPED_WARNING })
    } catch {
      // A 'warning' listener that throws (or --throw-deprecation gone wrong) must not reach the host.
    }
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
