import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { BLOCK, GGMLType, rowBytes } from '../engine/gguf/types.js'
import type { Backend } from '../engine/kernels/backend.js'
import { createReferenceBackend } from '../engine/kernels/reference.js'
import { extremeActivations, extremeQ8Rows, makeRng, randomActivations, randomRows } from '../../test/support/testData.js'
import { createWasmBackend } from './wasmBackend.js'
import { builtModule } from './wasmTypes.js'
import { exactBits } from '../../test/support/bits.js'

// Differential tests: the WASM backend (1, 2 and 3 threads) must equal the reference bit for bit.
// The WASM kernels alone (native: false); the native twins are tested in nativeQ8.test.ts and
// native/kquants.test.ts.

const TYPES = [
  ['F32', GGMLType.F32], ['F16', GGMLType.F16], ['BF16', GGMLType.BF16], ['Q8_0', GGMLType.Q8_0],
  ['Q4_0', GGMLType.Q4_0], ['Q4_1', GGMLType.Q4_1], ['Q5_0', GGMLType.Q5_0], ['Q5_1', GGMLType.Q5_1], ['Q2_K', GGMLType.Q2_K], ['Q3_K', GGMLType.Q3_K], ['Q4_K', GGMLType.Q4_K], ['Q5_K', GGMLType.Q5_K], ['Q6_K', GGMLType.Q6_K],
] as const

const ref = createReferenceBackend()
const wasm: Backend[] = []
before(async () => {
  for (const threads of [1, 2, 3]) wasm.push(await createWasmBackend({ threads, spinMs: 1, native: false }))
})
after(() => { for (const b of wasm) b.close() })

/** Column counts per type: several block multiples, including > 8 blocks (SUM8 lanes wrap). */
function colsFor(type: number): number[] {
  if (BLOCK[type].size === 256) return [256, 768, 2304]
  if (BLOCK[type].size === 32) return [32, 96, 352]
  return [8, 37, 75, 136]
}

function check(type: number, rows: number, cols: number, tokens: number[], seed: number): void {
  const data = randomRows(type, rows, cols, seed)
  const r = ref.allocMatrix('w', type, rows, cols)
  ref.writeRows(r, 0, data)
  const ms = wasm.map((b) => {
    const m = b.allocMatrix('w', type, rows, cols)
    // Written in two pieces, as a loader streaming a tensor would.
    const split = Math.floor(rows / 2) * rowBytes(type, cols)
    b.writeRows(m, 0, data.subarray(0, split))
    b.writeRows(m, Math.floor(rows / 2), data.subarray(split))
    return m
  })
  for (const nTok of tokens) {
    const x = randomActivations(nTok * cols, seed * 31 + nTok)
    const want = ref.matmul(r, x, nTok)
    wasm.forEach((b, i) => exactBits(b.matmul(ms[i], x, nTok), want, `type ${type} ${rows}x${cols} nTok ${nTok} threads ${b.threads}`))
  }
}

for (const [name, type] of TYPES) {
  test(`${name}: WASM matmul equals the reference bit for bit (shapes, batches, threads)`, () => {
    let seed = 1 + type
    for (const cols of colsFor(type)) {
      for (const rows of [1, 7, 13]) check(type, rows, cols, [1, 3, 17], seed++)
    }
  })

  test(`${name}: getRow equals the reference`, () => {
    const rows = 6, cols = colsFor(type)[1]
    const data = randomRows(type, rows, cols, 40 + type)
    const r = ref.allocMatrix('e', type, rows, cols)
    ref.writeRows(r, 0, data)
    const want = new Float32Array(cols), got = new Float32Array(cols)
    for (const b of wasm) {
      const m = b.allocMatrix('e', type, rows, cols)
      b.writeRows(m, 0, data)
      for (let row = 0; row < rows; row++) {
        ref.getRow(r, row, want)
        b.getRow(m, row, got)
        exactBits(got, want, `${name} row ${row} threads ${b.threads}`)
      }
    }
  })
}

test('a token computed alone equals the same token inside a batch (batch invariance)', () => {
  for (const type of [GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.F16]) {
    const rows = 9, cols = type === GGMLType.Q4_K ? 512 : 96
    const data = randomRows(type, rows, cols, 7)
    const x = randomActivations(17 * cols, 8)
    for (const b of wasm) {
      const m = b.allocMatrix('w', type, rows, cols)
      b.writeRows(m, 0, data)
      const batch = b.matmul(m, x, 17)
      for (const t of [0, 5, 16]) exactBits(b.matmul(m, x.subarray(t * cols, (t + 1) * cols), 1), batch.subarray(t * rows, (t + 1) * rows), `type ${type} token ${t}`)
    }
  }
})

test('medium case: Q8_0 300 x 1024, 64 tokens, and Q6_K 70 x 2048, 1 token', () => {
  check(GGMLType.Q8_0, 300, 1024, [64], 11)
  check(GGMLType.Q6_K, 70, 2048, [1], 12)
})

test('special activations: all zeros, negative zeros, one huge value per block', () => {
  const rng = makeRng(5)
  for (const type of [GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.F32]) {
    const cols = 512, rows = 5
    const data = randomRows(type, rows, cols, 3)
    const r = ref.allocMatrix('w', type, rows, cols)
    ref.writeRows(r, 0, data)
    const x = new Float32Array(3 * cols)
    x.fill(-0, 0, cols) // token 0: negative zeros
    for (let i = cols; i < 2 * cols; i++) x[i] = 0 // token 1: zeros
    for (let i = 2 * cols; i < 3 * cols; i++) x[i] = (i & 31) === 0 ? 1e30 : ((rng() & 0xff) - 128) * 1e-30
    const want = ref.matmul(r, x, 3)
    for (const b of wasm) {
      const m = b.allocMatrix('w', type, rows, cols)
      b.writeRows(m, 0, data)
      exactBits(b.matmul(m, x, 3), want, `type ${type} threads ${b.threads}`)
    }
  }
})

test('Q8_0 column-pair layout: int8 extremes, odd row counts, token counts around the 4-token tile', () => {
  // Weights mostly -128/127/-127 (the int8 extremes the sign-extension must keep), scales from the
  // smallest subnormal to the largest finite f16; activations in blocks that quantize to +-127
  // everywhere, so the block sums reach their extremes (32·128·127) in every lane.
  const rng = makeRng(77)
  const rowsOf = (rows: number, cols: number) => extremeQ8Rows(rng, rows, cols)
  const actsOf = (n: number) => extremeActivations(n, 5)
  // cols 4096: a token record is ~9 KiB, so a 256 KiB tile holds 24 tokens and 30 tokens cross it.
  const shapes: Array<[number, number, number[]]> = [
    [1, 32, [1, 2, 3, 4, 5]], [2, 288, [4, 7, 8, 9]], [5, 1056, [1, 3, 4, 6, 13, 67]], [6, 64, [11]], [9, 4096, [30]],
  ]
  for (const [rows, cols, tokens] of shapes) {
    const data = rowsOf(rows, cols)
    const r = ref.allocMatrix('w', GGMLType.Q8_0, rows, cols)
    ref.writeRows(r, 0, data)
    // Also written from an odd byte offset (the unaligned path of writeRows), row by row.
    const odd = new Uint8Array(data.length + 1).subarray(1)
    odd.set(data)
    const rb = rowBytes(GGMLType.Q8_0, cols)
    for (const b of wasm) {
      const m = b.allocMatrix('w', GGMLType.Q8_0, rows, cols)
      b.writeRows(m, 0, data)
      const mOdd = b.allocMatrix('w', GGMLType.Q8_0, rows, cols)
      for (let row = 0; row < rows; row++) b.writeRows(mOdd, row, odd.subarray(row * rb, (row + 1) * rb))
      for (const nTok of tokens) {
        const x = actsOf(nTok * cols)
        const want = ref.matmul(r, x, nTok)
        exactBits(b.matmul(m, x, nTok), want, `${rows}x${cols} nTok ${nTok} threads ${b.threads}`)
        exactBits(b.matmul(mOdd, x, nTok), want, `${rows}x${cols} nTok ${nTok} threads ${b.threads} (odd offset)`)
      }
      const got = new Float32Array(cols), exp = new Float32Array(cols)
      ref.getRow(r, rows - 1, exp)
      b.getRow(m, rows - 1, got)
      exactBits(got, exp, `getRow ${rows - 1} of ${rows}x${cols}`)
    }
  }
})

test('activation quantization edge cases: subnormal blocks (1/d overflows), +-Inf and NaN', () => {
  // Token 0: blocks of subnormals only (d is subnormal or 0, 1 ⊘ d = inf); token 1: one block with
  // an infinity, one with a NaN, the rest ordinary. Outputs that are NaN must be NaN on both sides
  // (NaN payloads are unspecified by ARITHMETIC.md); all others the same bits.
  for (const type of [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K]) {
    const cols = 512, rows = 6
    const data = randomRows(type, rows, cols, 9)
    const r = ref.allocMatrix('w', type, rows, cols)
    ref.writeRows(r, 0, data)
    const x = randomActivations(2 * cols, 4)
    for (let i = 0; i < cols; i++) x[i] = ((i % 7) - 3) * 2 ** -140 * (1 + (i % 5) / 8)
    x[cols + 40] = -Infinity
    x[cols + 300] = NaN
    const want = ref.matmul(r, x, 2)
    for (const b of wasm) {
      const m = b.allocMatrix('w', type, rows, cols)
      b.writeRows(m, 0, data)
      const got = b.matmul(m, x, 2)
      for (let i = 0; i < want.length; i++) {
        if (Number.isNaN(want[i])) assert.ok(Number.isNaN(got[i]), `type ${type} element ${i}: ${got[i]} should be NaN`)
        else exactBits(got.subarray(i, i + 1), want.subarray(i, i + 1), `type ${type} threads ${b.threads} element ${i}`)
      }
    }
  }
})

test('WASM backend rejects bad shapes, types and thread counts by name', async () => {
  const b = wasm[0]
  assert.throws(() => b.allocMatrix('bad', GGMLType.Q4_K, 4, 100), { name: 'KernelShapeError' })
  assert.throws(() => b.allocMatrix('bad', GGMLType.Q8_K, 4, 256), { name: 'UnsupportedTensorTypeError' })
  const m = b.allocMatrix('ok', GGMLType.Q8_0, 4, 32)
  assert.throws(() => b.writeRows(m, 3, new Uint8Array(2 * 34)), { name: 'KernelShapeError' })
  assert.throws(() => b.matmul(m, new Float32Array(31), 1), { name: 'KernelShapeError' })
  assert.throws(() => b.getRow(m, 4, new Float32Array(32)), { name: 'KernelShapeError' })
  await assert.rejects(createWasmBackend({ threads: 0 }), { name: 'InvalidParameterError' })
})

test('closed backends and missing kernel builds fail with their own errors, not KernelMemoryError', async () => {
  const b = await createWasmBackend({ threads: 2, spinMs: 1 })
  const m = b.allocMatrix('w', GGMLType.Q8_0, 4, 32)
  b.writeRows(m, 0, randomRows(GGMLType.Q8_0, 4, 32, 5))
  b.matmul(m, randomActivations(32, 1), 1)
  b.close()
  assert.throws(() => b.matmul(m, randomActivations(32, 1), 1), (e: Error) => e.name === 'KernelClosedError' && /matmul w/.test(e.message))
  assert.throws(() => builtModule('no-such-kernels.wasm'), (e: Error) => e.name === 'KernelBuildMissingError' && /no-such-kernels\.wasm/.test(e.message) && /npm run build/.test(e.message))
})

test('reused activation records: an input changed in place, another type or another row split between matmuls is quantized afresh', () => {
  // The backend reuses the last quantized records when the next matmul's input has the same bytes
  // (q/k/v, gate/up). A caller that rewrites the same array in place, a float matmul that overwrote
  // the records, or a matrix whose rows sit on other threads must still get the reference's bits.
  const cols = 352
  const x = randomActivations(5 * cols, 44)
  const mats = (b: Backend, rows: number, type: number, seed: number) => {
    const m = b.allocMatrix(`w${rows}/${type}`, type, rows, cols)
    b.writeRows(m, 0, randomRows(type, rows, cols, seed))
    return m
  }
  for (const b of wasm) {
    const steps: Array<[number, number, (x: Float32Array) => void]> = [
      [13, GGMLType.Q8_0, () => {}],
      [7, GGMLType.Q8_0, () => {}], // same input: reused
      [7, GGMLType.Q8_0, (v) => { for (let j = 3 * cols; j < 4 * cols; j++) v[j] = -v[j] }], // one token changed in place: not reused
      [9, GGMLType.F32, () => {}], // float rows overwrite the records
      [13, GGMLType.Q8_0, () => {}],
      [1, GGMLType.Q8_0, () => {}], // one row group: a single thread's memory
      [13, GGMLType.Q8_0, () => {}], // all threads again, same input
      [5, GGMLType.Q4_1, () => {}], // same block size, other kernel: reused
    ]
    for (const [i, [rows, type, change]] of steps.entries()) {
      change(x)
      const got = b.matmul(mats(b, rows, type, 100 + i), x, 5)
      const want = ref.matmul(mats(ref, rows, type, 100 + i), x, 5)
      exactBits(got, want, `threads ${b.threads}, step ${i}: ${rows} rows`)
    }
  }
})
