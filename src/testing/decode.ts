/*
 * Decoders for Loki push bodies, written independently of the client's encoders so that a test
 * which round-trips through both actually checks the wire format instead of agreeing with
 * itself. Every malformed input throws a plain Error whose message says what and where.
 *
 *   PushRequest      { repeated StreamAdapter streams = 1; }
 *   StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
 *   EntryAdapter     { Timestamp timestamp = 1; string line = 2; repeated LabelPairAdapter structuredMetadata = 3; }
 *   Timestamp        { int64 seconds = 1; int32 nanos = 2; }
 *   LabelPairAdapter { string name = 1; string value = 2; }
 */

import { gunzipSync, inflateRawSync, inflateSync } from 'node:zlib'
import { uncompressSync } from 'snappy'
import { isObject } from '../model/validate.js'

export interface DecodedEntry {
  /** Epoch nanoseconds as a canonical decimal string (no leading zeros). */
  timestamp: string
  line: string
  /** Structured metadata; absent when the entry carries none (Loki treats empty as none). */
  metadata?: Record<string, string>
}

export interface DecodedStream {
  /** Label set with names in sorted order. */
  labels: Record<string, string>
  entries: DecodedEntry[]
}

export interface DecodedPushRequest {
  streams: DecodedStream[]
}

const WIRE_VARINT = 0
const WIRE_I64 = 1
const WIRE_LEN = 2
const WIRE_SGROUP = 3
const WIRE_EGROUP = 4
const WIRE_I32 = 5

// fatal: a test receiver should expose an encoder that splits a multi-byte character, not hide it.
const utf8 = new TextDecoder('utf-8', { fatal: true })

class ProtoReader {
  pos: number
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start
  }

  fail(message: string): never {
    throw new Error(`malformed protobuf PushRequest: ${message} in ${this.what} at byte ${this.pos}`)
  }

  /**
   * Reads a varint as two unsigned 32-bit halves. JS bitwise operators work on 32 bits, so the
   * 64-bit value is assembled from halves rather than shifted as one number.
   */
  varint(): { lo: number; hi: number } {
    let lo = 0
    let hi = 0
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint')
      const b = this.buf[this.pos++]!
      const bits = b & 0x7f
      if (i < 4) {
        lo |= bits << (7 * i)
      } else if (i === 4) {
        lo |= (bits & 0x0f) << 28
        hi |= bits >>> 4
      } else {
        hi |= bits << (7 * i - 32)
      }
      if (b < 0x80) return { lo: lo >>> 0, hi: hi >>> 0 }
    }
    return this.fail('varint longer than 10 bytes')
  }

  /** An unsigned varint that must fit a JS number exactly (lengths, tags). */
  uint(): number {
    const { lo, hi } = this.varint()
    if (hi >= 0x200000) this.fail('varint too large')
    return hi * 0x100000000 + lo
  }

  int64(): bigint {
    const { lo, hi } = this.varint()
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo))
  }

  /** int32 fields are sign-extended to 64 bits on the wire; the low half carries the value. */
  int32(): number {
    return this.varint().lo | 0
  }

  tag(): { field: number; wire: number } {
    const tag = this.uint()
    const field = Math.floor(tag / 8)
    if (field === 0) this.fail('field number 0')
    return { field, wire: tag & 7 }
  }

  /** Returns the [start, end) range of a length-delimited field and moves past it. */
  bytes(): [number, number] {
    const len = this.uint()
    const start = this.pos
    if (len > this.end - start) this.fail(`length ${len} runs past the end (${this.end - start} bytes left)`)
    this.pos = start + len
    return [start, start + len]
  }

  string(): string {
    const [start, end] = this.bytes()
    try {
      return utf8.decode(this.buf.subarray(start, end))
    } catch {
      return this.fail('string is not valid UTF-8')
    }
  }

  expect(field: number, wire: number, want: number): void {
    if (wire !== want) this.fail(`field ${field} has wire type ${wire}, expected ${want}`)
  }

  skip(field: number, wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint()
        return
      case WIRE_I64:
        this.advance(8)
        return
      case WIRE_LEN:
        this.bytes()
        return
      case WIRE_I32:
        this.advance(4)
        return
      case WIRE_SGROUP:
        for (;;) {
          if (this.pos >= this.end) this.fail(`unterminated group ${field}`)
          const t = this.tag()
          if (t.wire === WIRE_EGROUP) {
            if (t.field !== field) this.fail(`group ${field} closed by end-group ${t.field}`)
            return
          }
          this.skip(t.field, t.wire)
        }
      case WIRE_EGROUP:
        return this.fail(`unexpected end-group ${field}`)
      default:
        return this.fail(`invalid wire type ${wire} for field ${field}`)
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) this.fail('truncated fixed-width field')
    this.pos += n
  }

  sub([start, end]: [number, number], what: string): ProtoReader {
    return new ProtoReader(this.buf, start, end, what)
  }
}

function readTimestamp(r: ProtoReader): string {
  let seconds = 0n
  let nanos = 0
  while (r.pos < r.end) {
    const { field, wire } = r.tag()
    if (field === 1) {
      r.expect(field, wire, WIRE_VARINT)
      seconds = r.int64()
    } else if (field === 2) {
      r.expect(field, wire, WIRE_VARINT)
      nanos = r.int32()
    } else {
      r.skip(field, wire)
    }
  }
  return (seconds * 1_000_000_000n + BigInt(nanos)).toString()
}

function readLabelPair(r: ProtoReader): [string, string] {
  let name = ''
  let value = ''
  while (r.pos < r.end) {
    const { field, wire } = r.tag()
    if (field === 1) {
      r.expect(field, wire, WIRE_LEN)
      name = r.string()
    } else if (field === 2) {
      r.expect(field, wire, WIRE_LEN)
      value = r.string()
    } else {
      r.skip(field, wire)
    }
  }
  return [name, value]
}

function readEntry(r: ProtoReader): DecodedEntry {
  let timestamp = '0'
  let line = ''
  let metadata: Record<string, string> | undefined
  while (r.pos < r.end) {
    const { field, wire } = r.tag()
    if (field === 1) {
      r.expect(field, wire, WIRE_LEN)
      timestamp = readTimestamp(r.sub(r.bytes(), 'Timestamp'))
    } else if (field === 2) {
      r.expect(field, wire, WIRE_LEN)
      line = r.string()
    } else if (field === 3) {
      r.expect(field, wire, WIRE_LEN)
      const [name, value] = readLabelPair(r.sub(r.bytes(), 'LabelPairAdapter'))
      metadata ??= {}
      metadata[name] = value
    } else {
      r.skip(field, wire)
    }
  }
  const entry: DecodedEntry = { timestamp, line }
  if (metadata !== undefined) entry.metadata = metadata
  return entry
}

function readStream(r: ProtoReader): DecodedStream {
  let selector: string | undefined
  const entries: DecodedEntry[] = []
  while (r.pos < r.end) {
    const { field, wire } = r.tag()
    if (field === 1) {
      r.expect(field, wire, WIRE_LEN)
      selector = r.string()
    } else if (field === 2) {
      r.expect(field, wire, WIRE_LEN)
      entries.push(readEntry(r.sub(r.bytes(), 'EntryAdapter')))
    } else {
      r.skip(field, wire)
    }
  }
  if (selector === undefined) r.fail('stream without labels')
  return { labels: parseSelector(selector), entries }
}

/** Decodes an uncompressed (already snappy-decoded) logproto.PushRequest. */
export function decodePushRequest(buf: Uint8Array): DecodedPushRequest {
  const r = new ProtoReader(buf, 0, buf.length, 'PushRequest')
  const streams: DecodedStream[] = []
  while (r.pos < r.end) {
    const { field, wire } = r.tag()
    if (field === 1) {
      r.expect(field, wire, WIRE_LEN)
      streams.push(readStream(r.sub(r.bytes(), 'StreamAdapter')))
    } else {
      r.skip(field, wire)
    }
  }
  return { streams }
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  '"': '"',
  "'": "'",
  n: '\n',
  t: '\t',
  r: '\r',
  a: '\x07',
  b: '\b',
  f: '\f',
  v: '\v',
}

function isNameStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_'
}

function isNameChar(c: string): boolean {
  return isNameStart(c) || (c >= '0' && c <= '9')
}

function sortedRecord(pairs: Array<[string, string]>): Record<string, string> {
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const out: Record<string, string> = {}
  for (const [k, v] of pairs) out[k] = v
  return out
}

/**
 * Parses a stream selector such as `{app="api", msg="say \"hi\"\n"}` into a label object with
 * names sorted. Values use Go string escapes, as Loki's parser does: a raw newline inside the
 * quotes is an error there, so it is one here too.
 */
export function parseSelector(selector: string): Record<string, string> {
  let i = 0
  const fail = (message: string): never => {
    throw new Error(`couldn't parse labels ${JSON.stringify(selector)}: ${message} at offset ${i}`)
  }
  const ws = () => {
    while (i < selector.length && (selector[i] === ' ' || selector[i] === '\t' || selector[i] === '\n' || selector[i] === '\r')) i++
  }
  const pairs: Array<[string, string]> = []
  const seen = new Set<string>()
  ws()
  if (selector[i] !== '{') fail("expected '{'")
  i++
  ws()
  while (selector[i] !== '}') {
    if (i >= selector.length) fail("missing closing '}'")
    const nameStart = i
    if (!isNameStart(selector[i]!)) fail(`unexpected character ${JSON.stringify(selector[i])} where a label name should start`)
    while (i < selector.length && isNameChar(selector[i]!)) i++
    const name = selector.slice(nameStart, i)
    ws()
    if (selector[i] !== '=') fail(`expected '=' after label name ${JSON.stringify(name)}`)
    i++
    ws()
    if (selector[i] !== '"') fail(`expected '"' to open the value of ${JSON.stringify(name)}`)
    i++
    let value = ''
    for (;;) {
      if (i >= selector.length) fail(`unterminated value for ${JSON.stringify(name)}`)
      const c = selector[i]!
      if (c === '"') {
        i++
        break
      }
      if (c === '\n') fail(`raw newline inside the value of ${JSON.stringify(name)}`)
      if (c !== '\\') {
        value += c
        i++
        continue
      }
      const e = selector[i + 1]
      if (e === undefined) fail('dangling backslash')
      const simple = SIMPLE_ESCAPES[e!]
      if (simple !== undefined) {
        value += simple
        i += 2
      } else if (e === 'u' || e === 'U') {
        const digits = e === 'u' ? 4 : 8
        const hex = selector.slice(i + 2, i + 2 + digits)
        if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex)) fail(`bad \\${e} escape`)
        const cp = Number.parseInt(hex, 16)
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(`invalid code point in \\${e} escape`)
        value += String.fromCodePoint(cp)
        i += 2 + digits
      } else {
        fail(`unsupported escape \\${e}`)
      }
    }
    if (seen.has(name)) fail(`duplicate label name ${JSON.stringify(name)}`)
    seen.add(name)
    pairs.push([name, value])
    ws()
    if (selector[i] === ',') {
      i++
      ws()
    } else if (selector[i] !== '}') {
      fail("expected ',' or '}'")
    }
  }
  i++
  ws()
  if (i !== selector.length) fail('trailing characters after the closing brace')
  return sortedRecord(pairs)
}

function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`
}

/** Formats labels the way Loki prints a stream: `{a="b", c="d"}`, names sorted, values escaped. */
export function formatSelector(labels: Readonly<Record<string, string>>): string {
  const names = Object.keys(labels).sort()
  return `{${names.map((n) => `${n}=${quote(labels[n]!)}`).join(', ')}}`
}

function stringRecord(v: unknown, where: string): Array<[string, string]> {
  if (!isObject(v)) throw new Error(`malformed JSON push: ${where} must be an object of strings`)
  const pairs: Array<[string, string]> = []
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new Error(`malformed JSON push: ${where}.${k} must be a string, got ${typeof val}`)
    pairs.push([k, val])
  }
  return pairs
}

/**
 * Decodes Loki's JSON push body: values are `[ts, line]` or `[ts, line, metadata]` with `ts` the
 * epoch nanoseconds as a decimal string (Loki rejects a JSON number there). Label values are kept
 * exactly as sent; Loki 2.9 is known to store JSON-pushed values containing `"`, `\` or a newline
 * double-escaped, a quirk this receiver does not imitate.
 */
export function decodeJsonPush(text: string | Uint8Array): DecodedPushRequest {
  let source: string
  if (typeof text === 'string') {
    source = text
  } else {
    try {
      source = utf8.decode(text)
    } catch {
      throw new Error('malformed JSON push: body is not valid UTF-8')
    }
  }
  let root: unknown
  try {
    root = JSON.parse(source)
  } catch (err) {
    throw new Error(`malformed JSON push: ${(err as Error).message}`)
  }
  if (!isObject(root) || !Array.isArray(root.streams)) {
    throw new Error('malformed JSON push: expected an object with a "streams" array')
  }
  const streams: DecodedStream[] = []
  root.streams.forEach((s: unknown, si: number) => {
    const where = `streams[${si}]`
    if (!isObject(s)) throw new Error(`malformed JSON push: ${where} must be an object`)
    const labels = sortedRecord(stringRecord(s.stream ?? {}, `${where}.stream`))
    if (!Array.isArray(s.values)) throw new Error(`malformed JSON push: ${where}.values must be an array`)
    const entries = s.values.map((v: unknown, vi: number): DecodedEntry => {
      const at = `${where}.values[${vi}]`
      if (!Array.isArray(v) || v.length < 2 || v.length > 3) {
        throw new Error(`malformed JSON push: ${at} must be [timestamp, line] or [timestamp, line, metadata]`)
      }
      const [ts, line, meta] = v as [unknown, unknown, unknown]
      if (typeof ts !== 'string' || !/^[0-9]+$/.test(ts)) {
        throw new Error(`malformed JSON push: ${at}[0] must be epoch nanoseconds as a decimal string, got ${JSON.stringify(ts)}`)
      }
      if (typeof line !== 'string') throw new Error(`malformed JSON push: ${at}[1] must be a string`)
      const entry: DecodedEntry = { timestamp: BigInt(ts).toString(), line }
      if (v.length === 3) {
        const pairs = stringRecord(meta, `${at}[2]`)
        if (pairs.length > 0) entry.metadata = Object.fromEntries(pairs)
      }
      return entry
    })
    streams.push({ labels, entries })
  })
  return { streams }
}

/** Mirrors Go's mime.ParseMediaType, which Loki runs first: a missing type is an error there. */
function mediaType(contentType: string | undefined): string {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase()
  if (type === '') throw new Error('mime: no media type')
  return type
}

function inflateEither(body: Buffer): Buffer {
  // Loki reads "deflate" as raw flate; many clients send zlib-wrapped data under that name.
  try {
    return inflateSync(body)
  } catch {
    return inflateRawSync(body)
  }
}

/** Decodes a push body the way Loki's push handler picks a decoder from the headers. */
export function decodeBody(body: Buffer, contentType: string | undefined, contentEncoding: string | undefined): DecodedPushRequest {
  let data: Buffer
  switch (contentEncoding ?? '') {
    case '':
    // Loki passes snappy through: the protobuf path always snappy-decodes anyway.
    case 'snappy':
      data = body
      break
    case 'gzip':
      try {
        data = gunzipSync(body)
      } catch (err) {
        throw new Error(`gzip: ${(err as Error).message}`)
      }
      break
    case 'deflate':
      try {
        data = inflateEither(body)
      } catch (err) {
        throw new Error(`flate: ${(err as Error).message}`)
      }
      break
    default:
      throw new Error(`Content-Encoding ${JSON.stringify(contentEncoding)} not supported`)
  }
  if (mediaType(contentType) === 'application/json') return decodeJsonPush(data)
  let raw: Buffer
  try {
    raw = uncompressSync(data) as Buffer
  } catch (err) {
    throw new Error(`snappy: corrupt input (${(err as Error).message})`)
  }
  return decodePushRequest(raw)
}
