import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { RequestEndMessage } from '../transport/diagnostics.js'

/** 12345 -> "12,345": counts in progress lines are read at a glance. */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

export function plural(n: number, word: string, words = `${word}s`): string {
  return `${count(n)} ${n === 1 ? word : words}`
}

/** Per-second rate over a sliding window, so a redraw every 250 ms does not flicker. */
export class RateMeter {
  readonly #windowMs: number
  readonly #samples: Array<{ t: number; n: number }> = []

  constructor(windowMs = 2000) {
    this.#windowMs = windowMs
  }

  rate(total: number, now = performance.now()): number {
    const s = this.#samples
    s.push({ t: now, n: total })
    while (s.length > 2 && now - s[1]!.t >= this.#windowMs) s.shift()
    const first = s[0]!
    const span = now - first.t
    return span > 0 ? ((total - first.n) * 1000) / span : 0
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

const REQUEST_END = 'lokiwire:request:end'

/**
 * Durations of accepted pushes, from the client's diagnostics channel: the same numbers an
 * operator would get by subscribing, with no hook inside the client.
 */
export class LatencyRecorder {
  readonly accepted: number[] = []
  readonly #onEnd = (message: unknown) => {
    const m = message as RequestEndMessage
    if (m.status >= 200 && m.status < 300) this.accepted.push(m.durationMs)
  }

  start(): this {
    subscribe(REQUEST_END, this.#onEnd)
    return this
  }

  stop(): void {
    unsubscribe(REQUEST_END, this.#onEnd)
  }

  percentiles(): { p50: number | undefined; p99: number | undefined } {
    const sorted = [...this.accepted].sort((a, b) => a - b)
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
  }
}

export function ms(v: number | undefined): string {
  if (v === undefined) return 'n/a'
  return v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`
}
