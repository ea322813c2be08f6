import { hostname } from 'node:os'
import type { LokiPinoStream } from '../adapters/pino.js'
import type { LokiClient } from '../client/client.js'
import { PINO_LEVELS } from '../records/levels.js'

/**
 * The slice of pino's Logger API the demo service calls. A pino logger fits it as it is; where
 * pino is not installed (it is not one of lokiwire's dependencies) `clientLogger` writes the
 * same lines straight into a LokiClient.
 */
export interface ServiceLogger {
  info(obj: Record<string, unknown>, msg: string): void
  warn(obj: Record<string, unknown>, msg: string): void
  error(obj: Record<string, unknown>, msg: string): void
}


export interface ClientLogger extends ServiceLogger {
  /** The line logged with each sequence id, for the receiver-side check. */
  lineOf(seq: number): string | undefined
}

/** Writes pino-shaped NDJSON lines straight into the client, with the level as a stream label. */
export function clientLogger(client: LokiClient): ClientLogger {
  const lines: string[] = []
  const base = { pid: process.pid, hostname: hostname() }
  // pino's numeric levels, so the lines look exactly like a pino service's.
  const log = (level: 'info' | 'warn' | 'error') => (obj: Record<string, unknown>, msg: string) => {
    const time = Date.now()
    const line = JSON.stringify({ level: PINO_LEVELS[level], time, ...base, ...obj, msg })
    if (typeof obj.seq === 'number') lines[obj.seq] = line
    client.push({ line, timestamp: time, labels: { level } })
  }
  return { info: log('info'), warn: log('warn'), error: log('error'), lineOf: (seq) => lines[seq] }
}

type PinoFactory = (options: object, destination: { write(line: string): void }) => ServiceLogger

/** pino, when it can be imported from here: in this repository, or next to an installed lokiwire. */
export async function loadPino(): Promise<PinoFactory | undefined> {
  try {
    const mod = (await import('pino')) as unknown as { default?: PinoFactory; pino?: PinoFactory }
    return mod.default ?? mod.pino
  } catch {
    return undefined
  }
}

/**
 * A real pino logger writing to lokiwire's pino stream. The lines pass through a tee that keeps
 * each one by its sequence id, for the receiver-side check.
 */
export function pinoLogger(pino: PinoFactory, stream: LokiPinoStream): ClientLogger {
  const lines: string[] = []
  const tee = {
    write(chunk: string): void {
      const line = chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk
      const seq = (JSON.parse(line) as { seq?: unknown }).seq
      if (typeof seq === 'number') lines[seq] = line
      stream.write(chunk)
    },
  }
  const logger = pino({ base: { pid: process.pid, hostname: hostname() } }, tee)
  return {
    info: (obj, msg) => logger.info(obj, msg),
    warn: (obj, msg) => logger.warn(obj, msg),
    error: (obj, msg) => logger.error(obj, msg),
    lineOf: (seq) => lines[seq],
  }
}

const ROUTES = ['/api/orders', '/api/orders/:id', '/api/users/:id', '/api/cart', '/healthz'] as const
const TICK_MS = 20

export interface RunningService {
  /** Lines logged so far; their sequence ids are 0 .. logged-1. */
  readonly logged: number
  stop(): void
}

/**
 * A pretend HTTP service: `ratePerSecond` request logs a second, a few slow (warn) and failed
 * (error) ones among them. Every line carries `seq`, a sequence id, so what the receiver holds
 * can be checked line by line against what was logged.
 */
export function startService(log: ServiceLogger, ratePerSecond: number): RunningService {
  const started = performance.now()
  let logged = 0
  const tick = () => {
    const due = Math.floor(((performance.now() - started) * ratePerSecond) / 1000)
    // A late timer catches up, but never by more than a second's worth in one go.
    for (let n = Math.min(due - logged, ratePerSecond); n > 0; n--) {
      const seq = logged++
      const route = ROUTES[seq % ROUTES.length]!
      const ms = Math.round(Math.random() ** 3 * 400)
      const status = Math.random() < 0.01 ? 503 : 200
      if (status >= 500) log.error({ seq, route, status, ms }, 'request failed')
      else if (ms >= 250) log.warn({ seq, route, status, ms }, 'slow request')
      else log.info({ seq, route, status, ms }, 'request served')
    }
  }
  const timer = setInterval(tick, TICK_MS)
  return {
    get logged() {
      return logged
    },
    stop() {
      clearInterval(timer)
    },
  }
}
