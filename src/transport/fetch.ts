/**
 * The connection pool under the transport, on runtimes where undici's Pool is not available.
 *
 * Bun resolves `undici` to a module of its own whose `Pool` has one method, `request()`, that
 * returns nothing, and whose `buildConnector()` throws: every attempt would fail. There the
 * transport sends with the runtime's `fetch()` through `FetchPool`, which does what the transport
 * relies on from undici's Pool: at most `concurrency` requests at once, the attempt's signal
 * cancels the request or its body, and a body can be read to its end or given up. The transport
 * above it (one deadline per attempt, the drain limits, the verdict) is the same code either way.
 */
import { LokiOptionError } from '../model/errors.js'
import type { ResolvedOptions } from '../model/options.js'
import { ProxyRefusedError } from './refused.js'

/** A response body as the transport reads it: undici's body stream, or FetchPool's. */
export interface ResponseBody extends AsyncIterable<Uint8Array> {
  /** Gives the body up: the rest is discarded and its connection is not reused. */
  destroy(): unknown
}

export interface HttpRequest {
  method: 'POST'
  path: string
  headers: Record<string, string>
  body: Uint8Array
  signal: AbortSignal
}

export interface HttpResponse {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  body: ResponseBody
}

/** What the transport uses of a connection pool: undici's `Pool` has it, and so has `FetchPool`. */
export interface HttpPool {
  /** Rejects when no status arrived (network error, abort); the body is then nothing to release. */
  request(request: HttpRequest): Promise<HttpResponse>
  readonly stats: { readonly connected: number }
  readonly closed: boolean
  readonly destroyed: boolean
  close(): Promise<void>
  destroy(): Promise<void>
}

/**
 * Whether `PoolClass` is undici's own Pool rather than a stand-in: Bun's has only a `request()`
 * that returns undefined, no `dispatch()`, `close()`, `destroy()` or `stats`. Decided by what the
 * class has, so a runtime that ships the real thing gets it. (Bun is known without asking: the
 * transport picks the fallback there at construction, before undici is loaded; see transport.ts.)
 */
export function isUndiciPool(PoolClass: abstract new (...args: never[]) => unknown): boolean {
  const proto: unknown = PoolClass.prototype
  if (typeof proto !== 'object' || proto === null) return false
  const methods = ['request', 'dispatch', 'close', 'destroy'] as const
  return methods.every((m) => typeof (proto as Record<string, unknown>)[m] === 'function') && 'stats' in proto
}

/** Bun's `Bun.FetchSession`: a keep-alive pool of its own, so connections are not shared with the application's fetch(). */
interface FetchSession {
  fetch: typeof fetch
  close(): void
}
/** Bun's `proxy` (of fetch() and of a session): `false` connects directly, whatever HTTP_PROXY says. */
type BunProxy = false | { url: string; headers: Record<string, string> }
type FetchSessionClass = new (init: { tls?: Record<string, unknown>; proxy: BunProxy }) => FetchSession

/**
 * Counts the requests in flight and makes the one past `size` wait for a free slot, so this pool
 * never asks the runtime for more than `size` connections at once.
 */
class Slots {
  readonly #size: number
  #used = 0
  readonly #waiting: Array<() => void> = []
  #idle: Array<() => void> = []

  constructor(size: number) {
    this.#size = size
  }

  get used(): number {
    return this.#used
  }

  /** Resolves once a slot is this caller's; rejects with the signal's reason if it aborts first. */
  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason)
    if (this.#used < this.#size) {
      this.#used++
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const granted = () => {
        signal.removeEventListener('abort', aborted)
        resolve()
      }
      const aborted = () => {
        this.#waiting.splice(this.#waiting.indexOf(granted), 1)
        reject(signal.reason)
      }
      this.#waiting.push(granted)
      signal.addEventListener('abort', aborted, { once: true })
    })
  }

  release(): void {
    // The slot passes straight to the next waiter: the count stays the same.
    const next = this.#waiting.shift()
    if (next !== undefined) return next()
    this.#used--
    if (this.#used > 0) return
    const idle = this.#idle
    this.#idle = []
    for (const resolve of idle) resolve()
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.#used === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }
}

/**
 * undici's code for a request it refuses to send (a bad header or URL). The transport reads the
 * code rather than undici's class, so it can tell without loading undici, and FetchPool's own
 * refusal carries the same code.
 */
export const INVALID_REQUEST_CODE = 'UND_ERR_INVALID_ARG'

/** fetch() refusing the request itself, as undici's Pool refuses it: a retry cannot fix it. */
class RequestRejectedError extends TypeError {
  override readonly name = 'RequestRejectedError'
  readonly code = INVALID_REQUEST_CODE
}

/** The reason a request is refused or cancelled once the pool is closed or destroyed. */
class PoolClosedError extends Error {
  override readonly name = 'PoolClosedError'
}

/**
 * undici's Pool, as far as the transport uses it, on `fetch()`. Each request holds a slot from
 * before its fetch() until its body has ended or been given up, so `concurrency` caps requests in
 * flight and with them the connections in use. On Bun the requests share a `Bun.FetchSession`,
 * whose idle connections `close()` and `destroy()` end; elsewhere they go through the global
 * `fetch()` and its connection pool.
 */
export class FetchPool implements HttpPool {
  readonly #origin: string
  readonly #proxy: ResolvedOptions['proxy']
  readonly #fetch: typeof fetch
  readonly #session: FetchSession | undefined
  /** Bun's fetch takes TLS and proxy options per request when there is no session to hold them. */
  readonly #perRequest: { tls?: Record<string, unknown>; proxy: BunProxy } | undefined
  readonly #slots: Slots
  /** One controller per request in flight, so destroy() can cancel them. */
  readonly #inFlight = new Set<AbortController>()
  #closed = false
  #destroyed = false

  constructor(opts: Pick<ResolvedOptions, 'origin' | 'concurrency' | 'tls' | 'proxy'>) {
    this.#origin = opts.origin
    this.#proxy = opts.proxy
    this.#slots = new Slots(opts.concurrency)
    const tls = bunTls(opts.tls)
    const init = { ...(tls === undefined ? {} : { tls }), proxy: bunProxy(opts.proxy) }
    const Session = (globalThis as { Bun?: { FetchSession?: FetchSessionClass } }).Bun?.FetchSession
    try {
      this.#session = typeof Session === 'function' ? new Session(init) : undefined
    } catch (err) {
      // Bun checks the TLS options here (a `ca` of the wrong type): a typed error at construction
      // rather than a failure on every attempt.
      throw new LokiOptionError('tls', err instanceof Error ? err.message : String(err))
    }
    this.#fetch = this.#session?.fetch ?? globalThis.fetch
    this.#perRequest = this.#session === undefined ? init : undefined
  }

  /** Requests in flight, each holding one connection. Idle keep-alive connections are the runtime's and not counted. */
  get stats(): { connected: number } {
    return { connected: this.#slots.used }
  }

  get closed(): boolean {
    return this.#closed
  }

  get destroyed(): boolean {
    return this.#destroyed
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    if (this.#closed) throw new PoolClosedError(this.#destroyed ? 'the pool is destroyed' : 'the pool is closed')
    await this.#slots.acquire(req.signal)
    if (this.#destroyed) {
      this.#slots.release()
      throw new PoolClosedError('the pool is destroyed')
    }
    const controller = new AbortController()
    const onAbort = () => controller.abort(req.signal.reason)
    let released = false
    const release = () => {
      if (released) return
      released = true
      req.signal.removeEventListener('abort', onAbort)
      this.#inFlight.delete(controller)
      this.#slots.release()
    }
    this.#inFlight.add(controller)
    req.signal.addEventListener('abort', onAbort, { once: true })
    if (req.signal.aborted) onAbort()
    try {
      const res = await this.#fetch(this.#origin + req.path, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: controller.signal,
        // A 3xx is an answer to classify, as undici's Pool returns it, not a hop to follow.
        redirect: 'manual',
        ...this.#perRequest,
      } as RequestInit)
      const retryAfter = res.headers.get('retry-after')
      return {
        statusCode: res.status,
        headers: retryAfter === null ? {} : { 'retry-after': retryAfter },
        body: readBody(res.body, release),
      }
    } catch (err) {
      release()
      throw this.#failure(err)
    }
  }

  /**
   * The error the transport classifies. Node's fetch() rejects every network failure as
   * `TypeError('fetch failed')` with the real error, and its code, as the cause; Bun's errors
   * carry their code themselves. A TypeError with neither is fetch() refusing the request itself
   * (a header value): an error with undici's code for it, as its Pool would throw, which a retry
   * cannot fix. Bun's ERR_PROXY_TUNNEL, the proxy's answer to CONNECT, becomes the Pool path's
   * ProxyRefusedError: 407 and 403 are final there too.
   */
  #failure(err: unknown): unknown {
    const code = (err as { code?: unknown } | undefined)?.code
    const status = (err as { status?: unknown } | undefined)?.status
    if (code === 'ERR_PROXY_TUNNEL' && typeof status === 'number' && this.#proxy !== undefined) {
      const loki = new URL(this.#origin)
      const target = `${loki.hostname}:${loki.port || (loki.protocol === 'https:' ? '443' : '80')}`
      return new ProxyRefusedError(this.#proxy.displayUrl, target, status)
    }
    if (!(err instanceof TypeError) || typeof code === 'string') return err
    if (err.cause !== undefined) return err.cause
    return new RequestRejectedError(err.message)
  }

  /** Refuses new requests, waits for those in flight (each bounded by its deadline), then ends the idle connections. */
  async close(): Promise<void> {
    this.#closed = true
    await this.#slots.idle()
    this.#session?.close()
  }

  /** Cancels every request in flight, then ends the idle connections. */
  async destroy(): Promise<void> {
    this.#closed = true
    this.#destroyed = true
    for (const c of this.#inFlight) c.abort(new PoolClosedError('the pool is destroyed'))
    await this.#slots.idle()
    this.#session?.close()
  }
}

/**
 * The `proxy` option as Bun's fetch() takes it. Without one, `false`: Bun's fetch() would
 * otherwise follow HTTP_PROXY and HTTPS_PROXY by itself, and the option is opt-in (`'env'` has
 * already been read into a URL, or into none when NO_PROXY names Loki).
 */
function bunProxy(proxy: ResolvedOptions['proxy']): BunProxy {
  if (proxy === undefined) return false
  return { url: proxy.origin, headers: proxy.authorization === undefined ? {} : { 'proxy-authorization': proxy.authorization } }
}

/** The client's TLS options as Bun's fetch() takes them (`serverName`, not `servername`). */
function bunTls(tls: ResolvedOptions['tls']): Record<string, unknown> | undefined {
  if (tls === undefined) return undefined
  const { servername, ...rest } = tls
  return servername === undefined ? { ...rest } : { ...rest, serverName: servername }
}

/**
 * A fetch() body as the transport reads it: Uint8Array chunks until the end. `destroy()` cancels
 * the stream, and a read pending or started after it fails instead of ending quietly, so a body
 * given up is never mistaken for a complete one. `release` runs once, when the body is done with.
 */
function readBody(stream: ReadableStream<Uint8Array> | null, release: () => void): ResponseBody {
  const reader = stream?.getReader()
  let destroyed = false
  const destroy = () => {
    if (destroyed) return
    destroyed = true
    reader?.cancel().catch(() => {})
    release()
  }
  const gone = () => new Error('the response body was given up')
  return {
    destroy,
    [Symbol.asyncIterator]() {
      return {
        async next(): Promise<IteratorResult<Uint8Array>> {
          if (destroyed) throw gone()
          if (reader === undefined) {
            release()
            return { done: true, value: undefined }
          }
          const r = await reader.read().catch((err: unknown) => {
            destroy()
            throw err
          })
          if (destroyed) throw gone()
          if (r.done) release()
          return r.done ? { done: true, value: undefined } : { done: false, value: r.value }
        },
        // Leaving a for-await loop early (a limit reached) gives the body up.
        async return(): Promise<IteratorResult<Uint8Array>> {
          destroy()
          return { done: true, value: undefined }
        },
      }
    },
  }
}
