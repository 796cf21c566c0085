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
// All pointers are byte addresses of f32 arrays in the (imported, shared) memory.

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

// SILU(x) = x ⊘ (1 ⊕ EXP(0 ⊖ x))
@inline function siluf(x: f32): f32 {
  return x / (<f32>1 + expf(<f32>0 - x))
}

/** out[i] = EXP(x[i]) for i < n (for the tests against canonical.ts). */
export function exp_many(out: usize, x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
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
  return finish(lo, hi, x, 0, i, n, false)
}

// DOT8 over a[0 .. n), b[0 .. n).
@inline function dot8(a: usize, b: usize, n: i32): f32 {
  let lo = f32x4.splat(0), hi = f32x4.splat(0)
  let i = 0
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2
    lo = f32x4.add(lo, f32x4.mul(v128.load(a + o), v128.load(b + o)))
    hi = f32x4.add(hi, f32x4.mul(v128.load(a + o + 16), v128.load(b + o + 16)))
  }
  return finish(lo, hi, a, b, i, n, true)
}

// The SUM8 tail: elements i .. n-1 (fewer than 8) go to lanes 0, 1, ... in order, then the fold.
function finish(lo: v128, hi: v128, a: usize, b: usize, i: i32, n: i32, prod: bool): f32 {
  if (i >= n) return fold(lo, hi)
  let a0 = f32x4.extract_lane(lo, 0), a1 = f32x4.extract_lane(lo, 1), a2 = f32x4.extract_lane(lo, 2), a3 = f32x4.extract_lane(lo, 3)
  let a4 = f32x4.extract_lane(hi, 0), a5 = f32x4.extract_lane(hi, 1), a6 = f32x4.extract_lane(hi, 2)
  const a7 = f32x4.extract_lane(hi, 3)
  if (i < n) { a0 = a0 + term(a, b, i, prod); i++ }
  if (i < n) { a1 = a1 + term(a, b, i, prod); i++ }
  if (i < n) { a2 = a2 + term(a, b, i, prod); i++ }
  if (i < n) { a3 = a3 + term(a, b, i, prod); i++ }
  if (i < n) { a4 = a4 + term(a, b, i, prod); i++ }
  if (i < n) { a5 = a5 + term(a, b, i, prod); i++ }
  if (i < n) { a6 = a6 + term(a, b, i, prod); i++ }
  return ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}

@inline function term(a: usize, b: usize, i: i32, prod: bool): f32 {
  const o = <usize>i << 2
  return prod ? load<f32>(a + o) * load<f32>(b + o) : load<f32>(a + o)
}

// ---- RMSNorm: ss = DOT8(x, x); s = 1 ⊘ √((ss ⊘ n) ⊕ eps); y = (x ⊗ s) ⊗ w ----
export function rmsnorm(out: usize, x: usize, w: usize, nTok: i32, dim: i32, eps: f32): void {
  for (let t = 0; t < nTok; t++) {
    const xo = x + (<usize>(t * dim) << 2)
    const oo = out + (<usize>(t * dim) << 2)
    const ss = dot8(xo, xo, dim)
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
  for (let i = 0; i < n; i++) {
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
// out (T, nh*hd), q (T, nh*hd), kc/vc (ctx, nkv*hd), scores: scratch of start+T f32.
// Per token t (position start+t) and head h over u <= start+t:
//   s_u = DOT8(q_h, k_u) ⊗ scale, m = max s_u (first maximum, `s > m`), e_u = EXP(s_u ⊖ m),
//   inv = 1 ⊘ SUM8(e), o_d = (Σ_u e_u ⊗ v_u[d], sequential in u from +0) ⊗ inv.
export function attention(out: usize, q: usize, kc: usize, vc: usize, scores: usize, start: i32, nTok: i32, nh: i32, nkv: i32, hd: i32): void {
  const kvDim = nkv * hd
  const group = nh / nkv
  const scale = <f32>1 / sqrt<f32>(<f32>hd)
  const rowBytes = <usize>kvDim << 2
  for (let t = 0; t < nTok; t++) {
    const n = start + t + 1
    for (let h = 0; h < nh; h++) {
      const qo = q + (<usize>((t * nh + h) * hd) << 2)
      const ko = <usize>((h / group) * hd) << 2
      let m: f32 = -Infinity
      let k = kc + ko
      for (let u = 0; u < n; u++, k += rowBytes) {
        const s = dot8(qo, k, hd) * scale
        store<f32>(scores + (<usize>u << 2), s)
        if (s > m) m = s
      }
      for (let u = 0; u < n; u++) {
        const p = scores + (<usize>u << 2)
        store<f32>(p, expf(load<f32>(p) - m))
      }
      const inv = <f32>1 / sum8(scores, n)
      const invv = f32x4.splat(inv)
      const oo = out + (<usize>((t * nh + h) * hd) << 2)
      const v0 = vc + ko
      let d = 0
      // 16 outputs at a time in four f32x4 accumulators, u sequential
      for (; d + 16 <= hd; d += 16) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0)
        let v = v0 + (<usize>d << 2)
        for (let u = 0; u < n; u++, v += rowBytes) {
          const e = v128.load32_splat(scores + (<usize>u << 2))
          a0 = f32x4.add(a0, f32x4.mul(e, v128.load(v)))
          a1 = f32x4.add(a1, f32x4.mul(e, v128.load(v + 16)))
          a2 = f32x4.add(a2, f32x4.mul(e, v128.load(v + 32)))
          a3 = f32x4.add(a3, f32x4.mul(e, v128.load(v + 48)))
        }
        const o = oo + (<usize>d << 2)
        v128.store(o, f32x4.mul(a0, invv))
        v128.store(o + 16, f32x4.mul(a1, invv))
        v128.store(o + 32, f32x4.mul(a2, invv))
        v128.store(o + 48, f32x4.mul(a3, invv))
      }
      for (; d + 4 <= hd; d += 4) {
        let a0 = f32x4.splat(0)
        let v = v0 + (<usize>d << 2)
        for (let u = 0; u < n; u++, v += rowBytes) {
          a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(scores + (<usize>u << 2)), v128.load(v)))
        }
        v128.store(oo + (<usize>d << 2), f32x4.mul(a0, invv))
      }
      for (; d < hd; d++) {
        let a: f32 = 0
        let v = v0 + (<usize>d << 2)
        for (let u = 0; u < n; u++, v += rowBytes) a = a + load<f32>(scores + (<usize>u << 2)) * load<f32>(v)
        store<f32>(oo + (<usize>d << 2), a * inv)
      }
    }
  }
}
