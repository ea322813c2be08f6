import type { ConnectionOptions } from 'node:tls'
import { LokiOptionError, ErrorCodes } from './errors.js'
import { type ResolvedProxy, resolveProxy } from './proxy.js'
import { labelProblem, MAX_LABELS, type InvalidLabelsPolicy } from './labels.js'
import type { Encoding } from '../encode/index.js'
import type { SpoolOptions } from '../spool/spool.js'
import { bool, describe, int, isObject, keysOf, oneOf } from './validate.js'

/** Batching limits. A batch is cut when any one of them is reached. */
export interface BatchOptions {
  /** Entries per batch. @default 10000 */
  maxEntries?: number
  /**
   * Uncompressed bytes per batch (line + metadata + a fixed per-entry overhead). Kept far below
   * Loki's 4 MiB gRPC limit between distributor and ingester. @default 1048576 (1 MiB)
   */
  maxBytes?: number
  /** Longest time an entry waits in the batcher before its batch is cut. @default 1000 */
  maxWaitMs?: number
}

/** Retry policy for 429, 5xx, network errors and timeouts. 400/401/403/404 are never retried. */
export interface RetryOptions {
  /** HTTP attempts per batch, the first included. 1 disables retries. @default 10 */
  maxAttempts?: number
  /** Base of the exponential backoff (full jitter: a random delay in [0, min(max, min * 2^(n-1))] before retry n). @default 250 */
  minDelayMs?: number
  /** Cap of one backoff delay. @default max(5000, minDelayMs) */
  maxDelayMs?: number
  /**
   * Time a batch may spend in attempts and backoff before it is dropped as `retries_exhausted`.
   * Time spent waiting for an open breaker does not count. @default 60000
   */
  budgetMs?: number
  /** Longest `Retry-After` honoured; longer values are cut to this. @default 30000 */
  maxRetryAfterMs?: number
}

/** Circuit breaker (opossum) settings. While open, batches wait; nothing is dropped for it. */
export interface BreakerOptions {
  /** Failure percentage in the rolling window that opens the breaker. @default 50 */
  errorThresholdPercentage?: number
  /** Requests in the window before the percentage is judged. @default 5 */
  volumeThreshold?: number
  /** Time open before one half-open probe is let through. @default 5000 */
  resetTimeoutMs?: number
  /** Length of the rolling statistics window. @default 10000 */
  rollingWindowMs?: number
}

/** TLS settings passed to undici's connector. Verification stays on unless turned off here. */
export interface TlsOptions {
  ca?: ConnectionOptions['ca']
  cert?: ConnectionOptions['cert']
  key?: ConnectionOptions['key']
  passphrase?: string
  servername?: string
  /** @default true */
  rejectUnauthorized?: boolean
}

export interface LokiClientOptions {
  /**
   * Loki's base URL (`http://loki:3100`) or its full push URL. `/loki/api/v1/push` is appended
   * when the path is empty or `/`. Userinfo (`http://user:pass@host`) becomes basic auth.
   */
  url: string
  /**
   * Default stream labels, merged under each entry's labels. Validated here: names must be valid
   * Loki label names, values non-empty strings, at most 15. @default {}
   */
  labels?: Readonly<Record<string, string>>
  /** Tenant sent as `X-Scope-OrgID`. @default undefined (no header) */
  tenant?: string
  /** Basic auth credentials. Never printed. */
  basicAuth?: { username: string; password: string }
  /** Bearer token sent as `Authorization: Bearer …`. Never printed. */
  bearerToken?: string
  /** Extra request headers (values are never printed). @default {} */
  headers?: Readonly<Record<string, string>>
  /** TLS options for https URLs. */
  tls?: TlsOptions
  /**
   * Send through an HTTP(S) proxy. A URL (`http://user:pass@proxy:3128`; credentials go to the
   * proxy as `Proxy-Authorization` and are never printed), or `'env'` to honour `HTTPS_PROXY`,
   * `HTTP_PROXY` and `NO_PROXY` (lower-case forms first, as curl and undici read them). Requests
   * go through a CONNECT tunnel, one per pooled connection, so `concurrency` still bounds the
   * connections. The proxy's own certificate (an https proxy) is checked against Node's default
   * CAs; `tls` applies to Loki. @default false (connect directly, whatever the environment says)
   */
  proxy?: string | URL | 'env' | false
  /** Wire format. Protobuf keeps label values exact and is smaller. @default 'protobuf' */
  encoding?: Encoding
  /** gzip for JSON bodies: true (level 1), false, or a level 1-9. Ignored for protobuf. @default true */
  gzip?: boolean | number
  /** Batching limits. */
  batch?: BatchOptions
  /**
   * Bytes held across everything not yet delivered: batcher, queue, retry waits and requests in
   * flight. @default 67108864 (64 MiB)
   */
  maxBufferBytes?: number
  /**
   * What to do when the buffer is full: refuse the new entry, or evict the oldest batches that
   * are not in flight. @default 'drop-newest'
   */
  overflow?: 'drop-newest' | 'drop-oldest'
  /** Requests in flight at once; also the connection pool size. @default 2 */
  concurrency?: number
  /** Total deadline of one HTTP attempt, connect to last body byte. @default 10000 */
  requestTimeoutMs?: number
  /** TCP/TLS connect timeout. @default min(5000, requestTimeoutMs) */
  connectTimeoutMs?: number
  /** How long an idle pooled connection is kept. @default 4000 */
  keepAliveTimeoutMs?: number
  /** Retry policy. */
  retry?: RetryOptions
  /** Circuit breaker settings, or `false` to send without one. */
  breaker?: BreakerOptions | false
  /** Longest line in UTF-8 bytes (Loki's `max_line_size`). @default 262144 */
  maxLineBytes?: number
  /** Lines over `maxLineBytes`: cut at a character boundary, or drop. @default 'truncate' */
  oversizeLines?: 'truncate' | 'drop'
  /**
   * Entry labels, and structured metadata names, Loki would reject: rewrite the name
   * (`my-label` -> `my_label`, counted in `stats().metadata.renamed` for metadata), or drop the
   * entry (`invalid_labels`). @default 'sanitize'
   */
  invalidLabels?: InvalidLabelsPolicy
  /** Deadline of `close()` when none is passed, and of the flush on natural process exit. @default 5000 */
  closeTimeoutMs?: number
  /**
   * On 'beforeExit' (the event loop ran dry with entries still buffered), close the client within
   * `closeTimeoutMs` so they are delivered before the process ends. @default true
   */
  flushOnExit?: boolean
  /**
   * Durable spool (opt-in). Batches that cannot be delivered (retry budget spent, buffer full,
   * breaker open past `breakerWaitMs`, close deadline, process 'exit') are written to `dir`
   * instead of dropped, and replayed oldest first at start and after recovery.
   * @default undefined (no spool)
   */
  spool?: SpoolOptions
}

export interface ResolvedOptions {
  origin: string
  path: string
  /** URL without credentials, for messages. */
  displayUrl: string
  labels: Readonly<Record<string, string>>
  headers: Record<string, string>
  tls: TlsOptions | undefined
  /** Undefined when Loki is reached directly. */
  proxy: ResolvedProxy | undefined
  encoding: Encoding
  gzipLevel: number
  batch: Required<BatchOptions>
  maxBufferBytes: number
  overflow: 'drop-newest' | 'drop-oldest'
  concurrency: number
  requestTimeoutMs: number
  connectTimeoutMs: number
  keepAliveTimeoutMs: number
  retry: Required<RetryOptions>
  breaker: Required<BreakerOptions> | false
  maxLineBytes: number
  oversizeLines: 'truncate' | 'drop'
  invalidLabels: InvalidLabelsPolicy
  closeTimeoutMs: number
  flushOnExit: boolean
  spool: Required<SpoolOptions> | undefined
}

/** Every client option: the options readers take these out and leave the rest to the client. */
export const CLIENT_KEYS = keysOf<LokiClientOptions>()({
  url: true, labels: true, tenant: true, basicAuth: true, bearerToken: true, headers: true, tls: true, proxy: true, encoding: true,
  gzip: true, batch: true, maxBufferBytes: true, overflow: true, concurrency: true, requestTimeoutMs: true,
  connectTimeoutMs: true, keepAliveTimeoutMs: true, retry: true, breaker: true, maxLineBytes: true,
  oversizeLines: true, invalidLabels: true, closeTimeoutMs: true, flushOnExit: true, spool: true,
})
const KNOWN: ReadonlySet<string> = new Set(CLIENT_KEYS)
const BATCH_KEYS = keysOf<BatchOptions>()({ maxEntries: true, maxBytes: true, maxWaitMs: true })
const RETRY_KEYS = keysOf<RetryOptions>()({ maxAttempts: true, minDelayMs: true, maxDelayMs: true, budgetMs: true, maxRetryAfterMs: true })
const BREAKER_KEYS = keysOf<BreakerOptions>()({ errorThresholdPercentage: true, volumeThreshold: true, resetTimeoutMs: true, rollingWindowMs: true })
const TLS_KEYS = keysOf<TlsOptions>()({ ca: true, cert: true, key: true, passphrase: true, servername: true, rejectUnauthorized: true })
const SPOOL_KEYS = keysOf<SpoolOptions>()({ dir: true, maxBytes: true, breakerWaitMs: true })
const BASIC_AUTH_KEYS = keysOf<NonNullable<LokiClientOptions['basicAuth']>>()({ username: true, password: true })

function section(name: string, v: unknown, keys: readonly string[]): Record<string, unknown> {
  if (v === undefined) return {}
  if (!isObject(v)) throw new LokiOptionError(name, `expected an object, got ${describe(v)}`)
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw new LokiOptionError(`${name}.${k}`, `unknown option (known: ${keys.join(', ')})`)
  }
  return v
}

function headerValue(name: string, v: unknown): string {
  // Header values are credentials often enough that they are never echoed back.
  if (typeof v !== 'string' || /[\r\n]/.test(v)) throw new LokiOptionError(name, 'expected a string without CR or LF')
  return v
}

/**
 * `loki:3100` parses as a URL whose protocol is `loki:`: suggest the scheme that was left out.
 * Only for a bare host:port, which holds no credentials to echo.
 */
function schemeHint(raw: string): string {
  return /^[A-Za-z0-9.-]+:\d{1,5}(\/[^@\s]*)?$/.test(raw) ? ` (did you mean http://${raw}?)` : ''
}

function parseUrl(raw: unknown): { origin: string; path: string; displayUrl: string; userinfo?: { username: string; password: string } } {
  if (typeof raw !== 'string' || raw === '') {
    throw new LokiOptionError('url', `expected Loki's URL as a non-empty string, got ${describe(raw)}`, ErrorCodes.INVALID_URL)
  }
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    // The raw string may hold credentials: say what is wrong without printing it.
    throw new LokiOptionError('url', `not a valid absolute URL (expected e.g. http://loki:3100)${schemeHint(raw)}`, ErrorCodes.INVALID_URL)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new LokiOptionError('url', `protocol must be http: or https:, got ${u.protocol}${schemeHint(raw)}`, ErrorCodes.INVALID_URL)
  }
  if (u.hash) throw new LokiOptionError('url', 'must not contain a #fragment', ErrorCodes.INVALID_URL)
  const userinfo = u.username || u.password
    ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) }
    : undefined
  const pathname = u.pathname === '' || u.pathname === '/' ? '/loki/api/v1/push' : u.pathname
  const path = pathname + u.search
  return { origin: u.origin, path, displayUrl: u.origin + pathname, ...(userinfo ? { userinfo } : {}) }
}

function validateLabels(v: unknown): Record<string, string> {
  if (v === undefined) return {}
  if (!isObject(v)) throw new LokiOptionError('labels', `expected an object of string values, got ${describe(v)}`)
  const out: Record<string, string> = {}
  for (const name of Object.keys(v).sort()) {
    const problem = labelProblem(name, v[name])
    if (problem !== undefined) throw new LokiOptionError(`labels.${name}`, problem)
    // Loki removes a label with an empty value: `{ app: '' }` is no label, and with no other
    // one every entry that brings none of its own would be dropped (invalid_labels).
    if (v[name] === '') throw new LokiOptionError(`labels.${name}`, 'empty value: Loki removes a label with an empty value; give it a value or leave it out')
    out[name] = v[name] as string
  }
  if (Object.keys(out).length > MAX_LABELS) throw new LokiOptionError('labels', `at most ${MAX_LABELS} labels per stream`)
  return out
}

/** Validates every option and fills defaults. Throws LokiOptionError naming the option and value. */
export function resolveOptions(input: unknown): ResolvedOptions {
  if (!isObject(input)) throw new LokiOptionError('options', `expected an options object, got ${describe(input)}`)
  for (const k of Object.keys(input)) {
    if (!KNOWN.has(k)) throw new LokiOptionError(k, 'unknown option')
  }
  const o = input as Record<string, unknown>
  const url = parseUrl(o.url)

  const headers: Record<string, string> = {}
  if (o.headers !== undefined) {
    if (!isObject(o.headers)) throw new LokiOptionError('headers', `expected an object, got ${describe(o.headers)}`)
    for (const [k, v] of Object.entries(o.headers)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) throw new LokiOptionError(`headers.${k}`, 'not a valid header name')
      headers[k.toLowerCase()] = headerValue(`headers.${k}`, v)
    }
  }
  if (o.tenant !== undefined) {
    if (typeof o.tenant !== 'string' || o.tenant === '') throw new LokiOptionError('tenant', `expected a non-empty string, got ${describe(o.tenant)}`)
    headers['x-scope-orgid'] = headerValue('tenant', o.tenant)
  }
  const auths = [o.basicAuth !== undefined, o.bearerToken !== undefined, url.userinfo !== undefined].filter(Boolean).length
  if (auths > 1) throw new LokiOptionError('basicAuth', 'use only one of basicAuth, bearerToken and credentials in the URL')
  let basic = url.userinfo
  if (o.basicAuth !== undefined) {
    const b = section('basicAuth', o.basicAuth, BASIC_AUTH_KEYS)
    if (typeof b.username !== 'string' || typeof b.password !== 'string') {
      throw new LokiOptionError('basicAuth', 'expected { username: string, password: string }')
    }
    basic = { username: b.username, password: b.password }
  }
  if (basic) headers.authorization = `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`
  if (o.bearerToken !== undefined) {
    if (typeof o.bearerToken !== 'string' || o.bearerToken === '') throw new LokiOptionError('bearerToken', 'expected a non-empty string')
    headers.authorization = `Bearer ${headerValue('bearerToken', o.bearerToken)}`
  }

  let tls: TlsOptions | undefined
  if (o.tls !== undefined) {
    const t = section('tls', o.tls, TLS_KEYS)
    bool('tls.rejectUnauthorized', t.rejectUnauthorized, true)
    tls = t as TlsOptions
  }

  const encoding = oneOf<Encoding>('encoding', o.encoding, 'protobuf', ['protobuf', 'json'])
  let gzipLevel = 1
  if (o.gzip === false) gzipLevel = 0
  else if (typeof o.gzip === 'number') gzipLevel = int('gzip', o.gzip, 1, 1, 9)
  else if (o.gzip !== undefined && o.gzip !== true) throw new LokiOptionError('gzip', `expected a boolean or a level 1-9, got ${describe(o.gzip)}`)

  const b = section('batch', o.batch, BATCH_KEYS)
  const batch = {
    maxEntries: int('batch.maxEntries', b.maxEntries, 10_000, 1, 1_000_000),
    maxBytes: int('batch.maxBytes', b.maxBytes, 1024 * 1024, 1024, 3 * 1024 * 1024),
    maxWaitMs: int('batch.maxWaitMs', b.maxWaitMs, 1000, 0, 60_000),
  }
  const maxBufferBytes = int('maxBufferBytes', o.maxBufferBytes, 64 * 1024 * 1024, 2 * batch.maxBytes)
  const concurrency = int('concurrency', o.concurrency, 2, 1, 64)
  const requestTimeoutMs = int('requestTimeoutMs', o.requestTimeoutMs, 10_000, 1, 600_000)

  const r = section('retry', o.retry, RETRY_KEYS)
  const minDelayMs = int('retry.minDelayMs', r.minDelayMs, 250, 0, 600_000)
  const retry = {
    maxAttempts: int('retry.maxAttempts', r.maxAttempts, 10, 1, 1000),
    minDelayMs,
    maxDelayMs: int('retry.maxDelayMs', r.maxDelayMs, Math.max(5000, minDelayMs), minDelayMs, 600_000),
    budgetMs: int('retry.budgetMs', r.budgetMs, 60_000, 1, 86_400_000),
    maxRetryAfterMs: int('retry.maxRetryAfterMs', r.maxRetryAfterMs, 30_000, 0, 3_600_000),
  }

  let breaker: Required<BreakerOptions> | false = false
  if (o.breaker !== false) {
    const br = section('breaker', o.breaker, BREAKER_KEYS)
    breaker = {
      errorThresholdPercentage: int('breaker.errorThresholdPercentage', br.errorThresholdPercentage, 50, 1, 100),
      volumeThreshold: int('breaker.volumeThreshold', br.volumeThreshold, 5, 1, 100_000),
      resetTimeoutMs: int('breaker.resetTimeoutMs', br.resetTimeoutMs, 5000, 1, 600_000),
      rollingWindowMs: int('breaker.rollingWindowMs', br.rollingWindowMs, 10_000, 10, 3_600_000),
    }
  }

  let spool: Required<SpoolOptions> | undefined
  if (o.spool !== undefined) {
    const sp = section('spool', o.spool, SPOOL_KEYS)
    if (typeof sp.dir !== 'string' || sp.dir === '') throw new LokiOptionError('spool.dir', `expected a directory path, got ${describe(sp.dir)}`)
    spool = {
      dir: sp.dir,
      maxBytes: int('spool.maxBytes', sp.maxBytes, 256 * 1024 * 1024, 1024 * 1024),
      breakerWaitMs: int('spool.breakerWaitMs', sp.breakerWaitMs, 30_000, 0, 86_400_000),
    }
  }

  return {
    ...url,
    spool,
    labels: validateLabels(o.labels),
    headers,
    tls,
    proxy: resolveProxy(o.proxy, url.origin),
    encoding,
    gzipLevel,
    batch,
    maxBufferBytes,
    overflow: oneOf('overflow', o.overflow, 'drop-newest', ['drop-newest', 'drop-oldest']),
    concurrency,
    requestTimeoutMs,
    connectTimeoutMs: int('connectTimeoutMs', o.connectTimeoutMs, Math.min(5000, requestTimeoutMs), 1, 600_000),
    keepAliveTimeoutMs: int('keepAliveTimeoutMs', o.keepAliveTimeoutMs, 4000, 1, 600_000),
    retry,
    breaker,
    maxLineBytes: int('maxLineBytes', o.maxLineBytes, 256 * 1024, 16, 64 * 1024 * 1024),
    oversizeLines: oneOf('oversizeLines', o.oversizeLines, 'truncate', ['truncate', 'drop']),
    invalidLabels: oneOf('invalidLabels', o.invalidLabels, 'sanitize', ['sanitize', 'drop']),
    closeTimeoutMs: int('closeTimeoutMs', o.closeTimeoutMs, 5000, 0, 600_000),
    flushOnExit: bool('flushOnExit', o.flushOnExit, true),
  }
}
