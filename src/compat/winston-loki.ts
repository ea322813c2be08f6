/*
 * lokiwire/winston-loki: winston-loki 6's LokiTransport, options and default export as they are,
 * on lokiwire's winston transport. `require('winston-loki')` -> `require('lokiwire/winston-loki')`
 * stores the same streams, lines and timestamps, and gains bounded memory, retries, the breaker,
 * and an exit that waits for delivery. The options are translated here, once, at construction;
 * the records go through the one mapping (records/mapping.ts), told winston-loki's layout by
 * LayoutRules.
 */
import type { Agent as HttpAgent } from 'node:http'
import type { Agent as HttpsAgent } from 'node:https'
import type TransportStreamType from 'winston-transport'
import { LokiTransport as LokiwireTransport, type LokiTransportOptions as LokiwireTransportOptions } from '../adapters/winston.js'
import { ErrorCodes, LokiOptionError, type LokiError } from '../model/errors.js'
import type { TlsOptions } from '../model/options.js'
import { bool, describe, isObject, keysOf } from '../model/validate.js'
import { SOURCE_RULES, type LayoutRules, type SourceRules } from '../records/mapping.js'

/** The constructor options of winston-loki 6.x (its `index.d.ts`), with what each becomes here. */
export interface WinstonLokiOptions extends Pick<TransportStreamType.TransportStreamOptions, 'format' | 'level' | 'silent' | 'handleExceptions' | 'handleRejections'> {
  /**
   * Loki's base URL, e.g. `http://loki:3100`; `/loki/api/v1/push` is appended to its path, as
   * winston-loki does. Userinfo (`http://user:pass@loki:3100`) is basic auth unless `basicAuth`
   * is given.
   */
  host: string
  /** Basic auth as `'user:password'` (split at the first colon). Never printed. @default none */
  basicAuth?: string
  /** Extra request headers; numbers are sent as their decimal text. @default {} */
  headers?: Readonly<Record<string, string | number>>
  /**
   * Seconds an entry may wait before its batch is sent (lokiwire's `batch.maxWaitMs`, at most 60 s).
   * @default 1 (winston-loki waited 5)
   */
  interval?: number
  /**
   * Send JSON instead of protobuf, and every meta field as structured metadata (strings as
   * they are, the rest as JSON), as winston-loki 6 does in JSON mode. Needs Loki 3. @default false
   */
  json?: boolean
  /** Send each entry as soon as the event loop turns (`batch.maxWaitMs: 0`) instead of every `interval`. @default true */
  batching?: boolean
  /**
   * Stream labels of every entry, beside `level`. Numbers and booleans are sent as text; empty
   * values are left out, as Loki would. Ignored with `useWinstonMetaAsLabels`, as in winston-loki.
   * Without labels, winston's `label` (the `label` format) becomes the `job` label. @default none
   */
  labels?: Readonly<Record<string, string | number | boolean>>
  /**
   * Accepted for compatibility, with no effect: a failed batch is retried with backoff within
   * lokiwire's retry budget (60 s), then dropped and counted, and memory stays bounded either way.
   * @default false
   */
  clearOnError?: boolean
  /**
   * Stamp entries with the time they are logged, ignoring `info.timestamp`. With `false`, an
   * `info.timestamp` (winston's `timestamp` format) is the entry's time. @default true
   */
  replaceTimestamp?: boolean
  /**
   * Deliver what is buffered when the event loop runs dry (lokiwire's `flushOnExit`). lokiwire
   * installs no signal handlers: on SIGTERM, call `logger.end()` and wait for 'finish'.
   * @default true
   */
  gracefulShutdown?: boolean
  /** Deadline of one push attempt in milliseconds (lokiwire's `requestTimeoutMs`). @default 10000 */
  timeout?: number
  /** Accepted for compatibility, with no effect: lokiwire keeps its own connection pool. @default none */
  httpAgent?: HttpAgent | boolean
  /**
   * Accepted for compatibility: the pool is lokiwire's own, and the TLS settings of the agent
   * (`ca`, `cert`, `key`, `passphrase`, `servername`, `rejectUnauthorized`) are used. @default none
   */
  httpsAgent?: HttpsAgent | boolean
  /**
   * Every meta field becomes a stream label (objects, arrays and `null` excepted), and `labels`
   * and winston's `label` are ignored, as in winston-loki. Mind the stream count: only fields
   * with a handful of values belong in labels. @default false
   */
  useWinstonMetaAsLabels?: boolean
  /** With `useWinstonMetaAsLabels`: meta fields left out of the labels, the line and the metadata. @default [] */
  ignoredMeta?: readonly string[]
  /**
   * Called with a LokiError (`code`, and `status`/`body` for an HTTP answer) after every push
   * attempt that failed: a network error, a timeout, or an answer other than 2xx. What the
   * callback throws is caught. @default none
   */
  onConnectionError?(error: unknown): void
}

const PUSH_PATH = '/loki/api/v1/push'

/** winston-loki's fields that are never part of the line's JSON (it destructures them away). */
const NOT_REST = ['label', 'labels', 'timestamp', 'message'] as const

const WINSTON_KEYS = ['format', 'level', 'silent', 'handleExceptions', 'handleRejections'] as const

/** Every option winston-loki 6 reads, and winston's own: anything else is a typo. */
const KNOWN: ReadonlySet<string> = new Set(
  keysOf<WinstonLokiOptions>()({
    host: true, basicAuth: true, headers: true, interval: true, json: true, batching: true, labels: true, clearOnError: true,
    replaceTimestamp: true, gracefulShutdown: true, timeout: true, httpAgent: true, httpsAgent: true, useWinstonMetaAsLabels: true,
    ignoredMeta: true, onConnectionError: true, format: true, level: true, silent: true, handleExceptions: true, handleRejections: true,
  }),
)

/** The TLS settings an https.Agent was made with, which undici's connector takes as they are. */
const TLS_FROM_AGENT = ['ca', 'cert', 'key', 'passphrase', 'servername', 'rejectUnauthorized'] as const

/** `host` + the push path, userinfo dropped when `basicAuth` replaces it. */
function pushUrl(host: unknown, dropUserinfo: boolean): string {
  if (typeof host !== 'string' || host === '') {
    throw new LokiOptionError('host', `expected Loki's URL as a non-empty string, got ${describe(host)}`, ErrorCodes.INVALID_URL)
  }
  let u: URL
  try {
    u = new URL(host)
  } catch {
    // The string may hold credentials: say what is wrong without printing it.
    throw new LokiOptionError('host', 'not a valid absolute URL (expected e.g. http://loki:3100)', ErrorCodes.INVALID_URL)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new LokiOptionError('host', `protocol must be http: or https:, got ${u.protocol}`, ErrorCodes.INVALID_URL)
  }
  // winston-loki appends the path to whatever `host` holds: a prefix behind a proxy stays.
  u.pathname = u.pathname.replace(/\/+$/, '') + PUSH_PATH
  if (dropUserinfo) {
    u.username = ''
    u.password = ''
  }
  return u.href
}

function basicAuth(v: unknown): { username: string; password: string } {
  const colon = typeof v === 'string' ? v.indexOf(':') : -1
  // Never echo the value: it is a password.
  if (typeof v !== 'string' || colon < 0) throw new LokiOptionError('basicAuth', "expected 'user:password'")
  return { username: v.slice(0, colon), password: v.slice(colon + 1) }
}

/** A label or header value winston-loki would send: strings, and numbers and booleans as text. */
function text(name: string, v: unknown): string | undefined {
  if (v === undefined || v === '') return undefined
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  throw new LokiOptionError(name, `expected a string, number or boolean, got ${describe(v)}`)
}

function textRecord(name: string, v: unknown): Record<string, string> | undefined {
  // winston-loki tests these for truthiness: null is as good as absent.
  if (v === undefined || v === null) return undefined
  if (!isObject(v)) throw new LokiOptionError(name, `expected an object, got ${describe(v)}`)
  const out: Record<string, string> = {}
  for (const [key, raw] of Object.entries(v)) {
    const value = text(`${name}.${key}`, raw)
    if (value !== undefined) out[key] = value
  }
  return out
}

function positive(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined
  // winston-loki reads interval with Number(): a numeric string is a number of seconds too.
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new LokiOptionError(name, `expected a positive number, got ${describe(v)}`)
  return n
}

function tlsFromAgent(agent: unknown): TlsOptions | undefined {
  if (agent === undefined || typeof agent === 'boolean') return undefined
  if (!isObject(agent)) throw new LokiOptionError('httpsAgent', `expected an https.Agent or a boolean, got ${describe(agent)}`)
  const given = (agent as { options?: unknown }).options
  if (!isObject(given)) return undefined
  const tls: Record<string, unknown> = {}
  for (const key of TLS_FROM_AGENT) if (given[key] !== undefined) tls[key] = given[key]
  return Object.keys(tls).length > 0 ? (tls as TlsOptions) : undefined
}

/** winston-loki 6's options as lokiwire/winston's, with the layout its entries had. */
function translate(input: unknown): LokiwireTransportOptions & { [SOURCE_RULES]: SourceRules } {
  if (!isObject(input)) throw new LokiOptionError('options', `expected an options object, got ${describe(input)}`)
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new LokiOptionError(key, `unknown option (winston-loki 6 knows: ${[...KNOWN].join(', ')})`)
  }
  const o = input as Record<string, unknown>
  const metaAsLabels = bool('useWinstonMetaAsLabels', o.useWinstonMetaAsLabels, false)
  const json = bool('json', o.json, false)
  const batching = bool('batching', o.batching, true)
  const replaceTimestamp = bool('replaceTimestamp', o.replaceTimestamp, true)
  const gracefulShutdown = bool('gracefulShutdown', o.gracefulShutdown, true)
  bool('clearOnError', o.clearOnError, false)
  if (o.httpAgent !== undefined && typeof o.httpAgent !== 'boolean' && !isObject(o.httpAgent)) {
    throw new LokiOptionError('httpAgent', `expected an http.Agent or a boolean, got ${describe(o.httpAgent)}`)
  }
  const ignoredMeta = o.ignoredMeta ?? []
  if (!Array.isArray(ignoredMeta) || !ignoredMeta.every((k) => typeof k === 'string')) {
    throw new LokiOptionError('ignoredMeta', `expected an array of field names, got ${describe(o.ignoredMeta)}`)
  }
  if (o.onConnectionError !== undefined && typeof o.onConnectionError !== 'function') {
    throw new LokiOptionError('onConnectionError', `expected a function, got ${describe(o.onConnectionError)}`)
  }

  const out: LokiwireTransportOptions = { url: pushUrl(o.host, o.basicAuth !== undefined) }
  if (o.basicAuth !== undefined) out.basicAuth = basicAuth(o.basicAuth)
  const headers = textRecord('headers', o.headers)
  if (headers !== undefined) out.headers = headers
  const labels = textRecord('labels', o.labels)
  if (labels !== undefined && !metaAsLabels) out.labels = labels
  if (json) out.encoding = 'json'
  const interval = positive('interval', o.interval)
  if (!batching) out.batch = { maxWaitMs: 0 }
  else if (interval !== undefined) out.batch = { maxWaitMs: Math.min(Math.round(interval * 1000), 60_000) }
  const timeout = positive('timeout', o.timeout)
  if (timeout !== undefined) out.requestTimeoutMs = Math.min(Math.ceil(timeout), 600_000)
  const tls = tlsFromAgent(o.httpsAgent)
  if (tls !== undefined) out.tls = tls
  out.flushOnExit = gracefulShutdown
  for (const key of WINSTON_KEYS) if (o[key] !== undefined) (out as unknown as Record<string, unknown>)[key] = o[key]

  const layout: LayoutRules = {
    restOmits: metaAsLabels ? [...NOT_REST, ...ignoredMeta] : NOT_REST,
    // winston-loki reads only one source of stream labels beside the level and `labels` meta.
    ...(metaAsLabels ? { restAsLabels: true } : labels === undefined ? { labelAliases: { label: 'job' } } : {}),
    labelsField: 'labels',
    restAsMetadata: json,
    // A transport `format` makes the line what the formats wrote (info[MESSAGE]).
    ...(o.format === undefined ? { line: 'message-rest' as const } : {}),
  }
  return { ...out, [SOURCE_RULES]: { timeKeys: replaceTimestamp ? [] : ['timestamp'], layout } }
}

/**
 * winston-loki 6's `LokiTransport`, on lokiwire. Construct it with winston-loki's options;
 * everything lokiwire/winston's transport has is here too (`client`, `flush()`, the
 * 'lokiwire:drop' and 'lokiwire:breaker' events, and 'warn').
 */
class LokiTransport extends LokiwireTransport {
  readonly #ended: Promise<void>

  constructor(options: WinstonLokiOptions) {
    super(translate(options))
    this.#ended = new Promise((resolve) => {
      this.once('finish', () => resolve())
      this.once('close', () => resolve())
    })
    const onError = (options as { onConnectionError?: (error: unknown) => void }).onConnectionError
    // Where winston-loki called it: once per push that failed. The client catches what it throws.
    if (onError !== undefined) this.client.on('failed', (e: { error: LokiError }) => onError(e.error))
  }

  /**
   * Ends the transport and resolves once everything logged was delivered or dropped (within
   * `closeTimeoutMs`), as winston-loki's `close()` resolved after its last push. Never rejects.
   */
  override close(): Promise<void> {
    super.close()
    return this.#ended
  }
}

// The bundler renames the class where it meets its base's name; stack traces and inspect() show this one.
Object.defineProperty(LokiTransport, 'name', { value: 'LokiTransport' })

export default LokiTransport
