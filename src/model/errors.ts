/**
 * Errors follow undici's shape: one base class, a subclass per family, a stable
 * `code` to branch on, and the original error kept as `cause`.
 *
 * Messages never carry credentials: URLs are printed without userinfo and header
 * values are never included.
 *
 * `instanceof` checks a brand, not the prototype chain: an application can load lokiwire twice
 * (once through `import`, once through `require`, or two copies in node_modules), and an error
 * made by one copy must still be `instanceof` the other copy's class. Each class answers for a
 * `Symbol.for` key of its own, which both copies share through the global symbol registry.
 */


/** Every stable error code lokiwire uses. */
export const ErrorCodes = {
  INVALID_OPTION: 'LOKI_INVALID_OPTION',
  INVALID_URL: 'LOKI_INVALID_URL',
  INVALID_ENTRY: 'LOKI_INVALID_ENTRY',
  HTTP_STATUS: 'LOKI_HTTP_STATUS',
  REQUEST_TIMEOUT: 'LOKI_REQUEST_TIMEOUT',
  NETWORK: 'LOKI_NETWORK',
  TLS: 'LOKI_TLS',
  DNS: 'LOKI_DNS',
  PROXY: 'LOKI_PROXY',
  ABORTED: 'LOKI_ABORTED',
  ENCODE: 'LOKI_ENCODE',
  INTERNAL: 'LOKI_INTERNAL',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** Base class of every error lokiwire creates. Branch on `code`, not on the class name. */
export class LokiError extends Error {
  override name = 'LokiError'
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
  }
}

/** Thrown by the constructor when an option is missing, of the wrong type or out of range. */
export class LokiOptionError extends LokiError {
  override name = 'LokiOptionError'
  /** Dotted path of the offending option, e.g. `retry.maxAttempts`. */
  readonly option: string

  constructor(option: string, message: string, code: ErrorCode = ErrorCodes.INVALID_OPTION) {
    super(code, `Invalid option "${option}": ${message}`)
    this.option = option
  }
}

/**
 * Carried by the 'drop' event of an entry push() refused (`invalid_entry`, `invalid_labels`,
 * `line_too_long`): `field` says which part of the entry was wrong.
 */
export class LokiEntryError extends LokiError {
  override name = 'LokiEntryError'
  /** `entry`, `line`, `timestamp`, `labels`, `labels.<name>`, `metadata` or `metadata.<name>`. */
  readonly field: string

  constructor(field: string, message: string) {
    super(ErrorCodes.INVALID_ENTRY, LokiEntryError.describe(field, message))
    this.field = field
  }

  /** The message such an error has, for reports that do not build the error itself. */
  static describe(field: string, message: string): string {
    return `Invalid entry field "${field}": ${message}`
  }
}

/** Loki (or a proxy in front of it) answered with a status other than 2xx. */
export class LokiHttpError extends LokiError {
  override name = 'LokiHttpError'
  readonly status: number
  /** The first 64 KiB of the response body, decoded as UTF-8 and trimmed. */
  readonly body: string

  constructor(status: number, body: string) {
    super(ErrorCodes.HTTP_STATUS, `Loki answered ${status}${body ? `: ${body}` : ''}`)
    this.status = status
    this.body = body
  }
}

/**
 * An attempt got no complete answer in time: its deadline passed (`requestTimeoutMs`, or what
 * `retry.budgetMs` had left), or the connect (`connectTimeoutMs`) or the wait for headers timed
 * out. A body that is slow after the status is never one: the status already decided.
 */
export class LokiTimeoutError extends LokiError {
  override name = 'LokiTimeoutError'
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.REQUEST_TIMEOUT, message, { cause })
  }
}

/** Codes of the network family: which part of reaching Loki failed. */
export type NetworkErrorCode = typeof ErrorCodes.NETWORK | typeof ErrorCodes.TLS | typeof ErrorCodes.DNS | typeof ErrorCodes.PROXY

/**
 * The connection failed. `LOKI_TLS`: the TLS handshake refused the certificate or the protocol,
 * a configuration error that is not retried. `LOKI_DNS`: the host name did not resolve (retried:
 * DNS flaps). `LOKI_NETWORK`: refused, reset, closed early and the rest.
 */
export class LokiNetworkError extends LokiError {
  override name = 'LokiNetworkError'
  constructor(message: string, cause?: unknown, code: NetworkErrorCode = ErrorCodes.NETWORK) {
    super(code, message, { cause })
  }
}

/** The request was aborted because the client was destroyed or closed past its deadline. */
export class LokiAbortError extends LokiError {
  override name = 'LokiAbortError'
  constructor(message: string, cause?: unknown) {
    super(ErrorCodes.ABORTED, message, { cause })
  }
}

/**
 * Makes `instanceof cls` true for any error that carries the brand of `cls`: a getter keyed by
 * `Symbol.for('lokiwire.error.<name>')` on the class's prototype. Every class is branded, or it
 * would inherit its parent's check and claim its siblings' errors.
 */
function brand(cls: abstract new (...args: never[]) => LokiError, name: string): void {
  const key = Symbol.for(`lokiwire.error.${name}`)
  // Not enumerable: the brand shows in no JSON and no own keys of an error.
  Object.defineProperty(cls.prototype, key, { get: () => true })
  Object.defineProperty(cls, Symbol.hasInstance, {
    value: (value: unknown): boolean => typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[key] === true,
  })
}

brand(LokiError, 'LokiError')
brand(LokiOptionError, 'LokiOptionError')
brand(LokiEntryError, 'LokiEntryError')
brand(LokiHttpError, 'LokiHttpError')
brand(LokiTimeoutError, 'LokiTimeoutError')
brand(LokiNetworkError, 'LokiNetworkError')
brand(LokiAbortError, 'LokiAbortError')
