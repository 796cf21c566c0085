/**
 * The optional native attention (src/runtime/native/attention.cc, built by
 * scripts/build/20-native.mjs into build/native/): an x86-64 AVX2 twin of build/layer.wasm's
 * `attention`, bit-identical to it and to the TypeScript reference (docs/KERNELS.md "Native
 * attention"). Absent (no compiler at install, not x86-64, no AVX2), `loadNativeAttention` returns
 * undefined and the WASM attention stays the path.
 */
import { addonLoader } from './addon.js'

export type NativeAttention = {
  /**
   * The WASM export `attention`'s arguments as byte offsets into `mem` (a view of the layer ops'
   * memory from byte 0): query heads h0 <= h < h1 of `nTok` tokens at positions start.. over the
   * K/V rows 0 .. start+nTok-1, binary32 or, when `half` is 1, binary16 bits (tessera-arith/2).
   * `scores` is accepted for the same signature and not used.
   */
  attention(mem: Uint8Array, out: number, q: number, k: number, v: number, scores: number, start: number, nTok: number, nh: number, nkv: number, hd: number, h0: number, h1: number, half?: number): void
  /** dst[i] = f2h(src[i]) for i < n (binary16 bits; byte offsets into `mem`): half.ts `f2h` with F16C. */
  toHalf(mem: Uint8Array, dst: number, src: number, n: number): void
  /** out[i] = h2f(h[i]) for i < n (byte offsets into `mem`), with F16C: for the tests. */
  fromHalf(mem: Uint8Array, out: number, h: number, n: number): void
  /** out[i] = EXP(x[i]) for i < n (byte offsets into `mem`), 8 lanes at a time then scalar: for the tests. */
  expMany(mem: Uint8Array, out: number, x: number, n: number): void
}

const addon = addonLoader<NativeAttention>('tessera_attention', 'native attention')

/** The addon, loaded once per thread; undefined when it is not built or cannot run here. */
export const loadNativeAttention = addon.load

/** Why loadNativeAttention returned undefined (undefined when it loaded). */
export const nativeAttentionUnavailable = addon.unavailable
