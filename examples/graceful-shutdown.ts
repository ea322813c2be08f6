// An HTTP service that loses no log line when it is stopped: on SIGTERM (what Kubernetes, systemd
// and `docker stop` send) it stops taking connections, lets requests in progress finish and log,
// then delivers what is buffered before exiting.
// Run: npx tsx examples/graceful-shutdown.ts              (an embedded test receiver stands in for Loki)
//      LOKI_URL=http://localhost:3100 npx tsx examples/graceful-shutdown.ts
// Then: curl localhost:8080/hello, and stop it with Ctrl-C or `kill <pid>`.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { LokiClient } from 'lokiwire'
import { createLokiTestServer } from 'lokiwire/testing'

const PORT = Number(process.env.PORT ?? 8080)
/** Requests still running get this long to finish once shutdown starts. */
const DRAIN_MS = 10_000
/**
 * Then the client gets this long to deliver. Together they must stay under the orchestrator's
 * grace period (Kubernetes: terminationGracePeriodSeconds, 30 s by default), or SIGKILL comes
 * first and the buffer dies with the process.
 */
const CLOSE_TIMEOUT_MS = 5_000

const embedded = process.env.LOKI_URL ? undefined : await createLokiTestServer()
const client = new LokiClient({
  url: process.env.LOKI_URL ?? embedded!.url,
  labels: { app: 'graceful-shutdown-example' },
  closeTimeoutMs: CLOSE_TIMEOUT_MS,
})
client.on('drop', (e) => console.error(`lokiwire dropped ${e.entries} entries: ${e.reason}`))

const log = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}) =>
  client.push({ line: JSON.stringify({ level, time: Date.now(), msg, ...fields }), labels: { level } })

const server = createServer((req, res) => {
  const started = performance.now()
  // Logged when the response is done, so a request that finishes during shutdown still logs.
  res.on('finish', () => log('info', 'request served', { method: req.method, url: req.url, status: res.statusCode, ms: Math.round(performance.now() - started) }))
  res.end('hello\n')
})
server.listen(PORT, () => {
  // The port actually bound: PORT=0 asks for any free one.
  const { port } = server.address() as AddressInfo
  log('info', 'listening', { port })
  console.log(`listening on http://localhost:${port} (pid ${process.pid}); Ctrl-C or SIGTERM to stop`)
})

let stopping = false
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return
  stopping = true
  log('info', 'shutting down', { signal })

  // 1. No new connections; keep-alive connections with no request in progress are closed now,
  //    the others once their response is sent.
  const drained = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeIdleConnections()
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), DRAIN_MS)))
  if ((await Promise.race([drained, late])) === 'late') {
    log('warn', 'requests still running at the drain deadline were cut off')
    server.closeAllConnections()
  }
  clearTimeout(timer)

  // 2. Only now close the client: every line the requests above logged is in its buffer.
  const result = await client.close({ timeoutMs: CLOSE_TIMEOUT_MS })
  const stats = client.stats()
  console.log(`delivered ${stats.sent.entries} lines; dropped ${stats.dropped.total}${result.timedOut ? ' (close deadline reached)' : ''}`)
  await embedded?.close()

  // Nothing is left holding the event loop, so the process ends by itself: no process.exit()
  // that could cut off a write still in progress.
  process.exitCode = stats.dropped.total === 0 ? 0 : 1
}

// `once`: a second Ctrl-C falls through to Node's default handler and ends the process at once.
process.once('SIGTERM', (s) => void shutdown(s))
process.once('SIGINT', (s) => void shutdown(s))
