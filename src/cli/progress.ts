/** Where progress goes: process.stderr for push, process.stdout for the demo. */
export interface ProgressStream {
  write(chunk: string): boolean
  isTTY?: boolean
  columns?: number
}

export interface ProgressOptions {
  out: ProgressStream
  /** Redraw one line in place (a terminal) instead of printing a line per interval. */
  live: boolean
  /** Period of the plain lines; the live line is redrawn more often. */
  intervalMs: number
  render: () => string
}

const LIVE_REDRAW_MS = 250
const CLEAR_LINE = '\r\x1b[2K'

/**
 * A status line: redrawn in place on a terminal, printed every `intervalMs` elsewhere so a log
 * file or CI output gets a readable history rather than carriage returns.
 */
export class Progress {
  readonly #opts: ProgressOptions
  #timer: NodeJS.Timeout | undefined
  #drawn = false

  constructor(opts: ProgressOptions) {
    this.#opts = opts
  }

  start(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => this.#tick(), this.#opts.live ? LIVE_REDRAW_MS : this.#opts.intervalMs)
    // Progress is never a reason for the process to stay up.
    this.#timer.unref()
    if (this.#opts.live) this.#draw()
  }

  /** Prints a line of its own; the live line is redrawn below it. */
  note(text: string): void {
    const { out, live } = this.#opts
    if (live && this.#drawn) out.write(CLEAR_LINE)
    out.write(`${text}\n`)
    this.#drawn = false
    if (live && this.#timer !== undefined) this.#draw()
  }

  /** Prints the current status once more as a plain line (the last word before a summary). */
  print(): void {
    this.note(this.#opts.render())
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    if (this.#opts.live && this.#drawn) this.#opts.out.write(CLEAR_LINE)
    this.#drawn = false
  }

  #tick(): void {
    if (this.#opts.live) this.#draw()
    else this.#opts.out.write(`${this.#opts.render()}\n`)
  }

  #draw(): void {
    const { out } = this.#opts
    let text = this.#opts.render()
    // A line wider than the terminal wraps, and \r then only returns to the start of the last row.
    const width = (out.columns ?? 0) - 1
    if (width > 10 && text.length > width) text = text.slice(0, width)
    out.write(`${CLEAR_LINE}${text}`)
    this.#drawn = true
  }
}
