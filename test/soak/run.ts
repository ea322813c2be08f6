/*
 * npm run soak -- [--seconds N] [--seed N] [--rate N] [--concurrency N] [--encoding protobuf|json]
 *                 [--overflow[=drop-newest|drop-oldest]] [--outage] [--spool] [--quiet]
 *
 * Exits 0 when every invariant held, 1 on the first violation (printed with the seed and a
 * command that replays it), 2 on bad arguments.
 */
import { formatReport } from './report.js'
import { replayCommand, runSoak, type SoakOptions } from './soak.js'

const USAGE = `usage: npm run soak -- [options]
  --seconds N       producer run time (default 60)
  --seed N          seed of the fault schedule and producer (default: random, printed)
  --rate N          steady lines per second before bursts (default 2000)
  --concurrency N   client concurrency and connection limit (default 2)
  --encoding E      protobuf or json (default: drawn from the seed)
  --overflow[=P]    small buffer, policy P drop-newest (default) or drop-oldest:
                    'buffer_full' drops expected and checked
  --outage          one outage longer than the retry budget: 'retries_exhausted' expected
  --spool           durable spool in a temporary directory: what --outage and --overflow
                    would drop must be replayed instead; only poison may be lost
  --quiet           no progress lines, only the report`

function parseArgs(argv: string[]): SoakOptions & { quiet: boolean } {
  const out: SoakOptions & { quiet: boolean } = { quiet: false }
  const num = (name: string, v: string | undefined, integer: boolean): number => {
    const n = Number(v)
    if (v === undefined || v === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new Error(`${name} expects a positive ${integer ? 'integer' : 'number'}, got ${v ?? 'nothing'}`)
    }
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    const value = () => inline ?? argv[++i]
    switch (flag) {
      case '--seconds':
        out.seconds = num(flag, value(), false)
        break
      case '--seed': {
        const v = value()
        const n = Number(v)
        // 0 is a valid seed; anything else must fit the 32 bits the generator uses.
        if (v === undefined || !Number.isInteger(n) || n < 0 || n >= 2 ** 32) throw new Error(`--seed expects an integer from 0 to ${2 ** 32 - 1}, got ${v ?? 'nothing'}`)
        out.seed = n
        break
      }
      case '--rate':
        out.rate = num(flag, value(), false)
        break
      case '--concurrency':
        out.concurrency = num(flag, value(), true)
        break
      case '--encoding': {
        const v = value()
        if (v !== 'protobuf' && v !== 'json') throw new Error(`--encoding expects protobuf or json, got ${v ?? 'nothing'}`)
        out.encoding = v
        break
      }
      case '--overflow':
        // The policy only as --overflow=POLICY, so a bare --overflow never swallows the next flag.
        if (inline !== undefined && inline !== 'drop-newest' && inline !== 'drop-oldest') {
          throw new Error(`--overflow expects drop-newest or drop-oldest, got ${inline}`)
        }
        out.overflow = inline ?? 'drop-newest'
        break
      case '--outage':
        out.longOutage = true
        break
      case '--spool':
        out.spool = true
        break
      case '--quiet':
        out.quiet = true
        break
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`)
        process.exit(0)
        break
      default:
        throw new Error(`unknown argument ${a}`)
    }
  }
  return out
}

let args: ReturnType<typeof parseArgs>
try {
  args = parseArgs(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`)
  process.exit(2)
}
const { quiet, ...options } = args
// Drawn here rather than inside runSoak so it is printed before anything can go wrong.
options.seed ??= Math.floor(Math.random() * 2 ** 32)
const concurrency = options.concurrency ?? 2
const seconds = options.seconds ?? 60
const rate = options.rate ?? 2000
if (!quiet) {
  process.stdout.write(
    `soak: seed=${options.seed} seconds=${seconds} rate=${rate} concurrency=${concurrency}\n` +
      `      replay: ${replayCommand({ seconds, seed: options.seed, rate, concurrency, overflow: options.overflow, longOutage: options.longOutage ?? false, spool: options.spool ?? false, ...(options.encoding ? { encoding: options.encoding } : {}) })}\n`,
  )
}

let result: Awaited<ReturnType<typeof runSoak>>
try {
  result = await runSoak({ ...options, ...(quiet ? {} : { log: (line: string) => process.stdout.write(`  ${line}\n`) }) })
} catch (err) {
  // Only setup can throw (bad option combinations, no port); the run itself reports violations.
  process.stderr.write(`soak: ${(err as Error).message}\n`)
  process.exit(2)
}
process.stdout.write(`${formatReport(result)}\n`)
process.exitCode = result.ok ? 0 : 1

// Everything was closed; a handle that still holds the process open is itself a leak.
setTimeout(() => {
  const open = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'Timeout')
  process.stderr.write(`soak: the process did not exit 5 s after the run (open: ${open.join(', ') || 'unknown'}); seed=${options.seed}\n`)
  process.exit(1)
}, 5000).unref()
