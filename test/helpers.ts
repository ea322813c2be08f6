import { afterEach, beforeEach } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import type { LokiClient } from '../src/index.js'

/** Polls a condition on real timers until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** The accounting identity every test checks: nothing is created or lost off the books. */
export function identityHolds(client: LokiClient): boolean {
  const s = client.stats()
  return s.pushed + s.spool.loaded === s.sent.entries + s.dropped.total + s.spool.written + s.buffered.entries + s.inFlight.entries
}

export function assertIdentity(client: LokiClient): void {
  if (!identityHolds(client)) {
    const s = client.stats()
    throw new Error(`accounting identity broken: pushed ${s.pushed} + loaded ${s.spool.loaded} != sent ${s.sent.entries} + dropped ${s.dropped.total} + spooled ${s.spool.written} + buffered ${s.buffered.entries} + inFlight ${s.inFlight.entries}`)
  }
}

/** Sorted list of active resource types, for before/after comparisons. */
export function resources(): string[] {
  return process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').sort()
}

/** Multiset difference: what `after` holds beyond `before`. */
export function extraResources(before: string[], after: string[]): string[] {
  const left = [...before]
  const extra: string[] = []
  for (const r of after) {
    const i = left.indexOf(r)
    if (i >= 0) left.splice(i, 1)
    else extra.push(r)
  }
  return extra
}

export async function withServer<T>(fn: (srv: LokiTestServer) => Promise<T>): Promise<T> {
  const srv = await createLokiTestServer()
  try {
    return await fn(srv)
  } finally {
    await srv.close()
  }
}

/** Lines tagged with a sequence id so the receiver's copy can be checked for loss and duplicates. */
export function seqLines(n: number, prefix = 'line'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix} seq=${i}`)
}

/** Fails unless every tagged line arrived exactly once. */
export function assertExactlyOnce(received: readonly { line: string }[], expected: readonly string[]): void {
  const counts = new Map<string, number>()
  for (const e of received) counts.set(e.line, (counts.get(e.line) ?? 0) + 1)
  const missing = expected.filter((l) => !counts.has(l))
  const dup = [...counts].filter(([, c]) => c > 1)
  if (missing.length > 0 || dup.length > 0 || counts.size !== expected.length) {
    throw new Error(`expected each of ${expected.length} lines once: ${missing.length} missing (e.g. ${missing.slice(0, 3).join(', ')}), ${dup.length} duplicated, ${counts.size} distinct received`)
  }
}

/** Fast, deterministic client settings for tests: short timeouts and backoff. */
export const FAST = {
  requestTimeoutMs: 2000,
  retry: { minDelayMs: 5, maxDelayMs: 40 },
  batch: { maxWaitMs: 20 },
} as const

/**
 * A fresh test receiver per test, and the test's client destroyed after it: the set-up most
 * client tests share. Assign the client to `.client` so a failing test cannot leak it.
 */
export function useLoki(): { srv: LokiTestServer; client: LokiClient | undefined } {
  const ctx = { client: undefined } as { srv: LokiTestServer; client: LokiClient | undefined }
  beforeEach(async () => {
    ctx.srv = await createLokiTestServer()
  })
  afterEach(async () => {
    await ctx.client?.destroy()
    ctx.client = undefined
    await ctx.srv.close()
  })
  return ctx
}
