// Lean Loki push receiver, run in its own process (pinned away from the client when possible) so
// that receiving never competes with the client for a core. It decodes just enough of each body
// to find every line's `"seq":N`, which makes loss and duplicates exact without the cost of a
// full decode; `verify` mode (the smoke run) also decodes each body fully and checks that both
// agree, so the scanner cannot silently miscount.
//
// Duplicates follow Loki's rule: a second copy of a line with the same stream, timestamp and text
// is dropped by Loki, so it is counted as `resent`, not as a duplicate. Only when the scanner
// meets a sequence id twice are the two bodies involved decoded to tell which case it is.
//
// Control is over the IPC channel: { id, cmd: 'reset' | 'stall' | 'recover' | 'stats' | 'close' }.
import { createServer } from 'node:http'
import { gunzipSync, inflateSync } from 'node:zlib'
import snappy from 'snappy'

const verify = process.argv.includes('--verify')
const { decodeBody } = await import('lokiwire/testing')

const PUSH_PATH = '/loki/api/v1/push'
// Latency histogram: 10 ms buckets up to 120 s; later arrivals land in the last bucket.
const LAG_BUCKET_MS = 10
const LAG_BUCKETS = 12_000

const held = new Set()
/** Every socket not yet closed here: what shutdown destroys. */
const sockets = new Set()
/**
 * The connections a client still holds, counted for the connection figures. One leaves when the
 * client's end of it arrives (its FIN or a reset), not at 'close': that comes a few event-loop
 * turns later, after this side's own end, and a client that replaces an aborted connection at
 * once would be counted with both in that window though it never held more than its limit. On
 * loopback the FIN is queued before the new connection's handshake, so for a socket this side is
 * already reading (any connection in use) it is read first.
 */
const live = new Set()
let run = freshRun({ expected: 0 })

function freshRun({ expected, rate = 0, t0 = 0 }) {
  return {
    expected,
    rate,
    t0,
    seen: new Uint8Array(expected),
    distinct: 0,
    duplicates: 0,
    resent: 0,
    unexpected: 0,
    // Every stored body of the run, and which of them first held each sequence id: what a
    // repeated id is compared with. Bodies are kept as received (compressed where they were).
    bodies: [],
    firstBody: new Int32Array(expected).fill(-1),
    requests: 0,
    okRequests: 0,
    bodyBytes: 0,
    rawBytes: 0,
    firstAt: 0,
    lastAt: 0,
    peakConnections: live.size,
    openConnections: live.size,
    stalled: false,
    stallStartedAt: 0,
    peakConnectionsStall: 0,
    recoveredAt: 0,
    firstAfterRecoveryAt: 0,
    // Lines logged before recovery (by schedule), how many of them have arrived, and when the last did.
    backlog: 0,
    backlogSeen: 0,
    backlogDoneAt: 0,
    heldRequests: 0,
    lag: new Uint32Array(LAG_BUCKETS),
    lagMax: 0,
    errors: [],
    verifyMismatches: 0,
  }
}

function noteError(message) {
  if (run.errors.length < 5) run.errors.push(message)
}

/**
 * Finds each `seq":N` (plain JSON line, protobuf) or `seq\":N` (line escaped inside a JSON push
 * body). Buffer.indexOf is a native memmem, so this stays far cheaper than decoding the body.
 * A negative id (`seq":-N`, the warm scenario's warm-up records) counts as a line of the body
 * and is not reported: the run does not expect it.
 */
function scan(buf, onSeq) {
  let count = 0
  let pos = buf.indexOf('seq', 0, 'latin1')
  while (pos !== -1) {
    let p = pos + 3
    if (buf[p] === 0x5c) p++ // backslash
    if (buf[p] === 0x22 && buf[p + 1] === 0x3a) {
      p += 2
      // A negative id is a warm-up record (the warm scenario): a line of the body, never counted.
      const warmUp = buf[p] === 0x2d
      if (warmUp) p++
      let n = 0
      let digits = 0
      for (let c = buf[p]; c >= 0x30 && c <= 0x39; c = buf[++p]) {
        n = n * 10 + (c - 0x30)
        digits++
      }
      if (digits > 0) {
        if (!warmUp) onSeq(n)
        count++
      }
    }
    pos = buf.indexOf('seq', p, 'latin1')
  }
  return count
}

function payload(body, contentType, contentEncoding) {
  let data = body
  if (contentEncoding === 'gzip') data = gunzipSync(body)
  else if (contentEncoding === 'deflate') data = inflateSync(body)
  else if (contentEncoding !== undefined && contentEncoding !== '' && contentEncoding !== 'snappy') {
    throw new Error(`unsupported content-encoding ${contentEncoding}`)
  }
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase()
  if (type === 'application/json') return data
  if (type === 'application/x-protobuf') return snappy.uncompressSync(data, { asBuffer: true, copyOutputData: true })
  throw new Error(`unsupported content-type ${contentType}`)
}

const SEQ = /"seq":(\d+)/

/** Each entry of a body by sequence id: stream, timestamp and line, as Loki would compare them. */
function entriesBySeq(x) {
  const out = new Map()
  for (const s of decodeBody(x.body, x.contentType, x.contentEncoding).streams) {
    const stream = JSON.stringify(s.labels)
    for (const e of s.entries) {
      const m = SEQ.exec(e.line)
      if (m === null) continue
      const key = `${stream}\u0000${e.timestamp}\u0000${e.line}`
      const seq = Number(m[1])
      const list = out.get(seq)
      if (list === undefined) out.set(seq, [key])
      else list.push(key)
    }
  }
  return out
}

/**
 * Sorts the repeated ids of the body just stored into copies Loki would drop (same stream,
 * timestamp and line as the first copy) and real duplicates. Rare, so decoding is affordable.
 */
function classifyRepeats(r, index, repeats) {
  const here = entriesBySeq(r.bodies[index])
  const decoded = new Map([[index, here]])
  const seenHere = new Map()
  for (const seq of repeats) {
    const first = r.firstBody[seq]
    let firstEntries = decoded.get(first)
    if (firstEntries === undefined) decoded.set(first, (firstEntries = entriesBySeq(r.bodies[first])))
    const original = firstEntries.get(seq)?.[0]
    // The n-th repeat met in this body is the id's n-th occurrence here, or its (n+1)-th when
    // the first copy is in this body too.
    const n = seenHere.get(seq) ?? 0
    seenHere.set(seq, n + 1)
    const copy = here.get(seq)?.[first === index ? n + 1 : n]
    if (original !== undefined && original === copy) r.resent++
    else r.duplicates++
  }
}

function store(x) {
  const r = run
  const now = Date.now()
  let lines = 0
  // Lines with an id of the run: all of them, but a warm-up's.
  let counted = 0
  let fresh = 0
  const index = r.bodies.length
  const repeats = []
  try {
    const data = payload(x.body, x.contentType, x.contentEncoding)
    r.rawBytes += data.length
    const perLineMs = r.rate > 0 ? 1000 / r.rate : 0
    lines = scan(data, (seq) => {
      counted++
      if (seq >= r.expected) {
        r.unexpected++
        return
      }
      if (r.seen[seq] === 1) {
        repeats.push(seq)
        return
      }
      r.seen[seq] = 1
      r.firstBody[seq] = index
      fresh++
      if (seq < r.backlog && ++r.backlogSeen === r.backlog) r.backlogDoneAt = now
      if (perLineMs > 0 && r.t0 > 0) {
        const lag = Math.max(0, now - (r.t0 + seq * perLineMs))
        if (lag > r.lagMax) r.lagMax = lag
        r.lag[Math.min(LAG_BUCKETS - 1, Math.floor(lag / LAG_BUCKET_MS))]++
      }
    })
    if (verify) {
      const decoded = decodeBody(x.body, x.contentType, x.contentEncoding)
      let entries = 0
      for (const s of decoded.streams) entries += s.entries.length
      if (entries !== lines) {
        r.verifyMismatches++
        noteError(`scanner found ${lines} ids in a body holding ${entries} entries`)
      }
    }
    r.bodies.push({ body: x.body, contentType: x.contentType, contentEncoding: x.contentEncoding })
    if (repeats.length > 0) classifyRepeats(r, index, repeats)
  } catch (err) {
    noteError(`undecodable push: ${err.message}`)
    return 400
  }
  r.distinct += fresh
  r.okRequests++
  if (counted > 0) {
    if (r.firstAt === 0) r.firstAt = now
    r.lastAt = now
    if (r.recoveredAt > 0 && r.firstAfterRecoveryAt === 0 && fresh > 0) r.firstAfterRecoveryAt = now
  }
  return 204
}

function answer(x, status) {
  if (x.res.destroyed) return
  x.res.writeHead(status, status === 204 ? {} : { 'content-length': 0 })
  x.res.end()
}

const server = createServer((req, res) => {
  req.on('error', () => {})
  res.on('error', () => {})
  const chunks = []
  let bytes = 0
  req.on('data', (c) => {
    chunks.push(c)
    bytes += c.length
  })
  req.on('end', () => {
    if (req.url.split('?')[0] !== PUSH_PATH || req.method !== 'POST') {
      res.writeHead(404, { 'content-length': 0 })
      res.end()
      return
    }
    const r = run
    r.requests++
    r.bodyBytes += bytes
    const x = {
      res,
      body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, bytes),
      contentType: req.headers['content-type'],
      contentEncoding: req.headers['content-encoding'],
      run: r,
    }
    if (r.stalled) {
      // A hung ingestion path: the body is read, nothing is stored or answered until recovery.
      r.heldRequests++
      held.add(x)
      res.once('close', () => held.delete(x))
      return
    }
    answer(x, store(x))
  })
})
server.keepAliveTimeout = 5000
server.headersTimeout = 0
server.requestTimeout = 0
server.on('connection', (socket) => {
  socket.on('error', () => {})
  sockets.add(socket)
  live.add(socket)
  const r = run
  r.openConnections = live.size
  if (live.size > r.peakConnections) r.peakConnections = live.size
  if (r.stalled && live.size > r.peakConnectionsStall) r.peakConnectionsStall = live.size
  const released = () => {
    live.delete(socket)
    run.openConnections = live.size
  }
  socket.once('end', released)
  socket.once('error', released)
  socket.once('close', () => {
    sockets.delete(socket)
    released()
  })
})

function percentile(hist, total, q) {
  if (total === 0) return 0
  const target = Math.ceil(total * q)
  let acc = 0
  for (let i = 0; i < hist.length; i++) {
    acc += hist[i]
    if (acc >= target) return (i + 1) * LAG_BUCKET_MS
  }
  return hist.length * LAG_BUCKET_MS
}

function snapshot() {
  const r = run
  let lagged = 0
  for (let i = 0; i < r.lag.length; i++) lagged += r.lag[i]
  return {
    expected: r.expected,
    distinct: r.distinct,
    lost: r.expected - r.distinct,
    duplicates: r.duplicates,
    resent: r.resent,
    unexpected: r.unexpected,
    requests: r.requests,
    okRequests: r.okRequests,
    bodyBytes: r.bodyBytes,
    rawBytes: r.rawBytes,
    firstAt: r.firstAt,
    lastAt: r.lastAt,
    peakConnections: r.peakConnections,
    peakConnectionsStall: r.peakConnectionsStall,
    stallStartedAt: r.stallStartedAt,
    recoveredAt: r.recoveredAt,
    firstAfterRecoveryAt: r.firstAfterRecoveryAt,
    backlogDoneAt: r.backlogDoneAt,
    heldRequests: r.heldRequests,
    lagP50: percentile(r.lag, lagged, 0.5),
    lagP99: percentile(r.lag, lagged, 0.99),
    lagMax: Math.round(r.lagMax),
    errors: r.errors,
    verifyMismatches: r.verifyMismatches,
  }
}

process.on('message', (msg) => {
  const reply = (data) => process.send({ id: msg.id, ...data })
  switch (msg.cmd) {
    case 'reset':
      for (const x of held) answer(x, 503)
      held.clear()
      run = freshRun(msg)
      reply({ ok: true })
      return
    case 'start':
      run.t0 = msg.t0
      reply({ ok: true })
      return
    case 'stall':
      run.stalled = true
      run.stallStartedAt = Date.now()
      run.peakConnectionsStall = live.size
      reply({ ok: true })
      return
    case 'recover': {
      const r = run
      r.stalled = false
      r.recoveredAt = Date.now()
      if (r.rate > 0 && r.t0 > 0) {
        r.backlog = Math.min(r.expected, Math.floor(((r.recoveredAt - r.t0) * r.rate) / 1000))
        r.backlogSeen = 0
        for (let i = 0; i < r.backlog; i++) r.backlogSeen += r.seen[i]
        if (r.backlogSeen === r.backlog) r.backlogDoneAt = r.recoveredAt
      }
      // Recovery answers whatever is still waiting, as a Loki that un-hangs would; requests whose
      // client gave up meanwhile are gone and were never stored.
      for (const x of held) answer(x, store(x))
      held.clear()
      reply({ ok: true })
      return
    }
    case 'stats':
      reply(snapshot())
      return
    case 'close':
      for (const s of sockets) s.destroy()
      server.close(() => {
        reply({ ok: true })
        process.disconnect()
      })
      return
  }
})

server.listen(0, '127.0.0.1', () => {
  process.send({ ready: true, url: `http://127.0.0.1:${server.address().port}` })
})
