// Compiles src/ to dist/ with the project's TypeScript (the CLI's `bin` and the package's `exports`
// run dist/). dist/ is emptied first, so a file moved out of src/ does not linger in the package.
// The explorer's page (src/node/explorer/web/: HTML, browser modules, CSS) is not TypeScript; it is
// copied beside the compiled server, which serves it from there.
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { filesUnder, inputsDigest, root, staleReason, writeStamp } from './lib/inputs.mjs'

const require = createRequire(import.meta.url)

// Every file under src/ counts (tests too: cheap to hash, and a test edit rarely comes alone).
function inputs() {
  const ts = JSON.parse(readFileSync(require.resolve('typescript/package.json'), 'utf8')).version
  return inputsDigest([...filesUnder('src'), 'tsconfig.json', 'scripts/build/90-typescript.mjs'], [ts])
}

/** Why dist/ needs a build ('' if it is current). */
export function stale() {
  return existsSync(join(root, 'dist', 'cli', 'main.js')) ? staleReason('typescript', inputs()) : 'dist/ is missing'
}

export default function buildTypescript() {
  const digest = inputs()
  const tsc = require.resolve('typescript/bin/tsc')
  rmSync(join(root, 'dist'), { recursive: true, force: true })
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' })
  cpSync(join(root, 'src/node/explorer/web'), join(root, 'dist/node/explorer/web'), { recursive: true })
  writeStamp('typescript', digest)
}
