import { expect, it } from 'vitest'
import { LokiClient } from '../src/index.js'
import { assertIdentity, FAST, useLoki } from './helpers.js'

// FlushResult.ok answers one question: was everything pushed before the call delivered?
const ctx = useLoki()

it('close() after a 401 is not ok: the entry was dropped, not delivered', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'f' }, ...FAST }))
  ctx.srv.setFault({ type: 'status', status: 401, body: 'no org id' })
  client.push({ line: 'refused' })
  const r = await client.close({ timeoutMs: 5000 })
  expect(r).toEqual({ ok: false, timedOut: false, pendingEntries: 0, droppedEntries: 1, spooledEntries: 0 })
  assertIdentity(client)
})

it('flush() that loses its entry to exhausted retries is not ok', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'f' }, ...FAST, retry: { maxAttempts: 2, minDelayMs: 1, maxDelayMs: 5 }, breaker: false }))
  ctx.srv.setFault({ type: 'status', status: 503 })
  client.push({ line: 'lost' })
  const r = await client.flush({ timeoutMs: 5000 })
  expect(r).toMatchObject({ ok: false, timedOut: false, droppedEntries: 1 })
  expect(client.stats().dropped.retries_exhausted).toBe(1)
  assertIdentity(client)
})

it('a batch split on 413 is ok only if both halves were delivered', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'f' }, ...FAST }))
  for (let i = 0; i < 10; i++) client.push({ line: `n=${i}` })
  ctx.srv.queueFaults({ type: 'status', status: 413 }, { type: 'status', status: 400, body: 'bad half' })
  const r = await client.flush({ timeoutMs: 5000 })
  expect(r).toMatchObject({ ok: false, timedOut: false, droppedEntries: 5 })
  expect(ctx.srv.entries).toHaveLength(5)

  for (let i = 0; i < 10; i++) client.push({ line: `m=${i}` })
  ctx.srv.queueFaults({ type: 'status', status: 413 })
  expect(await client.flush({ timeoutMs: 5000 })).toMatchObject({ ok: true, droppedEntries: 0 })
  expect(ctx.srv.entries).toHaveLength(15)
  assertIdentity(client)
})

it('entries pushed during the call do not change its answer', async () => {
  const client = (ctx.client = new LokiClient({ url: ctx.srv.url, labels: { app: 'f' }, ...FAST }))
  client.push({ line: 'before' })
  const flushing = client.flush({ timeoutMs: 5000 })
  expect(client.push({ line: 42 } as never)).toBe(false) // refused while the flush runs
  expect(await flushing).toMatchObject({ ok: true, droppedEntries: 1 })
  assertIdentity(client)
})
