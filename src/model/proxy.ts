import { ErrorCodes, LokiOptionError } from './errors.js'
import { describe } from './validate.js'

/**
 * The proxy a client sends through, resolved once at construction. A client talks to one
 * origin, so whether it goes through a proxy (and which) is decided here, not per request.
 */
export interface ResolvedProxy {
  /** `http://proxy:3128`: where the CONNECT tunnels are asked for. */
  origin: string
  /** The proxy's URL without credentials, for messages. */
  displayUrl: string
  /** `Basic …` from the URL's userinfo; sent to the proxy only, never printed. */
  authorization: string | undefined
  /** Where the URL came from, for messages: `proxy`, `HTTPS_PROXY`, `http_proxy`, … */
  source: string
}

/** The environment variables the `'env'` setting reads; lower case wins, as curl and undici do. */
type Env = Readonly<Record<string, string | undefined>>

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 }

/**
 * The `proxy` option: `false`/`undefined` (none), `'env'`, or a proxy URL. For `'env'`, the
 * variables are read as undici's EnvHttpProxyAgent reads them (so behaviour matches Node's own
 * fetch behind a proxy): `https_proxy`/`HTTPS_PROXY` for an https Loki, falling back to
 * `http_proxy`/`HTTP_PROXY`, which an http Loki uses; `no_proxy`/`NO_PROXY` lists hosts
 * (`host`, `.domain`, `*.domain`, `host:port`, `*`) reached directly.
 */
export function resolveProxy(value: unknown, lokiOrigin: string, env: Env = process.env): ResolvedProxy | undefined {
  if (value === undefined || value === false) return undefined
  if (value === 'env') return fromEnv(lokiOrigin, env)
  if (typeof value === 'string' || value instanceof URL) return parseProxyUrl('proxy', 'proxy', String(value))
  throw new LokiOptionError('proxy', `expected false, 'env' or a proxy URL such as http://proxy:3128, got ${describe(value)}`)
}

function fromEnv(lokiOrigin: string, env: Env): ResolvedProxy | undefined {
  const loki = new URL(lokiOrigin)
  const pick = (...names: string[]): [string, string] | undefined => {
    for (const name of names) {
      const v = env[name]
      if (v !== undefined && v !== '') return [name, v]
    }
    return undefined
  }
  const http = pick('http_proxy', 'HTTP_PROXY')
  const found = loki.protocol === 'https:' ? pick('https_proxy', 'HTTPS_PROXY') ?? http : http
  if (found === undefined) return undefined
  if (bypassed(loki, pick('no_proxy', 'NO_PROXY')?.[1] ?? '')) return undefined
  return parseProxyUrl('proxy', found[0], found[1])
}

/** True when `noProxy` names Loki's host (and port, when the entry has one). */
export function bypassed(loki: URL, noProxy: string): boolean {
  const value = noProxy.trim()
  if (value === '') return false
  if (value === '*') return true
  // `host` keeps an IPv6 address's brackets; strip only the port.
  const host = loki.host.replace(/:\d*$/, '').toLowerCase()
  const port = Number.parseInt(loki.port, 10) || DEFAULT_PORTS[loki.protocol] || 0
  for (const raw of value.split(/[,\s]+/)) {
    if (raw === '') continue
    const withPort = /^(.+):(\d+)$/.exec(raw)
    const entryPort = withPort ? Number.parseInt(withPort[2]!, 10) : 0
    if (entryPort !== 0 && entryPort !== port) continue
    const name = (withPort ? withPort[1]! : raw).replace(/^\*?\./, '').toLowerCase()
    if (host === name || host.endsWith(`.${name}`)) return true
  }
  return false
}

function parseProxyUrl(option: string, source: string, raw: string): ResolvedProxy {
  const where = source === option ? '' : ` (from ${source})`
  let u: URL
  try {
    // A bare `proxy:3128`, as some environments set it, means http.
    u = new URL(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(raw) ? raw : `http://${raw}`)
  } catch {
    // The raw value may hold credentials: say what is wrong without printing it.
    throw new LokiOptionError(option, `not a valid proxy URL${where} (expected e.g. http://proxy:3128)`, ErrorCodes.INVALID_URL)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new LokiOptionError(option, `proxy protocol must be http: or https:, got ${u.protocol}${where}`, ErrorCodes.INVALID_URL)
  }
  const authorization = u.username || u.password
    ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`
    : undefined
  return { origin: u.origin, displayUrl: u.origin, authorization, source }
}
