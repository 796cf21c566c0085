// Compiles src/ to dist/ with the project's TypeScript (the CLI's `bin` runs dist/).
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'

export default function buildTypescript() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' })
}
