// Compiles src/ to dist/ with the project's TypeScript (the CLI's `bin` and the package's `exports`
// run dist/). dist/ is emptied first, so a file moved out of src/ does not linger in the package.
// The explorer's page (src/node/explorer/web/: HTML, browser modules, CSS) is not TypeScript; it is
// copied beside the compiled server, which serves it from there.
import { execFileSync } from 'node:child_process'
import { cpSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'

export default function buildTypescript() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  rmSync('dist', { recursive: true, force: true })
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' })
  cpSync('src/node/explorer/web', 'dist/node/explorer/web', { recursive: true })
}
