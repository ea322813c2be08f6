/*
 * The adapters' reports of their own trouble. They must never go through the logger being
 * shipped: a failing Loki would then produce lines about itself faster than it loses them. Drops
 * are coalesced into at most one summary a second because buffer_full is reported per entry.
 */
import { writeSync } from 'node:fs'
import { isMainThread } from 'node:worker_threads'
import type { BreakerState } from '../pipeline/breaker.js'
import type { LokiClient } from '../client/client.js'
import type { BreakerEvent, DropEvent, FailedEvent } from '../model/events.js'
import type { DropReason } from '../model/types.js'
import { droppedSummary } from '../model/warnings.js'

/** Entries lost since the previous summary. */
export interface LokiDropSummary {
  kind: 'drop'
  /** One human-readable line, e.g. `lokiwire: dropped 120 log entries (retries_exhausted: 120); last error: ...`. */
  message: string
  /** Entries dropped in this period, by reason. */
  dropped: Partial<Record<DropReason, number>>
  /** Sum of `dropped`. */
  total: number
  /** The last error behind these drops, or else the last failed attempt's (Loki's answer, a network error). */
  lastError?: string
}

/** The client's circuit breaker changed state: `'open'` means Loki is failing and entries are held. */
export interface LokiBreakerNotice {
  kind: 'breaker'
  message: string
  state: BreakerState
}

/**
 * The events both adapters emit, by the same names with the same payloads: on the pino stream
 * (or, with the worker, on pino's transport stream in the main thread) and on the winston
 * transport. Names are namespaced so they never collide with a stream's or a logger's own events.
 */
export interface LokiAdapterEvents {
  /** Entries were lost (at most one summary a second). */
  'lokiwire:drop': [LokiDropSummary]
  /** The circuit breaker opened (Loki failing, entries held) or closed again. */
  'lokiwire:breaker': [LokiBreakerNotice]
}

export interface ReporterHooks {
  stderr: boolean
  onDrop?: (summary: LokiDropSummary) => void
  onBreaker?: (notice: LokiBreakerNotice) => void
}

const INTERVAL_MS = 1000

function write(line: string): void {
  try {
    // In a worker, process.stderr is relayed through the parent's event loop, which is blocked
    // while pino waits for the worker at exit: the final summary would be lost. fd 2 is not.
    if (isMainThread) process.stderr.write(line + '\n')
    else writeSync(2, line + '\n')
  } catch {
    // Nowhere left to report to.
  }
}

export class Reporter {
  readonly #client: LokiClient
  readonly #hooks: ReporterHooks
  #pending: Partial<Record<DropReason, number>> = {}
  #pendingTotal = 0
  #lastError: string | undefined
  #lastFailure: string | undefined
  #lastAt = 0
  #timer: NodeJS.Timeout | undefined
  #breakerOpened = false
  #closed = false

  readonly #onDrop = (e: DropEvent): void => {
    this.#pending[e.reason] = (this.#pending[e.reason] ?? 0) + e.entries
    this.#pendingTotal += e.entries
    if (e.error !== undefined) this.#lastError = e.error.message
    if (this.#timer === undefined && !this.#closed) {
      // Deferred even when due now: the drop event fires inside push(), and a hook that logs
      // must not re-enter it.
      this.#timer = setTimeout(() => this.#emitDrops(), Math.max(0, this.#lastAt + INTERVAL_MS - Date.now()))
      this.#timer.unref()
    }
  }

  // close_timeout and buffer_full drops carry no error of their own; the last failed attempt
  // is usually why they happened.
  readonly #onFailed = (e: FailedEvent): void => {
    this.#lastFailure = e.error.message
  }

  readonly #onSent = (): void => {
    this.#lastFailure = undefined
  }

  readonly #onBreaker = (e: BreakerEvent): void => {
    let message: string
    if (e.state === 'open') {
      this.#breakerOpened = true
      message = 'lokiwire: Loki is failing; circuit breaker open, holding entries until a probe succeeds'
    } else if (e.state === 'closed' && this.#breakerOpened) {
      this.#breakerOpened = false
      message = 'lokiwire: Loki answers again; circuit breaker closed, sending held entries'
    } else {
      return
    }
    if (this.#hooks.stderr) write(message)
    this.#call(this.#hooks.onBreaker, { kind: 'breaker', message, state: e.state })
  }

  constructor(client: LokiClient, hooks: ReporterHooks) {
    this.#client = client
    this.#hooks = hooks
    client.on('drop', this.#onDrop)
    client.on('breaker', this.#onBreaker)
    client.on('failed', this.#onFailed)
    client.on('sent', this.#onSent)
  }

  #emitDrops(): void {
    this.#timer = undefined
    if (this.#pendingTotal === 0) return
    this.#lastAt = Date.now()
    const dropped = this.#pending
    const total = this.#pendingTotal
    const lastError = this.#lastError ?? this.#lastFailure
    this.#pending = {}
    this.#pendingTotal = 0
    this.#lastError = undefined
    const message = `lokiwire: ${droppedSummary(dropped, total)}${lastError === undefined ? '' : `; last error: ${lastError}`}`
    const summary: LokiDropSummary = { kind: 'drop', message, dropped, total }
    if (lastError !== undefined) summary.lastError = lastError
    if (this.#hooks.stderr) write(message)
    this.#call(this.#hooks.onDrop, summary)
  }

  #call<T>(hook: ((arg: T) => void) | undefined, arg: T): void {
    try {
      hook?.(arg)
    } catch {
      // A throwing listener runs from a timer here: it must not become an uncaught exception.
    }
  }

  /** Reports what is pending now instead of at the next tick of the interval. */
  reportNow(): void {
    clearTimeout(this.#timer)
    this.#emitDrops()
  }

  /** Reports what is still pending, now, and stops listening. Call once the client has closed. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#timer)
    this.#emitDrops()
    this.#client.off('drop', this.#onDrop)
    this.#client.off('breaker', this.#onBreaker)
    this.#client.off('failed', this.#onFailed)
    this.#client.off('sent', this.#onSent)
  }
}
