import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { beforeAll, describe, expect, it } from 'vitest'
import * as src from '../src/model/errors.js'

// The two module systems each load their own copy of the built package: what a user gets when one
// dependency imports lokiwire and another requires it.
const ESM = new URL('../dist/index.js', import.meta.url)
const CJS = new URL('../dist/index.cjs', import.meta.url)

type Errors = typeof src
const CLASSES = ['LokiError', 'LokiOptionError', 'LokiEntryError', 'LokiHttpError', 'LokiTimeoutError', 'LokiNetworkError', 'LokiAbortError'] as const
type ClassName = (typeof CLASSES)[number]

/** One instance of each class, made by the given copy. */
function makeAll(m: Errors): Record<ClassName, Error> {
  return {
    LokiError: new m.LokiError(m.ErrorCodes.INTERNAL, 'internal'),
    LokiOptionError: new m.LokiOptionError('batch.maxEntries', 'too small'),
    LokiEntryError: new m.LokiEntryError('line', 'not a string'),
    LokiHttpError: new m.LokiHttpError(500, 'boom'),
    LokiTimeoutError: new m.LokiTimeoutError('slow'),
    LokiNetworkError: new m.LokiNetworkError('refused'),
    LokiAbortError: new m.LokiAbortError('aborted'),
  }
}

/** The classes by name, for the loops below. */
function classes(m: Errors): Record<ClassName, abstract new (...args: never[]) => Error> {
  const { LokiError, LokiOptionError, LokiEntryError, LokiHttpError, LokiTimeoutError, LokiNetworkError, LokiAbortError } = m
  return { LokiError, LokiOptionError, LokiEntryError, LokiHttpError, LokiTimeoutError, LokiNetworkError, LokiAbortError }
}

let esm: Errors
let cjs: Errors

beforeAll(async () => {
  for (const f of [ESM, CJS]) if (!existsSync(f)) throw new Error(`${f.pathname} is missing: run \`npm run build:js\` first (npm test does)`)
  esm = (await import(ESM.href)) as Errors
  cjs = createRequire(import.meta.url)(CJS.pathname) as Errors
})

describe('errors', () => {
  it('instanceof holds across the ESM and the CommonJS copy of the package, both ways', () => {
    // Two copies really are two classes: without the brand, every check below would be false.
    expect(esm.LokiError).not.toBe(cjs.LokiError)
    for (const [maker, other] of [
      [cjs, esm],
      [esm, cjs],
    ] as const) {
      const made = makeAll(maker)
      for (const name of CLASSES) {
        expect(made[name] instanceof classes(other)[name], `${name} from one copy instanceof the other's ${name}`).toBe(true)
        expect(made[name] instanceof other.LokiError, `${name} instanceof the other's LokiError`).toBe(true)
        expect(made[name] instanceof Error).toBe(true)
      }
    }
  })

  it('a subclass claims only its own instances, not its siblings or its base', () => {
    const made = makeAll(src)
    const byName = classes(src)
    for (const cls of CLASSES) {
      for (const name of CLASSES) {
        const expected = cls === 'LokiError' || cls === name
        expect(made[name] instanceof byName[cls], `${name} instanceof ${cls}`).toBe(expected)
      }
    }
  })

  it('foreign values are not LokiErrors, whatever their shape', () => {
    for (const v of [null, undefined, 0, 'LokiError', {}, new Error('x'), Object.assign(new Error('x'), { code: 'LOKI_INTERNAL', name: 'LokiError' })]) {
      expect(v instanceof src.LokiError).toBe(false)
    }
  })

  it('the brand stays out of the way: not enumerable, not in JSON, not on the instance', () => {
    const e = new src.LokiHttpError(503, 'busy')
    expect(Object.getOwnPropertySymbols(e)).toEqual([])
    expect(Object.keys(e)).not.toContain('lokiwire')
    expect(JSON.parse(JSON.stringify(e))).toEqual({ name: 'LokiHttpError', code: 'LOKI_HTTP_STATUS', status: 503, body: 'busy' })
  })

  it('every code in ErrorCodes is one lokiwire produces', () => {
    // LOKI_BREAKER_OPEN and LOKI_CLOSED were listed and never produced: a batch waits for an open
    // breaker instead of failing, and push() after close() is reported as the 'closed' drop reason.
    expect(Object.values(src.ErrorCodes).sort()).toEqual(
      ['LOKI_ABORTED', 'LOKI_DNS', 'LOKI_ENCODE', 'LOKI_HTTP_STATUS', 'LOKI_INTERNAL', 'LOKI_INVALID_ENTRY', 'LOKI_INVALID_OPTION', 'LOKI_INVALID_URL', 'LOKI_NETWORK', 'LOKI_PROXY', 'LOKI_REQUEST_TIMEOUT', 'LOKI_TLS'].sort(),
    )
  })
})
