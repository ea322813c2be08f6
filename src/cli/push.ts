import { LokiClient } from '../client/client.js'
import { LokiOptionError } from '../model/errors.js'
import type { LokiClientOptions } from '../model/options.js'
import {
  CONNECTION_FLAGS,
  CliUsageError,
  bytes,
  connectionOptions,
  formatFlags,
  int,
  labels,
  list,
  parseFlags,
  str,
  usageFromOptionError,
  type EnvSources,
  type FlagSpec,
} from './args.js'
import type { CliIO } from './io.js'
import { LineSplitter } from '../records/ndjson.js'
import { StdinFeed } from './stdin-feed.js'
import { plural, RateMeter } from './metrics.js'
import { oneLine, outcome, progressLine, type Ending } from './outcome.js'
import { Progress } from './progress.js'
import { createLineMapper, type InputFormat } from './record.js'

const DEFAULT_CLOSE_TIMEOUT_MS = 10_000
/** The client's default maxLineBytes: a longer line would be cut there anyway. */
const MAX_LINE_BYTES = 256 * 1024
/**
 * Reading stops above this share of --max-buffer. The headroom absorbs the chunk being split
 * when the mark is crossed (64 KiB from a pipe) so pausing never turns into dropping.
 */
const HIGH_WATER = 0.8
const PLAIN_PROGRESS_MS = 2000

export const PUSH_FLAGS: readonly FlagSpec[] = [
  ...CONNECTION_FLAGS.slice(0, 1),
  { name: 'labels', type: 'string', multiple: true, value: '<name=value,...>', help: 'Stream labels of every line, e.g. app=api,env=prod. Required' },
  ...CONNECTION_FLAGS.slice(1),
  { name: 'json-labels', type: 'string', multiple: true, value: '<field,...>', help: 'JSON fields lifted into stream labels, e.g. service,region.\nOnly fields with a handful of values: each combination is a stream' },
  { name: 'json-metadata', type: 'string', multiple: true, value: '<field,...>', help: 'JSON fields sent as structured metadata, e.g. trace_id,req_id (Loki 3)' },
  { name: 'format', type: 'string', value: '<auto|text>', help: 'auto: read JSON object lines for time, level and fields;\ntext: ship every line as plain text. Default: auto' },
  { name: 'batch-wait', type: 'string', value: '<ms>', help: 'Longest a line waits before its batch is sent. Default: 1000' },
  { name: 'batch-size', type: 'string', value: '<n>', help: 'Lines per batch at most. Default: 10000' },
  { name: 'max-buffer', type: 'string', value: '<bytes>', help: 'Memory for lines not yet delivered (64m, 512k, ...). Above 80% of it\nstdin is no longer read, so the writer waits instead of lines being lost.\nDefault: 64m' },
  { name: 'max-attempts', type: 'string', value: '<n>', help: 'HTTP attempts per batch on 429, 5xx and network errors. Default: 10' },
  { name: 'retry-budget', type: 'string', value: '<ms>', help: 'Time a batch may spend on attempts and backoff. Default: 60000' },
  { name: 'close-timeout', type: 'string', value: '<ms>', help: 'At end of input or on a signal: deadline to deliver what is left.\nDefault: 10000' },
  { name: 'spool', type: 'string', value: '<dir>', help: 'Keep lines Loki cannot take in time in this directory instead of dropping\nthem; the next run with the same --spool sends them first. One directory\nper running command' },
  { name: 'progress', type: 'boolean', help: 'Progress on stderr even when it is not a terminal (a line every 2 s)' },
  { name: 'quiet', type: 'boolean', help: 'No progress on a terminal; only failures are reported' },
  { name: 'help', type: 'boolean', short: 'h', help: 'Show this help' },
]

export const PUSH_HELP = `Usage: lokiwire push --url <url> --labels <name=value,...> [flags] < input

Reads log lines from stdin and ships them to Loki:
  node app.js | lokiwire push --url http://loki:3100 --labels app=api,env=prod

A line holding a JSON object (pino, bunyan or winston NDJSON) is shipped as it was written, with
  - its timestamp from "time" ("timestamp", "@timestamp"): epoch ms as pino writes it, epoch
    s/us/ns told apart by size, or an ISO 8601 string
  - a "level" label: pino/bunyan numbers mapped to names (30 -> info, 50 -> error), or the
    level string in lower case
  - labels from the --json-labels fields and metadata from the --json-metadata fields
Any other line is shipped as it is, stamped with the time it was read. Empty lines are skipped.

Flags:
${formatFlags(PUSH_FLAGS)}

Progress (lines/s, sent, buffered, retries, dropped, connections) goes to stderr on a terminal.
At end of input lokiwire delivers what is buffered within --close-timeout. On SIGTERM or SIGINT it
stops reading and does the same with what it has read; a second signal stops at once.

Exit status: 0 every line was delivered; 1 lines were dropped (one line on stderr says how many
and why); 2 bad flags or URL; 3 nothing was dropped but lines wait in the --spool directory for
the next run.
`

export async function runPush(argv: readonly string[], io: CliIO): Promise<number> {
  const values = parseFlags(argv, PUSH_FLAGS, 'lokiwire push')
  if (values.help === true) {
    io.stdout.write(PUSH_HELP)
    return 0
  }
  const fromEnv: EnvSources = new Map()
  const conn = connectionOptions(values, io.env, { requireUrl: true }, fromEnv)
  const streamLabels = labels(values, 'labels')
  if (Object.keys(streamLabels).length === 0) {
    throw new CliUsageError('--labels is required: Loki needs at least one stream label, e.g. --labels app=api')
  }
  const format = (str(values, 'format') ?? 'auto') as InputFormat
  if (format !== 'auto' && format !== 'text') throw new CliUsageError(`--format: expected auto or text, got ${JSON.stringify(format)}`)
  if (values.progress === true && values.quiet === true) throw new CliUsageError('--progress and --quiet contradict each other')

  const maxBufferBytes = str(values, 'max-buffer') === undefined ? undefined : bytes(values, 'max-buffer', 0)
  const closeTimeoutMs = int(values, 'close-timeout', DEFAULT_CLOSE_TIMEOUT_MS, 0, 600_000)
  const batch: NonNullable<LokiClientOptions['batch']> = {}
  if (str(values, 'batch-wait') !== undefined) batch.maxWaitMs = int(values, 'batch-wait', 1000)
  if (str(values, 'batch-size') !== undefined) batch.maxEntries = int(values, 'batch-size', 10_000, 1)
  const retry: NonNullable<LokiClientOptions['retry']> = {}
  if (str(values, 'max-attempts') !== undefined) retry.maxAttempts = int(values, 'max-attempts', 10, 1)
  if (str(values, 'retry-budget') !== undefined) retry.budgetMs = int(values, 'retry-budget', 60_000, 1)
  const spoolDir = str(values, 'spool')

  let client: LokiClient
  try {
    client = new LokiClient({
      ...conn,
      url: conn.url!,
      labels: streamLabels,
      batch,
      retry,
      ...(maxBufferBytes !== undefined ? { maxBufferBytes } : {}),
      maxLineBytes: MAX_LINE_BYTES,
      closeTimeoutMs,
      // Closing is done here, with --close-timeout, whatever ends the input.
      flushOnExit: false,
      ...(spoolDir !== undefined ? { spool: { dir: spoolDir } } : {}),
    })
  } catch (err) {
    if (err instanceof LokiOptionError) throw usageFromOptionError(err, fromEnv)
    throw err
  }

  const showProgress = values.progress === true || (io.stderr.isTTY === true && values.quiet !== true)
  return pipe(client, io, {
    mapLine: createLineMapper({ format, jsonLabels: list(values, 'json-labels'), jsonMetadata: list(values, 'json-metadata') }),
    closeTimeoutMs,
    showProgress,
  })
}

interface PipeOptions {
  mapLine: ReturnType<typeof createLineMapper>
  closeTimeoutMs: number
  showProgress: boolean
}

/**
 * The wiring of one run: stdin into the feed (back-pressure, src/cli/stdin-feed.ts), signals and
 * end of input into the client's close, and the outcome (src/cli/outcome.ts) into the exit status.
 */
async function pipe(client: LokiClient, io: CliIO, opts: PipeOptions): Promise<number> {
  const { stdin, stderr } = io
  const splitter = new LineSplitter(MAX_LINE_BYTES)
  const highWater = client.limits.maxBufferBytes * HIGH_WATER
  const feed = new StdinFeed(splitter, { push: (line) => client.push(opts.mapLine(line)), full: () => client.bufferUsedBytes > highWater }, stdin)

  let lastError: string | undefined
  client.on('failed', (e) => {
    lastError = oneLine(e.error.message)
  })
  client.on('drop', (e) => {
    if (e.error) lastError = oneLine(e.error.message)
  })
  // Room is made by deliveries and by drops.
  client.on('sent', () => feed.room())
  client.on('drop', () => feed.room())

  const rate = new RateMeter()
  rate.rate(0)
  const progress = opts.showProgress
    ? new Progress({ out: stderr, live: stderr.isTTY === true, intervalMs: PLAIN_PROGRESS_MS, render: () => progressLine(client.stats(), rate.rate(feed.read), feed.read, feed.paused) })
    : undefined
  if (progress && stdin.isTTY) stderr.write('lokiwire: reading lines from the terminal; Ctrl-D ends the input\n')
  progress?.start()

  // Paused stdin and the client's timers (unref'd by design) hold nothing open: without this, a
  // run waiting on a retry with input paused would simply end, and Node would exit mid-delivery.
  const keepAlive = setInterval(() => {}, 1 << 30)
  let onSignal: (signal: NodeJS.Signals) => void = () => {}
  const ending = await new Promise<Ending>((resolve) => {
    stdin.on('data', (chunk: Buffer | string) => feed.write(chunk))
    stdin.once('end', () => resolve({ kind: 'eof' }))
    stdin.once('error', (err: Error) => resolve({ kind: 'error', message: `reading stdin failed: ${(err as NodeJS.ErrnoException).code ?? err.message}` }))
    onSignal = (signal) => {
      if (feed.stopped) {
        // Asked twice: the operator wants out now. What is not delivered is counted as destroyed.
        void client.destroy()
        return
      }
      resolve({ kind: 'signal', signal })
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  if (ending.kind !== 'eof') {
    // Nothing written after the signal is taken: it could not be delivered within the deadline
    // anyway, and the writer learns so from EPIPE instead of a silent loss.
    stdin.pause()
    stdin.destroy()
  }
  feed.end()

  if (progress && ending.kind === 'signal') progress.note(`lokiwire: ${ending.signal}: stopped reading; delivering ${plural(feed.read, 'line')} read (deadline ${opts.closeTimeoutMs} ms)`)
  await client.close({ timeoutMs: opts.closeTimeoutMs })
  clearInterval(keepAlive)
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)

  if (progress) {
    progress.print()
    progress.stop()
  }
  const { status, message } = outcome({
    stats: client.stats(),
    ending,
    lastError,
    closeTimeoutMs: opts.closeTimeoutMs,
    cutLines: splitter.cut,
    maxLineBytes: MAX_LINE_BYTES,
    verbose: progress !== undefined,
  })
  if (message !== undefined) stderr.write(message)
  return status
}
