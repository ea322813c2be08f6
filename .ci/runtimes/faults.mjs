// The client's guarantees under the faults a Loki shows, on whatever runtime runs this file (the
// test suite checks them in depth on Node; this is the part that also runs on Bun and Deno):
// every line delivered exactly once through 5xx, 429 with Retry-After, a stall past the request
// deadline and a body that trickles; never more than `concurrency` connections at the receiver;
// none left open after close(). Prints one line per case and exits 1 on the first broken one.
//
// Run from the repository root after a build: <runtime> .ci/runtimes/faults.mjs
// By path: this folder's own package.json keeps `lokiwire` from resolving by self-reference.
import { ErrorCodes, LokiClient } from '../../dist/index.js'
import { createLokiTestServer } from '../../dist/testing/index.js'

const CONCURRENCY = 2
const LINES = 200
/**
 * The receiver notices a connection the client destroyed a moment later (at its next write, or
 * when the FIN arrives), while the client's next attempt may already be connecting: more than
 * `concurrency` connections there are a failure only when they last this long.
 */
const RECEIVER_GRACE_MS = 1000

async function waitFor(cond, what, ms = 15_000) {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Pushes LINES lines in small batches through `faults`, then lets Loki recover and closes. */
async function scenario(name, { faults, healAfterRequests, options = {}, check = () => [] }) {
  const srv = await createLokiTestServer()
  const failures = []
  const client = new LokiClient({
    url: srv.url,
    labels: { app: 'faults', case: name.replace(/\W+/g, '_') },
    concurrency: CONCURRENCY,
    requestTimeoutMs: 500,
    batch: { maxEntries: 10, maxWaitMs: 10 },
    retry: { minDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 1500 },
    breaker: false,
    ...options,
  })
  client.on('failed', (e) => failures.push(e))
  client.on('drop', () => {})
  const problems = []
  let over
  const monitor = setInterval(() => {
    const mine = client.stats().connections
    if (mine > CONCURRENCY) problems.push(`the client held ${mine} connections (concurrency ${CONCURRENCY})`)
    const open = srv.connections.open
    if (open <= CONCURRENCY) over = undefined
    else if ((over ??= Date.now()) < Date.now() - RECEIVER_GRACE_MS) problems.push(`the receiver had ${open} connections open for over ${RECEIVER_GRACE_MS} ms`)
  }, 20)
  try {
    srv.setFault(faults)
    const lines = Array.from({ length: LINES }, (_, i) => `${name} ${i}`)
    for (const line of lines) client.push({ line })
    await waitFor(() => srv.requests.length >= healAfterRequests, `${healAfterRequests} requests`)
    srv.setFault(null)
    const result = await client.close({ timeoutMs: 20_000 })
    const stats = client.stats()
    clearInterval(monitor)
    const got = srv.entries.map((e) => e.line)
    if (!result.ok || stats.dropped.total > 0) problems.push(`dropped ${stats.dropped.total}`)
    if (got.length !== LINES || new Set(got).size !== LINES || !lines.every((l) => got.includes(l))) problems.push(`receiver holds ${got.length} of ${LINES}`)
    if (stats.connections !== 0) problems.push(`stats().connections is ${stats.connections} after close()`)
    await waitFor(() => srv.connections.open === 0, 'the receiver to see every connection closed', 5000).catch(() => problems.push(`${srv.connections.open} connections still open after close()`))
    problems.push(...check({ stats, failures, srv }))
    const tally = `${got.length} lines delivered, ${failures.length} failed attempts, receiver peak ${srv.connections.peak} connections`
    if (problems.length > 0) throw new Error(`${name}: ${[...new Set(problems)].join('; ')} (${tally})`)
    console.log(`ok   ${name}: ${tally}`)
  } finally {
    clearInterval(monitor)
    await client.destroy()
    await srv.close()
  }
}

const failedWith = (cls) => ({ failures }) =>
  failures.some((f) => cls(f)) ? [] : [`no failed attempt of the expected kind (${failures.map((f) => f.error.code).join(', ') || 'none'})`]

await scenario('503 storm, then recovery', {
  faults: { type: 'status', status: 503, body: 'ingester unavailable' },
  healAfterRequests: 6,
  check: failedWith((f) => f.status === 503),
})
await scenario('429 with Retry-After', {
  faults: { type: 'status', status: 429, headers: { 'retry-after': '1' }, body: 'Ingestion rate limit exceeded' },
  healAfterRequests: 2,
  check: failedWith((f) => f.status === 429),
})
await scenario('stall past the request deadline', {
  faults: { type: 'stall' },
  healAfterRequests: 4,
  check: failedWith((f) => f.error.code === ErrorCodes.REQUEST_TIMEOUT),
})
await scenario('2xx whose body trickles', {
  faults: { type: 'slowBody', chunkBytes: 1, chunks: 100, intervalMs: 100, status: 200 },
  healAfterRequests: 2,
  options: { requestTimeoutMs: 10_000 },
  check: ({ stats }) => (stats.abandonedBodies > 0 ? [] : ['no body was given up']),
})
await scenario('slow answers, many batches', {
  faults: { type: 'slowHeaders', delayMs: 30 },
  healAfterRequests: 15,
})
console.log('faults: ok')
