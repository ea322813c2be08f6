/*
 * The HTTP layer on its own, against real node:http servers on 127.0.0.1: every path of
 * Transport.send() from a status or an error to its SendResult, and what each leaves of the socket.
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import { getEventListeners } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { buildConnector, errors as undiciErrors, Pool } from 'undici'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ErrorCodes, LokiClient, type LokiHttpError, LokiNetworkError } from '../src/index.js'
import type { DropEvent, FailedEvent, RequestEndMessage, RequestErrorMessage, RequestStartMessage } from '../src/index.js'
import { resolveOptions, type LokiClientOptions } from '../src/model/options.js'
import { DRAIN_LIMIT, ERROR_BODY_KEEP, trackingConnector, Transport, type SendResult } from '../src/transport/transport.js'
import { FAST, startRawServer, waitUntil, within, type RawHandler, type RawServer } from './helpers.js'

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

// A trickling 2xx body, one over DRAIN_LIMIT and a 500 that breaks off: test/fetch-pool.test.ts, on both pools.
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

const tlsDir = join(import.meta.dirname, 'fixtures', 'tls')
const pem = (name: string) => readFileSync(join(tlsDir, name))

/** An https server answering 204 with the given certificate, counting the requests that got through. */
async function httpsServer(cert: Buffer, key: Buffer): Promise<{ url: string; requests: () => number }> {
  let requests = 0
  const server = createHttpsServer({ cert, key }, (req, res) => {
    req.resume()
    req.on('end', () => {
      requests++
      res.writeHead(204)
      res.end()
    })
  })
  // A refused handshake is the point of these tests, not a server problem.
  server.on('tlsClientError', () => {})
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanup.push(() => new Promise((r) => {
    server.closeAllConnections()
    server.close(r)
  }))
  return { url: `https://127.0.0.1:${(server.address() as { port: number }).port}`, requests: () => requests }
}

describe('connection failures: TLS configuration errors are final, DNS and the rest are retried, each with its code', () => {
  const cases: Array<{ name: string; cause: string; server: () => Promise<{ url: string; requests: () => number }>; tls?: LokiClientOptions['tls'] }> = [
    { name: 'a self-signed certificate', cause: 'DEPTH_ZERO_SELF_SIGNED_CERT', server: () => httpsServer(pem('cert.pem'), pem('key.pem')) },
    { name: 'a certificate from an untrusted CA', cause: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', server: () => httpsServer(pem('leaf.pem'), pem('leaf-key.pem')) },
    { name: 'an expired certificate', cause: 'CERT_HAS_EXPIRED', server: () => httpsServer(pem('expired.pem'), pem('leaf-key.pem')), tls: { ca: pem('ca.pem') } },
    {
      name: 'a certificate for another host name',
      cause: 'ERR_TLS_CERT_ALTNAME_INVALID',
      server: () => httpsServer(pem('leaf.pem'), pem('leaf-key.pem')),
      tls: { ca: pem('ca.pem'), servername: 'loki.example.com' },
    },
    {
      name: 'an https URL on a plain HTTP port',
      cause: 'ERR_SSL_WRONG_VERSION_NUMBER',
      server: async () => {
        const srv = await rawServer((_req, res) => res.end())
        return { url: srv.url.replace('http:', 'https:'), requests: () => srv.sockets.length }
      },
    },
  ]
  for (const c of cases) {
    it(`${c.name}: LOKI_TLS, not retried (${c.cause})`, async () => {
      const srv = await c.server()
      const t = transport(srv.url, c.tls ? { tls: c.tls } : {})
      const r = await send(t)
      expect(r.kind).toBe('failure')
      if (r.kind !== 'failure') return
      expect(r.failure).toBe('network')
      expect(r.error).toBeInstanceOf(LokiNetworkError)
      expect(r.error.code).toBe(ErrorCodes.TLS)
      expect((r.error.cause as { code?: string }).code).toBe(c.cause)
      expect(r.error.message).toMatch(/^TLS handshake with Loki failed: /)
      expect(r.error.message.split(c.cause)).toHaveLength(2) // named once
      expect(srv.requests()).toBe(0)
    })
  }

  it('a TLS configuration error drops the batch after one attempt instead of retrying it like an outage', async () => {
    const srv = await httpsServer(pem('cert.pem'), pem('key.pem'))
    const cl = new LokiClient({ url: srv.url, labels: { app: 'tls' }, ...FAST, retry: { ...FAST.retry, maxAttempts: 10 } })
    cleanup.push(() => cl.destroy())
    const failed: FailedEvent[] = []
    const drops: DropEvent[] = []
    cl.on('failed', (e) => failed.push(e))
    cl.on('drop', (e) => drops.push(e))
    cl.push({ line: 'to a misconfigured Loki' })
    const r = await cl.flush({ timeoutMs: 10_000 })
    expect(r).toMatchObject({ ok: false, timedOut: false, droppedEntries: 1 })
    expect(failed.map((f) => [f.attempt, f.error.code, f.willRetry])).toEqual([[1, 'LOKI_TLS', false]])
    expect(drops.map((d) => [d.reason, d.error?.code])).toEqual([['rejected', 'LOKI_TLS']])
    expect(cl.stats()).toMatchObject({ retries: 0, breaker: 'closed' })
  })

  it('a host name that does not resolve: LOKI_DNS, retried', async () => {
    // RFC 6761: .invalid never resolves, and resolvers answer so without asking the network.
    const t = transport('http://loki.invalid:3100')
    const r = await within(send(t), 15_000, 'the attempt')
    expect(r.kind).toBe('retryable')
    if (r.kind !== 'retryable') return
    expect(r.failure).toBe('network')
    expect(r.error).toBeInstanceOf(LokiNetworkError)
    expect(r.error.code).toBe(ErrorCodes.DNS)
    expect(r.error.message).toMatch(/^could not resolve Loki's host: /)
    expect(r.error.message.split('ENOTFOUND')).toHaveLength(2)
  })

  it('a refused connection: LOKI_NETWORK, retried, the code named once in the message', async () => {
    // A port that was just free: listen, note it, close.
    const probe = await rawServer((_req, res) => res.end())
    const url = probe.url
    await cleanup.pop()!()
    const t = transport(url)
    const r = await send(t)
    expect(r.kind).toBe('retryable')
    if (r.kind !== 'retryable') return
    expect(r.failure).toBe('network')
    expect(r.error.code).toBe(ErrorCodes.NETWORK)
    expect(r.error.message).toMatch(/^request failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/)
  })
})

describe('every other path of an attempt', () => {
  it('a signal aborted before the attempt: aborted, nothing sent', async () => {
    const srv = await rawServer((_req, res) => res.end())
    const t = transport(srv.url)
    const ac = new AbortController()
    ac.abort(new Error('destroyed before the attempt'))
    const r = await send(t, ac.signal)
    expect(r.kind).toBe('aborted')
    expect(r.kind === 'aborted' && r.error.code).toBe(ErrorCodes.ABORTED)
    expect(srv.sockets).toHaveLength(0)
  })

  it('a signal aborted while waiting for the status: aborted, and the socket is destroyed', async () => {
    const srv = await rawServer(() => {}) // never answers
    // No deadline of its own in sight: only the signal can end this attempt.
    const t = transport(srv.url, { requestTimeoutMs: 600_000 })
    const ac = new AbortController()
    const pending = send(t, ac.signal)
    await waitUntil(() => srv.sockets.length === 1, 'the request to arrive')
    ac.abort(new Error('destroy()'))
    const r = await within(pending, 15_000, 'the aborted attempt')
    expect(r.kind).toBe('aborted')
    expect(r.kind === 'aborted' && (r.error.cause as Error).message).toBe('destroy()')
    await waitUntil(() => srv.sockets[0]!.closed, 'the socket to close')
  })

  it('a signal aborted while a 2xx body is arriving: still a success, the body abandoned', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1000 })
      res.write('x')
    })
    const t = transport(srv.url)
    const ac = new AbortController()
    // undici publishes this once the status and headers are parsed, before the body is read.
    const onHeaders = () => queueMicrotask(() => ac.abort(new Error('destroy()')))
    diagnosticsChannel.subscribe('undici:request:headers', onHeaders)
    try {
      expect(await send(t, ac.signal)).toEqual({ kind: 'success', status: 200 })
    } finally {
      diagnosticsChannel.unsubscribe('undici:request:headers', onHeaders)
    }
    expect(t.abandonedBodies).toBe(1)
    await waitUntil(() => srv.sockets[0]!.closed, 'the socket to close')
  })

  it('408 and 429 are retryable with Retry-After; 413 is too_large; other 4xx are final', async () => {
    const answers: Array<[number, Record<string, string>]> = [[408, {}], [429, { 'retry-after': '2' }], [413, {}], [422, {}]]
    const srv = await rawServer((_req, res) => {
      const [status, headers] = answers.shift()!
      res.writeHead(status, headers)
      res.end('no')
    })
    const t = transport(srv.url, { concurrency: 1 })
    // `failure` is the class stats().failedRequests counts: decided here, never from a status above.
    expect(await send(t)).toMatchObject({ kind: 'retryable', status: 408, failure: 'status4xx', retryAfterMs: undefined })
    expect(await send(t)).toMatchObject({ kind: 'retryable', status: 429, failure: 'status429', retryAfterMs: 2000 })
    expect(await send(t)).toMatchObject({ kind: 'too_large', status: 413, failure: 'status4xx' })
    expect(await send(t)).toMatchObject({ kind: 'failure', status: 422, failure: 'status4xx' })
    expect(t.abandonedBodies).toBe(0)
    expect(srv.accepted).toBe(1) // every error body drained: one socket served all four
  })

  it('a header value undici refuses is final: a retry cannot fix it', async () => {
    const srv = await rawServer((_req, res) => res.end())
    // The options validator refuses such a value; bypass it to reach the transport's own guard.
    const t = new Transport({ ...resolveOptions({ url: srv.url, labels: { app: 'transport' } }), headers: { 'x-bad': 'a\r\nb' } })
    cleanup.push(() => t.destroy())
    const r = await send(t)
    expect(r.kind).toBe('failure')
    expect(r).toMatchObject({ kind: 'failure', failure: 'network' })
    expect(r.kind === 'failure' && r.error.code).toBe(ErrorCodes.NETWORK)
    expect(r.kind === 'failure' && r.error.message).toMatch(/^request rejected by the HTTP client: /)
    expect(srv.sockets).toHaveLength(0)
  })

  it('a rejection that is not an Error and has no code is retryable, its text kept', async () => {
    const srv = await rawServer((_req, res) => res.end())
    const t = transport(srv.url)
    // Nothing in undici rejects like this today; the transport must still not throw if it does.
    const spy = vi.spyOn(Pool.prototype, 'request').mockImplementationOnce(() => Promise.reject('odd failure') as never)
    try {
      const r = await send(t)
      expect(r).toMatchObject({ kind: 'retryable', status: undefined, failure: 'network' })
      expect(r.kind === 'retryable' && r.error.message).toBe('request failed: odd failure')
    } finally {
      spy.mockRestore()
    }
  })

  it('close() waits for the socket to close; close() and destroy() again are no-ops', async () => {
    const srv = await rawServer((_req, res) => res.end())
    const t = transport(srv.url)
    expect(await send(t)).toEqual({ kind: 'success', status: 200 })
    expect(t.connections).toBe(1)
    await t.close()
    expect(t.connections).toBe(0)
    await waitUntil(() => srv.open.size === 0, 'the server to see the socket close')
    await t.close()
    await t.destroy()
    await t.destroy()
    await t.close()
  })

  it('a second close() while the first waits for a request in flight waits too, and the request completes', async () => {
    let answer: (() => void) | undefined
    const srv = await rawServer((_req, res) => {
      answer = () => res.end()
    })
    const t = transport(srv.url)
    const pending = send(t)
    await waitUntil(() => answer !== undefined, 'the request to arrive')
    const first = t.close()
    const second = t.close()
    // Neither may end the socket under the request it waits for.
    await new Promise((r) => setTimeout(r, 50))
    answer!()
    expect(await within(pending, 15_000, 'the attempt')).toEqual({ kind: 'success', status: 200 })
    await within(Promise.all([first, second]), 15_000, 'both closes')
    expect(t.connections).toBe(0)
  })

  it('the connector wrapper passes through a connector that returns no socket, tracking nothing', () => {
    const sockets = new Set<Socket>()
    const calls: string[] = []
    const base = ((o: { hostname: string }) => {
      calls.push(o.hostname)
    }) as unknown as Parameters<typeof trackingConnector>[0]
    trackingConnector(base, sockets)({ hostname: 'h', protocol: 'http:', port: '1' }, () => {})
    expect(calls).toEqual(['h'])
    expect(sockets.size).toBe(0)
  })
})

describe('what an answer leaves in its result: error bodies, statuses, the drain limits', () => {
  it(`an error body is kept up to ERROR_BODY_KEEP (${ERROR_BODY_KEEP} bytes) and trimmed, and still drained to its end`, async () => {
    // Sent in pieces, so the kept part is gathered across chunks and the rest only counted.
    const piece = 'x'.repeat(16 * 1024)
    const srv = await rawServer((_req, res) => {
      res.writeHead(500, { 'content-length': 2 + ERROR_BODY_KEEP * 2 + 2 })
      res.write('\n ')
      for (let i = 0; i < (ERROR_BODY_KEEP * 2) / piece.length; i++) res.write(piece)
      res.end(' \n')
    })
    const t = transport(srv.url, { concurrency: 1 })
    const r = await send(t)
    expect(r).toMatchObject({ kind: 'retryable', status: 500, failure: 'status5xx' })
    const body = r.kind === 'retryable' ? (r.error as LokiHttpError).body : ''
    expect(body).toBe('x'.repeat(ERROR_BODY_KEEP - 2))
    // Read to its end: not abandoned, and the next attempt reuses the connection.
    expect(t.abandonedBodies).toBe(0)
    expect(await send(t)).toMatchObject({ kind: 'retryable', status: 500 })
    expect(srv.accepted).toBe(1)
  })

  it('a 260 carries Loki\'s reason in its error, like any refusal', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(260)
      res.end('ingestion blocked by policy for this stream\n')
    })
    const t = transport(srv.url)
    const r = await send(t)
    expect(r).toMatchObject({ kind: 'blocked', status: 260, failure: 'status4xx' })
    expect(r.kind === 'blocked' && r.error.body).toBe('ingestion blocked by policy for this stream')
    expect(r.kind === 'blocked' && r.error.message).toBe('Loki answered 260: ingestion blocked by policy for this stream')
  })

  it('an error without a body: an empty body, and a message that ends at the status', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(503)
      res.end()
    })
    const t = transport(srv.url)
    const r = await send(t)
    expect(r).toMatchObject({ kind: 'retryable', status: 503, failure: 'status5xx' })
    expect(r.kind === 'retryable' && (r.error as LokiHttpError).body).toBe('')
    expect(r.kind === 'retryable' && r.error.message).toBe('Loki answered 503')
  })

  it('a redirect is not a delivery: 3xx is final, with its body', async () => {
    const statuses = [300, 301, 308]
    const srv = await rawServer((_req, res) => {
      res.writeHead(statuses[srv.sockets.length - 1]!, { location: 'https://elsewhere.example/' })
      res.end('moved')
    })
    const t = transport(srv.url, { concurrency: 1 })
    for (const status of statuses) {
      const r = await send(t)
      expect(r).toMatchObject({ kind: 'failure', status, failure: 'status4xx' })
      expect(r.kind === 'failure' && (r.error as LokiHttpError).body).toBe('moved')
    }
  })

  it(`a 2xx body of exactly DRAIN_LIMIT (${DRAIN_LIMIT} bytes) is read to its end and its socket kept`, async () => {
    const body = Buffer.alloc(DRAIN_LIMIT, 0x78)
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-length': body.length })
      res.end(body)
    })
    const t = transport(srv.url, { requestTimeoutMs: 600_000, concurrency: 1 })
    expect(await within(send(t), 30_000, 'the attempt')).toEqual({ kind: 'success', status: 200 })
    expect(t.abandonedBodies).toBe(0)
    expect(await within(send(t), 30_000, 'the second attempt')).toEqual({ kind: 'success', status: 200 })
    expect(srv.accepted).toBe(1)
  })
})

describe('the attempt\'s deadline', () => {
  it('names requestTimeoutMs when it is the limit, and the retry budget when that is shorter', async () => {
    const srv = await rawServer(() => {}) // never answers
    const t = transport(srv.url, { requestTimeoutMs: 300 })
    const attempt = (timeoutMs: number | undefined) => t.send(BODY, new AbortController().signal, { batchId: ++batchId, attempt: 1, entries: 1, timeoutMs })
    const cases: Array<[number | undefined, RegExp]> = [
      [undefined, /^no complete answer within requestTimeoutMs \(300 ms\)$/],
      // A budget that leaves as much as requestTimeoutMs is not what cut the attempt.
      [300, /^no complete answer within requestTimeoutMs \(300 ms\)$/],
      [150, /^no complete answer within the 150 ms the retry budget \(retry\.budgetMs\) had left$/],
    ]
    for (const [timeoutMs, message] of cases) {
      const r = await within(attempt(timeoutMs), 15_000, 'the attempt')
      expect(r).toMatchObject({ kind: 'retryable', status: undefined, failure: 'timeout', retryAfterMs: undefined })
      expect(r.kind === 'retryable' && r.error.code).toBe(ErrorCodes.REQUEST_TIMEOUT)
      expect(r.kind === 'retryable' && r.error.message).toMatch(message)
    }
  })

  it('ends at its deadline while the connect is still under way, however long connectTimeoutMs is; nothing left after destroy()', async () => {
    // Accepts connections and never speaks TLS: the connect (the handshake) hangs until connectTimeoutMs.
    const sockets = new Set<Socket>()
    const silent = createNetServer((socket) => {
      // Read, so the client's FIN is seen: a paused socket never emits 'end', nor closes.
      socket.resume()
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    cleanup.push(() => new Promise((r) => {
      for (const s of sockets) s.destroy()
      silent.close(r)
    }))
    const url = `https://127.0.0.1:${(silent.address() as { port: number }).port}`
    const t = transport(url, { requestTimeoutMs: 300, connectTimeoutMs: 600_000 })
    const attempt = (timeoutMs?: number) => t.send(BODY, new AbortController().signal, { batchId: ++batchId, attempt: 1, entries: 1, timeoutMs })
    // undici alone settles these only when the connect ends: ten minutes from now.
    expect(await within(attempt(), 15_000, 'the attempt')).toMatchObject({ kind: 'retryable', failure: 'timeout' })
    expect(await within(attempt(150), 15_000, 'the budgeted attempt')).toMatchObject({ kind: 'retryable', failure: 'timeout' })
    await waitUntil(() => sockets.size > 0, 'the connect to reach the server')
    await t.destroy()
    await waitUntil(() => sockets.size === 0, 'the pending connects to be closed')
  })

  it('an attempt leaves no listener on the batch\'s signal, however it ends', async () => {
    const answers = [200, 500]
    const srv = await rawServer((_req, res) => {
      const status = answers.shift()
      if (status === undefined) return // the third never answers
      res.writeHead(status)
      res.end()
    })
    const t = transport(srv.url, { requestTimeoutMs: 300 })
    const signal = new AbortController().signal
    expect((await send(t, signal)).kind).toBe('success')
    expect((await send(t, signal)).kind).toBe('retryable')
    expect(await within(send(t, signal), 15_000, 'the stalled attempt')).toMatchObject({ kind: 'retryable', failure: 'timeout' })
    expect(getEventListeners(signal, 'abort')).toHaveLength(0)
  })
})

describe('diagnostics channels: one message per attempt, on the channel its outcome belongs to', () => {
  function subscribe(): { start: RequestStartMessage[]; end: RequestEndMessage[]; error: RequestErrorMessage[]; stop: () => void } {
    const got = { start: [] as RequestStartMessage[], end: [] as RequestEndMessage[], error: [] as RequestErrorMessage[] }
    const fns = {
      start: (m: unknown) => got.start.push(m as RequestStartMessage),
      end: (m: unknown) => got.end.push(m as RequestEndMessage),
      error: (m: unknown) => got.error.push(m as RequestErrorMessage),
    }
    for (const k of ['start', 'end', 'error'] as const) diagnosticsChannel.subscribe(`lokiwire:request:${k}`, fns[k])
    const stop = () => {
      for (const k of ['start', 'end', 'error'] as const) diagnosticsChannel.unsubscribe(`lokiwire:request:${k}`, fns[k])
    }
    cleanup.push(async () => stop())
    return { ...got, stop }
  }

  it('an answer, whatever its status, ends on request:end with the status; its duration lies within the call', async () => {
    const answers = [204, 503]
    const srv = await rawServer((_req, res) => {
      res.writeHead(answers.shift()!)
      res.end()
    })
    const t = transport(srv.url, { concurrency: 1 })
    const ch = subscribe()
    for (const status of [204, 503]) {
      const before = performance.now()
      await t.send(BODY, new AbortController().signal, { batchId: 7, attempt: status === 204 ? 1 : 2, entries: 3 })
      const elapsed = performance.now() - before
      const end = ch.end.at(-1)!
      expect(end).toMatchObject({ url: `${srv.url}/loki/api/v1/push`, batchId: 7, entries: 3, bytes: BODY.body.length, status, bodyAbandoned: false })
      expect(end.durationMs).toBeGreaterThanOrEqual(0)
      expect(end.durationMs).toBeLessThanOrEqual(elapsed)
    }
    expect(ch.start.map((m) => m.attempt)).toEqual([1, 2])
    expect(ch.end.map((m) => m.attempt)).toEqual([1, 2])
    expect(ch.error).toEqual([])
  })

  it('no answer (a timeout, an abort) ends on request:error with the error; its duration lies within the call', async () => {
    const srv = await rawServer(() => {}) // never answers
    const t = transport(srv.url, { requestTimeoutMs: 200 })
    const ch = subscribe()
    const ac = new AbortController()
    ac.abort(new Error('destroy()'))
    for (const signal of [new AbortController().signal, ac.signal]) {
      const before = performance.now()
      const r = await within(send(t, signal), 15_000, 'the attempt')
      const elapsed = performance.now() - before
      const error = ch.error.at(-1)!
      expect(error.error).toBe(r.kind === 'success' ? undefined : r.error)
      expect(error).toMatchObject({ url: `${srv.url}/loki/api/v1/push`, entries: 1, bytes: BODY.body.length })
      expect(error.durationMs).toBeGreaterThanOrEqual(0)
      expect(error.durationMs).toBeLessThanOrEqual(elapsed)
    }
    expect(ch.error.map((m) => (m.error as { code?: string }).code)).toEqual([ErrorCodes.REQUEST_TIMEOUT, ErrorCodes.ABORTED])
    // The abort says what it is and keeps what aborted it.
    expect(ch.error[1]!.error.message).toBe('request aborted')
    expect((ch.error[1]!.error.cause as Error).message).toBe('destroy()')
    expect(ch.start).toHaveLength(2)
    expect(ch.end).toEqual([])
  })
})

describe('errors from the HTTP client, by code: what a retry can fix and what it cannot', () => {
  /** send() with the pool's request rejecting once with `err`, as undici rejects it. */
  async function sendFailing(err: unknown): Promise<SendResult> {
    const srv = await rawServer((_req, res) => res.end())
    const t = transport(srv.url)
    const spy = vi.spyOn(Pool.prototype, 'request').mockImplementationOnce(() => Promise.reject(err) as never)
    try {
      return await send(t)
    } finally {
      spy.mockRestore()
    }
  }
  const coded = (message: string, code: string) => Object.assign(new Error(message), { code })

  // The certificate and handshake failures a user fixes in configuration, not by waiting. Each
  // is Node's (OpenSSL's) code for it; a few are produced for real by the TLS tests above.
  const TLS = [
    'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
    'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD', 'CERT_SIGNATURE_FAILURE',
    'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_CHAIN_TOO_LONG',
    'CERT_REVOKED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
    'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
    'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
    'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
    'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  ]
  for (const code of TLS) {
    it(`${code}: LOKI_TLS, final`, async () => {
      const r = await sendFailing(coded('the handshake failed', code))
      expect(r).toMatchObject({ kind: 'failure', status: undefined, failure: 'network' })
      expect(r.kind === 'failure' && r.error.code).toBe(ErrorCodes.TLS)
      expect(r.kind === 'failure' && r.error.message).toBe(`TLS handshake with Loki failed: the handshake failed (${code})`)
    })
  }

  // A cluster's DNS flaps while services restart: worth another try, under its own code.
  for (const code of ['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']) {
    it(`${code}: LOKI_DNS, retried`, async () => {
      const r = await sendFailing(coded(`getaddrinfo ${code} loki`, code))
      expect(r).toMatchObject({ kind: 'retryable', status: undefined, failure: 'network', retryAfterMs: undefined })
      expect(r.kind === 'retryable' && r.error.code).toBe(ErrorCodes.DNS)
      expect(r.kind === 'retryable' && r.error.message).toBe(`could not resolve Loki's host: getaddrinfo ${code} loki`)
    })
  }

  it('undici\'s headers timeout is a timeout, retried', async () => {
    const r = await sendFailing(new undiciErrors.HeadersTimeoutError())
    expect(r).toMatchObject({ kind: 'retryable', status: undefined, failure: 'timeout', retryAfterMs: undefined })
    expect(r.kind === 'retryable' && r.error.code).toBe(ErrorCodes.REQUEST_TIMEOUT)
    expect(r.kind === 'retryable' && r.error.message).toBe('request timed out: Headers Timeout Error (UND_ERR_HEADERS_TIMEOUT)')
  })

  it('a rejection with nothing at all is retryable, not thrown', async () => {
    for (const nothing of [null, undefined]) {
      const r = await sendFailing(nothing)
      expect(r).toMatchObject({ kind: 'retryable', status: undefined, failure: 'network' })
      expect(r.kind === 'retryable' && r.error.message).toBe(`request failed: ${String(nothing)}`)
    }
  })
})

describe('the connector remembers each socket until it closes', () => {
  it('a socket leaves the set once it has closed', async () => {
    const srv = await rawServer((_req, res) => res.end())
    const sockets = new Set<Socket>()
    const connect = trackingConnector(buildConnector({}), sockets)
    const { port } = new URL(srv.url)
    const socket = await new Promise<Socket>((resolve, reject) => {
      connect({ hostname: '127.0.0.1', host: `127.0.0.1:${port}`, protocol: 'http:', port }, (err, s) => (err ? reject(err) : resolve(s as Socket)))
    })
    expect([...sockets]).toEqual([socket])
    socket.destroy()
    await waitUntil(() => sockets.size === 0, 'the closed socket to leave the set')
  })
})
