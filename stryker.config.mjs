// Mutation testing of the modules that carry the lifecycle guarantees (test/MUTATION.md).
// Slow, so not part of `npm test` or CI. One file: `npm run mutate -- --mutate src/pipeline/queue.ts`.
// More workers: `STRYKER_CONCURRENCY=2 npm run mutate` or `npm run mutate -- --concurrency 2`.

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: {
    // Stryker runs these in one worker thread (it overrides the pool): see that file.
    configFile: 'vitest.stryker.config.ts',
  },
  // Each mutant runs only the tests that reached it in the initial run.
  coverageAnalysis: 'perTest',
  // The network tests are timing-sensitive on a busy machine: one worker unless asked for more.
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 1),
  // A mutant whose run exceeds the initial run's time x1.5 + 10 s counts as a timeout (killed).
  timeoutMS: 10_000,
  mutate: [
    'src/transport/transport.ts',
    'src/pipeline/delivery.ts',
    'src/pipeline/queue.ts',
    'src/pipeline/breaker.ts',
    'src/pipeline/batcher.ts',
    'src/pipeline/hash-counts.ts',
    'src/spool/spool.ts',
    // The client's lifecycle: since the split, the end of a batch and spool replay live in
    // modules of their own, and client.ts is wiring, eviction, flush, close and destroy.
    'src/pipeline/settlement.ts',
    'src/pipeline/replay.ts',
    'src/client/client.ts',
  ],
  // What the in-process tests do not read need not be copied into each sandbox.
  ignorePatterns: ['dist', 'bench', 'examples', 'coverage', 'reports', '.soak', '.scratch'],
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
}
