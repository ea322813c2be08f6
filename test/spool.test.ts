import { appendFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
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
    r1.ack() // idempotent: a second ack must not count for r2, still on its way
    expect(readdirSync(dir)).toHaveLength(1)
    r2.ack()
    expect(readdirSync(dir)).toHaveLength(0)
    expect(b.bytes).toBe(0)
    expect(b.pending).toBe(false)
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
    expect(s.write(body('y'), 1)).toBe(false)
    // Reported once, when the spool was set up; the batches it refuses keep their own drop reason.
    expect(problems.map((p) => p.reason)).toEqual(['read_failed'])
  })

  it('a write that fails (directory removed) is reported, not thrown', () => {
    const problems: SpoolEvent[] = []
    const s = new Spool(opts(), (p) => problems.push(p))
    rmSync(dir, { recursive: true })
    expect(s.write(body('x'), 1)).toBe(false)
    expect(problems[0]!.reason).toBe('write_failed')
  })
})

/** The bytes of one segment holding `texts`, one record of one entry each, as Spool writes it. */
/** A segment in `dir` whose one record fails its checksum (its last byte flipped). */
function writeCorruptSegment(): void {
  const data = segmentBytes('only')
  data[data.length - 1] = data[data.length - 1]! ^ 0xff
  writeFileSync(join(dir, 'lokiwire-1700000000000-1-0.spool'), data)
}

function segmentBytes(...texts: string[]): Buffer {
  const scratch = mkdtempSync(join(tmpdir(), 'lokiwire-segment-'))
  try {
    const s = new Spool({ ...opts(), dir: scratch }, () => {})
    for (const text of texts) s.write(body(text), 1)
    s.close()
    return readFileSync(join(scratch, readdirSync(scratch)[0]!))
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

/** Replays everything the spool holds, acknowledging each record: their payloads, in order. */
function drain(s: Spool): string[] {
  const out: string[] = []
  for (let r = s.next(); r !== undefined; r = s.next()) {
    out.push(r.body.body.toString())
    r.ack()
  }
  return out
}

/** Descriptors this process holds open on files under `d` (Linux: /proc/self/fd). */
function openFilesUnder(d: string): string[] {
  const out: string[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(join('/proc/self/fd', fd))
      if (target.startsWith(`${d}/`)) out.push(target)
    } catch {
      // The descriptor readdir itself used, closed by now.
    }
  }
  return out
}

describe('spool directory', () => {
  it('replays segments oldest first, by time, then pid, then sequence, not by name', () => {
    // By name the order would be c, b, a, d: 1000 < 999 and 10 < 9 as text.
    writeFileSync(join(dir, 'lokiwire-1700000000001-5-0.spool'), segmentBytes('d'))
    writeFileSync(join(dir, 'lokiwire-1700000000000-1000-0.spool'), segmentBytes('c'))
    writeFileSync(join(dir, 'lokiwire-1700000000000-999-10.spool'), segmentBytes('b'))
    writeFileSync(join(dir, 'lokiwire-1700000000000-999-9.spool'), segmentBytes('a'))
    const problems: SpoolEvent[] = []
    const s = new Spool(opts(), (p) => problems.push(p))
    expect(drain(s)).toEqual(['a', 'b', 'c', 'd'])
    expect(readdirSync(dir)).toEqual([])
    expect(problems).toEqual([])
  })

  it('leaves files that only look like segments alone', () => {
    const names = ['lokiwire-1700000000000-1-0.spool.bak', 'old-lokiwire-1700000000000-1-0.spool', 'lokiwire-170000000000-1-0.spool', 'notes.txt']
    for (const name of names) writeFileSync(join(dir, name), segmentBytes('not mine'))
    const s = new Spool(opts(), () => {})
    expect(s.pending).toBe(false)
    expect(s.bytes).toBe(0)
    expect(s.next()).toBeUndefined()
    expect(readdirSync(dir).sort()).toEqual([...names].sort())
  })

  it('counts segments an earlier process left toward maxBytes, and frees them as they are replayed', () => {
    const one = segmentBytes('one-a', 'one-b')
    const two = segmentBytes('two')
    writeFileSync(join(dir, 'lokiwire-1700000000000-1-0.spool'), one)
    writeFileSync(join(dir, 'lokiwire-1700000000000-1-1.spool'), two)
    const record = 20 + 'fives'.length
    const problems: SpoolEvent[] = []
    const s = new Spool({ ...opts(), maxBytes: one.length + two.length + record }, (p) => problems.push(p))
    expect(s.bytes).toBe(one.length + two.length)
    // Exactly up to maxBytes, and not a byte beyond.
    expect(s.write(body('fives'), 1)).toBe(true)
    expect(s.write(body('x'), 1)).toBe(false)
    expect(problems.map((p) => p.reason)).toEqual(['full'])
    const a = s.next()!
    const b = s.next()!
    a.ack()
    b.ack()
    expect(s.bytes).toBe(two.length + record)
    expect(drain(s)).toEqual(['two', 'fives'])
    expect(s.bytes).toBe(0)
    expect(s.pending).toBe(false)
    expect(readdirSync(dir)).toEqual([])
  })

  it('fills a segment up to 8 MiB before it starts the next, and replays across them', () => {
    const big = { ...opts(), maxBytes: 64 * 1024 * 1024 }
    const a = new Spool(big, () => {})
    // Nine records of exactly 1 MiB with their headers.
    for (let i = 0; i < 9; i++) expect(a.write({ body: Buffer.alloc(1024 * 1024 - 20, 97 + i), contentType: 'application/json', contentEncoding: undefined }, 1)).toBe(true)
    a.close()
    const sizes = readdirSync(dir)
      .sort((x, y) => Number(x.split('-')[3]!.split('.')[0]) - Number(y.split('-')[3]!.split('.')[0]))
      .map((name) => statSync(join(dir, name)).size)
    expect(sizes).toEqual([8 * 1024 * 1024, 1024 * 1024])
    const b = new Spool(big, () => {})
    expect(b.bytes).toBe(9 * 1024 * 1024)
    expect(drain(b).map((text) => text[0])).toEqual([...'abcdefghi'])
    expect(readdirSync(dir)).toEqual([])
  })

  it.skipIf(process.platform !== 'linux')('holds no file open once closed or once its open segment is sealed for replay', () => {
    const s = new Spool(opts(), () => {})
    s.write(body('one'), 1)
    expect(openFilesUnder(dir)).toHaveLength(1)
    s.close()
    s.close() // safe twice
    expect(openFilesUnder(dir)).toEqual([])
    const t = new Spool(opts(), () => {})
    t.write(body('two'), 1)
    expect(drain(t)).toEqual(['one', 'two'])
    expect(openFilesUnder(dir)).toEqual([])
    t.close()
  })

  it.each([
    ['shorter than a header', Buffer.from([0x4c, 0x57, 0x53])],
    ['of zeros', Buffer.alloc(64)],
    ['of a record whose payload was cut short', segmentBytes('p'.repeat(100)).subarray(0, 90)],
  ])('a segment ending in a partial record (%s) replays the records before it and is reported once', (_what, tail) => {
    const name = 'lokiwire-1700000000000-1-0.spool'
    writeFileSync(join(dir, name), Buffer.concat([segmentBytes('good-1', 'good-2'), tail]))
    const problems: SpoolEvent[] = []
    const s = new Spool(opts(), (p) => problems.push(p))
    expect(drain(s)).toEqual(['good-1', 'good-2'])
    expect(problems).toEqual([{ reason: 'truncated_segment', file: name }])
    expect(readdirSync(dir)).toEqual([])
    expect(s.bytes).toBe(0)
  })

  it('a segment with no readable record is deleted once read', () => {
    writeCorruptSegment()
    const problems: SpoolEvent[] = []
    const s = new Spool(opts(), (p) => problems.push(p))
    expect(s.next()).toBeUndefined()
    expect(problems.map((p) => p.reason)).toEqual(['corrupt_record'])
    expect(readdirSync(dir)).toEqual([])
    expect(s.bytes).toBe(0)
  })

  it('a segment that vanished before its turn is reported, and replay goes on with the next', () => {
    const gone = 'lokiwire-1700000000000-1-0.spool'
    writeFileSync(join(dir, gone), segmentBytes('lost'))
    writeFileSync(join(dir, 'lokiwire-1700000000000-1-1.spool'), segmentBytes('kept'))
    const problems: SpoolEvent[] = []
    const s = new Spool(opts(), (p) => problems.push(p))
    rmSync(join(dir, gone))
    expect(drain(s)).toEqual(['kept'])
    expect(problems.map((p) => [p.reason, p.file])).toEqual([['read_failed', gone]])
    expect(readdirSync(dir)).toEqual([])
  })

  it.skipIf(!existsSync('/dev/full'))('a disk that is full when a segment is opened: the write is reported with its file, nothing is offered for replay, and the empty segment is not left behind', () => {
    const problems: SpoolEvent[] = []
    const s = new Spool({ ...opts(), maxBytes: 64 * 1024 * 1024 }, (p) => problems.push(p))
    // The name the spool's first segment will take leads to /dev/full, where every write fails
    // with ENOSPC. The clock is held only for that name.
    const name = `lokiwire-1700000000000-${process.pid}-0.spool`
    symlinkSync('/dev/full', join(dir, name))
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_700_000_000_000)
    try {
      expect(s.write(body('lost'), 1)).toBe(false)
    } finally {
      now.mockRestore()
    }
    expect(problems).toMatchObject([{ reason: 'write_failed', file: name }])
    expect(s.pending).toBe(false)
    expect(s.next()).toBeUndefined()
    // A record too big for the open segment moves on to a new one, a regular file.
    expect(s.write({ body: Buffer.alloc(8 * 1024 * 1024, 120), contentType: 'application/json', contentEncoding: undefined }, 1)).toBe(true)
    expect(readdirSync(dir)).toHaveLength(1)
    expect(lstatSync(join(dir, readdirSync(dir)[0]!)).isFile()).toBe(true)
    expect(s.next()!.body.body.length).toBe(8 * 1024 * 1024)
    expect(problems).toHaveLength(1)
    s.close()
  })

  it('a replayed segment that cannot be deleted is reported and still counted', () => {
    const name = 'lokiwire-1700000000000-1-0.spool'
    const data = segmentBytes('stuck')
    writeFileSync(join(dir, name), data)
    const problems: SpoolEvent[] = []
    const s = new Spool(opts(), (p) => problems.push(p))
    const r = s.next()!
    // Something else took the segment's name: unlink refuses a directory.
    rmSync(join(dir, name))
    mkdirSync(join(dir, name))
    r.ack()
    expect(problems.map((p) => [p.reason, p.file])).toEqual([['delete_failed', name]])
    expect(s.bytes).toBe(data.length)
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

  it('problems met while the constructor runs reach a listener attached right after it', async () => {
    // A corrupt record, which the constructor's first replay meets, and an unusable directory.
    writeCorruptSegment()
    const file = join(dir, 'a-file')
    writeFileSync(file, 'x')
    const seen: string[] = []
    const corrupt = new LokiClient({ url: srv.url, labels: { app: 'spool' }, spool: { dir } })
    corrupt.on('spool', (p) => seen.push(p.reason))
    const unusable = new LokiClient({ url: srv.url, labels: { app: 'spool' }, spool: { dir: join(file, 'sub') } })
    unusable.on('spool', (p) => seen.push(p.reason))
    expect(seen).toEqual([])
    await waitUntil(() => seen.length === 2, 'both problems to be reported')
    expect(seen.sort()).toEqual(['corrupt_record', 'read_failed'])
    expect(corrupt.stats().spool.errors).toBe(1)
    await corrupt.close()
    await unusable.close()
  })

  it('with no \'spool\' listener a problem is a LOKIWIRE_SPOOL warning: a lost record is never silent', async () => {
    writeCorruptSegment()
    const warnings: Array<{ code?: string; message: string }> = []
    const onWarning = (w: Error & { code?: string }) => warnings.push({ code: w.code, message: w.message })
    process.on('warning', onWarning)
    try {
      const client = new LokiClient({ url: srv.url, labels: { app: 'spool' }, spool: { dir } })
      // Summed into one warning, which close() reports at the latest.
      await client.close()
      await waitUntil(() => warnings.some((w) => w.code === 'LOKIWIRE_SPOOL'), 'the spool warning')
      expect(warnings.filter((w) => w.code === 'LOKIWIRE_SPOOL')).toEqual([
        { code: 'LOKIWIRE_SPOOL', message: expect.stringMatching(/^lokiwire spool reported 1 problem \(corrupt_record: 1\) and the client has no 'spool' listener; last error: corrupt_record in lokiwire-1700000000000-1-0\.spool$/) },
      ])
    } finally {
      process.off('warning', onWarning)
    }
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
