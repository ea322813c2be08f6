import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { levelTable } from '../src/records/levels.js'
import { readPinoHead, RecordMapper, resolveMapping, type RecordSource } from '../src/records/mapping.js'

/** What a pino logger writes, one string a line. */
function written(log: (d: pino.DestinationStream) => void): string[] {
  const lines: string[] = []
  log({ writable: true, write: (l: string) => void lines.push(l.replace(/\n$/, '')) } as pino.DestinationStream)
  return lines
}

const pinoLines = [
  ...written((d) => {
    const log = pino(d)
    log.info({ seq: 1, user: 'u1' }, 'request handled')
    log.warn('careful')
    log.error(new Error('boom'))
    log.fatal({ req: { method: 'GET', headers: { host: 'x' }, level: 'nested' }, list: [1, { a: null, time: 3 }], ok: true }, 'nested')
    log.info({ who: 'Zoë', s: '\u0000\u001f\u2028' }, 'héllo € 😀 日本 \ud800')
    log.child({ service: 'billing' }).info({ quote: 'say "hi" "level"', path: 'C:\\tmp', n: 2 ** 80, big: 1e308 }, 'escapes')
    log.info({ time: 5 }, 'own time')
    log.info({ level: 'custom' }, 'own level')
    log.child({ time: 7, level: 60 }).info('bindings repeat the head keys')
    log.info({ unit: 'time', word: 'level' }, 'values that look like keys')
  }),
  ...written((d) => {
    const log = pino({ customLevels: { audit: 35, odd: 37 } }, d)
    log.audit('named')
    log.odd({ deep: { deeper: { deepest: [[[]]] } } }, 'named too')
  }),
  ...written((d) => pino({ mixin: () => ({ level: 50 }) }, d).info('mixin')),
  ...written((d) => pino({ timestamp: pino.stdTimeFunctions.unixTime }, d).info('seconds')),
  ...written((d) => pino({ timestamp: pino.stdTimeFunctions.isoTime }, d).info('iso')),
  ...written((d) => pino({ timestamp: pino.stdTimeFunctions.isoTimeNano }, d).info('iso nano')),
  ...written((d) => pino({ timestamp: false }, d).info('no time')),
  ...written((d) => pino({ formatters: { level: (label) => ({ level: label.toUpperCase() }) } }, d).info('named level')),
  ...written((d) => pino({ base: null }, d).info({})),
]

const handWritten = [
  '{"level":30,"time":1700000000000,"msg":"x"}',
  '{"level":99,"time":1700000000000,"msg":"unnamed level"}',
  '{"level":30,"time":1700000000000123456789,"msg":"nanoseconds, past exact doubles"}',
  '{"level":99999999999999999999999,"time":99999999999999999999999999999,"msg":"huge numbers"}',
  '{"level":30,"time":1700000000000,"msg":"x","level":40}',
  '{"level":30,"time":1700000000000,"msg":"x","time":1}',
  '{"level":30,"time":1700000000000,"\\u006cevel":50}',
  '{"level":30,"time":1700000000000,"\\u0074ime":1}',
  '{"level":30,"time":1700000000000,"msg":"\\u00e9"}',
  '{"level":30,"time":1700000000000,"msg":"x"} ',
  '{"level":30,"time":1700000000000,"msg":"x"}{"level":50}',
  '{"level":30,"time":1700000000000,"msg":"x",}',
  '{"level":30,"time":01700000000000,"msg":"leading zero"}',
  '{"level":30,"time":1.7e12,"msg":"exponent"}',
  '{"level":-30,"time":1700000000000,"msg":"sign"}',
  '{"level" :30,"time":1700000000000,"msg":"spaced head"}',
  ' {"level":30,"time":1700000000000,"msg":"blank first"}',
  '{"level":"30","time":"1700000000000"}',
  '{"time":1700000000000,"level":30}',
  'plain text',
  '[1,2]',
  'null',
  '{',
  '',
]

// Every line cut at every place: broken JSON of every shape pino's output can be cut into.
const corpus = [...pinoLines, ...handWritten]
for (const line of [...pinoLines.slice(0, 6), handWritten[0]!, handWritten[4]!]) {
  for (let i = 1; i < line.length; i++) corpus.push(line.slice(0, i))
}

const PINO: RecordSource = { timeKeys: ['time'], messageKey: 'msg', levels: levelTable({ audit: 35 }, 'customLevels') }
const CLI: RecordSource = { timeKeys: ['time', 'timestamp', '@timestamp'], messageKey: 'msg', levels: levelTable(undefined, 'levels') }

describe("pino's head fast path is the general mapping, faster", () => {
  it('the corpus has lines of every kind: read from the head, parsed, and refused by JSON.parse', () => {
    const head = corpus.filter((l) => readPinoHead(l) !== undefined).length
    const refused = corpus.filter((l) => {
      try {
        JSON.parse(l)
        return false
      } catch {
        return true
      }
    }).length
    expect(corpus.length).toBeGreaterThan(1500)
    expect(head).toBeGreaterThan(300)
    expect(corpus.length - head).toBeGreaterThan(300)
    expect(refused).toBeGreaterThan(1000)
  })

  for (const [name, source] of [['pino', PINO], ['CLI', CLI]] as const) {
    for (const levelAs of ['label', 'metadata', 'none'] as const) {
      it(`mapLine() gives what mapParsed() gives for every line (${name}, levelAs '${levelAs}')`, () => {
        const mapper = new RecordMapper(resolveMapping({ levelAs }), source)
        for (const line of corpus) expect(mapper.mapLine(line), line).toEqual(mapper.mapParsed(line))
      })
    }
  }
})

describe('mapping options: level names, line layout, metadata object, timestamp source', () => {
  const RECORD = '{"level":40,"time":1700000000000,"hostname":"h","req":{"id":"r1","method":"GET"},"tags":["a",["b"]],"meta":{"trace":"t","n":3,"ok":false,"o":{"x":[1]},"nil":null},"msg":"m"}'
  const map = (options: Record<string, unknown>, line = RECORD, source = PINO) => new RecordMapper(resolveMapping(options), source).mapLine(line)

  it('levelMap renames a level by its number or its name; levelFallback names the rest, and a record without one', () => {
    const options = { levelMap: { 40: 'warning', audit: 'notice' }, levelFallback: 'info' }
    expect(map(options).labels).toEqual({ level: 'warning' })
    expect(map(options, '{"level":35,"time":1700000000000}').labels).toEqual({ level: 'notice' })
    expect(map(options, '{"level":50,"time":1700000000000}').labels).toEqual({ level: 'info' })
    expect(map(options, '{"level":"40","time":1700000000000}').labels).toEqual({ level: 'warning' })
    expect(map(options, '{"time":1700000000000}').labels).toEqual({ level: 'info' })
    expect(map(options, 'plain text').labels).toEqual({ level: 'info' })
    // Without a fallback, a level the map does not list keeps its name.
    expect(map({ levelMap: { 40: 'warning' } }, '{"level":50,"time":1700000000000}').labels).toEqual({ level: 'error' })
    expect(map({ levelMap: { 40: 'warning' } }, '{"level":"constructor"}').labels).toEqual({ level: 'constructor' })
  })

  it('the head fast path still gives the general mapping with levelMap and levelFallback', () => {
    const mapper = new RecordMapper(resolveMapping({ levelMap: { 40: 'warning', 35: 'notice' }, levelFallback: 'info' }), PINO)
    for (const line of corpus) expect(mapper.mapLine(line), line).toEqual(mapper.mapParsed(line))
  })

  it('lineWithout and arraysAsObjects write the record anew, without the fields, arrays as objects at any depth', () => {
    const parsed = JSON.parse(RECORD) as Record<string, unknown>
    const { hostname: _h, ...rest } = parsed
    expect(map({ lineWithout: ['hostname'] }).line).toBe(JSON.stringify(rest))
    expect(JSON.parse(map({ lineWithout: ['hostname', 'req.id'] }).line)).toEqual({ ...rest, req: { method: 'GET' } })
    const line = JSON.parse(map({ arraysAsObjects: true }).line) as Record<string, unknown>
    expect(line.tags).toEqual({ 0: 'a', 1: { 0: 'b' } })
    expect(line.meta).toEqual({ ...(parsed.meta as object), o: { x: { 0: 1 } } })
    // Neither touches the record a logger may share with its other transports.
    const record = JSON.parse(RECORD) as Record<string, unknown>
    new RecordMapper(resolveMapping({ lineWithout: ['hostname', 'req.id'], arraysAsObjects: true }), PINO).map(record)
    expect(record).toEqual(parsed)
  })

  it("metadataObject sends an object's entries as metadata by metadataFrom's rule; the field stays in a 'record' line, leaves a 'rest' one", () => {
    const e = map({ metadataObject: 'meta' })
    expect(e.metadata).toEqual({ trace: 't', n: '3', ok: 'false', o: '{"x":[1]}' })
    expect(e.line).toBe(RECORD)
    expect(JSON.parse(map({ metadataObject: 'meta', line: 'rest' }).line)).not.toHaveProperty('meta')
    expect(map({ metadataObject: 'req' }).metadata).toEqual({ id: 'r1', method: 'GET' })
    expect(map({ metadataObject: 'msg' }).metadata).toBeUndefined()
    expect(map({ metadataObject: 'tags' }).metadata).toBeUndefined()
  })

  it("timestamp 'received' leaves the entry unstamped, for the client to stamp as it takes it", () => {
    expect(map({}).timestamp).toBe(1700000000000)
    expect(map({ timestamp: 'received' }).timestamp).toBeUndefined()
  })

  it('a line function writes the line from the record and the level name; a throw or a non-string ships the record', () => {
    const seen: unknown[] = []
    const fn = (r: Readonly<Record<string, unknown>>, level: string | undefined) => {
      seen.push(level)
      return `${level} ${String(r.msg)}`
    }
    expect(map({ line: fn, levelMap: { 40: 'warning' } }).line).toBe('warning m')
    expect(seen).toEqual(['warning'])
    expect(map({ line: () => { throw new Error('formatter bug') } }).line).toBe(RECORD)
    expect(map({ line: () => 42 }).line).toBe(RECORD)
    expect(map({ line: () => 42, lineWithout: ['hostname'] }).line).not.toContain('hostname')
    expect(map({ line: fn }, 'plain text').line).toBe('plain text')
  })

  it.each([
    [{ levelMap: { 40: '' } }, 'levelMap.40'],
    [{ levelMap: 'warning' }, 'levelMap'],
    [{ levelFallback: 3 }, 'levelFallback'],
    [{ lineWithout: 'hostname' }, 'lineWithout'],
    [{ arraysAsObjects: 'yes' }, 'arraysAsObjects'],
    [{ metadataObject: '' }, 'metadataObject'],
    [{ timestamp: 'now' }, 'timestamp'],
    [{ line: 'json' }, 'line'],
  ])('a bad value is refused at construction, naming the option: %j', (options, option) => {
    expect(() => resolveMapping(options)).toThrow(expect.objectContaining({ option }))
  })
})

describe('LayoutRules: a source that stores entries as another library did', () => {
  const WINSTON: RecordSource = { timeKeys: ['timestamp'], messageKey: 'message', levels: new Map() }
  const record = { label: 'svc', labels: { module: 'db', level: 'audit' }, timestamp: '2026-01-02T03:04:05.678Z', message: 'hi', a: 1, nested: { b: 2 }, level: 'info' }

  it("lifts aliases, the rest, then a labels field over everything; 'message-rest' lines; the level keeps its rule", () => {
    const layout = { restOmits: ['label', 'labels', 'timestamp', 'message'], labelAliases: { label: 'job' }, restAsLabels: true, labelsField: 'labels', restAsMetadata: true, line: 'message-rest' } as const
    const entry = new RecordMapper(resolveMapping({}), { ...WINSTON, layout }).map(record, undefined, 'warn')
    // The rest's own `level` is no label; the labels field replaces even the level's.
    expect(entry.labels).toEqual({ level: 'audit', job: 'svc', a: '1', module: 'db' })
    expect(entry.metadata).toEqual({ a: '1', nested: '{"b":2}', level: 'info' })
    expect(entry.line).toBe('hi {"a":1,"nested":{"b":2},"level":"info"}')
    expect(entry.timestamp).toBe(1767323045678)
  })

  it("an empty rest leaves the space: 'message ' (what winston-loki writes)", () => {
    const mapper = new RecordMapper(resolveMapping({}), { ...WINSTON, timeKeys: [], layout: { restOmits: ['message', 'level'], line: 'message-rest' } })
    const entry = mapper.map({ message: 'alone', level: 'info', timestamp: 5 }, undefined, 'info')
    expect(entry).toEqual({ line: 'alone {"timestamp":5}', labels: { level: 'info' } })
    expect(mapper.map({ message: 'alone', level: 'info' }, undefined, 'info').line).toBe('alone ')
  })

  it('without a layout the record maps as before', () => {
    expect(new RecordMapper(resolveMapping({}), WINSTON).map(record, 'as written', 'warn')).toEqual({ line: 'as written', labels: { level: 'warn' }, timestamp: 1767323045678 })
  })
})

describe('mapHead() and mapSerialized(): the same entry as mapLine() and map(), without the entry object', () => {
  // Mappings where the shortcuts must answer, and ones where they must decline (the entry needs
  // more than the head, or carries metadata).
  const answers = [{}, { levelAs: 'none' }, { timestamp: 'received' }, { levelMap: { 30: 'note', warn: 'warning' }, levelFallback: 'other' }]
  const declines = [{ levelAs: 'metadata' }, { labelsFrom: ['user'] }, { metadataFrom: ['user'] }, { line: 'message' }, { lineWithout: ['pid'] }, { arraysAsObjects: true }]
  const asEntry = (e: { line: string; labels: unknown; timestamp: unknown }) => ({ line: e.line, labels: e.labels, metadata: undefined, timestamp: e.timestamp })

  it("mapHead() answers for pino's default lines exactly as mapLine() maps them, and declines otherwise", () => {
    let answered = 0
    for (const options of [...answers, ...declines]) {
      const mapper = new RecordMapper(resolveMapping(options), PINO)
      for (const line of corpus) {
        const head = mapper.mapHead(line)
        if (head === undefined) continue
        answered++
        expect(declines, JSON.stringify(options)).not.toContain(options)
        const entry = mapper.mapLine(line)
        expect(asEntry(head), line).toEqual(entry)
        // The very label object mapLine() uses: pushLine() resolves it once, by identity.
        expect(head.labels).toBe(entry.labels)
      }
    }
    expect(answered).toBeGreaterThan(4 * 300)
  })

  it('mapSerialized() answers for a serialised record exactly as map() maps it, and declines otherwise', () => {
    const WINSTON: RecordSource = { timeKeys: ['timestamp'], messageKey: 'message', levels: new Map() }
    const records: [Record<string, unknown>, string | undefined, unknown][] = [
      [{ message: 'a', level: 'info', user: 'u1', pid: 1 }, '{"message":"a"}', 'info'],
      [{ message: 'b', level: 'warn', timestamp: '2026-01-02T03:04:05.678Z' }, 'b as written', 'warn'],
      [{ message: 'c', level: 'custom', timestamp: 1767323045678 }, 'c', 'custom'],
      [{ message: 'd' }, 'd', undefined],
      [{ message: 'e', level: 'info' }, undefined, 'info'],
    ]
    let answered = 0
    for (const options of [...answers, ...declines]) {
      const mapper = new RecordMapper(resolveMapping(options), WINSTON)
      for (const [record, serialized, level] of records) {
        const lite = mapper.mapSerialized(record, serialized, level)
        if (lite === undefined) continue
        answered++
        expect(declines, JSON.stringify(options)).not.toContain(options)
        const entry = mapper.map(record, serialized, level)
        expect(asEntry(lite), JSON.stringify(record)).toEqual(entry)
        expect(lite.labels).toBe(entry.labels)
      }
    }
    // Four mappings answer for the four serialised records; the one without a serialised form is mapped in full.
    expect(answered).toBe(16)
  })

  it('mapSerialized() reads the first time field present, names a first record without a level, and declines a layout that writes the line', () => {
    const cases: [Record<string, unknown>, unknown][] = [
      [{ message: 'no level, first' }, undefined],
      [{ message: 'time second', timestamp: 1767323045678 }, 'info'],
      [{ message: 'time third', '@timestamp': '2026-01-02T03:04:05.678Z' }, 'info'],
      [{ message: 'both', time: 1767323000000, timestamp: 1767323045678 }, 'warn'],
    ]
    for (const options of answers) {
      const mapper = new RecordMapper(resolveMapping(options), CLI)
      for (const [record, level] of cases) {
        const lite = mapper.mapSerialized(record, 'as written', level)
        expect(lite, JSON.stringify(options)).toBeDefined()
        expect(asEntry(lite!), JSON.stringify(record)).toEqual(mapper.map(record, 'as written', level))
      }
    }
    const layout = new RecordMapper(resolveMapping({}), { ...CLI, layout: { restOmits: ['message'], line: 'message-rest' } })
    expect(layout.mapSerialized({ message: 'm', a: 1 }, 'as written', 'info')).toBeUndefined()
  })
})
