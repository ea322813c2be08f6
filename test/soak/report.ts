import type { SoakResult } from './soak.js'

function pairs(rec: Record<string, number | undefined>): string {
  const keys = Object.keys(rec).filter((k) => rec[k] !== undefined && rec[k] !== 0)
  if (keys.length === 0) return 'none'
  return keys
    .sort((a, b) => (rec[b] ?? 0) - (rec[a] ?? 0) || (a < b ? -1 : 1))
    .map((k) => `${k}=${rec[k]}`)
    .join(' ')
}

const round1 = (x: number) => Math.round(x * 10) / 10
const signed = (x: number) => (x < 0 ? String(x) : `+${x}`)

/** A compact, greppable summary; the first and last lines carry what is needed to replay. */
export function formatReport(r: SoakResult): string {
  const l = r.lines
  const f = r.client.failedRequests
  const out = [
    `soak ${r.ok ? 'PASSED' : 'FAILED'}  seed=${r.seed} seconds=${r.seconds} rate=${r.rate}/s concurrency=${r.concurrency} encoding=${r.encoding}` +
      `${r.overflow ? ` overflow=${r.overflow}` : ''}${r.longOutage ? ' long-outage' : ''}${r.spool ? ' spool' : ''}  (${(r.elapsedMs / 1000).toFixed(1)} s)`,
    `  lines     pushed=${l.pushed} delivered=${l.delivered} poison=${l.poison} refused=${l.refused} missing: poison=${l.missingPoison} other=${l.missingOther}`,
    `  dropped   ${pairs(r.dropped)}`,
    `  requests  ${r.requests.total} at the receiver; answers: ${pairs(r.requests.byAnswer)}`,
    `  by fault  ${pairs(r.requests.byFault)}`,
    `  client    batches sent=${r.client.batchesSent} retries=${r.client.retries} failed attempts=${f.total}` +
      ` (429=${f.status429} 5xx=${f.status5xx} 4xx=${f.status4xx} network=${f.network} timeout=${f.timeout}) breaker opened=${r.client.breakerOpened}`,
    `  slots     ${pairs(r.faults)} (fault slots the schedule applied)`,
    `  phases    ${pairs(r.phases)}; longest faulty stretch ${(r.longestUnhealthyMs / 1000).toFixed(1)} s, retry budget ${r.retryBudgetMs / 1000} s`,
    `  conns     limit=${r.connections.limit} peak: receiver=${r.connections.peakServer} client=${r.connections.peakClient}` +
      `${r.connections.serverExcessTicks > 0 ? ` (receiver briefly over the limit on ${r.connections.serverExcessTicks} checks)` : ''}`,
    `  heap      baseline=${r.heap.baselineMB} MB, post-GC growth peak=${signed(r.heap.peakGrowthMB)} MB final=${signed(r.heap.finalGrowthMB)} MB` +
      ` (limit ${r.heap.perBufferByte} x buffered + ${r.heap.allowanceMB} MB, at most +${r.heap.limitMB} MB with the ${r.bufferLimitMB} MiB buffer; +${r.heap.allowanceMB} MB once drained; ${r.heap.checks} checks)`,
    `  receiver  duplicates deduplicated=${r.duplicates}`,
  ]
  if (r.spool !== undefined) {
    const sp = r.spool
    out.push(`  spool     written=${sp.written} loaded=${sp.loaded} errors=${sp.errors} peak=${round1(sp.peakBytes / 1024)} KiB; entries written by: ${pairs(sp.writesBy)}`)
  }
  if (r.violation !== undefined) {
    const v = r.violation
    out.push(`  VIOLATION at t=${(v.atMs / 1000).toFixed(2)} s (phase ${v.phase}): ${v.message}`)
  }
  out.push(`  replay    ${r.replay}`)
  return out.join('\n')
}
