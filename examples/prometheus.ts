// The shipper's own health as Prometheus metrics: what was sent, dropped, retried, how long
// each attempt took. Prints the text exposition a /metrics endpoint would serve.
// Run: npx tsx examples/prometheus.ts            (an embedded test receiver stands in for Loki)
//      LOKI_URL=http://localhost:3100 npx tsx examples/prometheus.ts
import { LokiClient } from 'lokiwire'
import { registerPrometheusMetrics } from 'lokiwire/prometheus'
import { createLokiTestServer } from 'lokiwire/testing'
import { Registry } from 'prom-client'

const embedded = process.env.LOKI_URL ? undefined : await createLokiTestServer()
const url = process.env.LOKI_URL ?? embedded!.url
// The embedded receiver answers the first push 503: the metrics show the failure and its retry.
embedded?.queueFaults({ type: 'status', status: 503 })

const client = new LokiClient({
  url,
  labels: { app: 'prometheus-example' },
  batch: { maxWaitMs: 200 },
  retry: { minDelayMs: 50 },
})
// prom-client's global `register` by default; a registry of its own keeps this output short.
const registry = new Registry()
const metrics = registerPrometheusMetrics(client, { registry, labels: { client: 'example' } })

for (let i = 0; i < 100; i++) client.push({ line: JSON.stringify({ msg: 'request served', n: i }) })
const result = await client.flush({ timeoutMs: 10_000 })

// In a service: http.createServer(async (req, res) => res.end(await registry.metrics())), or
// hand `registry` to whatever already serves /metrics.
console.log(await registry.metrics())

metrics.unregister()
await client.close()
await embedded?.close()
process.exitCode = result.ok ? 0 : 1
