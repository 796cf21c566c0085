import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GGMLType } from '../../engine/gguf/types.js'
import { randomActivations, randomRows } from '../../../test/support/testData.js'
import { backendTwins, nativeBackends, type RawKind, rawTwins, type Shape } from '../../../test/support/kernelTwins.js'
import { loadNativeQ8, nativeQ8Unavailable } from './q8.js'

// The native AVX2 matmuls of the 32-value types (q8.cc matmulQ4_1 / Q5_0 / Q5_1) must equal the
// WASM exports and the TS reference bit for bit, for every token count (decode's 1 included) and
// shape. Skipped, with the reason, when the addon is not built or cannot load.

const native = loadNativeQ8()
const skip = native ? false : `native addon unavailable: ${nativeQ8Unavailable()}`

// gbb: bytes of a 4-row group block; scales: offsets of the f16 fields (d, m); after them the qh
// bytes (Q5) and the nibbles. Some blocks all 15/31 (largest products) or all 0.
const extremes = (nScales: number, gbb: number) => (bytes: Uint8Array, gb: number, rng: () => number) => {
  const mode = rng() % 6
  if (mode === 0) bytes.fill(0xff, gb + 8 * nScales, gb + gbb) // every q 15 / 31
  if (mode === 1) bytes.fill(0, gb + 8 * nScales, gb + gbb) // every q 0
}
const KINDS: RawKind[] = [
  { name: 'Q4_1', gbb: 80, wasm: 'matmul_q4_1', native: 'matmulQ4_1', scales: [0, 8], extremes: extremes(2, 80) },
  { name: 'Q5_0', gbb: 88, wasm: 'matmul_q5_0', native: 'matmulQ5_0', scales: [0], extremes: extremes(1, 88) },
  { name: 'Q5_1', gbb: 96, wasm: 'matmul_q5_1', native: 'matmulQ5_1', scales: [0, 8], extremes: extremes(2, 96) },
]

test('native matmulQ4_1 / Q5_0 / Q5_1 equal the WASM exports on the same memory (raw random packed bytes, 1..19 tokens)', { skip }, () => {
  // Any packed bytes (every nibble and qh bit), f16 scales of every finite exponent with a few
  // subnormals and inf/NaN, the extreme blocks above, activation records with q in [-127, 127]
  // (runs of +-127 included) and f32 scales of any exponent (test/support/kernelTwins.ts).
  const tokensAll = [1, 2, 3, 4, 5, 6, 7, 8, 9]
  const cases: Shape[] = [[1, 1, tokensAll], [2, 9, tokensAll], [3, 11, [1, 2, 16, 17, 19]], [5, 40, [1, 4, 12]]]
  rawTwins(native!, { seed: 91, pages: 64, blockValues: 32, kinds: KINDS, cases })
})

test('native matmulQ4_1 / Q5_0 / Q5_1 reject arguments outside the memory by name', { skip }, () => {
  const mem = new Uint8Array(new SharedArrayBuffer(4096))
  assert.throws(() => native!.matmulQ4_1(mem, 0, 13, 4, 0, 1, 0, 52), /matmulQ4_1: weights, activations or output reach past the end of mem/)
  assert.throws(() => native!.matmulQ5_0(mem, 0, 1, 1, 4090, 1, 0, 4), /matmulQ5_0: weights, activations or output reach past the end of mem/)
  assert.throws(() => native!.matmulQ5_1(mem, 0, 1, 1, 0, 1.5, 0, 4), /matmulQ5_1: ntok must be a non-negative integer/)
  assert.throws(() => native!.matmulQ5_1(mem, 0, 2, 1, 0, 1, 0, 4), /matmulQ5_1: shape out of range/)
})

// Through the backend: native on (1 and 2 threads) vs native off vs the reference, on quantized
// real activations (so the block sums and scales come from the quantizer).
const backends = nativeBackends(native)

test('Q4_1 / Q5_0 / Q5_1 matmuls: native backend equals WASM-only and the reference (odd rows, 1..9 and 67 tokens, 1-2 threads)', { skip }, () => {
  backendTwins(backends, {
    types: [GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1],
    shapes: [[1, 32, [1, 2, 9]], [7, 96, [1, 2, 3, 4, 5, 6, 7, 8, 9]], [13, 2048, [1, 67]], [10, 4352, [1, 5]]],
    rowsOf: (type, rows, cols) => randomRows(type, rows, cols, rows * 37 + cols),
    actsOf: (n, rows, nTok) => randomActivations(n, rows * 1000 + nTok),
  })
})
