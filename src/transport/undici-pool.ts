/*
 * The part of the transport that needs undici. undici costs a process about 20 MB and a good
 * share of its start-up, and a service that imports the client may not send a batch for a
 * while, or ever: the transport loads this module with import() on its first attempt, not at
 * import or construction.
 */
import type { Socket } from 'node:net'
import { buildConnector, errors, Pool } from 'undici'
import { FetchPool, isUndiciPool, type HttpPool } from './fetch.js'
import { ProxyTunnel } from './proxy.js'
import type { ResolvedOptions } from '../model/options.js'

/** The connection pool the transport sends through, with what closing it needs. */
export interface HttpStack {
  pool: HttpPool
  /** The CONNECT pool of a proxy, whose sockets the transport also tracks. */
  tunnel: ProxyTunnel | undefined
}

/**
 * undici's Pool to Loki, sized to the client's concurrency, every socket it opens tracked by
 * `track` from the moment its connect starts. Where the runtime's `undici` is a stand-in without
 * a working Pool, a FetchPool of the same size instead (see isUndiciPool). `http` forces undici.
 */
export function openStack(opts: ResolvedOptions, http: 'undici' | undefined, sockets: Set<Socket>,
  track: (c: buildConnector.connector) => buildConnector.connector): HttpStack {
  if (http === undefined && !isUndiciPool(Pool)) return { pool: new FetchPool(opts), tunnel: undefined }
  // The options undici's Pool would give its own connector (its defaults for the rest).
  const connector = buildConnector({ ...opts.tls, timeout: opts.connectTimeoutMs })
  const tunnel = opts.proxy === undefined
    ? undefined
    : new ProxyTunnel(opts.proxy, { connectTimeoutMs: opts.connectTimeoutMs, concurrency: opts.concurrency }, sockets, track)
  const pool = new Pool(opts.origin, {
    connections: opts.concurrency,
    pipelining: 1,
    headersTimeout: opts.requestTimeoutMs,
    bodyTimeout: opts.requestTimeoutMs,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    connect: tunnel === undefined ? track(connector) : tunnel.connector(connector),
  })
  return { pool, tunnel }
}

/** The error a tracked socket is destroyed with: undici's connect callback then ends its bookkeeping. */
export function destroyedError(): Error {
  return new errors.ClientDestroyedError()
}
