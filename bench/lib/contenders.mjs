// The contenders: one setup per library and mode, each configured the way its documentation
// says, with the shutdown its documentation gives. Incumbent settings are listed in `settings`
// because RESULTS.md must say how they were configured.
import { once } from 'node:events'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const LABELS = { app: 'bench' }
// Incumbents send every `interval` seconds: 1 s matches lokiwire's default maxWaitMs, so all
// contenders get the same latency budget (their default is 5 s).
const INTERVAL_S = 1
const PROBE_TARGET = new URL('./probe-target.mjs', import.meta.url).pathname

/** The same short record through every logger; `seq` is what the receiver counts. */
const directLine = (i) => `{"level":"info","time":${Date.now()},"msg":"request handled","seq":${i},"user":"u${i % 100}"}`

function pinoTransport(pino, target, options, probe) {
  // The probe wraps the same target so the worker's heap can be measured; only the stall
  // scenario asks for it, every other run loads the target by its published name.
  return probe
    ? pino.transport({ target: PROBE_TARGET, options: { ...options, benchTarget: target } })
    : pino.transport({ target, options })
}

async function pinoWorker(target, options, probe) {
  const pino = require('pino')
  const transport = pinoTransport(pino, target, options, probe)
  // Worker start-up is not part of any measured figure: an app creates its logger at boot.
  await once(transport, 'ready')
  const logger = pino(transport)
  return {
    log: (i) => logger.info({ seq: i, user: `u${i % 100}` }, 'request handled'),
    // pino's logger.flush(cb): with a worker transport, cb runs once the worker has taken every
    // line (and, for lokiwire/pino, delivered it).
    flush: () => new Promise((resolve) => logger.flush(() => resolve())),
    async close() {
      // pino's documented shutdown is process exit, which runs exactly this. end() blocks until
      // the worker's destination has closed (delivery is over by then); the worker is unref'd,
      // so waiting for its 'close' event would outlive the event loop.
      transport.end()
    },
  }
}

function winstonLogger(transport) {
  const winston = require('winston')
  return winston.createLogger({ level: 'info', format: winston.format.json(), transports: [transport] })
}

/**
 * Each contender's `loggerAlone` is the floor it runs on top of (the same logger, or the same app,
 * without shipping): the report subtracts it to show what shipping itself costs.
 */
export const CONTENDERS = [
  {
    id: 'lokiwire-client-protobuf',
    label: 'lokiwire client (protobuf)',
    family: 'lokiwire',
    loggerAlone: 'floor-app-alone',
    settings: 'LokiClient defaults: protobuf+snappy, batch 10,000 entries / 1 MiB / 1 s, concurrency 2, 64 MiB buffer; `await client.close()`',
    async check() {
      const { LokiClient } = await import('lokiwire')
      if (typeof LokiClient !== 'function') throw new Error('lokiwire exports no LokiClient')
    },
    async setup({ url }) {
      const { LokiClient } = await import('lokiwire')
      const client = new LokiClient({ url, labels: { ...LABELS, level: 'info' } })
      return { log: (i) => client.push({ line: directLine(i) }), flush: () => client.flush(), close: () => client.close(), client }
    },
  },
  {
    id: 'lokiwire-client-json',
    label: 'lokiwire client (JSON+gzip)',
    family: 'lokiwire',
    loggerAlone: 'floor-app-alone',
    settings: "LokiClient defaults with `encoding: 'json'` (gzip level 1); `await client.close()`",
    async check() {
      const { LokiClient } = await import('lokiwire')
      if (typeof LokiClient !== 'function') throw new Error('lokiwire exports no LokiClient')
    },
    async setup({ url }) {
      const { LokiClient } = await import('lokiwire')
      const client = new LokiClient({ url, labels: { ...LABELS, level: 'info' }, encoding: 'json' })
      return { log: (i) => client.push({ line: directLine(i) }), close: () => client.close(), client }
    },
  },
  {
    id: 'lokiwire-pino-worker',
    label: "lokiwire pino worker ('lokiwire/pino')",
    family: 'lokiwire',
    loggerAlone: 'floor-pino-worker',
    worker: true,
    settings: "pino.transport({ target: 'lokiwire/pino' }) with client defaults; `transport.end()` (what pino runs at exit)",
    async check() {
      require.resolve('lokiwire/pino')
      const mod = await import('lokiwire/pino')
      if (typeof mod.default !== 'function') throw new Error("'lokiwire/pino' has no default export (the worker target)")
    },
    setup: ({ url, probe }) => pinoWorker('lokiwire/pino', { url, labels: LABELS, onFailure: 'stderr' }, probe),
  },
  {
    id: 'lokiwire-winston',
    label: 'lokiwire winston (LokiTransport)',
    family: 'lokiwire',
    loggerAlone: 'floor-winston',
    settings: "new LokiTransport({ url, labels }) with client defaults, winston json format; `logger.end()`, wait for the transport's 'finish'",
    async check() {
      const mod = await import('lokiwire/winston')
      if (typeof mod.LokiTransport !== 'function') throw new Error("'lokiwire/winston' exports no LokiTransport")
    },
    async setup({ url }) {
      const { LokiTransport } = await import('lokiwire/winston')
      const transport = new LokiTransport({ url, labels: LABELS, onFailure: 'stderr' })
      const logger = winstonLogger(transport)
      return {
        log: (i) => logger.info('request handled', { seq: i, user: `u${i % 100}` }),
        flush: () => transport.flush(),
        async close() {
          const finished = once(transport, 'finish')
          logger.end()
          await finished
        },
      }
    },
  },
  {
    id: 'lokiwire-pino-stream',
    label: 'lokiwire pino in-process (lokiStream)',
    family: 'lokiwire',
    loggerAlone: 'floor-pino-inprocess',
    extra: true,
    settings: 'pino(lokiStream({ url, labels })) with client defaults; `await stream.close()`',
    async check() {
      const mod = await import('lokiwire/pino')
      if (typeof mod.lokiStream !== 'function') throw new Error("'lokiwire/pino' exports no lokiStream")
    },
    async setup({ url }) {
      const pino = require('pino')
      const { lokiStream } = await import('lokiwire/pino')
      const stream = lokiStream({ url, labels: LABELS, onFailure: 'stderr' })
      const logger = pino(stream)
      return { log: (i) => logger.info({ seq: i, user: `u${i % 100}` }, 'request handled'), close: () => stream.close() }
    },
  },
  {
    id: 'pino-loki-inprocess',
    label: 'pino-loki (in-process)',
    family: 'pino-loki',
    loggerAlone: 'floor-pino-inprocess',
    settings: `pino(pinoLoki({ host, labels, batching: { interval: ${INTERVAL_S}, maxBufferSize: 0 } })): JSON, uncompressed; maxBufferSize 0 = unbounded (the default 10,000 drops the oldest lines of any burst); \`stream.end()\`, wait for 'close'`,
    async check() {
      await import('pino-loki')
    },
    async setup({ url }) {
      const pino = require('pino')
      const { pinoLoki } = await import('pino-loki')
      const stream = pinoLoki({ host: url, labels: LABELS, batching: { interval: INTERVAL_S, maxBufferSize: 0 } })
      const logger = pino(stream)
      return {
        log: (i) => logger.info({ seq: i, user: `u${i % 100}` }, 'request handled'),
        async close() {
          const closed = once(stream, 'close')
          stream.end()
          await closed
        },
      }
    },
  },
  {
    id: 'pino-loki-worker',
    label: "pino-loki (worker, target 'pino-loki')",
    family: 'pino-loki',
    loggerAlone: 'floor-pino-worker',
    worker: true,
    settings: `pino.transport({ target: 'pino-loki', options: { host, labels, batching: { interval: ${INTERVAL_S}, maxBufferSize: 0 } } }); \`transport.end()\` (what pino runs at exit)`,
    async check() {
      require.resolve('pino-loki')
    },
    setup: ({ url, probe }) =>
      pinoWorker('pino-loki', { host: url, labels: LABELS, batching: { interval: INTERVAL_S, maxBufferSize: 0 } }, probe),
  },
  {
    id: 'winston-loki-protobuf',
    label: 'winston-loki (protobuf)',
    family: 'winston-loki',
    loggerAlone: 'floor-winston',
    settings: `new LokiTransport({ host, labels, interval: ${INTERVAL_S} }): protobuf+snappy (its default), batching on, no request timeout of its own (its default; Node's global HTTP agent still ends a socket idle for 5 s, after which it waits its fixed 60 s before sending again); \`await transport.close()\``,
    async check() {
      require.resolve('winston-loki')
    },
    setup: ({ url }) => winstonLoki(url, false),
  },
  {
    id: 'winston-loki-json',
    label: 'winston-loki (JSON)',
    family: 'winston-loki',
    loggerAlone: 'floor-winston',
    settings: `as above with \`json: true\` (uncompressed JSON)`,
    async check() {
      require.resolve('winston-loki')
    },
    setup: ({ url }) => winstonLoki(url, true),
  },
]

function winstonLoki(url, json) {
  const LokiTransport = require('winston-loki')
  const errors = []
  const transport = new LokiTransport({
    host: url,
    labels: LABELS,
    json,
    interval: INTERVAL_S,
    onConnectionError: (err) => errors.push(err),
  })
  const logger = winstonLogger(transport)
  return {
    log: (i) => logger.info('request handled', { seq: i, user: `u${i % 100}` }),
    async close() {
      // Its documented way to wait for the last batch: close() resolves after the final send.
      await transport.close()
    },
    errors,
  }
}

// Floors: the logger alone writing to /dev/null, or for the client-direct contenders the app
// alone. No transport, whatever its design, can ship faster or with less CPU than its logger
// (or the app building its lines) costs on its own; they put the targets in proportion.
export const FLOORS = [
  {
    id: 'floor-app-alone',
    label: 'app alone (client-direct lines built, handed to a no-op)',
    family: 'floor',
    settings: "the client-direct contenders' line built for every record and handed to a function that only adds up the lines' lengths (so the lines cannot be optimised away); no library loaded; nothing to close",
    floor: true,
    async check() {},
    async setup() {
      // The sum is read at close, so V8 cannot prove the lines dead and skip building them.
      let chars = 0
      const sink = (line) => {
        chars += line.length
      }
      return {
        log: (i) => sink(directLine(i)),
        async close() {
          if (chars === 0) throw new Error('the app-alone floor built no line')
        },
      }
    },
  },
  {
    id: 'floor-pino-inprocess',
    label: 'pino → /dev/null (in-process, sonic-boom)',
    family: 'floor',
    settings: "pino(pino.destination({ dest: '/dev/null', sync: false })); `flushSync()` and `end()`",
    floor: true,
    async check() {
      require.resolve('pino')
    },
    async setup() {
      const pino = require('pino')
      const dest = pino.destination({ dest: '/dev/null', sync: false })
      const logger = pino(dest)
      return {
        log: (i) => logger.info({ seq: i, user: `u${i % 100}` }, 'request handled'),
        async close() {
          dest.flushSync()
          dest.end()
        },
      }
    },
  },
  {
    id: 'floor-pino-worker',
    label: "pino → /dev/null (worker, target 'pino/file')",
    family: 'floor',
    settings: "pino.transport({ target: 'pino/file', options: { destination: '/dev/null' } }); `transport.end()`",
    floor: true,
    worker: true,
    async check() {
      require.resolve('pino')
    },
    setup: () => pinoWorker('pino/file', { destination: '/dev/null' }, false),
  },
  {
    id: 'floor-winston',
    label: 'winston → a stream that discards',
    family: 'floor',
    settings: 'winston json format into a Stream transport over a Writable that drops every chunk; `logger.end()`, wait for the transport\'s \'finish\'',
    floor: true,
    async check() {
      require.resolve('winston')
    },
    async setup() {
      const winston = require('winston')
      const { Writable } = require('node:stream')
      const transport = new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) })
      const logger = winstonLogger(transport)
      return {
        log: (i) => logger.info('request handled', { seq: i, user: `u${i % 100}` }),
        async close() {
          const finished = once(transport, 'finish')
          logger.end()
          await finished
        },
      }
    },
  },
]

export const byId = new Map([...CONTENDERS, ...FLOORS].map((c) => [c.id, c]))
