/*
 * winston transport. winston pipes every info object into its transports, which are object-mode
 * Writables: a transport's 'finish' is the only signal winston waits for on logger.end(), so
 * 'finish' here waits for client.close(), and nothing is reported through 'error' (winston
 * re-emits a transport's 'error' on the logger, where it kills a process with no listener).
 */
import { createRequire } from 'node:module'
import type TransportStreamType from 'winston-transport'
import { LokiClient, type CloseOptions, type FlushResult } from '../client/client.js'
import { MAPPING_KEYS, RecordMapper, requireStream, resolveMapping, sourceRules, splitOptions, type RecordMappingOptions } from '../records/mapping.js'
import type { LokiClientOptions } from '../model/options.js'
import { keysOf } from '../model/validate.js'
import { Reporter, type LokiAdapterEvents } from './report.js'
import { RoomGate } from './room.js'

export type { LevelPlacement, LineFormat, RecordMappingOptions } from '../records/mapping.js'
export type { LokiAdapterEvents, LokiBreakerNotice, LokiDropSummary } from './report.js'
export type { CloseOptions, FlushResult, LokiClientStats } from '../client/client.js'
export type { LokiClient } from '../client/client.js'

// triple-beam's symbols, by their registry names: no import needed to read them.
const LEVEL = Symbol.for('level')
const MESSAGE = Symbol.for('message')

/**
 * winston-transport is an optional peer dependency: loaded by hand so that its absence is one
 * clear sentence instead of a bare "Cannot find package". It is CommonJS, so require() reads it
 * from either build, resolved from this file as an import would be.
 */
function loadTransportStream(): typeof TransportStreamType {
  try {
    return createRequire(import.meta.url)('winston-transport') as typeof TransportStreamType
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code !== 'MODULE_NOT_FOUND' || !String((err as Error).message).includes("'winston-transport'")) throw err
    const missing = new Error(
      "lokiwire/winston needs the package 'winston-transport', which winston brings: run `npm install winston` " +
        '(or `npm install winston-transport`)',
      { cause: err },
    )
    ;(missing as Error & { code: unknown }).code = code
    throw missing
  }
}

const TransportStream = loadTransportStream()

/** Options of `new LokiTransport()`: the client's, the shared mapping options, and winston's transport options. */
export interface LokiTransportOptions extends LokiClientOptions, RecordMappingOptions {
  /** Most verbose level this transport ships. @default the logger's level */
  level?: string
  /** A winston format applied to what this transport ships, after the logger's. @default none */
  format?: TransportStreamType.TransportStreamOptions['format']
  /** Ship nothing. @default false */
  silent?: boolean
  /** Ship winston's uncaught-exception records. @default false */
  handleExceptions?: boolean
  /** Ship winston's unhandled-rejection records. @default false */
  handleRejections?: boolean
}

/** How often log() asks the client whether its buffer is full: once per run of records is enough. */
const ROOM_CHECK_EVERY = 64

/** winston's own transport options, handed to winston-transport. */
const TRANSPORT_KEYS = keysOf<Omit<LokiTransportOptions, keyof LokiClientOptions | keyof RecordMappingOptions>>()({
  level: true,
  format: true,
  silent: true,
  handleExceptions: true,
  handleRejections: true,
})

/** A winston info object: string keys for fields, triple-beam symbols for level and output. */
type Info = Record<string | symbol, unknown>

/**
 * Ships winston records to Loki. Levels of any set (npm, syslog, cli, custom) become the `level`
 * label by name; the line is what the logger's format produced (`info[MESSAGE]`), else the info
 * object as JSON.
 *
 * End with `logger.end()` and wait for the logger's (or this transport's) 'finish': it fires
 * once every line was delivered or definitively dropped, within `closeTimeoutMs`. Problems are
 * reported as 'lokiwire:drop' and 'lokiwire:breaker' events, as the pino adapter reports them,
 * and as 'warn' (never 'error') for the logger to pass on; all are counted in
 * `transport.client.stats()`.
 */
export class LokiTransport extends TransportStream {
  /** The client shipping the lines: `stats()`, and 'sent' / 'failed' / 'retry' / 'drop' / 'breaker' events. */
  readonly client: LokiClient
  readonly #mapper: RecordMapper
  readonly #reporter: Reporter
  readonly #gate: RoomGate
  #sinceRoomCheck = 0
  #closing: Promise<FlushResult> | undefined

  constructor(options: LokiTransportOptions) {
    const { client, adapter } = splitOptions(options, [...MAPPING_KEYS, ...TRANSPORT_KEYS])
    const mapping = resolveMapping(adapter)
    requireStream(client, mapping.levelAs)
    const transportOptions: TransportStreamType.TransportStreamOptions = {}
    for (const key of TRANSPORT_KEYS) {
      if (adapter[key] !== undefined) (transportOptions as Record<string, unknown>)[key] = adapter[key]
    }
    super(transportOptions)
    // winston sets no level table: its levels are names. Its `timestamp` format writes `timestamp`.
    this.#mapper = new RecordMapper(mapping, { timeKeys: ['timestamp'], messageKey: 'message', levels: new Map(), ...sourceRules(options) })
    this.client = new LokiClient(client)
    this.#reporter = new Reporter(this.client, {
      stderr: mapping.onFailure === 'stderr',
      onDrop: (s) => this.#report('lokiwire:drop', s),
      onBreaker: (n) => this.#report('lokiwire:breaker', n),
    })
    this.#gate = new RoomGate(this.client)
  }

  /**
   * The adapters' event, and 'warn' with the same payload: a winston logger passes on only
   * 'warn' and 'error' from its transports, and 'error' would crash a logger nobody listens to.
   */
  #report<K extends keyof LokiAdapterEvents>(name: K, ...args: LokiAdapterEvents[K]): void {
    this.emit(name, ...args)
    this.emit('warn', ...args)
  }

  override log(info: Info, next: () => void): void {
    const record = info as Record<string, unknown>
    const serialized = typeof info[MESSAGE] === 'string' ? info[MESSAGE] : undefined
    const level = info[LEVEL] ?? info.level
    // Most records need only their serialised form and level, and skip the entry object.
    const entry = this.#mapper.mapSerialized(record, serialized, level)
    if (entry !== undefined) this.client.pushLine(entry.line, entry.labels, entry.timestamp)
    else this.client.push(this.#mapper.map(record, serialized, level))
    if (this.listenerCount('logged') > 0) this.emit('logged', info)
    // Holding `next` pauses winston's pipe while the client's buffer is full and Loki is
    // accepting: a burst then waits in the logger instead of being refused (see RoomGate).
    if (++this.#sinceRoomCheck >= ROOM_CHECK_EVERY) {
      this.#sinceRoomCheck = 0
      if (this.#gate.full()) {
        void this.#gate.wait().then(next)
        return
      }
    }
    next()
  }

  /**
   * A write after end() would be an 'error' event, which winston re-throws from the logger. The
   * entry goes to the client instead, which counts it as dropped (`closed`) once it has closed.
   */
  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    if (!this.#ended()) return (super.write as (...a: unknown[]) => boolean)(chunk, encoding, cb)
    if (typeof chunk === 'object' && chunk !== null) this.log(chunk as Info, () => {})
    const done = typeof encoding === 'function' ? encoding : cb
    if (typeof done === 'function') process.nextTick(done as () => void)
    return true
  }

  override _final(cb: (error?: Error | null) => void): void {
    void this.#close().then(() => cb())
  }

  override _destroy(error: Error | null, cb: (error: Error | null) => void): void {
    this.#gate.close()
    const state = this.client.state
    if (state === 'open' || state === 'closing') {
      void this.client.destroy().then(() => {
        this.#reporter.close()
        cb(error)
      })
    } else {
      cb(error)
    }
  }

  /**
   * What winston calls when the transport is removed or the logger closed: ends the transport,
   * which closes the client. Wait for 'finish' to know delivery is over.
   */
  override close(): void {
    if (!this.#ended()) this.end()
  }

  /**
   * Resolves when everything logged so far has been delivered or dropped, or after `timeoutMs`
   * (default: no deadline). Never rejects. The transport stays open.
   */
  flush(options?: { timeoutMs?: number }): Promise<FlushResult> {
    return this.client.flush(options)
  }

  /** Delivers what is buffered within `timeoutMs` (default `closeTimeoutMs`), then releases everything. */
  #close(options?: CloseOptions): Promise<FlushResult> {
    this.#closing ??= this.client.close(options).then((result) => {
      this.#gate.close()
      this.#reporter.close()
      return result
    })
    return this.#closing
  }

  /** Whether end() was called: readable-stream 3, which winston-transport uses, has no writableEnded. */
  #ended(): boolean {
    return (this as unknown as { _writableState: { ending: boolean } })._writableState.ending
  }
}
