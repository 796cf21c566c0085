import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { f2h, h2f } from '../math/half.js'
import { dequantize, quantize } from './quantize.js'
import { BLOCK, GGMLType, rowBytes } from './types.js'

/** Deterministic test data: a mix of scales per block, signs, zeros and an outlier. */
function testData(n: number, seed = 12345): Float32Array {
  let s = seed
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1
  const x = new Float32Array(n)
  for (let i = 0; i < n; i++) x[i] = next() * (0.01 + 3 * Math.abs(next()))
  x[5] = 0
  x[17] = 40 // an outlier in the first block
  x.fill(0, 512, 512 + 256) // an all-zero K-quant block
  return x
}

/** Max abs error allowed per element, relative to the largest |x| in the element's block. */
const MAX_REL_ERR: Record<number, number> = {
  [GGMLType.F32]: 0,
  [GGMLType.F16]: 2 ** -11,
  [GGMLType.BF16]: 2 ** -8,
  [GGMLType.Q8_0]: 0.5 / 127 + 0.001,
  [GGMLType.Q4_0]: 1 / 8 + 0.001, // the side opposite the max clamps at 7 instead of 8
  [GGMLType.Q4_1]: 1 / 15 + 0.002, // half a step of (max - min) / 15, min rounded to f16
  [GGMLType.Q5_0]: 1 / 16 + 0.001,
  [GGMLType.Q5_1]: 1 / 31 + 0.002,
  [GGMLType.Q2_K]: 1 / 3 + 1 / 15, // half a step of a sub-block's range / 3, 4-bit scales and mins
  [GGMLType.Q3_K]: 1 / 4 + 1 / 64, // a value opposite the sub-block's extreme clamps at 3 of 4 steps
  [GGMLType.Q4_K]: 0.5 / 15 * 2 + 1 / 63,
  [GGMLType.Q5_K]: 0.5 / 31 * 2 + 1 / 63,
  [GGMLType.Q6_K]: 1 / 32 + 1 / 256 + 0.001, // +max clamps at 31 (one step); the int8 scale rounds by d/2
}

describe('quantize -> dequantize round trip', () => {
  for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]) {
    const b = BLOCK[type]
    it(`${b.name}: size, zeros and per-block error bound`, () => {
      const x = testData(256 * 8)
      const bytes = quantize(type, x)
      assert.equal(bytes.length, rowBytes(type, x.length))
      const y = dequantize(type, bytes)
      assert.equal(y.length, x.length)
      const blk = Math.max(b.size, 32)
      let sq = 0
      for (let i0 = 0; i0 < x.length; i0 += blk) {
        let amax = 0
        for (let i = i0; i < i0 + blk; i++) amax = Math.max(amax, Math.abs(x[i]))
        for (let i = i0; i < i0 + blk; i++) {
          const err = Math.abs(x[i] - y[i])
          sq += err * err
          if (b.size === 1) assert.ok(err <= Math.abs(x[i]) * MAX_REL_ERR[type], `${b.name} at ${i}: ${x[i]} -> ${y[i]}`)
          else assert.ok(err <= amax * MAX_REL_ERR[type], `${b.name} at ${i}: ${x[i]} -> ${y[i]} (block max ${amax})`)
        }
      }
      // The all-zero block decodes to zeros exactly.
      for (let i = 512; i < 768; i++) assert.equal(y[i], 0)
      assert.ok(Number.isFinite(sq))
    })
  }

  it('rejects lengths that are not whole blocks and unsupported types', () => {
    assert.throws(() => quantize(GGMLType.Q4_K, new Float32Array(128)), { name: 'GgufTensorDataError' })
    assert.throws(() => quantize(GGMLType.Q8_K, new Float32Array(256)), { name: 'UnsupportedTensorTypeError' })
  })
})

describe('block layouts match llama.cpp', () => {
  it('Q8_0: f16 d then int8 q', () => {
    const x = new Float32Array(32).map((_, i) => i - 16)
    const b = quantize(GGMLType.Q8_0, x)
    const d = h2f(b[0] | (b[1] << 8))
    assert.equal(d, h2f(f2h(16 / 127)))
    assert.equal((b[2] << 24) >> 24, -127) // x[0] = -16
    assert.equal((b[2 + 16] << 24) >> 24, 0)
  })

  it('Q4_0: element i in the low nibble of byte i, element i+16 in the high nibble', () => {
    const x = new Float32Array(32)
    x[0] = -8 // the max magnitude: d = -8 / -8 = 1, q = 0
    x[16] = 7
    x[3] = 2
    const b = quantize(GGMLType.Q4_0, x)
    assert.equal(h2f(b[0] | (b[1] << 8)), 1)
    assert.equal(b[2] & 0xf, 0)
    assert.equal(b[2] >> 4, 15)
    assert.equal(b[2 + 3] & 0xf, 10)
    assert.equal(b[2 + 4], 0x88)
  })

  // Literal transcriptions of ggml's dequantize_row_q4_1 / q5_0 / q5_1 (one 32-value block).
  function ggml32(type: number, b: Uint8Array): Float32Array {
    const y = new Float32Array(32)
    const d = h2f(b[0] | (b[1] << 8))
    if (type === GGMLType.Q4_1) {
      const m = h2f(b[2] | (b[3] << 8))
      for (let j = 0; j < 16; j++) {
        y[j] = (b[4 + j] & 0x0f) * d + m
        y[j + 16] = (b[4 + j] >> 4) * d + m
      }
      return y
    }
    const hb = type === GGMLType.Q5_0 ? 2 : 4
    const qh = (b[hb] | (b[hb + 1] << 8) | (b[hb + 2] << 16) | (b[hb + 3] << 24)) >>> 0
    for (let j = 0; j < 16; j++) {
      const xh0 = ((qh >>> j) << 4) & 0x10
      const xh1 = (qh >>> (j + 12)) & 0x10
      const x0 = (b[hb + 4 + j] & 0x0f) | xh0
      const x1 = (b[hb + 4 + j] >> 4) | xh1
      if (type === GGMLType.Q5_0) {
        y[j] = (x0 - 16) * d
        y[j + 16] = (x1 - 16) * d
      } else {
        const m = h2f(b[2] | (b[3] << 8))
        y[j] = x0 * d + m
        y[j + 16] = x1 * d + m
      }
    }
    return y
  }

  for (const type of [GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1]) {
    it(`${BLOCK[type].name}: our decoder equals ggml's loop, a ramp comes back in order`, () => {
      const x = testData(32 * 16, 7)
      const bytes = quantize(type, x)
      const ours = dequantize(type, bytes)
      for (let blk = 0; blk < 16; blk++) {
        const theirs = ggml32(type, bytes.subarray(blk * BLOCK[type].bytes, (blk + 1) * BLOCK[type].bytes))
        for (let i = 0; i < 32; i++) assert.ok(Math.abs(ours[blk * 32 + i] - theirs[i]) <= 1e-6 * (1 + Math.abs(theirs[i])), `block ${blk} elem ${i}`)
      }
      const ramp = new Float32Array(32).map((_, i) => (i - 16) / 8)
      const back = ggml32(type, quantize(type, ramp))
      for (let i = 0; i < 32; i++) assert.ok(Math.abs(back[i] - ramp[i]) < 0.13, `ramp ${i}: ${back[i]}`)
    })
  }

  // Literal transcriptions of ggml's dequantize_row_q4_K / _q5_K / _q6_K loops, so a layout
  // mistake shared by our encoder and decoder cannot pass unnoticed.
  function ggmlQ4K(b: Uint8Array): Float32Array {
    const y = new Float32Array(256)
    const d = h2f(b[0] | (b[1] << 8))
    const min = h2f(b[2] | (b[3] << 8))
    const scales = b.subarray(4, 16)
    const getScaleMin = (j: number): [number, number] =>
      j < 4 ? [scales[j] & 63, scales[j + 4] & 63] : [(scales[j + 4] & 0xf) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4)]
    let q = 16
    let is = 0
    let yi = 0
    for (let j = 0; j < 256; j += 64) {
      const [sc1, m1] = getScaleMin(is)
      const [sc2, m2] = getScaleMin(is + 1)
      for (let l = 0; l < 32; l++) y[yi++] = d * sc1 * (b[q + l] & 0xf) - min * m1
      for (let l = 0; l < 32; l++) y[yi++] = d * sc2 * (b[q + l] >> 4) - min * m2
      q += 32
      is += 2
    }
    return y
  }

  function ggmlQ5K(b: Uint8Array): Float32Array {
    const y = new Float32Array(256)
    const d = h2f(b[0] | (b[1] << 8))
    const min = h2f(b[2] | (b[3] << 8))
    const scales = b.subarray(4, 16)
    const getScaleMin = (j: number): [number, number] =>
      j < 4 ? [scales[j] & 63, scales[j + 4] & 63] : [(scales[j + 4] & 0xf) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4)]
    const qh = 16
    let ql = 48
    let is = 0
    let yi = 0
    let u1 = 1, u2 = 2
    for (let j = 0; j < 256; j += 64) {
      const [sc1, m1] = getScaleMin(is)
      const [sc2, m2] = getScaleMin(is + 1)
      for (let l = 0; l < 32; l++) y[yi++] = d * sc1 * ((b[ql + l] & 0xf) + (b[qh + l] & u1 ? 16 : 0)) - min * m1
      for (let l = 0; l < 32; l++) y[yi++] = d * sc2 * ((b[ql + l] >> 4) + (b[qh + l] & u2 ? 16 : 0)) - min * m2
      ql += 32
      is += 2
      u1 <<= 2
      u2 <<= 2
    }
    return y
  }

  function ggmlQ2K(b: Uint8Array): Float32Array {
    const y = new Float32Array(256)
    const d = h2f(b[80] | (b[81] << 8))
    const min = h2f(b[82] | (b[83] << 8))
    let q = 16, is = 0, yi = 0
    for (let n = 0; n < 256; n += 128) {
      let shift = 0
      for (let j = 0; j < 4; ++j) {
        let sc = b[is++]
        let dl = d * (sc & 0xf), ml = min * (sc >> 4)
        for (let l = 0; l < 16; ++l) y[yi++] = dl * ((b[q + l] >> shift) & 3) - ml
        sc = b[is++]
        dl = d * (sc & 0xf)
        ml = min * (sc >> 4)
        for (let l = 0; l < 16; ++l) y[yi++] = dl * ((b[q + l + 16] >> shift) & 3) - ml
        shift += 2
      }
      q += 32
    }
    return y
  }

  function ggmlQ3K(b: Uint8Array): Float32Array {
    const y = new Float32Array(256)
    const d = h2f(b[108] | (b[109] << 8))
    const aux = new Uint32Array(4)
    const sb = b.subarray(96, 108)
    for (let k = 0; k < 3; k++) aux[k] = (sb[4 * k] | (sb[4 * k + 1] << 8) | (sb[4 * k + 2] << 16) | (sb[4 * k + 3] << 24)) >>> 0
    const km1 = 0x03030303, km2 = 0x0f0f0f0f
    const tmp = aux[2]
    aux[2] = ((aux[0] >>> 4) & km2) | (((tmp >>> 4) & km1) << 4)
    aux[3] = ((aux[1] >>> 4) & km2) | (((tmp >>> 6) & km1) << 4)
    aux[0] = (aux[0] & km2) | (((tmp >>> 0) & km1) << 4)
    aux[1] = (aux[1] & km2) | (((tmp >>> 2) & km1) << 4)
    const scales = new Int8Array(aux.buffer)
    let q = 32, m = 1, is = 0, yi = 0
    for (let n = 0; n < 256; n += 128) {
      let shift = 0
      for (let j = 0; j < 4; ++j) {
        let dl = d * (scales[is++] - 32)
        for (let l = 0; l < 16; ++l) y[yi++] = dl * (((b[q + l] >> shift) & 3) - (b[l] & m ? 0 : 4))
        dl = d * (scales[is++] - 32)
        for (let l = 0; l < 16; ++l) y[yi++] = dl * (((b[q + l + 16] >> shift) & 3) - (b[l + 16] & m ? 0 : 4))
        shift += 2
        m <<= 1
      }
      q += 32
    }
    return y
  }

  function ggmlQ6K(b: Uint8Array): Float32Array {
    const y = new Float32Array(256)
    const d = h2f(b[208] | (b[209] << 8))
    let ql = 0, qh = 128, sc = 192, yo = 0
    for (let n = 0; n < 256; n += 128) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4
        const s8 = (i: number) => (b[sc + i] << 24) >> 24
        const q1 = ((b[ql + l] & 0xf) | (((b[qh + l] >> 0) & 3) << 4)) - 32
        const q2 = ((b[ql + l + 32] & 0xf) | (((b[qh + l] >> 2) & 3) << 4)) - 32
        const q3 = ((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) - 32
        const q4 = ((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) - 32
        y[yo + l] = d * s8(is) * q1
        y[yo + l + 32] = d * s8(is + 2) * q2
        y[yo + l + 64] = d * s8(is + 4) * q3
        y[yo + l + 96] = d * s8(is + 6) * q4
      }
      yo += 128
      ql += 64
      qh += 32
      sc += 8
    }
    return y
  }

  for (const [type, ref] of [[GGMLType.Q2_K, ggmlQ2K], [GGMLType.Q3_K, ggmlQ3K], [GGMLType.Q4_K, ggmlQ4K], [GGMLType.Q5_K, ggmlQ5K], [GGMLType.Q6_K, ggmlQ6K]] as const) {
    it(`${BLOCK[type].name}: our decoder equals ggml's loop, and both reproduce the input`, () => {
      const x = testData(256 * 4, 99)
      const bytes = quantize(type, x)
      const ours = dequantize(type, bytes)
      for (let blk = 0; blk < 4; blk++) {
        const theirs = ref(bytes.subarray(blk * BLOCK[type].bytes, (blk + 1) * BLOCK[type].bytes))
        for (let i = 0; i < 256; i++) {
          assert.ok(Math.abs(ours[blk * 256 + i] - theirs[i]) <= 1e-6 * (1 + Math.abs(theirs[i])), `block ${blk} elem ${i}`)
        }
      }
      // A smooth ramp must come back in order: a permuted layout would scramble it.
      const ramp = new Float32Array(256).map((_, i) => (i - 128) / 64)
      const back = ref(quantize(type, ramp))
      // 2- and 3-bit values are coarse (a step of up to 0.47 here); a permuted layout errs by ~2
      const tol = type === GGMLType.Q2_K || type === GGMLType.Q3_K ? 0.25 : 0.15
      for (let i = 0; i < 256; i++) assert.ok(Math.abs(back[i] - ramp[i]) < tol, `ramp ${i}: ${back[i]}`)
    })
  }
})
