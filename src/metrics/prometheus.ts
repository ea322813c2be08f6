/**
 * lokiwire/prometheus: a client's health as prom-client metrics, the way Promtail exposes its own
 * (`lokiwire_sent_entries_total`, `lokiwire_dropped_entries_total{reason}`,
 * `lokiwire_request_duration_seconds{class}`…). Counters and gauges are read from `stats()` when
 * the registry is scraped; only attempt durations come from events. prom-client is an optional
 * peer dependency: only this entry point loads it.
 */
import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client'
import { LokiOptionError } from '../index.js'
import {
  checkBuckets,
  checkConstLabels,
  clientOf,
  DEFAULT_CONST_LABELS,
  DURATION,
  DURATION_CLASSES,
  INSTRUMENTS,
  labelsKey,
  Source,
  valuesOf,
  type MetricsRegistration,
  type MetricsTarget,
} from './instruments.js'

export { DEFAULT_DURATION_BUCKETS } from './instruments.js'
export type { MetricsRegistration, MetricsTarget } from './instruments.js'

export interface PrometheusMetricsOptions {
  /** The registry to register on. @default prom-client's global `register` */
  registry?: Registry
  /** Prepended to every metric name; must be a valid metric name prefix. @default 'lokiwire_' */
  prefix?: string
  /**
   * Constant labels on every series of this client, so several clients can share one registry.
   * Every client registered on the same registry (and prefix) must use the same label names and
   * a different combination of values. @default { client: 'default' }
   */
  labels?: Readonly<Record<string, string>>
  /**
   * Upper bounds, in seconds, of `lokiwire_request_duration_seconds`. Clients sharing a registry
   * share the histogram, so they must agree on its buckets.
   * @default [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
   */
  buckets?: readonly number[]
}

type Instrument = Counter | Gauge

/**
 * The instruments of one registry and prefix, and the clients reporting through them. prom-client
 * refuses a second metric of the same name, so clients share the metrics and tell their series
 * apart by their constant labels; each collect() walks every client.
 */
class Group {
  readonly sources = new Map<string, { source: Source; labels: Readonly<Record<string, string>> }>()
  /** Each metric by its name (prom-client's typings do not expose `name`). */
  readonly metrics: Array<readonly [string, Instrument | Histogram]>
  readonly histogram: Histogram
  readonly labelNames: readonly string[]
  readonly buckets: readonly number[]
  readonly #registry: Registry

  constructor(registry: Registry, prefix: string, labelNames: readonly string[], buckets: readonly number[]) {
    this.#registry = registry
    this.labelNames = labelNames
    this.buckets = buckets
    const names = [...INSTRUMENTS.map((s) => `${prefix}${s.name}${s.kind === 'counter' ? '_total' : ''}`), `${prefix}${DURATION.name}`]
    const taken = names.find((n) => registry.getSingleMetric(n) !== undefined)
    if (taken !== undefined) throw new LokiOptionError('registry', `already holds a metric named ${taken} that lokiwire did not register`)
    const group = this
    const instruments = INSTRUMENTS.map((spec, i): Instrument => {
      const config = {
        name: names[i]!,
        help: spec.help,
        labelNames: spec.label === undefined ? [...labelNames] : [...labelNames, spec.label],
        registers: [registry],
      }
      // Rebuilt from the clients' stats at every scrape: a client unregistered meanwhile leaves no series behind.
      if (spec.kind === 'counter') {
        const counter: Counter = new Counter({
          ...config,
          collect() {
            counter.reset()
            for (const { source, labels } of group.sources.values()) {
              for (const [value, n] of valuesOf(spec, source.read())) counter.inc(spec.label === undefined ? labels : { ...labels, [spec.label]: value! }, n)
            }
          },
        })
        return counter
      }
      const gauge: Gauge = new Gauge({
        ...config,
        collect() {
          gauge.reset()
          for (const { source, labels } of group.sources.values()) {
            for (const [value, n] of valuesOf(spec, source.read())) gauge.set(spec.label === undefined ? labels : { ...labels, [spec.label]: value! }, n)
          }
        },
      })
      return gauge
    })
    this.histogram = new Histogram({
      name: names[names.length - 1]!,
      help: DURATION.help,
      labelNames: [...labelNames, 'class'],
      buckets: [...buckets],
      registers: [registry],
    })
    this.metrics = [...instruments, this.histogram].map((m, i) => [names[i]!, m] as const)
  }

  /** True while the registry still holds these metrics (`registry.clear()` forgets them). */
  get registered(): boolean {
    const [name, metric] = this.metrics[0]!
    return this.#registry.getSingleMetric(name) === metric
  }

  /** Takes the metrics off the registry, unless it has since been given others of the same names. */
  remove(): void {
    for (const [name, m] of this.metrics) if (this.#registry.getSingleMetric(name) === m) this.#registry.removeSingleMetric(name)
  }
}

/** Groups by registry, then by prefix. */
const groups = new WeakMap<Registry, Map<string, Group>>()

/**
 * Registers the metrics of `target` (a LokiClient, `lokiStream()` or a `LokiTransport`) on a
 * prom-client registry. Values are read from the client at scrape time; the client keeps
 * working the same whether or not anyone scrapes. Call `unregister()` before registering a new
 * client under the same labels.
 *
 * @throws LokiOptionError on an invalid option, labels that another registered client already
 *   uses, or a registry that holds a metric of the same name lokiwire did not register.
 */
export function registerPrometheusMetrics(target: MetricsTarget, options: PrometheusMetricsOptions = {}): MetricsRegistration {
  const client = clientOf(target)
  const registry = options.registry ?? globalRegistry
  if (typeof registry?.getSingleMetric !== 'function') throw new LokiOptionError('registry', 'must be a prom-client Registry')
  const prefix = options.prefix ?? 'lokiwire_'
  if (typeof prefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) throw new LokiOptionError('prefix', 'must be a valid metric name prefix')
  const labels = checkConstLabels('labels', options.labels, DEFAULT_CONST_LABELS)
  const buckets = checkBuckets(options.buckets)

  let byPrefix = groups.get(registry)
  if (byPrefix === undefined) groups.set(registry, (byPrefix = new Map()))
  let group = byPrefix.get(prefix)
  if (group !== undefined && !group.registered) group = undefined // the registry was cleared: start over
  const names = Object.keys(labels).sort()
  if (group !== undefined) {
    if (group.labelNames.length !== names.length || group.labelNames.some((n, i) => n !== names[i])) {
      throw new LokiOptionError('labels', `clients sharing a registry must use the same label names: [${group.labelNames.join(', ')}] are registered`)
    }
    if (group.buckets.length !== buckets.length || group.buckets.some((b, i) => b !== buckets[i])) {
      throw new LokiOptionError('buckets', 'differ from those of the clients already registered on this registry')
    }
  } else {
    group = new Group(registry, prefix, names, buckets)
    byPrefix.set(prefix, group)
  }
  const key = labelsKey(labels)
  if (group.sources.has(key)) throw new LokiOptionError('labels', `another client is registered with the labels ${key}: give each client its own`)

  const histogram = group.histogram
  const source = new Source(client, (seconds, cls) => histogram.observe({ ...labels, class: cls }, seconds))
  group.sources.set(key, { source, labels })
  // Every class starts at zero, so rate() and histogram_quantile() have their series from the first scrape.
  for (const cls of DURATION_CLASSES) histogram.zero({ ...labels, class: cls })

  const mine = group
  let done = false
  return {
    unregister() {
      if (done) return
      done = true
      source.close()
      mine.sources.delete(key)
      for (const cls of DURATION_CLASSES) histogram.remove({ ...labels, class: cls })
      if (mine.sources.size === 0) {
        mine.remove()
        if (byPrefix.get(prefix) === mine) byPrefix.delete(prefix)
      }
    },
  }
}
