import { createHook } from 'node:async_hooks'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { isMainThread } from 'node:worker_threads'
import { afterEach, beforeEach } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import type { LokiClient } from '../src/index.js'

/**
 * Polls a condition on real timers until it holds; fails with `what` after `timeoutMs`. The cap
 * catches a condition that never comes; it is no speed limit, so it is generous by default.
 */
export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight: a test that starts child processes
 * must not start them all at once on a small machine. Results keep the order of `items`.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** Code that starts timers of its own: the test runner, and waitUntil's polling. */
const HARNESS = /[\\/]node_modules[\\/](vitest|@vitest|tinypool|tinyspy)[\\/]|[\\/]test[\\/]helpers\.ts:\d+$/

export interface TimerTracker {
  /** Where each live timer was created (one line per frame outside node's internals). */
  live(): string[]
  stop(): void
}

/**
 * Tracks every timer started from now on until it fires for the last time or is cleared, ref'd
 * or not: `process.getActiveResourcesInfo()` lists only ref'd ones, so an unref'd timer that is
 * never cleared (and everything its callback holds) escapes it. Timers the test runner and these
 * helpers start are left out. Only the creation site is kept, as text: holding the timer or its
 * stack frames would keep alive the very objects a leak test waits to see collected.
 */
export function trackTimers(): TimerTracker {
  const live = new Map<number, string>()
  const hook = createHook({
    init(asyncId, type) {
      if (type !== 'Timeout') return
      const prepare = Error.prepareStackTrace
      const limit = Error.stackTraceLimit
      // Format here, synchronously and without source maps: an async hook must not start async work.
      Error.prepareStackTrace = (_e, frames) =>
        frames
          .map((f) => `${f.getFileName() ?? ''}:${f.getLineNumber() ?? 0}`)
          .filter((f) => !f.startsWith('node:') && !f.startsWith(':'))
          .join('\n')
      Error.stackTraceLimit = 40
      const holder: { stack?: string } = {}
      Error.captureStackTrace(holder)
      const stack = holder.stack ?? ''
      Error.prepareStackTrace = prepare
      Error.stackTraceLimit = limit
      // The first frame is this hook; the next is the code that started the timer. Whatever
      // called that code is not asked: every test runs below the runner's frames. No frame at all
      // means node started it from the event loop (a socket's timeout, say): it counts too.
      const frames = stack.split('\n').slice(1)
      if (frames.length === 0) live.set(asyncId, '(node internals)')
      else if (!HARNESS.test(frames[0]!)) live.set(asyncId, frames.slice(0, 8).join('\n'))
    },
    destroy(asyncId) {
      live.delete(asyncId)
    },
  }).enable()
  return {
    live: () => [...live.values()].map((site) => site.replaceAll(`${process.cwd()}/`, '')),
    stop: () => void hook.disable(),
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
  // In a worker thread (the mutation runner's pool) the thread's own port to its parent comes
  // and goes with vitest's messages: it is never the client's.
  return process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && (isMainThread || r !== 'MessagePort')).sort()
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

/** Fails with `what` if `p` has not settled within `ms` (a cap far above any honest run, not a speed limit). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const cap = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, cap])
  } finally {
    clearTimeout(timer)
  }
}

export type RawHandler = (req: IncomingMessage, res: ServerResponse) => void

/** A plain node:http server on 127.0.0.1 and what it saw: for the transport's own tests. */
export interface RawServer {
  url: string
  /** Connections accepted so far. */
  accepted: number
  /** Connections open now, and the most open at once. */
  open: Set<Socket>
  peak: number
  /** Requests whose body has arrived and that have no answer yet. */
  waiting: ServerResponse[]
  /** The socket each request arrived on, in order. */
  sockets: Socket[]
  /** Closes every connection and the server. */
  close(): Promise<void>
}

/**
 * A plain HTTP server whose every request is answered by `handler` once its body has arrived.
 * Idle sockets stay open (a two-minute keep-alive): a socket that closes during a test was
 * closed by the client.
 */
export async function startRawServer(handler: RawHandler): Promise<RawServer> {
  const server: Server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      state.sockets.push(req.socket)
      state.waiting.push(res)
      res.on('close', () => state.waiting.splice(state.waiting.indexOf(res), 1))
      handler(req, res)
    })
  })
  const state: RawServer = {
    url: '',
    accepted: 0,
    open: new Set(),
    peak: 0,
    waiting: [],
    sockets: [],
    close: () => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    }),
  }
  server.keepAliveTimeout = 120_000
  server.on('connection', (socket: Socket) => {
    state.accepted++
    state.open.add(socket)
    state.peak = Math.max(state.peak, state.open.size)
    socket.on('close', () => state.open.delete(socket))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return state
}
