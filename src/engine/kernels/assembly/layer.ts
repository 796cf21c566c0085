// WASM SIMD twins of the non-matmul forward-pass ops (../layerOps.ts `referenceLayerOps`, which is
// docs/ARITHMETIC.md written out): RMSNorm, causal attention, SILU(gate) ⊗ up, adds. Compiled by
// scripts/build/10-wasm.mjs to build/layer.wasm and driven by src/runtime/wasmLayerOps.ts.
//
// Bit-identity rules: every binary32 step is one f32 or f32x4 instruction in the spec's order (no
// FMA: WASM has none outside relaxed SIMD, which the build does not enable); the only library
// functions are sqrt, floor (exact IEEE operations). SUM8 and DOT8 put element i in lane i mod 8:
// lanes 0-3 in one f32x4 and 4-7 in another, so the fold (l, l+4) is one f32x4.add and the rest is
// (s0 + s2) + (s1 + s3). Vectorizing an elementwise op or the attention's V sum over d changes
// nothing: each lane computes one output with the scalar steps.
//
// All pointers are byte addresses of f32 arrays in the (imported, shared) memory, except the K/V
// caches of tessera-arith/2, which hold binary16 bits (u16) widened exactly on every read.

import { f2h, h2f, h2f4 } from './half'

// ---- K/V cache elements: T = f32 (tessera-arith/1) or u16 binary16 bits (tessera-arith/2) ----
// Four consecutive cache values at p as f32x4.
@inline function loadKv4<T>(p: usize): v128 {
  if (sizeof<T>() == 2) return h2f4(v128.load16x4_u(p))
  return v128.load(p)
}

// One cache value at p as f32.
@inline function loadKv<T>(p: usize): f32 {
  if (sizeof<T>() == 2) return h2f(<u32>load<u16>(p))
  return load<f32>(p)
}

/** dst[i] = f2h(src[i]) for i < n: a binary16 cache's new rows (half.ts `f2h`). */
export function to_half(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<u16>(dst + (<usize>i << 1), <u16>f2h(load<f32>(src + (<usize>i << 2))))
}

/** out[i] = h2f(h[i]) for i < n, 4 lanes at a time then scalar (for the tests against half.ts). */
export function from_half(out: usize, h: usize, n: i32): void {
  let i = 0
  for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), loadKv4<u16>(h + (<usize>i << 1)))
  for (; i < n; i++) store<f32>(out + (<usize>i << 2), loadKv<u16>(h + (<usize>i << 1)))
}

// ---- EXP (canonical.ts `exp`, line by line; constants as their binary32 bits) ----
const LOG2E = reinterpret<f32>(0x3fb8aa3b)
const LN2_HI = reinterpret<f32>(0x3f318000)
const LN2_LO = reinterpret<f32>(0xb95e8083)
const EXP_MAX = reinterpret<f32>(0x42b17218)
const EXP_MIN = reinterpret<f32>(0xc2aeac4f)
const E0 = reinterpret<f32>(0x39506967)
const E1 = reinterpret<f32>(0x3ab743ce)
const E2 = reinterpret<f32>(0x3c088908)
const E3 = reinterpret<f32>(0x3d2aa9c1)
const E4 = reinterpret<f32>(0x3e2aaaaa)
const E5 = reinterpret<f32>(0x3f000000)

// 2^k from its bits, -126 <= k <= 127 (k = -127 gives +0, as in canonical.ts).
@inline function pow2(k: i32): f32 {
  return reinterpret<f32>((k + 127) << 23)
}

@inline function expf(x: f32): f32 {
  if (x != x) return NaN
  if (x >= EXP_MAX) return Infinity
  if (x <= EXP_MIN) return 0
  const kf = floor<f32>(x * LOG2E + <f32>0.5)
  const k = <i32>kf
  const r = (x - kf * LN2_HI) - kf * LN2_LO
  let p = E0 * r + E1
  p = p * r + E2
  p = p * r + E3
  p = p * r + E4
  p = p * r + E5
  p = (p * (r * r) + r) + <f32>1
  return k <= 127 ? p * pow2(k) : (p * pow2(127)) * <f32>2
}

// EXP of four lanes at once, each lane exactly `expf`: the general path runs on every lane and
// the NaN / clamp results are selected afterwards; k = 128 (x just below EXP_MAX) takes k = 127
// and the extra ⊗ 2, as in expf.
@inline function expf4(x: v128): v128 {
  const kf = f32x4.floor(f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E)), f32x4.splat(0.5)))
  const k = i32x4.trunc_sat_f32x4_s(kf)
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(kf, f32x4.splat(LN2_HI))), f32x4.mul(kf, f32x4.splat(LN2_LO)))
  let p = f32x4.add(f32x4.mul(f32x4.splat(E0), r), f32x4.splat(E1))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(E2))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(E3))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(E4))
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(E5))
  p = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1))
  const big = i32x4.gt_s(k, i32x4.splat(127))
  const k1 = v128.bitselect(i32x4.splat(127), k, big)
  let y = f32x4.mul(p, i32x4.shl(i32x4.add(k1, i32x4.splat(127)), 23))
  y = v128.bitselect(f32x4.mul(y, f32x4.splat(2)), y, big)
  y = v128.bitselect(f32x4.splat(0), y, f32x4.le(x, f32x4.splat(EXP_MIN)))
  y = v128.bitselect(f32x4.splat(Infinity), y, f32x4.ge(x, f32x4.splat(EXP_MAX)))
  return v128.bitselect(f32x4.splat(NaN), y, f32x4.ne(x, x))
}

// SILU(x) = x ⊘ (1 ⊕ EXP(0 ⊖ x))
@inline function siluf(x: f32): f32 {
  return x / (<f32>1 + expf(<f32>0 - x))
}

@inline function silu4(x: v128): v128 {
  return f32x4.div(x, f32x4.add(f32x4.splat(1), expf4(f32x4.sub(f32x4.splat(0), x))))
}

/** out[i] = EXP(x[i]) for i < n, 4 lanes at a time then scalar (for the tests against canonical.ts). */
export function exp_many(out: usize, x: usize, n: i32): void {
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    v128.store(out + o, expf4(v128.load(x + o)))
  }
  for (; i < n; i++) {
    const o = <usize>i << 2
    store<f32>(out + o, expf(load<f32>(x + o)))
  }
}

// ---- SUM8 / DOT8 ----
// The end of SUM8: lanes lo = (a0..a3), hi = (a4..a7); ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).
@inline function fold(lo: v128, hi: v128): f32 {
  const s = f32x4.add(lo, hi)
  return (f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 2)) + (f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 3))
}

// SUM8 over x[0 .. n).
@inline function sum8(x: usize, n: i32): f32 {
  let lo = f32x4.splat(0), hi = f32x4.splat(0)
  let i = 0
  for (; i + 8 <= n; i += 8) {
    const p = x + (<usize>i << 2)
    lo = f32x4.add(lo, v128.load(p))
    hi = f32x4.add(hi, v128.load(p + 16))
  }
  return finish<f32>(lo, hi, x, 0, i, n, false)
}

// DOT8 over a[0 .. n) (f32) and b[0 .. n) (f32, or a binary16 cache row when T is u16).
@inline function dot8<T>(a: usize, b: usize, n: i32): f32 {
  let lo = f32x4.splat(0), hi = f32x4.splat(0)
  let i = 0
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2
    const ob = <usize>i * sizeof<T>()
    lo = f32x4.add(lo, f32x4.mul(v128.load(a + o), loadKv4<T>(b + ob)))
    hi = f32x4.add(hi, f32x4.mul(v128.load(a + o + 16), loadKv4<T>(b + ob + 4 * sizeof<T>())))
  }
  return finish<T>(lo, hi, a, b, i, n, true)
}

// The SUM8 tail: elements i .. n-1 (fewer than 8) go to lanes 0, 1, ... in order, then the fold.
function finish<T>(lo: v128, hi: v128, a: usize, b: usize, i: i32, n: i32, prod: bool): f32 {
  if (i >= n) return fold(lo, hi)
  let a0 = f32x4.extract_lane(lo, 0), a1 = f32x4.extract_lane(lo, 1), a2 = f32x4.extract_lane(lo, 2), a3 = f32x4.extract_lane(lo, 3)
  let a4 = f32x4.extract_lane(hi, 0), a5 = f32x4.extract_lane(hi, 1), a6 = f32x4.extract_lane(hi, 2)
  const a7 = f32x4.extract_lane(hi, 3)
  if (i < n) { a0 = a0 + term<T>(a, b, i, prod); i++ }
  if (i < n) { a1 = a1 + term<T>(a, b, i, prod); i++ }
  if (i < n) { a2 = a2 + term<T>(a, b, i, prod); i++ }
  if (i < n) { a3 = a3 + term<T>(a, b, i, prod); i++ }
  if (i < n) { a4 = a4 + term<T>(a, b, i, prod); i++ }
  if (i < n) { a5 = a5 + term<T>(a, b, i, prod); i++ }
  if (i < n) { a6 = a6 + term<T>(a, b, i, prod); i++ }
  return ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}

@inline function term<T>(a: usize, b: usize, i: i32, prod: bool): f32 {
  const o = <usize>i << 2
  return prod ? load<f32>(a + o) * loadKv<T>(b + <usize>i * sizeof<T>()) : load<f32>(a + o)
}

// DOT8(q, k_j) ⊗ scale for the four keys k, k + stride, k + 2·stride, k + 3·stride (n a
// multiple of 8): four independent SUM8s, then the four folds at once on the transposed sums.
@inline function scores4<T>(q: usize, k: usize, stride: usize, n: i32, scale: v128): v128 {
  let l0 = f32x4.splat(0), h0 = f32x4.splat(0), l1 = f32x4.splat(0), h1 = f32x4.splat(0)
  let l2 = f32x4.splat(0), h2 = f32x4.splat(0), l3 = f32x4.splat(0), h3 = f32x4.splat(0)
  const k1 = k + stride, k2 = k1 + stride, k3 = k2 + stride
  const E = sizeof<T>()
  for (let i = 0; i < n; i += 8) {
    const o = <usize>i << 2
    const ok = <usize>i * E, ok4 = ok + 4 * E
    const qa = v128.load(q + o), qb = v128.load(q + o + 16)
    l0 = f32x4.add(l0, f32x4.mul(qa, loadKv4<T>(k + ok))); h0 = f32x4.add(h0, f32x4.mul(qb, loadKv4<T>(k + ok4)))
    l1 = f32x4.add(l1, f32x4.mul(qa, loadKv4<T>(k1 + ok))); h1 = f32x4.add(h1, f32x4.mul(qb, loadKv4<T>(k1 + ok4)))
    l2 = f32x4.add(l2, f32x4.mul(qa, loadKv4<T>(k2 + ok))); h2 = f32x4.add(h2, f32x4.mul(qb, loadKv4<T>(k2 + ok4)))
    l3 = f32x4.add(l3, f32x4.mul(qa, loadKv4<T>(k3 + ok))); h3 = f32x4.add(h3, f32x4.mul(qb, loadKv4<T>(k3 + ok4)))
  }
  // S_j = (a0+a4, a1+a5, a2+a6, a3+a7) of key j; transpose so lane j of A_l is S_j[l]
  const s0 = f32x4.add(l0, h0), s1 = f32x4.add(l1, h1), s2 = f32x4.add(l2, h2), s3 = f32x4.add(l3, h3)
  const t0 = i32x4.shuffle(s0, s1, 0, 4, 1, 5), t1 = i32x4.shuffle(s2, s3, 0, 4, 1, 5)
  const t2 = i32x4.shuffle(s0, s1, 2, 6, 3, 7), t3 = i32x4.shuffle(s2, s3, 2, 6, 3, 7)
  const a0 = i32x4.shuffle(t0, t1, 0, 1, 4, 5), a1 = i32x4.shuffle(t0, t1, 2, 3, 6, 7)
  const a2 = i32x4.shuffle(t2, t3, 0, 1, 4, 5), a3 = i32x4.shuffle(t2, t3, 2, 3, 6, 7)
  return f32x4.mul(f32x4.add(f32x4.add(a0, a2), f32x4.add(a1, a3)), scale)
}

// ---- RMSNorm: ss = DOT8(x, x); s = 1 ⊘ √((ss ⊘ n) ⊕ eps); y = (x ⊗ s) ⊗ w ----
export function rmsnorm(out: usize, x: usize, w: usize, nTok: i32, dim: i32, eps: f32): void {
  for (let t = 0; t < nTok; t++) {
    const xo = x + (<usize>(t * dim) << 2)
    const oo = out + (<usize>(t * dim) << 2)
    const ss = dot8<f32>(xo, xo, dim)
    const s = <f32>1 / sqrt<f32>(ss / <f32>dim + eps)
    const sv = f32x4.splat(s)
    let i = 0
    for (; i + 4 <= dim; i += 4) {
      const o = <usize>i << 2
      v128.store(oo + o, f32x4.mul(f32x4.mul(v128.load(xo + o), sv), v128.load(w + o)))
    }
    for (; i < dim; i++) {
      const o = <usize>i << 2
      store<f32>(oo + o, (load<f32>(xo + o) * s) * load<f32>(w + o))
    }
  }
}

// ---- gate[i] = SILU(gate[i]) ⊗ up[i] ----
export function silu_mul(gate: usize, up: usize, n: i32): void {
  let i = 0
  // 16 values per pass: four independent EXP chains in flight (each ~25 dependent vector ops and
  // a divide) run ~1.9x faster per value than one (3.1 -> 1.6 ns on 1,536 values); same bits
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2
    const a = silu4(v128.load(gate + o))
    const b = silu4(v128.load(gate + o + 16))
    const c = silu4(v128.load(gate + o + 32))
    const d = silu4(v128.load(gate + o + 48))
    v128.store(gate + o, f32x4.mul(a, v128.load(up + o)))
    v128.store(gate + o + 16, f32x4.mul(b, v128.load(up + o + 16)))
    v128.store(gate + o + 32, f32x4.mul(c, v128.load(up + o + 32)))
    v128.store(gate + o + 48, f32x4.mul(d, v128.load(up + o + 48)))
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    v128.store(gate + o, f32x4.mul(silu4(v128.load(gate + o)), v128.load(up + o)))
  }
  for (; i < n; i++) {
    const o = <usize>i << 2
    store<f32>(gate + o, siluf(load<f32>(gate + o)) * load<f32>(up + o))
  }
}

// ---- x[i] = x[i] ⊕ y[i] ----
export function add(x: usize, y: usize, n: i32): void {
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2
    v128.store(x + o, f32x4.add(v128.load(x + o), v128.load(y + o)))
  }
  for (; i < n; i++) {
    const o = <usize>i << 2
    store<f32>(x + o, load<f32>(x + o) + load<f32>(y + o))
  }
}

// ---- Causal attention ----
// out (T, nh*hd), q (T, nh*hd), kc/vc (ctx, nkv*hd): f32, or binary16 bits when `half` is non-zero
// (tessera-arith/2: every value read is h2f of the cache's), scores: scratch of start+T f32.
// Only query heads h0 <= h < h1 are computed, so threads can split the heads between them (each
// head's result depends on nothing but its own q, K and V: the split cannot change a bit).
// Per token t (position start+t) and head h over u <= start+t:
//   s_u = DOT8(q_h, k_u) ⊗ scale, m = max s_u (first maximum, `s > m`), e_u = EXP(s_u ⊖ m),
//   inv = 1 ⊘ SUM8(e), o_d = (Σ_u e_u ⊗ v_u[d], sequential in u from +0) ⊗ inv.
export function attention(out: usize, q: usize, kc: usize, vc: usize, scores: usize, start: i32, nTok: i32, nh: i32, nkv: i32, hd: i32, h0: i32, h1: i32, half: i32): void {
  if (half != 0) attend<u16>(out, q, kc, vc, scores, start, nTok, nh, nkv, hd, h0, h1)
  else attend<f32>(out, q, kc, vc, scores, start, nTok, nh, nkv, hd, h0, h1)
}

function attend<T>(out: usize, q: usize, kc: usize, vc: usize, scores: usize, start: i32, nTok: i32, nh: i32, nkv: i32, hd: i32, h0: i32, h1: i32): void {
  const E = sizeof<T>()
  const kvDim = nkv * hd
  const group = nh / nkv
  const scale = <f32>1 / sqrt<f32>(<f32>hd)
  const scalev = f32x4.splat(scale)
  const rowBytes = <usize>kvDim * E
  for (let t = 0; t < nTok; t++) {
    const n = start + t + 1
    for (let h = h0; h < h1; h++) {
      const qo = q + (<usize>((t * nh + h) * hd) << 2)
      const ko = <usize>((h / group) * hd) * E
      let m: f32 = -Infinity
      let k = kc + ko
      let u = 0
      if ((hd & 7) == 0) {
        for (; u + 4 <= n; u += 4, k += rowBytes << 2) {
          const s4 = scores4<T>(qo, k, rowBytes, hd, scalev)
          v128.store(scores + (<usize>u << 2), s4)
        }
      }
      for (; u < n; u++, k += rowBytes) store<f32>(scores + (<usize>u << 2), dot8<T>(qo, k, hd) * scale)
      // the first maximum in u order, exactly as `if (s > m) m = s`
      for (u = 0; u < n; u++) {
        const s = load<f32>(scores + (<usize>u << 2))
        if (s > m) m = s
      }
      const mv = f32x4.splat(m)
      for (u = 0; u + 4 <= n; u += 4) {
        const p = scores + (<usize>u << 2)
        v128.store(p, expf4(f32x4.sub(v128.load(p), mv)))
      }
      for (; u < n; u++) {
        const p = scores + (<usize>u << 2)
        store<f32>(p, expf(load<f32>(p) - m))
      }
      const inv = <f32>1 / sum8(scores, n)
      const invv = f32x4.splat(inv)
      const oo = out + (<usize>((t * nh + h) * hd) << 2)
      const v0 = vc + ko
      let d = 0
      // 32 outputs at a time in eight f32x4 accumulators, u sequential
      for (; d + 32 <= hd; d += 32) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0)
        let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0)
        let v = v0 + <usize>d * E
        for (let u = 0; u < n; u++, v += rowBytes) {
          const e = v128.load32_splat(scores + (<usize>u << 2))
          a0 = f32x4.add(a0, f32x4.mul(e, loadKv4<T>(v)))
          a1 = f32x4.add(a1, f32x4.mul(e, loadKv4<T>(v + 4 * E)))
          a2 = f32x4.add(a2, f32x4.mul(e, loadKv4<T>(v + 8 * E)))
          a3 = f32x4.add(a3, f32x4.mul(e, loadKv4<T>(v + 12 * E)))
          a4 = f32x4.add(a4, f32x4.mul(e, loadKv4<T>(v + 16 * E)))
          a5 = f32x4.add(a5, f32x4.mul(e, loadKv4<T>(v + 20 * E)))
          a6 = f32x4.add(a6, f32x4.mul(e, loadKv4<T>(v + 24 * E)))
          a7 = f32x4.add(a7, f32x4.mul(e, loadKv4<T>(v + 28 * E)))
        }
        const o = oo + (<usize>d << 2)
        v128.store(o, f32x4.mul(a0, invv))
        v128.store(o + 16, f32x4.mul(a1, invv))
        v128.store(o + 32, f32x4.mul(a2, invv))
        v128.store(o + 48, f32x4.mul(a3, invv))
        v128.store(o + 64, f32x4.mul(a4, invv))
        v128.store(o + 80, f32x4.mul(a5, invv))
        v128.store(o + 96, f32x4.mul(a6, invv))
        v128.store(o + 112, f32x4.mul(a7, invv))
      }
      for (; d + 16 <= hd; d += 16) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0)
        let v = v0 + <usize>d * E
        for (let u = 0; u < n; u++, v += rowBytes) {
          const e = v128.load32_splat(scores + (<usize>u << 2))
          a0 = f32x4.add(a0, f32x4.mul(e, loadKv4<T>(v)))
          a1 = f32x4.add(a1, f32x4.mul(e, loadKv4<T>(v + 4 * E)))
          a2 = f32x4.add(a2, f32x4.mul(e, loadKv4<T>(v + 8 * E)))
          a3 = f32x4.add(a3, f32x4.mul(e, loadKv4<T>(v + 12 * E)))
        }
        const o = oo + (<usize>d << 2)
        v128.store(o, f32x4.mul(a0, invv))
        v128.store(o + 16, f32x4.mul(a1, invv))
        v128.store(o + 32, f32x4.mul(a2, invv))
        v128.store(o + 48, f32x4.mul(a3, invv))
      }
      for (; d + 4 <= hd; d += 4) {
        let a0 = f32x4.splat(0)
        let v = v0 + <usize>d * E
        for (let u = 0; u < n; u++, v += rowBytes) {
          a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(scores + (<usize>u << 2)), loadKv4<T>(v)))
        }
        v128.store(oo + (<usize>d << 2), f32x4.mul(a0, invv))
      }
      for (; d < hd; d++) {
        let a: f32 = 0
        let v = v0 + <usize>d * E
        for (let u = 0; u < n; u++, v += rowBytes) a = a + load<f32>(scores + (<usize>u << 2)) * loadKv<T>(v)
        store<f32>(oo + (<usize>d << 2), a * inv)
      }
    }
  }
}
