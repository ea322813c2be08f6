export { LokiClient } from './client.js'
export type { CloseOptions, FlushOptions, FlushResult, LokiClientStats } from './client.js'
export type {
  BatchOptions,
  BreakerOptions,
  LokiClientOptions,
  RetryOptions,
  TlsOptions,
} from './options.js'
export type { BreakerEvent, DropEvent, FailedEvent, LokiClientEvents, RetryEvent, SentEvent, SpoolEvent } from './events.js'
export type { SpoolOptions } from './spool.js'
export type { BreakerState } from './breaker.js'
export type { DropReason, LogEntry } from './types.js'
export {
  ErrorCodes,
  LokiAbortError,
  LokiEntryError,
  LokiError,
  LokiHttpError,
  LokiNetworkError,
  LokiOptionError,
  LokiTimeoutError,
} from './errors.js'
export type { ErrorCode } from './errors.js'
export type { RequestEndMessage, RequestErrorMessage, RequestStartMessage } from './diagnostics.js'
export { VERSION } from './version.js'
