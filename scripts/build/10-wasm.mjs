// Compiles the AssemblyScript modules with the project's own assemblyscript package: the matmul
// kernels (src/engine/kernels/assembly/kernels.ts -> build/kernels.wasm) and the other forward-pass
// ops (assembly/layer.ts -> build/layer.wasm). -O3, SIMD on (never relaxed SIMD), and an imported
// shared memory so every worker thread instantiates the module over its own shared memory.
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { filesUnder, inputsDigest, root, staleReason, writeStamp } from './lib/inputs.mjs'

const MODULES = ['kernels', 'layer']

function inputs() {
  const asc = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('assemblyscript/package.json'), 'utf8')).version
  return inputsDigest([...filesUnder('src/engine/kernels/assembly'), 'scripts/build/10-wasm.mjs'], [asc])
}

/** Why the WASM modules need a build ('' if they are current). */
export function stale() {
  const missing = MODULES.find((name) => !existsSync(join(root, 'build', `${name}.wasm`)))
  return missing ? `build/${missing}.wasm is missing` : staleReason('wasm', inputs())
}

export default async function buildWasm() {
  const digest = inputs()
  mkdirSync(join(root, 'build'), { recursive: true })
  for (const name of MODULES) await compile(name)
  writeStamp('wasm', digest)
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
