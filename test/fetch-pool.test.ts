/*
 * The transport on its two pools: undici's Pool (Node, Deno) and FetchPool (Bun, whose `undici`
 * has a Pool that sends nothing). The same fault cases run on both against real node:http servers
 * on 127.0.0.1, so what Bun gets is checked here on Node's own fetch(): the verdict of every
 * status, Retry-After, one deadline per attempt, bodies drained or given up, the cap on requests
 * in flight, close() and destroy().
 */
import { Pool } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { ErrorCodes, LokiNetworkError, LokiOptionError, LokiTimeoutError, type LokiHttpError } from '../src/index.js'
import { resolveOptions, type LokiClientOptions } from '../src/model/options.js'
import { isUndiciPool } from '../src/transport/fetch.js'
import { DRAIN_LIMIT, Transport, type SendResult } from '../src/transport/transport.js'
import { startRawServer, waitUntil, within, type RawHandler, type RawServer } from './helpers.js'

let cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanup.reverse()) await c()
  cleanup = []
})

/** A raw server (see startRawServer) closed after the test. */
async function rawServer(handler: RawHandler): Promise<RawServer> {
  const srv = await startRawServer(handler)
  cleanup.push(srv.close)
  return srv
}

const BODY = { body: Buffer.from('{"streams":[]}'), contentType: 'application/json', contentEncoding: undefined }
let batchId = 0

function send(t: Transport, signal: AbortSignal = new AbortController().signal): Promise<SendResult> {
  return t.send(BODY, signal, { batchId: ++batchId, attempt: 1, entries: 1 })
}

it('undici\'s Pool is recognised as such; a Pool like Bun\'s (only a request() that returns nothing) is not', () => {
  expect(isUndiciPool(Pool)).toBe(true)
  class BunLikePool {
    request(): void {}
  }
  expect(isUndiciPool(BunLikePool)).toBe(false)
  // Methods without the stats the transport reads are not enough either.
  class NoStats {
    request(): void {}
    dispatch(): void {}
    close(): void {}
    destroy(): void {}
  }
  expect(isUndiciPool(NoStats)).toBe(false)
})

describe.each(['undici', 'fetch'] as const)('the transport on the %s pool', (http) => {
  function transport(url: string, extra: Partial<LokiClientOptions> = {}): Transport {
    const t = new Transport(resolveOptions({ url, labels: { app: 'transport' }, ...extra }), http)
    cleanup.push(() => t.destroy())
    return t
  }

  it('2xx is a success, every status its verdict, Retry-After honoured, every body drained so one connection serves all', async () => {
    const answers: Array<[number, Record<string, string>, string]> = [
      [204, {}, ''],
      [500, {}, 'ingester unavailable'],
      [429, { 'retry-after': '2' }, 'Ingestion rate limit exceeded'],
      [413, {}, 'too big'],
      [400, {}, 'entry too far behind'],
      [260, {}, 'blocked by policy'],
      [200, {}, 'x'.repeat(1024 * 1024)],
    ]
    const srv = await rawServer((_req, res) => {
      const [status, headers, body] = answers.shift()!
      res.writeHead(status, headers)
      res.end(body)
    })
    const t = transport(srv.url, { concurrency: 1 })
    expect(await send(t)).toEqual({ kind: 'success', status: 204 })
    const r500 = await send(t)
    expect(r500).toMatchObject({ kind: 'retryable', status: 500, failure: 'status5xx', retryAfterMs: undefined })
    expect(r500.kind === 'retryable' && (r500.error as LokiHttpError).body).toBe('ingester unavailable')
    expect(await send(t)).toMatchObject({ kind: 'retryable', status: 429, failure: 'status429', retryAfterMs: 2000 })
    expect(await send(t)).toMatchObject({ kind: 'too_large', status: 413, failure: 'status4xx' })
    expect(await send(t)).toMatchObject({ kind: 'failure', status: 400, failure: 'status4xx' })
    expect(await send(t)).toMatchObject({ kind: 'blocked', status: 260, failure: 'status4xx' })
    expect(await send(t)).toEqual({ kind: 'success', status: 200 })
    expect(t.abandonedBodies).toBe(0)
    // A body left unread would hold its connection: every answer would cost a new one. Node's
    // fetch() hands a body-less answer (the 204) over a moment before its connection is free
    // again, so the next request may open a second one; undici's Pool waits for it.
    if (http === 'undici') expect(srv.accepted).toBe(1)
    else expect(srv.accepted).toBeLessThanOrEqual(2)
  })

  it('a stalled server: the attempt ends at its deadline as a retryable timeout, and the connection is closed', async () => {
    const srv = await rawServer(() => {}) // never answers
    const t = transport(srv.url, { requestTimeoutMs: 300 })
    const r = await send(t)
    expect(r).toMatchObject({ kind: 'retryable', failure: 'timeout', status: undefined })
    expect(r.kind === 'retryable' && r.error).toBeInstanceOf(LokiTimeoutError)
    await waitUntil(() => srv.sockets[0]!.closed, 'the stalled connection to close')
    // undici's Pool may connect again at once, idle and within its cap; FetchPool counts requests.
    if (http === 'fetch') expect(t.connections).toBe(0)
  })

  it('a 200 whose body trickles: a success, the body given up after the drain time limit (not held until requestTimeoutMs), its connection closed', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1000 })
      res.write('x') // and nothing more, ever
    })
    const t = transport(srv.url, { requestTimeoutMs: 600_000 })
    // Not held until requestTimeoutMs: the cap is far below it.
    expect(await within(send(t), 15_000, 'the attempt')).toEqual({ kind: 'success', status: 200 })
    expect(t.abandonedBodies).toBe(1)
    // The client destroyed the socket: the server sees it close.
    await waitUntil(() => srv.sockets[0]!.closed, 'the connection to close')
    expect(srv.sockets).toHaveLength(1)
  })

  it(`a 200 body over DRAIN_LIMIT (${DRAIN_LIMIT} bytes) is given up, not read to its end, and its connection not reused`, async () => {
    const big = Buffer.alloc(DRAIN_LIMIT + 1024 * 1024, 0x78)
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-length': big.length })
      res.end(big)
    })
    const t = transport(srv.url, { requestTimeoutMs: 600_000, concurrency: 1 })
    expect(await within(send(t), 15_000, 'the attempt')).toEqual({ kind: 'success', status: 200 })
    expect(t.abandonedBodies).toBe(1)
    // The next attempt goes out on another connection: the first is not reused, and closes.
    expect(await within(send(t), 15_000, 'the second attempt')).toEqual({ kind: 'success', status: 200 })
    expect(srv.sockets).toHaveLength(2)
    expect(srv.sockets[1]).not.toBe(srv.sockets[0])
    await waitUntil(() => srv.sockets[0]!.closed, 'the connection to close')
  })

  it('a 500 whose body breaks off: the status decides, with what arrived of the body', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(500, { 'content-length': 1000 })
      res.write('ingester unavailable', () => res.socket!.destroy())
    })
    const t = transport(srv.url)
    const r = await send(t)
    expect(r).toMatchObject({ kind: 'retryable', status: 500, failure: 'status5xx', retryAfterMs: undefined })
    expect(r.kind === 'retryable' && (r.error as LokiHttpError).body).toBe('ingester unavailable')
    expect(t.abandonedBodies).toBe(1)
  })

  it('the caller\'s signal: aborted before the attempt sends nothing; aborted while waiting cancels the request', async () => {
    const srv = await rawServer(() => {})
    const t = transport(srv.url)
    const early = new AbortController()
    early.abort(new Error('destroyed before the attempt'))
    expect((await send(t, early.signal)).kind).toBe('aborted')
    expect(srv.sockets).toHaveLength(0)
    const late = new AbortController()
    const pending = send(t, late.signal)
    await waitUntil(() => srv.waiting.length === 1, 'the request to arrive')
    late.abort(new Error('destroy()'))
    const r = await pending
    expect(r.kind).toBe('aborted')
    expect(r.kind === 'aborted' && r.error.code).toBe(ErrorCodes.ABORTED)
    await waitUntil(() => srv.sockets[0]!.closed, 'the connection to close')
  })

  it('never more than `concurrency` requests or connections at once, however many attempts wait', async () => {
    const srv = await rawServer(() => {}) // holds every request until the test answers it
    const t = transport(srv.url, { concurrency: 2 })
    const pending = Array.from({ length: 6 }, () => send(t))
    let answered = 0
    while (answered < 6) {
      await waitUntil(() => srv.waiting.length > 0, 'a request to arrive')
      expect(srv.waiting.length).toBeLessThanOrEqual(2)
      expect(t.connections).toBeLessThanOrEqual(2)
      const res = srv.waiting[0]!
      res.writeHead(204)
      res.end()
      await new Promise((r) => res.once('close', r))
      answered++
    }
    for (const r of await Promise.all(pending)) expect(r).toEqual({ kind: 'success', status: 204 })
    // The Pool caps sockets; FetchPool caps requests in flight (checked above), and the runtime's
    // fetch() may open the next connection before the last one is back in its keep-alive pool.
    if (http === 'undici') expect(srv.peak).toBeLessThanOrEqual(2)
  })

  it('a refused connection is retryable, its code named; a host that does not resolve is LOKI_DNS', async () => {
    const probe = await rawServer((_req, res) => res.end())
    const url = probe.url
    await cleanup.pop()!()
    const refused = await send(transport(url))
    expect(refused).toMatchObject({ kind: 'retryable', failure: 'network' })
    expect(refused.kind === 'retryable' && refused.error.message).toMatch(/ECONNREFUSED/)
    const dns = await send(transport('http://loki.invalid:3100'))
    expect(dns).toMatchObject({ kind: 'retryable', failure: 'network' })
    expect(dns.kind === 'retryable' && dns.error).toBeInstanceOf(LokiNetworkError)
    expect(dns.kind === 'retryable' && dns.error.code).toBe(ErrorCodes.DNS)
  })

  it('a header value the HTTP client refuses is final: a retry cannot fix it', async () => {
    const srv = await rawServer((_req, res) => res.end())
    // The options validator refuses such a value; bypass it to reach the transport's own guard.
    const t = new Transport({ ...resolveOptions({ url: srv.url, labels: { app: 'transport' } }), headers: { 'x-bad': 'a\r\nb' } }, http)
    cleanup.push(() => t.destroy())
    const r = await send(t)
    expect(r).toMatchObject({ kind: 'failure', failure: 'network' })
    expect(r.kind === 'failure' && r.error.message).toMatch(/^request rejected by the HTTP client: /)
    expect(srv.sockets).toHaveLength(0)
  })

  it('close() waits for the request in flight and refuses later ones; destroy() cancels one in flight', async () => {
    const srv = await rawServer(() => {})
    const t = transport(srv.url)
    const inFlight = send(t)
    await waitUntil(() => srv.waiting.length === 1, 'the request to arrive')
    let closed = false
    const closing = t.close().then(() => (closed = true))
    await new Promise((r) => setTimeout(r, 50))
    expect(closed).toBe(false)
    srv.waiting[0]!.writeHead(204)
    srv.waiting[0]!.end()
    expect(await inFlight).toEqual({ kind: 'success', status: 204 })
    await closing
    expect(t.connections).toBe(0)
    // FetchPool ends idle connections only where it has a Bun.FetchSession of its own; Node's
    // global fetch() keeps them until its keep-alive timeout.
    if (http === 'undici') await waitUntil(() => srv.sockets[0]!.closed, 'the connection to close')
    // Closed: a later attempt is refused as a network failure, never a throw.
    expect(await send(t)).toMatchObject({ kind: 'retryable', failure: 'network' })

    const t2 = transport(srv.url)
    const cut = send(t2)
    await waitUntil(() => srv.waiting.length === 1, 'the second request to arrive')
    await t2.destroy()
    expect(await cut).toMatchObject({ kind: 'retryable', failure: 'network' })
    expect(t2.connections).toBe(0)
    await waitUntil(() => srv.sockets[1]!.closed, 'the cancelled connection to close')
  })
})

describe('on Bun: a Bun.FetchSession of the pool\'s own', () => {
  const g = globalThis as { Bun?: unknown }
  afterEach(() => {
    delete g.Bun
  })

  it('every request goes through the session, which holds the TLS options; close() ends its idle connections', async () => {
    const made: Array<{ tls?: Record<string, unknown> }> = []
    const sent: Array<Record<string, unknown>> = []
    let closes = 0
    g.Bun = {
      FetchSession: class {
        constructor(init: { tls?: Record<string, unknown> }) {
          made.push(init)
        }
        fetch = (url: string, init: Record<string, unknown>) => {
          sent.push(init)
          return fetch(url, init as RequestInit)
        }
        close() {
          closes++
        }
      },
    }
    const srv = await rawServer((_req, res) => res.writeHead(204).end())
    const t = new Transport(resolveOptions({ url: srv.url, labels: { app: 'transport' }, tls: { ca: 'the CA', servername: 'loki.example.com' } }), 'fetch')
    cleanup.push(() => t.destroy())
    expect(await send(t)).toEqual({ kind: 'success', status: 204 })
    // proxy: false, or Bun's fetch() would follow HTTP_PROXY by itself: the option is opt-in.
    expect(made).toEqual([{ tls: { ca: 'the CA', serverName: 'loki.example.com' }, proxy: false }])
    expect(sent).toHaveLength(1)
    expect(sent[0]!.tls).toBeUndefined() // the session's, not repeated per request
    await t.close()
    expect(closes).toBe(1)
  })

  it('TLS options the session refuses are a LokiOptionError at construction, not a failure on every attempt', () => {
    g.Bun = {
      FetchSession: class {
        constructor() {
          throw new TypeError('TLSOptions.ca must be of type string')
        }
      },
    }
    const construct = () => new Transport(resolveOptions({ url: 'https://127.0.0.1:1', labels: { app: 'transport' }, tls: { ca: 'x' } }), 'fetch')
    expect(construct).toThrow(LokiOptionError)
    expect(construct).toThrow('Invalid option "tls": TLSOptions.ca must be of type string')
  })
})

describe('on Bun: the proxy option goes to the session; its refusals are reported as on Node', () => {
  const g = globalThis as { Bun?: unknown }
  afterEach(() => {
    delete g.Bun
  })

  it('credentials go to the proxy as Proxy-Authorization; a 407 to CONNECT is a final LOKI_PROXY, a 502 is retried', async () => {
    const made: unknown[] = []
    const answers = [407, 502]
    g.Bun = {
      FetchSession: class {
        constructor(init: unknown) {
          made.push(init)
        }
        // What Bun's fetch() rejects with when the proxy does not open the tunnel.
        fetch = () => {
          const status = answers.shift()!
          return Promise.reject(Object.assign(new Error(`Proxy refused to open a tunnel: ${status} Refused`), { code: 'ERR_PROXY_TUNNEL', status }))
        }
        close() {}
      },
    }
    const t = new Transport(resolveOptions({ url: 'https://logs.example.com', labels: { app: 'transport' }, proxy: 'http://user:secret@proxy.corp:3128' }), 'fetch')
    cleanup.push(() => t.destroy())
    expect(made).toEqual([{ proxy: { url: 'http://proxy.corp:3128', headers: { 'proxy-authorization': `Basic ${Buffer.from('user:secret').toString('base64')}` } } }])
    const refused = await send(t)
    expect(refused).toMatchObject({ kind: 'failure', failure: 'network' })
    expect(refused.kind === 'failure' && refused.error.code).toBe(ErrorCodes.PROXY)
    expect(refused.kind === 'failure' && refused.error.message).toBe(
      'the proxy http://proxy.corp:3128 refused to open a tunnel to logs.example.com:443: it answered 407 to CONNECT (proxy credentials missing or refused)',
    )
    const busy = await send(t)
    expect(busy).toMatchObject({ kind: 'retryable', failure: 'network' })
    expect(busy.kind === 'retryable' && busy.error.code).toBe(ErrorCodes.PROXY)
  })
})
