// Compiles the AssemblyScript modules with the project's own assemblyscript package: the matmul
// kernels (src/engine/kernels/assembly/kernels.ts -> build/kernels.wasm) and the other forward-pass
// ops (assembly/layer.ts -> build/layer.wasm). -O3, SIMD on (never relaxed SIMD), and an imported
// shared memory so every worker thread instantiates the module over its own shared memory.
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export default async function buildWasm() {
  mkdirSync(join(root, 'build'), { recursive: true })
  for (const name of ['kernels', 'layer']) await compile(name)
}

async function compile(name) {
  const asc = (await import('assemblyscript/asc')).default
  const args = [
    join(root, `src/engine/kernels/assembly/${name}.ts`),
    '-o',
    join(root, `build/${name}.wasm`),
    '-t',
    join(root, `build/${name}.wat`),
    '-O3',
    '--noAssert',
    '--runtime',
    'stub',
    '--enable',
    'simd',
    '--enable',
    'threads',
    '--importMemory',
    '--sharedMemory',
    '--initialMemory',
    '1',
    '--maximumMemory',
    '65536',
  ]
  let errors = ''
  const { error } = await asc.main(args, {
    stderr: {
      write: (s) => {
        errors += s
        return true
      },
    },
    stdout: { write: () => true },
  })
  if (error) throw new Error(`assemblyscript failed on ${name}.ts: ${error.message}\n${errors}`)
}
