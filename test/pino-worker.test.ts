// pino's worker transport, `transport: { target: 'lokiwire/pino' }`, in real child processes
// with the built package installed in their node_modules. What is proved is shutdown: every line
// delivered exactly once when Loki is healthy, and no process kept alive past the close deadline
// when it is not.
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { killAll, makeAppDir, removeAppDir, requireBuild, runChild, type ChildResult } from './fixtures/app-dir.js'

let dir: string | undefined
let server: LokiTestServer

beforeAll(() => {
  requireBuild('pino/index.js', 'pino/index.cjs')
  dir = makeAppDir(['pino-app.mjs', 'pino-app.cjs', 'pino-preload-app.mjs', 'pino-preload-probe.mjs'], ['pino'])
})

afterEach(async () => {
  killAll()
  await server?.close()
})

afterAll(() => removeAppDir(dir))

async function start(): Promise<LokiTestServer> {
  server = await createLokiTestServer()
  return server
}

/** Asserts the receiver holds seq 0..n-1 exactly once each. */
function expectExactlyOnce(s: LokiTestServer, n: number): void {
  const seqs = s.entries.map((e) => (JSON.parse(e.line) as { seq: number }).seq)
  const distinct = new Set(seqs)
  expect(s.duplicates).toBe(0)
  expect(seqs.length).toBe(n)
  expect(distinct.size).toBe(n)
  // A loop, not Math.min(...distinct): spreading a set of 100k+ values overflows the stack.
  let min = Infinity
  let max = -Infinity
  for (const seq of distinct) {
    if (seq < min) min = seq
    if (seq > max) max = seq
  }
  expect(min).toBe(0)
  expect(max).toBe(n - 1)
}

function expectCleanExit(r: ChildResult): void {
  expect(r.killed, `child had to be killed; stderr: ${r.stderr}`).toBe(false)
  expect(r.code, `stderr: ${r.stderr}`).toBe(0)
}

function lastLogAt(r: ChildResult): number {
  const m = r.messages.find((x) => typeof x.lastLogAt === 'number')
  if (m === undefined) throw new Error(`no lastLogAt message; stderr: ${r.stderr}`)
  return m.lastLogAt as number
}

describe('pino worker transport: healthy Loki', () => {
  it('ESM app, natural exit: every line delivered once, and the process ends soon after the last log', async () => {
    const s = await start()
    const r = await runChild(dir!, 'pino-app.mjs', ['natural', s.url, '5000'], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    expectExactlyOnce(s, 5000)
    const e = s.entries[0]!
    expect(e.labels).toEqual({ app: 'pino-app', level: 'info' })
    // The record's own time, in nanoseconds (plus a sub-millisecond tiebreak the client adds).
    expect(BigInt(e.timestamp) / 1_000_000n).toBe(BigInt((JSON.parse(e.line) as { time: number }).time))
    // Not a speed claim: delivery has to finish within the 5 s close deadline or lines would be
    // missing above. This separates a worker that closed from one thread-stream gave up on after
    // 10 s, which exits quietly with code 0.
    expect(r.exitedAt - lastLogAt(r)).toBeLessThan(9000)
    expect(r.stderr).toBe('')
  })

  it('CommonJS app, process.exit() right after 10,000 lines: all of them delivered', async () => {
    const s = await start()
    const r = await runChild(dir!, 'pino-app.cjs', ['worker-exit', s.url, '10000'], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    expectExactlyOnce(s, 10_000)
    expect(s.entries[0]!.labels).toEqual({ app: 'pino-app-cjs', level: 'info' })
  })

  it('a burst far larger than maxBufferBytes, then process.exit(): the worker pushes back, nothing refused', async () => {
    const s = await start()
    const opts = JSON.stringify({ maxBufferBytes: 512 * 1024, batch: { maxBytes: 128 * 1024 } })
    const r = await runChild(dir!, 'pino-app.mjs', ['exit', s.url, '30000', opts], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    expectExactlyOnce(s, 30_000)
    expect(r.stderr).toBe('')
  })

  it('SIGTERM with the documented pattern (stop producing, process.exit) delivers every line', async () => {
    const s = await start()
    // At most 10,000 lines: a producer that outran a slow machine's receiver would leave more for
    // the close deadline than it can deliver.
    const app = runChild(dir!, 'pino-app.mjs', ['sigterm', s.url, '10000'], { timeoutMs: 15_000 })
    await app.message((m) => m.ready === true)
    // Let it log a few thousand lines first; waiting on the receiver, not on a clock.
    await s.waitFor((x) => x.entries.length >= 2000, { timeoutMs: 10_000 })
    app.child.kill('SIGTERM')
    const r = await app.result
    expectCleanExit(r)
    const logged = r.messages.find((m) => typeof m.logged === 'number')!.logged as number
    expect(logged).toBeGreaterThan(2000)
    expectExactlyOnce(s, logged)
  })

  it('logger.flush(cb) calls back only once the lines are at the receiver', async () => {
    const s = await start()
    const app = runChild(dir!, 'pino-app.mjs', ['flush', s.url, '3000'], { timeoutMs: 15_000 })
    await app.message((m) => typeof m.flushed === 'number')
    // The receiver stores entries before answering, and the callback waits for that answer.
    expectExactlyOnce(s, 3000)
    expectCleanExit(await app.result)
  })

  it("names custom levels from pino's level table and ships nothing below the logger's level", async () => {
    const s = await start()
    const r = await runChild(dir!, 'pino-app.mjs', ['levels', s.url, '0'], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    const bySeq = new Map(s.entries.map((e) => [(JSON.parse(e.line) as { seq: number }).seq, e.labels.level]))
    expect(Object.fromEntries(bySeq)).toEqual({ 1: 'info', 2: 'audit', 3: 'fatal' })
  })
})

describe('pino worker transport: start-up', () => {
  it('the worker loads the HTTP stack and the compressor before it reports ready, not in the first burst', async () => {
    const s = await start()
    const reportFile = join(dir!, `preload-${process.pid}.json`)
    const r = await runChild(dir!, 'pino-preload-app.mjs', [s.url, reportFile], { timeoutMs: 60_000 }).result
    expectCleanExit(r)
    // Loaded during start-up: nothing before the destination was made, both once it was ready.
    expect(r.messages).toContainEqual({ before: [], ready: ['snappy', 'undici'] })
    expect(s.entries.map((e) => JSON.parse(e.line).msg)).toEqual(['after ready'])
  })
})

describe('pino worker transport: Loki failing', () => {
  it('stalled Loki, natural exit: the process ends at the close deadline, the loss reported', async () => {
    const s = await start()
    s.setFault({ type: 'stall' })
    // Requests would wait ten minutes, so only the close deadline can end them; no clock needed
    // for the upper side: a close that ignored its deadline would never print the drop report
    // checked below (thread-stream gives up on it after 10 s and the process exits silently).
    const opts = JSON.stringify({ closeTimeoutMs: 1000, requestTimeoutMs: 600_000 })
    const r = await runChild(dir!, 'pino-app.mjs', ['natural', s.url, '2000', opts], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    expect(r.exitedAt - lastLogAt(r)).toBeGreaterThanOrEqual(900)
    expect(s.entries).toHaveLength(0)
    expect(r.stderr).toMatch(/lokiwire: dropped 2000 log entries \(close_timeout: 2000\)/)
  })

  it('stalled Loki, process.exit(): bounded by the close deadline as well', async () => {
    const s = await start()
    s.setFault({ type: 'stall' })
    const opts = JSON.stringify({ closeTimeoutMs: 1000, requestTimeoutMs: 600_000 })
    const r = await runChild(dir!, 'pino-app.mjs', ['exit', s.url, '2000', opts], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    expect(r.stderr).toMatch(/close_timeout: 2000/)
  })

  it('rejected lines reach the main thread as lokiwire:drop events; onFailure silent keeps stderr clean', async () => {
    const s = await start()
    s.setFault({ type: 'status', status: 400, body: 'entry too far behind' })
    const opts = JSON.stringify({ onFailure: 'silent', batch: { maxWaitMs: 10 } })
    const app = runChild(dir!, 'pino-app.mjs', ['flush', s.url, '100', opts], { timeoutMs: 15_000 })
    const drop = await app.message((m) => m.event === 'drop')
    expect(drop.dropped).toEqual({ rejected: 100 })
    expect(drop.message).toMatch(/entry too far behind/)
    const r = await app.result
    expectCleanExit(r)
    expect(r.stderr).toBe('')
    // The report went to the listener, never into the logger: nothing but the 100 lines was sent.
    expect(s.requests.reduce((n, q) => n + q.entries, 0)).toBe(100)
  })
})
