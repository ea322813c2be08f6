import { readRecordTime, stringValue } from '../adapters/mapping.js'
import { metadataValue } from '../metadata.js'
import type { LogEntry } from '../types.js'

/*
 * One stdin line -> one LogEntry. The line itself always goes to Loki byte for byte as it was
 * read; parsing only decides its timestamp, its level label and any lifted labels or metadata.
 * A line that is not a JSON object is shipped as plain text, never dropped for its shape.
 */

export type InputFormat = 'auto' | 'text'

export interface LineMapperOptions {
  /** `auto`: JSON objects (pino, bunyan, winston) are read; `text`: every line is plain text. */
  format: InputFormat
  /** Record fields lifted into stream labels. */
  jsonLabels: readonly string[]
  /** Record fields sent as structured metadata. */
  jsonMetadata: readonly string[]
}

/** pino and bunyan share these numbers; custom levels fall into the band below them. */
const LEVEL_BANDS: ReadonlyArray<readonly [number, string]> = [
  [60, 'fatal'],
  [50, 'error'],
  [40, 'warn'],
  [30, 'info'],
  [20, 'debug'],
]

const ANSI = /\x1b\[[0-9;]*m/g
const MAX_LEVEL_CHARS = 32

export function levelName(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) {
    for (const [min, name] of LEVEL_BANDS) if (v >= min) return name
    return 'trace'
  }
  if (typeof v === 'string') {
    // winston's colorize() wraps the level in escape codes; the label should not carry them.
    const s = v.replace(ANSI, '').trim().toLowerCase()
    if (s === '' || s.length > MAX_LEVEL_CHARS) return undefined
    if (/^\d+$/.test(s)) return levelName(Number(s))
    return s
  }
  return undefined
}

const TIME_FIELDS = ['time', 'timestamp', '@timestamp'] as const

function labelValue(v: unknown): string | undefined {
  // Objects and arrays would make one stream per distinct value: not a label.
  const s = stringValue(v)
  return s === '' ? undefined : s
}

export function createLineMapper(options: LineMapperOptions): (line: string) => LogEntry {
  const labelFields = options.jsonLabels.filter((f) => f !== 'level')
  const metadataFields = options.jsonMetadata
  const parse = options.format === 'auto'

  return (line: string): LogEntry => {
    if (!parse || line.charCodeAt(firstNonSpace(line)) !== 0x7b /* { */) return { line }
    let record: unknown
    try {
      record = JSON.parse(line)
    } catch {
      return { line }
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) return { line }
    const r = record as Record<string, unknown>

    const entry: { line: string; timestamp?: LogEntry['timestamp']; labels?: Record<string, string>; metadata?: Record<string, string> } = { line }
    for (const f of TIME_FIELDS) {
      if (r[f] === undefined) continue
      const ts = readRecordTime(r[f])
      if (ts !== undefined) entry.timestamp = ts
      break
    }

    let labels: Record<string, string> | undefined
    const level = levelName(r.level)
    if (level !== undefined) labels = { level }
    for (const f of labelFields) {
      const v = labelValue(r[f])
      if (v !== undefined) (labels ??= {})[f] = v
    }
    if (labels !== undefined) entry.labels = labels

    let metadata: Record<string, string> | undefined
    for (const f of metadataFields) {
      const v = metadataValue(r[f])
      if (v !== undefined) (metadata ??= {})[f] = v
    }
    if (metadata !== undefined) entry.metadata = metadata
    return entry
  }
}

function firstNonSpace(s: string): number {
  let i = 0
  while (i < s.length && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++
  return i
}
