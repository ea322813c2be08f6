import { expect, it } from 'vitest'
import { LineSplitter } from '../src/records/ndjson.js'
import { createLineMapper } from '../src/cli/record.js'
import { levelName as nameOf, levelTable } from '../src/records/levels.js'
import { readRecordTime as timestampOf } from '../src/model/timestamp.js'

const levelName = (v: unknown) => nameOf(v, levelTable({ audit: 35 }, 'customLevels'))

it('levels: numbers by the level table, else their digits; strings lower-cased without colour codes', () => {
  expect([10, 20, 30, 40, 50, 60, 35, 5, 70].map(levelName)).toEqual(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'audit', '5', '70'])
  expect(levelName('WARN')).toBe('warn')
  expect(levelName(' Error ')).toBe('error')
  expect(levelName('\u001b[32minfo\u001b[39m')).toBe('info')
  expect(levelName('30')).toBe('info')
  expect(levelName('')).toBeUndefined()
  expect(levelName('x'.repeat(40))).toBeUndefined()
  for (const v of [{}, null, true, Number.NaN, Infinity]) expect(levelName(v)).toBeUndefined()
})

it('timestamps: epoch s, ms, us and ns told apart by size; ISO strings; junk ignored', () => {
  const ms = 1_700_000_000_123
  expect(timestampOf(ms)).toBe(ms)
  expect(timestampOf(ms / 1000)).toBeCloseTo(ms, 0)
  expect(timestampOf(ms * 1000)).toBe(ms)
  expect(timestampOf('1700000000123456789')).toBe('1700000000123456789')
  expect(timestampOf(String(ms))).toBe(ms)
  expect(timestampOf('2023-11-14T22:13:20.123Z')).toBe(ms)
  expect(timestampOf('yesterday')).toBeUndefined()
  expect(timestampOf(-1)).toBeUndefined()
  expect(timestampOf(null)).toBeUndefined()
})

it('timestamps Loki cannot hold (after 2262, as int64 ns) are unusable: the line is stamped when read', () => {
  for (const t of [1e30, 99999999999999999999, '99999999999999999999', '9223372036854775808', '9'.repeat(60), new Date(8.64e15)]) {
    expect(timestampOf(t)).toBeUndefined()
  }
  expect(timestampOf('9223372036854775807')).toBe('9223372036854775807')
  const map = createLineMapper({ format: 'auto', jsonLabels: [], jsonMetadata: [] })
  for (const line of ['{"time":1e30,"msg":"x"}', '{"time":99999999999999999999,"msg":"x"}', '{"timestamp":"99999999999999999999"}']) {
    expect(map(line)).toEqual({ line, labels: { level: 'unknown' } })
  }
})

it('maps a record: the line is untouched, time, level, lifted labels and metadata', () => {
  const map = createLineMapper({ format: 'auto', jsonLabels: ['service', 'obj', 'empty', 'req.method'], jsonMetadata: ['trace_id', 'ctx', 'nil'] })
  const line = ' {"level":40,"time":1700000000123,"service":"api","obj":{"a":1},"empty":"","trace_id":42,"ctx":{"b":2},"nil":null,"req":{"method":"GET"}}'
  expect(map(line)).toEqual({
    line,
    timestamp: 1_700_000_000_123,
    labels: { level: 'warn', service: 'api', req_method: 'GET' },
    metadata: { trace_id: '42', ctx: '{"b":2}' },
  })
  // An unusable time falls back to the time of reading rather than dropping the line.
  expect(map('{"time":"soon","msg":"x"}')).toEqual({ line: '{"time":"soon","msg":"x"}', labels: { level: 'unknown' } })
  for (const plain of ['plain text', '[1,2]', '{"unterminated', 'null', '{} trailing']) {
    expect(map(plain)).toEqual({ line: plain, labels: { level: 'unknown' } })
  }
  expect(createLineMapper({ format: 'text', jsonLabels: [], jsonMetadata: [] })('{"level":30}')).toEqual({ line: '{"level":30}', labels: { level: 'unknown' } })
})

it('the CLI maps a line exactly as the pino adapter does: one mapping, the same level rule and label lists', () => {
  const map = createLineMapper({ format: 'auto', jsonLabels: [], jsonMetadata: [] })
  // An unnamed number is its digits, as in the adapters (it was a band: 35 -> info).
  expect(map('{"level":35,"time":1700000000123}')).toEqual({ line: '{"level":35,"time":1700000000123}', labels: { level: '35' }, timestamp: 1_700_000_000_123 })
  // The CLI also reads the times other loggers write, first present first.
  expect(map('{"@timestamp":"2023-11-14T22:13:20.123Z","level":"INFO"}').timestamp).toBe(1_700_000_000_123)
  expect(map('{"timestamp":1700000000123,"time":1700000000000}').timestamp).toBe(1_700_000_000_000)
  // `level` in a label list is an error, as in the adapters (it was silently left out).
  expect(() => createLineMapper({ format: 'auto', jsonLabels: ['service', 'level'], jsonMetadata: [] })).toThrow(/labelsFrom.*"level" is not lifted/)
  expect(() => createLineMapper({ format: 'auto', jsonLabels: ['a'], jsonMetadata: ['a'] })).toThrow(/already lifted/)
})

it('splits lines across chunks: multi-byte characters, CRLF, empty lines, a last line without newline', () => {
  const s = new LineSplitter(1000)
  const out: string[] = []
  const bytes = Buffer.from('héllo wörld\r\n\nsecond 🙂 line\nthird')
  for (let i = 0; i < bytes.length; i++) s.write(bytes.subarray(i, i + 1), out)
  s.end(out)
  expect(out).toEqual(['héllo wörld', 'second 🙂 line', 'third'])
})

it('an endless line is handed on at the limit and its tail skipped, so memory stays bounded', () => {
  const s = new LineSplitter(100)
  const out: string[] = []
  for (let i = 0; i < 50; i++) s.write('x'.repeat(30), out)
  s.write('tail\nnext line\n', out)
  s.end(out)
  expect(out).toHaveLength(2)
  expect(out[0]!.length).toBeGreaterThan(100)
  expect(out[0]!.length).toBeLessThanOrEqual(130)
  expect(out[1]).toBe('next line')
  expect(s.cut).toBe(1)
})
