/*
 * pino adapter, two ways:
 *
 *   pino({ transport: { target: 'lokiwire/pino', options } })   a worker thread (the default export)
 *   pino(lokiStream(options))                                   in-process, no worker
 *
 * Both read pino's NDJSON output. The worker side speaks pino's transport protocol directly
 * (thread-stream hands the destination raw text; pino posts its level table as PINO_CONFIG)
 * instead of going through pino-abstract-transport, which would add a dependency for every
 * user, an object-mode stream per line, and silently discard lines that are not JSON.
 *
 * Shutdown in the worker: thread-stream ends the destination at process exit (natural or
 * process.exit()) and blocks the main thread until the destination closes, giving up after
 * about 10 s. The destination closes only once client.close() has delivered or dropped every
 * entry, so the close deadline is capped below thread-stream's limit.
 */
import { EventEmitter } from 'node:events'
import { writeSync } from 'node:fs'
import { Writable } from 'node:stream'
import { parentPort, workerData } from 'node:worker_threads'
import { LokiClient, type CloseOptions, type FlushResult } from '../client/client.js'
import { LokiOptionError } from '../model/errors.js'
import { levelTable } from '../records/levels.js'
import { MAPPING_KEYS, RecordMapper, requireStream, resolveMapping, splitOptions, type RecordMappingOptions } from '../records/mapping.js'
import { LineSplitter } from '../records/ndjson.js'
import { resolveOptions, type LokiClientOptions } from '../model/options.js'
import { isObject, keysOf } from '../model/validate.js'
import { Reporter, type LokiAdapterEvents, type LokiBreakerNotice, type LokiDropSummary } from './report.js'
import { RoomGate } from './room.js'

export type { LevelPlacement, LineFormat, LineFunction, RecordMappingOptions, TimestampSource } from '../records/mapping.js'
export type { LokiAdapterEvents, LokiBreakerNotice, LokiDropSummary } from './report.js'
export type { CloseOptions, FlushResult, LokiClientStats } from '../client/client.js'
export type { LokiClient } from '../client/client.js'

/** Options of `lokiStream()` and of the `lokiwire/pino` transport: the client's, plus these. */
export interface LokiPinoOptions extends LokiClientOptions, RecordMappingOptions {
  /**
   * Custom levels, name -> number, for when pino cannot tell the adapter itself: pino hands its
   * level table, custom levels included, to the worker transport, to `lokiStream()` and through
   * `pino.multistream()`, but not through a wrapper stream of your own. pino's six levels are
   * always known; a number nobody named is sent as its digits.
   * @default {}
   */
  customLevels?: Readonly<Record<string, number>>
  /**
   * Field holding the message, for `line: 'message'`.
   * @default pino's `messageKey` when pino sends it, else 'msg'
   */
  messageKey?: string
}

/** Events of the in-process stream; the worker transport emits the same on pino's transport stream. */
export interface LokiPinoStreamEvents extends LokiAdapterEvents {
  /** pino's configuration message; handled internally. */
  message: [unknown]
}

const PINO_KEYS: readonly string[] = [
  ...MAPPING_KEYS,
  ...keysOf<Omit<LokiPinoOptions, keyof LokiClientOptions | keyof RecordMappingOptions>>()({ customLevels: true, messageKey: true }),
]
/** Keys pino and thread-stream add to a transport's options; never the user's. */
const INJECTED_KEYS = new Set(['levels', 'dedupe', 'pinoWillSendConfig', '$context'])
/** thread-stream gives up on a destination that has not closed ~10 s after end(). */
const WORKER_CLOSE_CAP_MS = 9000
/** How long the worker waits for pino's level table before mapping lines without it. */
const CONFIG_WAIT_MS = 1000
/** Lines pushed between two looks at the client's buffer: once per chunk of lines is enough. */
const LINES_PER_ROOM_CHECK = 512

interface PinoConfig {
  levels?: { labels?: Record<string, string>; values?: Record<string, number> }
  messageKey?: string
}

function isLoopback(url: unknown): boolean {
  try {
    const host = new URL(String(url)).hostname
    return host === 'localhost' || host === '[::1]' || host.startsWith('127.')
  } catch {
    return false
  }
}

/**
 * Printed when the worker's close deadline passed against a Loki on this machine. The likeliest
 * cause is a test receiver on the main thread, which pino blocks while the worker delivers.
 */
const SAME_THREAD_HINT =
  "lokiwire/pino: Loki on this machine did not answer before the close deadline. If it is lokiwire/testing's " +
  "receiver in this same process, it cannot answer while pino's transport.end() or exit hook blocks the main thread: " +
  'create it with createLokiTestServer({ thread: true })'

/**
 * Options, mapping and client for one pino destination, in or out of a worker. Lines in, entries
 * pushed; nothing here throws after construction.
 */
class PinoPipeline {
  readonly client: LokiClient
  readonly reporter: Reporter
  readonly closeTimeoutMs: number
  /** Loki's host is this machine, and the adapter may print to stderr. */
  readonly localStderr: boolean
  readonly #mapper: RecordMapper
  readonly #customMessageKey: string | undefined
  /** pino's levels plus the customLevels option: what pino's own table is laid over. */
  readonly #baseLevels: Map<number, string>
  readonly #splitter: LineSplitter
  #closing: Promise<FlushResult> | undefined

  constructor(
    options: unknown,
    hooks: { onDrop?: (s: LokiDropSummary) => void; onBreaker?: (n: LokiBreakerNotice) => void },
    injectedLevels?: unknown,
  ) {
    const { client, adapter } = splitOptions(options, PINO_KEYS)
    const mapping = resolveMapping(adapter)
    if (adapter.messageKey !== undefined && (typeof adapter.messageKey !== 'string' || adapter.messageKey === '')) {
      throw new LokiOptionError('messageKey', 'expected a non-empty string')
    }
    this.#customMessageKey = adapter.messageKey as string | undefined
    this.#baseLevels = levelTable(adapter.customLevels, 'customLevels')
    if (isObject(injectedLevels)) {
      for (const [n, v] of Object.entries(injectedLevels)) if (typeof v === 'number') this.#baseLevels.set(v, n)
    }
    requireStream(client, mapping.levelAs)
    this.#mapper = new RecordMapper(mapping, { timeKeys: ['time'], messageKey: this.#customMessageKey ?? 'msg', levels: this.#baseLevels })
    this.client = new LokiClient(client)
    // The client's line limit, so a line is never held longer than the client could send it.
    this.#splitter = new LineSplitter(resolveOptions(client).maxLineBytes)
    this.closeTimeoutMs = this.client.limits.closeTimeoutMs
    this.localStderr = mapping.onFailure === 'stderr' && isLoopback(client.url)
    this.reporter = new Reporter(this.client, { stderr: mapping.onFailure === 'stderr', ...hooks })
  }

  /** pino's PINO_CONFIG: its full level table (custom levels included) and message key. */
  configure(config: unknown): void {
    if (!isObject(config)) return
    const c = config as PinoConfig
    if (isObject(c.levels) && isObject(c.levels.labels)) {
      const table = new Map(this.#baseLevels)
      for (const [num, name] of Object.entries(c.levels.labels)) if (typeof name === 'string') table.set(Number(num), name)
      this.#mapper.levels = table
    }
    if (this.#customMessageKey === undefined && typeof c.messageKey === 'string' && c.messageKey !== '') this.#mapper.messageKey = c.messageKey
  }

  /** Text as pino writes it: NDJSON, possibly cut anywhere by thread-stream. */
  write(chunk: string | Uint8Array): void {
    this.begin(chunk)
    this.step(Infinity)
  }

  /** Starts on a chunk of text; step() then pushes its lines a slice at a time. */
  begin(chunk: string | Uint8Array): void {
    this.#splitter.feed(chunk)
  }

  /**
   * Pushes up to `maxLines` lines of the current chunk. True once the chunk is used up; its
   * unterminated tail stays in the splitter for the next one. Slicing lets the worker check for
   * room between parts of one large chunk.
   */
  step(maxLines: number): boolean {
    const splitter = this.#splitter
    for (let n = 0; n < maxLines; n++) {
      const line = splitter.next()
      if (line === undefined) return true
      this.#push(line)
    }
    return false
  }

  #push(line: string): void {
    // Most lines need only pino's head, and skip the entry object on their way in.
    const head = this.#mapper.mapHead(line)
    if (head !== undefined) this.client.pushLine(head.line, head.labels, head.timestamp)
    else this.client.push(this.#mapper.mapLine(line))
  }

  /**
   * Also reports pending drops before resolving: a caller that exits once flushed would
   * otherwise never hear of them, and in the worker the report must be posted before FLUSHED.
   */
  async flush(timeoutMs: number): Promise<FlushResult> {
    const result = await this.client.flush({ timeoutMs })
    this.reporter.reportNow()
    return result
  }

  close(options?: CloseOptions): Promise<FlushResult> {
    this.#closing ??= (async () => {
      // A last line without its newline is still a line.
      const last = this.#splitter.last()
      if (last !== undefined) this.#push(last)
      const result = await this.client.close(options)
      this.reporter.close()
      return result
    })()
    return this.#closing
  }

  async destroy(): Promise<void> {
    await this.client.destroy()
    this.reporter.close()
  }
}

/**
 * In-process pino destination: `pino(lokiStream(options))`. Every line is handed to the client
 * synchronously in `write()`; there is no intermediate buffer and no worker.
 */
export class LokiPinoStream extends EventEmitter<LokiPinoStreamEvents> {
  /** The client shipping the lines: `stats()`, and 'sent' / 'failed' / 'retry' / 'drop' / 'breaker' events. */
  readonly client: LokiClient
  readonly #pipeline: PinoPipeline
  #ended = false

  constructor(options: LokiPinoOptions) {
    super()
    this.#pipeline = new PinoPipeline(options, {
      onDrop: (s) => this.#emit('lokiwire:drop', s),
      onBreaker: (n) => this.#emit('lokiwire:breaker', n),
    })
    this.client = this.#pipeline.client
    this.on('message', (msg) => {
      if (isObject(msg) && msg.code === 'PINO_CONFIG') this.#pipeline.configure(msg.config)
    })
  }

  #emit<K extends keyof LokiAdapterEvents>(name: K, ...args: LokiPinoStreamEvents[K]): void {
    ;(this.emit as (n: K, ...a: LokiPinoStreamEvents[K]) => boolean)(name, ...args)
  }

  /** True until close(): pino recognises a destination stream by this property. */
  get writable(): boolean {
    return !this.#ended
  }

  /** Called by pino with one NDJSON line. Never throws; always returns true (no backpressure). */
  write(chunk: string | Uint8Array): boolean {
    this.#pipeline.write(chunk)
    return true
  }

  /**
   * What `logger.flush(cb)` calls: `cb` runs once every line written before it was delivered or
   * dropped, or after `closeTimeoutMs`. It never gets an error; the outcome is in `client.stats()`.
   */
  flush(cb?: (err?: Error | null) => void): void {
    void this.#pipeline.flush(this.#pipeline.closeTimeoutMs).then(() => cb?.())
  }

  /**
   * Delivers what is buffered within the deadline (default the client's `closeTimeoutMs`), drops
   * the rest, releases sockets and timers. Idempotent; never rejects.
   */
  close(options?: CloseOptions): Promise<FlushResult> {
    this.#ended = true
    return this.#pipeline.close(options)
  }

  /** `close()` for code that ends streams; `cb` runs once it has finished. */
  end(cb?: () => void): void {
    void this.close().then(() => cb?.())
  }

  /** Aborts at once: requests in flight are cancelled, buffered entries counted as `destroyed`. */
  destroy(): Promise<void> {
    this.#ended = true
    return this.#pipeline.destroy()
  }
}

/** `pino(lokiStream({ url, labels: { app: 'api' } }))`: ships from the logging thread, no worker. */
export function lokiStream(options: LokiPinoOptions): LokiPinoStream {
  return new LokiPinoStream(options)
}

/**
 * The destination the worker hands thread-stream: text in; 'close' only once the client has
 * closed. While the client's buffer is full and Loki is accepting, the write callback waits, so
 * thread-stream stops reading and a burst waits in pino's buffer instead of being refused.
 */
class WorkerDestination extends Writable {
  readonly #pipeline: PinoPipeline
  readonly #gate: RoomGate

  constructor(pipeline: PinoPipeline) {
    // A high-water mark above thread-stream's 4 MiB chunks: backpressure is signalled by holding
    // the callback, not by write() returning false.
    super({ decodeStrings: false, highWaterMark: 16 * 1024 * 1024 })
    this.#pipeline = pipeline
    this.#gate = new RoomGate(pipeline.client)
  }

  override _write(chunk: string | Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.#pipeline.begin(chunk)
    this.#feed(cb)
  }

  #feed(cb: (error?: Error | null) => void): void {
    while (!this.#gate.full()) {
      if (this.#pipeline.step(LINES_PER_ROOM_CHECK)) {
        cb()
        return
      }
    }
    void this.#gate.wait().then(() => this.#feed(cb))
  }

  override _final(cb: (error?: Error | null) => void): void {
    const timeoutMs = Math.min(this.#pipeline.closeTimeoutMs, WORKER_CLOSE_CAP_MS)
    void this.#pipeline.close({ timeoutMs }).then((result) => {
      this.#gate.close()
      if (result.timedOut && this.#pipeline.localStderr) printError(SAME_THREAD_HINT)
      cb()
    })
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    this.#gate.close()
    // After a normal end the client is already closed and this is a no-op; otherwise (pino's
    // multistream tearing down, an abort) entries are counted as destroyed.
    const state = this.#pipeline.client.state
    if (state === 'open' || state === 'closing') void this.#pipeline.destroy().then(() => cb(error))
    else cb(error)
  }

  /** thread-stream's FLUSH (logger.flush(cb) on pino 10): resolves once delivered or after closeTimeoutMs. */
  flush(): Promise<void> {
    return this.#pipeline.flush(this.#pipeline.closeTimeoutMs).then(() => undefined)
  }
}

/** Prints to fd 2: in a worker, process.stderr is relayed through a main thread that may be blocked. */
function printError(line: string): void {
  try {
    writeSync(2, line + '\n')
  } catch {
    // Nowhere left to report to.
  }
}

/**
 * What the worker hands thread-stream when its options are wrong: one line on stderr naming the
 * option, then every line is read and discarded (so the logger never blocks on a full buffer),
 * and the count is printed when the transport ends.
 */
class MisconfiguredDestination extends Writable {
  readonly #what: string
  readonly #target: string
  #lines = 0
  #partial = false

  constructor(err: unknown, target: string) {
    super({ decodeStrings: false, highWaterMark: 16 * 1024 * 1024 })
    const reason = err instanceof Error ? err.message : String(err)
    this.#what = err instanceof LokiOptionError ? `the invalid option "${err.option}"` : 'invalid options'
    this.#target = target
    printError(
      `${target}: ${reason}. Fix it in the options of pino's transport { target: '${target}', options }; ` +
        'until then every log line is discarded (the count is printed when the transport ends)',
    )
  }

  override _write(chunk: string | Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString()
    let nl = text.indexOf('\n')
    let from = 0
    while (nl !== -1) {
      if (nl > from || this.#partial) this.#lines++
      this.#partial = false
      from = nl + 1
      nl = text.indexOf('\n', from)
    }
    if (from < text.length) this.#partial = true
    cb()
  }

  override _final(cb: (error?: Error | null) => void): void {
    if (this.#partial) this.#lines++
    this.#partial = false
    const n = this.#lines
    if (n > 0) printError(`${this.#target}: discarded ${n} log ${n === 1 ? 'line' : 'lines'} because of ${this.#what}`)
    cb()
  }

  /** thread-stream's FLUSH: nothing is ever pending. */
  flush(): Promise<void> {
    return Promise.resolve()
  }
}

interface ThreadStreamData {
  $context?: { threadStreamVersion?: string }
  pinoWillSendConfig?: boolean
  levels?: unknown
}

function threadStreamData(): ThreadStreamData | undefined {
  const outer: unknown = workerData
  if (!isObject(outer) || !isObject(outer.workerData)) return undefined
  const inner = outer.workerData as ThreadStreamData
  return isObject(inner.$context) && typeof inner.$context.threadStreamVersion === 'string' ? inner : undefined
}

/**
 * The worker transport's entry point: pino calls it inside its transport thread with the
 * `options` given to `transport: { target: 'lokiwire/pino', options }`.
 */
export default async function lokiPinoTransport(options: LokiPinoOptions): Promise<Writable> {
  const { destination, ready } = pinoWorkerDestination(options, 'lokiwire/pino')
  await ready
  return destination
}

/** True inside the worker thread of a pino transport. @internal */
export function inPinoWorker(): boolean {
  return threadStreamData() !== undefined
}

/**
 * The destination a worker transport hands thread-stream, for `lokiwire/pino` and the targets
 * built on it. `translate` turns the target's own options into these (a throw there is a bad
 * option like any other); `target` names it in what is printed. `ready` settles once pino's
 * level table has arrived, or has been waited for long enough (lines mapped before it name
 * custom levels by number), and the client's HTTP stack and compressors are loaded: a worker
 * exists to ship, so it pays for them at start, not in its first burst (measured: loading undici
 * took about a sixth of the worker's time in a 200,000-line burst). Never throws. @internal
 */
export function pinoWorkerDestination(
  options: unknown,
  target: string,
  translate: (own: Record<string, unknown>) => LokiPinoOptions = (own) => own as unknown as LokiPinoOptions,
): { destination: Writable; ready: Promise<void> } {
  const ctx = threadStreamData()
  const port = ctx === undefined ? null : parentPort
  const given = (isObject(options) ? options : {}) as Record<string, unknown>
  const own: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(given)) if (!INJECTED_KEYS.has(k)) own[k] = v
  // Failures cross to the main thread as events on pino's transport stream (thread-stream's
  // EVENT message): functions cannot be passed into the worker, but listeners there can be.
  const post = (name: string, arg: unknown) => {
    try {
      port?.postMessage({ code: 'EVENT', name, args: [arg] })
    } catch {
      // The parent is gone; stderr (if enabled) has the report.
    }
  }
  let pipeline: PinoPipeline
  try {
    pipeline = new PinoPipeline(
      translate(own),
      { onDrop: (s) => post('lokiwire:drop', s), onBreaker: (n) => post('lokiwire:breaker', n) },
      // pino passes its customLevels in the options of a single target, or beside the targets.
      given.levels ?? ctx?.levels,
    )
  } catch (err) {
    // Thrown here, the error would reach the main thread as an 'error' event on pino's transport
    // stream, which nobody listens to: the host would crash because of its logging.
    return { destination: new MisconfiguredDestination(err, target), ready: Promise.resolve() }
  }
  let configured = Promise.resolve()
  let preloaded = Promise.resolve()
  if (port !== null && port !== undefined) {
    preloaded = pipeline.client.preload()
    let received: (() => void) | undefined
    const arrived = new Promise<void>((resolve) => (received = resolve))
    // Kept for the worker's life: a second pino() on the same transport sends its table again.
    port.on('message', (msg: unknown) => {
      if (!isObject(msg) || msg.code !== 'PINO_CONFIG') return
      pipeline.configure(msg.config)
      received?.()
    })
    if (ctx?.pinoWillSendConfig === true) {
      // Lines may already be waiting; mapping them before the table arrives would name custom
      // levels by number.
      let timer: NodeJS.Timeout | undefined
      configured = Promise.race([arrived, new Promise<void>((resolve) => (timer = setTimeout(resolve, CONFIG_WAIT_MS)))]).then(() =>
        clearTimeout(timer),
      )
    }
  }
  return { destination: new WorkerDestination(pipeline), ready: Promise.all([configured, preloaded]).then(() => undefined) }
}
