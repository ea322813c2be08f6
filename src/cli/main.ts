import { LokiOptionError } from '../model/errors.js'
import { VERSION } from '../model/version.js'
import { CliUsageError, usageFromOptionError } from './args.js'
import { runDemo } from './demo.js'
import type { CliIO } from './io.js'
import { runPush } from './push.js'

const HELP = `Usage: lokiwire <command> [flags]

Commands:
  push    Read log lines from stdin and ship them to Loki:
            node app.js | lokiwire push --url http://loki:3100 --labels app=api
  demo    Watch the client ride out a stalled and failing receiver, then check every line arrived:
            npx lokiwire demo [--quick]

Run lokiwire <command> --help for the flags of each command.

Flags:
  -h, --help     Show this help
  -v, --version  Print the version
`

const COMMANDS: Record<string, (argv: readonly string[], io: CliIO) => Promise<number>> = {
  push: runPush,
  demo: runDemo,
}

async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined) {
    io.stderr.write(HELP)
    return 2
  }
  if (command === '-h' || command === '--help' || command === 'help') {
    const sub = rest[0] !== undefined ? COMMANDS[rest[0]] : undefined
    if (sub !== undefined) return sub(['--help'], io)
    io.stdout.write(HELP)
    return 0
  }
  if (command === '-v' || command === '--version') {
    io.stdout.write(`${VERSION}\n`)
    return 0
  }
  const run = COMMANDS[command]
  if (run === undefined) {
    const what = command.startsWith('-') ? `unknown flag ${command}` : `unknown command ${JSON.stringify(command)}`
    throw new CliUsageError(`${what} (commands: ${Object.keys(COMMANDS).join(', ')}; see lokiwire --help)`)
  }
  try {
    return await run(rest, io)
  } catch (err) {
    const usage = err instanceof LokiOptionError ? usageFromOptionError(err) : err
    if (usage instanceof CliUsageError) usage.command ??= command
    throw usage
  }
}

const io: CliIO = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }
// A closed terminal or a reader that went away must not turn into an unhandled 'error' event.
process.stdout.on('error', () => {})
process.stderr.on('error', () => {})

let code: number
try {
  code = await main(process.argv.slice(2), io)
} catch (err) {
  if (err instanceof CliUsageError) {
    io.stderr.write(`lokiwire${err.command ? ` ${err.command}` : ''}: ${err.message}\n`)
    code = 2
  } else {
    // A bug, not a usage problem: one line by default, the stack when asked for.
    const e = err as Error
    io.stderr.write(`lokiwire: internal error: ${e?.message ?? String(err)}${io.env.LOKIWIRE_DEBUG ? `\n${e?.stack ?? ''}` : ''}\n`)
    code = 1
  }
}
process.exitCode = code
// Everything is closed by now; should a handle still linger, it must not hold the exit hostage.
setTimeout(() => process.exit(code), 2000).unref()
