// Static checks of what the repository says about itself: the files a reader follows from the
// README and package.json exist and agree. Running the README's code is test/readme.test.ts.
import { spawnSync } from 'node:child_process'
import { cpSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '..')
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')

it('LICENSE holds the text of the license package.json names', () => {
  const pkg = JSON.parse(read('package.json')) as { license: string }
  expect(pkg.license).toBe('MIT')
  const license = read('LICENSE')
  expect(license).toMatch(/^MIT License\n\nCopyright \(c\) 2026 lokiwire contributors\n/)
  expect(license).toContain('Permission is hereby granted, free of charge, to any person obtaining a copy')
  expect(license).toContain('THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND')
})

it('npm run bench reports a missing `npm ci --prefix bench` before it spends time building', () => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
  const steps = pkg.scripts.bench!.split('&&').map((s) => s.trim())
  const check = steps.indexOf('node bench/run.mjs --check-deps')
  expect(check, pkg.scripts.bench).toBeGreaterThanOrEqual(0)
  expect(check, pkg.scripts.bench).toBeLessThan(steps.findIndex((s) => s.startsWith('npm run build')))

  // A copy of the harness without its node_modules, whatever this checkout has installed.
  const copy = join(ROOT, '.scratch', 'docs-test', 'bench')
  rmSync(copy, { recursive: true, force: true })
  cpSync(join(ROOT, 'bench'), copy, { recursive: true, filter: (src) => !src.includes('node_modules') })
  try {
    const r = spawnSync(process.execPath, [join(copy, 'run.mjs'), '--check-deps'], { encoding: 'utf8', timeout: 30_000 })
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/^bench: bench dependencies are missing .*run `npm ci --prefix bench` at the repository root/)
  } finally {
    rmSync(copy, { recursive: true, force: true })
  }
})
