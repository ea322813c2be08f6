import type { Breaker } from './breaker.js'
import { batchOfBody, encodeBody, entryCount, halveBatch, type EncodedBatch, type EncodeOptions } from '../encode/index.js'
import { ErrorCodes, LokiError } from '../model/errors.js'
import type { Ledger } from './ledger.js'
import { createBatch, type Batch, type BatchQueue } from './queue.js'
import { attemptTimeout, decideRetry, type RetryPolicy } from './retry.js'
import type { Settlement } from './settlement.js'
import type { SendResult, Transport } from '../transport/transport.js'
import type { DropReason } from '../model/types.js'

export interface DeliveryOptions {
  queue: BatchQueue
  breaker: Breaker
  transport: Transport
  encoding: EncodeOptions
  retry: RetryPolicy
  /** Where every batch ends: delivered, spooled or dropped. */
  settlement: Settlement
  /** Counts and reports each failed attempt and each retry. */
  ledger: Ledger
  /** Breaker wait after which a batch is offered to the spool; undefined without one. */
  offloadAfterMs: number | undefined
}

/** Resolves after `ms`, or early when `signal` aborts. The timer never keeps the process alive. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    timer.unref()
    signal.addEventListener('abort', done, { once: true })
  })
}

/**
 * Drives one batch through its attempts (breaker, encoding, the transport's verdict, backoff,
 * the 413 split) until the settlement ends it: delivered, spooled or dropped. Runs inside a
 * p-queue slot, so at most `concurrency` batches are here at once; a batch in backoff keeps its
 * slot, which is the back-pressure that stops a struggling Loki from being flooded.
 */
export class Delivery {
  readonly #o: DeliveryOptions

  constructor(options: DeliveryOptions) {
    this.#o = options
  }

  /** Never rejects. */
  readonly run = async (batch: Batch): Promise<void> => {
    try {
      await this.#deliver(batch)
    } catch (err) {
      this.#drop(batch, 'internal_error', new LokiError(ErrorCodes.INTERNAL, 'unexpected error while delivering a batch', { cause: err }))
    }
  }

  #drop(batch: Batch, reason: DropReason, error?: LokiError): void {
    this.#o.settlement.undelivered(batch, reason, error)
  }

  #failed(batch: Batch, attempt: number, durationMs: number, result: Exclude<SendResult, { kind: 'success' | 'aborted' }>, willRetry: boolean): void {
    const { status, failure, error } = result
    this.#o.ledger.attemptFailed({ batchId: batch.id, entries: batch.entries, attempt, status, failure, durationMs, error, willRetry })
  }

  /**
   * Waits for the breaker. With a spool, a batch that has waited `offloadAfterMs` is moved to
   * disk so a long outage holds memory for only the newest batches.
   */
  async #awaitBreaker(batch: Batch): Promise<void> {
    const { breaker, offloadAfterMs } = this.#o
    const signal = batch.controller.signal
    if (offloadAfterMs === undefined) return breaker.waitUntilReady(signal)
    const waited = new AbortController()
    const timer = setTimeout(() => waited.abort(), offloadAfterMs)
    timer.unref()
    const onAbort = () => waited.abort()
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await breaker.waitUntilReady(waited.signal)
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
    if (!batch.done && !breaker.ready && !signal.aborted) {
      // Still open: off to disk if possible; otherwise keep waiting (never dropped for this).
      if (!this.#o.settlement.toSpool(batch)) await breaker.waitUntilReady(signal)
    }
  }

  async #deliver(batch: Batch): Promise<void> {
    const { queue, breaker, transport, retry: policy, settlement, ledger } = this.#o
    const signal = batch.controller.signal
    for (;;) {
      if (batch.done) return
      if (!breaker.ready) {
        await this.#awaitBreaker(batch)
        continue
      }
      if (batch.body === undefined) {
        try {
          if (batch.data === undefined) throw new Error('batch has neither entries nor a body')
          batch.body = await encodeBody(batch.data, this.#o.encoding)
        } catch (err) {
          this.#drop(batch, 'encode_error', new LokiError(ErrorCodes.ENCODE, 'could not encode the batch', { cause: err }))
          return
        }
        if (batch.done) return
      }

      const attempt = batch.attempts + 1
      const started = performance.now()
      queue.setSending(batch, true)
      const body = batch.body
      // The budget is a deadline: the attempt may use only what is left of it.
      const timeoutMs = attemptTimeout(policy, transport.requestTimeoutMs, batch.spentMs)
      const result = await breaker.run(() =>
        transport.send(body, signal, { batchId: batch.id, attempt, entries: batch.entries, timeoutMs }),
      )
      queue.setSending(batch, false)
      if (batch.done) return // destroyed, evicted or timed out by close() meanwhile: already counted
      if (result.kind === 'refused') continue // the breaker opened under us; not an attempt
      batch.attempts = attempt
      const durationMs = performance.now() - started
      batch.spentMs += durationMs

      switch (result.kind) {
        case 'success':
          settlement.delivered(batch, { batchId: batch.id, entries: batch.entries, bytes: body.body.length, status: result.status, attempt, durationMs })
          return
        case 'blocked':
          this.#failed(batch, attempt, durationMs, result, false)
          this.#drop(batch, 'blocked', result.error)
          return
        case 'failure':
          this.#failed(batch, attempt, durationMs, result, false)
          // `rejected` says Loki (or its proxy, or its TLS set-up) refused the batch; a failure of
          // lokiwire's own machinery (the HTTP client would not load, the breaker threw) is not that.
          this.#drop(batch, result.error.code === ErrorCodes.INTERNAL ? 'internal_error' : 'rejected', result.error)
          return
        case 'aborted':
          // Only the batch's own signal aborts; whoever aborted it has counted it.
          return
        case 'too_large':
          this.#failed(batch, attempt, durationMs, result, batch.entries > 1)
          {
            // A replayed batch has only its wire bytes: read its entries back to split it.
            const data = batch.entries <= 1 ? undefined : (batch.data ?? batchOfBody(body))
            if (data === undefined) this.#drop(batch, 'too_large', result.error)
            else await this.#split(batch, data)
          }
          return
        case 'retryable': {
          const decision = decideRetry(policy, attempt, batch.spentMs, result.retryAfterMs)
          this.#failed(batch, attempt, durationMs, result, decision.retry)
          if (!decision.retry) {
            this.#drop(batch, 'retries_exhausted', result.error)
            return
          }
          ledger.retry({ batchId: batch.id, entries: batch.entries, attempt: attempt + 1, delayMs: decision.delayMs, error: result.error })
          await sleep(decision.delayMs, signal)
          batch.spentMs += decision.delayMs
        }
      }
    }
  }

  /**
   * 413: the halves become batches of their own, delivered one after the other in this slot.
   * Whoever waits on the parent (flush) is released only when both halves have ended.
   */
  async #split(parent: Batch, data: EncodedBatch): Promise<void> {
    // The halves share the parent's buffer cost by encoded size, and together cost exactly what
    // it did: each repeats the stream labels, so they are shared out of the halves' total size.
    const [head, tail] = halveBatch(data)
    const headBytes = Math.round((parent.bytes * head.request.length) / (head.request.length + tail.request.length))
    const children = [
      createBatch(head, entryCount(head), headBytes, parent),
      createBatch(tail, entryCount(tail), parent.bytes - headBytes, parent),
    ]
    // The parent ends here: from now on only the halves can be evicted, timed out or destroyed,
    // each through its own signal, as the queue tracks them in its place.
    const release = this.#o.settlement.split(parent, children)
    try {
      for (const child of children) await this.run(child)
    } finally {
      release()
    }
  }
}
