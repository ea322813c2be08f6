/*
 * One 'beforeExit' listener for every client, however many there are, so a process with many
 * clients gets no MaxListeners warning. 'beforeExit' fires when the event loop runs dry: the
 * moment lines still sitting in a batcher would otherwise be lost on a natural exit.
 */

export interface ExitFlushable {
  /** The loop ran dry: asynchronous delivery may still happen. */
  onBeforeExit(): void
  /** The process is going: only synchronous work runs (the spool's last write). */
  onExit(): void
}

const clients = new Set<ExitFlushable>()

function onBeforeExit(): void {
  for (const c of clients) c.onBeforeExit()
}

function onExit(): void {
  for (const c of clients) {
    try {
      c.onExit()
    } catch {
      // Nothing may stop the other clients' last writes, nor change the exit.
    }
  }
}

export function registerExitFlush(client: ExitFlushable): void {
  if (clients.size === 0) {
    process.on('beforeExit', onBeforeExit)
    process.on('exit', onExit)
  }
  clients.add(client)
}

export function unregisterExitFlush(client: ExitFlushable): void {
  if (!clients.delete(client)) return
  if (clients.size === 0) {
    process.off('beforeExit', onBeforeExit)
    process.off('exit', onExit)
  }
}
