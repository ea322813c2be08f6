// Writes RESULTS.md. Everything is regenerated from the run except two sections: "History",
// whose rows are kept and extended by one per complete run, and "Optimisation log", which is
// written by hand and kept exactly as found.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { CONTENDERS, FLOORS } from './contenders.mjs'
import { fmtCount, fmtSpread, gitDescribe, machine, median, num, packageVersion, ROOT_DIR } from './util.mjs'

const HISTORY = '## History'
const OPT_LOG = '## Optimisation log'
const HISTORY_HEADER = [
  '| date | lokiwire | client protobuf burst lines/s | pino worker burst lines/s | best lossless incumbent burst lines/s | encoder ceiling entries/s | lokiwire lines lost | machine |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |',
]
const OPT_LOG_TEMPLATE = `${OPT_LOG}

Hand-written: what was tried, measured before and after, and kept or dropped. The harness keeps
this section as it is.
`
/** lokiwire defaults the stall verdicts are judged against. */
const CONCURRENCY = 2
const MAX_BUFFER_MB = 64
const BACKOFF_CAP_MS = 5000

const ALL = [...CONTENDERS, ...FLOORS]
const label = (id) => ALL.find((c) => c.id === id)?.label ?? id
const familyOf = (id) => ALL.find((c) => c.id === id)?.family
const isLokiwire = (id) => familyOf(id) === 'lokiwire'
const isIncumbent = (id) => familyOf(id) === 'pino-loki' || familyOf(id) === 'winston-loki'
const isFloor = (id) => familyOf(id) === 'floor'

/**
 * The kept parts of an existing file: the History section (up to the next heading) and the
 * Optimisation log with everything after it, whatever headings it has grown.
 */
function preserved(text) {
  const opt = text.search(/^## Optimisation log\b/m)
  const optLog = opt === -1 ? undefined : text.slice(opt).trimEnd()
  const head = opt === -1 ? text : text.slice(0, opt)
  const h = head.search(/^## History\b/m)
  let history
  if (h !== -1) {
    const rest = head.slice(h)
    const next = rest.slice(3).search(/^## /m)
    history = (next === -1 ? rest : rest.slice(0, next + 3)).trimEnd()
  }
  return { history, optLog }
}

function byContender(runs) {
  const map = new Map()
  for (const r of runs) {
    if (!map.has(r.contender)) map.set(r.contender, [])
    map.get(r.contender).push(r)
  }
  return map
}

const pick = (runs, key) => runs.map((r) => r[key])
const med = (runs, key) => median(pick(runs, key))
/** Duplicates Loki would store, then, if any, re-sent copies it drops (same stream, timestamp, line). */
function dupCell(runs) {
  const resent = pick(runs, 'resent').reduce((n, x) => n + (x ?? 0), 0)
  return resent > 0 ? `${fmtCount(pick(runs, 'duplicates'))} (+${num(resent)} re-sent)` : fmtCount(pick(runs, 'duplicates'))
}

function table(header, rows, align) {
  const lines = [`| ${header.join(' | ')} |`, `| ${align.map((a) => (a === 'r' ? '---:' : '---')).join(' | ')} |`]
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
  return lines.join('\n')
}

function statusNote(runs) {
  const bad = runs.filter((r) => r.status !== 'ok')
  if (bad.length === 0) return ''
  return ` (${bad.map((r) => r.status).join(', ')})`
}

function floorTable(runs) {
  const rows = []
  for (const [id, rs] of byContender(runs.filter((r) => isFloor(r.contender)))) {
    rows.push([label(id) + statusNote(rs), fmtSpread(pick(rs, 'deliveredPerSec')), fmtSpread(pick(rs, 'cpuMsPer100k')), fmtSpread(pick(rs, 'peakRssMB'), 1)])
  }
  if (rows.length === 0) return ''
  return table(['logger alone (no shipping)', 'lines/s, first log call to shutdown done', 'CPU ms / 100k lines', 'peak RSS MB'], rows, ['l', 'r', 'r', 'r'])
}

function burstTable(runs) {
  const rows = []
  for (const [id, rs] of byContender(runs.filter((r) => !isFloor(r.contender)))) {
    rows.push([
      label(id) + statusNote(rs),
      fmtSpread(pick(rs, 'deliveredPerSec')),
      fmtCount(pick(rs, 'lost')),
      dupCell(rs),
      fmtSpread(pick(rs, 'loggingMs')),
      fmtSpread(pick(rs, 'exitAfterCloseMs')),
      fmtSpread(pick(rs, 'cpuMsPer100k')),
      fmtSpread(pick(rs, 'peakRssMB'), 1),
      fmtSpread(pick(rs, 'rssGrowthPeakMB'), 1),
      fmtSpread(pick(rs, 'wireBytesPerLine'), 1),
      num(med(rs, 'rawBytesPerLine'), 1),
      fmtSpread(pick(rs, 'requests')),
      fmtSpread(pick(rs, 'peakConnections')),
    ])
  }
  return table(
    ['contender', 'delivered lines/s', 'lost', 'dup', 'logging ms', 'close → exit ms', 'CPU ms / 100k lines', 'peak RSS MB', 'peak RSS − RSS at start MB', 'wire B/line', 'uncompressed B/line', 'requests', 'peak conns'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  )
}

function sustainedTable(runs) {
  const rows = []
  for (const [id, rs] of byContender(runs)) {
    rows.push([
      label(id) + statusNote(rs),
      fmtSpread(pick(rs, 'logRate')),
      fmtSpread(pick(rs, 'deliveredPerSec')),
      fmtCount(pick(rs, 'lost')),
      dupCell(rs),
      `${num(med(rs, 'lagP50'))} / ${num(med(rs, 'lagP99'))} / ${num(med(rs, 'lagMax'))}`,
      fmtSpread(pick(rs, 'cpuMsPer100k')),
      fmtSpread(pick(rs, 'peakRssMB'), 1),
      fmtSpread(pick(rs, 'wireBytesPerLine'), 1),
      fmtSpread(pick(rs, 'requests')),
      fmtSpread(pick(rs, 'peakConnections')),
      fmtSpread(pick(rs, 'exitAfterCloseMs')),
    ])
  }
  return table(
    ['contender', 'logged lines/s', 'delivered lines/s', 'lost', 'dup', 'latency p50 / p99 / max ms', 'CPU ms / 100k lines', 'peak RSS MB', 'wire B/line', 'requests', 'peak conns', 'close → exit ms'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  )
}

function stallTable(runs) {
  const rows = []
  for (const [id, rs] of byContender(runs)) {
    const after = (key, atClose) =>
      rs.map((r) => (Number.isFinite(r[key]) ? `${num(r[key])}${r[atClose] ? ' (only at close)' : ''}` : 'never')).join(', ')
    const heapNote = rs.some((r) => r.heapWorkerAnswered === false) ? ' (main thread only: worker did not answer)' : ''
    rows.push([
      label(id) + statusNote(rs),
      fmtCount(pick(rs, 'lost')),
      dupCell(rs),
      `${fmtSpread(pick(rs, 'peakConnectionsStall'))} / ${fmtSpread(pick(rs, 'peakConnections'))}`,
      fmtSpread(pick(rs, 'heapGrowthMB'), 1) + heapNote,
      fmtSpread(pick(rs, 'rssGrowthMB'), 1),
      after('recoveryToFirstMs', 'resumedOnlyAtClose'),
      after('recoveryToBacklogMs', 'backlogOnlyAtClose'),
      fmtSpread(pick(rs, 'requests')),
      fmtSpread(pick(rs, 'exitAfterCloseMs')),
      fmtSpread(pick(rs, 'cpuMsPer100k')),
    ])
  }
  return table(
    ['contender', 'lost', 'dup', 'peak conns (stall / run)', 'post-GC heap growth MB', 'RSS growth MB', 'recovery → first delivery ms', 'recovery → backlog delivered ms', 'requests', 'close → exit ms', 'CPU ms / 100k lines'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  )
}

function microSection(micro, burst) {
  if (micro === undefined) return '_Not run._'
  const parts = []
  if (micro.error) parts.push(`Failed:\n\n\`\`\`\n${micro.error}\n\`\`\``)
  const enc = micro.results.filter((r) => r.kind === 'encoder')
  if (enc.length) {
    parts.push(
      table(
        ['encoder (10,000-entry batches, same lines as the client-direct burst)', 'entries/s', 'MB/s of log lines', 'output B/entry'],
        enc.map((r) => [r.name, num(r.entriesPerSec), num(r.mbPerSec, 1), num(r.outBytesPerEntry, 1)]),
        ['l', 'r', 'r', 'r'],
      ),
    )
  }
  const push = micro.results.filter((r) => r.kind === 'push')
  if (push.length) {
    parts.push(table(['push()', 'ns/entry (median)', 'samples'], push.map((r) => [r.name, num(r.nsPerEntry, 0), num(r.samples)]), ['l', 'r', 'r']))
  }
  const ceiling = enc.find((r) => r.name === 'protobuf+snappy')
  const jsonCeiling = enc.find((r) => r.name === 'JSON+gzip level 1')
  const rows = []
  for (const [id, codec] of [['lokiwire-client-protobuf', ceiling], ['lokiwire-client-json', jsonCeiling]]) {
    const rs = burst.filter((r) => r.contender === id)
    if (!codec || rs.length === 0) continue
    const e2e = med(rs, 'deliveredPerSec')
    rows.push([label(id), num(e2e), `${codec.name}: ${num(codec.entriesPerSec)}`, `${num((100 * e2e) / codec.entriesPerSec, 0)} %`])
  }
  if (rows.length) {
    parts.push(table(['end to end vs encoder-only ceiling', 'burst delivered lines/s', 'encoder ceiling entries/s', 'end to end / ceiling'], rows, ['l', 'r', 'r', 'r']))
  }
  return parts.join('\n\n')
}

function profileSection(profile) {
  if (profile === undefined) return '_Not run._'
  if (profile.error) return `_Profile failed: ${profile.error}._`
  const r = profile.run
  return [
    `One client-direct protobuf burst of ${num(r.expected)} lines (${num(r.deliveredPerSec)} lines/s delivered while profiled) under V8's sampling CPU profiler ` +
      '(the one `node --cpu-prof` drives; here it is started at the first log call and stopped after shutdown, sampling every 100 µs). ' +
      `Main thread: ${num(profile.busyMs)} ms busy, ${num(profile.idleMs)} ms idle (waiting for I/O). Self time as a share of busy time; bundle positions are mapped to src/ through the source map. ` +
      '`(program)` is native work outside JavaScript, `(garbage collector)` is GC; a native function is placed by its caller, because a binding may report a misleading name ' +
      "(snappy 7's block compression shows up as `DecompressorFinish`).",
    table(
      ['function', 'where', 'self ms', 'self %'],
      profile.rows.map((x) => [`\`${x.name}\``, x.where ? `\`${x.where}\`` : '', num(x.ms, 1), num(x.pct, 1)]),
      ['l', 'l', 'r', 'r'],
    ),
  ].join('\n\n')
}

/** Target verdicts from the issue, each with the rule it was judged by. */
function targets(results, micro) {
  const out = []
  const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? '**met**' : '**not met**')
  const burst = byContender(results.burst)
  const incumbents = [...burst.entries()].filter(([id]) => isIncumbent(id))
  const lossless = incumbents.filter(([, rs]) => rs.every((r) => r.status === 'ok' && r.lost === 0))
  const best = lossless.sort((a, b) => med(b[1], 'deliveredPerSec') - med(a[1], 'deliveredPerSec'))[0]

  const pw = burst.get('lokiwire-pino-worker')
  if (pw && best) {
    const rate = med(pw, 'deliveredPerSec')
    const bestRate = med(best[1], 'deliveredPerSec')
    const cpu = med(pw, 'cpuMsPer100k')
    const bestCpu = med(best[1], 'cpuMsPer100k')
    const lost = pw.reduce((n, r) => n + r.lost, 0)
    out.push([
      'Burst via pino worker: ≥ 10× the best lossless incumbent, zero loss, CPU/line ≤ 1/10',
      `${num(rate)} vs ${num(bestRate)} lines/s (${label(best[0])}) = ${num(rate / bestRate, 1)}×; lost ${num(lost)}; CPU ${num(cpu)} vs ${num(bestCpu)} ms/100k = ${num(cpu / bestCpu, 2)}×`,
      verdict(rate >= 10 * bestRate && lost === 0 && cpu <= bestCpu / 10),
    ])
  } else if (pw) {
    out.push(['Burst via pino worker: ≥ 10× the best lossless incumbent', 'no incumbent was lossless in every burst run', 'n/a'])
  }

  const cd = burst.get('lokiwire-client-protobuf')
  const ceiling = micro?.results?.find((r) => r.name === 'protobuf+snappy')
  if (cd) {
    const rate = med(cd, 'deliveredPerSec')
    const share = ceiling ? rate / ceiling.entriesPerSec : NaN
    out.push([
      'Client direct (protobuf) ≥ 1,000,000 lines/s delivered and ≥ 50 % of the encoder-only ceiling',
      `${num(rate)} lines/s; ceiling ${ceiling ? num(ceiling.entriesPerSec) : 'n/a'} entries/s = ${num(100 * share, 0)} %`,
      verdict(rate >= 1_000_000 && (ceiling ? share >= 0.5 : false)),
    ])
  }

  if (lossless.length) {
    const lowest = Math.min(...lossless.map(([, rs]) => med(rs, 'peakRssMB')))
    const ours = [...burst.entries()].filter(([id]) => isLokiwire(id))
    const worst = Math.max(...ours.map(([, rs]) => med(rs, 'peakRssMB')))
    out.push([
      'Burst peak RSS ≤ 1/3 of lossless incumbents (every lokiwire contender vs the leanest lossless incumbent)',
      ours.map(([id, rs]) => `${label(id)} ${num(med(rs, 'peakRssMB'), 1)} MB`).join('; ') + `; leanest lossless incumbent ${num(lowest, 1)} MB; worst ratio ${num(worst / lowest, 2)}`,
      verdict(worst <= lowest / 3),
    ])
  }

  const wl = burst.get('winston-loki-protobuf')
  if (wl) {
    const ref = med(wl, 'wireBytesPerLine')
    const ours = ['lokiwire-winston', 'lokiwire-client-protobuf', 'lokiwire-pino-worker'].filter((id) => burst.has(id))
    const lw = burst.get('lokiwire-winston')
    out.push([
      'Wire bytes per line ≤ winston-loki protobuf (same logger and records: lokiwire winston)',
      `winston-loki protobuf ${num(ref, 1)} B/line; ` + ours.map((id) => `${label(id)} ${num(med(burst.get(id), 'wireBytesPerLine'), 1)}`).join('; '),
      verdict(lw ? med(lw, 'wireBytesPerLine') <= ref : undefined),
    ])
  }

  const stall = byContender(results.stall)
  const ours = [...stall.entries()].filter(([id]) => isLokiwire(id))
  if (ours.length) {
    // The target is about the stall; the run peak is shown too (after recovery a retry may
    // connect while the receiver has not yet seen the aborted attempt's socket close).
    const conns = Math.max(...ours.flatMap(([, rs]) => pick(rs, 'peakConnectionsStall')))
    const connsRun = Math.max(...ours.flatMap(([, rs]) => pick(rs, 'peakConnections')))
    const dups = ours.reduce((n, [, rs]) => n + rs.reduce((m, r) => m + r.duplicates, 0), 0)
    const resent = ours.reduce((n, [, rs]) => n + rs.reduce((m, r) => m + (r.resent ?? 0), 0), 0)
    const heap = Math.max(...ours.flatMap(([, rs]) => pick(rs, 'heapGrowthMB')))
    const recov = Math.max(...ours.flatMap(([, rs]) => pick(rs, 'recoveryToFirstMs').map((x) => (Number.isFinite(x) ? x : Infinity))))
    const backlog = Math.max(...ours.flatMap(([, rs]) => pick(rs, 'recoveryToBacklogMs').map((x) => (Number.isFinite(x) ? x : Infinity))))
    const lost = ours.reduce((n, [, rs]) => n + rs.reduce((m, r) => m + r.lost, 0), 0)
    out.push([
      `Stall: connections ≤ concurrency (${CONCURRENCY}), heap growth ≤ buffer limit (${MAX_BUFFER_MB} MiB), delivery within one backoff cap (${BACKOFF_CAP_MS / 1000} s) of recovery`,
      `worst lokiwire contender: ${num(conns)} connections while stalled (${num(connsRun)} over the whole run), ${num(heap, 1)} MB post-GC heap growth, first delivery ${Number.isFinite(recov) ? num(recov) : 'never'} ms after recovery (whole backlog ${Number.isFinite(backlog) ? num(backlog) : 'never'} ms); lost ${num(lost)}, duplicates ${num(dups)}${resent > 0 ? ` (${num(resent)} re-sent copies, which Loki drops)` : ''}`,
      verdict(conns <= CONCURRENCY && heap <= MAX_BUFFER_MB && recov <= BACKOFF_CAP_MS && lost === 0 && dups === 0),
    ])
  }
  return table(['target', 'measured', 'verdict'], out, ['l', 'l', 'l'])
}

function historyRow(input, pkgs) {
  const burst = byContender(input.results.burst)
  const rate = (id) => (burst.has(id) ? num(med(burst.get(id), 'deliveredPerSec')) : 'n/a')
  const lossless = [...burst.entries()].filter(([id, rs]) => isIncumbent(id) && rs.every((r) => r.status === 'ok' && r.lost === 0))
  const best = lossless.length ? num(Math.max(...lossless.map(([, rs]) => med(rs, 'deliveredPerSec')))) : 'none'
  const ceiling = input.micro?.results?.find((r) => r.name === 'protobuf+snappy')
  let lost = 0
  for (const r of [...input.results.burst, ...input.results.sustained, ...input.results.stall]) if (isLokiwire(r.contender)) lost += r.lost
  const cpu = (os.cpus()[0]?.model ?? '?').replace(/\s+/g, ' ').trim()
  return `| ${new Date().toISOString().slice(0, 10)} | ${pkgs.lokiwire} | ${rate('lokiwire-client-protobuf')} | ${rate('lokiwire-pino-worker')} | ${best} | ${ceiling ? num(ceiling.entriesPerSec) : 'n/a'} | ${num(lost)} | ${cpu}, ${os.availableParallelism()} cores, Node ${process.version} |`
}

export function writeReport(file, input) {
  const previous = existsSync(file) ? preserved(readFileSync(file, 'utf8')) : {}
  const lokiwireVersion = JSON.parse(readFileSync(`${ROOT_DIR}/package.json`, 'utf8')).version
  const pkgs = {
    lokiwire: `${lokiwireVersion} (${gitDescribe()})`,
    pino: packageVersion('pino'),
    'thread-stream': packageVersion('thread-stream'),
    'pino-loki': packageVersion('pino-loki'),
    winston: packageVersion('winston'),
    'winston-loki': packageVersion('winston-loki'),
    snappy: packageVersion('snappy'),
    undici: packageVersion('undici', ROOT_DIR),
  }
  const p = input.plan
  const runsNote = (s) => `${p[s].runs} run${p[s].runs === 1 ? '' : 's'} per contender`
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ')

  const out = []
  out.push('# Benchmark results')
  out.push('')
  out.push(
    input.smoke
      ? '**Smoke run**: tiny sizes to check the harness works. These numbers mean nothing.'
      : 'Written by `bench/run.mjs`; regenerate rather than edit. "History" grows by one row per complete run and "Optimisation log" is hand-written; both are kept across runs.',
  )
  out.push('')
  out.push(`- Command: \`${input.command}\` (in \`bench/\` or at the root, after \`npm run build\` and \`npm ci --prefix bench\`)`)
  out.push(`- Date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; the run took ${num(input.durationS / 60, 1)} min; load average at the end: ${load}`)
  out.push(`- Machine: ${machine(input.pin)}`)
  out.push(`- Packages: ${Object.entries(pkgs).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  out.push('- Every figure is the median over runs with (min–max) when runs differ; counts of lost and duplicate lines are totals over runs.')
  if (input.skipped.length) {
    out.push('')
    out.push(`**Skipped:** ${input.skipped.map((s) => `${s.label}: ${s.reason}`).join('; ')}`)
  }
  out.push('')
  out.push('## Targets')
  out.push('')
  out.push(targets(input.results, input.micro))
  out.push('')
  out.push(`## Burst: ${num(p.burst.lines)} records as fast as possible, then shutdown`)
  out.push('')
  out.push(
    `${runsNote('burst')}. Records are logged in chunks of ${num(p.burst.chunk)} per event-loop turn; then the library's documented shutdown runs and the process is left to exit by itself. ` +
      '"delivered lines/s" is distinct lines received divided by the time from the first log call to the last line received; ' +
      '"logging ms" is how long the log calls took (the app is blocked that long); "close → exit" runs from the end of logging to process exit.',
  )
  out.push('')
  out.push(input.results.burst.length ? burstTable(input.results.burst) : '_Not run._')
  out.push('')
  const floors = floorTable(input.results.burst)
  if (floors) {
    out.push(
      'Floors: the same records through the logger alone, to /dev/null, same burst. A transport for that logger cannot beat these; ' +
        'they bound what any ratio between transports of one logger can be.',
    )
    out.push('')
    out.push(floors)
    out.push('')
  }
  out.push(`## Sustained: ${num(p.sustained.rate)} lines/s for ${num(p.sustained.durationMs / 1000)} s`)
  out.push('')
  out.push(`${runsNote('sustained')}. Latency is from a line's scheduled log time to its arrival at the receiver.`)
  out.push('')
  out.push(input.results.sustained.length ? sustainedTable(input.results.sustained) : '_Not run._')
  out.push('')
  out.push(`## Stalled receiver: ${num(p.stall.rate)} lines/s, receiver hangs for ${num(p.stall.stallMs / 1000)} s, then recovers`)
  out.push('')
  out.push(
    `${runsNote('stall')}. ${num(p.stall.preMs / 1000)} s healthy, ${num(p.stall.stallMs / 1000)} s stalled, ${num(p.stall.postMs / 1000)} s recovered, then shutdown. ` +
      'While stalled the receiver reads each push and neither stores nor answers it; at recovery it stores and answers every request still waiting, as a Loki whose ingestion hung would. ' +
      'Heap growth is post-GC heap (main thread plus the transport worker, where there is one) just before recovery minus just before the stall; ' +
      '"backlog delivered" is when the last line logged before recovery arrived; "only at close" means that happened only once shutdown began.',
  )
  out.push('')
  out.push(input.results.stall.length ? stallTable(input.results.stall) : '_Not run._')
  out.push('')
  out.push('## Micro benchmarks')
  out.push('')
  out.push(microSection(input.micro, input.results.burst))
  out.push('')
  out.push('## Profile: lokiwire client direct, burst')
  out.push('')
  out.push(profileSection(input.profile))
  out.push('')
  out.push('## Contenders and settings')
  out.push('')
  out.push(
    'Every contender logs the same record (`seq`, `user`, message "request handled"; the client-direct contenders build an equivalent JSON line) with the static label `app="bench"` plus the level. ' +
      'Incumbents use their documented options; the only changes from their defaults are listed, and made so that a burst can be delivered without loss.',
  )
  out.push('')
  for (const c of input.contenders) out.push(`- **${c.label}**: ${c.settings}`)
  out.push('')
  out.push('## Method')
  out.push('')
  out.push(
    [
      '- The receiver is a separate process (a lean Loki push endpoint: snappy/gzip decode, then a scan for each line\'s `"seq":N`, so loss and duplicates are exact). A sequence id met twice is judged as Loki would: a copy with the same stream, timestamp and line as the first is dropped by Loki and shown as "re-sent" beside the duplicates; only a copy Loki would store again counts as a duplicate. With two or more cores it is pinned to the last core and every client process to the others, so the two never share a core; on a two-core machine that puts a pino worker on the same core as its application thread, for lokiwire and pino-loki alike.',
      '- Each run of each contender is a fresh process; runs are interleaved across contenders so noise on the machine affects all of them alike.',
      '- Client CPU is `process.cpuUsage()` over the whole run, which counts every thread of the process (worker transports included), and includes building the records. Peak RSS is the process\'s `maxRSS`.',
      '- Wire bytes are request bodies as received (compressed where the library compresses), divided by distinct lines delivered.',
      '- The smoke run (`--smoke`) checks the harness: tiny sizes, every contender in the burst, lokiwire only in the sustained and stall scenarios, full decoding of every body as a cross-check of the scanner; it writes to a temp file and exits non-zero if a lokiwire contender loses a line.',
      '- Floors (burst only) run the same records through pino or winston to /dev/null with no transport at all: the most any transport of that logger could reach.',
      '- The profile is one extra client-direct burst with the V8 CPU profiler running on the main thread; its rate is slowed by the profiler and is not a result.',
      '- Numbers from a busy machine are noisy: compare runs made on the same quiet machine.',
    ].join('\n'),
  )

  let history = previous.history
  const row = historyRow(input, pkgs)
  if (history === undefined) history = [HISTORY, '', 'Headline numbers of each complete run, newest last.', '', ...HISTORY_HEADER].join('\n')
  if (input.complete) history = `${history}\n${row}`
  out.push('')
  out.push(history)
  out.push('')
  out.push((previous.optLog ?? OPT_LOG_TEMPLATE).trimEnd())
  out.push('')
  writeFileSync(file, out.join('\n'))
}
