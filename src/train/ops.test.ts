/**
 * Each training op's backward (the TypeScript reference) against central finite differences of a
 * float64 twin of its forward, on tiny shapes; the forward ops against the engine's reference
 * ops bit for bit; and every native kernel against the reference bit for bit at 1, 2 and 3
 * threads on odd sizes.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { referenceLayerOps } from '../engine/kernels/layerOps.js'
import { f } from '../engine/math/canonical.js'
import { loadNativeTrain } from '../runtime/native/train.js'
import { adamHyper, learningRate, powF32 } from './adamw.js'
import type { TrainConfig } from './model.js'
import { attnScale, referenceTrainOps as R, type TrainOps } from './ops.js'
import { nativeTrainOps } from './trainer.js'

/** Deterministic values in [-a, a) rounded to binary32. */
function rnd(n: number, seed: number, a = 1): Float32Array {
  const out = new Float32Array(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    out[i] = f(((x >>> 8) / 2 ** 24 - 0.5) * 2 * a)
  }
  return out
}

/** Central differences of the float64 function `L` at `x` (every element). */
function fd(x: Float32Array, L: (x64: Float64Array) => number, h = 1e-6): Float64Array {
  const x64 = Float64Array.from(x)
  const g = new Float64Array(x.length)
  for (let i = 0; i < x.length; i++) {
    const keep = x64[i]
    x64[i] = keep + h
    const up = L(x64)
    x64[i] = keep - h
    const dn = L(x64)
    x64[i] = keep
    g[i] = (up - dn) / (2 * h)
  }
  return g
}

function close(name: string, got: Float32Array, want: Float64Array, rel = 1e-3): void {
  let scale = 0
  for (const v of want) scale = Math.max(scale, Math.abs(v))
  assert.ok(scale > 0, `${name}: reference gradient is all zero`)
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= rel * scale + 1e-6, `${name}[${i}]: analytic ${got[i]}, finite differences ${want[i]}`)
  }
}

const dotR = (r: ArrayLike<number>, y: ArrayLike<number>) => {
  let s = 0
  for (let i = 0; i < y.length; i++) s += r[i] * y[i]
  return s
}

test('rmsnorm backward (dx and d weight) against finite differences', () => {
  const n = 3, dim = 13, eps = f(1e-5)
  const x = rnd(n * dim, 1, 2), w = rnd(dim, 2, 1.5), r = rnd(n * dim, 3)
  const fwd = (x64: ArrayLike<number>, w64: ArrayLike<number>) => {
    const y = new Float64Array(n * dim)
    for (let t = 0; t < n; t++) {
      let ss = 0
      for (let i = 0; i < dim; i++) ss += x64[t * dim + i] ** 2
      const s = 1 / Math.sqrt(ss / dim + eps)
      for (let i = 0; i < dim; i++) y[t * dim + i] = x64[t * dim + i] * s * w64[i]
    }
    return dotR(r, y)
  }
  const dx = new Float32Array(n * dim)
  const y = new Float32Array(n * dim), xhat = new Float32Array(n * dim), s = new Float32Array(n)
  R.rmsnorm(y, xhat, s, x, w, n, dim, eps)
  R.rmsnormBack(dx, r, x, s, w, n, dim)
  close('dx', dx, fd(x, (x64) => fwd(x64, w)))
  const tA = new Float32Array(n * dim), tB = new Float32Array(n * dim), dw = new Float32Array(dim)
  R.transpose(tA, r, n, dim)
  R.transpose(tB, xhat, n, dim)
  R.rowDot(dw, tA, tB, dim, n)
  close('dw', dw, fd(w, (w64) => fwd(x, w64)))
  // the forward is the engine's rmsnorm, bit for bit
  const ye = new Float32Array(n * dim)
  referenceLayerOps.rmsnorm(ye, x, w, n, dim, eps)
  assert.deepEqual(ye, y)
})

test('matmul backward: dX = dY·W and dW = dYᵀ·X (as the trainer forms them) against finite differences', () => {
  const N = 5, inn = 11, out = 7
  const X = rnd(N * inn, 4), W = rnd(out * inn, 5), r = rnd(N * out, 6)
  const fwd = (x64: ArrayLike<number>, w64: ArrayLike<number>) => {
    let L = 0
    for (let t = 0; t < N; t++) for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) L += r[t * out + o] * w64[o * inn + i] * x64[t * inn + i]
    return L
  }
  const wT = new Float32Array(inn * out), dX = new Float32Array(N * inn)
  R.transpose(wT, W, out, inn)
  R.mm(dX, r, wT, N, inn, out)
  close('dX', dX, fd(X, (x64) => fwd(x64, W)))
  const dYT = new Float32Array(out * N), XT = new Float32Array(inn * N), dW = new Float32Array(out * inn)
  R.transpose(dYT, r, N, out)
  R.transpose(XT, X, N, inn)
  R.mm(dW, dYT, XT, out, inn, N)
  close('dW', dW, fd(W, (w64) => fwd(X, w64)))
})

test('rope backward against finite differences', () => {
  const C = 4, heads = 2, hd = 6, n = 8
  const cs = new Float32Array(C * 3), sn = new Float32Array(C * 3)
  for (let i = 0; i < cs.length; i++) {
    cs[i] = f(Math.cos(0.3 * i + 0.1))
    sn[i] = f(Math.sin(0.3 * i + 0.1))
  }
  const x = rnd(n * heads * hd, 7), r = rnd(n * heads * hd, 8)
  const L = (x64: Float64Array) => {
    let s = 0
    for (let row = 0; row < n; row++) {
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < hd / 2; i++) {
          const a = (row * heads + h) * hd + 2 * i
          const c = cs[(row % C) * 3 + i], si = sn[(row % C) * 3 + i]
          s += r[a] * (x64[a] * c - x64[a + 1] * si) + r[a + 1] * (x64[a] * si + x64[a + 1] * c)
        }
      }
    }
    return s
  }
  const d = Float32Array.from(r)
  R.rope(d, n, heads, hd, C, cs, sn, true)
  close('dx', d, fd(x, L))
})

test('attention backward (dq, dk, dv; GQA) against finite differences; the forward is the engine attention bit for bit', () => {
  const B = 2, C = 5, nh = 4, nkv = 2, hd = 6, group = nh / nkv
  const N = B * C
  const q = rnd(N * nh * hd, 9, 1.5), k = rnd(N * nkv * hd, 10, 1.5), v = rnd(N * nkv * hd, 11), r = rnd(N * nh * hd, 12)
  const fwd = (q64: ArrayLike<number>, k64: ArrayLike<number>, v64: ArrayLike<number>) => {
    let L = 0
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < nh; h++) {
        const g = Math.floor(h / group)
        for (let t = 0; t < C; t++) {
          const sc: number[] = []
          for (let u = 0; u <= t; u++) {
            let d = 0
            for (let i = 0; i < hd; i++) d += q64[(b * C + t) * nh * hd + h * hd + i] * k64[(b * C + u) * nkv * hd + g * hd + i]
            sc.push(d / Math.sqrt(hd))
          }
          const m = Math.max(...sc)
          const e = sc.map((s) => Math.exp(s - m))
          const S = e.reduce((a, c) => a + c, 0)
          for (let i = 0; i < hd; i++) {
            let o = 0
            for (let u = 0; u <= t; u++) o += (e[u] / S) * v64[(b * C + u) * nkv * hd + g * hd + i]
            L += r[(b * C + t) * nh * hd + h * hd + i] * o
          }
        }
      }
    }
    return L
  }
  const shape = { B, C, nh, nkv, hd }
  const o = new Float32Array(N * nh * hd), e = new Float32Array(B * nh * C * C), inv = new Float32Array(B * nh * C)
  R.attention(o, e, inv, q, k, v, shape)
  const dq = new Float32Array(N * nh * hd), dk = new Float32Array(N * nkv * hd), dv = new Float32Array(N * nkv * hd)
  R.attentionBack(dq, dk, dv, r, o, e, inv, q, k, v, shape)
  close('dq', dq, fd(q, (x) => fwd(x, k, v)))
  close('dk', dk, fd(k, (x) => fwd(q, x, v)))
  close('dv', dv, fd(v, (x) => fwd(q, k, x)))
  // engine: each sequence alone through the KV-cache attention
  for (let b = 0; b < B; b++) {
    const oe = new Float32Array(C * nh * hd)
    referenceLayerOps.attention(oe, q.subarray(b * C * nh * hd), k.subarray(b * C * nkv * hd), v.subarray(b * C * nkv * hd), { start: 0, nTok: C, nHead: nh, nKvHead: nkv, headDim: hd })
    assert.deepEqual(oe, o.subarray(b * C * nh * hd, (b + 1) * C * nh * hd))
  }
  assert.equal(attnScale(hd), f(1 / f(Math.sqrt(hd))))
})

test('SiLU gate backward against finite differences; the forward is the engine siluMul bit for bit', () => {
  const n = 23
  const g = rnd(n, 13, 6), u = rnd(n, 14, 2), r = rnd(n, 15)
  const fwd = (g64: ArrayLike<number>, u64: ArrayLike<number>) => {
    let L = 0
    for (let i = 0; i < n; i++) L += r[i] * (g64[i] / (1 + Math.exp(-g64[i]))) * u64[i]
    return L
  }
  const dg = new Float32Array(n), du = new Float32Array(n)
  R.siluMulBack(dg, du, r, g, u, n)
  close('dg', dg, fd(g, (x) => fwd(x, u)))
  close('du', du, fd(u, (x) => fwd(g, x)))
  const h = new Float32Array(n), he = Float32Array.from(g)
  R.siluMul(h, g, u, n)
  referenceLayerOps.siluMul(he, u, n)
  assert.deepEqual(h, he)
})

test('cross-entropy gradient against finite differences of the mean loss', () => {
  const N = 4, V = 19
  const z = rnd(N * V, 16, 4)
  const tg = Int32Array.from([0, 18, 7, 7])
  const L = (z64: Float64Array) => {
    let s = 0
    for (let t = 0; t < N; t++) {
      const row = z64.subarray(t * V, (t + 1) * V)
      const m = Math.max(...row)
      let S = 0
      for (const v of row) S += Math.exp(v - m)
      s += m + Math.log(S) - row[tg[t]]
    }
    return s / N
  }
  const want = fd(z, L)
  const loss = new Float32Array(N)
  const dz = Float32Array.from(z)
  R.crossEntropy(dz, loss, tg, N, V, f(1 / N), true)
  close('dz', dz, want)
  const mean = loss.reduce((a, b) => a + b, 0) / N
  assert.ok(Math.abs(mean - L(Float64Array.from(z))) < 1e-5, `loss ${mean}`)
  const kept = Float32Array.from(z)
  R.crossEntropy(kept, new Float32Array(N), tg, N, V, f(1 / N), false)
  assert.deepEqual(kept, z)
})

const cfg = (over: Partial<TrainConfig['lr']> = {}): TrainConfig => ({
  vocabSize: 8, dim: 8, nLayer: 1, nHead: 2, nKvHead: 1, ffDim: 8, context: 4, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: true, batch: 1,
  lr: { peak: 1e-3, warmupSteps: 4, totalSteps: 12, min: 1e-4, ...over }, adam: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, seed: '1',
})

test('AdamW: schedule, bias corrections and one update, as docs/TRAINING.md writes them', () => {
  const c = cfg()
  assert.deepEqual([0, 1, 3, 4, 8, 12, 99].map((s) => learningRate(c, s)), [f(f(1e-3) * f(1 / 4)), f(f(1e-3) * f(2 / 4)), f(1e-3), f(1e-3), f(f(1e-3) - f(f(f(1e-3) - f(1e-4)) * f(4 / 8))), f(1e-4), f(1e-4)])
  assert.equal(powF32(f(0.9), 1), f(0.9))
  // square-and-multiply from the lowest bit: t = 5 = 101b: r = b, then b^4 (b² squared) multiplied in
  const b = f(0.9), b2 = f(b * b), b4 = f(b2 * b2)
  assert.equal(powF32(b, 5), f(b * b4))
  assert.ok(Math.abs(powF32(f(0.999), 1000) - 0.999 ** 1000) < 1e-4)
  const h = adamHyper(c, 0, 1, true)
  assert.equal(h.bc1, f(1 - f(0.9)))
  assert.equal(h.weightDecay, f(0.1))
  assert.equal(adamHyper(c, 0, 1, false).weightDecay, 0)
  const p = Float32Array.of(0.5, -0.25), m = Float32Array.of(0, 0.1), v = Float32Array.of(0, 0.01), g = Float32Array.of(0.2, -0.3)
  R.adamw(p, m, v, g, 2, h)
  // element 0 from zero moments: m = 0.1·g, v = 0.05·g², m̂ = g, v̂ = g², update ≈ sign(g) + wd·p
  assert.ok(Math.abs(p[0] - (0.5 - h.lr * (1 + 0.1 * 0.5))) < 1e-7, `p0 ${p[0]}`)
  assert.equal(m[0], f(f(h.beta1 * 0) + f(h.oneMinusBeta1 * f(0.2))))
})

const native = loadNativeTrain()
test('native kernels equal the reference bit for bit at 1, 2 and 3 threads (odd sizes)', { skip: native ? false : 'native training kernels not built' }, () => {
  if (!native) return
  for (const threads of [1, 2, 3]) {
    const Nt: TrainOps = nativeTrainOps(native, threads)
    const same = (name: string, run: (ops: TrainOps) => Float32Array[]) => {
      const a = run(R), b = run(Nt)
      a.forEach((x, i) => assert.deepEqual(new Uint32Array(b[i].buffer), new Uint32Array(x.buffer), `${name} output ${i} (${threads} threads)`))
    }
    // the last three span several B tiles (the kernel tiles B in ~24,576 values: 12, 6 and 3 rows here)
    for (const [M, N, K] of [[1, 1, 1], [5, 7, 13], [4, 3, 8], [9, 10, 33], [17, 6, 64], [9, 40, 2048], [5, 20, 4001], [13, 31, 8192]]) {
      const a = rnd(M * K, M, 3), b = rnd(N * K, N + 100, 3)
      same(`mm ${M}x${N}x${K}`, (o) => {
        const c = new Float32Array(M * N)
        o.mm(c, a, b, M, N, K)
        const d = new Float32Array(M)
        if (M * K <= b.length) o.rowDot(d, a, b, M, K)
        const t = new Float32Array(M * K)
        o.transpose(t, a, M, K)
        return [c, d, t]
      })
    }
    const n = 7, dim = 13
    const x = rnd(n * dim, 20, 2), w = rnd(dim, 21), dy = rnd(n * dim, 22)
    same('rmsnorm', (o) => {
      const y = new Float32Array(n * dim), xh = new Float32Array(n * dim), s = new Float32Array(n), dx = rnd(n * dim, 23)
      o.rmsnorm(y, xh, s, x, w, n, dim, f(1e-5))
      o.rmsnormBack(dx, dy, x, s, w, n, dim)
      return [y, xh, s, dx]
    })
    const cs = rnd(5 * 3, 24), sn = rnd(5 * 3, 25)
    same('rope', (o) => {
      const a = rnd(n * 2 * 6, 26), bb = Float32Array.from(a)
      o.rope(a, n, 2, 6, 5, cs, sn, false)
      o.rope(bb, n, 2, 6, 5, cs, sn, true)
      return [a, bb]
    })
    for (const shape of [{ B: 2, C: 9, nh: 6, nkv: 2, hd: 6 }, { B: 1, C: 13, nh: 3, nkv: 3, hd: 10 }, { B: 3, C: 4, nh: 4, nkv: 1, hd: 16 }, { B: 1, C: 12, nh: 2, nkv: 1, hd: 32 }, { B: 2, C: 6, nh: 2, nkv: 2, hd: 72 }]) {
      const { B, C, nh, nkv, hd } = shape
      const Nn = B * C
      const q = rnd(Nn * nh * hd, 30, 2), k = rnd(Nn * nkv * hd, 31, 2), v = rnd(Nn * nkv * hd, 32), dO = rnd(Nn * nh * hd, 33)
      same(`attention ${JSON.stringify(shape)}`, (o) => {
        const out = new Float32Array(Nn * nh * hd), e = new Float32Array(B * nh * C * C), inv = new Float32Array(B * nh * C)
        o.attention(out, e, inv, q, k, v, shape)
        const dq = new Float32Array(Nn * nh * hd), dk = new Float32Array(Nn * nkv * hd), dv = new Float32Array(Nn * nkv * hd)
        o.attentionBack(dq, dk, dv, dO, out, e, inv, q, k, v, shape)
        return [out, e, inv, dq, dk, dv]
      })
    }
    const m = 2053
    const g = rnd(m, 40, 30), u = rnd(m, 41, 3), dh = rnd(m, 42)
    // EXP's special cases in the 8-lane path and the scalar tail: overflow, underflow, k = 128, zeros
    const edge = [100, -100, 88.72283935546875, -88.72283935546875, -88.7, 87.4, -87.33654022216797, 87.33654022216797, 0, -0, -88.5, 88.5, -1e-30, 1e-30, 3.5, -3.5]
    edge.forEach((x, i) => {
      g[i] = f(x)
      g[m - 1 - i] = f(x)
    })
    same('silu', (o) => {
      const h = new Float32Array(m), dg = new Float32Array(m), du = new Float32Array(m), s = Float32Array.from(g)
      o.siluMul(h, g, u, m)
      o.siluMulBack(dg, du, dh, g, u, m)
      o.add(s, u, m)
      return [h, dg, du, s]
    })
    const NN = 6, V = 37
    const z = rnd(NN * V, 43, 20)
    const tg = Int32Array.from([0, 36, 5, 5, 12, 1])
    same('crossEntropy', (o) => {
      const zz = Float32Array.from(z), loss = new Float32Array(NN), z2 = Float32Array.from(z), loss2 = new Float32Array(NN)
      o.crossEntropy(zz, loss, tg, NN, V, f(1 / NN), true)
      o.crossEntropy(z2, loss2, tg, NN, V, f(1 / NN), false)
      return [zz, loss, z2, loss2]
    })
    same('adamw', (o) => {
      const p = rnd(m, 50), mm = rnd(m, 51, 0.1), vv = rnd(m, 52, 0.01).map(Math.abs), gg = rnd(m, 53)
      o.adamw(p, mm, vv, gg, m, adamHyper(cfg(), 3, f(0.7), true))
      const p2 = rnd(m, 54)
      o.adamw(p2, mm, vv, gg, m, adamHyper(cfg(), 20, 1, false))
      return [p, mm, vv, p2]
    })
  }
})
