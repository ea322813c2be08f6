// winston -> Loki with LokiTransport, next to the console, and a shutdown that loses nothing.
// Run: npx tsx examples/winston.ts                        (an embedded test receiver stands in for Loki)
//      LOKI_URL=http://localhost:3100 npx tsx examples/winston.ts
import winston from 'winston'
import { LokiTransport, type LokiBreakerNotice, type LokiDropSummary } from 'lokiwire/winston'
import { createLokiTestServer } from 'lokiwire/testing'

const embedded = process.env.LOKI_URL ? undefined : await createLokiTestServer()

const loki = new LokiTransport({
  url: process.env.LOKI_URL ?? embedded!.url,
  labels: { app: 'winston-example', env: 'dev' },
  labelsFrom: ['service'],
  metadataFrom: ['req_id'],
  closeTimeoutMs: 5000,
})

const logger = winston.createLogger({
  level: 'debug',
  defaultMeta: { service: 'checkout' },
  // timestamp() gives each entry its own time; json() makes the line (info[MESSAGE]).
  format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
  transports: [new winston.transports.Console({ format: winston.format.simple(), level: 'warn' }), loki],
})

// lokiwire reports through 'lokiwire:drop' and 'lokiwire:breaker' on the transport (as on the
// pino stream), and 'warn' on the logger (never 'error', which would crash a logger nobody
// listens to). Print it; logging it through this same logger would feed Loki's trouble back into Loki.
logger.on('warn', (w: LokiDropSummary | LokiBreakerNotice) => console.error(w.message))

for (let i = 0; i < 100; i++) {
  logger.info('order placed', { req_id: `req-${i}`, items: 1 + (i % 3) })
  if (i % 25 === 0) logger.warn('payment provider slow', { req_id: `req-${i}` })
}
logger.debug('cache warm', { entries: 1200 })

// Shutdown: end the logger and wait for 'finish'. It fires once every line is at Loki or
// definitively dropped (within closeTimeoutMs). The transport installs no signal handler:
// call this from yours, e.g. process.once('SIGTERM', shutdown).
async function shutdown(): Promise<void> {
  await new Promise<void>((resolve) => {
    logger.once('finish', () => resolve())
    logger.end()
  })
}
await shutdown()

const stats = loki.client.stats()
console.log(`sent ${stats.sent.entries} entries in ${stats.sent.batches} batches, dropped ${stats.dropped.total}`)
if (embedded) {
  const levels = new Map<string, number>()
  for (const e of embedded.entries) levels.set(e.labels.level!, (levels.get(e.labels.level!) ?? 0) + 1)
  console.log(`the receiver holds ${embedded.entries.length} entries by level: ${JSON.stringify(Object.fromEntries(levels))}`)
  console.log(`one of them: ${embedded.entries[0]!.stream} ${embedded.entries[0]!.line}`)
  await embedded.close()
}
process.exitCode = stats.dropped.total === 0 && (!embedded || embedded.entries.length === stats.sent.entries) ? 0 : 1
