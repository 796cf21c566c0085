// What CI runs (`npm test`): first the build steps whose sources changed (scripts/build.mjs:
// WASM and native kernels, contracts and their ABI module, and dist/ when the package test is
// selected), then the type check of src/, test/ and bench/ (tsconfig.test.json), the linter and
// formatter check (biome.json), then every *.test.ts under src/ and test/ with Node's test runner
// (Node 20 does not expand globs itself). Pass file paths or substrings to run only those tests,
// without the checks: `npm test -- gguf`. Library code never builds anything itself: a test run
// straight with `node --test` after a contract edit fails in one line asking for `npm run build`.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, sep } from 'node:path'

function find(dir) {
  let out = []
  let names
  try {
    names = readdirSync(dir)
  } catch {
    return out
  }
  for (const name of names) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out = out.concat(find(p))
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

function step(label, args) {
  const started = Date.now()
  const res = spawnSync(process.execPath, args, { stdio: 'inherit' })
  if (res.status !== 0) {
    console.error(`test: ${label} failed`)
    process.exit(res.status ?? 1)
  }
  console.log(`test: ${label} passed in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

const filters = process.argv.slice(2)
const files = ['src', 'test']
  .flatMap(find)
  .sort()
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`)
  process.exit(1)
}
// dist/ takes a full compile and only the package test (test/package/exports.test.ts) runs it.
const needsDist = files.some((f) => f.split(sep).join('/') === 'test/package/exports.test.ts')
step('build (steps whose sources changed)', [join(import.meta.dirname, 'build.mjs'), ...(needsDist ? [] : ['--skip=90-typescript'])])
if (filters.length === 0) {
  const require = createRequire(import.meta.url)
  // Errors only here; `npm run lint` also lists the warnings (rules set to warn while old code is cleaned up).
  step('lint and format (biome)', [require.resolve('@biomejs/biome/bin/biome'), 'check', '--diagnostic-level=error', '.'])
  step('type check (tsconfig.test.json)', [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.test.json'])
}
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit' })
process.exit(res.status ?? 1)
