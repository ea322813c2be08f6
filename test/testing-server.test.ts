import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib'
import protobuf from 'protobufjs'
import { compressSync } from 'snappy'
import { Client, request } from 'undici'
import type { Dispatcher } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { encodeBody, encodeJson as encodeJsonBatch, encodeStreams } from '../src/encode/index.js'
import type { EncodedBody } from '../src/encode/index.js'
import type { PlainEntry as Entry, PlainStream as BatchStream } from '../src/model/types.js'
import { createLokiTestServer, decodeJsonPush, decodePushRequest, parseSelector } from '../src/testing/index.js'
import type { LokiTestServer } from '../src/testing/index.js'
import { trackTimers, waitUntil } from './helpers.js'

// ---------------------------------------------------------------------------------------------
// Fixtures

function mkEntry(ms: number, ns: number, line: string, meta?: Record<string, string>): Entry {
  return { ms, ns, line, meta: meta === undefined ? undefined : Object.entries(meta).flat() }
}

/** The client's protobuf request (before snappy) and JSON body for plain streams. */
const encodeProtobuf = (streams: BatchStream[]) => encodeStreams(streams).request
const encodeJson = (streams: BatchStream[]) => encodeJsonBatch(encodeStreams(streams))

/** Built here rather than with the receiver's own formatter so the two cannot agree by accident. */
function selectorOf(labels: Record<string, string>): string {
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
  return `{${Object.keys(labels)
    .sort()
    .map((k) => `${k}="${esc(labels[k]!)}"`)
    .join(', ')}}`
}

function mkStream(labels: Record<string, string>, entries: Entry[]): BatchStream {
  const sorted = Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))
  return { labels: sorted, selector: selectorOf(sorted), entries }
}

function nsOf(ms: number, ns: number): string {
  return (BigInt(ms) * 1_000_000n + BigInt(ns)).toString()
}

const T0 = 1_732_886_400_123 // ms, with a non-zero millisecond part

/** Streams exercising what tends to break: unicode, metadata, escaped label values, ns precision. */
function tricky(): BatchStream[] {
  return [
    mkStream({ app: 'api', level: 'info' }, [
      mkEntry(T0, 0, 'plain ascii line'),
      mkEntry(T0, 1, 'same millisecond, next nanosecond'),
      mkEntry(T0 + 1, 999_999, 'héllo wörld — 日本語 🚀', { trace_id: 'abc123', user: 'zoë' }),
      mkEntry(T0 + 2, 500, ''),
    ]),
    mkStream({ app: 'quote"back\\slash\nnewline', env: 'τεστ' }, [mkEntry(0, 0, 'epoch zero'), mkEntry(999, 1, 'sub-second')]),
  ]
}

function expectedDecoded(streams: BatchStream[]) {
  return {
    streams: streams.map((s) => ({
      labels: { ...s.labels },
      entries: s.entries.map((e) => {
        const out: { timestamp: string; line: string; metadata?: Record<string, string> } = {
          timestamp: nsOf(e.ms, e.ns),
          line: e.line,
        }
        if (e.meta !== undefined) {
          const m: Record<string, string> = {}
          for (let i = 0; i < e.meta.length; i += 2) m[e.meta[i]!] = e.meta[i + 1]!
          out.metadata = m
        }
        return out
      }),
    })),
  }
}

// The logproto schema, defined independently through protobufjs's reflection API.
const root = new protobuf.Root()
const ns = root.define('logproto')
ns.add(new protobuf.Type('Timestamp').add(new protobuf.Field('seconds', 1, 'int64')).add(new protobuf.Field('nanos', 2, 'int32')))
ns.add(new protobuf.Type('LabelPairAdapter').add(new protobuf.Field('name', 1, 'string')).add(new protobuf.Field('value', 2, 'string')))
ns.add(
  new protobuf.Type('EntryAdapter')
    .add(new protobuf.Field('timestamp', 1, 'Timestamp'))
    .add(new protobuf.Field('line', 2, 'string'))
    .add(new protobuf.Field('structuredMetadata', 3, 'LabelPairAdapter', 'repeated'))
    // Query-side field and an invented one: the decoder must skip both.
    .add(new protobuf.Field('parsed', 4, 'LabelPairAdapter', 'repeated'))
    .add(new protobuf.Field('futureFixed64', 15, 'fixed64')),
)
ns.add(
  new protobuf.Type('StreamAdapter')
    .add(new protobuf.Field('labels', 1, 'string'))
    .add(new protobuf.Field('entries', 2, 'EntryAdapter', 'repeated'))
    .add(new protobuf.Field('hash', 3, 'uint64'))
    .add(new protobuf.Field('futureFixed32', 9, 'fixed32')),
)
ns.add(
  new protobuf.Type('PushRequest')
    .add(new protobuf.Field('streams', 1, 'StreamAdapter', 'repeated'))
    .add(new protobuf.Field('futureBytes', 7, 'bytes')),
)
const PushRequestType = root.lookupType('logproto.PushRequest')

// ---------------------------------------------------------------------------------------------
// HTTP helpers: every response body is consumed.

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

async function post(
  url: string,
  body: Buffer | string,
  headers: Record<string, string>,
  opts: { signal?: AbortSignal; dispatcher?: Dispatcher; method?: Dispatcher.HttpMethod } = {},
): Promise<Reply> {
  const res = await request(url, { method: opts.method ?? 'POST', body, headers, signal: opts.signal, dispatcher: opts.dispatcher })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text }
}

function pushBody(srv: LokiTestServer, encoded: EncodedBody, extra: Record<string, string> = {}, opts: Parameters<typeof post>[3] = {}) {
  const headers: Record<string, string> = { 'content-type': encoded.contentType, ...extra }
  if (encoded.contentEncoding !== undefined) headers['content-encoding'] = encoded.contentEncoding
  return post(srv.pushUrl, encoded.body, headers, opts)
}

function pushProto(srv: LokiTestServer, streams: BatchStream[], extra: Record<string, string> = {}, opts: Parameters<typeof post>[3] = {}) {
  return pushBody(srv, { body: compressSync(encodeProtobuf(streams)), contentType: 'application/x-protobuf', contentEncoding: undefined }, extra, opts)
}

const one = () => [mkStream({ app: 'x' }, [mkEntry(T0, 0, 'line one'), mkEntry(T0, 1, 'line two')])]

// ---------------------------------------------------------------------------------------------

describe('decodePushRequest', () => {
  it('decodes the client encoder output exactly: unicode, metadata, escaped labels, ns timestamps', () => {
    const streams = tricky()
    expect(decodePushRequest(encodeProtobuf(streams))).toEqual(expectedDecoded(streams))
  })

  it('agrees with protobufjs on messages it encodes, skipping fields it does not know', () => {
    const message = PushRequestType.fromObject({
      futureBytes: Buffer.from([1, 2, 3]),
      streams: [
        {
          labels: '{app="a\\"b", job="x\\\\y\\nz"}',
          hash: '18446744073709551615',
          futureFixed32: 7,
          entries: [
            {
              timestamp: { seconds: '1732886400', nanos: 123_456_789 },
              line: 'π ≈ 3.14159 🥧',
              structuredMetadata: [
                { name: 'trace_id', value: 'abc' },
                { name: 'span', value: 'ünï' },
              ],
              parsed: [{ name: 'ignored', value: 'query side only' }],
              futureFixed64: '12345678901234',
            },
            // Year 9999: seconds beyond 32 bits.
            { timestamp: { seconds: '253402300799', nanos: 999_999_999 }, line: 'far future' },
            // Before the epoch: negative seconds travel as a 10-byte varint.
            { timestamp: { seconds: '-1', nanos: 5 }, line: 'before epoch' },
            { line: 'no timestamp at all' },
          ],
        },
      ],
    })
    const bytes = PushRequestType.encode(message).finish()
    expect(decodePushRequest(bytes)).toEqual({
      streams: [
        {
          labels: { app: 'a"b', job: 'x\\y\nz' },
          entries: [
            { timestamp: '1732886400123456789', line: 'π ≈ 3.14159 🥧', metadata: { trace_id: 'abc', span: 'ünï' } },
            { timestamp: '253402300799999999999', line: 'far future' },
            { timestamp: '-999999995', line: 'before epoch' },
            { timestamp: '0', line: 'no timestamp at all' },
          ],
        },
      ],
    })
  })

  it('produces bytes protobufjs decodes to the same values', () => {
    const streams = tricky()
    const decoded = PushRequestType.toObject(PushRequestType.decode(encodeProtobuf(streams)), { longs: String, defaults: true })
    expect(decoded.streams).toHaveLength(streams.length)
    streams.forEach((s, si) => {
      const got = decoded.streams[si]
      expect(got.labels).toBe(s.selector)
      expect(got.hash).toBe('0') // field 3 must not be sent
      expect(got.entries).toHaveLength(s.entries.length)
      s.entries.forEach((e, ei) => {
        const g = got.entries[ei]
        const seconds = Math.floor(e.ms / 1000)
        expect(g.timestamp.seconds).toBe(String(seconds))
        expect(g.timestamp.nanos).toBe((e.ms - seconds * 1000) * 1_000_000 + e.ns)
        expect(g.line).toBe(e.line)
        const meta = (g.structuredMetadata as Array<{ name: string; value: string }>).flatMap((p) => [p.name, p.value])
        expect(meta).toEqual(e.meta ?? [])
      })
    })
  })

  it('skips unknown fields of every wire type, groups included', () => {
    const w = protobuf.Writer.create()
    w.uint32((20 << 3) | 0).uint64('18446744073709551615') // varint
    w.uint32((21 << 3) | 1).fixed64(42) // 64-bit
    w.uint32((22 << 3) | 5).fixed32(7) // 32-bit
    w.uint32((23 << 3) | 3) // group containing a nested group and a length-delimited field
    w.uint32((1 << 3) | 2).string('not a stream')
    w.uint32((2 << 3) | 3).uint32((1 << 3) | 0).uint32(5).uint32((2 << 3) | 4)
    w.uint32((23 << 3) | 4)
    w.uint32((1 << 3) | 2).fork()
    w.uint32((1 << 3) | 2).string('{app="g"}')
    w.uint32((2 << 3) | 2).fork().uint32((2 << 3) | 2).string('kept').uint32((30 << 3) | 3).uint32((30 << 3) | 4).ldelim()
    w.ldelim()
    expect(decodePushRequest(w.finish())).toEqual({ streams: [{ labels: { app: 'g' }, entries: [{ timestamp: '0', line: 'kept' }] }] })
  })

  it.each([
    ['a truncated varint', Buffer.from([0x0a, 0x80]), /truncated varint/],
    ['a length running past the end', Buffer.from([0x0a, 0x05, 0x0a]), /runs past the end/],
    ['an invalid wire type', Buffer.from([0x2f]), /invalid wire type 7/],
    ['field number 0', Buffer.from([0x02, 0x00]), /field number 0/],
    ['an 11-byte varint', Buffer.from([0x28, ...Array(10).fill(0xff), 0x01]), /longer than 10 bytes/],
    ['a known field with the wrong wire type', Buffer.from([0x08, 0x01]), /wire type 0, expected 2/],
    ['a stray end-group', Buffer.from([0x2c]), /unexpected end-group/],
    ['invalid UTF-8', Buffer.from([0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28]), /not valid UTF-8/],
    ['a stream without labels', Buffer.from([0x0a, 0x00]), /stream without labels/],
    ['an unparsable selector', Buffer.from([0x0a, 0x05, 0x0a, 0x03, 0x61, 0x3d, 0x62]), /couldn't parse labels/],
  ])('throws a clear error on %s', (_what, bytes, message) => {
    expect(() => decodePushRequest(bytes)).toThrow(message)
  })
})

describe('parseSelector', () => {
  it('parses escapes and sorts names', () => {
    expect(parseSelector(' { z = "1" ,a="q\\"uote", b="back\\\\slash\\nnl\\t\\u00e9",} ')).toEqual({
      a: 'q"uote',
      b: 'back\\slash\nnl\té',
      z: '1',
    })
    expect(Object.keys(parseSelector('{z="1", a="2", m="3"}'))).toEqual(['a', 'm', 'z'])
    expect(parseSelector('{}')).toEqual({})
  })

  it.each([
    ['app="x"', /expected '\{'/],
    ['{app="x"', /expected ',' or '}'|missing closing/],
    ['{app="x}', /unterminated value/],
    ['{app="x", app="y"}', /duplicate label name "app"/],
    ['{1app="x"}', /label name should start/],
    ['{app="a\nb"}', /raw newline/],
    ['{app="\\q"}', /unsupported escape/],
    ['{app="x"} extra', /trailing characters/],
    ['{app=x}', /expected '"'/],
  ])('rejects %j', (selector, message) => {
    expect(() => parseSelector(selector)).toThrow(message)
  })
})

describe('decodeJsonPush', () => {
  it('decodes the client JSON encoder output to the same shape as protobuf', () => {
    const streams = tricky()
    expect(decodeJsonPush(encodeJson(streams))).toEqual(expectedDecoded(streams))
    expect(decodeJsonPush(Buffer.from(encodeJson(streams)))).toEqual(decodePushRequest(encodeProtobuf(streams)))
  })

  it('treats an empty metadata object as none and canonicalises timestamps', () => {
    expect(decodeJsonPush('{"streams":[{"stream":{"a":"b"},"values":[["0001","l",{}]]}]}')).toEqual({
      streams: [{ labels: { a: 'b' }, entries: [{ timestamp: '1', line: 'l' }] }],
    })
  })

  it.each([
    ['not json', /malformed JSON push/],
    ['{}', /"streams" array/],
    ['{"streams":[{"stream":{"a":1},"values":[]}]}', /stream\.a must be a string/],
    ['{"streams":[{"stream":{"a":"b"},"values":[[1,"x"]]}]}', /decimal string/],
    ['{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}', /\[timestamp, line\]/],
    ['{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}', /\[1\] must be a string/],
    ['{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":2}]]}]}', /\[2\]\.k must be a string/],
    ['{"streams":[{"stream":{"a":"b"}}]}', /values must be an array/],
  ])('rejects %j', (text, message) => {
    expect(() => decodeJsonPush(text)).toThrow(message)
  })
})

describe('createLokiTestServer', () => {
  let srv: LokiTestServer

  beforeEach(async () => {
    srv = await createLokiTestServer()
  })

  afterEach(async () => {
    await srv.close()
  })

  it('listens on 127.0.0.1 with an ephemeral port', () => {
    expect(srv.port).toBeGreaterThan(0)
    expect(srv.url).toBe(`http://127.0.0.1:${srv.port}`)
    expect(srv.pushUrl).toBe(`${srv.url}/loki/api/v1/push`)
  })

  it('round-trips protobuf + snappy from encodeBody, recording tenant and request details', async () => {
    const streams = tricky()
    const encoded = await encodeBody(encodeStreams(streams), { encoding: 'protobuf', gzipLevel: 0 })
    const reply = await pushBody(srv, encoded, { 'x-scope-orgid': 'team-a' })
    expect(reply).toMatchObject({ status: 204, text: '' })

    const expected = expectedDecoded(streams).streams.flatMap((s) =>
      s.entries.map((e) => ({ labels: s.labels, stream: selectorOf(s.labels), tenant: 'team-a', ...e })),
    )
    expect(srv.entries).toEqual(expected)
    expect(srv.entries[0]!.stream).toBe('{app="api", level="info"}')
    expect(srv.entries.find((e) => e.line === 'epoch zero')!.stream).toBe('{app="quote\\"back\\\\slash\\nnewline", env="τεστ"}')
    expect(srv.requests).toHaveLength(1)
    expect(srv.requests[0]).toMatchObject({
      method: 'POST',
      path: '/loki/api/v1/push',
      status: 204,
      contentType: 'application/x-protobuf',
      tenant: 'team-a',
      bodyBytes: encoded.body.length,
      entries: 6,
      stored: 6,
    })
    expect(srv.requests[0]!.headers['x-scope-orgid']).toBe('team-a')
    expect(srv.requests[0]!.fault).toBeUndefined()
  })

  it('accepts JSON + gzip from encodeBody', async () => {
    const streams = tricky()
    const encoded = await encodeBody(encodeStreams(streams), { encoding: 'json', gzipLevel: 6 })
    expect(encoded.contentEncoding).toBe('gzip')
    expect((await pushBody(srv, encoded)).status).toBe(204)
    expect(srv.entries.map(({ labels, timestamp, line, metadata }) => ({ labels, timestamp, line, metadata }))).toEqual(
      expectedDecoded(streams).streams.flatMap((s) => s.entries.map((e) => ({ labels: s.labels, metadata: undefined, ...e }))),
    )
    expect(srv.entries[0]!.tenant).toBeUndefined()
    expect(srv.requests[0]).toMatchObject({ contentType: 'application/json', contentEncoding: 'gzip', status: 204 })
  })

  it('accepts deflate both raw and zlib-wrapped, and snappy as a content encoding', async () => {
    const json = Buffer.from(encodeJson(one()))
    const proto = compressSync(encodeProtobuf(one()))
    const replies = [
      await post(srv.pushUrl, deflateRawSync(json), { 'content-type': 'application/json', 'content-encoding': 'deflate' }),
      await post(srv.pushUrl, deflateSync(json), { 'content-type': 'application/json; charset=utf-8', 'content-encoding': 'deflate' }),
      await post(srv.pushUrl, proto, { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' }),
      await post(srv.pushUrl, gzipSync(proto), { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }),
    ]
    expect(replies.map((r) => r.status)).toEqual([204, 204, 204, 204])
    expect(srv.entries).toHaveLength(2)
    expect(srv.duplicates).toBe(6)
  })

  it('answers 400 with a text message for bad encodings and malformed bodies, storing nothing', async () => {
    const proto = compressSync(encodeProtobuf(one()))
    const cases: Array<[Buffer | string, Record<string, string>, RegExp]> = [
      [proto, { 'content-type': 'application/x-protobuf', 'content-encoding': 'br' }, /Content-Encoding "br" not supported/],
      [proto, {}, /mime: no media type/],
      [encodeProtobuf(one()), { 'content-type': 'application/x-protobuf' }, /snappy|malformed protobuf/],
      [compressSync(Buffer.from([0x0a, 0x05, 0x0a])), { 'content-type': 'application/x-protobuf' }, /runs past the end/],
      ['{"streams":[{"stream":{"a":"b"},"values":[[1,"x"]]}]}', { 'content-type': 'application/json' }, /decimal string/],
      ['not gzip', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, /gzip/],
    ]
    for (const [body, headers, message] of cases) {
      const reply = await post(srv.pushUrl, body, headers)
      expect(reply.status, String(message)).toBe(400)
      expect(reply.text).toMatch(message)
      expect(reply.text.endsWith('\n')).toBe(true)
      expect(String(reply.headers['content-type'])).toMatch(/^text\/plain/)
    }
    expect(srv.entries).toEqual([])
    expect(srv.requests.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 400])
    expect(srv.requests.every((r) => r.error !== undefined && r.stored === 0)).toBe(true)
  })

  it('answers 404 for other paths and 405 for other methods without consuming faults', async () => {
    srv.queueFaults({ type: 'status', status: 503 })
    const notFound = await post(`${srv.url}/api/prom/push`, 'x', { 'content-type': 'application/json' })
    expect(notFound).toMatchObject({ status: 404, text: '404 page not found\n' })
    const wrongMethod = await request(srv.pushUrl, { method: 'GET' })
    await wrongMethod.body.dump()
    expect(wrongMethod.statusCode).toBe(405)
    expect((await pushProto(srv, one())).status).toBe(503)
    expect(srv.requests.map((r) => [r.path, r.status])).toEqual([
      ['/api/prom/push', 404],
      ['/loki/api/v1/push', 405],
      ['/loki/api/v1/push', 503],
    ])
  })

  it('deduplicates on (tenant, stream, timestamp, line, metadata) and counts the duplicates', async () => {
    const base = [mkStream({ app: 'x' }, [mkEntry(T0, 0, 'a'), mkEntry(T0, 0, 'b', { k: 'v' })])]
    expect((await pushProto(srv, base)).status).toBe(204)
    expect((await pushProto(srv, base)).status).toBe(204) // a retry: all duplicates
    expect(srv.entries).toHaveLength(2)
    expect(srv.duplicates).toBe(2)
    expect(srv.requests.map((r) => [r.entries, r.stored])).toEqual([
      [2, 2],
      [2, 0],
    ])

    // Each differs from a stored entry in one component of the key, so each is kept.
    const variants = [
      mkStream({ app: 'y' }, [mkEntry(T0, 0, 'a')]),
      mkStream({ app: 'x' }, [mkEntry(T0, 1, 'a')]),
      mkStream({ app: 'x' }, [mkEntry(T0, 0, 'a ')]),
      mkStream({ app: 'x' }, [mkEntry(T0, 0, 'b', { k: 'w' }), mkEntry(T0, 0, 'b')]),
    ]
    expect((await pushProto(srv, variants)).status).toBe(204)
    expect((await pushProto(srv, base, { 'x-scope-orgid': 'other' })).status).toBe(204)
    expect(srv.entries).toHaveLength(2 + 5 + 2)
    expect(srv.duplicates).toBe(2)

    // Metadata order does not matter; a duplicate inside one request is caught too.
    const reordered = [mkStream({ app: 'z' }, [mkEntry(T0, 0, 'm', { a: '1', b: '2' }), mkEntry(T0, 0, 'm', { b: '2', a: '1' })])]
    expect((await pushProto(srv, reordered)).status).toBe(204)
    expect(srv.duplicates).toBe(3)
  })

  describe('faults', () => {
    it('status: passes Retry-After through and stores nothing', async () => {
      srv.setFault({ type: 'status', status: 429, body: 'Ingestion rate limit exceeded\n', headers: { 'Retry-After': '7' } })
      const reply = await pushProto(srv, one())
      expect(reply.status).toBe(429)
      expect(reply.headers['retry-after']).toBe('7')
      expect(reply.text).toBe('Ingestion rate limit exceeded\n')
      expect(srv.entries).toEqual([])
      expect(srv.requests[0]).toMatchObject({ status: 429, fault: 'status', entries: 2, stored: 0 })
    })

    it('status 260: a 2xx that stores nothing', async () => {
      srv.setFault({ type: 'status', status: 260 })
      const reply = await pushProto(srv, one())
      expect(reply.status).toBe(260)
      expect(srv.entries).toEqual([])
    })

    it('queued faults run once each, in arrival order, before the persistent one', async () => {
      srv.setFault({ type: 'status', status: 401, body: 'no org id\n' })
      srv.queueFaults({ type: 'status', status: 500 }, { type: 'status', status: 503 }, { type: 'accept' })
      const statuses: number[] = []
      for (let i = 0; i < 4; i++) statuses.push((await pushProto(srv, one())).status)
      expect(statuses).toEqual([500, 503, 204, 401])
      srv.setFault(null)
      expect((await pushProto(srv, one())).status).toBe(204)
      expect(srv.requests.map((r) => r.fault)).toEqual(['status', 'status', undefined, 'status', undefined])
    })

    it('largeBody: stores the entries and answers a body of the requested size', async () => {
      srv.setFault({ type: 'largeBody', bytes: 1024 * 1024 })
      const reply = await pushProto(srv, one())
      expect(reply.status).toBe(200)
      expect(reply.text.length).toBe(1024 * 1024)
      expect(srv.entries).toHaveLength(2)
      srv.setFault({ type: 'largeBody', bytes: 10, status: 500 })
      const second = await pushProto(srv, [mkStream({ app: 'x' }, [mkEntry(T0, 9, 'three')])])
      expect(second).toMatchObject({ status: 500, text: 'xxxxxxxxxx' })
      expect(srv.entries).toHaveLength(3)
    })

    it('partial: stores the accepted entries and lists the rejected ones like Loki', async () => {
      srv.setFault({
        type: 'partial',
        reject: (e) => (e.line.startsWith('custom') ? 'custom reason' : e.line.startsWith('old')),
      })
      const streams = [
        mkStream({ app: 'x' }, [mkEntry(T0, 0, 'good 1'), mkEntry(T0, 1, 'old 1')]),
        mkStream({ app: 'y' }, [mkEntry(T0, 2, 'custom 1'), mkEntry(T0, 3, 'good 2')]),
      ]
      const reply = await pushProto(srv, streams)
      expect(reply.status).toBe(400)
      expect(String(reply.headers['content-type'])).toMatch(/^text\/plain/)
      const lines = reply.text.split('\n')
      expect(lines).toHaveLength(3)
      expect(lines[0]).toMatch(/^entry for stream '\{app="x"\}' has timestamp too old: 2024-11-29T13:20:00\.123Z/)
      expect(lines[1]).toBe('custom reason')
      expect(lines[2]).toBe('')
      expect(srv.entries.map((e) => e.line)).toEqual(['good 1', 'good 2'])
      expect(srv.requests[0]).toMatchObject({ entries: 4, stored: 2, status: 400, fault: 'partial' })

      srv.setFault({ type: 'partial', reject: () => false })
      expect((await pushProto(srv, one())).status).toBe(204)
    })

    it('partial: a throwing reject callback becomes a 500, not an uncaught exception', async () => {
      srv.setFault({
        type: 'partial',
        reject: () => {
          throw new Error('bad callback')
        },
      })
      const reply = await pushProto(srv, one())
      expect(reply).toMatchObject({ status: 500, text: 'test server fault handler threw: bad callback\n' })
      expect(srv.requests[0]!.error).toMatch(/bad callback/)
    })

    it('stall: never answers; the exchange ends when the client aborts', async () => {
      srv.setFault({ type: 'stall' })
      const ac = new AbortController()
      const pending = pushProto(srv, one(), {}, { signal: ac.signal })
      const settled = expect(pending).rejects.toThrow(/abort/i)
      await srv.waitFor((s) => s.requests.length === 1)
      expect(srv.requests[0]).toMatchObject({ status: 0, fault: 'stall', entries: 2, stored: 0 })
      expect(srv.requests[0]!.durationMs).toBeUndefined()
      expect(srv.connections.open).toBe(1)
      ac.abort()
      await settled
      await srv.waitFor((s) => s.requests[0]!.durationMs !== undefined)
      expect(srv.requests[0]!.status).toBe(0)
      expect(srv.entries).toEqual([])
    })

    it('slowHeaders: stores on arrival and answers after the delay, then as the inner fault', async () => {
      srv.setFault({ type: 'slowHeaders', delayMs: 150 })
      const started = Date.now()
      const pending = pushProto(srv, one())
      await srv.waitFor((s) => s.entries.length === 2)
      expect(srv.requests[0]).toMatchObject({ status: 0, fault: 'slowHeaders' })
      const reply = await pending
      expect(reply.status).toBe(204)
      expect(Date.now() - started).toBeGreaterThanOrEqual(140)

      srv.setFault({ type: 'slowHeaders', delayMs: 20, then: { type: 'status', status: 503 } })
      expect((await pushProto(srv, [mkStream({ app: 'x' }, [mkEntry(T0, 5, 'not stored')])])).status).toBe(503)
      expect(srv.entries).toHaveLength(2)
    })

    it('slowHeaders: a client timeout leaves the entries stored, so the retry is a duplicate', async () => {
      srv.queueFaults({ type: 'slowHeaders', delayMs: 10_000 })
      const ac = new AbortController()
      const first = pushProto(srv, one(), {}, { signal: ac.signal })
      const firstSettled = expect(first).rejects.toThrow(/abort/i)
      await srv.waitFor((s) => s.entries.length === 2)
      ac.abort()
      await firstSettled
      expect((await pushProto(srv, one())).status).toBe(204)
      expect(srv.entries).toHaveLength(2)
      expect(srv.duplicates).toBe(2)
    })

    it('slowBody: trickles a declared-length body and stores the entries', async () => {
      srv.setFault({ type: 'slowBody', chunkBytes: 16, chunks: 4, intervalMs: 15 })
      const started = Date.now()
      const res = await request(srv.pushUrl, {
        method: 'POST',
        body: compressSync(encodeProtobuf(one())),
        headers: { 'content-type': 'application/x-protobuf' },
      })
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-length']).toBe('64')
      const text = await res.body.text()
      expect(text).toBe('x'.repeat(64))
      expect(Date.now() - started).toBeGreaterThanOrEqual(4 * 15 - 5)
      expect(srv.entries).toHaveLength(2)
    })

    it('reset: the client sees a socket error and nothing is stored', async () => {
      srv.setFault({ type: 'reset' })
      const err = await pushProto(srv, one()).then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      )
      expect(err).toBeInstanceOf(Error)
      expect(err!.code).toMatch(/ECONNRESET|UND_ERR_SOCKET/)
      await srv.waitFor((s) => s.requests[0]?.durationMs !== undefined)
      expect(srv.requests[0]).toMatchObject({ status: 0, fault: 'reset' })
      expect(srv.entries).toEqual([])
    })

    it('closeAfterHeaders: the entries are stored, the client gets a 200 and then loses the body', async () => {
      srv.setFault({ type: 'closeAfterHeaders' })
      let status: number | undefined
      const err = await (async () => {
        const res = await request(srv.pushUrl, {
          method: 'POST',
          body: compressSync(encodeProtobuf(one())),
          headers: { 'content-type': 'application/x-protobuf' },
        })
        status = res.statusCode
        await res.body.text()
      })().then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      )
      expect(err).toBeInstanceOf(Error)
      expect(err!.code).toMatch(/UND_ERR_SOCKET|ECONNRESET|UND_ERR_RES_CONTENT_LENGTH_MISMATCH/)
      expect(status).toBe(200)
      await srv.waitFor((s) => s.requests[0]?.durationMs !== undefined)
      expect(srv.requests[0]).toMatchObject({ status: 200, fault: 'closeAfterHeaders' })
      expect(srv.entries.map((e) => e.line)).toEqual(['line one', 'line two'])
    })
  })

  it('counts open, peak and total connections', async () => {
    srv.setFault({ type: 'stall' })
    const clients = [new Client(srv.url), new Client(srv.url), new Client(srv.url)]
    const changes: number[] = []
    const onChange = (s: LokiTestServer) => changes.push(s.connections.open)
    srv.on('change', onChange)
    try {
      const settled = Promise.allSettled(clients.map((c) => pushProto(srv, one(), {}, { dispatcher: c })))
      await srv.waitFor((s) => s.connections.open === 3 && s.requests.length === 3)
      expect(srv.connections).toEqual({ open: 3, peak: 3, total: 3 })
      // Destroying the clients rather than aborting requests: an aborted undici Client may dial
      // again, which would make the totals depend on the client's internals.
      await Promise.all(clients.map((c) => c.destroy()))
      const results = await settled
      expect(results.every((r) => r.status === 'rejected')).toBe(true)
      await srv.waitFor((s) => s.connections.open === 0)
      expect(srv.connections).toEqual({ open: 0, peak: 3, total: 3 })
      expect(Math.max(...changes)).toBe(3)
      expect(srv.requests.every((r) => r.status === 0 && r.durationMs !== undefined)).toBe(true)

      srv.reset()
      expect(srv.connections).toEqual({ open: 0, peak: 0, total: 0 })
      expect(srv.requests).toEqual([])
      const fresh = new Client(srv.url)
      clients.push(fresh)
      expect((await pushProto(srv, one(), {}, { dispatcher: fresh })).status).toBe(204) // reset cleared the stall
      expect(srv.connections).toMatchObject({ open: 1, peak: 1, total: 1 })
    } finally {
      srv.off('change', onChange)
      await Promise.all(clients.map((c) => c.destroy()))
    }
  })

  it('emits request events when an exchange ends', async () => {
    const seen: number[] = []
    const onRequest = (r: { status: number }) => seen.push(r.status)
    srv.on('request', onRequest)
    srv.queueFaults({ type: 'status', status: 500 })
    await pushProto(srv, one())
    await pushProto(srv, one())
    await srv.waitFor(() => seen.length === 2)
    srv.off('request', onRequest)
    expect(seen).toEqual([500, 204])
  })

  it('reset() forgets entries, requests, duplicates and faults', async () => {
    await pushProto(srv, one())
    await pushProto(srv, one())
    srv.setFault({ type: 'status', status: 500 })
    srv.queueFaults({ type: 'status', status: 503 })
    srv.reset()
    expect(srv.entries).toEqual([])
    expect(srv.requests).toEqual([])
    expect(srv.duplicates).toBe(0)
    expect((await pushProto(srv, one())).status).toBe(204)
    expect(srv.entries).toHaveLength(2) // the dedup memory went too
  })

  it('waitFor rejects clearly on timeout, on a throwing predicate, and when the server closes', async () => {
    await expect(srv.waitFor((s) => s.entries.length > 0, { timeoutMs: 30 })).rejects.toThrow(
      /waitFor: timed out after 30 ms; condition: .*entries\.length > 0.*entries=0/,
    )
    await expect(
      srv.waitFor(() => {
        throw new Error('predicate blew up')
      }),
    ).rejects.toThrow('predicate blew up')
    const pending = srv.waitFor((s) => s.entries.length > 0, { timeoutMs: 10_000 })
    const rejected = expect(pending).rejects.toThrow(/server closed before the condition held/)
    await srv.close()
    await rejected
    await expect(srv.waitFor(() => false)).rejects.toThrow(/server is closed/)
    await expect(srv.waitFor(() => true)).resolves.toBeUndefined()
  })

  it('close() ends a stalled request, is idempotent and leaves no sockets, servers or timers behind', async () => {
    const count = () => {
      const tally: Record<string, number> = {}
      for (const r of process.getActiveResourcesInfo()) tally[r] = (tally[r] ?? 0) + 1
      return { tcp: tally.TCPSocketWrap ?? 0, server: tally.TCPServerWrap ?? 0 }
    }
    await srv.close() // the shared one; this test makes its own
    const before = count()
    // Timers are tracked from here rather than counted: the resource list misses unref'd ones,
    // and its count moves with timers of the test runner's that start or end meanwhile.
    const timers = trackTimers()

    const own = await createLokiTestServer()
    own.queueFaults({ type: 'stall' }, { type: 'slowHeaders', delayMs: 60_000 }, { type: 'slowBody', chunkBytes: 1, chunks: 1000, intervalMs: 60_000 })
    const clients = [new Client(own.url), new Client(own.url), new Client(own.url)]
    try {
      const pending = clients.map((c) => pushProto(own, one(), {}, { dispatcher: c }).catch((e: unknown) => e as Error))
      await own.waitFor((s) => s.requests.length === 3 && s.connections.open === 3)
      expect(count().server).toBe(before.server + 1)

      // A waiter on a condition that close() itself brings about resolves instead of rejecting.
      const drained = own.waitFor((s) => s.connections.open === 0)
      const closing = own.close()
      expect(own.close()).toBe(closing)
      await closing
      await drained
      await own.close()
      // The slowBody exchange had its headers; the others never got a byte.
      const results = await Promise.all(pending)
      expect(results.filter((r) => r instanceof Error)).toHaveLength(3)
      expect(own.connections.open).toBe(0)
      expect(own.requests.every((r) => r.durationMs !== undefined)).toBe(true)
    } finally {
      await Promise.all(clients.map((c) => c.destroy()))
    }
    expect(count()).toEqual(before)
    // The server's and undici's timers end at once or on their next tick; the slow faults' are a minute long.
    await waitUntil(() => timers.live().length === 0, 'timers to end', 10_000).catch(() => {})
    timers.stop()
    expect(timers.live()).toEqual([])
  })
})
