// Runs every example on each runtime of .ci/runtimes/package.json (Node 22, Node 24, Bun, Deno),
// as the examples' headers say and as test/readme.test.ts runs them on Node: each against its own
// embedded receiver (no LOKI_URL), the service example with PORT=0, one request, then SIGTERM.
// Then faults.mjs on each: the client's guarantees against a receiver that fails in Loki's ways.
// `lokiwire` resolves to the built dist/ by package self-reference, so `npm run build` (or
// `npm run build:js`) comes first. A run passes when it exits 0 within its cap with nothing on
// stderr. An example a runtime cannot run is listed in SKIP with the reason, printed, never silent.
//
// Usage: node .ci/runtimes/run.mjs [runtime...]     (after npm ci --prefix .ci/runtimes)
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '..', '..')
const BIN = join(HERE, 'node_modules')
/** A run still going after this is killed and fails. */
const CAP_MS = 60_000
/** Runs at once: CI machines are small, and each example starts a receiver and a client. */
const PARALLEL = 2

const RUNTIMES = {
  // Node 22.18+ and 24 strip TypeScript types natively: no loader, so nothing maps `lokiwire` to src/.
  node22: { cmd: join(BIN, 'node22', 'bin', 'node'), args: [], version: ['--version'] },
  node24: { cmd: join(BIN, 'node24', 'bin', 'node'), args: [], version: ['--version'] },
  // Bun follows the repository's tsconfig `paths` (lokiwire -> src/): a tsconfig without them keeps it on dist/.
  bun: { cmd: join(BIN, '.bin', 'bun'), args: [`--tsconfig-override=${join(HERE, 'tsconfig.json')}`], version: ['--version'] },
  // -A: the examples listen, read env and files, load snappy's native addon and start pino's worker.
  deno: { cmd: join(BIN, '.bin', 'deno'), args: ['run', '-A'], version: ['--version'] },
}

/** runtime -> example -> why it is not run there. Empty today: every example runs everywhere. */
const SKIP = {}

const examples = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.ts')).sort()
const runs = examples.map((file) => ({ name: file, path: join('examples', file), env: {} }))
runs.push({ name: 'pino.ts MODE=stream', path: join('examples', 'pino.ts'), env: { MODE: 'stream' } })
for (const r of runs) if (r.name === 'graceful-shutdown.ts') Object.assign(r, { env: { PORT: '0' }, service: true })
runs.push({ name: 'faults.mjs', path: relative(ROOT, join(HERE, 'faults.mjs')), env: {} })

// A child must not pick up a Loki, a debug switch or a port from the shell that runs CI.
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('LOKI_') && !k.startsWith('LOKIWIRE_') && !['NODE_OPTIONS', 'MODE', 'PORT'].includes(k)),
)

function run(cmd, args, env, onStdout) {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...baseEnv, ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, CAP_MS)
    child.stdout.on('data', (d) => {
      stdout += d
      onStdout?.(stdout, child)
    })
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', (err) => (stderr += String(err)))
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      done({ code, signal, stdout, stderr, timedOut })
    })
  })
}

/** The service example: one request once it listens, then SIGTERM, as Kubernetes would. */
function serviceDriver() {
  const state = { answer: undefined, onStdout: undefined }
  let asked = false
  state.onStdout = (out, child) => {
    const m = /listening on http:\/\/localhost:(\d+)/.exec(out)
    if (!m || asked) return
    asked = true
    state.answer = fetch(`http://127.0.0.1:${m[1]}/hello`)
      .then((res) => res.text())
      .catch((err) => `request failed: ${err}`)
      .finally(() => child.kill('SIGTERM'))
  }
  return state
}

async function one(runtime, rt, x) {
  const why = SKIP[runtime]?.[x.name]
  if (why) return { runtime, name: x.name, skipped: why }
  const driver = x.service ? serviceDriver() : undefined
  const started = performance.now()
  const r = await run(rt.cmd, [...rt.args, x.path], x.env, driver?.onStdout)
  const problems = []
  if (r.timedOut) problems.push(`still running after ${CAP_MS} ms`)
  else if (r.code !== 0) problems.push(`exit ${r.code ?? r.signal}`)
  if (r.stderr !== '') problems.push('printed on stderr')
  if (driver) {
    const answer = await driver.answer
    if (answer !== 'hello\n') problems.push(`the service answered ${JSON.stringify(answer)}`)
    if (!/delivered 3 lines; dropped 0/.test(r.stdout)) problems.push('did not deliver its 3 lines')
  }
  return { runtime, name: x.name, ms: Math.round(performance.now() - started), problems, summary: summarize(r.stdout), r }
}

/** What a run delivered, from its own tally lines: the point of the line printed for it. */
function summarize(stdout) {
  const lines = stdout.trim().split('\n')
  const cases = lines.filter((l) => /^ok\s.*lines delivered/.test(l))
  if (cases.length > 0) {
    const delivered = cases.reduce((n, l) => n + Number(/(\d+) lines delivered/.exec(l)[1]), 0)
    const peaks = cases.map((l) => /receiver peak (\d+)/.exec(l)?.[1]).join('/')
    return `${cases.length} fault cases, ${delivered} lines delivered, receiver peak connections ${peaks}`
  }
  return lines.filter((l) => !l.startsWith('#') && /sent|deliver|holds/.test(l)).slice(0, 3).map((l) => l.slice(0, 90)).join(' | ')
}

const wanted = process.argv.slice(2)
const chosen = Object.entries(RUNTIMES).filter(([name]) => wanted.length === 0 || wanted.includes(name))
if (chosen.length === 0) {
  console.error(`unknown runtime(s) ${wanted.join(', ')}; known: ${Object.keys(RUNTIMES).join(', ')}`)
  process.exit(2)
}
if (!existsSync(join(ROOT, 'dist', 'index.js'))) {
  console.error('dist/ is missing: run `npm run build` first')
  process.exit(2)
}
for (const [name, rt] of chosen) {
  const v = await run(rt.cmd, rt.version, {})
  if (v.code !== 0) {
    console.error(`${name}: ${rt.cmd} does not start (npm ci --prefix .ci/runtimes first?)\n${v.stderr}`)
    process.exit(2)
  }
  console.log(`${name}: ${v.stdout.trim().split('\n')[0]}`)
}

const jobs = chosen.flatMap(([name, rt]) => runs.map((x) => () => one(name, rt, x)))
const results = []
let next = 0
await Promise.all(Array.from({ length: PARALLEL }, async () => {
  while (next < jobs.length) {
    const res = await jobs[next++]()
    results.push(res)
    if (res.skipped) console.log(`SKIP ${res.runtime} ${res.name}: ${res.skipped}`)
    else console.log(`${res.problems.length === 0 ? 'ok  ' : 'FAIL'} ${res.runtime} ${res.name} (${res.ms} ms): ${res.problems.length === 0 ? res.summary : res.problems.join(', ')}`)
  }
}))

const failed = results.filter((x) => !x.skipped && x.problems.length > 0)
for (const f of failed) {
  console.error(`\n--- ${f.runtime} ${f.name}: ${f.problems.join(', ')}`)
  console.error(`stdout:\n${f.r.stdout.slice(-4000)}\nstderr:\n${f.r.stderr.slice(-4000)}`)
}
const skipped = results.filter((x) => x.skipped).length
console.log(`${results.length - skipped - failed.length} passed, ${failed.length} failed, ${skipped} skipped`)
process.exitCode = failed.length === 0 ? 0 : 1
