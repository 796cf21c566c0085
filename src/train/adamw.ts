/**
 * AdamW's scalars in binary32 (docs/TRAINING.md "AdamW"): the learning-rate schedule, the bias
 * corrections, and the global-norm clip. The per-element update is `TrainOps.adamw` (ops.ts).
 */
import { f, sum8 } from '../engine/math/canonical.js'
import type { TrainConfig } from './model.js'
import type { AdamHyper } from './ops.js'

/**
 * The learning rate of the step with 0-based index s:
 *   s < warmup:          peak ⊗ (i2f(s + 1) ⊘ i2f(warmup))
 *   s ≥ total:           min
 *   otherwise:           peak ⊖ ((peak ⊖ min) ⊗ (i2f(s − warmup) ⊘ i2f(total − warmup)))
 */
export function learningRate(c: TrainConfig, s: number): number {
  const peak = f(c.lr.peak), min = f(c.lr.min)
  const { warmupSteps: w, totalSteps: T } = c.lr
  if (s < w) return f(peak * f(f(s + 1) / f(w)))
  if (s >= T) return min
  return f(peak - f(f(peak - min) * f(f(s - w) / f(T - w))))
}

/** b^t in binary32 by square-and-multiply from the lowest bit: r = 1; per bit: (bit ? r = r ⊗ b), b = b ⊗ b. */
export function powF32(b: number, t: number): number {
  let r = 1
  let x = f(b)
  let e = t
  while (e > 0) {
    if (e & 1) r = f(r * x)
    x = f(x * x)
    e = Math.floor(e / 2)
  }
  return r
}

/** The global gradient norm √SUM8(ss_k) over the tensors' squared sums ss_k = DOT8(g_k, g_k) in canonical order. */
export function globalNorm(squaredSums: Float32Array): number {
  return f(Math.sqrt(sum8(squaredSums)))
}

/** The clip scale: clip ⊘ norm when clipping is on and norm > clip, else 1. */
export function clipScale(c: TrainConfig, norm: number): number {
  const clip = f(c.gradClip)
  return clip > 0 && norm > clip ? f(clip / norm) : 1
}

/** The AdamW constants of step index s (t = s + 1) for a tensor (decay or not). */
export function adamHyper(c: TrainConfig, s: number, scale: number, decay: boolean): AdamHyper {
  const beta1 = f(c.adam.beta1), beta2 = f(c.adam.beta2)
  return {
    clipScale: scale,
    lr: learningRate(c, s),
    beta1,
    beta2,
    oneMinusBeta1: f(1 - beta1),
    oneMinusBeta2: f(1 - beta2),
    bc1: f(1 - powF32(beta1, s + 1)),
    bc2: f(1 - powF32(beta2, s + 1)),
    eps: f(c.adam.eps),
    weightDecay: decay ? f(c.adam.weightDecay) : 0,
  }
}
