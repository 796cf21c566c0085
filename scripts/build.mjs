// Builds everything `npm install` needs, offline: each step is a file in scripts/build/,
// run in name order (WASM kernels, native kernel, Solidity contracts, then TypeScript).
//   node scripts/build.mjs              the steps whose inputs changed since their last build (each
//                                       step's stale() says why); what `npm run build`, `npm install`
//                                       and `npm test` run. Nothing to do takes a second, so a
//                                       lifecycle run (`npx tessera` in this folder installs the
//                                       folder and runs its prepare script, output hidden) is quick.
//   node scripts/build.mjs --force      every step
//   node scripts/build.mjs --skip=NAME  without the step NAME (e.g. 90-typescript)
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const args = process.argv.slice(2)
const force = args.includes('--force')
const skip = args.filter((a) => a.startsWith('--skip=')).flatMap((a) => a.slice('--skip='.length).split(','))
const unknown = args.filter((a) => a !== '--force' && !a.startsWith('--skip='))
if (unknown.length) {
  console.error(`build: unknown argument ${unknown[0]} (expected --force, --skip=STEP)`)
  process.exit(2)
}

const dir = join(dirname(fileURLToPath(import.meta.url)), 'build')
let built = 0
for (const name of readdirSync(dir)
  .filter((f) => f.endsWith('.mjs'))
  .sort()) {
  if (skip.includes(name.replace(/\.mjs$/, ''))) continue
  const step = await import(pathToFileURL(join(dir, name)).href)
  const why = force ? '--force' : step.stale()
  if (!why) continue
  const started = process.hrtime.bigint()
  console.log(`build: ${name}: ${why}, building`)
  await step.default()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  console.log(`build: ${name} done in ${ms.toFixed(0)} ms`)
  built++
}
if (built === 0) console.log('build: up to date')
