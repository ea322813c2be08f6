import { describe, expect, it } from 'vitest'
import { compressSync, uncompressSync } from 'snappy'
import { batchOfBody, buildRequest, encodeBodySync, encodeJson, EntryBuffer, entryCount, halveBatch, type EncodedBatch } from '../src/encode/index.js'
import { labelsOfSelector, selectorOf } from '../src/model/labels.js'
import { decodeJsonPush, decodePushRequest } from '../src/testing/index.js'

const labels = { app: 'enc' }
const selector = '{app="enc"}'

function nanos(ms: number, ns: number): string {
  return (BigInt(ms) * 1_000_000n + BigInt(ns)).toString()
}

interface Case {
  ms: number
  ns: number
  line: string
  meta?: string[]
}

/** Deterministic entries of every shape the writer has a branch for. */
function cases(n: number): Case[] {
  const out: Case[] = []
  for (let i = 0; i < n; i++) {
    // Every third entry is older than the one before it: the buffer must sort.
    const ms = 1_764_000_000_000 + i * 7 - (i % 3 === 0 ? i % 1000 : 0)
    const kind = i % 5
    const line =
      kind === 0 ? '' :
      kind === 1 ? `short ${i}` :
      kind === 2 ? `ünïcødé ${i} 日本語 🚀`.repeat(1 + (i % 4)) :
      kind === 3 ? 'x'.repeat(40 + (i % 300)) :
      `{"seq":${i},"msg":"${'y'.repeat(i % 90)}"}`
    out.push({ ms, ns: i % 11 === 0 ? 999_999 : 0, line, ...(i % 7 === 0 ? { meta: ['trace_id', `t${i}`, 'zoë', 'ü'] } : {}) })
  }
  return out
}

function batchOf(entries: Case[]): EncodedBatch {
  const buf = new EntryBuffer()
  for (const e of entries) buf.append(e.ms, e.ns, e.line, Buffer.byteLength(e.line), e.meta)
  return buildRequest([{ labels, selector, records: buf.records(), count: buf.count }])
}

/** What Loki should receive: the entries in timestamp order (a stable sort, as the client sends them). */
function expected(entries: Case[]) {
  const sorted = [...entries].sort((a, b) => a.ms - b.ms || a.ns - b.ns)
  return sorted.map((e) => ({
    timestamp: nanos(e.ms, e.ns),
    line: e.line,
    ...(e.meta ? { metadata: Object.fromEntries([[e.meta[0], e.meta[1]], [e.meta[2], e.meta[3]]]) } : {}),
  }))
}

describe('encoding at push (EntryBuffer + buildRequest)', () => {
  it('grows through many reallocations and writes every entry exactly, as protobuf and as JSON', () => {
    const entries = cases(5000)
    const batch = batchOf(entries)
    expect(entryCount(batch)).toBe(5000)
    const want = [{ labels, entries: expected(entries) }]
    expect(decodePushRequest(batch.request).streams).toEqual(want)
    expect(decodeJsonPush(encodeJson(batch)).streams).toEqual(want)
  })

  it('writes the same JSON text as JSON.stringify of the streams, escapes included', () => {
    // Every ASCII byte (each control character, quote, backslash, DEL), multi-byte characters,
    // a lone surrogate (sent as U+FFFD), and metadata that needs the same escaping.
    const every = Array.from({ length: 128 }, (_, b) => String.fromCharCode(b)).join('')
    const lines = [every, '"quoted" \\ back\\slash', 'tab\there\r\nnew\u2028line\u2029', 'ünïcødé 日本語 🚀', 'lone \ud800 surrogate', '', 'plain']
    const entries: Case[] = lines.map((line, i) => ({ ms: 1_764_000_000_000 + i, ns: i === 2 ? 999_999 : 0, line, ...(i % 2 === 0 ? { meta: ['trace_id', `t"${i}\n`, 'zoë', every] } : {}) }))
    const batch = batchOf(entries)
    const wellFormed = (s: string) => Buffer.from(s).toString()
    const want = JSON.stringify({
      streams: [{
        stream: labels,
        values: entries.map((e) => [nanos(e.ms, e.ns), wellFormed(e.line), ...(e.meta ? [{ [e.meta[0]!]: e.meta[1], [e.meta[2]!]: wellFormed(e.meta[3]!) }] : [])]),
      }],
    })
    expect(encodeJson(batch)).toBe(want)
  })

  it('sorts entries pushed out of order by timestamp, keeping the push order of equal ones', () => {
    const buf = new EntryBuffer()
    const pushed: Array<[number, number, string]> = [[30, 0, 'c'], [10, 5, 'a'], [30, 0, 'd'], [10, 0, 'z'], [20, 0, 'b']]
    for (const [ms, ns, line] of pushed) buf.append(ms, ns, line, line.length, undefined)
    const batch = buildRequest([{ labels, selector, records: buf.records(), count: buf.count }])
    expect(decodePushRequest(batch.request).streams[0]!.entries.map((e) => `${e.timestamp}:${e.line}`)).toEqual([
      '10000000:z', '10000005:a', '20000000:b', '30000000:c', '30000000:d',
    ])
  })

  it('starts clean after reset(), whether it keeps its memory or lets a large buffer go', () => {
    const buf = new EntryBuffer()
    const big = 'x'.repeat(100_000)
    for (let i = 0; i < 4; i++) buf.append(i, 0, big, big.length, undefined) // grows past the keep limit
    buf.reset()
    buf.append(5, 0, 'small', 5, undefined) // a quarter unused: the large buffer is released
    const once = buildRequest([{ labels, selector, records: buf.records(), count: buf.count }])
    buf.reset()
    buf.append(9, 0, 'again', 5, undefined)
    buf.append(8, 0, 'earlier', 7, undefined)
    const twice = buildRequest([{ labels, selector, records: buf.records(), count: buf.count }])
    expect(decodePushRequest(once.request).streams[0]!.entries.map((e) => e.line)).toEqual(['small'])
    expect(decodePushRequest(twice.request).streams[0]!.entries.map((e) => e.line)).toEqual(['earlier', 'again'])
  })

  it('halves one stream by entries and several streams by stream (the 413 split)', () => {
    const entries = cases(101)
    const single = batchOf(entries)
    const [a, b] = halveBatch(single)
    expect([entryCount(a), entryCount(b)]).toEqual([50, 51])
    expect([...decodePushRequest(a.request).streams[0]!.entries, ...decodePushRequest(b.request).streams[0]!.entries]).toEqual(expected(entries))

    const parts = [0, 1, 2].map((k) => {
      const buf = new EntryBuffer()
      buf.append(1000 + k, 0, `stream ${k}`, 8, undefined)
      return { labels: { app: `s${k}` }, selector: `{app="s${k}"}`, records: Buffer.from(buf.records()), count: 1 }
    })
    const [x, y] = halveBatch(buildRequest(parts))
    expect(decodePushRequest(x.request).streams.map((s) => s.labels.app)).toEqual(['s0'])
    expect(decodePushRequest(y.request).streams.map((s) => s.labels.app)).toEqual(['s1', 's2'])
    expect(decodePushRequest(y.request).streams[1]!.entries).toEqual([{ timestamp: nanos(1002, 0), line: 'stream 2' }])
  })
})

describe('reading back a body this encoder wrote (batchOfBody, the replayed 413 split)', () => {
  // Label values with every character the selector escapes, and one that is not ASCII.
  const tricky = { app: 'enc', path: 'C:\\logs\\"x"\nnext', who: 'zoë, "q"={}' }
  function twoStreams(): EncodedBatch {
    const a = new EntryBuffer()
    const b = new EntryBuffer()
    cases(200).forEach((e, i) => (i % 2 === 0 ? a : b).append(e.ms, e.ns, e.line, Buffer.byteLength(e.line), e.meta))
    return buildRequest([
      { labels, selector, records: a.records(), count: a.count },
      { labels: tricky, selector: selectorOf(tricky), records: b.records(), count: b.count },
    ])
  }

  it.each([['protobuf', 0], ['json', 0], ['json', 6]] as const)('gives back the same streams and entries (%s, gzip %i)', (encoding, gzipLevel) => {
    const batch = twoStreams()
    const back = batchOfBody(encodeBodySync(batch, { encoding, gzipLevel }))
    expect(back).toBeDefined()
    expect(back!.streams.map((s) => [s.labels, s.selector, s.count])).toEqual(batch.streams.map((s) => [s.labels, s.selector, s.count]))
    // The records themselves, compared through an independent decoder.
    expect(decodePushRequest(back!.request)).toEqual(decodePushRequest(batch.request))
    expect(entryCount(back!)).toBe(200)
    // And the halves a 413 makes of it are whole.
    const [h1, h2] = halveBatch(back!)
    expect(entryCount(h1) + entryCount(h2)).toBe(200)
  })

  it('gives undefined, not a guess, for a body it did not write', () => {
    const good = encodeBodySync(twoStreams(), { encoding: 'protobuf', gzipLevel: 0 })
    const cut = { ...good, body: compressSync((uncompressSync(good.body, { asBuffer: true }) as Buffer).subarray(0, 500)) }
    expect(batchOfBody(cut)).toBeUndefined()
    expect(batchOfBody({ ...good, body: good.body.subarray(0, 10) })).toBeUndefined()
    expect(batchOfBody({ ...good, contentType: 'text/plain' })).toBeUndefined()
    expect(batchOfBody({ body: Buffer.from('{"streams":[{"stream":{"a":"b"},"values":[["x","y"]]}]}'), contentType: 'application/json', contentEncoding: undefined })).toBeUndefined()
    expect(batchOfBody({ body: Buffer.from('{"other":1}'), contentType: 'application/json', contentEncoding: undefined })).toBeUndefined()
    expect(batchOfBody({ body: Buffer.from('not json'), contentType: 'application/json', contentEncoding: 'gzip' })).toBeUndefined()
  })

  it('reads a selector back exactly as selectorOf() wrote it, and nothing else', () => {
    expect(labelsOfSelector(selectorOf(tricky))).toEqual(tricky)
    expect(labelsOfSelector('{}')).toEqual({})
    for (const bad of ['', '{', '{a="1"', '{a=1}', '{a="1",b="2"}', '{a="\\t"}', '{1a="x"}', '{a="x}']) expect(labelsOfSelector(bad)).toBeUndefined()
  })
})
