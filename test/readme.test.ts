// Runs the code the README shows, and every example, so the docs cannot drift from the library.
//
// How README.md's code blocks are run (the convention for whoever edits it):
//
// - Every ```ts, ```js and ```sh block runs in a child process of its own: ts with tsx, js with
//   node (an ES module; CommonJS when it uses require() and no import), sh with bash -e -o pipefail.
//   A block in any other language must be marked not-run.
// - It runs from .scratch/readme/ inside this checkout, so `lokiwire`, `lokiwire/pino`, … resolve
//   to the built dist/ by package self-reference, as they would for a user (a tsconfig.json there,
//   without the repository's `paths`, keeps tsx from mapping them to src/). `npx lokiwire` runs
//   this checkout's CLI, offline.
// - `http://loki:3100` is replaced by the URL of a fresh lokiwire/testing receiver. A block that
//   talks to that receiver (through the URL or a run-with context below) must leave at least one
//   entry in it, including every `line: '…'` it pushes exactly and every `.info('…')` message
//   inside some stored line.
// - `<!-- not-run: reason -->` on the line right before a block skips it. Use it sparingly, and
//   say why (a type declaration, a command that installs or runs this suite).
// - `<!-- run-with: name, … -->` right before a block supplies names a fragment uses but does not
//   define, from CONTEXTS below (`url`, `server`, `client`, …). They are declared above the
//   block's code, which keeps the README line numbers: an error in a block points at its line in
//   README.md.
// - A block that leaves a SIGTERM listener installed gets SIGTERM once its top level has run.
// - A shell block that installs, builds or runs the suite (npm ci, npm test, npm run build…) must be
//   marked not-run: it would pull node_modules or dist/ from under the running suite.
// - Every block must exit 0 within SNIPPET_CAP_MS and print nothing on stderr.
//
// The examples/ run as their header says (`npx tsx examples/<name>.ts` from the repository root,
// each with its own embedded receiver), and must exit 0 with nothing on stderr.
//
// At most two child processes run at a time: the suite shares two cores.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'

const ROOT = resolve(import.meta.dirname, '..')
const SCRATCH = join(ROOT, '.scratch', 'readme')
const README = join(ROOT, 'README.md')
/** A block or example that has not exited by then is killed and fails. */
const SNIPPET_CAP_MS = 60_000
/** What vitest allows one test, waiting for a free slot included. */
const TEST_TIMEOUT_MS = 240_000
const LOKI_PLACEHOLDER = 'http://loki:3100'
/** The line a context logs, so a fragment's delivery can be checked. */
const MARK = 'readme: logged before the block ran'

interface Context {
  /** Declarations placed above the block (ts/js), or files written beside it (sh). */
  code?: (lokiUrl: string) => string
  files?: (lokiUrl: string) => Record<string, string>
  /** The context sends MARK to the receiver: a stored line must contain it. */
  delivers?: boolean
  /** The context points something at the receiver, so the block must deliver. */
  talksToLoki?: boolean
}

const CONTEXTS: Record<string, Context> = {
  url: { code: (u) => `const url = ${JSON.stringify(u)}`, talksToLoki: true },
  server: {
    code: () => `import { createServer as __createServer } from 'node:http'; const server = __createServer((_req, res) => res.end()).listen(0, '127.0.0.1')`,
  },
  client: {
    code: (u) => `import { LokiClient as __LokiClient } from 'lokiwire'; const client = new __LokiClient({ url: ${JSON.stringify(u)}, labels: { app: 'readme' } }); client.push({ line: ${JSON.stringify(MARK)} })`,
    delivers: true,
    talksToLoki: true,
  },
  'pino-worker': {
    code: (u) => `import __pino from 'pino'; const logger = __pino({ transport: { target: 'lokiwire/pino', options: { url: ${JSON.stringify(u)}, labels: { app: 'readme' } } } }); logger.info(${JSON.stringify(MARK)})`,
    delivers: true,
    talksToLoki: true,
  },
  'pino-stream': {
    code: (u) => `import __pino from 'pino'; import { lokiStream as __lokiStream } from 'lokiwire/pino'; const stream = __lokiStream({ url: ${JSON.stringify(u)}, labels: { app: 'readme' } }); const logger = __pino(stream); logger.info(${JSON.stringify(MARK)})`,
    delivers: true,
    talksToLoki: true,
  },
  winston: {
    code: (u) => `import __winston from 'winston'; import { LokiTransport as __LokiTransport } from 'lokiwire/winston'; const transport = new __LokiTransport({ url: ${JSON.stringify(u)}, labels: { app: 'readme' } }); const logger = __winston.createLogger({ transports: [transport] }); logger.info(${JSON.stringify(MARK)})`,
    delivers: true,
    talksToLoki: true,
  },
  'app.js': {
    // `node app.js` in a shell block: a service writing pino-style NDJSON to stdout.
    files: () => ({ 'app.js': `for (let i = 0; i < 3; i++) console.log(JSON.stringify({ level: 30, time: Date.now(), msg: ${JSON.stringify(MARK)} + ' ' + i }))\n` }),
    delivers: true,
  },
}

const RUNNABLE = new Set(['ts', 'js', 'sh'])

interface Block {
  /** 1-based README line of the opening fence. */
  line: number
  lang: string
  code: string
  notRun?: string
  runWith?: string[]
}

/** The fenced blocks of a Markdown text, with the marker comment right before each, if any. */
function parseBlocks(markdown: string): { blocks: Block[]; problems: string[] } {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  const problems: string[] = []
  let marker: { line: number; kind: string; value: string } | undefined
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!
    const m = /^<!--\s*(not-run|run-with)\s*:?\s*(.*?)\s*-->\s*$/.exec(text)
    if (m) {
      if (marker) problems.push(`README line ${marker.line}: marker not followed by a code block`)
      marker = { line: i + 1, kind: m[1]!, value: m[2]! }
      continue
    }
    const open = /^```(\S*)\s*$/.exec(text)
    if (!open) {
      if (marker && text.trim() !== '') {
        problems.push(`README line ${marker.line}: marker not followed by a code block`)
        marker = undefined
      }
      continue
    }
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!)
    if (i >= lines.length) problems.push(`README line ${start + 1}: code block never closed`)
    const block: Block = { line: start + 1, lang: open[1]!, code: body.join('\n') }
    if (marker?.kind === 'not-run') block.notRun = marker.value
    if (marker?.kind === 'run-with') block.runWith = marker.value.split(',').map((s) => s.trim()).filter(Boolean)
    marker = undefined
    blocks.push(block)
  }
  if (marker) problems.push(`README line ${marker.line}: marker not followed by a code block`)
  for (const b of blocks) {
    if (b.notRun === '') problems.push(`README line ${b.line}: not-run needs a reason`)
    if (b.notRun === undefined && !RUNNABLE.has(b.lang)) problems.push(`README line ${b.line}: a \`\`\`${b.lang || '(no language)'} block is neither ts, js nor sh: mark it <!-- not-run: reason -->`)
    for (const name of b.runWith ?? []) if (!(name in CONTEXTS)) problems.push(`README line ${b.line}: unknown run-with context '${name}' (known: ${Object.keys(CONTEXTS).join(', ')})`)
    if (b.runWith?.length === 0) problems.push(`README line ${b.line}: run-with names no context`)
    if (b.notRun === undefined && disturbsTheSuite(b)) problems.push(`README line ${b.line}: a block that installs, builds or runs the suite must be marked not-run`)
  }
  return { blocks, problems }
}

/** A shell block that would reinstall node_modules or rebuild dist/ under the running suite. */
function disturbsTheSuite(b: Block): boolean {
  const commands = b.code.replace(/#.*$/gm, '')
  return b.lang === 'sh' && /\bnpm\s+(ci|i|install|test|t|run\s+(build|test|bench|soak|demo))\b/.test(commands)
}

/** A first line worth naming the test after. */
function title(b: Block): string {
  const first = b.code.split('\n').find((l) => l.trim() !== '' && !/^\s*(\/\/|#|import )/.test(l)) ?? b.code.split('\n')[0] ?? ''
  return first.trim().slice(0, 70)
}

// Two child processes at most, across every test of this file.
let running = 0
const waiting: (() => void)[] = []
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => waiting.push(r))
  running++
  try {
    return await fn()
  } finally {
    running--
    waiting.shift()?.()
  }
}

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  timedOut: boolean
}

// A child must not pick up a Loki or a debug switch from the developer's shell.
const CHILD_ENV: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOKI_') && !k.startsWith('LOKIWIRE_') && k !== 'NODE_OPTIONS' && k !== 'MODE' && k !== 'PORT')),
  // `npx lokiwire` must run this checkout, never fetch anything.
  npm_config_offline: 'true',
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
}

function run(cmd: string, args: string[], cwd: string, opts: { env?: NodeJS.ProcessEnv; onStdout?: (all: string, child: ReturnType<typeof spawn>) => void } = {}): Promise<Run> {
  return new Promise((resolveRun) => {
    // detached: the kill at the cap reaches what a shell block started (npx, node, the CLI).
    const child = spawn(cmd, args, { cwd, env: { ...CHILD_ENV, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      stdout += c
      opts.onStdout?.(stdout, child)
    })
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    const killer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }, SNIPPET_CAP_MS)
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      resolveRun({ code, signal, stdout, stderr, timedOut })
    })
  })
}

function describeRun(where: string, r: Run): string {
  const how = r.timedOut ? `did not exit within ${SNIPPET_CAP_MS / 1000} s` : r.signal ? `was killed by ${r.signal}` : `exited ${r.code}`
  return `${where} ${how}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`
}

const TSX_IMPORT = ['--import', 'tsx']

/** Writes the block where its code sits on its README lines, and returns how to run it. */
function prepare(b: Block, dir: string, lokiUrl: string): { cmd: string; args: string[]; file: string } {
  const contexts = (b.runWith ?? []).map((n) => CONTEXTS[n]!)
  const code = b.code.replaceAll(LOKI_PLACEHOLDER, lokiUrl)
  for (const c of contexts) for (const [name, text] of Object.entries(c.files?.(lokiUrl) ?? {})) writeFileSync(join(dir, name), text)
  const prelude = contexts.flatMap((c) => (c.code ? [c.code(lokiUrl)] : []))
  // The block's first code line lands on README line b.line + 1.
  const pad = b.line - prelude.length
  if (pad < 0) throw new Error(`README line ${b.line}: the run-with prelude is longer than the lines above the block`)
  const head = [...prelude, ...Array<string>(pad).fill('')].join('\n')
  if (b.lang === 'sh') {
    const file = join(dir, 'block.sh')
    writeFileSync(file, `${head}\n${code}\n`)
    return { cmd: 'bash', args: ['-e', '-o', 'pipefail', file], file }
  }
  const epilogue = `\n;if (process.listenerCount('SIGTERM') > 0) process.kill(process.pid, 'SIGTERM')\n`
  const commonJs = b.lang === 'js' && /\brequire\(/.test(code) && !/^\s*import\s/m.test(code)
  const file = join(dir, b.lang === 'ts' ? 'block.ts' : commonJs ? 'block.cjs' : 'block.mjs')
  writeFileSync(file, `${head}\n${code}\n${epilogue}`)
  return { cmd: process.execPath, args: b.lang === 'ts' ? [...TSX_IMPORT, file] : [file], file }
}

/** What a block that talks to the receiver must have left there. */
function checkDelivery(b: Block, srv: LokiTestServer): string[] {
  const contexts = (b.runWith ?? []).map((n) => CONTEXTS[n]!)
  const talks = b.code.includes(LOKI_PLACEHOLDER) || contexts.some((c) => c.talksToLoki || c.delivers)
  if (!talks) return []
  const stored = srv.entries.map((e) => e.line)
  const missing: string[] = []
  if (stored.length === 0) missing.push('at least one entry')
  if (contexts.some((c) => c.delivers) && !stored.some((l) => l.includes(MARK))) missing.push(`a line containing '${MARK}'`)
  for (const m of b.code.matchAll(/\bline:\s*'([^'\\]*)'/g)) if (!stored.includes(m[1]!)) missing.push(`the line '${m[1]}'`)
  for (const m of b.code.matchAll(/\.(?:trace|debug|info|warn|error|fatal)\(\s*'([^'\\]*)'/g)) {
    if (!stored.some((l) => l.includes(m[1]!))) missing.push(`a line containing '${m[1]}'`)
  }
  return missing
}

const { blocks, problems } = parseBlocks(readFileSync(README, 'utf8'))

beforeAll(() => {
  for (const f of ['dist/index.js', 'dist/pino/index.js', 'dist/winston/index.js', 'dist/testing/index.js', 'dist/cli.js']) {
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run \`npm run build\` first (npm test does)`)
  }
  rmSync(SCRATCH, { recursive: true, force: true })
  mkdirSync(SCRATCH, { recursive: true })
  // Found by tsx before the repository's own tsconfig.json, whose `paths` point at src/.
  writeFileSync(join(SCRATCH, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }))
})

// A failure's files stay behind for a look; the message names them.
let keepScratch = false
afterAll(() => {
  if (!keepScratch) rmSync(SCRATCH, { recursive: true, force: true })
})

describe('README.md code blocks', () => {
  it('every block is runnable or marked not-run with a reason, and every marker is well-formed', () => {
    expect(problems).toEqual([])
    expect(blocks.filter((b) => b.notRun === undefined).length).toBeGreaterThan(5)
  })

  for (const b of blocks.filter((x) => x.notRun === undefined && RUNNABLE.has(x.lang))) {
    it.concurrent(`README line ${b.line} (${b.lang}): ${title(b)}`, async () => {
      onTestFailed(() => {
        keepScratch = true
      })
      if (disturbsTheSuite(b)) throw new Error(`README line ${b.line}: not run, it would install, build or run the suite under itself; mark it <!-- not-run: reason -->`)
      const dir = join(SCRATCH, `line-${b.line}`)
      mkdirSync(dir, { recursive: true })
      const srv = await createLokiTestServer()
      try {
        const { cmd, args, file } = prepare(b, dir, srv.url)
        const r = await slot(() => run(cmd, args, dir))
        const where = `README line ${b.line} (run as ${relative(ROOT, file)})`
        expect(r.code === 0 && !r.timedOut, describeRun(where, r)).toBe(true)
        expect(r.stderr, `${where} printed on stderr`).toBe('')
        const missing = checkDelivery(b, srv)
        expect(missing, `${where}: the receiver does not hold ${missing.join(', ')}; it holds ${JSON.stringify(srv.entries.map((e) => e.line).slice(0, 10))}`).toEqual([])
      } finally {
        await srv.close()
      }
    }, TEST_TIMEOUT_MS)
  }
})

describe('examples/', () => {
  const examples = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.ts')).sort()

  it('the README lists every example', () => {
    const readme = readFileSync(README, 'utf8')
    const section = readme.slice(readme.indexOf('### Examples'), readme.indexOf('\n## ', readme.indexOf('### Examples')))
    expect(examples.filter((f) => !section.includes(f))).toEqual([])
  })

  // Run from the repository root as the headers say: tsx maps `lokiwire` to src/ there.
  const runs: { name: string; file: string; env?: NodeJS.ProcessEnv; signal?: boolean }[] = examples.map((file) => ({ name: file, file }))
  runs.push({ name: 'pino.ts with MODE=stream', file: 'pino.ts', env: { MODE: 'stream' } })
  for (const x of runs) if (x.file === 'graceful-shutdown.ts') Object.assign(x, { env: { PORT: '0' }, signal: true })

  for (const x of runs) {
    it.concurrent(`${x.name} runs against its embedded receiver`, async () => {
      let port: number | undefined
      let served: Promise<unknown> | undefined
      const r = await slot(() =>
        run(process.execPath, [...TSX_IMPORT, join('examples', x.file)], ROOT, {
          ...(x.env ? { env: x.env } : {}),
          // The service example: one request once it listens, then SIGTERM, as Kubernetes would.
          ...(x.signal
            ? {
                onStdout: (out, child) => {
                  const m = /listening on http:\/\/localhost:(\d+)/.exec(out)
                  if (m && port === undefined) {
                    port = Number(m[1])
                    served = fetch(`http://127.0.0.1:${port}/hello`)
                      .then((res) => res.text())
                      .catch((err: unknown) => `request failed: ${String(err)}`)
                      .finally(() => child.kill('SIGTERM'))
                  }
                },
              }
            : {}),
        }),
      )
      const where = `examples/${x.file}${x.env ? ` (${JSON.stringify(x.env)})` : ''}`
      expect(r.code === 0 && !r.timedOut, describeRun(where, r)).toBe(true)
      expect(r.stderr, `${where} printed on stderr`).toBe('')
      if (x.signal) {
        expect(await served).toBe('hello\n')
        expect(r.stdout).toMatch(/delivered 3 lines; dropped 0/)
      }
    }, TEST_TIMEOUT_MS)
  }
})
