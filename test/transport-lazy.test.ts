/*
 * The transport loads undici on its first attempt (src/transport/undici-pool.ts), not at
 * construction: what that must not change. A transport that never sent holds nothing and closes
 * without loading anything; a load that fails is an attempt's result, never a throw or an
 * unhandled rejection, and the next attempt tries again; the load counts against the attempt's
 * deadline and cannot outlast it.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, expect, it, vi } from 'vitest'
import { ErrorCodes } from '../src/index.js'
import { resolveOptions } from '../src/model/options.js'
import type { SendResult, Transport as TransportClass } from '../src/transport/transport.js'

const opts = (url: string) => resolveOptions({ url, labels: { app: 'lazy' } })
const body = { body: Buffer.from('{"streams":[]}'), contentType: 'application/json', contentEncoding: undefined }
const send = (t: TransportClass): Promise<SendResult> => t.send(body, new AbortController().signal, { batchId: 1, attempt: 1, entries: 1 })

let server: Server | undefined
let requests = 0
async function listen(): Promise<string> {
  server = createServer((req, res) => {
    requests++
    req.resume()
    req.on('end', () => res.writeHead(204).end())
  })
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

afterEach(async () => {
  vi.doUnmock('../src/transport/undici-pool.js')
  vi.resetModules()
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  server = undefined
  requests = 0
})

it('a transport closed before any attempt holds no connection, and a later attempt is refused without a request', async () => {
  const { Transport } = await import('../src/transport/transport.js')
  const url = await listen()
  const t = new Transport(opts(url))
  expect(t.connections).toBe(0)
  await t.close()
  await t.destroy()
  const refused = await send(t)
  expect(refused).toMatchObject({ kind: 'retryable', failure: 'network' })
  expect(refused.kind === 'retryable' && refused.error.message).toMatch(/the transport is closed/)
  expect(t.connections).toBe(0)
  expect(requests).toBe(0)
})

it('close() alone, before any attempt, is enough: a later attempt is refused without loading a pool or sending', async () => {
  const { Transport } = await import('../src/transport/transport.js')
  const url = await listen()
  const t = new Transport(opts(url))
  await t.close()
  expect(await send(t)).toMatchObject({ kind: 'retryable', failure: 'network' })
  expect(t.connections).toBe(0)
  expect(requests).toBe(0)
  await t.destroy()
})

it('an HTTP client that cannot be loaded is a final LOKI_INTERNAL result; the next attempt loads it again and sends', async () => {
  let failLoad = true
  vi.doMock('../src/transport/undici-pool.js', async (importOriginal) => {
    if (failLoad) throw new Error('undici is missing')
    return importOriginal()
  })
  vi.resetModules()
  const { Transport } = await import('../src/transport/transport.js')
  const url = await listen()
  const t = new Transport(opts(url))
  try {
    const failed = await send(t)
    expect(failed).toMatchObject({ kind: 'failure', failure: 'network' })
    expect(failed.kind === 'failure' && failed.error.code).toBe(ErrorCodes.INTERNAL)
    expect(failed.kind === 'failure' && failed.error.message).toMatch(/^could not load or set up the HTTP client: /)
    // Why it could not be loaded stays reachable for whoever reads the drop.
    // (vitest wraps the mock factory's throw in an error of its own: assert there is a cause.)
    expect(failed.kind === 'failure' && failed.error.cause).toBeInstanceOf(Error)
    expect(requests).toBe(0)
    failLoad = false
    vi.resetModules()
    expect(await send(t)).toEqual({ kind: 'success', status: 204 })
    expect(requests).toBe(1)
  } finally {
    await t.destroy()
  }
  expect(t.connections).toBe(0)
})

it('a load still under way when the attempt\'s deadline passes ends that attempt as a timeout; close() waits for the load', async () => {
  let release!: () => void
  const loaded = new Promise<void>((resolve) => (release = resolve))
  vi.doMock('../src/transport/undici-pool.js', async (importOriginal) => {
    await loaded
    return importOriginal()
  })
  vi.resetModules()
  const { Transport } = await import('../src/transport/transport.js')
  const url = await listen()
  const t = new Transport(resolveOptions({ url, labels: { app: 'lazy' }, requestTimeoutMs: 200 }))
  const timedOut = await send(t)
  expect(timedOut).toMatchObject({ kind: 'retryable', failure: 'timeout' })
  expect(timedOut.kind === 'retryable' && timedOut.error.code).toBe(ErrorCodes.REQUEST_TIMEOUT)
  const batch = new AbortController()
  const cut = t.send(body, batch.signal, { batchId: 2, attempt: 1, entries: 1 })
  batch.abort(new Error('destroyed'))
  expect(await cut).toMatchObject({ kind: 'aborted' })
  expect(requests).toBe(0)
  let closed = false
  const closing = t.close().then(() => (closed = true))
  await new Promise((r) => setTimeout(r, 50))
  expect(closed).toBe(false)
  release()
  await closing
  expect(t.connections).toBe(0)
  expect(requests).toBe(0)
})

it('a client whose HTTP client cannot be loaded drops the batch as internal_error, not as a refusal by Loki', async () => {
  vi.doMock('../src/transport/undici-pool.js', () => {
    throw new Error('undici is missing')
  })
  vi.resetModules()
  const { LokiClient } = await import('../src/index.js')
  const url = await listen()
  const c = new LokiClient({ url, labels: { app: 'lazy' }, retry: { maxAttempts: 3, minDelayMs: 1, maxDelayMs: 5 } })
  const drops: Array<[string, string | undefined]> = []
  c.on('drop', (e) => drops.push([e.reason, e.error?.code]))
  try {
    c.push({ line: 'nowhere to go' })
    const r = await c.flush({ timeoutMs: 10_000 })
    expect(r).toMatchObject({ ok: false, droppedEntries: 1 })
    expect(drops).toEqual([['internal_error', ErrorCodes.INTERNAL]])
    expect(c.stats().dropped).toMatchObject({ internal_error: 1, rejected: 0 })
    expect(requests).toBe(0)
  } finally {
    await c.destroy()
  }
})

it('prepare() loads the HTTP client once, before any attempt, and sends nothing; after close() it loads nothing', async () => {
  let loads = 0
  vi.doMock('../src/transport/undici-pool.js', async (importOriginal) => {
    loads++
    return importOriginal()
  })
  vi.resetModules()
  const { Transport } = await import('../src/transport/transport.js')
  const url = await listen()
  const closed = new Transport(opts(url))
  await closed.close()
  await closed.prepare()
  expect(loads).toBe(0)
  const t = new Transport(opts(url))
  try {
    await t.prepare()
    expect(loads).toBe(1)
    await t.prepare()
    expect(await send(t)).toEqual({ kind: 'success', status: 204 })
    expect(loads).toBe(1)
    expect(requests).toBe(1)
  } finally {
    await t.destroy()
  }
})
