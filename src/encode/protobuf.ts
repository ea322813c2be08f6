import type { BatchStream, Entry } from '../types.js'

/*
 * Hand-written writer for Loki's logproto.PushRequest. The schema is four small messages, so a
 * two-pass writer (sizes, then bytes into one exactly-sized buffer) beats a general protobuf
 * library: no intermediate objects, no per-entry closures, one allocation per batch.
 *
 *   PushRequest   { repeated StreamAdapter streams = 1; }
 *   StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; }
 *   EntryAdapter  { Timestamp timestamp = 1; string line = 2; repeated LabelPairAdapter structuredMetadata = 3; }
 *   Timestamp     { int64 seconds = 1; int32 nanos = 2; }
 *   LabelPair     { string name = 1; string value = 2; }
 */

const TAG_1_LEN = 0x0a // field 1, wire type 2
const TAG_2_LEN = 0x12 // field 2, wire type 2
const TAG_3_LEN = 0x1a // field 3, wire type 2
const TAG_1_VARINT = 0x08
const TAG_2_VARINT = 0x10

function varintSize(n: number): number {
  if (n < 0x80) return 1
  if (n < 0x4000) return 2
  if (n < 0x200000) return 3
  if (n < 0x10000000) return 4
  if (n < 0x800000000) return 5
  let size = 5
  n = Math.floor(n / 0x800000000)
  while (n > 0) {
    size++
    n = Math.floor(n / 0x80)
  }
  return size
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80000000) {
    // Above 31 bits bitwise operators would wrap: fall back to arithmetic.
    buf[pos++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80
    n >>>= 7
  }
  buf[pos++] = n
  return pos
}

/**
 * `bytes === s.length` means pure ASCII, where UTF-8 and latin1 bytes are the same: short ones
 * are copied by hand, longer ones with the latin1 writer, which skips UTF-8 transcoding
 * (measured on a 100-byte line: 45 ns against 82 ns; a 23-byte one by hand: 25 ns against 60).
 */
function writeString(buf: Buffer, pos: number, s: string, bytes: number): number {
  if (bytes === s.length) {
    if (bytes < 48) {
      for (let i = 0; i < bytes; i++) buf[pos + i] = s.charCodeAt(i)
      return pos + bytes
    }
    return pos + buf.write(s, pos, bytes, 'latin1')
  }
  return pos + buf.write(s, pos, bytes, 'utf8')
}

function timestampSize(e: Entry): number {
  const seconds = Math.floor(e.ms / 1000)
  const nanos = (e.ms - seconds * 1000) * 1_000_000 + e.ns
  return (seconds > 0 ? 1 + varintSize(seconds) : 0) + (nanos > 0 ? 1 + varintSize(nanos) : 0)
}

function metaSize(meta: string[]): number {
  let size = 0
  for (let i = 0; i < meta.length; i += 2) {
    const nb = Buffer.byteLength(meta[i]!)
    const vb = Buffer.byteLength(meta[i + 1]!)
    const pair = 1 + varintSize(nb) + nb + 1 + varintSize(vb) + vb
    size += 1 + varintSize(pair) + pair
  }
  return size
}

function entrySize(e: Entry): number {
  const ts = timestampSize(e)
  let size = 1 + varintSize(ts) + ts + 1 + varintSize(e.lineBytes) + e.lineBytes
  if (e.meta !== undefined) size += metaSize(e.meta)
  return size
}

/** Encodes streams as an uncompressed logproto.PushRequest. Pure: same input, same bytes. */
export function encodeProtobuf(streams: readonly BatchStream[]): Buffer {
  const selectorBytes = new Array<number>(streams.length)
  const streamSizes = new Array<number>(streams.length)
  let total = 0
  for (let s = 0; s < streams.length; s++) {
    const stream = streams[s]!
    const sb = Buffer.byteLength(stream.selector)
    selectorBytes[s] = sb
    let size = 1 + varintSize(sb) + sb
    const entries = stream.entries
    for (let i = 0; i < entries.length; i++) {
      const es = entrySize(entries[i]!)
      size += 1 + varintSize(es) + es
    }
    streamSizes[s] = size
    total += 1 + varintSize(size) + size
  }

  const buf = Buffer.allocUnsafe(total)
  let pos = 0
  for (let s = 0; s < streams.length; s++) {
    const stream = streams[s]!
    buf[pos++] = TAG_1_LEN
    pos = writeVarint(buf, pos, streamSizes[s]!)
    buf[pos++] = TAG_1_LEN
    pos = writeVarint(buf, pos, selectorBytes[s]!)
    pos = writeString(buf, pos, stream.selector, selectorBytes[s]!)
    const entries = stream.entries
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      buf[pos++] = TAG_2_LEN
      pos = writeVarint(buf, pos, entrySize(e))
      // timestamp
      const seconds = Math.floor(e.ms / 1000)
      const nanos = (e.ms - seconds * 1000) * 1_000_000 + e.ns
      buf[pos++] = TAG_1_LEN
      pos = writeVarint(buf, pos, timestampSize(e))
      if (seconds > 0) {
        buf[pos++] = TAG_1_VARINT
        pos = writeVarint(buf, pos, seconds)
      }
      if (nanos > 0) {
        buf[pos++] = TAG_2_VARINT
        pos = writeVarint(buf, pos, nanos)
      }
      // line
      buf[pos++] = TAG_2_LEN
      pos = writeVarint(buf, pos, e.lineBytes)
      pos = writeString(buf, pos, e.line, e.lineBytes)
      // structured metadata
      const meta = e.meta
      if (meta !== undefined) {
        for (let m = 0; m < meta.length; m += 2) {
          const name = meta[m]!
          const value = meta[m + 1]!
          const nb = Buffer.byteLength(name)
          const vb = Buffer.byteLength(value)
          buf[pos++] = TAG_3_LEN
          pos = writeVarint(buf, pos, 1 + varintSize(nb) + nb + 1 + varintSize(vb) + vb)
          buf[pos++] = TAG_1_LEN
          pos = writeVarint(buf, pos, nb)
          pos = writeString(buf, pos, name, nb)
          buf[pos++] = TAG_2_LEN
          pos = writeVarint(buf, pos, vb)
          pos = writeString(buf, pos, value, vb)
        }
      }
    }
  }
  if (pos !== total) throw new Error(`protobuf size mismatch: wrote ${pos} of ${total} bytes`)
  return buf
}
