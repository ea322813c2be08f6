import { describe, expect, it } from 'vitest'
import { resolveLabels as resolve, sanitizeLabelName, selectorOf, truncateUtf8, type ResolvedStream } from '../src/model/labels.js'
import { readTimestamp } from '../src/model/timestamp.js'

// The tests below read .labels of the label sets that resolve.
const resolveLabels = (...a: Parameters<typeof resolve>) => resolve(...a) as ResolvedStream

describe('labels', () => {
  it('builds a sorted, escaped selector', () => {
    expect(selectorOf({ b: '2', a: 'x"y\\z\nw' })).toBe('{a="x\\"y\\\\z\\nw", b="2"}')
  })

  it('sanitises names Loki would reject', () => {
    expect(sanitizeLabelName('my-label.name')).toBe('my_label_name')
    expect(sanitizeLabelName('1st')).toBe('_1st')
    expect(sanitizeLabelName('__name__')).toBe('x__name__')
    expect(sanitizeLabelName('')).toBeUndefined()
  })

  it('merges entry labels over defaults; sanitize or drop by policy', () => {
    const d = { app: 'api' }
    expect(resolveLabels(d, { level: 'info' }, 'drop')).toEqual({ selector: '{app="api", level="info"}', labels: { app: 'api', level: 'info' } })
    expect(resolveLabels(d, { 'bad-name': 'v' }, 'sanitize')!.labels).toEqual({ app: 'api', bad_name: 'v' })
    expect(resolveLabels(d, { 'bad-name': 'v' }, 'drop')).toMatchObject({ field: 'labels.bad-name' })
    expect(resolveLabels(d, { n: 5 }, 'drop')).toMatchObject({ field: 'labels.n', message: 'label "n" must have a string value, got number' })
    expect(resolveLabels(d, { app: '' }, 'sanitize')).toMatchObject({ field: 'labels' }) // no label left at all
    expect(resolveLabels(d, { n: 5 }, 'sanitize')!.labels).toEqual({ app: 'api', n: '5' })
    expect(resolveLabels(d, { v: 'x'.repeat(3000) }, 'sanitize')!.labels.v).toHaveLength(2048)
    const many = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`l${i}`, 'v']))
    expect(resolveLabels(d, many, 'sanitize')).toEqual({ field: 'labels', message: '16 labels, Loki allows at most 15 per stream' })
  })

  it('truncates UTF-8 on a character boundary', () => {
    expect(truncateUtf8('héllo', 2)).toBe('h')
    expect(truncateUtf8('héllo', 3)).toBe('hé')
    expect(Buffer.byteLength(truncateUtf8('€'.repeat(100), 100))).toBe(99)
  })
})

describe('timestamps', () => {
  const out = { ms: 0, ns: 0, precise: false }
  it('reads every accepted form', () => {
    expect(readTimestamp(1732886400123, out) && { ...out }).toEqual({ ms: 1732886400123, ns: 0, precise: false })
    expect(readTimestamp(1732886400123.5, out) && { ...out }).toEqual({ ms: 1732886400123, ns: 500000, precise: true })
    expect(readTimestamp(new Date(5), out) && { ...out }).toEqual({ ms: 5, ns: 0, precise: false })
    expect(readTimestamp(1732886400123456789n, out) && { ...out }).toEqual({ ms: 1732886400123, ns: 456789, precise: true })
    expect(readTimestamp('1732886400123456789', out) && { ...out }).toEqual({ ms: 1732886400123, ns: 456789, precise: true })
    expect(readTimestamp('2026-01-01T00:00:00.250Z', out) && { ...out }).toEqual({ ms: Date.parse('2026-01-01T00:00:00.250Z'), ns: 0, precise: false })
  })
  it('refuses unusable values', () => {
    for (const bad of [Number.NaN, -1, Infinity, new Date('x'), -5n, 'yesterday', {}, null]) expect(readTimestamp(bad, out)).toBe(false)
  })
})
