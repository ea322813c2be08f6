import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Batcher, type CutBatch, type StreamBuffer } from '../src/pipeline/batcher.js'
import { decodePushRequest } from '../src/testing/index.js'

const stream = { selector: '{app="a"}', labels: { app: 'a' } }

/** Adds a line at `ms` (millisecond precision unless `ns` is given) that costs 10 bytes. */
function add(b: Batcher, s: StreamBuffer, ms: number, line = 'l', ns?: number): void {
  b.add(s, { ms, ns: ns ?? 0, precise: ns !== undefined }, line, Buffer.byteLength(line), undefined, 10)
}

/** What a cut batch carries, decoded from its protobuf request. */
function decoded(batch: CutBatch) {
  return decodePushRequest(batch.data.request).streams
}

describe('batcher (fake timers: pure logic only)', () => {
  let batches: CutBatch[]
  let b: Batcher
  beforeEach(() => {
    vi.useFakeTimers()
    batches = []
  })
  afterEach(() => {
    b.clear()
    vi.useRealTimers()
  })

  it('cuts on max entries', () => {
    b = new Batcher({ maxEntries: 3, maxBytes: 1e6, maxWaitMs: 1000 }, (x) => batches.push(x))
    const s = b.stream(stream)
    for (let i = 0; i < 7; i++) add(b, s, i)
    expect(batches.map((x) => x.entries)).toEqual([3, 3])
    expect(b.entries).toBe(1)
  })

  it('cuts before an entry that would overflow max bytes', () => {
    b = new Batcher({ maxEntries: 100, maxBytes: 25, maxWaitMs: 1000 }, (x) => batches.push(x))
    const s = b.stream(stream)
    for (let i = 0; i < 5; i++) add(b, s, i)
    expect(batches.map((x) => [x.entries, x.bytes])).toEqual([[2, 20], [2, 20]])
  })

  it('cuts after max wait with an unref\'d timer, once', () => {
    b = new Batcher({ maxEntries: 100, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    const s = b.stream(stream)
    add(b, s, 1)
    vi.advanceTimersByTime(499)
    add(b, s, 2)
    expect(batches).toHaveLength(0)
    vi.advanceTimersByTime(1)
    expect(batches.map((x) => x.entries)).toEqual([2])
    vi.advanceTimersByTime(5000)
    expect(batches).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('groups by stream and sorts each stream by time', () => {
    b = new Batcher({ maxEntries: 100, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    const s1 = b.stream(stream)
    const s2 = b.stream({ selector: '{app="b"}', labels: { app: 'b' } })
    expect(b.stream(stream)).toBe(s1)
    add(b, s1, 30, 'x', 5)
    add(b, s2, 10)
    add(b, s1, 30, 'y', 2)
    add(b, s1, 20, 'z')
    b.cut()
    const [batch] = batches
    expect(decoded(batch!).map((x) => x.labels)).toEqual([{ app: 'a' }, { app: 'b' }])
    expect(decoded(batch!)[0]!.entries.map((e) => [e.timestamp, e.line])).toEqual([['20000000', 'z'], ['30000002', 'y'], ['30000005', 'x']])
    expect(batch!.data.streams.map((x) => x.count)).toEqual([3, 1])
  })

  it('gives a line repeated in the same millisecond of a stream the next nanosecond, across cuts', () => {
    b = new Batcher({ maxEntries: 2, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    const s = b.stream(stream)
    for (let i = 0; i < 3; i++) add(b, s, 1000, 'same')
    add(b, s, 1000, 'other')
    add(b, s, 1000, 'same')
    add(b, s, 1001, 'same')
    add(b, s, 1001, 'same')
    add(b, s, 1001, 'same', 0) // precise timestamps are kept as given
    b.cut()
    const stamps = batches.flatMap((x) => decoded(x)[0]!.entries.map((e) => `${e.line}@${BigInt(e.timestamp) / 1_000_000n}.${BigInt(e.timestamp) % 1_000_000n}`))
    // Every (line, timestamp) pair is distinct, but for the precise entry given as it was.
    expect(stamps.sort()).toEqual([
      'other@1000.0',
      'same@1000.0', 'same@1000.1', 'same@1000.2', 'same@1000.3',
      'same@1001.0', 'same@1001.0', 'same@1001.1',
    ])
  })

  it('keeps distinct lines of one millisecond at offset 0 and stays in order after an offset', () => {
    b = new Batcher({ maxEntries: 100_000, maxBytes: 1e8, maxWaitMs: 500 }, (x) => batches.push(x))
    const s = b.stream(stream)
    for (let i = 0; i < 10_000; i++) add(b, s, 5000, `{"msg":"request handled","seq":${i},"user":"u${i % 100}"}`)
    add(b, s, 5000, '{"msg":"request handled","seq":7,"user":"u7"}') // a repeat: offset 1
    add(b, s, 5000, 'after the repeat')
    b.cut()
    const entries = decoded(batches[0]!)[0]!.entries
    // Distinct lines share the millisecond's plain timestamp (the hash told them all apart).
    expect(entries.filter((e) => e.timestamp !== '5000000000').map((e) => e.line)).toEqual(['{"msg":"request handled","seq":7,"user":"u7"}'])
    expect(entries.find((e) => e.timestamp === '5000000001')).toBeDefined()
    // Timestamps come out sorted, the offset entry last.
    expect(entries.at(-1)!.timestamp).toBe('5000000001')
    expect(entries).toHaveLength(10_002)
  })

  it('clear() discards and reports what was buffered', () => {
    b = new Batcher({ maxEntries: 100, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    const s = b.stream(stream)
    add(b, s, 1)
    add(b, s, 2)
    expect(b.clear()).toEqual({ entries: 2, bytes: 20 })
    expect(vi.getTimerCount()).toBe(0)
    b.cut()
    expect(batches).toHaveLength(0)
  })
})
