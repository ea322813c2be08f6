import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

// The layering the architecture promises, checked on the sources: what a user's import loads.
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
/** The published entry points, as tsup.config.ts lists them, minus lokiwire/testing itself. */
const SHIPPED = ['src/index.ts', 'src/adapters/pino.ts', 'src/adapters/winston.ts', 'src/compat/pino-loki.ts', 'src/metrics/prometheus.ts', 'src/metrics/opentelemetry.ts']
SHIPPED.push('src/compat/winston-loki.ts')

/** Every source file `entry` reaches through relative imports (static, dynamic and re-exports). */
function reach(entry: string): Set<string> {
  const seen = new Set<string>()
  const todo = [entry]
  while (todo.length > 0) {
    const file = todo.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    const src = readFileSync(join(root, file), 'utf8')
    for (const m of src.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      todo.push(relative(root, join(root, dirname(file), m[1]!.replace(/\.js$/, '.ts'))))
    }
  }
  return seen
}

it.each(SHIPPED)('%s never loads the test receiver or its strict decoders (src/testing)', (entry) => {
  const reached = [...reach(entry)]
  expect(reached.length).toBeGreaterThan(SHIPPED.indexOf(entry) === 0 ? 10 : 1)
  expect(reached.filter((f) => f.startsWith('src/testing/'))).toEqual([])
})

// The same on the build the package publishes (`npm test` builds it first): every chunk a
// shipped entry loads, for ESM and CJS, is free of the testing module's decoders.
const BUILT = [
  'dist/index.js', 'dist/index.cjs', 'dist/pino/index.js', 'dist/pino/index.cjs', 'dist/winston/index.js', 'dist/winston/index.cjs',
  'dist/prometheus/index.js', 'dist/prometheus/index.cjs', 'dist/opentelemetry/index.js', 'dist/opentelemetry/index.cjs',
  'dist/pino-loki/index.js', 'dist/pino-loki/index.cjs',
]
BUILT.push('dist/winston-loki/index.js', 'dist/winston-loki/index.cjs')

function reachBuilt(entry: string): Map<string, string> {
  const seen = new Map<string, string>()
  const todo = [entry]
  while (todo.length > 0) {
    const file = todo.pop()!
    if (seen.has(file)) continue
    const src = readFileSync(join(root, file), 'utf8')
    seen.set(file, src)
    for (const m of src.matchAll(/(?:from|import|require)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) todo.push(relative(root, join(root, dirname(file), m[1]!)))
  }
  return seen
}

it.each(BUILT)('built %s loads no chunk of lokiwire/testing', (entry) => {
  const reached = reachBuilt(entry)
  expect(reached.size).toBeGreaterThan(1) // the core chunk, at least
  for (const [file, src] of reached) {
    expect(file.startsWith('dist/testing/'), file).toBe(false)
    // Names only the testing module defines: bundling keeps them, wherever its code lands.
    expect(/\bfunction (decodePushRequest|decodeJsonPush|createLokiTestServer)\b/.test(src), `${file} holds testing code`).toBe(false)
  }
})

/** The shipped library's sources: everything but the test receiver and the CLI. */
function librarySources(): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const entry of readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue
    const file = relative(root, join(entry.parentPath, entry.name))
    if (file.startsWith('src/testing/') || file.startsWith('src/cli/')) continue
    out.push([file, readFileSync(join(root, file), 'utf8')])
  }
  expect(out.length).toBeGreaterThan(20)
  return out
}

function offenders(pattern: RegExp, allowed: readonly string[]): string[] {
  return librarySources().flatMap(([file, src]) =>
    allowed.includes(file) ? [] : src.split('\n').flatMap((line, i) => (pattern.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
  )
}

it('nothing above the transport (transport.ts, proxy.ts) reads an HTTP status: SendResult carries the failure class', () => {
  expect(offenders(/\bstatus(Code)?\s*(===|!==|==|!=|>=|<=|<|>)\s*\d/, ['src/transport/transport.ts', 'src/transport/proxy.ts', 'src/transport/refused.ts'])).toEqual([])
})

it('error codes are named through ErrorCodes, never spelled as literals outside errors.ts', () => {
  expect(offenders(/['"`]LOKI_[A-Z_]+['"`]/, ['src/model/errors.ts'])).toEqual([])
})

it('the settlement is the one owner of the end of a batch: nothing else finishes one', () => {
  expect(offenders(/\.finish\(/, ['src/pipeline/settlement.ts'])).toEqual([])
})

/** ARCHITECTURE.md's layers, top down, by folder under src/; imports may only point down. */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['client'],
  ['pipeline'],
  ['spool', 'transport'],
  ['encode'],
  ['model'],
]
/** On top of the library, using only LokiClient and the model: the entry points, the loggers' side, the metrics. */
const ABOVE = new Set(['index.ts', 'compat', 'adapters', 'records', 'metrics'])
/** The loggers' side, top down: other loggers' options (compat) over the adapters over the one mapping. */
const LOGGER_SIDE = ['compat', 'adapters', 'records']
/** Type-only imports that point up today; they go away when their types move to the model. */
const UPWARD_ALLOWED = new Set(['model/options -> encode/index', 'model/options -> spool/spool', 'model/events -> pipeline/breaker'])

it('imports point down the layers of ARCHITECTURE.md, never up, and every module sits in one', () => {
  const level = new Map<string, number>()
  LAYERS.forEach((names, i) => names.forEach((n) => level.set(n, i)))
  const up: string[] = []
  const homeless: string[] = []
  for (const [file, src] of librarySources()) {
    const me = file.replace(/^src\//, '').replace(/\.ts$/, '')
    const folder = me.split('/')[0]!
    const mine = level.get(folder)
    if (mine === undefined) {
      if (!ABOVE.has(folder) && !ABOVE.has(`${me}.ts`)) homeless.push(file)
      const side = LOGGER_SIDE.indexOf(folder)
      for (const m of side === -1 ? [] : src.matchAll(/from\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
        const dep = relative(join(root, 'src'), join(root, dirname(file), m[1]!))
        const theirs = LOGGER_SIDE.indexOf(dep.split('/')[0]!)
        if (theirs !== -1 && theirs < side) up.push(`${me} -> ${dep}`)
      }
      continue
    }
    for (const m of src.matchAll(/from\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
      const dep = relative(join(root, 'src'), join(root, dirname(file), m[1]!))
      const theirs = level.get(dep.split('/')[0]!)
      // Below the adapters nothing may import the loggers' side (records/, adapters/) either.
      if (ABOVE.has(dep.split('/')[0]!)) up.push(`${me} -> ${dep}`)
      else if (theirs !== undefined && theirs < mine && !UPWARD_ALLOWED.has(`${me} -> ${dep}`)) up.push(`${me} -> ${dep}`)
    }
  }
  expect(homeless).toEqual([])
  expect(up).toEqual([])
})

it('the metrics read the public surface only, and the core never reaches them or their peers', () => {
  const metrics = librarySources().filter(([file]) => file.startsWith('src/metrics/'))
  expect(metrics.length).toBeGreaterThanOrEqual(3)
  const outside: string[] = []
  for (const [file, src] of metrics) {
    for (const m of src.matchAll(/from\s*['"](\.{1,2}\/[^'"]+)['"]/g)) if (m[1] !== '../index.js' && !m[1]!.startsWith('./')) outside.push(`${file} -> ${m[1]}`)
  }
  expect(outside).toEqual([])
  for (const entry of ['src/index.ts', 'src/adapters/pino.ts', 'src/adapters/winston.ts']) {
    const reached = [...reach(entry)]
    expect(reached.filter((f) => f.startsWith('src/metrics/')), entry).toEqual([])
    expect(reached.filter((f) => /from\s*['"](prom-client|@opentelemetry\/[^'"]+)['"]/.test(readFileSync(join(root, f), 'utf8'))), entry).toEqual([])
  }
  for (const entry of ['dist/index.js', 'dist/index.cjs']) {
    for (const [file, src] of reachBuilt(entry)) expect(/['"](prom-client|@opentelemetry\/[^'"]+)['"]/.test(src), `${file} loads a metrics peer`).toBe(false)
  }
})
