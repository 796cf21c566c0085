import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { loadArtifacts, readArtifacts } from './artifacts.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-artifacts-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const A = 'contract A {}\n'
const B = 'contract B {}\n'

/** A checkout with A.sol and lib/B.sol, and a contracts.json built from them. */
function checkout(name: string): { file: string; contracts: string } {
  const contracts = join(dir, name, 'contracts')
  mkdirSync(join(contracts, 'lib'), { recursive: true })
  writeFileSync(join(contracts, 'A.sol'), A)
  writeFileSync(join(contracts, 'lib', 'B.sol'), B)
  const file = join(dir, name, 'contracts.json')
  const abi = [{ type: 'function', name: 'f', inputs: [], outputs: [], stateMutability: 'view' }]
  const built = { solcVersion: 'test', sourcesHash: 'x', sources: { 'A.sol': sha(A), 'lib/B.sol': sha(B) }, contracts: { A: { source: 'A.sol', abi, bytecode: '0x00', deployedBytecode: '0x00' } } }
  writeFileSync(file, JSON.stringify(built))
  return { file, contracts }
}

/** Asserts a one-line error of `name` that names the build command. */
function refuses(fn: () => unknown, name: string, pattern: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.equal(e.name, name)
    assert.match(e.message, pattern)
    assert.match(e.message, /npm run build/)
    assert.equal(e.message.split('\n').length, 1, e.message)
    return true
  })
}

test('a build made from the sources in the checkout is read as it is', () => {
  const c = checkout('fresh')
  assert.equal(readArtifacts(c.file, c.contracts).contracts.A.source, 'A.sol')
  // The repository's own build/contracts.json is current (npm test builds it first) and has the contracts.
  assert.ok(loadArtifacts().contracts.Settlement.bytecode.startsWith('0x'))
})

test('a missing or unreadable build fails in one line naming the build command', () => {
  refuses(() => readArtifacts(join(dir, 'nothing.json'), join(dir, 'nowhere')), 'ArtifactNotFoundError', /nothing\.json is missing/)
  writeFileSync(join(dir, 'broken.json'), '{"contracts":')
  refuses(() => readArtifacts(join(dir, 'broken.json'), join(dir, 'nowhere')), 'ArtifactNotFoundError', /not readable JSON/)
})

test('a changed contract is refused, not rebuilt, even when its mtime is older than the build', () => {
  const c = checkout('changed')
  const sol = join(c.contracts, 'lib', 'B.sol')
  writeFileSync(sol, 'contract B { uint x; }\n')
  // A checkout or a copy can give an edited file any mtime: staleness is by content, never by clock.
  const old = new Date('2020-01-01T00:00:00Z')
  utimesSync(sol, old, old)
  const before = readFileSync(c.file, 'utf8')
  const mtime = statSync(c.file).mtimeMs
  refuses(() => readArtifacts(c.file, c.contracts), 'ArtifactStaleError', /out of date: lib\/B\.sol changed/)
  assert.equal(readFileSync(c.file, 'utf8'), before, 'nothing rebuilt the file')
  assert.equal(statSync(c.file).mtimeMs, mtime)
})

test('an added or removed contract file makes the build stale', () => {
  const added = checkout('added')
  writeFileSync(join(added.contracts, 'C.sol'), 'contract C {}\n')
  refuses(() => readArtifacts(added.file, added.contracts), 'ArtifactStaleError', /C\.sol is new/)
  const removed = checkout('removed')
  rmSync(join(removed.contracts, 'A.sol'))
  refuses(() => readArtifacts(removed.file, removed.contracts), 'ArtifactStaleError', /A\.sol was removed/)
})

test('a build without source digests is refused in a checkout, and read in an installed package', () => {
  const c = checkout('old-format')
  const built = JSON.parse(readFileSync(c.file, 'utf8'))
  delete built.sources
  writeFileSync(c.file, JSON.stringify(built))
  refuses(() => readArtifacts(c.file, c.contracts), 'ArtifactStaleError', /records no source digests/)
  // An installed package ships build/ but not src/chain/contracts: nothing to compare with.
  assert.equal(readArtifacts(c.file, join(dir, 'old-format', 'no-sources-here')).contracts.A.source, 'A.sol')
})
