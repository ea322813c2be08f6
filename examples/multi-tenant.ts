// One client per tenant. Loki takes the tenant from the X-Scope-OrgID header of the whole push
// request, so entries of two tenants can never share a batch: each tenant needs its own client,
// with its own buffer, retries and breaker. A tenant whose limits are hit then slows down only itself.
// Run: npx tsx examples/multi-tenant.ts                (an embedded test receiver stands in for Loki)
//      LOKI_URL=http://localhost:3100 npx tsx examples/multi-tenant.ts
import { LokiClient, type LokiClientOptions } from 'lokiwire'
import { createLokiTestServer } from 'lokiwire/testing'

const embedded = process.env.LOKI_URL ? undefined : await createLokiTestServer()
const url = process.env.LOKI_URL ?? embedded!.url

const shared: Omit<LokiClientOptions, 'tenant'> = {
  url,
  labels: { app: 'multi-tenant-example' },
  // Every client has its own connection pool: sockets to Loki add up to tenants x concurrency.
  // With many tenants, one connection each is plenty.
  concurrency: 1,
  // Every client also has its own buffer: the memory bound adds up the same way.
  maxBufferBytes: 8 * 1024 * 1024,
  batch: { maxWaitMs: 200 },
}

const clients = new Map<string, LokiClient>()

/** The tenant's client, created on first use: tenants can come and go at runtime. */
function clientFor(tenant: string): LokiClient {
  let client = clients.get(tenant)
  if (client === undefined) {
    client = new LokiClient({ ...shared, tenant })
    client.on('drop', (e) => console.error(`tenant ${tenant}: dropped ${e.entries} entries (${e.reason})`))
    clients.set(tenant, client)
  }
  return client
}

// A request handler would look the tenant up from the request (API key, host name, JWT claim).
const tenants = ['acme', 'globex', 'initech']
for (let i = 0; i < 300; i++) {
  const tenant = tenants[i % tenants.length]!
  clientFor(tenant).push({ line: JSON.stringify({ msg: 'order placed', order: i, tenant }), labels: { level: 'info' } })
}

// Close them together: one slow tenant must not eat the others' share of the shutdown deadline.
const results = await Promise.all([...clients].map(async ([tenant, client]) => ({ tenant, result: await client.close({ timeoutMs: 5000 }), stats: client.stats() })))
for (const { tenant, stats } of results) {
  console.log(`${tenant}: sent ${stats.sent.entries}, dropped ${stats.dropped.total}`)
}
if (embedded) {
  const perTenant = new Map<string, number>()
  for (const e of embedded.entries) perTenant.set(e.tenant ?? '(none)', (perTenant.get(e.tenant ?? '(none)') ?? 0) + 1)
  console.log('the receiver holds, by X-Scope-OrgID:', Object.fromEntries(perTenant))
  await embedded.close()
}
process.exitCode = results.every((r) => r.result.ok && r.stats.dropped.total === 0) ? 0 : 1
