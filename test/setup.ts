// Every test file fails on an unhandled rejection, an uncaught exception, or an 'error' event
// from a client: the library promises the host process never sees any of them because of logging.
import { afterAll } from 'vitest'
import { LokiClient } from '../src/client/client.js'

const problems: unknown[] = []
const onProblem = (err: unknown) => {
  problems.push(err)
}
process.on('unhandledRejection', onProblem)
process.on('uncaughtException', onProblem)

const emit = LokiClient.prototype.emit
LokiClient.prototype.emit = function (this: LokiClient, name: string | symbol, ...args: unknown[]) {
  if (name === 'error') problems.push(new Error(`LokiClient emitted 'error': ${String(args[0])}`))
  return (emit as (n: string | symbol, ...a: unknown[]) => boolean).call(this, name, ...args)
} as typeof emit

afterAll(() => {
  process.off('unhandledRejection', onProblem)
  process.off('uncaughtException', onProblem)
  LokiClient.prototype.emit = emit
  if (problems.length > 0) {
    throw new Error(`unhandled rejection, uncaught exception or 'error' event during the file: ${problems.map(String).join('; ')}`)
  }
})
