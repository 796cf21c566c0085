/**
 * The optional native Q8_0 matmul (src/runtime/native/q8.cc, built by scripts/build/20-native.mjs
 * into build/native/): an x86-64 AVX2 twin of build/kernels.wasm's `matmul_q8_0`, bit-identical
 * to it (docs/KERNELS.md "Native kernel"). Absent (no compiler at install, not x86-64, no AVX2),
 * `loadNativeQ8` returns undefined and the WASM kernel stays the path.
 */
import { createRequire } from 'node:module'

export type NativeQ8 = {
  /** Same arguments as the WASM export `matmul_q8_0`, as byte offsets into `mem` (a view from byte 0). */
  matmulQ8_0(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
}

let loaded: NativeQ8 | undefined
let why: string | undefined

/** The addon, loaded once per thread; undefined when it is not built or cannot run here. */
export function loadNativeQ8(): NativeQ8 | undefined {
  if (loaded || why !== undefined) return loaded
  if (process.arch !== 'x64') {
    why = `native kernel is x86-64 only (this is ${process.arch})`
    return undefined
  }
  // Same relative path from src/runtime/native and dist/runtime/native.
  const file = new URL('../../../build/native/build/Release/tessera_q8.node', import.meta.url)
  try {
    loaded = createRequire(import.meta.url)(file.pathname) as NativeQ8
  } catch (err) {
    why = `native kernel not loaded from ${file.pathname}: ${(err as Error).message.split('\n')[0]}`
  }
  return loaded
}

/** Why loadNativeQ8 returned undefined (undefined when it loaded or was not tried). */
export function nativeQ8Unavailable(): string | undefined {
  loadNativeQ8()
  return why
}
