import { getEventListeners } from 'node:events'
import { afterEach, expect, it } from 'vitest'
import { Breaker, type BreakerState } from '../src/pipeline/breaker.js'
import { ErrorCodes, LokiError } from '../src/model/errors.js'
import type { SendResult } from '../src/transport/transport.js'
import { waitUntil } from './helpers.js'

// The breaker on its own, with real opossum and real timers: the contract the delivery loop
// relies on, including the paths a client reaches only in rare races.

const retryable: SendResult = { kind: 'retryable', status: 503, failure: 'status5xx', error: new LokiError(ErrorCodes.HTTP_STATUS, '503'), retryAfterMs: undefined }
const success: SendResult = { kind: 'success', status: 204 }

const breakers: Breaker[] = []
afterEach(() => {
  for (const b of breakers.splice(0)) b.shutdown()
})

/** Opens after one retryable failure; half-open after `resetTimeoutMs`. */
function tripOnFirst(resetTimeoutMs = 60_000): { breaker: Breaker; states: BreakerState[] } {
  const states: BreakerState[] = []
  const breaker = new Breaker(
    { errorThresholdPercentage: 1, volumeThreshold: 1, resetTimeoutMs, rollingWindowMs: 10_000 },
    (s) => states.push(s),
  )
  breakers.push(breaker)
  return { breaker, states }
}

/** 'resolved' if the promise settles within a turn of the event loop, else 'pending'. */
function settlesNow(p: Promise<unknown>): Promise<'resolved' | 'pending'> {
  return Promise.race([p.then(() => 'resolved' as const), new Promise<'pending'>((r) => setImmediate(() => r('pending')))])
}

it('refuses attempts while open without running them, and after shutdown', async () => {
  const { breaker, states } = tripOnFirst()
  expect(await breaker.run(async () => retryable)).toBe(retryable)
  expect(states).toEqual(['open'])
  let ran = 0
  expect(await breaker.run(async () => { ran++; return success })).toEqual({ kind: 'refused' })
  breaker.shutdown()
  expect(await breaker.run(async () => { ran++; return success })).toEqual({ kind: 'refused' })
  expect(ran).toBe(0)
  // Shutting down is not a state change the user hears of.
  expect(states).toEqual(['open'])
})

it('an attempt that throws comes back as an internal failure, not a refusal or a rejection', async () => {
  const { breaker } = tripOnFirst()
  const bug = new Error('bug in the attempt')
  const r = await breaker.run(async () => {
    throw bug
  })
  expect(r.kind).toBe('failure')
  const error = (r as { error: LokiError }).error
  expect(error).toBeInstanceOf(LokiError)
  expect(error.code).toBe(ErrorCodes.INTERNAL)
  expect(error.message).toContain('circuit breaker failed')
  expect(error.cause).toBe(bug)
  // Not Loki's fault: it does not count towards opening the breaker.
  expect(breaker.state).toBe('closed')
})

it('waitUntilReady resolves at once when the breaker is ready or the signal already aborted', async () => {
  const { breaker } = tripOnFirst()
  expect(await settlesNow(breaker.waitUntilReady(new AbortController().signal))).toBe('resolved')
  await breaker.run(async () => retryable)
  expect(breaker.ready).toBe(false)
  expect(await settlesNow(breaker.waitUntilReady(AbortSignal.abort()))).toBe('resolved')
  const live = new AbortController()
  expect(await settlesNow(breaker.waitUntilReady(live.signal))).toBe('pending')
  live.abort()
})

it('a waiter leaves no listener on its signal once the breaker lets it through', async () => {
  const { breaker } = tripOnFirst(50)
  await breaker.run(async () => retryable)
  const signal = new AbortController().signal
  const waiting = breaker.waitUntilReady(signal)
  expect(getEventListeners(signal, 'abort')).toHaveLength(1)
  await waiting // woken by half-open
  expect(breaker.state).toBe('halfOpen')
  expect(getEventListeners(signal, 'abort')).toHaveLength(0)
})

it('a failed half-open probe keeps the batches waiting for the breaker asleep', async () => {
  const { breaker, states } = tripOnFirst(50)
  await breaker.run(async () => retryable)
  await waitUntil(() => breaker.state === 'halfOpen', 'half-open')
  // The probe is out: nobody else may go.
  let fail!: () => void
  const probe = breaker.run(() => new Promise<SendResult>((r) => (fail = () => r(retryable))))
  expect(breaker.ready).toBe(false)
  const live = new AbortController()
  const waiting = breaker.waitUntilReady(live.signal)
  fail()
  await probe
  expect(states).toEqual(['open', 'halfOpen', 'open'])
  // Woken now, a batch with a spool would be moved to disk before its wait was up.
  expect(await settlesNow(waiting)).toBe('pending')
  live.abort()
  await waiting
})
