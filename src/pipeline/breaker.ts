import CircuitBreaker from 'opossum'
import { ErrorCodes, LokiError } from '../model/errors.js'
import type { BreakerOptions } from '../model/options.js'
import type { SendResult } from '../transport/transport.js'

export type BreakerState = 'closed' | 'open' | 'halfOpen'

/** What `run()` returns when the breaker refused to let the attempt through. */
export interface Refused {
  kind: 'refused'
}

/** Carries a retryable result through opossum, which only counts rejections as failures. */
class Tripped extends Error {
  constructor(readonly result: SendResult) {
    super('retryable failure')
  }
}

type Attempt = () => Promise<SendResult>

/**
 * opossum around the HTTP layer. Only retryable outcomes (429, 5xx, network, timeouts) count as
 * failures: a 400 means Loki is up and answering, so it must neither open the breaker nor be
 * hidden by it. opossum's own `timeout` stays off because it aborts one shared controller for
 * every call in flight; each attempt's deadline lives in the transport instead.
 */
export class Breaker {
  readonly #cb: CircuitBreaker<[Attempt], SendResult> | undefined
  readonly #waiters = new Set<() => void>()
  #state: BreakerState = 'closed'
  #shutdown = false

  constructor(opts: Required<BreakerOptions> | false, onState: (state: BreakerState) => void) {
    if (opts === false) return
    const cb = new CircuitBreaker<[Attempt], SendResult>(
      async (attempt: Attempt) => {
        const result = await attempt()
        if (result.kind === 'retryable') throw new Tripped(result)
        return result
      },
      {
        timeout: false,
        errorThresholdPercentage: opts.errorThresholdPercentage,
        volumeThreshold: opts.volumeThreshold,
        resetTimeout: opts.resetTimeoutMs,
        rollingCountTimeout: opts.rollingWindowMs,
        rollingCountBuckets: 10,
        // Only Tripped counts: anything else thrown is a bug surfaced to the caller, not Loki's fault.
        errorFilter: (err: unknown) => !(err instanceof Tripped),
        enableSnapshots: false,
      } as CircuitBreaker.Options,
    )
    const wake = () => {
      for (const w of this.#waiters) w()
      this.#waiters.clear()
    }
    // After shutdown() nothing the breaker does is news for the user. opossum 9 removes its
    // listeners in shutdown() before any state could change, so this guard only matters for a
    // version that emits a state change on the way down (the mutation run marks it equivalent).
    const moved = (state: BreakerState) => {
      if (this.#shutdown) return
      this.#state = state
      onState(state)
      if (state !== 'open') wake()
    }
    cb.on('open', () => moved('open'))
    cb.on('halfOpen', () => moved('halfOpen'))
    cb.on('close', () => moved('closed'))
    this.#cb = cb
  }

  get state(): BreakerState {
    return this.#state
  }

  /** True when an attempt would be let through now (closed, or half-open with no probe out). */
  get ready(): boolean {
    const cb = this.#cb
    return cb === undefined || cb.closed || cb.pendingClose
  }

  /** Resolves when the breaker may let an attempt through, or when `signal` aborts. */
  waitUntilReady(signal: AbortSignal): Promise<void> {
    if (this.ready || signal.aborted) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const done = () => {
        this.#waiters.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      this.#waiters.add(done)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  /** Runs one attempt through the breaker. Never throws. */
  async run(attempt: Attempt): Promise<SendResult | Refused> {
    const cb = this.#cb
    if (cb === undefined) return attempt()
    try {
      return await cb.fire(attempt)
    } catch (err) {
      if (err instanceof Tripped) return err.result
      const code = (err as { code?: unknown }).code
      if (code === 'EOPENBREAKER' || code === 'ESHUTDOWN') return { kind: 'refused' }
      // Not Loki's fault and not retryable: report it rather than throw into the pipeline. No
      // answer came back, so it counts where failures without one do.
      return { kind: 'failure', status: undefined, failure: 'network', error: new LokiError(ErrorCodes.INTERNAL, 'circuit breaker failed', { cause: err }) }
    }
  }

  /** Clears opossum's timers and wakes every waiter so nothing stays pending. */
  shutdown(): void {
    this.#shutdown = true
    this.#cb?.shutdown()
    for (const w of this.#waiters) w()
    this.#waiters.clear()
  }
}
