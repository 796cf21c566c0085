/**
 * The build's staleness check (scripts/build/lib/inputs.mjs), which decides what `npm test`
 * rebuilds: by content, never by clock, and a stamp only after a build.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { after, test } from 'node:test'

const root = resolve(import.meta.dirname, '../..')
const lib = (await import(join(root, 'scripts/build/lib/inputs.mjs'))) as {
  filesUnder(dir: string, keep?: (name: string) => boolean): string[]
  inputsDigest(files: string[], extra?: string[]): string
  staleReason(step: string, digest: string): string
  writeStamp(step: string, digest: string, note?: string): void
}
// Scratch inputs inside the tree (digests name files relative to the root), and a stamp of our own.
const dir = join('.tessera', `build-test-${process.pid}`)
const step = `test-${process.pid}`
after(() => {
  rmSync(join(root, dir), { recursive: true, force: true })
  rmSync(join(root, 'build', 'stamps', `${step}.json`), { force: true })
})

test('a step is stale until built, fresh after, stale again when an input changes: by content, not mtime', () => {
  mkdirSync(join(root, dir, 'sub'), { recursive: true })
  writeFileSync(join(root, dir, 'a.src'), 'one')
  writeFileSync(join(root, dir, 'sub', 'b.src'), 'two')
  writeFileSync(join(root, dir, 'skip.txt'), 'not an input')
  const files = () => lib.filesUnder(dir, (n) => n.endsWith('.src'))
  assert.deepEqual(files(), [`${dir}/a.src`, `${dir}/sub/b.src`])
  const d1 = lib.inputsDigest(files(), ['v1'])
  assert.equal(lib.staleReason(step, d1), 'never built here')
  lib.writeStamp(step, d1)
  assert.equal(lib.staleReason(step, d1), '')
  // A touch (a checkout, a copy) changes nothing; an edit with an old mtime is still seen.
  utimesSync(join(root, dir, 'a.src'), new Date(), new Date())
  assert.equal(lib.inputsDigest(files(), ['v1']), d1)
  writeFileSync(join(root, dir, 'sub', 'b.src'), 'TWO')
  utimesSync(join(root, dir, 'sub', 'b.src'), new Date('2020-01-01'), new Date('2020-01-01'))
  assert.equal(lib.staleReason(step, lib.inputsDigest(files(), ['v1'])), 'its sources changed')
  // Another compiler version, a renamed input: both change the digest.
  writeFileSync(join(root, dir, 'sub', 'b.src'), 'two')
  assert.equal(lib.inputsDigest(files(), ['v1']), d1)
  assert.notEqual(lib.inputsDigest(files(), ['v2']), d1)
  assert.notEqual(lib.inputsDigest([`${dir}/sub/b.src`, `${dir}/a.src`], ['v1']), d1)
})

test('scripts/build.mjs refuses an unknown argument in one line', () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--stale'], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.equal(r.stderr.trim(), 'build: unknown argument --stale (expected --force, --skip=STEP)')
})
