import { ErrorCodes, LokiNetworkError } from '../model/errors.js'

/**
 * Answers a proxy gives to CONNECT that a retry cannot change: it wants credentials we do not
 * have or that it refused (407), or its policy forbids the destination (403). Reported after one
 * attempt, like a TLS configuration error. Any other answer (502, 503, 504: the proxy could not
 * reach Loki) is an outage, and retried.
 */
const FINAL_PROXY_STATUSES = new Set([403, 407])

/**
 * Raised through undici's connect callback, so it reaches the transport as the request's error.
 * Users see a LokiNetworkError with code ErrorCodes.PROXY; the subclass stays inside the transport.
 */
export class ProxyRefusedError extends LokiNetworkError {
  /** The proxy's answer to CONNECT. */
  readonly status: number
  /** True when a retry could succeed (the proxy could not reach Loki, or was busy). */
  readonly retryable: boolean

  constructor(proxy: string, target: string, status: number) {
    super(`the proxy ${proxy} refused to open a tunnel to ${target}: it answered ${status} to CONNECT${status === 407 ? ' (proxy credentials missing or refused)' : ''}`, undefined, ErrorCodes.PROXY)
    this.status = status
    this.retryable = !FINAL_PROXY_STATUSES.has(status)
  }
}
