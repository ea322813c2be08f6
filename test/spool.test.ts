import { mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LokiClient } from '../src/index.js'
import type { SpoolEvent } from '../src/index.js'
import { Spool, type SpoolRecord } from '../src/spool/spool.js'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { assertExactlyOnce, assertIdentity, seqLines, waitUntil } from './helpers.js'

function resolveGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc
  if (typeof g === 'function') return g
  // Without --expose-gc on the command line: turn the flag on now and take gc from a fresh context.
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lokiwire-spool-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

const body = (text: string) => ({ body: Buffer.from(text), contentType: 'application/json', contentEncoding: undefined })
const opts = () => ({ dir, maxBytes: 1024 * 1024, breakerWaitMs: 1000 })

describe('spool segments', () => {
  it('round-trips records in order and deletes a segment once every record is acknowledged', () => {
    const problems: SpoolEvent[] = []
    const a = new Spool(opts(), (p) => problems.push(p))
    expect(a.write(body('one'), 1)).toBe(true)
    expect(a.write({ body: Buffer.from([1, 2, 3]), contentType: 'application/x-protobuf', contentEncoding: undefined }, 7)).toBe(true)
    a.close()
    const b = new Spool(opts(), (p) => problems.push(p))
    expect(b.pending).toBe(true)
    const r1 = b.next()!
    const r2 = b.next()!
    expect(b.next()).toBeUndefined()
    expect([r1.body.body.toString(), r1.entries, r1.body.contentType]).toEqual(['one', 1, 'application/json'])
    expect([[...r2.body.body], r2.entries, r2.body.contentType]).toEqual([[1, 2, 3], 7, 'application/x-protobuf'])
    r1.ack()
    expect(readdirSync(dir)).toHaveLength(1)
    r2.ack()
    r2.ack() // idempotent
    expect(readdirSync(dir)).toHaveLength(0)
    expect(b.bytes).toBe(0)
    expect(problems).toEqual([])
  })

  it('replays what this process spooled too, by sealing the open segment', () => {
    const s = new Spool(opts(), () => {})
    s.write(body('mine'), 1)
    expect(s.pending).toBe(true)
    expect(s.next()!.body.body.toString()).toBe('mine')
    s.close()
  })

  it('skips a truncated tail and a corrupt record, reports them, and ignores foreign files', () => {
    const problems: SpoolEvent[] = []
    const a = new Spool(opts(), () => {})
    a.write(body('good-1'), 1)
    a.write(body('bad'), 1)
    a.write(body('good-2'), 1)
    a.close()
    const [name] = readdirSync(dir)
    const path = join(dir, name!)
    const data = readFileSync(path)
    // Flip a payload byte of the second record ("bad"), then cut the file mid-record.
    const second = data.indexOf('bad')
    data[second] = 'B'.charCodeAt(0)
    writeFileSync(path, data)
    appendFileSync(path, data.subarray(0, 10))
    writeFileSync(join(dir, 'notes.txt'), 'not a segment')
    const b = new Spool(opts(), (p) => problems.push(p))
    const lines: string[] = []
    for (let r = b.next(); r !== undefined; r = b.next()) {
      lines.push(r.body.body.toString())
      r.ack()
    }
    expect(lines).toEqual(['good-1', 'good-2'])
    expect(problems.map((p) => p.reason).sort()).toEqual(['corrupt_record', 'truncated_segment'])
    expect(readdirSync(dir)).toEqual(['notes.txt'])
  })

  it('a replayed segment holds memory for the records still outstanding, not for the whole file', () => {
    const gc = resolveGc()
    const external = () => {
      gc()
      gc()
      return process.memoryUsage().arrayBuffers
    }
    const big = { ...opts(), maxBytes: 64 * 1024 * 1024 }
    const a = new Spool(big, () => {})
    for (let i = 0; i < 30; i++) a.write({ body: Buffer.alloc(256 * 1024, i), contentType: 'application/x-protobuf', contentEncoding: undefined }, 1)
    a.close()
    const before = external()
    const b = new Spool(big, () => {})
    const records: SpoolRecord[] = []
    for (let r = b.next(); r !== undefined; r = b.next()) records.push(r)
    expect(records).toHaveLength(30)
    // One record (256 KiB) outstanding, as when the last batch of a segment is still on the wire.
    for (const r of records.splice(0, 29)) r.ack()
    expect(external() - before).toBeLessThan(2 * 1024 * 1024)
    records[0]!.ack()
    expect(readdirSync(dir)).toEqual([])
  })

  it('refuses writes beyond maxBytes and reports it', () => {
    const problems: SpoolEvent[] = []
    const s = new Spool({ ...opts(), maxBytes: 1024 * 1024 }, (p) => problems.push(p))
    const big = body('x'.repeat(600 * 1024))
    expect(s.write(big, 1)).toBe(true)
    expect(s.write(big, 1)).toBe(false)
    expect(problems.map((p) => p.reason)).toEqual(['full'])
    s.close()
  })

  it('an unusable directory disables the spool without throwing', () => {
    const file = join(dir, 'a-file')
    writeFileSync(file, 'x')
    const problems: SpoolEvent[] = []
    const s = new Spool({ ...opts(), dir: join(file, 'sub') }, (p) => problems.push(p))
    expect(s.write(body('x'), 1)).toBe(false)
    expect(problems[0]!.reason).toBe('read_failed')
  })

  it('a write that fails (directory removed) is reported, not thrown', () => {
    const problems: SpoolEvent[] = []
    const s = new Spool(opts(), (p) => problems.push(p))
    rmSync(dir, { recursive: true })
    expect(s.write(body('x'), 1)).toBe(false)
    expect(problems[0]!.reason).toBe('write_failed')
  })
})

describe('client with a spool', () => {
  let srv: LokiTestServer
  beforeEach(async () => {
    srv = await createLokiTestServer()
  })
  afterEach(async () => {
    await srv.close()
  })

  it('spools batches whose retries ran out, replays them after recovery, exactly once', async () => {
    srv.setFault({ type: 'status', status: 503 })
    const client = new LokiClient({
      url: srv.url,
      labels: { app: 'spool' },
      batch: { maxEntries: 50, maxWaitMs: 5 },
      retry: { maxAttempts: 2, minDelayMs: 1, maxDelayMs: 2 },
      breaker: false,
      spool: { dir },
    })
    const lines = seqLines(500)
    for (const line of lines) client.push({ line })
    await waitUntil(() => client.stats().spool.written === 500, 'every batch spooled')
    assertIdentity(client)
    expect(client.stats().dropped.total).toBe(0)
    srv.setFault(null)
    // The next delivery triggers the replay; so does a breaker closing.
    client.push({ line: 'trigger' })
    await waitUntil(() => client.stats().spool.loaded === 500 && client.stats().buffered.entries === 0 && client.stats().inFlight.entries === 0, 'replay')
    await client.close()
    assertExactlyOnce(srv.entries, [...lines, 'trigger'])
    expect(readdirSync(dir)).toEqual([])
    assertIdentity(client)
  })

  it.each([
    ['with the breaker', { breaker: { resetTimeoutMs: 50, volumeThreshold: 1 } }],
    ['without a breaker', { breaker: false as const }],
  ])('an idle client replays its spool once Loki is back, with no new traffic (%s)', async (_name, extra) => {
    srv.setFault({ type: 'status', status: 503 })
    const client = new LokiClient({
      url: srv.url,
      labels: { app: 'spool' },
      batch: { maxEntries: 50, maxWaitMs: 5 },
      retry: { maxAttempts: 2, minDelayMs: 1, maxDelayMs: 50 },
      spool: { dir, breakerWaitMs: 20 },
      ...extra,
    })
    const lines = seqLines(300)
    for (const line of lines) client.push({ line })
    await waitUntil(() => client.stats().spool.written >= 300 && client.stats().buffered.entries === 0 && client.stats().inFlight.entries === 0, 'every batch spooled')
    srv.setFault(null)
    // Nothing is pushed from here on: only the client's own replay timer can deliver the spool.
    await waitUntil(() => readdirSync(dir).length === 0 && client.stats().buffered.entries === 0 && client.stats().inFlight.entries === 0, 'spool replayed while idle', 10_000)
    await client.close()
    assertExactlyOnce(srv.entries, lines)
    expect(client.stats().dropped.total).toBe(0)
    assertIdentity(client)
  })

  it('close() past its deadline spools instead of dropping; the next client delivers it', async () => {
    srv.setFault({ type: 'stall' })
    const a = new LokiClient({ url: srv.url, labels: { app: 'spool' }, requestTimeoutMs: 60_000, spool: { dir } })
    const lines = seqLines(300)
    for (const line of lines) a.push({ line })
    const r = await a.close({ timeoutMs: 200 })
    expect(r.ok).toBe(false)
    expect(a.stats().spool.written).toBe(300)
    expect(a.stats().dropped.total).toBe(0)
    srv.setFault(null)
    const b = new LokiClient({ url: srv.url, labels: { app: 'spool' }, spool: { dir } })
    await waitUntil(() => b.stats().spool.loaded === 300, 'replay loaded')
    const rb = await b.close()
    expect(rb.ok).toBe(true)
    assertExactlyOnce(srv.entries, lines)
    expect(readdirSync(dir)).toEqual([])
  })

  it.each(['protobuf', 'json'] as const)('a replayed batch Loki finds too large (413) is split, not dropped (%s)', async (encoding) => {
    srv.setFault({ type: 'stall' })
    const a = new LokiClient({ url: srv.url, labels: { app: 'spool' }, encoding, requestTimeoutMs: 60_000, spool: { dir } })
    const lines = seqLines(300)
    for (const line of lines) a.push({ line, ...(line.endsWith('7') ? { metadata: { trace_id: `t-${line}` } } : {}) })
    await a.close({ timeoutMs: 200 })
    expect(a.stats().spool.written).toBe(300)
    srv.setFault(null)
    srv.queueFaults({ type: 'status', status: 413, body: 'request entity too large' })
    const b = new LokiClient({ url: srv.url, labels: { app: 'spool' }, encoding, spool: { dir } })
    await waitUntil(() => b.stats().spool.loaded === 300 && b.stats().sent.entries === 300, 'replayed and split')
    await b.close()
    expect(b.stats().failedRequests.status4xx).toBe(1)
    expect(b.stats().dropped.total).toBe(0)
    assertExactlyOnce(srv.entries, lines)
    // Timestamps and metadata survive the decode and re-encode of the split.
    expect(srv.entries.filter((e) => e.metadata !== undefined)).toHaveLength(lines.filter((l) => l.endsWith('7')).length)
    expect(readdirSync(dir)).toEqual([])
    assertIdentity(b)
  })

  it('a long breaker outage moves waiting batches to disk instead of holding them in memory', async () => {
    srv.setFault({ type: 'status', status: 500 })
    const client = new LokiClient({
      url: srv.url,
      labels: { app: 'spool' },
      batch: { maxEntries: 10, maxWaitMs: 5 },
      retry: { maxAttempts: 1000, minDelayMs: 1, maxDelayMs: 5, budgetMs: 600_000 },
      breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 },
      spool: { dir, breakerWaitMs: 50 },
    })
    const lines = seqLines(100)
    for (const line of lines) client.push({ line })
    await waitUntil(() => client.stats().breaker === 'open', 'breaker open')
    await waitUntil(() => client.stats().spool.written === 100, 'batches offloaded')
    expect(client.stats().buffered.entries).toBe(0)
    assertIdentity(client)
    await client.destroy()
  })

  it('a batch whose breaker recovers within breakerWaitMs is sent, not moved to disk', async () => {
    srv.queueFaults({ type: 'status', status: 500 })
    const client = new LokiClient({
      url: srv.url,
      labels: { app: 'spool' },
      batch: { maxWaitMs: 5 },
      retry: { minDelayMs: 1, maxDelayMs: 5 },
      breaker: { volumeThreshold: 1, resetTimeoutMs: 100 },
      spool: { dir, breakerWaitMs: 60_000 },
    })
    const states: string[] = []
    client.on('breaker', (e) => states.push(e.state))
    client.push({ line: 'once' })
    const r = await client.flush({ timeoutMs: 20_000 })
    expect(r.ok).toBe(true)
    expect(states).toEqual(['open', 'halfOpen', 'closed'])
    expect(client.stats().spool.written).toBe(0)
    assertExactlyOnce(srv.entries, ['once'])
    await client.close()
    assertIdentity(client)
  })
})
