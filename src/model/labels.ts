/*
 * Stream labels: validation, sanitising and the canonical selector string.
 *
 * Loki rejects a whole request with 400 when one stream has a bad label, so labels are checked
 * here, once per distinct label set, and the verdict is cached: the hot path pays a Map lookup.
 */

export const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/
/** Loki's defaults: at most 15 labels, names up to 1024 bytes, values up to 2048 bytes. */
export const MAX_LABELS = 15
export const MAX_LABEL_NAME_BYTES = 1024
export const MAX_LABEL_VALUE_BYTES = 2048

export type InvalidLabelsPolicy = 'sanitize' | 'drop'

export interface ResolvedStream {
  /** The canonical selector; doubles as the stream's identity. */
  selector: string
  labels: Readonly<Record<string, string>>
}

function escapeValue(v: string): string {
  // Loki parses the selector with the PromQL lexer: backslash, quote and newline must be escaped.
  return /["\\\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v
}

/** `{a="1", b="2"}` with names sorted, as Loki's protobuf `labels` field wants it. */
export function selectorOf(labels: Readonly<Record<string, string>>): string {
  const names = Object.keys(labels).sort()
  let out = '{'
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += ', '
    out += `${names[i]}="${escapeValue(labels[names[i]!]!)}"`
  }
  return out + '}'
}

const UNESCAPE: Readonly<Record<string, string>> = { '\\': '\\', '"': '"', n: '\n' }

/**
 * The labels of a selector selectorOf() wrote: its inverse, kept beside it so the format lives in
 * one place. Reads only that format (names unquoted, values quoted with `\\`, `\"` and `\n`
 * escaped, pairs joined by `, `); undefined for anything else.
 */
export function labelsOfSelector(selector: string): Record<string, string> | undefined {
  if (selector[0] !== '{' || selector[selector.length - 1] !== '}') return undefined
  const labels: Record<string, string> = {}
  let i = 1
  const end = selector.length - 1
  while (i < end) {
    const eq = selector.indexOf('="', i)
    if (eq < 0) return undefined
    const name = selector.slice(i, eq)
    if (!LABEL_NAME_RE.test(name)) return undefined
    let value = ''
    for (i = eq + 2; ; i++) {
      if (i >= end) return undefined
      const c = selector[i]!
      if (c === '"') break
      if (c === '\\') {
        const u = UNESCAPE[selector[++i]!]
        if (u === undefined) return undefined
        value += u
      } else {
        value += c
      }
    }
    labels[name] = value
    i++
    if (i < end) {
      if (selector[i] !== ',' || selector[i + 1] !== ' ') return undefined
      i += 2
    }
  }
  return labels
}

/** Cuts a string to at most `maxBytes` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (s.length <= maxBytes / 3 || Buffer.byteLength(s) <= maxBytes) return s
  const buf = Buffer.from(s)
  let end = maxBytes
  // Step back over continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--
  return buf.subarray(0, end).toString()
}

/** Makes a name Loki accepts: invalid characters become `_`, a leading digit or `__` gets prefixed. */
export function sanitizeLabelName(name: string): string | undefined {
  if (name.length === 0) return undefined
  let out = LABEL_NAME_RE.test(name) ? name : name.replace(/[^a-zA-Z0-9_]/g, '_')
  if (/^[0-9]/.test(out)) out = `_${out}`
  // `__`-prefixed names are reserved for Loki's internal labels.
  if (out.startsWith('__')) out = `x${out}`
  return truncateUtf8(out, MAX_LABEL_NAME_BYTES)
}

/**
 * True for a name Loki accepts as a label name. Structured metadata names follow the same rule:
 * Loki 2.9 stores a metadata name such as `trace-id` and then fails every query over the stream
 * (HTTP 500); Loki 3 renames it.
 */
export function isLabelName(name: string): boolean {
  // The pattern admits ASCII only, so length is the byte length.
  return LABEL_NAME_RE.test(name) && !(name.charCodeAt(0) === 95 && name.charCodeAt(1) === 95) && name.length <= MAX_LABEL_NAME_BYTES
}

/** Why `name` is not a valid label (or metadata) name, or undefined when it is. */
export function labelNameProblem(name: string, what = 'label'): string | undefined {
  if (!LABEL_NAME_RE.test(name)) return `${what} name "${name.slice(0, 64)}" must match ${LABEL_NAME_RE.source}`
  if (name.startsWith('__')) return `${what} name "${name}" is reserved (starts with "__")`
  if (name.length > MAX_LABEL_NAME_BYTES) return `${what} name "${name.slice(0, 32)}..." is over ${MAX_LABEL_NAME_BYTES} bytes`
  return undefined
}

/** Why a label set is unusable, or undefined when it is fine as it is. */
export function labelProblem(name: string, value: unknown): string | undefined {
  const bad = labelNameProblem(name)
  if (bad !== undefined) return bad
  if (typeof value !== 'string') return `label "${name}" must have a string value`
  if (Buffer.byteLength(value) > MAX_LABEL_VALUE_BYTES) return `label "${name}" value is over ${MAX_LABEL_VALUE_BYTES} bytes`
  return undefined
}

/** Why an entry was refused: the field at fault (`labels.app`, `metadata.trace-id`) and what is wrong. */
export interface Refusal {
  readonly field: string
  readonly message: string
}

export function isRefusal(r: object): r is Refusal {
  return 'field' in r
}

/**
 * Merges entry labels over the defaults and applies the policy. Returns a Refusal when the entry
 * must be dropped (policy 'drop' and a bad label, no labels at all, or too many).
 * Empty values are removed, as Loki itself does.
 */
export function resolveLabels(
  defaults: Readonly<Record<string, string>>,
  extra: Readonly<Record<string, unknown>>,
  policy: InvalidLabelsPolicy,
): ResolvedStream | Refusal {
  const merged: Record<string, string> = { ...defaults }
  // for...in, like the client's label cache walk: both must read the same properties.
  for (const rawName in extra) {
    let value = extra[rawName]
    if (value === undefined || value === null) continue
    if (typeof value !== 'string') {
      if (policy === 'drop') return { field: `labels.${rawName}`, message: `label "${rawName}" must have a string value, got ${typeof value}` }
      value = String(value)
    }
    let name: string | undefined = rawName
    const problem = labelProblem(rawName, value)
    if (problem !== undefined) {
      if (policy === 'drop') return { field: `labels.${rawName}`, message: problem }
      name = sanitizeLabelName(rawName)
      if (name === undefined) continue
      value = truncateUtf8(value as string, MAX_LABEL_VALUE_BYTES)
    }
    if (value === '') {
      delete merged[name]
      continue
    }
    merged[name] = value as string
  }
  const count = Object.keys(merged).length
  if (count === 0) return { field: 'labels', message: NO_LABELS }
  if (count > MAX_LABELS) return { field: 'labels', message: `${count} labels, Loki allows at most ${MAX_LABELS} per stream` }
  const sorted: Record<string, string> = {}
  for (const name of Object.keys(merged).sort()) sorted[name] = merged[name]!
  return { selector: selectorOf(sorted), labels: sorted }
}

/** The message of an entry left with no stream labels: its own are empty and the client has none. */
export const NO_LABELS = 'no stream labels left: the client has no default labels and the entry none with a value (empty values remove labels)'
