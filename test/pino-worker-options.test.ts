// pino's worker transport given options it cannot use: the host must keep running, say once
// what to fix, and account for the lines it could not ship. Real pino, the built worker, a child.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { killAll, makeAppDir, removeAppDir, requireBuild, runChild } from './fixtures/app-dir.js'

let dir: string | undefined
let server: LokiTestServer | undefined

beforeAll(() => {
  requireBuild('pino/index.js', 'pino/index.cjs')
  dir = makeAppDir(['pino-app.mjs'], ['pino'])
})

afterEach(async () => {
  killAll()
  await server?.close()
  server = undefined
})

afterAll(() => removeAppDir(dir))

it('a bad option does not crash the host: one line on stderr names it, the lines are discarded and counted', async () => {
  server = await createLokiTestServer()
  const opts = JSON.stringify({ url: 'ftp://x' })
  // 'flush' logs, then waits for logger.flush(cb), which needs the worker up and answering.
  const app = runChild(dir!, 'pino-app.mjs', ['flush', server.url, '100', opts], { timeoutMs: 15_000 })
  await app.message((m) => typeof m.flushed === 'number')
  const r = await app.result
  expect(r.killed).toBe(false)
  expect(r.code, r.stderr).toBe(0)
  const lines = r.stderr.trimEnd().split('\n')
  expect(lines, r.stderr).toHaveLength(2)
  expect(lines[0]).toMatch(/^lokiwire\/pino: Invalid option "url": .*Fix it in the options of pino's transport/)
  expect(lines[1]).toBe('lokiwire/pino: discarded 100 log lines because of the invalid option "url"')
  expect(server.requests).toHaveLength(0)
})

it('an invalid adapter option is reported the same way, and a natural exit stays clean', async () => {
  server = await createLokiTestServer()
  const opts = JSON.stringify({ levelAs: 'nowhere' })
  const r = await runChild(dir!, 'pino-app.mjs', ['natural', server.url, '3', opts], { timeoutMs: 15_000 }).result
  expect(r.killed).toBe(false)
  expect(r.code, r.stderr).toBe(0)
  expect(r.stderr).toMatch(/^lokiwire\/pino: Invalid option "levelAs": expected one of 'label', 'metadata', 'none', got "nowhere"\. Fix it/)
  expect(r.stderr).toContain('lokiwire/pino: discarded 3 log lines because of the invalid option "levelAs"')
  expect(server.requests).toHaveLength(0)
})
