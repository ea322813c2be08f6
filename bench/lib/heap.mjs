// Post-GC heap of every isolate in the process: the main thread's directly, worker threads' over
// a BroadcastChannel answered by the probe each worker installs.
import { getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { BroadcastChannel, isMainThread } from 'node:worker_threads'

const CHANNEL = 'lokiwire-bench-heap'

function collector() {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc')
}

function usedAfterGc(gc) {
  gc()
  gc()
  return getHeapStatistics().used_heap_size
}

export function installHeapProbe() {
  if (isMainThread) return
  const gc = collector()
  const channel = new BroadcastChannel(CHANNEL)
  // Must not keep the worker alive once its transport has closed.
  channel.unref()
  channel.onmessage = (event) => {
    if (event.data?.ask === 'heap') channel.postMessage({ answer: event.data.id, used: usedAfterGc(gc) })
  }
}

let mainGc
let nextId = 1

/** Main-thread heap after GC, plus each worker that answered within `waitMs`. */
export async function heapAfterGc({ workers = false, waitMs = 1000 } = {}) {
  mainGc ??= collector()
  const main = usedAfterGc(mainGc)
  if (!workers) return { main, workers: 0, answered: 0 }
  const id = nextId++
  const channel = new BroadcastChannel(CHANNEL)
  let total = 0
  let answered = 0
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, waitMs)
    channel.onmessage = (event) => {
      if (event.data?.answer !== id) return
      total += event.data.used
      answered++
      // One transport worker per contender: the first answer is the only one expected.
      clearTimeout(timer)
      resolve()
    }
    channel.postMessage({ ask: 'heap', id })
  })
  channel.close()
  return { main, workers: total, answered }
}
