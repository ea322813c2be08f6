import { afterAll, beforeAll, expect, it } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { requireBuiltCli, runCli } from './fixtures/cli-run.js'

let srv: LokiTestServer

beforeAll(async () => {
  requireBuiltCli()
  srv = await createLokiTestServer()
})
afterAll(async () => {
  await srv?.close()
})

it.concurrent('demo --quick: the fault act runs, the summary is printed and the receiver check passes', async () => {
  const r = await runCli(['demo', '--quick'], '', { killAfterMs: 20_000 })
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
  expect(r.stderr).toBe('')
  const out = r.stdout
  // Not a terminal: plain progress lines, no carriage returns.
  expect(out).not.toContain('\r')
  expect(out).toMatch(/receiver stalls/)
  expect(out).toMatch(/receiver answers 500/)
  expect(out).toMatch(/receiver recovers/)
  expect(out).toMatch(/^\[\s*\d+\.\ds \S+\s*\]\s+[\d,]+ lines\/s\s+sent [\d,]+\s+buffered [\d,]+\s+retries [\d,]+\s+dropped [\d,]+\s+connections \d+/m)
  const summary = out.slice(out.indexOf('\nsummary'))
  const row = (label: string) => new RegExp(`^\\s+${label}\\s+(\\S+)`, 'm').exec(summary)?.[1]
  const pushed = row('pushed')
  expect(Number(pushed?.replace(/,/g, ''))).toBeGreaterThan(1000)
  // --quick logs for 5 s at 1,000 lines/s; the default 16 s run would log about 16,000. Counted
  // in lines rather than timed: a slow machine logs fewer, never more.
  expect(Number(pushed?.replace(/,/g, ''))).toBeLessThan(12_000)
  expect(row('delivered')).toBe(pushed)
  expect(row('dropped')).toBe('0')
  expect(Number(row('retries')?.replace(/,/g, ''))).toBeGreaterThan(0)
  expect(Number(row('peak connections'))).toBeLessThanOrEqual(2)
  expect(row('latency p50')).toMatch(/^\d/)
  expect(row('latency p99')).toMatch(/^\d/)
  expect(row('receiver check')).toBe('OK')
  expect(summary).toMatch(/result: OK/)
})

it.concurrent('demo --url: logs to the given Loki with its tenant, skips the fault act and the receiver check', async () => {
  const r = await runCli(['demo', '--seconds', '2', '--rate', '200', '--url', srv.url, '--tenant', 'demo-tenant'], '', { killAfterMs: 20_000 })
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
  expect(r.stdout).toMatch(/fault act .* skipped/)
  expect(r.stdout).toMatch(/receiver check\s+skipped/)
  expect(r.stdout).not.toMatch(/receiver stalls/)
  const run = /run="([0-9a-f]+)"/.exec(r.stdout)?.[1]
  expect(run).toBeDefined()
  expect(srv.entries.length).toBeGreaterThan(100)
  for (const e of srv.entries) {
    expect(e.tenant).toBe('demo-tenant')
    expect(e.labels).toMatchObject({ app: 'lokiwire-demo', run })
  }
  const pushed = /^\s+pushed\s+(\S+)/m.exec(r.stdout)?.[1]?.replace(/,/g, '')
  expect(srv.entries).toHaveLength(Number(pushed))
})
