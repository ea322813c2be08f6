import { ENTRY_OVERHEAD_BYTES } from '../client/client.js'
import type { LineSplitter } from '../records/ndjson.js'

/** Buffer usage is re-checked once per this much text: about one pipe chunk, so a pause lands near the mark. */
const CHECK_EVERY_BYTES = 64 * 1024

/** Where the lines go: the client, seen only through what back-pressure needs. */
export interface FeedSink {
  push(line: string): void
  /** True above the high-water mark: no more lines until room is made. */
  full(): boolean
}

/** The input, seen only through what back-pressure needs (stdin). */
export interface Pausable {
  pause(): void
  resume(): void
}

/**
 * Stdin back-pressure for `lokiwire push`: lines are pushed while the client has room; when it has
 * none, the rest of the chunk is held and the input paused, so the writer's pipe fills and the
 * writer waits instead of lines being dropped. Room (a delivery or a drop) feeds the held lines
 * and resumes the input. No process state: the caller wires stdin, the client and signals.
 */
export class StdinFeed {
  readonly #splitter: LineSplitter
  readonly #sink: FeedSink
  readonly #input: Pausable
  /** Lines read but not yet pushed: what is held back while the input is paused. */
  #pending: string[] = []
  #head = 0
  #read = 0
  #paused = false
  #stopped = false

  constructor(splitter: LineSplitter, sink: FeedSink, input: Pausable) {
    this.#splitter = splitter
    this.#sink = sink
    this.#input = input
  }

  /** Lines read so far (pushed or held). */
  get read(): number {
    return this.#read
  }

  /** True while the input is paused because the client is full. */
  get paused(): boolean {
    return this.#paused
  }

  /** True once end() ran: later input is ignored. */
  get stopped(): boolean {
    return this.#stopped
  }

  /** A chunk of input. */
  write(chunk: Buffer | string): void {
    if (this.#stopped) return
    const before = this.#pending.length
    this.#splitter.write(chunk, this.#pending)
    this.#read += this.#pending.length - before
    this.#feed()
  }

  /** The client made room (a delivery, or a drop: a rejecting Loki must not leave the input paused forever). */
  room(): void {
    if (this.#paused && !this.#stopped) this.#feed()
  }

  /**
   * The input is over (end of file, an error or a signal): the last partial line and every held
   * line are pushed now. They fit in the headroom kept above the high-water mark. Idempotent.
   */
  end(): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#paused = false
    const pending = this.#pending
    const before = pending.length
    this.#splitter.end(pending)
    this.#read += pending.length - before
    for (let i = this.#head; i < pending.length; i++) this.#sink.push(pending[i]!)
    this.#pending = []
    this.#head = 0
  }

  /** Pushes held lines while there is room; pauses the input when there is not. */
  #feed(): void {
    if (this.#sink.full()) return this.#pause()
    const pending = this.#pending
    let sinceCheck = 0
    while (this.#head < pending.length) {
      const line = pending[this.#head++]!
      this.#sink.push(line)
      sinceCheck += line.length + ENTRY_OVERHEAD_BYTES
      if (sinceCheck >= CHECK_EVERY_BYTES && this.#head < pending.length) {
        sinceCheck = 0
        if (this.#sink.full()) return this.#pause()
      }
    }
    this.#pending = []
    this.#head = 0
    if (this.#paused && !this.#stopped) {
      this.#paused = false
      this.#input.resume()
    }
  }

  #pause(): void {
    if (this.#paused) return
    // The producer's writes now block on a full pipe: it slows down instead of lines being lost.
    this.#paused = true
    this.#input.pause()
  }
}
