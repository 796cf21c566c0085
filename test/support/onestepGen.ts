/**
 * Seeded case generators for the one-step differential fuzz tests (TypeScript twins vs the
 * Solidity libraries vs the host's floats). Deterministic for a seed, so a failure names its seed
 * and replays. Operand generators are biased towards the cases where float code goes wrong:
 * specials (NaN, ±Inf, ±0), subnormals, boundary exponents, exact ties and cancellation.
 */
import { i2f, mul as sfMul, SIGN } from './softfloat.js'

/** A uint32 (binary32 bits, an int32) as the 8-digit 0x-hex word the harnesses take and return. */
export const hexWord = (x: number): string => `0x${(x >>> 0).toString(16).padStart(8, '0')}`

/** A small seeded PRNG (mulberry32): 32 random bits per call. Not for anything but tests. */
export class Rng {
  private s: number
  constructor(readonly seed: number) {
    this.s = seed >>> 0
  }
  /** Uniform uint32. */
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0
    let t = this.s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 2 ** 32) * n)
  }
  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]
  }
  bool(): boolean {
    return (this.u32() & 1) === 1
  }
  /** Uniform uint64 as a bigint. */
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32())
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff
    return out
  }
}

/** Special binary32 bit patterns: zeros, infinities, NaNs (quiet, signalling, negative), extremes. */
export const SPECIALS: readonly number[] = [
  0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff,
  0xffffffff, 0x7fffffff, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00800000, 0x80800000,
  0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000, 0x3f800001, 0x3f7fffff, 0x00400000, 0x7f000000,
]

const withExp = (rng: Rng, e: number): number =>
  ((rng.bool() ? SIGN : 0) | (e << 23) | (rng.u32() & 0x7fffff)) >>> 0

/** One binary32 operand drawn from a mix of distributions. */
export function genF32(rng: Rng): number {
  switch (rng.int(8)) {
    case 0:
    case 1:
      return rng.u32() // uniform bits: every exponent equally, NaNs included
    case 2:
      return rng.pick(SPECIALS)
    case 3:
      return withExp(rng, 0) // subnormal (or zero)
    case 4:
      return withExp(rng, rng.pick([1, 2, 3, 23, 24, 25, 126, 127, 128, 229, 252, 253, 254]))
    case 5:
      return withExp(rng, rng.range(100, 154)) // ordinary magnitudes near 1
    case 6: {
      // few significant bits: products and sums land exactly on ties and powers of two
      const m = (rng.u32() & 0x7fffff) & ~((1 << rng.range(12, 23)) - 1)
      return ((rng.bool() ? SIGN : 0) | (rng.range(1, 254) << 23) | m) >>> 0
    }
    default:
      return i2f(rng.range(-100000, 100000))
  }
}

/** A neighbour of x: a few ulps away, possibly with the sign flipped (for cancellation). */
function near(rng: Rng, x: number): number {
  const delta = rng.range(-3, 3) << rng.int(3)
  const y = Math.min(Math.max((x & 0x7fffffff) + delta, 0), 0x7f7fffff)
  return ((x & SIGN) | y) >>> 0
}

/** Operand pairs for add/sub: independent, near-equal (cancellation) and exact-tie pairs. */
export function genAddPair(rng: Rng): [number, number] {
  const a = genF32(rng)
  switch (rng.int(5)) {
    case 0: {
      // b is near a or near -a: catastrophic cancellation, exact zeros, borrow across binades
      const b = near(rng, a)
      return [a, rng.bool() ? (b ^ SIGN) >>> 0 : b]
    }
    case 1: {
      // b is exactly half an ulp of a (a tie), or a tie plus/minus a little, shifted 24..26 binades
      const e = (a >>> 23) & 0xff
      const eb = e - rng.range(24, 26)
      if (e === 0xff || eb < 1) return [a, genF32(rng)]
      const frac = rng.bool() ? 0 : rng.u32() & 0x7fffff
      return [a, ((rng.bool() ? SIGN : 0) | (eb << 23) | frac) >>> 0]
    }
    case 2: {
      // exponents far apart, including > 64 binades (the alignment cap)
      const b = withExp(rng, rng.range(1, 254))
      return [a, b]
    }
    default:
      return [a, genF32(rng)]
  }
}

/** Operand pairs for mul: products that are exact ties (odd 13-bit x odd 12-bit integers), scaled. */
export function genMulPair(rng: Rng): [number, number] {
  if (rng.int(4) === 0) {
    const x = i2f((rng.range(1 << 12, (1 << 13) - 1) | 1) * (rng.bool() ? 1 : -1))
    const y = i2f(rng.range(1 << 11, (1 << 12) - 1) | 1)
    // scale both by powers of two so the tie also appears near overflow and in the subnormals
    const sx = ((rng.range(0, 250) - 125 + 127) << 23) >>> 0
    const sy = ((rng.range(0, 250) - 125 + 127) << 23) >>> 0
    return [sfMul(x, sx), sfMul(y, sy)]
  }
  return [genF32(rng), genF32(rng)]
}

/** Operand pairs for div: powers of two into the subnormal range (ties there), near-equal pairs. */
export function genDivPair(rng: Rng): [number, number] {
  const a = genF32(rng)
  switch (rng.int(4)) {
    case 0:
      return [a, ((rng.bool() ? SIGN : 0) | (rng.range(1, 254) << 23)) >>> 0] // ± power of two
    case 1:
      return [a, near(rng, a)] // quotient near ±1
    default:
      return [a, genF32(rng)]
  }
}

/** Operands for sqrt: general, subnormal, perfect squares, negatives and specials. */
export function genSqrtArg(rng: Rng): number {
  switch (rng.int(4)) {
    case 0: {
      const n = rng.range(1, 4095)
      return i2f(n * n)
    }
    case 1:
      return withExp(rng, 0)
    default:
      // mostly positive: negative arguments all end in the same NaN branch
      return (genF32(rng) & (rng.int(4) === 0 ? 0xffffffff : 0x7fffffff)) >>> 0
  }
}

/** int32 operands for i2f: uniform, around 2^24 (where rounding starts) and the extremes. */
export function genInt32(rng: Rng): number {
  switch (rng.int(4)) {
    case 0:
      return rng.u32() | 0
    case 1: {
      const e = rng.range(23, 30)
      return ((rng.bool() ? -1 : 1) * (2 ** e + rng.range(-1000, 1000))) | 0
    }
    case 2:
      return rng.pick([0, 1, -1, 0x7fffffff, -0x80000000, -0x7fffffff, 16777216, 16777217, 16777219, -16777219])
    default:
      return rng.range(-100000, 100000)
  }
}
