/*
 * Seeded chaos soak: a producer logs through a LokiClient into the test receiver while the
 * receiver runs a fault schedule drawn from the seed. Invariants are checked continuously and
 * the run stops at the first violation, so the seed and the moment are enough to replay it.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import v8 from 'node:v8'
import vm from 'node:vm'
import { ErrorCodes, LokiClient, LokiHttpError } from '../../src/index.js'
import type { DropEvent, DropReason, FailedEvent, LokiClientStats, SpoolEvent } from '../../src/index.js'
import { createLokiTestServer, PUSH_PATH, type Fault, type LokiTestServer, type ReceivedRequest } from '../../src/testing/index.js'
import { Ledger } from './ledger.js'
import { CLIENT_LABELS, lineFor, POISON_REJECT, SELECTORS, seqOf, STREAMS, TENANT } from './lines.js'
import { mix, mulberry32 } from './prng.js'
import { backlogBoundLines, buildSchedule, exposureMs, faultLabel, lastFaultEndMs, toFault, type PhaseKind, type Schedule } from './schedule.js'

export interface SoakOptions {
  /** Length of the producer's run; draining and checks come after. @default 60 */
  seconds?: number
  /** @default a random one (always reported) */
  seed?: number
  /** Steady lines per second, before bursts and surges. @default 2000 */
  rate?: number
  /** The client's concurrency (and connection limit). @default 2, the library's default */
  concurrency?: number
  /** Wire format. @default drawn from the seed (protobuf 3 in 4) */
  encoding?: 'protobuf' | 'json'
  /** A buffer small enough to overflow, with this policy: 'buffer_full' drops become expected. */
  overflow?: 'drop-newest' | 'drop-oldest'
  /** One blackhole longer than the retry budget: 'retries_exhausted' drops become expected. */
  longOutage?: boolean
  /**
   * A durable spool in a fresh temporary directory. What the outage and the small buffer would
   * drop must then reach the receiver through replay: only poison may be lost.
   */
  spool?: boolean
  /** Progress lines; none when absent. */
  log?: (line: string) => void
}

export interface Violation {
  /** Milliseconds since the fault schedule started (negative: during warm-up). */
  atMs: number
  phase: PhaseKind | 'warmup' | 'drain'
  message: string
}

export interface SpoolReport {
  /** Entries written to and loaded back from the spool (the client's counters). */
  written: number
  loaded: number
  errors: number
  /** Most bytes the spool held at once. */
  peakBytes: number
  /** Entries written, by what sent them there (as far as the soak can tell from outside). */
  writesBy: { overflow: number; retries: number; breaker: number; close: number }
}

export interface SoakResult {
  ok: boolean
  violation: Violation | undefined
  seed: number
  seconds: number
  rate: number
  concurrency: number
  encoding: 'protobuf' | 'json'
  overflow: 'drop-newest' | 'drop-oldest' | undefined
  longOutage: boolean
  /** Absent without --spool. */
  spool: SpoolReport | undefined
  /** Command line that replays the run. */
  replay: string
  elapsedMs: number
  lines: {
    pushed: number
    /** Distinct lines the receiver stored. */
    delivered: number
    poison: number
    /** push() returned false. */
    refused: number
    missingPoison: number
    missingOther: number
  }
  dropped: Partial<Record<DropReason, number>>
  client: { batchesSent: number; retries: number; failedRequests: LokiClientStats['failedRequests']; breakerOpened: number }
  requests: { total: number; byAnswer: Record<string, number>; byFault: Record<string, number> }
  /** Fault slots the schedule applied, by type. */
  faults: Record<string, number>
  phases: Record<string, number>
  longestUnhealthyMs: number
  retryBudgetMs: number
  connections: { limit: number; peakServer: number; peakClient: number; serverExcessTicks: number }
  heap: { baselineMB: number; peakGrowthMB: number; finalGrowthMB: number; limitMB: number; allowanceMB: number; perBufferByte: number; checks: number }
  /** The client's maxBufferBytes, in MiB. */
  bufferLimitMB: number
  /** Copies the receiver deduplicated (resends after a lost answer). */
  duplicates: number
}

const REQUEST_TIMEOUT_MS = 2000
/** Longest wait between attempts: backoff is capped at 1 s, Retry-After at 2 s. */
const MAX_RETRY_WAIT_MS = 2000
/** The library's default; raised when the schedule could use more (long runs). */
const DEFAULT_BUDGET_MS = 60_000
/** Short so the long outage needed to exhaust it fits in a run of a minute. */
const LONG_OUTAGE_BUDGET_MS = 6000
/** How far a failing attempt or the wait after it can reach past the fault that caused it. */
const SPILL_MS = REQUEST_TIMEOUT_MS + MAX_RETRY_WAIT_MS
/**
 * Floor of the buffer limit when it must not overflow; raised to fit the schedule's worst
 * backlog at high rates. The heap check follows what is buffered, not this limit.
 */
const BUFFER_BYTES = 16 * 1024 * 1024
/** Buffer cost of an average soak line (about 220 B) with a margin. */
const COST_PER_LINE = 300
/** Breaker reset, a stalled attempt, the longest wait and the catch-up after a faulty stretch. */
const RECOVERY_MS = 6000
const OVERFLOW_BUFFER_BYTES = 1024 * 1024
const BATCH = { maxEntries: 2000, maxBytes: 256 * 1024, maxWaitMs: 100 }
/**
 * V8 heap an entry occupies per byte of buffer cost. The cost is line bytes plus 24; the heap
 * also holds the entry object, the string header and array slots, about 1.6x for these lines
 * and under 3x for the shortest. 4 leaves room without hiding a leak.
 */
const HEAP_PER_BUFFER_BYTE = 4
/** Receiver copies between resets, JIT code, undici and p-queue internals, timer lists. */
const HEAP_ALLOWANCE = 24 * 1024 * 1024
const TICK_MS = 50
const CLOCK_MS = 10
const HEAP_EVERY_MS = 1000
/**
 * The receiver may count a new socket before it has processed the close of the one the client
 * just destroyed (a timed-out attempt); only an excess that lasts is a leak. Both a time and a
 * number of checks, each followed by an I/O poll, so a blocked event loop cannot fake one.
 */
const SERVER_CONN_GRACE_MS = 1000
const SERVER_CONN_GRACE_TICKS = 10
/** After the producer stops: backoff, breaker reset, a stalled attempt and Retry-After are all a few seconds at most. */
const DRAIN_TIMEOUT_MS = 20_000
const CLOSE_TIMEOUT_MS = 5000
/** Receiver entries kept between resets; bounds its dedup set, which would otherwise grow with the run. */
const RECEIVER_RESET_EVERY = 5000
const WARMUP_LINES = 2000
/**
 * Shorter than the breaker's reset timeout, so every open breaker sends the batches holding a
 * delivery slot to disk, not only outages that outlast the library's 30 s default.
 */
const SPOOL_BREAKER_WAIT_MS = 500
/**
 * Replay runs only while the client is open and is started by a delivery or the breaker
 * closing; after the producer stops the soak waits this long for the spool to empty before
 * closing, so that close() has nothing left to put back on disk.
 */
const SPOOL_DRAIN_TIMEOUT_MS = 20_000
const MB = 1024 * 1024

const STATUSES_EXPECTED: ReadonlySet<number> = new Set([400, 413, 429, 500, 502, 503, 504])
const ERROR_CODES_EXPECTED: ReadonlySet<string> = new Set([ErrorCodes.HTTP_STATUS, ErrorCodes.NETWORK, ErrorCodes.REQUEST_TIMEOUT])

function resolveGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc
  if (typeof g === 'function') return g
  // No --expose-gc on the command line: turn the flag on now and take gc from a fresh context.
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}

function nonZero<K extends string>(rec: Record<K, number>): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {}
  for (const k of Object.keys(rec) as K[]) if (rec[k] !== 0) out[k] = rec[k]
  return out
}

function bump(rec: Record<string, number>, key: string, by = 1): void {
  rec[key] = (rec[key] ?? 0) + by
}

const round1 = (x: number) => Math.round(x * 10) / 10

export function replayCommand(o: { seconds: number; seed: number; rate: number; concurrency: number; overflow?: string | undefined; longOutage: boolean; spool?: boolean; encoding?: string }): string {
  return `npm run soak -- --seconds ${o.seconds} --seed ${o.seed} --rate ${o.rate} --concurrency ${o.concurrency}` +
    `${o.overflow === undefined ? '' : o.overflow === 'drop-newest' ? ' --overflow' : ` --overflow=${o.overflow}`}${o.longOutage ? ' --outage' : ''}` +
    `${o.spool ? ' --spool' : ''}${o.encoding ? ` --encoding ${o.encoding}` : ''}`
}

export async function runSoak(options: SoakOptions = {}): Promise<SoakResult> {
  const seconds = options.seconds ?? 60
  const seed = (options.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0
  const rate = options.rate ?? 2000
  const concurrency = options.concurrency ?? 2
  const overflow = options.overflow
  const longOutage = options.longOutage ?? false
  const useSpool = options.spool ?? false
  const encoding = options.encoding ?? (mulberry32(mix(seed, 3))() < 0.75 ? 'protobuf' : 'json')
  const log = options.log
  if (!(seconds > 0) || !(rate > 0) || !Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error('seconds and rate must be positive, concurrency a positive integer')
  }
  // Below 30 s the outage is cut short by the healthy tail; from 15 s it still lasts almost twice
  // the budget, which is what it is for.
  if (longOutage && seconds < 15) throw new Error('a long outage needs at least 15 seconds')

  const schedule: Schedule = buildSchedule({ seed, seconds, rate, ...(longOutage ? { longOutageBudgetMs: LONG_OUTAGE_BUDGET_MS } : {}) })
  // Without --overflow the buffer holds the worst backlog twice over: 'buffer_full' is then a bug.
  const maxBufferBytes = overflow !== undefined
    ? OVERFLOW_BUFFER_BYTES
    : Math.max(BUFFER_BYTES, Math.ceil((2 * COST_PER_LINE * backlogBoundLines(schedule, rate, RECOVERY_MS)) / MB) * MB)
  // Without a long outage the budget must outlast every fault the schedule holds, so that
  // nothing but poison is lost: any 'retries_exhausted' is then a client bug.
  const budgetMs = longOutage
    ? LONG_OUTAGE_BUDGET_MS
    : Math.max(DEFAULT_BUDGET_MS, Math.ceil((exposureMs(schedule, Infinity, SPILL_MS) + 10_000) / 1000) * 1000)
  const gc = resolveGc()
  const settledHeap = () => {
    gc()
    gc()
    return process.memoryUsage().heapUsed
  }

  // ---- state -------------------------------------------------------------------------------
  const ledger = new Ledger()
  let nextSeq = 0
  let poisonPushed = 0
  let pushing = false
  let started = performance.now()
  let clockStarted = false
  let phase: PhaseKind | 'warmup' | 'drain' = 'warmup'
  let violation: Violation | undefined
  let onViolation: () => void = () => {}
  const aborted = new Promise<void>((resolve) => (onViolation = resolve))

  let delivered = 0
  let crossResetDuplicates = 0
  let receiverDuplicates = 0
  let receiverRead = 0
  let currentFault: Fault = { type: 'accept' }
  let oneShotsPending = 0
  const faults: Record<string, number> = {}
  const phases: Record<string, number> = {}
  for (const p of schedule.phases) bump(phases, p.kind)
  const requests = { total: 0, byAnswer: {} as Record<string, number>, byFault: {} as Record<string, number> }
  const dropEvents: Record<string, number> = {}
  let sentEvents = 0
  let breakerOpened = 0
  let peakServer = 0
  let peakClient = 0
  let serverExcessSince: number | undefined
  let serverExcessRun = 0
  let serverExcessTicks = 0
  let droppedAtViolation: LokiClientStats['dropped'] | undefined
  let snapshotDrops: () => LokiClientStats['dropped'] | undefined = () => undefined
  let baseline = 0
  let peakGrowth = 0
  let finalGrowth = 0
  let heapChecks = 0
  let spoolPeakBytes = 0
  const writesBy = { overflow: 0, retries: 0, breaker: 0, close: 0 }
  /** Entries of the batch whose last 'failed' event was a 413 that will not be split. */
  let unsplittable413: number | undefined

  const result: SoakResult = {
    ok: false,
    violation: undefined,
    seed,
    seconds,
    rate,
    concurrency,
    encoding,
    overflow,
    longOutage,
    spool: undefined,
    replay: replayCommand({ seconds, seed, rate, concurrency, overflow, longOutage, spool: useSpool, ...(options.encoding ? { encoding } : {}) }),
    elapsedMs: 0,
    lines: { pushed: 0, delivered: 0, poison: 0, refused: 0, missingPoison: 0, missingOther: 0 },
    dropped: {},
    client: { batchesSent: 0, retries: 0, failedRequests: { total: 0, status4xx: 0, status429: 0, status5xx: 0, network: 0, timeout: 0 }, breakerOpened: 0 },
    requests,
    faults,
    phases,
    longestUnhealthyMs: schedule.longestUnhealthyMs,
    retryBudgetMs: budgetMs,
    connections: { limit: concurrency, peakServer: 0, peakClient: 0, serverExcessTicks: 0 },
    heap: { baselineMB: 0, peakGrowthMB: 0, finalGrowthMB: 0, limitMB: 0, allowanceMB: 0, perBufferByte: HEAP_PER_BUFFER_BYTE, checks: 0 },
    bufferLimitMB: maxBufferBytes / MB,
    duplicates: 0,
  }

  const elapsed = () => performance.now() - started
  const fail = (message: string) => {
    if (violation !== undefined) return
    violation = { atMs: Math.round(clockStarted ? elapsed() : -1), phase, message }
    // Teardown destroys the client; the report should show the drops that led here, not those.
    droppedAtViolation = snapshotDrops()
    onViolation()
  }

  // ---- receiver ----------------------------------------------------------------------------
  const srv: LokiTestServer = await createLokiTestServer()
  srv.on('request', (rec: ReceivedRequest) => {
    if (rec.path !== PUSH_PATH) return
    requests.total++
    bump(requests.byAnswer, rec.status === 0 ? 'none' : String(rec.status))
    bump(requests.byFault, rec.fault === undefined ? 'accept' : rec.fault === 'status' ? `status ${rec.status}` : rec.fault)
    // The schedule never makes 413 the persistent fault: every 413 answered took a one-shot.
    if (rec.status === 413) oneShotsPending--
    if (rec.tenant !== TENANT) fail(`push request without the tenant header (X-Scope-OrgID=${String(rec.tenant)})`)
  })

  /** Reads what the receiver stored since the last call and checks each line against what was pushed. */
  const drainReceiver = (allowReset: boolean) => {
    const entries = srv.entries
    for (; receiverRead < entries.length; receiverRead++) {
      const e = entries[receiverRead]!
      const seq = seqOf(e.line)
      if (seq < 0 || seq >= nextSeq) return fail(`receiver stored a line that was never pushed: ${JSON.stringify(e.line.slice(0, 80))}`)
      const want = lineFor(seed, seq)
      if (e.line !== want.line) return fail(`line seq=${seq} arrived altered (${Buffer.byteLength(e.line)} bytes, pushed ${Buffer.byteLength(want.line)})`)
      if (e.stream !== SELECTORS[want.stream]) return fail(`line seq=${seq} arrived in stream ${e.stream}, pushed to ${SELECTORS[want.stream]}`)
      if (e.tenant !== TENANT) return fail(`line seq=${seq} arrived for tenant ${String(e.tenant)}`)
      if (ledger.refused[seq] === 1) return fail(`line seq=${seq} was refused by push() but reached the receiver`)
      const ts = BigInt(e.timestamp)
      if (ledger.count[seq] === 0) {
        ledger.count[seq] = 1
        ledger.ts[seq] = ts
        delivered++
      } else if (ledger.ts[seq] === ts) {
        // A resend of a batch stored before the receiver's last reset: Loki deduplicates it.
        crossResetDuplicates++
      } else {
        return fail(`line seq=${seq} stored twice with different timestamps (${ledger.ts[seq]} then ${ts}): Loki would keep both`)
      }
    }
    // Resetting forgets queued one-shot faults, so wait until none is pending.
    if (allowReset && receiverRead >= RECEIVER_RESET_EVERY && oneShotsPending <= 0) {
      receiverDuplicates += srv.duplicates
      peakServer = Math.max(peakServer, srv.connections.peak)
      srv.reset()
      srv.setFault(currentFault)
      receiverRead = 0
    }
  }

  // ---- client ------------------------------------------------------------------------------
  const spoolDir = useSpool ? mkdtempSync(join(tmpdir(), 'lokiwire-soak-')) : undefined
  const client = new LokiClient({
    url: srv.url,
    labels: CLIENT_LABELS,
    tenant: TENANT,
    encoding,
    concurrency,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    batch: BATCH,
    maxBufferBytes,
    overflow: overflow ?? 'drop-newest',
    retry: { maxAttempts: 1000, minDelayMs: 50, maxDelayMs: 1000, budgetMs, maxRetryAfterMs: MAX_RETRY_WAIT_MS },
    breaker: { errorThresholdPercentage: 50, volumeThreshold: 5, resetTimeoutMs: 1000, rollingWindowMs: 5000 },
    ...(spoolDir === undefined ? {} : { spool: { dir: spoolDir, breakerWaitMs: SPOOL_BREAKER_WAIT_MS } }),
  })

  snapshotDrops = () => client.stats().dropped

  /** Synchronous checks of the client's books; called between operations, never inside push(). */
  const checkClient = (where: string): LokiClientStats => {
    const s = client.stats()
    const sp = s.spool
    const rhs = s.sent.entries + s.dropped.total + sp.written + s.buffered.entries + s.inFlight.entries
    spoolPeakBytes = Math.max(spoolPeakBytes, sp.bytes)
    if (s.pushed + sp.loaded !== rhs) {
      fail(`accounting identity broken (${where}): pushed ${s.pushed} + loaded ${sp.loaded} != sent ${s.sent.entries} + dropped ${s.dropped.total} + spooled ${sp.written} + buffered ${s.buffered.entries} + inFlight ${s.inFlight.entries}`)
    } else if (sp.errors !== 0) {
      fail(`spool reports ${sp.errors} errors (${where})`)
    } else if (sp.loaded > sp.written) {
      // The directory starts empty: nothing can be replayed that this client did not write.
      fail(`spool loaded ${sp.loaded} entries but only ${sp.written} were written (${where})`)
    } else if (s.buffered.entries < 0 || s.inFlight.entries < 0 || s.buffered.bytes < 0) {
      fail(`negative gauge (${where}): buffered ${s.buffered.entries}/${s.buffered.bytes} B, inFlight ${s.inFlight.entries}`)
    } else if (s.connections > concurrency) {
      fail(`client holds ${s.connections} connections, concurrency is ${concurrency} (${where})`)
    } else if (s.inFlight.requests > concurrency) {
      fail(`${s.inFlight.requests} requests in flight, concurrency is ${concurrency} (${where})`)
    } else if (s.bufferUsedBytes > maxBufferBytes) {
      fail(`buffer holds ${s.bufferUsedBytes} B, limit is ${maxBufferBytes} (${where})`)
    }
    peakClient = Math.max(peakClient, s.connections)
    return s
  }

  const checkDrop = (e: DropEvent) => {
    const err = e.error
    // The reasons a spool exists for: with one, each is a batch lost that replay should have saved.
    if (useSpool && (e.reason === 'buffer_full' || e.reason === 'retries_exhausted' || e.reason === 'close_timeout')) {
      return fail(`${e.entries} entries dropped as '${e.reason}' with a spool that should have taken them: ${err?.message ?? 'no error'}`)
    }
    switch (e.reason) {
      case 'rejected':
        // A 400 ends the whole batch in the client's books, but only poison may have caused it.
        if (err instanceof LokiHttpError && err.status === 400 && err.body.includes(POISON_REJECT)) return
        return fail(`${e.entries} entries dropped as 'rejected' without a poison 400: ${err?.message ?? 'no error'}`)
      case 'buffer_full':
        if (overflow !== undefined) return
        return fail(`${e.entries} entries dropped as 'buffer_full' with a ${maxBufferBytes / MB} MiB buffer the schedule should not fill`)
      case 'retries_exhausted': {
        // Only once the faults so far could have used up the budget of some batch.
        const exposure = exposureMs(schedule, elapsed(), SPILL_MS)
        if (exposure >= budgetMs) return
        return fail(`${e.entries} entries dropped as 'retries_exhausted' when faults so far could have used at most ${Math.round(exposure)} ms of the ${budgetMs} ms budget: ${err?.message ?? ''}`)
      }
      case 'too_large':
        // One-shot 413s halve a batch; only a single entry that meets one may be dropped.
        if (e.entries === 1 && err instanceof LokiHttpError && err.status === 413) return
        if (unsplittable413 === e.entries) {
          // Only a replay ends a batch of several entries on a 413: it holds wire bytes, not entries to halve.
          return fail(`a replayed batch of ${e.entries} entries met a one-shot 413 and was dropped whole: replays are not split`)
        }
        return fail(`${e.entries} entries dropped as 'too_large': ${err?.message ?? ''}`)
      default:
        return fail(`${e.entries} entries dropped as '${e.reason}', which no fault in the schedule explains: ${err?.message ?? ''}`)
    }
  }

  const checkFailed = (e: FailedEvent) => {
    if (!ERROR_CODES_EXPECTED.has(e.error.code)) return fail(`attempt failed with ${e.error.code}: ${e.error.message}`)
    if (e.status !== undefined && !STATUSES_EXPECTED.has(e.status)) return fail(`attempt failed with status ${e.status}, which the schedule never answers: ${e.error.message}`)
    // A retryable failure with no retry left: with a spool, the batch goes to disk next.
    const retryable = e.status === undefined || e.status === 429 || e.status >= 500
    unsplittable413 = e.status === 413 && !e.willRetry && e.entries > 1 ? e.entries : undefined
    if (useSpool && !e.willRetry && retryable) writesBy.retries += e.entries
  }

  client.on('drop', (e) => {
    bump(dropEvents, e.reason, e.entries)
    checkDrop(e)
    if (!pushing) checkClient(`'drop' ${e.reason}`)
  })
  client.on('sent', (e) => {
    sentEvents += e.entries
    if (!pushing) checkClient("'sent'")
  })
  client.on('failed', (e) => {
    checkFailed(e)
    if (!pushing) checkClient("'failed'")
  })
  client.on('retry', () => {
    if (!pushing) checkClient("'retry'")
  })
  client.on('breaker', (e) => {
    if (e.state === 'open') breakerOpened++
    if (!pushing) checkClient("'breaker'")
  })
  client.on('spool', (e: SpoolEvent) => {
    fail(`spool problem '${e.reason}'${e.file === undefined ? '' : ` on ${e.file}`}: ${e.error instanceof Error ? e.error.message : String(e.error ?? '')}`)
  })
  ;(client as unknown as NodeJS.EventEmitter).on('error', (err: unknown) => fail(`client emitted 'error': ${String(err)}`))

  const onUnhandled = (err: unknown) => fail(`unhandled rejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  const onUncaught = (err: unknown) => fail(`uncaught exception: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  process.on('unhandledRejection', onUnhandled)
  process.on('uncaughtException', onUncaught)

  // ---- producer ----------------------------------------------------------------------------
  const pushLines = (n: number) => {
    ledger.ensure(nextSeq + n)
    // Only push() evicts, and with a spool every eviction is a write.
    const writtenBefore = useSpool ? client.stats().spool.written : 0
    pushing = true
    try {
      for (let i = 0; i < n; i++) {
        const seq = nextSeq++
        const l = lineFor(seed, seq)
        if (l.poison) poisonPushed++
        if (!client.push({ line: l.line, labels: STREAMS[l.stream]! })) ledger.refused[seq] = 1
      }
    } finally {
      pushing = false
    }
    const s = checkClient('after push')
    writesBy.overflow += s.spool.written - writtenBefore
  }

  let stepIdx = 0
  let shotIdx = 0
  let burstIdx = 0
  let owed = 0
  let lastT = 0
  let clock: NodeJS.Timeout | undefined
  let producerDone: () => void = () => {}
  const produced = new Promise<void>((resolve) => (producerDone = resolve))

  const applyFaults = (t: number) => {
    const { steps, oneShots } = schedule
    while (stepIdx < steps.length && steps[stepIdx]!.atMs <= t) {
      const s = steps[stepIdx++]!
      phase = s.phase
      currentFault = toFault(s.fault)
      srv.setFault(currentFault)
      bump(faults, faultLabel(s.fault))
    }
    while (shotIdx < oneShots.length && oneShots[shotIdx]!.atMs <= t) {
      const s = oneShots[shotIdx++]!
      oneShotsPending++
      srv.queueFaults(toFault(s.fault))
      bump(faults, `${faultLabel(s.fault)} (one-shot)`)
    }
  }

  const tickClock = () => {
    clock = undefined
    if (violation !== undefined) return
    const t = elapsed()
    applyFaults(t)
    if (t >= schedule.producerEndMs) {
      producerDone()
      return
    }
    let factor = 1
    for (const s of schedule.surges) if (t >= s.startMs && t < s.endMs) factor = s.factor
    owed += ((t - lastT) / 1000) * rate * factor
    lastT = t
    const n = Math.floor(owed)
    owed -= n
    if (n > 0) pushLines(n)
    while (burstIdx < schedule.bursts.length && schedule.bursts[burstIdx]!.atMs <= t) pushLines(schedule.bursts[burstIdx++]!.lines)
    clock = setTimeout(tickClock, CLOCK_MS)
  }

  // ---- monitor -----------------------------------------------------------------------------
  let lastHeapAt = 0
  let lastLogAt = 0
  /** (time, lines pushed, entries outstanding) every tick over the last RECOVERY_MS and a bit. */
  const pushedAt: Array<[number, number, number]> = []
  /**
   * Once the receiver has been healthy for RECOVERY_MS, the client must have caught up (what is
   * still outstanding can only be lines pushed within that window) or be catching up (less
   * outstanding than a window ago). Catches a stuck pipeline long before the final drain would.
   * Only "not shrinking" fails: on a machine that other processes keep busy, a healthy client
   * can need longer than the window to work off a large backlog, and the drain's cap still
   * bounds how long it may take.
   */
  const checkCaughtUp = (s: LokiClientStats) => {
    const t = elapsed()
    // Spooled entries not yet loaded back are as outstanding as buffered ones: replay must catch up too.
    const onDisk = s.spool.written - s.spool.loaded
    const outstanding = s.buffered.entries + s.inFlight.entries + onDisk
    pushedAt.push([t, nextSeq, outstanding])
    while (pushedAt.length > 0 && pushedAt[0]![0] < t - RECOVERY_MS - 1000) pushedAt.shift()
    const end = lastFaultEndMs(schedule, t)
    if (end === undefined || t - end < RECOVERY_MS) return
    let base: [number, number, number] | undefined
    for (const sample of pushedAt) {
      if (sample[0] > t - RECOVERY_MS) break
      base = sample
    }
    if (base === undefined) return
    const [, seqThen, outstandingThen] = base
    if (outstanding > nextSeq - seqThen && outstanding >= outstandingThen) {
      fail(`client has not caught up ${Math.round(t - end)} ms after the last fault, nor is it catching up: ` +
        `${outstanding} entries outstanding (${outstandingThen} ${RECOVERY_MS} ms ago)` +
        `${useSpool ? ` (${onDisk} of them in the spool, ${s.spool.bytes} B)` : ''}, ` +
        `only ${nextSeq - seqThen} pushed in the last ${RECOVERY_MS} ms (breaker ${s.breaker}, ${s.inFlight.requests} requests in flight)`)
    }
  }
  const checkHeap = () => {
    const heap = settledHeap()
    const used = client.stats().bufferUsedBytes
    const growth = heap - baseline
    heapChecks++
    peakGrowth = Math.max(peakGrowth, growth)
    const limit = HEAP_PER_BUFFER_BYTE * used + HEAP_ALLOWANCE
    if (growth > limit) {
      fail(`post-GC heap grew ${round1(growth / MB)} MB over the baseline with ${round1(used / MB)} MB buffered (limit ${round1(limit / MB)} MB)`)
    }
  }
  const tickMonitor = () => {
    if (violation !== undefined) return
    drainReceiver(true)
    checkCaughtUp(checkClient('monitor'))
    const open = srv.connections.open
    peakServer = Math.max(peakServer, srv.connections.peak)
    const now = performance.now()
    if (open > concurrency) {
      serverExcessTicks++
      serverExcessRun++
      serverExcessSince ??= now
      if (now - serverExcessSince > SERVER_CONN_GRACE_MS && serverExcessRun >= SERVER_CONN_GRACE_TICKS) {
        fail(`receiver has had ${open} connections open for ${Math.round(now - serverExcessSince)} ms, concurrency is ${concurrency}`)
      }
    } else {
      serverExcessSince = undefined
      serverExcessRun = 0
    }
    if (now - lastHeapAt >= HEAP_EVERY_MS) {
      lastHeapAt = now
      checkHeap()
    }
    if (log !== undefined && now - lastLogAt >= 10_000) {
      lastLogAt = now
      const s = client.stats()
      log(
        `t=${(elapsed() / 1000).toFixed(1)}s phase=${phase} pushed=${s.pushed} delivered=${delivered} dropped=${s.dropped.total}` +
          ` buffered=${s.buffered.entries} inFlight=${s.inFlight.entries} breaker=${s.breaker} conns=${s.connections}/${open}` +
          ` heap+${round1(peakGrowth / MB)}MB`,
      )
    }
  }
  let monitor: NodeJS.Timeout | undefined

  // ---- run ---------------------------------------------------------------------------------
  const runStarted = performance.now()
  let closed = false
  try {
    // Warm up so the pool, breaker, encoders and JIT are in the heap baseline.
    pushLines(WARMUP_LINES)
    const warm = await client.flush({ timeoutMs: 10_000 })
    if (!warm.ok) fail('warm-up batch not delivered to a healthy receiver within 10 s')
    drainReceiver(true)
    baseline = settledHeap()
    monitor = setInterval(tickMonitor, TICK_MS)
    started = performance.now()
    clockStarted = true
    lastHeapAt = performance.now()
    lastLogAt = performance.now()
    tickClock()

    await Promise.race([produced, aborted])
    if (violation === undefined) {
      phase = 'drain'
      // The tail of the schedule is healthy; whatever is buffered must now get through.
      const f = await Promise.race([client.flush({ timeoutMs: DRAIN_TIMEOUT_MS }), aborted])
      // timedOut, not ok: batches from the fault phase may still end dropped or spooled here.
      if (f?.timedOut) fail(`client did not drain within ${DRAIN_TIMEOUT_MS} ms of a healthy receiver: ${f.pendingEntries} entries pending, breaker ${client.stats().breaker}`)
    }
    if (violation === undefined && useSpool) {
      // flush() waits only for batches that existed when it was called; replays loaded after
      // that are new batches. "Empty" means every record was loaded, delivered and its segment
      // deleted, all without a push to set it off: a replay that needs fresh traffic would
      // leave data on disk at an idle process's close.
      const until = performance.now() + SPOOL_DRAIN_TIMEOUT_MS
      for (;;) {
        const s = checkClient('spool drain')
        if (violation !== undefined) break
        if (s.spool.bytes === 0 && s.buffered.entries === 0 && s.inFlight.entries === 0) break
        if (performance.now() >= until) {
          fail(`spool not replayed within ${SPOOL_DRAIN_TIMEOUT_MS} ms of the producer stopping: ${s.spool.bytes} B on disk, ` +
            `${s.spool.written - s.spool.loaded} entries not loaded, ${s.buffered.entries} buffered, ${s.inFlight.entries} in flight, breaker ${s.breaker}`)
          break
        }
        await Promise.race([client.flush({ timeoutMs: Math.max(1, until - performance.now()) }), aborted])
        await Promise.race([new Promise((resolve) => setTimeout(resolve, TICK_MS)), aborted])
      }
    }
    const writtenBeforeClose = client.stats().spool.written
    if (violation === undefined) {
      let timer: NodeJS.Timeout | undefined
      const closing = client.close({ timeoutMs: CLOSE_TIMEOUT_MS })
      const res = await Promise.race([
        closing,
        aborted.then(() => undefined),
        new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), CLOSE_TIMEOUT_MS + 5000))),
      ])
      clearTimeout(timer)
      closed = true
      if (res === 'hung') fail(`close() did not resolve within its ${CLOSE_TIMEOUT_MS} ms deadline plus 5 s`)
      else if (res !== undefined && (!res.ok || res.droppedEntries !== 0 || res.pendingEntries !== 0)) fail(`close() on a drained client: ${JSON.stringify(res)}`)
    }
    if (violation === undefined) {
      const s = checkClient('after close')
      if (s.state !== 'closed' || s.buffered.entries !== 0 || s.inFlight.entries !== 0 || s.inFlight.requests !== 0) {
        fail(`after close: state ${s.state}, buffered ${s.buffered.entries}, inFlight ${s.inFlight.entries}/${s.inFlight.requests} requests`)
      } else if (s.connections !== 0) {
        fail(`client reports ${s.connections} connections after close()`)
      }
      writesBy.close = s.spool.written - writtenBeforeClose
      if (spoolDir !== undefined && violation === undefined) {
        const left = readdirSync(spoolDir)
        if (writesBy.close !== 0) fail(`close() of a drained client wrote ${writesBy.close} entries to the spool`)
        else if (s.spool.loaded !== s.spool.written) fail(`after close: spool loaded ${s.spool.loaded} entries of ${s.spool.written} written`)
        else if (s.spool.bytes !== 0 || left.length !== 0) fail(`after close the spool holds ${s.spool.bytes} B in ${left.length} files: ${left.slice(0, 3).join(', ')}`)
      }
    }
    if (violation === undefined) {
      try {
        await srv.waitFor((x) => x.connections.open === 0, { timeoutMs: 3000 })
      } catch {
        fail(`receiver still has ${srv.connections.open} connections open 3 s after close()`)
      }
    }
    if (violation === undefined) drainReceiver(false)
    if (violation === undefined) {
      const s = client.stats()
      for (const r of Object.keys(s.dropped) as Array<DropReason | 'total'>) {
        if (r !== 'total' && s.dropped[r] !== (dropEvents[r] ?? 0)) fail(`stats().dropped.${r} is ${s.dropped[r]} but 'drop' events reported ${dropEvents[r] ?? 0}`)
      }
      if (s.sent.entries !== sentEvents) fail(`stats().sent.entries is ${s.sent.entries} but 'sent' events reported ${sentEvents}`)
    }
    if (violation === undefined) {
      // Every line is at the receiver once, or accounted for by a drop the schedule explains.
      const s = client.stats()
      let refused = 0
      let missingPoison = 0
      let missingOther = 0
      const examples: number[] = []
      for (let seq = 0; seq < nextSeq; seq++) {
        if (ledger.refused[seq] === 1) {
          refused++
          continue
        }
        if (ledger.count[seq] !== 0) continue
        if (lineFor(seed, seq).poison) missingPoison++
        else {
          missingOther++
          if (examples.length < 5) examples.push(seq)
        }
      }
      const pushTimeDrops = s.dropped.buffer_full + s.dropped.closed + s.dropped.invalid_entry + s.dropped.invalid_labels + s.dropped.line_too_long
      // drop-oldest also counts evicted batches as buffer_full; drop-newest only refusals.
      const evicted = overflow === 'drop-oldest' ? pushTimeDrops - refused : 0
      // Lines of a rejected batch that carried no poison were stored by the receiver anyway.
      const canLoseAny = s.dropped.retries_exhausted + s.dropped.too_large + evicted
      if (overflow === 'drop-oldest' ? refused > pushTimeDrops : refused !== pushTimeDrops) {
        fail(`${refused} lines refused by push() but ${pushTimeDrops} counted as push-time drops`)
      } else if (missingOther > canLoseAny) {
        fail(`${missingOther} lines never reached the receiver and no drop explains them (e.g. seq=${examples.join(', ')}); ` +
          `retries_exhausted ${s.dropped.retries_exhausted}, too_large ${s.dropped.too_large}, evicted ${evicted}`)
      } else if (missingPoison + missingOther > canLoseAny + s.dropped.rejected) {
        fail(`${missingPoison + missingOther} lines missing but drops account for ${canLoseAny + s.dropped.rejected}`)
      }
      result.lines = { pushed: s.pushed, delivered, poison: poisonPushed, refused, missingPoison, missingOther }
    }
    if (violation === undefined) {
      // Buffers are empty and the receiver's copies released: what is left over the baseline is
      // overhead, or a leak.
      receiverDuplicates += srv.duplicates
      peakServer = Math.max(peakServer, srv.connections.peak)
      srv.reset()
      receiverRead = 0
      finalGrowth = settledHeap() - baseline
      heapChecks++
      if (finalGrowth > HEAP_ALLOWANCE) fail(`post-GC heap ${round1(finalGrowth / MB)} MB over the baseline once everything was delivered (allowance ${HEAP_ALLOWANCE / MB} MB)`)
    }
  } catch (err) {
    fail(`soak harness error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  } finally {
    if (clock !== undefined) clearTimeout(clock)
    if (monitor !== undefined) clearInterval(monitor)
    if (!closed || violation !== undefined) await client.destroy()
    await srv.close()
    if (spoolDir !== undefined) rmSync(spoolDir, { recursive: true, force: true })
    // A rejection left behind by the shutdown itself is reported on the next turns of the loop.
    await new Promise((resolve) => setTimeout(resolve, 20))
    process.off('unhandledRejection', onUnhandled)
    process.off('uncaughtException', onUncaught)
  }

  const s = client.stats()
  result.ok = violation === undefined
  result.violation = violation
  result.elapsedMs = Math.round(performance.now() - runStarted)
  if (result.lines.pushed === 0) {
    result.lines = { pushed: s.pushed, delivered, poison: poisonPushed, refused: 0, missingPoison: 0, missingOther: 0 }
  }
  const dropped = droppedAtViolation ?? s.dropped
  result.dropped = nonZero(Object.fromEntries(Object.entries(dropped).filter(([k]) => k !== 'total')) as Record<DropReason, number>)
  result.client = { batchesSent: s.sent.batches, retries: s.retries, failedRequests: s.failedRequests, breakerOpened }
  result.requests = requests
  result.faults = faults
  result.connections = { limit: concurrency, peakServer, peakClient, serverExcessTicks }
  result.heap = {
    baselineMB: round1(baseline / MB),
    peakGrowthMB: round1(peakGrowth / MB),
    finalGrowthMB: round1(finalGrowth / MB),
    limitMB: round1((HEAP_PER_BUFFER_BYTE * maxBufferBytes + HEAP_ALLOWANCE) / MB),
    allowanceMB: HEAP_ALLOWANCE / MB,
    perBufferByte: HEAP_PER_BUFFER_BYTE,
    checks: heapChecks,
  }
  result.duplicates = receiverDuplicates + crossResetDuplicates
  if (useSpool) {
    const sp = s.spool
    // What no other cause explains: batches that waited out SPOOL_BREAKER_WAIT_MS on an open breaker.
    const breaker = sp.written - writesBy.overflow - writesBy.retries - writesBy.close
    result.spool = { written: sp.written, loaded: sp.loaded, errors: sp.errors, peakBytes: spoolPeakBytes, writesBy: { ...writesBy, breaker } }
  }
  return result
}
