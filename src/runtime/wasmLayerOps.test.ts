/**
 * The WASM layer ops against the TypeScript reference, bit for bit: EXP over ~1e6 inputs, then
 * attention (head dims, GQA ratios, context lengths, batches vs single tokens, underflowing
 * scores, ±0), RMSNorm, SILU-mul and adds on random data.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { exp } from '../engine/math/canonical.js'
import { type AttentionShape, referenceLayerOps as ref } from '../engine/kernels/layerOps.js'
import { createWasmLayerOps } from './wasmLayerOps.js'

// native: false: this file tests the WASM exports (the native attention: native/attention.test.ts)
const ops = createWasmLayerOps({ native: false })

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

/** Random values of magnitude up to `scale`, with a sprinkle of +0 and -0. */
function randomArray(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    const u = r()
    a[i] = u < 0.02 ? 0 : u < 0.04 ? -0 : (r() * 2 - 1) * scale
  }
  return a
}

function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`)
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length)
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length)
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) assert.fail(`${what}: element ${i} is ${got[i]} (0x${g[i].toString(16)}), want ${want[i]} (0x${w[i].toString(16)})`)
  }
}

test('EXP in WASM equals canonical.ts exp on ~1e6 inputs across [-100, 100] and the clamp boundaries', () => {
  const r = rng(7)
  const xs: number[] = []
  for (let i = 0; i < 1_000_000; i++) xs.push(r() * 200 - 100)
  // boundaries: the clamps, the k = 128 branch near EXP_MAX, the smallest k near EXP_MIN, ±0, tiny, ±inf
  const near = (x: number, steps: number) => {
    const a = new Float32Array([x])
    const u = new Int32Array(a.buffer)
    const out: number[] = []
    for (let s = -steps; s <= steps; s++) {
      u[0] = new Int32Array(new Float32Array([x]).buffer)[0] + s
      out.push(a[0])
    }
    return out
  }
  for (const c of [88.72283935546875, -87.33654022216797, 88.5, -87, 0.5, -0.5, 1e-30, -1e-30, 1e-45]) xs.push(...near(c, 300))
  xs.push(0, -0, Infinity, -Infinity, 88.0, 88.3762626647949, -86.5, 103.97, -103.97)
  const x = new Float32Array(xs)
  const got = ops.expMany(x) // 4 lanes at a time (expf4)
  const want = new Float32Array(x.length)
  for (let i = 0; i < x.length; i++) want[i] = exp(x[i])
  assertSameBits(got, want, 'exp')
  // the scalar expf (calls of fewer than 4 values) on the boundary values
  const tail = x.subarray(1_000_000)
  const one = new Float32Array(tail.length)
  for (let i = 0; i < tail.length; i++) one[i] = ops.expMany(tail.subarray(i, i + 1))[0]
  assertSameBits(one, want.subarray(1_000_000), 'scalar exp')
  assert.ok(want.some((v) => v === 0) && want.some((v) => v === Infinity), 'the inputs reach both clamps')
})

test('EXP of NaN is NaN in both', () => {
  const got = ops.expMany(new Float32Array([NaN]))
  assert.ok(Number.isNaN(got[0]) && Number.isNaN(exp(NaN)))
})

type Case = { hd: number; nh: number; nkv: number; start: number; nTok: number; qScale: number }

function runAttention(c: Case, seed: number, inWasmMemory: boolean): void {
  const r = rng(seed)
  const kvDim = c.nkv * c.hd
  const ctx = c.start + c.nTok + 3
  const q = randomArray(c.nTok * c.nh * c.hd, r, c.qScale)
  const kData = randomArray(ctx * kvDim, r)
  const vData = randomArray(ctx * kvDim, r, 4)
  const shape: AttentionShape = { start: c.start, nTok: c.nTok, nHead: c.nh, nKvHead: c.nkv, headDim: c.hd }
  const want = new Float32Array(q.length)
  ref.attention(want, q, kData, vData, shape)
  let k = kData, v = vData
  if (inWasmMemory) {
    k = ops.allocF32(ctx * kvDim); k.set(kData)
    v = ops.allocF32(ctx * kvDim); v.set(vData)
  }
  const got = inWasmMemory ? ops.allocF32(q.length) : new Float32Array(q.length)
  ops.attention(got, q, k, v, shape)
  assertSameBits(got, want, `attention ${JSON.stringify(c)}`)
  // token by token (decode) gives the same bits as the batch
  if (c.nTok > 1) {
    const one = new Float32Array(c.nh * c.hd)
    for (let t = 0; t < c.nTok; t++) {
      ops.attention(one, q.subarray(t * one.length, (t + 1) * one.length), k, v, { ...shape, start: c.start + t, nTok: 1 })
      assertSameBits(one, want.subarray(t * one.length, (t + 1) * one.length), `attention ${JSON.stringify(c)} token ${t} alone`)
    }
  }
}

test('attention: head dims 32/64/128, GQA ratios 1/3/8, contexts 1..300, single tokens and batches', () => {
  let seed = 1
  for (const hd of [32, 64, 128]) {
    for (const [nh, nkv] of [[2, 2], [6, 2], [8, 1]]) {
      for (const [start, nTok] of [[0, 1], [5, 1], [0, 9], [40, 4], [299, 1]]) {
        runAttention({ hd, nh, nkv, start, nTok, qScale: 2 }, seed++, seed % 2 === 0)
      }
    }
  }
  // a long batch from position 0 (prefill) and a batch on top of a long context
  runAttention({ hd: 64, nh: 3, nkv: 1, start: 0, nTok: 150, qScale: 2 }, 99, true)
  runAttention({ hd: 32, nh: 2, nkv: 2, start: 250, nTok: 50, qScale: 2 }, 98, false)
})

test('attention: other head dims exercise the SUM8 tails, the one-key score path and the 16/4/1-wide V paths', () => {
  let seed = 200
  for (const hd of [1, 3, 6, 8, 12, 20, 24, 36, 40, 100]) {
    for (const [start, nTok] of [[0, 1], [0, 11], [17, 2]]) runAttention({ hd, nh: 2, nkv: 1, start, nTok, qScale: 2 }, seed++, seed % 2 === 0)
  }
})

test('attention: scores far apart, so EXP underflows to 0 for most positions', () => {
  // |q|·|k| up to ~3e3 * hd: max-subtracted scores reach far below EXP_MIN
  runAttention({ hd: 64, nh: 4, nkv: 2, start: 120, nTok: 3, qScale: 3000 }, 5, true)
  runAttention({ hd: 32, nh: 8, nkv: 1, start: 0, nTok: 40, qScale: 500 }, 6, false)
})

test('rmsnorm, siluMul and add: WASM bits equal the reference on random rows', () => {
  const r = rng(11)
  for (const [nTok, dim] of [[1, 576], [3, 64], [2, 7], [5, 13], [64, 576]]) {
    const x = randomArray(nTok * dim, r, 10)
    const w = randomArray(dim, r, 2)
    const want = new Float32Array(x.length)
    const got = new Float32Array(x.length)
    ref.rmsnorm(want, x, w, nTok, dim, Math.fround(1e-5))
    ops.rmsnorm(got, x, w, nTok, dim, Math.fround(1e-5))
    assertSameBits(got, want, `rmsnorm ${nTok}x${dim}`)
    const inPlace = ops.allocF32(x.length)
    inPlace.set(x)
    ops.rmsnorm(inPlace, inPlace, w, nTok, dim, Math.fround(1e-5))
    assertSameBits(inPlace, want, `rmsnorm in place ${nTok}x${dim}`)
  }
  for (const n of [1, 5, 23, 1536, 1537, 1563]) {
    // 23 and 1563 reach every loop of silu_mul: 16 values a pass, then 4, then one
    // gates up to ±120 reach EXP's clamps inside SILU (EXP(0 ⊖ x) overflows to +inf for x < -88.7)
    const g = randomArray(n, r, 120)
    const up = randomArray(n, r, 3)
    const want = g.slice()
    ref.siluMul(want, up, n)
    const got = g.slice()
    ops.siluMul(got, up, n)
    assertSameBits(got, want, `siluMul ${n}`)
    const x = randomArray(n, r, 5)
    const y = randomArray(n, r, 5)
    const sum = x.slice()
    ref.add(sum, y, n)
    const s2 = ops.allocF32(n)
    s2.set(x)
    ops.add(s2, y, n)
    assertSameBits(s2, sum, `add ${n}`)
  }
})

test('allocF32: zero-filled, usable in place, and views made before a grow still see the memory', () => {
  const small = ops.allocF32(10)
  assert.ok(small.every((v) => v === 0))
  small.set([1, 2, 3])
  const big = ops.allocF32(8 << 20) // 32 MiB: grows the memory
  big[big.length - 1] = 5
  const y = new Float32Array([0.5, 0.5, 0.5])
  ops.add(small, y, 3)
  assert.deepEqual([...small.subarray(0, 4)], [1.5, 2.5, 3.5, 0])
  assert.equal(big[big.length - 1], 5)
})

test('bad shapes and a non-binary32 eps are rejected by name', () => {
  const z = new Float32Array(8)
  assert.throws(() => ops.attention(z, z, z, z, { start: 8, nTok: 1, nHead: 1, nKvHead: 1, headDim: 8 }), { name: 'KernelShapeError' })
  assert.throws(() => ops.siluMul(z, new Float32Array(2), 4), { name: 'KernelShapeError' })
  assert.throws(() => ops.rmsnorm(z, z, z, 1, 8, 1e-5), { name: 'InvalidParameterError' })
})

test('allocF32: the space of a collected array is reused, zero-filled', async () => {
  // Exposes V8's gc() to this test only (the flag must be set before the context is made).
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const fresh = createWasmLayerOps()
  const n = 1 << 18
  let a: Float32Array | undefined = fresh.allocF32(n)
  a.fill(7)
  const at = a.byteOffset
  a = undefined
  // FinalizationRegistry callbacks run as tasks after a collection: collect, yield, try again.
  let reused: Float32Array | undefined
  const keep: Float32Array[] = [] // misses stay alive, so only `a`'s space can come back
  for (let i = 0; i < 50 && !reused; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
    const b = fresh.allocF32(n)
    if (b.byteOffset === at) reused = b
    else keep.push(b)
  }
  assert.ok(reused, 'the collected allocation was handed out again')
  assert.ok(reused.every((v) => v === 0))
})

/** Polls until `ok()` holds (workers start asynchronously), failing after 60 s. */
async function until(ok: () => boolean, what: string): Promise<void> {
  const t0 = Date.now()
  while (!ok()) {
    if (Date.now() - t0 > 60_000) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

test('attention past 7,000 positions: 1, 2 and 3 threads (heads split between workers) give the reference bits, batch and single token', async () => {
  const threaded = [2, 3].map((threads) => createWasmLayerOps({ threads, minThreadedWork: 0, native: false }))
  try {
    await until(() => threaded.every((t, i) => t.readyWorkers === i + 1), 'the attention workers')
    const r = rng(71)
    const [nh, nkv, hd, start, nTok] = [6, 2, 64, 7150, 6]
    const kvDim = nkv * hd
    const rows = start + nTok
    const q = randomArray(nTok * nh * hd, r, 2)
    const shape: AttentionShape = { start, nTok, nHead: nh, nKvHead: nkv, headDim: hd }
    const want = new Float32Array(q.length)
    const kData = randomArray(rows * kvDim, r)
    const vData = randomArray(rows * kvDim, r, 4)
    ref.attention(want, q, kData, vData, shape)
    for (const [i, o] of [ops, ...threaded].entries()) {
      const k = o.allocF32(rows * kvDim); k.set(kData)
      const v = o.allocF32(rows * kvDim); v.set(vData)
      const got = new Float32Array(q.length)
      o.attention(got, q, k, v, shape)
      assertSameBits(got, want, `${i + 1} threads, batch of ${nTok}`)
      // the last token alone (decode) over the same cache
      const one = new Float32Array(nh * hd)
      o.attention(one, q.subarray((nTok - 1) * one.length), k, v, { ...shape, start: rows - 1, nTok: 1 })
      assertSameBits(one, want.subarray((nTok - 1) * one.length), `${i + 1} threads, last token alone`)
    }
  } finally {
    for (const t of threaded) t.close()
  }
})

test('attention threads: more threads than heads, and a closed pool, still give the reference bits', async () => {
  const many = createWasmLayerOps({ threads: 5, minThreadedWork: 0, native: false })
  try {
    await until(() => many.readyWorkers === 4, 'the attention workers')
    // 2 heads for 5 threads: only one worker gets a head, the rest must not write anything
    const c = { hd: 32, nh: 2, nkv: 1, start: 300, nTok: 3 }
    const r = rng(72)
    const rows = c.start + c.nTok
    const q = randomArray(c.nTok * c.nh * c.hd, r, 2)
    const k = randomArray(rows * c.hd, r)
    const v = randomArray(rows * c.hd, r, 4)
    const shape: AttentionShape = { start: c.start, nTok: c.nTok, nHead: c.nh, nKvHead: c.nkv, headDim: c.hd }
    const want = new Float32Array(q.length)
    ref.attention(want, q, k, v, shape)
    const got = new Float32Array(q.length)
    many.attention(got, q, k, v, shape)
    assertSameBits(got, want, '5 threads, 2 heads')
    many.close()
    assert.equal(many.readyWorkers, 0)
    got.fill(7)
    many.attention(got, q, k, v, shape)
    assertSameBits(got, want, 'after close, on the calling thread')
  } finally {
    many.close()
  }
})
