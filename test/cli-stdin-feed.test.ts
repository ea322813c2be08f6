// The policy of `lokiwire push`, in-process: stdin back-pressure (StdinFeed) and the exit status
// (outcome). cli.test.ts runs the wired command in child processes.
import { describe, expect, it } from 'vitest'
import type { LokiClientStats } from '../src/client/client.js'
import { StdinFeed } from '../src/cli/stdin-feed.js'
import { LineSplitter } from '../src/records/ndjson.js'
import { oneLine, outcome, type RunOutcome } from '../src/cli/outcome.js'
import { DROP_REASONS } from '../src/model/types.js'

/** A sink that holds at most `room` lines until it is drained, and an input that records its state. */
function harness(room: number) {
  const pushed: string[] = []
  let delivered = 0
  const input = { paused: false, pauses: 0, resumes: 0, pause() { this.paused = true; this.pauses++ }, resume() { this.paused = false; this.resumes++ } }
  const sink = { push: (line: string) => void pushed.push(line), full: () => pushed.length - delivered >= room }
  const feed = new StdinFeed(new LineSplitter(1024), sink, input)
  const deliver = () => {
    delivered = pushed.length
    feed.room()
  }
  return { pushed, input, feed, deliver }
}

const chunk = (from: number, n: number) => Array.from({ length: n }, (_, i) => `line ${from + i}\n`).join('')
const lines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i}`)

describe('StdinFeed (stdin back-pressure)', () => {
  it('pushes while there is room; pauses the input when full and resumes it when room is made, losing nothing', () => {
    const { pushed, input, feed, deliver } = harness(2)
    // Room is checked before a chunk (and every 64 KiB within one): this chunk fills the sink.
    feed.write(chunk(0, 2))
    expect(pushed).toEqual(lines(2))
    expect(input.paused).toBe(false)
    // Full: the next chunk is held and the input paused, so the writer's pipe fills.
    feed.write(chunk(2, 3))
    expect(pushed).toEqual(lines(2))
    expect(input.paused).toBe(true)
    expect(feed.paused).toBe(true)
    expect(feed.read).toBe(5)
    // Room is made: the held lines go, in order, and the input resumes.
    deliver()
    expect(pushed).toEqual(lines(5))
    expect(input.paused).toBe(false)
    expect(input.resumes).toBe(1)
  })

  it('pausing again while paused does not pause the input twice, and room while not paused does nothing', () => {
    const { input, feed, deliver } = harness(0)
    feed.room()
    expect(input.pauses).toBe(0)
    feed.write(chunk(0, 2))
    feed.write(chunk(2, 2))
    expect(input.pauses).toBe(1)
    expect(feed.read).toBe(4)
    deliver()
    expect(input.pauses).toBe(1)
  })

  it('at the end every held line and the last partial line are pushed, in order, and later input is ignored', () => {
    const { pushed, input, feed } = harness(1)
    feed.write(chunk(0, 1))
    feed.write(`${chunk(1, 2)}tail without newline`)
    expect(pushed).toEqual(['line 0'])
    expect(input.paused).toBe(true)
    feed.end()
    expect(pushed).toEqual([...lines(3), 'tail without newline'])
    expect(feed.read).toBe(4)
    expect(feed.stopped).toBe(true)
    expect(feed.paused).toBe(false)
    // Stopped: room does not resume the input, and lines written after the end are not taken.
    feed.room()
    feed.write(chunk(9, 1))
    feed.end()
    expect(pushed).toHaveLength(4)
    expect(input.resumes).toBe(0)
  })

  it('a large chunk is checked for room every 64 KiB of text, so a pause lands near the mark', () => {
    const pushed: string[] = []
    let fullAt = 2000
    const input = { pause() {}, resume() {} }
    const feed = new StdinFeed(new LineSplitter(1024), { push: (l) => void pushed.push(l), full: () => pushed.length >= fullAt }, input)
    const line = 'x'.repeat(100)
    feed.write(`${line}\n`.repeat(10_000))
    // Not the whole chunk: it stopped at the first check past the mark (about 530 lines of 124 bytes).
    expect(pushed.length).toBeGreaterThanOrEqual(2000)
    expect(pushed.length).toBeLessThan(2000 + 600)
    fullAt = Number.POSITIVE_INFINITY
    feed.room()
    expect(pushed).toHaveLength(10_000)
  })
})

function stats(over: { dropped?: Partial<Record<(typeof DROP_REASONS)[number], number>>; sent?: number; batches?: number; truncated?: number; spoolBytes?: number; spoolWritten?: number } = {}): RunOutcome['stats'] {
  const dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, over.dropped?.[r] ?? 0])) as LokiClientStats['dropped']
  dropped.total = DROP_REASONS.reduce((a, r) => a + dropped[r], 0)
  return {
    sent: { entries: over.sent ?? 0, bytes: 0, batches: over.batches ?? 0 },
    dropped,
    truncated: over.truncated ?? 0,
    spool: { bytes: over.spoolBytes ?? 0, written: over.spoolWritten ?? 0, loaded: 0, errors: 0 },
  }
}

const base: RunOutcome = { stats: stats(), ending: { kind: 'eof' }, lastError: undefined, closeTimeoutMs: 10_000, cutLines: 0, maxLineBytes: 262_144, verbose: false }

describe('outcome (exit status and closing line)', () => {
  it('0 and silence when every line was delivered; a closing line when progress was shown', () => {
    expect(outcome({ ...base, stats: stats({ sent: 5, batches: 1 }) })).toEqual({ status: 0, message: undefined })
    expect(outcome({ ...base, verbose: true, stats: stats({ sent: 5, batches: 1, truncated: 1 }), cutLines: 2 }).message).toBe(
      'lokiwire: 5 lines delivered in 1 batch; 2 lines over 262144 bytes cut\n',
    )
  })

  it('1 with the reasons and the last error when lines were dropped, whatever else happened', () => {
    const o = outcome({ ...base, ending: { kind: 'error', message: 'x' }, lastError: 'Loki answered 400: bad', stats: stats({ dropped: { rejected: 3, buffer_full: 1 }, spoolBytes: 10 }) })
    expect(o.status).toBe(1)
    // Reasons in DROP_REASONS order.
    expect(o.message).toBe('lokiwire: 4 lines dropped (buffer_full: 1, rejected: 3); last error: Loki answered 400: bad\n')
  })

  it('a close deadline with no error names --close-timeout', () => {
    expect(outcome({ ...base, stats: stats({ dropped: { close_timeout: 2 } }) }).message).toBe('lokiwire: 2 lines dropped (close_timeout: 2); no answer from Loki within --close-timeout (10000 ms)\n')
  })

  it('1 when reading the input failed, after what was read was delivered', () => {
    expect(outcome({ ...base, ending: { kind: 'error', message: 'reading stdin failed: EIO' }, stats: stats({ sent: 7 }) })).toEqual({
      status: 1,
      message: 'lokiwire: reading stdin failed: EIO; the 7 lines read before it were delivered\n',
    })
  })

  it('3 when nothing was dropped but lines wait in the spool', () => {
    expect(outcome({ ...base, ending: { kind: 'signal', signal: 'SIGTERM' }, stats: stats({ spoolBytes: 2048, spoolWritten: 4 }) })).toEqual({
      status: 3,
      message: 'lokiwire: 4 lines went to the spool this run; the spool holds 2,048 bytes for the next run with the same --spool\n',
    })
  })

  it('error messages are cut to one line of at most 300 characters', () => {
    expect(oneLine('  a\n\tb  ')).toBe('a b')
    expect(oneLine('x'.repeat(400))).toHaveLength(300)
  })
})
