import { StringDecoder } from 'node:string_decoder'

/**
 * Splits a stream of NDJSON text (or any text) into lines: what pino writes to its destination,
 * what the CLI reads from stdin. UTF-8 characters split across chunks are reassembled, CRLF
 * endings lose their CR, and empty lines are skipped (Loki has nothing to store for them).
 *
 * Overlong lines. A line still without its newline once it holds more than `maxLineBytes`
 * characters is handed on at once, and the rest of it, up to the next newline, is skipped. A
 * character is at least one UTF-8 byte, so what is handed on is over `maxLineBytes` bytes and the
 * client does to it exactly what it would have done to the whole line: `oversizeLines:
 * 'truncate'` sends the same first `maxLineBytes` bytes (counted in `stats().truncated`),
 * `'drop'` drops it as `line_too_long`. Only memory differs: an endless line never holds more
 * than `maxLineBytes` characters plus one chunk. (A line that arrives whole in one chunk is
 * handed on whole, and cut by the client as usual.)
 */
export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8')
  readonly #maxChars: number
  /** The chunk being read by next(), and where its unread part starts. */
  #text = ''
  #at = 0
  #carry = ''
  #skipping = false
  /** Lines handed on before their end because they had no newline within `maxLineBytes` characters. */
  cut = 0

  constructor(maxLineBytes: number) {
    this.#maxChars = maxLineBytes
  }

  /**
   * Starts on a chunk: next() then returns its lines one at a time. Reading them as they are
   * pushed, rather than into an array first, lets each line die young: an array of a whole
   * chunk's lines (thread-stream hands over megabytes at once) kept them alive through the
   * collections that ran meanwhile, and those copied them.
   */
  feed(chunk: Uint8Array | string): void {
    this.#text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk)
    this.#at = 0
  }

  /** The next complete line of the chunk fed; undefined once it is used up (its unterminated tail is kept for the next one). */
  next(): string | undefined {
    const text = this.#text
    for (;;) {
      const start = this.#at
      const nl = text.indexOf('\n', start)
      if (nl === -1) return this.#keepTail(text, start)
      this.#at = nl + 1
      if (this.#skipping) {
        this.#skipping = false
        this.#carry = ''
        continue
      }
      const line = this.#carry === '' ? text.slice(start, nl) : this.#carry + text.slice(start, nl)
      this.#carry = ''
      const ok = this.#usable(line)
      if (ok !== undefined) return ok
    }
  }

  /** Appends the complete lines in `chunk` to `out`. */
  write(chunk: Uint8Array | string, out: string[]): void {
    this.feed(chunk)
    for (let line = this.next(); line !== undefined; line = this.next()) out.push(line)
  }

  /** Appends what is left after the last newline (a final line without one) to `out`. */
  end(out: string[]): void {
    const line = this.last()
    if (line !== undefined) out.push(line)
  }

  /** What is left after the last newline (a final line without one), or undefined. */
  last(): string | undefined {
    const rest = this.#carry + this.#decoder.end()
    this.#carry = ''
    const skipped = this.#skipping
    this.#skipping = false
    return skipped ? undefined : this.#usable(rest)
  }

  /** Keeps the chunk's unterminated tail; hands it on at once when it is already over the limit. */
  #keepTail(text: string, start: number): string | undefined {
    this.#text = ''
    this.#at = 0
    if (this.#skipping || start === text.length) return undefined
    this.#carry += start === 0 ? text : text.slice(start)
    if (this.#carry.length <= this.#maxChars) return undefined
    const line = this.#carry
    this.cut++
    this.#carry = ''
    this.#skipping = true
    return this.#usable(line)
  }

  /** The line without a CR ending; undefined when nothing is left (Loki has nothing to store). */
  #usable(line: string): string | undefined {
    const text = line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line
    return text === '' ? undefined : text
  }
}
