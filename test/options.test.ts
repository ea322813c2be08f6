import { describe, expect, it } from 'vitest'
import { ErrorCodes, LokiClient, LokiError, LokiOptionError } from '../src/index.js'
import { CLIENT_KEYS, resolveOptions, type BatchOptions } from '../src/model/options.js'
import { keysOf } from '../src/model/validate.js'

const base = { url: 'http://127.0.0.1:3100', labels: { app: 'x' } }

function rejects(opts: unknown, option: string, code: string = ErrorCodes.INVALID_OPTION): LokiOptionError {
  let caught: unknown
  try {
    new LokiClient(opts as never)
  } catch (err) {
    caught = err
  }
  expect(caught, `expected ${JSON.stringify(opts)} to be rejected`).toBeInstanceOf(LokiOptionError)
  const err = caught as LokiOptionError
  expect(err).toBeInstanceOf(LokiError)
  expect(err.code).toBe(code)
  expect(err.option).toBe(option)
  expect(err.message).toContain(option)
  return err
}

describe('option validation', () => {
  it('rejects a missing options object or url', () => {
    rejects(undefined, 'options')
    rejects({}, 'url', ErrorCodes.INVALID_URL)
    rejects({ url: 42 }, 'url', ErrorCodes.INVALID_URL)
    rejects({ url: 'not a url' }, 'url', ErrorCodes.INVALID_URL)
    rejects({ url: 'ftp://loki' }, 'url', ErrorCodes.INVALID_URL)
    rejects({ url: 'http://loki/#frag' }, 'url', ErrorCodes.INVALID_URL)
  })

  const bad: Array<[string, Record<string, unknown>]> = [
    ['labels', { labels: 'app=x' }],
    ['labels.bad-name', { labels: { 'bad-name': 'x' } }],
    ['labels.__reserved', { labels: { __reserved: 'x' } }],
    ['labels.n', { labels: { n: 5 } }],
    ['labels.app', { labels: { app: '' } }],
    ['labels.env', { labels: { app: 'x', env: '' } }],
    ['labels', { labels: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`l${i}`, 'v'])) }],
    ['tenant', { tenant: '' }],
    ['tenant', { tenant: 'a\nb' }],
    ['headers.x-a', { headers: { 'x-a': 'a\r\nInjected: 1' } }],
    ['headers.bad header', { headers: { 'bad header': 'v' } }],
    ['basicAuth', { basicAuth: { username: 'u' } }],
    ['basicAuth', { basicAuth: { username: 'u', password: 'p' }, bearerToken: 't' }],
    ['bearerToken', { bearerToken: '' }],
    ['tls.rejectUnauthorized', { tls: { rejectUnauthorized: 'no' } }],
    ['tls.verify', { tls: { verify: false } }],
    ['encoding', { encoding: 'avro' }],
    ['gzip', { gzip: 10 }],
    ['gzip', { gzip: 'yes' }],
    ['batch', { batch: 5 }],
    ['batch.maxEntries', { batch: { maxEntries: 0 } }],
    ['batch.maxBytes', { batch: { maxBytes: 5 * 1024 * 1024 } }],
    ['batch.maxWaitMs', { batch: { maxWaitMs: -1 } }],
    ['batch.size', { batch: { size: 1 } }],
    ['maxBufferBytes', { maxBufferBytes: 1024 }],
    ['overflow', { overflow: 'block' }],
    ['concurrency', { concurrency: 0 }],
    ['concurrency', { concurrency: 1.5 }],
    ['requestTimeoutMs', { requestTimeoutMs: 0 }],
    ['connectTimeoutMs', { connectTimeoutMs: Number.NaN }],
    ['keepAliveTimeoutMs', { keepAliveTimeoutMs: '1s' }],
    ['retry.maxAttempts', { retry: { maxAttempts: 0 } }],
    ['retry.maxDelayMs', { retry: { minDelayMs: 100, maxDelayMs: 50 } }],
    ['retry.budgetMs', { retry: { budgetMs: 0 } }],
    ['retry.maxRetryAfterMs', { retry: { maxRetryAfterMs: -5 } }],
    ['breaker', { breaker: true }],
    ['breaker.errorThresholdPercentage', { breaker: { errorThresholdPercentage: 101 } }],
    ['breaker.resetTimeoutMs', { breaker: { resetTimeoutMs: 0 } }],
    ['maxLineBytes', { maxLineBytes: 1 }],
    ['oversizeLines', { oversizeLines: 'split' }],
    ['invalidLabels', { invalidLabels: 'ignore' }],
    ['closeTimeoutMs', { closeTimeoutMs: -1 }],
    ['flushOnExit', { flushOnExit: 1 }],
    ['batchSize', { batchSize: 100 }],
  ]
  for (const [option, extra] of bad) {
    it(`rejects ${option} = ${JSON.stringify(extra)}`, () => {
      rejects({ ...base, ...extra }, option)
    })
  }

  it('an empty default label is refused: it would leave entries with no stream', () => {
    expect(rejects({ url: base.url, labels: { app: '' } }, 'labels.app').message).toBe(
      'Invalid option "labels.app": empty value: Loki removes a label with an empty value; give it a value or leave it out',
    )
  })

  it('a URL without its scheme gets a hint, never an echo of credentials', () => {
    expect(rejects({ url: 'loki:3100' }, 'url', ErrorCodes.INVALID_URL).message).toBe(
      'Invalid option "url": protocol must be http: or https:, got loki: (did you mean http://loki:3100?)',
    )
    expect(rejects({ url: '127.0.0.1:3100' }, 'url', ErrorCodes.INVALID_URL).message).toContain('(did you mean http://127.0.0.1:3100?)')
    const withSecret = rejects({ url: 'user:s3cret@loki:3100' }, 'url', ErrorCodes.INVALID_URL).message
    expect(withSecret).not.toContain('s3cret')
    expect(withSecret).not.toContain('did you mean')
  })

  it('never prints credentials', () => {
    const secrets = ['s3cret-pass', 'tok-123456']
    const attempts: unknown[] = [
      { url: 'http://user:s3cret-pass@loki:3100', bearerToken: 'tok-123456' },
      { url: 'http://user:s3cret-pass@[bad' },
      { ...base, headers: { authorization: 'tok-123456\n' } },
      { ...base, bearerToken: 'tok-123456\r\n' },
    ]
    for (const opts of attempts) {
      try {
        new LokiClient(opts as never)
        expect.unreachable()
      } catch (err) {
        for (const s of secrets) expect(String((err as Error).message)).not.toContain(s)
      }
    }
  })

  it('resolves the push path, credentials and defaults', () => {
    expect(resolveOptions({ url: 'http://loki:3100' }).path).toBe('/loki/api/v1/push')
    expect(resolveOptions({ url: 'http://loki:3100/' }).path).toBe('/loki/api/v1/push')
    expect(resolveOptions({ url: 'https://gw/custom/push?x=1' }).path).toBe('/custom/push?x=1')
    const o = resolveOptions({ url: 'http://me:p%40ss@loki:3100', tenant: 't1' })
    expect(o.headers.authorization).toBe(`Basic ${Buffer.from('me:p@ss').toString('base64')}`)
    expect(o.headers['x-scope-orgid']).toBe('t1')
    expect(o.displayUrl).toBe('http://loki:3100/loki/api/v1/push')
    expect(o).toMatchObject({
      encoding: 'protobuf',
      concurrency: 2,
      requestTimeoutMs: 10_000,
      maxBufferBytes: 64 * 1024 * 1024,
      overflow: 'drop-newest',
      batch: { maxEntries: 10_000, maxBytes: 1024 * 1024, maxWaitMs: 1000 },
      maxLineBytes: 256 * 1024,
    })
  })
})

describe('option key lists', () => {
  it('are typed against their interfaces, so a key added to one cannot be missing from the other', () => {
    // Checked by tsc (`npx tsc --noEmit` covers the tests): each line below is a type error.
    // @ts-expect-error a key of the interface left out
    keysOf<BatchOptions>()({ maxEntries: true, maxBytes: true })
    // @ts-expect-error a key the interface does not have
    keysOf<BatchOptions>()({ maxEntries: true, maxBytes: true, maxWaitMs: true, maxLines: true })
    expect(keysOf<BatchOptions>()({ maxEntries: true, maxBytes: true, maxWaitMs: true })).toEqual(['maxEntries', 'maxBytes', 'maxWaitMs'])
  })

  it('every client key is one resolveOptions() takes', () => {
    const url = 'http://127.0.0.1:1'
    for (const key of CLIENT_KEYS) {
      try {
        resolveOptions({ url, [key]: key === 'url' ? url : undefined })
      } catch (err) {
        expect((err as Error).message, key).not.toMatch(/unknown option/)
      }
    }
    expect(() => resolveOptions({ url, maxLines: 1 })).toThrow(/Invalid option "maxLines": unknown option/)
  })
})
