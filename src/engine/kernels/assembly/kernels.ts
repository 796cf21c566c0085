// WASM SIMD kernels of docs/ARITHMETIC.md (AssemblyScript, compiled by scripts/build/10-wasm.mjs).
// Bit-identical to ../reference.ts: every f32 step is one f32/f32x4 instruction in the spec's order
// (no FMA, no relaxed SIMD); integer sums are exact, so their order is free.
//
// Memory layout (docs/KERNELS.md): weights are packed in groups of 4 rows ("row groups"). A group
// stores its rows block by block; within a block the GGUF fields are interleaved across the 4 rows
// (all 4 f16 scales, then 4 x the quant bytes, ...; Q8_0's quants by column pairs, see below), so
// a group block has the same size as 4 GGUF blocks. Float types use "blocks" of 8 values (one SUM8 round). Outputs are computed 4 rows at a
// time with one f32x4 per SUM8 lane (lane = row): acc[b mod 8] += term_b.
//
// Quantized activations of one token: i16 q[cols], f32 d[cols/B], i16 bsum[cols/32] (sum of q over
// each 32 values, for the Q4_K mins), the whole record padded to 16 bytes.

import { h2f4 } from './half'

// SUM8's 8 lane accumulators, one f32x4 each (lane = row of the group), for up to 8 tokens
// processed together (token k's at ACC + 128·k). Each memory (thread) has its own.
const ACC: usize = memory.data(1024, 16)

@inline function zeroAcc(acc: usize = ACC): void {
  const z = f32x4.splat(0)
  for (let i: usize = 0; i < 8; i++) v128.store(acc + (i << 4), z)
}

@inline function addAcc(b: i32, term: v128, acc: usize = ACC): void {
  const p = acc + ((<usize>(b & 7)) << 4)
  v128.store(p, f32x4.add(v128.load(p), term))
}

// SUM8 fold of the accumulators: ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)), lane-wise.
@inline function foldAcc(acc: usize = ACC): v128 {
  const s0 = f32x4.add(v128.load(acc), v128.load(acc + 64))
  const s1 = f32x4.add(v128.load(acc + 16), v128.load(acc + 80))
  const s2 = f32x4.add(v128.load(acc + 32), v128.load(acc + 96))
  const s3 = f32x4.add(v128.load(acc + 48), v128.load(acc + 112))
  return f32x4.add(f32x4.add(s0, s2), f32x4.add(s1, s3))
}

// The 4 f16 scales of a group block at p (4 consecutive u16) as f32x4.
@inline function scales4(p: usize): v128 {
  return h2f4(i32x4.extend_low_i16x8_u(v128.load64_zero(p)))
}

// [sum(p0), sum(p1), sum(p2), sum(p3)] of four i32x4 (exact integers: any order).
@inline function hsum4(p0: v128, p1: v128, p2: v128, p3: v128): v128 {
  const a = i32x4.add(i32x4.shuffle(p0, p1, 0, 1, 4, 5), i32x4.shuffle(p0, p1, 2, 3, 6, 7))
  const b = i32x4.add(i32x4.shuffle(p2, p3, 0, 1, 4, 5), i32x4.shuffle(p2, p3, 2, 3, 6, 7))
  return i32x4.add(i32x4.shuffle(a, b, 0, 2, 4, 6), i32x4.shuffle(a, b, 1, 3, 5, 7))
}

// Σ over 16 int8 weights (q) times 16 i16 activations at a: partial sums in 4 i32 lanes.
@inline function dot16s(q: v128, a: usize): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q), v128.load(a)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q), v128.load(a + 16)))
}

// ---- Q8_0: group block = [4 x f16 d][16 column pairs x 4 rows x 2 int8] (136 bytes) ----
// Byte 8 + 8·kp + 2·r + i holds row r's weight 2·kp + i, so the 16-byte vector j (at 8 + 16·j)
// holds columns 4j..4j+3 of the 4 rows. Sign-extended, its low half is
// [r0[c], r0[c+1], r1[c], r1[c+1], .., r3[c+1]] for c = 4j (high half: c = 4j + 2), and
// i32x4.dot_i16x8_s with the activation pair (q[c], q[c+1]) splat as one i32 gives
// r[c]·q[c] + r[c+1]·q[c+1] in lane r: the lanes are the 4 rows, no horizontal sum needed.
// The block's integer sums are the same integers in any order, so terms are bit-identical.

// Σ over columns c..c+3 (pairs at a and a + 4) of the 4 rows' weights (lo, hi) times the activations.
@inline function pairs2(lo: v128, hi: v128, a: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(lo, v128.load32_splat(a)), i32x4.dot_i16x8_s(hi, v128.load32_splat(a + 4)))
}

// The 4 rows' integer sums of one group block (one token): lane r = Σ_i w_r[i]·q[i].
@inline function sumQ8_0(w: usize, a: usize): v128 {
  let s = pairs2(v128.load8x8_s(w + 8), v128.load8x8_s(w + 16), a)
  for (let j: usize = 8; j < 64; j += 8) s = i32x4.add(s, pairs2(v128.load8x8_s(w + 8 + (j << 1)), v128.load8x8_s(w + 16 + (j << 1)), a + j))
  return s
}

@inline function termQ8_0(w: usize, a: usize, da: f32): v128 {
  return f32x4.mul(f32x4.mul(scales4(w), f32x4.splat(da)), f32x4.convert_i32x4_s(sumQ8_0(w, a)))
}

// One group block for 4 tokens (token k's activations at a_k, its scale at a_k + dOff), adding
// each token's term to its own SUM8 accumulators (ACC + 128·k): each weight vector is loaded and
// sign-extended once and used for all 4 tokens, whose sums stay in registers. Kept a loop on
// purpose: fully unrolled, Binaryen sinks each token's sum into one expression tree, which keeps
// all 16 extended vectors live at once and V8 spills them (measured 30-40% slower). 8 tokens at a
// time measured slower too (x64 has 16 xmm registers).
@inline function blockQ8_0x4(b: i32, w: usize, a0: usize, a1: usize, a2: usize, a3: usize, dOff: usize): void {
  let s0 = i32x4.splat(0); let s1 = i32x4.splat(0); let s2 = i32x4.splat(0); let s3 = i32x4.splat(0)
  for (let j: usize = 0; j < 64; j += 8) {
    const wj = w + 8 + (j << 1)
    const lo0 = v128.load8x8_s(wj + 0), hi0 = v128.load8x8_s(wj + 8)
    s0 = i32x4.add(s0, pairs2(lo0, hi0, a0 + j))
    s1 = i32x4.add(s1, pairs2(lo0, hi0, a1 + j))
    s2 = i32x4.add(s2, pairs2(lo0, hi0, a2 + j))
    s3 = i32x4.add(s3, pairs2(lo0, hi0, a3 + j))
  }
  const d = scales4(w)
  addAcc(b, f32x4.mul(f32x4.mul(d, f32x4.splat(load<f32>(a0 + dOff))), f32x4.convert_i32x4_s(s0)), ACC + 0)
  addAcc(b, f32x4.mul(f32x4.mul(d, f32x4.splat(load<f32>(a1 + dOff))), f32x4.convert_i32x4_s(s1)), ACC + 128)
  addAcc(b, f32x4.mul(f32x4.mul(d, f32x4.splat(load<f32>(a2 + dOff))), f32x4.convert_i32x4_s(s2)), ACC + 256)
  addAcc(b, f32x4.mul(f32x4.mul(d, f32x4.splat(load<f32>(a3 + dOff))), f32x4.convert_i32x4_s(s3)), ACC + 384)
}

// ---- Q4_0: group block = [4 x f16 d][4 x 16 nibble bytes] (72 bytes); q_i = low nibble of byte i
// for i < 16, high nibble of byte i-16 otherwise; weight q-8 ----
@inline function dotQ4_0(v: v128, a: usize): v128 {
  const lo = i8x16.sub(v128.and(v, i8x16.splat(0x0f)), i8x16.splat(8))
  const hi = i8x16.sub(i8x16.shr_u(v, 4), i8x16.splat(8))
  return i32x4.add(dot16s(lo, a), dot16s(hi, a + 32))
}

@inline function termQ4_0(w: usize, a: usize, da: f32): v128 {
  const p0 = dotQ4_0(v128.load(w + 8), a)
  const p1 = dotQ4_0(v128.load(w + 24), a)
  const p2 = dotQ4_0(v128.load(w + 40), a)
  const p3 = dotQ4_0(v128.load(w + 56), a)
  const s = f32x4.convert_i32x4_s(hsum4(p0, p1, p2, p3))
  return f32x4.mul(f32x4.mul(scales4(w), f32x4.splat(da)), s)
}

// ---- Q4_1, Q5_0, Q5_1 (32 values): group blocks [4 x f16 d][4 x f16 m (Q4_1, Q5_1)]
// [4 x u32 qh (Q5_0, Q5_1)][4 x 16 nibble bytes] = 80, 88, 96 bytes. q_i = the Q4_0 nibble, plus
// 16 when bit i of the row's little-endian qh is set (5-bit types). Q5_0's weight is q - 16 and
// its term Q4_0's; Q4_1/Q5_1's weight is d·q + m and their term adds (m ⊗ d_a) ⊗ i2f(Σ qa) ----
const Q4_1: i32 = 3, Q5_0: i32 = 6, Q5_1: i32 = 7

// 16 bytes of 0x10 where bit (16·half + j) of qh is set (byte j), else 0.
@inline function qhBits16(qh: u32, half: u32): v128 {
  const v = i8x16.swizzle(i16x8.splat(<i16>(qh >> (half << 4))), i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1))
  const bit = v128.and(v, i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128))
  return v128.and(i8x16.ne(bit, i8x16.splat(0)), i8x16.splat(0x10))
}

@inline function dot32(v: v128, q5: bool, qh: u32, off: i8, a: usize): v128 {
  let lo = v128.and(v, i8x16.splat(0x0f)), hi = i8x16.shr_u(v, 4)
  if (q5) {
    lo = v128.or(lo, qhBits16(qh, 0))
    hi = v128.or(hi, qhBits16(qh, 1))
  }
  if (off != 0) {
    lo = i8x16.sub(lo, i8x16.splat(off))
    hi = i8x16.sub(hi, i8x16.splat(off))
  }
  return i32x4.add(dot16s(lo, a), dot16s(hi, a + 32))
}

@inline function term32(type: i32, w: usize, a: usize, da: f32, bs: usize): v128 {
  const qs = w + (type == Q4_1 ? 16 : type == Q5_0 ? 24 : 32)
  const qh = w + (type == Q5_0 ? 8 : 16)
  const q5 = type != Q4_1
  const off: i8 = type == Q5_0 ? 16 : 0
  const s = hsum4(
    dot32(v128.load(qs), q5, q5 ? load<u32>(qh) : 0, off, a),
    dot32(v128.load(qs + 16), q5, q5 ? load<u32>(qh + 4) : 0, off, a),
    dot32(v128.load(qs + 32), q5, q5 ? load<u32>(qh + 8) : 0, off, a),
    dot32(v128.load(qs + 48), q5, q5 ? load<u32>(qh + 12) : 0, off, a))
  const da4 = f32x4.splat(da)
  let t = f32x4.mul(f32x4.mul(scales4(w), da4), f32x4.convert_i32x4_s(s))
  if (type != Q5_0) t = f32x4.add(t, f32x4.mul(f32x4.mul(scales4(w + 8), da4), f32x4.convert_i32x4_s(i32x4.splat(<i32>load<i16>(bs)))))
  return t
}

// ---- Q4_K: group block = [4 x f16 d][4 x f16 dmin][4 x 12 scale bytes][4 x 128 nibble bytes] ----
// Byte j of the result: sc[j] for j < 8, m[j-8] for j >= 8 (llama.cpp get_scale_min_k4, 4 at a time).
@inline function q4kScales(p: usize): v128 {
  const w0 = load<u32>(p), w1 = load<u32>(p + 4), w2 = load<u32>(p + 8)
  let v = i32x4.splat(<i32>(w0 & 0x3f3f3f3f))
  v = i32x4.replace_lane(v, 1, <i32>((w2 & 0x0f0f0f0f) | ((w0 >> 2) & 0x30303030)))
  v = i32x4.replace_lane(v, 2, <i32>(w1 & 0x3f3f3f3f))
  return i32x4.replace_lane(v, 3, <i32>(((w2 >> 4) & 0x0f0f0f0f) | ((w1 >> 2) & 0x30303030)))
}

// Σ_i (q_i·sc)·qa_i over 16 unsigned nibble values q (q·sc ≤ 15·63 fits i16).
@inline function dotScaledU(q: v128, sc: v128, a: usize): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extmul_low_i8x16_u(q, sc), v128.load(a)),
    i32x4.dot_i16x8_s(i16x8.extmul_high_i8x16_u(q, sc), v128.load(a + 16)))
}

// S1 partial sums (4 lanes) of one row: qs = its 128 nibble bytes, scv from q4kScales. With q5,
// qh = its 32 Q5_K high-bit bytes: chunk k's low nibbles take bit 2k of qh[l] as their 16s bit,
// its high nibbles bit 2k + 1 (q·sc ≤ 31·63 still fits i16).
@inline function s1Q4_K(qs: usize, scv: v128, a: usize, q5: bool = false, qh: usize = 0): v128 {
  const m4 = i8x16.splat(0x0f), m16 = i8x16.splat(0x10)
  let p = i32x4.splat(0)
  for (let k: i32 = 0; k < 4; k++) {
    const vlo = v128.load(qs + (<usize>k << 5)), vhi = v128.load(qs + (<usize>k << 5) + 16)
    const scA = i8x16.swizzle(scv, i8x16.splat(<i8>(2 * k)))
    const scB = i8x16.swizzle(scv, i8x16.splat(<i8>(2 * k + 1)))
    const ak = a + (<usize>k << 7) // 64 values x 2 bytes
    let l0 = v128.and(vlo, m4), l1 = v128.and(vhi, m4), h0 = i8x16.shr_u(vlo, 4), h1 = i8x16.shr_u(vhi, 4)
    if (q5) {
      const ha = i8x16.shr_u(v128.load(qh), <i32>(2 * k)), hb = i8x16.shr_u(v128.load(qh + 16), <i32>(2 * k))
      l0 = v128.or(l0, v128.and(i8x16.shl(ha, 4), m16))
      l1 = v128.or(l1, v128.and(i8x16.shl(hb, 4), m16))
      h0 = v128.or(h0, v128.and(i8x16.shl(ha, 3), m16))
      h1 = v128.or(h1, v128.and(i8x16.shl(hb, 3), m16))
    }
    p = i32x4.add(p, dotScaledU(l0, scA, ak))
    p = i32x4.add(p, dotScaledU(l1, scA, ak + 32))
    p = i32x4.add(p, dotScaledU(h0, scB, ak + 64))
    p = i32x4.add(p, dotScaledU(h1, scB, ak + 96))
  }
  return p
}

// Q4_K and (q5) Q5_K, whose group block is Q4_K's with [4 x 32 qh] (128 bytes) before the
// nibbles: [4 x f16 d][4 x f16 dmin][4 x 12 scale bytes][4 x 32 qh][4 x 128 nibble bytes] (704 bytes).
@inline function termQ4_K(w: usize, a: usize, da: f32, bs: usize, q5: bool = false): v128 {
  const bsv = v128.load(bs) // 8 x i16 sub-block sums of qa
  const sc0 = q4kScales(w + 16), sc1 = q4kScales(w + 28), sc2 = q4kScales(w + 40), sc3 = q4kScales(w + 52)
  const qs = w + (q5 ? 192 : 64), qh = w + 64
  const s1 = hsum4(s1Q4_K(qs, sc0, a, q5, qh), s1Q4_K(qs + 128, sc1, a, q5, qh + 32),
    s1Q4_K(qs + 256, sc2, a, q5, qh + 64), s1Q4_K(qs + 384, sc3, a, q5, qh + 96))
  const s2 = hsum4(
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(sc0), bsv), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(sc1), bsv),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(sc2), bsv), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(sc3), bsv))
  const da4 = f32x4.splat(da)
  const t1 = f32x4.mul(f32x4.mul(scales4(w), da4), f32x4.convert_i32x4_s(s1))
  const t2 = f32x4.mul(f32x4.mul(scales4(w + 8), da4), f32x4.convert_i32x4_s(s2))
  return f32x4.sub(t1, t2)
}

// ---- Q6_K: group block = [4 x 128 ql][4 x 64 qh][4 x 16 int8 scales][4 x f16 d] (840 bytes) ----
// Σ_i ((q_i-32)·sc)·qa_i over one 16-value sub-block (|(q-32)·sc| ≤ 32·128 fits i16).
@inline function dotScaledS(q: v128, scv: v128, j: i32, a: usize): v128 {
  const sc = i8x16.swizzle(scv, i8x16.splat(<i8>j))
  const qs = i8x16.sub(q, i8x16.splat(32))
  const aj = a + (<usize>j << 5) // 16 values x 2 bytes
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extmul_low_i8x16_s(qs, sc), v128.load(aj)),
    i32x4.dot_i16x8_s(i16x8.extmul_high_i8x16_s(qs, sc), v128.load(aj + 16)))
}

@inline function sumQ6_K(ql: usize, qh: usize, scv: v128, a: usize): v128 {
  const m4 = i8x16.splat(0x0f), m30 = i8x16.splat(0x30)
  let p = i32x4.splat(0)
  for (let n: i32 = 0; n < 2; n++) {
    const l = ql + (<usize>n << 6), h = qh + (<usize>n << 5)
    const l0a = v128.load(l), l0b = v128.load(l + 16), l1a = v128.load(l + 32), l1b = v128.load(l + 48)
    const ha = v128.load(h), hb = v128.load(h + 16)
    const j = n << 3 // sub-block of element 128n
    p = i32x4.add(p, dotScaledS(v128.or(v128.and(l0a, m4), v128.and(i8x16.shl(ha, 4), m30)), scv, j, a))
    p = i32x4.add(p, dotScaledS(v128.or(v128.and(l0b, m4), v128.and(i8x16.shl(hb, 4), m30)), scv, j + 1, a))
    p = i32x4.add(p, dotScaledS(v128.or(v128.and(l1a, m4), v128.and(i8x16.shl(ha, 2), m30)), scv, j + 2, a))
    p = i32x4.add(p, dotScaledS(v128.or(v128.and(l1b, m4), v128.and(i8x16.shl(hb, 2), m30)), scv, j + 3, a))
    p = i32x4.add(p, dotScaledS(v128.or(i8x16.shr_u(l0a, 4), v128.and(ha, m30)), scv, j + 4, a))
    p = i32x4.add(p, dotScaledS(v128.or(i8x16.shr_u(l0b, 4), v128.and(hb, m30)), scv, j + 5, a))
    p = i32x4.add(p, dotScaledS(v128.or(i8x16.shr_u(l1a, 4), v128.and(i8x16.shr_u(ha, 2), m30)), scv, j + 6, a))
    p = i32x4.add(p, dotScaledS(v128.or(i8x16.shr_u(l1b, 4), v128.and(i8x16.shr_u(hb, 2), m30)), scv, j + 7, a))
  }
  return p
}

@inline function termQ6_K(w: usize, a: usize, da: f32): v128 {
  const s = hsum4(
    sumQ6_K(w, w + 512, v128.load(w + 768), a),
    sumQ6_K(w + 128, w + 576, v128.load(w + 784), a),
    sumQ6_K(w + 256, w + 640, v128.load(w + 800), a),
    sumQ6_K(w + 384, w + 704, v128.load(w + 816), a))
  return f32x4.mul(f32x4.mul(scales4(w + 832), f32x4.splat(da)), f32x4.convert_i32x4_s(s))
}

// ---- Q2_K, Q3_K: 16 sub-blocks of 16 values, 2-bit values in qs (element 128n + 32k + l in bits
// 2k, 2k+1 of qs[32n + l]) ----
// Q2_K group block = [4 x 16 scale bytes][4 x 64 qs][4 x f16 d][4 x f16 dmin] (336 bytes)
// Q3_K group block = [4 x 32 hmask][4 x 64 qs][4 x 12 scale bytes][4 x f16 d] (440 bytes)
const Q2_K: i32 = 10, Q3_K: i32 = 11

// The 16 Q3_K scales (sc - 32, signed bytes) from the 12 bytes at p (llama.cpp's kmask unpacking).
@inline function q3kScales(p: usize): v128 {
  const w0 = load<u32>(p), w1 = load<u32>(p + 4), w2 = load<u32>(p + 8)
  const k1: u32 = 0x03030303, k2: u32 = 0x0f0f0f0f
  let v = i32x4.splat(<i32>((w0 & k2) | ((w2 & k1) << 4)))
  v = i32x4.replace_lane(v, 1, <i32>((w1 & k2) | (((w2 >> 2) & k1) << 4)))
  v = i32x4.replace_lane(v, 2, <i32>(((w0 >> 4) & k2) | (((w2 >> 4) & k1) << 4)))
  v = i32x4.replace_lane(v, 3, <i32>(((w1 >> 4) & k2) | (((w2 >> 6) & k1) << 4)))
  return i8x16.sub(v, i8x16.splat(32))
}

// The 2-bit values of sub-block 8n + 2k (q = qs[32n ..]) or 8n + 2k + 1 (q = qs[32n + 16 ..]):
// bits 2k of the bytes. Always called with constant n, k (straight-line code): constant shifts,
// which V8 compiles to one psrlw + pand, where a variable i8x16 shift is a long sequence.
@inline function q2Val(q: v128, k: i32): v128 {
  return k == 0 ? v128.and(q, i8x16.splat(3)) : v128.and(i8x16.shr_u(q, 2 * k), i8x16.splat(3))
}

// Q3_K's signed values of the same sub-block (h = the matching 16 hmask bytes): the 2-bit value
// with hmask bit 4n + k as bit 2, minus 4, computed as q2 - (4 xor 4h).
@inline function q3Val(q: v128, h: v128, n: i32, k: i32): v128 {
  const hs = 4 * n + k, m4 = i8x16.splat(4)
  const h4 = v128.and(hs >= 2 ? i8x16.shr_u(h, hs - 2) : i8x16.shl(h, 2 - hs), m4)
  return i8x16.sub(q2Val(q, k), v128.xor(h4, m4))
}

// The 8 per-16 activation sums of sub-blocks 8h .. 8h + 7 of the block at a, as i16x8 (lane i:
// sub-block 8h + i; |Σ| ≤ 16·127). Each sub-block's 16 values are the 2 vectors at a + 32j.
@inline function sums16(a: usize, h: usize): v128 {
  const ah = a + (h << 8)
  const s0 = i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.load(ah), v128.load(ah + 16)))
  const s1 = i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.load(ah + 32), v128.load(ah + 48)))
  const s2 = i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.load(ah + 64), v128.load(ah + 80)))
  const s3 = i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.load(ah + 96), v128.load(ah + 112)))
  const s4 = i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.load(ah + 128), v128.load(ah + 144)))
  const s5 = i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.load(ah + 160), v128.load(ah + 176)))
  const s6 = i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.load(ah + 192), v128.load(ah + 208)))
  const s7 = i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.load(ah + 224), v128.load(ah + 240)))
  return i16x8.narrow_i32x4_s(hsum4(s0, s1, s2, s3), hsum4(s4, s5, s6, s7))
}

// Q2_K's S2 = Σ_j m_j·Σ_{16} qa for the 4 rows (lanes = rows): the 4 rows' 16 mins (high nibbles
// of scale bytes sb_r) dotted with the token's per-16 sums lo (sub-blocks 0-7), hi (8-15).
@inline function s2Q2_K(sb0: v128, sb1: v128, sb2: v128, sb3: v128, lo: v128, hi: v128): v128 {
  const m0 = i8x16.shr_u(sb0, 4), m1 = i8x16.shr_u(sb1, 4), m2 = i8x16.shr_u(sb2, 4), m3 = i8x16.shr_u(sb3, 4)
  return hsum4(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(m0), lo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(m0), hi)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(m1), lo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(m1), hi)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(m2), lo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(m2), hi)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(m3), lo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(m3), hi)))
}

// ---- K-quants, 4 tokens per weight pass (prefill, verify) ----
// Each row's weights are unpacked and multiplied by their sub-block scales once (i16 products,
// `i16x8.extmul_*`) and dotted with the 4 tokens' activations, summed in 4 local accumulators (one
// per token; V8 keeps locals in registers, not stores to linear memory); after each row they go to
// PART (token k, row r at PART + 64·k + 16·r) for the cross-row sums.
// Integer sums are exact, so this regrouping leaves every term's bits unchanged.
const PART: usize = memory.data(512, 16) // up to 8 tokens (Q2_K, Q3_K, Q4_1, Q5_0, Q5_1)

// Adds each token's f32 term for this block to its SUM8 lane, from S1 (and Q4_K's S2) in lanes = rows.
@inline function kTerm(b: i32, k: usize, d: v128, dmin: v128, s1: v128, s2: v128, da: f32, isQ4K: bool): void {
  const da4 = f32x4.splat(da)
  let term = f32x4.mul(f32x4.mul(d, da4), f32x4.convert_i32x4_s(s1))
  if (isQ4K) term = f32x4.sub(term, f32x4.mul(f32x4.mul(dmin, da4), f32x4.convert_i32x4_s(s2)))
  addAcc(b, term, ACC + (k << 7))
}

// One Q4_K (or, q5, Q5_K) group block for 4 tokens (token k's block activations at a_k, the
// record's scales at a_k + daOff, its per-32 sums at bs_k).
@inline function blockQ4_Kx4(b: i32, w: usize, a0: usize, a1: usize, a2: usize, a3: usize, daOff: usize,
  bs0: usize, bs1: usize, bs2: usize, bs3: usize, q5: bool = false): void {
  const m4 = i8x16.splat(0x0f), m16 = i8x16.splat(0x10)
  for (let r: usize = 0; r < 4; r++) {
    const scv = q4kScales(w + 16 + 12 * r)
    const qs = w + (q5 ? 192 : 64) + (r << 7)
    const qh = w + 64 + (r << 5)
    let p0 = i32x4.splat(0), p1 = p0, p2 = p0, p3 = p0
    for (let k: usize = 0; k < 4; k++) {
      const vlo = v128.load(qs + (k << 5)), vhi = v128.load(qs + (k << 5) + 16)
      const scA = i8x16.swizzle(scv, i8x16.splat(<i8>(2 * k)))
      const scB = i8x16.swizzle(scv, i8x16.splat(<i8>(2 * k + 1)))
      const ak = k << 7 // 64 values x 2 bytes
      let l0 = v128.and(vlo, m4), l1 = v128.and(vhi, m4), h0 = i8x16.shr_u(vlo, 4), h1 = i8x16.shr_u(vhi, 4)
      if (q5) {
        // the 16s bits: bit 2k of qh[l] for the low nibbles, bit 2k + 1 for the high ones
        const ha = i8x16.shr_u(v128.load(qh), <i32>(2 * k)), hb = i8x16.shr_u(v128.load(qh + 16), <i32>(2 * k))
        l0 = v128.or(l0, v128.and(i8x16.shl(ha, 4), m16))
        l1 = v128.or(l1, v128.and(i8x16.shl(hb, 4), m16))
        h0 = v128.or(h0, v128.and(i8x16.shl(ha, 3), m16))
        h1 = v128.or(h1, v128.and(i8x16.shl(hb, 3), m16))
      }
      { const e = i16x8.extmul_low_i8x16_u(l0, scA)
        p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + ak)))
        p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + ak)))
        p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + ak)))
        p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + ak))) }
      { const e = i16x8.extmul_high_i8x16_u(l0, scA)
        p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + ak + 16)))
        p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + ak + 16)))
        p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + ak + 16)))
        p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + ak + 16))) }
      { const e = i16x8.extmul_low_i8x16_u(l1, scA)
        p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + ak + 32)))
        p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + ak + 32)))
        p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + ak + 32)))
        p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + ak + 32))) }
      { const e = i16x8.extmul_high_i8x16_u(l1, scA)
        p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + ak + 48)))
        p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + ak + 48)))
        p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + ak + 48)))
        p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + ak + 48))) }
      { const e = i16x8.extmul_low_i8x16_u(h0, scB)
        p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + ak + 64)))
        p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + ak + 64)))
        p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + ak + 64)))
        p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + ak + 64))) }
      { const e = i16x8.extmul_high_i8x16_u(h0, scB)
        p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + ak + 80)))
        p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + ak + 80)))
        p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + ak + 80)))
        p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + ak + 80))) }
      { const e = i16x8.extmul_low_i8x16_u(h1, scB)
        p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + ak + 96)))
        p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + ak + 96)))
        p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + ak + 96)))
        p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + ak + 96))) }
      { const e = i16x8.extmul_high_i8x16_u(h1, scB)
        p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + ak + 112)))
        p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + ak + 112)))
        p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + ak + 112)))
        p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + ak + 112))) }
    }
    v128.store(PART + (r << 4), p0)
    v128.store(PART + 64 + (r << 4), p1)
    v128.store(PART + 128 + (r << 4), p2)
    v128.store(PART + 192 + (r << 4), p3)
  }
  const m0 = i16x8.extend_high_i8x16_u(q4kScales(w + 16)), m1 = i16x8.extend_high_i8x16_u(q4kScales(w + 28))
  const m2 = i16x8.extend_high_i8x16_u(q4kScales(w + 40)), m3 = i16x8.extend_high_i8x16_u(q4kScales(w + 52))
  const d = scales4(w), dmin = scales4(w + 8)
  for (let k: usize = 0; k < 4; k++) {
    const bsv = v128.load(k == 0 ? bs0 : k == 1 ? bs1 : k == 2 ? bs2 : bs3)
    const at = k == 0 ? a0 : k == 1 ? a1 : k == 2 ? a2 : a3
    const pk = PART + (k << 6)
    const s1 = hsum4(v128.load(pk), v128.load(pk + 16), v128.load(pk + 32), v128.load(pk + 48))
    const s2 = hsum4(i32x4.dot_i16x8_s(m0, bsv), i32x4.dot_i16x8_s(m1, bsv), i32x4.dot_i16x8_s(m2, bsv), i32x4.dot_i16x8_s(m3, bsv))
    kTerm(b, k, d, dmin, s1, s2, load<f32>(at + daOff), true)
  }
}

// One Q6_K group block for 4 tokens: (q-32)·sc products (i16, |.| ≤ 32·128) shared by the tokens.
@inline function blockQ6_Kx4(b: i32, w: usize, a0: usize, a1: usize, a2: usize, a3: usize, daOff: usize): void {
  const m4 = i8x16.splat(0x0f), m30 = i8x16.splat(0x30), c32 = i8x16.splat(32)
  for (let r: usize = 0; r < 4; r++) {
    const scv = v128.load(w + 768 + (r << 4))
    let p0 = i32x4.splat(0), p1 = p0, p2 = p0, p3 = p0
    for (let n: usize = 0; n < 2; n++) {
      const l = w + (r << 7) + (n << 6), h = w + 512 + (r << 6) + (n << 5)
      const l0a = v128.load(l), l0b = v128.load(l + 16), l1a = v128.load(l + 32), l1b = v128.load(l + 48)
      const ha = v128.load(h), hb = v128.load(h + 16)
      const j = <i32>(n << 3)
      const an = n << 8 // 128 values x 2 bytes
      for (let i: i32 = 0; i < 8; i++) {
        // sub-block j + i: the same selection as sumQ6_K, one 16-value vector at a time
        let q: v128
        if (i == 0) q = v128.or(v128.and(l0a, m4), v128.and(i8x16.shl(ha, 4), m30))
        else if (i == 1) q = v128.or(v128.and(l0b, m4), v128.and(i8x16.shl(hb, 4), m30))
        else if (i == 2) q = v128.or(v128.and(l1a, m4), v128.and(i8x16.shl(ha, 2), m30))
        else if (i == 3) q = v128.or(v128.and(l1b, m4), v128.and(i8x16.shl(hb, 2), m30))
        else if (i == 4) q = v128.or(i8x16.shr_u(l0a, 4), v128.and(ha, m30))
        else if (i == 5) q = v128.or(i8x16.shr_u(l0b, 4), v128.and(hb, m30))
        else if (i == 6) q = v128.or(i8x16.shr_u(l1a, 4), v128.and(i8x16.shr_u(ha, 2), m30))
        else q = v128.or(i8x16.shr_u(l1b, 4), v128.and(i8x16.shr_u(hb, 2), m30))
        const qs = i8x16.sub(q, c32)
        const sc = i8x16.swizzle(scv, i8x16.splat(<i8>(j + i)))
        const off = an + (<usize>i << 5)
        { const e = i16x8.extmul_low_i8x16_s(qs, sc)
          p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + off)))
          p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + off)))
          p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + off)))
          p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + off))) }
        { const e = i16x8.extmul_high_i8x16_s(qs, sc)
          p0 = i32x4.add(p0, i32x4.dot_i16x8_s(e, v128.load(a0 + off + 16)))
          p1 = i32x4.add(p1, i32x4.dot_i16x8_s(e, v128.load(a1 + off + 16)))
          p2 = i32x4.add(p2, i32x4.dot_i16x8_s(e, v128.load(a2 + off + 16)))
          p3 = i32x4.add(p3, i32x4.dot_i16x8_s(e, v128.load(a3 + off + 16))) }
      }
    }
    v128.store(PART + (r << 4), p0)
    v128.store(PART + 64 + (r << 4), p1)
    v128.store(PART + 128 + (r << 4), p2)
    v128.store(PART + 192 + (r << 4), p3)
  }
  const d = scales4(w + 832)
  for (let k: usize = 0; k < 4; k++) {
    const at = k == 0 ? a0 : k == 1 ? a1 : k == 2 ? a2 : a3
    const pk = PART + (k << 6)
    const s = hsum4(v128.load(pk), v128.load(pk + 16), v128.load(pk + 32), v128.load(pk + 48))
    kTerm(b, k, d, d, s, s, load<f32>(at + daOff), false)
  }
}

// ---- Q2_K, Q3_K, Q4_1, Q5_0, Q5_1: 8, then 4 tokens per weight pass ----
// A K-quant row's weights are unpacked once into EQ as i16, already multiplied by their sub-block
// scales (`extmul`), in element order (value i at EQ + 2i, as the activations), by straight-line
// code whose shifts and lane indices are constants (in a loop they would be variable and V8 expands
// variable i8x16 shifts into long sequences); then a loop dots EQ with 4 tokens' activations into 4
// local accumulators, which go to PART as in blockQ6_Kx4 (twice for 8 tokens). Integer sums are
// exact, so the regrouping leaves every term's bits unchanged.
const EQ: usize = memory.data(512, 16)

// Stores one 16-value sub-block j, q (i8) times scale byte j of scv, as 16 i16 at EQ + 32j.
@inline function putSc16(q: v128, scv: v128, j: i32, signed: bool): void {
  const sc = i8x16.swizzle(scv, i8x16.splat(<i8>j))
  const e = EQ + (<usize>j << 5)
  v128.store(e, signed ? i16x8.extmul_low_i8x16_s(q, sc) : i16x8.extmul_low_i8x16_u(q, sc))
  v128.store(e + 16, signed ? i16x8.extmul_high_i8x16_s(q, sc) : i16x8.extmul_high_i8x16_u(q, sc))
}

// Q3_K sub-blocks 8n + 2k (qa, ha) and 8n + 2k + 1 (qb, hb) into EQ.
@inline function putQ3_K(qa: v128, qb: v128, ha: v128, hb: v128, scv: v128, n: i32, k: i32): void {
  putSc16(q3Val(qa, ha, n, k), scv, 8 * n + 2 * k, true)
  putSc16(q3Val(qb, hb, n, k), scv, 8 * n + 2 * k + 1, true)
}

// Q2_K sub-blocks 8n + 2k (qa) and 8n + 2k + 1 (qb) into EQ.
@inline function putQ2_K(qa: v128, qb: v128, scv: v128, n: i32, k: i32): void {
  putSc16(q2Val(qa, k), scv, 8 * n + 2 * k, false)
  putSc16(q2Val(qb, k), scv, 8 * n + 2 * k + 1, false)
}

// Row r's Σ EQ·qa over `bytes` bytes of EQ for 4 tokens, to part (token k at part + 64k + 16r).
@inline function dotEQx4(part: usize, r: usize, bytes: usize, a0: usize, a1: usize, a2: usize, a3: usize): void {
  let p0 = i32x4.splat(0), p1 = p0, p2 = p0, p3 = p0
  for (let o: usize = 0; o < bytes; o += 32) {
    const e0 = v128.load(EQ + o), e1 = v128.load(EQ + o + 16)
    p0 = i32x4.add(p0, i32x4.add(i32x4.dot_i16x8_s(e0, v128.load(a0 + o)), i32x4.dot_i16x8_s(e1, v128.load(a0 + o + 16))))
    p1 = i32x4.add(p1, i32x4.add(i32x4.dot_i16x8_s(e0, v128.load(a1 + o)), i32x4.dot_i16x8_s(e1, v128.load(a1 + o + 16))))
    p2 = i32x4.add(p2, i32x4.add(i32x4.dot_i16x8_s(e0, v128.load(a2 + o)), i32x4.dot_i16x8_s(e1, v128.load(a2 + o + 16))))
    p3 = i32x4.add(p3, i32x4.add(i32x4.dot_i16x8_s(e0, v128.load(a3 + o)), i32x4.dot_i16x8_s(e1, v128.load(a3 + o + 16))))
  }
  v128.store(part + (r << 4), p0)
  v128.store(part + 64 + (r << 4), p1)
  v128.store(part + 128 + (r << 4), p2)
  v128.store(part + 192 + (r << 4), p3)
}

// Token k's 4 rows' sums (lanes = rows) from PART.
@inline function partSum(k: usize): v128 {
  const pk = PART + (k << 6)
  return hsum4(v128.load(pk), v128.load(pk + 16), v128.load(pk + 32), v128.load(pk + 48))
}

// Row r of a Q3_K group block into EQ ((q-4+4h)·sc: |.| ≤ 4·32 fits i16).
@inline function unpackQ3_K(w: usize, r: usize): void {
  const scv = q3kScales(w + 384 + 12 * r)
  const hm = w + (r << 5), qs = w + 128 + (r << 6)
  const ha = v128.load(hm), hb = v128.load(hm + 16)
  const q0 = v128.load(qs), q1 = v128.load(qs + 16), q2 = v128.load(qs + 32), q3 = v128.load(qs + 48)
  putQ3_K(q0, q1, ha, hb, scv, 0, 0)
  putQ3_K(q0, q1, ha, hb, scv, 0, 1)
  putQ3_K(q0, q1, ha, hb, scv, 0, 2)
  putQ3_K(q0, q1, ha, hb, scv, 0, 3)
  putQ3_K(q2, q3, ha, hb, scv, 1, 0)
  putQ3_K(q2, q3, ha, hb, scv, 1, 1)
  putQ3_K(q2, q3, ha, hb, scv, 1, 2)
  putQ3_K(q2, q3, ha, hb, scv, 1, 3)
}

// Row r of a Q2_K group block into EQ (q·sc ≤ 3·15).
@inline function unpackQ2_K(w: usize, r: usize): void {
  const scv = v128.and(v128.load(w + (r << 4)), i8x16.splat(0x0f))
  const qs = w + 64 + (r << 6)
  const q0 = v128.load(qs), q1 = v128.load(qs + 16), q2 = v128.load(qs + 32), q3 = v128.load(qs + 48)
  putQ2_K(q0, q1, scv, 0, 0)
  putQ2_K(q0, q1, scv, 0, 1)
  putQ2_K(q0, q1, scv, 0, 2)
  putQ2_K(q0, q1, scv, 0, 3)
  putQ2_K(q2, q3, scv, 1, 0)
  putQ2_K(q2, q3, scv, 1, 1)
  putQ2_K(q2, q3, scv, 1, 2)
  putQ2_K(q2, q3, scv, 1, 3)
}

// One token (decode, a batch's last 1-3 tokens): each row unpacked into EQ as for the batches,
// then Σ EQ·qa in one loop (dotEQ1). (Dotting each sub-block straight from the unpacked bytes,
// in loops, measured 7.6 GOP/s for Q3_K against 12.8 here; the same straight-line without EQ was
// slower still on DRAM-streamed matvecs.)
@inline function dotEQ1(a: usize): v128 {
  let p = i32x4.splat(0)
  for (let o: usize = 0; o < 512; o += 32) {
    p = i32x4.add(p, i32x4.add(
      i32x4.dot_i16x8_s(v128.load(EQ + o), v128.load(a + o)), i32x4.dot_i16x8_s(v128.load(EQ + o + 16), v128.load(a + o + 16))))
  }
  return p
}

@inline function rowQ3_K(w: usize, r: usize, a: usize): v128 {
  unpackQ3_K(w, r)
  return dotEQ1(a)
}

@inline function rowQ2_K(w: usize, r: usize, a: usize): v128 {
  unpackQ2_K(w, r)
  return dotEQ1(a)
}

@inline function termQ3_K(w: usize, a: usize, da: f32): v128 {
  const p0 = rowQ3_K(w, 0, a)
  const p1 = rowQ3_K(w, 1, a)
  const p2 = rowQ3_K(w, 2, a)
  const p3 = rowQ3_K(w, 3, a)
  return f32x4.mul(f32x4.mul(scales4(w + 432), f32x4.splat(da)), f32x4.convert_i32x4_s(hsum4(p0, p1, p2, p3)))
}

// Q2_K: S1 as Q3_K's; S2 from the token's per-16 sums of this block (sums16) and the rows' mins.
@inline function termQ2_K(w: usize, a: usize, da: f32): v128 {
  const p0 = rowQ2_K(w, 0, a)
  const p1 = rowQ2_K(w, 1, a)
  const p2 = rowQ2_K(w, 2, a)
  const p3 = rowQ2_K(w, 3, a)
  const s2 = s2Q2_K(v128.load(w), v128.load(w + 16), v128.load(w + 32), v128.load(w + 48), sums16(a, 0), sums16(a, 1))
  const da4 = f32x4.splat(da)
  const t1 = f32x4.mul(f32x4.mul(scales4(w + 320), da4), f32x4.convert_i32x4_s(hsum4(p0, p1, p2, p3)))
  const t2 = f32x4.mul(f32x4.mul(scales4(w + 328), da4), f32x4.convert_i32x4_s(s2))
  return f32x4.sub(t1, t2)
}

// One Q2_K or Q3_K group block for nt (4 or 8) consecutive tokens: token k's block activations at
// a + k·stride, its scale at a + k·stride + daOff, (Q2_K) its per-16 sums at s + k·sn. Each row is
// unpacked once and dotted with the tokens 4 at a time; then each token's f32 steps are the
// one-token term's: (d ⊗ d_a) ⊗ i2f(S1) (Q2_K ⊖ (dmin ⊗ d_a) ⊗ i2f(S2)), S2 from the sums and
// each row's 16 mins (s2Q2_K).
@inline function blockK2(type: i32, nt: usize, b: i32, w: usize, a: usize, stride: usize, daOff: usize, s: usize, sn: usize): void {
  for (let r: usize = 0; r < 4; r++) {
    if (type == Q3_K) unpackQ3_K(w, r)
    else unpackQ2_K(w, r)
    dotEQx4(PART, r, 512, a, a + stride, a + 2 * stride, a + 3 * stride)
    if (nt == 8) {
      const a4 = a + 4 * stride
      dotEQx4(PART + 256, r, 512, a4, a4 + stride, a4 + 2 * stride, a4 + 3 * stride)
    }
  }
  if (type == Q3_K) {
    const d = scales4(w + 432)
    for (let k: usize = 0; k < nt; k++) {
      const sum = partSum(k)
      kTerm(b, k, d, d, sum, sum, load<f32>(a + k * stride + daOff), false)
    }
  } else {
    const sb0 = v128.load(w), sb1 = v128.load(w + 16), sb2 = v128.load(w + 32), sb3 = v128.load(w + 48)
    const d = scales4(w + 320), dmin = scales4(w + 328)
    for (let k: usize = 0; k < nt; k++) {
      const sk = s + k * sn
      const sum2 = s2Q2_K(sb0, sb1, sb2, sb3, v128.load(sk), v128.load(sk + 16))
      kTerm(b, k, d, dmin, partSum(k), sum2, load<f32>(a + k * stride + daOff), true)
    }
  }
}

// Q2_K's S2 = Σ_j m_j·Σ_{16} qa needs each token's 16 per-16 activation sums of a block, the same
// for every row group: they are made once per token tile (fillSums16) into SUM16, 32 bytes (16 x
// i16, |Σ| ≤ 16·127) per token and block, token-major. A tile's multi-token tokens need at most
// tile·cols/8 ≤ (256 KiB / stride)·cols/8 ≤ 16 KiB (stride > 2·cols); a tile of fewer than 4
// tokens (huge rows) never takes a multi-token pass.
const SUM16_BYTES: i32 = 16384
const SUM16: usize = memory.data(SUM16_BYTES, 16)

// The per-16 sums of tokens t0 .. t0 + n - 1 (records at act + t·stride), nb blocks each.
@inline function fillSums16(act: usize, stride: i32, t0: i32, n: i32, nb: i32): void {
  let dst = SUM16
  for (let t = t0; t < t0 + n; t++) {
    let a = act + <usize>t * <usize>stride
    for (let b = 0; b < nb; b++) {
      v128.store(dst, sums16(a, 0))
      v128.store(dst + 16, sums16(a, 1))
      a += 512 // 256 values x 2 bytes
      dst += 32
    }
  }
}

// Row r's Σ e·qa for the token whose block activations are at a (e0..e3: its 32 widened values).
@inline function dot32x1(e0: v128, e1: v128, e2: v128, e3: v128, a: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(e0, v128.load(a)), i32x4.dot_i16x8_s(e1, v128.load(a + 16))),
    i32x4.add(i32x4.dot_i16x8_s(e2, v128.load(a + 32)), i32x4.dot_i16x8_s(e3, v128.load(a + 48))))
}

// One Q4_1 / Q5_0 / Q5_1 group block for nt (4 or 8) consecutive tokens (token k's block
// activations at a + k·stride, its scale at + daOff, its per-32 sum at + bsOff): each row's 32
// values are unpacked as term32's dot32 does and widened to i16 once, and each token's row sum
// goes to PART; then per token the 4 rows' sums (hsum4) and term32's f32 steps.
@inline function block32(type: i32, nt: usize, b: i32, w: usize, a: usize, stride: usize, daOff: usize, bsOff: usize): void {
  const qs = w + (type == Q4_1 ? 16 : type == Q5_0 ? 24 : 32)
  const qh = w + (type == Q5_0 ? 8 : 16)
  const m4 = i8x16.splat(0x0f)
  for (let r: usize = 0; r < 4; r++) {
    const v = v128.load(qs + (r << 4))
    let lo = v128.and(v, m4), hi = i8x16.shr_u(v, 4)
    if (type != Q4_1) {
      const h = load<u32>(qh + (r << 2))
      lo = v128.or(lo, qhBits16(h, 0))
      hi = v128.or(hi, qhBits16(h, 1))
    }
    if (type == Q5_0) {
      lo = i8x16.sub(lo, i8x16.splat(16))
      hi = i8x16.sub(hi, i8x16.splat(16))
    }
    const e0 = i16x8.extend_low_i8x16_s(lo), e1 = i16x8.extend_high_i8x16_s(lo)
    const e2 = i16x8.extend_low_i8x16_s(hi), e3 = i16x8.extend_high_i8x16_s(hi)
    const pr = PART + (r << 4)
    v128.store(pr, dot32x1(e0, e1, e2, e3, a))
    v128.store(pr + 64, dot32x1(e0, e1, e2, e3, a + stride))
    v128.store(pr + 128, dot32x1(e0, e1, e2, e3, a + 2 * stride))
    v128.store(pr + 192, dot32x1(e0, e1, e2, e3, a + 3 * stride))
    if (nt == 8) {
      const a4 = a + 4 * stride
      v128.store(pr + 256, dot32x1(e0, e1, e2, e3, a4))
      v128.store(pr + 320, dot32x1(e0, e1, e2, e3, a4 + stride))
      v128.store(pr + 384, dot32x1(e0, e1, e2, e3, a4 + 2 * stride))
      v128.store(pr + 448, dot32x1(e0, e1, e2, e3, a4 + 3 * stride))
    }
  }
  const d = scales4(w), m = scales4(w + 8)
  tail32(type, b, 0, a + daOff, a + bsOff, d, m)
  tail32(type, b, 1, a + stride + daOff, a + stride + bsOff, d, m)
  tail32(type, b, 2, a + 2 * stride + daOff, a + 2 * stride + bsOff, d, m)
  tail32(type, b, 3, a + 3 * stride + daOff, a + 3 * stride + bsOff, d, m)
  if (nt == 8) {
    const a4 = a + 4 * stride
    tail32(type, b, 4, a4 + daOff, a4 + bsOff, d, m)
    tail32(type, b, 5, a4 + stride + daOff, a4 + stride + bsOff, d, m)
    tail32(type, b, 6, a4 + 2 * stride + daOff, a4 + 2 * stride + bsOff, d, m)
    tail32(type, b, 7, a4 + 3 * stride + daOff, a4 + 3 * stride + bsOff, d, m)
  }
}

// Token k's term32 f32 steps from its PART sums: (d ⊗ d_a) ⊗ i2f(S) [⊕ (m ⊗ d_a) ⊗ i2f(Σ qa)].
@inline function tail32(type: i32, b: i32, k: usize, da: usize, bs: usize, d: v128, m: v128): void {
  const da4 = f32x4.splat(load<f32>(da))
  let t = f32x4.mul(f32x4.mul(d, da4), f32x4.convert_i32x4_s(partSum(k)))
  if (type != Q5_0) t = f32x4.add(t, f32x4.mul(f32x4.mul(m, da4), f32x4.convert_i32x4_s(i32x4.splat(<i32>load<i16>(bs)))))
  addAcc(b, t, ACC + (k << 7))
}

// ---- the quantized driver ----
// Type ids are GGUF's (src/engine/gguf/types.ts).
const Q4_0: i32 = 2, Q8_0: i32 = 8, Q4_K: i32 = 12, Q5_K: i32 = 13, Q6_K: i32 = 14

/** Record bytes of one quantized token: i16 q, f32 d per block, i16 sum per 32, padded to 16. */
export function actStride(cols: i32, bs: i32): i32 {
  return (cols * 2 + (cols / bs) * 4 + (cols / 32) * 2 + 15) & ~15
}

// Tokens per tile in batched matmul: as many as keep ~256 KiB of activations hot in L2, so one
// row group (a few KiB) is loaded once per tile and reused for every token of the tile.
// Rounded down to a multiple of 8 (the quantized types compute 4 or 8 tokens per weight pass; only
// a batch's last 1-3 tokens take the one-token path) unless a token's record is huge.
@inline function tokenTile(stride: i32): i32 {
  const t = (256 * 1024) / stride
  return t < 8 ? max(t, 1) : t & ~7
}

// One Q2_K/Q3_K weight pass: row group g (at wg) for the nt tokens from t (Q2_K's per-16 sums
// at SUM16, filled for the tile from t0).
@inline function passK2(type: i32, nt: usize, wg: usize, nb: i32, gbb: i32, act: usize, t: i32, t0: i32,
  stride: i32, daOff: usize, out: usize, outStride: i32, g: i32): void {
  const a = act + <usize>t * <usize>stride
  for (let k: usize = 0; k < nt; k++) zeroAcc(ACC + (k << 7))
  const sn = <usize>nb << 5
  for (let b = 0; b < nb; b++) {
    const ab = <usize>(b << 9) // 256 values x 2 bytes
    const s = SUM16 + <usize>(t - t0) * sn + (<usize>b << 5)
    blockK2(type, nt, b, wg + <usize>b * <usize>gbb, a + ab, <usize>stride, daOff + (<usize>b << 2) - ab, s, sn)
  }
  const o = out + ((<usize>t * <usize>outStride + (<usize>g << 2)) << 2)
  for (let k: usize = 0; k < nt; k++) v128.store(o + ((k * <usize>outStride) << 2), foldAcc(ACC + (k << 7)))
}

// One Q4_1/Q5_0/Q5_1 weight pass: row group g (at wg) for the nt tokens from t.
@inline function pass32(type: i32, nt: usize, wg: usize, nb: i32, gbb: i32, act: usize, t: i32,
  stride: i32, daOff: usize, bsOff: usize, out: usize, outStride: i32, g: i32): void {
  const a = act + <usize>t * <usize>stride
  for (let k: usize = 0; k < nt; k++) zeroAcc(ACC + (k << 7))
  for (let b = 0; b < nb; b++) {
    const ab = <usize>(b << 6) // 32 values x 2 bytes
    block32(type, nt, b, wg + <usize>b * <usize>gbb, a + ab, <usize>stride, daOff + (<usize>b << 2) - ab, bsOff + (<usize>b << 1) - ab)
  }
  const o = out + ((<usize>t * <usize>outStride + (<usize>g << 2)) << 2)
  for (let k: usize = 0; k < nt; k++) v128.store(o + ((k * <usize>outStride) << 2), foldAcc(ACC + (k << 7)))
}

@inline function matmulQ(type: i32, bs: i32, gbb: i32, w: usize, ngroups: i32, nb: i32,
  act: usize, ntok: i32, out: usize, outStride: i32): void {
  const cols = nb * bs
  const stride = actStride(cols, bs)
  const daOff = <usize>(cols * 2), bsOff = <usize>(cols * 2 + nb * 4)
  const tile = tokenTile(stride)
  const groupBytes = <usize>nb * <usize>gbb
  for (let t0 = 0; t0 < ntok; t0 += tile) {
    const t1 = min(ntok, t0 + tile)
    // the tokens that go 4 (or 8) at a time: all but the tile's last (t1 - t0) mod 4
    let t4 = t0 + ((t1 - t0) & ~3)
    if (type == Q2_K) {
      if ((t4 - t0) * nb * 32 <= SUM16_BYTES) fillSums16(act, stride, t0, t4 - t0, nb)
      else t4 = t0 // unreachable (see SUM16): then every token takes the one-token path
    }
    for (let g = 0; g < ngroups; g++) {
      const wg = w + <usize>g * groupBytes
      let t = t0
      if (type == Q2_K || type == Q3_K) {
        // 8 tokens per weight pass, then 4: each row's unpacking is shared by more tokens
        for (; t + 8 <= t4; t += 8) passK2(type, 8, wg, nb, gbb, act, t, t0, stride, daOff, out, outStride, g)
        for (; t + 4 <= t4; t += 4) passK2(type, 4, wg, nb, gbb, act, t, t0, stride, daOff, out, outStride, g)
      }
      if (type == Q4_K || type == Q5_K || type == Q6_K) {
        for (; t + 4 <= t4; t += 4) {
          const a0 = act + <usize>t * <usize>stride
          const a1 = a0 + <usize>stride
          const a2 = a1 + <usize>stride
          const a3 = a2 + <usize>stride
          for (let k: usize = 0; k < 4; k++) zeroAcc(ACC + (k << 7))
          for (let b = 0; b < nb; b++) {
            const ab = <usize>(b << 9) // 256 values x 2 bytes
            const db = daOff + (<usize>b << 2) - ab
            const wb = wg + <usize>b * <usize>gbb
            if (type == Q4_K || type == Q5_K) {
              const sb = bsOff + (<usize>b << 4)
              blockQ4_Kx4(b, wb, a0 + ab, a1 + ab, a2 + ab, a3 + ab, db, a0 + sb, a1 + sb, a2 + sb, a3 + sb, type == Q5_K)
            } else blockQ6_Kx4(b, wb, a0 + ab, a1 + ab, a2 + ab, a3 + ab, db)
          }
          const o = out + ((<usize>t * <usize>outStride + (<usize>g << 2)) << 2)
          for (let k: usize = 0; k < 4; k++) v128.store(o + ((k * <usize>outStride) << 2), foldAcc(ACC + (k << 7)))
        }
      }
      if (type == Q4_1 || type == Q5_0 || type == Q5_1) {
        for (; t + 8 <= t4; t += 8) pass32(type, 8, wg, nb, gbb, act, t, stride, daOff, bsOff, out, outStride, g)
        for (; t + 4 <= t4; t += 4) pass32(type, 4, wg, nb, gbb, act, t, stride, daOff, bsOff, out, outStride, g)
      }
      if (type == Q8_0) {
        for (; t + 4 <= t4; t += 4) {
          const a0 = act + <usize>t * <usize>stride
          const a1 = a0 + <usize>stride
          const a2 = a1 + <usize>stride
          const a3 = a2 + <usize>stride
          for (let k: usize = 0; k < 4; k++) zeroAcc(ACC + (k << 7))
          for (let b = 0; b < nb; b++) {
            const ab = <usize>(b << 6), db = daOff + (<usize>b << 2) - ab
            blockQ8_0x4(b, wg + <usize>b * <usize>gbb, a0 + ab, a1 + ab, a2 + ab, a3 + ab, db)
          }
          const o = out + ((<usize>t * <usize>outStride + (<usize>g << 2)) << 2)
          for (let k: usize = 0; k < 4; k++) v128.store(o + ((k * <usize>outStride) << 2), foldAcc(ACC + (k << 7)))
        }
      }
      for (; t < t1; t++) {
        const at = act + <usize>t * <usize>stride
        zeroAcc()
        for (let b = 0; b < nb; b++) {
          const wb = wg + <usize>b * <usize>gbb
          const ab = at + <usize>(b * bs * 2)
          const da = load<f32>(at + daOff + (<usize>b << 2))
          let term: v128
          if (type == Q8_0) term = termQ8_0(wb, ab, da)
          else if (type == Q4_0) term = termQ4_0(wb, ab, da)
          else if (type == Q4_1 || type == Q5_0 || type == Q5_1) term = term32(type, wb, ab, da, at + bsOff + (<usize>b << 1))
          else if (type == Q4_K) term = termQ4_K(wb, ab, da, at + bsOff + (<usize>b << 4))
          else if (type == Q5_K) term = termQ4_K(wb, ab, da, at + bsOff + (<usize>b << 4), true)
          else if (type == Q3_K) term = termQ3_K(wb, ab, da)
          else if (type == Q2_K) term = termQ2_K(wb, ab, da)
          else term = termQ6_K(wb, ab, da)
          addAcc(b, term)
        }
        v128.store(out + ((<usize>t * <usize>outStride + (<usize>g << 2)) << 2), foldAcc())
      }
    }
  }
}

/** Y (ntok x outStride f32, 4 rows per group) = packed Q8_0 weights x quantized activations. */
export function matmul_q8_0(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q8_0, 32, 136, w, ngroups, nb, act, ntok, out, outStride)
}
export function matmul_q4_0(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q4_0, 32, 72, w, ngroups, nb, act, ntok, out, outStride)
}
export function matmul_q4_1(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q4_1, 32, 80, w, ngroups, nb, act, ntok, out, outStride)
}
export function matmul_q5_0(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q5_0, 32, 88, w, ngroups, nb, act, ntok, out, outStride)
}
export function matmul_q5_1(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q5_1, 32, 96, w, ngroups, nb, act, ntok, out, outStride)
}
export function matmul_q2_k(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q2_K, 256, 336, w, ngroups, nb, act, ntok, out, outStride)
}
export function matmul_q3_k(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q3_K, 256, 440, w, ngroups, nb, act, ntok, out, outStride)
}
export function matmul_q4_k(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q4_K, 256, 576, w, ngroups, nb, act, ntok, out, outStride)
}
export function matmul_q5_k(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q5_K, 256, 704, w, ngroups, nb, act, ntok, out, outStride)
}
export function matmul_q6_k(w: usize, ngroups: i32, nb: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulQ(Q6_K, 256, 840, w, ngroups, nb, act, ntok, out, outStride)
}

// ---- float weights: group chunk = 4 rows x 8 values; DOT8 lanes: value i to lane i mod 8 ----
const F32: i32 = 0, F16: i32 = 1

// 8 weights of one row as two f32x4 (values 0-3, 4-7).
@inline function loadLo(type: i32, p: usize): v128 {
  if (type == F32) return v128.load(p)
  const h = v128.load(p)
  if (type == F16) return h2f4(i32x4.extend_low_i16x8_u(h))
  return i32x4.shl(i32x4.extend_low_i16x8_u(h), 16) // BF16
}
@inline function loadHi(type: i32, p: usize): v128 {
  if (type == F32) return v128.load(p + 16)
  const h = v128.load(p)
  if (type == F16) return h2f4(i32x4.extend_high_i16x8_u(h))
  return i32x4.shl(i32x4.extend_high_i16x8_u(h), 16)
}

@inline function matmulF(type: i32, eb: i32, w: usize, ngroups: i32, cols: i32,
  act: usize, ntok: i32, out: usize, outStride: i32): void {
  const nch = (cols + 7) >> 3
  const rowChunk = <usize>(8 * eb)
  const gcb = rowChunk << 2
  const stride = nch * 32
  const full = cols >> 3
  const rem = cols & 7
  // Lanes of the last, partial chunk that hold real values (lane i < rem).
  const maskLo = i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(rem))
  const maskHi = i32x4.lt_s(i32x4(4, 5, 6, 7), i32x4.splat(rem))
  const tile = tokenTile(stride)
  for (let t0 = 0; t0 < ntok; t0 += tile) {
    const t1 = min(ntok, t0 + tile)
    for (let g = 0; g < ngroups; g++) {
      const wg = w + <usize>g * <usize>nch * gcb
      for (let t = t0; t < t1; t++) {
        const xt = act + <usize>t * <usize>stride
        let lo0 = f32x4.splat(0), lo1 = lo0, lo2 = lo0, lo3 = lo0
        let hi0 = lo0, hi1 = lo0, hi2 = lo0, hi3 = lo0
        for (let c = 0; c < full; c++) {
          const wc = wg + <usize>c * gcb
          const xl = v128.load(xt + (<usize>c << 5)), xh = v128.load(xt + (<usize>c << 5) + 16)
          lo0 = f32x4.add(lo0, f32x4.mul(loadLo(type, wc), xl))
          hi0 = f32x4.add(hi0, f32x4.mul(loadHi(type, wc), xh))
          lo1 = f32x4.add(lo1, f32x4.mul(loadLo(type, wc + rowChunk), xl))
          hi1 = f32x4.add(hi1, f32x4.mul(loadHi(type, wc + rowChunk), xh))
          lo2 = f32x4.add(lo2, f32x4.mul(loadLo(type, wc + 2 * rowChunk), xl))
          hi2 = f32x4.add(hi2, f32x4.mul(loadHi(type, wc + 2 * rowChunk), xh))
          lo3 = f32x4.add(lo3, f32x4.mul(loadLo(type, wc + 3 * rowChunk), xl))
          hi3 = f32x4.add(hi3, f32x4.mul(loadHi(type, wc + 3 * rowChunk), xh))
        }
        if (rem != 0) {
          // Lanes past the row's end keep their accumulator unchanged (SUM8 never adds to them).
          const wc = wg + <usize>full * gcb
          const xl = v128.load(xt + (<usize>full << 5)), xh = v128.load(xt + (<usize>full << 5) + 16)
          lo0 = v128.bitselect(f32x4.add(lo0, f32x4.mul(loadLo(type, wc), xl)), lo0, maskLo)
          hi0 = v128.bitselect(f32x4.add(hi0, f32x4.mul(loadHi(type, wc), xh)), hi0, maskHi)
          lo1 = v128.bitselect(f32x4.add(lo1, f32x4.mul(loadLo(type, wc + rowChunk), xl)), lo1, maskLo)
          hi1 = v128.bitselect(f32x4.add(hi1, f32x4.mul(loadHi(type, wc + rowChunk), xh)), hi1, maskHi)
          lo2 = v128.bitselect(f32x4.add(lo2, f32x4.mul(loadLo(type, wc + 2 * rowChunk), xl)), lo2, maskLo)
          hi2 = v128.bitselect(f32x4.add(hi2, f32x4.mul(loadHi(type, wc + 2 * rowChunk), xh)), hi2, maskHi)
          lo3 = v128.bitselect(f32x4.add(lo3, f32x4.mul(loadLo(type, wc + 3 * rowChunk), xl)), lo3, maskLo)
          hi3 = v128.bitselect(f32x4.add(hi3, f32x4.mul(loadHi(type, wc + 3 * rowChunk), xh)), hi3, maskHi)
        }
        // Per row r: s_r[l] = acc[l] + acc[l+4]; transpose so lane = row, then SUM8's tree.
        const s0 = f32x4.add(lo0, hi0), s1 = f32x4.add(lo1, hi1), s2 = f32x4.add(lo2, hi2), s3 = f32x4.add(lo3, hi3)
        const u0 = f32x4.shuffle(s0, s1, 0, 4, 1, 5), u1 = f32x4.shuffle(s2, s3, 0, 4, 1, 5)
        const u2 = f32x4.shuffle(s0, s1, 2, 6, 3, 7), u3 = f32x4.shuffle(s2, s3, 2, 6, 3, 7)
        const c0 = f32x4.shuffle(u0, u1, 0, 1, 4, 5), c1 = f32x4.shuffle(u0, u1, 2, 3, 6, 7)
        const c2 = f32x4.shuffle(u2, u3, 0, 1, 4, 5), c3 = f32x4.shuffle(u2, u3, 2, 3, 6, 7)
        v128.store(out + ((<usize>t * <usize>outStride + (<usize>g << 2)) << 2),
          f32x4.add(f32x4.add(c0, c2), f32x4.add(c1, c3)))
      }
    }
  }
}

/** Y = packed float weights x f32 activations (each token's cols padded with zeros to 8). */
export function matmul_f32(w: usize, ngroups: i32, cols: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulF(F32, 4, w, ngroups, cols, act, ntok, out, outStride)
}
export function matmul_f16(w: usize, ngroups: i32, cols: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulF(F16, 2, w, ngroups, cols, act, ntok, out, outStride)
}
export function matmul_bf16(w: usize, ngroups: i32, cols: i32, act: usize, ntok: i32, out: usize, outStride: i32): void {
  matmulF(30, 2, w, ngroups, cols, act, ntok, out, outStride)
}

// ---- activation quantization Q8/B ----
// roundHalfAwayFromZero(|v|) = trunc(|v|) + (|v| - trunc(|v|) >= 0.5): the difference is exact
// in binary32, unlike |v| + 0.5 (which rounds for |v| just under 0.5). Clamped to 127 with pmin
// (here equal to min: the left side is >= +0 or NaN, and pmin keeps a NaN on the left), signed by
// or-ing v's sign bit back in, and converted exactly: y + 1.5·2^23 has ulp 1 for |y| <= 2^22, so
// its bits minus those of 1.5·2^23 are the integer y. NaN (0 ⊗ ∞) gives 0. This is
// trunc_sat(min(..)) with the sign applied, without V8's NaN-handling sequences for f32x4.min
// and i32x4.trunc_sat_f32x4_s (about half the instructions).
@inline function q8lanes(x: v128, id: v128): v128 {
  const v = f32x4.mul(x, id)
  const a = f32x4.abs(v)
  const r = f32x4.trunc(a)
  const up = v128.and(f32x4.ge(f32x4.sub(a, r), f32x4.splat(0.5)), f32x4.splat(1))
  const y = f32x4.pmin(f32x4.add(r, up), f32x4.splat(127))
  const ys = v128.or(y, v128.and(v, i32x4.splat(0x80000000)))
  const q = i32x4.sub(f32x4.add(ys, f32x4.splat(12582912)), i32x4.splat(0x4b400000))
  return v128.and(q, f32x4.eq(y, y))
}

/**
 * Quantizes `ntok` tokens of `cols` f32 values (token t at x + t·xStride bytes) in blocks of `bs`
 * into records of actStride(cols, bs) bytes at act: i16 q, f32 d per block, i16 sums per 32.
 */
// x >= 0 rounded to the nearest binary16 value (ties to even, subnormals kept, overflow to
// infinity), as a binary32: the bit-level twin of f2h then h2f in src/engine/math/half.ts.
function f16round(x: f32): f32 {
  const bits = reinterpret<u32>(x)
  const exp = <i32>((bits >> 23) & 0xff)
  let man = bits & 0x7fffff
  if (exp == 0xff) return x
  const e = exp - 127 + 15
  let h: u32
  if (e >= 31) h = 0x7c00
  else if (e <= 0) {
    if (e < -10) return 0
    man |= 0x800000
    const shift = <u32>(14 - e)
    const half = <u32>1 << (shift - 1)
    const rest = man & ((<u32>1 << shift) - 1)
    h = man >> shift
    if (rest > half || (rest == half && (h & 1) != 0)) h++
  } else {
    const rest = man & 0x1fff
    h = (<u32>e << 10) | (man >> 13)
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1) != 0)) h++
  }
  const he = (h >> 10) & 0x1f, hm = h & 0x3ff
  if (he == 0) return <f32>hm * reinterpret<f32>(0x33800000) // hm · 2^-24, exact
  if (he == 31) return reinterpret<f32>(0x7f800000)
  return reinterpret<f32>(((he + 112) << 23) | (hm << 13))
}

export function quantize(x: usize, xStride: i32, cols: i32, bs: i32, act: usize, ntok: i32): void {
  const nb = cols / bs
  const stride = actStride(cols, bs)
  for (let t = 0; t < ntok; t++) {
    const xt = x + <usize>t * <usize>xStride
    const at = act + <usize>t * <usize>stride
    const dp = at + <usize>(cols * 2), sp = dp + <usize>(nb * 4)
    for (let b = 0; b < nb; b++) {
      const xb = xt + <usize>(b * bs * 4)
      // max |x| with pmax (plain maxps; |x| is never -0) and NaN tracked on the side: a NaN
      // anywhere makes amax NaN, as the reference's Math.max does.
      let m = f32x4.splat(0), nan = m
      for (let i = 0; i < bs; i += 4) {
        const ax = f32x4.abs(v128.load(xb + (<usize>i << 2)))
        m = f32x4.pmax(m, ax)
        nan = v128.or(nan, f32x4.ne(ax, ax))
      }
      let amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)))
      if (v128.any_true(nan)) amax = NaN
      const d: f32 = amax / <f32>127
      const id = f32x4.splat(d == 0 ? <f32>0 : <f32>1 / d)
      // blocks of 32 keep their scale rounded to binary16, as llama.cpp's block_q8_0 does
      store<f32>(dp + (<usize>b << 2), bs == 32 ? f16round(d) : d)
      for (let i = 0; i < bs; i += 32) {
        let sum = i16x8.splat(0)
        for (let k = 0; k < 32; k += 8) {
          const p = xb + (<usize>(i + k) << 2)
          const q = i16x8.narrow_i32x4_s(q8lanes(v128.load(p), id), q8lanes(v128.load(p + 16), id))
          v128.store(at + (<usize>(b * bs + i + k) << 1), q)
          sum = i16x8.add(sum, q)
        }
        const s4 = i32x4.extadd_pairwise_i16x8_s(sum)
        const s = i32x4.extract_lane(s4, 0) + i32x4.extract_lane(s4, 1) + i32x4.extract_lane(s4, 2) + i32x4.extract_lane(s4, 3)
        store<i16>(sp + (<usize>((b * bs + i) >> 5) << 1), <i16>s)
      }
    }
  }
}
