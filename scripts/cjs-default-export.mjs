// After tsup: the CommonJS build of an entry whose only export is its default one becomes that
// value itself, `module.exports = …` with `export =` typings, so `require('lokiwire/winston-loki')`
// is the class, as `require('winston-loki')` was. tsup's cjsInterop would do the JavaScript half,
// but its typings half rewrites every entry that has a default export, lokiwire/pino's too (whose
// CommonJS module keeps `exports.default` beside named exports): hence this, for listed entries only.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'

const ENTRIES = ['dist/winston-loki/index']

for (const entry of ENTRIES) {
  const js = `${entry}.cjs`
  const code = readFileSync(js, 'utf8')
  // esbuild names every export `exports.<name> = …`: the entry must have the default one alone.
  const names = new Set([...code.matchAll(/\bexports\.(\w+)\s*=/g)].map((m) => m[1]))
  if (names.size !== 1 || !names.has('default')) throw new Error(`${js}: expected a default export alone, found ${[...names].join(', ') || 'none'}`)
  if (!code.includes('module.exports = exports.default;')) writeFileSync(js, `${code}\nmodule.exports = exports.default;\n`)

  // Typings exist after `npm run build`, not after `npm run build:js`.
  const dts = `${entry}.d.cts`
  if (!existsSync(dts)) continue
  const types = readFileSync(dts, 'utf8')
  const last = /^export \{([^}]*)\};\s*$/m.exec(types)
  if (last === null) {
    if (types.includes('export = ')) continue
    throw new Error(`${dts}: no export list to rewrite`)
  }
  const specifiers = last[1].split(',').map((s) => s.trim()).filter(Boolean)
  const def = specifiers.find((s) => / as default$/.test(s))
  const rest = specifiers.filter((s) => s !== def)
  // Only types may stay beside `export =`: a value would exist in the typings and not in the module.
  if (def === undefined || !rest.every((s) => s.startsWith('type '))) throw new Error(`${dts}: expected a default export and types only, found ${last[1]}`)
  const local = def.replace(/ as default$/, '')
  // The same shape as tsup's own cjsInterop typings: TypeScript takes the type exports beside it.
  const rewritten = `// @ts-ignore\nexport = ${local};\n${rest.length > 0 ? `export { ${rest.join(', ')} };\n` : ''}`
  writeFileSync(dts, types.slice(0, last.index) + rewritten + types.slice(last.index + last[0].length))
}
