/*
 * Turning one logger record (a pino JSON object, a winston info object) into a LogEntry. Both
 * adapters share this so a field lifted into a label or into metadata behaves the same way
 * whichever logger produced it.
 */
import { LokiOptionError } from '../errors.js'
import { metadataValue, safeJson } from '../metadata.js'
import type { LokiClientOptions } from '../options.js'
import type { LogEntry } from '../types.js'

export { safeJson }

/** Where the record's level goes. */
export type LevelPlacement = 'label' | 'metadata' | 'none'

/** What becomes the Loki line. */
export type LineFormat = 'record' | 'message' | 'rest'

/** Options shared by the pino and winston adapters, on top of the client's own. */
export interface RecordMappingOptions {
  /**
   * Record fields whose values become stream labels, e.g. `['service', 'env']`. Each distinct
   * combination of values is a separate Loki stream: lift only fields with a handful of values
   * (service, environment, region), never ids, paths, user names or anything unbounded, or Loki
   * will refuse streams once its per-tenant stream limit is hit. Strings, numbers and booleans
   * are used (as strings); objects, arrays and empty strings are skipped. Nothing is lifted
   * unless listed here. A dotted path reaches into nested objects (`'req.method'`, used when the
   * record has no field of that literal name); its dots become underscores in the label name
   * (`req_method`). @default []
   */
  labelsFrom?: readonly string[]
  /**
   * Record fields sent as structured metadata, e.g. `['trace_id', 'span_id', 'req_id']`: stored
   * beside the line, queryable, and free of the stream-cardinality cost of labels. Values are
   * stringified (objects as JSON); `null` and `undefined` are skipped. Needs Loki 3 with
   * `allow_structured_metadata`. Dotted paths work as in `labelsFrom` (`'req.id'` is sent as
   * `req_id`). @default []
   */
  metadataFrom?: readonly string[]
  /**
   * Where the level name goes: the `level` stream label (one stream per level and label set, what
   * Grafana's level colouring expects), `level` structured metadata (fewer streams), or nowhere
   * beyond the line itself. A line with no level the adapter can name gets the label `unknown`.
   * With anything but `'label'`, the client's `labels` must not be empty. @default 'label'
   */
  levelAs?: LevelPlacement
  /**
   * The Loki line: `'record'` the whole record as the logger serialised it; `'message'` only the
   * message (the whole record when it has none); `'rest'` the record as JSON without the fields
   * lifted into labels or metadata, the level included when `levelAs` is not `'none'`.
   * @default 'record'
   */
  line?: LineFormat
  /**
   * Where the adapter prints its own reports of lost entries (a summary a second at most) and of
   * the circuit breaker opening and closing: stderr, or nowhere. The same reports are events
   * either way ('lokiwire:drop' / 'lokiwire:breaker' on the pino stream, or on pino's transport
   * stream in the main thread; 'warn' on the winston transport), and every loss is counted in
   * `client.stats()`. They never go through the logger being shipped: a failing Loki must not
   * feed reports of its failure back into the pipeline that is failing. @default 'stderr'
   */
  onFailure?: 'stderr' | 'silent'
}

export const MAPPING_KEYS: readonly string[] = ['labelsFrom', 'metadataFrom', 'levelAs', 'line', 'onFailure']

export interface ResolvedMapping {
  labelsFrom: readonly string[]
  metadataFrom: readonly string[]
  levelAs: LevelPlacement
  line: LineFormat
  onFailure: 'stderr' | 'silent'
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function fieldList(name: string, v: unknown, levelKey: string): readonly string[] {
  if (v === undefined) return []
  if (!Array.isArray(v) || !v.every((f) => typeof f === 'string' && f !== '')) {
    throw new LokiOptionError(name, 'expected an array of non-empty field names')
  }
  const bad = (v as string[]).find((f) => f.split('.').includes(''))
  if (bad !== undefined) throw new LokiOptionError(name, `"${bad}" has an empty segment in its dotted path`)
  // The level has its own option; lifting it here as well would send the raw value (pino's 30).
  if (v.includes(levelKey)) throw new LokiOptionError(name, `"${levelKey}" is placed by the levelAs option`)
  return [...new Set(v as string[])]
}

function oneOf<T extends string>(name: string, v: unknown, def: T, allowed: readonly T[]): T {
  if (v === undefined) return def
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw new LokiOptionError(name, `expected one of ${allowed.map((a) => `'${a}'`).join(', ')}`)
  }
  return v as T
}

/**
 * Splits adapter options from client options: the client refuses keys it does not know, so the
 * adapter's own (and the logger's) must be taken out before it sees them.
 */
export function splitOptions(
  input: unknown,
  adapterKeys: readonly string[],
): { client: LokiClientOptions; adapter: Record<string, unknown> } {
  if (!isObject(input)) throw new LokiOptionError('options', 'expected an options object')
  const client: Record<string, unknown> = {}
  const adapter: Record<string, unknown> = {}
  for (const key of Object.keys(input)) {
    if (adapterKeys.includes(key)) adapter[key] = input[key]
    else client[key] = input[key]
  }
  return { client: client as unknown as LokiClientOptions, adapter }
}

export function resolveMapping(o: Record<string, unknown>, levelKey: string): ResolvedMapping {
  const labelsFrom = fieldList('labelsFrom', o.labelsFrom, levelKey)
  const metadataFrom = fieldList('metadataFrom', o.metadataFrom, levelKey)
  const both = labelsFrom.find((f) => metadataFrom.includes(f))
  if (both !== undefined) throw new LokiOptionError('metadataFrom', `"${both}" is already lifted by labelsFrom`)
  return {
    labelsFrom,
    metadataFrom,
    levelAs: oneOf('levelAs', o.levelAs, 'label', ['label', 'metadata', 'none']),
    line: oneOf('line', o.line, 'record', ['record', 'message', 'rest']),
    onFailure: oneOf('onFailure', o.onFailure, 'stderr', ['stderr', 'silent']),
  }
}

/** An entry with no stream labels is refused by the client: make that a configuration error. */
export function requireStream(client: LokiClientOptions, levelAs: LevelPlacement): void {
  const labels: unknown = client.labels
  const hasLabels = isObject(labels) && Object.values(labels).some((v) => v !== '')
  if (!hasLabels && levelAs !== 'label') {
    throw new LokiOptionError(
      'labels',
      `with levelAs '${levelAs}' at least one static label is needed (e.g. { app: 'api' }) so every entry has a stream`,
    )
  }
}

export function stringValue(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return v
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v)
    default:
      return undefined
  }
}

const DIGITS = /^\d+$/
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

/** What the adapter knows about one record beyond its fields. */
export interface RecordParts {
  /** Level name, or undefined when the record has none the adapter can name. */
  level: string | undefined
  /** The record as the logger serialised it, when it did (pino's line, winston's MESSAGE). */
  serialized: string | undefined
  /** Raw time value from the record; undefined means now. */
  time: unknown
}

/**
 * Maps records to entries under one set of options. Label objects for records that lift no
 * fields are cached per level, so the common case allocates only the entry itself.
 */
/** A field to lift: its name as given, the path into nested objects, and the name it is sent as. */
interface Field {
  readonly spec: string
  /** Set for a dotted name: used when the record has no field of that literal name. */
  readonly path: readonly string[] | undefined
  /** Dots become underscores: a valid Loki label name for the usual field names. */
  readonly name: string
}

function compileField(spec: string): Field {
  return { spec, path: spec.includes('.') ? spec.split('.') : undefined, name: spec.replaceAll('.', '_') }
}

function fieldValue(record: Record<string, unknown>, f: Field): unknown {
  if (f.path === undefined || Object.hasOwn(record, f.spec)) return record[f.spec]
  let v: unknown = record
  for (const key of f.path) {
    if (!isObject(v) || !Object.hasOwn(v, key)) return undefined
    v = v[key]
  }
  return v
}

/**
 * `obj` without the field at `path[i..]`, copying only the objects on the way (the record is
 * shared: winston hands the same info object to every transport). A parent left empty goes too.
 */
function withoutPath(obj: Record<string, unknown>, path: readonly string[], i: number): Record<string, unknown> {
  const key = path[i]!
  if (!Object.hasOwn(obj, key)) return obj
  const copy = { ...obj }
  if (i === path.length - 1) {
    delete copy[key]
    return copy
  }
  const child = obj[key]
  if (!isObject(child)) return obj
  const next = withoutPath(child, path, i + 1)
  if (next === child) return obj
  if (Object.keys(next).length === 0) delete copy[key]
  else copy[key] = next
  return copy
}

export class RecordMapper {
  readonly #o: ResolvedMapping
  readonly #levelKey: string
  readonly #levelLabels = new Map<string, Readonly<Record<string, string>>>()
  readonly #liftsFields: boolean
  readonly #labelFields: readonly Field[]
  readonly #metadataFields: readonly Field[]

  constructor(mapping: ResolvedMapping, levelKey: string) {
    this.#o = mapping
    this.#levelKey = levelKey
    this.#liftsFields = mapping.labelsFrom.length > 0 || mapping.metadataFrom.length > 0
    this.#labelFields = mapping.labelsFrom.map(compileField)
    this.#metadataFields = mapping.metadataFrom.map(compileField)
  }

  get options(): ResolvedMapping {
    return this.#o
  }

  /**
   * Whether map() looks at the record's fields. It does not when nothing is lifted and the line
   * is the serialised record: a caller holding that text then need not build the record at all,
   * only find the level and the time.
   */
  get readsRecord(): boolean {
    return this.#liftsFields || this.#o.line !== 'record'
  }

  /** `record` is read, never modified: winston hands the same info object to every transport. */
  map(record: Record<string, unknown>, parts: RecordParts, messageKey: string): LogEntry {
    const o = this.#o
    // Loki's own name for a line without a level; it also keeps the stream label set non-empty.
    const level = parts.level ?? (o.levelAs === 'label' ? 'unknown' : undefined)
    let labels: Record<string, string> | undefined
    let metadata: Record<string, string> | undefined
    // Fields that did go into labels or metadata: the only ones a 'rest' line leaves out.
    let lifted: Field[] | undefined

    if (!this.#liftsFields) {
      if (level !== undefined) {
        if (o.levelAs === 'label') labels = this.#labelsForLevel(level)
        else if (o.levelAs === 'metadata') metadata = { level }
      }
    } else {
      if (level !== undefined) {
        if (o.levelAs === 'label') labels = { level }
        else if (o.levelAs === 'metadata') metadata = { level }
      }
      for (const f of this.#labelFields) {
        const v = stringValue(fieldValue(record, f))
        if (v === undefined || v === '') continue
        ;(labels ??= {})[f.name] = v
        ;(lifted ??= []).push(f)
      }
      for (const f of this.#metadataFields) {
        // The client's own rule, so push() and the adapters store a field the same way.
        const v = metadataValue(fieldValue(record, f))
        if (v === undefined) continue
        ;(metadata ??= {})[f.name] = v
        ;(lifted ??= []).push(f)
      }
    }

    let line: string
    if (o.line === 'record') {
      line = parts.serialized ?? safeJson(record)
    } else if (o.line === 'message') {
      const msg = record[messageKey]
      line = typeof msg === 'string' ? msg : (parts.serialized ?? safeJson(record))
    } else {
      line = this.#rest(record, lifted ?? [])
    }

    const entry: LogEntry = { line }
    if (labels !== undefined) entry.labels = labels
    if (metadata !== undefined) entry.metadata = metadata
    const ts = parts.time === undefined ? undefined : readRecordTime(parts.time)
    if (ts !== undefined) entry.timestamp = ts
    return entry
  }

  #labelsForLevel(level: string): Readonly<Record<string, string>> {
    let labels = this.#levelLabels.get(level)
    if (labels === undefined) {
      labels = Object.freeze({ level })
      // Levels are a small fixed set; the bound only guards against a logger inventing them.
      if (this.#levelLabels.size < 64) this.#levelLabels.set(level, labels)
    }
    return labels
  }

  /** The record without its level and the lifted fields; what could not be lifted stays, so nothing is lost. */
  #rest(record: Record<string, unknown>, lifted: readonly Field[]): string {
    let rest: Record<string, unknown> = {}
    for (const key of Object.keys(record)) {
      if (key === this.#levelKey && this.#o.levelAs !== 'none') continue
      rest[key] = record[key]
    }
    for (const f of lifted) {
      // The same choice fieldValue() made: a literal key first, then the path.
      if (f.path === undefined || Object.hasOwn(record, f.spec)) delete rest[f.spec]
      else rest = withoutPath(rest, f.path, 0)
    }
    return safeJson(rest)
  }
}
