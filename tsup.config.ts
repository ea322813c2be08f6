import { readFileSync } from 'node:fs'
import { defineConfig, type Options } from 'tsup'

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string }

const entry = {
  index: 'src/index.ts',
  'testing/index': 'src/testing/index.ts',
  'pino/index': 'src/adapters/pino.ts',
  'winston/index': 'src/adapters/winston.ts',
  'prometheus/index': 'src/metrics/prometheus.ts',
  'opentelemetry/index': 'src/metrics/opentelemetry.ts',
  'pino-loki/index': 'src/compat/pino-loki.ts',
  'winston-loki/index': 'src/compat/winston-loki.ts',
}

const common: Options = {
  target: 'node20',
  platform: 'node',
  // One shared chunk for the core, so `transport.client instanceof LokiClient` holds across subpaths.
  splitting: true,
  define: { __LOKIWIRE_VERSION__: JSON.stringify(version) },
}

export default defineConfig((cli) => {
  // The package ships no source maps: the JavaScript is not minified, so a stack trace already
  // reads against it, and the maps were 63 % of the tarball, the CommonJS ones holding absolute
  // paths of the machine that built them. `--env.LOKIWIRE_SOURCEMAP 1` builds them for local
  // profiling (bench/lib/profile.mjs maps hot spots back to src/ with them); package.json's
  // `files` keeps them out of a tarball even then.
  const sourcemap = String(cli.env?.LOKIWIRE_SOURCEMAP) === '1'
  // Type declarations take most of a build's time and only the published package needs them: the
  // tests run the JavaScript. `npm test` builds with `--env.LOKIWIRE_DTS 0` (an option tsup
  // hands this function, so it works in every shell); `npm run build` and CI keep them.
  const dts = String(cli.env?.LOKIWIRE_DTS) !== '0'
  return [
    {
      ...common,
      sourcemap,
      entry,
      format: ['esm'],
      dts,
      // Runtime dependencies stay external: users get one copy of undici/p-queue/opossum.
      skipNodeModulesBundle: true,
    },
    {
      ...common,
      sourcemap,
      entry,
      format: ['cjs'],
      dts,
      // p-queue is ESM-only. require(esm) hands back a namespace whose default export esbuild's
      // interop does not unwrap, so the CommonJS build carries its own copy (about 10 KB).
      noExternal: ['p-queue', 'eventemitter3', 'p-timeout'],
      // import.meta.url for the CommonJS build (lokiwire/winston loads its optional peer with it).
      shims: true,
      external: ['undici', 'opossum', 'snappy', 'pino', 'pino-abstract-transport', 'winston', 'winston-transport', 'prom-client', /^@opentelemetry\//],
    },
    {
      ...common,
      sourcemap,
      // The CLI is an executable, not an API: ESM only, no typings.
      entry: { cli: 'src/cli/main.ts' },
      format: ['esm'],
      banner: { js: '#!/usr/bin/env node' },
      skipNodeModulesBundle: true,
    },
  ]
})
