/*
 * Seeded randomness for the soak. Everything that shapes a run (fault schedule, producer
 * pattern, line content) is drawn from these so a seed replays the same run.
 */

export type Random = () => number

/** mulberry32: tiny, fast, good enough for test schedules; returns floats in [0, 1). */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Combines a seed with a stream number into an independent seed, so the fault schedule, the
 * producer and per-line content each get their own sequence: changing how many draws one of
 * them makes does not shift the others.
 */
export function mix(seed: number, stream: number): number {
  let h = (seed ^ Math.imul(stream + 0x9e3779b9, 0x85ebca6b)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d)
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b)
  return (h ^ (h >>> 16)) >>> 0
}

export function between(r: Random, lo: number, hi: number): number {
  return lo + r() * (hi - lo)
}

/** Integer in [lo, hi], both included. */
export function int(r: Random, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1))
}

export function pick<T>(r: Random, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!
}

export function weighted<T>(r: Random, choices: ReadonlyArray<readonly [number, T]>): T {
  let total = 0
  for (const [w] of choices) total += w
  let x = r() * total
  for (const [w, v] of choices) {
    x -= w
    if (x < 0) return v
  }
  return choices[choices.length - 1]![1]
}

export function shuffle<T>(r: Random, items: readonly T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
