import { newRecordView, readRecord } from './protobuf.js'
import type { EncodedBatch } from './request.js'

/** Epoch nanoseconds as the decimal string Loki's JSON API wants, built without a bigint. */
function nanosString(seconds: number, nanos: number): string {
  if (seconds === 0) return String(nanos)
  return `${seconds}${String(nanos).padStart(9, '0')}`
}

/**
 * Loki's JSON push body, transcoded from the batch's protobuf records. JSON.stringify per
 * string does the escaping; the rest is concatenated so no object graph is built for the batch.
 */
export function encodeJson(batch: EncodedBatch): string {
  const buf = batch.request
  const view = newRecordView()
  let out = '{"streams":['
  for (let s = 0; s < batch.streams.length; s++) {
    const stream = batch.streams[s]!
    if (s > 0) out += ','
    out += `{"stream":${JSON.stringify(stream.labels)},"values":[`
    let pos = stream.start
    for (let i = 0; pos < stream.end; i++) {
      pos = readRecord(buf, pos, view)
      if (i > 0) out += ','
      out += `["${nanosString(view.seconds, view.nanos)}",${JSON.stringify(buf.toString('utf8', view.lineStart, view.lineEnd))}`
      const meta = view.meta
      if (meta.length > 0) {
        const obj: Record<string, string> = {}
        for (let m = 0; m < meta.length; m += 4) obj[buf.toString('utf8', meta[m], meta[m + 1])] = buf.toString('utf8', meta[m + 2], meta[m + 3])
        out += `,${JSON.stringify(obj)}`
      }
      out += ']'
    }
    out += ']}'
  }
  return out + ']}'
}
