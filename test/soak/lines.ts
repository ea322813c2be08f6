/*
 * What the soak's producer logs. A line is a pure function of (seed, seq), so the receiver's
 * copy can be checked byte for byte without keeping every pushed line in memory.
 */
import { formatSelector } from '../../src/testing/index.js'
import { mix, mulberry32 } from './prng.js'

export const TENANT = 'soak-tenant'
export const CLIENT_LABELS: Readonly<Record<string, string>> = { job: 'soak' }

/** Several streams so batches carry more than one and the 413 split halves by stream. */
export const STREAMS: ReadonlyArray<Readonly<Record<string, string>>> = [
  { app: 'checkout', level: 'info' },
  { app: 'checkout', level: 'error' },
  { app: 'search', level: 'info' },
  { app: 'search', level: 'debug', zone: 'b' },
  { app: 'worker', level: 'warn' },
]
const STREAM_WEIGHTS = [40, 5, 30, 15, 10]

/** Selectors as the receiver prints them: the client's labels merged under each stream's. */
export const SELECTORS: readonly string[] = STREAMS.map((s) => formatSelector({ ...CLIENT_LABELS, ...s }))

/** Marks a line the receiver's 'partial' fault rejects, the way Loki rejects a bad entry. */
export const POISON = 'poison'
/** Share of lines carrying the marker: enough that most batches in a poison phase get a 400. */
export const POISON_FRACTION = 0.005
/** Start of each line the partial fault answers with, so a 400 can be traced to poison. */
export const POISON_REJECT = 'poison line rejected'

// Multi-byte characters keep byte counting (buffer cost, batch size) honest.
const FILLER = 'GET /api/v1/items?page=2 200 12ms user=ünïcødé ✓ trace=4bf92f3577b34da6 '.repeat(80)

export interface SoakLine {
  line: string
  stream: number
  poison: boolean
}

export function lineFor(seed: number, seq: number): SoakLine {
  const r = mulberry32(mix(seed, 0x100000 + seq))
  let x = r() * 100
  let stream = 0
  while (stream < STREAM_WEIGHTS.length - 1 && x >= STREAM_WEIGHTS[stream]!) x -= STREAM_WEIGHTS[stream++]!
  const poison = r() < POISON_FRACTION
  // Mostly short lines, now and then a large one (stack traces), to vary batch cuts by bytes.
  const len = r() < 0.01 ? 1000 + Math.floor(r() * 5000) : 20 + Math.floor(r() * 180)
  const start = Math.floor(r() * 200)
  const line = `seq=${seq} ${poison ? `${POISON} ` : ''}msg=${FILLER.slice(start, start + len)}`
  return { line, stream, poison }
}

const SEQ_RE = /^seq=(\d+) /

/** The sequence id a received line carries, or -1 when it is not one of ours. */
export function seqOf(line: string): number {
  const m = SEQ_RE.exec(line)
  return m === null ? -1 : Number(m[1])
}
