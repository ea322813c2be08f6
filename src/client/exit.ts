/*
 * One 'beforeExit' and one 'exit' listener for every client, however many there are, so a process
 * with many clients gets no MaxListeners warning. 'beforeExit' fires when the event loop runs dry:
 * the moment lines still sitting in a batcher would otherwise be lost on a natural exit.
 *
 * A client registers a pair of closures over its private methods rather than itself, so the hooks
 * are not methods of the public class: nothing outside can run a client's exit path.
 */

export interface ExitHooks {
  /** The loop ran dry: asynchronous delivery may still happen. */
  readonly beforeExit: () => void
  /** The process is going: only synchronous work runs (the spool's last write). */
  readonly exit: () => void
}

const registered = new Set<ExitHooks>()

function onBeforeExit(): void {
  for (const h of registered) h.beforeExit()
}

function onExit(): void {
  for (const h of registered) {
    try {
      h.exit()
    } catch {
      // Nothing may stop the other clients' last writes, nor change the exit.
    }
  }
}

export function registerExitFlush(hooks: ExitHooks): void {
  if (registered.size === 0) {
    process.on('beforeExit', onBeforeExit)
    process.on('exit', onExit)
  }
  registered.add(hooks)
}

export function unregisterExitFlush(hooks: ExitHooks): void {
  if (!registered.delete(hooks)) return
  if (registered.size === 0) {
    process.off('beforeExit', onBeforeExit)
    process.off('exit', onExit)
  }
}
