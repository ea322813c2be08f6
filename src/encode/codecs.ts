/*
 * The compressors, loaded when the first batch is encoded rather than at import: snappy is a
 * native addon that costs a process about 10 MB, and a service that imports the client may not
 * send for a while, or ever. Both packages are CommonJS, so import() and require() hand back the
 * same module object.
 */
import { createRequire } from 'node:module'
import type * as Snappy from 'snappy'
import type * as Zlib from 'node:zlib'

export interface Codecs {
  snappy: typeof Snappy
  zlib: typeof Zlib
}

let codecs: Codecs | undefined
let loading: Promise<Codecs> | undefined

/** A CommonJS module as import() returns it: its exports are the namespace's default. */
function exportsOf<T>(ns: T | { default: T }): T {
  return (ns as { default?: T }).default ?? (ns as T)
}

/** Loads the compressors once; every later call has them at once. Rejects when one cannot be loaded. */
export function loadCodecs(): Promise<Codecs> {
  if (codecs !== undefined) return Promise.resolve(codecs)
  loading ??= Promise.all([import('snappy'), import('node:zlib')]).then(
    ([snappy, zlib]) => (codecs ??= { snappy: exportsOf<typeof Snappy>(snappy), zlib: exportsOf<typeof Zlib>(zlib) }),
    (err: unknown) => {
      // The next batch tries again.
      loading = undefined
      throw err
    },
  )
  return loading
}

/** node:zlib alone, loaded on first use: the spool's checksums need it, not snappy. */
export function zlibSync(): typeof Zlib {
  return codecs?.zlib ?? (createRequire(import.meta.url)('node:zlib') as typeof Zlib)
}

/**
 * The compressors, loading them synchronously if no batch has loaded them yet: for the spool at
 * process exit, where no callback will run, and for reading a spooled body back. Throws when one
 * cannot be loaded.
 */
export function codecsSync(): Codecs {
  if (codecs !== undefined) return codecs
  const load = createRequire(import.meta.url)
  return (codecs = { snappy: load('snappy') as typeof Snappy, zlib: load('node:zlib') as typeof Zlib })
}
