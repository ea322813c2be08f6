import { afterEach, beforeEach, expect, it } from 'vitest'
import { LokiClient } from '../src/index.js'
import { assertIdentity, extraResources, FAST, resources, useLoki, waitUntil } from './helpers.js'

// Node's convention for a library: a process warning with a stable code, when nobody listens.
const ctx = useLoki()
let warnings: Array<Error & { code?: string }> = []
const onWarning = (w: Error & { code?: string }) => {
  if (w.code?.startsWith('LOKIWIRE_')) warnings.push(w)
}
beforeEach(() => {
  warnings = []
  process.on('warning', onWarning)
})
afterEach(() => {
  process.off('warning', onWarning)
})

it('drops with no \'drop\' listener become one LOKIWIRE_DROPPED warning per interval, the rest reported at close', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'w' }, ...FAST }))
  for (let i = 0; i < 3; i++) client.push({ line: i } as never)
  await waitUntil(() => warnings.length === 1, 'the first warning')
  expect(warnings[0]!.code).toBe('LOKIWIRE_DROPPED')
  expect(warnings[0]!.message).toBe(
    'lokiwire dropped 3 log entries (invalid_entry: 3) and the client has no \'drop\' listener; last error: Invalid entry field "line": expected a string, got 2',
  )
  const before = resources()
  client.push({ line: 'ok', timestamp: -1 })
  client.push({ line: 'ok', labels: { app: '' } })
  // The next warning waits for the interval on a timer that must not keep the process alive.
  expect(extraResources(before, resources())).toEqual([])
  await new Promise((r) => setTimeout(r, 50))
  // The second drop left the entry with no labels: that has its own warning. The drops
  // themselves, within the interval, are summed into the next one.
  expect(warnings.map((w) => w.code)).toEqual(['LOKIWIRE_DROPPED', 'LOKIWIRE_NO_LABELS'])
  await client.close()
  await waitUntil(() => warnings.length === 3, 'the warning at close')
  expect(warnings[2]!.message).toMatch(/^lokiwire dropped 2 log entries \(invalid_entry: 1, invalid_labels: 1\)/)
  assertIdentity(client)
})

it('a client with a \'drop\' listener warns of nothing: the listener hears of every drop', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'w' }, ...FAST }))
  let heard = 0
  client.on('drop', (d) => (heard += d.entries))
  ctx.srv.setFault({ type: 'status', status: 400, body: 'bad' })
  client.push({ line: 5 } as never)
  client.push({ line: 'rejected' })
  await client.close()
  await new Promise((r) => setImmediate(r))
  expect(heard).toBe(2)
  expect(warnings).toEqual([])
})

it('entries arriving with no labels at all: one LOKIWIRE_NO_LABELS warning per client, listener or not', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, ...FAST }))
  client.on('drop', () => {})
  for (let i = 0; i < 5; i++) expect(client.push({ line: 'no stream' })).toBe(false)
  await waitUntil(() => warnings.length === 1, 'the warning')
  await new Promise((r) => setTimeout(r, 20))
  expect(warnings.map((w) => w.code)).toEqual(['LOKIWIRE_NO_LABELS'])
  expect(client.stats().dropped.invalid_labels).toBe(5)
})

it('only an entry left with no labels at all warns LOKIWIRE_NO_LABELS: a refused label name does not', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'w' }, invalidLabels: 'drop', ...FAST }))
  client.on('drop', () => {})
  expect(client.push({ line: 'x', labels: { 'bad-name': 'v' } })).toBe(false)
  expect(client.pushLine('y', Object.freeze({ 'bad-name': 'v' }), undefined)).toBe(false)
  await new Promise((r) => setTimeout(r, 50))
  expect(client.stats().dropped.invalid_labels).toBe(2)
  expect(warnings.map((w) => w.code)).toEqual([])
})
