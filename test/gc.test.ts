// Leaks decided by the garbage collector, not by counting handles: every client, pino stream and
// winston transport that was used and then closed (or destroyed) must be collected, and the
// process must be left as it was found: no 'exit' or 'beforeExit' listener and no timer, ref'd or
// unref'd, outliving its owner. process.getActiveResourcesInfo() cannot show this: it does not
// list unref'd timers, and a listener or a Set entry keeps a client alive without any handle.
// Needs --expose-gc (vitest.config.ts passes it to every test process).
import pino from 'pino'
import winston from 'winston'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import { lokiStream } from '../src/adapters/pino.js'
import { LokiTransport } from '../src/adapters/winston.js'
import { LokiClient } from '../src/client/client.js'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { mapLimit, trackTimers, waitUntil } from './helpers.js'

const gc = (globalThis as { gc?: () => void }).gc

let srv: LokiTestServer
beforeAll(async () => {
  if (gc === undefined) throw new Error('these tests need node --expose-gc (see execArgv in vitest.config.ts)')
  srv = await createLokiTestServer()
})
afterAll(async () => {
  await srv?.close()
})
beforeEach(() => srv.reset())

// Close and request deadlines far longer than any wait below: a deadline timer left running must
// still be running when it is looked for, and must not let go of its client on its own before the
// collector is asked.
const DEADLINE_MS = 120_000
/** How long timers and sockets get to wind down after the last close (they need well under a second). */
const SETTLE_MS = 15_000
/** How long the collector gets to find every object unreachable. */
const COLLECT_MS = 15_000
/** Clients, streams or transports used at once: enough to overlap, few enough for a small machine. */
const AT_ONCE = 10

interface Watch {
  /** Registers `obj` with the collector's books under a readable name. */
  (obj: object, what: string): void
}

const exitListeners = () => ({ exit: process.listenerCount('exit'), beforeExit: process.listenerCount('beforeExit') })

/**
 * Runs `scenario`, which creates, uses and ends objects it hands to `watch` and keeps no reference
 * to. Then: the exit listeners are back to what they were, every timer started during the
 * scenario has fired or been cleared, and every watched object is collected.
 */
async function expectNothingLeft(scenario: (watch: Watch) => Promise<void>): Promise<void> {
  const listenersBefore = exitListeners()
  // One client used and closed first: module-level state (undici's shared timer wheel, lazily
  // loaded encoders) exists from then on and is nobody's leak.
  await useClient({ url: srv.url, labels: { app: 'warm-up' } }, 'close')
  await srv.waitFor((s) => s.connections.open === 0, { timeoutMs: SETTLE_MS })
  expect(exitListeners(), 'exit listeners after one client was closed').toEqual(listenersBefore)

  const alive = new Set<string>()
  const registry = new FinalizationRegistry<string>((name) => alive.delete(name))
  let watched = 0
  const timers = trackTimers()
  try {
    await scenario((obj, what) => {
      const name = `${what} #${watched++}`
      alive.add(name)
      registry.register(obj, name)
    })
    expect(watched).toBeGreaterThan(0)
    expect(exitListeners()).toEqual(listenersBefore)
    // The receiver's side of each connection and undici's shared timer wind down on their own.
    await srv.waitFor((s) => s.connections.open === 0, { timeoutMs: SETTLE_MS })
    await waitUntil(() => timers.live().length === 0, 'timers to end', SETTLE_MS).catch(() => {})
    expect(timers.live(), 'timers still running after everything was closed, by creation site').toEqual([])
  } finally {
    timers.stop()
  }
  const until = Date.now() + COLLECT_MS
  while (alive.size > 0 && Date.now() < until) {
    gc!()
    // FinalizationRegistry callbacks run as tasks of their own, after the collection.
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  expect([...alive], 'objects still reachable after close').toEqual([])
}

/** One client through its whole life: push, flush, push, then close() or destroy(). */
let clientSeq = 0
async function useClient(options: ConstructorParameters<typeof LokiClient>[0], end: 'close' | 'destroy', watch?: Watch): Promise<void> {
  const client = new LokiClient(options)
  // Lines unique across clients: the receiver drops identical entries as duplicates.
  const id = clientSeq++
  watch?.(client, 'LokiClient')
  let sent = 0
  client.on('sent', (e) => (sent += e.entries))
  for (let i = 0; i < 20; i++) client.push({ line: `client ${id} first ${i}` })
  // No deadline: the flush's own timer must still be cleared when the entries arrive first.
  const flushed = await client.flush()
  expect(flushed.ok).toBe(true)
  for (let i = 0; i < 20; i++) client.push({ line: `client ${id} second ${i}` })
  // Entries still pending: close() and destroy() have batches to deliver or abort.
  if (end === 'close') {
    const closed = await client.close()
    expect(closed).toMatchObject({ ok: true, droppedEntries: 0 })
    expect(sent).toBe(40)
  } else {
    await client.destroy()
    expect(client.stats().state).toBe('destroyed')
  }
}

const clientOptions = () => ({ url: srv.url, labels: { app: 'gc' }, closeTimeoutMs: DEADLINE_MS, requestTimeoutMs: DEADLINE_MS, batch: { maxEntries: 10 } })
const hundred = Array.from({ length: 100 }, (_, i) => i)
const twenty = hundred.slice(0, 20)

it('100 clients used and closed are collected, with no exit listener or timer left behind', async () => {
  await expectNothingLeft(async (watch) => {
    await mapLimit(hundred, AT_ONCE, () => useClient(clientOptions(), 'close', watch))
  })
  expect(srv.entries.filter((e) => e.labels.app === 'gc')).toHaveLength(100 * 40)
}, 60_000)

it('100 clients used and destroyed are collected, with no exit listener or timer left behind', async () => {
  await expectNothingLeft(async (watch) => {
    await mapLimit(hundred, AT_ONCE, () => useClient(clientOptions(), 'destroy', watch))
  })
}, 60_000)

/** A pino logger on an in-process stream: lines, a flush, then close() or destroy(). */
async function usePino(end: 'close' | 'destroy', watch: Watch): Promise<void> {
  const stream = lokiStream({ ...clientOptions(), onFailure: 'silent' })
  const logger = pino(stream)
  watch(stream, 'LokiPinoStream')
  watch(stream.client, 'LokiPinoStream.client')
  watch(logger, 'pino logger')
  for (let seq = 0; seq < 50; seq++) logger.info({ seq }, 'gc')
  await new Promise<void>((resolve) => stream.flush(() => resolve()))
  for (let seq = 50; seq < 100; seq++) logger.info({ seq }, 'gc')
  if (end === 'close') expect(await stream.close()).toMatchObject({ ok: true, droppedEntries: 0 })
  else await stream.destroy()
}

it('20 in-process pino streams, closed or destroyed, are collected with their clients and loggers', async () => {
  await expectNothingLeft(async (watch) => {
    await mapLimit(twenty, AT_ONCE, (i) => usePino(i % 2 === 0 ? 'close' : 'destroy', watch))
  })
}, 60_000)

/** A winston logger with one transport: lines, then logger.end() (waiting for 'finish') or destroy(). */
async function useWinston(end: 'end' | 'destroy', watch: Watch): Promise<void> {
  const transport = new LokiTransport({ ...clientOptions(), onFailure: 'silent' })
  const logger = winston.createLogger({ transports: [transport] })
  watch(transport, 'LokiTransport')
  watch(transport.client, 'LokiTransport.client')
  watch(logger, 'winston logger')
  for (let seq = 0; seq < 50; seq++) logger.info('gc', { seq })
  await transport.flush()
  for (let seq = 50; seq < 100; seq++) logger.info('gc', { seq })
  if (end === 'end') {
    await new Promise<void>((resolve) => {
      logger.once('finish', () => resolve())
      logger.end()
    })
    expect(transport.client.stats()).toMatchObject({ state: 'closed', dropped: { total: 0 } })
  } else {
    await new Promise<void>((resolve) => {
      transport.once('close', () => resolve())
      transport.destroy()
    })
    await waitUntil(() => transport.client.stats().state === 'destroyed', 'the transport to destroy its client')
  }
}

it('20 winston transports, ended or destroyed, are collected with their clients and loggers', async () => {
  await expectNothingLeft(async (watch) => {
    await mapLimit(twenty, AT_ONCE, (i) => useWinston(i % 2 === 0 ? 'end' : 'destroy', watch))
  })
}, 60_000)
