/**
 * The scalar functions and reductions of the canonical arithmetic (docs/ARITHMETIC.md), built only
 * from binary32 + - * / sqrt and integer operations. `f` rounds a double to binary32; every
 * binary32 step below is wrapped in it, in the order the spec writes, so this file *is* the
 * readable specification. Never call the platform's exp, sin and friends here: their last bits
 * differ between JavaScript engines and CPUs.
 */
import { bitsToF32, f32ToBits } from '../bytes.js'

export const f = Math.fround

/** 2^k as binary32 built from its bits, for -126 <= k <= 127. */
function pow2(k: number): number {
  return bitsToF32((k + 127) << 23)
}

/** SUM8: the one f32 reduction order (8 interleaved lanes folded in a fixed tree). */
export function sum8(x: ArrayLike<number>, start = 0, end = x.length): number {
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0
  let i = start
  for (; i + 8 <= end; i += 8) {
    a0 = f(a0 + x[i]); a1 = f(a1 + x[i + 1]); a2 = f(a2 + x[i + 2]); a3 = f(a3 + x[i + 3])
    a4 = f(a4 + x[i + 4]); a5 = f(a5 + x[i + 5]); a6 = f(a6 + x[i + 6]); a7 = f(a7 + x[i + 7])
  }
  // the tail continues the lane pattern: element i goes to lane (i - start) mod 8
  if (i < end) a0 = f(a0 + x[i++])
  if (i < end) a1 = f(a1 + x[i++])
  if (i < end) a2 = f(a2 + x[i++])
  if (i < end) a3 = f(a3 + x[i++])
  if (i < end) a4 = f(a4 + x[i++])
  if (i < end) a5 = f(a5 + x[i++])
  if (i < end) a6 = f(a6 + x[i++])
  return fold(a0, a1, a2, a3, a4, a5, a6, a7)
}

/** The fixed tree that ends SUM8: lanes l and l+4, then 0+2 and 1+3, then the two halves. */
export function fold(a0: number, a1: number, a2: number, a3: number, a4: number, a5: number, a6: number, a7: number): number {
  return f(f(f(a0 + a4) + f(a2 + a6)) + f(f(a1 + a5) + f(a3 + a7)))
}

/** DOT8(a, b) = SUM8(a_i ⊗ b_i) over n elements from the given offsets. */
export function dot8(a: ArrayLike<number>, aOff: number, b: ArrayLike<number>, bOff: number, n: number): number {
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0
  let i = 0
  for (; i + 8 <= n; i += 8) {
    const p = aOff + i, q = bOff + i
    a0 = f(a0 + f(a[p] * b[q])); a1 = f(a1 + f(a[p + 1] * b[q + 1]))
    a2 = f(a2 + f(a[p + 2] * b[q + 2])); a3 = f(a3 + f(a[p + 3] * b[q + 3]))
    a4 = f(a4 + f(a[p + 4] * b[q + 4])); a5 = f(a5 + f(a[p + 5] * b[q + 5]))
    a6 = f(a6 + f(a[p + 6] * b[q + 6])); a7 = f(a7 + f(a[p + 7] * b[q + 7]))
  }
  if (i < n) a0 = f(a0 + f(a[aOff + i] * b[bOff + i++]))
  if (i < n) a1 = f(a1 + f(a[aOff + i] * b[bOff + i++]))
  if (i < n) a2 = f(a2 + f(a[aOff + i] * b[bOff + i++]))
  if (i < n) a3 = f(a3 + f(a[aOff + i] * b[bOff + i++]))
  if (i < n) a4 = f(a4 + f(a[aOff + i] * b[bOff + i++]))
  if (i < n) a5 = f(a5 + f(a[aOff + i] * b[bOff + i++]))
  if (i < n) a6 = f(a6 + f(a[aOff + i] * b[bOff + i++]))
  return fold(a0, a1, a2, a3, a4, a5, a6, a7)
}

const LOG2E = f(1.44269502162933349609375)
const LN2_HI = f(0.693359375)
const LN2_LO = f(-2.12194440e-4)
const EXP_MAX = f(88.72283935546875)
const EXP_MIN = f(-87.33654022216797)
const E0 = f(1.9875691500e-4), E1 = f(1.3981999507e-3), E2 = f(8.3334519073e-3)
const E3 = f(4.1665795894e-2), E4 = f(1.6666665459e-1), E5 = f(5.0000001201e-1)

/** EXP(x): Cody-Waite reduction by ln 2 and Cephes' degree-6 polynomial, all in binary32. */
export function exp(x: number): number {
  if (x !== x) return NaN
  if (x >= EXP_MAX) return Infinity
  if (x <= EXP_MIN) return 0
  const k = Math.floor(f(f(x * LOG2E) + 0.5))
  const kf = f(k)
  const r = f(f(x - f(kf * LN2_HI)) - f(kf * LN2_LO))
  let p = f(f(E0 * r) + E1)
  p = f(f(p * r) + E2)
  p = f(f(p * r) + E3)
  p = f(f(p * r) + E4)
  p = f(f(p * r) + E5)
  p = f(f(f(p * f(r * r)) + r) + 1)
  return k <= 127 ? f(p * pow2(k)) : f(f(p * pow2(127)) * 2)
}

const SQRTH = f(0.70710677)
const L = [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1].map(f)

/** LOG(x) for positive normal x (Cephes logf), used on model constants such as the RoPE base. */
export function log(x: number): number {
  const bits = f32ToBits(x)
  let e = ((bits >>> 23) & 0xff) - 126
  let m = bitsToF32((bits & 0x807fffff) | (126 << 23)) // mantissa scaled into [0.5, 1)
  if (m < SQRTH) {
    e -= 1
    m = f(m + m)
  }
  const fx = f(m - 1)
  const z = f(fx * fx)
  let y = L[0]
  for (let i = 1; i < L.length; i++) y = f(f(y * fx) + L[i])
  y = f(f(y * fx) * z)
  const ef = f(e)
  y = f(y + f(ef * LN2_LO))
  y = f(y - f(z * 0.5))
  return f(f(fx + y) + f(ef * LN2_HI))
}

const FOPI = f(1.27323954473516)
const DP1 = f(0.78515625), DP2 = f(2.4187564849853515625e-4), DP3 = f(3.77489497744594108e-8)
const S0 = f(-1.9515295891e-4), S1 = f(8.3321608736e-3), S2 = f(-1.6666654611e-1)
const C0 = f(2.443315711809948e-5), C1 = f(-1.388731625493765e-3), C2 = f(4.166664568298827e-2)

/** Reduction of x >= 0 by π/4 octants: returns the even octant j mod 8 and the remainder r. */
function reduce(x: number): [number, number] {
  let j = Math.trunc(f(x * FOPI))
  if (j & 1) j += 1
  const y = f(j)
  const r = f(f(f(x - f(y * DP1)) - f(y * DP2)) - f(y * DP3))
  return [j & 7, r]
}

function sinPoly(r: number): number {
  const z = f(r * r)
  return f(f(f(f(f(f(f(S0 * z) + S1) * z) + S2) * z) * r) + r)
}

function cosPoly(r: number): number {
  const z = f(r * r)
  const y = f(f(f(f(f(f(C0 * z) + C1) * z) + C2) * z) * z)
  return f(f(y - f(0.5 * z)) + 1)
}

/** SIN(x) for x >= 0 (RoPE angles). */
export function sin(x: number): number {
  const [j, r] = reduce(x)
  const v = j === 0 || j === 4 ? sinPoly(r) : cosPoly(r)
  return j >= 4 ? -v : v
}

/** COS(x) for x >= 0 (RoPE angles). */
export function cos(x: number): number {
  const [j, r] = reduce(x)
  const v = j === 0 || j === 4 ? cosPoly(r) : sinPoly(r)
  return j === 2 || j === 4 ? -v : v
}

/** SILU(x) = x ⊘ (1 ⊕ EXP(0 ⊖ x)). */
export function silu(x: number): number {
  return f(x / f(1 + exp(f(0 - x))))
}

/** RMSNorm of x[off .. off+n) into out[outOff ..], scaled by the weight w. */
export function rmsnorm(out: Float32Array, outOff: number, x: Float32Array, off: number, w: Float32Array, n: number, eps: number): void {
  const ss = dot8(x, off, x, off, n)
  const s = f(1 / f(Math.sqrt(f(f(ss / n) + eps))))
  for (let i = 0; i < n; i++) out[outOff + i] = f(f(x[off + i] * s) * w[i])
}
