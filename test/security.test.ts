import diagnosticsChannel from 'node:diagnostics_channel'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { LokiClient, LokiNetworkError } from '../src/index.js'
import type { FailedEvent, RequestEndMessage, RequestErrorMessage, RequestStartMessage } from '../src/index.js'
import { createLokiTestServer } from '../src/testing/index.js'
import { FAST } from './helpers.js'

const tlsDir = join(import.meta.dirname, 'fixtures', 'tls')
const cert = readFileSync(join(tlsDir, 'cert.pem'))
const key = readFileSync(join(tlsDir, 'key.pem'))

let cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

async function httpsLoki(): Promise<{ url: string; requests: () => number }> {
  let requests = 0
  const server: Server = createServer({ cert, key }, (req, res) => {
    req.resume()
    req.on('end', () => {
      requests++
      res.statusCode = 204
      res.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanup.push(() => new Promise((r) => {
    server.closeAllConnections()
    server.close(r)
  }))
  return { url: `https://127.0.0.1:${(server.address() as { port: number }).port}`, requests: () => requests }
}

it('verifies TLS by default, trusts a given CA, and only skips verification when told to', async () => {
  const loki = await httpsLoki()
  const strict = new LokiClient({ url: loki.url, labels: { app: 'tls' }, ...FAST, retry: { maxAttempts: 1 } })
  cleanup.push(() => strict.destroy())
  const failed: FailedEvent[] = []
  strict.on('failed', (e) => failed.push(e))
  strict.push({ line: 'self-signed must be refused' })
  await strict.flush({ timeoutMs: 5000 })
  expect(loki.requests()).toBe(0)
  expect(failed[0]!.error).toBeInstanceOf(LokiNetworkError)
  expect(failed[0]!.error.message).toMatch(/certificate/i)

  const trusting = new LokiClient({ url: loki.url, labels: { app: 'tls' }, tls: { ca: cert }, ...FAST })
  cleanup.push(() => trusting.destroy())
  trusting.push({ line: 'with the CA' })
  expect((await trusting.flush({ timeoutMs: 5000 })).droppedEntries).toBe(0)
  expect(loki.requests()).toBe(1)

  const insecure = new LokiClient({ url: loki.url, labels: { app: 'tls' }, tls: { rejectUnauthorized: false }, ...FAST })
  cleanup.push(() => insecure.destroy())
  insecure.push({ line: 'unverified, on request' })
  expect((await insecure.flush({ timeoutMs: 5000 })).droppedEntries).toBe(0)
  expect(loki.requests()).toBe(2)
})

it('credentials never appear in errors, events, diagnostics or stats; auth headers reach Loki', async () => {
  const srv = await createLokiTestServer()
  cleanup.push(() => srv.close())
  srv.setFault({ type: 'status', status: 401, body: 'no org id' })
  const seen: unknown[] = []
  const onStart = (m: unknown) => seen.push(m as RequestStartMessage)
  const onEnd = (m: unknown) => seen.push(m as RequestEndMessage)
  const onError = (m: unknown) => seen.push(m as RequestErrorMessage)
  diagnosticsChannel.subscribe('lokiwire:request:start', onStart)
  diagnosticsChannel.subscribe('lokiwire:request:end', onEnd)
  diagnosticsChannel.subscribe('lokiwire:request:error', onError)
  cleanup.push(async () => {
    diagnosticsChannel.unsubscribe('lokiwire:request:start', onStart)
    diagnosticsChannel.unsubscribe('lokiwire:request:end', onEnd)
    diagnosticsChannel.unsubscribe('lokiwire:request:error', onError)
  })
  const secret = 'hunter2-very-secret'
  const url = srv.url.replace('http://', `http://admin:${secret}@`)
  const client = new LokiClient({ url, labels: { app: 'sec' }, headers: { 'x-api-key': `${secret}-key` }, ...FAST })
  cleanup.push(() => client.destroy())
  const events: unknown[] = []
  for (const name of ['sent', 'failed', 'retry', 'drop', 'breaker'] as const) client.on(name, (e: unknown) => events.push(e))
  client.push({ line: 'x' })
  await client.flush({ timeoutMs: 5000 })

  const req = srv.requests[0]!
  expect(req.headers.authorization).toBe(`Basic ${Buffer.from(`admin:${secret}`).toString('base64')}`)
  expect(req.headers['x-api-key']).toBe(`${secret}-key`)
  const text = JSON.stringify({ events, seen, stats: client.stats() }, (_k, v) => (v instanceof Error ? `${v.name}: ${v.message}` : v))
  expect(events.length).toBeGreaterThan(0)
  expect(seen.length).toBe(2) // start + end with status 401
  expect(text).toContain('401')
  expect(text).not.toContain(secret)
  expect(text).not.toContain(Buffer.from(`admin:${secret}`).toString('base64'))
  expect((seen[0] as RequestStartMessage).url).toBe(`${srv.url}/loki/api/v1/push`)
})

it('diagnostics_channel reports each attempt with status, duration and batch size', async () => {
  const srv = await createLokiTestServer()
  cleanup.push(() => srv.close())
  srv.queueFaults({ type: 'reset' })
  const ends: RequestEndMessage[] = []
  const errors: RequestErrorMessage[] = []
  const onEnd = (m: unknown) => ends.push(m as RequestEndMessage)
  const onError = (m: unknown) => errors.push(m as RequestErrorMessage)
  diagnosticsChannel.subscribe('lokiwire:request:end', onEnd)
  diagnosticsChannel.subscribe('lokiwire:request:error', onError)
  cleanup.push(async () => {
    diagnosticsChannel.unsubscribe('lokiwire:request:end', onEnd)
    diagnosticsChannel.unsubscribe('lokiwire:request:error', onError)
  })
  const client = new LokiClient({ url: srv.url, labels: { app: 'dc' }, ...FAST })
  cleanup.push(() => client.destroy())
  client.push([{ line: 'a' }, { line: 'b' }, { line: 'c' }])
  await client.flush({ timeoutMs: 5000 })
  expect(errors).toHaveLength(1)
  expect(errors[0]).toMatchObject({ attempt: 1, entries: 3 })
  expect(errors[0]!.error).toBeInstanceOf(LokiNetworkError)
  expect(ends).toHaveLength(1)
  expect(ends[0]).toMatchObject({ attempt: 2, entries: 3, status: 204 })
  expect(ends[0]!.durationMs).toBeGreaterThanOrEqual(0)
  expect(ends[0]!.bytes).toBeGreaterThan(0)
  expect(ends[0]!.batchId).toBe(errors[0]!.batchId)
})
