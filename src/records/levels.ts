/*
 * Level names: one rule for every record that reaches Loki through the adapters or the CLI, so
 * the same record gets the same `level` whichever way it came.
 */
import { LokiOptionError } from '../model/errors.js'
import { DIGITS, isObject } from '../model/validate.js'

/** pino's levels; bunyan uses the same numbers. */
export const PINO_LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const

/** Terminal colour codes, as winston's colorize() wraps a level in. */
const ANSI = /\x1b\[[0-9;]*m/g
/** Longer than any level name: such a "level" is a field that happens to be called so. */
const MAX_LEVEL_CHARS = 32

/**
 * pino's level table, number -> name, with `custom` (name -> number) laid over it. `option` names
 * the option a bad `custom` came from.
 */
export function levelTable(custom: unknown, option: string): Map<number, string> {
  const table = new Map<number, string>()
  for (const [name, n] of Object.entries(PINO_LEVELS)) table.set(n, name)
  if (custom === undefined) return table
  if (!isObject(custom)) throw new LokiOptionError(option, 'expected an object of level name -> number')
  for (const [name, n] of Object.entries(custom)) {
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new LokiOptionError(`${option}.${name}`, 'expected a number')
    table.set(n, name)
  }
  return table
}

/**
 * The name a record's level is sent under, or undefined when it has none. A number is looked up
 * in `names` and sent as its digits when nobody named it; a string loses colour codes and
 * surrounding space and is lower-cased (`'WARN'` and `'warn'` are one stream), and a string of
 * digits is read as the number. Anything else, or an empty or overlong string, is no level.
 */
export function levelName(v: unknown, names: ReadonlyMap<number, string>): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? (names.get(v) ?? String(v)) : undefined
  if (typeof v !== 'string') return undefined
  const s = (v.includes('\x1b') ? v.replace(ANSI, '') : v).trim().toLowerCase()
  if (s === '' || s.length > MAX_LEVEL_CHARS) return undefined
  return DIGITS.test(s) ? levelName(Number(s), names) : s
}
