/**
 * lokiwire/opentelemetry: the instruments of lokiwire/prometheus through the OpenTelemetry
 * metrics API. Counters are observable counters and state-like values observable gauges, all
 * observed from one `stats()` reading per collection; attempt durations go to a histogram as
 * attempts end. @opentelemetry/api is an optional peer dependency: only this entry point loads it.
 */
import { type Attributes, type BatchObservableCallback, type Histogram, type Meter, type MeterProvider, metrics, type Observable, ValueType } from '@opentelemetry/api'
import { LokiOptionError, VERSION } from '../index.js'
import {
  checkBuckets,
  checkConstLabels,
  clientOf,
  DEFAULT_CONST_LABELS,
  DURATION,
  INSTRUMENTS,
  labelsKey,
  otelName,
  Source,
  valuesOf,
  type MetricsRegistration,
  type MetricsTarget,
} from './instruments.js'

export { DEFAULT_DURATION_BUCKETS } from './instruments.js'
export type { MetricsRegistration, MetricsTarget } from './instruments.js'

export interface OpenTelemetryMetricsOptions {
  /** The meter to create the instruments with. @default `meterProvider.getMeter('lokiwire', VERSION)` */
  meter?: Meter
  /** Where the default meter comes from (ignored when `meter` is given). @default the global `metrics.getMeterProvider()` */
  meterProvider?: MeterProvider
  /**
   * Constant attributes on every data point of this client, so several clients can share one
   * meter; each client needs its own combination. @default { client: 'default' }
   */
  attributes?: Readonly<Record<string, string>>
  /**
   * Bucket boundaries, in seconds, advised for `lokiwire.request.duration.seconds` (a View can
   * still override them). @default [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
   */
  buckets?: readonly number[]
}

/** Attribute sets in use per meter, to refuse two clients reporting as one. */
const inUse = new WeakMap<Meter, Set<string>>()

/**
 * Reports the instruments of `target` (a LokiClient, `lokiStream()` or a `LokiTransport`)
 * through an OpenTelemetry meter. Instrument names are the Prometheus names with `.` for `_` and
 * without `_total` (`lokiwire.sent.entries`), so an OpenTelemetry Prometheus exporter gives back
 * the names lokiwire/prometheus uses.
 *
 * OpenTelemetry has no way to delete an instrument: `unregister()` stops the observations and
 * the recordings, and the client's series end there.
 *
 * @throws LokiOptionError on an invalid option, or attributes another registered client already uses on this meter.
 */
export function registerOpenTelemetryMetrics(target: MetricsTarget, options: OpenTelemetryMetricsOptions = {}): MetricsRegistration {
  const client = clientOf(target)
  const attributes: Attributes = checkConstLabels('attributes', options.attributes, DEFAULT_CONST_LABELS)
  const buckets = checkBuckets(options.buckets)
  const meter = options.meter ?? (options.meterProvider ?? metrics.getMeterProvider()).getMeter('lokiwire', VERSION)
  if (typeof meter?.addBatchObservableCallback !== 'function') throw new LokiOptionError('meter', 'must be an OpenTelemetry Meter')
  let used = inUse.get(meter)
  if (used === undefined) inUse.set(meter, (used = new Set()))
  const key = labelsKey(attributes as Record<string, string>)
  if (used.has(key)) throw new LokiOptionError('attributes', `another client is registered on this meter with the attributes ${key}: give each client its own`)

  const observables = INSTRUMENTS.map((spec) => {
    const description = { description: spec.help, unit: spec.unit, valueType: ValueType.INT }
    return spec.kind === 'counter' ? meter.createObservableCounter(otelName(spec.name), description) : meter.createObservableGauge(otelName(spec.name), description)
  })
  const histogram: Histogram = meter.createHistogram(otelName(DURATION.name), {
    description: DURATION.help,
    unit: DURATION.unit,
    advice: { explicitBucketBoundaries: [...buckets] },
  })
  const source = new Source(client, (seconds, cls) => histogram.record(seconds, { ...attributes, class: cls }))
  const observe: BatchObservableCallback = (result) => {
    const reading = source.read()
    INSTRUMENTS.forEach((spec, i) => {
      for (const [value, n] of valuesOf(spec, reading)) {
        result.observe(observables[i] as Observable, n, spec.label === undefined ? attributes : { ...attributes, [spec.label]: value })
      }
    })
  }
  meter.addBatchObservableCallback(observe, observables)
  used.add(key)

  let done = false
  return {
    unregister() {
      if (done) return
      done = true
      source.close()
      meter.removeBatchObservableCallback(observe, observables)
      used.delete(key)
    },
  }
}
