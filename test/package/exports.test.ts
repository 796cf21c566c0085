/**
 * The package as a user gets it: README's library snippet runs as written, importing 'tessera'
 * by name, both inside this repository (the `exports` map's self-reference) and from another
 * project that installed the packed tarball (`npm pack`, extracted into its node_modules; the
 * dependencies are linked from this checkout, so nothing is fetched). Needs the build (dist/).
 */
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, test } from 'node:test'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'

const root = resolve(import.meta.dirname, '../..')
const dir = mkdtempSync(join(tmpdir(), 'tessera-package-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** The ```ts block under README's "## Library" heading. */
function readmeSnippet(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const m = /^## Library\n[\s\S]*?```ts\n([\s\S]*?)```/m.exec(readme)
  assert.ok(m, 'README has a ```ts block under "## Library"')
  return m[1]
}

/** Runs the snippet from `file` with `smol.gguf` (a tiny model here) in the working directory. */
function runSnippet(file: string): string {
  writeFileSync(file, readmeSnippet())
  const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, `${file}: exit ${r.status}\n${r.stderr}`)
  const lines = r.stdout.trim().split('\n')
  assert.match(lines[0], / [0-9a-f]{64}$/, 'text and trace root')
  assert.equal(lines[1], 'true', 'verify(...).valid')
  return r.stdout
}

before(() => {
  assert.ok(existsSync(join(root, 'dist/index.js')), 'dist/ is missing: run `npm run build`')
  writeGgufFile(join(dir, 'smol.gguf'), encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 1 })))
})

test('package.json exports only the library entry point (and package.json)', async () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  assert.deepEqual(Object.keys(pkg.exports), ['.', './package.json'])
  const lib = await import('tessera')
  for (const name of ['loadModel', 'generate', 'verify']) assert.equal(typeof (lib as Record<string, unknown>)[name], 'function', name)
})

test("README's library snippet runs inside the repository", () => {
  const scratch = join(root, '.tessera')
  mkdirSync(scratch, { recursive: true })
  const file = join(scratch, `readme-snippet-${process.pid}.mjs`)
  try {
    runSnippet(file)
  } finally {
    rmSync(file, { force: true })
  }
})

test("README's library snippet runs in another project that installed the packed package", () => {
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: root, encoding: 'utf8' }).trim()
  const tarball = join(dir, out.split('\n').at(-1)!)
  const app = join(dir, 'app')
  const pkgDir = join(app, 'node_modules', 'tessera')
  mkdirSync(pkgDir, { recursive: true })
  execFileSync('tar', ['-xzf', tarball, '-C', pkgDir, '--strip-components=1'])
  // Only product ships: compiled code, built artifacts and the default model with its training record, no sources or tests.
  assert.deepEqual(readdirSync(pkgDir).sort(), ['README.md', 'bin', 'build', 'dist', 'models', 'package.json'])
  for (const f of ['model-q8_0.gguf', 'manifest.json', 'run.jsonl', 'run.json', 'train.json']) assert.ok(existsSync(join(pkgDir, 'models/default', f)), `models/default/${f} is in the package`)
  assert.ok(!existsSync(join(pkgDir, 'dist/engine/kernels/testData.js')))
  symlinkSync(join(root, 'node_modules'), join(pkgDir, 'node_modules'), 'dir')
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { tessera: '0.1.0' } }))
  runSnippet(join(app, 'snippet.mjs'))
  const version = execFileSync(process.execPath, [join(pkgDir, 'bin/tessera.js'), '--version'], { cwd: app, encoding: 'utf8' })
  assert.equal(version.trim(), `tessera ${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}`)
  assert.match(execFileSync(process.execPath, [join(pkgDir, 'bin/tessera.js'), '--help'], { cwd: app, encoding: 'utf8' }), /^Usage: tessera <command>/)
  // The contracts' build ships and is read as it is: no sources to compare it with, nothing compiled.
  for (const f of ['contracts.json', 'abi.js', 'abi.d.ts']) assert.ok(existsSync(join(pkgDir, 'build', f)), `build/${f} is in the package`)
  assert.ok(!existsSync(join(pkgDir, 'src')) && !existsSync(join(pkgDir, 'scripts')))
  const check = [
    "const { loadArtifacts } = await import('./dist/chain/artifacts.js')",
    "const abi = await import('#abi')",
    'console.log(JSON.stringify(abi.settlementAbi) === JSON.stringify(loadArtifacts().contracts.Settlement.abi))',
  ].join('; ')
  assert.equal(execFileSync(process.execPath, ['--input-type=module', '-e', check], { cwd: pkgDir, encoding: 'utf8' }).trim(), 'true', "'#abi' resolves in the installed package")
})
