import { codecsSync } from './codecs.js'
import { labelsOfSelector, selectorOf } from '../model/labels.js'
import { readTimestamp, type TimestampParts } from '../model/timestamp.js'
import type { PlainEntry, PlainStream } from '../model/types.js'
import type { EncodedBody } from './index.js'
import { TAG_1_LEN, TAG_2_LEN } from './protobuf.js'
import { encodeStreams, type EncodedBatch, type StreamSpan } from './request.js'

/*
 * Reading back bodies this encoder wrote. A record replayed from the spool keeps only its wire
 * body, and splitting it on 413 needs its entries again. This reads the layout encodeBody()
 * produces and nothing more: it is not a general decoder (the testing module has that, and
 * stays independent of these encoders so it can check them). Every read is bounds-checked; a
 * body it does not recognise gives undefined rather than a guess.
 */

/** A varint at `pos` whose end stays within `end`: [value, next offset], or undefined. */
function varint(buf: Buffer, pos: number, end: number): [number, number] | undefined {
  let n = 0
  let mul = 1
  for (let i = 0; i < 8 && pos < end; i++) {
    const b = buf[pos++]!
    n += (b & 0x7f) * mul
    if (b < 0x80) return [n, pos]
    mul *= 0x80
  }
  return undefined
}

/** A length-delimited field at `pos` tagged `tag`: [start, end] of its bytes, or undefined. */
function field(buf: Buffer, pos: number, end: number, tag: number): [number, number] | undefined {
  if (pos >= end || buf[pos] !== tag) return undefined
  const len = varint(buf, pos + 1, end)
  if (len === undefined || len[1] + len[0] > end) return undefined
  return [len[1], len[1] + len[0]]
}

/**
 * An uncompressed PushRequest as buildRequest() lays it out: streams of (selector, entry
 * records). The records are used in place: they are the bytes writeRecord() wrote.
 */
function batchOfRequest(request: Buffer): EncodedBatch | undefined {
  const streams: StreamSpan[] = []
  let pos = 0
  while (pos < request.length) {
    const stream = field(request, pos, request.length, TAG_1_LEN)
    if (stream === undefined) return undefined
    const sel = field(request, stream[0], stream[1], TAG_1_LEN)
    if (sel === undefined) return undefined
    const selector = request.toString('utf8', sel[0], sel[1])
    const labels = labelsOfSelector(selector)
    if (labels === undefined) return undefined
    let count = 0
    for (let p = sel[1]; p < stream[1]; count++) {
      const record = field(request, p, stream[1], TAG_2_LEN)
      if (record === undefined) return undefined
      p = record[1]
    }
    streams.push({ labels, selector, start: sel[1], end: stream[1], count })
    pos = stream[1]
  }
  return { request, streams }
}

/** Epoch nanoseconds as a decimal string, as the JSON body has them, in the encoder's terms. */
function entryTime(ns: unknown, parts: TimestampParts): boolean {
  return typeof ns === 'string' && readTimestamp(ns, parts)
}

/** Loki's JSON push body as encodeJson() writes it, encoded again into records. */
function batchOfJson(json: string): EncodedBatch | undefined {
  const parsed = JSON.parse(json) as { streams?: unknown }
  if (!Array.isArray(parsed.streams)) return undefined
  const streams: PlainStream[] = []
  const parts: TimestampParts = { ms: 0, ns: 0, precise: false }
  for (const s of parsed.streams as Array<{ stream?: unknown; values?: unknown }>) {
    const labels = s.stream as Record<string, string>
    if (labels === null || typeof labels !== 'object' || !Array.isArray(s.values)) return undefined
    const entries: PlainEntry[] = []
    for (const v of s.values as unknown[][]) {
      if (!Array.isArray(v) || !entryTime(v[0], parts) || typeof v[1] !== 'string') return undefined
      const meta = v[2] as Record<string, string> | undefined
      entries.push({ ms: parts.ms, ns: parts.ns, line: v[1], meta: meta === undefined ? undefined : Object.entries(meta).flat() })
    }
    streams.push({ labels, selector: selectorOf(labels), entries })
  }
  return encodeStreams(streams)
}

/**
 * The batch a body came from, for a body encodeBody() wrote (protobuf with snappy, JSON plain
 * or gzipped). Undefined for any other body, or one that does not read back.
 */
export function batchOfBody(body: EncodedBody): EncodedBatch | undefined {
  try {
    if (body.contentType === 'application/x-protobuf' && body.contentEncoding === undefined) {
      return batchOfRequest(codecsSync().snappy.uncompressSync(body.body, { asBuffer: true }) as Buffer)
    }
    if (body.contentType === 'application/json') {
      if (body.contentEncoding === 'gzip') return batchOfJson(codecsSync().zlib.gunzipSync(body.body).toString('utf8'))
      if (body.contentEncoding === undefined) return batchOfJson(body.body.toString('utf8'))
    }
    return undefined
  } catch {
    return undefined
  }
}
