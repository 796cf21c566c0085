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

// The native AVX2 K-quant matmuls (q8.cc matmulQ2_K / Q3_K / Q4_K / Q5_K / Q6_K) must equal the WASM exports and
// the TS reference bit for bit, for every token count (decode's 1 included) and shape. Skipped,
// with the reason, when the addon is not built or cannot load.

const native = loadNativeQ8()
const skip = native ? false : `native addon unavailable: ${nativeQ8Unavailable()}`

const KINDS = [
  { name: 'Q4_K', gbb: 576, wasm: 'matmul_q4_k', native: 'matmulQ4_K', scales: [0, 8] },
  { name: 'Q5_K', gbb: 704, wasm: 'matmul_q5_k', native: 'matmulQ5_K', scales: [0, 8] },
  { name: 'Q2_K', gbb: 336, wasm: 'matmul_q2_k', native: 'matmulQ2_K', scales: [320, 328] },
  { name: 'Q3_K', gbb: 440, wasm: 'matmul_q3_k', native: 'matmulQ3_K', scales: [432] },
  { name: 'Q6_K', gbb: 840, wasm: 'matmul_q6_k', native: 'matmulQ6_K', scales: [832] },
] as const

test('native matmulQ2_K / Q3_K / Q4_K / Q5_K / Q6_K equal the WASM exports on the same memory (raw random packed bytes, 1..19 tokens)', { skip }, () => {
  // Any packed bytes (every nibble, 6-bit scale/min and int8 scale value), f16 scales of every
  // finite exponent with a few subnormals and inf/NaN, activation records with q in [-127, 127]
  // (runs of +-127 included) and f32 scales of any exponent; both kernels read one memory.
  const memory = new WA.Memory({ initial: 256, maximum: 65536, shared: true })
  const wasm = new WA.Instance(builtModule('kernels.wasm'), { env: { memory } }).exports as unknown as KernelExports
  const rng = makeRng(77)
  const cases: Array<[number, number, number[]]> = [[1, 1, [1, 2, 3, 8, 9]], [2, 9, [1, 5, 8, 17]], [3, 11, [1, 2, 19]], [5, 22, [1, 4, 12]]]
  for (const kind of KINDS) {
    for (const [ngroups, nb, tokens] of cases) {
      for (const ntok of tokens) {
        const cols = nb * 256
        const stride = wasm.actStride(cols, 256)
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
          // extreme quants in some blocks: all nibbles 15 / all 5-bit values 31 / all 6-bit values 63
          // (largest products), and every scale and min 63
          const [x0, x1] = kind.name === 'Q6_K' ? [0, 768] : kind.name === 'Q2_K' ? [0, 320] : kind.name === 'Q3_K' ? [0, 432] : [16, kind.gbb]
          if (rng() % 5 === 0) bytes.fill(0xff, gb + x0, gb + x1)
          if (kind.name === 'Q3_K' && rng() % 5 === 0) bytes.fill(0, gb, gb + 128) // every hmask bit clear: values -4..-1
          if (kind.name === 'Q6_K' && rng() % 5 === 0) bytes.fill(0x80, gb + 768, gb + 832) // scales -128
        }
        for (let t = 0; t < ntok; t++) {
          const at = act + t * stride
          for (let b = 0; b < nb; b++) {
            const mode = rng() % 4
            for (let i = 0; i < 256; i++) {
              const q = mode === 0 ? 127 : mode === 1 ? -127 : (rng() % 255) - 127
              dv.setInt16(at + 2 * (256 * b + i), q, true)
            }
            const e = rng() % 8 === 0 ? rng() % 254 : 100 + (rng() % 40)
            dv.setUint32(at + 2 * cols + 4 * b, ((rng() & 1) << 31) | (e << 23) | (rng() & 0x7fffff), true)
          }
          // the per-32 sums of q that the WASM quantizer stores after the scales
          for (let j = 0; j < cols / 32; j++) {
            let s = 0
            for (let i = 0; i < 32; i++) s += dv.getInt16(at + 2 * (32 * j + i), true)
            dv.setInt16(at + 2 * cols + 4 * nb + 2 * j, s, true)
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
const ref = createReferenceBackend()
const backends: Array<[string, Backend]> = []
before(async () => {
  if (!native) return
  for (const threads of [1, 2]) {
    backends.push([`native ${threads}t`, await createWasmBackend({ threads, spinMs: 1 })])
    backends.push([`wasm ${threads}t`, await createWasmBackend({ threads, spinMs: 1, native: false })])
  }
})
after(() => { for (const [, b] of backends) b.close() })

test('K-quant matmuls (Q2_K..Q6_K): native backend equals WASM-only and the reference (odd rows, 1..67 tokens, 1-2 threads)', { skip }, () => {
  const shapes: Array<[number, number, number[]]> = [[1, 256, [1, 2, 9]], [7, 768, [1, 3, 8, 17]], [13, 2304, [1, 67]], [10, 4352, [1, 5]]]
  for (const type of [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]) {
    for (const [rows, cols, tokens] of shapes) {
      const data = randomRows(type, rows, cols, rows * 31 + cols)
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
