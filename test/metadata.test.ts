import { expect, it } from 'vitest'
import { LokiClient, LokiEntryError, type DropEvent } from '../src/index.js'
import { RecordMapper, resolveMapping } from '../src/records/mapping.js'
import { assertIdentity, FAST, useLoki } from './helpers.js'

const ctx = useLoki()

it.each(['protobuf', 'json'] as const)('push() stores metadata values by the same rule as the adapters: objects as JSON (%s)', async (encoding) => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'm' }, encoding, ...FAST }))
  const record = { o: { a: 1 }, list: [1, 'x'], n: 5, ok: true, big: 10n, s: 'plain', gone: null, when: new Date(0) }
  const fields = Object.keys(record)
  const mapped = new RecordMapper(resolveMapping({ metadataFrom: fields }), { timeKeys: ['time'], messageKey: 'msg', levels: new Map() }).map(record, undefined, 'info')
  client.push({ line: 'direct', metadata: record })
  await client.flush({ timeoutMs: 5000 })
  const expected = { o: '{"a":1}', list: '[1,"x"]', n: '5', ok: 'true', big: '10', s: 'plain', when: '"1970-01-01T00:00:00.000Z"' }
  expect(mapped.metadata).toEqual(expected)
  expect(ctx.srv.entries.map((e) => e.metadata)).toEqual([expected])
})

it('pairs beyond Loki\'s 128 per entry are left out and counted', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'm' }, ...FAST }))
  const metadata = Object.fromEntries(Array.from({ length: 130 }, (_, i) => [`k${i}`, `v${i}`]))
  expect(client.push({ line: 'many', metadata })).toBe(true)
  expect(client.push({ line: 'few', metadata: { k: 'v' } })).toBe(true)
  await client.flush({ timeoutMs: 5000 })
  expect(Object.keys(ctx.srv.entries.find((e) => e.line === 'many')!.metadata!)).toHaveLength(128)
  expect(client.stats().metadata).toMatchObject({ cut: 2 })
  assertIdentity(client)
})

it('metadata names Loki would not take as label names are sanitised like labels, and counted', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'm' }, ...FAST }))
  expect(client.push({ line: 'a', metadata: { 'trace-id': 't1', 'span.id': 's1', '1x': 'n', __x: 'r', ok: 'fine' } })).toBe(true)
  // Two names that end up the same: the later pair wins, the other is counted as cut.
  expect(client.push({ line: 'b', metadata: { trace_id: 'first', 'trace-id': 'second' } })).toBe(true)
  await client.flush({ timeoutMs: 5000 })
  const byLine = Object.fromEntries(ctx.srv.entries.map((e) => [e.line, e.metadata]))
  expect(byLine).toEqual({
    a: { trace_id: 't1', span_id: 's1', _1x: 'n', x__x: 'r', ok: 'fine' },
    b: { trace_id: 'second' },
  })
  expect(client.stats().metadata).toEqual({ renamed: 5, cut: 1 })
  assertIdentity(client)
})

it('under invalidLabels \'drop\', an entry with a bad metadata name is dropped with an error naming it', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'm' }, invalidLabels: 'drop', ...FAST }))
  const drops: DropEvent[] = []
  client.on('drop', (d) => drops.push(d))
  expect(client.push({ line: 'bad', metadata: { 'trace-id': 't1' } })).toBe(false)
  expect(client.push({ line: 'not an object', metadata: 'trace_id=1' as never })).toBe(false)
  expect(client.push({ line: 'good', metadata: { trace_id: 't1' } })).toBe(true)
  await client.flush({ timeoutMs: 5000 })
  expect(ctx.srv.entries.map((e) => e.line)).toEqual(['good'])
  expect(client.stats().dropped).toMatchObject({ invalid_labels: 1, invalid_entry: 1 })
  expect(drops.map((d) => [d.reason, d.error?.code, (d.error as LokiEntryError).field])).toEqual([
    ['invalid_labels', 'LOKI_INVALID_ENTRY', 'metadata.trace-id'],
    ['invalid_entry', 'LOKI_INVALID_ENTRY', 'metadata'],
  ])
  expect(drops[0]!.error).toBeInstanceOf(LokiEntryError)
  assertIdentity(client)
})
