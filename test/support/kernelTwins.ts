/**
 * The native kernels' twin checks (src/runtime/native/q8.cc against build/kernels.wasm and the TS
 * reference), shared by nativeQ8.test.ts, native/quants32.test.ts and native/kquants.test.ts:
 *
 * - `rawTwins`: the WASM export and the native function run on the same shared memory: raw random
 *   packed group blocks (f16 scales of every finite exponent, some subnormals, a few inf/NaN; each
 *   type's extreme blocks), raw activation records (i16 q in [-127, 127] with +-127 runs, f32 scales
 *   of any exponent, the per-32 sums the WASM quantizer stores) and several outStrides; the outputs
 *   must have the same bits, and the columns past 4·ngroups keep the same sentinel.
 * - `nativeBackends` + `backendTwins`: through the backend, native on (1 and 2 threads) and native
 *   off against the reference, on activations the quantizer itself turns into records.
 */
import { after, before } from 'node:test'
import type { Backend } from '../../src/engine/kernels/backend.js'
import { createReferenceBackend } from '../../src/engine/kernels/reference.js'
import type { NativeQ8 } from '../../src/runtime/native/q8.js'
import { createWasmBackend } from '../../src/runtime/wasmBackend.js'
import type { KernelExports, KernelName } from '../../src/runtime/wasmProtocol.js'
import { builtModule, WA } from '../../src/runtime/wasmTypes.js'
import { sameBits } from './bits.js'
import { makeRng } from './testData.js'

type Rng = () => number
type NativeMatmul = Exclude<keyof NativeQ8, 'vectorRoot' | 'layerLeaf'>

/** One kernel pair on raw memory. */
export type RawKind = {
  name: string
  /** Bytes of a 4-row group block. */
  gbb: number
  wasm: KernelName
  native: NativeMatmul
  /** Offsets in the group block of the f16 scale fields (4 rows each). */
  scales: readonly number[]
  /** The bits of one f16 scale; default `anyScale`. */
  scale?: (rng: Rng) => number
  /** Writes this type's extreme values into some group blocks (`gb`: the block's byte offset). */
  extremes: (bytes: Uint8Array, gb: number, rng: Rng) => void
}

/** [ngroups, nb (blocks per row), token counts]. */
export type Shape = [number, number, number[]]

/** A random f16: 1 in 64 inf/NaN, 5 in 64 subnormal or zero, the rest normal of any exponent; either sign. */
export function anyScale(rng: Rng): number {
  const k = rng() % 64
  return k === 0 ? 0x7c00 | (rng() & 0x3ff) : k < 6 ? rng() & 0x83ff : (rng() & 0x8000) | ((1 + (rng() % 30)) << 10) | (rng() & 0x3ff)
}

/**
 * Runs every kind × case × token count on one shared memory (`pages` initial 64 KiB pages), WASM
 * then native, and compares the outputs bit for bit. `blockValues`: values per block (32 or 256).
 */
export function rawTwins(native: NativeQ8, o: { seed: number; pages: number; blockValues: number; kinds: readonly RawKind[]; cases: readonly Shape[] }): void {
  const memory = new WA.Memory({ initial: o.pages, maximum: 65536, shared: true })
  const wasm = new WA.Instance(builtModule('kernels.wasm'), { env: { memory } }).exports as unknown as KernelExports
  const rng = makeRng(o.seed)
  const bv = o.blockValues
  for (const kind of o.kinds) {
    const scale = kind.scale ?? anyScale
    for (const [ngroups, nb, tokens] of o.cases) {
      for (const ntok of tokens) {
        const cols = nb * bv
        const stride = wasm.actStride(cols, bv)
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
          for (const at of kind.scales) for (let r = 0; r < 4; r++) dv.setUint16(gb + at + 2 * r, scale(rng), true)
          kind.extremes(bytes, gb, rng)
        }
        for (let t = 0; t < ntok; t++) {
          const at = act + t * stride
          for (let b = 0; b < nb; b++) {
            const mode = rng() % 4
            for (let i = 0; i < bv; i++) {
              const q = mode === 0 ? 127 : mode === 1 ? -127 : (rng() % 255) - 127
              dv.setInt16(at + 2 * (bv * b + i), q, true)
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
        // The same sentinel under both: columns past 4·ngroups of a row must stay untouched.
        new Float32Array(memory.buffer, out, ntok * outStride).fill(-1)
        wasm[kind.wasm](w, ngroups, nb, act, ntok, out, outStride)
        const want = new Float32Array(memory.buffer, out, ntok * outStride).slice()
        new Float32Array(memory.buffer, out, ntok * outStride).fill(-1)
        native[kind.native](new Uint8Array(memory.buffer), w, ngroups, nb, act, ntok, out, outStride)
        sameBits(new Float32Array(memory.buffer, out, ntok * outStride), want, `${kind.name} ngroups ${ngroups} nb ${nb} ntok ${ntok}`)
      }
    }
  }
}

/**
 * Registers the file's before/after hooks that open (when `native` loaded) and close four backends:
 * native on and off, 1 and 2 threads (the main thread and a worker). Filled once `before` has run.
 */
export function nativeBackends(native: NativeQ8 | undefined): Array<[string, Backend]> {
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
  return backends
}

const ref = createReferenceBackend()

/**
 * Every type × [rows, cols, token counts]: the weights `rowsOf(type, rows, cols)` in each backend and
 * the reference, then each token count's `actsOf(nTok * cols, rows, nTok)`: the same bits everywhere.
 */
export function backendTwins(
  backends: ReadonlyArray<[string, Backend]>,
  o: {
    types: readonly number[]
    shapes: ReadonlyArray<[number, number, number[]]>
    rowsOf: (type: number, rows: number, cols: number) => Uint8Array
    actsOf: (n: number, rows: number, nTok: number) => Float32Array
  },
): void {
  for (const type of o.types) {
    for (const [rows, cols, tokens] of o.shapes) {
      const data = o.rowsOf(type, rows, cols)
      const r = ref.allocMatrix('w', type, rows, cols)
      ref.writeRows(r, 0, data)
      const ms = backends.map(([, b]) => {
        const m = b.allocMatrix('w', type, rows, cols)
        b.writeRows(m, 0, data)
        return m
      })
      for (const nTok of tokens) {
        const x = o.actsOf(nTok * cols, rows, nTok)
        const want = ref.matmul(r, x, nTok)
        backends.forEach(([name, b], i) => sameBits(b.matmul(ms[i], x, nTok), want, `${name} type ${type} ${rows}x${cols} nTok ${nTok}`))
      }
    }
  }
}
