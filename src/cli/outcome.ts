import type { LokiClientStats } from '../client/client.js'
import { DROP_REASONS } from '../model/types.js'
import { count, plural } from './metrics.js'

/** How the input of `lokiwire push` ended. */
export type Ending = { kind: 'eof' } | { kind: 'signal'; signal: NodeJS.Signals } | { kind: 'error'; message: string }

/** What decides the exit status of `lokiwire push`, gathered once the client is closed. */
export interface RunOutcome {
  stats: Pick<LokiClientStats, 'sent' | 'dropped' | 'truncated' | 'spool'>
  ending: Ending
  /** The last error message the client reported (a failed attempt or a drop), one line. */
  lastError: string | undefined
  closeTimeoutMs: number
  /** Lines the splitter cut for having no newline within maxLineBytes. */
  cutLines: number
  maxLineBytes: number
  /** Progress was shown: a success gets a closing line too. */
  verbose: boolean
}

/** Exit status 0: every line delivered; 1: lines dropped or the input failed; 3: lines wait in the spool. */
export type ExitStatus = 0 | 1 | 3

/**
 * The exit status and the closing line on stderr. Drops come first (they are losses), then a
 * failed input, then a spool still holding lines: kept, not lost, a distinct status so scripts can
 * tell "retry later" from "gone".
 */
export function outcome(o: RunOutcome): { status: ExitStatus; message: string | undefined } {
  const s = o.stats
  if (s.dropped.total > 0) {
    const reasons = DROP_REASONS.filter((r) => s.dropped[r] > 0).map((r) => `${r}: ${count(s.dropped[r])}`)
    const why = o.lastError ? `; last error: ${o.lastError}` : s.dropped.close_timeout > 0 ? `; no answer from Loki within --close-timeout (${o.closeTimeoutMs} ms)` : ''
    return { status: 1, message: `lokiwire: ${plural(s.dropped.total, 'line')} dropped (${reasons.join(', ')})${why}\n` }
  }
  if (o.ending.kind === 'error') {
    return { status: 1, message: `lokiwire: ${o.ending.message}; the ${plural(s.sent.entries, 'line')} read before it were delivered\n` }
  }
  if (s.spool.bytes > 0) {
    return { status: 3, message: `lokiwire: ${plural(s.spool.written, 'line')} went to the spool this run; the spool holds ${count(s.spool.bytes)} bytes for the next run with the same --spool\n` }
  }
  if (!o.verbose) return { status: 0, message: undefined }
  const cut = Math.max(s.truncated, o.cutLines)
  const notes = cut > 0 ? `; ${plural(cut, 'line')} over ${o.maxLineBytes} bytes cut` : ''
  return { status: 0, message: `lokiwire: ${plural(s.sent.entries, 'line')} delivered in ${plural(s.sent.batches, 'batch', 'batches')}${notes}\n` }
}

/** An error message as one line of at most 300 characters, for the closing line. */
export function oneLine(message: string): string {
  return message.replace(/\s+/g, ' ').trim().slice(0, 300)
}

/** The progress line: what a watching operator needs to tell flowing from stuck. */
export function progressLine(s: LokiClientStats, linesPerSecond: number, read: number, paused: boolean): string {
  let line = `lokiwire: ${count(linesPerSecond)} lines/s  read ${count(read)}  sent ${count(s.sent.entries)}  buffered ${count(s.buffered.entries + s.inFlight.entries)}  retries ${count(s.retries)}  dropped ${count(s.dropped.total)}  connections ${s.connections}`
  if (s.breaker !== 'closed') line += `  breaker ${s.breaker}`
  if (paused) line += '  (input paused: buffer full)'
  return line
}
