// Static checks of what the repository says about itself: the files a reader follows from the
// README and package.json exist and agree. Running the README's code is test/readme.test.ts.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import diagnosticsChannel from 'node:diagnostics_channel'
import { expect, it } from 'vitest'
import { LokiClient } from '../src/index.js'
import { createLokiTestServer } from '../src/testing/index.js'

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
    rmSync(join(copy, '..'), { recursive: true, force: true })
  }
})

it('every link in the README leads somewhere: a heading of its own, or a file of the repository', () => {
  const readme = read('README.md')
  // GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, -1, -2… on repeats.
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  let inCode = false
  for (const line of readme.split('\n')) {
    if (line.startsWith('```')) inCode = !inCode
    const m = inCode ? null : /^#{1,6}\s+(.*)$/.exec(line)
    if (!m) continue
    const base = m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    anchors.add(n === 0 ? base : `${base}-${n}`)
  }
  const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!)
  const inPage = targets.filter((t) => t.startsWith('#')).map((t) => t.slice(1))
  expect(inPage.length).toBeGreaterThan(10)
  expect(inPage.filter((a) => !anchors.has(a))).toEqual([])
  const files = targets.filter((t) => !t.startsWith('#') && !/^[a-z]+:/.test(t))
  expect(files.filter((f) => !existsSync(join(ROOT, f.split('#')[0]!)))).toEqual([])
})

it('as the README says of diagnostics_channel: a 500 ends on request:end with its status, a reset on request:error', async () => {
  const srv = await createLokiTestServer()
  const seen: string[] = []
  const onEnd = (m: unknown) => seen.push(`end ${(m as { status: number }).status}`)
  const onError = (m: unknown) => seen.push(`error ${(m as { error: Error }).error.name}`)
  diagnosticsChannel.subscribe('lokiwire:request:end', onEnd)
  diagnosticsChannel.subscribe('lokiwire:request:error', onError)
  const client = new LokiClient({ url: srv.url, labels: { app: 'docs' }, retry: { minDelayMs: 1, maxDelayMs: 5 }, batch: { maxWaitMs: 5 } })
  try {
    srv.queueFaults({ type: 'status', status: 500 }, { type: 'reset' })
    client.push({ line: 'x' })
    expect((await client.flush({ timeoutMs: 10_000 })).pendingEntries).toBe(0)
    expect(srv.entries.map((e) => e.line)).toEqual(['x'])
    expect(seen).toEqual(['end 500', 'error LokiNetworkError', 'end 204'])
  } finally {
    diagnosticsChannel.unsubscribe('lokiwire:request:end', onEnd)
    diagnosticsChannel.unsubscribe('lokiwire:request:error', onError)
    await client.destroy()
    await srv.close()
  }
})
