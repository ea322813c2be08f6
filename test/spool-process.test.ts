import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { killAll, makeAppDir, removeAppDir, requireBuild, runChild, type ChildResult } from './fixtures/app-dir.js'
import { assertExactlyOnce, seqLines, waitUntil } from './helpers.js'

let app: string
let spoolDir: string
let srv: LokiTestServer
let deadUrl: string

beforeAll(async () => {
  requireBuild('index.js')
  app = makeAppDir(['spool-writer.mjs', 'spool-reader.mjs'], [])
  srv = await createLokiTestServer()
  // A port that refuses connections: Loki down for the whole life of a process.
  const probe = createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
  deadUrl = `http://127.0.0.1:${(probe.address() as { port: number }).port}`
  await new Promise<void>((r) => probe.close(() => r()))
})
afterEach(() => killAll())
afterAll(async () => {
  await srv?.close()
  removeAppDir(app)
})
beforeEach(() => {
  srv.reset()
  spoolDir = mkdtempSync(join(app, 'spool-'))
})

// 30 s before the harness kills a child: a cap for a hang, far above what a busy machine needs.
const write = (url: string, count: number, mode: string) =>
  runChild(app, 'spool-writer.mjs', [url, spoolDir, String(count), mode], { timeoutMs: 30_000 })

async function replay(): Promise<{ stats: { spool: { loaded: number; errors: number }; sent: { entries: number } }; problems: string[] }> {
  const r = await runChild(app, 'spool-reader.mjs', [srv.url, spoolDir], { timeoutMs: 30_000 }).result
  expect(r).toMatchObject({ killed: false, code: 0, stderr: '' })
  return r.messages[0] as never
}

it('process.exit() right after logging 10,000 lines: the spool keeps them and the next start delivers them', async () => {
  srv.setFault({ type: 'stall' }) // nothing can be delivered before the exit
  const w: ChildResult = await write(srv.url, 10_000, 'exit').result
  expect(w).toMatchObject({ killed: false, code: 0, stderr: '' })
  srv.setFault(null)
  expect(readdirSync(spoolDir).length).toBeGreaterThan(0)
  const r = await replay()
  expect(r.stats.spool.loaded).toBe(10_000)
  assertExactlyOnce(srv.entries, seqLines(10_000))
  expect(readdirSync(spoolDir)).toEqual([])
})

it('an uncaught exception still spools what was buffered', async () => {
  const w = await write(deadUrl, 2000, 'throw').result
  expect(w).toMatchObject({ killed: false, code: 1 })
  expect(w.stderr).toContain('boom (expected by the test)')
  const r = await replay()
  assertExactlyOnce(srv.entries, seqLines(2000))
  expect(r.problems).toEqual([])
})

it('Loki down for the whole life of one process, up for the next: nothing is lost', async () => {
  const w = await write(deadUrl, 5000, 'natural').result
  expect(w).toMatchObject({ killed: false, code: 0, stderr: '' })
  await replay()
  assertExactlyOnce(srv.entries, seqLines(5000))
})

it('kill -9 in the middle of spooling: complete records replay, a torn tail is reported and skipped', async () => {
  const w = write(deadUrl, 0, 'forever')
  // Once the writer has spooled a good amount it is still writing: kill it hard mid-stream. The
  // wait is a cap (inside the writer's kill timer), long because a busy machine starts it slowly.
  const spooled = () => readdirSync(spoolDir).reduce((n, f) => n + statSync(join(spoolDir, f)).size, 0)
  await waitUntil(() => spooled() > 256 * 1024, 'the writer to spool 256 KiB', 25_000)
  w.child.kill('SIGKILL')
  const ended = await w.result
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

/** The writer under a file size limit (`ulimit -f`, in blocks), which cuts a write short as a full disk does. */
function writeLimited(url: string, count: number, blocks: number): Promise<{ code: number | null; stats: Stats; stderr: string }> {
  const child = spawn('sh', ['-c', `ulimit -f ${blocks} && exec "$0" "$@"`, process.execPath, 'spool-writer.mjs', url, spoolDir, String(count), 'natural'], {
    cwd: app,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c))
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  // A cap for a hang, as for the other children.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer)
      const last = stdout.trim().split('\n').at(-1) ?? '{}'
      resolve({ code, stats: (JSON.parse(last) as { stats: Stats }).stats, stderr })
    })
  })
}
interface Stats {
  spool: { written: number; loaded: number; errors: number }
  dropped: { total: number }
}

it.skipIf(process.platform === 'win32')('a write cut short (disk full): the batch is dropped, not counted as spooled, and every entry counted as spooled replays', async () => {
  // Node ignores SIGXFSZ: past the limit a write returns fewer bytes than asked, or fails.
  const w = await writeLimited(deadUrl, 20_000, 64)
  // What did not fit is dropped and, with no 'drop' listener, reported as a warning.
  expect(w.code).toBe(0)
  expect(w.stderr).not.toMatch(/Error/)
  expect(w.stats.spool.written).toBeGreaterThan(0)
  expect(w.stats.spool.errors).toBeGreaterThan(0)
  expect(w.stats.spool.written + w.stats.dropped.total).toBe(20_000)
  const r = await replay()
  // Not r.problems: the first segment is read while the reader's client is constructed, before
  // it can listen. A torn record would show as a truncated_segment problem here.
  expect(r.stats.spool.errors).toBe(0)
  expect(r.stats.spool.loaded).toBe(w.stats.spool.written)
  expect(srv.entries).toHaveLength(w.stats.spool.written)
  expect(readdirSync(spoolDir)).toEqual([])
})
