/*
 * Per-line bookkeeping in typed arrays: their storage lives outside the V8 heap, so keeping a
 * record of every pushed line does not blur the heap check that watches the client.
 */

export class Ledger {
  /** Copies the receiver stored (saturates at 255; more than one is already a failure). */
  count = new Uint8Array(1 << 16)
  /** Timestamp of the first stored copy, to tell a Loki-deduplicated resend from a true duplicate. */
  ts = new BigInt64Array(1 << 16)
  /** push() returned false for the line. */
  refused = new Uint8Array(1 << 16)

  ensure(n: number): void {
    if (n <= this.count.length) return
    let size = this.count.length
    while (size < n) size *= 2
    const count = new Uint8Array(size)
    count.set(this.count)
    const ts = new BigInt64Array(size)
    ts.set(this.ts)
    const refused = new Uint8Array(size)
    refused.set(this.refused)
    this.count = count
    this.ts = ts
    this.refused = refused
  }
}
