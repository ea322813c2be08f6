// Every test file fails on an unhandled rejection or an uncaught exception: the library
// promises the host process never sees either because of logging.
import { afterAll } from 'vitest'

const problems: unknown[] = []
const onProblem = (err: unknown) => {
  problems.push(err)
}
process.on('unhandledRejection', onProblem)
process.on('uncaughtException', onProblem)

afterAll(() => {
  process.off('unhandledRejection', onProblem)
  process.off('uncaughtException', onProblem)
  if (problems.length > 0) {
    throw new Error(`unhandled rejection or uncaught exception during the suite: ${problems.map(String).join('; ')}`)
  }
})
