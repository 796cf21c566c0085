/**
 * The optional native matmuls (src/runtime/native/q8.cc, built by scripts/build/20-native.mjs
 * into build/native/): x86-64 AVX2 twins of build/kernels.wasm's `matmul_q8_0`, `matmul_q4_1`,
 * `matmul_q5_0`, `matmul_q5_1` and `matmul_q2_k` .. `matmul_q6_k`, bit-identical to them (docs/KERNELS.md "Native kernel"); and the trace's vector roots with node's OpenSSL
 * SHA-256, installed into src/trace/traceTree.ts when the addon loads; and the huge-page advice for the
 * weights' memory (wasmBackend.ts). Absent (no compiler at install, not x86-64, no AVX2),
 * `loadNativeQ8` returns undefined and the WASM kernel stays the path.
 */
import { addonLoader } from './addon.js'
import { useTraceHasher } from '../../trace/traceTree.js'

export type NativeQ8 = {
  /** Same arguments as the WASM export `matmul_q8_0`, as byte offsets into `mem` (a view from byte 0). */
  matmulQ8_0(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
  /** Twins of the WASM exports `matmul_q2_k` / `_q3_k` / `_q4_k` / `_q5_k` / `_q6_k` (same arguments), for any ntok. */
  matmulQ4_K(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
  matmulQ2_K(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
  matmulQ3_K(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
  matmulQ5_K(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
  matmulQ6_K(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
  /** Twins of the WASM exports `matmul_q4_1` / `_q5_0` / `_q5_1` (same arguments), for any ntok. */
  matmulQ4_1(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
  matmulQ5_0(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
  matmulQ5_1(mem: Uint8Array, w: number, ngroups: number, nb: number, act: number, ntok: number, out: number, outStride: number): void
  /** The vector root (src/trace/vector.ts) of `bytes`, written to out[at .. at + 32), in one call. */
  vectorRoot(bytes: Uint8Array, out: Uint8Array, at: number): void
  /** The trace's layer leaf hash (src/trace/traceTree.ts layerLeaf) of three vectors' bytes, written to out[0 .. 32). */
  layerLeaf(residual: Uint8Array, k: Uint8Array, v: Uint8Array, pos: number, layer: number, out: Uint8Array): void
  /** The offset in `mem` of its first 2 MiB-aligned byte (where a huge page can start). */
  hugePageOffset(mem: Uint8Array): number
  /**
   * `madvise(MADV_HUGEPAGE)` over the whole 4 KiB pages of mem[from .. to): the bytes advised, 0 where
   * the OS has no transparent huge pages. A hint only: no byte changes (docs/KERNELS.md "Weights on huge pages").
   */
  adviseHugePages(mem: Uint8Array, from: number, to: number): number
}

const addon = addonLoader<NativeQ8>('tessera_q8', 'native kernel', (q8) => {
  // The trace's vector roots in one native call each (same bytes as the JS path; trace format 2
  // hashes hundreds of chunks and nodes per token, where per-call overhead dominated).
  if (typeof q8.vectorRoot === 'function' && typeof q8.layerLeaf === 'function') useTraceHasher(q8)
})

/** The addon, loaded once per thread; undefined when it is not built or cannot run here. */
export const loadNativeQ8 = addon.load

/** Why loadNativeQ8 returned undefined (undefined when it loaded). */
export const nativeQ8Unavailable = addon.unavailable
