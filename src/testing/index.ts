export { createLokiTestServer, PUSH_PATH } from './server.js'
export type {
  Fault,
  LokiTestServer,
  LokiTestServerEvents,
  LokiTestServerOptions,
  ReceivedEntry,
  ReceivedRequest,
} from './server.js'
export { decodeBody, decodeJsonPush, decodePushRequest, formatSelector, parseSelector } from './decode.js'
export type { DecodedEntry, DecodedPushRequest, DecodedStream } from './decode.js'
