import type { PlainStream } from '../model/types.js'
import { EntryBuffer, midpoint } from './entries.js'
import { TAG_1_LEN, varintSize, writeString, writeVarint } from './protobuf.js'

/** A stream inside an encoded batch: its labels and where its entry records sit. */
export interface StreamSpan {
  /** Label set, names sorted. */
  readonly labels: Readonly<Record<string, string>>
  /** Prometheus-style selector, e.g. `{app="api", level="info"}`, as protobuf wants it. */
  readonly selector: string
  /** The stream's entry records are `request[start, end)`, oldest first. */
  readonly start: number
  readonly end: number
  readonly count: number
}

/**
 * A batch as the pipeline holds it: an uncompressed logproto.PushRequest (snappy turns it into
 * the protobuf body; the JSON body is transcoded from it) plus where each stream's entries are,
 * which is what a 413 split needs.
 */
export interface EncodedBatch {
  readonly request: Buffer
  readonly streams: readonly StreamSpan[]
}

/** One stream's part of a request to build: labels and its already-encoded entry records. */
export interface StreamPart {
  readonly labels: Readonly<Record<string, string>>
  readonly selector: string
  readonly records: Buffer
  readonly count: number
}

/** Puts stream headers in front of encoded records: one exactly-sized buffer, one copy per stream. */
export function buildRequest(parts: readonly StreamPart[]): EncodedBatch {
  const selectorBytes = new Array<number>(parts.length)
  const streamSizes = new Array<number>(parts.length)
  let total = 0
  for (let s = 0; s < parts.length; s++) {
    const part = parts[s]!
    const sb = Buffer.byteLength(part.selector)
    const size = 1 + varintSize(sb) + sb + part.records.length
    selectorBytes[s] = sb
    streamSizes[s] = size
    total += 1 + varintSize(size) + size
  }
  const request = Buffer.allocUnsafe(total)
  const streams = new Array<StreamSpan>(parts.length)
  let pos = 0
  for (let s = 0; s < parts.length; s++) {
    const part = parts[s]!
    request[pos++] = TAG_1_LEN
    pos = writeVarint(request, pos, streamSizes[s]!)
    request[pos++] = TAG_1_LEN
    pos = writeVarint(request, pos, selectorBytes[s]!)
    pos = writeString(request, pos, part.selector, selectorBytes[s]!)
    const start = pos
    pos += part.records.copy(request, pos)
    streams[s] = { labels: part.labels, selector: part.selector, start, end: pos, count: part.count }
  }
  if (pos !== total) throw new Error(`protobuf size mismatch: wrote ${pos} of ${total} bytes`)
  return { request, streams }
}

function partsOf(batch: EncodedBatch, streams: readonly StreamSpan[]): StreamPart[] {
  return streams.map((s) => ({ labels: s.labels, selector: s.selector, records: batch.request.subarray(s.start, s.end), count: s.count }))
}

/**
 * Halves a batch that Loki found too large (413): by stream when there are several, by entries
 * inside a single one. The caller makes sure there are at least two entries.
 */
export function halveBatch(batch: EncodedBatch): [EncodedBatch, EncodedBatch] {
  const streams = batch.streams
  if (streams.length > 1) {
    const mid = streams.length >> 1
    return [buildRequest(partsOf(batch, streams.slice(0, mid))), buildRequest(partsOf(batch, streams.slice(mid)))]
  }
  const s = streams[0]!
  const cut = midpoint(batch.request, s.start, s.count)
  const head = s.count >> 1
  const part = (start: number, end: number, count: number): StreamPart => ({
    labels: s.labels,
    selector: s.selector,
    records: batch.request.subarray(start, end),
    count,
  })
  return [buildRequest([part(s.start, cut, head)]), buildRequest([part(cut, s.end, s.count - head)])]
}

export function entryCount(batch: EncodedBatch): number {
  let n = 0
  for (const s of batch.streams) n += s.count
  return n
}

/**
 * Encodes plain streams the way the client does at push: for tools and tests that start from
 * entries rather than from push(). Each stream's entries come out sorted by time (a stable sort).
 */
export function encodeStreams(streams: readonly PlainStream[]): EncodedBatch {
  return buildRequest(
    streams.map((s) => {
      const entries = new EntryBuffer()
      for (const e of s.entries) entries.append(e.ms, e.ns, e.line, Buffer.byteLength(e.line), e.meta)
      return { labels: s.labels, selector: s.selector, records: entries.records(), count: entries.count }
    }),
  )
}
