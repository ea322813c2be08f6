import { DIGITS } from './validate.js'

/** Scratch result of `readTimestamp`, reused so the hot path does not allocate. */
export interface TimestampParts {
  ms: number
  ns: number
  /** True when the caller gave sub-millisecond precision: such timestamps are kept as given. */
  precise: boolean
}

const NS_PER_MS = 1_000_000n

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
    if (ts.length <= 20 && DIGITS.test(ts)) {
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

// Fractions finer than a millisecond, which Date.parse would cut off (pino's isoTimeNano).
const ISO_FINE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{4,9})(Z|[+-]\d{2}:?\d{2})$/
/**
 * The latest time Loki can store: it keeps timestamps as signed 64-bit nanoseconds (year 2262).
 * A later one is no time at all, whatever the record says, and means now like any other junk.
 */
const MAX_NS = 2n ** 63n - 1n
const MAX_MS = Number(MAX_NS / 1_000_000n)

/** Epoch ms if Loki can hold it, else undefined. */
function inRangeMs(ms: number): number | undefined {
  return ms >= 0 && ms <= MAX_MS ? ms : undefined
}

/** Epoch ns as digits if Loki can hold it, else undefined. */
function inRangeNs(ns: bigint): string | undefined {
  return ns >= 0n && ns <= MAX_NS ? ns.toString() : undefined
}

/**
 * A record's time as something `push()` accepts, or undefined (the client then uses now).
 * Numbers are read by magnitude: below 1e11 seconds (pino's unixTime), below 1e14 milliseconds,
 * below 1e17 microseconds, above that nanoseconds. Strings: the same for digits, else ISO 8601
 * (or anything Date.parse reads), keeping up to nanosecond precision. A time before 1970 or
 * after what Loki can store (2262-04-11) is unusable: undefined, so the entry is stamped now
 * instead of being refused.
 */
export function readRecordTime(v: unknown): number | string | undefined {
  if (typeof v === 'number') {
    if (!(v >= 0) || !Number.isFinite(v)) return undefined
    if (v < 1e11) return inRangeMs(v * 1000)
    if (v < 1e14) return inRangeMs(v)
    if (v < 1e17) return inRangeMs(v / 1000)
    return inRangeNs(BigInt(Math.trunc(v)))
  }
  if (typeof v === 'string') {
    // Beyond 40 digits it cannot be in range whatever its leading zeros; BigInt need not read it.
    if (DIGITS.test(v)) return v.length <= 17 ? readRecordTime(Number(v)) : v.length <= 40 ? inRangeNs(BigInt(v)) : undefined
    const fine = ISO_FINE.exec(v)
    if (fine !== null) {
      const ms = Date.parse(fine[1]! + fine[3]!)
      if (!(ms >= 0)) return undefined
      return inRangeNs(BigInt(ms) * 1_000_000n + BigInt(fine[2]!.padEnd(9, '0')))
    }
    return inRangeMs(Date.parse(v))
  }
  if (v instanceof Date) return inRangeMs(v.getTime())
  return undefined
}
