import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { zlibSync } from '../encode/codecs.js'
import type { EncodedBody } from '../encode/index.js'
import type { SpoolEvent } from '../model/events.js'

/*
 * A durable spool for batches that cannot be delivered now. Writes are synchronous on purpose:
 * they run when something has already gone wrong (Loki down, close deadline, process exit),
 * where ordering and "it is on disk when the call returns" matter more than a millisecond of
 * event-loop time, and the 'exit' event allows nothing else.
 *
 * Segment file: a sequence of records, each
 *   magic "LWS1" (4) | payload length u32 | entries u32 | content-type code u8 |
 *   content-encoding code u8 | reserved u16 | crc32 u32 over bytes 4..16 and the payload | payload
 * The payload is the request body exactly as it goes on the wire, so a replay re-sends the
 * same bytes and timestamps and Loki deduplicates anything that was in fact delivered.
 */

/** node:zlib's CRC-32, loaded with the first spool rather than with the client (codecs.ts). */
function crc32(data: Uint8Array, value?: number): number {
  return zlibSync().crc32(data, value)
}

const MAGIC = 0x3153574c // "LWS1" little-endian
const HEADER = 20
const SEGMENT_MAX_BYTES = 8 * 1024 * 1024
const NAME_RE = /^lokiwire-(\d{13})-(\d+)-(\d+)\.spool$/
const CONTENT_TYPES = ['application/x-protobuf', 'application/json'] as const
const CONTENT_ENCODINGS = [undefined, 'gzip', 'snappy'] as const

export interface SpoolOptions {
  /** Directory for segment files; created if missing. Use one directory per process. */
  dir: string
  /** Most bytes the directory may hold; batches beyond are dropped with their original reason. @default 268435456 (256 MiB) */
  maxBytes?: number
  /** A batch that has waited this long for an open breaker goes to the spool to free memory. @default 30000 */
  breakerWaitMs?: number
}

/** A record handed out for replay. `ack` once Loki accepted it (or it was finally given up). */
export interface SpoolRecord {
  body: EncodedBody
  entries: number
  ack(): void
}

/** What went wrong with the spool; reported as a 'spool' event and counted. */
export type SpoolProblem = SpoolEvent

interface ReadSegment {
  name: string
  outstanding: number
}

export class Spool {
  readonly dir: string
  readonly maxBytes: number
  readonly breakerWaitMs: number
  /** Bytes in segment files, as far as this process knows. */
  bytes = 0
  readonly #onProblem: (p: SpoolProblem) => void
  #fd: number | undefined
  #writeName: string | undefined
  #writeBytes = 0
  #seq = 0
  /** Sealed segments not yet replayed, oldest first. */
  #sealed: string[] = []
  /** Records read from a segment and not yet handed out. */
  #ready: SpoolRecord[] = []
  #usable = true

  constructor(opts: Required<SpoolOptions>, onProblem: (p: SpoolProblem) => void) {
    this.dir = opts.dir
    this.maxBytes = opts.maxBytes
    this.breakerWaitMs = opts.breakerWaitMs
    this.#onProblem = onProblem
    try {
      mkdirSync(this.dir, { recursive: true })
      // Files that are not ours are left alone.
      for (const name of readdirSync(this.dir).filter((n) => NAME_RE.test(n)).sort(bySegmentOrder)) {
        this.#sealed.push(name)
        this.bytes += statSync(join(this.dir, name)).size
      }
    } catch (error) {
      // An unusable directory disables the spool; logging goes on without it.
      this.#usable = false
      onProblem({ reason: 'read_failed', file: this.dir, error })
    }
  }

  /** True while records wait to be replayed. */
  get pending(): boolean {
    return this.#ready.length > 0 || this.#sealed.length > 0 || (this.#fd !== undefined && this.#writeBytes > 0)
  }

  /**
   * Appends a batch. Returns false (and reports why) when it would pass `maxBytes` or the write
   * failed; the caller then drops the batch under its original reason.
   */
  write(body: EncodedBody, entries: number): boolean {
    if (!this.#usable) return false
    const size = HEADER + body.body.length
    if (this.bytes + size > this.maxBytes) {
      this.#onProblem({ reason: 'full' })
      return false
    }
    const header = Buffer.alloc(HEADER)
    header.writeUInt32LE(MAGIC, 0)
    header.writeUInt32LE(body.body.length, 4)
    header.writeUInt32LE(entries, 8)
    header.writeUInt8(Math.max(0, CONTENT_TYPES.indexOf(body.contentType as (typeof CONTENT_TYPES)[number])), 12)
    header.writeUInt8(Math.max(0, CONTENT_ENCODINGS.indexOf(body.contentEncoding as (typeof CONTENT_ENCODINGS)[number])), 13)
    header.writeUInt32LE(crc32(body.body, crc32(header.subarray(4, 16))), 16)
    try {
      if (this.#fd === undefined || this.#writeBytes + size > SEGMENT_MAX_BYTES) this.#rotate()
      // One buffer, one write: a crash leaves at most one truncated record at the tail.
      const written = writeSync(this.#fd!, Buffer.concat([header, body.body]))
      if (written < size) {
        // A full disk or a file size limit ends a write short, without an error. Cut off the
        // partial record: the batch is not on disk, and records appended after it would be
        // unreadable at replay.
        ftruncateSync(this.#fd!, this.#writeBytes)
        throw new Error(`short write: ${written} of ${size} bytes`)
      }
      this.#writeBytes += size
      this.bytes += size
      return true
    } catch (error) {
      this.#onProblem({ reason: 'write_failed', ...(this.#writeName ? { file: this.#writeName } : {}), error })
      return false
    }
  }

  /** Forces written records to disk (used at exit, where nothing else will). */
  sync(): void {
    if (this.#fd === undefined) return
    try {
      fsyncSync(this.#fd)
    } catch {
      // fsync is best effort: the data is already in the page cache.
    }
  }

  /** The oldest record not yet handed out, or undefined. */
  next(): SpoolRecord | undefined {
    while (this.#ready.length === 0) {
      if (this.#sealed.length === 0) {
        // Replay also covers what this process spooled earlier: seal the open segment.
        if (this.#fd === undefined || this.#writeBytes === 0) return undefined
        this.#seal()
      }
      this.#load(this.#sealed.shift()!)
    }
    return this.#ready.shift()
  }

  /** Closes the open segment. Safe to call more than once. */
  close(): void {
    if (this.#fd !== undefined) {
      try {
        closeSync(this.#fd)
      } catch {
        // Already closed by the OS at exit: nothing to release.
      }
      this.#fd = undefined
    }
  }

  #rotate(): void {
    this.#seal()
    const name = `lokiwire-${Date.now()}-${process.pid}-${this.#seq++}.spool`
    this.#fd = openSync(join(this.dir, name), 'a')
    this.#writeName = name
    this.#writeBytes = 0
  }

  #seal(): void {
    if (this.#fd === undefined) return
    this.close()
    // An open segment always has its name. It holds nothing when its first write failed.
    const name = this.#writeName!
    if (this.#writeBytes > 0) this.#sealed.push(name)
    else this.#unlink(name)
    this.#writeName = undefined
    this.#writeBytes = 0
  }

  #load(name: string): void {
    const path = join(this.dir, name)
    let data: Buffer
    try {
      data = readFileSync(path)
    } catch (error) {
      this.#onProblem({ reason: 'read_failed', file: name, error })
      return
    }
    // The acks below outlive this call; they must not hold on to the whole file through `data`.
    const size = data.length
    const seg: ReadSegment = { name, outstanding: 0 }
    const records: SpoolRecord[] = []
    let pos = 0
    while (pos < data.length) {
      if (data.length - pos < HEADER || data.readUInt32LE(pos) !== MAGIC) {
        // A crash mid-write leaves a partial record at the tail; anything after it is unreadable.
        this.#onProblem({ reason: 'truncated_segment', file: name })
        break
      }
      const len = data.readUInt32LE(pos + 4)
      if (pos + HEADER + len > data.length) {
        this.#onProblem({ reason: 'truncated_segment', file: name })
        break
      }
      const payload = data.subarray(pos + HEADER, pos + HEADER + len)
      const crc = crc32(payload, crc32(data.subarray(pos + 4, pos + 16)))
      if (crc !== data.readUInt32LE(pos + 16)) {
        this.#onProblem({ reason: 'corrupt_record', file: name })
      } else {
        const entries = data.readUInt32LE(pos + 8)
        const body: EncodedBody = {
          body: Buffer.from(payload),
          contentType: CONTENT_TYPES[data.readUInt8(pos + 12)] ?? CONTENT_TYPES[0],
          contentEncoding: CONTENT_ENCODINGS[data.readUInt8(pos + 13)],
        }
        seg.outstanding++
        let acked = false
        records.push({
          body,
          entries,
          ack: () => {
            if (acked) return
            acked = true
            if (--seg.outstanding === 0) this.#finishSegment(seg, size)
          },
        })
      }
      pos += HEADER + len
    }
    // The acks above can run only once these records are handed out, after the whole file was read.
    this.#ready.push(...records)
    if (seg.outstanding === 0) this.#finishSegment(seg, size)
  }

  /** Deleted only once every record in it was accepted by Loki or finally given up. */
  #finishSegment(seg: ReadSegment, size: number): void {
    if (this.#unlink(seg.name)) this.bytes = Math.max(0, this.bytes - size)
  }

  #unlink(name: string): boolean {
    try {
      unlinkSync(join(this.dir, name))
      return true
    } catch (error) {
      this.#onProblem({ reason: 'delete_failed', file: name, error })
      return false
    }
  }
}

/** Oldest first: by creation time, then pid and sequence, so replay keeps the original order. */
function bySegmentOrder(a: string, b: string): number {
  // Only names NAME_RE matched are sorted.
  const ma = NAME_RE.exec(a)!
  const mb = NAME_RE.exec(b)!
  return Number(ma[1]) - Number(mb[1]) || Number(ma[2]) - Number(mb[2]) || Number(ma[3]) - Number(mb[3])
}
