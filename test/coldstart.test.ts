/*
 * What importing the package loads. undici and snappy are most of what a process would pay for
 * `import('lokiwire')` (see the benchmark's cold start scenario): the client loads them on its
 * first send, never at import, construction or a close() that sent nothing. Checked in a fresh
 * process per module format, on the built package, which is what users import. Both are
 * CommonJS packages, so whichever way they are loaded they land in require.cache: the child lists
 * them from there, and after its first send must find both, which proves the check sees them.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'

const DIST = fileURLToPath(new URL('../dist/', import.meta.url))

/** In a child (`node -e`, CommonJS, so `require.cache` is at hand for both formats): which of the two it has loaded. */
const HEAVY = String.raw`const heavy = () => [...new Set(Object.keys(require.cache)
  .map((k) => /[\\/]node_modules[\\/](undici|snappy)[\\/]/.exec(k)?.[1])
  .filter((m) => m !== undefined))].sort()`

/** Runs in the child. */
const CHILD = `
const [format, entry, url] = process.argv.slice(1)
${HEAVY};(async () => {
  const { LokiClient } = format === 'esm' ? await import(require('node:url').pathToFileURL(entry).href) : require(entry)
  const report = { afterImport: heavy() }
  const idle = new LokiClient({ url, labels: { app: 'idle' } })
  report.idleConnections = idle.stats().connections
  const closed = await idle.close()
  report.idleClosed = closed.ok
  report.afterIdleClose = heavy()
  const client = new LokiClient({ url, labels: { app: 'coldstart' } })
  client.push({ line: 'the first line of a fresh process' })
  report.flushed = (await client.flush({ timeoutMs: 30000 })).ok
  report.afterSend = heavy()
  await client.close()
  process.stdout.write(JSON.stringify(report))
})()
`

/** `client.preload()` pays for them up front: after it, both are loaded, nothing is sent or left open. */
const PRELOAD_CHILD = `
const [entry, url] = process.argv.slice(1)
${HEAVY};(async () => {
  const { LokiClient } = require(entry)
  const closedFirst = new LokiClient({ url, labels: { app: 'preload' } })
  await closedFirst.close()
  await closedFirst.preload()
  const report = { afterClosedPreload: heavy() }
  const client = new LokiClient({ url, labels: { app: 'preload' } })
  await client.preload()
  report.afterPreload = heavy()
  report.connections = client.stats().connections
  report.closed = (await client.close()).ok
  process.stdout.write(JSON.stringify(report))
})()
`

let srv: LokiTestServer
beforeEach(async () => {
  srv = await createLokiTestServer()
})
afterEach(async () => {
  await srv.close()
})

for (const [format, file] of [['esm', 'index.js'], ['cjs', 'index.cjs']] as const) {
  it(`${format}: importing loads neither undici nor snappy; the first send loads them and delivers`, async () => {
    const entry = DIST + file
    if (!existsSync(entry)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)')
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', CHILD, format, entry, srv.url], { timeout: 60_000 })
    expect(JSON.parse(stdout)).toEqual({
      afterImport: [],
      idleConnections: 0,
      idleClosed: true,
      // A client closed before it sent anything did not load the HTTP stack to close it.
      afterIdleClose: [],
      flushed: true,
      afterSend: ['snappy', 'undici'],
    })
    expect(srv.entries.map((e) => e.line)).toEqual(['the first line of a fresh process'])
  }, 90_000)
}

it('client.preload() loads both up front (a no-op once closed) and leaves nothing open', async () => {
  const entry = DIST + 'index.cjs'
  if (!existsSync(entry)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)')
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', PRELOAD_CHILD, entry, srv.url], { timeout: 60_000 })
  expect(JSON.parse(stdout)).toEqual({ afterClosedPreload: [], afterPreload: ['snappy', 'undici'], connections: 0, closed: true })
  expect(srv.entries).toEqual([])
}, 90_000)
