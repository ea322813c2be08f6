import { createServer } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { decodeBody, formatSelector } from './decode.js'
import type { DecodedPushRequest } from './decode.js'
import { createThreadedServer } from './threaded.js'
import { ObservedReceiver } from './observed.js'

export const PUSH_PATH = '/loki/api/v1/push'

/** One log entry the server stored. */
export interface ReceivedEntry {
  labels: Record<string, string>
  /** Canonical stream key: the selector Loki prints, names sorted, e.g. `{app="api", level="info"}`. */
  stream: string
  /** Epoch nanoseconds as a decimal string. */
  timestamp: string
  line: string
  metadata?: Record<string, string>
  /** The request's `X-Scope-OrgID`, when it had one. */
  tenant?: string
}

/** One HTTP exchange, whatever its path or outcome. */
export interface ReceivedRequest {
  /** Date.now() when the request headers arrived. */
  at: number
  method: string
  /** Request path without the query string. */
  path: string
  /** Status sent; 0 while none has been sent and for exchanges that never got one (stall, reset). */
  status: number
  headers: Record<string, string | string[] | undefined>
  contentType?: string
  contentEncoding?: string
  tenant?: string
  /** Body size as received, before any decompression. */
  bodyBytes: number
  /** Entries decoded from the body (0 when it could not be decoded). */
  entries: number
  /** Entries this request added to `entries` (excludes duplicates and partial rejects). */
  stored: number
  /** Type of the fault that handled the request; absent for plain accept and non-push paths. */
  fault?: string
  /** Why the body was refused, or that the client went away before sending all of it. */
  error?: string
  /** Set once the exchange is over: response finished or connection closed. */
  durationMs?: number
}

export type Fault =
  /** 204, entries stored: what Loki does. */
  | { type: 'accept' }
  /** Answers `status` with `body` and `headers` (e.g. 429 + Retry-After). Stores nothing, whatever the status. */
  | { type: 'status'; status: number; body?: string; headers?: Record<string, string> }
  /** Stores the entries and answers `status` (default 200) with a body of `bytes` bytes. */
  | { type: 'largeBody'; bytes: number; status?: number }
  /**
   * Stores the entries `reject` returns false for and answers 400 listing the others, one line
   * each, as Loki does for a partly invalid batch. Returning a string uses it as that line.
   */
  | { type: 'partial'; reject: (entry: ReceivedEntry) => boolean | string }
  /** Reads the request and never answers; the socket stays open until the client or close() ends it. */
  | { type: 'stall' }
  /** Waits `delayMs` before answering as `then` (default accept); entries are stored on arrival. */
  | { type: 'slowHeaders'; delayMs: number; then?: Fault }
  /** Stores the entries, sends status (default 200) and a declared-length body one chunk per interval. */
  | { type: 'slowBody'; chunkBytes: number; chunks: number; intervalMs: number; status?: number }
  /** Resets the connection once the request is read, before any response byte. Stores nothing. */
  | { type: 'reset' }
  /**
   * Stores the entries, sends a 200 status line and headers promising 1000 bytes, then destroys
   * the socket: Loki took the push, and the answer broke off after its status.
   */
  | { type: 'closeAfterHeaders' }

export interface LokiTestServerEvents {
  /** Anything observable changed: entries, requests, connections, faults. */
  change: [server: LokiTestServer]
  /** An exchange ended (same moment its `durationMs` is set). */
  request: [request: ReceivedRequest]
}

export interface LokiTestServerOptions {
  /** Default 0: an ephemeral port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /**
   * Run the receiver in a worker thread of its own, so that it keeps answering while this
   * thread is blocked. Needed to test pino's worker transport (`lokiwire/pino` as a `transport`
   * target) in the same process: pino's `transport.end()`, `flushSync()` and exit hook block the
   * main thread until the transport has delivered, and a receiver on that thread cannot answer
   * it. Reads (`entries`, `requests`...) stay synchronous and show everything the receiver has
   * answered; commands take effect before the next request. Faults must be plain data: a
   * `partial` fault's `reject` function cannot cross threads (setFault throws a TypeError).
   * Needs the built package (`lokiwire/testing`), not the TypeScript sources.
   * @default false
   */
  thread?: boolean
}

export interface LokiTestServer {
  /** e.g. `http://127.0.0.1:PORT` */
  readonly url: string
  /** `url` + `/loki/api/v1/push` */
  readonly pushUrl: string
  readonly port: number
  /** Stored entries in arrival order, after deduplication. */
  readonly entries: ReceivedEntry[]
  /** Entries dropped because (tenant, stream, timestamp, line, metadata) was already stored. */
  readonly duplicates: number
  readonly requests: ReceivedRequest[]
  /**
   * Connections open now, most at once since start or `reset()`, and accepted in all. One counts
   * as open until it has closed on this side too (so `open === 0` means no socket is left here),
   * a few event-loop turns after the client ended it: a client that replaces a connection at once
   * can briefly count with both in `peak`.
   */
  readonly connections: { open: number; peak: number; total: number }
  /** Behaviour for every following push (null = accept). */
  setFault(fault: Fault | null): void
  /** One-shot faults, consumed by pushes in arrival order before the persistent one applies. */
  queueFaults(...faults: Fault[]): void
  /**
   * Resolves once `predicate` holds, re-checking on every change. Rejects after `timeoutMs`
   * (default 5000), when the predicate throws, or when the server closes first.
   */
  waitFor(predicate: (server: LokiTestServer) => boolean, opts?: { timeoutMs?: number }): Promise<void>
  on<E extends keyof LokiTestServerEvents>(event: E, listener: (...args: LokiTestServerEvents[E]) => void): this
  off<E extends keyof LokiTestServerEvents>(event: E, listener: (...args: LokiTestServerEvents[E]) => void): this
  /** Forgets entries, requests, duplicates and faults; `peak` and `total` restart from `open`. */
  reset(): void
  /** Stops listening and destroys every connection, stalled ones included. Idempotent. */
  close(): Promise<void>
}

const ACCEPT: Fault = { type: 'accept' }
const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000

function noop(): void {}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

function nsToTime(ns: string): string {
  try {
    return new Date(Number(BigInt(ns) / 1_000_000n)).toISOString()
  } catch {
    return `${ns}ns`
  }
}

function dedupKey(e: ReceivedEntry): string {
  const meta = e.metadata === undefined ? null : Object.entries(e.metadata).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  return JSON.stringify([e.tenant ?? null, e.stream, e.timestamp, e.line, meta])
}

function flatten(decoded: DecodedPushRequest, tenant: string | undefined): ReceivedEntry[] {
  const out: ReceivedEntry[] = []
  for (const s of decoded.streams) {
    const stream = formatSelector(s.labels)
    for (const e of s.entries) {
      const entry: ReceivedEntry = { labels: { ...s.labels }, stream, timestamp: e.timestamp, line: e.line }
      if (e.metadata !== undefined) entry.metadata = e.metadata
      if (tenant !== undefined) entry.tenant = tenant
      out.push(entry)
    }
  }
  return out
}

/** Whether answering as this fault stores what was pushed. */
function stores(fault: Fault): boolean {
  return fault.type === 'accept' || fault.type === 'largeBody' || fault.type === 'slowBody' || fault.type === 'partial' || fault.type === 'closeAfterHeaders'
}

interface Exchange {
  req: IncomingMessage
  res: ServerResponse
  record: ReceivedRequest
  recorded: boolean
  timers: Set<NodeJS.Timeout>
}

class LokiTestServerImpl extends ObservedReceiver implements LokiTestServer {
  readonly url: string
  readonly pushUrl: string
  readonly port: number
  readonly entries: ReceivedEntry[] = []
  duplicates = 0
  readonly requests: ReceivedRequest[] = []
  readonly connections = { open: 0, peak: 0, total: 0 }

  readonly #server: Server
  readonly #keys = new Set<string>()
  readonly #sockets = new Set<Socket>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #fault: Fault | null = null
  #queue: Fault[] = []
  #closing: Promise<void> | undefined
  /** close() has begun: nothing new is scheduled. */
  #closed = false

  constructor(server: Server, host: string) {
    super()
    this.#server = server
    this.port = (server.address() as AddressInfo).port
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`
    this.pushUrl = this.url + PUSH_PATH
    server.on('connection', (socket) => this.#onConnection(socket))
    server.on('request', (req, res) => this.#onRequest(req, res))
    server.on('error', noop)
  }

  setFault(fault: Fault | null): void {
    this.#fault = fault
  }

  queueFaults(...faults: Fault[]): void {
    this.#queue.push(...faults)
  }

  reset(): void {
    this.entries.length = 0
    this.requests.length = 0
    this.duplicates = 0
    this.#keys.clear()
    this.#fault = null
    this.#queue = []
    this.connections.peak = this.connections.open
    this.connections.total = this.connections.open
    this.#changed()
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#closed = true
      for (const t of this.#timers) clearTimeout(t)
      this.#timers.clear()
      // The callback fires once every connection is gone, but the listening handle itself is
      // released in the loop's close phase, which may come after the next check phase: two
      // setImmediate hops guarantee no handle of ours is still listed when the promise resolves.
      this.#server.close(() =>
        setImmediate(() =>
          setImmediate(() => {
            this.down = true
            this.events.emit('closed')
            resolve()
          }),
        ),
      )
      this.#server.closeAllConnections()
      for (const socket of this.#sockets) socket.destroy()
    })
    return this.#closing
  }

  protected override describe(): string {
    const statuses = this.requests.map((r) => r.status).join(',')
    const c = this.connections
    return `entries=${this.entries.length} duplicates=${this.duplicates} requests=${this.requests.length} [${statuses}] connections open=${c.open} peak=${c.peak} total=${c.total}`
  }

  #changed(): void {
    this.events.emit('change', this)
  }

  #onConnection(socket: Socket): void {
    // A client that resets or vanishes must never surface as an uncaught error in the test process.
    socket.on('error', noop)
    this.#sockets.add(socket)
    const c = this.connections
    c.open++
    c.total++
    if (c.open > c.peak) c.peak = c.open
    socket.once('close', () => {
      this.#sockets.delete(socket)
      c.open--
      this.#changed()
    })
    this.#changed()
  }

  #record(x: Exchange): void {
    if (x.recorded) return
    x.recorded = true
    this.requests.push(x.record)
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    req.on('error', noop)
    res.on('error', noop)
    const tenant = header(req.headers, 'x-scope-orgid')
    const record: ReceivedRequest = {
      at: Date.now(),
      method: req.method ?? '',
      path: (req.url ?? '/').split('?')[0]!,
      status: 0,
      headers: { ...req.headers },
      bodyBytes: 0,
      entries: 0,
      stored: 0,
    }
    const contentType = header(req.headers, 'content-type')
    const contentEncoding = header(req.headers, 'content-encoding')
    if (contentType !== undefined) record.contentType = contentType
    if (contentEncoding !== undefined) record.contentEncoding = contentEncoding
    if (tenant !== undefined) record.tenant = tenant
    const x: Exchange = { req, res, record, recorded: false, timers: new Set() }

    let bodyDone = false
    res.once('close', () => {
      for (const t of x.timers) {
        clearTimeout(t)
        this.#timers.delete(t)
      }
      if (!bodyDone) record.error ??= 'client went away before the body was complete'
      record.durationMs = Date.now() - record.at
      this.#record(x)
      this.events.emit('request', record)
      this.#changed()
    })

    const isPush = record.path === PUSH_PATH && record.method === 'POST'
    // Taken on arrival so queued faults line up with requests in the order they reach the server.
    const fault = isPush ? (this.#queue.shift() ?? this.#fault ?? ACCEPT) : undefined
    if (fault !== undefined && fault.type !== 'accept') record.fault = fault.type

    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      record.bodyBytes += chunk.length
    })
    req.on('end', () => {
      bodyDone = true
      if (this.#closed) return
      if (fault === undefined) {
        this.#record(x)
        if (record.path !== PUSH_PATH) this.#text(x, 404, '404 page not found\n')
        else this.#text(x, 405, 'method not allowed\n')
        return
      }
      try {
        this.#handlePush(x, fault, Buffer.concat(chunks), tenant)
      } catch (err) {
        // Only a caller-supplied callback (partial's reject) can throw here; surface it in the
        // response and the record instead of as an uncaught exception in the test process.
        record.error = `test server fault handler threw: ${(err as Error)?.message ?? String(err)}`
        this.#record(x)
        if (!res.headersSent && !res.destroyed) this.#text(x, 500, `${record.error}\n`)
      }
    })
  }

  #handlePush(x: Exchange, fault: Fault, body: Buffer, tenant: string | undefined): void {
    const { record } = x
    let delay = 0
    let final = fault
    while (final.type === 'slowHeaders') {
      delay += final.delayMs
      final = final.then ?? ACCEPT
    }

    let received: ReceivedEntry[] = []
    try {
      received = flatten(decodeBody(body, record.contentType, record.contentEncoding), tenant)
      record.entries = received.length
    } catch (err) {
      record.error = (err as Error).message
    }

    // Stored on arrival, before any delay: a client that gives up on a slow answer has still
    // delivered, which is exactly the case retries and deduplication must cope with.
    const failures: string[] = []
    if (record.error === undefined && stores(final)) {
      for (const entry of received) {
        if (final.type === 'partial') {
          const verdict = final.reject(entry)
          if (verdict === true || typeof verdict === 'string') {
            failures.push(
              typeof verdict === 'string'
                ? verdict
                : `entry for stream '${entry.stream}' has timestamp too old: ${nsToTime(entry.timestamp)}, oldest acceptable timestamp is: ${new Date(Date.now() - SEVEN_DAYS_MS).toISOString()}`,
            )
            continue
          }
        }
        this.#store(entry, record)
      }
    }
    this.#record(x)
    this.#changed()

    const answer = () => this.#answer(x, final, failures)
    if (delay > 0) this.#schedule(x, delay, answer)
    else answer()
  }

  #store(entry: ReceivedEntry, record: ReceivedRequest): void {
    const key = dedupKey(entry)
    if (this.#keys.has(key)) {
      this.duplicates++
      return
    }
    this.#keys.add(key)
    this.entries.push(entry)
    record.stored++
  }

  #answer(x: Exchange, fault: Fault, failures: string[]): void {
    const { record, res, req } = x
    if (record.error !== undefined && stores(fault)) {
      this.#text(x, 400, `${record.error}\n`)
      return
    }
    switch (fault.type) {
      case 'accept':
        this.#text(x, 204, '')
        return
      case 'status':
        this.#status(x, fault.status)
        res.writeHead(fault.status, { 'content-type': 'text/plain; charset=utf-8', ...fault.headers })
        res.end(fault.body ?? '')
        return
      case 'largeBody':
        this.#status(x, fault.status ?? 200)
        res.writeHead(record.status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': fault.bytes })
        res.end(Buffer.alloc(fault.bytes, 0x78))
        return
      case 'partial':
        if (failures.length === 0) this.#text(x, 204, '')
        else this.#text(x, 400, failures.join('\n') + '\n')
        return
      case 'stall':
        return
      case 'slowHeaders':
        // Unwrapped by the caller; kept so the switch stays exhaustive.
        return
      case 'slowBody': {
        this.#status(x, fault.status ?? 200)
        res.writeHead(record.status, {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': fault.chunkBytes * fault.chunks,
        })
        res.flushHeaders()
        const chunk = Buffer.alloc(fault.chunkBytes, 0x78)
        let left = fault.chunks
        const next = () => {
          if (left === 0) {
            res.end()
            return
          }
          left--
          res.write(chunk)
          this.#schedule(x, fault.intervalMs, next)
        }
        this.#schedule(x, fault.intervalMs, next)
        return
      }
      case 'reset':
        req.socket.resetAndDestroy()
        return
      case 'closeAfterHeaders': {
        this.#status(x, 200)
        // Written on the raw socket so the headers are on the wire before the connection dies.
        const socket = req.socket
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 1000\r\n\r\n', () => socket.destroy())
        return
      }
    }
  }

  /**
   * Books the status before a byte of it is written, and says so: the worker-thread mirror
   * forwards every change, and a client that has its answer must find it on the mirror at once.
   */
  #status(x: Exchange, status: number): void {
    x.record.status = status
    this.#changed()
  }

  #text(x: Exchange, status: number, body: string): void {
    this.#status(x, status)
    if (status === 204) {
      x.res.writeHead(204)
      x.res.end()
      return
    }
    x.res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    x.res.end(body)
  }

  #schedule(x: Exchange, ms: number, fn: () => void): void {
    if (this.#closed) return
    const t = setTimeout(() => {
      x.timers.delete(t)
      this.#timers.delete(t)
      fn()
    }, ms)
    x.timers.add(t)
    this.#timers.add(t)
  }
}

/** Starts a Loki-compatible push receiver for tests, on 127.0.0.1 and an ephemeral port by default. */
export async function createLokiTestServer(options: LokiTestServerOptions = {}): Promise<LokiTestServer> {
  if (options.thread === true) return createThreadedServer(options, PUSH_PATH)
  const host = options.host ?? '127.0.0.1'
  const server = createServer()
  // Long enough for a client's pooled connection to be reused between pushes, short enough that
  // an idle one does not outlive a test by much.
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return new LokiTestServerImpl(server, host)
}
