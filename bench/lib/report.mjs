// Writes RESULTS.md. Everything is regenerated from the run except two sections: "History",
// whose rows are kept and extended by one per complete run, and "Optimisation log", which is
// written by hand and kept exactly as found.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { COLDSTART_CASES, FIRST_SEND_LINES } from './coldstart.mjs'
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
/** The floor a contender runs on top of (its `loggerAlone`): the same logger or app, shipping nothing. */
const loggerAloneOf = (id) => ALL.find((c) => c.id === id)?.loggerAlone

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

/** The warm burst: each transport and floor of FLOOR_TARGETS, the burst measured after a first one in the same process. */
function warmTable(runs) {
  const all = byContender(runs)
  const rows = []
  for (const t of FLOOR_TARGETS) {
    for (const id of [t.id, t.floor]) {
      const rs = all.get(id)
      if (!rs) continue
      const floor = id === t.id ? all.get(t.floor) : undefined
      const share = floor ? `${num((100 * med(rs, 'deliveredPerSec')) / med(floor, 'deliveredPerSec'))} %` : ''
      rows.push([label(id) + statusNote(rs), fmtSpread(pick(rs, 'deliveredPerSec')), share, isFloor(id) ? '' : fmtCount(pick(rs, 'lost')), fmtSpread(pick(rs, 'cpuMsPer100k'))])
    }
  }
  return table(['contender', 'delivered lines/s (floors: first log call to shutdown done)', 'share of its floor, same scenario', 'lost', 'CPU ms / 100k lines'], rows, ['l', 'r', 'r', 'r', 'r'])
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

/**
 * Medians of the cold start runs, each case set against the bare `node` of the same run. A case
 * is `ok` only if every one of its runs exited cleanly and reported.
 */
export function coldstartSummary(coldstart) {
  if (!coldstart || coldstart.cases.length === 0) return undefined
  const rows = []
  for (const c of COLDSTART_CASES) {
    const rs = coldstart.cases.filter((r) => r.id === c.id)
    if (rs.length === 0) continue
    rows.push({ id: c.id, label: c.label, runs: rs, ok: clean(rs), wall: med(rs, 'wallMs'), cpu: med(rs, 'cpuMs'), rss: med(rs, 'maxRssMB') })
  }
  const bare = rows.find((r) => r.id === 'bare')
  for (const r of rows) {
    r.wallOver = bare ? r.wall - bare.wall : NaN
    r.cpuOver = bare ? r.cpu - bare.cpu : NaN
    r.rssOver = bare ? r.rss - bare.rss : NaN
  }
  const fs = coldstart.firstSend ?? []
  const firstSend = fs.length
    ? {
        runs: fs,
        ok: clean(fs) && lostIn(fs) === 0,
        lines: FIRST_SEND_LINES,
        ...Object.fromEntries(['importMs', 'constructMs', 'firstMs', 'secondMs', 'firstRssGrowthMB', 'secondRssGrowthMB', 'peakOverImportMB', 'wallMs', 'maxRssMB'].map((k) => [k, med(fs, k)])),
      }
    : undefined
  return { runs: coldstart.runs, bare: bare ?? { wall: NaN, rss: NaN, ok: false }, rows, firstSend }
}

function coldstartSection(coldstart) {
  const cold = coldstartSummary(coldstart)
  if (!cold) return '_Not run._'
  const over = (x, digits) => (Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${num(Math.abs(x), digits)}` : 'n/a')
  const parts = [
    table(
      ['process', 'wall ms, spawn → exit', 'over bare ms', 'CPU ms', 'over bare ms', 'peak RSS MB', 'over bare MB'],
      cold.rows.map((r) => [
        r.label + statusNote(r.runs),
        fmtSpread(pick(r.runs, 'wallMs')),
        r.id === 'bare' ? '' : over(r.wallOver, 0),
        fmtSpread(pick(r.runs, 'cpuMs')),
        r.id === 'bare' ? '' : over(r.cpuOver, 0),
        fmtSpread(pick(r.runs, 'maxRssMB'), 1),
        r.id === 'bare' ? '' : over(r.rssOver, 1),
      ]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  ]
  const f = cold.firstSend
  if (f) {
    parts.push(
      `First send: a fresh process imports lokiwire, builds a \`LokiClient\` with its defaults, then pushes ${num(f.lines)} lines and awaits \`flush()\` (resolved once the receiver stored them), twice. ` +
        'What loading on demand moves out of the import is paid in the first batch; the second is the same work warm. RSS growth is `process.memoryUsage.rss()` after the batch minus before it. ' +
        'The process then idles 0.5 s before closing, so that "peak RSS − RSS after import" (`maxRSS` at that point) includes the background work a first use sets off, such as V8 recompiling undici\'s WebAssembly HTTP parser optimised. Informational: no target.',
    )
    parts.push(
      table(
        ['import ms', 'new LokiClient ms', 'first batch ms', 'second batch ms', 'first batch RSS growth MB', 'second batch RSS growth MB', 'peak RSS − RSS after import MB', 'process wall ms', 'peak RSS MB', 'lost'],
        [
          [
            fmtSpread(pick(f.runs, 'importMs'), 1) + statusNote(f.runs),
            fmtSpread(pick(f.runs, 'constructMs'), 1),
            fmtSpread(pick(f.runs, 'firstMs'), 1),
            fmtSpread(pick(f.runs, 'secondMs'), 1),
            fmtSpread(pick(f.runs, 'firstRssGrowthMB'), 1),
            fmtSpread(pick(f.runs, 'secondRssGrowthMB'), 1),
            fmtSpread(pick(f.runs, 'peakOverImportMB'), 1),
            fmtSpread(pick(f.runs, 'wallMs')),
            fmtSpread(pick(f.runs, 'maxRssMB'), 1),
            fmtCount(pick(f.runs, 'lost')),
          ],
        ],
        ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    )
  }
  return parts.join('\n\n')
}

/** Targets of a transport against its floor (its `loggerAlone`), in lossless runs: delivered lines/s share. */
const FLOOR_TARGETS = [
  { id: 'lokiwire-pino-worker', share: 0.6, what: 'Pino worker burst' },
  { id: 'lokiwire-winston', share: 0.92, what: 'winston (lokiwire LokiTransport) burst' },
  { id: 'lokiwire-client-protobuf', share: 0.5, what: 'Client direct (protobuf) burst' },
].map((t) => ({ ...t, floor: loggerAloneOf(t.id) }))
/** Cold start budget of `import('lokiwire')` over a bare `node`. */
const COLD_WALL_MS = 60
const COLD_RSS_MB = 8

const lostIn = (rs) => rs.reduce((n, r) => n + (r.lost ?? 0), 0)
const clean = (rs) => rs.every((r) => r.status === 'ok')

/**
 * What shipping itself costs: CPU per line and peak RSS growth of each contender minus those of
 * its logger alone, lokiwire's against the cheapest lossless incumbent's. The whole-process rows
 * above also charge a transport for its logger; these do not. Informational: the targets are the
 * rows above. A contender whose floor did not run is left out.
 */
function overLoggerAlone(burst, ours, lossless) {
  const over = (id, rs, key) => {
    const floor = burst.get(loggerAloneOf(id))
    return floor ? med(rs, key) - med(floor, key) : undefined
  }
  const rows = []
  for (const [key, digits, unit, what] of [
    ['cpuMsPer100k', 0, ' ms/100k lines', 'CPU per line'],
    ['rssGrowthPeakMB', 1, ' MB', 'Peak RSS growth'],
  ]) {
    const mine = ours.map(([id, rs]) => [id, over(id, rs, key)]).filter(([, x]) => x !== undefined)
    const theirs = lossless.map(([id, rs]) => [id, over(id, rs, key)]).filter(([, x]) => x !== undefined)
    if (mine.length === 0 || theirs.length === 0) continue
    const [refId, ref] = theirs.sort((a, b) => a[1] - b[1])[0]
    const worst = Math.max(...mine.map(([, x]) => x))
    rows.push([
      `${what}, over the logger alone (informational): each contender's figure minus its floor's, against the cheapest lossless incumbent's measured the same way`,
      `${mine.map(([id, x]) => `${label(id)} ${num(x, digits)}`).join('; ')}${unit}; cheapest lossless incumbent ${num(ref, digits)} (${label(refId)} over ${label(loggerAloneOf(refId))}); worst ratio ${ref > 0 ? num(worst / ref, 2) : 'n/a'}`,
      'informational',
    ])
  }
  return rows
}

/**
 * Target verdicts from the issue, each with the rule it was judged by. Every ratio is between
 * figures of the same run: floors, incumbents and lokiwire ran interleaved on the same machine.
 */
export function targets(results, coldstart) {
  const out = []
  const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? '**met**' : '**not met**')
  const burst = byContender(results.burst)
  const incumbents = [...burst.entries()].filter(([id]) => isIncumbent(id))
  const lossless = incumbents.filter(([, rs]) => rs.every((r) => r.status === 'ok' && r.lost === 0))
  const ours = [...burst.entries()].filter(([id]) => isLokiwire(id))

  for (const t of FLOOR_TARGETS) {
    const rs = burst.get(t.id)
    if (!rs) continue
    const text = `${t.what}: delivered lines/s ≥ ${num(100 * t.share)} % of ${label(t.floor)}, zero loss`
    const floor = burst.get(t.floor)
    const rate = med(rs, 'deliveredPerSec')
    const lost = lostIn(rs)
    const logging = t.id === 'lokiwire-pino-worker' ? `; main thread logging ${num(med(rs, 'loggingMs'))} ms (floor ${floor ? num(med(floor, 'loggingMs')) : 'n/a'} ms)` : ''
    if (!floor) {
      out.push([text, `${num(rate)} lines/s; floor not run; lost ${num(lost)}${logging}`, 'n/a'])
      continue
    }
    const floorRate = med(floor, 'deliveredPerSec')
    out.push([
      text,
      `${num(rate)} vs ${num(floorRate)} lines/s = ${num((100 * rate) / floorRate)} %; lost ${num(lost)}${logging}`,
      verdict(clean(rs) && clean(floor) && lost === 0 && rate >= t.share * floorRate),
    ])
  }

  // The same ratios once the process has done its one-time work: what a long-running service sees.
  const warm = byContender(results.warm ?? [])
  for (const t of FLOOR_TARGETS) {
    const rs = warm.get(t.id)
    const floor = warm.get(t.floor)
    if (!rs || !floor) continue
    const rate = med(rs, 'deliveredPerSec')
    const floorRate = med(floor, 'deliveredPerSec')
    out.push([
      `${t.what}, warm process (informational): the same burst after a first one in the same process, against ${label(t.floor)} measured the same way`,
      `${num(rate)} vs ${num(floorRate)} lines/s = ${num((100 * rate) / floorRate)} %; lost ${num(lostIn(rs))}`,
      'informational',
    ])
  }

  // Per line and per process, so each lokiwire contender is held to the same incumbent.
  const perContender = (key, digits, unit) => ours.map(([id, rs]) => `${label(id)} ${num(med(rs, key), digits)}${unit}`).join('; ')
  if (ours.length && lossless.length) {
    const [bestId, bestRs] = [...lossless].sort((a, b) => med(a[1], 'cpuMsPer100k') - med(b[1], 'cpuMsPer100k'))[0]
    const best = med(bestRs, 'cpuMsPer100k')
    const worst = Math.max(...ours.map(([, rs]) => med(rs, 'cpuMsPer100k')))
    out.push([
      'CPU per line ≤ 1/3 of the best lossless incumbent, every lokiwire contender (burst, whole process)',
      `${perContender('cpuMsPer100k', 0, '')} ms/100k lines; best lossless incumbent ${num(best)} (${label(bestId)}); worst ratio ${num(worst / best, 2)}`,
      verdict(worst <= best / 3),
    ])
    const [leanId, leanRs] = [...lossless].sort((a, b) => med(a[1], 'rssGrowthPeakMB') - med(b[1], 'rssGrowthPeakMB'))[0]
    const lean = med(leanRs, 'rssGrowthPeakMB')
    const worstRss = Math.max(...ours.map(([, rs]) => med(rs, 'rssGrowthPeakMB')))
    out.push([
      "Peak RSS growth over the process's RSS at start ≤ 1/3 of the leanest lossless incumbent's, every lokiwire contender (burst)",
      `${perContender('rssGrowthPeakMB', 1, ' MB')}; leanest lossless incumbent ${num(lean, 1)} MB (${label(leanId)}); worst ratio ${num(worstRss / lean, 2)}`,
      verdict(worstRss <= lean / 3),
    ])
    out.push(...overLoggerAlone(burst, ours, lossless))
  } else if (ours.length) {
    out.push(['CPU per line and peak RSS growth ≤ 1/3 of the best lossless incumbent', incumbents.length ? 'no incumbent was lossless in every burst run' : 'no incumbent in this run', 'n/a'])
  }

  const cold = coldstartSummary(coldstart)
  if (cold) {
    const esm = cold.rows.find((r) => r.id === 'lokiwire-esm')
    const cjs = cold.rows.find((r) => r.id === 'lokiwire-cjs')
    const delta = (r) => (r ? `+${num(r.wallOver)} ms, +${num(r.rssOver, 1)} MB` : 'n/a')
    out.push([
      `Cold start: \`import('lokiwire')\` ≤ +${COLD_WALL_MS} ms wall and ≤ +${COLD_RSS_MB} MB peak RSS over a bare \`node\` (whole processes, median of ${cold.runs})`,
      `${delta(esm)} (bare ${num(cold.bare.wall)} ms, ${num(cold.bare.rss, 1)} MB); \`require('lokiwire')\` ${delta(cjs)}`,
      verdict(esm?.ok && cold.bare.ok ? esm.wallOver <= COLD_WALL_MS && esm.rssOver <= COLD_RSS_MB : undefined),
    ])
    if (cold.firstSend) {
      const f = cold.firstSend
      out.push([
        'First send after import (informational): the first batch pushed and flushed by a fresh process',
        `${num(f.firstMs, 1)} ms push → stored for ${num(f.lines)} lines (the second batch ${num(f.secondMs, 1)} ms); RSS +${num(f.firstRssGrowthMB, 1)} MB over the first batch, peak RSS +${num(f.peakOverImportMB, 1)} MB over RSS after import`,
        'informational',
      ])
    }
  }

  const wl = burst.get('winston-loki-protobuf')
  if (wl) {
    const ref = med(wl, 'wireBytesPerLine')
    const shipping = ['lokiwire-winston', 'lokiwire-client-protobuf', 'lokiwire-pino-worker'].filter((id) => burst.has(id))
    const lw = burst.get('lokiwire-winston')
    out.push([
      'Wire bytes per line ≤ winston-loki protobuf (same logger and records: lokiwire winston)',
      `winston-loki protobuf ${num(ref, 1)} B/line; ` + shipping.map((id) => `${label(id)} ${num(med(burst.get(id), 'wireBytesPerLine'), 1)}`).join('; '),
      verdict(lw ? med(lw, 'wireBytesPerLine') <= ref : undefined),
    ])
  }

  const stall = byContender(results.stall)
  const stalled = [...stall.entries()].filter(([id]) => isLokiwire(id))
  if (stalled.length) {
    // The target is about the stall; the run peak is shown beside it. The receiver counts a
    // connection until the client ends it (receiver.mjs), so neither includes a socket the
    // client has already replaced.
    const conns = Math.max(...stalled.flatMap(([, rs]) => pick(rs, 'peakConnectionsStall')))
    const connsRun = Math.max(...stalled.flatMap(([, rs]) => pick(rs, 'peakConnections')))
    const dups = stalled.reduce((n, [, rs]) => n + rs.reduce((m, r) => m + r.duplicates, 0), 0)
    const resent = stalled.reduce((n, [, rs]) => n + rs.reduce((m, r) => m + (r.resent ?? 0), 0), 0)
    const heap = Math.max(...stalled.flatMap(([, rs]) => pick(rs, 'heapGrowthMB')))
    const recov = Math.max(...stalled.flatMap(([, rs]) => pick(rs, 'recoveryToFirstMs').map((x) => (Number.isFinite(x) ? x : Infinity))))
    const backlog = Math.max(...stalled.flatMap(([, rs]) => pick(rs, 'recoveryToBacklogMs').map((x) => (Number.isFinite(x) ? x : Infinity))))
    const lost = stalled.reduce((n, [, rs]) => n + rs.reduce((m, r) => m + r.lost, 0), 0)
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
  out.push(
    'Every target is judged against figures of this run: floors, incumbents and lokiwire ran interleaved on the same machine, so a busy machine moves both sides of a ratio. ' +
      'Rates and costs are medians over the burst runs; the lokiwire side of a rate target must also be lossless. ' +
      "The pino worker's main-thread logging time (\"logging ms\" in the burst table: how long the app is blocked in log calls) has no target of its own, and must not grow while the others are met.",
  )
  out.push('')
  out.push(targets(input.results, input.coldstart))
  out.push('')
  out.push('## Cold start')
  out.push('')
  out.push(
    `${input.plan.coldstart.runs} runs of each process, interleaved (each round runs every case once, in an order rotated per round). ` +
      'Each is a whole `node -e` process that imports one module and exits; the bare `node` runs the same one-line exit reporter with no import. ' +
      "Wall is from spawn() in the harness to the child's exit (start-up, loading and teardown); CPU (user and system, every thread) and peak RSS (`maxRSS`) are the child's own, read at exit, the same way for the bare process. " +
      'The target is judged on wall; CPU is beside it because a busy machine stretches wall much more than the work. ' +
      '"over bare" is the median of the case minus the median of the bare process.',
  )
  out.push('')
  out.push(coldstartSection(input.coldstart))
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
      'Floors: the same records through the logger alone, to /dev/null, same burst; for the client-direct contenders, the app alone: the same lines built and handed to a no-op. ' +
        'A transport for that logger (or a client fed by that app) cannot beat these; they bound what any ratio between transports of one logger can be. ' +
        'A floor\'s rate runs from the first log call to the end of its shutdown.',
    )
    out.push('')
    out.push(floors)
    out.push('')
  }
  if (p.warm && input.results.warm?.length) {
    out.push(`## Warm burst: the same ${num(p.warm.lines)} records, after a first burst in the same process`)
    out.push('')
    out.push(
      `${runsNote('warm')}. The process first logs ${num(p.warm.warmup)} records exactly as in the burst (ids the receiver does not count), waits until they are delivered (for a floor: written), idles 1 s, and only then starts the measured burst. ` +
        'A fresh process compiles the code a burst runs while it runs it (V8 compiles JavaScript and, for undici, its WebAssembly HTTP parser, on helper threads that share the core): this scenario shows the same ratios without that one-time work. ' +
        'CPU is the measured burst and shutdown only. The targets are judged on the burst above; these are informational.',
    )
    out.push('')
    out.push(warmTable(input.results.warm))
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
      '- The smoke run (`--smoke`) checks the harness: tiny sizes, every contender and floor in the burst, lokiwire only in the sustained and stall scenarios, cold start with 3 runs, full decoding of every body as a cross-check of the scanner; it writes to a temp file and exits non-zero if a lokiwire contender loses a line.',
      '- Floors (burst only) run the same records through pino or winston to /dev/null with no transport at all: the most any transport of that logger could reach. The app-alone floor builds the client-direct line for every record, in the same chunks and the same kind of process, and hands it to a function that only adds up the lines\' lengths (a no-op V8 cannot optimise away; reading the length does not flatten the string); it loads no logging library.',
      '- Cold start runs before every other scenario, while nothing the bench started is busy but the idle receiver; it ignores `--runs` (use `--set coldstart.runs=N`).',
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
