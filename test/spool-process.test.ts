import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { assertExactlyOnce, seqLines, waitUntil } from './helpers.js'

const root = resolve(import.meta.dirname, '..')
let sandbox: string
let spoolDir: string
let srv: LokiTestServer
let deadUrl: string

beforeAll(async () => {
  if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)')
  sandbox = mkdtempSync(join(tmpdir(), 'lokiwire-spool-proc-'))
  mkdirSync(join(sandbox, 'node_modules'))
  symlinkSync(root, join(sandbox, 'node_modules', 'lokiwire'), 'dir')
  for (const f of ['spool-writer.mjs', 'spool-reader.mjs']) symlinkSync(join(root, 'test', 'fixtures', f), join(sandbox, f))
  srv = await createLokiTestServer()
  // A port that refuses connections: Loki down for the whole life of a process.
  const probe = createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
  deadUrl = `http://127.0.0.1:${(probe.address() as { port: number }).port}`
  await new Promise<void>((r) => probe.close(() => r()))
})
afterAll(async () => {
  await srv?.close()
  if (sandbox) rmSync(sandbox, { recursive: true, force: true })
})
beforeEach(() => {
  srv.reset()
  spoolDir = mkdtempSync(join(sandbox, 'spool-'))
})

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function start(script: string, args: string[], killAfterMs = 15_000) {
  const child = spawn(process.execPath, ['--preserve-symlinks-main', join(sandbox, script), ...args], { cwd: sandbox, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c) => (stdout += c))
  child.stderr.on('data', (c) => (stderr += c))
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
  const done = new Promise<Run>((r) => child.on('close', (code, signal) => {
    clearTimeout(killer)
    r({ code, signal, stdout, stderr })
  }))
  return { child, done, out: () => stdout }
}

async function replay(): Promise<{ stats: { spool: { loaded: number; errors: number }; sent: { entries: number } }; problems: string[] }> {
  const r = await start('spool-reader.mjs', [srv.url, spoolDir]).done
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return JSON.parse(r.stdout)
}

it('process.exit() right after logging 10,000 lines: the spool keeps them and the next start delivers them', async () => {
  srv.setFault({ type: 'stall' }) // nothing can be delivered before the exit
  const w = await start('spool-writer.mjs', [srv.url, spoolDir, '10000', 'exit']).done
  expect(w.code).toBe(0)
  expect(w.stderr).toBe('')
  srv.setFault(null)
  expect(readdirSync(spoolDir).length).toBeGreaterThan(0)
  const r = await replay()
  expect(r.stats.spool.loaded).toBe(10_000)
  assertExactlyOnce(srv.entries, seqLines(10_000))
  expect(readdirSync(spoolDir)).toEqual([])
})

it('an uncaught exception still spools what was buffered', async () => {
  const w = await start('spool-writer.mjs', [deadUrl, spoolDir, '2000', 'throw']).done
  expect(w.code).toBe(1)
  expect(w.stderr).toContain('boom (expected by the test)')
  const r = await replay()
  assertExactlyOnce(srv.entries, seqLines(2000))
  expect(r.problems).toEqual([])
})

it('Loki down for the whole life of one process, up for the next: nothing is lost', async () => {
  const w = await start('spool-writer.mjs', [deadUrl, spoolDir, '5000', 'natural']).done
  expect(w.code).toBe(0)
  expect(w.stderr).toBe('')
  await replay()
  assertExactlyOnce(srv.entries, seqLines(5000))
})

it('kill -9 in the middle of spooling: complete records replay, a torn tail is reported and skipped', async () => {
  const w = start('spool-writer.mjs', [deadUrl, spoolDir, '0', 'forever'])
  // Once the writer has spooled a good amount it is still writing: kill it hard mid-stream.
  const spooled = () => readdirSync(spoolDir).reduce((n, f) => n + statSync(join(spoolDir, f)).size, 0)
  await waitUntil(() => spooled() > 256 * 1024, 'the writer to spool 256 KiB', 10_000)
  w.child.kill('SIGKILL')
  const ended = await w.done
  expect(ended.signal).toBe('SIGKILL')
  const r = await replay()
  // Every replayed line is a well-formed one from the writer, each at most once, and the
  // only problem allowed is the one torn record at the tail.
  const lines = srv.entries.map((e) => e.line)
  expect(lines.length).toBeGreaterThan(0)
  expect(new Set(lines).size).toBe(lines.length)
  for (const l of lines) expect(l).toMatch(/^line seq=\d+$/)
  expect(r.problems.filter((p) => p !== 'truncated_segment')).toEqual([])
  expect(r.stats.spool.loaded).toBe(lines.length)
})
