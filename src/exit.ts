/*
 * One 'beforeExit' listener for every client, however many there are, so a process with many
 * clients gets no MaxListeners warning. 'beforeExit' fires when the event loop runs dry: the
 * moment lines still sitting in a batcher would otherwise be lost on a natural exit.
 */

export interface ExitFlushable {
  onBeforeExit(): void
}

const clients = new Set<ExitFlushable>()

function onBeforeExit(): void {
  for (const c of clients) c.onBeforeExit()
}

export function registerExitFlush(client: ExitFlushable): void {
  if (clients.size === 0) process.on('beforeExit', onBeforeExit)
  clients.add(client)
}

export function unregisterExitFlush(client: ExitFlushable): void {
  if (!clients.delete(client)) return
  if (clients.size === 0) process.off('beforeExit', onBeforeExit)
}
