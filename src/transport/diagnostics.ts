import diagnosticsChannel from 'node:diagnostics_channel'

/*
 * Request tracing without the client logging into itself: operators subscribe to these channels
 * (as with undici's own `undici:request:*`) and see every attempt. Publishing costs nothing when
 * no one subscribes.
 */

export interface RequestStartMessage {
  /** Push URL without credentials. */
  url: string
  batchId: number
  attempt: number
  entries: number
  bytes: number
}

export interface RequestEndMessage extends RequestStartMessage {
  status: number
  durationMs: number
  /**
   * True when the answer's body was not read to its end (it broke off, or ran past the drain
   * limits of 8 MiB or 1 s) and its socket was destroyed. The status still decided the outcome.
   */
  bodyAbandoned: boolean
}

export interface RequestErrorMessage extends RequestStartMessage {
  error: Error
  durationMs: number
}

export const channels = {
  requestStart: diagnosticsChannel.channel('lokiwire:request:start'),
  requestEnd: diagnosticsChannel.channel('lokiwire:request:end'),
  requestError: diagnosticsChannel.channel('lokiwire:request:error'),
} as const
