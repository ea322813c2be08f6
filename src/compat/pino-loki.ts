/*
 * lokiwire/pino-loki: pino-loki 3.x's options, lokiwire's delivery. Change one string,
 *
 *   transport: { target: 'pino-loki', options }   ->   transport: { target: 'lokiwire/pino-loki', options }
 *
 * and Loki receives what pino-loki sent: the same stream labels (`level` as pino-loki names it,
 * `hostname`, the static labels, propsToLabels), the same line (the record without `hostname`,
 * or logFormat's) and the same record time. This module only translates options: the lines go
 * through lokiwire/pino and the one record mapping, which holds every rule used here.
 */
import type { Writable } from 'node:stream'
import { LokiOptionError } from '../model/errors.js'
import { CLIENT_KEYS, type LokiClientOptions } from '../model/options.js'
import { describe, isObject, keysOf } from '../model/validate.js'
import type { LineFunction } from '../records/mapping.js'
import { inPinoWorker, lokiStream, pinoWorkerDestination, type LokiPinoOptions, type LokiPinoStream } from '../adapters/pino.js'

export type { LokiPinoOptions, LokiPinoStream } from '../adapters/pino.js'
export type { LokiClient, LokiClientStats, FlushResult, CloseOptions } from '../adapters/pino.js'

/** pino-loki's level names (its `LokiLogLevel`). */
export const LokiLogLevel = {
  Info: 'info',
  Debug: 'debug',
  Error: 'error',
  Warning: 'warning',
  Critical: 'critical',
} as const
export type LokiLogLevel = (typeof LokiLogLevel)[keyof typeof LokiLogLevel]

/** pino-loki's `batching` object. */
export interface BatchingOptions {
  /** Longest wait before a batch is sent, in seconds (lokiwire's `batch.maxWaitMs`, at most 60 s). @default lokiwire's 1 s */
  interval?: number
  /**
   * Accepted and not used: pino-loki dropped the oldest log beyond this many; lokiwire bounds its
   * buffer in bytes (`maxBufferBytes`) and counts every entry it cannot keep. @default 10000 (ignored)
   */
  maxBufferSize?: number
}

/**
 * The record pino-loki's `logFormat` function is given: the record without `hostname`, plus
 * `lokilevel`, the level label (a name of `levelMap`'s, which may be another than these five).
 */
export interface LogFormatRecord {
  lokilevel: LokiLogLevel
  time: number
  level: number
  msg?: string
  // pino's own record type (LogDescriptor) is as loose: a record holds whatever was logged.
  // biome-ignore lint/suspicious/noExplicitAny: the same shape pino-loki's function is typed against
  [key: string]: any
}

/**
 * pino-loki 3.x's options, taken as they are. lokiwire's own client options (`spool`, `retry`,
 * `maxBufferBytes`, `tenant`, `encoding`...) are accepted beside them, except `url` (`host` says
 * it) and where pino-loki's name already covers the option.
 */
export interface PinoLokiOptions extends Omit<LokiClientOptions, 'url' | 'labels' | 'headers' | 'basicAuth'> {
  /** Loki's URL, e.g. `http://loki:3100`. Required. */
  host: string
  /** The push path, resolved against `host` as pino-loki does (`new URL(endpoint, host)`). @default 'loki/api/v1/push' */
  endpoint?: string
  /** Stream labels added to every entry. @default {} */
  labels?: Readonly<Record<string, string>>
  /** Basic auth credentials. */
  basicAuth?: { username: string; password: string }
  /** Extra request headers, e.g. `X-Scope-OrgID`. `Content-Type` is lokiwire's to set, as it was pino-loki's. @default {} */
  headers?: Readonly<Record<string, string>>
  /** Deadline of one request in milliseconds (lokiwire's `requestTimeoutMs`, at most 600000). @default 30000 */
  timeout?: number
  /** No report of failures on stderr (lokiwire's `onFailure: 'silent'`); they are still counted and emitted. @default false */
  silenceErrors?: boolean
  /** Batching: `false` sends each line as soon as it comes (`batch.maxWaitMs: 0`). @default enabled */
  batching?: boolean | BatchingOptions
  /** pino-loki 2.x's batch interval in seconds; `batching.interval` wins. @default lokiwire's 1 s */
  interval?: number
  /** Stamp entries with the time they reach the transport, not the record's `time`. @default false */
  replaceTimestamp?: boolean
  /**
   * The `level` label for each pino level number, laid over pino-loki's map (10 and 20 `debug`,
   * 30 `info`, 40 `warning`, 50 `error`, 60 `critical`); a level in neither is `info`.
   * @default pino-loki's map
   */
  levelMap?: Readonly<Record<number, string>>
  /** Record fields sent as stream labels besides `level` and `hostname`. @default [] */
  propsToLabels?: readonly string[]
  /** Arrays in the line written as objects keyed by index, which LogQL's `| json` can reach. @default false */
  convertArrays?: boolean
  /** The record field whose object's entries are sent as structured metadata; `false` for none. @default 'meta' */
  structuredMetaKey?: string | false
  /**
   * The line as a template (`'{time} | {lokilevel} | {msg} {req.method}'`, missing or falsy
   * values empty) or a function of the record (in-process only: pino cannot pass a function to
   * its worker). @default false (the record as JSON, without `hostname`)
   */
  logFormat?: false | string | ((record: LogFormatRecord) => string)
}

/** pino-loki's level map, which `levelMap` is laid over. */
const PINO_LOKI_LEVELS: Readonly<Record<string, LokiLogLevel>> = {
  10: 'debug',
  20: 'debug',
  30: 'info',
  40: 'warning',
  50: 'error',
  60: 'critical',
}

const OWN_KEYS = keysOf<Omit<PinoLokiOptions, keyof LokiClientOptions>>()({
  host: true, endpoint: true, timeout: true, silenceErrors: true, batching: true, interval: true, replaceTimestamp: true,
  levelMap: true, propsToLabels: true, convertArrays: true, structuredMetaKey: true, logFormat: true,
})
/** Taken as pino-loki takes them, and as lokiwire does: the same meaning under the same name. */
const SHARED_KEYS = ['labels', 'headers', 'basicAuth'] as const
const PASSED_KEYS: ReadonlySet<string> = new Set(CLIENT_KEYS.filter((k) => k !== 'url'))
const KNOWN_KEYS: readonly string[] = [...OWN_KEYS, ...PASSED_KEYS]
/** pino-loki's record field that becomes the `hostname` label and leaves the line. */
const HOSTNAME = 'hostname'
/** lokiwire's longest batch wait and request deadline. */
const MAX_WAIT_MS = 60_000
/** pino-loki 3.x's request deadline when `timeout` is not given (`AbortSignal.timeout(timeout ?? 3e4)`). */
const PINO_LOKI_TIMEOUT_MS = 30_000
const MAX_TIMEOUT_MS = 600_000

function positive(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new LokiOptionError(name, `expected a non-negative number, got ${describe(v)}`)
  return v
}

function flag(name: string, v: unknown): boolean {
  if (v === undefined) return false
  if (typeof v !== 'boolean') throw new LokiOptionError(name, `expected a boolean, got ${describe(v)}`)
  return v
}

/** `new URL(endpoint, host)`, which is how pino-loki reaches Loki: a relative endpoint replaces the host's last path segment. */
function pushUrl(host: unknown, endpoint: unknown): string {
  if (typeof host !== 'string' || host === '') throw new LokiOptionError('host', `expected Loki's URL as a non-empty string, got ${describe(host)}`)
  if (endpoint !== undefined && typeof endpoint !== 'string') throw new LokiOptionError('endpoint', `expected a path, got ${describe(endpoint)}`)
  try {
    return new URL(endpoint ?? 'loki/api/v1/push', host).href
  } catch {
    // The host may hold credentials: say what is wrong without printing it.
    throw new LokiOptionError('host', 'not a valid absolute URL (expected e.g. http://loki:3100)')
  }
}

/** `batch.maxWaitMs` from pino-loki's batching (seconds), or undefined for lokiwire's default. */
function maxWaitMs(batching: unknown, interval: unknown): number | undefined {
  if (batching === false) return 0
  if (batching !== undefined && batching !== true && !isObject(batching)) {
    throw new LokiOptionError('batching', `expected false or { interval, maxBufferSize }, got ${describe(batching)}`)
  }
  if (isObject(batching)) {
    for (const k of Object.keys(batching)) {
      if (k !== 'interval' && k !== 'maxBufferSize') throw new LokiOptionError(`batching.${k}`, 'unknown option (known: interval, maxBufferSize)')
    }
    if (batching.maxBufferSize !== undefined) positive('batching.maxBufferSize', batching.maxBufferSize)
  }
  const seconds = isObject(batching) && batching.interval !== undefined ? positive('batching.interval', batching.interval) : interval === undefined ? undefined : positive('interval', interval)
  return seconds === undefined ? undefined : Math.min(Math.round(seconds * 1000), MAX_WAIT_MS)
}

/** pino-loki's `get()`: a path of `.` and `[i]` segments, quotes ignored; undefined when it runs out. */
function pathValue(record: unknown, path: string): unknown {
  let v = record
  for (const segment of path.split(/[.[\]]/g)) {
    if (v === null || v === undefined) return undefined
    const key = segment.replace(/["']/g, '')
    if (key.trim() === '') continue
    v = (v as Record<string, unknown>)[key]
  }
  return v
}

/** The record logFormat sees: without `hostname`, with `lokilevel`. */
function formatRecord(record: Readonly<Record<string, unknown>>, level: string | undefined): LogFormatRecord {
  const { [HOSTNAME]: _hostname, ...rest } = record
  return { ...rest, lokilevel: (level ?? LokiLogLevel.Info) as LokiLogLevel } as LogFormatRecord
}

function lineFormat(logFormat: unknown): LineFunction | undefined {
  if (logFormat === undefined || logFormat === false || logFormat === '') return undefined
  if (typeof logFormat === 'function') {
    const fn = logFormat as (record: LogFormatRecord) => string
    return (record, level) => fn(formatRecord(record, level))
  }
  if (typeof logFormat !== 'string') throw new LokiOptionError('logFormat', `expected a template string, a function or false, got ${describe(logFormat)}`)
  return (record, level) => {
    const r = formatRecord(record, level)
    // String() is what String.prototype.replace makes of a replacer's value; a falsy one is empty.
    return logFormat.replace(/{([^{}]+)}/g, (_m, path: string) => String(pathValue(r, path) || ''))
  }
}

/**
 * pino-loki 3.x options -> lokiwire/pino options. Throws LokiOptionError naming the pino-loki
 * option at fault; an unknown option is refused, so a typo is not silently ignored.
 */
export function translatePinoLokiOptions(input: unknown): LokiPinoOptions {
  if (!isObject(input)) throw new LokiOptionError('options', `expected an options object, got ${describe(input)}`)
  for (const k of Object.keys(input)) {
    if (!KNOWN_KEYS.includes(k)) throw new LokiOptionError(k, `unknown option (pino-loki's: ${OWN_KEYS.join(', ')}, ${SHARED_KEYS.join(', ')}; or lokiwire's client options)`)
  }
  const o = input as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(o)) if (PASSED_KEYS.has(k) && !(SHARED_KEYS as readonly string[]).includes(k)) out[k] = o[k]
  out.url = pushUrl(o.host, o.endpoint)
  if (o.labels !== undefined) out.labels = o.labels
  if (o.basicAuth !== undefined) out.basicAuth = o.basicAuth
  if (o.headers !== undefined) {
    if (!isObject(o.headers)) throw new LokiOptionError('headers', `expected an object, got ${describe(o.headers)}`)
    // pino-loki set Content-Type after the user's headers; lokiwire sets it (and Content-Encoding) per encoding.
    out.headers = Object.fromEntries(Object.entries(o.headers).filter(([k]) => !/^content-(type|encoding)$/i.test(k)))
  }
  if (out.requestTimeoutMs === undefined) {
    // pino-loki's own default deadline, so an unset `timeout` means what it meant there.
    out.requestTimeoutMs = o.timeout === undefined ? PINO_LOKI_TIMEOUT_MS : Math.min(Math.max(1, Math.round(positive('timeout', o.timeout))), MAX_TIMEOUT_MS)
  }
  if (flag('silenceErrors', o.silenceErrors)) out.onFailure = 'silent'
  const wait = maxWaitMs(o.batching, o.interval)
  if (wait !== undefined) {
    const batch: unknown = out.batch
    out.batch = { maxWaitMs: wait, ...(isObject(batch) ? batch : {}) }
  }
  if (flag('replaceTimestamp', o.replaceTimestamp)) out.timestamp = 'received'
  if (flag('convertArrays', o.convertArrays)) out.arraysAsObjects = true

  // Stream labels, in pino-loki's order of precedence: level, hostname, static labels, props.
  const labels = isObject(o.labels) ? o.labels : {}
  if (o.levelMap !== undefined && !isObject(o.levelMap)) throw new LokiOptionError('levelMap', `expected an object of level number -> name, got ${describe(o.levelMap)}`)
  out.levelMap = { ...PINO_LOKI_LEVELS, ...(o.levelMap as Record<string, unknown> | undefined) }
  out.levelFallback = LokiLogLevel.Info
  // A static `level` label wins over the record's level in pino-loki.
  if (Object.hasOwn(labels, 'level')) out.levelAs = 'none'
  if (o.propsToLabels !== undefined && (!Array.isArray(o.propsToLabels) || !o.propsToLabels.every((p) => typeof p === 'string'))) {
    throw new LokiOptionError('propsToLabels', `expected an array of field names, got ${describe(o.propsToLabels)}`)
  }
  // `level` as a prop would be the raw number, which Loki refuses; the level label is there anyway.
  const props = ((o.propsToLabels as string[] | undefined) ?? []).filter((p) => p !== '' && p !== 'level')
  const liftHostname = !Object.hasOwn(labels, HOSTNAME) || props.includes(HOSTNAME)
  out.labelsFrom = liftHostname ? [HOSTNAME, ...props] : props

  // The line: the record without `hostname` (or logFormat's), written anew as pino-loki writes it.
  const line = lineFormat(o.logFormat)
  if (line === undefined) out.lineWithout = [HOSTNAME]
  else out.line = line

  const key = o.structuredMetaKey
  if (key !== undefined && key !== false && typeof key !== 'string') throw new LokiOptionError('structuredMetaKey', `expected a field name or false, got ${describe(key)}`)
  // An empty key is no key, as in pino-loki. A dotted key is read literally first, as pino-loki reads it.
  const metaKey = key === undefined ? 'meta' : key
  if (metaKey !== false && metaKey !== '') out.metadataObject = metaKey
  return out as unknown as LokiPinoOptions
}

/**
 * Like pino-loki's `pinoLoki()`: inside pino's transport worker (pino called it, or a module of
 * yours that wraps it, as pino-loki's README shows for a `logFormat` function) it returns the
 * worker's destination; anywhere else a stream to hand pino in-process, `pino(pinoLoki(options))`.
 * Bad options: in the worker, one line on stderr and the lines discarded and counted (the host
 * keeps running); in-process, a LokiOptionError here.
 */
export function pinoLoki(options: PinoLokiOptions): LokiPinoStream | Writable {
  if (inPinoWorker()) return pinoWorkerDestination(options, 'lokiwire/pino-loki', translatePinoLokiOptions).destination
  return pinoLokiStream(options)
}

/** In-process, always: `pino(pinoLokiStream(options))`, with `client.stats()`, `flush()` and `close()`. */
export function pinoLokiStream(options: PinoLokiOptions): LokiPinoStream {
  return lokiStream(translatePinoLokiOptions(options))
}

export default pinoLoki
