// A short run of the chaos soak (npm run soak) so every `npm test` replays one fixed schedule.
// Seed 17 packs seven kinds of fault phase (poison, resets, flapping, 5xx, outage, slow
// answers, 429s) into its first eight seconds; CI runs fifteen.
import { expect, it } from 'vitest'
import { formatReport } from './soak/report.js'
import { runSoak } from './soak/soak.js'

const SEED = 17

it('a short seeded chaos soak holds every invariant', async () => {
  const result = await runSoak({ seconds: 15, seed: SEED })
  expect(result.ok, formatReport(result)).toBe(true)
  // A pass only means something if the faults actually reached the client.
  expect(result.client.failedRequests.total, formatReport(result)).toBeGreaterThan(5)
  expect(result.client.retries).toBeGreaterThan(0)
  expect(result.lines.delivered).toBeGreaterThan(10_000)
  expect(result.lines.missingOther).toBe(0)
}, 90_000)

// An outage past the retry budget with a buffer too small to ride it out: without a spool both
// lose lines. In fifteen seconds the outage fills the run but for about two healthy seconds at
// each end, so the spool is written by eviction (and, when timing allows, exhausted retries and
// the open breaker), and everything must come back through replay before close().
it('with a spool, a long outage and a full buffer lose nothing', async () => {
  const result = await runSoak({ seconds: 15, seed: SEED, spool: true, longOutage: true, overflow: 'drop-oldest' })
  const report = formatReport(result)
  expect(result.ok, report).toBe(true)
  expect(result.dropped, report).toEqual({})
  expect(result.lines.missingOther + result.lines.missingPoison, report).toBe(0)
  const spool = result.spool!
  expect(spool.written, report).toBeGreaterThan(1000)
  expect(spool.loaded, report).toBe(spool.written)
  expect(spool.errors, report).toBe(0)
  expect(spool.writesBy.overflow, report).toBeGreaterThan(0)
  // Which other paths also write depends on timing: on a loaded machine the small buffer can
  // overflow before any batch spends its retry budget or breaker wait, and eviction spools them
  // all. Those paths are asserted deterministically in spool.test.ts; the report shows them here.
}, 90_000)
