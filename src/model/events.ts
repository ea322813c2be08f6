import type { BreakerState } from '../pipeline/breaker.js'
import type { LokiError } from './errors.js'
import type { DropReason, FailureClass } from './types.js'

/** A batch Loki accepted. */
export interface SentEvent {
  batchId: number
  entries: number
  /** Bytes on the wire (after compression). */
  bytes: number
  status: number
  attempt: number
  durationMs: number
}

/** One HTTP attempt that did not succeed. */
export interface FailedEvent {
  batchId: number
  entries: number
  attempt: number
  /** HTTP status, or undefined for network errors and timeouts. */
  status: number | undefined
  /** What went wrong, as the transport classed it: the key this attempt counts under in `stats().failedRequests`. */
  failure: FailureClass
  /** How long the attempt took, from its start to its answer or error. */
  durationMs: number
  /** LokiHttpError (with Loki's message in `body`), LokiTimeoutError, LokiNetworkError… */
  error: LokiError
  /** True when the batch will be retried; false when this failure ended it. */
  willRetry: boolean
}

/** A retry was scheduled. */
export interface RetryEvent {
  batchId: number
  entries: number
  /** The attempt that will run next (2 for the first retry). */
  attempt: number
  delayMs: number
  error: LokiError
}

/**
 * Entries the client gave up on. Every drop is counted in `stats().dropped` under its reason;
 * while the client has no 'drop' listener, drops are reported as LOKIWIRE_DROPPED process warnings.
 */
export interface DropEvent {
  reason: DropReason
  entries: number
  /**
   * The cause when there is one: Loki's answer or the last network error for a batch, a
   * LokiEntryError naming the field at fault for an entry push() refused.
   */
  error?: LokiError
}

/** A problem with the disk spool. Logging goes on; affected batches keep their drop reason. */
export interface SpoolEvent {
  reason: 'write_failed' | 'full' | 'corrupt_record' | 'truncated_segment' | 'read_failed' | 'delete_failed'
  /** The segment file (name only) or the directory. */
  file?: string
  error?: unknown
}

export interface BreakerEvent {
  state: BreakerState
}

/** Event map of LokiClient. There is deliberately no 'error' event. */
export interface LokiClientEvents {
  sent: [SentEvent]
  failed: [FailedEvent]
  retry: [RetryEvent]
  drop: [DropEvent]
  breaker: [BreakerEvent]
  spool: [SpoolEvent]
}
