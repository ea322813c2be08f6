import { expect, it } from 'vitest'
import { LokiClient } from '../src/index.js'
import { RecordMapper, resolveMapping } from '../src/adapters/mapping.js'
import { assertIdentity, FAST, useLoki } from './helpers.js'

const ctx = useLoki()

it.each(['protobuf', 'json'] as const)('push() stores metadata values by the same rule as the adapters: objects as JSON (%s)', async (encoding) => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'm' }, encoding, ...FAST }))
  const record = { o: { a: 1 }, list: [1, 'x'], n: 5, ok: true, big: 10n, s: 'plain', gone: null, when: new Date(0) }
  const fields = Object.keys(record)
  const mapped = new RecordMapper(resolveMapping({ metadataFrom: fields }, 'level'), 'level').map(record, { level: 'info', serialized: undefined, time: undefined }, 'msg')
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
