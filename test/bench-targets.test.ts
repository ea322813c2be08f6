// The benchmark's target verdicts, judged on made-up runs: each rule sits exactly where the
// speed issue puts it, and a lossy or failed run never meets a target. The harness itself is
// exercised end to end by `node bench/run.mjs --smoke`.
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'

const BENCH_LIB = join(resolve(import.meta.dirname, '..'), 'bench', 'lib')

type Run = Record<string, unknown>
type Results = { burst: Run[]; warm?: Run[]; sustained: Run[]; stall: Run[] }
type Coldstart = { runs: number; cases: Run[]; firstSend: Run[] }
let targets: (results: Results, coldstart?: Coldstart) => string
let coldstartOrder: (cases: { id: string }[], runs: number) => { run: number; case: { id: string } }[]

beforeAll(async () => {
  // Imported by URL: the harness is plain .mjs outside the typed sources.
  ;({ targets } = await import(pathToFileURL(join(BENCH_LIB, 'report.mjs')).href))
  ;({ coldstartOrder } = await import(pathToFileURL(join(BENCH_LIB, 'coldstart.mjs')).href))
})

/** Three burst runs of one contender with the given medians. */
function burst(contender: string, o: { rate: number; cpu?: number; growth?: number; lost?: number; status?: string }): Run[] {
  return [0.9, 1, 1.1].map((f, i) => ({
    contender,
    scenario: 'burst',
    status: i === 0 && o.status ? o.status : 'ok',
    lost: i === 0 ? (o.lost ?? 0) : 0,
    duplicates: 0,
    deliveredPerSec: o.rate * f,
    loggingMs: 100,
    cpuMsPer100k: (o.cpu ?? 100) * f,
    rssGrowthPeakMB: (o.growth ?? 10) * f,
    wireBytesPerLine: 9,
  }))
}

/** A run where every target holds by a margin; each test moves one figure. */
function baseline(): Record<string, Run[]> {
  return {
    'floor-pino-worker': burst('floor-pino-worker', { rate: 700_000 }),
    'floor-winston': burst('floor-winston', { rate: 450_000 }),
    'floor-app-alone': burst('floor-app-alone', { rate: 4_000_000 }),
    'lokiwire-pino-worker': burst('lokiwire-pino-worker', { rate: 500_000, cpu: 100, growth: 20 }),
    'lokiwire-winston': burst('lokiwire-winston', { rate: 440_000, cpu: 100, growth: 20 }),
    'lokiwire-client-protobuf': burst('lokiwire-client-protobuf', { rate: 2_500_000, cpu: 100, growth: 20 }),
    'pino-loki-worker': burst('pino-loki-worker', { rate: 160_000, cpu: 600, growth: 300 }),
    'winston-loki-protobuf': burst('winston-loki-protobuf', { rate: 150_000, cpu: 650, growth: 210 }),
  }
}

function verdicts(runs: Record<string, Run[]>, coldstart?: Coldstart): Map<string, string> {
  const md = targets({ burst: Object.values(runs).flat(), sustained: [], stall: [] }, coldstart)
  const rows = new Map<string, string>()
  for (const line of md.split('\n').slice(2)) {
    const cells = line.split(' | ')
    rows.set(cells[0]!.replace(/^\| /, ''), cells.at(-1)!.replace(/ \|$/, ''))
  }
  return rows
}

const row = (rows: Map<string, string>, start: string) => {
  const key = [...rows.keys()].find((k) => k.startsWith(start))
  expect(key, `no target row starting '${start}' in ${[...rows.keys()].join(' / ')}`).toBeDefined()
  return rows.get(key!)
}

describe('burst targets against floors of the same run', () => {
  it('meets every target in the baseline', () => {
    const rows = verdicts(baseline())
    for (const start of ['Pino worker burst', 'winston (lokiwire LokiTransport) burst', 'Client direct (protobuf) burst', 'CPU per line', 'Peak RSS growth']) {
      expect(row(rows, start), start).toBe('**met**')
    }
  })

  it.each([
    ['Pino worker burst', 'lokiwire-pino-worker', 'floor-pino-worker', 0.6],
    ['winston (lokiwire LokiTransport) burst', 'lokiwire-winston', 'floor-winston', 0.92],
    ['Client direct (protobuf) burst', 'lokiwire-client-protobuf', 'floor-app-alone', 0.5],
  ])('%s (%s): met at exactly its share of %s, not met just below', (start, id, floor, share) => {
    const runs = baseline()
    const floorRate = 1_000_000
    runs[floor] = burst(floor, { rate: floorRate })
    runs[id] = burst(id, { rate: share * floorRate, cpu: 100, growth: 20 })
    expect(row(verdicts(runs), start)).toBe('**met**')
    runs[id] = burst(id, { rate: share * floorRate - 1, cpu: 100, growth: 20 })
    expect(row(verdicts(runs), start)).toBe('**not met**')
  })

  it('a lost line or a failed run never meets a rate target', () => {
    const runs = baseline()
    runs['lokiwire-pino-worker'] = burst('lokiwire-pino-worker', { rate: 700_000, lost: 1 })
    runs['lokiwire-winston'] = burst('lokiwire-winston', { rate: 450_000, status: 'timed out' })
    const rows = verdicts(runs)
    expect(row(rows, 'Pino worker burst')).toBe('**not met**')
    expect(row(rows, 'winston (lokiwire LokiTransport) burst')).toBe('**not met**')
  })

  it('the pino worker row shows its main-thread logging time beside the floor\'s', () => {
    const md = targets({ burst: Object.values(baseline()).flat(), sustained: [], stall: [] })
    expect(md).toMatch(/Pino worker burst.*main thread logging 100 ms \(floor 100 ms\)/)
  })

  it('CPU per line: every lokiwire contender against a third of the cheapest lossless incumbent', () => {
    const runs = baseline()
    // pino-loki is cheaper but lost lines: winston-loki (650) is the reference, a third is 216.7.
    runs['pino-loki-worker'] = burst('pino-loki-worker', { rate: 160_000, cpu: 300, growth: 300, lost: 5 })
    runs['lokiwire-winston'] = burst('lokiwire-winston', { rate: 440_000, cpu: 216, growth: 20 })
    expect(row(verdicts(runs), 'CPU per line')).toBe('**met**')
    runs['lokiwire-winston'] = burst('lokiwire-winston', { rate: 440_000, cpu: 217, growth: 20 })
    expect(row(verdicts(runs), 'CPU per line')).toBe('**not met**')
  })

  it('peak RSS growth: every lokiwire contender against a third of the leanest lossless incumbent', () => {
    const runs = baseline()
    // The leanest is winston-loki, 210 MB: a third is 70.
    runs['lokiwire-pino-worker'] = burst('lokiwire-pino-worker', { rate: 500_000, cpu: 100, growth: 70 })
    expect(row(verdicts(runs), 'Peak RSS growth')).toBe('**met**')
    runs['lokiwire-pino-worker'] = burst('lokiwire-pino-worker', { rate: 500_000, cpu: 100, growth: 70.5 })
    expect(row(verdicts(runs), 'Peak RSS growth')).toBe('**not met**')
  })
})

describe('over the logger alone', () => {
  it('subtracts each contender\'s floor and compares with the cheapest lossless incumbent measured the same way, never as a verdict', () => {
    const runs = baseline()
    runs['floor-app-alone'] = burst('floor-app-alone', { rate: 4_000_000, cpu: 20, growth: 5 })
    runs['floor-pino-worker'] = burst('floor-pino-worker', { rate: 700_000, cpu: 100, growth: 40 })
    runs['floor-winston'] = burst('floor-winston', { rate: 450_000, cpu: 500, growth: 60 })
    runs['lokiwire-client-protobuf'] = burst('lokiwire-client-protobuf', { rate: 2_500_000, cpu: 120, growth: 55 })
    runs['lokiwire-pino-worker'] = burst('lokiwire-pino-worker', { rate: 500_000, cpu: 145, growth: 70 })
    runs['lokiwire-winston'] = burst('lokiwire-winston', { rate: 440_000, cpu: 530, growth: 80 })
    // Whole process, pino-loki is the cheaper incumbent (600 < 650); over its floor, winston-loki
    // is (650 - 500 = 150 against 600 - 100 = 500), and it is the reference here.
    runs['pino-loki-worker'] = burst('pino-loki-worker', { rate: 160_000, cpu: 600, growth: 300 })
    runs['winston-loki-protobuf'] = burst('winston-loki-protobuf', { rate: 150_000, cpu: 650, growth: 210 })
    const md = targets({ burst: Object.values(runs).flat(), sustained: [], stall: [] })
    expect(md).toMatch(
      /\| CPU per line, over the logger alone \(informational\)[^|]*\| lokiwire pino worker \('lokiwire\/pino'\) 45; lokiwire winston \(LokiTransport\) 30; lokiwire client \(protobuf\) 100 ms\/100k lines; cheapest lossless incumbent 150 \(winston-loki \(protobuf\) over winston → a stream that discards\); worst ratio 0\.67 \| informational \|/,
    )
    expect(md).toMatch(
      /\| Peak RSS growth, over the logger alone \(informational\)[^|]*\| lokiwire pino worker \('lokiwire\/pino'\) 30\.0; lokiwire winston \(LokiTransport\) 20\.0; lokiwire client \(protobuf\) 50\.0 MB; cheapest lossless incumbent 150\.0 \(winston-loki \(protobuf\) over winston → a stream that discards\); worst ratio 0\.33 \| informational \|/,
    )
    // The verdict stays with the whole-process row: lokiwire winston's 530 is over 600 / 3.
    expect(row(verdicts(runs), 'CPU per line ≤')).toBe('**not met**')
  })

  it('leaves out a contender whose floor did not run, and a lossy incumbent as the reference', () => {
    const runs = baseline()
    delete runs['floor-app-alone']
    runs['winston-loki-protobuf'] = burst('winston-loki-protobuf', { rate: 150_000, cpu: 150, growth: 210, lost: 3 })
    const md = targets({ burst: Object.values(runs).flat(), sustained: [], stall: [] })
    const cpu = md.split('\n').find((l) => l.startsWith('| CPU per line, over the logger alone'))
    expect(cpu).toBeDefined()
    expect(cpu).not.toContain('lokiwire client')
    expect(cpu).toContain('lokiwire pino worker')
    expect(cpu).toContain("cheapest lossless incumbent 500 (pino-loki (worker, target 'pino-loki') over pino → /dev/null (worker, target 'pino/file'))")
  })
})

describe('warm burst', () => {
  it('reports each floor ratio of the warm process beside the target, never as a verdict, and leaves the verdicts to the burst', () => {
    const cold = baseline()
    cold['lokiwire-pino-worker'] = burst('lokiwire-pino-worker', { rate: 350_000 }) // 50 % of its floor: not met
    const warm = [...burst('lokiwire-pino-worker', { rate: 455_000 }), ...burst('floor-pino-worker', { rate: 700_000 })]
    const md = targets({ burst: Object.values(cold).flat(), warm, sustained: [], stall: [] })
    expect(md).toMatch(/\| Pino worker burst, warm process \(informational\)[^|]*\| 455,000 vs 700,000 lines\/s = 65 %; lost 0 \| informational \|/)
    expect(md).toMatch(/\| Pino worker burst: [^|]*\| [^|]* \| \*\*not met\*\* \|/)
    // No warm row for a transport whose floor was not run warm.
    expect(md).not.toMatch(/winston \(lokiwire LokiTransport\) burst, warm process/)
  })
})

describe('cold start', () => {
  const runs = 7
  function coldstart(overWallMs: number, overRssMB: number, status = 'ok'): Coldstart {
    const cases: Run[] = []
    for (let run = 1; run <= runs; run++) {
      const jitter = (run - 4) * 3
      cases.push({ id: 'bare', run, status: 'ok', wallMs: 100 + jitter, maxRssMB: 40 })
      cases.push({ id: 'lokiwire-esm', run, status: run === 1 ? status : 'ok', wallMs: 100 + overWallMs + jitter, maxRssMB: 40 + overRssMB })
      cases.push({ id: 'lokiwire-cjs', run, status: 'ok', wallMs: 300, maxRssMB: 70 })
    }
    const firstSend = [{ run: 1, status: 'ok', lost: 0, firstMs: 30, secondMs: 3, firstRssGrowthMB: 5, peakOverImportMB: 35 }]
    return { runs, cases, firstSend }
  }

  it('import(lokiwire) is judged by its medians over a bare node: +60 ms and +8 MB are the budget', () => {
    expect(row(verdicts(baseline(), coldstart(60, 8)), 'Cold start')).toBe('**met**')
    expect(row(verdicts(baseline(), coldstart(61, 8)), 'Cold start')).toBe('**not met**')
    expect(row(verdicts(baseline(), coldstart(60, 8.1)), 'Cold start')).toBe('**not met**')
    // require('lokiwire') is shown, not judged.
    expect(targets({ burst: [], sustained: [], stall: [] }, coldstart(10, 1))).toMatch(/`require\('lokiwire'\)` \+200 ms, \+30.0 MB/)
  })

  it('a cold start process that failed is no verdict', () => {
    expect(row(verdicts(baseline(), coldstart(10, 1, 'exited 1')), 'Cold start')).toBe('n/a')
  })

  it('the first send is reported, never judged', () => {
    expect(row(verdicts(baseline(), coldstart(10, 1)), 'First send')).toBe('informational')
  })

  it('runs every case once per round, in an order rotated each round', () => {
    const cases = ['bare', 'a', 'b'].map((id) => ({ id }))
    const order = coldstartOrder(cases, 3)
    expect(order.map((o) => `${o.run}${o.case.id}`)).toEqual(['1bare', '1a', '1b', '2a', '2b', '2bare', '3b', '3bare', '3a'])
  })
})
