/*
 * The receiver in a worker thread of its own (`createLokiTestServer({ thread: true })`).
 *
 * A receiver on the thread that logs can deadlock with pino's worker transport: thread-stream's
 * end() and flushSync() block the main thread in Atomics.wait until the transport's worker has
 * delivered, and that worker waits for a receiver which cannot answer while its thread is
 * blocked. In a thread of its own the receiver keeps answering.
 *
 * What the tests read stays synchronous. The receiver thread posts what changed (new entries,
 * new or updated requests, counters) before it answers the request that changed it, and every
 * read on this side first takes what is waiting on the port with receiveMessageOnPort: whatever
 * a client was answered is visible here at once, whether or not this thread's loop has run.
 * Commands (setFault, reset...) wait in Atomics.wait for the receiver thread to apply them, so a
 * request sent afterwards meets the new behaviour.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads'
import type { Fault, LokiTestServer, LokiTestServerOptions, ReceivedEntry, ReceivedRequest } from './server.js'
import { ObservedReceiver } from './observed.js'

/** Marks workerData meant for the receiver thread. */
export const THREAD_MARK = 'lokiwire:testServerThread'
/** Longest wait for the receiver thread to apply a command. */
const COMMAND_TIMEOUT_MS = 10_000

type Command =
  | { op: 'setFault'; fault: Fault | null }
  | { op: 'queueFaults'; faults: Fault[] }
  | { op: 'reset'; generation: number }
  | { op: 'close' }

/** What the receiver thread posts. */
type Report =
  | { kind: 'ready'; port: number; url: string }
  | { kind: 'failed'; message: string }
  | {
      kind: 'state'
      generation: number
      entries: ReceivedEntry[]
      /** [index, request] for new requests and for those updated since the last report. */
      requests: Array<[number, ReceivedRequest]>
      duplicates: number
      connections: { open: number; peak: number; total: number }
    }

export interface ThreadData {
  [THREAD_MARK]: true
  options: { port?: number; host?: string }
  port: MessagePort
  acks: SharedArrayBuffer
}

let entryUrl: URL | undefined

/** The file the receiver thread runs: the testing entry point, which starts it when it sees THREAD_MARK. */
export function setThreadEntry(url: URL): void {
  entryUrl = url
}

/** Runs inside the receiver thread. */
export async function runServerThread(
  data: ThreadData,
  create: (o: LokiTestServerOptions) => Promise<LokiTestServer>,
): Promise<void> {
  const { port } = data
  const acks = new Int32Array(data.acks)
  let server: LokiTestServer
  try {
    server = await create(data.options)
  } catch (err) {
    port.postMessage({ kind: 'failed', message: (err as Error)?.message ?? String(err) } satisfies Report)
    port.close()
    return
  }
  let generation = 0
  let sentEntries = 0
  let sentRequests = 0
  /** Requests reported before their exchange ended: they change again. */
  const unfinished = new Set<number>()
  const publish = () => {
    const entries = server.entries.slice(sentEntries)
    sentEntries = server.entries.length
    const requests: Array<[number, ReceivedRequest]> = []
    for (const i of unfinished) {
      const r = server.requests[i]
      if (r === undefined) continue
      requests.push([i, r])
      if (r.durationMs !== undefined) unfinished.delete(i)
    }
    for (let i = sentRequests; i < server.requests.length; i++) {
      const r = server.requests[i]!
      requests.push([i, r])
      if (r.durationMs === undefined) unfinished.add(i)
    }
    sentRequests = server.requests.length
    const report: Report = { kind: 'state', generation, entries, requests, duplicates: server.duplicates, connections: { ...server.connections } }
    port.postMessage(report)
  }
  server.on('change', publish)
  port.on('message', (c: Command) => {
    const done = () => {
      Atomics.add(acks, 0, 1)
      Atomics.notify(acks, 0)
    }
    switch (c.op) {
      case 'setFault':
        server.setFault(c.fault)
        return done()
      case 'queueFaults':
        server.queueFaults(...c.faults)
        return done()
      case 'reset':
        generation = c.generation
        sentEntries = 0
        sentRequests = 0
        unfinished.clear()
        server.reset()
        return done()
      case 'close':
        void server.close().then(() => {
          server.off('change', publish)
          port.close()
        })
        return
    }
  })
  port.postMessage({ kind: 'ready', port: server.port, url: server.url } satisfies Report)
}

/** The thread that logs sees the receiver through this: the LokiTestServer API, synchronous reads included. */
class ThreadedLokiTestServer extends ObservedReceiver implements LokiTestServer {
  readonly url: string
  readonly pushUrl: string
  readonly port: number
  readonly #entries: ReceivedEntry[] = []
  readonly #requests: ReceivedRequest[] = []
  #duplicates = 0
  readonly #connections = { open: 0, peak: 0, total: 0 }
  readonly #worker: Worker
  readonly #channel: MessagePort
  readonly #acks: Int32Array
  #generation = 0
  #notifyScheduled = false
  #pendingRequests: ReceivedRequest[] = []
  #failure: string | undefined
  #closing: Promise<void> | undefined

  constructor(worker: Worker, channel: MessagePort, acks: Int32Array, ready: { port: number; url: string }, pushPath: string) {
    super()
    this.#worker = worker
    this.#channel = channel
    this.#acks = acks
    this.port = ready.port
    this.url = ready.url
    this.pushUrl = ready.url + pushPath
    channel.on('message', (r: Report) => {
      if (this.#apply(r)) this.#notify()
    })
    worker.on('error', (err) => {
      this.#failure = `the receiver thread failed: ${err.message}`
    })
  }

  get entries(): ReceivedEntry[] {
    this.#drain()
    return this.#entries
  }

  get requests(): ReceivedRequest[] {
    this.#drain()
    return this.#requests
  }

  get duplicates(): number {
    this.#drain()
    return this.#duplicates
  }

  get connections(): { open: number; peak: number; total: number } {
    this.#drain()
    return this.#connections
  }

  setFault(fault: Fault | null): void {
    this.#command({ op: 'setFault', fault })
  }

  queueFaults(...faults: Fault[]): void {
    this.#command({ op: 'queueFaults', faults })
  }

  reset(): void {
    this.#generation++
    this.#command({ op: 'reset', generation: this.#generation })
    this.#entries.length = 0
    this.#requests.length = 0
    this.#duplicates = 0
    this.#drain()
    this.#notify()
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const finish = () => {
        this.#drain()
        this.#channel.close()
        this.down = true
        this.events.emit('closed')
        resolve()
      }
      // The thread ends by itself once its server has closed every connection.
      this.#worker.once('exit', finish)
      try {
        this.#channel.postMessage({ op: 'close' } satisfies Command)
      } catch {
        void this.#worker.terminate()
      }
    })
    return this.#closing
  }

  /** Sends a command and blocks until the receiver thread has applied it. */
  #command(c: Command): void {
    if (this.#closing !== undefined) return
    const before = Atomics.load(this.#acks, 0)
    try {
      this.#channel.postMessage(c)
    } catch (err) {
      throw new TypeError(
        `lokiwire/testing: ${c.op}: a fault holding a function (partial's reject) cannot be sent to the receiver thread; use createLokiTestServer() without { thread: true } for it`,
        { cause: err },
      )
    }
    const deadline = Date.now() + COMMAND_TIMEOUT_MS
    while (Atomics.load(this.#acks, 0) === before) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`lokiwire/testing: the receiver thread did not apply ${c.op} within ${COMMAND_TIMEOUT_MS} ms${this.#failure ? ` (${this.#failure})` : ''}`)
      Atomics.wait(this.#acks, 0, before, left)
    }
  }

  /** Takes every report waiting on the port; listeners hear of them on the next tick. */
  #drain(): void {
    let applied = false
    for (let m = receiveMessageOnPort(this.#channel); m !== undefined; m = receiveMessageOnPort(this.#channel)) {
      applied = this.#apply(m.message as Report) || applied
    }
    if (applied && !this.#notifyScheduled) {
      this.#notifyScheduled = true
      process.nextTick(() => {
        this.#notifyScheduled = false
        this.#notify()
      })
    }
  }

  #apply(r: Report): boolean {
    if (r.kind !== 'state' || r.generation !== this.#generation) return false
    for (const e of r.entries) this.#entries.push(e)
    for (const [i, req] of r.requests) {
      const was = this.#requests[i]
      if (was === undefined) {
        this.#requests[i] = req
      } else {
        // Updated in place: a test may hold the object it read earlier.
        Object.assign(was, req)
      }
      if (req.durationMs !== undefined && was?.durationMs === undefined) this.#pendingRequests.push(this.#requests[i]!)
    }
    this.#duplicates = r.duplicates
    Object.assign(this.#connections, r.connections)
    return true
  }

  #notify(): void {
    const done = this.#pendingRequests
    this.#pendingRequests = []
    for (const r of done) this.events.emit('request', r)
    this.events.emit('change', this)
  }

  protected override describe(): string {
    const statuses = this.#requests.map((r) => r.status).join(',')
    const c = this.#connections
    return `entries=${this.#entries.length} duplicates=${this.#duplicates} requests=${this.#requests.length} [${statuses}] connections open=${c.open} peak=${c.peak} total=${c.total}${this.#failure ? `; ${this.#failure}` : ''}`
  }
}

/** Starts the receiver in a worker thread and returns its mirror on this thread. */
export async function createThreadedServer(options: LokiTestServerOptions, pushPath: string): Promise<LokiTestServer> {
  if (entryUrl === undefined || entryUrl.pathname.endsWith('.ts')) {
    throw new Error(
      "lokiwire/testing: { thread: true } runs the built package's receiver in a worker thread; import it from 'lokiwire/testing' (built), not from TypeScript sources",
    )
  }
  const { port1, port2 } = new MessageChannel()
  const acks = new SharedArrayBuffer(4)
  const data: ThreadData = { [THREAD_MARK]: true, options: { port: options.port, host: options.host }, port: port2, acks }
  const worker = new Worker(entryUrl, { workerData: data, transferList: [port2] })
  const ready = await new Promise<{ port: number; url: string }>((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`lokiwire/testing: the receiver thread exited (code ${code}) before listening`))
    const onError = (err: Error) => reject(new Error(`lokiwire/testing: the receiver thread failed to start: ${err.message}`, { cause: err }))
    worker.once('exit', onExit)
    worker.once('error', onError)
    port1.once('message', (r: Report) => {
      worker.off('exit', onExit)
      worker.off('error', onError)
      if (r.kind === 'ready') resolve(r)
      else {
        port1.close()
        reject(new Error(`lokiwire/testing: the receiver could not start: ${r.kind === 'failed' ? r.message : 'unexpected report'}`))
      }
    })
  })
  return new ThreadedLokiTestServer(worker, port1, new Int32Array(acks), ready, pushPath)
}
