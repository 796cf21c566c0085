// Runs every *.test.ts under src/, test/ and bench/ with Node's test runner (Node 20 does not
// expand globs itself). Pass file paths or substrings to run a subset: `npm test -- gguf`.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

function find(dir) {
  let out = []
  let names
  try { names = readdirSync(dir) } catch { return out }
  for (const name of names) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out = out.concat(find(p))
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const filters = process.argv.slice(2)
const files = ['src', 'test'].flatMap(find).sort()
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`)
  process.exit(1)
}
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit' })
process.exit(res.status ?? 1)
