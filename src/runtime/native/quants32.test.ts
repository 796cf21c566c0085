import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { GGMLType } from '../../engine/gguf/types.js'
import type { Backend } from '../../engine/kernels/backend.js'
import { createReferenceBackend } from '../../engine/kernels/reference.js'
import { makeRng, randomActivations, randomRows } from '../../../test/support/testData.js'
import { createWasmBackend } from '../wasmBackend.js'
import type { KernelExports } from '../wasmProtocol.js'
import { builtModule, WA } from '../wasmTypes.js'
import { loadNativeQ8, nativeQ8Unavailable } from './q8.js'
import { sameBits } from '../../../test/support/bits.js'

// The native AVX2 matmuls of the 32-value types (q8.cc matmulQ4_1 / Q5_0 / Q5_1) must equal the
// WASM exports and the TS reference bit for bit, for every token count (decode's 1 included) and
// shape. Skipped, with the reason, when the addon is not built or cannot load.

const native = loadNativeQ8()
const skip = native ? false : `native addon unavailable: ${nativeQ8Unavailable()}`

// gbb: bytes of a 4-row group block; scales: offsets of the f16 fields (d, m); qs: the nibbles' offset.
const KINDS = [
  { name: 'Q4_1', gbb: 80, wasm: 'matmul_q4_1', native: 'matmulQ4_1', scales: [0, 8], qs: 16 },
  { name: 'Q5_0', gbb: 88, wasm: 'matmul_q5_0', native: 'matmulQ5_0', scales: [0], qs: 24 },
  { name: 'Q5_1', gbb: 96, wasm: 'matmul_q5_1', native: 'matmulQ5_1', scales: [0, 8], qs: 32 },
] as const

test('native matmulQ4_1 / Q5_0 / Q5_1 equal the WASM exports on the same memory (raw random packed bytes, 1..19 tokens)', { skip }, () => {
  // Any packed bytes (every nibble and qh bit), f16 scales of every finite exponent with a few
  // subnormals and inf/NaN, some blocks all 15/31 (largest products) or all 0, activation records
  // with q in [-127, 127] (runs of +-127 included) and f32 scales of any exponent.
  const memory = new WA.Memory({ initial: 64, maximum: 65536, shared: true })
  const wasm = new WA.Instance(builtModule('kernels.wasm'), { env: { memory } }).exports as unknown as KernelExports
  const rng = makeRng(91)
  const tokensAll = [1, 2, 3, 4, 5, 6, 7, 8, 9]
  const cases: Array<[number, number, number[]]> = [[1, 1, tokensAll], [2, 9, tokensAll], [3, 11, [1, 2, 16, 17, 19]], [5, 40, [1, 4, 12]]]
  for (const kind of KINDS) {
    for (const [ngroups, nb, tokens] of cases) {
      for (const ntok of tokens) {
        const cols = nb * 32
        const stride = wasm.actStride(cols, 32)
        const outStride = ngroups * 4 + (ntok % 3) * 4
        const w = 65536, wBytes = ngroups * nb * kind.gbb
        const act = w + ((wBytes + 63) & ~63)
        const out = act + ntok * stride + 64
        const end = out + ntok * outStride * 4
        const have = memory.buffer.byteLength
        if (end > have) memory.grow(Math.ceil((end - have) / 65536))
        const bytes = new Uint8Array(memory.buffer)
        const dv = new DataView(memory.buffer)
        for (let i = 0; i < wBytes; i++) bytes[w + i] = rng() & 0xff
        for (let g = 0; g < ngroups * nb; g++) {
          const gb = w + g * kind.gbb
          for (const at of kind.scales) {
            for (let r = 0; r < 4; r++) {
              const k = rng() % 64
              const h = k === 0 ? 0x7c00 | (rng() & 0x3ff) : k < 6 ? rng() & 0x83ff : (rng() & 0x8000) | ((1 + (rng() % 30)) << 10) | (rng() & 0x3ff)
              dv.setUint16(gb + at + 2 * r, h, true)
            }
          }
          const mode = rng() % 6
          if (mode === 0) bytes.fill(0xff, gb + 8 * kind.scales.length, gb + kind.gbb) // every q 15 / 31
          if (mode === 1) bytes.fill(0, gb + 8 * kind.scales.length, gb + kind.gbb) // every q 0
        }
        for (let t = 0; t < ntok; t++) {
          const at = act + t * stride
          for (let b = 0; b < nb; b++) {
            const mode = rng() % 4
            let s = 0
            for (let i = 0; i < 32; i++) {
              const q = mode === 0 ? 127 : mode === 1 ? -127 : (rng() % 255) - 127
              dv.setInt16(at + 2 * (32 * b + i), q, true)
              s += q
            }
            const e = rng() % 8 === 0 ? rng() % 254 : 100 + (rng() % 40)
            dv.setUint32(at + 2 * cols + 4 * b, ((rng() & 1) << 31) | (e << 23) | (rng() & 0x7fffff), true)
            dv.setInt16(at + 2 * cols + 4 * nb + 2 * b, s, true) // the block sum the quantizer stores
          }
        }
        new Float32Array(memory.buffer, out, ntok * outStride).fill(-1)
        wasm[kind.wasm](w, ngroups, nb, act, ntok, out, outStride)
        const want = new Float32Array(memory.buffer, out, ntok * outStride).slice()
        new Float32Array(memory.buffer, out, ntok * outStride).fill(-1)
        native![kind.native](new Uint8Array(memory.buffer), w, ngroups, nb, act, ntok, out, outStride)
        sameBits(new Float32Array(memory.buffer, out, ntok * outStride), want, `${kind.name} ngroups ${ngroups} nb ${nb} ntok ${ntok}`)
      }
    }
  }
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
const ref = createReferenceBackend()
const backends: Array<[string, Backend]> = []
before(async () => {
  if (!native) return
  for (const threads of [1, 2]) {
    backends.push([`native ${threads}t`, await createWasmBackend({ threads, spinMs: 1 })])
    backends.push([`wasm ${threads}t`, await createWasmBackend({ threads, spinMs: 1, native: false })])
  }
})
after(() => {
  for (const [, b] of backends) b.close()
})

test('Q4_1 / Q5_0 / Q5_1 matmuls: native backend equals WASM-only and the reference (odd rows, 1..9 and 67 tokens, 1-2 threads)', { skip }, () => {
  const shapes: Array<[number, number, number[]]> = [[1, 32, [1, 2, 9]], [7, 96, [1, 2, 3, 4, 5, 6, 7, 8, 9]], [13, 2048, [1, 67]], [10, 4352, [1, 5]]]
  for (const type of [GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1]) {
    for (const [rows, cols, tokens] of shapes) {
      const data = randomRows(type, rows, cols, rows * 37 + cols)
      const r = ref.allocMatrix('w', type, rows, cols)
      ref.writeRows(r, 0, data)
      const ms = backends.map(([, b]) => {
        const m = b.allocMatrix('w', type, rows, cols)
        b.writeRows(m, 0, data)
        return m
      })
      for (const nTok of tokens) {
        const x = randomActivations(nTok * cols, rows * 1000 + nTok)
        const want = ref.matmul(r, x, nTok)
        backends.forEach(([name, b], i) => sameBits(b.matmul(ms[i], x, nTok), want, `${name} type ${type} ${rows}x${cols} nTok ${nTok}`))
      }
    }
  }
})
