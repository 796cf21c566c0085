// IEEE binary16 <-> binary32 in WASM, which has no conversion instruction: integer ops that give
// exactly src/engine/math/half.ts's `h2f` and `f2h` (shared by kernels.ts and layer.ts).

// Four IEEE binary16 values (zero-extended in i32 lanes) to binary32, exactly: the exponent and
// mantissa shifted into place and scaled by 2^112 (exact for normals and subnormals), with the
// all-ones exponent (inf/NaN) mapped directly and the sign or-ed back.
@inline export function h2f4(h: v128): v128 {
  const em = v128.and(h, i32x4.splat(0x7fff))
  const sh = i32x4.shl(em, 13)
  const fin = f32x4.mul(sh, i32x4.splat(0x77800000))
  const inf = v128.or(sh, i32x4.splat(0x70000000))
  const r = v128.bitselect(inf, fin, i32x4.ge_s(em, i32x4.splat(0x7c00)))
  return v128.or(r, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16))
}

// One binary16 value to binary32, exactly (h2f4 on one lane).
@inline export function h2f(h: u32): f32 {
  const em = h & 0x7fff
  const sh = em << 13
  const r = em >= 0x7c00 ? reinterpret<f32>(sh | 0x70000000) : reinterpret<f32>(sh) * reinterpret<f32>(0x77800000)
  return reinterpret<f32>(reinterpret<u32>(r) | ((h & 0x8000) << 16))
}

// binary32 to binary16 bits, round to nearest even, subnormals kept, overflow to ±Inf, every NaN
// to `sign | 0x7E00`: half.ts `f2h` line by line.
@inline export function f2h(x: f32): u32 {
  const bits = reinterpret<u32>(x)
  const sign = (bits >>> 16) & 0x8000
  const exp = <i32>((bits >>> 23) & 0xff)
  let man = bits & 0x7fffff
  if (exp == 0xff) return sign | 0x7c00 | (man != 0 ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 31) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    man |= 0x800000
    const shift = <u32>(14 - e)
    const half = <u32>1 << (shift - 1)
    const rest = man & ((<u32>1 << shift) - 1)
    let h = man >>> shift
    if (rest > half || (rest == half && (h & 1) != 0)) h++
    return sign | h
  }
  const rest = man & 0x1fff
  let h = (<u32>e << 10) | (man >>> 13)
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1) != 0)) h++ // may carry into the exponent: still right
  return sign | h
}
