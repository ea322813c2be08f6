/** Scratch result of `readTimestamp`, reused so the hot path does not allocate. */
export interface TimestampParts {
  ms: number
  ns: number
  /** True when the caller gave sub-millisecond precision: such timestamps are kept as given. */
  precise: boolean
}

const NS_PER_MS = 1_000_000n
const DIGITS = /^\d{1,20}$/

/**
 * Reads a push timestamp into `out`: epoch milliseconds (number, fractions kept as
 * nanoseconds), Date, epoch nanoseconds (bigint or decimal string), or an ISO 8601 string.
 * Returns false for anything unusable (NaN, negative, unparseable).
 */
export function readTimestamp(ts: unknown, out: TimestampParts): boolean {
  if (typeof ts === 'number') {
    if (!(ts >= 0) || !Number.isFinite(ts)) return false
    const ms = Math.floor(ts)
    out.ms = ms
    out.ns = Math.round((ts - ms) * 1e6) % 1_000_000
    out.precise = out.ns !== 0
    return true
  }
  if (ts instanceof Date) {
    const ms = ts.getTime()
    if (!(ms >= 0)) return false
    out.ms = ms
    out.ns = 0
    out.precise = false
    return true
  }
  if (typeof ts === 'bigint') {
    if (ts < 0n) return false
    out.ms = Number(ts / NS_PER_MS)
    out.ns = Number(ts % NS_PER_MS)
    out.precise = true
    return true
  }
  if (typeof ts === 'string') {
    if (DIGITS.test(ts)) {
      out.ms = ts.length > 6 ? Number(ts.slice(0, -6)) : 0
      out.ns = Number(ts.slice(-6))
      out.precise = true
      return true
    }
    const ms = Date.parse(ts)
    if (!(ms >= 0)) return false
    out.ms = ms
    out.ns = 0
    out.precise = false
    return true
  }
  return false
}
