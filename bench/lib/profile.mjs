// Self time per function from a V8 .cpuprofile (what `node --cpu-prof` writes).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { original } from './sourcemap.mjs'
import { ROOT_DIR, scrubPaths } from './util.mjs'

function where(frame) {
  const url = frame.url ?? ''
  if (url === '') return ''
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  if (path.startsWith(`${ROOT_DIR}dist/`)) {
    const src = original(path, frame.lineNumber, frame.columnNumber)
    if (src !== undefined) return src
  }
  const file = scrubPaths(url).replace(/^\/+/, '')
  return `${file}:${frame.lineNumber + 1}`
}

/** Top `limit` functions by self time: { name, where, ms, pct }. */
export function hotSpots(file, limit = 15) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]))
  const parentOf = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n)
  // Stopping the profiler serialises the profile inside the profiled thread: not the client's work.
  const measuring = new Map()
  const isMeasuring = (node) => {
    if (measuring.has(node.id)) return measuring.get(node.id)
    const parent = parentOf.get(node.id)
    const v = node.callFrame.url === 'node:inspector' || (parent !== undefined && isMeasuring(parent))
    measuring.set(node.id, v)
    return v
  }
  // Native code has no location of its own (and bindings may report a misleading name):
  // the JavaScript function that called it says what it was.
  const label = (node) => {
    const f = node.callFrame
    if (f.url !== '' || f.functionName.startsWith('(')) return where(f)
    const parent = parentOf.get(node.id)
    if (parent === undefined || parent.callFrame.url === '') return 'native'
    return `native, called by ${parent.callFrame.functionName || '(anonymous)'} (${where(parent.callFrame)})`
  }
  const self = new Map()
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0
    // A delta belongs to the sample it leads to; negative deltas (clock adjustments) are noise.
    if (dt <= 0) continue
    const node = byNode.get(profile.samples[i])
    if (node === undefined || isMeasuring(node)) continue
    total += dt
    const f = node.callFrame
    const at = label(node)
    const key = `${f.functionName}\u0000${at}`
    const entry = self.get(key) ?? { name: f.functionName || '(anonymous)', where: at, us: 0 }
    entry.us += dt
    self.set(key, entry)
  }
  // Idle is the thread waiting for I/O: reported apart, and left out of the percentages so they
  // say where the busy time went.
  const idle = [...self.values()].find((r) => r.name === '(idle)')?.us ?? 0
  const busy = total - idle
  const rows = [...self.values()].filter((r) => r.name !== '(idle)').sort((a, b) => b.us - a.us).slice(0, limit)
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    busyMs: busy / 1000,
    rows: rows.map((r) => ({ name: r.name, where: r.where, ms: r.us / 1000, pct: (100 * r.us) / busy })),
  }
}
