import { StringDecoder } from 'node:string_decoder'

/**
 * Splits a byte stream into lines. UTF-8 characters split across chunks are reassembled, CRLF
 * endings lose their CR, and empty lines are skipped (Loki has nothing to store for them).
 *
 * A line longer than `maxChars` is handed on once it reaches that length and the rest of it,
 * up to the next newline, is skipped: the client would cut it to `maxLineBytes` anyway, and
 * holding an endless line in memory is how a log shipper runs out of it.
 */
export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8')
  readonly #maxChars: number
  #carry = ''
  #skipping = false
  /** Lines cut because they had no newline within `maxChars`. */
  cut = 0

  constructor(maxChars: number) {
    this.#maxChars = maxChars
  }

  /** Appends the complete lines in `chunk` to `out`. */
  write(chunk: Buffer | string, out: string[]): void {
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
    this.#carry += text.slice(start)
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
