// lokiwire/winston installed without its optional peer winston-transport: the import must fail
// with one sentence saying what to install, from ESM and from CommonJS.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { killAll, requireBuild, ROOT, runChild } from './fixtures/app-dir.js'

let dir: string | undefined

beforeAll(() => {
  requireBuild('winston/index.js', 'winston/index.cjs')
  // A real copy of the package (a link would resolve from the repository, which has winston),
  // beside every dependency of the repository except winston and winston-transport.
  dir = mkdtempSync(join(tmpdir(), 'lokiwire-nowinston-'))
  const modules = join(dir, 'node_modules')
  mkdirSync(join(modules, 'lokiwire'), { recursive: true })
  cpSync(join(ROOT, 'package.json'), join(modules, 'lokiwire', 'package.json'))
  cpSync(join(ROOT, 'dist'), join(modules, 'lokiwire', 'dist'), { recursive: true })
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name === 'winston' || name === 'winston-transport' || name.startsWith('.')) continue
    symlinkSync(join(ROOT, 'node_modules', name), join(modules, name), 'dir')
  }
})

afterAll(() => {
  killAll()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

const HINT = "lokiwire/winston needs the package 'winston-transport', which winston brings: run `npm install winston` (or `npm install winston-transport`)"

it('without winston-transport, importing lokiwire/winston says to install winston (ESM and CommonJS)', async () => {
  const esm = `import('lokiwire/winston').then(() => console.log('loaded'), (e) => { console.log(JSON.stringify({ message: e.message, code: e.code })) })`
  const cjs = `try { require('lokiwire/winston'); console.log('loaded') } catch (e) { console.log(JSON.stringify({ message: e.message, code: e.code })) }`
  for (const [type, code] of [['module', esm], ['commonjs', cjs]] as const) {
    const r = await runChild(dir!, '--eval', [code], { timeoutMs: 15_000, nodeArgs: ['--input-type', type] }).result
    expect(r.killed).toBe(false)
    expect(r.messages, `${type}: ${r.stderr}`).toEqual([{ message: HINT, code: 'MODULE_NOT_FOUND' }])
  }
  // The core and the pino entry do not need it.
  const core = await runChild(dir!, '--eval', [`import('lokiwire').then(() => import('lokiwire/pino')).then(() => console.log(JSON.stringify({ ok: true })))`], { timeoutMs: 15_000, nodeArgs: ['--input-type', 'module'] }).result
  expect(core.messages, core.stderr).toEqual([{ ok: true }])
})
