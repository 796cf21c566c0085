// Compiles the AssemblyScript kernels (src/engine/kernels/assembly/kernels.ts) to build/kernels.wasm
// with the project's own assemblyscript package: -O3, SIMD on (never relaxed SIMD), and an imported
// shared memory so every worker thread instantiates the module over its own shared memory.
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export default async function buildWasm() {
  const asc = (await import('assemblyscript/asc')).default
  mkdirSync(join(root, 'build'), { recursive: true })
  const args = [
    join(root, 'src/engine/kernels/assembly/kernels.ts'),
    '-o', join(root, 'build/kernels.wasm'),
    '-t', join(root, 'build/kernels.wat'),
    '-O3', '--noAssert', '--runtime', 'stub',
    '--enable', 'simd', '--enable', 'threads',
    '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536',
  ]
  let errors = ''
  const { error } = await asc.main(args, { stderr: { write: (s) => { errors += s; return true } }, stdout: { write: () => true } })
  if (error) throw new Error(`assemblyscript failed: ${error.message}\n${errors}`)
}
