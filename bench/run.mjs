#!/usr/bin/env node
// lokiwire benchmark harness.
//
//   npm ci --prefix bench                 once: the incumbents (pino-loki, winston-loki) live here
//   npm run build                         at the root: contenders load the built package
//   npm run bench                         in bench/: full run (~20 min), writes bench/RESULTS.md
//   npm run bench -- --smoke              ~20 s: every contender briefly; writes a temp file and
//                                         exits non-zero if a lokiwire contender loses a line
//
// Other flags: --only id,id  --scenarios coldstart,micro,burst,warm,sustained,stall,profile
//              --runs N (burst, warm, sustained and stall; coldstart keeps its 7, see --set)
//              --extras (adds lokiwire's in-process pino stream)  --no-pin  --out FILE  --list
//              --set scenario.key=N (e.g. --set stall.stallMs=5000)
//              --keep-profile FILE (the raw .cpuprofile of the profiled burst, for DevTools)
//              --check-deps (only check that `npm ci --prefix bench` was run; exit 2 if not)
//
// A run that is not the complete default set writes to a temp file (or --out), never over
// RESULTS.md, so a partial run cannot replace the recorded tables.
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { COLDSTART_CASES, coldstartArgs, coldstartOrder, FIRST_SEND_LINES, FIRST_SEND_SCRIPT } from './lib/coldstart.mjs'
import { CONTENDERS, FLOORS } from './lib/contenders.mjs'
import { hotSpots } from './lib/profile.mjs'
import { writeReport } from './lib/report.mjs'
import { BENCH_DIR, ROOT_DIR, scrubPaths } from './lib/util.mjs'

const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const option = (name) => {
  const i = argv.indexOf(name)
  return i === -1 ? undefined : argv[i + 1]
}

const smoke = flag('--smoke')
const ALL_SCENARIOS = ['coldstart', 'micro', 'burst', 'warm', 'sustained', 'stall', 'profile']

/**
 * The warm burst runs the transports that have a floor target, and those floors: what it shows is
 * how much of each ratio is work a fresh process does once.
 */
const WARM_CONTENDERS = ['lokiwire-client-protobuf', 'lokiwire-pino-worker', 'lokiwire-winston', 'floor-app-alone', 'floor-pino-worker', 'floor-winston']

/**
 * Scenario parameters. Every scenario runs each contender three times (medians and spread), so
 * the full set takes about twenty minutes on two cores; --runs 1 is the quick look.
 */
const PLAN = smoke
  ? {
      burst: { lines: 20_000, chunk: 1000, runs: 1, timeoutMs: 60_000 },
      warm: { lines: 20_000, chunk: 1000, warmup: 20_000, runs: 1, timeoutMs: 60_000, only: WARM_CONTENDERS },
      sustained: { rate: 5000, durationMs: 1000, runs: 1, timeoutMs: 30_000, only: ['lokiwire-client-protobuf', 'lokiwire-pino-worker'] },
      stall: { rate: 1800, preMs: 400, stallMs: 1000, postMs: 400, runs: 1, timeoutMs: 30_000, only: ['lokiwire-client-protobuf', 'lokiwire-pino-worker'] },
      micro: { lines: 20_000, minMs: 100, amortisedRounds: 1 },
      profile: { lines: 20_000, chunk: 1000 },
      coldstart: { runs: 3, timeoutMs: 60_000 },
    }
  : {
      burst: { lines: 200_000, chunk: 1000, runs: 3, timeoutMs: 120_000 },
      // The burst again, measured after a first one in the same process: see child.mjs.
      warm: { lines: 200_000, chunk: 1000, warmup: 200_000, runs: 3, timeoutMs: 180_000, only: WARM_CONTENDERS },
      sustained: { rate: 20_000, durationMs: 15_000, runs: 3, timeoutMs: 75_000 },
      stall: { rate: 1800, preMs: 3000, stallMs: 20_000, postMs: 7000, runs: 3, timeoutMs: 120_000 },
      micro: { lines: 200_000, minMs: 2000, amortisedRounds: 5 },
      profile: { lines: 200_000, chunk: 1000 },
      // Seven because one process start is noisy: the median of seven moves little.
      coldstart: { runs: 7, timeoutMs: 60_000 },
    }
if (option('--runs') !== undefined) {
  const runs = Number(option('--runs'))
  if (!Number.isInteger(runs) || runs < 1) fail('--runs expects a positive integer')
  for (const s of ['burst', 'warm', 'sustained', 'stall']) PLAN[s].runs = runs
}

// --set scenario.key=value (repeatable) adjusts one parameter, e.g. --set stall.stallMs=5000.
for (let i = 0; i < argv.length; i++) {
  if (argv[i] !== '--set') continue
  const m = /^(\w+)\.(\w+)=(\d+)$/.exec(argv[i + 1] ?? '')
  if (!m || PLAN[m[1]] === undefined || typeof PLAN[m[1]][m[2]] !== 'number') fail(`--set expects scenario.key=number for a known numeric key, got '${argv[i + 1]}'`)
  PLAN[m[1]][m[2]] = Number(m[3])
}

function fail(message) {
  console.error(`bench: ${message}`)
  process.exit(2)
}

const withExtras = flag('--extras')
if (flag('--list')) {
  for (const c of [...CONTENDERS, ...FLOORS]) console.log(`${c.id.padEnd(28)} ${c.label}${c.extra ? ' (with --extras)' : ''}${c.floor ? ' (reference, burst only)' : ''}`)
  // Not contenders: --only does not select them; --scenarios coldstart runs them all.
  for (const c of COLDSTART_CASES) console.log(`${`coldstart:${c.id}`.padEnd(28)} node -e ${c.code || '(the exit reporter alone)'}`)
  console.log(`${'coldstart:first-send'.padEnd(28)} first batches after import('lokiwire')`)
  process.exit(0)
}
const onlyIds = option('--only')?.split(',').filter(Boolean)
const scenarios = option('--scenarios')?.split(',').filter(Boolean) ?? ALL_SCENARIOS
for (const s of scenarios) if (!ALL_SCENARIOS.includes(s)) fail(`unknown scenario '${s}' (known: ${ALL_SCENARIOS.join(', ')})`)
const ALL = [...CONTENDERS, ...FLOORS]
for (const id of onlyIds ?? []) if (!ALL.some((c) => c.id === id)) fail(`unknown contender '${id}' (see --list)`)
const selected = ALL.filter((c) => (onlyIds ? onlyIds.includes(c.id) : !c.extra || withExtras))
const complete = !smoke && onlyIds === undefined && !argv.includes('--scenarios') && !argv.includes('--runs') && !argv.includes('--set') && !withExtras

// ---------------------------------------------------------------------------------------------
// Preconditions

// Checked first, and alone with --check-deps: `npm run bench` runs that before its build, so a
// missing install is reported at once instead of after a build that cannot help.
if (!existsSync(join(BENCH_DIR, 'node_modules', 'lokiwire'))) fail('bench dependencies are missing (pino-loki and winston-loki live in bench/): run `npm ci --prefix bench` at the repository root once')
if (flag('--check-deps')) process.exit(0)
const distEntry = join(ROOT_DIR, 'dist', 'index.js')
if (!existsSync(distEntry)) fail('dist/ is missing: run `npm run build` at the repository root first')
{
  const newest = (dir) => {
    let t = 0
    for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (e.isFile()) t = Math.max(t, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs)
    }
    return t
  }
  if (newest(join(ROOT_DIR, 'src')) > statSync(distEntry).mtimeMs) {
    console.warn('bench: warning: src/ is newer than dist/; the numbers are for the last build (`npm run build`)')
  }
}

/** Client on every core but the last, receiver on the last: they never share one. */
function pinning() {
  if (flag('--no-pin')) return undefined
  const cores = os.availableParallelism()
  if (cores < 2) return undefined
  const probe = spawnSync('taskset', ['-c', String(cores - 1), 'true'])
  if (probe.status !== 0) return undefined
  return { client: cores === 2 ? '0' : `0-${cores - 2}`, receiver: String(cores - 1) }
}
const pin = pinning()

function pinned(cpus, args) {
  return pin ? ['taskset', ['-c', cpus, ...args]] : [args[0], args.slice(1)]
}

// ---------------------------------------------------------------------------------------------
// Receiver process

async function startReceiver() {
  const script = join(BENCH_DIR, 'lib', 'receiver.mjs')
  const [cmd, args] = pinned(pin?.receiver, [process.execPath, script, ...(smoke ? ['--verify'] : [])])
  const proc = spawn(cmd, args, { cwd: BENCH_DIR, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const pending = new Map()
  let nextId = 1
  const ready = new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`receiver exited (${code}) before it was ready`)))
    proc.on('message', (m) => {
      if (m.ready) return resolve(m.url)
      const p = pending.get(m.id)
      if (p) {
        pending.delete(m.id)
        p(m)
      }
    })
  })
  const url = await ready
  const call = (cmd, data = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++
      const timer = setTimeout(() => reject(new Error(`receiver did not answer '${cmd}'`)), 10_000)
      pending.set(id, (m) => {
        clearTimeout(timer)
        resolve(m)
      })
      proc.send({ id, cmd, ...data })
    })
  return {
    url,
    call,
    async close() {
      await call('close').catch(() => {})
      proc.kill()
    },
  }
}

// ---------------------------------------------------------------------------------------------
// One contender, one run

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function expectedLines(scenario, p) {
  if (scenario === 'burst' || scenario === 'warm') return p.lines
  return Math.floor((p.rate * p.durationMs) / 1000)
}

async function runOnce(rx, contender, scenario, p, profileFile) {
  const cfg = { contender: contender.id, scenario, url: rx.url, ...(profileFile ? { profile: profileFile } : {}) }
  if (scenario === 'burst') Object.assign(cfg, { lines: p.lines, chunk: p.chunk })
  else if (scenario === 'warm') Object.assign(cfg, { lines: p.lines, chunk: p.chunk, warmup: p.warmup })
  else if (scenario === 'sustained') Object.assign(cfg, { rate: p.rate, durationMs: p.durationMs })
  else {
    Object.assign(cfg, {
      rate: p.rate,
      durationMs: p.preMs + p.stallMs + p.postMs,
      stall: { preMs: p.preMs, stallMs: p.stallMs, postMs: p.postMs },
    })
  }
  // A floor ships nothing: the receiver expects no line from it.
  const expected = contender.floor ? 0 : expectedLines(scenario, { ...p, durationMs: cfg.durationMs ?? p.durationMs })
  await rx.call('reset', { expected, rate: scenario === 'burst' || scenario === 'warm' ? 0 : cfg.rate })

  const script = join(BENCH_DIR, 'lib', 'child.mjs')
  const [cmd, args] = pinned(pin?.client, [process.execPath, script, JSON.stringify(cfg)])
  const child = spawn(cmd, args, { cwd: BENCH_DIR, stdio: ['ignore', 'pipe', 'pipe'] })
  const events = {}
  const stderr = []
  const timers = []
  createInterface({ input: child.stderr }).on('line', (l) => {
    stderr.push(l)
    if (stderr.length > 40) stderr.shift()
  })
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('@@bench ')) return
    const m = JSON.parse(line.slice(8))
    events[m.event] = m
    if (m.event === 'start') {
      void rx.call('start', { t0: m.t0 })
      if (scenario === 'stall') {
        const at = (ms) => Math.max(0, m.t0 + ms - Date.now())
        timers.push(setTimeout(() => void rx.call('stall'), at(p.preMs)))
        timers.push(setTimeout(() => void rx.call('recover'), at(p.preMs + p.stallMs)))
      }
    }
  })
  let timedOut = false
  const killer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, p.timeoutMs + (cfg.durationMs ?? 0))
  const code = await new Promise((resolve) => child.once('exit', (c, sig) => resolve(sig ?? c)))
  const exitAt = Date.now()
  clearTimeout(killer)
  for (const t of timers) clearTimeout(t)
  // The receiver handles a body synchronously once it has arrived; a short pause covers one
  // still being read when the client process ended.
  await sleep(250)
  const rs = await rx.call('stats')

  const start = events.start?.t0
  const logged = events.logged
  const closed = events.closed
  const exit = events.exit
  const status = timedOut ? 'timed out' : code !== 0 ? `exited ${code}` : !exit ? 'no report' : 'ok'
  const lines = logged?.lines ?? expected
  const floorMs = closed?.hr !== undefined && events.start?.hr !== undefined ? closed.hr - events.start.hr : closed ? closed.at - start : NaN
  const floorRate = contender.floor && start && closed ? (lines / floorMs) * 1000 : NaN
  const r = {
    contender: contender.id,
    scenario,
    status,
    expected,
    distinct: rs.distinct,
    lost: rs.lost,
    duplicates: rs.duplicates,
    resent: rs.resent,
    unexpected: rs.unexpected,
    deliveredPerSec: contender.floor ? floorRate : start && rs.lastAt > start ? rs.distinct / ((rs.lastAt - start) / 1000) : NaN,
    loggingMs: logged?.loggingMs ?? NaN,
    logRate: logged ? (logged.lines / logged.loggingMs) * 1000 : NaN,
    exitAfterCloseMs: logged ? exitAt - logged.at : NaN,
    cpuMsPer100k: exit ? exit.cpuMs / (lines / 100_000) : NaN,
    peakRssMB: exit ? exit.maxRssBytes / 2 ** 20 : NaN,
    rssGrowthPeakMB: exit && events.start?.rss ? (exit.maxRssBytes - events.start.rss) / 2 ** 20 : NaN,
    wireBytesPerLine: rs.distinct > 0 ? rs.bodyBytes / rs.distinct : NaN,
    rawBytesPerLine: rs.distinct > 0 ? rs.rawBytes / rs.distinct : NaN,
    requests: rs.requests,
    peakConnections: rs.peakConnections,
    peakConnectionsStall: rs.peakConnectionsStall,
    lagP50: rs.lagP50,
    lagP99: rs.lagP99,
    lagMax: rs.lagMax,
    recoveryToFirstMs: rs.recoveredAt && rs.firstAfterRecoveryAt ? rs.firstAfterRecoveryAt - rs.recoveredAt : NaN,
    recoveryToBacklogMs: rs.recoveredAt && rs.backlogDoneAt ? rs.backlogDoneAt - rs.recoveredAt : NaN,
    backlogOnlyAtClose: rs.backlogDoneAt > 0 && logged !== undefined && rs.backlogDoneAt >= logged.at,
    // Whether delivery only resumed once shutdown began (the library waited out the stall).
    resumedOnlyAtClose: rs.firstAfterRecoveryAt > 0 && logged !== undefined && rs.firstAfterRecoveryAt >= logged.at,
    heapGrowthMB: NaN,
    rssGrowthMB: NaN,
    heapWorkerAnswered: undefined,
    clientStats: closed?.clientStats,
    libraryErrors: closed?.libraryErrors,
    receiverErrors: rs.errors,
    verifyMismatches: rs.verifyMismatches,
    stderrTail: status === 'ok' ? stderr.slice(-3) : stderr.slice(-12),
  }
  if (scenario === 'stall' && exit?.heap?.before && exit.heap.during) {
    const { before, during } = exit.heap
    r.heapGrowthMB = (during.main + during.workers - (before.main + before.workers)) / 2 ** 20
    r.rssGrowthMB = (during.rss - before.rss) / 2 ** 20
    r.heapWorkerAnswered = contender.worker ? before.answered > 0 && during.answered > 0 : undefined
  }
  return r
}

// ---------------------------------------------------------------------------------------------
// Micro benchmarks, cold start and profile

/**
 * One node process on the client cores. `wallMs` runs from spawn() to the 'exit' event; the
 * result waits for 'close' as well, so every line the child wrote has been read.
 */
async function runNode(args, { cwd = BENCH_DIR, timeoutMs = 600_000 } = {}) {
  const [cmd, a] = pinned(pin?.client, [process.execPath, ...args])
  const spawnedAt = performance.now()
  const child = spawn(cmd, a, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  const out = []
  const err = []
  createInterface({ input: child.stdout }).on('line', (l) => l.startsWith('@@bench ') && out.push(JSON.parse(l.slice(8))))
  createInterface({ input: child.stderr }).on('line', (l) => {
    err.push(l)
    if (err.length > 40) err.shift()
  })
  let timedOut = false
  const killer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, timeoutMs)
  let wallMs = NaN
  const code = await new Promise((resolve) => {
    let exit
    child.once('exit', (c, sig) => {
      wallMs = performance.now() - spawnedAt
      exit = sig ?? c
    })
    child.once('close', () => resolve(exit))
  })
  clearTimeout(killer)
  return { code: timedOut ? 'timed out' : code, out, err, wallMs }
}

async function runMicro(rx) {
  await rx.call('reset', { expected: 0 })
  const res = await runNode(['--import', 'tsx', join(BENCH_DIR, 'lib', 'micro.mjs'), JSON.stringify({ ...PLAN.micro, url: rx.url })])
  if (res.code !== 0) return { error: scrubPaths(res.err.slice(-8).join('\n')), results: res.out }
  return { results: res.out }
}

/**
 * Whole processes, interleaved: every round runs each import case and the first-send process
 * once, in an order rotated per round. Lines go to the receiver only from the first-send process.
 */
async function runColdstart(rx) {
  const p = PLAN.coldstart
  const FIRST_SEND = { id: 'first-send', firstSend: true }
  const cases = []
  const firstSend = []
  for (const { run, case: c } of coldstartOrder([...COLDSTART_CASES, FIRST_SEND], p.runs)) {
    if (c.firstSend) {
      await rx.call('reset', { expected: 2 * FIRST_SEND_LINES })
      const res = await runNode([FIRST_SEND_SCRIPT, JSON.stringify({ url: rx.url, lines: FIRST_SEND_LINES })], { timeoutMs: p.timeoutMs })
      await sleep(100)
      const rs = await rx.call('stats')
      const m = res.out.find((x) => x.event === 'first-send')
      const exit = res.out.find((x) => x.event === 'exit')
      const status = res.code !== 0 ? `exited ${res.code}` : !m || !exit ? 'no report' : !m.ok ? 'flush not ok' : 'ok'
      const MB = 2 ** 20
      firstSend.push({
        run,
        status,
        lost: rs.lost,
        wallMs: res.wallMs,
        maxRssMB: exit ? exit.maxRssBytes / MB : NaN,
        importMs: m?.importMs ?? NaN,
        constructMs: m?.constructMs ?? NaN,
        firstMs: m?.firstMs ?? NaN,
        secondMs: m?.secondMs ?? NaN,
        rssAfterImportMB: m ? m.rssAfterImport / MB : NaN,
        firstRssGrowthMB: m ? (m.rssAfterFirst - m.rssAfterConstruct) / MB : NaN,
        secondRssGrowthMB: m ? (m.rssAfterSecond - m.rssAfterFirst) / MB : NaN,
        peakOverImportMB: m ? (m.peakRssAfterSettle - m.rssAfterImport) / MB : NaN,
        stderrTail: status === 'ok' ? '' : scrubPaths(res.err.slice(-8).join(' | ')).slice(0, 600),
      })
      log(`coldstart ${run}/${p.runs} first send: ${status}, first batch ${num1(m?.firstMs)} ms, second ${num1(m?.secondMs)} ms, lost ${rs.lost}`)
      continue
    }
    const res = await runNode(coldstartArgs(c), { timeoutMs: p.timeoutMs })
    const m = res.out.find((x) => x.event === 'coldstart')
    const status = res.code !== 0 ? `exited ${res.code}` : !m ? 'no report' : 'ok'
    cases.push({ id: c.id, run, status, wallMs: res.wallMs, cpuMs: m ? m.cpuUs / 1000 : NaN, maxRssMB: m ? (m.maxRssKB * 1024) / 2 ** 20 : NaN, stderrTail: status === 'ok' ? '' : scrubPaths(res.err.slice(-8).join(' | ')).slice(0, 600) })
    log(`coldstart ${run}/${p.runs} ${c.id}: ${status}, ${num1(res.wallMs)} ms, peak RSS ${num1(cases.at(-1).maxRssMB)} MB`)
  }
  return { cases, firstSend, runs: p.runs }
}
const num1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a')

async function runProfile(rx) {
  const dir = mkdtempSync(join(os.tmpdir(), 'lokiwire-prof-'))
  try {
    const contender = CONTENDERS.find((c) => c.id === 'lokiwire-client-protobuf')
    const file = join(dir, 'burst.cpuprofile')
    const r = await runOnce(rx, contender, 'burst', { ...PLAN.profile, timeoutMs: 120_000 }, file)
    if (!existsSync(file)) return { error: `no profile written (${r.status})` }
    if (option('--keep-profile')) copyFileSync(file, option('--keep-profile'))
    return { run: r, ...hotSpots(file, 15) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// Main

const started = Date.now()
const log = (s) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}`)

const usable = []
const skipped = []
for (const c of selected) {
  try {
    await c.check()
    usable.push(c)
  } catch (err) {
    skipped.push({ id: c.id, label: c.label, family: c.family, reason: scrubPaths(err?.message ?? String(err)).split('\n')[0] })
    log(`skipping ${c.id}: ${skipped.at(-1).reason}`)
  }
}

const rx = await startReceiver()
const results = { burst: [], warm: [], sustained: [], stall: [] }
let micro
let profile
let coldstart
let exitCode = 0
try {
  // First, while nothing the bench started has run yet.
  if (scenarios.includes('coldstart')) {
    log('cold start')
    coldstart = await runColdstart(rx)
  }
  if (scenarios.includes('micro')) {
    log('micro benchmarks')
    micro = await runMicro(rx)
    if (micro.error) log(`micro benchmarks failed:\n${micro.error}`)
  }
  for (const scenario of ['burst', 'warm', 'sustained', 'stall']) {
    if (!scenarios.includes(scenario)) continue
    const p = PLAN[scenario]
    const contenders = usable.filter((c) => (!p.only || p.only.includes(c.id)) && (!c.floor || scenario === 'burst' || scenario === 'warm'))
    // Runs interleave the contenders so a noisy moment on the machine hits all of them.
    for (let run = 1; run <= p.runs; run++) {
      for (const c of contenders) {
        const r = await runOnce(rx, c, scenario, p)
        results[scenario].push(r)
        const rate = Number.isFinite(r.deliveredPerSec) ? `${Math.round(r.deliveredPerSec).toLocaleString('en')} lines/s` : 'n/a'
        const loss = c.floor ? 'reference' : `lost ${r.lost}, dup ${r.duplicates}${r.resent > 0 ? ` (+${r.resent} re-sent, dropped by Loki)` : ''}`
        log(`${scenario} ${run}/${p.runs} ${c.id}: ${r.status}, ${rate}, ${loss}, exit ${Math.round(r.exitAfterCloseMs)} ms after close`)
        if (r.status !== 'ok' && r.stderrTail.length) log(`  stderr: ${scrubPaths(r.stderrTail.join(' | ')).slice(0, 600)}`)
        if (r.receiverErrors.length) log(`  receiver: ${r.receiverErrors.join('; ')}`)
      }
    }
  }
  if (scenarios.includes('profile') && usable.some((c) => c.id === 'lokiwire-client-protobuf')) {
    log('profiling the lokiwire client-direct burst')
    profile = await runProfile(rx)
  }
} finally {
  await rx.close()
}

// A lokiwire contender that loses a line, fails to finish, or (in the smoke run) is missing from
// the build is a failure of the library; incumbents' results are only reported.
const problems = []
for (const r of [...results.burst, ...results.warm, ...results.sustained, ...results.stall]) {
  const c = ALL.find((x) => x.id === r.contender)
  // The scanner disagreeing with a full decode is the harness miscounting, whoever sent the body.
  if (r.verifyMismatches > 0) problems.push(`receiver scan and full decode disagree for ${r.contender} (${r.scenario})`)
  if (c.family !== 'lokiwire') continue
  if (r.lost > 0) problems.push(`${r.contender} lost ${r.lost} lines in ${r.scenario}`)
  if (r.status !== 'ok') problems.push(`${r.contender} ${r.status} in ${r.scenario}`)
  if (r.unexpected > 0) problems.push(`${r.contender}: receiver saw ids it did not expect (${r.scenario})`)
}
for (const r of coldstart?.cases ?? []) {
  const c = COLDSTART_CASES.find((x) => x.id === r.id)
  if (r.status !== 'ok' && (c.family === 'lokiwire' || c.id === 'bare')) problems.push(`cold start ${r.id} ${r.status}${r.stderrTail ? `: ${r.stderrTail}` : ''}`)
}
for (const r of coldstart?.firstSend ?? []) {
  if (r.status !== 'ok') problems.push(`first send ${r.status}${r.stderrTail ? `: ${r.stderrTail}` : ''}`)
  else if (r.lost > 0) problems.push(`first send lost ${r.lost} lines`)
}
if (smoke) {
  for (const s of skipped) if (s.family === 'lokiwire') problems.push(`${s.id} was skipped: ${s.reason}`)
  if (micro?.error) problems.push('micro benchmarks failed')
  if (profile?.error) problems.push(`profile: ${profile.error}`)
}

const outFile =
  option('--out') ?? (complete ? join(BENCH_DIR, 'RESULTS.md') : join(mkdtempSync(join(os.tmpdir(), 'lokiwire-bench-')), 'RESULTS.md'))
writeReport(outFile, {
  smoke,
  complete,
  command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
  plan: PLAN,
  pin,
  contenders: usable,
  skipped,
  results,
  micro,
  profile,
  coldstart,
  durationS: (Date.now() - started) / 1000,
})
log(`results written to ${complete ? 'bench/RESULTS.md' : outFile}`)

if (problems.length) {
  console.error(`bench: lokiwire problems:\n  ${problems.join('\n  ')}`)
  exitCode = 1
}
process.exitCode = exitCode
