import { MAX_RECORD_OVERHEAD, newRecordView, readRecord, recordMetaBytes, skipRecord, writeRecord } from './protobuf.js'

const MIN_CAPACITY = 256
/** A buffer this large is kept across batches only while batches keep filling a quarter of it. */
const KEEP_CAPACITY = 64 * 1024

/**
 * One stream's entries, protobuf-encoded at push time into a growing buffer.
 *
 * Encoding at push instead of at the batch cut is the client's largest saving: no per-entry
 * object, no line string kept alive until the cut (less GC), no sizing pass over the batch, and
 * the writer runs hot from the first entries instead of once per batch.
 */
export class EntryBuffer {
  count = 0
  #buf: Buffer | undefined
  #view: DataView | undefined
  #length = 0
  #ordered = true
  #lastMs = -1
  #lastNs = 0
  /** The last record and its line, and the order state before it: for lineHash() and restampLast(). */
  #lastStart = 0
  #lastLineStart = 0
  #lastLineEnd = 0
  #prevOrdered = true
  #prevMs = -1
  #prevNs = 0

  append(ms: number, ns: number, line: string, lineBytes: number, meta: readonly string[] | undefined): void {
    this.#prevOrdered = this.#ordered
    this.#prevMs = this.#lastMs
    this.#prevNs = this.#lastNs
    if (ms > this.#lastMs || (ms === this.#lastMs && ns >= this.#lastNs)) {
      this.#lastMs = ms
      this.#lastNs = ns
    } else {
      this.#ordered = false
    }
    const metaBytes = meta === undefined ? 0 : recordMetaBytes(meta)
    const need = this.#length + lineBytes + MAX_RECORD_OVERHEAD + metaBytes
    let buf = this.#buf
    if (buf === undefined || need > buf.length) buf = this.#grow(need)
    this.#lastStart = this.#length
    const seconds = Math.floor(ms / 1000)
    this.#length = writeRecord(buf, this.#length, seconds, (ms - seconds * 1000) * 1_000_000 + ns, line, lineBytes, meta, metaBytes)
    this.#lastLineEnd = this.#length - metaBytes
    this.#lastLineStart = this.#lastLineEnd - lineBytes
    this.count++
  }

  /**
   * A 30-bit hash of the last appended line's UTF-8 bytes, read four at a time: a third of the
   * cost of putting the line string in a Set, which hashes it a character at a time.
   */
  lineHash(): number {
    const view = this.#view!
    const end = this.#lastLineEnd
    let p = this.#lastLineStart
    let h = end - p
    for (; p + 4 <= end; p += 4) {
      h = Math.imul(h ^ view.getUint32(p, true), 0x5bd1e995)
      h ^= h >>> 13
    }
    for (; p < end; p++) {
      h = Math.imul(h ^ view.getUint8(p), 0x5bd1e995)
      h ^= h >>> 13
    }
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d)
    // 30 bits: a small integer, which a Map hashes and stores without allocating.
    return (h ^ (h >>> 16)) & 0x3fffffff
  }

  /** Writes the last entry again with another timestamp (the same arguments otherwise). */
  restampLast(ms: number, ns: number, line: string, lineBytes: number, meta: readonly string[] | undefined): void {
    this.#length = this.#lastStart
    this.count--
    this.#ordered = this.#prevOrdered
    this.#lastMs = this.#prevMs
    this.#lastNs = this.#prevNs
    this.append(ms, ns, line, lineBytes, meta)
  }

  /**
   * The records so far, oldest first: a view into this buffer when they were pushed in order (it
   * stays valid until reset()), otherwise a sorted copy. Loki wants a stream's entries in order.
   */
  records(): Buffer {
    if (this.#buf === undefined) return Buffer.alloc(0)
    const view = this.#buf.subarray(0, this.#length)
    return this.#ordered ? view : sortRecords(view, this.count)
  }

  /** Empties the buffer for the next batch, keeping its memory unless it is mostly unused. */
  reset(): void {
    const buf = this.#buf
    if (buf !== undefined && buf.length > KEEP_CAPACITY && this.#length < buf.length / 4) {
      this.#buf = undefined
      this.#view = undefined
    }
    this.count = 0
    this.#length = 0
    this.#ordered = true
    this.#lastMs = -1
    this.#lastNs = 0
  }

  #grow(need: number): Buffer {
    const old = this.#buf
    let capacity = Math.max(old === undefined ? MIN_CAPACITY : old.length * 2, MIN_CAPACITY)
    while (capacity < need) capacity *= 2
    const buf = Buffer.allocUnsafe(capacity)
    if (old !== undefined) old.copy(buf, 0, 0, this.#length)
    this.#buf = buf
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.length)
    return buf
  }
}

/** A copy of `records` ordered by timestamp; entries with equal timestamps keep their order. */
function sortRecords(records: Buffer, count: number): Buffer {
  const starts = new Array<number>(count + 1)
  const times = new Array<number>(count)
  const nanos = new Array<number>(count)
  const view = newRecordView()
  let pos = 0
  for (let i = 0; i < count; i++) {
    starts[i] = pos
    pos = readRecord(records, pos, view)
    times[i] = view.seconds
    nanos[i] = view.nanos
  }
  starts[count] = pos
  const order = Array.from({ length: count }, (_, i) => i)
  order.sort((a, b) => times[a]! - times[b]! || nanos[a]! - nanos[b]! || a - b)
  const out = Buffer.allocUnsafe(records.length)
  let at = 0
  for (const i of order) at += records.copy(out, at, starts[i]!, starts[i + 1]!)
  return out
}

/** Offset of the record that starts the second half of `count` records from `start`. */
export function midpoint(buf: Buffer, start: number, count: number): number {
  let pos = start
  for (let i = 0; i < count >> 1; i++) pos = skipRecord(buf, pos)
  return pos
}
