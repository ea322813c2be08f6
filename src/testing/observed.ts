import { EventEmitter } from 'node:events'
import type { LokiTestServer, LokiTestServerEvents } from './server.js'

/**
 * What the receiver and its worker-thread mirror share: their events and `waitFor`. Each says
 * when it is down and how to describe itself in a failed wait's message.
 */
export abstract class ObservedReceiver {
  /** 'change' and 'request' for users; 'closed' once the receiver is down. */
  protected readonly events = new EventEmitter()
  /** close() has finished. */
  protected down = false

  constructor() {
    this.events.setMaxListeners(0)
  }

  /** The state a failed `waitFor` reports, so a failing test says what it saw. */
  protected abstract describe(): string

  on<E extends keyof LokiTestServerEvents>(event: E, listener: (...args: LokiTestServerEvents[E]) => void): this {
    this.events.on(event, listener as (...args: unknown[]) => void)
    return this
  }

  off<E extends keyof LokiTestServerEvents>(event: E, listener: (...args: LokiTestServerEvents[E]) => void): this {
    this.events.off(event, listener as (...args: unknown[]) => void)
    return this
  }

  /**
   * Resolves once `predicate(server)` holds, checked at once and on every 'change'; rejects when
   * it throws, when the receiver closes first, or after `timeoutMs` (default 5000).
   */
  waitFor(predicate: (server: LokiTestServer) => boolean, opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 5000
    // Both subclasses implement LokiTestServer; this class alone does not know it.
    const server = this as unknown as LokiTestServer
    const events = this.events
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const cleanup = () => {
        clearTimeout(timer)
        events.off('change', check)
        events.off('closed', onClosed)
      }
      const fail = (why: string) => {
        cleanup()
        reject(new Error(`waitFor: ${why}; condition: ${String(predicate).slice(0, 200)}; ${this.describe()}`))
      }
      const check = (): boolean => {
        let ok: boolean
        try {
          ok = predicate(server)
        } catch (err) {
          cleanup()
          reject(err)
          return true
        }
        if (ok) {
          cleanup()
          resolve()
        }
        return ok
      }
      const onClosed = () => {
        if (!check()) fail('the server closed before the condition held')
      }
      if (check()) return
      if (this.down) return fail('the server is closed')
      events.on('change', check)
      events.on('closed', onClosed)
      timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs)
    })
  }
}
