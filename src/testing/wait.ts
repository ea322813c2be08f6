import type { EventEmitter } from 'node:events'

/**
 * The receiver's `waitFor`, shared by the in-thread receiver and its worker-thread mirror:
 * resolves once `predicate(server)` holds, checked at once and on every 'change'; rejects when
 * it throws, when the server closes first, or after `timeoutMs`, with the server's state in
 * the message so a failing test says what it saw.
 */
export function waitForCondition<T>(
  server: T,
  events: EventEmitter,
  isDown: () => boolean,
  describe: () => string,
  predicate: (server: T) => boolean,
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined
    const cleanup = () => {
      clearTimeout(timer)
      events.off('change', check)
      events.off('closed', onClosed)
    }
    const fail = (why: string) => {
      cleanup()
      reject(new Error(`waitFor: ${why}; condition: ${String(predicate).slice(0, 200)}; ${describe()}`))
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
    if (isDown()) return fail('the server is closed')
    events.on('change', check)
    events.on('closed', onClosed)
    timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs)
  })
}
