// The basic client: push, watch what happens, close on shutdown.
// Run: npx tsx examples/basic.ts            (an embedded test receiver stands in for Loki)
//      LOKI_URL=http://localhost:3100 npx tsx examples/basic.ts
import { LokiClient } from 'lokiwire'
import { createLokiTestServer } from 'lokiwire/testing'

const embedded = process.env.LOKI_URL ? undefined : await createLokiTestServer()
const url = process.env.LOKI_URL ?? embedded!.url

const client = new LokiClient({
  url,
  labels: { app: 'basic-example', env: 'dev' },
  // Defaults are production-safe; these only make the example finish quickly.
  batch: { maxWaitMs: 200 },
})

// Failures are reported, never thrown and never logged by the client itself.
client.on('failed', (e) => console.error(`push failed (attempt ${e.attempt}, retry: ${e.willRetry}): ${e.error.message}`))
client.on('drop', (e) => console.error(`dropped ${e.entries} entries: ${e.reason}`))

for (let i = 0; i < 1000; i++) {
  client.push({
    line: JSON.stringify({ msg: 'request served', n: i, ms: Math.round(Math.random() * 100) }),
    labels: { level: i % 100 === 0 ? 'warn' : 'info' },
    metadata: { trace_id: `trace-${i}` },
  })
}

const result = await client.close({ timeoutMs: 5000 })
const stats = client.stats()
console.log(`pushed ${stats.pushed}, sent ${stats.sent.entries} in ${stats.sent.batches} batches, dropped ${stats.dropped.total}`)
if (embedded) {
  console.log(`the receiver holds ${embedded.entries.length} entries in ${new Set(embedded.entries.map((e) => e.stream)).size} streams`)
  await embedded.close()
}
process.exitCode = result.ok && stats.dropped.total === 0 ? 0 : 1
