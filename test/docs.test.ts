// Static checks of what the repository says about itself: the files a reader follows from the
// README and package.json exist and agree. Running the README's code is test/readme.test.ts.
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '..')
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')

it('LICENSE holds the text of the license package.json names', () => {
  const pkg = JSON.parse(read('package.json')) as { license: string }
  expect(pkg.license).toBe('MIT')
  const license = read('LICENSE')
  expect(license).toMatch(/^MIT License\n\nCopyright \(c\) 2026 lokiwire contributors\n/)
  expect(license).toContain('Permission is hereby granted, free of charge, to any person obtaining a copy')
  expect(license).toContain('THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND')
})
