import type { Batcher, StreamBuffer } from '../pipeline/batcher.js'
import { isLabelName, isRefusal, labelNameProblem, NO_LABELS, resolveLabels, sanitizeLabelName, truncateUtf8, type Refusal, type ResolvedStream } from '../model/labels.js'
import type { Ledger } from '../pipeline/ledger.js'
import { MAX_METADATA_PAIRS, metadataValue } from '../model/metadata.js'
import type { ResolvedOptions } from '../model/options.js'
import type { BatchQueue } from '../pipeline/queue.js'
import { readTimestamp, type TimestampParts } from '../model/timestamp.js'
import type { LogEntry } from '../model/types.js'
import { warnNoLabels } from '../model/warnings.js'

/** Buffer-limit cost of an entry beyond its line and metadata: timestamp and framing. */
export const ENTRY_OVERHEAD_BYTES = 24
/** Valid structured metadata names remembered before that cache is reset. */
const METADATA_NAME_CACHE_SIZE = 1000
/** Nodes of the label-set cache (one per distinct label prefix) kept before it is reset. */
const LABEL_CACHE_NODES = 20_000
/** Frozen label sets acceptLine() remembers by identity before that cache is reset. */
const FROZEN_LABEL_SETS = 256
/**
 * The label-set cache is a trie: one level per label, keyed by name and then by value. A string
 * key joined with separators would let a value that contains them pass for another label set;
 * Map keys cannot collide, and the walk builds no string on the hot path.
 */
interface LabelNode {
  next: Map<string, Map<unknown, LabelNode>> | undefined
  /** Undefined until a label set ends here. */
  resolved: ResolvedStream | Refusal | undefined
}

function newLabelNode(): LabelNode {
  return { next: undefined, resolved: undefined }
}

const NO_LABELS_REFUSAL: Refusal = { field: 'labels', message: NO_LABELS }

/** A value as an error message shows it: short, and never a whole object. */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)
  if (typeof v === 'bigint') return `${v}n`
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return String(v)
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'an invalid Date' : `a Date (${v.toISOString()})`
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`
}

/** Index of the pair named `name` in [name, value, ...], or -1. */
function pairIndex(pairs: readonly string[], name: string): number {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return i
  return -1
}

export interface IntakeOptions {
  opts: ResolvedOptions
  batcher: Batcher
  queue: BatchQueue
  ledger: Ledger
  /** Frees `cost` bytes under `maxBufferBytes` by eviction; false when it cannot. */
  makeRoom(cost: number): boolean
}

/**
 * What push() does with one entry while the client is open: validates it field by field,
 * resolves its labels (through the label-set cache) and metadata, holds it to `maxBufferBytes`,
 * and hands it to the batcher, or refuses it with a reason and the field at fault. The hot path
 * of the library: no allocation beyond the entry's own strings once its label set is cached.
 */
export class Intake {
  readonly #opts: ResolvedOptions
  readonly #batcher: Batcher
  readonly #queue: BatchQueue
  readonly #ledger: Ledger
  readonly #makeRoom: (cost: number) => boolean
  readonly #defaultStream: StreamBuffer | undefined
  #warnedNoLabels = false
  #labelCache: LabelNode = newLabelNode()
  #labelCacheNodes = 0
  /** Metadata names known to be valid: a Set lookup is a fraction of the pattern's cost per push. */
  readonly #metadataNames = new Set<string>()
  readonly #ts: TimestampParts = { ms: 0, ns: 0, precise: false }
  /** Size of the line #fit() last returned. */
  #lineBytes = 0
  /** Label sets acceptLine() was given, by identity: frozen, so what they resolved to cannot change. */
  #frozen = new Map<object, ResolvedStream | Refusal>()
  /** The frozen label set acceptLine() resolved last, and its stream. */
  #lastLabels: object | undefined
  #lastStream: StreamBuffer | undefined

  constructor(o: IntakeOptions) {
    this.#opts = o.opts
    this.#batcher = o.batcher
    this.#queue = o.queue
    this.#ledger = o.ledger
    this.#makeRoom = o.makeRoom
    const labels = o.opts.labels
    const defaults = Object.keys(labels).length > 0 ? resolveLabels(labels, {}, 'drop') : undefined
    this.#defaultStream = defaults === undefined || isRefusal(defaults) ? undefined : o.batcher.stream(defaults, true)
  }

  /** True when the entry was buffered; otherwise it was refused and counted. */
  accept(e: LogEntry | undefined): boolean {
    if (e === null || typeof e !== 'object') return this.#ledger.refuse('invalid_entry', 'entry', `expected an object with a string line, got ${show(e)}`)
    if (typeof e.line !== 'string') return this.#ledger.refuse('invalid_entry', 'line', `expected a string, got ${show(e.line)}`)
    const line = this.#fit(e.line)
    if (line === undefined) return false
    const lineBytes = this.#lineBytes
    if (!this.#stamp(e.timestamp)) return this.#badTimestamp(e.timestamp)

    let meta: string[] | undefined
    let metaBytes = 0
    if (e.metadata !== undefined && e.metadata !== null) {
      if (typeof e.metadata !== 'object' || Array.isArray(e.metadata)) {
        return this.#ledger.refuse('invalid_entry', 'metadata', `expected an object of name/value pairs, got ${show(e.metadata)}`)
      }
      const m = this.#metadata(e.metadata)
      if (m !== undefined && isRefusal(m)) return this.#ledger.refuse('invalid_labels', m.field, m.message)
      meta = m
      if (meta !== undefined) for (let i = 0; i < meta.length; i++) metaBytes += Buffer.byteLength(meta[i]!)
    }

    const labels = e.labels
    let stream: StreamBuffer | Refusal
    if (labels === undefined || labels === null) stream = this.#defaultStream ?? NO_LABELS_REFUSAL
    else if (typeof labels !== 'object' || Array.isArray(labels)) return this.#ledger.refuse('invalid_labels', 'labels', `expected an object of name/value pairs, got ${show(labels)}`)
    else stream = this.#streamFor(labels)
    return this.#admit(stream, line, lineBytes, meta, metaBytes)
  }

  /**
   * accept() of `{ line, labels, timestamp }` for an adapter's mapped record, without the entry
   * object: `line` is a string, `timestamp` one that push() reads, and `labels` (when given) a
   * frozen object the adapter hands again for every entry of that label set, so it is resolved
   * once by identity instead of walked per entry.
   */
  acceptLine(line: string, labels: Readonly<Record<string, string>> | undefined, timestamp: number | string | undefined): boolean {
    const fitted = this.#fit(line)
    if (fitted === undefined) return false
    if (!this.#stamp(timestamp)) return this.#badTimestamp(timestamp)
    const stream = labels === undefined ? (this.#defaultStream ?? NO_LABELS_REFUSAL) : this.#streamForFrozen(labels)
    return this.#admit(stream, fitted, this.#lineBytes, undefined, 0)
  }

  /**
   * The line as it will be sent (cut to `maxLineBytes` under 'truncate'), its size left in
   * #lineBytes; undefined when it was refused for its size.
   */
  #fit(line: string): string | undefined {
    const opts = this.#opts
    let lineBytes = Buffer.byteLength(line)
    if (lineBytes > opts.maxLineBytes) {
      if (opts.oversizeLines === 'drop') {
        this.#ledger.refuse('line_too_long', 'line', `${lineBytes} bytes, over maxLineBytes (${opts.maxLineBytes})`)
        return undefined
      }
      line = truncateUtf8(line, opts.maxLineBytes)
      lineBytes = Buffer.byteLength(line)
      this.#ledger.truncated++
    }
    this.#lineBytes = lineBytes
    return line
  }

  /** Reads the entry's timestamp into #ts (now when it has none); false when it is unusable. */
  #stamp(timestamp: unknown): boolean {
    const ts = this.#ts
    if (timestamp === undefined) {
      ts.ms = Date.now()
      ts.ns = 0
      ts.precise = false
      return true
    }
    return readTimestamp(timestamp, ts)
  }

  #badTimestamp(timestamp: unknown): false {
    return this.#ledger.refuse('invalid_entry', 'timestamp', `expected epoch ms, a Date, epoch ns (bigint or digits) or an ISO 8601 string, not before 1970; got ${show(timestamp)}`)
  }

  /** Buffers a checked line, timestamp (#ts) and metadata in `stream`, or refuses them. */
  #admit(stream: StreamBuffer | Refusal, line: string, lineBytes: number, meta: string[] | undefined, metaBytes: number): boolean {
    if (isRefusal(stream)) {
      if (stream.message === NO_LABELS && !this.#warnedNoLabels) {
        // A configuration that drops every line: say so even to a client with a 'drop' listener.
        this.#warnedNoLabels = true
        warnNoLabels()
      }
      return this.#ledger.refuse('invalid_labels', stream.field, stream.message)
    }
    const cost = lineBytes + metaBytes + ENTRY_OVERHEAD_BYTES
    if (this.#batcher.bytes + this.#queue.bytes + cost > this.#opts.maxBufferBytes && !this.#makeRoom(cost)) {
      return this.#ledger.refuse('buffer_full')
    }
    this.#batcher.add(stream, this.#ts, line, lineBytes, meta, cost)
    return true
  }

  /**
   * The entry's metadata as [name, value, ...], undefined when it has none, or the error that
   * refuses the entry. Names are held to the label-name rule under the `invalidLabels` policy.
   */
  #metadata(input: Readonly<Record<string, unknown>>): string[] | undefined | Refusal {
    const out: string[] = []
    // Once a name was rewritten, two pairs can share one: the later one wins, as with labels.
    let renamed = false
    for (const rawName of Object.keys(input)) {
      const value = metadataValue(input[rawName])
      if (value === undefined) continue
      let name: string | undefined = rawName
      if (!this.#metadataNames.has(rawName) && !this.#rememberMetadataName(rawName)) {
        if (this.#opts.invalidLabels === 'drop') {
          return { field: `metadata.${rawName}`, message: labelNameProblem(rawName, 'structured metadata') ?? `structured metadata name "${rawName}" is not valid` }
        }
        name = sanitizeLabelName(rawName)
        if (name === undefined) {
          this.#ledger.metadata.cut++
          continue
        }
        this.#ledger.metadata.renamed++
        renamed = true
      }
      if (renamed) {
        const at = pairIndex(out, name)
        if (at >= 0) {
          out[at + 1] = value
          this.#ledger.metadata.cut++
          continue
        }
      }
      if (out.length >= MAX_METADATA_PAIRS * 2) {
        // Loki answers 400 to an entry over its limit: send the first 128 and count the rest.
        this.#ledger.metadata.cut++
        continue
      }
      out.push(name, value)
    }
    return out.length > 0 ? out : undefined
  }

  /** True, and remembered, when `name` is a valid metadata name. */
  #rememberMetadataName(name: string): boolean {
    if (!isLabelName(name)) return false
    if (this.#metadataNames.size >= METADATA_NAME_CACHE_SIZE) this.#metadataNames.clear()
    this.#metadataNames.add(name)
    return true
  }

  #streamFor(labels: Readonly<Record<string, unknown>>): StreamBuffer | Refusal {
    // Walked in property order: cheaper than sorting, and one call site repeats its order.
    // for...in, as in resolveLabels: both must read the same properties.
    if (this.#labelCacheNodes >= LABEL_CACHE_NODES) {
      this.#labelCache = newLabelNode()
      this.#labelCacheNodes = 0
    }
    let node = this.#labelCache
    for (const name in labels) {
      const value = labels[name]
      // An object is keyed by identity but read through String(): it could change under the key.
      if (value !== null && (typeof value === 'object' || typeof value === 'function')) return this.#streamOf(this.#resolveLabels(labels))
      let byValue = (node.next ??= new Map()).get(name)
      if (byValue === undefined) node.next.set(name, (byValue = new Map()))
      let child = byValue.get(value)
      if (child === undefined) {
        byValue.set(value, (child = newLabelNode()))
        this.#labelCacheNodes++
      }
      node = child
    }
    if (node.resolved === undefined) node.resolved = this.#resolveLabels(labels)
    return this.#streamOf(node.resolved)
  }

  #streamForFrozen(labels: Readonly<Record<string, string>>): StreamBuffer | Refusal {
    // Consecutive lines mostly share a label set: its stream is kept until the batcher forgets it.
    const last = this.#lastStream
    if (labels === this.#lastLabels && last !== undefined && !last.pruned) return last
    let resolved = this.#frozen.get(labels)
    if (resolved === undefined) {
      // Only a frozen object may be remembered by identity; anything else is walked each time.
      if (!Object.isFrozen(labels)) return this.#streamFor(labels)
      // Adapters hand a few label sets (one per level); the bound guards against one that does not.
      if (this.#frozen.size >= FROZEN_LABEL_SETS) this.#frozen.clear()
      resolved = this.#resolveLabels(labels)
      this.#frozen.set(labels, resolved)
    }
    const stream = this.#streamOf(resolved)
    if (!isRefusal(stream)) {
      this.#lastLabels = labels
      this.#lastStream = stream
    }
    return stream
  }

  #resolveLabels(labels: Readonly<Record<string, unknown>>): ResolvedStream | Refusal {
    return resolveLabels(this.#opts.labels, labels, this.#opts.invalidLabels)
  }

  #streamOf(resolved: ResolvedStream | Refusal): StreamBuffer | Refusal {
    return isRefusal(resolved) ? resolved : this.#batcher.stream(resolved)
  }
}
