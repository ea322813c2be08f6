import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { killAll, makeAppDir, removeAppDir, requireBuild, runChild } from './fixtures/app-dir.js'
import { assertExactlyOnce, seqLines } from './helpers.js'

// Fixtures import 'lokiwire' the way a user does: through node_modules, to the built package.
let app: string
let srv: LokiTestServer

beforeAll(async () => {
  requireBuild('index.js')
  app = makeAppDir(['idle.mjs', 'natural-exit.mjs', 'heap.mjs', 'exit-drops.mjs'], [])
  srv = await createLokiTestServer()
})
afterEach(() => killAll())
afterAll(async () => {
  await srv?.close()
  removeAppDir(app)
})

it('an idle client does not keep the process alive', async () => {
  const r = await runChild(app, 'idle.mjs', [srv.url], { timeoutMs: 15_000 }).result
  expect(r).toMatchObject({ killed: false, signal: null, code: 0, stderr: '' })
  expect(r.messages).toEqual([{ state: 'open' }])
})

it('a process that ends naturally delivers its buffered lines first, then exits', async () => {
  srv.reset()
  const r = await runChild(app, 'natural-exit.mjs', [srv.url, '5000', '5000'], { timeoutMs: 15_000 }).result
  expect(r).toMatchObject({ killed: false, signal: null, code: 0, stderr: '' })
  assertExactlyOnce(srv.entries, seqLines(5000))
  expect(r.messages[0]).toMatchObject({ pushed: 5000, sent: { entries: 5000 }, dropped: { total: 0 }, state: 'closed' })
})

it('with Loki stalled, natural exit waits no longer than the close deadline and accounts the loss', async () => {
  srv.reset()
  srv.setFault({ type: 'stall' })
  // No clock needed: the fixture's requests wait 60 s, past the 15 s kill, so a process that
  // exits on its own with the loss counted as close_timeout was ended by the close deadline.
  const r = await runChild(app, 'natural-exit.mjs', [srv.url, '100', '700'], { timeoutMs: 15_000 }).result
  srv.setFault(null)
  expect(r).toMatchObject({ killed: false, signal: null, code: 0 })
  expect(r.messages[0]).toMatchObject({ pushed: 100, sent: { entries: 0 }, dropped: { total: 100, close_timeout: 100 } })
})

it('process.exit() with lines buffered and no \'drop\' listener: the loss is counted and printed as a LOKIWIRE_DROPPED warning', async () => {
  srv.reset()
  const r = await runChild(app, 'exit-drops.mjs', [srv.url, '10'], { timeoutMs: 15_000 }).result
  expect(r).toMatchObject({ killed: false, signal: null, code: 0 })
  // One warning for everything: the refused entry and the lines the exit cut off.
  expect(r.stderr).toMatch(/\[LOKIWIRE_DROPPED\] Warning: lokiwire dropped 11 log entries \(invalid_entry: 1, exit: 10\)/)
  expect(r.stderr.match(/LOKIWIRE_DROPPED/g)).toHaveLength(1)
  const s = r.messages[0] as { pushed: number; dropped: { total: number; exit: number }; buffered: { entries: number }; inFlight: { entries: number }; sent: { entries: number } }
  expect(s).toMatchObject({ pushed: 11, dropped: { total: 11, exit: 10 }, buffered: { entries: 0 }, inFlight: { entries: 0 } })
  expect(srv.entries.length).toBe(s.sent.entries)
})

it('heap returns to its baseline after 200k entries are delivered', async () => {
  srv.reset()
  const r = await runChild(app, 'heap.mjs', [srv.url, '200000'], { timeoutMs: 60_000, nodeArgs: ['--expose-gc'] }).result
  expect(r).toMatchObject({ killed: false, code: 0, stderr: '' })
  const { before, after, sent, dropped } = r.messages[0] as { before: number; after: number; sent: number; dropped: number }
  expect(sent).toBe(210_000)
  expect(dropped).toBe(0)
  // 200k entries of ~80 bytes are ~16 MB of lines: keeping any of them would show.
  expect(after - before).toBeLessThan(2 * 1024 * 1024)
  expect(srv.entries.length).toBe(210_000)
})
