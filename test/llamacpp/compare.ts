/**
 * Measures how closely two engines' next-token distributions agree: KL divergence, top-1 agreement,
 * the reference's own top-1 margin and the largest logit difference. Test-side code: it uses
 * doubles and Math.exp freely, because it judges the engines rather than being one.
 */

export type NextTokenStats = {
  /** KL(p_ref || p_ours) in nats, softmax of each engine's logits in double precision. */
  kl: number
  /** Largest |logit_ref - logit_ours| over the vocabulary. */
  maxAbsDiff: number
  refTop1: number
  oursTop1: number
  /** The reference's gap between its first and second logits. */
  refMargin: number
}

/** Index of the largest value, ties to the lowest index (docs/ARITHMETIC.md temperature 0). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i
  return best
}

/** Log-softmax in double precision. */
export function logSoftmax(x: ArrayLike<number>): Float64Array {
  let m = -Infinity
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i])
  let s = 0
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m)
  const lse = m + Math.log(s)
  const out = new Float64Array(x.length)
  for (let i = 0; i < x.length; i++) out[i] = x[i] - lse
  return out
}

/** Compares the reference engine's logits `ref` with ours (same vocabulary). */
export function compareLogits(ref: ArrayLike<number>, ours: ArrayLike<number>): NextTokenStats {
  if (ref.length !== ours.length) throw new RangeError(`vocabulary sizes differ: ${ref.length} vs ${ours.length}`)
  const lp = logSoftmax(ref)
  const lq = logSoftmax(ours)
  let kl = 0
  let maxAbsDiff = 0
  for (let i = 0; i < ref.length; i++) {
    kl += Math.exp(lp[i]) * (lp[i] - lq[i])
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ref[i] - ours[i]))
  }
  const refTop1 = argmax(ref)
  let second = -Infinity
  for (let i = 0; i < ref.length; i++) if (i !== refTop1 && ref[i] > second) second = ref[i]
  return { kl: Math.max(kl, 0), maxAbsDiff, refTop1, oursTop1: argmax(ours), refMargin: ref[refTop1] - second }
}

/** Length of the common prefix of two token sequences. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0
  while (n < a.length && n < b.length && a[n] === b[n]) n++
  return n
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((p, q) => p - q)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
