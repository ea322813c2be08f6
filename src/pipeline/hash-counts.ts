/** Slots of a new table: a power of two, as every size is (slot = hash & (size - 1)). */
const MIN_SLOTS = 64
/** A table this large is given back by clear() when the millisecond it served used under an eighth of it. */
const SHRINK_FROM_SLOTS = 4096

/**
 * How many times each line hash was seen within one millisecond of one stream (see
 * Batcher.#distinguish): open addressing over typed arrays, emptied and reused from one
 * millisecond to the next, so a burst of distinct lines allocates nothing. A Map in its place
 * allocated about 55 bytes per line in a burst of a few hundred lines per millisecond: a new
 * one every millisecond, its table grown step by step each time.
 */
export class HashCounts {
  /** hash + 1 per slot, 0 for an empty one: hashes are 30-bit, so + 1 never overflows. */
  #keys = new Int32Array(MIN_SLOTS)
  #counts = new Uint32Array(MIN_SLOTS)
  /** The slots in use, in order of first use: what clear() empties and #grow() moves. */
  #used = new Int32Array(MIN_SLOTS / 2)
  #size = 0

  /** Distinct hashes counted since the last clear(). */
  get size(): number {
    return this.#size
  }

  /** Slots in the table: its memory, for tests. */
  get capacity(): number {
    return this.#keys.length
  }

  /** Counts `hash` once more; returns how many times it had been counted before (0 the first time). */
  bump(hash: number): number {
    // At most half full: probe sequences stay short, and #used always has room.
    if (this.#size * 2 >= this.#keys.length) this.#grow()
    return this.#bump(hash + 1, 1)
  }

  /** Forgets every hash; keeps the table unless it is large and was mostly unused. */
  clear(): void {
    if (this.#keys.length >= SHRINK_FROM_SLOTS && this.#size * 8 < this.#keys.length) {
      this.#keys = new Int32Array(MIN_SLOTS)
      this.#counts = new Uint32Array(MIN_SLOTS)
      this.#used = new Int32Array(MIN_SLOTS / 2)
    } else {
      for (let j = 0; j < this.#size; j++) this.#keys[this.#used[j]!] = 0
    }
    this.#size = 0
  }

  /** Adds `by` to the count of `key` (hash + 1); returns the count before. */
  #bump(key: number, by: number): number {
    const keys = this.#keys
    const mask = keys.length - 1
    let slot = key & mask
    for (;;) {
      const k = keys[slot]!
      if (k === key) {
        const before = this.#counts[slot]!
        this.#counts[slot] = before + by
        return before
      }
      if (k === 0) {
        keys[slot] = key
        this.#counts[slot] = by
        this.#used[this.#size++] = slot
        return 0
      }
      slot = (slot + 1) & mask
    }
  }

  #grow(): void {
    const keys = this.#keys
    const counts = this.#counts
    const used = this.#used
    const n = this.#size
    this.#keys = new Int32Array(keys.length * 2)
    this.#counts = new Uint32Array(keys.length * 2)
    this.#used = new Int32Array(keys.length)
    this.#size = 0
    for (let j = 0; j < n; j++) this.#bump(keys[used[j]!]!, counts[used[j]!]!)
  }
}
