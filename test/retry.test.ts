import { describe, expect, it } from 'vitest'
import { attemptTimeout, backoffDelay, decideRetry } from '../src/pipeline/retry.js'
import { parseRetryAfter } from '../src/transport/transport.js'

const policy = { maxAttempts: 5, minDelayMs: 100, maxDelayMs: 1000, budgetMs: 10_000, maxRetryAfterMs: 5000 }

describe('retry policy', () => {
  it('backs off exponentially with full jitter under the cap', () => {
    expect(backoffDelay(policy, 1, () => 0.999)).toBe(99)
    expect(backoffDelay(policy, 3, () => 0.999)).toBe(399)
    expect(backoffDelay(policy, 10, () => 0.999)).toBe(999)
    expect(backoffDelay(policy, 3, () => 0)).toBe(0)
    expect(backoffDelay(policy, 1000, () => 0.5)).toBe(500)
  })

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('3', now)).toBe(3000)
    expect(parseRetryAfter(' 0 ', now)).toBe(0)
    // Untrimmed, ' 3 ' would read as a date (March 2001) and mean "now".
    expect(parseRetryAfter(' 3 ', now)).toBe(3000)
    expect(parseRetryAfter('1.5', now)).toBe(1500)
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:07 GMT', now)).toBe(7000)
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(undefined, now)).toBeUndefined()
    expect(parseRetryAfter(['2', '9'], now)).toBe(2000)
  })

  it('reads Retry-After strictly: several digits, fractions rounded up, never negative, the rest undefined', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('10', now)).toBe(10_000)
    expect(parseRetryAfter('12.25', now)).toBe(12_250)
    // Rounded up: never sooner than Loki asked.
    expect(parseRetryAfter('0.0001', now)).toBe(1)
    // Neither seconds nor a date: no hint, never NaN.
    for (const v of ['5s', '1.5s', 'x1.5']) expect(parseRetryAfter(v, now)).toBeUndefined()
    // Date.parse reads '-5' as a date in the past: wait no longer, but never a negative delay.
    expect(parseRetryAfter('-5', now)).toBe(0)
  })

  it('stops at maxAttempts and at the budget, and caps Retry-After', () => {
    expect(decideRetry(policy, 5, 0, undefined)).toEqual({ retry: false, reason: 'attempts' })
    expect(decideRetry(policy, 1, 9_950, undefined, () => 0.999)).toEqual({ retry: false, reason: 'budget' })
    // An attempt cut by the budget's own deadline can end a hair short of it: what is left is no
    // attempt (MIN_ATTEMPT_MS), so no third attempt of a millisecond follows a budgeted timeout.
    expect(decideRetry(policy, 1, 9_999.2, undefined, () => 0)).toEqual({ retry: false, reason: 'budget' })
    expect(decideRetry(policy, 1, 9_990.5, undefined, () => 0)).toEqual({ retry: false, reason: 'budget' })
    expect(decideRetry(policy, 1, 9_990, undefined, () => 0)).toEqual({ retry: true, delayMs: 0 })
    expect(decideRetry(policy, 1, 0, 60_000)).toEqual({ retry: true, delayMs: 5000 })
    expect(decideRetry(policy, 2, 0, undefined, () => 0.5)).toEqual({ retry: true, delayMs: 100 })
  })

  it('gives each attempt min(requestTimeoutMs, what the budget has left)', () => {
    expect(attemptTimeout(policy, 2000, 0)).toBe(2000)
    expect(attemptTimeout(policy, 2000, 8000)).toBe(2000)
    expect(attemptTimeout(policy, 2000, 8500)).toBe(1500)
    expect(attemptTimeout(policy, 60_000, 9_999.5)).toBe(1)
    // A budget overspent (the clock went backwards, or a bug) still yields a valid timer.
    expect(attemptTimeout(policy, 2000, 12_000)).toBe(1)
  })
})
