// What the published tarball holds, as npm computes it from package.json's `files`.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

it('the tarball ships no source maps and no path of the machine that built it', async () => {
  if (!existsSync(new URL('../dist/index.cjs', import.meta.url))) throw new Error('dist/ is missing: run `npm run build:js` first (npm test does)')
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const { stdout } = await promisify(execFile)(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 })
  const [pack] = JSON.parse(stdout) as [{ files: { path: string }[] }]
  const paths = pack.files.map((f) => f.path)
  expect(paths).toContain('dist/index.js')
  expect(paths).toContain('dist/index.cjs')
  expect(paths.filter((p) => p.endsWith('.map'))).toEqual([])
  // The built files must not point at a map they do not ship, nor name this checkout.
  const root = ROOT.replace(/[\\/]+$/, '')
  const offending = paths.filter((p) => {
    const text = readFileSync(`${ROOT}/${p}`, 'utf8')
    return text.includes(root) || text.includes('sourceMappingURL')
  })
  expect(offending).toEqual([])
})
