// A pino transport target that loads another target unchanged and answers heap questions from
// inside the worker thread, where the transport's buffers live and the main thread cannot see.
// pino-loki's README shows the same wrapping for options that cannot cross into the worker.
import { installHeapProbe } from './heap.mjs'

export default async function probeTarget(options) {
  const { benchTarget, ...rest } = options
  const mod = await import(benchTarget)
  let build = mod.default
  // A CommonJS target seen through import() may nest its export one level deeper.
  if (typeof build !== 'function' && typeof build?.default === 'function') build = build.default
  installHeapProbe()
  return build(rest)
}
