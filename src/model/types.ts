/** What `client.push()` accepts. */
export interface LogEntry {
  /** The log line. Strings only: serialise objects before pushing (the adapters do). */
  line: string
  /** Stream labels merged over the client's `labels`. Keep them low-cardinality. */
  labels?: Readonly<Record<string, string>>
  /**
   * When it happened: epoch milliseconds (number), a Date, epoch nanoseconds (bigint or decimal
   * string). Default: the time of the `push()` call. Fixed at push time so retries deduplicate.
   */
  timestamp?: number | bigint | Date | string
  /**
   * Structured metadata: pairs stored beside the line, not indexed as labels. Strings are sent
   * as they are, numbers, booleans and bigints through `String()`, anything else as JSON;
   * `null` and `undefined` values are left out. At most 128 pairs (the rest are counted in
   * `stats().metadata.cut`).
   */
  metadata?: Readonly<Record<string, unknown>>
}

/**
 * An entry as plain data, for encodeStreams(): the client itself encodes entries at push time.
 * The timestamp is split into integer epoch milliseconds and the nanoseconds within that
 * millisecond so no bigint is needed.
 */
export interface PlainEntry {
  ms: number
  /** Nanoseconds within the millisecond, 0..999_999. */
  ns: number
  line: string
  /** Flattened structured metadata: [name0, value0, name1, value1, ...]. */
  meta?: string[] | undefined
}

/** A stream of plain entries with its labels. */
export interface PlainStream {
  /** Label set, names sorted. */
  labels: Readonly<Record<string, string>>
  /** Prometheus-style selector, e.g. `{app="api", level="info"}`, as protobuf wants it. */
  selector: string
  entries: PlainEntry[]
}

/** The reasons an entry can be dropped. Each is counted in `stats().dropped`. */
export type DropReason =
  /** The buffer limit was reached (drop-newest: this entry; drop-oldest: older batches). */
  | 'buffer_full'
  /** push() after close() or destroy(). */
  | 'closed'
  /** Not an object, no string `line`, an unusable timestamp, or metadata that is not an object. */
  | 'invalid_entry'
  /**
   * Label names or values, or structured metadata names, Loki would reject under
   * `invalidLabels: 'drop'`; labels that are not an object; too many labels, or none at all.
   */
  | 'invalid_labels'
  /** Line longer than `maxLineBytes` under `oversizeLines: 'drop'`. */
  | 'line_too_long'
  /** Loki answered 400/401/403/404 (or another non-retryable 4xx). */
  | 'rejected'
  /** Loki answered 260: an ingestion policy blocked the push. */
  | 'blocked'
  /** 413 for a single entry: it cannot be split further. */
  | 'too_large'
  /** `retry.maxAttempts` or `retry.budgetMs` ran out on a retryable failure. */
  | 'retries_exhausted'
  /** close() reached its deadline with entries still buffered or in flight. */
  | 'close_timeout'
  /** destroy() was called with entries still buffered or in flight. */
  | 'destroyed'
  /**
   * The process exited (process.exit(), an uncaught exception) with entries still buffered or in
   * flight and no spool to keep them. Requests in flight may have reached Loki.
   */
  | 'exit'
  /** The encoder threw (should not happen; reported rather than crashing the host). */
  | 'encode_error'
  /** Any other unexpected error while delivering a batch (a bug; reported, never thrown). */
  | 'internal_error'

/**
 * Why an attempt failed, as `stats().failedRequests` counts it and the 'failed' event carries it.
 * The transport decides it, so nothing above that layer reads an HTTP status or an error code to
 * learn what went wrong. A 260 (an ingestion policy stored nothing) counts with `status4xx`.
 */
export type FailureClass = 'status4xx' | 'status429' | 'status5xx' | 'network' | 'timeout'

export const DROP_REASONS: readonly DropReason[] = [
  'buffer_full',
  'closed',
  'invalid_entry',
  'invalid_labels',
  'line_too_long',
  'rejected',
  'blocked',
  'too_large',
  'retries_exhausted',
  'close_timeout',
  'destroyed',
  'exit',
  'encode_error',
  'internal_error',
]
