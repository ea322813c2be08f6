import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { LokiOptionError } from '../model/errors.js'
import type { LokiClientOptions, TlsOptions } from '../model/options.js'

/** A mistake on the command line: reported as one line on stderr with exit code 2. */
export class CliUsageError extends Error {
  override name = 'CliUsageError'
  /** The subcommand it concerns, for the `lokiwire push: ...` prefix. */
  command: string | undefined
}

export interface FlagSpec {
  /** Long name without the dashes. */
  name: string
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** Placeholder shown in --help, e.g. `<ms>`. */
  value?: string
  help: string
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>

/**
 * One table drives both the parser and --help, so a flag cannot be accepted without being
 * documented, or documented without being accepted.
 */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], command: string): FlagValues {
  const options: ParseOptions = {}
  for (const s of specs) {
    options[s.name] = { type: s.type, ...(s.short ? { short: s.short } : {}), ...(s.multiple ? { multiple: true } : {}) }
  }
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values as FlagValues
  } catch (err) {
    throw new CliUsageError(`${describeParseError(err, argv, options)} (see ${command} --help)`)
  }
}

type ParseOptions = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>

/**
 * parseArgs' messages are English prose that may change with any Node release: the error's `code`
 * says what went wrong, and a lenient re-parse into tokens says where.
 */
function describeParseError(err: unknown, argv: readonly string[], options: ParseOptions): string {
  const code = (err as { code?: unknown } | null)?.code
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true })
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const t = tokens.find((x) => x.kind === 'option' && !Object.hasOwn(options, x.name))
      if (t?.kind === 'option') return `unknown flag ${t.rawName}`
      break
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const t = tokens.find((x) => x.kind === 'positional')
      if (t?.kind === 'positional') return `unexpected argument "${t.value}"`
      break
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      for (const t of tokens) {
        if (t.kind !== 'option' || !Object.hasOwn(options, t.name)) continue
        if (options[t.name]!.type === 'boolean') {
          if (t.value !== undefined) return `${t.rawName} takes no value`
        } else if (t.value === undefined || (!t.inlineValue && t.value.length > 1 && t.value.startsWith('-'))) {
          // Missing, or followed by another flag: `--url --labels a=b` is a forgotten value.
          // A value that starts with a dash is given inline: --name=-value.
          return `${t.rawName} needs a value`
        }
      }
      break
    }
  }
  // A code this parser does not know yet: Node's own first line.
  return String((err as Error | null)?.message ?? err).split('\n')[0]!.replace(/\.$/, '')
}

export function formatFlags(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const names = `${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.value ? ` ${s.value}` : ''}`
    return [names, s.help] as const
  })
  const width = Math.min(34, Math.max(...rows.map(([n]) => n.length)) + 2)
  return rows
    .map(([names, help]) => {
      const lines = help.split('\n')
      const first = names.length + 2 > width ? `  ${names}\n${' '.repeat(width + 2)}${lines[0]}` : `  ${names.padEnd(width)}${lines[0]}`
      return [first, ...lines.slice(1).map((l) => ' '.repeat(width + 2) + l)].join('\n')
    })
    .join('\n')
}

// --- values -------------------------------------------------------------------------------

export function str(values: FlagValues, name: string): string | undefined {
  const v = values[name]
  return typeof v === 'string' ? v : undefined
}

export function list(values: FlagValues, name: string): string[] {
  const v = values[name]
  const raw = Array.isArray(v) ? v : typeof v === 'string' ? [v] : []
  return raw.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '')
}

export function int(values: FlagValues, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = str(values, name)
  if (v === undefined) return fallback
  if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) {
    throw new CliUsageError(`--${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`)
  }
  return Number(v)
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/** `65536`, `512k`, `64m`, `1g` (binary units; a trailing `b`/`ib` is accepted). */
export function bytes(values: FlagValues, name: string, fallback: number): number {
  const v = str(values, name)
  if (v === undefined) return fallback
  const m = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(v.trim())
  if (!m) throw new CliUsageError(`--${name}: expected a size such as 67108864, 512k or 64m, got ${JSON.stringify(v)}`)
  return Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]!
}

/** `app=api,env=prod`; repeated flags add up. Names and values are checked by the client. */
export function labels(values: FlagValues, name: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of list(values, name)) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new CliUsageError(`--${name}: expected name=value pairs separated by commas, got ${JSON.stringify(pair)}`)
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim()
  }
  return out
}

// --- connection flags, shared by push and demo ---------------------------------------------

export const CONNECTION_FLAGS: readonly FlagSpec[] = [
  { name: 'url', type: 'string', value: '<url>', help: "Loki's base URL (http://loki:3100) or push URL. Env: LOKI_URL" },
  { name: 'tenant', type: 'string', value: '<id>', help: 'Tenant, sent as X-Scope-OrgID. Env: LOKI_TENANT' },
  { name: 'basic-auth', type: 'string', value: '<user:pass>', help: 'Basic auth. Env: LOKI_BASIC_AUTH keeps it out of `ps`' },
  { name: 'bearer-token', type: 'string', value: '<token>', help: 'Bearer token. Env: LOKI_BEARER_TOKEN keeps it out of `ps`' },
  { name: 'header', type: 'string', multiple: true, value: '<name:value>', help: 'Extra request header; repeatable. Values are never printed' },
  { name: 'ca', type: 'string', value: '<file>', help: 'PEM CA bundle to verify an https Loki (a private CA)' },
  { name: 'cert', type: 'string', value: '<file>', help: 'PEM client certificate for mutual TLS (with --key)' },
  { name: 'key', type: 'string', value: '<file>', help: 'PEM private key of --cert' },
  { name: 'proxy', type: 'string', value: '<url|env>', help: 'Send through an HTTP(S) proxy; `env` honours HTTPS_PROXY, HTTP_PROXY\nand NO_PROXY. Default: connect directly' },
  { name: 'encoding', type: 'string', value: '<protobuf|json>', help: 'Wire format. Default: protobuf' },
  { name: 'timeout', type: 'string', value: '<ms>', help: 'Deadline of one HTTP attempt, connect to last byte. Default: 10000' },
  { name: 'concurrency', type: 'string', value: '<n>', help: 'Requests in flight at once, so at most this many connections.\nDefault: 2' },
]

type Env = Readonly<Record<string, string | undefined>>

function readPem(values: FlagValues, name: string): Buffer | undefined {
  const file = str(values, name)
  if (file === undefined) return undefined
  try {
    return readFileSync(file)
  } catch (err) {
    throw new CliUsageError(`--${name}: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}

/**
 * Client options that came from the environment rather than a flag: option name -> variable.
 * Errors about them must name the variable, or the user looks for a flag they never gave.
 */
export type EnvSources = Map<string, string>

/**
 * Client options from the connection flags, falling back to LOKI_* environment variables.
 * `fromEnv`, when given, is filled with the options taken from the environment.
 */
export function connectionOptions(values: FlagValues, env: Env, opts: { requireUrl: boolean }, fromEnv: EnvSources = new Map()): Partial<LokiClientOptions> {
  const out: Partial<LokiClientOptions> = {}
  const fallback = (option: string, variable: string): string | undefined => {
    const v = env[variable] || undefined
    if (v !== undefined) fromEnv.set(option, variable)
    return v
  }
  const url = str(values, 'url') ?? fallback('url', 'LOKI_URL')
  if (url === undefined) {
    if (opts.requireUrl) throw new CliUsageError('--url is required (or set LOKI_URL), e.g. --url http://localhost:3100')
  } else {
    out.url = url
  }
  const tenant = str(values, 'tenant') ?? fallback('tenant', 'LOKI_TENANT')
  if (tenant !== undefined) out.tenant = tenant

  const basic = str(values, 'basic-auth') ?? (str(values, 'bearer-token') === undefined ? fallback('basicAuth', 'LOKI_BASIC_AUTH') : undefined)
  const bearer = str(values, 'bearer-token') ?? (str(values, 'basic-auth') === undefined ? fallback('bearerToken', 'LOKI_BEARER_TOKEN') : undefined)
  if (basic !== undefined && bearer !== undefined) {
    throw new CliUsageError('use only one of --basic-auth and --bearer-token (LOKI_BASIC_AUTH and LOKI_BEARER_TOKEN)')
  }
  if (basic !== undefined) {
    const colon = basic.indexOf(':')
    // The value is a credential: the message describes its shape, never its content.
    if (colon <= 0) throw new CliUsageError(`${fromEnv.get('basicAuth') ?? '--basic-auth'}: expected user:password`)
    out.basicAuth = { username: basic.slice(0, colon), password: basic.slice(colon + 1) }
  }
  if (bearer !== undefined) {
    if (bearer === '') throw new CliUsageError('--bearer-token: expected a non-empty token')
    out.bearerToken = bearer
  }

  const headers: Record<string, string> = {}
  for (const h of (values.header as string[] | undefined) ?? []) {
    const colon = h.indexOf(':')
    if (colon <= 0) throw new CliUsageError(`--header: expected name:value, got a value without a name`)
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim()
  }
  if (Object.keys(headers).length > 0) out.headers = headers

  const tls: TlsOptions = {}
  const ca = readPem(values, 'ca')
  const cert = readPem(values, 'cert')
  const key = readPem(values, 'key')
  if ((cert === undefined) !== (key === undefined)) throw new CliUsageError('--cert and --key go together (mutual TLS needs both)')
  if (ca !== undefined) tls.ca = ca
  if (cert !== undefined) tls.cert = cert
  if (key !== undefined) tls.key = key
  if (Object.keys(tls).length > 0) out.tls = tls

  const proxy = str(values, 'proxy')
  if (proxy !== undefined) out.proxy = proxy

  const encoding = str(values, 'encoding')
  if (encoding !== undefined) {
    if (encoding !== 'protobuf' && encoding !== 'json') throw new CliUsageError(`--encoding: expected protobuf or json, got ${JSON.stringify(encoding)}`)
    out.encoding = encoding
  }
  if (str(values, 'timeout') !== undefined) out.requestTimeoutMs = int(values, 'timeout', 10_000, 1, 600_000)
  if (str(values, 'concurrency') !== undefined) out.concurrency = int(values, 'concurrency', 2, 1, 64)
  return out
}

/** Option paths of LokiClientOptions and the flags that set them, for error messages in flag terms. */
const FLAG_OF_OPTION: ReadonlyArray<readonly [string, string]> = [
  ['url', '--url'],
  ['labels', '--labels'],
  ['tenant', '--tenant'],
  ['basicAuth', '--basic-auth'],
  ['bearerToken', '--bearer-token'],
  ['headers', '--header'],
  ['tls', '--ca/--cert/--key'],
  ['proxy', '--proxy'],
  ['encoding', '--encoding'],
  ['requestTimeoutMs', '--timeout'],
  ['connectTimeoutMs', '--timeout'],
  ['concurrency', '--concurrency'],
  ['batch.maxWaitMs', '--batch-wait'],
  ['batch.maxEntries', '--batch-size'],
  ['maxBufferBytes', '--max-buffer'],
  ['retry.maxAttempts', '--max-attempts'],
  ['retry.budgetMs', '--retry-budget'],
  ['closeTimeoutMs', '--close-timeout'],
  ['labelsFrom', '--json-labels'],
  ['metadataFrom', '--json-metadata'],
]

/**
 * The client's own validation, reworded in flag terms. LokiOptionError messages never carry
 * credentials, so they are safe to print as they are.
 */
export function usageFromOptionError(err: LokiOptionError, fromEnv?: EnvSources): CliUsageError {
  const detail = err.message.replace(/^Invalid option "[^"]*": /, '')
  const match = FLAG_OF_OPTION.find(([option]) => err.option === option || err.option.startsWith(`${option}.`))
  if (match === undefined) return new CliUsageError(err.message)
  const variable = fromEnv?.get(match[0])
  return new CliUsageError(`${variable === undefined ? match[1] : `${variable} (used because ${match[1]} was not given)`}: ${detail}`)
}
