// The CLI's flag parsing, in-process: the spawning tests in cli.test.ts cover the wiring.
import { describe, expect, it } from 'vitest'
import { CliUsageError, parseFlags, type FlagSpec } from '../src/cli/args.js'
import { PUSH_FLAGS } from '../src/cli/push.js'

const SPECS: readonly FlagSpec[] = [
  { name: 'url', type: 'string', help: '' },
  { name: 'header', type: 'string', multiple: true, help: '' },
  { name: 'quiet', type: 'boolean', help: '' },
  { name: 'help', type: 'boolean', short: 'h', help: '' },
]

function usage(argv: readonly string[], specs: readonly FlagSpec[] = SPECS): string {
  try {
    parseFlags(argv, specs, 'lokiwire push')
  } catch (err) {
    expect(err).toBeInstanceOf(CliUsageError)
    return (err as Error).message
  }
  throw new Error(`${JSON.stringify(argv)} was accepted`)
}

describe('parseFlags', () => {
  it('parses what the table declares', () => {
    expect(parseFlags(['--url', 'http://x', '--header', 'a:1', '--header=b:2', '--quiet', '-h'], SPECS, 'x')).toEqual({
      url: 'http://x',
      header: ['a:1', 'b:2'],
      quiet: true,
      help: true,
    })
    // A lone dash is a value (stdin, by convention), not a flag.
    expect(parseFlags(['--url', '-'], SPECS, 'x')).toEqual({ url: '-' })
    expect(parseFlags(['--url=-weird'], SPECS, 'x')).toEqual({ url: '-weird' })
  })

  it('names the flag at fault, in flag terms, for every kind of mistake', () => {
    expect(usage(['--nope'])).toBe('unknown flag --nope (see lokiwire push --help)')
    expect(usage(['-x'])).toBe('unknown flag -x (see lokiwire push --help)')
    expect(usage(['--url', 'a', 'stray'])).toBe('unexpected argument "stray" (see lokiwire push --help)')
    expect(usage(['--url'])).toBe('--url needs a value (see lokiwire push --help)')
    expect(usage(['--url', '--quiet'])).toBe('--url needs a value (see lokiwire push --help)')
    expect(usage(['--quiet=yes'])).toBe('--quiet takes no value (see lokiwire push --help)')
  })

  it('a boolean flag with a short form given a value is named too (Node words that one differently)', () => {
    // Node says "Option '-h, --help' does not take an argument": matching its prose missed this one.
    expect(usage(['--help=yes'])).toBe('--help takes no value (see lokiwire push --help)')
    expect(usage(['--help=yes'], PUSH_FLAGS)).toBe('--help takes no value (see lokiwire push --help)')
  })
})
