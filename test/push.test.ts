import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LokiClient, LokiEntryError, type DropEvent } from '../src/index.js'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { assertIdentity, FAST } from './helpers.js'

let srv: LokiTestServer
let client: LokiClient
beforeEach(async () => {
  srv = await createLokiTestServer()
})
afterEach(async () => {
  await client.destroy()
  await srv.close()
})

it('push() never throws: each bad entry is refused and counted with its reason', async () => {
  client = new LokiClient({ url: srv.url, labels: { app: 'p' }, maxLineBytes: 100, oversizeLines: 'drop', invalidLabels: 'drop', ...FAST })
  const drops: DropEvent[] = []
  client.on('drop', (e) => drops.push(e))
  const bad: unknown[] = [null, undefined, 42, 'a string', {}, { line: 5 }, { line: 'x', timestamp: 'yesterday' }, { line: 'x', timestamp: Number.NaN }]
  for (const e of bad) expect(client.push(e as never)).toBe(false)
  expect(client.push({ line: 'x'.repeat(101) })).toBe(false)
  expect(client.push({ line: 'x', labels: { 'bad-name': 'v' } })).toBe(false)
  expect(client.push([{ line: 'ok' }, null as never])).toBe(false)
  const s = client.stats()
  expect(s.dropped).toMatchObject({ invalid_entry: 9, line_too_long: 1, invalid_labels: 1, total: 11 })
  expect(drops.reduce((n, d) => n + d.entries, 0)).toBe(11)
  assertIdentity(client)
  await client.flush({ timeoutMs: 5000 })
  expect(srv.entries.map((e) => e.line)).toEqual(['ok'])
})

it('truncates over-long lines at a character boundary by default and counts them', async () => {
  client = new LokiClient({ url: srv.url, labels: { app: 'p' }, maxLineBytes: 16, ...FAST })
  expect(client.push({ line: 'ééééééééééé' })).toBe(true) // 22 bytes
  await client.flush({ timeoutMs: 5000 })
  expect(srv.entries[0]!.line).toBe('éééééééé')
  expect(client.stats().truncated).toBe(1)
})

it('a line of exactly maxLineBytes is sent whole, under either policy', async () => {
  for (const oversizeLines of ['truncate', 'drop'] as const) {
    const c = new LokiClient({ url: srv.url, labels: { app: 'p', policy: oversizeLines }, maxLineBytes: 16, oversizeLines, ...FAST })
    try {
      expect(c.push({ line: 'é'.repeat(8) })).toBe(true) // 16 bytes
      await c.flush({ timeoutMs: 5000 })
      expect(c.stats()).toMatchObject({ truncated: 0, dropped: { total: 0 } })
    } finally {
      await c.destroy()
    }
  }
  expect(srv.entries.map((e) => e.line)).toEqual(['é'.repeat(8), 'é'.repeat(8)])
})

it('entries without a timestamp are stamped as pushed, and a line repeated within a millisecond is kept every time', async () => {
  client = new LokiClient({ url: srv.url, labels: { app: 'p' }, ...FAST })
  // 50 pushes take microseconds: several share a millisecond, and only an offset keeps them apart.
  const before = Date.now()
  for (let i = 0; i < 50; i++) client.push({ line: 'same' })
  const after = Date.now()
  await client.flush({ timeoutMs: 5000 })
  expect(srv.entries).toHaveLength(50)
  for (const e of srv.entries) {
    const ms = Number(BigInt(e.timestamp) / 1_000_000n)
    expect(ms).toBeGreaterThanOrEqual(before)
    expect(ms).toBeLessThanOrEqual(after)
  }
})

it('an entry counts its line, its metadata and a fixed overhead against the buffer limit, and the refusal says by how much', async () => {
  client = new LokiClient({ url: srv.url, labels: { app: 'p' }, maxLineBytes: 16, oversizeLines: 'drop', ...FAST })
  const drops: DropEvent[] = []
  client.on('drop', (e) => drops.push(e))
  client.push({ line: 'abc', metadata: { trace_id: 'x'.repeat(10) } })
  // 3 + 8 ("trace_id") + 10 + 24 (ENTRY_OVERHEAD_BYTES).
  expect(client.stats().buffered).toEqual({ entries: 1, bytes: 45 })
  expect(client.push({ line: 'seventeen bytes!!' })).toBe(false)
  expect(drops[0]!.error?.message).toMatch(/17 bytes, over maxLineBytes \(16\)/)
})

it('sanitises bad label names by default', async () => {
  client = new LokiClient({ url: srv.url, labels: { app: 'p' }, ...FAST })
  client.push({ line: 'x', labels: { 'k8s.pod-name': 'web-1', empty: '' } })
  await client.flush({ timeoutMs: 5000 })
  expect(srv.entries[0]!.labels).toEqual({ app: 'p', k8s_pod_name: 'web-1' })
})

it('a throwing listener cannot break delivery', async () => {
  client = new LokiClient({ url: srv.url, labels: { app: 'p' }, ...FAST })
  client.on('sent', () => {
    throw new Error('listener bug')
  })
  client.push({ line: 'still delivered' })
  const r = await client.flush({ timeoutMs: 5000 })
  expect(r.ok).toBe(true)
  expect(srv.entries).toHaveLength(1)
  expect(client.stats().listenerErrors).toBe(1)
})

it('without default labels, an entry with no labels is refused rather than sent to a 400', () => {
  client = new LokiClient({ url: srv.url, ...FAST })
  expect(client.push({ line: 'no labels' })).toBe(false)
  expect(client.push({ line: 'labelled', labels: { app: 'x' } })).toBe(true)
  expect(client.stats().dropped.invalid_labels).toBe(1)
})

it('label sets that only a joined string key would confuse land in their own streams', async () => {
  client = new LokiClient({ url: srv.url, labels: { app: 'p' }, invalidLabels: 'drop', ...FAST })
  // Label values come from logged fields: any character can be in them.
  expect(client.push({ line: 'one', labels: { a: 'x\u0001b\u0000y' } })).toBe(true)
  expect(client.push({ line: 'two', labels: { a: 'x', b: 'y' } })).toBe(true)
  // A number is not a label value under 'drop'; the string of the same digits is.
  expect(client.push({ line: 'three', labels: { n: 5 as unknown as string } })).toBe(false)
  expect(client.push({ line: 'four', labels: { n: '5' } })).toBe(true)
  await client.flush({ timeoutMs: 5000 })
  const byLine = Object.fromEntries(srv.entries.map((e) => [e.line, e.labels]))
  expect(byLine).toEqual({
    one: { app: 'p', a: 'x\u0001b\u0000y' },
    two: { app: 'p', a: 'x', b: 'y' },
    four: { app: 'p', n: '5' },
  })
  assertIdentity(client)
})

it('a refused entry\'s drop event carries a LokiEntryError naming the field at fault', () => {
  client = new LokiClient({ url: srv.url, labels: { app: 'p' }, maxLineBytes: 16, oversizeLines: 'drop', invalidLabels: 'drop', ...FAST })
  const drops: DropEvent[] = []
  client.on('drop', (e) => drops.push(e))
  const bad: unknown[] = [
    null,
    { line: 5 },
    { line: 'x'.repeat(17) },
    { line: 'x', timestamp: 'yesterday' },
    { line: 'x', labels: { 'bad-name': 'v' } },
    { line: 'x', labels: { n: 5 } },
    { line: 'x', labels: 'app=x' },
    { line: 'x', labels: Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`l${i}`, 'v'])) },
    { line: 'x', metadata: { 'trace.id': 't' } },
  ]
  for (const e of bad) expect(client.push(e as never)).toBe(false)
  expect(drops.map((d) => [d.reason, d.error instanceof LokiEntryError && d.error.code, (d.error as LokiEntryError).field])).toEqual([
    ['invalid_entry', 'LOKI_INVALID_ENTRY', 'entry'],
    ['invalid_entry', 'LOKI_INVALID_ENTRY', 'line'],
    ['line_too_long', 'LOKI_INVALID_ENTRY', 'line'],
    ['invalid_entry', 'LOKI_INVALID_ENTRY', 'timestamp'],
    ['invalid_labels', 'LOKI_INVALID_ENTRY', 'labels.bad-name'],
    ['invalid_labels', 'LOKI_INVALID_ENTRY', 'labels.n'],
    ['invalid_labels', 'LOKI_INVALID_ENTRY', 'labels'],
    ['invalid_labels', 'LOKI_INVALID_ENTRY', 'labels'],
    ['invalid_labels', 'LOKI_INVALID_ENTRY', 'metadata.trace.id'],
  ])
  expect(drops[3]!.error!.message).toBe('Invalid entry field "timestamp": expected epoch ms, a Date, epoch ns (bigint or digits) or an ISO 8601 string, not before 1970; got "yesterday"')
  expect(drops[4]!.error!.message).toContain('label name "bad-name" must match')
  assertIdentity(client)
})

describe("pushLine(): the adapters' way in, push() without the entry object", () => {
  // Each case: [line, labels, timestamp] given to both. Label objects are frozen, as the
  // adapters hand them; one of them is not, and must be read like push() reads it.
  const level = Object.freeze({ level: 'info' })
  const badName = Object.freeze({ 'bad-name': 'v' })
  const unfrozen = { level: 'warn' }
  const cases: [string, Readonly<Record<string, string>> | undefined, number | string | undefined][] = [
    ['a', level, 1_700_000_000_000],
    ['a', level, 1_700_000_000_000], // the same line in the same millisecond: a nanosecond apart
    ['b', level, '1700000000000000123'],
    ['c', undefined, 1_700_000_000_001],
    ['d', unfrozen, 1_700_000_000_002],
    ['e', badName, 1_700_000_000_003],
    ['x'.repeat(17), level, 1_700_000_000_004],
    ['f', level, -5],
  ]

  async function run(use: 'push' | 'pushLine', labels: Record<string, string> | undefined) {
    const srv2 = await createLokiTestServer()
    const c = new LokiClient({ url: srv2.url, labels, maxLineBytes: 16, oversizeLines: 'drop', invalidLabels: 'drop', ...FAST })
    const drops: DropEvent[] = []
    c.on('drop', (e) => drops.push(e))
    try {
      const results = cases.map(([line, l, timestamp]) => (use === 'push' ? c.push({ line, labels: l, timestamp }) : c.pushLine(line, l, timestamp)))
      unfrozen.level = 'error' // read per line, not remembered: the next push sees the new value
      results.push(use === 'push' ? c.push({ line: 'g', labels: unfrozen, timestamp: 1_700_000_000_005 }) : c.pushLine('g', unfrozen, 1_700_000_000_005))
      unfrozen.level = 'warn'
      await c.flush({ timeoutMs: 5000 })
      await c.close()
      results.push(use === 'push' ? c.push({ line: 'late', labels: level }) : c.pushLine('late', level, undefined))
      const stored = srv2.entries.map((e) => ({ line: e.line, labels: e.labels, ts: e.timestamp }))
      return { results, stored, stats: c.stats(), drops: drops.map((d) => [d.reason, d.entries, d.error?.message]) }
    } finally {
      await c.destroy()
      await srv2.close()
    }
  }

  it('a label set remembered across a prune reaches the stream the batcher has now: a repeated line stays apart', async () => {
    client = new LokiClient({ url: srv.url, labels: { app: 'p' }, ...FAST })
    const info = Object.freeze({ level: 'info' })
    expect(client.pushLine('first', info, 1_700_000_000_000)).toBe(true)
    await client.flush({ timeoutMs: 5000 })
    // The batcher forgets a stream idle for a prune (one a second, at a cut) whose last entry is
    // over a second old: this cut, more than a second after the first, forgets `info`'s.
    await new Promise((resolve) => setTimeout(resolve, 1100))
    client.push({ line: 'cut', labels: { level: 'warn' } })
    await client.flush({ timeoutMs: 5000 })
    // The same line in the same millisecond and stream, once through each way in: Loki keeps both
    // only if they went through one buffer, which gives the second a nanosecond offset.
    const ts = 1_700_000_001_000
    expect(client.pushLine('twice', info, ts)).toBe(true)
    expect(client.push({ line: 'twice', labels: { level: 'info' }, timestamp: ts })).toBe(true)
    await client.flush({ timeoutMs: 5000 })
    expect(srv.entries.filter((e) => e.line === 'twice').map((e) => e.timestamp)).toEqual(['1700000001000000000', '1700000001000000001'])
  })

  it('stores, refuses and counts every case exactly as push() does', async () => {
    for (const labels of [{ app: 'p' }, undefined]) {
      const viaPush = await run('push', labels)
      const viaLine = await run('pushLine', labels)
      expect(viaLine, JSON.stringify(labels)).toEqual(viaPush)
      // The cases reach every outcome, so the comparison is not between two empty runs.
      expect(viaPush.stats.dropped.total).toBeGreaterThanOrEqual(4)
      expect(viaPush.stored.length).toBeGreaterThanOrEqual(4)
    }
  })
})
