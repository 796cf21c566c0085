/**
 * Exact conversions between binary32 and the 16-bit float formats stored in GGUF files.
 * `h2f`/`b2f` are exact; `f2h`/`f2b` round to nearest, ties to even (as numpy/ggml do). `f2h` is
 * also the rounding of tessera-arith/2's binary16 K/V cache (docs/ARITHMETIC.md, "tessera-arith/2"):
 * subnormals kept, overflow to ±Inf, and every NaN becomes the quiet NaN `sign | 0x7E00` (its
 * payload dropped), the rule the WASM and native twins follow too.
 */
import { bitsToF32, f32ToBits } from '../bytes.js'

/** IEEE binary16 bits to binary32 value (exact). */
export function h2f(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const man = h & 0x3ff
  if (exp === 0) return sign * man * 2 ** -24 // zero or subnormal: exact in binary32
  if (exp === 31) return man ? NaN : sign * Infinity
  return sign * (1024 + man) * 2 ** (exp - 25)
}

/** bfloat16 bits to binary32 value (exact: the high half of the binary32 bits). */
export function b2f(b: number): number {
  return bitsToF32((b & 0xffff) << 16)
}

/** binary32 value to IEEE binary16 bits, round to nearest even. */
export function f2h(x: number): number {
  const bits = f32ToBits(x)
  const sign = (bits >>> 16) & 0x8000
  const exp = (bits >>> 23) & 0xff
  let man = bits & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 31) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    man |= 0x800000
    const shift = 14 - e
    const half = 1 << (shift - 1)
    const rest = man & ((1 << shift) - 1)
    let h = man >>> shift
    if (rest > half || (rest === half && h & 1)) h++
    return sign | h
  }
  const rest = man & 0x1fff
  let h = (e << 10) | (man >>> 13)
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++ // may carry into the exponent: still right
  return sign | h
}

/** binary32 value to bfloat16 bits, round to nearest even (NaN stays NaN). */
export function f2b(x: number): number {
  const bits = f32ToBits(x)
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff
}
