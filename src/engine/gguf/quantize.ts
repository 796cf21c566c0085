/**
 * f32 -> GGUF block encoders for F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K, byte-compatible with
 * llama.cpp's `block_*` structs (ggml-common.h), and the matching dequantizer.
 *
 * The encoders only have to produce *valid* blocks close to the input (they write synthetic
 * models); they use a one-pass scale choice instead of llama.cpp's iterative search, so their
 * bytes differ from llama-quantize's for the same input. The dequantizer is canonical: it follows
 * the `get_rows` formulas of docs/ARITHMETIC.md step by step in binary32.
 *
 * Block layouts (little-endian):
 *   Q8_0 (32 values, 34 bytes):  f16 d | int8 q[32]                      x = d*q
 *   Q4_0 (32 values, 18 bytes):  f16 d | u8 qs[16]                       x = d*(q-8); q_i = low nibble
 *                                of qs[i] for i < 16, high nibble of qs[i-16] for i >= 16
 *   Q4_1 (32 values, 20 bytes):  f16 d | f16 m | u8 qs[16]               x = d*q + m; nibbles as Q4_0
 *   Q5_0 (32 values, 22 bytes):  f16 d | u8 qh[4] | u8 qs[16]            x = d*(q-16); q_i = Q4_0's nibble
 *                                plus 16 when bit i of the little-endian u32 qh is set
 *   Q5_1 (32 values, 24 bytes):  f16 d | f16 m | u8 qh[4] | u8 qs[16]    x = d*q + m; q as Q5_0
 *   (the 32-value encoders are llama.cpp's quantize_row_q4_1/q5_0/q5_1_ref step by step)
 *   Q2_K (256 values, 84 bytes):  u8 scales[16] | u8 qs[64] | f16 d | f16 dmin
 *                                16 sub-blocks of 16: x = d*sc_j*q - dmin*m_j (sc_j, m_j = low, high
 *                                nibble of scales[j]); element 128n + 32k + l takes bits 2k, 2k+1 of
 *                                qs[32n + l]
 *   Q3_K (256 values, 110 bytes): u8 hmask[32] | u8 qs[64] | u8 scales[12] | f16 d
 *                                16 sub-blocks of 16: x = d*(sc_j-32)*q, q = (2 bits as Q2_K) - 4,
 *                                +4 back when bit 4n + k of hmask[l] is set; 6-bit sc_j packed as
 *                                in quantize_row_q3_K_ref (low nibbles, then 2-bit tops in bytes 8-11)
 *   Q4_K (256 values, 144 bytes): f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
 *                                8 sub-blocks of 32: x = d*sc_j*q - dmin*m_j, 6-bit sc/m packed as
 *                                in get_scale_min_k4; qs[32c + l] holds sub-block 2c (low nibble)
 *                                and 2c+1 (high nibble)
 *   Q5_K (256 values, 176 bytes): f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
 *                                as Q4_K with 5-bit q: element 64c + l (l < 32) takes the low nibble
 *                                of qs[32c + l] and bit 2c of qh[l] as its 16s bit; element
 *                                64c + 32 + l the high nibble and bit 2c + 1
 *   Q6_K (256 values, 210 bytes): u8 ql[128] | u8 qh[64] | int8 scales[16] | f16 d
 *                                16 sub-blocks of 16: x = d*sc_j*(q-32), q 6 bits split into ql/qh
 */
import { b2f, f2b, f2h, h2f } from '../math/half.js'
import { GgufTensorDataError, UnsupportedTensorTypeError } from './errors.js'
import { SUPPORTED_TENSOR_TYPES } from './read.js'
import { BLOCK, GGMLType, ggmlTypeName, rowBytes } from './types.js'

const fr = Math.fround

/** Nearest integer, ties away from zero (C `roundf`), as llama.cpp's quantizers use. */
function roundAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5)
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v
}

function putF16(out: Uint8Array, o: number, x: number): number {
  const h = f2h(x)
  out[o] = h & 0xff
  out[o + 1] = h >>> 8
  return h2f(h)
}

function getF16(b: Uint8Array, o: number): number {
  return h2f(b[o] | (b[o + 1] << 8))
}

function checkArgs(type: number, n: number, what: string): void {
  const block = BLOCK[type]
  if (!block) throw new UnsupportedTensorTypeError(what, ggmlTypeName(type), SUPPORTED_TENSOR_TYPES)
  if (n % block.size !== 0) throw new GgufTensorDataError(`${what}: ${n} values are not a multiple of the ${block.name} block size ${block.size}`)
}

/**
 * Encodes `n` values of `src` starting at `srcOff` as `type` blocks into `out` at `outOff`;
 * returns the number of bytes written (`rowBytes(type, n)`). `n` must be a multiple of the block size.
 *
 * @example
 *   const bytes = new Uint8Array(34); quantizeInto(GGMLType.Q8_0, new Float32Array(32).fill(1), 0, 32, bytes, 0)
 */
export function quantizeInto(type: number, src: Float32Array, srcOff: number, n: number, out: Uint8Array, outOff: number): number {
  checkArgs(type, n, 'quantize')
  switch (type) {
    case GGMLType.F32: {
      const dv = new DataView(out.buffer, out.byteOffset + outOff, n * 4)
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, src[srcOff + i], true)
      break
    }
    case GGMLType.F16:
    case GGMLType.BF16: {
      const conv = type === GGMLType.F16 ? f2h : f2b
      for (let i = 0; i < n; i++) {
        const h = conv(src[srcOff + i])
        out[outOff + 2 * i] = h & 0xff
        out[outOff + 2 * i + 1] = h >>> 8
      }
      break
    }
    case GGMLType.Q8_0:
      for (let b = 0; b < n; b += 32) quantQ8_0(src, srcOff + b, out, outOff + (b / 32) * 34)
      break
    case GGMLType.Q4_0:
      for (let b = 0; b < n; b += 32) quantQ4_0(src, srcOff + b, out, outOff + (b / 32) * 18)
      break
    case GGMLType.Q4_1:
      for (let b = 0; b < n; b += 32) quantQ4_1(src, srcOff + b, out, outOff + (b / 32) * 20)
      break
    case GGMLType.Q5_0:
      for (let b = 0; b < n; b += 32) quantQ5_0(src, srcOff + b, out, outOff + (b / 32) * 22)
      break
    case GGMLType.Q5_1:
      for (let b = 0; b < n; b += 32) quantQ5_1(src, srcOff + b, out, outOff + (b / 32) * 24)
      break
    case GGMLType.Q2_K:
      for (let b = 0; b < n; b += 256) quantQ2_K(src, srcOff + b, out, outOff + (b / 256) * 84)
      break
    case GGMLType.Q3_K:
      for (let b = 0; b < n; b += 256) quantQ3_K(src, srcOff + b, out, outOff + (b / 256) * 110)
      break
    case GGMLType.Q4_K:
      for (let b = 0; b < n; b += 256) quantQ4_K(src, srcOff + b, out, outOff + (b / 256) * 144)
      break
    case GGMLType.Q5_K:
      for (let b = 0; b < n; b += 256) quantQ5_K(src, srcOff + b, out, outOff + (b / 256) * 176)
      break
    case GGMLType.Q6_K:
      for (let b = 0; b < n; b += 256) quantQ6_K(src, srcOff + b, out, outOff + (b / 256) * 210)
      break
  }
  return rowBytes(type, n)
}

/** Encodes all of `src` as `type`; convenience over `quantizeInto`. */
export function quantize(type: number, src: Float32Array): Uint8Array {
  checkArgs(type, src.length, 'quantize')
  const out = new Uint8Array(rowBytes(type, src.length))
  quantizeInto(type, src, 0, src.length, out, 0)
  return out
}

function quantQ8_0(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  let amax = 0
  for (let i = 0; i < 32; i++) {
    const a = Math.abs(x[xo + i])
    if (a > amax) amax = a
  }
  const d = putF16(out, o, amax / 127)
  const id = d > 0 ? 1 / d : 0
  for (let i = 0; i < 32; i++) out[o + 2 + i] = clamp(roundAway(x[xo + i] * id), -127, 127) & 0xff
}

function quantQ4_0(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  // As llama.cpp: the value of largest magnitude maps to q = 0 (d = max / -8), so its sign gets
  // the extra level of the asymmetric range [-8, 7].
  let amax = 0
  let max = 0
  for (let i = 0; i < 32; i++) {
    const v = x[xo + i]
    if (Math.abs(v) > amax) {
      amax = Math.abs(v)
      max = v
    }
  }
  const d = putF16(out, o, amax === 0 ? 0 : max / -8) // never -0: zeros decode to +0
  const id = d !== 0 ? 1 / d : 0
  for (let i = 0; i < 16; i++) {
    const q0 = clamp(Math.floor(x[xo + i] * id + 8.5), 0, 15)
    const q1 = clamp(Math.floor(x[xo + 16 + i] * id + 8.5), 0, 15)
    out[o + 2 + i] = q0 | (q1 << 4)
  }
}

/** C's `(int8_t)` of a float in [-1, 256): truncation toward zero, then the low 8 bits as signed. */
function toInt8(v: number): number {
  return (Math.trunc(v) << 24) >> 24
}

// llama.cpp quantize_row_q4_1_ref / q5_1_ref: d = (max - min) / levels, q = (x - min)·id + 0.5
// truncated, capped at levels; m = min (f16). The arithmetic is C's float, so each step rounds.
function quantMin(x: Float32Array, xo: number, out: Uint8Array, o: number, levels: number): void {
  let min = Infinity
  let max = -Infinity
  for (let i = 0; i < 32; i++) {
    const v = x[xo + i]
    if (v < min) min = v
    if (v > max) max = v
  }
  const d = fr((max - min) / levels)
  const id = d ? fr(1 / d) : 0
  putF16(out, o, d)
  putF16(out, o + 2, min)
  for (let i = 0; i < 32; i++) kq[i] = Math.min(levels, toInt8(fr(fr(fr(x[xo + i] - min) * id) + 0.5)))
}

function quantQ4_1(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  quantMin(x, xo, out, o, 15)
  for (let i = 0; i < 16; i++) out[o + 4 + i] = kq[i] | (kq[16 + i] << 4)
}

function quantQ5_1(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  quantMin(x, xo, out, o, 31)
  putQ5(out, o + 4)
}

// llama.cpp quantize_row_q5_0_ref: as Q4_0 with 32 levels (d = max / -16, q = x·id + 16.5 truncated).
function quantQ5_0(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  let amax = 0
  let max = 0
  for (let i = 0; i < 32; i++) {
    const v = x[xo + i]
    if (Math.abs(v) > amax) {
      amax = Math.abs(v)
      max = v
    }
  }
  const d = fr(max / -16)
  const id = d ? fr(1 / d) : 0
  putF16(out, o, amax === 0 ? 0 : d)
  for (let i = 0; i < 32; i++) kq[i] = Math.min(31, toInt8(fr(fr(x[xo + i] * id) + 16.5)))
  putQ5(out, o + 2)
}

/** The 32 five-bit values in kq as llama.cpp's qh (u32 LE, bit i = the 16s bit of element i) then qs. */
function putQ5(out: Uint8Array, o: number): void {
  let qh = 0
  for (let i = 0; i < 32; i++) qh |= ((kq[i] >> 4) & 1) << i
  out[o] = qh & 0xff
  out[o + 1] = (qh >>> 8) & 0xff
  out[o + 2] = (qh >>> 16) & 0xff
  out[o + 3] = qh >>> 24
  for (let i = 0; i < 16; i++) out[o + 4 + i] = (kq[i] & 0xf) | ((kq[16 + i] & 0xf) << 4)
}

const subScale = new Float64Array(16)
const subMin = new Float64Array(8)
const iScale = new Int32Array(16)
const iMin = new Int32Array(8)

function quantQ4_K(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  quantKScaleMin(x, xo, out, o, 15)
  const qs = o + 16
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) out[qs + 32 * c + l] = kq[64 * c + l] | (kq[64 * c + 32 + l] << 4)
  }
}

function quantQ5_K(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  quantKScaleMin(x, xo, out, o, 31)
  // dequantize_row_q5_K's layout: 64-value chunk c, l < 32: low nibbles (element 64c + l, 16s bit
  // at bit 2c of qh[l]) and high nibbles (element 64c + 32 + l, bit 2c + 1).
  const qh = o + 16
  const qs = o + 48
  for (let l = 0; l < 32; l++) out[qh + l] = 0
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const a = kq[64 * c + l], b = kq[64 * c + 32 + l]
      out[qs + 32 * c + l] = (a & 0xf) | ((b & 0xf) << 4)
      out[qh + l] |= ((a >> 4) << (2 * c)) | ((b >> 4) << (2 * c + 1))
    }
  }
}

const kq = new Uint8Array(256)

/**
 * The shared part of Q4_K and Q5_K (llama.cpp `block_q4_K`/`block_q5_K` start with the same 16
 * bytes): writes d, dmin and the 12 packed 6-bit scale/min bytes at o, and leaves the 256
 * unsigned quants (0..qmax) in `kq`. One pass: each 32-value sub-block spans [min(0, lo), hi] in
 * qmax steps; the 8 step sizes and the 8 offsets are then quantized to 6 bits against the block's
 * f16 `d` and `dmin`.
 */
function quantKScaleMin(x: Float32Array, xo: number, out: Uint8Array, o: number, qmax: number): void {
  let maxScale = 0
  let maxMin = 0
  for (let j = 0; j < 8; j++) {
    let lo = 0
    let hi = -Infinity
    for (let i = 0; i < 32; i++) {
      const v = x[xo + 32 * j + i]
      if (v < lo) lo = v
      if (v > hi) hi = v
    }
    const s = (hi - lo) / qmax
    subScale[j] = s
    subMin[j] = -lo
    if (s > maxScale) maxScale = s
    if (-lo > maxMin) maxMin = -lo
  }
  const d = putF16(out, o, maxScale / 63)
  const dmin = putF16(out, o + 2, maxMin / 63)
  for (let j = 0; j < 8; j++) {
    iScale[j] = d > 0 ? clamp(roundAway(subScale[j] / d), 0, 63) : 0
    iMin[j] = dmin > 0 ? clamp(roundAway(subMin[j] / dmin), 0, 63) : 0
  }
  // get_scale_min_k4's inverse: sub-blocks 0-3 keep 6 bits in bytes 0-7; 4-7 put their low
  // 4 bits in bytes 8-11 and their top 2 bits in the spare top bits of bytes 0-7.
  const s = o + 4
  for (let j = 0; j < 4; j++) {
    out[s + j] = iScale[j] | ((iScale[j + 4] >> 4) << 6)
    out[s + j + 4] = iMin[j] | ((iMin[j + 4] >> 4) << 6)
    out[s + j + 8] = (iScale[j + 4] & 0xf) | ((iMin[j + 4] & 0xf) << 4)
  }
  for (let j = 0; j < 8; j++) {
    const step = d * iScale[j]
    const off = dmin * iMin[j]
    const inv = step > 0 ? 1 / step : 0
    for (let l = 0; l < 32; l++) kq[32 * j + l] = clamp(roundAway((x[xo + 32 * j + l] + off) * inv), 0, qmax)
  }
}

/**
 * The 256 2-bit values in kq packed as Q2_K/Q3_K's qs (64 bytes at o): element 128n + 32k + l in
 * bits 2k, 2k+1 of byte 32n + l (dequantize_row_q2_K's shift loop).
 */
function put2bit(out: Uint8Array, o: number): void {
  for (let i = 0; i < 64; i++) out[o + i] = 0
  for (let e = 0; e < 256; e++) out[o + 32 * (e >> 7) + (e & 31)] |= (kq[e] & 3) << (2 * ((e >> 5) & 3))
}

function quantQ2_K(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  // One pass as quantQ4_K's, over 16 sub-blocks of 16 with 3 steps and 4-bit scales and mins.
  let maxScale = 0
  let maxMin = 0
  for (let j = 0; j < 16; j++) {
    let lo = 0
    let hi = -Infinity
    for (let i = 0; i < 16; i++) {
      const v = x[xo + 16 * j + i]
      if (v < lo) lo = v
      if (v > hi) hi = v
    }
    subScale[j] = (hi - lo) / 3
    subMin16[j] = -lo
    if (subScale[j] > maxScale) maxScale = subScale[j]
    if (-lo > maxMin) maxMin = -lo
  }
  const d = putF16(out, o + 80, maxScale / 15)
  const dmin = putF16(out, o + 82, maxMin / 15)
  for (let j = 0; j < 16; j++) {
    const sc = d > 0 ? clamp(roundAway(subScale[j] / d), 0, 15) : 0
    const m = dmin > 0 ? clamp(roundAway(subMin16[j] / dmin), 0, 15) : 0
    out[o + j] = sc | (m << 4)
    const step = d * sc
    const inv = step > 0 ? 1 / step : 0
    for (let i = 0; i < 16; i++) kq[16 * j + i] = clamp(roundAway((x[xo + 16 * j + i] + dmin * m) * inv), 0, 3)
  }
  put2bit(out, o + 16)
}

/**
 * Each 16-value sub-block's step for a signed code whose most negative value is `qmin`: the
 * sub-block's value of largest magnitude (with its sign) divided by `qmin`, into `subScale`.
 * Returns the step of largest magnitude (0 when the block is all zeros). Q3_K and Q6_K.
 */
function signedSubSteps(x: Float32Array, xo: number, qmin: number): number {
  let best = 0
  for (let j = 0; j < 16; j++) {
    let amax = 0
    let max = 0
    for (let i = 0; i < 16; i++) {
      const v = x[xo + 16 * j + i]
      if (Math.abs(v) > amax) {
        amax = Math.abs(v)
        max = v
      }
    }
    const step = max / qmin
    subScale[j] = step
    if (Math.abs(step) > Math.abs(best)) best = step
  }
  return best
}

function quantQ3_K(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  // As quantQ6_K's: each 16-value sub-block's value of largest magnitude maps to q = -4; the 16
  // steps are quantized to 6-bit signed scales (-32..31) against the block's f16 d.
  const maxScale = signedSubSteps(x, xo, -4)
  const d = putF16(out, o + 108, maxScale === 0 ? 0 : maxScale / -32)
  for (let i = 96; i < 108; i++) out[o + i] = 0
  for (let j = 0; j < 16; j++) {
    const sc = d !== 0 ? clamp(roundAway(subScale[j] / d), -32, 31) : 0
    // quantize_row_q3_K_ref's packing of the 6-bit l = sc + 32
    const l = sc + 32
    if (j < 8) out[o + 96 + j] = l & 0xf
    else out[o + 96 + j - 8] |= (l & 0xf) << 4
    out[o + 96 + 8 + (j % 4)] |= (l >> 4) << (2 * (j >> 2))
    const step = d * sc
    const inv = step !== 0 ? 1 / step : 0
    for (let i = 0; i < 16; i++) kq[16 * j + i] = clamp(roundAway(x[xo + 16 * j + i] * inv), -4, 3) + 4
  }
  // hmask: bit 4n + k of hmask[l] is the 4s bit of element 128n + 32k + l
  for (let l = 0; l < 32; l++) out[o + l] = 0
  for (let e = 0; e < 256; e++) out[o + (e & 31)] |= (kq[e] >> 2) << (4 * (e >> 7) + ((e >> 5) & 3))
  put2bit(out, o + 32)
}

const subMin16 = new Float64Array(16)
const q6 = new Uint8Array(256)

function quantQ6_K(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  // Each 16-value sub-block: step = (signed value of largest magnitude) / -32, so that value maps
  // to q-32 = -32 (llama.cpp's make_qx_quants starting point); the 16 steps are then quantized to
  // int8 against the block's f16 d (the largest step maps to -128).
  const maxScale = signedSubSteps(x, xo, -32)
  const d = putF16(out, o + 208, maxScale === 0 ? 0 : maxScale / -128)
  for (let j = 0; j < 16; j++) {
    const sc = d !== 0 ? clamp(roundAway(subScale[j] / d), -128, 127) : 0
    iScale[j] = sc
    out[o + 192 + j] = sc & 0xff
    const step = d * sc
    const inv = step !== 0 ? 1 / step : 0
    for (let i = 0; i < 16; i++) q6[16 * j + i] = clamp(roundAway(x[xo + 16 * j + i] * inv), -32, 31) + 32
  }
  // ql/qh interleaving of dequantize_row_q6_K: per 128-value half h, element h*128 + 32k + l
  // (k = 0..3, l = 0..31) keeps its low nibble in ql[64h + l + 32(k&1)] (high nibble when k >= 2)
  // and its top 2 bits in qh[32h + l] at bit 2k.
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const e = 128 * h + l
      const a = q6[e], b = q6[e + 32], c = q6[e + 64], dd = q6[e + 96]
      out[o + 64 * h + l] = (a & 0xf) | ((c & 0xf) << 4)
      out[o + 64 * h + l + 32] = (b & 0xf) | ((dd & 0xf) << 4)
      out[o + 128 + 32 * h + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((dd >> 4) << 6)
    }
  }
}

/**
 * Decodes `n` values of `type` from `src` at `srcOff` into `out` (from `outOff`), following the
 * canonical `get_rows` formulas of docs/ARITHMETIC.md in binary32 (F32/F16/BF16 exact).
 *
 * @example
 *   dequantizeInto(GGMLType.Q8_0, bytes, 0, 32, row, 0)
 */
export function dequantizeInto(type: number, src: Uint8Array, srcOff: number, n: number, out: Float32Array, outOff: number): void {
  checkArgs(type, n, 'dequantize')
  switch (type) {
    case GGMLType.F32: {
      const dv = new DataView(src.buffer, src.byteOffset + srcOff, n * 4)
      for (let i = 0; i < n; i++) out[outOff + i] = dv.getFloat32(i * 4, true)
      return
    }
    case GGMLType.F16:
    case GGMLType.BF16: {
      const conv = type === GGMLType.F16 ? h2f : b2f
      for (let i = 0; i < n; i++) out[outOff + i] = conv(src[srcOff + 2 * i] | (src[srcOff + 2 * i + 1] << 8))
      return
    }
    case GGMLType.Q8_0:
      for (let b = 0; b < n / 32; b++) {
        const o = srcOff + 34 * b
        const d = getF16(src, o)
        for (let i = 0; i < 32; i++) out[outOff + 32 * b + i] = fr(d * ((src[o + 2 + i] << 24) >> 24))
      }
      return
    case GGMLType.Q4_0:
      for (let b = 0; b < n / 32; b++) {
        const o = srcOff + 18 * b
        const d = getF16(src, o)
        for (let i = 0; i < 16; i++) {
          out[outOff + 32 * b + i] = fr(d * ((src[o + 2 + i] & 0xf) - 8))
          out[outOff + 32 * b + 16 + i] = fr(d * ((src[o + 2 + i] >> 4) - 8))
        }
      }
      return
    case GGMLType.Q4_1:
    case GGMLType.Q5_0:
    case GGMLType.Q5_1: {
      const bytes = BLOCK[type].bytes
      for (let b = 0; b < n / 32; b++) {
        const o = srcOff + bytes * b
        const d = getF16(src, o)
        const m = type === GGMLType.Q5_0 ? 0 : getF16(src, o + 2)
        const qh = type === GGMLType.Q4_1 ? 0 : (src[o + bytes - 20] | (src[o + bytes - 19] << 8) | (src[o + bytes - 18] << 16) | (src[o + bytes - 17] << 24)) >>> 0
        for (let i = 0; i < 32; i++) {
          const byte = src[o + bytes - 16 + (i & 15)]
          const q = (i < 16 ? byte & 0xf : byte >> 4) | (((qh >>> i) & 1) << 4)
          out[outOff + 32 * b + i] = type === GGMLType.Q5_0 ? fr(d * (q - 16)) : fr(fr(d * q) + m)
        }
      }
      return
    }
    case GGMLType.Q2_K:
      for (let b = 0; b < n / 256; b++) {
        const o = srcOff + 84 * b
        const d = getF16(src, o + 80)
        const dmin = getF16(src, o + 82)
        for (let e = 0; e < 256; e++) {
          const s = src[o + (e >> 4)]
          const q = (src[o + 16 + 32 * (e >> 7) + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3
          out[outOff + 256 * b + e] = fr(fr(fr(d * (s & 0xf)) * q) - fr(dmin * (s >> 4)))
        }
      }
      return
    case GGMLType.Q3_K:
      for (let b = 0; b < n / 256; b++) {
        const o = srcOff + 110 * b
        const d = getF16(src, o + 108)
        for (let e = 0; e < 256; e++) {
          const j = e >> 4
          const sc = (((src[o + 96 + (j & 7)] >> (j < 8 ? 0 : 4)) & 0xf) | (((src[o + 104 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) - 32
          const k = (e >> 5) & 3
          const lo = (src[o + 32 + 32 * (e >> 7) + (e & 31)] >> (2 * k)) & 3
          const hi = (src[o + (e & 31)] >> (4 * (e >> 7) + k)) & 1
          out[outOff + 256 * b + e] = fr(fr(d * sc) * (lo - (hi ? 0 : 4)))
        }
      }
      return
    case GGMLType.Q4_K:
      for (let b = 0; b < n / 256; b++) {
        const o = srcOff + 144 * b
        const d = getF16(src, o)
        const dmin = getF16(src, o + 2)
        for (let j = 0; j < 8; j++) {
          const [sc, m] = scaleMinK4(src, o + 4, j)
          const ds = fr(d * sc)
          const dm = fr(dmin * m)
          const c = j >> 1
          const shift = (j & 1) * 4
          for (let l = 0; l < 32; l++) {
            const q = (src[o + 16 + 32 * c + l] >> shift) & 0xf
            out[outOff + 256 * b + 32 * j + l] = fr(fr(ds * q) - dm)
          }
        }
      }
      return
    case GGMLType.Q5_K:
      for (let b = 0; b < n / 256; b++) {
        const o = srcOff + 176 * b
        const d = getF16(src, o)
        const dmin = getF16(src, o + 2)
        for (let j = 0; j < 8; j++) {
          const [sc, m] = scaleMinK4(src, o + 4, j)
          const ds = fr(d * sc)
          const dm = fr(dmin * m)
          const c = j >> 1
          const shift = (j & 1) * 4
          for (let l = 0; l < 32; l++) {
            const q = ((src[o + 48 + 32 * c + l] >> shift) & 0xf) | (((src[o + 16 + l] >> j) & 1) << 4)
            out[outOff + 256 * b + 32 * j + l] = fr(fr(ds * q) - dm)
          }
        }
      }
      return
    case GGMLType.Q6_K:
      for (let b = 0; b < n / 256; b++) {
        const o = srcOff + 210 * b
        const d = getF16(src, o + 208)
        for (let e = 0; e < 256; e++) {
          const h = e >> 7
          const k = (e >> 5) & 3
          const l = e & 31
          const lo = (src[o + 64 * h + l + 32 * (k & 1)] >> (k >= 2 ? 4 : 0)) & 0xf
          const hi = (src[o + 128 + 32 * h + l] >> (2 * k)) & 3
          const sc = (src[o + 192 + (e >> 4)] << 24) >> 24
          out[outOff + 256 * b + e] = fr(fr(d * sc) * ((lo | (hi << 4)) - 32))
        }
      }
      return
  }
}

/** llama.cpp's `get_scale_min_k4`: the 6-bit scale and min of Q4_K/Q5_K sub-block `j` (0..7). */
export function scaleMinK4(b: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [b[o + j] & 63, b[o + j + 4] & 63]
  return [(b[o + j + 4] & 0xf) | ((b[o + j - 4] >> 6) << 4), (b[o + j + 4] >> 4) | ((b[o + j] >> 6) << 4)]
}

/** Decodes all of `bytes` (a whole number of `type` blocks) to f32. */
export function dequantize(type: number, bytes: Uint8Array): Float32Array {
  const block = BLOCK[type]
  if (!block) throw new UnsupportedTensorTypeError('dequantize', ggmlTypeName(type), SUPPORTED_TENSOR_TYPES)
  if (bytes.length % block.bytes !== 0) throw new GgufTensorDataError(`dequantize: ${bytes.length} bytes are not whole ${block.name} blocks`)
  const n = (bytes.length / block.bytes) * block.size
  const out = new Float32Array(n)
  dequantizeInto(type, bytes, 0, n, out, 0)
  return out
}
