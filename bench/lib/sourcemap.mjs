// Maps a position in the built bundle back to src/ through its source map, so hot spots name
// the TypeScript line to change rather than a line of dist/index.js.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { ROOT_DIR } from './util.mjs'

const B64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]))

function decodeMappings(mappings) {
  const lines = []
  let srcIdx = 0
  let srcLine = 0
  let srcCol = 0
  for (const lineText of mappings.split(';')) {
    const segs = []
    let genCol = 0
    for (const seg of lineText.split(',')) {
      if (seg === '') continue
      const vals = []
      let value = 0
      let shift = 0
      for (const ch of seg) {
        const digit = B64.get(ch)
        value += (digit & 31) << shift
        if (digit & 32) shift += 5
        else {
          vals.push(value & 1 ? -(value >>> 1) : value >>> 1)
          value = 0
          shift = 0
        }
      }
      genCol += vals[0]
      if (vals.length >= 4) {
        srcIdx += vals[1]
        srcLine += vals[2]
        srcCol += vals[3]
        segs.push([genCol, srcIdx, srcLine, srcCol])
      }
    }
    lines.push(segs)
  }
  return lines
}

const cache = new Map()

function load(file) {
  if (cache.has(file)) return cache.get(file)
  let map
  const mapFile = `${file}.map`
  if (existsSync(mapFile)) {
    const raw = JSON.parse(readFileSync(mapFile, 'utf8'))
    map = { sources: raw.sources.map((s) => join(dirname(file), s)), lines: decodeMappings(raw.mappings) }
  }
  cache.set(file, map)
  return map
}

/** `src/x.ts:line` for a 0-based bundle position, or undefined when there is no mapping. */
export function original(file, line, column) {
  const map = load(file)
  const segs = map?.lines[line]
  if (!segs || segs.length === 0) return undefined
  let best = segs[0]
  for (const s of segs) {
    if (s[0] > column) break
    best = s
  }
  return `${relative(ROOT_DIR, map.sources[best[1]])}:${best[2] + 1}`
}
