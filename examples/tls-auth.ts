// Loki behind TLS and authentication: a gateway with basic auth or a bearer token, a private CA,
// mutual TLS, a tenant. Everything comes from the environment so no secret sits in code.
// Run: LOKI_URL=https://loki.example.com LOKI_USERNAME=123456 LOKI_PASSWORD=glc_... npx tsx examples/tls-auth.ts
//      LOKI_URL=https://loki.internal LOKI_CA_FILE=ca.pem LOKI_CERT_FILE=client.pem LOKI_KEY_FILE=client-key.pem \
//        LOKI_TENANT=team-a npx tsx examples/tls-auth.ts
//      npx tsx examples/tls-auth.ts     (no LOKI_URL: an embedded plain-HTTP receiver shows what arrives)
import { readFileSync } from 'node:fs'
import { LokiClient, LokiOptionError, type LokiClientOptions, type TlsOptions } from 'lokiwire'
import { createLokiTestServer } from 'lokiwire/testing'

const env = process.env
const embedded = env.LOKI_URL ? undefined : await createLokiTestServer()

function auth(): Pick<LokiClientOptions, 'basicAuth' | 'bearerToken'> {
  if (env.LOKI_BEARER_TOKEN) return { bearerToken: env.LOKI_BEARER_TOKEN }
  // Grafana Cloud: the username is the stack's numeric user id, the password an access token.
  if (env.LOKI_USERNAME) return { basicAuth: { username: env.LOKI_USERNAME, password: env.LOKI_PASSWORD ?? '' } }
  return embedded ? { basicAuth: { username: 'example', password: 'not-a-real-secret' } } : {}
}

function tls(): TlsOptions | undefined {
  const out: TlsOptions = {}
  // A private CA is trusted by adding it here. Turning off verification instead
  // (rejectUnauthorized: false) would let anyone on the path read the logs and the credentials.
  if (env.LOKI_CA_FILE) out.ca = readFileSync(env.LOKI_CA_FILE)
  // Mutual TLS: the client proves who it is with a certificate instead of (or besides) a password.
  if (env.LOKI_CERT_FILE) out.cert = readFileSync(env.LOKI_CERT_FILE)
  if (env.LOKI_KEY_FILE) out.key = readFileSync(env.LOKI_KEY_FILE)
  if (env.LOKI_KEY_PASSPHRASE) out.passphrase = env.LOKI_KEY_PASSPHRASE
  // Needed when the URL names an IP address or a tunnel but the certificate names the real host.
  if (env.LOKI_SERVERNAME) out.servername = env.LOKI_SERVERNAME
  return Object.keys(out).length > 0 ? out : undefined
}

const tlsOptions = tls()
const options: LokiClientOptions = {
  url: env.LOKI_URL ?? embedded!.url,
  labels: { app: 'tls-auth-example' },
  // Multi-tenant Loki (auth_enabled: true) refuses pushes without a tenant; Grafana Cloud sets
  // it from the credentials and needs none.
  ...(env.LOKI_TENANT || embedded ? { tenant: env.LOKI_TENANT ?? 'example-tenant' } : {}),
  ...auth(),
  ...(tlsOptions ? { tls: tlsOptions } : {}),
}

let client: LokiClient
try {
  client = new LokiClient(options)
} catch (err) {
  // Option errors name the option and never include credentials: safe to print as they are.
  if (err instanceof LokiOptionError) {
    console.error(err.message)
    process.exit(2)
  }
  throw err
}

// 401/403 are not retried: wrong credentials do not get better by trying again. The message is
// Loki's (or the gateway's) answer; the request's credentials are not in it.
client.on('failed', (e) => console.error(`push failed: ${e.error.message}`))

client.push({ line: 'hello over an authenticated connection', labels: { level: 'info' } })
const result = await client.close({ timeoutMs: 10_000 })
console.log(`delivered: ${client.stats().sent.entries}, dropped: ${client.stats().dropped.total}`)

if (embedded) {
  const request = embedded.requests.at(-1)
  const authorization = String(request?.headers.authorization ?? '')
  console.log(`the receiver got tenant ${request?.tenant}, Authorization: ${authorization.split(' ')[0]} <credentials>`)
  await embedded.close()
}
process.exitCode = result.ok && client.stats().dropped.total === 0 ? 0 : 1
