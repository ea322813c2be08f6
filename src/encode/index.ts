import { codecsSync, loadCodecs, type Codecs } from './codecs.js'
import { encodeJson } from './json.js'
import type { EncodedBatch } from './request.js'

export { encodeJson } from './json.js'
export { EntryBuffer } from './entries.js'
export { batchOfBody } from './read.js'
export { buildRequest, encodeStreams, entryCount, halveBatch } from './request.js'
export type { EncodedBatch, StreamPart, StreamSpan } from './request.js'

export type Encoding = 'protobuf' | 'json'

/** A request body ready for the wire, with the headers that describe it. */
export interface EncodedBody {
  body: Buffer
  contentType: string
  contentEncoding: string | undefined
}

export interface EncodeOptions {
  encoding: Encoding
  /** gzip level for JSON; 0 sends JSON uncompressed. */
  gzipLevel: number
}

/** Loads the compressors now rather than with the first batch. Never rejects: the first batch meets a failure again. */
export function preloadCodecs(): Promise<void> {
  return loadCodecs().then(
    () => undefined,
    () => undefined,
  )
}

/**
 * Turns a batch into a push body. Protobuf is snappy-compressed in block format (what Loki
 * expects for application/x-protobuf); gzip for JSON runs on libuv's thread pool so a large
 * batch never blocks the event loop. The first call loads the compressors (codecs.ts).
 */
export async function encodeBody(batch: EncodedBatch, opts: EncodeOptions): Promise<EncodedBody> {
  const codecs = await loadCodecs()
  if (opts.encoding === 'json' && opts.gzipLevel > 0) {
    const json = Buffer.from(encodeJson(batch))
    const body = await new Promise<Buffer>((resolve, reject) => {
      codecs.zlib.gzip(json, { level: opts.gzipLevel }, (err, out) => (err === null ? resolve(out) : reject(err)))
    })
    return { body, contentType: 'application/json', contentEncoding: 'gzip' }
  }
  return encode(batch, opts, codecs)
}

/** The same body, synchronously: for the spool at process exit, where no callback will run. */
export function encodeBodySync(batch: EncodedBatch, opts: EncodeOptions): EncodedBody {
  return encode(batch, opts, codecsSync())
}

function encode(batch: EncodedBatch, opts: EncodeOptions, { snappy, zlib }: Codecs): EncodedBody {
  if (opts.encoding === 'protobuf') {
    return {
      // copyOutputData: without it the binding hands back an external buffer whose setup costs
      // about five times the compression itself (measured: 0.38 ms vs 1.96 ms per 1.1 MB batch).
      body: snappy.compressSync(batch.request, { copyOutputData: true }),
      contentType: 'application/x-protobuf',
      contentEncoding: undefined,
    }
  }
  const json = Buffer.from(encodeJson(batch))
  if (opts.gzipLevel > 0) return { body: zlib.gzipSync(json, { level: opts.gzipLevel }), contentType: 'application/json', contentEncoding: 'gzip' }
  return { body: json, contentType: 'application/json', contentEncoding: undefined }
}
