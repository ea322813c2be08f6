import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import { createLokiTestServer, type LokiTestServer } from '../src/testing/index.js'
import { assertExactlyOnce, mapLimit, seqLines } from './helpers.js'
import { requireBuiltCli, runCli, startCli, type CliResult } from './fixtures/cli-run.js'

let srv: LokiTestServer

beforeAll(async () => {
  requireBuiltCli()
  srv = await createLokiTestServer()
})
afterAll(async () => {
  await srv?.close()
})
beforeEach(() => {
  srv.reset()
})

/** A failure is one line on stderr: no stack trace, nothing else. */
function expectOneLine(r: CliResult, pattern: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\n\s+at /)
}

it('--help documents every flag of every command', async () => {
  const [top, push, demo] = await Promise.all([runCli(['--help']), runCli(['push', '--help']), runCli(['demo', '--help'])])
  for (const r of [top, push, demo]) {
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
  }
  expect(top.stdout).toMatch(/push/)
  expect(top.stdout).toMatch(/demo/)
  const connection = ['--url', '--tenant', '--basic-auth', '--bearer-token', '--header', '--ca', '--cert', '--key', '--encoding', '--timeout', '--concurrency', '--help']
  const pushOnly = ['--labels', '--json-labels', '--json-metadata', '--format', '--batch-wait', '--batch-size', '--max-buffer', '--max-attempts', '--retry-budget', '--close-timeout', '--progress', '--quiet']
  for (const flag of [...connection, ...pushOnly]) expect(push.stdout).toContain(`${flag} `)
  for (const flag of [...connection, '--seconds', '--quick', '--rate']) expect(demo.stdout).toContain(`${flag} `)
  expect(push.stdout).toMatch(/Exit status/)
  const version = await runCli(['--version'])
  expect(version.code).toBe(0)
  expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version)
})

it('ships plain lines as they are, then exits 0 with nothing on stderr', async () => {
  const r = await runCli(['push', '--url', srv.url, '--labels', 'app=cli,env=test'], 'first line\r\nsecond line\n\n  indented third\nno newline at the end')
  expect(r.code).toBe(0)
  expect(r.stderr).toBe('')
  expect(srv.entries.map((e) => e.line)).toEqual(['first line', 'second line', '  indented third', 'no newline at the end'])
  // No level to read: `unknown`, Loki's own name for it, as the adapters send.
  for (const e of srv.entries) expect(e.labels).toEqual({ app: 'cli', env: 'test', level: 'unknown' })
  const now = BigInt(Date.now()) * 1_000_000n
  for (const e of srv.entries) expect(now - BigInt(e.timestamp)).toBeLessThan(60_000n * 1_000_000n)
})

it('NDJSON: timestamp from time, level label, --json-labels and --json-metadata; the line stays the original text', async () => {
  const input = [
    // pino: numeric level, epoch ms
    '{"level":30,"time":1700000000123,"pid":1,"hostname":"h","service":"billing","req_id":"r1","msg":"paid"}',
    '{"level":50,"time":1700000000456,"service":"billing","msg":"declined","err":{"type":"Error"}}',
    // bunyan: same numbers, ISO time
    '{"name":"app","level":40,"time":"2023-11-14T22:13:21.789Z","msg":"slow","service":"auth","req_id":{"nested":true}}',
    // winston-style string level, colourised
    '{"level":"\\u001b[31mERROR\\u001b[39m","timestamp":"2023-11-14T22:13:22.000Z","message":"boom","service":7}',
    // not an object: plain text
    '[1,2,3]',
    '{"broken json',
  ].join('\n')
  const r = await runCli(['push', '--url', srv.url, '--labels', 'app=cli', '--json-labels', 'service', '--json-metadata', 'req_id', '--encoding', 'json'], `${input}\n`)
  expect(r.code, r.stderr).toBe(0)
  expect(srv.requests.every((q) => q.contentType?.startsWith('application/json'))).toBe(true)
  const byLine = new Map(srv.entries.map((e) => [e.line, e]))
  const lines = input.split('\n')
  expect([...byLine.keys()].sort()).toEqual([...lines].sort())

  const paid = byLine.get(lines[0]!)!
  expect(paid.labels).toEqual({ app: 'cli', level: 'info', service: 'billing' })
  expect(paid.timestamp).toBe('1700000000123000000')
  expect(paid.metadata).toEqual({ req_id: 'r1' })
  expect(byLine.get(lines[1]!)!.labels).toEqual({ app: 'cli', level: 'error', service: 'billing' })

  const bunyan = byLine.get(lines[2]!)!
  expect(bunyan.labels).toEqual({ app: 'cli', level: 'warn', service: 'auth' })
  expect(bunyan.timestamp).toBe(`${Date.parse('2023-11-14T22:13:21.789Z')}000000`)
  expect(bunyan.metadata).toEqual({ req_id: '{"nested":true}' })

  const winston = byLine.get(lines[3]!)!
  expect(winston.labels).toEqual({ app: 'cli', level: 'error', service: '7' })
  expect(winston.timestamp).toBe(`${Date.parse('2023-11-14T22:13:22.000Z')}000000`)

  for (const plain of [lines[4]!, lines[5]!]) expect(byLine.get(plain)!.labels).toEqual({ app: 'cli', level: 'unknown' })
})

it('--json-labels level is refused as the adapters refuse labelsFrom: level, naming the flag (exit 2)', async () => {
  const r = await runCli(['push', '--url', srv.url, '--labels', 'app=cli', '--json-labels', 'service,level'], '{"level":30}\n')
  expect(r.code).toBe(2)
  expect(r.stderr).toMatch(/--json-labels: "level" is not lifted/)
  expect(srv.entries).toHaveLength(0)
})

it('--format text ships JSON lines as plain text', async () => {
  const line = '{"level":50,"time":1700000000123,"msg":"x"}'
  const r = await runCli(['push', '--url', srv.url, '--labels', 'app=cli', '--format', 'text'], `${line}\n`)
  expect(r.code).toBe(0)
  expect(srv.entries).toHaveLength(1)
  expect(srv.entries[0]!.labels).toEqual({ app: 'cli', level: 'unknown' })
  expect(srv.entries[0]!.timestamp).not.toBe('1700000000123000000')
})

it('many lines in several batches arrive exactly once; LOKI_URL, tenant and token come from the environment', async () => {
  const lines = seqLines(20_000, 'bulk')
  const r = await runCli(['push', '--labels', 'app=bulk', '--batch-size', '3000'], `${lines.join('\n')}\n`, {
    env: { LOKI_URL: srv.url, LOKI_TENANT: 'team-a', LOKI_BEARER_TOKEN: 'secret-token' },
  })
  expect(r.code, r.stderr).toBe(0)
  assertExactlyOnce(srv.entries, lines)
  expect(srv.requests.length).toBeGreaterThanOrEqual(7)
  for (const q of srv.requests) {
    expect(q.tenant).toBe('team-a')
    expect(q.headers.authorization).toBe('Bearer secret-token')
  }
})

it('exit 1 with a one-line reason when Loki rejects the lines', async () => {
  srv.setFault({ type: 'status', status: 400, body: 'entry for stream has timestamp too old\nsecond line of the body' })
  const r = await runCli(['push', '--url', srv.url, '--labels', 'app=cli'], 'a\nb\nc\n')
  expect(r.code).toBe(1)
  expectOneLine(r, /^lokiwire: 3 lines dropped \(rejected: 3\); last error: Loki answered 400: entry for stream has timestamp too old second line/)
})

it('exit 1 when retries run out, with the reason counted', async () => {
  srv.setFault({ type: 'status', status: 503 })
  const r = await runCli(['push', '--url', srv.url, '--labels', 'app=cli', '--max-attempts', '2'], 'a\nb\n')
  expect(r.code).toBe(1)
  expectOneLine(r, /^lokiwire: 2 lines dropped \(retries_exhausted: 2\); last error: Loki answered 503/)
})

it('--spool: lines Loki cannot take go to disk (exit 3); the next run sends them first (exit 0)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lokiwire-cli-spool-'))
  try {
    srv.setFault({ type: 'status', status: 503 })
    const lines = seqLines(50, 'spooled')
    const first = await runCli(['push', '--url', srv.url, '--labels', 'app=spool', '--max-attempts', '1', '--spool', dir], `${lines.join('\n')}\n`)
    expect(first.code).toBe(3)
    expectOneLine(first, /^lokiwire: 50 lines went to the spool this run; the spool holds [\d,]+ bytes for the next run with the same --spool$/)
    expect(srv.entries).toHaveLength(0)
    expect(readdirSync(dir).length).toBeGreaterThan(0)

    srv.setFault(null)
    const second = await runCli(['push', '--url', srv.url, '--labels', 'app=spool', '--spool', dir], 'fresh line\n')
    expect(second.code).toBe(0)
    expect(second.stderr).toBe('')
    assertExactlyOnce(srv.entries, [...lines, 'fresh line'])
    expect(readdirSync(dir)).toEqual([])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

it('bad flags and bad URLs: exit 2 with one line on stderr, no stack trace, no credentials', async () => {
  const url = srv.url
  const cases: Array<[string[], RegExp]> = [
    [['push', '--labels', 'app=x'], /^lokiwire push: --url is required/],
    [['push', '--url', 'http://user:hunter2@[::bad', '--labels', 'app=x'], /^lokiwire push: --url: not a valid absolute URL/],
    [['push', '--url', 'ftp://loki:3100', '--labels', 'app=x'], /^lokiwire push: --url: protocol must be http: or https:/],
    [['push', '--url', url], /^lokiwire push: --labels is required/],
    [['push', '--url', url, '--labels', 'app'], /^lokiwire push: --labels: expected name=value/],
    [['push', '--url', url, '--labels', '9app=x'], /^lokiwire push: --labels: label name "9app"/],
    [['push', '--url', url, '--labels', 'app=x', '--timeout', 'soon'], /^lokiwire push: --timeout: expected a whole number/],
    [['push', '--url', url, '--labels', 'app=x', '--encoding', 'xml'], /^lokiwire push: --encoding: expected protobuf or json/],
    [['push', '--url', url, '--labels', 'app=x', '--max-buffer', 'lots'], /^lokiwire push: --max-buffer: expected a size/],
    [['push', '--url', url, '--labels', 'app=x', '--max-buffer', '1k'], /^lokiwire push: --max-buffer: expected an integer/],
    [['push', '--url', url, '--labels', 'app=x', '--basic-auth', 'hunter2'], /^lokiwire push: --basic-auth: expected user:password$/],
    [['push', '--url', url, '--labels', 'app=x', '--basic-auth', 'u:hunter2', '--bearer-token', 'hunter2'], /^lokiwire push: use only one of/],
    [['push', '--url', url, '--labels', 'app=x', '--ca', '/nonexistent/ca.pem'], /^lokiwire push: --ca: cannot read/],
    [['push', '--url', url, '--labels', 'app=x', '--bogus'], /^lokiwire push: unknown flag --bogus/],
    [['push', '--url'], /^lokiwire push: --url needs a value/],
    [['push', 'stray'], /^lokiwire push: unexpected argument "stray"/],
    [['demo', '--quick', '--seconds', '3'], /^lokiwire demo: use one of --quick and --seconds/],
    [['demo', '--url', 'not a url'], /^lokiwire demo: --url: not a valid absolute URL/],
    [['launch'], /^lokiwire: unknown command "launch"/],
    [[], /^Usage: lokiwire/],
  ]
  // A few at a time: twenty node processes started at once on two busy cores can outlast the
  // harness's kill timer.
  const results = await mapLimit(cases, 4, ([args]) => runCli(args))
  results.forEach((r, i) => {
    const [args, pattern] = cases[i]!
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
    if (args.length > 0) expectOneLine(r, pattern)
    else expect(r.stderr).toMatch(pattern)
    expect(r.stderr).not.toContain('hunter2')
    expect(r.stdout).toBe('')
  })
  expect(srv.requests).toHaveLength(0)
})

it.each(['SIGTERM', 'SIGINT'] as const)('%s mid-stream: stops reading and delivers every line it read, then exits 0', async (signal) => {
  // Batches of 10 and a 60 s batch wait: the last 5 lines can only leave through the signal path.
  const p = startCli(['push', '--url', srv.url, '--labels', 'app=signal', '--batch-size', '10', '--batch-wait', '60000'])
  const lines = seqLines(25, signal)
  // One write under PIPE_BUF arrives in one read, so all 25 are read once the first 20 are delivered.
  p.child.stdin.write(`${lines.join('\n')}\n`)
  await srv.waitFor((s) => s.entries.length >= 20, { timeoutMs: 12_000 })
  p.child.kill(signal)
  const r = await p.done
  // stdin was never closed: the exit is the signal's doing.
  expect(r.signal).toBeNull()
  expect(r.code, r.stderr).toBe(0)
  expect(r.stderr).toBe('')
  assertExactlyOnce(srv.entries, lines)
})

it('a stalled Loki holds the exit no longer than --close-timeout, and the loss is reported', async () => {
  srv.setFault({ type: 'stall' })
  const r = await runCli(['push', '--url', srv.url, '--labels', 'app=stall', '--batch-wait', '10', '--timeout', '30000', '--close-timeout', '800'], 'a\nb\nc\n')
  expect(r.code).toBe(1)
  expectOneLine(r, /^lokiwire: 3 lines dropped \(close_timeout: 3\); no answer from Loki within --close-timeout \(800 ms\)$/)
  // No clock needed: the request itself would wait 30 s, past the harness's 15 s kill, so exit
  // status 1 with that report means the close deadline ended it.
  expect(srv.connections.peak).toBeLessThanOrEqual(2)
})

it('backpressure: with the buffer nearly full stdin is no longer read, and nothing is dropped', async () => {
  srv.setFault({ type: 'stall' })
  const p = startCli(['push', '--url', srv.url, '--labels', 'app=bp', '--max-buffer', '2m', '--timeout', '300', '--batch-wait', '20'], { killAfterMs: 30_000 })
  const lines = seqLines(40_000, 'a line of about one hundred bytes, so that forty thousand of them are twice the buffer:')
  p.child.stdin.write(`${lines.join('\n')}\n`)
  // A third request means an attempt timed out and was retried: by then a reader that ignored
  // the buffer would long have read all 4 MB and dropped what did not fit.
  await srv.waitFor((s) => s.requests.length >= 3, { timeoutMs: 10_000 })
  expect(p.child.stdin.writableLength).toBeGreaterThan(1_000_000)
  srv.setFault(null)
  p.child.stdin.end()
  const r = await p.done
  expect(r.code, r.stderr).toBe(0)
  expect(r.stderr).toBe('')
  assertExactlyOnce(srv.entries, lines)
})

it('--progress prints plain progress lines and a final tally on stderr when it is not a terminal', async () => {
  const r = await runCli(['push', '--url', srv.url, '--labels', 'app=p', '--progress'], 'x\ny\n')
  expect(r.code).toBe(0)
  expect(r.stderr).not.toContain('\r')
  expect(r.stderr).toMatch(/lines\/s\s+read 2\s+sent 2\s+buffered 0\s+retries 0\s+dropped 0\s+connections \d/)
  expect(r.stderr).toMatch(/^lokiwire: 2 lines delivered in 1 batch$/m)
})
