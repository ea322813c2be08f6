import type { Socket } from 'node:net'
import type { buildConnector } from 'undici'
import { channels } from './diagnostics.js'
import { FetchPool, INVALID_REQUEST_CODE, type HttpPool, type HttpResponse, type ResponseBody } from './fetch.js'
import { ProxyRefusedError } from './refused.js'
import type { HttpStack } from './undici-pool.js'
import type { EncodedBody } from '../encode/index.js'
import { ErrorCodes, LokiAbortError, LokiError, LokiHttpError, LokiNetworkError, LokiTimeoutError } from '../model/errors.js'
import type { ResolvedOptions } from '../model/options.js'
import type { FailureClass } from '../model/types.js'
import { VERSION } from '../model/version.js'

export type { FailureClass }

/**
 * The outcome of one HTTP attempt. The transport never throws: every path, including
 * exceptions from undici, becomes one of these, and the response body has been consumed or
 * destroyed before it is returned. `kind` says what to do next; `failure` what went wrong;
 * `status` is carried for events and diagnostics only.
 */
export type SendResult =
  | { kind: 'success'; status: number }
  /** 260: a 2xx that stored nothing (ingestion policy). */
  | { kind: 'blocked'; status: number; failure: FailureClass; error: LokiHttpError }
  /** 429, 408, 5xx, network and DNS errors, timeouts. */
  | { kind: 'retryable'; status: number | undefined; failure: FailureClass; error: LokiError; retryAfterMs: number | undefined }
  /** 400, 401, 403, 404 and other statuses that a retry cannot fix; TLS configuration errors. */
  | { kind: 'failure'; status: number | undefined; failure: FailureClass; error: LokiError }
  /** 413: the body is over the server's limit; the batch should be split. */
  | { kind: 'too_large'; status: number; failure: FailureClass; error: LokiHttpError }
  /** The caller's signal aborted the attempt (destroy, eviction, close deadline). */
  | { kind: 'aborted'; error: LokiAbortError }

export interface AttemptInfo {
  batchId: number
  attempt: number
  entries: number
  /** This attempt's deadline when the retry budget leaves less than `requestTimeoutMs`. */
  timeoutMs?: number
}

/** Error bodies are read up to this size for the message; Loki's are a few hundred bytes. */
export const ERROR_BODY_KEEP = 64 * 1024
/** Past this a body is not worth draining: the socket is destroyed instead of reused. */
export const DRAIN_LIMIT = 8 * 1024 * 1024
/**
 * A body still arriving after this long is given up and its socket destroyed. Loki's bodies are
 * empty or a few hundred bytes; one that trickles must not hold the attempt (and its socket)
 * until `requestTimeoutMs`.
 */
export const DRAIN_TIME_LIMIT_MS = 1000

interface Drained {
  /** The first `keep` bytes, decoded as UTF-8 and trimmed. */
  text: string
  /** False when the body broke off or was cut by a limit: its socket is destroyed, not reused. */
  complete: boolean
}

/**
 * Reads a body to its end so its socket can serve the next request, keeping its first `keep`
 * bytes as text. Never throws: a body that breaks off, runs past DRAIN_LIMIT bytes or
 * DRAIN_TIME_LIMIT_MS, or is aborted by the attempt's deadline is destroyed, which closes its
 * socket, and reported as incomplete. The status already received decides the outcome.
 */
async function drain(body: ResponseBody, keep: number): Promise<Drained> {
  const chunks: Uint8Array[] = []
  let kept = 0
  let total = 0
  let complete = false
  const timer = setTimeout(() => body.destroy(), DRAIN_TIME_LIMIT_MS)
  try {
    for await (const chunk of body) {
      total += chunk.length
      if (kept < keep) {
        const part = chunk.subarray(0, keep - kept)
        chunks.push(part)
        kept += part.length
      }
      // Not worth reading further: leaving the loop destroys the body and gives up the socket.
      if (total > DRAIN_LIMIT) break
    }
    complete = total <= DRAIN_LIMIT
  } catch {
    // Broke off, timed out or aborted: the stream destroyed itself on the way.
  } finally {
    // Leaving the loop early (break or throw) has destroyed the body: its socket is not reused.
    clearTimeout(timer)
  }
  return { text: kept === 0 ? '' : Buffer.concat(chunks).toString('utf8').trim(), complete }
}

/** How long close() and destroy() wait for a destroyed socket's 'close'; it comes on the next turn. */
const SOCKET_CLOSE_WAIT_MS = 1000

/**
 * undici's connector, remembering every socket it creates from the moment the connect starts.
 * `Pool.destroy()` resolves without waiting for a connect in flight: that socket is destroyed
 * only when the connect ends, seconds later against a Loki that does not accept. Knowing the
 * sockets lets close() and destroy() end them too. The connector returns its socket (undici has
 * done so since v4, though its types say void); if that ever stops, nothing is tracked.
 */
export function trackingConnector(base: buildConnector.connector, sockets: Set<Socket>): buildConnector.connector {
  return (options, callback) => {
    const socket = (base as (o: buildConnector.Options, cb: buildConnector.Callback) => unknown)(options, callback)
    if (socket === null || typeof socket !== 'object' || typeof (socket as Socket).destroy !== 'function') return
    const s = socket as Socket
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  }
}

/**
 * Destroys `sockets` and resolves once each has emitted 'close' (bounded, to be safe). A socket
 * leaves the set on 'close', which comes only once its handle (and any connect on it) is gone;
 * `socket.closed` turns true earlier, so it is no proof that nothing is left.
 */
async function destroySockets(sockets: Set<Socket>, reason: () => Error): Promise<void> {
  if (sockets.size === 0) return
  const closed = [...sockets].map((s) => new Promise<void>((resolve) => {
    s.once('close', () => resolve())
    // With an error, undici's connect callback runs and its bookkeeping ends; the connector
    // listens for 'error', so this is never unhandled.
    s.destroy(reason())
  }))
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    Promise.all(closed),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SOCKET_CLOSE_WAIT_MS)
    }),
  ])
  clearTimeout(timer)
}

// No UND_ERR_BODY_TIMEOUT: request() settles at the status, so a body timeout ends the drain, never the request.
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'])

/**
 * TLS failures a retry cannot fix: the certificate does not verify against the trusted CAs, has
 * expired or names another host, or the server does not speak TLS (an https URL on a plain
 * port) or refused our protocol or client certificate. They are configuration errors, reported
 * at once instead of retried like an outage.
 */
const TLS_CONFIG_CODES = new Set([
  // Certificate verification (OpenSSL's X509_V_ERR_* as Node names them).
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD', 'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  // Node's host name check.
  'ERR_TLS_CERT_ALTNAME_INVALID',
  // The handshake itself.
  'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
])

/** The host name did not resolve. Retried: in a cluster DNS flaps while services restart. */
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA'])

/** `err`'s message, with its code added only when the message does not already say it. */
function describeError(err: unknown, code: string | undefined): string {
  const message = err instanceof Error ? err.message : String(err)
  return code === undefined || message.includes(code) ? message : `${message} (${code})`
}

/**
 * The HTTP client could not be loaded or its pool not built. Not a LokiError subclass: those answer instanceof by
 * brand, so every LokiError would pass for one.
 */
class StackLoadFailure {
  constructor(readonly cause: unknown) {}
}

function classifyError(err: unknown, signal: AbortSignal, deadline: AbortSignal): SendResult {
  if (signal.aborted) {
    return { kind: 'aborted', error: new LokiAbortError('request aborted', signal.reason) }
  }
  if (deadline.aborted) {
    const reason = deadline.reason as LokiTimeoutError
    return { kind: 'retryable', status: undefined, failure: 'timeout', error: reason, retryAfterMs: undefined }
  }
  if (err instanceof StackLoadFailure) {
    // No attempt will get further: final, not retried like an outage.
    const error = new LokiError(ErrorCodes.INTERNAL, `could not load or set up the HTTP client: ${describeError(err.cause, undefined)}`, { cause: err.cause })
    return { kind: 'failure', status: undefined, failure: 'network', error }
  }
  const raw = (err as { code?: unknown })?.code
  const code = typeof raw === 'string' ? raw : undefined
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    const error = new LokiTimeoutError(`request timed out: ${describeError(err, code)}`, err)
    return { kind: 'retryable', status: undefined, failure: 'timeout', error, retryAfterMs: undefined }
  }
  if (code !== undefined && TLS_CONFIG_CODES.has(code)) {
    const error = new LokiNetworkError(`TLS handshake with Loki failed: ${describeError(err, code)}`, err, ErrorCodes.TLS)
    return { kind: 'failure', status: undefined, failure: 'network', error }
  }
  if (code !== undefined && DNS_CODES.has(code)) {
    const error = new LokiNetworkError(`could not resolve Loki's host: ${describeError(err, code)}`, err, ErrorCodes.DNS)
    return { kind: 'retryable', status: undefined, failure: 'network', error, retryAfterMs: undefined }
  }
  if (err instanceof ProxyRefusedError) {
    if (!err.retryable) return { kind: 'failure', status: undefined, failure: 'network', error: err }
    return { kind: 'retryable', status: undefined, failure: 'network', error: err, retryAfterMs: undefined }
  }
  if (code === INVALID_REQUEST_CODE) {
    // A bad header or URL will not get better on retry. Told by undici's code, not its class, so
    // that telling needs no undici loaded.
    const message = err instanceof Error ? err.message : String(err)
    return { kind: 'failure', status: undefined, failure: 'network', error: new LokiNetworkError(`request rejected by the HTTP client: ${message}`, err) }
  }
  return {
    kind: 'retryable',
    status: undefined,
    failure: 'network',
    error: new LokiNetworkError(`request failed: ${describeError(err, code)}`, err),
    retryAfterMs: undefined,
  }
}

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP date. Undefined when absent or
 * unparseable. Never negative.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  if (Array.isArray(value)) value = value[0]
  if (value === undefined) return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * 1000
  if (/^\d+\.\d+$/.test(v)) return Math.ceil(Number(v) * 1000)
  const at = Date.parse(v)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now)
}

/** The class of an answer that was not a success. 260 stored nothing: it counts as refused, with 4xx. */
function statusClass(status: number): FailureClass {
  return status === 429 ? 'status429' : status >= 500 ? 'status5xx' : 'status4xx'
}

function classifyStatus(status: number, body: string, headers: HttpResponse['headers']): SendResult {
  if (status === 260) return { kind: 'blocked', status, failure: statusClass(status), error: new LokiHttpError(status, body) }
  if (status >= 200 && status < 300) return { kind: 'success', status }
  const error = new LokiHttpError(status, body)
  const failure = statusClass(status)
  if (status === 413) return { kind: 'too_large', status, failure, error }
  if (status === 429 || status === 408 || status >= 500) {
    return { kind: 'retryable', status, failure, error, retryAfterMs: parseRetryAfter(headers['retry-after']) }
  }
  return { kind: 'failure', status, failure, error }
}

/** A closed pool's refusal, before there was a pool: what undici's closed Pool answers, as a network failure. */
class TransportClosedError extends Error {
  override readonly name = 'TransportClosedError'
}

/** Rejects with the signal's reason once it aborts; never settles otherwise. */
function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason)
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
}

/** Bun, whose `undici` is a stand-in without a working Pool (see fetch.ts) and whose fetch() is a global. */
function isBun(): boolean {
  return typeof (globalThis as { Bun?: unknown }).Bun === 'object'
}

function noop(): void {}

/**
 * The HTTP layer: one undici Pool per client, sized to the client's concurrency, so the number
 * of sockets to Loki can never exceed it. Where undici's Pool is not available (Bun), a
 * FetchPool of the same size instead (fetch.ts).
 *
 * undici is loaded on the first attempt, not at import or construction (undici-pool.ts): until
 * then the transport holds no pool, no socket and no undici. Bun's FetchPool needs no undici and
 * is built at construction, where Bun checks its TLS options.
 */
export class Transport {
  readonly #opts: ResolvedOptions
  /** 'undici' forces undici's Pool; undefined lets the first attempt decide (isUndiciPool). */
  readonly #http: 'undici' | undefined
  #stack: HttpStack | undefined
  /** The first attempt's load of undici, while it is under way. */
  #opening: Promise<HttpStack> | undefined
  /** How a tracked socket is destroyed; known once undici is loaded, and only then are there sockets. */
  #destroyedError: () => Error = () => new Error('the transport is closed')
  /** close() or destroy() has run: no pool is opened after it. */
  #ended = false
  readonly #path: string
  readonly #url: string
  readonly #headers: Record<string, string>
  readonly #timeoutMs: number
  /** Every socket undici opened and that has not closed yet, connects in flight included. */
  readonly #sockets = new Set<Socket>()
  #abandonedBodies = 0

  /**
   * @param http which pool sends: on Bun a FetchPool, built here; elsewhere undici's Pool when the
   *   runtime's `undici` has a working one, decided when the first attempt loads it. Tests choose.
   */
  constructor(opts: ResolvedOptions, http: 'undici' | 'fetch' | undefined = isBun() ? 'fetch' : undefined) {
    this.#opts = opts
    this.#path = opts.path
    this.#url = opts.displayUrl
    this.#timeoutMs = opts.requestTimeoutMs
    this.#headers = { 'user-agent': `lokiwire/${VERSION}`, ...opts.headers }
    this.#http = http === 'fetch' ? undefined : http
    if (http === 'fetch') this.#stack = { pool: new FetchPool(opts), tunnel: undefined }
  }

  /**
   * The pool, loading undici and opening it on the first call. Rejects with a StackLoadFailure
   * when undici cannot be loaded, and with TransportClosedError once closed before any attempt.
   */
  #pool(): HttpPool | Promise<HttpPool> {
    if (this.#stack !== undefined) return this.#stack.pool
    if (this.#ended) return Promise.reject(new TransportClosedError('the transport is closed'))
    this.#opening ??= import('./undici-pool.js').then((m) => {
      this.#destroyedError = m.destroyedError
      this.#stack = m.openStack(this.#opts, this.#http, this.#sockets, (c) => trackingConnector(c, this.#sockets))
      return this.#stack
    }).catch((err: unknown) => {
      // The next attempt tries again: a package installed meanwhile, a transient I/O error.
      this.#opening = undefined
      throw new StackLoadFailure(err)
    })
    return this.#opening.then((stack) => stack.pool)
  }

  /**
   * Loads undici and opens the pool now instead of on the first attempt; resolves once done (or
   * at once when there is nothing to do). Never rejects: a failure to load is met again, and
   * reported, by the first attempt.
   */
  prepare(): Promise<void> {
    if (this.#stack !== undefined || this.#ended) return Promise.resolve()
    return Promise.resolve(this.#pool()).then(noop, noop)
  }

  /**
   * Answers whose body was not read to its end (it broke off, ran past DRAIN_LIMIT or
   * DRAIN_TIME_LIMIT_MS, or the attempt ended meanwhile): each cost its socket. The status
   * still decided the outcome, so a 2xx among them counted as delivered and was not resent.
   */
  get abandonedBodies(): number {
    return this.#abandonedBodies
  }

  /** The longest any attempt may take. */
  get requestTimeoutMs(): number {
    return this.#timeoutMs
  }

  /** Sockets currently open to Loki; on a FetchPool, requests in flight (each holds one). */
  get connections(): number {
    return this.#stack?.pool.stats.connected ?? 0
  }

  /**
   * One attempt. `signal` belongs to the batch (destroy, eviction); the attempt adds its own
   * total deadline on top, so a stalled server costs at most `requestTimeoutMs`, or
   * `info.timeoutMs` when that is shorter.
   */
  async send(body: EncodedBody, signal: AbortSignal, info: AttemptInfo): Promise<SendResult> {
    const started = performance.now()
    const message = { url: this.#url, batchId: info.batchId, attempt: info.attempt, entries: info.entries, bytes: body.body.length }
    if (channels.requestStart.hasSubscribers) channels.requestStart.publish(message)

    const deadline = new AbortController()
    const budgeted = info.timeoutMs !== undefined && info.timeoutMs < this.#timeoutMs
    const timeoutMs = budgeted ? info.timeoutMs! : this.#timeoutMs
    const timer = setTimeout(() => {
      deadline.abort(new LokiTimeoutError(budgeted
        ? `no complete answer within the ${timeoutMs} ms the retry budget (retry.budgetMs) had left`
        : `no complete answer within requestTimeoutMs (${timeoutMs} ms)`))
    }, timeoutMs)
    const onAbort = () => deadline.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })

    const headers: Record<string, string> = { ...this.#headers, 'content-type': body.contentType }
    if (body.contentEncoding !== undefined) headers['content-encoding'] = body.contentEncoding

    let result: SendResult
    let bodyAbandoned = false
    try {
      if (signal.aborted) throw signal.reason
      const pool = this.#pool()
      // The first attempt's load of undici counts against its deadline, and cannot outlast it.
      const ready = pool instanceof Promise ? await Promise.race([pool, rejectOnAbort(deadline.signal)]) : pool
      const request = ready.request({ method: 'POST', path: this.#path, headers, body: body.body, signal: deadline.signal })
      // undici settles a request still waiting for its connect only once the connect ends, which
      // connectTimeoutMs bounds, not this deadline (a budgeted attempt's is shorter): the attempt
      // ends at its deadline regardless, and an answer that still comes has its body destroyed.
      const res = await Promise.race([request, rejectOnAbort(deadline.signal)]).catch((err: unknown) => {
        request.then((late) => late.body.destroy(), noop)
        throw err
      })
      // From here the status decides: after a 2xx Loki has stored the push, whatever the body
      // does next, and resending it would only spend quota on duplicates.
      const failed = res.statusCode < 200 || res.statusCode >= 300 || res.statusCode === 260
      const drained = await drain(res.body, failed ? ERROR_BODY_KEEP : 0)
      if (!drained.complete) {
        bodyAbandoned = true
        this.#abandonedBodies++
      }
      result = classifyStatus(res.statusCode, drained.text, res.headers)
    } catch (err) {
      result = classifyError(err, signal, deadline.signal)
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }

    const durationMs = performance.now() - started
    // A status means Loki answered (success or not); without one the attempt failed before that.
    const { status } = result as { status?: number }
    if (status !== undefined) {
      if (channels.requestEnd.hasSubscribers) {
        channels.requestEnd.publish({ ...message, status, durationMs, bodyAbandoned })
      }
    } else if (channels.requestError.hasSubscribers) {
      channels.requestError.publish({ ...message, error: (result as { error: Error }).error, durationMs })
    }
    return result
  }

  /**
   * Waits for requests in flight, then closes every socket. Resolves once none is left, a
   * connect still in flight included.
   */
  async close(): Promise<void> {
    this.#ended = true
    // A first attempt still loading undici opens its pool, and sends, before this closes it.
    const stack = this.#stack ?? (await this.#opening?.catch(() => undefined))
    // Nothing was ever sent: there is nothing to close, and no reason to load undici for it.
    if (stack === undefined) return
    try {
      // undici's close() waits for one already under way and resolves on a closed pool; it
      // rejects only on a destroyed one.
      if (!stack.pool.destroyed) await stack.pool.close()
      await stack.tunnel?.close()
    } finally {
      await destroySockets(this.#sockets, this.#destroyedError)
    }
  }

  /** Closes every socket now, failing whatever is in flight; resolves once none is left. */
  async destroy(): Promise<void> {
    this.#ended = true
    const stack = this.#stack ?? (await this.#opening?.catch(() => undefined))
    if (stack === undefined) return
    try {
      // On a pool already destroyed, undici's destroy() resolves (once that destroy is done).
      await stack.pool.destroy()
      await stack.tunnel?.destroy()
    } finally {
      await destroySockets(this.#sockets, this.#destroyedError)
    }
  }
}
