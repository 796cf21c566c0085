import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GGMLType } from '../engine/gguf/types.js'
import { extremeActivations, extremeQ8Rows, makeRng } from '../../test/support/testData.js'
import { loadNativeQ8, nativeQ8Unavailable } from './native/q8.js'
import { backendTwins, nativeBackends, type RawKind, rawTwins, type Shape } from '../../test/support/kernelTwins.js'

// The native AVX2 Q8_0 matmul (src/runtime/native/q8.cc) must equal the WASM kernel and the TS
// reference bit for bit. Skipped, with the reason, when the addon is not built or cannot load.

const native = loadNativeQ8()
const skip = native ? false : `native addon unavailable: ${nativeQ8Unavailable()}`

// Q8_0 scales: mostly normal; some subnormal, largest finite, zero, and rarely inf/NaN.
function q8Scale(rng: () => number): number {
  const kind = rng() % 64
  return kind === 0 ? 0x7c00 | (rng() & 0x3ff) : kind < 6 ? rng() & 0x83ff : kind < 9 ? 0x7bff | ((rng() & 1) << 15) : (rng() & 0x8000) | ((1 + (rng() % 30)) << 10) | (rng() & 0x3ff)
}

const Q8_0: RawKind = {
  name: 'Q8_0', gbb: 136, wasm: 'matmul_q8_0', native: 'matmulQ8_0', scales: [0], scale: q8Scale,
  // every 4th group block's int8 values all -128 or all 127
  extremes: (bytes, gb, rng) => {
    if (rng() % 4 === 0) bytes.fill(rng() & 1 ? 0x80 : 0x7f, gb + 8, gb + 136)
  },
}

test('native matmulQ8_0 equals the WASM export on the same memory (random packed bytes, all shapes)', { skip }, () => {
  // Raw packed group blocks (any int8, f16 scales of every finite exponent incl. subnormals, and a
  // few inf/NaN), raw activation records (i16 q in [-127, 127] with +-127 runs, f32 d of any
  // finite exponent), several outStrides: both kernels read the same bytes of one memory
  // (test/support/kernelTwins.ts).
  const cases: Shape[] = [
    [1, 1, [1, 2, 3, 4, 5, 6, 7, 8, 9]], [2, 9, [1, 2, 8, 13]], [3, 130, [1, 2, 9, 30, 67]], [1, 128, [1, 30]], [5, 33, [1, 16, 17, 67]],
  ]
  rawTwins(native!, { seed: 2024, pages: 256, blockValues: 32, kinds: [Q8_0], cases })
})

test('native matmulQ8_0 rejects arguments outside the memory and bad types by name', { skip }, () => {
  const mem = new Uint8Array(new SharedArrayBuffer(4096))
  assert.throws(() => native!.matmulQ8_0(mem, 0, 8, 4, 0, 2, 0, 32), /reach past the end of mem/)
  assert.throws(() => native!.matmulQ8_0(mem, -1, 1, 1, 0, 1, 0, 4), /w must be a non-negative integer/)
  assert.throws(() => native!.matmulQ8_0(new Float32Array(8) as unknown as Uint8Array, 0, 1, 1, 0, 1, 0, 4), /mem must be a Uint8Array/)
  assert.throws(() => native!.matmulQ8_0(mem, 0, 2, 1, 0, 1, 0, 4), /shape out of range/)
})

// Through the backend: native on (1 and 2 threads: main thread and a worker) vs native off vs the
// reference, with the awkward Q8_0 data of wasmBackend.test.ts.
const backends = nativeBackends(native)

test('Q8_0 matmul: native backend equals WASM-only and the reference (extremes, odd rows, 1..67 tokens, 1-2 threads)', { skip }, () => {
  const rng = makeRng(91)
  backendTwins(backends, {
    types: [GGMLType.Q8_0],
    shapes: [[1, 32, [1, 2, 3, 4, 5]], [7, 288, [1, 2, 6, 7, 8, 9]], [13, 1056, [1, 13, 67]], [6, 64, [1, 11]], [9, 4096, [30]], [10, 4160, [1, 2, 9]]],
    rowsOf: (_type, rows, cols) => extremeQ8Rows(rng, rows, cols),
    actsOf: (n, rows, nTok) => extremeActivations(n, rows * 1000 + nTok),
  })
})
