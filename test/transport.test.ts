/*
 * The HTTP layer on its own, against real node:http servers on 127.0.0.1: every path of
 * Transport.send() from a status or an error to its SendResult, and what each leaves of the socket.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { resolveOptions, type LokiClientOptions } from '../src/options.js'
import { DRAIN_LIMIT, Transport, type SendResult } from '../src/transport.js'
import { waitUntil } from './helpers.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

interface RawServer {
  url: string
  /** Connections accepted so far, and those still open. */
  accepted: number
  open: Set<Socket>
  /** The socket each request arrived on, in order. */
  sockets: Socket[]
}

let cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

/** A plain HTTP server whose every request is answered by `handler` once its body has arrived. */
async function rawServer(handler: Handler): Promise<RawServer> {
  const state: RawServer = { url: '', accepted: 0, open: new Set(), sockets: [] }
  const server: Server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      state.sockets.push(req.socket)
      handler(req, res)
    })
  })
  server.on('connection', (socket: Socket) => {
    state.accepted++
    state.open.add(socket)
    socket.on('close', () => state.open.delete(socket))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  cleanup.push(() => new Promise((r) => {
    server.closeAllConnections()
    server.close(r)
  }))
  return state
}

function transport(url: string, extra: Partial<LokiClientOptions> = {}): Transport {
  const t = new Transport(resolveOptions({ url, labels: { app: 'transport' }, ...extra }))
  cleanup.push(() => t.destroy())
  return t
}

const BODY = { body: Buffer.from('{"streams":[]}'), contentType: 'application/json', contentEncoding: undefined }
let batchId = 0

function send(t: Transport, signal: AbortSignal = new AbortController().signal): Promise<SendResult> {
  return t.send(BODY, signal, { batchId: ++batchId, attempt: 1, entries: 1 })
}

/** Fails the test with `what` if `p` has not settled within `ms` (a cap far above any honest run). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const cap = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, cap])
  } finally {
    clearTimeout(timer)
  }
}

describe('after a 2xx status the push is stored, whatever the body does next', () => {
  it('a 200 whose body breaks off is a success, counted, and its socket is gone', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1000 })
      res.write('x'.repeat(10), () => res.socket!.destroy())
    })
    const t = transport(srv.url)
    const r = await send(t)
    expect(r).toEqual({ kind: 'success', status: 200 })
    expect(t.abandonedBodies).toBe(1)
    expect(srv.sockets).toHaveLength(1)
  })

  it('a 200 whose body trickles is cut after the drain time limit, not held until requestTimeoutMs', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1000 })
      res.write('x') // and nothing more, ever
    })
    const t = transport(srv.url, { requestTimeoutMs: 600_000 })
    const r = await within(send(t), 15_000, 'the attempt')
    expect(r).toEqual({ kind: 'success', status: 200 })
    expect(t.abandonedBodies).toBe(1)
    // The client destroyed the socket: the server sees it close.
    await waitUntil(() => srv.sockets[0]!.closed, 'the socket to close')
    expect(srv.sockets).toHaveLength(1)
  })

  it(`a 2xx body over DRAIN_LIMIT (${DRAIN_LIMIT} bytes) is not read to its end: success, its socket destroyed`, async () => {
    const big = Buffer.alloc(DRAIN_LIMIT + 1024 * 1024, 0x78)
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-length': big.length })
      res.end(big)
    })
    const t = transport(srv.url, { requestTimeoutMs: 600_000, concurrency: 1 })
    expect(await within(send(t), 15_000, 'the attempt')).toEqual({ kind: 'success', status: 200 })
    expect(t.abandonedBodies).toBe(1)
    await waitUntil(() => srv.sockets[0]!.closed, 'the socket to close')
    // The next attempt goes out on another connection.
    expect(await within(send(t), 15_000, 'the second attempt')).toEqual({ kind: 'success', status: 200 })
    expect(srv.sockets).toHaveLength(2)
    expect(srv.sockets[1]).not.toBe(srv.sockets[0])
  })

  it('a 260 whose body breaks off is still blocked, not retried', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(260, { 'content-length': 1000 })
      res.write('blocked by policy', () => res.socket!.destroy())
    })
    const t = transport(srv.url)
    const r = await send(t)
    expect(r.kind).toBe('blocked')
    expect(t.abandonedBodies).toBe(1)
  })

  it('a complete body is not counted and its socket is kept for the next attempt', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-length': 5 })
      res.end('hello')
    })
    const t = transport(srv.url, { concurrency: 1 })
    for (let i = 0; i < 3; i++) expect(await send(t)).toEqual({ kind: 'success', status: 200 })
    expect(t.abandonedBodies).toBe(0)
    expect(srv.accepted).toBe(1)
    expect(t.connections).toBe(1)
  })
})
