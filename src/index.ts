export { LokiClient } from './client/client.js'
export type { CloseOptions, FlushOptions, FlushResult, LokiClientStats } from './client/client.js'
export type {
  BatchOptions,
  BreakerOptions,
  LokiClientOptions,
  RetryOptions,
  TlsOptions,
} from './model/options.js'
export type { BreakerEvent, DropEvent, FailedEvent, LokiClientEvents, RetryEvent, SentEvent, SpoolEvent } from './model/events.js'
export type { SpoolOptions } from './spool/spool.js'
export type { BreakerState } from './pipeline/breaker.js'
export type { DropReason, FailureClass, LogEntry } from './model/types.js'
export {
  ErrorCodes,
  LokiAbortError,
  LokiEntryError,
  LokiError,
  LokiHttpError,
  LokiNetworkError,
  LokiOptionError,
  LokiTimeoutError,
} from './model/errors.js'
export type { ErrorCode } from './model/errors.js'
export type { RequestEndMessage, RequestErrorMessage, RequestStartMessage } from './transport/diagnostics.js'
export { VERSION } from './model/version.js'
