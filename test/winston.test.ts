// The winston transport with real winston and the test receiver: level sets, formats, lifted
// fields, shutdown through logger.end(), and a stalled Loki, in-process and in child processes.
import winston from 'winston'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { LokiTransport, type LokiBreakerNotice, type LokiDropSummary, type LokiTransportOptions } from '../src/adapters/winston.js'
import { createLokiTestServer, type LokiTestServer, type ReceivedEntry } from '../src/testing/index.js'
import { assertIdentity, waitUntil } from './helpers.js'
import { killAll, makeAppDir, removeAppDir, requireBuild, runChild, type ChildResult } from './fixtures/app-dir.js'

const { format } = winston
let server: LokiTestServer
const transports: LokiTransport[] = []

beforeAll(async () => {
  server = await createLokiTestServer()
})

afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.client.destroy()))
  server.reset()
})

afterAll(async () => {
  await server.close()
})

function transport(options: Partial<LokiTransportOptions> = {}): LokiTransport {
  const t = new LokiTransport({ url: server.url, labels: { app: 'api' }, onFailure: 'silent', ...options })
  transports.push(t)
  return t
}

/** The documented shutdown: end the logger, wait for its 'finish'. */
function end(logger: winston.Logger): Promise<void> {
  return new Promise((resolve) => {
    logger.once('finish', () => resolve())
    logger.end()
  })
}

const parsed = (e: ReceivedEntry) => JSON.parse(e.line) as Record<string, unknown>
const levelsOf = () => server.entries.map((e) => [parsed(e).message, e.labels.level])

describe('LokiTransport: levels and lines', () => {
  it("ships every line once; 'finish' after logger.end() means delivered", async () => {
    const t = transport()
    const logger = winston.createLogger({ transports: [t] })
    for (let seq = 0; seq < 3000; seq++) logger.info('hello', { seq })
    logger.warn('careful', { seq: 3000 })
    await end(logger)
    // No waiting beyond 'finish': the lines are at the receiver already.
    expect(server.entries).toHaveLength(3001)
    expect(new Set(server.entries.map((e) => parsed(e).seq)).size).toBe(3001)
    const warn = server.entries.find((e) => parsed(e).seq === 3000)!
    expect(warn.labels).toEqual({ app: 'api', level: 'warn' })
    // winston's default format is json(): the line is what it produced.
    expect(warn.line).toBe('{"level":"warn","message":"careful","seq":3000}')
    const s = t.client.stats()
    expect(s.state).toBe('closed')
    expect(s.dropped.total).toBe(0)
    assertIdentity(t.client)
    await server.waitFor((x) => x.connections.open === 0)
  })

  it('stamps a record whose timestamp Loki cannot hold with now instead of dropping it', async () => {
    const t = transport()
    const logger = winston.createLogger({ transports: [t] })
    const before = Date.now()
    logger.info('float', { timestamp: 1e30 })
    logger.info('big', { timestamp: 99999999999999999999 })
    logger.info('digits', { timestamp: '99999999999999999999' })
    await end(logger)
    expect(t.client.stats().dropped.total).toBe(0)
    expect(server.entries.map((e) => parsed(e).message).sort()).toEqual(['big', 'digits', 'float'])
    for (const e of server.entries) expect(Number(BigInt(e.timestamp) / 1_000_000n)).toBeGreaterThanOrEqual(before)
  })

  it('names levels of the npm, syslog, cli and custom sets', async () => {
    const sets: Array<[Record<string, number>, string[]]> = [
      [winston.config.npm.levels, ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']],
      [winston.config.syslog.levels, ['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug']],
      [winston.config.cli.levels, ['error', 'warn', 'help', 'data', 'info', 'debug', 'prompt', 'verbose', 'input', 'silly']],
      [{ critical: 0, routine: 1, chatter: 2 }, ['critical', 'routine', 'chatter']],
    ]
    for (const [levels, names] of sets) {
      const logger = winston.createLogger({ levels, level: names.at(-1), transports: [transport()] })
      for (const name of names) logger.log(name, name)
      await end(logger)
    }
    const expected = sets.flatMap(([, names]) => names.map((n) => [n, n]))
    expect(levelsOf().sort()).toEqual(expected.sort())
  })

  it("uses the format's output: simple, printf, colorize (the label stays the plain level name)", async () => {
    const cases: Array<[winston.Logform.Format, string]> = [
      [format.simple(), 'info: simple {"n":1}'],
      [format.printf((i) => `${i.level} | ${String(i.message)}`), 'info | printf'],
      [format.combine(format.colorize(), format.simple()), '\u001b[32minfo\u001b[39m: colorize {"n":1}'],
    ]
    for (const [fmt] of cases) {
      const logger = winston.createLogger({ format: fmt, transports: [transport()] })
      logger.info(fmt === cases[0]![0] ? 'simple' : fmt === cases[1]![0] ? 'printf' : 'colorize', { n: 1 })
      await end(logger)
    }
    expect(server.entries.map((e) => [e.line, e.labels.level]).sort()).toEqual(cases.map(([, line]) => [line, 'info']).sort())
  })

  it('sends the info object as JSON when no format produced a message, and applies a transport format', async () => {
    const bare = winston.createLogger({ format: format((info) => info)(), transports: [transport()] })
    bare.info('no MESSAGE', { n: 1n, nested: { ok: true } })
    await end(bare)
    const own = winston.createLogger({ transports: [transport({ format: format.printf((i) => `transport: ${String(i.message)}`) })] })
    own.info('formatted here')
    await end(own)
    const lines = server.entries.map((e) => e.line).sort()
    expect(lines).toEqual(['transport: formatted here', '{"n":"1","nested":{"ok":true},"level":"info","message":"no MESSAGE"}'].sort())
  })

  it("takes the timestamp from format.timestamp(), in ISO or a custom format, else now", async () => {
    const iso = winston.createLogger({ format: format.combine(format.timestamp(), format.json()), transports: [transport()] })
    iso.info('iso')
    await end(iso)
    const custom = winston.createLogger({ format: format.combine(format.timestamp({ format: 'YYYY-MM-DD HH:mm:ss.SSS' }), format.json()), transports: [transport()] })
    custom.info('custom')
    await end(custom)
    const before = Date.now()
    const none = winston.createLogger({ transports: [transport()] })
    none.info('none', { timestamp: 'not a time' })
    await end(none)
    const byMsg = Object.fromEntries(server.entries.map((e) => [parsed(e).message, { ms: Number(BigInt(e.timestamp) / 1_000_000n), ts: parsed(e).timestamp as string }]))
    expect(byMsg.iso!.ms).toBe(Date.parse(byMsg.iso!.ts))
    // The custom format has no zone: winston wrote local time, and it is read back as local time.
    expect(byMsg.custom!.ms).toBe(new Date(byMsg.custom!.ts.replace(' ', 'T')).getTime())
    expect(byMsg.none!.ms).toBeGreaterThanOrEqual(before)
  })

  it('honours the transport level and silent', async () => {
    const logger = winston.createLogger({ level: 'debug', transports: [transport({ level: 'warn' }), transport({ silent: true })] })
    logger.debug('d')
    logger.info('i')
    logger.warn('w')
    logger.error('e')
    await end(logger)
    expect(levelsOf().sort()).toEqual([['e', 'error'], ['w', 'warn']])
  })
})

describe('LokiTransport: labels, metadata and line options (shared with the pino adapter)', () => {
  it('lifts listed fields, defaultMeta included, into labels and metadata', async () => {
    const logger = winston.createLogger({
      defaultMeta: { service: 'billing' },
      transports: [transport({ labelsFrom: ['service', 'env'], metadataFrom: ['trace_id', 'user'] })],
    })
    logger.info('charged', { env: 'prod', trace_id: 'abc', user: { id: 7 }, path: '/x' })
    await end(logger)
    const [e] = server.entries
    expect(e!.labels).toEqual({ app: 'api', env: 'prod', level: 'info', service: 'billing' })
    expect(e!.metadata).toEqual({ trace_id: 'abc', user: '{"id":7}' })
    expect(parsed(e!)).toMatchObject({ path: '/x', service: 'billing' })
  })

  it("line 'message' and 'rest'; levelAs 'metadata'", async () => {
    const msg = winston.createLogger({ transports: [transport({ line: 'message' })] })
    msg.info('only this', { extra: 1 })
    await end(msg)
    const rest = winston.createLogger({ transports: [transport({ line: 'rest', levelAs: 'metadata', metadataFrom: ['req_id'] })] })
    rest.error('rest', { req_id: 'r1', kept: true })
    await end(rest)
    const byLine = server.entries.map((e) => [e.line, e.labels, e.metadata]).sort()
    expect(byLine).toEqual([
      ['only this', { app: 'api', level: 'info' }, undefined],
      ['{"kept":true,"message":"rest"}', { app: 'api' }, { level: 'error', req_id: 'r1' }],
    ].sort())
  })

  it('refuses bad adapter options at construction, before winston sees the transport', () => {
    expect(() => new LokiTransport({ url: server.url, labelsFrom: ['level'] })).toThrow(/levelAs/)
    expect(() => new LokiTransport({ url: server.url, levelAs: 'none' })).toThrow(/Invalid option "labels"/)
    expect(() => new LokiTransport({ url: 'nope' })).toThrow(/Invalid option "url"/)
  })
})

describe('LokiTransport: Loki failing', () => {
  it("a stalled Loki: 'finish' comes at the close deadline, the loss reported as 'lokiwire:drop' and 'warn', never 'error'", async () => {
    server.setFault({ type: 'stall' })
    // Requests would wait ten minutes: only the close deadline can bring 'finish' within the
    // test's timeout, so no upper bound on the clock is needed.
    const t = transport({ closeTimeoutMs: 300, requestTimeoutMs: 600_000, onFailure: 'stderr' })
    const logger = winston.createLogger({ transports: [t] })
    const warnings: LokiDropSummary[] = []
    const drops: LokiDropSummary[] = []
    logger.on('warn', (w: LokiDropSummary) => warnings.push(w))
    // The pino adapter's event, by the same name, on the transport.
    t.on('lokiwire:drop', (s: LokiDropSummary) => drops.push(s))
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      for (let seq = 0; seq < 100; seq++) logger.info('x', { seq })
      const started = Date.now()
      await end(logger)
      expect(Date.now() - started).toBeGreaterThanOrEqual(250)
      expect(warnings).toEqual([expect.objectContaining({ kind: 'drop', total: 100, dropped: { close_timeout: 100 } })])
      expect(drops).toEqual(warnings)
      expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain('lokiwire: dropped 100 log entries (close_timeout: 100)')
    } finally {
      stderr.mockRestore()
    }
    expect(t.client.stats()).toMatchObject({ state: 'closed', connections: 0 })
    assertIdentity(t.client)
    // Logging after the end is counted, not thrown: the logger has no 'error' listener.
    t.write({ level: 'info', message: 'late', [Symbol.for('level')]: 'info' })
    expect(t.client.stats().dropped.closed).toBe(1)
  })

  it("reports the breaker as 'lokiwire:breaker', as the pino adapter does", async () => {
    server.setFault({ type: 'status', status: 500 })
    const t = transport({ breaker: { volumeThreshold: 1, resetTimeoutMs: 60_000 }, retry: { minDelayMs: 1, maxDelayMs: 5 }, batch: { maxWaitMs: 0 } })
    const logger = winston.createLogger({ transports: [t] })
    const notices: LokiBreakerNotice[] = []
    t.on('lokiwire:breaker', (n: LokiBreakerNotice) => notices.push(n))
    logger.info('x')
    await waitUntil(() => notices.length > 0, 'the breaker notice', 10_000)
    expect(notices[0]).toMatchObject({ kind: 'breaker', state: 'open' })
    await t.client.destroy()
  })

  it('a burst larger than maxBufferBytes waits in the logger while Loki accepts: nothing refused', async () => {
    const t = transport({ maxBufferBytes: 256 * 1024, batch: { maxBytes: 64 * 1024 } })
    const logger = winston.createLogger({ transports: [t] })
    for (let seq = 0; seq < 20_000; seq++) logger.info('burst', { seq })
    await end(logger)
    expect(t.client.stats().dropped.total).toBe(0)
    expect(server.entries).toHaveLength(20_000)
    expect(new Set(server.entries.map((e) => parsed(e).seq)).size).toBe(20_000)
  })

  it('a burst followed by a long synchronous stretch still waits for Loki: a late hold timer is not a stalled Loki', async () => {
    const t = transport({ maxBufferBytes: 2 * 1024 * 1024 })
    const logger = winston.createLogger({ transports: [t] })
    for (let seq = 0; seq < 40_000; seq++) logger.info('burst', { seq })
    // The app's own work keeps the loop away longer than the gate's hold: nothing could be
    // delivered meanwhile, so nothing must be given up on.
    const until = Date.now() + 1500
    while (Date.now() < until) {
      // busy
    }
    await end(logger)
    expect(t.client.stats().dropped).toMatchObject({ total: 0 })
    expect(server.entries).toHaveLength(40_000)
    expect(new Set(server.entries.map((e) => parsed(e).seq)).size).toBe(40_000)
    assertIdentity(t.client)
  })

  it('with Loki stalled the logger stops waiting: the buffer limit holds, refusals are counted', async () => {
    server.setFault({ type: 'stall' })
    // As above, only the gate's bounded wait and the close deadline can end this in time.
    const t = transport({ maxBufferBytes: 256 * 1024, batch: { maxBytes: 64 * 1024 }, closeTimeoutMs: 200, requestTimeoutMs: 600_000 })
    const logger = winston.createLogger({ transports: [t] })
    let peak = 0
    t.client.on('drop', () => (peak = Math.max(peak, t.client.stats().bufferUsedBytes)))
    for (let seq = 0; seq < 20_000; seq++) logger.info('burst', { seq })
    // One bounded wait for progress (about a second), then the close deadline.
    await end(logger)
    const s = t.client.stats()
    expect(s.dropped.buffer_full).toBeGreaterThan(0)
    expect(s.dropped.buffer_full + s.dropped.close_timeout).toBe(20_000)
    expect(peak).toBeLessThanOrEqual(256 * 1024)
    assertIdentity(t.client)
  })

  it('logger.close() and logger.remove() end the transport; its finish means delivered', async () => {
    const a = transport()
    const logger = winston.createLogger({ transports: [a] })
    logger.info('before close')
    const finished = new Promise<void>((resolve) => a.once('finish', () => resolve()))
    logger.close()
    await finished
    expect(server.entries.map((e) => e.line)).toEqual(['{"level":"info","message":"before close"}'])
    const b = transport()
    const other = winston.createLogger({ transports: [b] })
    other.info('before remove')
    const removed = new Promise<void>((resolve) => b.once('finish', () => resolve()))
    other.remove(b)
    await removed
    expect(server.entries).toHaveLength(2)
    expect(b.client.stats().state).toBe('closed')
  })
})

describe('LokiTransport in child processes', () => {
  let dir: string | undefined
  beforeAll(() => {
    requireBuild('winston/index.js', 'winston/index.cjs')
    dir = makeAppDir(['winston-app.mjs', 'winston-app.cjs'], ['winston'])
  })
  afterEach(() => killAll())
  afterAll(() => removeAppDir(dir))

  const expectCleanExit = (r: ChildResult) => {
    expect(r.killed, `child had to be killed; stderr: ${r.stderr}`).toBe(false)
    expect(r.code, r.stderr).toBe(0)
  }
  const seqs = () => new Set(server.entries.map((e) => parsed(e).seq))

  it('ESM, logger.end(): every line delivered when the logger finishes', async () => {
    const r = await runChild(dir!, 'winston-app.mjs', ['end', server.url, '5000'], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    expect(r.messages.find((m) => m.finished !== undefined)?.stats).toMatchObject({ entries: 5000 })
    expect(server.entries).toHaveLength(5000)
    expect(seqs().size).toBe(5000)
  })

  it("ESM, natural exit without end(): delivered by the client's exit flush, nothing kept alive", async () => {
    // Close and request deadlines far past the 15 s kill: a process that waited for either
    // instead of ending once the lines were delivered would be killed. No clock needed.
    const opts = JSON.stringify({ closeTimeoutMs: 60_000, requestTimeoutMs: 60_000 })
    const r = await runChild(dir!, 'winston-app.mjs', ['natural', server.url, '2000', opts], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    expect(seqs().size).toBe(2000)
  })

  it('logger.end() with a stalled Loki: the process ends at the close deadline', async () => {
    server.setFault({ type: 'stall' })
    // Requests would wait ten minutes, past the 15 s kill: exiting on its own means the close
    // deadline ended them.
    const opts = JSON.stringify({ closeTimeoutMs: 800, requestTimeoutMs: 600_000 })
    const r = await runChild(dir!, 'winston-app.mjs', ['end', server.url, '500', opts], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    expect(r.exitedAt - (r.messages.find((m) => m.lastLogAt)!.lastLogAt as number)).toBeGreaterThanOrEqual(700)
    expect(r.messages.some((m) => m.warn === 'drop')).toBe(true)
    expect(r.stderr).toContain('close_timeout: 500')
  })

  it('CommonJS: require("lokiwire/winston"), timestamp format, end()', async () => {
    const r = await runChild(dir!, 'winston-app.cjs', [server.url, '1000'], { timeoutMs: 15_000 }).result
    expectCleanExit(r)
    expect(seqs().size).toBe(1000)
    const e = server.entries[0]!
    expect(Number(BigInt(e.timestamp) / 1_000_000n)).toBe(Date.parse(parsed(e).timestamp as string))
    expect(e.labels).toEqual({ app: 'winston-app-cjs', level: 'info' })
  })
})
