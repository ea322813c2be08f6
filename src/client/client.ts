import { EventEmitter } from 'node:events'
import { Batcher, type CutBatch } from '../pipeline/batcher.js'
import { Breaker, type BreakerState } from '../pipeline/breaker.js'
import { Delivery } from '../pipeline/delivery.js'
import { preloadCodecs } from '../encode/index.js'
import type { LokiClientEvents, SpoolEvent } from '../model/events.js'
import { registerExitFlush, unregisterExitFlush, type ExitHooks } from './exit.js'
import { Intake } from './intake.js'
import { Ledger } from '../pipeline/ledger.js'
import { resolveOptions, type LokiClientOptions, type ResolvedOptions } from '../model/options.js'
import { BatchQueue, createBatch } from '../pipeline/queue.js'
import { SpoolReplay } from '../pipeline/replay.js'
import { Settlement } from '../pipeline/settlement.js'
import { Transport } from '../transport/transport.js'
import type { DropReason, LogEntry } from '../model/types.js'

export { ENTRY_OVERHEAD_BYTES } from './intake.js'

/** setTimeout's largest delay: "no deadline", while still holding the process open. */
const NO_DEADLINE_MS = 2_147_483_647

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
 * Ships log entries to Loki: push -> intake -> batcher -> queue -> delivery (breaker,
 * transport) -> settlement. This class wires the layers together, makes room under
 * `maxBufferBytes` and runs the lifecycle; see ARCHITECTURE.md for who owns what.
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
  readonly #ledger: Ledger
  readonly #intake: Intake
  readonly #settlement: Settlement
  /** The spool and its replay; undefined without a spool. */
  readonly #replay: SpoolReplay | undefined
  #state: LokiClientStats['state'] = 'open'
  #closing: Promise<FlushResult> | undefined

  constructor(options: LokiClientOptions) {
    super()
    const opts = resolveOptions(options)
    this.#opts = opts
    const ledger = (this.#ledger = new Ledger(this))
    this.#transport = new Transport(opts)
    this.#breaker = new Breaker(opts.breaker, (state) => {
      ledger.emit('breaker', { state })
      if (state === 'closed') this.#replay?.pump()
    })
    const encoding = { encoding: opts.encoding, gzipLevel: opts.gzipLevel }
    const queue = (this.#queue = new BatchQueue(opts.concurrency, (b): Promise<void> => delivery.run(b)))
    // Spool problems found while this constructor runs (an unusable directory, a corrupt record
    // met by the first replay) are held for one turn of the event loop, so that listeners
    // attached right after `new LokiClient()` hear of them.
    let held: SpoolEvent[] | undefined = []
    const spoolProblem = (problem: SpoolEvent): void => {
      if (held === undefined) ledger.spool(problem)
      else held.push(problem)
    }
    this.#replay = opts.spool === undefined
      ? undefined
      : new SpoolReplay({
        spool: opts.spool,
        encoding,
        queue,
        breaker: this.#breaker,
        idleIntervalMs: opts.breaker === false ? opts.retry.maxDelayMs : opts.breaker.resetTimeoutMs,
        loadBelowBytes: opts.maxBufferBytes / 2,
        bufferUsed: () => this.bufferUsedBytes,
        open: () => this.#state === 'open',
        onProblem: spoolProblem,
      })
    this.#settlement = new Settlement({ queue, ledger, replay: this.#replay })
    const delivery = new Delivery({
      queue,
      breaker: this.#breaker,
      transport: this.#transport,
      encoding,
      retry: opts.retry,
      settlement: this.#settlement,
      ledger,
      offloadAfterMs: opts.spool?.breakerWaitMs,
    })
    this.#batcher = new Batcher(opts.batch, (cut: CutBatch) => {
      queue.enqueue(createBatch(cut.data, cut.entries, cut.bytes))
    })
    this.#intake = new Intake({ opts, batcher: this.#batcher, queue, ledger, makeRoom: (cost) => this.#makeRoom(cost) })
    // Always: besides flushOnExit and the spool, the 'exit' hook reports what the exit loses.
    registerExitFlush(this.#exitHooks)
    this.#replay?.start()
    if (held.length === 0) held = undefined
    else {
      setImmediate(() => {
        const problems = held ?? []
        held = undefined
        for (const problem of problems) ledger.spool(problem)
      })
    }
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
    this.#ledger.pushed++
    if (this.#state !== 'open') return this.#ledger.refuse('closed')
    return this.#intake.accept(e)
  }

  /**
   * push({ line, labels, timestamp }) for the adapters, without the entry object: `labels` is a
   * frozen object handed again for every line of its label set (resolved once, by identity), and
   * `timestamp` is what the record mapping read. Counted, refused and reported as push() is. @internal
   */
  pushLine(line: string, labels: Readonly<Record<string, string>> | undefined, timestamp: number | string | undefined): boolean {
    this.#ledger.pushed++
    if (this.#state !== 'open') return this.#ledger.refuse('closed')
    return this.#intake.acceptLine(line, labels, timestamp)
  }

  /**
   * Loads the HTTP stack (undici) and the compressors now rather than with the first batch, and
   * resolves once they are loaded. They are left out of `import` so a service does not pay for
   * them at start-up; a process that exists to ship logs can pay up front instead, off its hot
   * path (the pino worker transport does, before it reports ready). Never rejects: a failure to
   * load is met again, and reported, by the first send. A no-op once closed.
   */
  async preload(): Promise<void> {
    if (this.#state !== 'open') return
    await Promise.all([this.#transport.prepare(), preloadCodecs()])
  }

  /** drop-oldest: evicts waiting batches, oldest first, until `cost` fits. */
  #makeRoom(cost: number): boolean {
    // With a spool, the oldest batches go to disk whatever the policy: nothing is lost.
    if (this.#opts.overflow === 'drop-newest' && this.#replay === undefined) return false
    const limit = this.#opts.maxBufferBytes
    const fits = () => this.#batcher.bytes + this.#queue.bytes + cost <= limit
    for (let pass = 0; pass < 2; pass++) {
      for (const batch of this.#queue.evictable()) {
        this.#settlement.undelivered(batch, 'buffer_full')
        if (fits()) return true
      }
      // What is left to evict sits in the batcher: make it a batch so it can go the same way.
      if (pass === 0) this.#batcher.cut()
    }
    return fits()
  }

  /**
   * Resolves when every entry pushed before the call has been delivered or definitively
   * dropped, or when `timeoutMs` passes. Never rejects. While it waits the process stays alive.
   */
  async flush(options: FlushOptions = {}): Promise<FlushResult> {
    const droppedBefore = this.#ledger.dropped.total
    const spooledBefore = this.#spooled
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
      droppedEntries: this.#ledger.dropped.total - droppedBefore,
      spooledEntries: this.#spooled - spooledBefore,
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
      const droppedBefore = this.#ledger.dropped.total
      const spooledBefore = this.#spooled
      const graceful = this.#queue.pending.size === 0 && this.#batcher.entries === 0
      this.#abortAll('close_timeout')
      if (this.#state === 'closing') this.#state = 'closed'
      await this.#release(graceful)
      return {
        ...result,
        droppedEntries: result.droppedEntries + this.#ledger.dropped.total - droppedBefore,
        spooledEntries: result.spooledEntries + this.#spooled - spooledBefore,
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
    if (cleared.entries > 0) this.#ledger.drop({ reason, entries: cleared.entries })
    for (const batch of [...this.#queue.pending]) this.#settlement.undelivered(batch, reason)
  }

  /** Entries written to the spool so far. */
  get #spooled(): number {
    return this.#replay?.written ?? 0
  }

  async #release(graceful: boolean): Promise<void> {
    this.#replay?.stop()
    this.#ledger.flushWarnings(false)
    unregisterExitFlush(this.#exitHooks)
    this.#breaker.shutdown()
    try {
      if (graceful) await this.#transport.close()
      else await this.#transport.destroy()
    } catch {
      // Closing a pool that is already closed or destroyed by the other path: nothing to release.
    }
  }

  /** This client's share of the process's exit listeners (src/client/exit.ts); not part of the public class. */
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
    // Never after destroy(): it unregisters this hook before it returns.
    const replay = this.#replay
    if (replay !== undefined) {
      this.#batcher.cut()
      for (const batch of [...this.#queue.pending]) this.#settlement.toSpool(batch)
      replay.exit()
    }
    this.#abortAll('exit')
    this.#ledger.flushWarnings(true)
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
    const l = this.#ledger
    const r = this.#replay
    return {
      pushed: l.pushed,
      sent: { ...l.sent },
      dropped: { ...l.dropped },
      truncated: l.truncated,
      metadata: { ...l.metadata },
      retries: l.retries,
      failedRequests: { ...l.failed },
      inFlight: { requests: q.inFlightRequests, entries: q.inFlightEntries },
      buffered: { entries: this.#batcher.entries + q.entries - q.inFlightEntries, bytes: this.#batcher.bytes + q.bytes - q.inFlightBytes },
      bufferUsedBytes: this.bufferUsedBytes,
      breaker: this.#breaker.state,
      connections: this.#transport.connections,
      abandonedBodies: this.#transport.abandonedBodies,
      listenerErrors: l.listenerErrors,
      spool: { bytes: r?.bytes ?? 0, written: r?.written ?? 0, loaded: r?.loaded ?? 0, errors: r?.errors ?? 0 },
      state: this.#state,
    }
  }
}
