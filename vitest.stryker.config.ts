import { defineConfig } from 'vitest/config'
import base from './vitest.config.js'

// The tests `npm run mutate` runs against each mutant. Stryker mutates src/, so only tests that
// run src/ in this process can kill a mutant: the pino worker, CLI, child-process and docs tests
// run the built dist/ (never mutated) and would only add minutes to every mutant. These files
// exercise the lifecycle modules in-process. Stryker runs them in one worker thread
// whatever `pool` says, so they must not depend on owning the process (stderr, process.exit).
// Not mergeConfig: it would append this include list to the base one instead of replacing it.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    // Stryker runs these in worker threads, which refuse --expose-gc; no file listed here needs it.
    execArgv: [],
    include: [
      'test/batcher.test.ts',
      'test/breaker.test.ts',
      'test/client-http.test.ts',
      'test/client-stall.test.ts',
      'test/delivery.test.ts',
      'test/close.test.ts',
      'test/exit.test.ts',
      'test/flush.test.ts',
      'test/hash-counts.test.ts',
      'test/labels.test.ts',
      'test/mapping.test.ts',
      'test/metadata.test.ts',
      'test/options.test.ts',
      'test/overflow.test.ts',
      'test/push.test.ts',
      'test/queue.test.ts',
      'test/replay.test.ts',
      'test/retry.test.ts',
      'test/security.test.ts',
      'test/warnings.test.ts',
      'test/settlement.test.ts',
      'test/spool.test.ts',
      'test/transport.test.ts',
      'test/transport-lazy.test.ts',
      'test/fetch-pool.test.ts',
      'test/runtime-fallback.test.ts',
    ],
  },
})
