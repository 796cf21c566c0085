/**
 * The native attention (attention.cc) against the WASM export (layer.wasm) and the TypeScript
 * reference, bit for bit, on the same shared memory: EXP over ~1e6 inputs and the clamp
 * boundaries, then attention over random shapes (head dims with and without a multiple of 8, GQA
 * ratios 1/3/8, contexts up to ~3,000 positions, decode and batches, query-head subranges as the
 * threads split them, underflowing scores, ±0), with binary32 and binary16 (tessera-arith/2) K/V
 * caches; and the binary16 conversions (f2h, h2f) in native, WASM and half.ts over every binary16
 * value, every rounding boundary and the special values. The native parts skip, naming why, when
 * the addon is not built.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { exp } from '../../engine/math/canonical.js'
import { f2h, h2f } from '../../engine/math/half.js'
import { referenceLayerOps as ref } from '../../engine/kernels/layerOps.js'
import { createWasmLayerOps } from '../wasmLayerOps.js'
import { loadNativeAttention, nativeAttentionUnavailable } from './attention.js'

const native = loadNativeAttention()
const skip = native ? false : (nativeAttentionUnavailable() ?? 'native attention not built')

/** xorshift32 in [0, 1): deterministic test data. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    return s / 4294967296
  }
}

function fillRandom(a: Float32Array, r: () => number, scale: number): void {
  for (let i = 0; i < a.length; i++) {
    const u = r()
    a[i] = u < 0.02 ? 0 : u < 0.04 ? -0 : (r() * 2 - 1) * scale
  }
}

function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`)
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length)
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length)
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) assert.fail(`${what}: element ${i} is ${got[i]} (0x${g[i].toString(16)}), want ${want[i]} (0x${w[i].toString(16)})`)
  }
}

test('native EXP equals canonical.ts exp on ~1e6 inputs and around the clamps', { skip }, () => {
  const ops = createWasmLayerOps()
  const r = rng(11)
  const xs: number[] = []
  for (let i = 0; i < 1_000_000; i++) xs.push(r() * 200 - 100)
  const bits = new Int32Array(1)
  const fl = new Float32Array(bits.buffer)
  for (const x of [88.72283, -87.33654, 88.0, -87.0, 0, -0, 1e-30, -1e-30]) {
    fl[0] = x
    const b = bits[0]
    for (let s = -300; s <= 300; s++) {
      bits[0] = b + s
      xs.push(fl[0])
    }
  }
  xs.push(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1000, -1000)
  const x = ops.allocF32(xs.length)
  x.set(xs)
  const out = ops.allocF32(xs.length)
  // a view from the latest buffer (allocating `out` may have grown the memory past x's view)
  native!.expMany(new Uint8Array(out.buffer), out.byteOffset, x.byteOffset, xs.length)
  assertSameBits(out, Float32Array.from(x, exp), 'EXP')
  // NaN in, NaN out (payload unspecified)
  x[0] = Number.NaN
  native!.expMany(new Uint8Array(out.buffer), out.byteOffset, x.byteOffset, 9)
  assert.ok(Number.isNaN(out[0]))
  ops.close()
})

/**
 * Binary32 inputs for f2h: every binary16 value (as binary32), each midpoint between neighbours
 * (a tie) and the binary32 values one ulp either side of it, both signs, past the largest finite
 * value (65504 / 65520 / Inf), binary32 subnormals, infinities, NaNs with payloads, random bits.
 */
function f2hInputs(): Float32Array {
  const bits: number[] = []
  const f = new Float32Array(1)
  const u = new Uint32Array(f.buffer)
  for (let h = 0; h < 0x7c00; h++) {
    f[0] = h2f(h)
    const a = u[0]
    f[0] = h2f(h + 1)
    // the tie: halfway in bits is halfway in value inside one binary32 binade (the ties below 2^-24
    // and at the binade edges are among the explicit values below)
    const mid = (a + u[0]) / 2
    for (const b of [a, mid - 1, mid, mid + 1]) if (Number.isInteger(b)) bits.push(b, b | 0x80000000)
  }
  bits.push(0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, 0x7f7fffff, 0x00000001, 0x007fffff, 0x33000000, 0x33000001, 0x32ffffff)
  bits.push(0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff812345, 0x7fffffff, 0x7fa00000)
  const r = rng(99)
  for (let i = 0; i < 100_000; i++) bits.push(Math.floor(r() * 4294967296))
  return new Float32Array(Uint32Array.from(bits.map((b) => b >>> 0)).buffer)
}

test('binary16 conversions: native and WASM f2h / h2f equal half.ts on every binary16 value, every tie and its neighbours, NaN to sign|0x7E00', () => {
  const ops = createWasmLayerOps({ native: false })
  const xs = f2hInputs()
  const want = Uint16Array.from(xs, f2h)
  // half.ts's own rule for NaN (the one the kernels follow): sign | 0x7E00, payload dropped
  assert.equal(f2h(new Float32Array(new Uint32Array([0xff812345]).buffer)[0]), 0xfe00)
  const src = ops.allocF32(xs.length)
  src.set(xs)
  const dst = ops.allocF16(xs.length)
  ops.toHalf(dst, src, xs.length) // WASM to_half (native: false)
  assert.deepEqual(dst, want, 'WASM to_half')
  const all = Uint16Array.from({ length: 65536 }, (_, h) => h)
  const wideWant = Float32Array.from(all, h2f)
  const wide = ops.fromHalfMany(all)
  // NaN payloads: half.ts returns JS NaN (stored as 0x7FC00000); the kernels keep the payload
  const isNan = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0
  const wb = new Uint32Array(wide.buffer, wide.byteOffset, wide.length)
  for (let h = 0; h < 65536; h++) {
    if (isNan(h)) assert.equal(wb[h], ((h & 0x8000) << 16 | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0, `WASM h2f of NaN 0x${h.toString(16)}`)
    else if (!Object.is(wide[h], wideWant[h])) assert.fail(`WASM h2f(0x${h.toString(16)}) = ${wide[h]}, want ${wideWant[h]}`)
  }
  if (native) {
    // odd lengths exercise the native tails (n mod 8 != 0)
    for (const n of [xs.length, 13, 7]) {
      const d = ops.allocF16(n)
      const s2 = ops.allocF32(n)
      s2.set(xs.subarray(xs.length - n))
      native.toHalf(new Uint8Array(s2.buffer), d.byteOffset, s2.byteOffset, n)
      assert.deepEqual(d, want.subarray(xs.length - n), `native toHalf, n ${n}`)
    }
    const hs = ops.allocF16(65536 + 3)
    hs.set(all)
    const out = ops.allocF32(65536 + 3)
    native.fromHalf(new Uint8Array(out.buffer), out.byteOffset, hs.byteOffset, 65536 + 3)
    // F16C quiets a signalling NaN (WASM keeps its bits): a NaN either way, and the only NaNs a
    // cache holds, f2h's sign | 0x7E00, widen to the same bits everywhere
    const nb = new Uint32Array(out.buffer, out.byteOffset, 65536)
    for (let h = 0; h < 65536; h++) {
      if (isNan(h) && (h & 0x200) === 0) assert.ok(Number.isNaN(out[h]), `native h2f of NaN 0x${h.toString(16)}`)
      else if (nb[h] !== wb[h]) assert.fail(`native h2f(0x${h.toString(16)}) = 0x${nb[h].toString(16)}, WASM 0x${wb[h].toString(16)}`)
    }
    assert.deepEqual([nb[0x7e00], nb[0xfe00]], [0x7fc00000, 0xffc00000])
    // and the native path of the layer ops' toHalf
    const nops = createWasmLayerOps()
    const d2 = nops.allocF16(xs.length)
    nops.toHalf(d2, xs, xs.length)
    assert.deepEqual(d2, want, 'layer ops toHalf, native')
    nops.close()
  }
  ops.close()
})

type Case = { start: number; nTok: number; nh: number; nkv: number; hd: number; scale: number; h0?: number; h1?: number }

test('native attention equals the WASM export and the reference bit for bit', { skip }, () => {
  // native: false, so ops.attention runs the WASM export
  const ops = createWasmLayerOps({ native: false })
  const r = rng(3)
  const cases: Case[] = [
    // the shapes the bench models use (smol-135m 9/3 x 64, tinyllama 32/4 x 64), decode and batches
    { start: 2999, nTok: 1, nh: 9, nkv: 3, hd: 64, scale: 1 },
    { start: 1200, nTok: 17, nh: 9, nkv: 3, hd: 64, scale: 2 },
    { start: 1000, nTok: 3, nh: 32, nkv: 4, hd: 64, scale: 1 },
    // more queries than one pass's scores hold (1 MiB): 5 passes, split inside a token's heads
    { start: 2900, nTok: 12, nh: 32, nkv: 4, hd: 64, scale: 1 },
    { start: 0, nTok: 70, nh: 8, nkv: 1, hd: 64, scale: 1 },
    // head dims: multiples of 64 and of 8, and not of 8 (the scalar DOT8 and d tails)
    { start: 130, nTok: 2, nh: 4, nkv: 2, hd: 128, scale: 1 },
    { start: 77, nTok: 5, nh: 6, nkv: 2, hd: 24, scale: 1 },
    { start: 40, nTok: 3, nh: 3, nkv: 3, hd: 13, scale: 1 },
    { start: 9, nTok: 4, nh: 2, nkv: 1, hd: 100, scale: 1 },
    { start: 0, nTok: 1, nh: 1, nkv: 1, hd: 1, scale: 1 },
    { start: 5, nTok: 11, nh: 3, nkv: 1, hd: 8, scale: 1 },
    // scores far apart (EXP underflows to 0 for most keys) and a head subrange splitting a group
    { start: 500, nTok: 2, nh: 9, nkv: 3, hd: 64, scale: 30 },
    { start: 600, nTok: 9, nh: 9, nkv: 3, hd: 64, scale: 1, h0: 2, h1: 7 },
    { start: 2047, nTok: 2, nh: 32, nkv: 4, hd: 64, scale: 1, h0: 13, h1: 14 },
    // K/V in binary16's subnormal range (2^-24 .. 2^-14) and near its largest value (65504)
    { start: 300, nTok: 3, nh: 4, nkv: 2, hd: 64, scale: 4e-5 },
    { start: 20, nTok: 2, nh: 2, nkv: 1, hd: 16, scale: 6e4 },
  ]
  for (let i = 0; i < 6; i++) {
    const nkv = 1 + Math.floor(r() * 3)
    const hd = [8, 16, 32, 64, 72, 128][Math.floor(r() * 6)]
    cases.push({ start: Math.floor(r() * 2500), nTok: 1 + Math.floor(r() * 20), nh: nkv * [1, 3, 8][Math.floor(r() * 3)], nkv, hd, scale: 0.5 + r() * 4 })
  }
  for (const c of cases) {
    const { start, nTok, nh, nkv, hd } = c
    const h0 = c.h0 ?? 0, h1 = c.h1 ?? nh
    const rows = start + nTok
    const shape = { start, nTok, nHead: nh, nKvHead: nkv, headDim: hd }
    const q = ops.allocF32(nTok * nh * hd), k32 = ops.allocF32(rows * nkv * hd), v32 = ops.allocF32(rows * nkv * hd)
    fillRandom(q, r, c.scale)
    fillRandom(k32, r, c.scale)
    fillRandom(v32, r, 1)
    // binary32 caches (tessera-arith/1), then the same values as binary16 caches (tessera-arith/2)
    for (const half of [0, 1]) {
      const what = `${half ? 'binary16' : 'binary32'} K/V, start ${start}, nTok ${nTok}, heads ${nh}/${nkv}, hd ${hd}, h ${h0}..${h1}`
      let k: Float32Array | Uint16Array = k32, v: Float32Array | Uint16Array = v32
      if (half) {
        k = ops.allocF16(k32.length)
        v = ops.allocF16(v32.length)
        ref.toHalf(k, k32, k32.length)
        ref.toHalf(v, v32, v32.length)
      }
      const want = new Float32Array(nTok * nh * hd)
      ref.attention(want, q, k, v, shape)
      const wasm = ops.allocF32(nTok * nh * hd)
      ops.attention(wasm, q, k, v, shape)
      assertSameBits(wasm, want, `WASM, ${what}`)
      // the native kernel writes only heads h0..h1: the rest keep a marker (a view from the
      // latest buffer: \`got\` is the newest allocation)
      const got = ops.allocF32(nTok * nh * hd)
      got.fill(1234.5)
      native!.attention(new Uint8Array(got.buffer), got.byteOffset, q.byteOffset, k.byteOffset, v.byteOffset, 0, start, nTok, nh, nkv, hd, h0, h1, half)
      for (let t = 0; t < nTok; t++) {
        for (let h = 0; h < nh; h++) {
          const o = (t * nh + h) * hd
          const row = got.subarray(o, o + hd)
          if (h >= h0 && h < h1) assertSameBits(row, want.subarray(o, o + hd), `native, ${what}, token ${t} head ${h}`)
          else assert.ok(row.every((x) => x === 1234.5), `native wrote head ${h} outside ${h0}..${h1}`)
        }
      }
    }
  }
  ops.close()
})

test('native attention refuses arrays past the end of memory and bad shapes with one line', { skip }, () => {
  const mem = new Uint8Array(4096)
  assert.throws(() => native!.attention(mem, 0, 0, 0, 0, 0, 100, 1, 2, 1, 64, 0, 2), /attention: out, q, k or v reaches past the end of mem/)
  assert.throws(() => native!.attention(mem, 0, 0, 0, 0, 0, 0, 1, 3, 2, 8, 0, 3), /attention: shape out of range/)
  assert.throws(() => native!.attention(mem, 0, 0, 0, 0, 0, 0, 1, 2, 1, 8, 0, 3), /attention: shape out of range/)
  assert.throws(() => native!.attention(mem, -4, 0, 0, 0, 0, 0, 1, 2, 1, 8, 0, 2), /attention: out must be a non-negative integer/)
})
