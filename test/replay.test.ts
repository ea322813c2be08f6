import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { Breaker } from '../src/pipeline/breaker.js'
import type { SpoolEvent } from '../src/model/events.js'
import { BatchQueue, type Batch } from '../src/pipeline/queue.js'
import { SpoolReplay } from '../src/pipeline/replay.js'
import { Spool } from '../src/spool/spool.js'

// SpoolReplay on its own: a real spool directory and a real queue whose batches stay in flight
// until the test ends them, so what the replay loads is exactly what the queue holds.

let dir: string
let replay: SpoolReplay | undefined
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lokiwire-replay-'))
})
afterEach(() => {
  replay?.stop()
  replay = undefined
  rmSync(dir, { recursive: true, force: true })
})

const RECORD_BYTES = 1000
const spoolOptions = () => ({ dir, maxBytes: 1024 * 1024, breakerWaitMs: 1000 })

/** `n` records of one entry and RECORD_BYTES bytes each, left on disk as a previous process would. */
function leaveRecords(n: number): void {
  const spool = new Spool(spoolOptions(), () => {})
  for (let i = 0; i < n; i++) spool.write({ body: Buffer.alloc(RECORD_BYTES, 65 + (i % 26)), contentType: 'application/json', contentEncoding: undefined }, 1)
  spool.close()
}

function setup(o: { open?: () => boolean; loadBelowBytes: number }) {
  const running: Batch[] = []
  const queue = new BatchQueue(100, (b) => {
    running.push(b)
    return new Promise<void>(() => {}) // held until the test ends the batch
  })
  const problems: SpoolEvent[] = []
  replay = new SpoolReplay({
    spool: spoolOptions(),
    encoding: { encoding: 'protobuf', gzipLevel: 0 },
    queue,
    breaker: new Breaker(false, () => {}),
    idleIntervalMs: 60_000,
    loadBelowBytes: o.loadBelowBytes,
    bufferUsed: () => queue.bytes,
    open: o.open ?? (() => true),
    onProblem: (p) => problems.push(p),
  })
  return { queue, replay, problems }
}

it('loads records only while the buffer is below its bound, and more as batches end', () => {
  leaveRecords(20)
  const { queue, replay, problems } = setup({ loadBelowBytes: 5 * RECORD_BYTES })
  replay.start()
  // Loading stops at the first record that reaches the bound: 5, not the 20 on disk.
  expect(replay.loaded).toBe(5)
  expect(queue.bytes).toBe(5 * RECORD_BYTES)
  const [a, b] = [...queue.pending]
  queue.finish(a!)
  queue.finish(b!)
  replay.delivered()
  expect(replay.loaded).toBe(7)
  expect(queue.pending.size).toBe(5)
  expect(problems).toEqual([])
})

it('loads nothing once the client stopped taking entries', () => {
  leaveRecords(3)
  let open = false
  const { queue, replay } = setup({ loadBelowBytes: 1024 * 1024, open: () => open })
  replay.start()
  expect(replay.loaded).toBe(0)
  expect(queue.pending.size).toBe(0)
  open = true
  replay.pump()
  expect(replay.loaded).toBe(3)
})
