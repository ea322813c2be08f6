/*
 * Retry policy as pure functions: what to wait before the next attempt, and whether there may
 * be one. Kept free of timers and I/O so it is tested with plain numbers.
 */

export interface RetryPolicy {
  maxAttempts: number
  minDelayMs: number
  maxDelayMs: number
  budgetMs: number
  maxRetryAfterMs: number
}

/**
 * Full-jitter exponential backoff: a uniform delay in [0, min(max, min * 2^(attempt-1))].
 * Jitter spreads retries from many clients so a recovering Loki is not hit in lockstep.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** Math.min(attempt - 1, 30))
  return Math.floor(random() * ceiling)
}

/**
 * The least time an attempt is given. A budget with less than this left is spent: an attempt the
 * budget's own deadline cut can end up to a millisecond short of that deadline (timers run on a
 * millisecond clock), and it must not be followed by a pointless attempt of a millisecond or two.
 */
export const MIN_ATTEMPT_MS = 10

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: 'attempts' | 'budget' }

/**
 * Decides after a retryable failure. `attempts` is how many were made, `spentMs` the time already
 * used from the budget. A server's Retry-After replaces the backoff, capped by maxRetryAfterMs.
 */
export function decideRetry(
  policy: RetryPolicy,
  attempts: number,
  spentMs: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): RetryDecision {
  if (attempts >= policy.maxAttempts) return { retry: false, reason: 'attempts' }
  const delayMs = retryAfterMs !== undefined
    ? Math.min(retryAfterMs, policy.maxRetryAfterMs)
    : backoffDelay(policy, attempts, random)
  if (policy.budgetMs - spentMs - delayMs < MIN_ATTEMPT_MS) return { retry: false, reason: 'budget' }
  return { retry: true, delayMs }
}

/**
 * The deadline of the next attempt: `requestTimeoutMs`, cut to what the retry budget has left so
 * a batch never outlives `budgetMs` by a whole request timeout. decideRetry() leaves at least
 * MIN_ATTEMPT_MS for any attempt it allows; the floor only guards against a clock that went backwards.
 */
export function attemptTimeout(policy: RetryPolicy, requestTimeoutMs: number, spentMs: number): number {
  return Math.max(1, Math.min(requestTimeoutMs, Math.floor(policy.budgetMs - spentMs)))
}
