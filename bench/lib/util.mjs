import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url))
export const ROOT_DIR = fileURLToPath(new URL('../..', import.meta.url))

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export function spread(xs) {
  const s = xs.filter((x) => Number.isFinite(x))
  return { median: median(s), min: Math.min(...s), max: Math.max(...s), n: s.length }
}

const group = (n) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')

/** Formats a number for a table: thousands separators, `digits` decimals. */
export function num(x, digits = 0) {
  if (!Number.isFinite(x)) return 'n/a'
  const fixed = Math.abs(x).toFixed(digits)
  const [int, frac] = fixed.split('.')
  return (x < 0 ? '-' : '') + group(int) + (frac ? `.${frac}` : '')
}

/** "median (min–max)" over the runs; only the median when every run agreed or there was one. */
export function fmtSpread(xs, digits = 0, unit = '') {
  const s = spread(xs)
  if (s.n === 0) return 'n/a'
  const m = num(s.median, digits) + unit
  if (s.n === 1 || num(s.min, digits) === num(s.max, digits)) return m
  return `${m} (${num(s.min, digits)}–${num(s.max, digits)})`
}

/** Counts that must be zero: the total over runs, with the worst run when they differ. */
export function fmtCount(xs) {
  const s = xs.filter((x) => Number.isFinite(x))
  if (s.length === 0) return 'n/a'
  const total = s.reduce((a, b) => a + b, 0)
  if (total === 0) return '0'
  return s.length === 1 ? num(total) : `${num(total)} in ${s.length} runs (worst ${num(Math.max(...s))})`
}

export function packageVersion(name, from = BENCH_DIR) {
  try {
    const require = createRequire(from.endsWith('/') ? from : `${from}/`)
    const dir = require.resolve(`${name}/package.json`)
    return JSON.parse(readFileSync(dir, 'utf8')).version
  } catch {
    // Packages whose exports map hides package.json: walk up from the entry point.
    try {
      const require = createRequire(from.endsWith('/') ? from : `${from}/`)
      let dir = require.resolve(name)
      for (let i = 0; i < 6; i++) {
        dir = dir.slice(0, dir.lastIndexOf('/'))
        try {
          const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'))
          if (pkg.name === name) return pkg.version
        } catch {
          // not a package root; keep walking
        }
      }
    } catch {
      // not installed
    }
    return 'not installed'
  }
}

export function gitDescribe() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT_DIR, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'package.json'], { cwd: ROOT_DIR, encoding: 'utf8' }).trim() !== ''
    return dirty ? `${commit} + uncommitted src changes` : commit
  } catch {
    return 'unknown commit'
  }
}

export function machine(pin) {
  const cpus = os.cpus()
  const model = (cpus[0]?.model ?? 'unknown cpu').replace(/\s+/g, ' ').trim()
  const mem = Math.round(os.totalmem() / 2 ** 30)
  const pinned = pin ? `; client pinned to cpu ${pin.client}, receiver to cpu ${pin.receiver}` : '; no cpu pinning'
  return `${model}, ${os.availableParallelism()} cores, ${mem} GiB, Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}${pinned}`
}

/** Strips absolute paths (this machine's layout is nobody's business in a committed file). */
export function scrubPaths(text) {
  return String(text)
    .replaceAll(`file://${ROOT_DIR}`, '')
    .replace(/(?:file:\/\/)?(?:\/?[\w.@+-]+\/)*node_modules\//g, '')
    .replaceAll(ROOT_DIR, '')
    .replace(/(^|[\s(])\/(?:tmp|home|root|usr|var|work|opt)\/\S*/g, '$1<path>')
}
