import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Batcher, type CutBatch } from '../src/batcher.js'
import type { Entry } from '../src/types.js'

const stream = { selector: '{app="a"}', labels: { app: 'a' } }
const entry = (ms: number, line = 'l', cost = 10): Entry => ({ ms, ns: 0, line, lineBytes: line.length, meta: undefined, cost })

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
    for (let i = 0; i < 7; i++) b.add(s, entry(i), false)
    expect(batches.map((x) => x.entries)).toEqual([3, 3])
    expect(b.entries).toBe(1)
  })

  it('cuts before an entry that would overflow max bytes', () => {
    b = new Batcher({ maxEntries: 100, maxBytes: 25, maxWaitMs: 1000 }, (x) => batches.push(x))
    const s = b.stream(stream)
    for (let i = 0; i < 5; i++) b.add(s, entry(i), false)
    expect(batches.map((x) => [x.entries, x.bytes])).toEqual([[2, 20], [2, 20]])
  })

  it('cuts after max wait with an unref\'d timer, once', () => {
    b = new Batcher({ maxEntries: 100, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    const s = b.stream(stream)
    b.add(s, entry(1), false)
    vi.advanceTimersByTime(499)
    b.add(s, entry(2), false)
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
    b.add(s1, { ...entry(30), ns: 5 }, true)
    b.add(s2, entry(10), false)
    b.add(s1, { ...entry(30), ns: 2 }, true)
    b.add(s1, entry(20), false)
    b.cut()
    const [batch] = batches
    expect(batch!.streams.map((x) => x.selector)).toEqual(['{app="a"}', '{app="b"}'])
    expect(batch!.streams[0]!.entries.map((e) => [e.ms, e.ns])).toEqual([[20, 0], [30, 2], [30, 5]])
  })

  it('gives a line repeated in the same millisecond of a stream the next nanosecond, across cuts', () => {
    b = new Batcher({ maxEntries: 2, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    const s = b.stream(stream)
    for (let i = 0; i < 3; i++) b.add(s, entry(1000, 'same'), false)
    b.add(s, entry(1000, 'other'), false)
    b.add(s, entry(1000, 'same'), false)
    b.add(s, entry(1001, 'same'), false)
    b.add(s, entry(1001, 'same'), false)
    b.add(s, { ...entry(1001, 'same'), ns: 0 }, true) // precise timestamps are kept as given
    b.cut()
    const stamps = batches.flatMap((x) => x.streams[0]!.entries.map((e) => `${e.line}@${e.ms}.${e.ns}`))
    // Every (line, timestamp) pair is distinct, but for the precise entry given as it was.
    expect(stamps.sort()).toEqual([
      'other@1000.0',
      'same@1000.0', 'same@1000.1', 'same@1000.2', 'same@1000.3',
      'same@1001.0', 'same@1001.0', 'same@1001.1',
    ])
  })

  it('clear() discards and reports what was buffered', () => {
    b = new Batcher({ maxEntries: 100, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    const s = b.stream(stream)
    b.add(s, entry(1), false)
    b.add(s, entry(2), false)
    expect(b.clear()).toEqual({ entries: 2, bytes: 20 })
    expect(vi.getTimerCount()).toBe(0)
    b.cut()
    expect(batches).toHaveLength(0)
  })
})
