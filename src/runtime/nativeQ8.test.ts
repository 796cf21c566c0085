import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { GGMLType } from '../engine/gguf/types.js'
import type { Backend } from '../engine/kernels/backend.js'
import { createReferenceBackend } from '../engine/kernels/reference.js'
import { extremeActivations, extremeQ8Rows, makeRng } from '../../test/support/testData.js'
import { loadNativeQ8, nativeQ8Unavailable } from './native/q8.js'
import { createWasmBackend } from './wasmBackend.js'
import type { KernelExports } from './wasmProtocol.js'
import { builtModule, WA } from './wasmTypes.js'
import { sameBits } from '../../test/support/bits.js'

// The native AVX2 Q8_0 matmul (src/runtime/native/q8.cc) must equal the WASM kernel and the TS
// reference bit for bit. Skipped, with the reason, when the addon is not built or cannot load.

const native = loadNativeQ8()
const skip = native ? false : `native addon unavailable: ${nativeQ8Unavailable()}`

test('native matmulQ8_0 equals the WASM export on the same memory (random packed bytes, all shapes)', { skip }, () => {
  // Raw packed group blocks (any int8, f16 scales of every finite exponent incl. subnormals, and a
  // few inf/NaN), raw activation records (i16 q in [-127, 127] with +-127 runs, f32 d of any
  // finite exponent), several outStrides: both kernels read the same bytes of one memory.
  const memory = new WA.Memory({ initial: 256, maximum: 65536, shared: true })
  const wasm = new WA.Instance(builtModule('kernels.wasm'), { env: { memory } }).exports as unknown as KernelExports
  const rng = makeRng(2024)
  const cases: Array<[number, number, number[]]> = [
    [1, 1, [1, 2, 3, 4, 5, 6, 7, 8, 9]], [2, 9, [1, 2, 8, 13]], [3, 130, [1, 2, 9, 30, 67]], [1, 128, [1, 30]], [5, 33, [1, 16, 17, 67]],
  ]
  for (const [ngroups, nb, tokens] of cases) {
    for (const ntok of tokens) {
      const cols = nb * 32
      const stride = wasm.actStride(cols, 32)
      const outStride = ngroups * 4 + (ntok % 3) * 4
      const w = 65536, wBytes = ngroups * nb * 136
      const act = w + ((wBytes + 63) & ~63)
      const out = act + ntok * stride + 64
      const end = out + ntok * outStride * 4
      const have = memory.buffer.byteLength
      if (end > have) memory.grow(Math.ceil((end - have) / 65536))
      const bytes = new Uint8Array(memory.buffer)
      const dv = new DataView(memory.buffer)
      for (let i = 0; i < wBytes; i++) bytes[w + i] = rng() & 0xff
      for (let g = 0; g < ngroups * nb; g++) {
        for (let r = 0; r < 4; r++) {
          const kind = rng() % 64
          // mostly normal scales; some subnormal, largest finite, zero, and rarely inf/NaN
          const h = kind === 0 ? 0x7c00 | (rng() & 0x3ff) : kind < 6 ? rng() & 0x83ff : kind < 9 ? 0x7bff | ((rng() & 1) << 15) : (rng() & 0x8000) | ((1 + (rng() % 30)) << 10) | (rng() & 0x3ff)
          dv.setUint16(w + g * 136 + 2 * r, h, true)
        }
        if (rng() % 4 === 0) bytes.fill(rng() & 1 ? 0x80 : 0x7f, w + g * 136 + 8, w + g * 136 + 136)
      }
      for (let t = 0; t < ntok; t++) {
        const at = act + t * stride
        for (let b = 0; b < nb; b++) {
          const mode = rng() % 4
          for (let i = 0; i < 32; i++) {
            const q = mode === 0 ? 127 : mode === 1 ? -127 : (rng() % 255) - 127
            dv.setInt16(at + 2 * (32 * b + i), q, true)
          }
          const e = rng() % 8 === 0 ? rng() % 254 : 100 + (rng() % 40)
          dv.setUint32(at + 2 * cols + 4 * b, ((rng() & 1) << 31) | (e << 23) | (rng() & 0x7fffff), true)
        }
      }
      // The same sentinel under both: columns past 4·ngroups of a row must stay untouched.
      new Float32Array(memory.buffer, out, ntok * outStride).fill(-1)
      wasm.matmul_q8_0(w, ngroups, nb, act, ntok, out, outStride)
      const want = new Float32Array(memory.buffer, out, ntok * outStride).slice()
      new Float32Array(memory.buffer, out, ntok * outStride).fill(-1)
      native!.matmulQ8_0(new Uint8Array(memory.buffer), w, ngroups, nb, act, ntok, out, outStride)
      sameBits(new Float32Array(memory.buffer, out, ntok * outStride), want, `ngroups ${ngroups} nb ${nb} ntok ${ntok}`)
    }
  }
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

test('Q8_0 matmul: native backend equals WASM-only and the reference (extremes, odd rows, 1..67 tokens, 1-2 threads)', { skip }, () => {
  const rng = makeRng(91)
  const rowsOf = (rows: number, cols: number) => extremeQ8Rows(rng, rows, cols)
  const actsOf = (n: number, seed: number) => extremeActivations(n, seed)
  const shapes: Array<[number, number, number[]]> = [
    [1, 32, [1, 2, 3, 4, 5]], [7, 288, [1, 2, 6, 7, 8, 9]], [13, 1056, [1, 13, 67]], [6, 64, [1, 11]], [9, 4096, [30]], [10, 4160, [1, 2, 9]],
  ]
  for (const [rows, cols, tokens] of shapes) {
    const data = rowsOf(rows, cols)
    const r = ref.allocMatrix('w', GGMLType.Q8_0, rows, cols)
    ref.writeRows(r, 0, data)
    const ms = backends.map(([, b]) => {
      const m = b.allocMatrix('w', GGMLType.Q8_0, rows, cols)
      b.writeRows(m, 0, data)
      return m
    })
    for (const nTok of tokens) {
      const x = actsOf(nTok * cols, rows * 1000 + nTok)
      const want = ref.matmul(r, x, nTok)
      backends.forEach(([name, b], i) => sameBits(b.matmul(ms[i], x, nTok), want, `${name} ${rows}x${cols} nTok ${nTok}`))
    }
  }
})
