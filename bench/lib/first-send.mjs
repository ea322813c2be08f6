// The first batches a fresh process sends after importing lokiwire: what loading on demand moves
// out of the import lands here. Two batches of the same size, one after the other, each pushed
// and then flushed (flush resolves once the receiver has stored the batch): the first carries
// whatever is loaded or warmed on first use, the second is the same work warm.
//
// Some of the first use's cost comes later, off the main thread: V8 compiles hot WebAssembly
// (undici's HTTP parser) again, optimised, in the background, and that compile holds tens of MB
// for a moment some 100 ms after the first response. The process idles for SETTLE_MS after the
// batches, as a running app would, so the peak RSS it reports includes that moment every time.
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises'

const SETTLE_MS = 500

const { url, lines } = JSON.parse(process.argv[2])
const emit = (m) => process.stdout.write(`@@bench ${JSON.stringify(m)}\n`)
const rss = () => process.memoryUsage.rss()
const line = (i) => `{"level":"info","time":${Date.now()},"msg":"request handled","seq":${i},"user":"u${i % 100}"}`

const t0 = performance.now()
const { LokiClient } = await import('lokiwire')
const imported = { at: performance.now(), rss: rss() }
const client = new LokiClient({ url, labels: { app: 'bench', level: 'info' } })
const constructed = { at: performance.now(), rss: rss() }

async function batch(from) {
  const start = performance.now()
  for (let i = from; i < from + lines; i++) client.push({ line: line(i) })
  const result = await client.flush()
  return { ms: performance.now() - start, ok: result.ok, rss: rss() }
}
// A turn of the event loop between steps, as between an app's start-up and its first log calls.
await yieldLoop()
const first = await batch(0)
await yieldLoop()
const second = await batch(lines)
await sleep(SETTLE_MS)
const settledPeak = process.resourceUsage().maxRSS * 1024
await client.close()

emit({
  event: 'first-send',
  importMs: imported.at - t0,
  constructMs: constructed.at - imported.at,
  firstMs: first.ms,
  secondMs: second.ms,
  ok: first.ok && second.ok,
  rssAfterImport: imported.rss,
  rssAfterConstruct: constructed.rss,
  rssAfterFirst: first.rss,
  rssAfterSecond: second.rss,
  peakRssAfterSettle: settledPeak,
})
process.on('exit', () => emit({ event: 'exit', maxRssBytes: process.resourceUsage().maxRSS * 1024 }))
