/*
 * The checks every options reader shares (the client's, the adapters', the record mapping's), so
 * a wrong value gets the same kind of message whichever option it was given to.
 */
import { LokiOptionError } from './errors.js'

/** A string of decimal digits and nothing else. */
export const DIGITS = /^\d+$/

/** A plain object: not null, not an array. */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A value as an error message may show it: short, and never a whole object. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}...` : v)
  if (typeof v === 'bigint') return `${v}n`
  if (v === null || typeof v !== 'object') return String(v)
  return Array.isArray(v) ? 'an array' : 'an object'
}

export function int(name: string, v: unknown, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new LokiOptionError(name, `expected an integer from ${min} to ${max}, got ${describe(v)}`)
  }
  return v
}

export function oneOf<T extends string>(name: string, v: unknown, def: T, allowed: readonly T[]): T {
  if (v === undefined) return def
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw new LokiOptionError(name, `expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(v)}`)
  }
  return v as T
}

export function bool(name: string, v: unknown, def: boolean): boolean {
  if (v === undefined) return def
  if (typeof v !== 'boolean') throw new LokiOptionError(name, `expected a boolean, got ${describe(v)}`)
  return v
}

/**
 * The keys of an options interface, from an object that must name every one of them: a key added
 * to the interface and not here is a type error, so the list of known keys cannot drift from it.
 * `keysOf<BatchOptions>()({ maxEntries: true, maxBytes: true, maxWaitMs: true })`.
 */
export function keysOf<T extends object>(): (all: { readonly [K in keyof Required<T>]: true }) => ReadonlyArray<keyof T & string> {
  return (all) => Object.keys(all) as Array<keyof T & string>
}
