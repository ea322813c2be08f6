// Micro benchmarks, run under tsx because the encoders are internal (not exported by the
// package): push() cost per entry, and each encoder on the same lines the client-direct burst
// sends, in batches of the client's default size. protobuf+snappy looped over those batches is
// the encoder-only ceiling that the end-to-end rate is compared with.
import { gzipSync } from 'node:zlib'
import { LokiClient } from 'lokiwire'
import { buildRequest, encodeBodySync, encodeJson, EntryBuffer } from '../../src/encode/index.ts'

const cfg = JSON.parse(process.argv[2])
const emit = (m) => process.stdout.write(`@@bench ${JSON.stringify(m)}\n`)

const LINES = cfg.lines
const BATCH = 10_000
const BASE_MS = 1_764_000_000_000
const selector = '{app="bench", level="info"}'
const labels = { app: 'bench', level: 'info' }

const lines = Array.from({ length: LINES }, (_, i) => `{"level":"info","time":${BASE_MS + Math.floor(i / 200)},"msg":"request handled","seq":${i},"user":"u${i % 100}"}`)
const lineBytes = lines.reduce((n, l) => n + Buffer.byteLength(l), 0)

// Batches of those lines, 200 per millisecond. The client encodes each entry when it is pushed
// and puts the stream header in front at the cut; an encoder pass here does both, so it is the
// whole encoding work of a batch, with the same reused per-stream buffer the client keeps.
const batches = []
for (let b = 0; b < LINES; b += BATCH) batches.push({ from: b, to: Math.min(LINES, b + BATCH) })
const entryBuffer = new EntryBuffer()
function encodeBatch({ from, to }) {
  // ASCII lines: length is the UTF-8 byte length. Distinct lines keep nanosecond offset 0.
  for (let i = from; i < to; i++) entryBuffer.append(BASE_MS + Math.floor(i / 200), 0, lines[i], lines[i].length, undefined)
  const data = buildRequest([{ labels, selector, records: entryBuffer.records(), count: entryBuffer.count }])
  entryBuffer.reset()
  return data
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

function encoder(name, fn) {
  let outBytes = 0
  const pass = () => {
    outBytes = 0
    const t = process.hrtime.bigint()
    for (const batch of batches) outBytes += fn(encodeBatch(batch)).length
    return Number(process.hrtime.bigint() - t) / 1e6
  }
  pass()
  pass()
  const times = []
  const until = performance.now() + cfg.minMs
  do times.push(pass())
  while (performance.now() < until || times.length < 3)
  const ms = median(times)
  emit({
    kind: 'encoder',
    name,
    entriesPerSec: (LINES / ms) * 1000,
    mbPerSec: (lineBytes / 1e6 / ms) * 1000,
    outBytesPerEntry: outBytes / LINES,
    passes: times.length,
  })
}

encoder('protobuf (no compression)', (d) => d.request)
encoder('protobuf+snappy', (d) => encodeBodySync(d, { encoding: 'protobuf', gzipLevel: 0 }).body)
encoder('JSON (no compression)', (d) => Buffer.from(encodeJson(d)))
encoder('JSON+gzip level 1', (d) => gzipSync(Buffer.from(encodeJson(d)), { level: 1 }))

// push() alone: limits high enough that no batch is cut, so nothing is encoded or sent.
{
  const N = 20_000
  const samples = []
  const until = performance.now() + cfg.minMs
  do {
    const client = new LokiClient({
      url: cfg.url,
      labels,
      flushOnExit: false,
      batch: { maxEntries: 1_000_000, maxBytes: 3 * 1024 * 1024, maxWaitMs: 60_000 },
    })
    const t = process.hrtime.bigint()
    for (let i = 0; i < N; i++) client.push({ line: lines[i] })
    samples.push(Number(process.hrtime.bigint() - t) / N)
    await client.destroy()
  } while (performance.now() < until || samples.length < 5)
  emit({ kind: 'push', name: 'push() only (no batch cut)', nsPerEntry: median(samples), samples: samples.length })
}

// push() as an app sees it with default batching: every 10,000th call cuts a batch, and while a
// request slot is free that batch is encoded inside the same call.
{
  const samples = []
  for (let r = 0; r < cfg.amortisedRounds; r++) {
    const client = new LokiClient({ url: cfg.url, labels, flushOnExit: false })
    const t = process.hrtime.bigint()
    for (let i = 0; i < LINES; i++) client.push({ line: lines[i] })
    samples.push(Number(process.hrtime.bigint() - t) / LINES)
    await client.close({ timeoutMs: 30_000 })
  }
  emit({ kind: 'push', name: 'push() amortised, default batching', nsPerEntry: median(samples), samples: samples.length })
}
