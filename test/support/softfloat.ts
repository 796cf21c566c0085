/**
 * IEEE-754 binary32 arithmetic on bit patterns, the TypeScript twin of
 * src/chain/contracts/lib/SoftFloat.sol: add, sub, mul, div, sqrt, i2f and h2f of
 * docs/ARITHMETIC.md, round to nearest ties to even, subnormals kept, signed zeros and infinities
 * as IEEE-754 says, and every NaN result the canonical quiet NaN 0x7FC00000.
 *
 * It is written with integers only (BigInt, step for step like the Solidity library), never with
 * Math.fround, so the tests can hold three implementations against each other: this file, the
 * contract, and the host's hardware floats.
 *
 * Method: a finite operand is `m * 2^(e - 150)` with `m` its 24-bit significand (a subnormal has
 * e = 1 and no hidden bit). Each op builds its exact result, or a stand-in that rounds the same,
 * as an integer `m` times `2^k`, and `pack` rounds it once.
 */

/** Bits of a binary32 value, as an unsigned 32-bit integer (0 .. 2^32-1). */
export type F32Bits = number

/** The canonical quiet NaN that every NaN result is replaced by. */
export const NAN = 0x7fc00000
/** +Infinity. */
export const INF = 0x7f800000
/** The sign bit. */
export const SIGN = 0x80000000

const isNaN32 = (x: F32Bits): boolean => (x & 0x7fffffff) > INF
const isZero = (x: F32Bits): boolean => (x & 0x7fffffff) === 0
const exponentField = (x: F32Bits): number => (x >>> 23) & 0xff

/** Significand (hidden bit included) and exponent field (1 for subnormals) of a finite nonzero x. */
function unpack(x: F32Bits): { m: bigint; e: number } {
  const e = exponentField(x)
  const frac = BigInt(x & 0x7fffff)
  return e === 0 ? { m: frac, e: 1 } : { m: frac | 0x800000n, e }
}

/**
 * Rounds `m * 2^k` (m > 0) to binary32 bits with `sign` (0 or SIGN) OR-ed in.
 * Callers pass either the exact value, or an m whose lowest bit is a sticky bit standing for a
 * nonzero remainder, with at least two bits more than the rounded significand keeps.
 */
export function pack(sign: number, k: number, m: bigint): F32Bits {
  const len = m.toString(2).length
  // Keep 24 bits, or fewer where the result is subnormal (exponent pinned at 2^-149).
  const shift = Math.max(len - 24, -(k + 149))
  let q: bigint
  if (shift <= 0) {
    q = m << BigInt(-shift)
  } else {
    if (shift > len) return sign >>> 0 // below half the smallest subnormal
    const s = BigInt(shift)
    q = m >> s
    const rest = m & ((1n << s) - 1n)
    const half = 1n << (s - 1n)
    if (rest > half || (rest === half && (q & 1n) === 1n)) q += 1n
  }
  // q keeps its hidden bit, so adding it bumps the exponent field by one for normal results, and
  // a rounding carry to 2^24 moves into the next binade by itself.
  const bits = (BigInt(k + shift + 149) << 23n) + q
  if (bits >= BigInt(INF)) return (sign | INF) >>> 0
  return (sign | Number(bits)) >>> 0
}

/** a ⊕ b on binary32 bits. */
export function add(a: F32Bits, b: F32Bits): F32Bits {
  a >>>= 0
  b >>>= 0
  if (isNaN32(a) || isNaN32(b)) return NAN
  const ea0 = exponentField(a)
  const eb0 = exponentField(b)
  if (ea0 === 0xff) return eb0 === 0xff && a !== b ? NAN : a // Inf + -Inf is invalid
  if (eb0 === 0xff) return b
  if (isZero(a)) return isZero(b) ? (a & b) >>> 0 : b // +0 + -0 = +0, -0 + -0 = -0
  if (isZero(b)) return a
  let x = unpack(a)
  let y = unpack(b)
  let sign = a & SIGN
  if (x.e < y.e) {
    ;[x, y] = [y, x]
    sign = b & SIGN
  }
  // Beyond 64 binades the smaller operand only acts below the rounding position; moving it up to
  // 64 binades below keeps every rounding decision (see SoftFloat.sol) and bounds the integers.
  const d = Math.min(x.e - y.e, 64)
  const big = x.m << BigInt(d)
  let m: bigint
  if (((a ^ b) & SIGN) === 0) m = big + y.m
  else if (big >= y.m) {
    m = big - y.m
    if (m === 0n) return 0 // exact cancellation is +0 under round-to-nearest
  } else {
    m = y.m - big
    sign ^= SIGN
  }
  return pack(sign, x.e - 150 - d, m)
}

/** a ⊖ b = a ⊕ (-b) on binary32 bits. */
export function sub(a: F32Bits, b: F32Bits): F32Bits {
  return add(a, (b ^ SIGN) >>> 0)
}

/** a ⊗ b on binary32 bits. */
export function mul(a: F32Bits, b: F32Bits): F32Bits {
  a >>>= 0
  b >>>= 0
  if (isNaN32(a) || isNaN32(b)) return NAN
  const sign = (a ^ b) & SIGN
  if (exponentField(a) === 0xff || exponentField(b) === 0xff) {
    return isZero(a) || isZero(b) ? NAN : (sign | INF) >>> 0 // Inf * 0 is invalid
  }
  if (isZero(a) || isZero(b)) return sign >>> 0
  const x = unpack(a)
  const y = unpack(b)
  return pack(sign, x.e + y.e - 300, x.m * y.m)
}

/** a ⊘ b on binary32 bits. */
export function div(a: F32Bits, b: F32Bits): F32Bits {
  a >>>= 0
  b >>>= 0
  if (isNaN32(a) || isNaN32(b)) return NAN
  const sign = (a ^ b) & SIGN
  const infA = exponentField(a) === 0xff
  const infB = exponentField(b) === 0xff
  if (infA) return infB ? NAN : (sign | INF) >>> 0
  if (infB) return sign >>> 0
  if (isZero(b)) return isZero(a) ? NAN : (sign | INF) >>> 0
  if (isZero(a)) return sign >>> 0
  const x = unpack(a)
  const y = unpack(b)
  // 80 extra quotient bits; the remainder survives as a sticky bit below the rounding bit.
  const n = x.m << 80n
  const q = n / y.m
  const m = (q << 1n) | (n % y.m === 0n ? 0n : 1n)
  return pack(sign, x.e - y.e - 81, m)
}

/** floor(sqrt(n)) for n > 0, by Newton's iteration from above (exact for any size). */
export function isqrt(n: bigint): bigint {
  let x = 1n << BigInt((n.toString(2).length + 1) >> 1)
  for (;;) {
    const next = (x + n / x) >> 1n
    if (next >= x) return x
    x = next
  }
}

/** √a on binary32 bits (√-0 = -0; any other negative gives NaN). */
export function sqrt(a: F32Bits): F32Bits {
  a >>>= 0
  if (isZero(a)) return a
  if (isNaN32(a) || a & SIGN) return NAN
  if (a === INF) return a
  let { m, e } = unpack(a)
  let k = e - 150
  if (k & 1) {
    m <<= 1n
    k -= 1
  }
  const n = m << 80n
  const r = isqrt(n)
  return pack(0, k / 2 - 41, (r << 1n) | (r * r === n ? 0n : 1n))
}

/** int32 to binary32 bits, round to nearest even. */
export function i2f(n: number): F32Bits {
  n |= 0
  if (n === 0) return 0
  return n < 0 ? pack(SIGN, 0, BigInt(-n)) : pack(0, 0, BigInt(n))
}

/** IEEE binary16 bits to binary32 bits (exact; a NaN gives the canonical NaN). */
export function h2f(h: number): F32Bits {
  const sign = (h & 0x8000) << 16
  const e = (h >>> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0x1f) return m === 0 ? (sign | INF) >>> 0 : NAN
  if (e === 0) return m === 0 ? sign >>> 0 : pack(sign, -24, BigInt(m))
  return (sign | ((e + 112) << 23) | (m << 13)) >>> 0
}

// Host floats <-> bits, for tests that hold this file against the hardware: the engine's one bit cast.
export { f32ToBits as toBits, bitsToF32 as fromBits } from '../../src/engine/bytes.js'
