/*
 * Backpressure for adapters whose logger can wait: pino's worker (thread-stream stops reading
 * and the lines wait in pino's buffer) and winston (the logger's pipe pauses). A burst larger
 * than maxBufferBytes is then delivered instead of refused, as long as Loki keeps accepting.
 *
 * Waiting is only worth it while Loki makes progress. If no batch is delivered for HOLD_MS the
 * gate opens and stays open until one is: during an outage the client's buffer limit and
 * overflow policy apply as usual, so memory stays bounded (nothing piles up in the logger) and
 * shutdown is not held up behind a Loki that does not answer.
 *
 * HOLD_MS is counted in time the event loop was free to deliver, not in wall-clock time. The
 * burst that fills the buffer is usually synchronous, and so is the app's work after it: a
 * single 1 s timer then fires overdue the moment the loop comes back, before any request could
 * be written or its answer read, and the gate would give up on a Loki that was never given a
 * chance. So the hold is measured by a ticking timer, and a tick counts at most MAX_TICK_CREDIT_MS
 * however late it fired. The wait stays bounded: at most HOLD_MS of free loop time, or
 * HOLD_MS / MAX_TICK_CREDIT_MS turns of a loop that keeps being blocked.
 */
import type { LokiClient } from '../client/client.js'

/** Loop-free time without a delivery after which the gate gives up on backpressure. */
const HOLD_MS = 1000
/** How often the hold is checked. */
const TICK_MS = 100
/** Most a single tick counts towards HOLD_MS: a later tick means the loop was blocked. */
const MAX_TICK_CREDIT_MS = 2 * TICK_MS
/** Room kept free below the limit: thread-stream hands over up to 4 MiB at once. */
const MAX_HEADROOM = 8 * 1024 * 1024

export class RoomGate {
  readonly #client: LokiClient
  readonly #threshold: number
  #stalled = false
  #waiters: Array<() => void> = []
  #timer: NodeJS.Timeout | undefined
  /** Loop-free time waited since the last delivery, or since the wait began. */
  #held = 0
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
    this.#held = 0
    this.#tick(performance.now())
  }

  #tick(since: number): void {
    // Referenced on purpose: a write is pending, and the process must not exit under it.
    this.#timer = setTimeout(() => {
      const now = performance.now()
      this.#held += Math.min(now - since, MAX_TICK_CREDIT_MS)
      if (this.#held < HOLD_MS) {
        this.#tick(now)
        return
      }
      this.#timer = undefined
      this.#stalled = true
      this.#release()
    }, TICK_MS)
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
