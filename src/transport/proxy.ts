import type { Socket } from 'node:net'
import { buildConnector, Pool } from 'undici'
import type { ResolvedProxy } from '../model/proxy.js'
import { ProxyRefusedError } from './refused.js'

/**
 * Opens each of the transport's connections as a CONNECT tunnel through `proxy`, then speaks
 * TLS to Loki through it when Loki's URL is https. undici's own ProxyAgent would put an Agent,
 * a second pool and its own connector between us and the sockets; this keeps the transport's
 * one Pool (its `connections` still bound the tunnels) and lets every socket be tracked from the
 * start of its connect, so close() and destroy() leave nothing behind through a proxy either.
 *
 * The CONNECT itself goes through a small undici Pool to the proxy: undici parses the proxy's
 * answer and hands over the socket (`Dispatcher.connect`), and that socket is the tunnel.
 */
export class ProxyTunnel {
  readonly #proxy: ResolvedProxy
  readonly #client: Pool
  readonly #sockets: Set<Socket>

  /**
   * @param wrap  wraps a connector so the sockets it makes are tracked (the transport's own
   *   `trackingConnector`), for the raw sockets to the proxy.
   */
  constructor(proxy: ResolvedProxy, opts: { connectTimeoutMs: number; concurrency: number }, sockets: Set<Socket>,
    wrap: (c: buildConnector.connector) => buildConnector.connector) {
    this.#proxy = proxy
    this.#sockets = sockets
    this.#client = new Pool(proxy.origin, {
      // One CONNECT per tunnel the transport's pool asks for; the socket leaves this pool with it.
      connections: opts.concurrency,
      pipelining: 1,
      // A proxy that accepts but never answers CONNECT is a connect that does not complete.
      headersTimeout: opts.connectTimeoutMs,
      connect: wrap(buildConnector({ timeout: opts.connectTimeoutMs })),
    })
  }

  /**
   * A connector for the transport's Pool. `endpoint` is the connector Loki would get without a
   * proxy (its TLS options, its timeout); it runs over the tunnel's socket for an https Loki.
   */
  connector(endpoint: buildConnector.connector): buildConnector.connector {
    return (options, callback) => {
      const port = options.port || (options.protocol === 'https:' ? '443' : '80')
      // `hostname` keeps an IPv6 address's brackets, as the CONNECT target must.
      const target = `${options.hostname}:${port}`
      const headers: Record<string, string> = { host: target }
      if (this.#proxy.authorization !== undefined) headers['proxy-authorization'] = this.#proxy.authorization
      this.#client.connect({ path: target, headers }).then(({ socket: duplex, statusCode }) => {
        // The tunnel is the TCP (or TLS, for an https proxy) socket undici opened to the proxy.
        const socket = duplex as Socket
        if (statusCode !== 200) {
          socket.destroy()
          callback(new ProxyRefusedError(this.#proxy.displayUrl, target, statusCode), null)
          return
        }
        if (options.protocol !== 'https:') {
          callback(null, socket)
          return
        }
        const tls = (endpoint as (o: buildConnector.Options, cb: buildConnector.Callback) => unknown)({ ...options, httpSocket: socket }, callback)
        // The TLS socket over the tunnel is tracked too: destroying it is what ends the tunnel.
        if (tls !== null && typeof tls === 'object' && typeof (tls as Socket).destroy === 'function') {
          const s = tls as Socket
          this.#sockets.add(s)
          s.once('close', () => this.#sockets.delete(s))
        }
      }, (err: unknown) => {
        callback(err instanceof Error ? err : new Error(String(err)), null)
      })
    }
  }

  async close(): Promise<void> {
    if (!this.#client.closed && !this.#client.destroyed) await this.#client.close()
  }

  async destroy(): Promise<void> {
    if (!this.#client.destroyed) await this.#client.destroy()
  }
}
