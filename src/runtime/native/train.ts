/**
 * The optional native training kernels (src/runtime/native/train.cc, built by
 * scripts/build/20-native.mjs into build/native/build/Release/tessera_train.node): x86-64 AVX2
 * twins of `referenceTrainOps` (src/train/ops.ts; src/train/trainer.ts wraps these exports as TrainOps), bit-identical to them at every thread count
 * (docs/TRAINING.md "Model and arithmetic", "Speed"). Absent (no compiler at install, not x86-64,
 * no AVX2) `loadNativeTrain` returns undefined and the trainer's 'auto' backend uses the reference.
 */
import { addonLoader } from './addon.js'

type F = Float32Array

/** The addon's exports: TrainOps' methods with a thread count where they split work. */
export type NativeTrain = {
  mm(threads: number, c: F, a: F, b: F, M: number, N: number, K: number): void
  rowDot(threads: number, out: F, a: F, b: F, rows: number, K: number): void
  transpose(dst: F, src: F, rows: number, cols: number, threads?: number): void
  rmsnorm(y: F, xhat: F, s: F, x: F, w: F, n: number, dim: number, eps: number, threads?: number): void
  rmsnormBack(dx: F, dy: F, x: F, s: F, w: F, n: number, dim: number, threads?: number): void
  rope(x: F, n: number, heads: number, hd: number, C: number, cos: F, sin: F, back: boolean): void
  attention(threads: number, o: F, e: F, inv: F, q: F, k: F, v: F, B: number, C: number, nh: number, nkv: number, hd: number): void
  attentionBack(threads: number, dq: F, dk: F, dv: F, dO: F, o: F, e: F, inv: F, q: F, k: F, v: F, B: number, C: number, nh: number, nkv: number, hd: number): void
  siluMul(threads: number, h: F, g: F, u: F, n: number): void
  siluMulBack(threads: number, dg: F, du: F, dh: F, g: F, u: F, n: number): void
  add(x: F, y: F, n: number): void
  crossEntropy(threads: number, z: F, loss: F, targets: Int32Array, N: number, V: number, invN: number, grad: boolean): void
  /** h: clipScale, lr, beta1, beta2, 1-beta1, 1-beta2, bc1, bc2, eps, weightDecay (AdamHyper's order). */
  adamw(p: F, m: F, v: F, g: F, n: number, h: Float32Array, threads?: number): void
}

const addon = addonLoader<NativeTrain>('tessera_train', 'native training kernels')

/** The addon, loaded once per thread; undefined when it is not built or cannot run here. */
export const loadNativeTrain = addon.load

/** Why loadNativeTrain returned undefined (undefined when it loaded). */
export const nativeTrainUnavailable = addon.unavailable
