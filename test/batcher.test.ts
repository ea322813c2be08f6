import v8 from 'node:v8'
import vm from 'node:vm'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Batcher, type CutBatch, type StreamBuffer } from '../src/pipeline/batcher.js'
import { decodePushRequest } from '../src/testing/index.js'

const stream = { selector: '{app="a"}', labels: { app: 'a' } }

/** Adds a line at `ms` (millisecond precision unless `ns` is given) that costs 10 bytes. */
function add(b: Batcher, s: StreamBuffer, ms: number, line = 'l', ns?: number): void {
  b.add(s, { ms, ns: ns ?? 0, precise: ns !== undefined }, line, Buffer.byteLength(line), undefined, 10)
}

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
// Taken before the fake timers replace it: a WeakRef's target stays alive until the current job ends.
const realSetImmediate = setImmediate

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

  it('cuts as soon as max bytes is reached, and lets an entry that exactly fills the batch in', () => {
    b = new Batcher({ maxEntries: 100, maxBytes: 30, maxWaitMs: 1000 }, (x) => batches.push(x))
    const s = b.stream(stream)
    b.add(s, { ms: 1, ns: 0, precise: false }, 'a', 1, undefined, 10)
    b.add(s, { ms: 2, ns: 0, precise: false }, 'b', 1, undefined, 20)
    expect(batches.map((x) => [x.entries, x.bytes])).toEqual([[2, 30]])
    // An entry over max bytes on its own still goes, alone.
    b.add(s, { ms: 3, ns: 0, precise: false }, 'c', 1, undefined, 50)
    expect(batches.map((x) => [x.entries, x.bytes])).toEqual([[2, 30], [1, 50]])
    expect(b.entries).toBe(0)
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

  it('gives every batch its full max wait from its own first entry, also after a timed cut', () => {
    b = new Batcher({ maxEntries: 100, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    const s = b.stream(stream)
    add(b, s, 1)
    vi.advanceTimersByTime(400)
    add(b, s, 2)
    vi.advanceTimersByTime(100) // 500 ms after the first entry
    expect(batches.map((x) => x.entries)).toEqual([1 + 1])
    vi.advanceTimersByTime(100)
    add(b, s, 3) // the next batch starts 600 ms in: due at 1100 ms, not at 900 (400 + 500)
    vi.advanceTimersByTime(499)
    expect(batches).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(batches.map((x) => x.entries)).toEqual([2, 1])
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

  it('a batch cut for size or cleared takes its timer along: the next batch gets its full max wait', () => {
    b = new Batcher({ maxEntries: 2, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    const s = b.stream(stream)
    add(b, s, 1)
    vi.advanceTimersByTime(100)
    add(b, s, 2) // cut for size, 400 ms before the timer of its first entry was due
    expect(batches.map((x) => x.entries)).toEqual([2])
    vi.advanceTimersByTime(100)
    add(b, s, 3) // due at 700 ms
    vi.advanceTimersByTime(499)
    expect(batches).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(batches.map((x) => x.entries)).toEqual([2, 1])
    add(b, s, 4)
    b.clear()
    add(b, s, 5)
    vi.advanceTimersByTime(500)
    expect(batches.map((x) => x.entries)).toEqual([2, 1, 1])
  })

  describe('forgetting idle streams', () => {
    const T = 100_000
    /** Every timestamp of `line` in the batches, as ms.offset. */
    const stampsOf = (line: string) =>
      batches
        .flatMap((x) => decoded(x).flatMap((st) => st.entries))
        .filter((e) => e.line === line)
        .map((e) => `${BigInt(e.timestamp) / 1_000_000n}.${BigInt(e.timestamp) % 1_000_000n}`)
    /** Cuts a batch that holds only an entry of another stream: a cut is when the batcher prunes. */
    const cutOther = () => {
      add(b, b.stream({ selector: '{app="other"}', labels: { app: 'other' } }), Date.now())
      b.cut()
    }
    beforeEach(() => {
      vi.setSystemTime(T)
      b = new Batcher({ maxEntries: 100, maxBytes: 1e6, maxWaitMs: 500 }, (x) => batches.push(x))
    })

    it('keeps a stream that got entries since the last prune, however old their timestamps', () => {
      // Lines logged five seconds before they arrive (a lagging worker): each batch is cut and
      // pruned between two of them, and a repeat must still get its own timestamp.
      for (let i = 0; i < 3; i++) {
        add(b, b.stream(stream), T - 5000, 'same')
        b.cut()
        vi.advanceTimersByTime(1500)
      }
      expect(stampsOf('same').sort()).toEqual(['95000.0', '95000.1', '95000.2'])
    })

    it('forgets a stream only after a second with no entry, and its buffer is collected', async () => {
      const ref = (() => {
        const s = b.stream(stream)
        add(b, s, T - 5000, 'same')
        b.cut()
        return new WeakRef(s)
      })()
      vi.advanceTimersByTime(10)
      cutOther()
      // Less than a second since it was last used: still known, so a repeat is told apart.
      add(b, b.stream(stream), T - 5000, 'same')
      b.cut()
      expect(stampsOf('same').sort()).toEqual(['95000.0', '95000.1'])
      vi.advanceTimersByTime(1500)
      cutOther()
      vi.advanceTimersByTime(1500)
      cutOther()
      await new Promise((r) => realSetImmediate(r))
      gc()
      expect(ref.deref()).toBeUndefined()
      // Asked for again, the label set gets a fresh buffer that batches as before.
      add(b, b.stream(stream), T, 'fresh')
      b.cut()
      expect(stampsOf('fresh')).toEqual(['100000.0'])
    })

    it('under label churn, the buffers of label sets no longer used are collected', async () => {
      const refs = (() => {
        const out: WeakRef<StreamBuffer>[] = []
        for (let i = 0; i < 200; i++) {
          const s = b.stream({ selector: `{req="${i}"}`, labels: { req: String(i) } })
          add(b, s, Date.now())
          out.push(new WeakRef(s))
          if (i % 10 === 9) b.cut()
        }
        return out
      })()
      for (let i = 0; i < 3; i++) {
        vi.advanceTimersByTime(1500)
        cutOther()
      }
      await new Promise((r) => realSetImmediate(r))
      gc()
      expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0)
    })

    it('never forgets the pinned default stream: an entry that names the default labels lands in its buffer', () => {
      const defaults = b.stream(stream, true)
      add(b, defaults, T - 5000, 'same')
      b.cut()
      for (let i = 0; i < 3; i++) {
        vi.advanceTimersByTime(1500)
        cutOther()
      }
      // The client keeps `defaults` for entries without labels; these come through the map.
      expect(b.stream(stream)).toBe(defaults)
      add(b, b.stream(stream), T - 5000, 'same')
      b.cut()
      expect(stampsOf('same').sort()).toEqual(['95000.0', '95000.1'])
    })

    it('keeps an idle stream whose last millisecond is under a second old (timestamps ahead of the clock)', () => {
      add(b, b.stream(stream), T + 10_000, 'same')
      b.cut()
      for (let i = 0; i < 3; i++) {
        vi.advanceTimersByTime(1500)
        cutOther()
      }
      add(b, b.stream(stream), T + 10_000, 'same')
      b.cut()
      expect(stampsOf('same').sort()).toEqual(['110000.0', '110000.1'])
    })
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

it('a batch waiting for max wait does not keep the process alive', () => {
  // getActiveResourcesInfo() lists the timers that hold the process open: unref'd ones are not.
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const b = new Batcher({ maxEntries: 100, maxBytes: 1e6, maxWaitMs: 60_000 }, () => {})
  const before = timers()
  add(b, b.stream(stream), Date.now())
  expect(b.entries).toBe(1)
  expect(timers()).toBe(before)
  b.clear()
})
