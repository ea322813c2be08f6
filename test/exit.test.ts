// The exit hooks: one pair of process listeners shared by every client, reachable only through
// src/client/exit.ts. The process-level paths (process.exit(), the spool's last write, a pino worker at
// exit) run in child processes in spool-process.test.ts and pino-worker.test.ts.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { LokiClient } from '../src/client/client.js'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { waitUntil } from './helpers.js'

// Type level, checked by `tsc --noEmit` (which covers test/): the exit hooks are not members of
// the public class, so they cannot appear in its declarations either.
type Leaks = 'onExit' extends keyof LokiClient ? true : 'onBeforeExit' extends keyof LokiClient ? true : false
const leaks: Leaks = false

let srv: LokiTestServer
beforeAll(async () => {
  srv = await createLokiTestServer()
})
afterAll(async () => {
  await srv?.close()
})

const exitListeners = () => ({ exit: process.listenerCount('exit'), beforeExit: process.listenerCount('beforeExit') })

it('the exit hooks are not methods of LokiClient', () => {
  expect(leaks).toBe(false)
  const members = new Set<string | symbol>()
  for (let p: object | null = LokiClient.prototype; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Reflect.ownKeys(p)) members.add(k)
  }
  expect(members.has('onExit')).toBe(false)
  expect(members.has('onBeforeExit')).toBe(false)
  const client = new LokiClient({ url: srv.url, flushOnExit: true })
  try {
    expect(Reflect.ownKeys(client).filter((k) => /exit/i.test(String(k)))).toEqual([])
  } finally {
    void client.destroy()
  }
})

it('many clients share one pair of listeners, removed with the last client', async () => {
  const before = exitListeners()
  const clients = Array.from({ length: 20 }, () => new LokiClient({ url: srv.url }))
  expect(exitListeners()).toEqual({ exit: before.exit + 1, beforeExit: before.beforeExit + 1 })
  await Promise.all(clients.slice(1).map((c) => c.close()))
  expect(exitListeners()).toEqual({ exit: before.exit + 1, beforeExit: before.beforeExit + 1 })
  await clients[0]!.close()
  expect(exitListeners()).toEqual(before)
})

it("'beforeExit' still delivers what a flushOnExit client holds, through the registered hook", async () => {
  srv.reset()
  // A long linger: only the hook can send the entry before the test's cap.
  const client = new LokiClient({ url: srv.url, flushOnExit: true, labels: { app: 'exit-hook' }, batch: { maxWaitMs: 60_000 } })
  const other = new LokiClient({ url: srv.url, flushOnExit: false, labels: { app: 'no-flush' }, batch: { maxWaitMs: 60_000 } })
  try {
    client.push({ line: 'buffered at the end' })
    other.push({ line: 'kept for close' })
    process.emit('beforeExit', 0)
    await waitUntil(() => client.state === 'closed', 'the hook closed the flushOnExit client', 30_000)
    expect(srv.entries.map((e) => e.line)).toEqual(['buffered at the end'])
    expect(other.state).toBe('open')
  } finally {
    await client.close()
    await other.close()
  }
})
