import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GGMLType } from '../../engine/gguf/types.js'
import { randomActivations, randomRows } from '../../../test/support/testData.js'
import { backendTwins, nativeBackends, type RawKind, rawTwins, type Shape } from '../../../test/support/kernelTwins.js'
import { loadNativeQ8, nativeQ8Unavailable } from './q8.js'

// The native AVX2 K-quant matmuls (q8.cc matmulQ2_K / Q3_K / Q4_K / Q5_K / Q6_K) must equal the WASM exports and
// the TS reference bit for bit, for every token count (decode's 1 included) and shape. Skipped,
// with the reason, when the addon is not built or cannot load.

const native = loadNativeQ8()
const skip = native ? false : `native addon unavailable: ${nativeQ8Unavailable()}`

// Extreme quants in some blocks: all nibbles 15 / all 5-bit values 31 / all 6-bit values 63
// (largest products), and every scale and min 63; Q3_K every hmask bit clear (values -4..-1);
// Q6_K scales -128. `x0..x1`: the bytes filled with 0xff.
const extremes = (name: string, x0: number, x1: number) => (bytes: Uint8Array, gb: number, rng: () => number) => {
  if (rng() % 5 === 0) bytes.fill(0xff, gb + x0, gb + x1)
  if (name === 'Q3_K' && rng() % 5 === 0) bytes.fill(0, gb, gb + 128)
  if (name === 'Q6_K' && rng() % 5 === 0) bytes.fill(0x80, gb + 768, gb + 832)
}
const KINDS: RawKind[] = [
  { name: 'Q4_K', gbb: 576, wasm: 'matmul_q4_k', native: 'matmulQ4_K', scales: [0, 8], extremes: extremes('Q4_K', 16, 576) },
  { name: 'Q5_K', gbb: 704, wasm: 'matmul_q5_k', native: 'matmulQ5_K', scales: [0, 8], extremes: extremes('Q5_K', 16, 704) },
  { name: 'Q2_K', gbb: 336, wasm: 'matmul_q2_k', native: 'matmulQ2_K', scales: [320, 328], extremes: extremes('Q2_K', 0, 320) },
  { name: 'Q3_K', gbb: 440, wasm: 'matmul_q3_k', native: 'matmulQ3_K', scales: [432], extremes: extremes('Q3_K', 0, 432) },
  { name: 'Q6_K', gbb: 840, wasm: 'matmul_q6_k', native: 'matmulQ6_K', scales: [832], extremes: extremes('Q6_K', 0, 768) },
]

test('native matmulQ2_K / Q3_K / Q4_K / Q5_K / Q6_K equal the WASM exports on the same memory (raw random packed bytes, 1..19 tokens)', { skip }, () => {
  // Any packed bytes (every nibble, 6-bit scale/min and int8 scale value), f16 scales of every
  // finite exponent with a few subnormals and inf/NaN, the extreme blocks above, activation records
  // with q in [-127, 127] (runs of +-127 included) and f32 scales of any exponent; both kernels read
  // one memory (test/support/kernelTwins.ts).
  const cases: Shape[] = [[1, 1, [1, 2, 3, 8, 9]], [2, 9, [1, 5, 8, 17]], [3, 11, [1, 2, 19]], [5, 22, [1, 4, 12]]]
  rawTwins(native!, { seed: 77, pages: 256, blockValues: 256, kinds: KINDS, cases })
})

test('native K-quant matmuls reject arguments outside the memory by name', { skip }, () => {
  const mem = new Uint8Array(new SharedArrayBuffer(4096))
  assert.throws(() => native!.matmulQ4_K(mem, 0, 8, 1, 0, 1, 0, 32), /matmulQ4_K: weights, activations or output reach past the end of mem/)
  assert.throws(() => native!.matmulQ6_K(mem, 0, 5, 1, 0, 1, 0, 20), /matmulQ6_K: weights, activations or output reach past the end of mem/)
  assert.throws(() => native!.matmulQ6_K(mem, 0, 1, 1, 0, -1, 0, 4), /matmulQ6_K: ntok must be a non-negative integer/)
  assert.throws(() => native!.matmulQ4_K(mem, 0, 2, 1, 0, 1, 0, 4), /matmulQ4_K: shape out of range/)
  assert.throws(() => native!.matmulQ5_K(mem, 0, 6, 1, 0, 1, 0, 24), /matmulQ5_K: weights, activations or output reach past the end of mem/)
  assert.throws(() => native!.matmulQ3_K(mem, 0, 10, 1, 0, 1, 0, 40), /matmulQ3_K: weights, activations or output reach past the end of mem/)
  assert.throws(() => native!.matmulQ2_K(mem, 0, 13, 1, 0, 1, 0, 52), /matmulQ2_K: weights, activations or output reach past the end of mem/)
})

// Through the backend: native on (1 and 2 threads) vs native off vs the reference, on quantized
// real activations (so the per-32 sums and scales come from the quantizer).
const backends = nativeBackends(native)

test('K-quant matmuls (Q2_K..Q6_K): native backend equals WASM-only and the reference (odd rows, 1..67 tokens, 1-2 threads)', { skip }, () => {
  backendTwins(backends, {
    types: [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K],
    shapes: [[1, 256, [1, 2, 9]], [7, 768, [1, 3, 8, 17]], [13, 2304, [1, 67]], [10, 4352, [1, 5]]],
    rowsOf: (type, rows, cols) => randomRows(type, rows, cols, rows * 31 + cols),
    actsOf: (n, rows, nTok) => randomActivations(n, rows * 1000 + nTok),
  })
})
