// The pino adapter in-process (`pino(lokiStream(options))`) with real pino and the test receiver,
// and the record mapping both adapters share.
import pino from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { lokiStream, type LokiPinoOptions, type LokiPinoStream } from '../src/adapters/pino.js'
import { RecordMapper, resolveMapping } from '../src/records/mapping.js'
import { safeJson } from '../src/model/metadata.js'
import { readRecordTime } from '../src/model/timestamp.js'
import { createLokiTestServer, type LokiTestServer, type ReceivedEntry } from '../src/testing/index.js'
import type { LogEntry } from '../src/model/types.js'
import { assertIdentity } from './helpers.js'
import { killAll, makeAppDir, removeAppDir, requireBuild, runChild } from './fixtures/app-dir.js'

let server: LokiTestServer
const streams: LokiPinoStream[] = []

beforeAll(async () => {
  server = await createLokiTestServer()
})

afterEach(async () => {
  await Promise.all(streams.splice(0).map((s) => s.destroy()))
  server.reset()
})

afterAll(async () => {
  await server.close()
})

function open(options: Partial<LokiPinoOptions> = {}): LokiPinoStream {
  const s = lokiStream({ url: server.url, labels: { app: 'api' }, onFailure: 'silent', ...options })
  streams.push(s)
  return s
}

async function closeAndCheck(s: LokiPinoStream): Promise<void> {
  const r = await s.close()
  expect(r.ok).toBe(true)
  expect(r.droppedEntries).toBe(0)
  assertIdentity(s.client)
}

const parsed = (e: ReceivedEntry) => JSON.parse(e.line) as Record<string, unknown>

describe('lokiStream: lines, levels, timestamps', () => {
  it('ships every line once, the whole record as written, with the level as a label', async () => {
    const s = open()
    const logger = pino(s)
    for (let seq = 0; seq < 3000; seq++) logger.info({ seq }, 'hello')
    logger.warn({ seq: 3000 }, 'careful')
    await closeAndCheck(s)
    expect(server.entries).toHaveLength(3001)
    expect(new Set(server.entries.map((e) => parsed(e).seq)).size).toBe(3001)
    const warn = server.entries.find((e) => parsed(e).seq === 3000)!
    expect(warn.labels).toEqual({ app: 'api', level: 'warn' })
    expect(warn.metadata).toBeUndefined()
    expect(parsed(warn)).toMatchObject({ level: 40, msg: 'careful', seq: 3000 })
    expect(warn.line.endsWith('\n')).toBe(false)
    expect(BigInt(warn.timestamp) / 1_000_000n).toBe(BigInt(parsed(warn).time as number))
    // close() released the connection: nothing of the client's stays open at the receiver.
    await server.waitFor((x) => x.connections.open === 0)
  })

  it("names pino's levels and the logger's custom levels, from the table pino hands the stream", async () => {
    const s = open()
    const logger = pino({ level: 'trace', customLevels: { audit: 35, notice: 33 } }, s)
    logger.trace('t')
    logger.debug('d')
    logger.info('i')
    logger.notice('n')
    logger.audit('a')
    logger.warn('w')
    logger.error('e')
    logger.fatal('f')
    await closeAndCheck(s)
    expect(server.entries.map((e) => [parsed(e).msg, e.labels.level])).toEqual([
      ['t', 'trace'], ['d', 'debug'], ['i', 'info'], ['n', 'notice'], ['a', 'audit'], ['w', 'warn'], ['e', 'error'], ['f', 'fatal'],
    ])
  })

  it('useOnlyCustomLevels, and the customLevels option behind a wrapper stream', async () => {
    const only = open()
    const a = pino({ customLevels: { low: 10, high: 90 }, useOnlyCustomLevels: true, level: 'low' }, only)
    a.low('l')
    a.high('h')
    await closeAndCheck(only)
    // A wrapper that does not pass pino's level table on: the option names the level instead.
    const wrapped = open({ customLevels: { audit: 35 } })
    const b = pino({ customLevels: { audit: 35, odd: 37 } }, { writable: true, write: (line: string) => wrapped.write(line) } as unknown as pino.DestinationStream)
    b.audit('a')
    b.odd('o')
    await closeAndCheck(wrapped)
    expect(server.entries.map((e) => [parsed(e).msg, e.labels.level])).toEqual([
      ['l', 'low'], ['h', 'high'], ['a', 'audit'], ['o', '37'],
    ])
  })

  it("takes the time from the record in each of pino's time formats, else now", async () => {
    const formats = {
      epoch: pino.stdTimeFunctions.epochTime,
      unix: pino.stdTimeFunctions.unixTime,
      iso: pino.stdTimeFunctions.isoTime,
      isoNano: pino.stdTimeFunctions.isoTimeNano,
      none: false as const,
    }
    const s = open()
    const before = Date.now()
    for (const [name, timestamp] of Object.entries(formats)) pino({ timestamp }, s).info(name)
    await closeAndCheck(s)
    const ts = Object.fromEntries(server.entries.map((e) => [parsed(e).msg, { ns: BigInt(e.timestamp), time: parsed(e).time }]))
    expect(ts.epoch!.ns / 1_000_000n).toBe(BigInt(ts.epoch!.time as number))
    expect(ts.unix!.ns / 1_000_000_000n).toBe(BigInt(ts.unix!.time as number))
    expect(Number(ts.iso!.ns / 1_000_000n)).toBe(Date.parse(ts.iso!.time as string))
    // Nanoseconds kept as pino wrote them, not cut to milliseconds.
    const nano = /\.(\d{9})Z$/.exec(ts.isoNano!.time as string)![1]!
    expect(ts.isoNano!.ns % 1_000_000_000n).toBe(BigInt(nano))
    expect(ts.none!.time).toBeUndefined()
    expect(Number(ts.none!.ns / 1_000_000n)).toBeGreaterThanOrEqual(before)
  })

  it('stamps a record whose time Loki cannot hold (1e30, 99999999999999999999, a 30-digit head) with now instead of dropping it', async () => {
    const s = open()
    const before = Date.now()
    const log = pino({ base: null }, s)
    log.info({ time: 1e30 }, 'float')
    log.info({ time: 99999999999999999999 }, 'big')
    log.info({ time: '99999999999999999999' }, 'digits')
    log.info({ time: new Date(8.64e15) }, 'date')
    // pino's own head carries the time: the fast path that skips JSON.parse reads it.
    const head = pino({ base: null, timestamp: () => ',"time":123456789012345678901234567890' }, s)
    head.info('head')
    await closeAndCheck(s)
    expect(s.client.stats().dropped.total).toBe(0)
    const got = Object.fromEntries(server.entries.map((e) => [parsed(e).msg, Number(BigInt(e.timestamp) / 1_000_000n)]))
    expect(Object.keys(got).sort()).toEqual(['big', 'date', 'digits', 'float', 'head'])
    for (const ms of Object.values(got)) expect(ms).toBeGreaterThanOrEqual(before)
  })

  it('ships a line that is not JSON as it is, with level unknown, and joins lines split across writes', async () => {
    const s = open()
    s.write('plain text, no JSON\n{"broken json\n')
    s.write('{"level":30,"msg":"split ')
    s.write('across writes"}\n')
    // UTF-8 cut inside a character between two Buffer writes.
    const bytes = Buffer.from('{"level":40,"msg":"é€"}\n')
    s.write(bytes.subarray(0, 21))
    s.write(bytes.subarray(21))
    s.write('no newline at the end')
    await closeAndCheck(s)
    expect(server.entries.map((e) => [e.line, e.labels.level]).sort()).toEqual([
      ['no newline at the end', 'unknown'],
      ['plain text, no JSON', 'unknown'],
      ['{"broken json', 'unknown'],
      ['{"level":30,"msg":"split across writes"}', 'info'],
      ['{"level":40,"msg":"é€"}', 'warn'],
    ])
  })

  it('an overlong line without its newline is one entry, cut to maxLineBytes as the client cuts any line', async () => {
    const s = open()
    const head = '{"level":50,"time":1700000000000,"msg":"'
    s.write(head)
    // 5 MiB of one line in pipe-sized writes, then its end and one more line.
    const chunk = 'x'.repeat(64 * 1024)
    for (let i = 0; i < 80; i++) s.write(chunk)
    s.write('"}\n{"level":30,"msg":"next"}\n')
    await closeAndCheck(s)
    const lines = server.entries.map((e) => e.line)
    // The splitter keeps the line's start and skips its tail: no second entry made of the tail.
    expect(lines).toHaveLength(2)
    const cut = server.entries.find((e) => e.line.startsWith(head))!
    expect(Buffer.byteLength(cut.line)).toBe(256 * 1024)
    // No longer JSON, but its head still names its level and time.
    expect(cut.labels.level).toBe('error')
    expect(cut.timestamp).toBe('1700000000000000000')
    expect(s.client.stats().truncated).toBe(1)
    expect(lines).toContain('{"level":30,"msg":"next"}')
  })
})

/** What a logger writes, one line each, without the newlines. */
function written(log: (dest: pino.DestinationStream) => void): string[] {
  const lines: string[] = []
  log({ writable: true, write: (l: string) => void lines.push(l.replace(/\n$/, '')) } as pino.DestinationStream)
  return lines
}

/** Entries a stream pushes to its client for `lines`, with how many JSON.parse calls each took. */
function mapLines(s: LokiPinoStream, lines: readonly string[]): { entries: unknown[]; parses: number[] } {
  // Lines mapped from pino's head reach the client through pushLine(), without an entry object:
  // recorded as the entry push() would have had.
  const entries: unknown[] = []
  vi.spyOn(s.client, 'push').mockImplementation((e) => {
    entries.push(e)
    return true
  })
  vi.spyOn(s.client, 'pushLine').mockImplementation((line, labels, timestamp) => {
    entries.push({ line, labels, metadata: undefined, timestamp })
    return true
  })
  const parse = vi.spyOn(JSON, 'parse')
  const parses: number[] = []
  try {
    for (const line of lines) {
      parse.mockClear()
      s.write(line + '\n')
      parses.push(parse.mock.calls.length)
    }
  } finally {
    parse.mockRestore()
  }
  return { entries, parses }
}

describe("lokiStream: lines in pino's default form are read from their head", () => {
  // A field no line has: the mapping then reads the record, so every line is parsed, while the
  // entries it makes are the same as without it. That is the reference the head must match.
  const parseAll = { metadataFrom: ['not_in_any_line'] }
  const customLevels = { audit: 35 }

  /** [what, line, read from its head without JSON.parse] */
  const table: [string, string, boolean][] = []
  const add = (what: string, lines: string[], head: boolean) => {
    if (lines.length === 0) throw new Error(`${what}: nothing written`)
    for (const [i, l] of lines.entries()) table.push([`${what} ${i}`, l, head])
  }
  add('default', written((d) => {
    const log = pino(d)
    log.info({ seq: 1, user: 'u1' }, 'request handled')
    log.warn('careful')
    log.error(new Error('boom'))
    log.info({ req: { method: 'GET', headers: { host: 'x' } }, list: [1, { a: null }], ok: true }, 'nested')
    log.info({ who: 'Zoë' }, 'héllo € 😀 日本')
    log.child({ service: 'billing' }).info({ quote: 'say "hi"', path: 'C:\\tmp' }, 'escapes')
  }), true)
  add('custom levels', written((d) => {
    const log = pino({ customLevels: { audit: 35, odd: 37 } }, d)
    log.audit('named by the option')
    log.odd('named by nobody')
  }), true)
  add('epochTime', written((d) => pino({ timestamp: pino.stdTimeFunctions.epochTime }, d).info('ms')), true)
  add('unixTime', written((d) => pino({ timestamp: pino.stdTimeFunctions.unixTime }, d).info('seconds')), true)
  add('isoTime', written((d) => pino({ timestamp: pino.stdTimeFunctions.isoTime }, d).info('iso')), false)
  add('isoTimeNano', written((d) => pino({ timestamp: pino.stdTimeFunctions.isoTimeNano }, d).info('iso')), false)
  add('no time', written((d) => pino({ timestamp: false }, d).info('none')), false)
  add('formatters.level', written((d) => pino({ formatters: { level: (label) => ({ level: label }) } }, d).info('named')), false)
  add('only level and time', written((d) => pino({ base: null }, d).info({})), false)
  // pino writes a record's own level or time after its head; JSON.parse keeps the last.
  add('own level and time', written((d) => {
    const log = pino(d)
    log.info({ time: 5 }, 'own time')
    log.info({ level: 'custom' }, 'own level')
    log.child({ time: 7 }).info('binding')
    pino({ mixin: () => ({ level: 50 }) }, d).info('mixin')
  }), false)
  add('control character', written((d) => pino(d).info('bell\u0007')), false)
  add('a value "time"', written((d) => pino(d).info({ unit: 'time' }, 'x')), false)
  add('hand-written, read from the head', [
    '{"level":30,"time":1700000000000,"msg":"x"}',
    '{"level":99,"time":1700000000000,"msg":"unnamed level"}',
    '{"level":30,"time":1700000000,"msg":"seconds"}',
    '{"level":30,"time":1700000000000123,"msg":"microseconds"}',
    '{"level":30,"time":1700000000000123456,"msg":"nanoseconds, past exact doubles"}',
    // Cut short, or with blanks after the object: what JSON.parse refuses keeps its head, and
    // what it reads holds no later level or time.
    '{"level":30,"time":1700000000000,"msg":"cut sho',
    '{"level":30,"time":1700000000000,"msg":"trailing space"} ',
  ], true)
  add('hand-written, parsed', [
    '{"level":30,"time":01700000000000,"msg":"leading zero"}',
    '{"level":30,"time":1700000000000.5,"msg":"fraction"}',
    '{"level":30,"time":1.7e12,"msg":"exponent"}',
    '{"level":-30,"time":1700000000000,"msg":"sign"}',
    '{"level":30,"time":1700000000000,"level" :50,"msg":"spaced key"}',
    '{"level":30,"time":1700000000000,"\\u006cevel":50,"msg":"escaped key"}',
    '{"level" :30,"time":1700000000000,"msg":"spaced head"}',
  ], false)

  for (const levelAs of ['label', 'metadata', 'none'] as const) {
    it(`gives the entries JSON.parse gives, levelAs '${levelAs}'`, () => {
      const lines = table.map(([, line]) => line)
      const fast = mapLines(open({ levelAs, customLevels }), lines)
      const slow = mapLines(open({ levelAs, customLevels, ...parseAll }), lines)
      expect(slow.parses.every((n) => n === 1)).toBe(true)
      table.forEach(([what, , head], i) => {
        expect(fast.entries[i], what).toEqual(slow.entries[i])
        expect(fast.parses[i], what).toBe(head ? 0 : 1)
      })
    })
  }

  it('names the level through the same table and keeps the line and time exactly', () => {
    const lines = [
      '{"level":30,"time":1700000000000,"msg":"a"}',
      '{"level":35,"time":1700000000000,"msg":"b"}',
      '{"level":30,"time":1700000000,"msg":"c"}',
      '{"level":30,"time":1700000000000,"msg":"parsed: a later time","time":1700000000000}',
    ]
    const { entries, parses } = mapLines(open({ customLevels }), lines)
    const [a, b, c, d] = entries as LogEntry[]
    expect(parses).toEqual([0, 0, 0, 1])
    expect(a).toEqual({ line: lines[0], labels: { level: 'info' }, timestamp: 1_700_000_000_000 })
    expect(b).toEqual({ line: lines[1], labels: { level: 'audit' }, timestamp: 1_700_000_000_000 })
    expect(c).toEqual({ line: lines[2], labels: { level: 'info' }, timestamp: 1_700_000_000_000 })
    // One cached label object per level, whichever way the line was read.
    expect(c!.labels).toBe(a!.labels)
    expect(d!.labels).toBe(a!.labels)
  })

  it("a level table pino sends later names the next line's level, whatever the line before it was named", () => {
    const s = open()
    const line = '{"level":35,"time":1700000000000,"msg":"a"}'
    const before = mapLines(s, [line, line]).entries as LogEntry[]
    s.emit('message', { code: 'PINO_CONFIG', config: { levels: { labels: { 35: 'audit' } } } })
    const after = mapLines(s, [line]).entries as LogEntry[]
    expect(before.map((e) => e.labels)).toEqual([{ level: '35' }, { level: '35' }])
    expect(after.map((e) => e.labels)).toEqual([{ level: 'audit' }])
  })

  it('parses every line when the mapping reads fields', () => {
    const line = '{"level":30,"time":1700000000000,"service":"billing","msg":"x"}'
    for (const options of [{ line: 'message' }, { line: 'rest' }, { labelsFrom: ['service'] }, { metadataFrom: ['service'] }] as const) {
      expect(mapLines(open(options), [line]).parses, JSON.stringify(options)).toEqual([1])
    }
  })

  it("a line that is not a JSON object is shipped as written under line: 'rest' and 'message' too", () => {
    const lines = ['plain text', '{"level":30,"time":1700000000000,"msg":"cut sho', '[1,2]']
    for (const line of ['rest', 'message'] as const) {
      const { entries } = mapLines(open({ line, labelsFrom: ['service'] }), lines)
      expect(entries.map((e) => (e as LogEntry).line), line).toEqual(lines)
    }
  })

  it("a line JSON.parse refuses keeps the level and time of pino's head, read from the head or not", () => {
    const lines = ['{"level":30,"time":1700000000000,"msg":"x",}', '{"level":30,"time":1700000000000,"cut":{"after":"this"}']
    const fast = mapLines(open(), lines).entries
    const slow = mapLines(open(parseAll), lines).entries
    lines.forEach((line, i) => {
      expect(fast[i]).toEqual({ line, labels: { level: 'info' }, timestamp: 1_700_000_000_000 })
      expect(slow[i]).toEqual(fast[i])
    })
  })
})

describe('lokiStream: labels, metadata and line options', () => {
  it('lifts listed fields (bindings included) into labels and metadata, nothing else', async () => {
    const s = open({ labelsFrom: ['service', 'env', 'obj'], metadataFrom: ['trace_id', 'req_id', 'user', 'missing'] })
    const logger = pino(s).child({ service: 'billing', env: 'prod' })
    logger.info({ trace_id: 'abc123', req_id: 42, user: { id: 7 }, obj: { no: 'label' }, path: '/x' }, 'charged')
    logger.info({ env: '' }, 'empty value: no label')
    await closeAndCheck(s)
    const [a, b] = server.entries
    expect(a!.labels).toEqual({ app: 'api', env: 'prod', level: 'info', service: 'billing' })
    expect(a!.metadata).toEqual({ trace_id: 'abc123', req_id: '42', user: '{"id":7}' })
    // The default line is the record as pino wrote it, lifted fields included.
    expect(parsed(a!)).toMatchObject({ service: 'billing', trace_id: 'abc123', path: '/x' })
    // pino writes the child's binding and the call's field both; the last one wins, as in JSON.parse.
    expect(b!.labels).toEqual({ app: 'api', level: 'info', service: 'billing' })
  })

  it("levelAs 'metadata' and 'none'", async () => {
    const m = open({ levelAs: 'metadata' })
    pino(m).error('e')
    await closeAndCheck(m)
    const n = open({ levelAs: 'none' })
    pino(n).error('e')
    await closeAndCheck(n)
    expect(server.entries.map((e) => [e.labels, e.metadata])).toEqual([
      [{ app: 'api' }, { level: 'error' }],
      [{ app: 'api' }, undefined],
    ])
  })

  it("line 'message' sends the message only (the record when there is none); 'rest' drops what was lifted", async () => {
    const msg = open({ line: 'message', metadataFrom: ['req_id'] })
    const a = pino(msg)
    a.info({ req_id: 'r1' }, 'just this')
    a.info({ req_id: 'r2', n: 1 })
    await closeAndCheck(msg)
    const rest = open({ line: 'rest', labelsFrom: ['service'], metadataFrom: ['req_id'] })
    pino({ base: { service: 'billing' } }, rest).info({ req_id: 'r3', kept: true }, 'hi')
    await closeAndCheck(rest)
    const [m1, m2, r] = server.entries
    expect(m1!.line).toBe('just this')
    expect(parsed(m2!)).toMatchObject({ req_id: 'r2', n: 1 })
    expect(Object.keys(parsed(r!)).sort()).toEqual(['kept', 'msg', 'time'])
    expect(r!.labels).toEqual({ app: 'api', level: 'info', service: 'billing' })
    expect(r!.metadata).toEqual({ req_id: 'r3' })
  })

  it('dotted paths reach nested fields, are sent with underscores, and leave the rest line', async () => {
    const s = open({ line: 'rest', labelsFrom: ['req.method', 'svc.name', 'req.none'], metadataFrom: ['req.id', 'a.b.c', 'odd.key'] })
    pino({ base: null }, s).info(
      { req: { method: 'GET', id: 'r1', path: '/x' }, svc: { name: 'billing' }, a: { b: { c: 3 } }, 'odd.key': 'literal', nested: { keep: 1 } },
      'hi',
    )
    await closeAndCheck(s)
    const [e] = server.entries
    expect(e!.labels).toEqual({ app: 'api', level: 'info', req_method: 'GET', svc_name: 'billing' })
    // A field whose literal name has a dot is taken as it is, before any path.
    expect(e!.metadata).toEqual({ req_id: 'r1', a_b_c: '3', odd_key: 'literal' })
    // Lifted fields leave the line; parents they empty go too; the rest stays.
    const { time, ...line } = parsed(e!)
    expect(typeof time).toBe('number')
    expect(line).toEqual({ msg: 'hi', req: { path: '/x' }, nested: { keep: 1 } })
  })

  it('a dotted path never modifies the record it reads (winston shares it between transports)', () => {
    const mapping = resolveMapping({ line: 'rest', labelsFrom: ['req.method'], metadataFrom: ['req.id'] })
    const mapper = new RecordMapper(mapping, { timeKeys: ['timestamp'], messageKey: 'message', levels: new Map() })
    const record = { level: 'info', message: 'm', req: { method: 'GET', id: 'r1', path: '/x' } }
    const before = structuredClone(record)
    const entry = mapper.map(record)
    expect(record).toEqual(before)
    expect(JSON.parse(entry.line)).toEqual({ message: 'm', req: { path: '/x' } })
    expect(() => lokiStream({ url: server.url, labels: { app: 'api' }, labelsFrom: ['req..method'] })).toThrow(/empty segment/)
  })

  it('refuses options that would misplace the level or leave entries without a stream', () => {
    const base = { url: server.url, labels: { app: 'api' } }
    expect(() => lokiStream({ ...base, labelsFrom: ['level'] })).toThrow(/labelsFrom.*levelAs/)
    expect(() => lokiStream({ ...base, levelAs: 'nowhere' as 'label' })).toThrow(/Invalid option "levelAs"/)
    expect(() => lokiStream({ ...base, line: 'all' as 'record' })).toThrow(/Invalid option "line"/)
    expect(() => lokiStream({ ...base, labelsFrom: ['a'], metadataFrom: ['a'] })).toThrow(/already lifted/)
    expect(() => lokiStream({ ...base, labelsFrom: 'service' as unknown as string[] })).toThrow(/labelsFrom/)
    expect(() => lokiStream({ ...base, customLevels: { x: 'high' as unknown as number } })).toThrow(/customLevels\.x/)
    expect(() => lokiStream({ url: server.url, levelAs: 'metadata' })).toThrow(/Invalid option "labels"/)
    // Client options are still the client's to check.
    expect(() => lokiStream({ ...base, concurency: 2 } as LokiPinoOptions)).toThrow(/Invalid option "concurency": unknown option/)
  })
})

describe('lokiStream: failures and flushing', () => {
  it('reports drops as events and on stderr, never through the logger', async () => {
    server.setFault({ type: 'status', status: 400, body: 'bad labels' })
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      const s = open({ onFailure: 'stderr', batch: { maxWaitMs: 5 } })
      const write = vi.spyOn(s, 'write')
      const drops: unknown[] = []
      s.on('lokiwire:drop', (d) => drops.push(d))
      const logger = pino(s)
      for (let i = 0; i < 10; i++) logger.info({ i }, 'x')
      await new Promise<void>((resolve) => logger.flush(() => resolve()))
      expect(drops).toEqual([expect.objectContaining({ kind: 'drop', total: 10, dropped: { rejected: 10 }, lastError: 'Loki answered 400: bad labels' })])
      const printed = stderr.mock.calls.map((c) => String(c[0])).join('')
      expect(printed).toContain('lokiwire: dropped 10 log entries (rejected: 10); last error: Loki answered 400: bad labels\n')
      expect(write).toHaveBeenCalledTimes(10)
      expect(s.client.stats().dropped.rejected).toBe(10)
    } finally {
      stderr.mockRestore()
    }
  })

  it('logger.flush(cb) calls back once delivered; close() is idempotent and the stream is done after it', async () => {
    const s = open()
    const logger = pino(s)
    for (let seq = 0; seq < 500; seq++) logger.info({ seq })
    await new Promise<void>((resolve) => logger.flush(() => resolve()))
    expect(server.entries).toHaveLength(500)
    const [a, b] = await Promise.all([s.close(), s.close()])
    expect(a).toBe(b)
    expect(s.writable).toBe(false)
    logger.info('after close')
    expect(s.client.stats().dropped.closed).toBe(1)
    assertIdentity(s.client)
  })
})

describe('record mapping helpers', () => {
  it('reads record times by magnitude and format', () => {
    expect(readRecordTime(1_700_000_000)).toBe(1_700_000_000_000)
    expect(readRecordTime(1_700_000_000_123)).toBe(1_700_000_000_123)
    expect(readRecordTime(1_700_000_000_123_456)).toBe(1_700_000_000_123.456)
    expect(readRecordTime('1700000000123456789')).toBe('1700000000123456789')
    expect(readRecordTime('1700000000123')).toBe(1_700_000_000_123)
    expect(readRecordTime('2023-11-14T22:13:20.123Z')).toBe(1_700_000_000_123)
    expect(readRecordTime('2023-11-14T22:13:20.123456789Z')).toBe('1700000000123456789')
    expect(readRecordTime('2023-11-15T00:13:20.5+02:00')).toBe(1_700_000_000_500)
    expect(readRecordTime(new Date(1_700_000_000_000))).toBe(1_700_000_000_000)
    for (const bad of ['yesterday', -1, Number.NaN, Infinity, null, {}, true]) expect(readRecordTime(bad)).toBeUndefined()
  })

  it('serialises anything without throwing', () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    expect(safeJson(cyclic)).toBe('{"a":1,"self":"[Circular]"}')
    expect(safeJson({ n: 10n })).toBe('{"n":"10"}')
    expect(safeJson({ toJSON: () => { throw new Error('no') } })).toBe('"[Unserializable]"')
    expect(safeJson(undefined)).toBe('undefined')
  })
})

describe('lokiStream in a CommonJS application', () => {
  let dir: string | undefined
  beforeAll(() => {
    requireBuild('pino/index.cjs')
    dir = makeAppDir(['pino-app.cjs'], ['pino'])
  })
  afterAll(() => {
    killAll()
    removeAppDir(dir)
  })

  it('require("lokiwire/pino") works, and close() delivers before the process ends', async () => {
    const r = await runChild(dir!, 'pino-app.cjs', ['stream', server.url, '2000'], { timeoutMs: 15_000 }).result
    expect(r.killed).toBe(false)
    expect(r.code, r.stderr).toBe(0)
    expect(r.messages.find((m) => m.closed !== undefined)?.closed).toMatchObject({ ok: true, droppedEntries: 0 })
    expect(new Set(server.entries.map((e) => parsed(e).seq)).size).toBe(2000)
    expect(server.entries).toHaveLength(2000)
  })
})
