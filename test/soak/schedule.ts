/*
 * The soak's plan, drawn entirely from the seed before the run starts: which fault the receiver
 * applies when, and how hard the producer pushes. Timing decides which request meets which
 * fault, but the plan itself replays exactly.
 */
import type { Fault, ReceivedEntry } from '../../src/testing/index.js'
import { between, int, mix, mulberry32, shuffle, weighted, type Random } from './prng.js'
import { POISON, POISON_REJECT, seqOf } from './lines.js'

/** A fault as plain data, so the plan can be printed, counted and compared. */
export type FaultSpec =
  | { kind: 'accept' }
  | { kind: 'stall' }
  | { kind: 'reset' }
  | { kind: 'closeAfterHeaders' }
  | { kind: 'status'; status: number; retryAfterS?: number }
  | { kind: 'slowBody'; chunks: number; intervalMs: number }
  | { kind: 'slowHeaders'; delayMs: number }
  | { kind: 'largeBody'; bytes: number }
  | { kind: 'poison' }

export type PhaseKind =
  | 'healthy'
  /** A long healthy stretch in which the client must catch up completely. */
  | 'recovery'
  | 'blackhole'
  | 'resets'
  | 'throttle'
  | 'errors'
  | 'slow'
  | 'poison'
  | 'flapping'
  | 'outage'
  | 'longOutage'

export interface Phase {
  kind: PhaseKind
  startMs: number
  endMs: number
}

export interface FaultStep {
  atMs: number
  phase: PhaseKind
  fault: FaultSpec
}

export interface Schedule {
  phases: Phase[]
  /** The receiver's persistent fault over time; the first step is at 0. */
  steps: FaultStep[]
  /** One-request faults (413) queued at their time and taken by the next push, whenever it comes. */
  oneShots: FaultStep[]
  /** Lines pushed in one synchronous go. */
  bursts: Array<{ atMs: number; lines: number }>
  /** Windows where the steady rate is multiplied. */
  surges: Array<{ startMs: number; endMs: number; factor: number }>
  /** The producer stops here; the receiver has been healthy since `healthyFromMs`. */
  producerEndMs: number
  healthyFromMs: number
  /** Longest run of back-to-back phases in which retryable faults occur. */
  longestUnhealthyMs: number
  longOutage: Phase | undefined
}

export interface ScheduleOptions {
  seed: number
  seconds: number
  rate: number
  /** Insert one blackhole longer than this retry budget. */
  longOutageBudgetMs?: number
}

/** Phases whose faults make the client retry; poison phases answer 400 or 204, never retryable. */
const UNHEALTHY: ReadonlySet<PhaseKind> = new Set(['blackhole', 'resets', 'throttle', 'errors', 'slow', 'flapping', 'outage', 'longOutage'])
const DECK: readonly PhaseKind[] = ['blackhole', 'resets', 'throttle', 'errors', 'slow', 'poison', 'flapping', 'outage']
/** Cap on back-to-back faulty phases: a real Loki recovers now and then even on a bad day. */
const MAX_STRETCH_MS = 10_000
/** A recovery phase this often, long enough for the catch-up check to run in it. */
const RECOVERY_EVERY_MS = 30_000
const RECOVERY_PHASE_MS = 8000

function slotMs(r: Random): number {
  return Math.round(between(r, 100, 400))
}

/** Faults for one slot of a mixed phase. */
function slotFault(r: Random, kind: PhaseKind): FaultSpec {
  switch (kind) {
    case 'resets':
      return weighted<FaultSpec>(r, [
        [5, { kind: 'reset' }],
        [2, { kind: 'closeAfterHeaders' }],
        [3, { kind: 'accept' }],
      ])
    case 'throttle':
      return weighted<FaultSpec>(r, [
        [4, { kind: 'status', status: 429, retryAfterS: int(r, 0, 2) }],
        [4, { kind: 'status', status: 429 }],
        [2, { kind: 'accept' }],
      ])
    case 'errors':
      return weighted<FaultSpec>(r, [
        [35, { kind: 'status', status: 500 }],
        [35, { kind: 'status', status: 503 }],
        [5, { kind: 'status', status: 502 }],
        [5, { kind: 'status', status: 504 }],
        [20, { kind: 'accept' }],
      ])
    case 'slow':
      // Totals from a few ms to past the request deadline: both sides of the timeout get hit.
      return weighted<FaultSpec>(r, [
        [4, { kind: 'slowBody', chunks: int(r, 2, 8), intervalMs: int(r, 30, 500) }],
        [4, { kind: 'slowHeaders', delayMs: int(r, 50, 3000) }],
        [2, { kind: 'largeBody', bytes: int(r, 64, 1024) * 1024 }],
      ])
    case 'flapping':
      return weighted<FaultSpec>(r, [
        [3, { kind: 'status', status: 503 }],
        [2, { kind: 'reset' }],
        [1, { kind: 'stall' }],
        [2, { kind: 'status', status: 429 }],
      ])
    default:
      throw new Error(`no slot faults for ${kind}`)
  }
}

function addPhaseSteps(r: Random, phase: Phase, steps: FaultStep[], oneShots: FaultStep[]): void {
  const { kind, startMs, endMs } = phase
  const whole = (fault: FaultSpec) => void steps.push({ atMs: startMs, phase: kind, fault })
  switch (kind) {
    case 'healthy':
    case 'recovery':
      return whole({ kind: 'accept' })
    case 'blackhole':
    case 'longOutage':
      return whole({ kind: 'stall' })
    case 'outage':
      return whole({ kind: 'status', status: 503 })
    case 'poison':
      return whole({ kind: 'poison' })
    default:
  }
  if (kind === 'errors' && r() < 0.4) oneShots.push({ atMs: startMs, phase: kind, fault: { kind: 'status', status: 413 } })
  let t = startMs
  let up = r() < 0.5
  while (t < endMs) {
    let fault: FaultSpec
    if (kind === 'flapping') {
      fault = up ? { kind: 'accept' } : slotFault(r, kind)
      up = !up
    } else {
      fault = slotFault(r, kind)
    }
    steps.push({ atMs: t, phase: kind, fault })
    t += slotMs(r)
  }
}

export function buildSchedule(opts: ScheduleOptions): Schedule {
  const totalMs = Math.round(opts.seconds * 1000)
  // Short runs get shorter phases so a few seconds still cover several kinds of fault.
  const scale = Math.min(1, Math.max(0.35, opts.seconds / 40))
  const warmMs = Math.round(Math.min(1000, totalMs * 0.05))
  // The tail is healthy so everything buffered can be delivered before the final checks.
  const healthyFromMs = totalMs - Math.round(Math.max(2000, totalMs * 0.1))
  const r = mulberry32(mix(opts.seed, 1))

  const phases: Phase[] = [{ kind: 'healthy', startMs: 0, endMs: warmMs }]
  const push = (kind: PhaseKind, ms: number) => {
    const startMs = phases[phases.length - 1]!.endMs
    const endMs = Math.min(healthyFromMs, startMs + Math.max(50, Math.round(ms)))
    if (endMs > startMs) phases.push({ kind, startMs, endMs })
  }

  let longOutage: Phase | undefined
  if (opts.longOutageBudgetMs !== undefined) {
    // First, so the budget can only be exhausted by it: every batch before it met no fault.
    push('healthy', 1000)
    // Twice the budget plus slack: batches in slots burn budget only on attempts and backoff,
    // not while the breaker holds them, so the outage has to outlast it by a margin.
    push('longOutage', opts.longOutageBudgetMs * 2 + 4000)
    longOutage = phases[phases.length - 1]
    push('healthy', 2000)
  }
  let deck: PhaseKind[] = []
  let stretch = 0
  let lastRecovery = 0
  while (phases[phases.length - 1]!.endMs < healthyFromMs) {
    const now = phases[phases.length - 1]!.endMs
    if (now - lastRecovery >= RECOVERY_EVERY_MS && healthyFromMs - now > RECOVERY_PHASE_MS + 5000) {
      push('recovery', RECOVERY_PHASE_MS)
      lastRecovery = now
      stretch = 0
      continue
    }
    if (deck.length === 0) deck = shuffle(r, DECK)
    const kind = deck.pop()!
    const ms = (kind === 'flapping' ? between(r, 2000, 5000) : between(r, 1000, 4000)) * scale
    if (UNHEALTHY.has(kind) && stretch + ms > MAX_STRETCH_MS) {
      push('healthy', between(r, 1000, 3000) * scale)
      stretch = 0
    }
    push(kind, ms)
    stretch = UNHEALTHY.has(kind) ? stretch + ms : 0
    // Usually a healthy gap between faults, sometimes faults back to back.
    if (r() < 0.7) {
      push('healthy', between(r, 1000, 3000) * scale)
      stretch = 0
    }
  }
  phases.push({ kind: 'healthy', startMs: healthyFromMs, endMs: totalMs })

  const steps: FaultStep[] = []
  const oneShots: FaultStep[] = []
  for (const phase of phases) addPhaseSteps(r, phase, steps, oneShots)

  let longestUnhealthyMs = 0
  let run = 0
  for (const p of phases) {
    run = UNHEALTHY.has(p.kind) ? run + (p.endMs - p.startMs) : 0
    longestUnhealthyMs = Math.max(longestUnhealthyMs, run)
  }

  // Producer pattern from its own stream so fault draws do not shift it.
  const pr = mulberry32(mix(opts.seed, 2))
  const bursts: Schedule['bursts'] = []
  for (let t = between(pr, 300, 1500); t < totalMs; t += between(pr, 1500, 6000)) {
    bursts.push({ atMs: Math.round(t), lines: int(pr, Math.round(opts.rate * 0.2), Math.round(opts.rate * 1.5)) })
  }
  const surges: Schedule['surges'] = []
  for (let t = between(pr, 2000, 8000); t < totalMs; t += between(pr, 8000, 20_000)) {
    const len = between(pr, 1000, 2500)
    surges.push({ startMs: Math.round(t), endMs: Math.round(Math.min(totalMs, t + len)), factor: Math.round(between(pr, 2, 4) * 10) / 10 })
  }

  return { phases, steps, oneShots, bursts, surges, producerEndMs: totalMs, healthyFromMs, longestUnhealthyMs, longOutage }
}

/** The test receiver's fault for a spec. */
export function toFault(spec: FaultSpec): Fault {
  switch (spec.kind) {
    case 'accept':
    case 'stall':
    case 'reset':
    case 'closeAfterHeaders':
      return { type: spec.kind }
    case 'status':
      return {
        type: 'status',
        status: spec.status,
        body: `soak fault: ${spec.status}\n`,
        ...(spec.retryAfterS === undefined ? {} : { headers: { 'retry-after': String(spec.retryAfterS) } }),
      }
    case 'slowBody':
      return { type: 'slowBody', chunkBytes: 64, chunks: spec.chunks, intervalMs: spec.intervalMs }
    case 'slowHeaders':
      return { type: 'slowHeaders', delayMs: spec.delayMs }
    case 'largeBody':
      return { type: 'largeBody', bytes: spec.bytes }
    case 'poison':
      return {
        type: 'partial',
        reject: (e: ReceivedEntry) => (e.line.includes(` ${POISON} `) ? `${POISON_REJECT} (seq=${seqOf(e.line)})` : false),
      }
  }
}

/** Counting key for a spec in the report. */
export function faultLabel(spec: FaultSpec): string {
  switch (spec.kind) {
    case 'status':
      return spec.status === 429 ? (spec.retryAfterS === undefined ? '429' : '429+Retry-After') : String(spec.status)
    case 'poison':
      return 'partial-400(poison)'
    default:
      return spec.kind
  }
}

/**
 * Upper bound on the retry budget any batch can have used by `t`. A batch spends budget only
 * on failed attempts and the backoff after them, and attempts fail only in faulty phases; an
 * attempt or a backoff begun at the end of one runs on for at most `spillMs` into the next.
 */
export function exposureMs(schedule: Schedule, t: number, spillMs: number): number {
  let total = 0
  for (const p of schedule.phases) {
    if (!UNHEALTHY.has(p.kind) || p.startMs >= t) continue
    total += Math.min(p.endMs - p.startMs + spillMs, t - p.startMs)
  }
  return total
}

/** Lines the producer pushes in [fromMs, toMs): steady rate with surges, plus bursts. */
export function linesBetween(schedule: Schedule, rate: number, fromMs: number, toMs: number): number {
  let lines = (rate * (toMs - fromMs)) / 1000
  for (const s of schedule.surges) {
    const overlap = Math.min(toMs, s.endMs) - Math.max(fromMs, s.startMs)
    if (overlap > 0) lines += (rate * (s.factor - 1) * overlap) / 1000
  }
  for (const b of schedule.bursts) if (b.atMs >= fromMs && b.atMs < toMs) lines += b.lines
  return Math.ceil(lines)
}

/**
 * Most lines that can pile up in the client: everything pushed from the start of a faulty
 * stretch until `recoveryMs` after it ends. Healthy gaps shorter than `recoveryMs` are not
 * trusted to drain the backlog, so the stretches on both sides count as one.
 */
export function backlogBoundLines(schedule: Schedule, rate: number, recoveryMs: number): number {
  let worst = 0
  let from: number | undefined
  let to = 0
  const close = () => {
    if (from !== undefined) worst = Math.max(worst, linesBetween(schedule, rate, from, to + recoveryMs))
    from = undefined
  }
  for (const p of schedule.phases) {
    if (UNHEALTHY.has(p.kind)) {
      if (from !== undefined && p.startMs - to >= recoveryMs) close()
      from ??= p.startMs
      to = p.endMs
    }
  }
  close()
  return worst
}

/** End of the last faulty phase begun by `t` (0 when none), or undefined while one is under way. */
export function lastFaultEndMs(schedule: Schedule, t: number): number | undefined {
  let end = 0
  for (const p of schedule.phases) {
    if (p.startMs > t) break
    if (!UNHEALTHY.has(p.kind)) continue
    if (p.endMs > t) return undefined
    end = p.endMs
  }
  return end
}
