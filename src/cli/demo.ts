import { randomBytes } from 'node:crypto'
import { LokiClient, type FlushResult } from '../client/client.js'
import { LokiOptionError } from '../model/errors.js'
import type { LokiClientOptions } from '../model/options.js'
import { createLokiTestServer, type Fault, type LokiTestServer, type ReceivedEntry } from '../testing/server.js'
import { DROP_REASONS } from '../model/types.js'
import { CONNECTION_FLAGS, CliUsageError, connectionOptions, formatFlags, int, parseFlags, str, usageFromOptionError, type EnvSources, type FlagSpec } from './args.js'
import type { CliIO } from './io.js'
import { count, LatencyRecorder, ms, plural, RateMeter } from './metrics.js'
import { Progress } from './progress.js'
import { lokiStream, type LokiPinoStream } from '../adapters/pino.js'
import { clientLogger, loadPino, pinoLogger, startService, type ClientLogger } from './service.js'

const DEFAULT_SECONDS = 16
const QUICK_SECONDS = 5
const DEFAULT_RATE = 1000
const CLOSE_TIMEOUT_MS = 10_000
const PLAIN_PROGRESS_MS = 1000
/** Short batches against the embedded receiver so each step of the act shows within a second. */
const EMBEDDED_BATCH_WAIT_MS = 200
const REAL_BATCH_WAIT_MS = 500
const DEFAULT_CONCURRENCY = 2

export const DEMO_FLAGS: readonly FlagSpec[] = [
  { name: 'seconds', type: 'string', value: '<n>', help: `How long the service logs; the demo takes about a second more.\nDefault: ${DEFAULT_SECONDS}` },
  { name: 'quick', type: 'boolean', help: `A short run: --seconds ${QUICK_SECONDS}` },
  { name: 'rate', type: 'string', value: '<lines/s>', help: `Lines the service logs per second. Default: ${DEFAULT_RATE}` },
  ...CONNECTION_FLAGS,
  { name: 'help', type: 'boolean', short: 'h', help: 'Show this help' },
]

export const DEMO_HELP = `Usage: lokiwire demo [--quick | --seconds <n>] [--url <url> [flags]]

Starts the embedded Loki-compatible receiver (lokiwire/testing) and a small service logging
through pino and lokiwire's pino stream (straight through LokiClient where pino is not
installed), then puts the receiver through a fault act: it stalls, answers 500s, then
recovers. The progress line shows the client holding its connections, backing off and catching
up. The summary lists pushed, delivered and dropped lines, peak connections, request latency, and
checks that the receiver holds every logged line exactly once (by sequence id). Exit status 0
when that check passes.

With --url (or LOKI_URL) the service logs to that Loki instead, with the connection flags below;
the fault act and the receiver-side check are then skipped, and the exit status is 0 when no line
was dropped.

Flags:
${formatFlags(DEMO_FLAGS)}
`

interface Phase {
  /** Offset from the start, as a share of the run. */
  at: number
  name: string
  fault: Fault | null
  say: (c: DemoConfig) => string
}

interface DemoConfig {
  concurrency: number
  requestTimeoutMs: number
  maxDelayMs: number
  resetTimeoutMs: number
}

const PHASES: readonly Phase[] = [
  { at: 0, name: 'healthy', fault: null, say: () => `receiver healthy: a batch about every ${EMBEDDED_BATCH_WAIT_MS} ms over pooled keep-alive connections` },
  {
    at: 0.25,
    name: 'stall',
    fault: { type: 'stall' },
    say: (c) => `receiver stalls (reads requests, never answers): each attempt is cut after ${c.requestTimeoutMs} ms and retried, on at most ${c.concurrency} connections`,
  },
  {
    at: 0.45,
    name: '500s',
    fault: { type: 'status', status: 500, body: 'internal server error (demo fault)' },
    say: (c) => `receiver answers 500: jittered backoff up to ${c.maxDelayMs} ms, then the breaker opens and lines wait in the buffer`,
  },
  { at: 0.65, name: 'recovered', fault: null, say: (c) => `receiver recovers: a probe every ${c.resetTimeoutMs} ms finds it back, the breaker closes and the buffer drains` },
]

/** Against a real Loki there is no act: the service just logs. */
const REAL_LOKI_PHASE: Phase = { at: 0, name: 'logging', fault: null, say: () => `the service logs; a batch leaves about every ${REAL_BATCH_WAIT_MS} ms` }

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v))
const round50 = (v: number) => Math.round(v / 50) * 50

export async function runDemo(argv: readonly string[], io: CliIO): Promise<number> {
  const values = parseFlags(argv, DEMO_FLAGS, 'lokiwire demo')
  if (values.help === true) {
    io.stdout.write(DEMO_HELP)
    return 0
  }
  if (values.quick === true && str(values, 'seconds') !== undefined) throw new CliUsageError('use one of --quick and --seconds')
  const seconds = values.quick === true ? QUICK_SECONDS : int(values, 'seconds', DEFAULT_SECONDS, 2, 3600)
  const rate = int(values, 'rate', DEFAULT_RATE, 1, 100_000)
  const fromEnv: EnvSources = new Map()
  const conn = connectionOptions(values, io.env, { requireUrl: false }, fromEnv)
  const runMs = seconds * 1000

  // Scaled to the run so a 5 s demo shows the same story as a 16 s one.
  const phaseMs = runMs * 0.2
  // Flags given on the command line win over the demo's tuning.
  const config: DemoConfig = {
    concurrency: conn.concurrency ?? DEFAULT_CONCURRENCY,
    requestTimeoutMs: conn.requestTimeoutMs ?? clamp(round50(phaseMs / 3), 200, 2000),
    maxDelayMs: clamp(round50(phaseMs / 4), 100, 1000),
    resetTimeoutMs: clamp(round50(phaseMs / 4), 200, 1000),
  }

  let receiver: LokiTestServer | undefined
  const runId = randomBytes(3).toString('hex')
  let options: LokiClientOptions
  if (conn.url === undefined) {
    receiver = await createLokiTestServer()
    options = {
      ...conn,
      url: receiver.url,
      labels: { app: 'lokiwire-demo' },
      concurrency: config.concurrency,
      requestTimeoutMs: config.requestTimeoutMs,
      batch: { maxWaitMs: EMBEDDED_BATCH_WAIT_MS },
      // Generous attempts and budget: the act is meant to show recovery, not retries running out.
      retry: { minDelayMs: 50, maxDelayMs: config.maxDelayMs, maxAttempts: 100, budgetMs: 120_000 },
      breaker: { resetTimeoutMs: config.resetTimeoutMs, volumeThreshold: 4, errorThresholdPercentage: 50, rollingWindowMs: clamp(phaseMs * 1.5, 1000, 10_000) },
      closeTimeoutMs: CLOSE_TIMEOUT_MS,
      flushOnExit: false,
    }
  } else {
    options = {
      ...conn,
      url: conn.url,
      labels: { app: 'lokiwire-demo', run: runId },
      batch: { maxWaitMs: REAL_BATCH_WAIT_MS },
      closeTimeoutMs: CLOSE_TIMEOUT_MS,
      flushOnExit: false,
    }
  }

  // The service logs through pino and lokiwire's pino stream when pino is installed (always in
  // this repository); from an installed lokiwire without pino, straight through LokiClient.
  const pino = await loadPino()
  let client: LokiClient
  let stream: LokiPinoStream | undefined
  try {
    if (pino !== undefined) {
      stream = lokiStream({ ...options, onFailure: 'silent' })
      client = stream.client
    } else {
      client = new LokiClient(options)
    }
  } catch (err) {
    await receiver?.close()
    if (err instanceof LokiOptionError) throw usageFromOptionError(err, fromEnv)
    throw err
  }
  try {
    const log = stream !== undefined ? pinoLogger(pino!, stream) : clientLogger(client)
    const via = stream !== undefined ? "pino and lokiwire's pino stream" : 'LokiClient (pino is not installed)'
    const close = (o: { timeoutMs: number }) => (stream !== undefined ? stream.close(o) : client.close(o))
    return await act(client, log, receiver, io, { runMs, rate, config, runId, url: conn.url, via, close })
  } finally {
    await client.destroy()
    await receiver?.close()
  }
}

interface ActOptions {
  runMs: number
  rate: number
  config: DemoConfig
  runId: string
  url: string | undefined
  /** What the service logs through, for the banner. */
  via: string
  /** Closes what the service logs through: the pino stream or the client. */
  close: (o: { timeoutMs: number }) => Promise<FlushResult>
}

async function act(client: LokiClient, log: ClientLogger, receiver: LokiTestServer | undefined, io: CliIO, o: ActOptions): Promise<number> {
  const out = io.stdout
  const started = performance.now()
  const clock = () => `${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s`
  let phase = receiver ? PHASES[0]! : REAL_LOKI_PHASE
  let peakConnections = 0
  const sample = () => {
    peakConnections = Math.max(peakConnections, client.stats().connections)
  }
  const latency = new LatencyRecorder().start()
  const meter = new RateMeter()
  meter.rate(0)

  const progress = new Progress({
    out,
    live: out.isTTY === true,
    intervalMs: PLAIN_PROGRESS_MS,
    render: () => {
      const s = client.stats()
      peakConnections = Math.max(peakConnections, s.connections)
      return `[${clock()} ${phase.name.padEnd(9)}] ${count(meter.rate(s.pushed)).padStart(6)} lines/s  sent ${count(s.sent.entries)}  buffered ${count(s.buffered.entries + s.inFlight.entries)}  retries ${count(s.retries)}  dropped ${count(s.dropped.total)}  connections ${s.connections}  breaker ${s.breaker}`
    },
  })

  // Narration comes from the client's own events, so it reports what happened, not what should have.
  let breakerOpen = false
  let probes = 0
  let retryNoted = ''
  client.on('breaker', ({ state }) => {
    if (state === 'open' && !breakerOpen) {
      breakerOpen = true
      progress.note(`[${clock()}]   breaker opened: batches wait for a probe instead of hammering the receiver`)
    } else if (state === 'halfOpen') {
      probes++
    } else if (state === 'closed' && breakerOpen) {
      breakerOpen = false
      progress.note(`[${clock()}]   breaker closed after ${plural(probes, 'probe')}: sending resumes`)
      probes = 0
    }
  })
  client.on('retry', (e) => {
    sample()
    if (retryNoted === phase.name) return
    retryNoted = phase.name
    progress.note(`[${clock()}]   attempt failed (${e.error.message}); retrying in ${Math.round(e.delayMs)} ms`)
  })
  client.on('sent', sample)
  client.on('failed', sample)
  const dropsNoted = new Set<string>()
  client.on('drop', (e) => {
    if (dropsNoted.has(e.reason)) return
    dropsNoted.add(e.reason)
    progress.note(`[${clock()}]   ${plural(e.entries, 'line')} dropped: ${e.reason}${e.error ? ` (${e.error.message})` : ''}`)
  })

  if (receiver) {
    out.write(`lokiwire demo: a service logs ${count(o.rate)} lines/s through ${o.via} to an embedded Loki-compatible receiver at ${receiver.url}\n`)
    out.write(`client: concurrency ${o.config.concurrency}, requestTimeoutMs ${o.config.requestTimeoutMs}, retry backoff 50-${o.config.maxDelayMs} ms with jitter, breaker probe every ${o.config.resetTimeoutMs} ms\n`)
  } else {
    out.write(`lokiwire demo: a service logs ${count(o.rate)} lines/s through ${o.via} to ${displayUrl(o.url!)}\n`)
    out.write(`find them with the LogQL query {app="lokiwire-demo", run="${o.runId}"}\n`)
    out.write('the fault act needs the embedded receiver and is skipped against a real Loki\n')
  }

  const timers: NodeJS.Timeout[] = []
  const enter = (p: Phase) => {
    phase = p
    receiver?.setFault(p.fault)
    progress.note(`[${clock()}] ${p.say(o.config)}`)
  }
  const phases = receiver ? PHASES : [REAL_LOKI_PHASE]
  const service = startService(log, o.rate)
  progress.start()
  enter(phases[0]!)
  for (const p of phases.slice(1)) timers.push(setTimeout(() => enter(p), p.at * o.runMs))

  // Ends at the planned time, or early on Ctrl-C / SIGTERM: either way the close below runs.
  let onSignal: (signal: NodeJS.Signals) => void = () => {}
  const interrupted = await new Promise<NodeJS.Signals | undefined>((resolve) => {
    timers.push(setTimeout(() => resolve(undefined), o.runMs))
    onSignal = (signal) => resolve(signal)
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  })
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  for (const t of timers) clearTimeout(t)
  service.stop()
  receiver?.setFault(null)
  phase = { at: 1, name: 'closing', fault: null, say: () => '' }
  progress.note(`[${clock()}] ${interrupted ? `${interrupted}: ` : ''}service stopped after ${plural(service.logged, 'line')}; close() delivers what is left (deadline ${CLOSE_TIMEOUT_MS / 1000} s)`)
  const closed = await o.close({ timeoutMs: CLOSE_TIMEOUT_MS })
  progress.print()
  progress.stop()
  latency.stop()
  const elapsed = (performance.now() - started) / 1000

  const s = client.stats()
  const { p50, p99 } = latency.percentiles()
  const rows: Array<[string, string, string?]> = []
  rows.push(['pushed', count(s.pushed)])
  rows.push(['delivered', count(s.sent.entries), `in ${plural(s.sent.batches, 'batch', 'batches')}`])
  rows.push(['dropped', count(s.dropped.total), s.dropped.total === 0 ? undefined : 'by reason below'])
  for (const r of DROP_REASONS) if (s.dropped[r] > 0) rows.push([`  ${r}`, count(s.dropped[r])])
  const f = s.failedRequests
  const failures = [
    f.timeout && `${count(f.timeout)} timed out`,
    f.status5xx && `${count(f.status5xx)} got 5xx`,
    f.status429 && `${count(f.status429)} got 429`,
    f.network && `${count(f.network)} network errors`,
    f.status4xx && `${count(f.status4xx)} got 4xx`,
  ].filter(Boolean)
  rows.push(['retries', count(s.retries), f.total > 0 ? `${plural(f.total, 'failed attempt')}: ${failures.join(', ')}` : undefined])
  // The client's own count: the receiver may briefly see a timed-out socket still closing beside
  // its replacement, which says nothing about how many the client holds.
  rows.push([
    'peak connections',
    String(peakConnections),
    `concurrency ${o.config.concurrency}${receiver ? `; ${plural(receiver.connections.total, 'connection')} opened over the run` : ''}`,
  ])
  rows.push(['latency p50', ms(p50), `accepted pushes (${count(latency.accepted.length)})`])
  rows.push(['latency p99', ms(p99)])

  let ok = closed.ok && s.dropped.total === 0
  if (receiver) {
    const check = checkReceiver(receiver.entries, service.logged, log.lineOf)
    ok = ok && check.ok
    rows.push(['receiver check', check.ok ? 'OK' : 'FAILED', check.summary])
  } else {
    rows.push(['receiver check', 'skipped', 'a real Loki is read back through its query API; query the run label above'])
  }

  out.write(`\nsummary (${receiver ? 'embedded receiver' : displayUrl(o.url!)}, ${elapsed.toFixed(1)} s)\n`)
  const w = Math.max(...rows.map((r) => r[0].length))
  const v = Math.max(...rows.map((r) => r[1].length))
  for (const [label, value, note] of rows) out.write(`  ${label.padEnd(w)}  ${value.padStart(v)}${note ? `  ${note}` : ''}\n`)
  out.write(ok ? '\nresult: OK\n' : '\nresult: FAILED\n')
  return ok ? 0 : 1
}

function displayUrl(url: string): string {
  // Whatever the user typed, credentials in it are not echoed.
  try {
    const u = new URL(url)
    return u.origin + u.pathname.replace(/\/$/, '')
  } catch {
    return 'the given URL'
  }
}

export interface ReceiverCheck {
  ok: boolean
  summary: string
}

/**
 * Every line the receiver holds must be one the service logged, byte for byte, and every logged
 * line must be there exactly once.
 */
export function checkReceiver(entries: readonly ReceivedEntry[], logged: number, lineOf: (seq: number) => string | undefined): ReceiverCheck {
  const seen = new Uint8Array(logged)
  let duplicated = 0
  let unexpected = 0
  let altered = 0
  for (const e of entries) {
    let seq: unknown
    try {
      seq = (JSON.parse(e.line) as { seq?: unknown }).seq
    } catch {
      seq = undefined
    }
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq >= logged) {
      unexpected++
      continue
    }
    if (seen[seq]! > 0) duplicated++
    seen[seq] = 1
    const expected = lineOf(seq)
    if (expected !== undefined && expected !== e.line) altered++
  }
  let missing = 0
  for (let i = 0; i < logged; i++) if (seen[i] === 0) missing++
  const ok = missing === 0 && duplicated === 0 && unexpected === 0 && altered === 0
  if (ok) return { ok, summary: `${plural(entries.length, 'line')} at the receiver: each logged line exactly once, identical to what was logged` }
  const problems = [
    missing && `${count(missing)} missing`,
    duplicated && `${count(duplicated)} duplicated`,
    altered && `${count(altered)} altered`,
    unexpected && `${count(unexpected)} not logged by the service`,
  ].filter(Boolean)
  return { ok, summary: `${problems.join(', ')} (of ${plural(logged, 'logged line')})` }
}
