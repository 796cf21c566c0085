import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BLOCK, GGMLType, rowBytes } from '../gguf/types.js'
import { f2h, h2f } from '../math/half.js'
import { dot8 } from '../math/canonical.js'
import {
  blockTerm, createReferenceBackend, dequantizeRow, q4kScaleMin, quantizeQ8, rowdot, sum8,
} from './reference.js'
import { randomActivations, randomRows } from '../../../test/support/testData.js'
import { dequantize } from '../gguf/quantize.js'

const fr = Math.fround
const bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]

test('sum8 folds eight lanes in the spec order, not left to right', () => {
  // Left to right, 1 + 2^24 + 1 loses both ones; SUM8 puts them in lanes 0 and 4, added first.
  const big = 2 ** 24
  assert.equal(sum8([1, big, 0, 0, 1]), big + 2)
  assert.equal(fr(fr(1 + big) + 1), big)
  // lane 0 gets x0 and x8: ((x0 + x8) + x4) ... checked on a sequence where order matters
  const xs = [1e8, 3, -1e8, 5, 7, 11, 13, 17, 19]
  const acc = [fr(1e8 + 19), 3, -1e8, 5, 7, 11, 13, 17]
  const want = fr(fr(fr(acc[0] + acc[4]) + fr(acc[2] + acc[6])) + fr(fr(acc[1] + acc[5]) + fr(acc[3] + acc[7])))
  assert.equal(sum8(xs), want)
  assert.equal(sum8([]), 0)
  assert.equal(Object.is(sum8([-0]), 0), true) // +0 accumulators: -0 never survives
})

test('dot8 is SUM8 of rounded products', () => {
  const a = [0.1, 0.2, 0.3], b = [3, 5, 7]
  assert.equal(dot8(a, 0, b, 0, a.length), sum8([fr(0.1 * 3), fr(0.2 * 5), fr(0.3 * 7)]))
})

test('quantizeQ8 rounds half away from zero, clamps, and zero blocks have d = 0', () => {
  const x = new Float32Array(64)
  x[0] = 127 // amax of block 0, so d = 1 and id = 1
  x[1] = 2.5; x[2] = -2.5; x[3] = 0.5; x[4] = -0.49999997; x[5] = 126.5
  const { d, q } = quantizeQ8(x, 32)
  assert.equal(d[0], 1)
  assert.deepEqual([...q.subarray(0, 6)], [127, 3, -3, 1, 0, 127])
  assert.equal(d[1], 0)
  assert.ok(q.subarray(32).every((v) => v === 0))
  const y = new Float32Array(32).fill(-3)
  const r = quantizeQ8(y, 32)
  // blocks of 32 store the scale rounded to binary16 (as llama.cpp); blocks of 256 keep binary32
  assert.equal(r.d[0], h2f(f2h(fr(3 / 127))))
  assert.notEqual(r.d[0], fr(3 / 127))
  assert.ok(r.q.every((v) => v === -127))
  const y256 = new Float32Array(256).fill(-3)
  assert.equal(quantizeQ8(y256, 256).d[0], fr(3 / 127))
  assert.throws(() => quantizeQ8(new Float32Array(33), 32), { name: 'KernelShapeError' })
})

test('Q8_0 and Q4_0 block terms match hand computation', () => {
  const row = new Uint8Array(34)
  const dh = f2h(0.5)
  row[0] = dh & 0xff; row[1] = dh >> 8
  for (let i = 0; i < 32; i++) row[2 + i] = (i - 16) & 0xff
  const qa = new Int8Array(32).fill(2)
  // Σ (i-16)·2 = 2·(496 - 512) = -32; term = (0.5 ⊗ 0.25) ⊗ -32
  assert.equal(blockTerm(GGMLType.Q8_0, row, 0, qa, 0.25), -4)
  const r4 = new Uint8Array(18)
  r4[0] = dh & 0xff; r4[1] = dh >> 8
  r4[2] = 0x9f // element 0 = 15 - 8 = 7, element 16 = 9 - 8 = 1
  const qb = new Int8Array(32); qb[0] = 1; qb[16] = 10
  // byte 0 holds values 15 and 9; others 0 → q - 8 = -8; Σ = 7·1 + 1·10 + 0 = 17
  assert.equal(blockTerm(GGMLType.Q4_0, r4, 0, qb, 1), 8.5)
  assert.throws(() => blockTerm(GGMLType.F32, row, 0, qa, 1), { name: 'UnsupportedTensorTypeError' })
})

test('Q4_K scale unpacking follows get_scale_min_k4', () => {
  const b = new Uint8Array(12)
  for (let i = 0; i < 12; i++) b[i] = (i * 37 + 11) & 0xff
  const sc = new Int32Array(8), m = new Int32Array(8)
  q4kScaleMin(b, 0, sc, m)
  for (let j = 0; j < 8; j++) {
    const [esc, em] = j < 4
      ? [b[j] & 63, b[j + 4] & 63]
      : [(b[j + 4] & 0xf) | ((b[j - 4] >> 6) << 4), (b[j + 4] >> 4) | ((b[j] >> 6) << 4)]
    assert.equal(sc[j], esc)
    assert.equal(m[j], em)
  }
})

test('rowdot equals SUM8 of block terms and the dequantized row agrees in scale', () => {
  for (const type of [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]) {
    const B = BLOCK[type].size
    const cols = 9 * B
    const row = randomRows(type, 1, cols, 5 + type)
    const x = randomActivations(cols, 77)
    const q8 = quantizeQ8(x, B)
    const terms = Array.from({ length: 9 }, (_, b) => blockTerm(type, row, b, q8.q, q8.d[b]))
    assert.equal(bits(rowdot(type, row, x)), bits(sum8(terms)))
    // The dequantized row times the dequantized activation is close to rowdot (same math, other rounding).
    const w = new Float32Array(cols)
    dequantizeRow(type, row, w)
    let approx = 0, mag = 0
    for (let i = 0; i < cols; i++) {
      const xa = q8.q[i] * q8.d[Math.floor(i / B)]
      approx += w[i] * xa
      mag += Math.abs(w[i] * xa)
    }
    assert.ok(Math.abs(approx - rowdot(type, row, x)) <= 1e-5 * mag, `type ${type}`)
  }
})

test('float rows: rowdot is DOT8 of the exact weights', () => {
  for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.BF16]) {
    const cols = 37
    const row = randomRows(type, 1, cols, 9)
    const x = randomActivations(cols, 10)
    const w = new Float32Array(cols)
    dequantizeRow(type, row, w)
    assert.equal(bits(rowdot(type, row, x)), bits(dot8(w, 0, x, 0, cols)))
  }
  const bf = new Uint8Array([0x80, 0x3f]) // bf16 1.0
  const out = new Float32Array(1)
  dequantizeRow(GGMLType.BF16, bf, out)
  assert.equal(out[0], 1)
})

test('dequantizeRow Q4_K and Q6_K follow the spec formulas', () => {
  const q4 = randomRows(GGMLType.Q4_K, 1, 256, 3)
  const out = new Float32Array(256)
  dequantizeRow(GGMLType.Q4_K, q4, out)
  // element 33 is the high nibble of byte 1 of chunk 0: sub-block 1
  const sc = new Int32Array(8), m = new Int32Array(8)
  q4kScaleMin(q4, 4, sc, m)
  const d = dequantHalf(q4, 0), dmin = dequantHalf(q4, 2)
  const q = q4[16 + 1] >> 4
  assert.equal(out[33], fr(fr(fr(d * sc[1]) * q) - fr(dmin * m[1])))
  const q6 = randomRows(GGMLType.Q6_K, 1, 256, 4)
  dequantizeRow(GGMLType.Q6_K, q6, out)
  // element 200 = 128 + 64 + 8: half 1, k = 2 (high nibble of ql[64 + 8]), qh bits 4..5 of qh[32 + 8]; sub-block 12
  const v = ((q6[64 + 8] >> 4) | (((q6[128 + 32 + 8] >> 4) & 3) << 4)) - 32
  const s = (q6[192 + 12] << 24) >> 24
  assert.equal(out[200], fr(fr(dequantHalf(q6, 208) * s) * v))
  assert.throws(() => dequantizeRow(GGMLType.Q8_K, q4, out), { name: 'UnsupportedTensorTypeError' })
})

test('Q4_1 / Q5_0 / Q5_1: block terms and dequantized rows follow the spec (llama.cpp layouts)', () => {
  const qa = new Int8Array(64)
  for (let i = 0; i < 64; i++) qa[i] = ((i * 53) % 255) - 127
  const da = Math.fround(0.0371)
  for (const type of [GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1]) {
    const bb = BLOCK[type].bytes
    const row = randomRows(type, 1, 64, 40 + type)
    const out = new Float32Array(64)
    dequantizeRow(type, row, out)
    for (let b = 0; b < 2; b++) {
      const o = bb * b
      const d = dequantHalf(row, o)
      const m = type === GGMLType.Q5_0 ? 0 : dequantHalf(row, o + 2)
      // qh: bytes 2..5 (Q5_0) or 4..7 (Q5_1), little-endian; qs: the last 16 bytes
      const hb = type === GGMLType.Q5_0 ? 2 : 4
      const qh = type === GGMLType.Q4_1 ? 0 : (row[o + hb] | (row[o + hb + 1] << 8) | (row[o + hb + 2] << 16) | (row[o + hb + 3] << 24)) >>> 0
      let s1 = 0, s2 = 0
      for (let i = 0; i < 32; i++) {
        const byte = row[o + bb - 16 + (i % 16)]
        const q = (i < 16 ? byte & 15 : byte >> 4) + (((qh >>> i) & 1) ? 16 : 0)
        const want = type === GGMLType.Q5_0 ? fr(d * (q - 16)) : fr(fr(d * q) + m)
        assert.equal(bits(out[32 * b + i]), bits(want), `type ${type} block ${b} element ${i}`)
        s1 += (type === GGMLType.Q5_0 ? q - 16 : q) * qa[32 * b + i]
        s2 += qa[32 * b + i]
      }
      const term = type === GGMLType.Q5_0 ? fr(fr(d * da) * fr(s1)) : fr(fr(fr(d * da) * fr(s1)) + fr(fr(m * da) * fr(s2)))
      assert.equal(bits(blockTerm(type, row, b, qa, da)), bits(term), `type ${type} block ${b}`)
    }
  }
})

test('dequantizeRow equals the GGUF dequantizer (written separately, checked against ggml loops) bit for bit, every quantized type', () => {
  for (const type of [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]) {
    const cols = 4 * 256
    const row = randomRows(type, 1, cols, 90 + type)
    const ours = new Float32Array(cols)
    dequantizeRow(type, row, ours)
    const theirs = dequantize(type, row)
    for (let i = 0; i < cols; i++) assert.equal(bits(ours[i]), bits(theirs[i]), `type ${type} element ${i}`)
  }
})

test('Q5_K: block term and dequantized row follow the spec, 5-bit values as dequantize_row_q5_K', () => {
  const row = randomRows(GGMLType.Q5_K, 1, 512, 31)
  // all-ones high bits in block 1: every value of that block is >= 16
  row.fill(0xff, 176 + 16, 176 + 48)
  const out = new Float32Array(512)
  dequantizeRow(GGMLType.Q5_K, row, out)
  const sc = new Int32Array(8), m = new Int32Array(8)
  const qa = new Int8Array(512)
  for (let i = 0; i < 512; i++) qa[i] = ((i * 37) % 255) - 127
  for (let b = 0; b < 2; b++) {
    const off = 176 * b
    q4kScaleMin(row, off + 4, sc, m)
    const d = dequantHalf(row, off), dmin = dequantHalf(row, off + 2)
    let s1 = 0, s2 = 0
    for (let i = 0; i < 256; i++) {
      // element i: chunk c = i >> 6, l = i & 31, high nibble when i & 32; 16s bit = bit (i >> 5) of qh[l]
      const byte = row[off + 48 + 32 * (i >> 6) + (i & 31)]
      const q = ((i & 32) ? byte >> 4 : byte & 0xf) + (((row[off + 16 + (i & 31)] >> (i >> 5)) & 1) << 4)
      if (b === 1) assert.ok(q >= 16)
      const j = i >> 5
      assert.equal(bits(out[256 * b + i]), bits(fr(fr(fr(d * sc[j]) * q) - fr(dmin * m[j]))), `block ${b} element ${i}`)
      s1 += sc[j] * q * qa[256 * b + i]
      s2 += m[j] * qa[256 * b + i]
    }
    const da = Math.fround(0.0123)
    const want = fr(fr(fr(d * da) * fr(s1)) - fr(fr(dmin * da) * fr(s2)))
    assert.equal(bits(blockTerm(GGMLType.Q5_K, row, b, qa, da)), bits(want))
  }
})

function dequantHalf(b: Uint8Array, off: number): number {
  // one-element F16 row through the public function (exact h2f)
  const o = new Float32Array(1)
  dequantizeRow(GGMLType.F16, b.subarray(off, off + 2), o)
  return o[0]
}

test('reference backend: matmul is rowdot per output, with shape errors named', () => {
  const be = createReferenceBackend()
  const rows = 5, cols = 64
  const m = be.allocMatrix('w', GGMLType.Q8_0, rows, cols)
  const data = randomRows(GGMLType.Q8_0, rows, cols, 21)
  be.writeRows(m, 0, data)
  const x = randomActivations(2 * cols, 22)
  const y = be.matmul(m, x, 2)
  const rb = rowBytes(GGMLType.Q8_0, cols)
  for (let t = 0; t < 2; t++) {
    for (let r = 0; r < rows; r++) {
      assert.equal(bits(y[t * rows + r]), bits(rowdot(GGMLType.Q8_0, data.subarray(r * rb, (r + 1) * rb), x.subarray(t * cols, (t + 1) * cols))))
    }
  }
  assert.throws(() => be.allocMatrix('bad', GGMLType.Q8_0, 2, 40), { name: 'KernelShapeError' })
  assert.throws(() => be.allocMatrix('bad', GGMLType.Q8_K, 2, 256), { name: 'UnsupportedTensorTypeError' })
  assert.throws(() => be.writeRows(m, 4, data.subarray(0, 2 * rb)), { name: 'KernelShapeError' })
  assert.throws(() => be.matmul(m, new Float32Array(10), 1), { name: 'KernelShapeError' })
})
