import type { BatchStream } from '../types.js'

/** Epoch nanoseconds as the decimal string Loki's JSON API wants, built without a bigint. */
export function nanosString(ms: number, ns: number): string {
  if (ns === 0) return `${ms}000000`
  return `${ms}${String(ns).padStart(6, '0')}`
}

function metaObject(meta: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < meta.length; i += 2) out[meta[i]!] = meta[i + 1]!
  return out
}

/**
 * Encodes streams as Loki's JSON push body. JSON.stringify per string does the escaping; the
 * rest is concatenated so no intermediate object graph is built for the whole batch.
 */
export function encodeJson(streams: readonly BatchStream[]): string {
  let out = '{"streams":['
  for (let s = 0; s < streams.length; s++) {
    const stream = streams[s]!
    if (s > 0) out += ','
    out += `{"stream":${JSON.stringify(stream.labels)},"values":[`
    const entries = stream.entries
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      if (i > 0) out += ','
      out += `["${nanosString(e.ms, e.ns)}",${JSON.stringify(e.line)}`
      if (e.meta !== undefined) out += `,${JSON.stringify(metaObject(e.meta))}`
      out += ']'
    }
    out += ']}'
  }
  return out + ']}'
}
