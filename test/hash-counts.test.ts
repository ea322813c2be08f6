import { describe, expect, it } from 'vitest'
import { HashCounts } from '../src/pipeline/hash-counts.js'

/** A deterministic stream of 30-bit hashes, many sharing their low bits (they collide in small tables). */
function hashes(n: number, seed = 1): number[] {
  const out: number[] = []
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x3fffffff
    // Every third one keeps only high bits: the same slot in any table under 2^20 slots.
    out.push(i % 3 === 0 ? x & 0x3ff00000 : x)
  }
  return out
}

describe('HashCounts', () => {
  it('counts like a Map<hash, count> through collisions and growth, and returns the count before', () => {
    const counts = new HashCounts()
    const model = new Map<number, number>()
    const input = hashes(20_000)
    // Repeats: each hash again, some a third time, interleaved with new ones.
    const all = [...input, ...input.slice(0, 5_000), ...hashes(5_000, 7), ...input.filter((_, i) => i % 5 === 0)]
    for (const h of all) {
      const before = model.get(h) ?? 0
      model.set(h, before + 1)
      expect(counts.bump(h)).toBe(before)
    }
    expect(counts.size).toBe(model.size)
    // Never more than half full.
    expect(counts.capacity).toBeGreaterThanOrEqual(model.size * 2)
  })

  it('takes the largest 30-bit hash, 0 and 1, and clear() forgets each of them', () => {
    const counts = new HashCounts()
    const edge = [0x3fffffff, 0, 1]
    expect([...edge, ...edge].map((h) => counts.bump(h))).toEqual([0, 0, 0, 1, 1, 1])
    counts.clear()
    expect(edge.map((h) => counts.bump(h))).toEqual([0, 0, 0])
  })

  it('clear() forgets every hash and keeps a small table', () => {
    const counts = new HashCounts()
    for (const h of hashes(20)) counts.bump(h)
    const capacity = counts.capacity
    counts.clear()
    expect(counts.size).toBe(0)
    for (const h of hashes(20)) expect(counts.bump(h)).toBe(0)
    expect(counts.capacity).toBe(capacity)
  })

  it('a table under 4,096 slots is kept however little it was used', () => {
    const counts = new HashCounts()
    for (let h = 0; h < 100; h++) counts.bump(h)
    const capacity = counts.capacity
    expect(capacity).toBe(256)
    counts.clear()
    counts.bump(1)
    counts.clear()
    expect(counts.capacity).toBe(capacity)
  })

  it('a table of 4,096 slots is given back below an eighth used (512 hashes), and kept at an eighth', () => {
    const counts = new HashCounts()
    for (let h = 0; h < 1100; h++) counts.bump(h)
    expect(counts.capacity).toBe(4096)
    counts.clear()
    for (let h = 0; h < 512; h++) counts.bump(h)
    counts.clear()
    expect(counts.capacity).toBe(4096)
    for (let h = 0; h < 511; h++) counts.bump(h)
    counts.clear()
    expect(counts.capacity).toBe(64)
  })

  it('clear() gives back a large table that was mostly unused, and keeps one that was well used', () => {
    const counts = new HashCounts()
    for (const h of hashes(10_000)) counts.bump(h)
    const large = counts.capacity
    expect(large).toBeGreaterThanOrEqual(4096)
    // Well used: kept.
    counts.clear()
    expect(counts.capacity).toBe(large)
    // Used by a handful only: given back.
    for (const h of hashes(10)) counts.bump(h)
    counts.clear()
    expect(counts.capacity).toBeLessThan(large)
    for (const h of hashes(10)) expect(counts.bump(h)).toBe(0)
  })
})
