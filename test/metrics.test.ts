// lokiwire/prometheus and lokiwire/opentelemetry against the real libraries: a real client sends
// to the test receiver, then prom-client's text exposition and the OpenTelemetry SDK's collection
// are read and every instrument's value is checked against what happened.
import { spawnSync } from 'node:child_process'
import diagnosticsChannel from 'node:diagnostics_channel'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { AggregationTemporality, type DataPoint, DataPointType, type Histogram, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics'
import { Registry } from 'prom-client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type FailedEvent, LokiClient, type LokiClientOptions, LokiOptionError, type SentEvent } from '../src/index.js'
import { lokiStream } from '../src/adapters/pino.js'
import { registerOpenTelemetryMetrics } from '../src/metrics/opentelemetry.js'
import { registerPrometheusMetrics } from '../src/metrics/prometheus.js'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { FAST, waitUntil } from './helpers.js'

const ROOT = resolve(import.meta.dirname, '..')

/** Every drop reason stats() counts: each has its series from the start. */
const REASONS = ['buffer_full', 'closed', 'invalid_entry', 'invalid_labels', 'line_too_long', 'rejected', 'blocked', 'too_large', 'retries_exhausted', 'close_timeout', 'destroyed', 'exit', 'encode_error', 'internal_error']
const CLASSES = ['4xx', '429', '5xx', 'network', 'timeout']

/** One sample of a Prometheus text exposition: its value, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)))
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const got = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!] as const)
    if (JSON.stringify(got.sort(([a], [b]) => a.localeCompare(b))) === want) return Number(m[3])
  }
  return undefined
}

/** The `# TYPE` of every metric the exposition names. */
function types(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]))
}

/** Every event listener of a client, by event name: unregister() must bring them back. */
function listeners(client: LokiClient): Record<string, number> {
  return Object.fromEntries(['sent', 'failed', 'retry', 'drop', 'breaker', 'spool'].map((e) => [e, client.listenerCount(e as 'sent')]))
}

/** A diagnostics subscriber would be process-wide; the instruments use none. */
function subscribed(): boolean[] {
  return ['lokiwire:request:start', 'lokiwire:request:end', 'lokiwire:request:error'].map((n) => diagnosticsChannel.channel(n).hasSubscribers)
}

let srv: LokiTestServer
let clients: LokiClient[]
beforeEach(async () => {
  srv = await createLokiTestServer()
  clients = []
})
afterEach(async () => {
  await Promise.all(clients.map((c) => c.destroy()))
  await srv.close()
})

function client(extra: Partial<LokiClientOptions> = {}): LokiClient {
  const c = new LokiClient({ url: srv.url, labels: { app: 'metrics' }, ...FAST, breaker: false, ...extra })
  // Drops are expected here: a listener keeps them off the process warnings.
  c.on('drop', () => {})
  clients.push(c)
  return c
}

/**
 * The scenario both exporters are checked on: one batch of three lines answered 500, then 429,
 * then stored (two retries), and one entry refused at push (a drop). Returns the attempts'
 * durations in seconds, by class, as the events told them.
 */
async function sendWithFailures(c: LokiClient): Promise<Record<string, number[]>> {
  const seconds: Record<string, number[]> = {}
  const note = (cls: string, ms: number) => (seconds[cls] ??= []).push(ms / 1000)
  c.on('sent', (e: SentEvent) => note('2xx', e.durationMs))
  c.on('failed', (e: FailedEvent) => note(e.status === 500 ? '5xx' : '429', e.durationMs))
  srv.queueFaults({ type: 'status', status: 500 }, { type: 'status', status: 429 })
  c.push([{ line: 'one' }, { line: 'two' }, { line: 'three' }])
  c.push({ line: 42 as unknown as string })
  const result = await c.flush({ timeoutMs: 30_000 })
  expect(result.pendingEntries).toBe(0)
  expect(srv.entries.map((e) => e.line)).toEqual(['one', 'two', 'three'])
  // One attempt of each class, each timed; and no listener threw (the instruments' included).
  expect(Object.keys(seconds).sort()).toEqual(['2xx', '429', '5xx'])
  for (const [cls, s] of Object.entries(seconds)) {
    expect(s, cls).toHaveLength(1)
    expect(s[0], cls).toBeGreaterThan(0)
  }
  expect(c.stats().listenerErrors).toBe(0)
  return seconds
}

describe("the 'failed' event", () => {
  it('carries the class the transport gave the attempt and its duration', async () => {
    const c = client()
    const failed: FailedEvent[] = []
    c.on('failed', (e) => failed.push(e))
    srv.queueFaults({ type: 'status', status: 503 }, { type: 'status', status: 429 }, { type: 'status', status: 260 }, { type: 'reset' })
    c.push({ line: 'a' })
    await c.flush({ timeoutMs: 30_000 })
    c.push({ line: 'b' })
    await c.flush({ timeoutMs: 30_000 })
    expect(failed.map((e) => e.failure)).toEqual(['status5xx', 'status429', 'status4xx', 'network'])
    for (const e of failed) expect(e.durationMs).toBeGreaterThan(0)
    const s = c.stats().failedRequests
    expect([s.status5xx, s.status429, s.status4xx, s.network]).toEqual([1, 1, 1, 1])
  })
})

describe('lokiwire/prometheus', () => {
  it("exposes every instrument with the client's numbers after a 5xx then success, a 429 and a drop", async () => {
    const c = client()
    const registry = new Registry()
    registerPrometheusMetrics(c, { registry, labels: { client: 'main' } })
    const seconds = await sendWithFailures(c)
    const text = await registry.metrics()
    const s = c.stats()
    const at = (name: string, labels: Record<string, string> = {}) => sample(text, `lokiwire_${name}`, { client: 'main', ...labels })

    expect(types(text)).toEqual({
      lokiwire_pushed_entries_total: 'counter',
      lokiwire_sent_entries_total: 'counter',
      lokiwire_sent_bytes_total: 'counter',
      lokiwire_sent_batches_total: 'counter',
      lokiwire_dropped_entries_total: 'counter',
      lokiwire_failed_requests_total: 'counter',
      lokiwire_retries_total: 'counter',
      lokiwire_truncated_lines_total: 'counter',
      lokiwire_abandoned_bodies_total: 'counter',
      lokiwire_spool_written_entries_total: 'counter',
      lokiwire_spool_loaded_entries_total: 'counter',
      lokiwire_spool_errors_total: 'counter',
      lokiwire_buffered_entries: 'gauge',
      lokiwire_buffered_bytes: 'gauge',
      lokiwire_buffer_used_bytes: 'gauge',
      lokiwire_buffer_limit_bytes: 'gauge',
      lokiwire_inflight_requests: 'gauge',
      lokiwire_inflight_entries: 'gauge',
      lokiwire_open_connections: 'gauge',
      lokiwire_breaker_state: 'gauge',
      lokiwire_spool_bytes: 'gauge',
      lokiwire_request_duration_seconds: 'histogram',
    })
    expect(at('pushed_entries_total')).toBe(4)
    expect(at('sent_entries_total')).toBe(3)
    expect(s.sent.bytes).toBeGreaterThan(0)
    expect(at('sent_bytes_total')).toBe(s.sent.bytes)
    expect(at('sent_batches_total')).toBe(1)
    for (const reason of REASONS) expect(at('dropped_entries_total', { reason }), reason).toBe(reason === 'invalid_entry' ? 1 : 0)
    for (const cls of CLASSES) expect(at('failed_requests_total', { class: cls }), cls).toBe(cls === '5xx' || cls === '429' ? 1 : 0)
    expect(at('retries_total')).toBe(2)
    for (const name of ['truncated_lines_total', 'abandoned_bodies_total', 'spool_written_entries_total', 'spool_loaded_entries_total', 'spool_errors_total']) {
      expect(at(name), name).toBe(0)
    }
    for (const name of ['buffered_entries', 'buffered_bytes', 'buffer_used_bytes', 'inflight_requests', 'inflight_entries', 'spool_bytes']) expect(at(name), name).toBe(0)
    expect(at('buffer_limit_bytes')).toBe(c.limits.maxBufferBytes)
    expect(s.connections).toBeGreaterThanOrEqual(1)
    expect(at('open_connections')).toBe(s.connections)
    expect([at('breaker_state', { state: 'closed' }), at('breaker_state', { state: 'open' }), at('breaker_state', { state: 'halfOpen' })]).toEqual([1, 0, 0])

    // One attempt per class, its duration in the right bucket; the classes nothing hit are at zero.
    for (const cls of ['2xx', ...CLASSES]) {
      const observed = seconds[cls] ?? []
      expect(at('request_duration_seconds_count', { class: cls }), cls).toBe(observed.length)
      expect(at('request_duration_seconds_sum', { class: cls }), cls).toBeCloseTo(observed.reduce((a, b) => a + b, 0), 9)
      expect(at('request_duration_seconds_bucket', { class: cls, le: '+Inf' }), cls).toBe(observed.length)
      for (const le of [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]) {
        expect(at('request_duration_seconds_bucket', { class: cls, le: String(le) }), `${cls} le=${le}`).toBe(observed.filter((x) => x <= le).length)
      }
    }
    expect(seconds['2xx']).toHaveLength(1)
  })

  it('reports a request in flight, entries buffered behind it, and the connection it holds', async () => {
    const c = client({ concurrency: 1, requestTimeoutMs: 60_000 })
    const registry = new Registry()
    registerPrometheusMetrics(c, { registry })
    srv.setFault({ type: 'stall' })
    c.push([{ line: 'a' }, { line: 'b' }])
    await waitUntil(() => c.stats().inFlight.requests === 1, 'the stalled request on the wire')
    c.push({ line: 'c' })
    await waitUntil(() => c.stats().buffered.entries === 1 && c.stats().connections === 1, 'one entry queued behind it')
    const text = await registry.metrics()
    const s = c.stats()
    const at = (name: string) => sample(text, `lokiwire_${name}`, { client: 'default' })
    expect([at('inflight_requests'), at('inflight_entries'), at('buffered_entries'), at('open_connections')]).toEqual([1, 2, 1, 1])
    expect(s.buffered.bytes).toBeGreaterThan(0)
    expect(at('buffered_bytes')).toBe(s.buffered.bytes)
    expect(at('buffer_used_bytes')).toBe(s.bufferUsedBytes)
    expect(s.bufferUsedBytes).toBeGreaterThan(s.buffered.bytes)
  })

  it('reports an open breaker and what the spool holds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lokiwire-metrics-'))
    try {
      srv.setFault({ type: 'status', status: 503 })
      const c = client({
        retry: { maxAttempts: 1 },
        breaker: { volumeThreshold: 1, resetTimeoutMs: 60_000 },
        spool: { dir, breakerWaitMs: 20 },
      })
      const registry = new Registry()
      registerPrometheusMetrics(c, { registry })
      c.push([{ line: 'a' }, { line: 'b' }])
      await waitUntil(() => {
        const s = c.stats()
        return s.breaker === 'open' && s.spool.written === 2 && s.buffered.entries === 0 && s.inFlight.entries === 0
      }, 'the batch spooled and the breaker open')
      const text = await registry.metrics()
      const s = c.stats()
      const at = (name: string, labels: Record<string, string> = {}) => sample(text, `lokiwire_${name}`, { client: 'default', ...labels })
      expect([at('breaker_state', { state: 'closed' }), at('breaker_state', { state: 'open' }), at('breaker_state', { state: 'halfOpen' })]).toEqual([0, 1, 0])
      expect(s.spool.bytes).toBeGreaterThan(0)
      expect(at('spool_bytes')).toBe(s.spool.bytes)
      expect(at('spool_written_entries_total')).toBe(2)
      expect(at('failed_requests_total', { class: '5xx' })).toBe(1)
      expect(at('dropped_entries_total', { reason: 'retries_exhausted' })).toBe(0)
      await c.destroy()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('lets several clients share a registry by their labels; unregister() leaves no series, metric or listener behind', async () => {
    const a = client()
    const b = client()
    const registry = new Registry()
    const before = listeners(a)
    expect(subscribed()).toEqual([false, false, false])
    const ra = registerPrometheusMetrics(a, { registry, labels: { client: 'a' } })
    const rb = registerPrometheusMetrics(b, { registry, labels: { client: 'b' } })
    expect(listeners(a)).not.toEqual(before)
    expect(() => registerPrometheusMetrics(b, { registry, labels: { client: 'a' } })).toThrow(LokiOptionError)
    expect(() => registerPrometheusMetrics(b, { registry, labels: { service: 'x' } })).toThrow(/same label names/)
    expect(() => registerPrometheusMetrics(b, { registry, labels: { client: 'c' }, buckets: [1, 2] })).toThrow(/buckets/)
    a.push([{ line: 'a1' }, { line: 'a2' }])
    b.push({ line: 'b1' })
    await Promise.all([a.flush({ timeoutMs: 30_000 }), b.flush({ timeoutMs: 30_000 })])
    let text = await registry.metrics()
    expect(sample(text, 'lokiwire_sent_entries_total', { client: 'a' })).toBe(2)
    expect(sample(text, 'lokiwire_sent_entries_total', { client: 'b' })).toBe(1)
    expect(sample(text, 'lokiwire_request_duration_seconds_count', { client: 'b', class: '2xx' })).toBe(1)

    ra.unregister()
    ra.unregister()
    expect(listeners(a)).toEqual(before)
    text = await registry.metrics()
    expect(sample(text, 'lokiwire_sent_entries_total', { client: 'a' })).toBeUndefined()
    expect(sample(text, 'lokiwire_request_duration_seconds_count', { client: 'a', class: '2xx' })).toBeUndefined()
    expect(sample(text, 'lokiwire_sent_entries_total', { client: 'b' })).toBe(1)
    // Attempts after unregister() are not recorded for it.
    a.push({ line: 'a3' })
    await a.flush({ timeoutMs: 30_000 })
    expect(sample(await registry.metrics(), 'lokiwire_request_duration_seconds_count', { client: 'a', class: '2xx' })).toBeUndefined()

    rb.unregister()
    expect(listeners(b)).toEqual(before)
    expect(registry.getMetricsAsArray()).toEqual([])
    expect(subscribed()).toEqual([false, false, false])
    // The names are free again: the same labels register anew.
    registerPrometheusMetrics(a, { registry, labels: { client: 'a' } }).unregister()
    expect(registry.getMetricsAsArray()).toEqual([])
  })

  it("reads an adapter's client (lokiStream), on prom-client's global registry by default", async () => {
    const { register } = await import('prom-client')
    const stream = lokiStream({ url: srv.url, labels: { app: 'metrics' }, ...FAST })
    try {
      const r = registerPrometheusMetrics(stream)
      stream.write(`${JSON.stringify({ level: 30, time: Date.now(), msg: 'from pino' })}\n`)
      await waitUntil(() => stream.client.stats().sent.entries === 1, 'the line sent')
      expect(sample(await register.metrics(), 'lokiwire_sent_entries_total', { client: 'default' })).toBe(1)
      r.unregister()
      expect(register.getSingleMetric('lokiwire_sent_entries_total')).toBeUndefined()
    } finally {
      await stream.client.destroy()
    }
  })

  it('refuses what is not a client and invalid options with a LokiOptionError', () => {
    const c = client()
    const registry = new Registry()
    const refused = (fn: () => unknown) => {
      try {
        fn()
      } catch (err) {
        expect(err).toBeInstanceOf(LokiOptionError)
        return (err as LokiOptionError).option
      }
      throw new Error('not refused')
    }
    expect(refused(() => registerPrometheusMetrics({} as LokiClient, { registry }))).toBe('client')
    expect(refused(() => registerPrometheusMetrics(c, { registry, prefix: 'bad-prefix' }))).toBe('prefix')
    expect(refused(() => registerPrometheusMetrics(c, { registry, labels: { reason: 'x' } }))).toBe('labels.reason')
    expect(refused(() => registerPrometheusMetrics(c, { registry, labels: { 'bad-name': 'x' } }))).toBe('labels.bad-name')
    expect(refused(() => registerPrometheusMetrics(c, { registry, labels: { client: 1 as unknown as string } }))).toBe('labels.client')
    expect(refused(() => registerPrometheusMetrics(c, { registry, buckets: [1, 0.5] }))).toBe('buckets')
    expect(refused(() => registerPrometheusMetrics(c, { registry: {} as Registry }))).toBe('registry')
    registry.registerMetric({ name: 'lokiwire_sent_entries_total', get: async () => ({}) } as never)
    expect(refused(() => registerPrometheusMetrics(c, { registry }))).toBe('registry')
    expect(listeners(c)).toEqual({ sent: 0, failed: 0, retry: 0, drop: 1, breaker: 0, spool: 0 })
  })
})

/** A reader the test collects from on demand. */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  }
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** The data points of one instrument in a collection, by name. */
function points(rm: ResourceMetrics, name: string): Array<DataPoint<unknown>> {
  const metric = rm.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name)
  return (metric?.dataPoints ?? []) as Array<DataPoint<unknown>>
}

function point<T>(rm: ResourceMetrics, name: string, attributes: Record<string, string>): T | undefined {
  const want = JSON.stringify(Object.entries(attributes).sort())
  return points(rm, name).find((p) => JSON.stringify(Object.entries(p.attributes).sort()) === want)?.value as T | undefined
}

describe('lokiwire/opentelemetry', () => {
  let provider: MeterProvider
  let reader: TestReader
  beforeEach(() => {
    reader = new TestReader()
    provider = new MeterProvider({ readers: [reader] })
  })
  afterEach(async () => {
    await provider.shutdown()
  })

  async function collect(): Promise<ResourceMetrics> {
    const { resourceMetrics, errors } = await reader.collect()
    expect(errors).toEqual([])
    return resourceMetrics
  }

  it("observes every instrument with the client's numbers after a 5xx then success, a 429 and a drop", async () => {
    const c = client()
    registerOpenTelemetryMetrics(c, { meterProvider: provider, attributes: { client: 'main' } })
    const seconds = await sendWithFailures(c)
    const rm = await collect()
    const s = c.stats()
    const at = (name: string, attrs: Record<string, string> = {}) => point<number>(rm, `lokiwire.${name}`, { client: 'main', ...attrs })

    const kind = (m: ResourceMetrics['scopeMetrics'][number]['metrics'][number]) =>
      m.dataPointType === DataPointType.SUM ? (m.isMonotonic ? 'COUNTER' : 'SUM') : DataPointType[m.dataPointType]
    const descriptors = Object.fromEntries(rm.scopeMetrics.flatMap((x) => x.metrics).map((m) => [m.descriptor.name, `${kind(m)} ${m.descriptor.unit}`]))
    expect(descriptors).toEqual({
      'lokiwire.pushed.entries': 'COUNTER {entry}',
      'lokiwire.sent.entries': 'COUNTER {entry}',
      'lokiwire.sent.bytes': 'COUNTER By',
      'lokiwire.sent.batches': 'COUNTER {batch}',
      'lokiwire.dropped.entries': 'COUNTER {entry}',
      'lokiwire.failed.requests': 'COUNTER {request}',
      'lokiwire.retries': 'COUNTER {retry}',
      'lokiwire.truncated.lines': 'COUNTER {entry}',
      'lokiwire.abandoned.bodies': 'COUNTER {response}',
      'lokiwire.spool.written.entries': 'COUNTER {entry}',
      'lokiwire.spool.loaded.entries': 'COUNTER {entry}',
      'lokiwire.spool.errors': 'COUNTER {error}',
      'lokiwire.buffered.entries': 'GAUGE {entry}',
      'lokiwire.buffered.bytes': 'GAUGE By',
      'lokiwire.buffer.used.bytes': 'GAUGE By',
      'lokiwire.buffer.limit.bytes': 'GAUGE By',
      'lokiwire.inflight.requests': 'GAUGE {request}',
      'lokiwire.inflight.entries': 'GAUGE {entry}',
      'lokiwire.open.connections': 'GAUGE {connection}',
      'lokiwire.breaker.state': 'GAUGE 1',
      'lokiwire.spool.bytes': 'GAUGE By',
      'lokiwire.request.duration.seconds': 'HISTOGRAM s',
    })
    expect(at('pushed.entries')).toBe(4)
    expect(at('sent.entries')).toBe(3)
    expect(at('sent.bytes')).toBe(s.sent.bytes)
    expect(at('sent.batches')).toBe(1)
    for (const reason of REASONS) expect(at('dropped.entries', { reason }), reason).toBe(reason === 'invalid_entry' ? 1 : 0)
    for (const cls of CLASSES) expect(at('failed.requests', { class: cls }), cls).toBe(cls === '5xx' || cls === '429' ? 1 : 0)
    expect(at('retries')).toBe(2)
    for (const name of ['truncated.lines', 'abandoned.bodies', 'spool.written.entries', 'spool.loaded.entries', 'spool.errors']) expect(at(name), name).toBe(0)
    for (const name of ['buffered.entries', 'buffered.bytes', 'buffer.used.bytes', 'inflight.requests', 'inflight.entries', 'spool.bytes']) expect(at(name), name).toBe(0)
    expect(at('buffer.limit.bytes')).toBe(c.limits.maxBufferBytes)
    expect(at('open.connections')).toBe(s.connections)
    expect([at('breaker.state', { state: 'closed' }), at('breaker.state', { state: 'open' }), at('breaker.state', { state: 'halfOpen' })]).toEqual([1, 0, 0])

    for (const cls of ['2xx', '5xx', '429']) {
      const h = point<Histogram>(rm, 'lokiwire.request.duration.seconds', { client: 'main', class: cls })!
      expect(h.count, cls).toBe(seconds[cls]!.length)
      expect(h.sum, cls).toBeCloseTo(seconds[cls]![0]!, 9)
      // The advised boundaries, in seconds, not the SDK's millisecond defaults.
      expect(h.buckets.boundaries).toEqual([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
      expect(h.buckets.counts.reduce((a, b) => a + b, 0)).toBe(1)
      expect(h.buckets.counts[h.buckets.boundaries.findIndex((b) => seconds[cls]![0]! <= b)]).toBe(1)
    }
  })

  it('shares a meter between clients by their attributes; unregister() stops the observations and removes every listener', async () => {
    const a = client()
    const b = client()
    const meter = provider.getMeter('app')
    const before = listeners(a)
    const ra = registerOpenTelemetryMetrics(a, { meter, attributes: { client: 'a' } })
    const rb = registerOpenTelemetryMetrics(b, { meter, attributes: { client: 'b' } })
    expect(() => registerOpenTelemetryMetrics(b, { meter, attributes: { client: 'a' } })).toThrow(LokiOptionError)
    a.push({ line: 'a1' })
    b.push([{ line: 'b1' }, { line: 'b2' }])
    await Promise.all([a.flush({ timeoutMs: 30_000 }), b.flush({ timeoutMs: 30_000 })])
    let rm = await collect()
    expect(point(rm, 'lokiwire.sent.entries', { client: 'a' })).toBe(1)
    expect(point(rm, 'lokiwire.sent.entries', { client: 'b' })).toBe(2)

    ra.unregister()
    ra.unregister()
    expect(listeners(a)).toEqual(before)
    a.push({ line: 'a2' })
    await a.flush({ timeoutMs: 30_000 })
    rm = await collect()
    // Observations stop with unregister(): a cumulative reader keeps the last value it was given,
    // and a2, sent since, never reaches it.
    expect(a.stats().sent.entries).toBe(2)
    expect(point(rm, 'lokiwire.sent.entries', { client: 'a' })).toBe(1)
    expect(point(rm, 'lokiwire.sent.entries', { client: 'b' })).toBe(2)
    expect(point<Histogram>(rm, 'lokiwire.request.duration.seconds', { client: 'a', class: '2xx' })?.count).toBe(1)
    rb.unregister()
    expect(listeners(b)).toEqual(before)
    expect(subscribed()).toEqual([false, false, false])
    // The attributes are free again.
    registerOpenTelemetryMetrics(a, { meter, attributes: { client: 'a' } }).unregister()
  })
})

describe('the core entry point', () => {
  it('loads neither prom-client nor OpenTelemetry, for import and require; the metrics entry points do', () => {
    // Resolving either peer throws, through the ESM loader's hook and CommonJS's resolver alike.
    const script = `
      import Module, { createRequire, register } from 'node:module'
      const refuse = (s) => s === 'prom-client' || s.startsWith('@opentelemetry/')
      register('data:text/javascript,' + encodeURIComponent(
        "export async function resolve(s, c, next) { if (s === 'prom-client' || s.startsWith('@opentelemetry/')) throw new Error('loaded ' + s); return next(s, c) }"))
      const resolveFilename = Module._resolveFilename
      Module._resolveFilename = function (request, ...rest) {
        if (refuse(request)) throw new Error('required ' + request)
        return resolveFilename.call(this, request, ...rest)
      }
      const require = createRequire(import.meta.url)
      const out = []
      const core = await import('lokiwire')
      out.push(typeof core.LokiClient)
      out.push(typeof require('lokiwire').LokiClient)
      for (const entry of ['lokiwire/prometheus', 'lokiwire/opentelemetry']) {
        out.push(await import(entry).then(() => 'imported', (e) => e.message))
        try { require(entry); out.push('required') } catch (e) { out.push(e.message) }
      }
      console.log(JSON.stringify(out))
    `
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toEqual([
      'function',
      'function',
      'loaded prom-client',
      'required prom-client',
      'loaded @opentelemetry/api',
      'required @opentelemetry/api',
    ])
  })
})

describe('the built package', () => {
  it('lokiwire/prometheus and lokiwire/opentelemetry work from CommonJS too', () => {
    const script = `
      const { LokiClient } = require('lokiwire')
      const { registerPrometheusMetrics } = require('lokiwire/prometheus')
      const { registerOpenTelemetryMetrics } = require('lokiwire/opentelemetry')
      const { Registry } = require('prom-client')
      const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics')
      class Reader extends MetricReader { async onForceFlush() {} async onShutdown() {} }
      ;(async () => {
        const client = new LokiClient({ url: 'http://127.0.0.1:9', labels: { app: 'cjs' } }).on('drop', () => {})
        client.push({ line: 'x' })
        const registry = new Registry()
        const reader = new Reader()
        const p = registerPrometheusMetrics(client, { registry })
        const o = registerOpenTelemetryMetrics(client, { meterProvider: new MeterProvider({ readers: [reader] }) })
        const text = await registry.metrics()
        const { resourceMetrics } = await reader.collect()
        const pushed = resourceMetrics.scopeMetrics[0].metrics.find((m) => m.descriptor.name === 'lokiwire.pushed.entries').dataPoints[0].value
        p.unregister()
        o.unregister()
        await client.destroy()
        console.log(JSON.stringify([/^lokiwire_pushed_entries_total\\{client="default"\\} 1$/m.test(text), pushed]))
      })()
    `
    const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toEqual([true, 1])
  })
})
