/*
 * Backpressure for adapters whose logger can wait: pino's worker (thread-stream stops reading
 * and the lines wait in pino's buffer) and winston (the logger's pipe pauses). A burst larger
 * than maxBufferBytes is then delivered instead of refused, as long as Loki keeps accepting.
 *
 * Waiting is only worth it while Loki makes progress. If no batch is delivered for HOLD_MS the
 * gate opens and stays open until one is: during an outage the client's buffer limit and
 * overflow policy apply as usual, so memory stays bounded (nothing piles up in the logger) and
 * shutdown is not held up behind a Loki that does not answer.
 */
import type { LokiClient } from '../client.js'

/** Longest wait for a delivery before the gate gives up on backpressure. */
const HOLD_MS = 1000
/** Room kept free below the limit: thread-stream hands over up to 4 MiB at once. */
const MAX_HEADROOM = 8 * 1024 * 1024

export class RoomGate {
  readonly #client: LokiClient
  readonly #threshold: number
  #stalled = false
  #waiters: Array<() => void> = []
  #timer: NodeJS.Timeout | undefined
  #closed = false

  readonly #onProgress = (): void => {
    this.#stalled = false
    if (this.#waiters.length === 0) return
    if (!this.full()) this.#release()
    else this.#arm(true)
  }

  // Evictions and exhausted retries free room as well.
  readonly #onDrop = (): void => {
    if (this.#waiters.length > 0 && !this.full()) this.#release()
  }

  constructor(client: LokiClient) {
    this.#client = client
    const max = client.limits.maxBufferBytes
    this.#threshold = max - Math.min(MAX_HEADROOM, Math.floor(max / 4))
    client.on('sent', this.#onProgress)
    client.on('drop', this.#onDrop)
  }

  /** True when the caller should wait() before pushing more. */
  full(): boolean {
    if (this.#stalled || this.#closed) return false
    const c = this.#client
    return c.state === 'open' && c.bufferUsedBytes >= this.#threshold
  }

  /** Resolves when there is room, when Loki has made no progress for a while, or on close(). */
  wait(): Promise<void> {
    if (!this.full()) return Promise.resolve()
    return new Promise<void>((resolve) => {
      this.#waiters.push(resolve)
      this.#arm(false)
    })
  }

  #arm(restart: boolean): void {
    if (this.#timer !== undefined) {
      if (!restart) return
      clearTimeout(this.#timer)
    }
    // Referenced on purpose: a write is pending, and the process must not exit under it.
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#stalled = true
      this.#release()
    }, HOLD_MS)
  }

  #release(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const waiters = this.#waiters
    this.#waiters = []
    for (const resolve of waiters) resolve()
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#release()
    this.#client.off('sent', this.#onProgress)
    this.#client.off('drop', this.#onDrop)
  }
}
