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
  #carry = ''
  #skipping = false
  /** Lines handed on before their end because they had no newline within `maxLineBytes` characters. */
  cut = 0

  constructor(maxLineBytes: number) {
    this.#maxChars = maxLineBytes
  }

  /** Appends the complete lines in `chunk` to `out`. */
  write(chunk: Uint8Array | string, out: string[]): void {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk)
    let start = 0
    for (;;) {
      const nl = text.indexOf('\n', start)
      if (nl === -1) break
      if (this.#skipping) {
        this.#skipping = false
      } else {
        this.#emit(this.#carry === '' ? text.slice(start, nl) : this.#carry + text.slice(start, nl), out)
      }
      this.#carry = ''
      start = nl + 1
    }
    if (this.#skipping || start === text.length) return
    this.#carry += start === 0 ? text : text.slice(start)
    if (this.#carry.length > this.#maxChars) {
      this.#emit(this.#carry, out)
      this.cut++
      this.#carry = ''
      this.#skipping = true
    }
  }

  /** Appends what is left after the last newline (a final line without one) to `out`. */
  end(out: string[]): void {
    const rest = this.#carry + this.#decoder.end()
    this.#carry = ''
    if (!this.#skipping) this.#emit(rest, out)
    this.#skipping = false
  }

  #emit(line: string, out: string[]): void {
    const text = line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line
    if (text !== '') out.push(text)
  }
}
