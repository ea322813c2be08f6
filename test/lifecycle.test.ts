import { spawn } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { assertExactlyOnce, seqLines } from './helpers.js'

// Fixtures import 'lokiwire' the way a user does: through a node_modules link to the built package.
const root = resolve(import.meta.dirname, '..')
let sandbox: string
let srv: LokiTestServer

beforeAll(async () => {
  if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)')
  sandbox = mkdtempSync(join(tmpdir(), 'lokiwire-fixture-'))
  mkdirSync(join(sandbox, 'node_modules'))
  symlinkSync(root, join(sandbox, 'node_modules', 'lokiwire'), 'dir')
  srv = await createLokiTestServer()
})
afterAll(async () => {
  await srv?.close()
  if (sandbox) rmSync(sandbox, { recursive: true, force: true })
})

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs a fixture with a hard kill deadline so a hanging child fails the test instead of the suite. */
function run(fixture: string, args: string[], nodeArgs: string[] = [], killAfterMs = 15_000): Promise<Run> {
  const script = join(sandbox, fixture)
  rmSync(script, { force: true })
  symlinkSync(join(root, 'test', 'fixtures', fixture), script)
  return new Promise((resolvePromise) => {
    const started = Date.now()
    const child = spawn(process.execPath, [...nodeArgs, '--preserve-symlinks-main', script, ...args], { cwd: sandbox, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    child.stderr.on('data', (c) => (stderr += c))
    const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      resolvePromise({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

it('an idle client does not keep the process alive', async () => {
  const r = await run('idle.mjs', [srv.url])
  expect(r.signal).toBeNull()
  expect(r.code).toBe(0)
  expect(r.stdout.trim()).toBe('open')
  expect(r.stderr).toBe('')
})

it('a process that ends naturally delivers its buffered lines first, then exits', async () => {
  srv.reset()
  const r = await run('natural-exit.mjs', [srv.url, '5000', '5000'])
  expect(r.signal).toBeNull()
  expect(r.code).toBe(0)
  expect(r.stderr).toBe('')
  assertExactlyOnce(srv.entries, seqLines(5000))
  const stats = JSON.parse(r.stdout)
  expect(stats).toMatchObject({ pushed: 5000, sent: { entries: 5000 }, dropped: { total: 0 }, state: 'closed' })
})

it('with Loki stalled, natural exit waits no longer than the close deadline and accounts the loss', async () => {
  srv.reset()
  srv.setFault({ type: 'stall' })
  const r = await run('natural-exit.mjs', [srv.url, '100', '700'])
  srv.setFault(null)
  expect(r.signal).toBeNull()
  expect(r.code).toBe(0)
  const stats = JSON.parse(r.stdout)
  expect(stats).toMatchObject({ pushed: 100, sent: { entries: 0 }, dropped: { total: 100, close_timeout: 100 } })
  // Bounded by the 700 ms deadline plus process start-up (generous: this is not a timing claim).
  expect(r.ms).toBeLessThan(700 + 5000)
})

it('heap returns to its baseline after 200k entries are delivered', async () => {
  srv.reset()
  const r = await run('heap.mjs', [srv.url, '200000'], ['--expose-gc'], 60_000)
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  const { before, after, sent, dropped } = JSON.parse(r.stdout)
  expect(sent).toBe(210_000)
  expect(dropped).toBe(0)
  // 200k entries of ~80 bytes are ~16 MB of lines: keeping any of them would show.
  expect(after - before).toBeLessThan(2 * 1024 * 1024)
  expect(srv.entries.length).toBe(210_000)
})
