import type { BreakerState, FailedEvent, FailureClass, LokiClient, LokiClientStats, SentEvent } from '../index.js'
import { LokiOptionError } from '../index.js'

/*
 * The one list of lokiwire's instruments, shared by lokiwire/prometheus and lokiwire/opentelemetry
 * so the two expose the same numbers under the same names. Everything is read from the client's
 * public surface: `stats()` at collection time for what it holds, the 'sent' and 'failed' events
 * for the one thing it does not (each attempt's duration and class).
 */

/** A LokiClient, or what wraps one: `lokiStream()`, `new LokiTransport()` (their `client`). */
export type MetricsTarget = LokiClient | { readonly client: LokiClient }

/** Handle returned by the register functions. */
export interface MetricsRegistration {
  /**
   * Stops reporting this client: removes its series and its event listeners, and the instruments
   * themselves once no client uses them. Idempotent.
   */
  unregister(): void
}

/**
 * Request duration buckets, in seconds: prom-client's defaults, which cover the default
 * `requestTimeoutMs` of 10 s (slower attempts land in `+Inf`).
 */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** What one collection reads from a client. */
export interface Reading {
  stats: LokiClientStats
  maxBufferBytes: number
}

/** The label (attribute) an instrument splits its values by, besides the constant ones. */
export type SplitLabel = 'reason' | 'class' | 'state'

export interface InstrumentSpec {
  /** Snake-case name without prefix; Prometheus adds `_total` to counters, OpenTelemetry turns `_` into `.`. */
  name: string
  kind: 'counter' | 'gauge'
  /** OpenTelemetry unit (UCUM, or a `{annotation}` for counts). */
  unit: string
  help: string
  label?: SplitLabel
  /** The value, or one value per value of `label`. */
  read(r: Reading): number | ReadonlyArray<readonly [string, number]>
}

/**
 * The `class` label: the transport's FailureClass for a failed attempt, `2xx` for one Loki
 * stored. Spelled out per class so a new FailureClass fails to compile here until it has a label.
 */
export const CLASS_LABEL: Readonly<Record<FailureClass, string>> = {
  status4xx: '4xx',
  status429: '429',
  status5xx: '5xx',
  network: 'network',
  timeout: 'timeout',
}
export const SUCCESS_CLASS = '2xx'
const FAILURE_CLASSES = Object.keys(CLASS_LABEL) as FailureClass[]

const BREAKER: Readonly<Record<BreakerState, true>> = { closed: true, open: true, halfOpen: true }
const BREAKER_STATES = Object.keys(BREAKER) as BreakerState[]

export const INSTRUMENTS: readonly InstrumentSpec[] = [
  { name: 'pushed_entries', kind: 'counter', unit: '{entry}', help: 'Entries given to push(), accepted or not.', read: (r) => r.stats.pushed },
  { name: 'sent_entries', kind: 'counter', unit: '{entry}', help: 'Entries Loki accepted.', read: (r) => r.stats.sent.entries },
  { name: 'sent_bytes', kind: 'counter', unit: 'By', help: 'Bytes of the requests Loki accepted, on the wire (compressed).', read: (r) => r.stats.sent.bytes },
  { name: 'sent_batches', kind: 'counter', unit: '{batch}', help: 'Batches (push requests) Loki accepted.', read: (r) => r.stats.sent.batches },
  {
    name: 'dropped_entries',
    kind: 'counter',
    unit: '{entry}',
    help: 'Entries given up on, by drop reason.',
    label: 'reason',
    // Every reason stats() knows, zeros included, so rate() has a series from the first scrape.
    read: (r) => Object.entries(r.stats.dropped).filter(([reason]) => reason !== 'total'),
  },
  {
    name: 'failed_requests',
    kind: 'counter',
    unit: '{request}',
    help: 'HTTP attempts that failed, by class: 4xx (260 included), 429, 5xx, network, timeout.',
    label: 'class',
    read: (r) => FAILURE_CLASSES.map((c) => [CLASS_LABEL[c], r.stats.failedRequests[c]] as const),
  },
  { name: 'retries', kind: 'counter', unit: '{retry}', help: 'Retries scheduled.', read: (r) => r.stats.retries },
  { name: 'truncated_lines', kind: 'counter', unit: '{entry}', help: 'Lines cut to maxLineBytes (still sent).', read: (r) => r.stats.truncated },
  {
    name: 'abandoned_bodies',
    kind: 'counter',
    unit: '{response}',
    help: 'Answers whose body was not read to its end; each cost its socket.',
    read: (r) => r.stats.abandonedBodies,
  },
  { name: 'spool_written_entries', kind: 'counter', unit: '{entry}', help: 'Entries written to the disk spool.', read: (r) => r.stats.spool.written },
  { name: 'spool_loaded_entries', kind: 'counter', unit: '{entry}', help: 'Entries loaded back from the disk spool for replay.', read: (r) => r.stats.spool.loaded },
  { name: 'spool_errors', kind: 'counter', unit: '{error}', help: 'Spool problems: full, write or read failed, corrupt data skipped.', read: (r) => r.stats.spool.errors },
  { name: 'buffered_entries', kind: 'gauge', unit: '{entry}', help: 'Entries waiting (batcher, queue, backoff), not on the wire.', read: (r) => r.stats.buffered.entries },
  { name: 'buffered_bytes', kind: 'gauge', unit: 'By', help: 'Bytes of the entries waiting, not on the wire.', read: (r) => r.stats.buffered.bytes },
  {
    name: 'buffer_used_bytes',
    kind: 'gauge',
    unit: 'By',
    help: 'What counts against maxBufferBytes: buffered plus in flight.',
    read: (r) => r.stats.bufferUsedBytes,
  },
  { name: 'buffer_limit_bytes', kind: 'gauge', unit: 'By', help: 'The client\'s maxBufferBytes.', read: (r) => r.maxBufferBytes },
  { name: 'inflight_requests', kind: 'gauge', unit: '{request}', help: 'Push requests on the wire now.', read: (r) => r.stats.inFlight.requests },
  { name: 'inflight_entries', kind: 'gauge', unit: '{entry}', help: 'Entries on the wire now.', read: (r) => r.stats.inFlight.entries },
  { name: 'open_connections', kind: 'gauge', unit: '{connection}', help: 'Sockets open to Loki now.', read: (r) => r.stats.connections },
  {
    name: 'breaker_state',
    kind: 'gauge',
    unit: '1',
    help: 'The circuit breaker: 1 for the state it is in, 0 for the others.',
    label: 'state',
    read: (r) => BREAKER_STATES.map((s) => [s, r.stats.breaker === s ? 1 : 0] as const),
  },
  { name: 'spool_bytes', kind: 'gauge', unit: 'By', help: 'Bytes the disk spool holds.', read: (r) => r.stats.spool.bytes },
]

/** The attempt histogram: the one instrument fed by events, as stats() keeps no durations. */
export const DURATION = {
  name: 'request_duration_seconds',
  unit: 's',
  help: 'Duration of each HTTP attempt, by class: 2xx (stored), 4xx, 429, 5xx, network, timeout.',
} as const

/** Every value of the histogram's `class` label. */
export const DURATION_CLASSES: readonly string[] = [SUCCESS_CLASS, ...FAILURE_CLASSES.map((c) => CLASS_LABEL[c])]

/** The OpenTelemetry name: `lokiwire.` and the snake-case name with `.` for `_`. */
export function otelName(name: string): string {
  return `lokiwire.${name.replaceAll('_', '.')}`
}

/** The client a target stands for; a LokiOptionError when it is neither a client nor wraps one. */
export function clientOf(target: MetricsTarget): LokiClient {
  const isClient = (x: unknown): x is LokiClient =>
    typeof x === 'object' && x !== null && typeof (x as LokiClient).stats === 'function' && typeof (x as LokiClient).on === 'function'
  if (isClient(target)) return target
  const inner = (target as { client?: unknown } | null)?.client
  if (isClient(inner)) return inner
  throw new LokiOptionError('client', 'expected a LokiClient, or what wraps one (lokiStream(), new LokiTransport())')
}

/**
 * One client as the instruments see it: a reading taken once per collection (every instrument
 * of one scrape reports the same moment, so the stats identity holds across them) and its
 * attempts as they end.
 */
export class Source {
  readonly client: LokiClient
  #reading: Reading | undefined
  readonly #onSent: (e: SentEvent) => void
  readonly #onFailed: (e: FailedEvent) => void

  constructor(client: LokiClient, onAttempt: (seconds: number, cls: string) => void) {
    this.client = client
    this.#onSent = (e) => onAttempt(e.durationMs / 1000, SUCCESS_CLASS)
    this.#onFailed = (e) => onAttempt(e.durationMs / 1000, CLASS_LABEL[e.failure])
    client.on('sent', this.#onSent)
    client.on('failed', this.#onFailed)
  }

  /** The reading of this collection: taken at the first instrument, forgotten when the collection's synchronous pass ends. */
  read(): Reading {
    if (this.#reading === undefined) {
      this.#reading = { stats: this.client.stats(), maxBufferBytes: this.client.limits.maxBufferBytes }
      queueMicrotask(() => {
        this.#reading = undefined
      })
    }
    return this.#reading
  }

  close(): void {
    this.client.off('sent', this.#onSent)
    this.client.off('failed', this.#onFailed)
  }
}

/** The values of one instrument for one reading, as `[label value or undefined, value]`. */
export function valuesOf(spec: InstrumentSpec, r: Reading): ReadonlyArray<readonly [string | undefined, number]> {
  const v = spec.read(r)
  return typeof v === 'number' ? [[undefined, v]] : v
}

/** Histogram buckets: finite, positive and strictly increasing. */
export function checkBuckets(buckets: unknown): readonly number[] {
  if (buckets === undefined) return DEFAULT_DURATION_BUCKETS
  if (!Array.isArray(buckets) || buckets.length === 0) throw new LokiOptionError('buckets', 'must be a non-empty array of seconds')
  for (let i = 0; i < buckets.length; i++) {
    const b: unknown = buckets[i]
    if (typeof b !== 'number' || !Number.isFinite(b) || b <= 0 || (i > 0 && b <= (buckets[i - 1] as number))) {
      throw new LokiOptionError('buckets', 'must be finite positive numbers of seconds in increasing order')
    }
  }
  return [...(buckets as number[])]
}

/** Constant labels: an object of strings whose names are valid and do not take an instrument's own. */
export function checkConstLabels(option: string, labels: unknown, fallback: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  if (labels === undefined) return fallback
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw new LokiOptionError(option, 'must be an object of string values')
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(labels)) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k) || k.startsWith('__')) throw new LokiOptionError(`${option}.${k}`, 'is not a valid label name')
    if (RESERVED.has(k)) throw new LokiOptionError(`${option}.${k}`, `is a label lokiwire's instruments use themselves (${[...RESERVED].join(', ')})`)
    if (typeof v !== 'string') throw new LokiOptionError(`${option}.${k}`, 'must be a string')
    out[k] = v
  }
  return out
}

const RESERVED = new Set<string>(['reason', 'class', 'state', 'le', 'quantile'])

/** A stable key of a set of constant labels, to refuse registering the same series twice. */
export function labelsKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]))
}

/** Every client's series carries this unless the caller names its own constant labels. */
export const DEFAULT_CONST_LABELS: Readonly<Record<string, string>> = { client: 'default' }
