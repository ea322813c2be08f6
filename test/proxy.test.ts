import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LokiClient, LokiOptionError, type DropEvent, type FailedEvent } from '../src/index.js'
import { bypassed, resolveProxy } from '../src/model/proxy.js'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { requireBuiltCli, runCli } from './fixtures/cli-run.js'
import { extraResources, FAST, resources, waitUntil } from './helpers.js'

/**
 * A CONNECT proxy on loopback, as corporate proxies are: it opens a TCP tunnel to the target it
 * is asked for, or answers `refuse` instead. It counts the tunnels open now and at most, and
 * keeps what each CONNECT asked for.
 */
interface TestProxy {
  url: string
  connects: Array<{ target: string; authorization: string | undefined }>
  open: () => number
  peak: () => number
  /** Sockets the proxy holds, client and upstream sides: they close when our side does. */
  live: () => number
  /** A status to answer CONNECT with instead of opening the tunnel, or 'hang' to never answer. */
  refuse: number | 'hang' | undefined
}

const cleanup: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!()
})

async function startProxy(): Promise<TestProxy> {
  const sockets = new Set<Socket>()
  let open = 0
  let peak = 0
  const proxy: TestProxy = { url: '', connects: [], open: () => open, peak: () => peak, live: () => sockets.size, refuse: undefined }
  const server = createHttpServer((_req, res) => res.writeHead(405).end())
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    proxy.connects.push({ target: req.url ?? '', authorization: req.headers['proxy-authorization'] })
    sockets.add(client)
    client.on('error', () => {})
    client.once('close', () => sockets.delete(client))
    // The http server's sockets are half-open capable: when our side ends, end this one too.
    client.once('end', () => client.destroy())
    if (proxy.refuse === 'hang') return
    if (proxy.refuse !== undefined) {
      client.end(`HTTP/1.1 ${proxy.refuse} Refused\r\ncontent-length: 0\r\n\r\n`)
      return
    }
    const [host, port] = splitTarget(req.url ?? '')
    const upstream = connect(port, host, () => {
      open++
      peak = Math.max(peak, open)
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    sockets.add(upstream)
    upstream.on('error', () => client.destroy())
    upstream.once('close', () => {
      sockets.delete(upstream)
      client.destroy()
    })
    client.once('close', () => {
      if (!upstream.connecting) open = Math.max(0, open - 1)
      upstream.destroy()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  proxy.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  cleanup.push(() => new Promise((r) => {
    for (const s of sockets) s.destroy()
    server.close(r)
  }))
  return proxy
}

function splitTarget(target: string): [string, number] {
  const i = target.lastIndexOf(':')
  return [target.slice(0, i).replace(/^\[|\]$/g, ''), Number(target.slice(i + 1))]
}

async function receiver(): Promise<LokiTestServer> {
  const srv = await createLokiTestServer()
  cleanup.push(() => srv.close())
  return srv
}

function client(url: string, proxy: unknown, extra: Record<string, unknown> = {}): LokiClient {
  const c = new LokiClient({ url, labels: { app: 'proxied' }, ...FAST, proxy, ...extra } as never)
  cleanup.push(() => c.destroy())
  return c
}

describe('proxy: a URL', () => {
  it('sends every request through a CONNECT tunnel to Loki, and leaves no socket behind at close()', async () => {
    const srv = await receiver()
    const proxy = await startProxy()
    const before = resources()
    const c = client(srv.url, proxy.url)
    for (let i = 0; i < 50; i++) c.push({ line: `through the proxy ${i}` })
    const r = await c.close()
    expect(r.ok).toBe(true)
    expect(srv.entries).toHaveLength(50)
    const port = new URL(srv.url).port
    expect(proxy.connects.length).toBeGreaterThan(0)
    expect(proxy.connects.every((x) => x.target === `127.0.0.1:${port}`)).toBe(true)
    // Nothing reached Loki but through a tunnel: the receiver saw only the proxy's connections.
    expect(srv.requests.every((q) => q.headers['proxy-authorization'] === undefined)).toBe(true)
    await waitUntil(() => proxy.live() === 0, 'the proxy to see every connection closed')
    expect(extraResources(before, resources())).toEqual([])
  })

  it('honours concurrency: at most that many tunnels at once, however many batches wait', async () => {
    const srv = await receiver()
    srv.setFault({ type: 'slowHeaders', delayMs: 100 })
    const proxy = await startProxy()
    const c = client(srv.url, proxy.url, { concurrency: 2, batch: { maxEntries: 1, maxWaitMs: 0 } })
    for (let i = 0; i < 20; i++) c.push({ line: `batch ${i}` })
    const r = await c.close({ timeoutMs: 30_000 })
    expect(r.ok).toBe(true)
    expect(srv.entries).toHaveLength(20)
    expect(proxy.peak()).toBeGreaterThan(0)
    expect(proxy.peak()).toBeLessThanOrEqual(2)
  })

  it('sends the URL\'s credentials to the proxy only, and never prints them', async () => {
    const srv = await receiver()
    const proxy = await startProxy()
    const withAuth = proxy.url.replace('http://', 'http://alice:s3cr%40t@')
    const c = client(srv.url, withAuth)
    c.push({ line: 'authenticated' })
    expect((await c.close()).ok).toBe(true)
    expect(proxy.connects[0]!.authorization).toBe(`Basic ${Buffer.from('alice:s3cr@t').toString('base64')}`)
    expect(srv.requests[0]!.headers['proxy-authorization']).toBeUndefined()
  })

  it('a proxy that refuses the credentials (407): LOKI_PROXY after one attempt, the password in no message', async () => {
    const srv = await receiver()
    const proxy = await startProxy()
    proxy.refuse = 407
    const c = client(srv.url, proxy.url.replace('http://', 'http://alice:hunter2@'), { retry: { ...FAST.retry, maxAttempts: 10 } })
    const failed: FailedEvent[] = []
    const drops: DropEvent[] = []
    c.on('failed', (e) => failed.push(e))
    c.on('drop', (e) => drops.push(e))
    c.push({ line: 'refused' })
    const r = await c.flush({ timeoutMs: 10_000 })
    expect(r).toMatchObject({ ok: false, droppedEntries: 1 })
    expect(failed.map((f) => [f.attempt, f.error.code, f.willRetry])).toEqual([[1, 'LOKI_PROXY', false]])
    expect(drops.map((d) => [d.reason, d.error?.code])).toEqual([['rejected', 'LOKI_PROXY']])
    const message = failed[0]!.error.message
    expect(message).toContain('407')
    expect(message).toContain(proxy.url)
    expect(message).not.toContain('hunter2')
    expect(message).not.toContain('alice')
    expect(srv.requests).toHaveLength(0)
  })

  it('a proxy that cannot reach Loki (502) is an outage: retried until it can', async () => {
    const srv = await receiver()
    const proxy = await startProxy()
    proxy.refuse = 502
    const c = client(srv.url, proxy.url, { breaker: false })
    const failed: FailedEvent[] = []
    c.on('failed', (e) => {
      failed.push(e)
      if (failed.length === 2) proxy.refuse = undefined
    })
    c.push({ line: 'eventually' })
    const r = await c.flush({ timeoutMs: 20_000 })
    expect(r.ok).toBe(true)
    expect(srv.entries.map((e) => e.line)).toEqual(['eventually'])
    expect(failed.map((f) => [f.error.code, f.willRetry])).toEqual([['LOKI_PROXY', true], ['LOKI_PROXY', true]])
  })

  it('a proxy that never answers CONNECT: the attempt times out within connectTimeoutMs', async () => {
    const srv = await receiver()
    const proxy = await startProxy()
    proxy.refuse = 'hang'
    const c = client(srv.url, proxy.url, { connectTimeoutMs: 200, retry: { ...FAST.retry, maxAttempts: 1 } })
    const failed: FailedEvent[] = []
    c.on('failed', (e) => failed.push(e))
    c.on('drop', () => {})
    c.push({ line: 'stuck at the proxy' })
    await waitUntil(() => failed.length > 0, 'the attempt to fail', 20_000)
    expect(failed[0]!.error.code).toBe('LOKI_REQUEST_TIMEOUT')
  })

  it('destroy() while CONNECTs hang at the proxy leaves no socket behind, long before any timeout', async () => {
    const srv = await receiver()
    const proxy = await startProxy()
    proxy.refuse = 'hang'
    const before = resources()
    // Timeouts far beyond the test's wait: only destroy() can end these connections.
    const c = client(srv.url, proxy.url, { concurrency: 2, connectTimeoutMs: 120_000, requestTimeoutMs: 120_000, batch: { maxEntries: 1, maxWaitMs: 0 } })
    c.on('drop', () => {})
    c.push({ line: 'stuck at the proxy' })
    c.push({ line: 'and another' })
    await waitUntil(() => proxy.connects.length >= 2, 'two CONNECTs', 20_000)
    await c.destroy()
    // The proxy's end of each connection closes only when ours did.
    await waitUntil(() => proxy.live() === 0, 'the proxy to see every connection closed')
    expect(extraResources(before, resources())).toEqual([])
  })

  it('an https Loki through the proxy: TLS is spoken end to end inside the tunnel, with the client\'s tls options', async () => {
    const tlsDir = join(import.meta.dirname, 'fixtures', 'tls')
    const pem = (name: string) => readFileSync(join(tlsDir, name))
    let requests = 0
    const server = createHttpsServer({ cert: pem('leaf.pem'), key: pem('leaf-key.pem') }, (req, res) => {
      req.resume()
      req.on('end', () => {
        requests++
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    cleanup.push(() => new Promise((r) => {
      server.closeAllConnections()
      server.close(r)
    }))
    const port = (server.address() as { port: number }).port
    const proxy = await startProxy()
    const c = client(`https://127.0.0.1:${port}`, proxy.url, { tls: { ca: pem('ca.pem') } })
    c.push({ line: 'secret' })
    expect((await c.close()).ok).toBe(true)
    expect(requests).toBe(1)
    expect(proxy.connects.map((x) => x.target)).toEqual([`127.0.0.1:${port}`])
  })
})

describe("proxy: 'env'", () => {
  const saved: Record<string, string | undefined> = {}
  const names = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY']
  function setEnv(values: Record<string, string>): void {
    for (const n of names) {
      saved[n] = process.env[n]
      delete process.env[n]
    }
    Object.assign(process.env, values)
    cleanup.push(() => {
      for (const n of names) {
        if (saved[n] === undefined) delete process.env[n]
        else process.env[n] = saved[n]
      }
    })
  }

  it('uses HTTP_PROXY for an http Loki', async () => {
    const srv = await receiver()
    const proxy = await startProxy()
    setEnv({ HTTP_PROXY: proxy.url })
    const c = client(srv.url, 'env')
    c.push({ line: 'via env' })
    expect((await c.close()).ok).toBe(true)
    expect(srv.entries).toHaveLength(1)
    expect(proxy.connects).toHaveLength(1)
  })

  it('goes direct when NO_PROXY names Loki\'s host, and when proxy is not set at all', async () => {
    const srv = await receiver()
    const proxy = await startProxy()
    setEnv({ HTTP_PROXY: proxy.url, NO_PROXY: 'example.com, 127.0.0.1' })
    const viaEnv = client(srv.url, 'env')
    viaEnv.push({ line: 'direct' })
    expect((await viaEnv.close()).ok).toBe(true)
    process.env.NO_PROXY = ''
    // The default ignores the environment: a proxy is opt-in.
    const unset = client(srv.url, undefined)
    unset.push({ line: 'direct too' })
    expect((await unset.close()).ok).toBe(true)
    expect(srv.entries).toHaveLength(2)
    expect(proxy.connects).toHaveLength(0)
  })

  it('resolves the variables as curl and undici do', () => {
    const p = (origin: string, env: Record<string, string>) => resolveProxy('env', origin, env)?.displayUrl
    expect(p('http://loki:3100', {})).toBeUndefined()
    expect(p('http://loki:3100', { HTTP_PROXY: 'http://a:1' })).toBe('http://a:1')
    expect(p('http://loki:3100', { http_proxy: 'http://low:1', HTTP_PROXY: 'http://up:1' })).toBe('http://low:1')
    expect(p('http://loki:3100', { HTTPS_PROXY: 'http://s:1' })).toBeUndefined()
    expect(p('https://loki', { HTTPS_PROXY: 'http://s:1', HTTP_PROXY: 'http://a:1' })).toBe('http://s:1')
    expect(p('https://loki', { HTTP_PROXY: 'http://a:1' })).toBe('http://a:1')
    expect(p('https://loki', { https_proxy: '', HTTPS_PROXY: 'http://s:1' })).toBe('http://s:1')
    expect(p('http://loki:3100', { HTTP_PROXY: 'proxy.corp:3128' })).toBe('http://proxy.corp:3128')
    expect(resolveProxy('env', 'http://loki', { HTTP_PROXY: 'http://u:p@a:1' })?.source).toBe('HTTP_PROXY')
  })

  it('NO_PROXY: exact hosts, domain suffixes, ports and *', () => {
    const b = (url: string, noProxy: string) => bypassed(new URL(url), noProxy)
    expect(b('http://loki:3100', '')).toBe(false)
    expect(b('http://loki:3100', '*')).toBe(true)
    expect(b('http://loki:3100', 'loki')).toBe(true)
    expect(b('http://LOKI:3100', 'loki')).toBe(true)
    expect(b('http://loki.svc.cluster.local', '.cluster.local')).toBe(true)
    expect(b('http://loki.svc.cluster.local', '*.cluster.local')).toBe(true)
    expect(b('http://loki.svc.cluster.local', 'cluster.local')).toBe(true)
    expect(b('http://notcluster.local', 'cluster.local')).toBe(false)
    expect(b('http://loki:3100', 'loki:3100')).toBe(true)
    expect(b('http://loki:3100', 'loki:9999')).toBe(false)
    expect(b('http://loki', 'loki:80')).toBe(true)
    expect(b('https://loki', 'loki:443')).toBe(true)
    expect(b('http://[::1]:3100', '[::1]')).toBe(true)
    expect(b('http://loki:3100', 'a,b loki')).toBe(true)
    expect(b('http://loki:3100', 'other')).toBe(false)
  })
})

describe('proxy: bad values are refused at construction, without echoing credentials', () => {
  const make = (proxy: unknown) => () => new LokiClient({ url: 'http://loki:3100', proxy } as never)
  it('refuses what is not false, \'env\' or a URL', () => {
    expect(make(42)).toThrow(LokiOptionError)
    expect(make(42)).toThrow(/"proxy"/)
    expect(make(true)).toThrow(/expected false, 'env' or a proxy URL/)
  })
  it('refuses a URL that does not parse or is not http(s), printing no part of it', () => {
    const bad = 'http://user:topsecret@[::1'
    let err: unknown
    try {
      make(bad)()
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(LokiOptionError)
    expect((err as LokiOptionError).code).toBe('LOKI_INVALID_URL')
    expect((err as Error).message).not.toContain('topsecret')
    expect(make('socks5://proxy:1080')).toThrow(/proxy protocol must be http: or https:, got socks5:/)
  })
  it('names the variable a bad environment value came from', () => {
    expect(() => resolveProxy('env', 'http://loki', { HTTP_PROXY: 'ftp://x' })).toThrow(/from HTTP_PROXY/)
  })
  it('accepts false, undefined and a URL object', () => {
    expect(resolveProxy(false, 'http://loki')).toBeUndefined()
    expect(resolveProxy(undefined, 'http://loki')).toBeUndefined()
    expect(resolveProxy(new URL('http://p:3128'), 'http://loki')?.origin).toBe('http://p:3128')
  })
})

describe('proxy: the CLI', () => {
  it('push --proxy sends through the proxy; a bad --proxy is a usage error naming the flag, not the URL', async () => {
    requireBuiltCli()
    const srv = await receiver()
    const proxy = await startProxy()
    const ok = await runCli(['push', '--url', srv.url, '--labels', 'app=cli', '--proxy', proxy.url, '--quiet'], 'one\ntwo\n')
    expect(ok.code, ok.stderr).toBe(0)
    expect(srv.entries.map((e) => e.line).sort()).toEqual(['one', 'two'])
    expect(proxy.connects.length).toBeGreaterThan(0)
    const bad = await runCli(['push', '--url', srv.url, '--labels', 'app=cli', '--proxy', 'http://u:topsecret@[::1'], '')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/^lokiwire push: --proxy: not a valid proxy URL/)
    expect(bad.stderr).not.toContain('topsecret')
  })
})
