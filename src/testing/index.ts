import { pathToFileURL } from 'node:url'
import { isMainThread, workerData } from 'node:worker_threads'
import { createLokiTestServer } from './server.js'
import { runServerThread, setThreadEntry, THREAD_MARK, type ThreadData } from './threaded.js'

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

// This file is also what the receiver thread of `{ thread: true }` runs. In the CommonJS build
// __filename names it; import.meta.url there would name a shared chunk.
setThreadEntry(typeof __filename === 'string' ? pathToFileURL(__filename) : new URL(import.meta.url))
if (!isMainThread && typeof workerData === 'object' && workerData !== null && (workerData as Partial<ThreadData>)[THREAD_MARK] === true) {
  void runServerThread(workerData as ThreadData, createLokiTestServer)
}
