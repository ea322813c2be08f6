/*
 * One record -> one LogEntry, for every way a record reaches Loki: a pino line (the worker and
 * lokiStream), a winston info object, a line read by the CLI. A field lifted into a label or
 * into metadata, a level, a time, behave the same way whichever logger produced them.
 */
import { LokiOptionError } from '../model/errors.js'
import { levelName } from './levels.js'
import { metadataValue, safeJson } from '../model/metadata.js'
import type { LokiClientOptions } from '../model/options.js'
import { readRecordTime } from '../model/timestamp.js'
import type { LogEntry } from '../model/types.js'
import { bool, describe, isObject, keysOf, oneOf } from '../model/validate.js'

/** Where the record's level goes. */
export type LevelPlacement = 'label' | 'metadata' | 'none'

/** What becomes the Loki line: one of the layouts, or a function of the record and its level name. */
export type LineFormat = 'record' | 'message' | 'rest' | LineFunction

/**
 * Writes the Loki line of one record, given the level name it is sent under (undefined when it
 * has none). It must not modify the record. A throw, or a value that is not a string, ships the
 * record as `'record'` would.
 */
export type LineFunction = (record: Readonly<Record<string, unknown>>, level: string | undefined) => string

/** Where the entry's timestamp comes from. */
export type TimestampSource = 'record' | 'received'

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
   * lifted into labels or metadata, the level included when `levelAs` is not `'none'`; or a
   * function writing the line (see LineFunction; in-process only: pino cannot pass a function
   * to its worker). @default 'record'
   */
  line?: LineFormat
  /**
   * Fields left out of a `'record'` or `'rest'` line, e.g. `['hostname', 'pid']` (dotted paths as
   * in `labelsFrom`). The line is then written anew from the parsed record, with JSON.stringify.
   * @default []
   */
  lineWithout?: readonly string[]
  /**
   * Write arrays in a `'record'` or `'rest'` line as objects keyed by index: `["a","b"]` becomes
   * `{"0":"a","1":"b"}`, which LogQL's `| json` can reach (it skips arrays). The line is then
   * written anew from the parsed record. @default false
   */
  arraysAsObjects?: boolean
  /**
   * Level values sent in place of the level's name, keyed by the level as the record holds it
   * (pino's number, winston's name) or by its name: `{ 40: 'warning', fatal: 'critical' }`.
   * @default {}
   */
  levelMap?: Readonly<Record<string, string>>
  /**
   * The level sent for every level `levelMap` does not list, and for a record without one.
   * @default undefined: such levels keep their name, and a record without one is `unknown`
   */
  levelFallback?: string
  /**
   * A record field holding an object whose entries are each sent as structured metadata, by the
   * rule of `metadataFrom` (e.g. `'meta'` for `{ meta: { trace_id: 'abc' } }`). A dotted path
   * reaches into nested objects. Like the fields of `metadataFrom`, it stays in a `'record'` line
   * and leaves a `'rest'` one. @default undefined (none)
   */
  metadataObject?: string
  /**
   * The entry's timestamp: the record's own time, or the time the adapter received the record
   * (for records whose time is not to be trusted). @default 'record'
   */
  timestamp?: TimestampSource
  /**
   * Where the adapter prints its own reports of lost entries (a summary a second at most) and of
   * the circuit breaker opening and closing: stderr, or nowhere. The same reports are events
   * either way, 'lokiwire:drop' and 'lokiwire:breaker' (on the pino stream, or on pino's
   * transport stream in the main thread; on the winston transport, which also emits them as
   * 'warn' for the logger to pass on), and every loss is counted in
   * `client.stats()`. They never go through the logger being shipped: a failing Loki must not
   * feed reports of its failure back into the pipeline that is failing. @default 'stderr'
   */
  onFailure?: 'stderr' | 'silent'
}

export const MAPPING_KEYS = keysOf<RecordMappingOptions>()({
  labelsFrom: true, metadataFrom: true, levelAs: true, line: true, lineWithout: true, arraysAsObjects: true,
  levelMap: true, levelFallback: true, metadataObject: true, timestamp: true, onFailure: true,
})

export interface ResolvedMapping {
  labelsFrom: readonly string[]
  metadataFrom: readonly string[]
  levelAs: LevelPlacement
  line: LineFormat
  lineWithout: readonly string[]
  arraysAsObjects: boolean
  /** Undefined when no level is renamed and there is no fallback. */
  levelMap: Readonly<Record<string, string>> | undefined
  levelFallback: string | undefined
  metadataObject: string | undefined
  timestamp: TimestampSource
  onFailure: 'stderr' | 'silent'
}

/** The field holding a record's level, wherever it came from. */
const LEVEL_KEY = 'level'

function fieldList(name: string, v: unknown, liftsLevel = true): readonly string[] {
  if (v === undefined) return []
  if (!Array.isArray(v) || !v.every((f) => typeof f === 'string' && f !== '')) {
    throw new LokiOptionError(name, 'expected an array of non-empty field names')
  }
  const bad = (v as string[]).find((f) => f.split('.').includes(''))
  if (bad !== undefined) throw new LokiOptionError(name, `"${bad}" has an empty segment in its dotted path`)
  // The level has its own rule; lifting it here as well would send the raw value (pino's 30).
  if (liftsLevel && v.includes(LEVEL_KEY)) {
    throw new LokiOptionError(name, `"${LEVEL_KEY}" is not lifted: the level has its own place (levelAs; the level label by default)`)
  }
  return [...new Set(v as string[])]
}

function levelValue(name: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new LokiOptionError(name, `expected a non-empty string, got ${describe(v)}`)
  return v
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

export function resolveMapping(o: Record<string, unknown>): ResolvedMapping {
  const labelsFrom = fieldList('labelsFrom', o.labelsFrom)
  const metadataFrom = fieldList('metadataFrom', o.metadataFrom)
  const both = labelsFrom.find((f) => metadataFrom.includes(f))
  if (both !== undefined) throw new LokiOptionError('metadataFrom', `"${both}" is already lifted by labelsFrom`)
  return {
    labelsFrom,
    metadataFrom,
    levelAs: oneOf('levelAs', o.levelAs, 'label', ['label', 'metadata', 'none']),
    line: typeof o.line === 'function' ? (o.line as LineFunction) : oneOf<'record' | 'message' | 'rest'>('line', o.line, 'record', ['record', 'message', 'rest']),
    // The level is not in the line's way: leaving it out is the line's own business.
    lineWithout: fieldList('lineWithout', o.lineWithout, false),
    arraysAsObjects: bool('arraysAsObjects', o.arraysAsObjects, false),
    ...levelRenames(o.levelMap, o.levelFallback),
    metadataObject: o.metadataObject === undefined ? undefined : fieldList('metadataObject', [o.metadataObject])[0],
    timestamp: oneOf('timestamp', o.timestamp, 'record', ['record', 'received']),
    onFailure: oneOf('onFailure', o.onFailure, 'stderr', ['stderr', 'silent']),
  }
}

function levelRenames(map: unknown, fallback: unknown): Pick<ResolvedMapping, 'levelMap' | 'levelFallback'> {
  const levelFallback = fallback === undefined ? undefined : levelValue('levelFallback', fallback)
  if (map === undefined) return { levelMap: levelFallback === undefined ? undefined : {}, levelFallback }
  if (!isObject(map)) throw new LokiOptionError('levelMap', `expected an object of level -> name, got ${describe(map)}`)
  // A null prototype: a level called "constructor" must not find Object's.
  const levelMap: Record<string, string> = Object.create(null) as Record<string, string>
  for (const [k, v] of Object.entries(map)) levelMap[k] = levelValue(`levelMap.${k}`, v)
  return { levelMap, levelFallback }
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

/** A label value: strings, numbers, booleans and bigints; objects and arrays would be a stream per distinct value. */
function labelValue(v: unknown): string | undefined {
  const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : undefined
  return s === '' ? undefined : s
}

/**
 * How pino starts every line unless a timestamp function or formatters change it. Both numbers
 * are plain JSON integers (no sign, fraction, exponent or leading zero), which Number() reads
 * exactly as JSON.parse does.
 */
const PINO_HEAD = /\{"level":[1-9]\d*,"time":[1-9]\d*,/y
/**
 * JSON.parse keeps the last of repeated keys, and pino repeats them: a logged object's, a child
 * binding's or a mixin's own `level` or `time` is written after the head. A key may also be
 * spelt with \u escapes. Where any of these follows the head, the head is not to be trusted.
 * Global, so a search can start where the head ends (lastIndex) without slicing the line.
 */
const LATER_LEVEL_OR_TIME = /"(?:level|time)"|\\u/g
/**
 * Offsets in a line that matched PINO_HEAD, which is sticky: its lastIndex says where the head
 * ends. `{"level":` is 9 characters, `,"time":` 8.
 */
const LEVEL_AT = 9
const TIME_AFTER_LEVEL = 8
/** Digits summed one at a time stay exact below 2^53: 15 digits always do. */
const MAX_EXACT_DIGITS = 15

/** What readHead() and readPinoHead() return: one object, overwritten by the next call. */
const head = { level: 0, time: 0 }

/** The integer written in `line` from `from` up to (not including) `to`, as JSON.parse reads it. */
function digitsAt(line: string, from: number, to: number): number {
  // Longer ones (microsecond and nanosecond times) are rounded as Number() rounds them.
  if (to - from > MAX_EXACT_DIGITS) return Number(line.slice(from, to))
  let n = 0
  for (let i = from; i < to; i++) n = n * 10 + line.charCodeAt(i) - 48
  return n
}

/**
 * The level number and time a line declares in pino's head, for the fast path: undefined unless
 * the line is one JSON.parse would read to the same level and time (or one it refuses, whose
 * head is read anyway, see RecordMapper.mapParsed). Only the head and the keys after it are
 * looked at; the rest of the line is not checked, and need not be.
 *
 * Every pino line passes here, so it allocates nothing: no match array, no substrings. The
 * object returned is shared and valid until the next call. (Measured on a 120-character line:
 * 280 ns against 600 ns for exec(), slice() and Number().)
 */
export function readPinoHead(line: string): { readonly level: number; readonly time: number } | undefined {
  const read = readHead(line)
  if (read === undefined) return undefined
  LATER_LEVEL_OR_TIME.lastIndex = PINO_HEAD.lastIndex
  return LATER_LEVEL_OR_TIME.test(line) ? undefined : read
}

/** The level and time of pino's head, whatever follows it; PINO_HEAD.lastIndex is then where it ends. */
function readHead(line: string): { readonly level: number; readonly time: number } | undefined {
  PINO_HEAD.lastIndex = 0
  if (!PINO_HEAD.test(line)) return undefined
  const levelEnd = line.indexOf(',', LEVEL_AT)
  head.level = digitsAt(line, LEVEL_AT, levelEnd)
  // The head ends with the comma after the time.
  head.time = digitsAt(line, levelEnd + TIME_AFTER_LEVEL, PINO_HEAD.lastIndex - 1)
  return head
}

/** Where a source keeps what the mapping reads, beyond the options. */
export interface RecordSource {
  /**
   * Fields that may hold the record's time, in order: the first one present is read (an unusable
   * value there means now; the next field is not tried). pino: `time`; winston: `timestamp`;
   * the CLI: `time`, `timestamp`, `@timestamp`.
   */
  readonly timeKeys: readonly string[]
  /** Field holding the message, for `line: 'message'`. */
  messageKey: string
  /** Level numbers -> names (see levelName()). */
  levels: ReadonlyMap<number, string>
  /** Rules no public option spells, for a source that reproduces another library's entries. @default none */
  readonly layout?: LayoutRules
}

/**
 * Rules beyond the options, for a source that must store entries exactly as another library did
 * (lokiwire/winston-loki reproduces winston-loki 6). They act on the record's *rest*: its
 * own string-keyed fields, in the record's order, minus `restOmits`. Labels they make follow the
 * level and `labelsFrom`, in the order listed here, each over the ones before it; their values
 * follow the rule of `labelsFrom`, their metadata the rule of `metadataFrom`.
 */
export interface LayoutRules {
  /** Fields that are not part of the rest, e.g. `['label', 'labels', 'timestamp', 'message']`. */
  readonly restOmits: readonly string[]
  /** Fields lifted into labels under another name: `{ label: 'job' }` (winston's `label` as `job`). */
  readonly labelAliases?: Readonly<Record<string, string>>
  /** Every rest field becomes a label, but `level`: the level keeps its own rule. */
  readonly restAsLabels?: boolean
  /** A field holding an object whose entries all become labels, over every other label, the level's included. */
  readonly labelsField?: string
  /** Every rest field becomes structured metadata. */
  readonly restAsMetadata?: boolean
  /**
   * The line: `'message-rest'` is the message, a space, and the rest as JSON (nothing after the
   * space when the rest is empty), whatever `line` says. @default the `line` option
   */
  readonly line?: 'message-rest'
}

/**
 * How a module that stores entries as another library did (src/compat/) hands an adapter the
 * parts of its RecordSource that differ: under a symbol key of the adapter's options, which no
 * options reader sees (they read string keys) and no user sets by accident.
 */
export const SOURCE_RULES: unique symbol = Symbol('lokiwire.sourceRules')

/** What SOURCE_RULES may replace in an adapter's RecordSource. */
export type SourceRules = Partial<Pick<RecordSource, 'timeKeys' | 'layout'>>

/** The rules an adapter's options carry under SOURCE_RULES, if any. */
export function sourceRules(options: object): SourceRules | undefined {
  return (options as { [SOURCE_RULES]?: SourceRules })[SOURCE_RULES]
}

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

/**
 * Maps records to entries under one set of options. Label objects for records that lift no
 * fields are cached per level, so the common case allocates only the entry itself.
 */
/** What RecordMapper.mapHead() and mapSerialized() fill: an entry without metadata, as LokiClient.pushLine() takes it. */
export interface HeadEntry {
  line: string
  /** One frozen object per level (or undefined for the client's own labels), as LokiClient.pushLine() wants. */
  labels: Readonly<Record<string, string>> | undefined
  timestamp: number | string | undefined
}

export class RecordMapper {
  readonly #o: ResolvedMapping
  readonly #source: RecordSource
  readonly #levelLabels = new Map<string, Readonly<Record<string, string>>>()
  readonly #liftsFields: boolean
  readonly #labelFields: readonly Field[]
  readonly #metadataFields: readonly Field[]
  readonly #metadataObject: Field | undefined
  readonly #lineWithout: readonly Field[]
  /** A 'record' line must be written anew rather than shipped as the logger wrote it. */
  readonly #rewrite: boolean
  /** The head pino writes holds the time this source reads first. */
  readonly #headTime: boolean
  /** mapLine() may read the head alone: the entry needs nothing else from the record. */
  readonly #fast: boolean
  /** mapHead() may answer: the fast path, and an entry without metadata. */
  readonly #headOnly: boolean
  /** mapSerialized() may answer: the entry is the serialised record under its level's labels. */
  readonly #serializedOnly: boolean
  readonly #head: HeadEntry = { line: '', labels: undefined, timestamp: undefined }
  /** The raw level #headEntry() last named, and its labels; forgotten when the level table changes. */
  #lastLevel: unknown
  #lastLevelLabels: Readonly<Record<string, string>> | undefined
  #lastLevelKept = false
  readonly #layout: LayoutRules | undefined
  readonly #restOmits: ReadonlySet<string>

  constructor(mapping: ResolvedMapping, source: RecordSource) {
    this.#o = mapping
    this.#source = { ...source }
    const layout = source.layout
    this.#layout = layout
    this.#restOmits = new Set(layout?.restOmits)
    const layoutLifts =
      layout !== undefined &&
      (Object.keys(layout.labelAliases ?? {}).length > 0 || layout.restAsLabels === true || layout.labelsField !== undefined || layout.restAsMetadata === true)
    this.#liftsFields = mapping.labelsFrom.length > 0 || mapping.metadataFrom.length > 0 || mapping.metadataObject !== undefined || layoutLifts
    this.#labelFields = mapping.labelsFrom.map(compileField)
    this.#metadataFields = mapping.metadataFrom.map(compileField)
    this.#metadataObject = mapping.metadataObject === undefined ? undefined : compileField(mapping.metadataObject)
    this.#lineWithout = mapping.lineWithout.map(compileField)
    this.#rewrite = mapping.lineWithout.length > 0 || mapping.arraysAsObjects
    this.#headTime = source.timeKeys[0] === 'time'
    this.#fast = this.#headTime && !this.#liftsFields && mapping.line === 'record' && !this.#rewrite && mapping.timestamp === 'record' && layout?.line === undefined
    this.#headOnly = this.#fast && mapping.levelAs !== 'metadata'
    this.#serializedOnly = !this.#liftsFields && mapping.line === 'record' && !this.#rewrite && layout?.line === undefined && mapping.levelAs !== 'metadata'
  }

  get options(): ResolvedMapping {
    return this.#o
  }

  /** The level table, replaced when the logger tells its own (pino's PINO_CONFIG). */
  set levels(levels: ReadonlyMap<number, string>) {
    this.#source.levels = levels
    this.#lastLevelKept = false
  }

  set messageKey(key: string) {
    this.#source.messageKey = key
  }

  /** The name a raw level value is sent under (see levelName()), after `levelMap` and `levelFallback`. */
  levelName(raw: unknown): string | undefined {
    const named = levelName(raw, this.#source.levels)
    const map = this.#o.levelMap
    if (map === undefined) return named
    const given = typeof raw === 'number' || typeof raw === 'string' ? map[String(raw)] : undefined
    return given ?? (named === undefined ? undefined : map[named]) ?? this.#o.levelFallback ?? named
  }

  /**
   * One record object. `serialized` is the record as the logger wrote it, when it did (winston's
   * MESSAGE); `rawLevel` the level when the record keeps it elsewhere (winston's LEVEL symbol).
   * `record` is read, never modified: winston hands the same info object to every transport.
   */
  map(record: Record<string, unknown>, serialized?: string, rawLevel: unknown = record[LEVEL_KEY]): LogEntry {
    let time: unknown
    for (const key of this.#source.timeKeys) {
      time = record[key]
      if (time !== undefined) break
    }
    return this.#entry(record, this.levelName(rawLevel), time, serialized)
  }

  /**
   * One NDJSON line, shipped as it was written. Same entry as mapParsed(); lines in pino's
   * default form skip JSON.parse when nothing but their level and time is needed (parsing
   * every line was a quarter of the pino worker's time).
   */
  mapLine(line: string): LogEntry {
    if (this.#fast) {
      const head = readPinoHead(line)
      if (head !== undefined) return this.#entry(undefined, this.levelName(head.level), head.time, line)
    }
    return this.mapParsed(line)
  }

  /**
   * mapLine() without the entry object, for the lines it maps from pino's head alone: their labels
   * and timestamp, in an object shared by every call and valid until the next one. Undefined for
   * any other line, and for a mapping that puts the level in metadata: those need mapLine().
   */
  mapHead(line: string): HeadEntry | undefined {
    if (!this.#headOnly) return undefined
    const head = readPinoHead(line)
    if (head === undefined) return undefined
    return this.#headEntry(line, head.level, head.time)
  }

  /**
   * map() without the entry object, for a record the logger serialised itself (winston's
   * MESSAGE) when the entry needs nothing else from it: the line is `serialized` as it is. Shared
   * object as in mapHead(); undefined whenever map() would do more than that.
   */
  mapSerialized(record: Record<string, unknown>, serialized: string | undefined, rawLevel: unknown): HeadEntry | undefined {
    if (!this.#serializedOnly || serialized === undefined) return undefined
    let time: unknown
    for (const key of this.#source.timeKeys) {
      time = record[key]
      if (time !== undefined) break
    }
    return this.#headEntry(serialized, rawLevel, time)
  }

  /** The entry #entry() makes for a record that lifts nothing and keeps its line, in the shared object. */
  #headEntry(line: string, rawLevel: unknown, time: unknown): HeadEntry {
    const out = this.#head
    out.line = line
    // Consecutive records mostly share a level: the last one's labels are kept.
    if (!this.#lastLevelKept || rawLevel !== this.#lastLevel) {
      const level = this.#levelOrFallback(this.levelName(rawLevel))
      this.#lastLevelLabels = level !== undefined && this.#o.levelAs === 'label' ? this.#labelsForLevel(level) : undefined
      this.#lastLevel = rawLevel
      this.#lastLevelKept = true
    }
    out.labels = this.#lastLevelLabels
    out.timestamp = this.#timestampOf(time)
    return out
  }

  /**
   * One NDJSON line, parsed. A line that is not a JSON object is still a line somebody wrote: it
   * is shipped as it is, with no fields lifted. If it begins the way pino writes a record
   * (`{"level":30,"time":1700000000000,`: most often a line cut short) it keeps that level and
   * time; otherwise its level is unknown and its time the time it is pushed.
   */
  mapParsed(line: string): LogEntry {
    let record: unknown
    if (line.charCodeAt(firstNonBlank(line)) === 0x7b /* { */) {
      try {
        record = JSON.parse(line)
      } catch {
        record = undefined
      }
    }
    if (isObject(record)) return this.map(record, line)
    const read = this.#headTime ? readHead(line) : undefined
    if (read === undefined) return this.#entry(undefined, undefined, undefined, line)
    return this.#entry(undefined, this.levelName(read.level), read.time, line)
  }

  /** A line that is not to be parsed at all (the CLI's `--format text`). */
  mapText(line: string): LogEntry {
    return this.#entry(undefined, undefined, undefined, line)
  }

  /** `record` undefined: the line is text, lifting nothing and sent as `serialized` whatever `line` says. */
  #entry(record: Record<string, unknown> | undefined, named: string | undefined, time: unknown, serialized: string | undefined): LogEntry {
    const o = this.#o
    const level = this.#levelOrFallback(named)
    let labels: Record<string, string> | undefined
    let metadata: Record<string, string> | undefined
    // Fields that did go into labels or metadata: the only ones a 'rest' line leaves out.
    let lifted: Field[] | undefined

    if (!this.#liftsFields || record === undefined) {
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
        const v = labelValue(fieldValue(record, f))
        if (v === undefined) continue
        ;(labels ??= {})[f.name] = v
        ;(lifted ??= []).push(f)
      }
      const object = this.#metadataObject === undefined ? undefined : fieldValue(record, this.#metadataObject)
      if (isObject(object) && !Array.isArray(object)) {
        for (const [name, raw] of Object.entries(object)) {
          const v = metadataValue(raw)
          if (v !== undefined) (metadata ??= {})[name] = v
        }
        ;(lifted ??= []).push(this.#metadataObject!)
      }
      for (const f of this.#metadataFields) {
        // The client's own rule, so push() and the adapters store a field the same way.
        const v = metadataValue(fieldValue(record, f))
        if (v === undefined) continue
        ;(metadata ??= {})[f.name] = v
        ;(lifted ??= []).push(f)
      }
      if (this.#layout !== undefined) {
        const made = this.#fromLayout(record, this.#layout, labels, metadata)
        labels = made.labels
        metadata = made.metadata
      }
    }

    let line: string
    if (record === undefined) {
      line = serialized ?? ''
    } else if (this.#layout?.line === 'message-rest') {
      line = this.#messageRest(record)
    } else if (o.line === 'record') {
      line = this.#rewrite ? this.#json(this.#without(record, this.#lineWithout)) : (serialized ?? safeJson(record))
    } else if (o.line === 'message') {
      const msg = record[this.#source.messageKey]
      line = typeof msg === 'string' ? msg : (serialized ?? safeJson(record))
    } else if (o.line === 'rest') {
      line = this.#rest(record, lifted ?? [])
    } else {
      line = this.#written(o.line, record, level, serialized)
    }

    // Every field in the literal, absent ones undefined: one object shape for every entry, laid
    // out at once, which the client reads the same way (undefined is "not given" there).
    return { line, labels, metadata, timestamp: this.#timestampOf(time) }
  }

  /** The level an entry is sent under. */
  #levelOrFallback(named: string | undefined): string | undefined {
    const o = this.#o
    // Loki's own name for a line without a level; it also keeps the stream label set non-empty.
    return named ?? o.levelFallback ?? (o.levelAs === 'label' ? 'unknown' : undefined)
  }

  /** The entry's timestamp from the record's time. */
  #timestampOf(time: unknown): number | string | undefined {
    // 'received': no timestamp, so the client stamps the entry as it takes it, now.
    return time === undefined || this.#o.timestamp === 'received' ? undefined : readRecordTime(time)
  }

  /** The record's own string-keyed fields, in its order, minus the layout's omitted ones. */
  #layoutRest(record: Record<string, unknown>): Record<string, unknown> {
    const rest: Record<string, unknown> = {}
    for (const key of Object.keys(record)) if (!this.#restOmits.has(key)) rest[key] = record[key]
    return rest
  }

  #fromLayout(
    record: Record<string, unknown>,
    layout: LayoutRules,
    labels: Record<string, string> | undefined,
    metadata: Record<string, string> | undefined,
  ): { labels: Record<string, string> | undefined; metadata: Record<string, string> | undefined } {
    for (const [field, name] of Object.entries(layout.labelAliases ?? {})) {
      const v = labelValue(record[field])
      if (v !== undefined) (labels ??= {})[name] = v
    }
    if (layout.restAsLabels === true || layout.restAsMetadata === true) {
      for (const [key, raw] of Object.entries(this.#layoutRest(record))) {
        if (layout.restAsLabels === true && key !== LEVEL_KEY) {
          const v = labelValue(raw)
          if (v !== undefined) (labels ??= {})[key] = v
        }
        if (layout.restAsMetadata === true) {
          const v = metadataValue(raw)
          if (v !== undefined) (metadata ??= {})[key] = v
        }
      }
    }
    if (layout.labelsField !== undefined) {
      const own = record[layout.labelsField]
      if (isObject(own)) {
        for (const [name, raw] of Object.entries(own)) {
          const v = labelValue(raw)
          if (v !== undefined) (labels ??= {})[name] = v
        }
      }
    }
    return { labels, metadata }
  }

  /** winston-loki's line: `${message} ${JSON of the rest}`, the space kept when the rest is empty. */
  #messageRest(record: Record<string, unknown>): string {
    const rest = this.#layoutRest(record)
    const message = record[this.#source.messageKey]
    let text: string
    try {
      text = String(message)
    } catch {
      // A symbol, or an object whose toString throws: still a line, never an exception in log().
      text = safeJson(message)
    }
    return `${text} ${Object.keys(rest).length > 0 ? safeJson(rest) : ''}`
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
    const rest: Record<string, unknown> = {}
    for (const key of Object.keys(record)) {
      if (key === LEVEL_KEY && this.#o.levelAs !== 'none') continue
      rest[key] = record[key]
    }
    return this.#json(this.#without(this.#without(rest, lifted), this.#lineWithout))
  }

  /** `record` without `fields`, copying only what changes (the record is shared, see map()). */
  #without(record: Record<string, unknown>, fields: readonly Field[]): Record<string, unknown> {
    let out = record
    for (const f of fields) {
      // The same choice fieldValue() made: a literal key first, then the path.
      if (f.path === undefined || Object.hasOwn(out, f.spec)) {
        if (!Object.hasOwn(out, f.spec)) continue
        if (out === record) out = { ...record }
        delete out[f.spec]
      } else {
        out = withoutPath(out, f.path, 0)
      }
    }
    return out
  }

  #json(value: unknown): string {
    return this.#o.arraysAsObjects ? safeJson(value, arraysAsObjects) : safeJson(value)
  }

  /** A line function's line; the record as a 'record' line when it throws or returns no string. */
  #written(fn: LineFunction, record: Record<string, unknown>, level: string | undefined, serialized: string | undefined): string {
    try {
      const line: unknown = fn(record, level)
      if (typeof line === 'string') return line
    } catch {
      // Logging must not fail for a formatter's bug; the record itself is the line.
    }
    return this.#rewrite ? this.#json(this.#without(record, this.#lineWithout)) : (serialized ?? safeJson(record))
  }
}

/** JSON.stringify replacer: `["a","b"]` is written `{"0":"a","1":"b"}`, at any depth. */
function arraysAsObjects(_key: string, v: unknown): unknown {
  return Array.isArray(v) ? Object.fromEntries(v.map((item: unknown, i) => [i, item])) : v
}

/** JSON allows blanks before a value; JSON.parse is only tried on what starts as an object. */
function firstNonBlank(s: string): number {
  let i = 0
  while (i < s.length) {
    const c = s.charCodeAt(i)
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) break
    i++
  }
  return i
}
