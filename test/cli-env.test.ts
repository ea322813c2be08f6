// Values the CLI took from LOKI_* environment variables: an error about one names the variable,
// not a flag the user never gave.
import { beforeAll, expect, it } from 'vitest'
import { requireBuiltCli, runCli } from './fixtures/cli-run.js'

beforeAll(() => requireBuiltCli())

it('a bad LOKI_URL is reported as LOKI_URL; a --url given wins over it; a bad LOKI_BASIC_AUTH is named too', async () => {
  const [push, demo, flagWins, auth] = await Promise.all([
    runCli(['push', '--labels', 'app=x'], '', { env: { LOKI_URL: 'ftp://loki:3100' } }),
    runCli(['demo', '--quick'], '', { env: { LOKI_URL: 'not a url' } }),
    runCli(['push', '--url', 'ftp://flag:3100', '--labels', 'app=x'], '', { env: { LOKI_URL: 'http://127.0.0.1:9' } }),
    runCli(['push', '--url', 'http://127.0.0.1:9', '--labels', 'app=x'], '', { env: { LOKI_BASIC_AUTH: 'hunter2' } }),
  ])
  for (const r of [push, demo, flagWins, auth]) expect(r.code, r.stderr).toBe(2)
  expect(push.stderr).toBe('lokiwire push: LOKI_URL (used because --url was not given): protocol must be http: or https:, got ftp:\n')
  expect(demo.stderr).toMatch(/^lokiwire demo: LOKI_URL \(used because --url was not given\): not a valid absolute URL/)
  expect(flagWins.stderr).toMatch(/^lokiwire push: --url: protocol must be http: or https:, got ftp:/)
  expect(auth.stderr).toBe('lokiwire push: LOKI_BASIC_AUTH: expected user:password\n')
})
