// lokiwire/winston-loki against the real winston-loki 6: one winston logger feeds both
// transports the same info objects, each transport ships to a receiver of its own, and the
// stored streams (label sets), lines, metadata and timestamps are compared entry by entry.
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import winston from 'winston'
import TransportStream from 'winston-transport'
import { afterEach, describe, expect, it } from 'vitest'
import LokiTransport, { type WinstonLokiOptions } from '../src/compat/winston-loki.js'
import { ErrorCodes, LokiError, LokiOptionError } from '../src/model/errors.js'
import { createLokiTestServer, type LokiTestServer, type ReceivedEntry } from '../src/testing/index.js'
import { requireBuild } from './fixtures/app-dir.js'

const require = createRequire(import.meta.url)
/** The incumbent, as its users load it. */
const WinstonLoki = require('winston-loki') as new (options: Record<string, unknown>) => TransportStream & {
  flush(): Promise<unknown>
  close(): Promise<void>
}

const { format } = winston
const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function receiver(): Promise<LokiTestServer> {
  const srv = await createLokiTestServer()
  cleanup.push(() => srv.close())
  return srv
}

/** One record the corpus logs; `n` makes its line unique, so entries pair up by line. */
type Log = (logger: winston.Logger, n: number) => void

const RECORDS: Record<string, Log> = {
  plain: (l, n) => l.info(`plain #${n}`),
  meta: (l, n) => l.info(`meta #${n}`, { a: 1, nested: { b: [1, 2] }, s: 'x', flag: true }),
  metaError: (l, n) => l.error(`err #${n}`, new Error('boom')),
  bareError: (l, n) => l.error(new Error(`bare #${n}`)),
  errorField: (l, n) => l.warn(`error field #${n}`, { err: new Error('inner'), code: 'E1' }),
  splat: (l, n) => l.warn(`splat %s %d #${n}`, 'str', 42, { extra: true }),
  objectMessage: (l, n) => l.info({ message: `object message #${n}`, k: 'v' }),
  recordLabels: (l, n) => l.info(`record labels #${n}`, { labels: { module: 'db' } }),
  meta2: (l, n) => l.log('info', `region #${n}`, { region: 'eu', user_id: 7, retry: false }),
  emptyMessage: (l, n) => l.info('', { n }),
  unicode: (l, n) => l.info(`héllo € 😀 "quoted" \\ #${n}`, { s: 'Zoë\n' }),
  // A time of its own, a minute old (unless a timestamp format replaces it): replaceTimestamp
  // decides whether it is the entry's.
  ownTime: (l, n) => l.info(`own time #${n}`, { timestamp: new Date(Date.now() - 60_000).toISOString() }),
}
const ALL = Object.keys(RECORDS)

interface Scenario {
  name: string
  /** winston-loki options, the same for both transports but `host`. */
  options: Omit<WinstonLokiOptions, 'host'>
  /** The logger's format. */
  loggerFormat?: winston.Logform.Format
  records?: string[]
  /** Rounds over the records. */
  rounds?: number
}

/** Logs the corpus through one logger into both transports, slowly enough for the incumbent. */
async function feed(s: Scenario, incumbent: TransportStream, ours: TransportStream): Promise<number> {
  const logger = winston.createLogger({ level: 'silly', ...(s.loggerFormat ? { format: s.loggerFormat } : {}), transports: [incumbent, ours] })
  let n = 0
  for (let round = 0; round < (s.rounds ?? 2); round++) {
    for (const name of s.records ?? ALL) {
      RECORDS[name]!(logger, n++)
      // One record per turn of the event loop: winston-loki sends without batching at once, and
      // a burst of its unbatched pushes is what it is least made for.
      await new Promise((r) => setImmediate(r))
    }
  }
  return n
}

const ms = (e: ReceivedEntry) => Number(BigInt(e.timestamp) / 1_000_000n)

/** Both receivers hold `count` entries; each side's entries keyed by line, which is unique per record. */
async function stored(a: LokiTestServer, b: LokiTestServer, count: number): Promise<[Map<string, ReceivedEntry>, Map<string, ReceivedEntry>]> {
  await a.waitFor((s) => s.entries.length >= count, { timeoutMs: 60_000 })
  await b.waitFor((s) => s.entries.length >= count, { timeoutMs: 60_000 })
  const byLine = (srv: LokiTestServer) => new Map(srv.entries.map((e) => [e.line, e]))
  const [ma, mb] = [byLine(a), byLine(b)]
  expect(a.entries).toHaveLength(count)
  expect(b.entries).toHaveLength(count)
  expect(ma.size).toBe(count)
  return [ma, mb]
}

/**
 * Runs a scenario through both transports and compares what the receivers stored. `adjust`
 * rewrites the incumbent's labels where lokiwire differs on purpose (each caller says why).
 */
async function compare(s: Scenario, adjust: (labels: Record<string, string>) => Record<string, string> = (l) => l): Promise<Map<string, ReceivedEntry>> {
  const [theirs, mine] = [await receiver(), await receiver()]
  // gracefulShutdown: false keeps async-exit-hook's signal handlers out of the test process.
  const incumbent = new WinstonLoki({ batching: false, ...s.options, gracefulShutdown: false, host: theirs.url })
  const ours = new LokiTransport({ ...s.options, host: mine.url, gracefulShutdown: false })
  cleanup.push(async () => void (await incumbent.close()), () => ours.client.destroy())
  const before = Date.now()
  const count = await feed(s, incumbent, ours)
  const after = Date.now()
  const [a, b] = await stored(theirs, mine, count)
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort())
  for (const [line, e] of a) {
    const m = b.get(line)!
    expect(m.labels, line).toEqual(adjust({ ...e.labels }))
    expect(m.metadata, line).toEqual(e.metadata)
    if (s.options.replaceTimestamp === false) {
      // The record's own time: winston-loki sends milliseconds, lokiwire keeps them.
      expect(ms(m), line).toBe(ms(e))
    } else {
      // Both stamp the time of log(): the same call, but the clock may tick between the two
      // transports, so each is checked against the feeding window instead of the other.
      for (const t of [ms(e), ms(m)]) {
        expect(t).toBeGreaterThanOrEqual(before)
        expect(t).toBeLessThanOrEqual(after)
      }
    }
  }
  await ours.close()
  expect(ours.client.stats().dropped.total).toBe(0)
  return b
}

/** winston-loki's protobuf selector prints a missing `label` as the word: lokiwire sends no `job` then. */
const noUndefinedJob = (l: Record<string, string>) => {
  if (l.job === 'undefined') delete l.job
  return l
}

describe('lokiwire/winston-loki stores what winston-loki 6 stores', () => {
  it("defaults with winston's label: job from label, level label, `message {rest}` lines, time of logging", async () => {
    const stored = await compare({ name: 'defaults', options: {}, loggerFormat: format.combine(format.label({ label: 'svc' }), format.timestamp(), format.splat()) })
    // Spot checks, so the comparison cannot pass on two equally wrong sides.
    const plain = stored.get('plain #0 {"level":"info"}')!
    expect(plain.labels).toEqual({ job: 'svc', level: 'info' })
    expect(stored.get(`record labels #7 {"level":"info"}`)!.labels).toEqual({ job: 'svc', level: 'info', module: 'db' })
    expect([...stored.keys()].some((l) => l.startsWith('splat str 42 #5 {'))).toBe(true)
  })

  it('no labels and no winston label: the level label alone (winston-loki adds job="undefined" over protobuf)', async () => {
    const stored = await compare({ name: 'bare', options: {} }, noUndefinedJob)
    expect(stored.get('plain #0 {"level":"info"}')!.labels).toEqual({ level: 'info' })
  })

  it("labels replace job; replaceTimestamp: false keeps the record's timestamp", async () => {
    await compare({
      name: 'labels',
      options: { labels: { app: 'api', env: 'test', shard: 3 }, replaceTimestamp: false },
      loggerFormat: format.combine(format.label({ label: 'ignored' }), format.timestamp()),
    })
  })

  it('replaceTimestamp: false with a custom timestamp format, read as local time by both', async () => {
    await compare({
      name: 'custom time',
      options: { labels: { app: 'api' }, replaceTimestamp: false },
      loggerFormat: format.timestamp({ format: 'YYYY-MM-DD HH:mm:ss.SSS' }),
      records: ['plain', 'meta'],
    })
  })

  it('json: true sends JSON with every meta field as structured metadata', async () => {
    const stored = await compare({ name: 'json', options: { json: true }, loggerFormat: format.combine(format.label({ label: 'svc' }), format.splat()) })
    const meta = [...stored.values()].find((e) => e.line.startsWith('meta #'))!
    expect(meta.metadata).toEqual({ a: '1', nested: '{"b":[1,2]}', s: 'x', flag: 'true', level: 'info' })
  })

  it('a transport format makes the line what the formats wrote', async () => {
    await compare({
      name: 'format',
      options: { format: format.printf((info) => `${info.level}|${String(info.message)}|${JSON.stringify({ a: info.a, n: info.n })}`), labels: { app: 'fmt' } },
      loggerFormat: format.splat(),
      // A logged Error's message is not enumerable, so a transport format (which works on a copy)
      // sees none: its lines would not tell the records apart.
      records: ALL.filter((r) => r !== 'bareError'),
    })
    await compare({ name: 'json format', options: { format: format.json() }, records: ALL.filter((r) => r !== 'bareError') }, noUndefinedJob)
  })

  it('useWinstonMetaAsLabels with ignoredMeta: meta fields are labels, ignored ones leave labels and line', async () => {
    const stored = await compare(
      {
        name: 'meta as labels',
        options: { useWinstonMetaAsLabels: true, ignoredMeta: ['user_id'], labels: { app: 'ignored-here' } },
        loggerFormat: format.label({ label: 'svc' }),
        // No Error records: winston-loki writes label values into its protobuf selector unescaped,
        // so a stack trace as a label breaks its push (lokiwire escapes them and would store it).
        records: ['plain', 'meta', 'splat', 'objectMessage', 'recordLabels', 'meta2', 'emptyMessage'],
      },
      (l) => {
        // winston-loki sends an object's toString() as a label value; lokiwire lifts no objects.
        for (const k of Object.keys(l)) if (l[k] === '[object Object]') delete l[k]
        return l
      },
    )
    const region = [...stored.values()].find((e) => e.line.startsWith('region #'))!
    expect(region.labels).toEqual({ level: 'info', region: 'eu', retry: 'false' })
    expect(region.line).toMatch(/^region #\d+ \{"region":"eu","retry":false,"level":"info"\}$/)
  })

  it('batching with an interval delivers the same entries', async () => {
    await compare({ name: 'batching', options: { batching: true, interval: 0.05, replaceTimestamp: false, labels: { app: 'b' } }, loggerFormat: format.timestamp() })
  })
})

describe('lokiwire/winston-loki options', () => {
  it('host with a path prefix, basicAuth and headers reach Loki as winston-loki sends them', async () => {
    const [theirs, mine] = [await receiver(), await receiver()]
    const options = { basicAuth: 'user:pa:ss', headers: { 'X-Custom': 'yes', 'X-Num': 7 }, labels: { app: 'auth' } }
    const incumbent = new WinstonLoki({ ...options, batching: false, gracefulShutdown: false, host: `${theirs.url}/prefix` })
    const ours = new LokiTransport({ ...options, host: `http://someone:else@${mine.url.slice('http://'.length)}/prefix/` })
    cleanup.push(async () => void (await incumbent.close()), () => ours.client.destroy())
    // The receiver serves no prefix: both pushes are refused (404), which both report.
    const quiet = console.error
    console.error = () => {}
    try {
      winston.createLogger({ transports: [incumbent, ours] }).info('hello')
      await theirs.waitFor((s) => s.requests.some((r) => r.status !== 0), { timeoutMs: 30_000 })
      await ours.close()
    } finally {
      console.error = quiet
    }
    const [a, b] = [theirs.requests[0]!, mine.requests[0]!]
    expect(b.path).toBe('/prefix/loki/api/v1/push')
    expect(b.path).toBe(a.path)
    for (const h of ['authorization', 'x-custom', 'x-num']) expect(b.headers[h], h).toBe(a.headers[h])
    expect(b.headers.authorization).toBe(`Basic ${Buffer.from('user:pa:ss').toString('base64')}`)
  })

  it('onConnectionError is called with a LokiError for each failed push; lokiwire retries and delivers', async () => {
    const [theirs, mine] = [await receiver(), await receiver()]
    theirs.queueFaults({ type: 'status', status: 500, body: 'down' })
    mine.queueFaults({ type: 'status', status: 500, body: 'down' })
    const seen: { theirs: unknown[]; mine: unknown[] } = { theirs: [], mine: [] }
    const incumbent = new WinstonLoki({ batching: false, gracefulShutdown: false, host: theirs.url, onConnectionError: (e: unknown) => seen.theirs.push(e) })
    const ours = new LokiTransport({
      host: mine.url,
      onConnectionError: (e) => {
        seen.mine.push(e)
        throw new Error('a throwing callback must not reach the host')
      },
    })
    cleanup.push(async () => void (await incumbent.close()), () => ours.client.destroy())
    const logger = winston.createLogger({ transports: [incumbent, ours] })
    const quiet = console.error
    console.error = () => {} // winston-loki prints the failed push itself
    try {
      logger.info('after a 500')
      await ours.flush({ timeoutMs: 30_000 })
      await incumbent.flush()
    } finally {
      console.error = quiet
    }
    expect(seen.theirs).toHaveLength(1)
    expect(seen.mine).toHaveLength(1)
    const err = seen.mine[0] as LokiError
    expect(err).toBeInstanceOf(LokiError)
    expect(err.code).toBe(ErrorCodes.HTTP_STATUS)
    expect((err as LokiError & { status: number }).status).toBe(500)
    // winston-loki drops an unbatched push that failed; lokiwire retried it.
    expect(theirs.entries).toHaveLength(0)
    expect(mine.entries.map((e) => e.line)).toEqual(['after a 500 {"level":"info"}'])
  })

  it('a record winston-loki cannot serialise (a cycle in its meta) is shipped, not thrown into the host', async () => {
    const mine = await receiver()
    const ours = new LokiTransport({ host: mine.url, useWinstonMetaAsLabels: true, json: true })
    cleanup.push(() => ours.client.destroy())
    const cyclic: Record<string, unknown> = { region: 'eu' }
    cyclic.self = cyclic
    const logger = winston.createLogger({ transports: [ours] })
    logger.info('cycle', cyclic)
    logger.info('labels not an object', { labels: 'db' })
    await ours.close()
    expect(mine.entries.map((e) => [e.line, e.labels])).toEqual([
      ['cycle {"region":"eu","self":{"region":"eu","self":"[Circular]"},"level":"info"}', { level: 'info', region: 'eu' }],
      ['labels not an object {"level":"info"}', { level: 'info' }],
    ])
    expect(mine.entries[0]!.metadata).toEqual({ region: 'eu', self: '{"region":"eu","self":"[Circular]"}', level: 'info' })
  })

  it('takes every option winston-loki 6 declares', async () => {
    const declared = readFileSync(require.resolve('winston-loki/index.d.ts'), 'utf8')
    const body = /interface LokiTransportOptions[^{]*\{([^}]*)\}/.exec(declared)![1]!
    const names = [...body.matchAll(/^\s*(\w+)\??\s*[:(]/gm)].map((m) => m[1]!)
    expect(names.length).toBeGreaterThan(15)
    const values: Record<string, unknown> = {
      host: 'http://127.0.0.1:9',
      basicAuth: 'u:p',
      headers: { 'X-A': 'b' },
      interval: 2,
      json: true,
      batching: true,
      labels: { app: 'x' },
      clearOnError: true,
      replaceTimestamp: false,
      gracefulShutdown: false,
      timeout: 500,
      httpAgent: false,
      httpsAgent: new https.Agent({ rejectUnauthorized: false }),
      useWinstonMetaAsLabels: false,
      ignoredMeta: ['a'],
      onConnectionError: () => {},
    }
    expect(names.filter((n) => !(n in values))).toEqual([])
    const t = new LokiTransport(values as unknown as WinstonLokiOptions)
    expect(t).toBeInstanceOf(TransportStream)
    await t.close()
  })

  it.each<[string, Record<string, unknown>, string, string]>([
    ['no host', { host: undefined }, 'host', ErrorCodes.INVALID_URL],
    ['host without scheme', { host: 'loki:3100' }, 'host', ErrorCodes.INVALID_URL],
    ['host not a URL', { host: 'not a url' }, 'host', ErrorCodes.INVALID_URL],
    ['basicAuth without a colon', { basicAuth: 'secret' }, 'basicAuth', ErrorCodes.INVALID_OPTION],
    ['basicAuth not a string', { basicAuth: { user: 'u' } }, 'basicAuth', ErrorCodes.INVALID_OPTION],
    ['a label value that is an object', { labels: { app: {} } }, 'labels.app', ErrorCodes.INVALID_OPTION],
    ['an invalid label name', { labels: { 'my-app': 'x' } }, 'labels.my-app', ErrorCodes.INVALID_OPTION],
    ['interval not a number', { interval: 'soon' }, 'interval', ErrorCodes.INVALID_OPTION],
    ['interval zero', { interval: 0 }, 'interval', ErrorCodes.INVALID_OPTION],
    ['timeout negative', { timeout: -1 }, 'timeout', ErrorCodes.INVALID_OPTION],
    ['json not a boolean', { json: 'yes' }, 'json', ErrorCodes.INVALID_OPTION],
    ['ignoredMeta not an array', { ignoredMeta: 'a' }, 'ignoredMeta', ErrorCodes.INVALID_OPTION],
    ['onConnectionError not a function', { onConnectionError: 'log' }, 'onConnectionError', ErrorCodes.INVALID_OPTION],
    ['httpsAgent of the wrong type', { httpsAgent: 'agent' }, 'httpsAgent', ErrorCodes.INVALID_OPTION],
    ['a header with a newline', { headers: { 'X-A': 'a\nb' } }, 'headers.X-A', ErrorCodes.INVALID_OPTION],
    ['a typo', { lables: { app: 'x' } }, 'lables', ErrorCodes.INVALID_OPTION],
  ])('%s: a LokiOptionError at construction', (_name, options, option, code) => {
    let caught: unknown
    try {
      new LokiTransport({ host: 'http://127.0.0.1:9', ...options } as WinstonLokiOptions)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(LokiOptionError)
    expect((caught as LokiOptionError).option).toBe(option)
    expect((caught as LokiOptionError).code).toBe(code)
    // The credentials of basicAuth and of a URL never show in a message.
    expect((caught as Error).message).not.toContain('secret')
  })
})

describe('lokiwire/winston-loki exports', () => {
  it("require() returns the class, as require('winston-loki') does; import's default is a class too", async () => {
    requireBuild('winston-loki/index.cjs', 'winston-loki/index.js')
    const required = require('lokiwire/winston-loki') as typeof LokiTransport
    expect(typeof required).toBe('function')
    expect(required.name).toBe('LokiTransport')
    const imported = ((await import('lokiwire/winston-loki')) as { default: typeof LokiTransport }).default
    expect(typeof imported).toBe('function')
    for (const Cls of [required, imported]) {
      const t = new Cls({ host: 'http://127.0.0.1:9', gracefulShutdown: false })
      expect(t).toBeInstanceOf(TransportStream)
      await t.close()
    }
  })
})
