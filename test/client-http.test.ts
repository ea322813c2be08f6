import diagnosticsChannel from 'node:diagnostics_channel'
import { describe, expect, it, vi } from 'vitest'
import { ErrorCodes, LokiClient, LokiHttpError } from '../src/index.js'
import type { FailedEvent, RequestEndMessage } from '../src/index.js'
import { Transport } from '../src/transport/transport.js'
import type { DropEvent } from '../src/index.js'
import { assertExactlyOnce, assertIdentity, FAST, seqLines, useLoki } from './helpers.js'

const loki = useLoki()

function newClient(extra: Partial<ConstructorParameters<typeof LokiClient>[0]> = {}): LokiClient {
  loki.client = new LokiClient({ url: loki.srv.url, labels: { app: 'test' }, ...FAST, ...extra })
  expect(loki.client.listenerCount('error' as never)).toBe(0)
  return loki.client
}

describe('response bodies are drained so one connection serves every push', () => {
  const cases = [
    { name: '204 without body', fault: null, failed: false },
    { name: '200 with a 1 MiB body', fault: { type: 'largeBody', bytes: 1024 * 1024 } as const, failed: false },
    { name: '400 with a body', fault: { type: 'status', status: 400, body: 'entry too old\n'.repeat(100) } as const, failed: true },
    { name: '500 with a body', fault: { type: 'status', status: 500, body: 'x'.repeat(200_000) } as const, failed: true },
  ]
  for (const c of cases) {
    it(c.name, async () => {
      loki.srv.setFault(c.fault)
      const cl = newClient({ concurrency: 1, retry: { maxAttempts: 1 }, breaker: false })
      for (let i = 0; i < 20; i++) {
        cl.push({ line: `n=${i}` })
        await cl.flush({ timeoutMs: 5000 })
      }
      expect(loki.srv.requests.filter((r) => r.path === '/loki/api/v1/push')).toHaveLength(20)
      expect(loki.srv.connections.total).toBe(1)
      expect(loki.srv.connections.peak).toBe(1)
      const s = cl.stats()
      expect(s.sent.entries + s.dropped.total).toBe(20)
      expect(c.failed ? s.dropped.total : s.sent.entries).toBe(20)
      expect(s.connections).toBe(1)
      assertIdentity(cl)
    })
  }
})

describe('what reaches Loki', () => {
  it('sends the protobuf body with default labels, entry labels, metadata and exact label values', async () => {
    const cl = newClient({ labels: { app: 'api', env: 'prod' }, tenant: 'team-a' })
    cl.push({ line: 'plain' })
    cl.push({ line: 'with labels', labels: { level: 'warn', quote: 'a"b\\c\nd' }, metadata: { trace_id: 'abc', n: 5 as unknown as string } })
    cl.push({ line: 'explicit ns', timestamp: 1732886400123456789n })
    const r = await cl.flush({ timeoutMs: 5000 })
    expect(r).toMatchObject({ ok: true, pendingEntries: 0, droppedEntries: 0 })
    expect(loki.srv.entries).toHaveLength(3)
    const byLine = new Map(loki.srv.entries.map((e) => [e.line, e]))
    expect(byLine.get('plain')!.labels).toEqual({ app: 'api', env: 'prod' })
    expect(byLine.get('with labels')!.labels).toEqual({ app: 'api', env: 'prod', level: 'warn', quote: 'a"b\\c\nd' })
    expect(byLine.get('with labels')!.metadata).toEqual({ trace_id: 'abc', n: '5' })
    expect(byLine.get('explicit ns')!.timestamp).toBe('1732886400123456789')
    expect(loki.srv.entries.every((e) => e.tenant === 'team-a')).toBe(true)
    const req = loki.srv.requests[0]!
    expect(req.contentType).toBe('application/x-protobuf')
    expect(req.headers['user-agent']).toMatch(/^lokiwire\//)
  })

  it('sends gzip JSON when asked', async () => {
    const cl = newClient({ encoding: 'json' })
    cl.push({ line: 'json line', metadata: { k: 'v' } })
    await cl.flush({ timeoutMs: 5000 })
    expect(loki.srv.entries.map((e) => e.line)).toEqual(['json line'])
    expect(loki.srv.entries[0]!.metadata).toEqual({ k: 'v' })
    expect(loki.srv.requests[0]!.contentEncoding).toBe('gzip')
    expect(loki.srv.requests[0]!.contentType).toBe('application/json')
  })

  it('gives identical lines in the same millisecond distinct timestamps so Loki keeps them all', async () => {
    const cl = newClient()
    const ts = Date.now()
    for (let i = 0; i < 5; i++) cl.push({ line: 'same line', timestamp: ts })
    for (let i = 0; i < 5; i++) cl.push({ line: 'same line', timestamp: new Date(ts) })
    await cl.flush({ timeoutMs: 5000 })
    expect(loki.srv.duplicates).toBe(0)
    expect(loki.srv.entries).toHaveLength(10)
    expect(new Set(loki.srv.entries.map((e) => e.timestamp)).size).toBe(10)
    expect(loki.srv.entries.every((e) => e.timestamp.startsWith(String(ts)))).toBe(true)
  })
})

describe('retries', () => {
  it('honours Retry-After on 429 and then delivers', async () => {
    loki.srv.queueFaults({ type: 'status', status: 429, headers: { 'retry-after': '1' }, body: 'Ingestion rate limit exceeded' })
    const cl = newClient({ retry: { minDelayMs: 1, maxDelayMs: 5 } })
    const retries: number[] = []
    cl.on('retry', (e) => retries.push(e.delayMs))
    cl.push({ line: 'after 429' })
    const r = await cl.flush({ timeoutMs: 5000 })
    expect(r.ok).toBe(true)
    expect(retries).toEqual([1000])
    const [first, second] = loki.srv.requests
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950)
    expect(loki.srv.entries.map((e) => e.line)).toEqual(['after 429'])
    expect(cl.stats().failedRequests.status429).toBe(1)
  })

  it('retries 500, 503 and resets, then delivers every line exactly once', async () => {
    loki.srv.queueFaults(
      { type: 'status', status: 500, body: 'boom' },
      { type: 'reset' },
      { type: 'status', status: 503 },
      { type: 'reset' },
    )
    const cl = newClient({ concurrency: 1, breaker: false, batch: { maxEntries: 100, maxWaitMs: 5 } })
    const lines = seqLines(1000)
    for (const line of lines) cl.push({ line })
    const r = await cl.flush({ timeoutMs: 10_000 })
    expect(r).toMatchObject({ ok: true, droppedEntries: 0 })
    assertExactlyOnce(loki.srv.entries, lines)
    expect(loki.srv.duplicates).toBe(0)
    const s = cl.stats()
    expect(s.retries).toBe(4)
    expect(s.failedRequests).toMatchObject({ status5xx: 2, network: 2 })
    assertIdentity(cl)
  })

  it('counts each failed attempt under the class the transport gave it, with its status on the event', async () => {
    // One batch through every class in turn: 408 and 413-free 4xx, 429, 5xx, a reset, a stall.
    loki.srv.queueFaults(
      { type: 'status', status: 408 },
      { type: 'status', status: 429, headers: { 'retry-after': '0' } },
      { type: 'status', status: 503 },
      { type: 'reset' },
      { type: 'stall' },
    )
    const cl = newClient({ concurrency: 1, breaker: false, requestTimeoutMs: 300, retry: { maxAttempts: 10, minDelayMs: 1, maxDelayMs: 5 } })
    const failed: FailedEvent[] = []
    cl.on('failed', (e) => failed.push(e))
    cl.push({ line: 'through every failure' })
    expect(await cl.flush({ timeoutMs: 15_000 })).toMatchObject({ ok: true })
    expect(failed.map((e) => [e.status, e.error.code])).toEqual([
      [408, ErrorCodes.HTTP_STATUS], [429, ErrorCodes.HTTP_STATUS], [503, ErrorCodes.HTTP_STATUS],
      [undefined, ErrorCodes.NETWORK], [undefined, ErrorCodes.REQUEST_TIMEOUT],
    ])
    expect(cl.stats().failedRequests).toEqual({ total: 5, status4xx: 1, status429: 1, status5xx: 1, network: 1, timeout: 1 })
    // 260 stored nothing: a refusal, counted with the 4xx.
    loki.srv.setFault({ type: 'status', status: 260 })
    cl.push({ line: 'blocked' })
    await cl.flush({ timeoutMs: 5000 })
    expect(cl.stats().failedRequests).toMatchObject({ total: 6, status4xx: 2 })
    assertIdentity(cl)
  })

  it('does not retry 400 and reports Loki\'s message', async () => {
    const body = "Max entry size '262144' bytes exceeded for stream '{app=\"x\"}' while adding an entry with length '307200' bytes\n"
    loki.srv.setFault({ type: 'status', status: 400, body })
    const cl = newClient()
    const failed: FailedEvent[] = []
    cl.on('failed', (e) => failed.push(e))
    cl.push([{ line: 'a' }, { line: 'b' }])
    const r = await cl.flush({ timeoutMs: 5000 })
    expect(r.droppedEntries).toBe(2)
    expect(loki.srv.requests).toHaveLength(1)
    expect(failed).toHaveLength(1)
    expect(failed[0]!.willRetry).toBe(false)
    expect(failed[0]!.error).toBeInstanceOf(LokiHttpError)
    expect((failed[0]!.error as LokiHttpError).body).toBe(body.trim())
    expect(cl.stats().dropped.rejected).toBe(2)
  })

  it('surfaces a partial rejection and keeps the accepted entries', async () => {
    loki.srv.setFault({ type: 'partial', reject: (e) => (e.line.includes('bad') ? `entry with line '${e.line}' is invalid` : false) })
    const cl = newClient()
    const failed: FailedEvent[] = []
    cl.on('failed', (e) => failed.push(e))
    cl.push([{ line: 'good 1' }, { line: 'bad 1' }, { line: 'good 2' }])
    await cl.flush({ timeoutMs: 5000 })
    expect(loki.srv.entries.map((e) => e.line).sort()).toEqual(['good 1', 'good 2'])
    expect(failed[0]!.status).toBe(400)
    expect((failed[0]!.error as LokiHttpError).body).toContain('bad 1')
    expect(loki.srv.requests).toHaveLength(1)
  })

  it('never retries 401, 403 and 404', async () => {
    for (const status of [401, 403, 404]) {
      loki.srv.reset()
      loki.srv.setFault({ type: 'status', status, body: 'no org id' })
      const cl = newClient()
      cl.push({ line: `status ${status}` })
      await cl.flush({ timeoutMs: 5000 })
      expect(loki.srv.requests).toHaveLength(1)
      expect(cl.stats().dropped.rejected).toBe(1)
      expect(cl.stats().breaker).toBe('closed')
      await cl.destroy()
    }
  })

  it('counts 260 as blocked, not sent', async () => {
    loki.srv.setFault({ type: 'status', status: 260, body: 'blocked by policy' })
    const cl = newClient()
    cl.push({ line: 'blocked' })
    await cl.flush({ timeoutMs: 5000 })
    expect(cl.stats().dropped.blocked).toBe(1)
    expect(cl.stats().sent.entries).toBe(0)
  })

  it('splits a batch on 413 and delivers both halves', async () => {
    loki.srv.queueFaults({ type: 'status', status: 413, body: 'request entity too large' })
    const cl = newClient()
    const lines = seqLines(100)
    cl.push(lines.map((line) => ({ line })))
    const r = await cl.flush({ timeoutMs: 5000 })
    expect(r).toMatchObject({ ok: true, droppedEntries: 0 })
    assertExactlyOnce(loki.srv.entries, lines)
    expect(loki.srv.requests.map((q) => q.entries)).toEqual([100, 50, 50])
    assertIdentity(cl)
  })

  it('drops as retries_exhausted after maxAttempts, with the last error', async () => {
    loki.srv.setFault({ type: 'status', status: 503 })
    const cl = newClient({ retry: { maxAttempts: 3, minDelayMs: 1, maxDelayMs: 5 }, breaker: false })
    const drops: string[] = []
    cl.on('drop', (e) => drops.push(`${e.reason}:${e.entries}:${(e.error as LokiHttpError).status}`))
    cl.push({ line: 'doomed' })
    await cl.flush({ timeoutMs: 5000 })
    expect(loki.srv.requests).toHaveLength(3)
    expect(drops).toEqual(['retries_exhausted:1:503'])
    assertIdentity(cl)
  })
})

describe('after a 2xx status the push is stored, whatever the body does next', () => {
  function onRequestEnd(): { ends: RequestEndMessage[]; stop: () => void } {
    const ends: RequestEndMessage[] = []
    const fn = (m: unknown) => ends.push(m as RequestEndMessage)
    diagnosticsChannel.subscribe('lokiwire:request:end', fn)
    return { ends, stop: () => diagnosticsChannel.unsubscribe('lokiwire:request:end', fn) }
  }

  it('a 200 whose body trickles counts as sent at once and is never resent', async () => {
    // 1000 bytes, one every 50 ms: 50 s of body, far beyond the flush deadline below.
    loki.srv.setFault({ type: 'slowBody', chunkBytes: 1, chunks: 1000, intervalMs: 50 })
    const { ends, stop } = onRequestEnd()
    try {
      const cl = newClient({ requestTimeoutMs: 120_000, concurrency: 1 })
      const lines = seqLines(50)
      for (const line of lines) cl.push({ line })
      const r = await cl.flush({ timeoutMs: 15_000 })
      expect(r).toMatchObject({ ok: true, droppedEntries: 0 })
      assertExactlyOnce(loki.srv.entries, lines)
      expect(loki.srv.requests).toHaveLength(1)
      const s = cl.stats()
      expect(s).toMatchObject({ retries: 0, sent: { entries: 50, batches: 1 }, failedRequests: { total: 0 }, abandonedBodies: 1 })
      expect(ends.map((e) => [e.status, e.bodyAbandoned])).toEqual([[200, true]])
      assertIdentity(cl)
    } finally {
      stop()
    }
  })

  it('a 200 whose connection dies mid-body counts as sent and is never resent', async () => {
    loki.srv.queueFaults({ type: 'closeAfterHeaders' })
    const { ends, stop } = onRequestEnd()
    try {
      const cl = newClient({ concurrency: 1 })
      cl.push({ line: 'once' })
      const r = await cl.flush({ timeoutMs: 10_000 })
      expect(r).toMatchObject({ ok: true, droppedEntries: 0 })
      // Loki stored the push with its 200; the client must take that at its word.
      expect(loki.srv.requests).toHaveLength(1)
      assertExactlyOnce(loki.srv.entries, ['once'])
      expect(cl.stats()).toMatchObject({ retries: 0, sent: { entries: 1 }, failedRequests: { total: 0 }, abandonedBodies: 1 })
      expect(ends.map((e) => [e.status, e.bodyAbandoned])).toEqual([[200, true]])
    } finally {
      stop()
    }
  })
})

describe('a bug inside the pipeline', () => {
  it('is reported as an internal_error drop with the cause kept, never thrown or left pending', async () => {
    // The transport never throws; make it, to stand in for any bug on the delivery path.
    const spy = vi.spyOn(Transport.prototype, 'send').mockImplementation(() => {
      throw new Error('a bug (expected by the test)')
    })
    try {
      const cl = newClient({ breaker: false })
      const drops: DropEvent[] = []
      cl.on('drop', (e) => drops.push(e))
      for (let i = 0; i < 10; i++) cl.push({ line: `n=${i}` })
      const r = await cl.flush({ timeoutMs: 5000 })
      expect(r).toMatchObject({ ok: false, droppedEntries: 10 })
      expect(cl.stats().dropped.internal_error).toBe(10)
      expect(drops.map((d) => [d.reason, d.entries, d.error?.code])).toEqual([['internal_error', 10, 'LOKI_INTERNAL']])
      expect((drops[0]!.error!.cause as Error).message).toBe('a bug (expected by the test)')
      expect(drops[0]!.error!.message).toMatch(/delivering a batch/)
      assertIdentity(cl)
    } finally {
      spy.mockRestore()
    }
  })
})
