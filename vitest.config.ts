import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A cap for a test that hangs, not a speed limit: on two busy cores a file that starts
    // child processes can take several times as long as on an idle machine. The waits inside
    // tests have caps of their own.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Network tests share 2 cores; forks isolate process-level state such as
    // getActiveResourcesInfo() and unhandled-rejection hooks per file.
    pool: 'forks',
    // The leak tests ask the garbage collector directly (test/gc.test.ts).
    execArgv: ['--expose-gc'],
    setupFiles: ['test/setup.ts'],
  },
})
