// Builds everything `npm install` needs, offline: each step is a file in scripts/build/,
// run in name order (WASM kernels, native kernel, Solidity contracts, then TypeScript).
//   node scripts/build.mjs                      every step (what `npm run build` and `npm install` run)
//   node scripts/build.mjs --stale              only the steps whose inputs changed since their last
//                                               build (each step's stale() says why; `npm test` runs this)
//   node scripts/build.mjs --stale --skip=NAME  the same without the step NAME (e.g. 90-typescript)
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const args = process.argv.slice(2)
const onlyStale = args.includes('--stale')
const skip = args.filter((a) => a.startsWith('--skip=')).flatMap((a) => a.slice('--skip='.length).split(','))
const unknown = args.filter((a) => a !== '--stale' && !a.startsWith('--skip='))
if (unknown.length) {
  console.error(`build: unknown argument ${unknown[0]} (expected --stale, --skip=STEP)`)
  process.exit(2)
}

const dir = join(dirname(fileURLToPath(import.meta.url)), 'build')
for (const name of readdirSync(dir)
  .filter((f) => f.endsWith('.mjs'))
  .sort()) {
  if (skip.includes(name.replace(/\.mjs$/, ''))) continue
  const step = await import(pathToFileURL(join(dir, name)).href)
  const why = onlyStale ? step.stale() : ''
  if (onlyStale && !why) continue
  const started = process.hrtime.bigint()
  if (why) console.log(`build: ${name}: ${why}, building`)
  await step.default()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  console.log(`build: ${name} done in ${ms.toFixed(0)} ms`)
}
