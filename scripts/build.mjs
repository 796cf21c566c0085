// Builds everything `npm install` needs, offline: each step is a file in scripts/build/,
// run in name order (WASM kernels, Solidity contracts, then TypeScript).
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const dir = join(dirname(fileURLToPath(import.meta.url)), 'build')
for (const name of readdirSync(dir)
  .filter((f) => f.endsWith('.mjs'))
  .sort()) {
  const started = process.hrtime.bigint()
  const step = await import(pathToFileURL(join(dir, name)).href)
  await step.default()
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  console.log(`build: ${name} done in ${ms.toFixed(0)} ms`)
}
