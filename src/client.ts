import { EventEmitter } from 'node:events'
import { Batcher, type CutBatch, type StreamBuffer } from './batcher.js'
import { Breaker, type BreakerState } from './breaker.js'
import { Delivery } from './delivery.js'
import { encodeBodySync } from './encode/index.js'
import { LokiAbortError, LokiEntryError, LokiError, ErrorCodes } from './errors.js'
import type { DropEvent, LokiClientEvents, SpoolEvent } from './events.js'
import { registerExitFlush, unregisterExitFlush, type ExitHooks } from './exit.js'
import { isLabelName, isRefusal, labelNameProblem, NO_LABELS, resolveLabels, sanitizeLabelName, truncateUtf8, type Refusal, type ResolvedStream } from './labels.js'
import { MAX_METADATA_PAIRS, metadataValue } from './metadata.js'
import { resolveOptions, type LokiClientOptions, type ResolvedOptions } from './options.js'
import { BatchQueue, createBatch, type Batch } from './queue.js'
import { readTimestamp, type TimestampParts } from './timestamp.js'
import { Spool } from './spool.js'
import { Transport } from './transport.js'
import { DropWarnings, warnNoLabels } from './warnings.js'
import { DROP_REASONS, type DropReason, type LogEntry } from './types.js'

/** Buffer-limit cost of an entry beyond its line and metadata: timestamp and framing. */
export const ENTRY_OVERHEAD_BYTES = 24
/** Valid structured metadata names remembered before that cache is reset. */
const METADATA_NAME_CACHE_SIZE = 1000
/** Nodes of the label-set cache (one per distinct label prefix) kept before it is reset. */
const LABEL_CACHE_NODES = 20_000
/** setTimeout's largest delay: "no deadline", while still holding the process open. */
const NO_DEADLINE_MS = 2_147_483_647
/** The idle replay reads a record from disk at most this often, however short the timeouts. */
const MIN_REPLAY_INTERVAL_MS = 1000
/** Reasons a spool can rescue: Loki was unreachable or slow, not wrong about the data. */
const SPOOLABLE: ReadonlySet<DropReason> = new Set<DropReason>(['retries_exhausted', 'buffer_full', 'close_timeout'])

export interface FlushOptions {
  /** Give up waiting after this long. @default no deadline */
  timeoutMs?: number
}

export interface FlushResult {
  /**
   * True only when every entry push() accepted before the call was delivered: Loki answered 2xx
   * (not 260) for it before the deadline. False when any of them timed out, was dropped or went
   * to the spool instead.
   */
  ok: boolean
  /** The deadline passed with entries from before the call still pending. */
  timedOut: boolean
  /** Entries still buffered or in flight when the call returned (entries pushed meanwhile included). */
  pendingEntries: number
  /** Entries dropped (any reason) while the call ran, entries pushed meanwhile included. */
  droppedEntries: number
  /** Entries written to the spool while the call ran, to be replayed later. */
  spooledEntries: number
}

export interface CloseOptions {
  /** Deadline for delivering what is buffered. @default the client's `closeTimeoutMs` (5000) */
  timeoutMs?: number
}

/** Counters since construction and gauges of the moment. See the README for the identity they keep. */
export interface LokiClientStats {
  /** Entries given to push(), accepted or not. */
  pushed: number
  sent: { entries: number; bytes: number; batches: number }
  dropped: { total: number } & Record<DropReason, number>
  /** Lines cut to `maxLineBytes` (they were still sent). */
  truncated: number
  /**
   * Structured metadata pairs (the entries were still sent): `renamed` to a valid name under
   * `invalidLabels: 'sanitize'` (`trace-id` -> `trace_id`); `cut`: left out, beyond Loki's 128
   * per entry, with a name nothing valid remains of (empty), or overwritten by a later pair
   * that ended up with the same name.
   */
  metadata: { renamed: number; cut: number }
  /** Retries scheduled. */
  retries: number
  /** Failed HTTP attempts by class. */
  failedRequests: { total: number; status4xx: number; status429: number; status5xx: number; network: number; timeout: number }
  inFlight: { requests: number; entries: number }
  /** Entries waiting: in the batcher, queued, or between retries (not on the wire). */
  buffered: { entries: number; bytes: number }
  /** What counts against `maxBufferBytes`: buffered plus in flight. */
  bufferUsedBytes: number
  breaker: BreakerState
  /** Sockets open to Loki now. */
  connections: number
  /**
   * Answers whose body was not read to its end (it broke off, or ran past 8 MiB or 1 s): each
   * cost its socket. The status still decided: a 2xx among them counted as sent, not resent.
   */
  abandonedBodies: number
  /** Exceptions thrown by your event listeners, caught so they cannot break delivery. */
  listenerErrors: number
  /**
   * The disk spool (all zero without one): entries `written` to it, entries `loaded` back for
   * replay, bytes on disk, and problems met (full, write failed, corrupt data skipped).
   */
  spool: { bytes: number; written: number; loaded: number; errors: number }
  state: 'open' | 'closing' | 'closed' | 'destroyed'
}

/**
 * The label-set cache is a trie: one level per label, keyed by name and then by value. A string
 * key joined with separators would let a value that contains them pass for another label set;
 * Map keys cannot collide, and the walk builds no string on the hot path.
 */
interface LabelNode {
  next: Map<string, Map<unknown, LabelNode>> | undefined
  /** Undefined until a label set ends here. */
  resolved: ResolvedStream | Refusal | undefined
}

function newLabelNode(): LabelNode {
  return { next: undefined, resolved: undefined }
}

const NO_LABELS_REFUSAL: Refusal = { field: 'labels', message: NO_LABELS }

/** A value as an error message shows it: short, and never a whole object. */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)
  if (typeof v === 'bigint') return `${v}n`
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return String(v)
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'an invalid Date' : `a Date (${v.toISOString()})`
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`
}

/** Index of the pair named `name` in [name, value, ...], or -1. */
function pairIndex(pairs: readonly string[], name: string): number {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return i
  return -1
}

function emptyDrops(): { total: number } & Record<DropReason, number> {
  const out = { total: 0 } as { total: number } & Record<DropReason, number>
  for (const r of DROP_REASONS) out[r] = 0
  return out
}

/**
 * Ships log entries to Loki: push -> batcher -> queue -> breaker -> HTTP.
 *
 * Nothing here throws after construction and no 'error' event is ever emitted: failures are
 * counted in `stats()` and reported through 'failed', 'retry' and 'drop' events.
 */
export class LokiClient extends EventEmitter<LokiClientEvents> {
  readonly #opts: ResolvedOptions
  readonly #batcher: Batcher
  readonly #queue: BatchQueue
  readonly #breaker: Breaker
  readonly #transport: Transport
  readonly #defaultStream: StreamBuffer | undefined
  readonly #spool: Spool | undefined
  readonly #warnings = new DropWarnings()
  #warnedNoLabels = false
  #labelCache: LabelNode = newLabelNode()
  #labelCacheNodes = 0
  /** Metadata names known to be valid: a Set lookup is a fraction of the pattern's cost per push. */
  readonly #metadataNames = new Set<string>()
  readonly #ts: TimestampParts = { ms: 0, ns: 0, precise: false }
  #state: LokiClientStats['state'] = 'open'
  #closing: Promise<FlushResult> | undefined
  /** Armed while spooled records wait and nothing else may start their replay (see #armReplay). */
  #replayTimer: NodeJS.Timeout | undefined

  #pushed = 0
  #sentEntries = 0
  #sentBytes = 0
  #sentBatches = 0
  #truncated = 0
  #metadataCut = 0
  #metadataRenamed = 0
  #retries = 0
  #listenerErrors = 0
  #spoolWritten = 0
  #spoolLoaded = 0
  #spoolErrors = 0
  readonly #dropped = emptyDrops()
  readonly #failed = { total: 0, status4xx: 0, status429: 0, status5xx: 0, network: 0, timeout: 0 }

  constructor(options: LokiClientOptions) {
    super()
    const opts = resolveOptions(options)
    this.#opts = opts
    this.#transport = new Transport(opts)
    this.#breaker = new Breaker(opts.breaker, (state) => {
      this.#emit('breaker', { state })
      if (state === 'closed') this.#pump()
    })
    this.#spool = opts.spool === undefined
      ? undefined
      : new Spool(opts.spool, (problem: SpoolEvent) => {
        this.#spoolErrors++
        this.#emit('spool', problem)
      })
    const delivery: Delivery = new Delivery(
      (this.#queue = new BatchQueue(opts.concurrency, (b): Promise<void> => delivery.run(b))),
      this.#breaker,
      this.#transport,
      { encoding: opts.encoding, gzipLevel: opts.gzipLevel },
      opts.retry,
      {
        sent: (e) => {
          this.#sentEntries += e.entries
          this.#sentBytes += e.bytes
          this.#sentBatches++
          this.#emit('sent', e)
          if (this.#spool?.pending) this.#pump()
        },
        failed: (e) => {
          this.#countFailure(e.status, e.error)
          this.#emit('failed', e)
        },
        retry: (e) => {
          this.#retries++
          this.#emit('retry', e)
        },
        end: (batch, reason, error) => this.#end(batch, reason, error),
        offload: (batch) => this.#toSpool(batch),
      },
      opts.spool?.breakerWaitMs,
    )
    this.#batcher = new Batcher(opts.batch, (cut: CutBatch) => {
      this.#queue.enqueue(createBatch(cut.data, cut.entries, cut.bytes))
    })
    const defaults = Object.keys(opts.labels).length > 0 ? resolveLabels(opts.labels, {}, 'drop') : undefined
    this.#defaultStream = defaults === undefined || isRefusal(defaults) ? undefined : this.#batcher.stream(defaults, true)
    // Always: besides flushOnExit and the spool, the 'exit' hook reports what the exit loses.
    registerExitFlush(this.#exitHooks)
    this.#pump()
    if (this.#spool?.pending) this.#armReplay()
  }

  /**
   * Buffers one entry or an array of them. Returns true when every entry was accepted; a
   * refused entry is counted in `stats().dropped` with its reason and reported by 'drop'.
   */
  push(entry: LogEntry | readonly LogEntry[]): boolean {
    if (Array.isArray(entry)) {
      let ok = true
      for (let i = 0; i < entry.length; i++) ok = this.#pushOne(entry[i]) && ok
      return ok
    }
    return this.#pushOne(entry as LogEntry)
  }

  #pushOne(e: LogEntry | undefined): boolean {
    this.#pushed++
    if (this.#state !== 'open') return this.#refuse('closed')
    if (e === null || typeof e !== 'object') return this.#refuse('invalid_entry', 'entry', `expected an object with a string line, got ${show(e)}`)
    if (typeof e.line !== 'string') return this.#refuse('invalid_entry', 'line', `expected a string, got ${show(e.line)}`)
    const opts = this.#opts

    let line = e.line
    let lineBytes = Buffer.byteLength(line)
    if (lineBytes > opts.maxLineBytes) {
      if (opts.oversizeLines === 'drop') return this.#refuse('line_too_long', 'line', `${lineBytes} bytes, over maxLineBytes (${opts.maxLineBytes})`)
      line = truncateUtf8(line, opts.maxLineBytes)
      lineBytes = Buffer.byteLength(line)
      this.#truncated++
    }

    const ts = this.#ts
    if (e.timestamp === undefined) {
      ts.ms = Date.now()
      ts.ns = 0
      ts.precise = false
    } else if (!readTimestamp(e.timestamp, ts)) {
      return this.#refuse('invalid_entry', 'timestamp', `expected epoch ms, a Date, epoch ns (bigint or digits) or an ISO 8601 string, not before 1970; got ${show(e.timestamp)}`)
    }

    let meta: string[] | undefined
    let metaBytes = 0
    if (e.metadata !== undefined && e.metadata !== null) {
      if (typeof e.metadata !== 'object' || Array.isArray(e.metadata)) {
        return this.#refuse('invalid_entry', 'metadata', `expected an object of name/value pairs, got ${show(e.metadata)}`)
      }
      const m = this.#metadata(e.metadata)
      if (m !== undefined && isRefusal(m)) return this.#refuse('invalid_labels', m.field, m.message)
      meta = m
      if (meta !== undefined) for (let i = 0; i < meta.length; i++) metaBytes += Buffer.byteLength(meta[i]!)
    }

    const labels = e.labels
    let stream: StreamBuffer | Refusal
    if (labels === undefined || labels === null) stream = this.#defaultStream ?? NO_LABELS_REFUSAL
    else if (typeof labels !== 'object' || Array.isArray(labels)) return this.#refuse('invalid_labels', 'labels', `expected an object of name/value pairs, got ${show(labels)}`)
    else stream = this.#streamFor(labels)
    if (isRefusal(stream)) {
      if (stream.message === NO_LABELS && !this.#warnedNoLabels) {
        // A configuration that drops every line: say so even to a client with a 'drop' listener.
        this.#warnedNoLabels = true
        warnNoLabels()
      }
      return this.#refuse('invalid_labels', stream.field, stream.message)
    }

    const cost = lineBytes + metaBytes + ENTRY_OVERHEAD_BYTES
    if (this.#batcher.bytes + this.#queue.bytes + cost > opts.maxBufferBytes && !this.#makeRoom(cost)) {
      return this.#refuse('buffer_full')
    }
    this.#batcher.add(stream, ts, line, lineBytes, meta, cost)
    return true
  }

  /**
   * The entry's metadata as [name, value, ...], undefined when it has none, or the error that
   * refuses the entry. Names are held to the label-name rule under the `invalidLabels` policy.
   */
  #metadata(input: Readonly<Record<string, unknown>>): string[] | undefined | Refusal {
    const out: string[] = []
    // Once a name was rewritten, two pairs can share one: the later one wins, as with labels.
    let renamed = false
    for (const rawName of Object.keys(input)) {
      const value = metadataValue(input[rawName])
      if (value === undefined) continue
      let name: string | undefined = rawName
      if (!this.#metadataNames.has(rawName) && !this.#rememberMetadataName(rawName)) {
        if (this.#opts.invalidLabels === 'drop') {
          return { field: `metadata.${rawName}`, message: labelNameProblem(rawName, 'structured metadata') ?? `structured metadata name "${rawName}" is not valid` }
        }
        name = sanitizeLabelName(rawName)
        if (name === undefined) {
          this.#metadataCut++
          continue
        }
        this.#metadataRenamed++
        renamed = true
      }
      if (renamed) {
        const at = pairIndex(out, name)
        if (at >= 0) {
          out[at + 1] = value
          this.#metadataCut++
          continue
        }
      }
      if (out.length >= MAX_METADATA_PAIRS * 2) {
        // Loki answers 400 to an entry over its limit: send the first 128 and count the rest.
        this.#metadataCut++
        continue
      }
      out.push(name, value)
    }
    return out.length > 0 ? out : undefined
  }

  /** True, and remembered, when `name` is a valid metadata name. */
  #rememberMetadataName(name: string): boolean {
    if (!isLabelName(name)) return false
    if (this.#metadataNames.size >= METADATA_NAME_CACHE_SIZE) this.#metadataNames.clear()
    this.#metadataNames.add(name)
    return true
  }

  #streamFor(labels: Readonly<Record<string, unknown>>): StreamBuffer | Refusal {
    // Walked in property order: cheaper than sorting, and one call site repeats its order.
    // for...in, as in resolveLabels: both must read the same properties.
    if (this.#labelCacheNodes >= LABEL_CACHE_NODES) {
      this.#labelCache = newLabelNode()
      this.#labelCacheNodes = 0
    }
    let node = this.#labelCache
    for (const name in labels) {
      const value = labels[name]
      // An object is keyed by identity but read through String(): it could change under the key.
      if (value !== null && (typeof value === 'object' || typeof value === 'function')) return this.#streamOf(this.#resolveLabels(labels))
      let byValue = (node.next ??= new Map()).get(name)
      if (byValue === undefined) node.next.set(name, (byValue = new Map()))
      let child = byValue.get(value)
      if (child === undefined) {
        byValue.set(value, (child = newLabelNode()))
        this.#labelCacheNodes++
      }
      node = child
    }
    if (node.resolved === undefined) node.resolved = this.#resolveLabels(labels)
    return this.#streamOf(node.resolved)
  }

  #resolveLabels(labels: Readonly<Record<string, unknown>>): ResolvedStream | Refusal {
    return resolveLabels(this.#opts.labels, labels, this.#opts.invalidLabels)
  }

  #streamOf(resolved: ResolvedStream | Refusal): StreamBuffer | Refusal {
    return isRefusal(resolved) ? resolved : this.#batcher.stream(resolved)
  }

  /** drop-oldest: evicts waiting batches, oldest first, until `cost` fits. */
  #makeRoom(cost: number): boolean {
    // With a spool, the oldest batches go to disk whatever the policy: nothing is lost.
    if (this.#opts.overflow === 'drop-newest' && this.#spool === undefined) return false
    const limit = this.#opts.maxBufferBytes
    const fits = () => this.#batcher.bytes + this.#queue.bytes + cost <= limit
    for (let pass = 0; pass < 2; pass++) {
      for (const batch of this.#queue.evictable()) {
        this.#end(batch, 'buffer_full')
        if (fits()) return true
      }
      // What is left to evict sits in the batcher: make it a batch so it can go the same way.
      if (pass === 0) this.#batcher.cut()
    }
    return fits()
  }

  /**
   * Ends a batch that has not been delivered: into the spool when the reason is one a later
   * replay can fix and a spool is configured, otherwise dropped and counted under `reason`.
   */
  #end(batch: Batch, reason: DropReason, error?: LokiError): void {
    if (batch.done) return
    if (SPOOLABLE.has(reason) && this.#toSpool(batch)) return
    if (!this.#queue.finish(batch)) return
    BatchQueue.undelivered(batch)
    batch.controller.abort(new LokiAbortError(`batch dropped: ${reason}`))
    this.#countDrop({ reason, entries: batch.entries, ...(error ? { error } : {}) })
  }

  /** Writes a batch to the spool and ends it there. False when there is no spool or it failed. */
  #toSpool(batch: Batch): boolean {
    const spool = this.#spool
    if (spool === undefined || batch.done) return false
    let body = batch.body
    if (body === undefined) {
      try {
        if (batch.data === undefined) throw new Error('batch has neither entries nor a body')
        body = encodeBodySync(batch.data, { encoding: this.#opts.encoding, gzipLevel: this.#opts.gzipLevel })
      } catch (error) {
        this.#spoolErrors++
        this.#emit('spool', { reason: 'write_failed', error: new LokiError(ErrorCodes.ENCODE, 'could not encode a batch for the spool', { cause: error }) })
        return false
      }
    }
    if (!spool.write(body, batch.entries)) return false
    this.#queue.finish(batch)
    BatchQueue.undelivered(batch)
    batch.controller.abort(new LokiAbortError('batch moved to the spool'))
    this.#spoolWritten += batch.entries
    this.#armReplay()
    return true
  }

  /** Loads spooled batches for replay while there is room, Loki is reachable and intake is open. */
  #pump(): void {
    const spool = this.#spool
    if (spool === undefined || this.#state !== 'open' || this.#breaker.state !== 'closed') return
    const room = this.#opts.maxBufferBytes / 2
    while (this.#batcher.bytes + this.#queue.bytes < room) if (!this.#replayNext(spool)) return
  }

  /** Queues the oldest spooled record for delivery; false when there is none. */
  #replayNext(spool: Spool): boolean {
    const record = spool.next()
    if (record === undefined) return false
    const batch = createBatch(undefined, record.entries, record.body.body.length)
    batch.body = record.body
    batch.onFinish = record.ack
    this.#spoolLoaded += record.entries
    this.#queue.enqueue(batch)
    return true
  }

  /**
   * Replay otherwise starts only on a delivery or the breaker closing, both of which need
   * traffic: a client that logs nothing after Loki comes back would leave its spool for the next
   * start. So while records wait and nothing is queued, one record is tried every breaker reset
   * timeout (the backoff cap without a breaker), at most once a second. It waits for the breaker like any batch, which
   * makes it the half-open probe; once Loki takes it, the 'sent' that follows replays the rest,
   * and if Loki refuses it, it goes back to disk and the timer is armed again. One record at a
   * time keeps a long outage from rereading and rewriting the whole spool.
   */
  #armReplay(): void {
    if (this.#spool === undefined || this.#replayTimer !== undefined || this.#state !== 'open') return
    const o = this.#opts
    this.#replayTimer = setTimeout(() => {
      this.#replayTimer = undefined
      const spool = this.#spool!
      if (this.#state !== 'open' || !spool.pending) return
      // Batches under way lead to a 'sent' (and a replay) or back to disk (and a new timer); the
      // timer is kept only for outcomes that do neither, such as a batch Loki rejected.
      if (this.#queue.pending.size === 0) this.#replayNext(spool)
      this.#armReplay()
    }, Math.max(MIN_REPLAY_INTERVAL_MS, o.breaker === false ? o.retry.maxDelayMs : o.breaker.resetTimeoutMs))
    // Spooled records are safe on disk: waiting for Loki must not keep the process alive.
    this.#replayTimer.unref()
  }

  /** Refuses one entry; `field` and `message` say what was wrong with it, when something was. */
  #refuse(reason: DropReason, field?: string, message?: string): false {
    this.#dropped[reason]++
    this.#dropped.total++
    // The error is built only for someone who reads it: a flood of bad entries stays cheap.
    if (this.listenerCount('drop') > 0) {
      this.#emit('drop', field === undefined ? { reason, entries: 1 } : { reason, entries: 1, error: new LokiEntryError(field, message!) })
    } else {
      this.#warnings.note(reason, 1, field === undefined ? undefined : LokiEntryError.describe(field, message!))
    }
    return false
  }

  #countDrop(e: DropEvent): void {
    this.#dropped[e.reason] += e.entries
    this.#dropped.total += e.entries
    if (this.listenerCount('drop') > 0) this.#emit('drop', e)
    else this.#warnings.note(e.reason, e.entries, e.error?.message)
  }

  #countFailure(status: number | undefined, error: LokiError): void {
    const f = this.#failed
    f.total++
    if (status === undefined) {
      if (error.code === 'LOKI_REQUEST_TIMEOUT') f.timeout++
      else f.network++
    } else if (status === 429) f.status429++
    else if (status >= 500) f.status5xx++
    else f.status4xx++
  }

  #emit<K extends keyof LokiClientEvents>(name: K, ...args: LokiClientEvents[K]): void {
    if (this.listenerCount(name) === 0) return
    try {
      ;(this.emit as (n: K, ...a: LokiClientEvents[K]) => boolean)(name, ...args)
    } catch {
      // A throwing listener must not break delivery or reach the host as an exception.
      this.#listenerErrors++
    }
  }

  /**
   * Resolves when every entry pushed before the call has been delivered or definitively
   * dropped, or when `timeoutMs` passes. Never rejects. While it waits the process stays alive.
   */
  async flush(options: FlushOptions = {}): Promise<FlushResult> {
    const droppedBefore = this.#dropped.total
    const spooledBefore = this.#spoolWritten
    this.#batcher.cut()
    const waiting = [...this.#queue.pending]
    let timedOut = false
    if (waiting.length > 0) {
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          timedOut = true
          resolve()
        }, options.timeoutMs ?? NO_DEADLINE_MS)
      })
      await Promise.race([Promise.all(waiting.map((b) => this.#queue.settled(b))), deadline])
      clearTimeout(timer)
    }
    return {
      // A batch split on 413 counts its halves' losses too (see BatchQueue.undelivered).
      ok: !timedOut && waiting.every((b) => b.undelivered === 0),
      timedOut,
      pendingEntries: this.#batcher.entries + this.#queue.entries,
      droppedEntries: this.#dropped.total - droppedBefore,
      spooledEntries: this.#spoolWritten - spooledBefore,
    }
  }

  /**
   * Stops intake, delivers what is buffered within the deadline, drops the rest as
   * `close_timeout`, then releases every socket, timer and listener. Idempotent: later calls
   * return the first call's promise. Never rejects.
   */
  close(options: CloseOptions = {}): Promise<FlushResult> {
    if (this.#closing !== undefined) return this.#closing
    if (this.#state === 'open') this.#state = 'closing'
    this.#closing = (async () => {
      const result = await this.flush({ timeoutMs: options.timeoutMs ?? this.#opts.closeTimeoutMs })
      const droppedBefore = this.#dropped.total
      const spooledBefore = this.#spoolWritten
      const graceful = this.#queue.pending.size === 0 && this.#batcher.entries === 0
      this.#abortAll('close_timeout')
      if (this.#state === 'closing') this.#state = 'closed'
      await this.#release(graceful)
      return {
        ...result,
        droppedEntries: result.droppedEntries + this.#dropped.total - droppedBefore,
        spooledEntries: result.spooledEntries + this.#spoolWritten - spooledBefore,
      }
    })()
    return this.#closing
  }

  /** Aborts everything now: requests in flight are cancelled, buffered entries counted as `destroyed`. */
  async destroy(): Promise<void> {
    if (this.#state === 'destroyed') return
    this.#state = 'destroyed'
    this.#abortAll('destroyed')
    await this.#release(false)
    if (this.#closing !== undefined) await this.#closing
  }

  #abortAll(reason: DropReason): void {
    const cleared = this.#batcher.clear()
    if (cleared.entries > 0) this.#countDrop({ reason, entries: cleared.entries })
    for (const batch of [...this.#queue.pending]) this.#end(batch, reason)
  }

  async #release(graceful: boolean): Promise<void> {
    clearTimeout(this.#replayTimer)
    this.#replayTimer = undefined
    this.#warnings.flush(false)
    unregisterExitFlush(this.#exitHooks)
    this.#breaker.shutdown()
    this.#spool?.close()
    try {
      if (graceful) await this.#transport.close()
      else await this.#transport.destroy()
    } catch {
      // Closing a pool that is already closed or destroyed by the other path: nothing to release.
    }
  }

  /** This client's share of the process's exit listeners (src/exit.ts); not part of the public class. */
  readonly #exitHooks: ExitHooks = { beforeExit: () => this.#onBeforeExit(), exit: () => this.#onExit() }

  /** Natural exit with entries still buffered: deliver them within closeTimeoutMs. */
  #onBeforeExit(): void {
    if (this.#opts.flushOnExit && this.#state === 'open' && this.#batcher.entries + this.#queue.entries > 0) void this.close()
  }

  /**
   * The process is exiting (process.exit(), an uncaught exception, the loop ran dry):
   * only synchronous work runs now. With a spool, everything not yet delivered, requests in
   * flight included, is written to disk; a replay resends it and Loki drops any duplicates.
   * What is left (no spool, or a write that failed) is counted as dropped (`exit`), and drops
   * not yet reported by a warning are reported now.
   */
  #onExit(): void {
    if (this.#state === 'destroyed') return
    const spool = this.#spool
    if (spool !== undefined) {
      this.#batcher.cut()
      for (const batch of [...this.#queue.pending]) this.#toSpool(batch)
      spool.sync()
      spool.close()
    }
    this.#abortAll('exit')
    this.#warnings.flush(true)
  }

  /** The limits this client runs with, defaults filled in. */
  get limits(): { readonly maxBufferBytes: number; readonly closeTimeoutMs: number; readonly concurrency: number } {
    const o = this.#opts
    return { maxBufferBytes: o.maxBufferBytes, closeTimeoutMs: o.closeTimeoutMs, concurrency: o.concurrency }
  }

  /** What counts against `maxBufferBytes` now; the same as `stats().bufferUsedBytes`, without building the stats object. */
  get bufferUsedBytes(): number {
    return this.#batcher.bytes + this.#queue.bytes
  }

  /** 'open' until close() or destroy(). */
  get state(): LokiClientStats['state'] {
    return this.#state
  }

  stats(): LokiClientStats {
    const q = this.#queue
    return {
      pushed: this.#pushed,
      sent: { entries: this.#sentEntries, bytes: this.#sentBytes, batches: this.#sentBatches },
      dropped: { ...this.#dropped },
      truncated: this.#truncated,
      metadata: { renamed: this.#metadataRenamed, cut: this.#metadataCut },
      retries: this.#retries,
      failedRequests: { ...this.#failed },
      inFlight: { requests: q.inFlightRequests, entries: q.inFlightEntries },
      buffered: { entries: this.#batcher.entries + q.entries - q.inFlightEntries, bytes: this.#batcher.bytes + q.bytes - q.inFlightBytes },
      bufferUsedBytes: this.bufferUsedBytes,
      breaker: this.#breaker.state,
      connections: this.#transport.connections,
      abandonedBodies: this.#transport.abandonedBodies,
      listenerErrors: this.#listenerErrors,
      spool: { bytes: this.#spool?.bytes ?? 0, written: this.#spoolWritten, loaded: this.#spoolLoaded, errors: this.#spoolErrors },
      state: this.#state,
    }
  }
}
