// lokiwire/pino-loki against the real pino-loki 3: the same records, logged through both with the
// same options, must reach Loki as the same streams, lines, timestamps and structured metadata.
// Both run as pino worker transports (the built package) and as in-process streams, each into a
// receiver of its own; the worker ones need `{ thread: true }`, since pino's transport.end()
// blocks this thread until the transport has delivered.
import { createRequire } from 'node:module'
import type { Writable } from 'node:stream'
import pino, { type Logger } from 'pino'
import { pinoLoki as realPinoLoki, type LokiOptions } from 'pino-loki'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { pinoLoki, pinoLokiStream, translatePinoLokiOptions, type PinoLokiOptions } from '../src/compat/pino-loki.js'
import { LokiOptionError } from '../src/model/errors.js'
import { createLokiTestServer, type LokiTestServer, type ReceivedEntry } from '../src/testing/index.js'
import { killAll, makeAppDir, removeAppDir, requireBuild, runChild } from './fixtures/app-dir.js'

const REAL_TARGET = createRequire(import.meta.url).resolve('pino-loki')
const OUR_TARGET = new URL('../dist/pino-loki/index.js', import.meta.url).pathname

/** One record of the corpus: the level method, the object, the message. */
type Call = [level: string, obj: Record<string, unknown>, msg?: string]

/** Logged once and shared, so both loggers serialise the same stack. */
const ERR = new TypeError('bad input')

/** Every kind of record the options act on; `seq` keeps each line distinct. */
function corpus(): Call[] {
  return [
    ['trace', { seq: 0 }, 'trace is debug to pino-loki'],
    ['debug', { seq: 1, service: 'api' }, 'debug'],
    ['info', { seq: 2, service: 'api', region: 'eu' }, 'props become labels'],
    ['warn', { seq: 3, region: 'us' }, 'warn is warning'],
    ['error', { seq: 4, err: ERR }, 'errors keep their stack'],
    ['fatal', { seq: 5 }, 'fatal is critical'],
    ['audit', { seq: 6, service: 'billing' }, 'a custom level levelMap names'],
    ['verbose', { seq: 7 }, 'a custom level nobody mapped is info'],
    ['info', { seq: 8, tags: ['a', 'b', ['c']], deep: { list: [1, { x: [2] }] } }, 'arrays, nested'],
    ['info', { seq: 9, meta: { requestId: 'r-9', count: 3, ok: true, ctx: { user: 'u1' }, ids: [1, 2] } }, 'metadata'],
    ['info', { seq: 10, ctx: { traceId: 't-10' }, meta: 'not an object' }, 'metadata under another key'],
    ['info', { seq: 11, req: { method: 'GET', url: '/x', headers: { 'user-agent': 'ua' } }, n: 1.5, nil: null }, 'nested objects'],
    ['warn', { seq: 12, service: '', region: 'ap', 'odd key': 'é "quoted" \\ \n' }, 'an empty prop is no label; odd characters'],
    ['info', { seq: 13, message: 'the message key' }],
    ['info', { seq: 14 }],
  ]
}

/** Logs the corpus with pino times that are the same on every run: start, start+1, ... ms. */
function logger(dest: pino.DestinationStream, start: number, extra: { messageKey?: string } = {}): Logger<'audit' | 'verbose'> {
  let t = start
  return pino<'audit' | 'verbose'>({ ...extra, level: 'trace', customLevels: { audit: 35, verbose: 25 }, timestamp: () => `,"time":${t++}` }, dest)
}

function logAll(log: Logger<'audit' | 'verbose'>): number {
  const calls = corpus()
  for (const [level, obj, msg] of calls) (log[level as 'info'] as (o: object, m?: string) => void).call(log, obj, msg)
  return calls.length
}

/** What Loki stored, in a form both sides can be compared in: by line, with the stream's labels. */
function stored(s: LokiTestServer): Array<Pick<ReceivedEntry, 'labels' | 'line' | 'timestamp' | 'metadata'>> {
  return s.entries
    .map((e) => ({ labels: e.labels, line: e.line, timestamp: e.timestamp, ...(e.metadata && Object.keys(e.metadata).length > 0 ? { metadata: e.metadata } : {}) }))
    .sort((a, b) => (a.line < b.line ? -1 : a.line > b.line ? 1 : 0))
}

function streamsOf(s: LokiTestServer): string[] {
  return [...new Set(s.entries.map((e) => e.stream))].sort()
}

let theirs: LokiTestServer
let ours: LokiTestServer

afterEach(async () => {
  await Promise.all([theirs?.close(), ours?.close()])
})

/** Ends a worker transport and waits until its thread has closed. */
async function endTransport(t: ReturnType<typeof pino.transport>): Promise<void> {
  const closed = new Promise<void>((resolve) => t.once('close', () => resolve()))
  t.end()
  await closed
}

async function threadReceivers(): Promise<void> {
  // The receiver thread runs the built entry; through a URL so type-checking does not need dist/.
  const built = new URL('../dist/testing/index.js', import.meta.url).href
  const { createLokiTestServer: create } = (await import(built)) as typeof import('../src/testing/index.js')
  theirs = await create({ thread: true })
  ours = await create({ thread: true })
}

/** Runs the corpus through pino-loki and lokiwire/pino-loki as worker transports with `options`. */
async function viaWorkers(options: Omit<LokiOptions, 'host'>, extra: { messageKey?: string } = {}): Promise<number> {
  await threadReceivers()
  const start = Date.now() - 60_000
  const realT = pino.transport({ target: REAL_TARGET, options: { host: theirs.url, ...options } })
  const ourT = pino.transport({ target: OUR_TARGET, options: { host: ours.url, ...options } })
  const n = logAll(logger(realT, start, extra))
  logAll(logger(ourT, start, extra))
  await Promise.all([endTransport(realT), endTransport(ourT)])
  // pino-loki's close() awaits its last push, but nothing waits for a push before it: give those time.
  await Promise.all([theirs.waitFor((s) => s.entries.length >= n, { timeoutMs: 20_000 }), ours.waitFor((s) => s.entries.length >= n, { timeoutMs: 20_000 })])
  return n
}

// pino-loki's own option type: what compiles against pino-loki compiles against lokiwire/pino-loki.
const EVERY_OPTION: Omit<LokiOptions, 'host'> = {
  labels: { app: 'compat', env: 'test' },
  propsToLabels: ['service', 'region'],
  // pino-loki types its values as its five names; any string works, and is sent as it is.
  levelMap: { 35: 'notice' as 'info', 50: 'error' },
  convertArrays: true,
  batching: { interval: 0.2, maxBufferSize: 1000 },
  timeout: 5000,
  silenceErrors: false,
}

describe('worker transport: the same data in Loki as pino-loki sends', () => {
  beforeAll(() => requireBuild('pino-loki/index.js', 'testing/index.js'))

  it('labels, propsToLabels, levelMap over custom levels, convertArrays, meta, errors: same streams, lines and timestamps', async () => {
    const n = await viaWorkers(EVERY_OPTION)
    expect(theirs.entries).toHaveLength(n)
    expect(ours.entries).toHaveLength(n)
    // The level names pino-loki uses, the hostname label, static labels and lifted props.
    expect(streamsOf(ours)).toEqual(streamsOf(theirs))
    const levels = new Set(ours.entries.map((e) => e.labels.level))
    expect([...levels].sort()).toEqual(['critical', 'debug', 'error', 'info', 'notice', 'warning'])
    expect(ours.entries.every((e) => typeof e.labels.hostname === 'string' && !e.line.includes('"hostname"'))).toBe(true)
    // Lines byte for byte (arrays as objects, the record without hostname), metadata from `meta`,
    // and the record's time: pino-loki sends milliseconds as nanoseconds, so does lokiwire here.
    // Metadata values are JSON as they are: convertArrays is for the line only, in both.
    expect(stored(ours)).toEqual(stored(theirs))
    const meta = ours.entries.find((e) => e.line.includes('"seq":9,'))!
    expect(meta.metadata).toEqual({ requestId: 'r-9', count: '3', ok: 'true', ctx: '{"user":"u1"}', ids: '[1,2]' })
  })

  it('defaults (no option but host): labels level and hostname, the record as the line, meta as metadata', async () => {
    const n = await viaWorkers({})
    expect(ours.entries).toHaveLength(n)
    expect(streamsOf(ours)).toEqual(streamsOf(theirs))
    expect(stored(ours)).toEqual(stored(theirs))
  })

  it('logFormat template, structuredMetaKey, messageKey, static hostname and level labels: same lines and streams', async () => {
    // Static `hostname` and `level` labels win over the record's in pino-loki: one stream here.
    const options: Omit<LokiOptions, 'host'> = {
      labels: { app: 'compat', hostname: 'web-1', level: 'any' },
      logFormat: '{time} {lokilevel} [{level}] {message} {req.method} {req.headers.user-agent} {tags[1]} {missing} {seq}',
      structuredMetaKey: 'ctx',
      propsToLabels: ['region'],
    }
    const n = await viaWorkers(options, { messageKey: 'message' })
    expect(ours.entries).toHaveLength(n)
    expect(streamsOf(ours)).toEqual(streamsOf(theirs))
    expect(stored(ours)).toEqual(stored(theirs))
    expect(streamsOf(ours)).toEqual(['{app="compat", hostname="web-1", level="any", region="ap"}', '{app="compat", hostname="web-1", level="any", region="eu"}', '{app="compat", hostname="web-1", level="any", region="us"}', '{app="compat", hostname="web-1", level="any"}'])
    expect(ours.entries.map((e) => e.line.split(' ')[1]).sort()).toContain('warning')
    expect(ours.entries.find((e) => e.line.endsWith(' 10'))!.metadata).toEqual({ traceId: 't-10' })
  })

  it('replaceTimestamp: the same streams and lines; both stamp the time they handle the record, not the time it holds', async () => {
    const before = BigInt(Date.now()) * 1_000_000n
    const n = await viaWorkers({ ...EVERY_OPTION, replaceTimestamp: true })
    const after = BigInt(Date.now()) * 1_000_000n
    expect(streamsOf(ours)).toEqual(streamsOf(theirs))
    const strip = (s: LokiTestServer) => stored(s).map(({ timestamp: _t, ...rest }) => rest)
    expect(strip(ours)).toEqual(strip(theirs))
    // Not comparable one to one: pino-loki stamps when a batch is sent, lokiwire when the line
    // arrives. Both are in the run's window, an hour after every record's own time.
    for (const s of [theirs, ours]) {
      expect(s.entries).toHaveLength(n)
      for (const e of s.entries) {
        expect(BigInt(e.timestamp) >= before && BigInt(e.timestamp) <= after, e.timestamp).toBe(true)
        expect(BigInt(e.timestamp) / 1_000_000n > BigInt((JSON.parse(e.line) as { time: number }).time) + 30_000n).toBe(true)
      }
    }
  })
})

describe('in-process factory: pino(pinoLoki(options))', () => {
  beforeAll(async () => {
    // Nothing blocks this thread in-process: receivers on it can answer.
  })

  it('batching off, no structured metadata, a logFormat function: the same streams, lines and timestamps', async () => {
    theirs = await createLokiTestServer()
    ours = await createLokiTestServer()
    const start = Date.now() - 60_000
    const format = (log: Record<string, unknown>) => `${String(log.lokilevel)}|${String(log.msg)}|${JSON.stringify(log.meta ?? null)}|${String(log.seq)}`
    const options: Omit<LokiOptions, 'host'> = { batching: false, structuredMetaKey: false, propsToLabels: ['service'], logFormat: format }
    const realS = realPinoLoki({ host: theirs.url, ...options })
    const ourS = pinoLoki({ host: ours.url, ...options })
    const n = logAll(logger(realS, start))
    logAll(logger(ourS, start))
    await theirs.waitFor((s) => s.entries.length >= n, { timeoutMs: 20_000 })
    await ours.waitFor((s) => s.entries.length >= n, { timeoutMs: 20_000 })
    expect(streamsOf(ours)).toEqual(streamsOf(theirs))
    expect(stored(ours)).toEqual(stored(theirs))
    expect(ours.entries.every((e) => e.metadata === undefined || Object.keys(e.metadata).length === 0)).toBe(true)
    await new Promise<void>((resolve) => (realS as Writable).end(resolve))
    await (ourS as ReturnType<typeof pinoLokiStream>).close()
  })

  it('the whole corpus with every option, through pinoLokiStream: the same as the worker gives pino-loki', async () => {
    theirs = await createLokiTestServer()
    ours = await createLokiTestServer()
    const start = Date.now() - 60_000
    const realS = realPinoLoki({ host: theirs.url, ...EVERY_OPTION })
    const ourS = pinoLokiStream({ host: ours.url, ...EVERY_OPTION })
    const n = logAll(logger(realS, start))
    logAll(logger(ourS, start))
    await new Promise<void>((resolve) => realS.end(resolve))
    const closed = await ourS.close()
    expect(closed.ok).toBe(true)
    await theirs.waitFor((s) => s.entries.length >= n, { timeoutMs: 20_000 })
    expect(ours.entries).toHaveLength(n)
    expect(streamsOf(ours)).toEqual(streamsOf(theirs))
    expect(stored(ours)).toEqual(stored(theirs))
  })
})

describe('options pino-loki takes and lokiwire reads its own way', () => {
  it('what Loki would refuse from pino-loki is mended: numbers and booleans as strings, bad names rewritten, level not lifted', async () => {
    ours = await createLokiTestServer()
    const s = pinoLokiStream({ host: ours.url, propsToLabels: ['n', 'flag', 'obj', 'req-id', 'level', 'req.method'], silenceErrors: true })
    pino(s).info({ n: 0, flag: false, obj: { a: 1 }, 'req-id': 'r1', req: { method: 'GET' } }, 'mended')
    const closed = await s.close()
    expect(closed.ok).toBe(true)
    expect(ours.entries).toHaveLength(1)
    const { hostname, ...labels } = ours.entries[0]!.labels
    expect(typeof hostname).toBe('string')
    expect(labels).toEqual({ level: 'info', n: '0', flag: 'false', req_id: 'r1', req_method: 'GET' })
  })

  it('translates to lokiwire/pino options: URL as pino-loki resolves it, seconds to ms, timeout capped', () => {
    const o = translatePinoLokiOptions({
      host: 'https://loki.example:3100/base/',
      endpoint: 'custom/push',
      timeout: 10_000_000,
      batching: { interval: 2 },
      silenceErrors: true,
      headers: { 'X-Scope-OrgID': 't1', 'content-type': 'text/plain' },
    }) as unknown as Record<string, unknown>
    expect(o.url).toBe('https://loki.example:3100/base/custom/push')
    expect(o.requestTimeoutMs).toBe(600_000)
    expect(o.batch).toEqual({ maxWaitMs: 2000 })
    expect(o.onFailure).toBe('silent')
    expect(o.headers).toEqual({ 'X-Scope-OrgID': 't1' })
    // pino-loki 2.x's `interval`, `batching: false`, and lokiwire's own options beside them.
    expect((translatePinoLokiOptions({ host: 'http://l', interval: 3 }) as { batch?: unknown }).batch).toEqual({ maxWaitMs: 3000 })
    // An unset timeout is pino-loki's 30 s, not lokiwire's 10 s; lokiwire's own option wins.
    expect(translatePinoLokiOptions({ host: 'http://l' }).requestTimeoutMs).toBe(30_000)
    expect(translatePinoLokiOptions({ host: 'http://l', timeout: 2500 }).requestTimeoutMs).toBe(2500)
    expect(translatePinoLokiOptions({ host: 'http://l', timeout: 2500, requestTimeoutMs: 700 }).requestTimeoutMs).toBe(700)
    expect((translatePinoLokiOptions({ host: 'http://l', batching: false }) as { batch?: unknown }).batch).toEqual({ maxWaitMs: 0 })
    const withSpool = translatePinoLokiOptions({ host: 'http://l', spool: { dir: '/tmp/x' }, retry: { maxAttempts: 3 } }) as unknown as Record<string, unknown>
    expect(withSpool.spool).toEqual({ dir: '/tmp/x' })
    expect(withSpool.retry).toEqual({ maxAttempts: 3 })
  })

  it.each([
    [{ host: 'http://l', timeout: 'soon' }, 'timeout'],
    [{ host: 'http://l', hots: 'typo' }, 'hots'],
    [{ host: 'not a url' }, 'host'],
    [{}, 'host'],
    [{ host: 'http://l', batching: 'yes' }, 'batching'],
    [{ host: 'http://l', levelMap: { 30: 7 } }, 'levelMap.30'],
    [{ host: 'http://l', propsToLabels: 'service' }, 'propsToLabels'],
    [{ host: 'http://l', logFormat: true }, 'logFormat'],
    [{ host: 'http://l', labels: { 'bad-name': 'x' } }, 'labels.bad-name'],
    [{ host: 'http://l', replaceTimestamp: 'yes' }, 'replaceTimestamp'],
  ])('in-process, a bad option is a LokiOptionError naming it: %j', (options, option) => {
    let err: unknown
    try {
      pinoLokiStream(options as unknown as PinoLokiOptions).destroy()
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(LokiOptionError)
    expect((err as LokiOptionError).option).toBe(option)
    expect((err as LokiOptionError).code).toBe('LOKI_INVALID_OPTION')
  })
})

describe('worker transport with a bad option: the host keeps running', () => {
  let dir: string | undefined
  let server: LokiTestServer | undefined
  beforeAll(() => {
    requireBuild('pino-loki/index.js', 'pino-loki/index.cjs')
    dir = makeAppDir(['pino-loki-app.mjs', 'pino-loki-wrapper.mjs'], ['pino'])
  })
  afterEach(async () => {
    killAll()
    await server?.close()
    server = undefined
  })
  afterAll(() => removeAppDir(dir))

  it.each([
    [{ timeout: 'soon' }, 'timeout'],
    [{ propsToLabel: ['service'] }, 'propsToLabel'],
  ])('%j: one line on stderr names it, the lines are discarded and counted, the exit is clean', async (extra, option) => {
    server = await createLokiTestServer()
    const r = await runChild(dir!, 'pino-loki-app.mjs', [server.url, '5', JSON.stringify(extra)], { timeoutMs: 20_000 }).result
    expect(r.killed).toBe(false)
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stderr.trimEnd().split('\n')
    expect(lines, r.stderr).toHaveLength(2)
    expect(lines[0]).toMatch(new RegExp(`^lokiwire/pino-loki: Invalid option "${option}": .*Fix it in the options of pino's transport \\{ target: 'lokiwire/pino-loki', options \\}`))
    expect(lines[1]).toBe(`lokiwire/pino-loki: discarded 5 log lines because of the invalid option "${option}"`)
    expect(server.requests).toHaveLength(0)
  })

  it('good options in a real application: the target string is all that changed, every line delivered', async () => {
    server = await createLokiTestServer()
    const r = await runChild(dir!, 'pino-loki-app.mjs', [server.url, '500', '{}'], { timeoutMs: 20_000 }).result
    expect(r.killed).toBe(false)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(server.entries).toHaveLength(500)
    expect(server.entries[0]!.labels).toMatchObject({ app: 'pino-loki-app', level: 'info' })
    expect(typeof server.entries[0]!.labels.hostname).toBe('string')
  })

  it("a module wrapping pinoLoki() for a logFormat function, as pino-loki's README shows: it runs in the worker and formats every line", async () => {
    server = await createLokiTestServer()
    const r = await runChild(dir!, 'pino-loki-app.mjs', [server.url, '50', '{}', 'wrapper'], { timeoutMs: 20_000 }).result
    expect(r.killed).toBe(false)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(server.entries.map((e) => e.line).sort()).toEqual(Array.from({ length: 50 }, (_, i) => `info line #${i}`).sort())
  })
})
