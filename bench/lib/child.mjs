// One contender, one scenario, in a fresh process: logs numbered records, shuts down the way the
// library documents, and reports on stdout. The process is left to exit by itself, so a library
// that keeps it alive shows up as a slow (or killed) exit rather than being hidden by exit().
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { setImmediate as yieldLoop } from 'node:timers/promises'
import { byId } from './contenders.mjs'
import { heapAfterGc } from './heap.mjs'

const cfg = JSON.parse(process.argv[2])
/** Idle time between the warm-up burst and the measured one. */
const WARM_SETTLE_MS = 1000
const contender = byId.get(cfg.contender)
// Prefixed so a library printing to stdout cannot be mistaken for a report.
const emit = (m) => process.stdout.write(`@@bench ${JSON.stringify(m)}\n`)

const c = await contender.setup({ url: cfg.url, probe: cfg.scenario === 'stall' && contender.worker === true })

// The warm scenario: the same burst once before the measured one, in the same process, so the
// measured burst runs code V8 has already compiled (and, for lokiwire, an HTTP stack that has
// sent). Its records carry negative ids, which the receiver does not count; it is delivered
// (or, for a floor, written) before the measured burst starts, and the process then idles a
// moment so that compilations it set off in the background are done.
if (cfg.warmup > 0) {
  for (let i = 0; i < cfg.warmup; ) {
    const end = Math.min(cfg.warmup, i + cfg.chunk)
    for (; i < end; i++) c.log(-1 - i)
    await yieldLoop()
  }
  await c.flush?.()
  await new Promise((resolve) => setTimeout(resolve, WARM_SETTLE_MS))
}

function burst(t0) {
  // Chunks with an event-loop turn between them: an app logs from many callbacks, and libraries
  // that ship from the logging thread need those turns to send at all.
  return (async () => {
    for (let i = 0; i < cfg.lines; ) {
      const end = Math.min(cfg.lines, i + cfg.chunk)
      for (; i < end; i++) c.log(i)
      await yieldLoop()
    }
    return { lines: cfg.lines, ms: Date.now() - t0 }
  })()
}

function paced(t0) {
  const total = Math.floor((cfg.rate * cfg.durationMs) / 1000)
  let i = 0
  return new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((Date.now() - t0) * cfg.rate) / 1000))
      while (i < due) c.log(i++)
      if (i >= total) resolve({ lines: total, ms: Date.now() - t0 })
      else setTimeout(tick, 5)
    }
    tick()
  })
}

const heap = {}
const timers = []
function sampleAt(t0, atMs, key) {
  timers.push(
    setTimeout(async () => {
      const h = await heapAfterGc({ workers: contender.worker === true })
      heap[key] = { ...h, rss: process.memoryUsage.rss() }
    }, Math.max(0, t0 + atMs - Date.now())),
  )
}

// The V8 sampling profiler behind `node --cpu-prof`, started at the first log call and stopped
// once shutdown is over, so start-up and module loading do not crowd the hot spots.
let profiler
if (cfg.profile) {
  profiler = new Session()
  profiler.connect()
  await profiler.post('Profiler.enable')
  await profiler.post('Profiler.setSamplingInterval', { interval: 100 })
  await profiler.post('Profiler.start')
}

const t0 = Date.now()
const cpu0 = process.cpuUsage()
// `hr` is the monotonic clock in fractional ms: a floor's whole burst can take a few tens of
// milliseconds, where Date.now()'s whole milliseconds would be a few per cent of error.
emit({ event: 'start', t0, hr: performance.now(), rss: process.memoryUsage.rss() })
if (cfg.scenario === 'stall') {
  // Just before the receiver stalls, and just before it recovers: the growth between them is
  // what the stall cost in memory.
  sampleAt(t0, cfg.stall.preMs - 250, 'before')
  sampleAt(t0, cfg.stall.preMs + cfg.stall.stallMs - 250, 'during')
}
const logged = cfg.scenario === 'burst' || cfg.scenario === 'warm' ? await burst(t0) : await paced(t0)
const loggedAt = Date.now()
emit({ event: 'logged', at: loggedAt, lines: logged.lines, loggingMs: logged.ms })

await c.close()
const closedAt = Date.now()
const closedHr = performance.now()
if (profiler) {
  const { profile } = await profiler.post('Profiler.stop')
  writeFileSync(cfg.profile, JSON.stringify(profile))
  profiler.disconnect()
}
for (const t of timers) clearTimeout(t)
const stats = c.client?.stats()
emit({
  event: 'closed',
  at: closedAt,
  hr: closedHr,
  ...(stats ? { clientStats: { sent: stats.sent.entries, dropped: stats.dropped.total, retries: stats.retries } } : {}),
  ...(c.errors ? { libraryErrors: c.errors.length } : {}),
})

process.on('exit', () => {
  const cpu = process.cpuUsage(cpu0)
  emit({
    event: 'exit',
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    heap,
  })
})
