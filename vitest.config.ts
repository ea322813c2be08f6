import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Network tests share 2 cores; forks isolate process-level state such as
    // getActiveResourcesInfo() and unhandled-rejection hooks per file.
    pool: 'forks',
    // The leak tests ask the garbage collector directly (test/gc.test.ts).
    execArgv: ['--expose-gc'],
    setupFiles: ['test/setup.ts'],
  },
})
