/*
 * Structured metadata values: one rule for every way an entry reaches Loki (push(), the pino and
 * winston adapters, the CLI), so the same field is stored the same way whichever path it took.
 */

/** Loki's per-entry structured metadata limit (`max_structured_metadata_entries_count`). */
export const MAX_METADATA_PAIRS = 128

/** JSON that never throws: cycles become "[Circular]", bigints strings, what is left "[Unserializable]". */
export function safeJson(value: unknown, replacer?: (key: string, v: unknown) => unknown): string {
  try {
    const s = JSON.stringify(value, replacer)
    if (s !== undefined) return s
  } catch {
    // Cycles and bigints: the slower replacer below copes with both.
  }
  try {
    const seen = new WeakSet<object>()
    const s = JSON.stringify(value, (key, given: unknown) => {
      const v = replacer === undefined ? given : replacer(key, given)
      if (typeof v === 'bigint') return v.toString()
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[Circular]'
        seen.add(v)
      }
      return v
    })
    return s ?? String(value)
  } catch {
    return '"[Unserializable]"'
  }
}

/**
 * A metadata value as Loki stores it: a string as it is; a number, boolean or bigint as
 * `String()` gives it; anything else (objects, arrays, Dates) as JSON. Undefined for `null` and
 * `undefined`, which are left out.
 */
export function metadataValue(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return v
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v)
    case 'undefined':
      return undefined
    default:
      return v === null ? undefined : safeJson(v)
  }
}
