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
