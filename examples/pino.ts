// pino -> Loki through pino's worker transport (the default) or in-process (MODE=stream).
// Run: npm run build && npx tsx examples/pino.ts        (an embedded test receiver stands in for Loki)
//      MODE=stream npx tsx examples/pino.ts
//      LOKI_URL=http://localhost:3100 npx tsx examples/pino.ts
import pino from 'pino'
import { lokiStream, type LokiDropSummary, type LokiPinoOptions } from 'lokiwire/pino'
import { createLokiTestServer } from 'lokiwire/testing'

const embedded = process.env.LOKI_URL ? undefined : await createLokiTestServer()

// Plain data only: in worker mode these options are copied into the transport thread.
const options: LokiPinoOptions = {
  url: process.env.LOKI_URL ?? embedded!.url,
  labels: { app: 'pino-example', env: 'dev' },
  // Few values each: fine as labels. Never ids or paths (one Loki stream per distinct value).
  labelsFrom: ['service'],
  // Per-request values go to structured metadata: queryable, no stream cost.
  metadataFrom: ['req_id', 'trace_id'],
  // Kept under thread-stream's ~10 s wait at exit; see the README.
  closeTimeoutMs: 5000,
}

let logger: pino.Logger
if (process.env.MODE === 'stream') {
  const stream = lokiStream(options)
  // Report lokiwire's own trouble somewhere other than this logger: no feedback loop.
  stream.on('lokiwire:drop', (s: LokiDropSummary) => console.error(s.message))
  logger = pino({ base: { service: 'checkout' } }, stream)
  // In-process, lines are delivered by this thread: close the stream before the process ends.
  process.once('SIGTERM', () => void stream.close().then(() => process.exit(0)))
} else {
  // An application writes target: 'lokiwire/pino'. In this repository tsx maps that name to the
  // TypeScript source (tsconfig paths), which pino's worker thread cannot load: name the build.
  const target = new URL('../dist/pino/index.js', import.meta.url).href
  const transport = pino.transport<LokiPinoOptions>({ target, options })
  // The worker posts its reports to this thread as events on pino's transport stream.
  transport.on('lokiwire:drop', (s: LokiDropSummary) => console.error(s.message))
  logger = pino({ base: { service: 'checkout' } }, transport)
  // Graceful stop: stop producing, then exit. pino's exit hook ends the transport, which
  // delivers what is buffered (within closeTimeoutMs) before the process goes.
  process.once('SIGTERM', () => process.exit(0))
}

let logged = 0
for (let i = 0; i < 100; i++) {
  const req = logger.child({ req_id: `req-${i}`, trace_id: `trace-${i % 7}` })
  req.info({ items: 1 + (i % 3), ms: 5 + (i % 40) }, 'order placed')
  logged++
  if (i % 25 === 0) {
    req.warn({ retry: 1 }, 'payment provider slow')
    logged++
  }
}
logger.error(new Error('inventory service unreachable'), 'degraded mode')
logged++

// pino 10: the callback runs once everything logged so far is at Loki (or closeTimeoutMs passed).
await new Promise<void>((resolve) => logger.flush(() => resolve()))

if (embedded) {
  const streams = new Set(embedded.entries.map((e) => e.stream))
  console.log(`the receiver holds ${embedded.entries.length} entries in ${streams.size} streams: ${[...streams].join(' ')}`)
  const sample = embedded.entries[1]!
  console.log(`one of them: ${sample.stream} metadata=${JSON.stringify(sample.metadata)} line=${sample.line}`)
  // The receiver lives in this thread: it must be gone before the exit hook blocks this thread
  // waiting for the worker. Everything has been delivered already.
  await embedded.close()
  process.exitCode = embedded.entries.length === logged ? 0 : 1
}
// Nothing else to do: the process ends naturally, and the transport closes on the way out.
