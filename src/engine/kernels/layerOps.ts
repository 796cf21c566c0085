/**
 * The non-matmul ops of a forward pass (docs/ARITHMETIC.md, "The ops of a llama/qwen2 forward
 * pass"): RMSNorm, causal attention over the KV cache, SILU(gate) ⊗ up and residual adds. Two
 * implementations must agree bit for bit: `referenceLayerOps` below (plain TypeScript, one
 * `Math.fround` per binary32 step, the readable twin) and the WASM SIMD ops of
 * `src/runtime/wasmLayerOps.ts`. RoPE stays in the transformer (it is cheap and needs SIN/COS).
 *
 * Legend: T = `nTok` tokens in the batch, `dim` vector width, `nh`/`nkv` query/kv heads,
 * `hd` head dim, `kvDim` = nkv*hd, `start` = position of the batch's first token.
 */
import { KernelShapeError } from './errors.js'
import { dot8, exp, f, rmsnorm as rmsnormRow, silu, sum8 } from '../math/canonical.js'
import { f2h, h2f } from '../math/half.js'

/**
 * A K or V cache: binary32 values (tessera-arith/1) or binary16 bits (tessera-arith/2, where
 * attention reads every cached value as R(x) = h2f(f2h(x)); the cache keeps f2h(x) and widens it
 * exactly on read, so R is applied once, when the value is stored).
 */
export type KvArray = Float32Array | Uint16Array

/** Shape of one attention call: T tokens at positions start .. start+T-1 attend causally to the cache. */
export type AttentionShape = {
  /** Position of the batch's first token; the cache holds positions 0 .. start+T-1. */
  start: number
  nTok: number
  nHead: number
  nKvHead: number
  headDim: number
  /**
   * Sliding window W (absent: none): the token at position pos attends to positions
   * max(0, pos - W + 1) .. pos only; the same bits as full attention over just those positions.
   */
  window?: number
}

export interface LayerOps {
  readonly kind: 'reference' | 'wasm'
  /**
   * A zero-filled array of `n` f32 in memory the ops read without copying (the KV cache lives
   * there). Arrays from other places work too, at the cost of a copy per call.
   */
  allocF32(n: number): Float32Array
  /** As `allocF32`, for `n` binary16 values (a tessera-arith/2 KV cache). */
  allocF16(n: number): Uint16Array
  /**
   * dst[i] = f2h(src[i]) for i < n: binary32 to binary16 bits, nearest even, subnormals kept,
   * overflow to ±Inf, every NaN to the quiet NaN `sign | 0x7E00` (src/engine/math/half.ts).
   */
  toHalf(dst: Uint16Array, src: Float32Array, n: number): void
  /** Row t of `out` (T, dim) = RMSNorm(row t of `x`) scaled by `w` (dim); out may be x. */
  rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array, nTok: number, dim: number, eps: number): void
  /**
   * Causal attention: `out` (T, nh*hd) from `q` (T, nh*hd) and the caches `k`, `v` (ctx, kvDim)
   * whose rows 0 .. start+T-1 are filled; query head h reads kv head floor(h / (nh/nkv)); with
   * `shape.window` W, the token at pos reads rows pos-W+1 .. pos only. Binary16 caches
   * (Uint16Array, both k and v) are read as h2f of each value (tessera-arith/2).
   */
  attention(out: Float32Array, q: Float32Array, k: KvArray, v: KvArray, shape: AttentionShape): void
  /** gate[i] = SILU(gate[i]) ⊗ up[i] for i < n. */
  siluMul(gate: Float32Array, up: Float32Array, n: number): void
  /** x[i] = x[i] ⊕ y[i] for i < n. */
  add(x: Float32Array, y: Float32Array, n: number): void
}

/** Throws unless the arrays hold the values an attention call of `shape` reads and writes. */
export function checkAttentionShape(out: Float32Array, q: Float32Array, k: KvArray, v: KvArray, s: AttentionShape): void {
  const { start, nTok, nHead, nKvHead, headDim, window } = s
  if (k instanceof Uint16Array !== v instanceof Uint16Array) throw new KernelShapeError('attention', 'k and v caches of different element types (binary32 and binary16)')
  const ints = [start, nTok, nHead, nKvHead, headDim].every((n) => Number.isInteger(n) && n >= 0)
  if (!ints || nTok < 1 || nKvHead < 1 || headDim < 1 || nHead % nKvHead !== 0 || (window !== undefined && !(Number.isInteger(window) && window >= 1))) {
    throw new KernelShapeError('attention', `start ${start}, nTok ${nTok}, heads ${nHead}/${nKvHead}, headDim ${headDim}${window === undefined ? '' : `, window ${window}`}`)
  }
  const qn = nTok * nHead * headDim
  const kn = (start + nTok) * nKvHead * headDim
  if (q.length < qn || out.length < qn || k.length < kn || v.length < kn) {
    throw new KernelShapeError('attention', `q ${q.length}, out ${out.length} (need ${qn}); k ${k.length}, v ${v.length} (need ${kn})`)
  }
}

/**
 * Sliding-window attention from a full-causal `attention` (what the WASM ops run): the tokens whose
 * window still reaches position 0 in one call, each later token alone over views of the caches
 * that start at its window's first position (start' = W - 1). Every output row is computed from
 * the same positions in the same order as the reference's windowed loop, so the bits are equal;
 * views of WASM memory stay in place (no copy).
 */
export function attentionInWindow(attention: LayerOps['attention'], out: Float32Array, q: Float32Array, k: KvArray, v: KvArray, shape: AttentionShape): void {
  const { start, nTok, nHead, nKvHead, headDim, window } = shape
  const full = { start, nTok, nHead, nKvHead, headDim }
  // tokens t with start + t + 1 <= W see every position
  const head = window === undefined ? nTok : Math.min(nTok, Math.max(0, window - start))
  if (head > 0) attention(out, q, k, v, { ...full, nTok: head })
  if (window === undefined) return
  const qDim = nHead * headDim
  const kvDim = nKvHead * headDim
  for (let t = head; t < nTok; t++) {
    const lo = start + t + 1 - window
    const view = (a: KvArray) => a.subarray(lo * kvDim, (start + t + 1) * kvDim)
    attention(out.subarray(t * qDim, (t + 1) * qDim), q.subarray(t * qDim, (t + 1) * qDim), view(k), view(v), { ...full, start: window - 1, nTok: 1 })
  }
}

/** Throws unless every array holds at least `n` values. */
export function checkLength(what: string, n: number, ...arrays: ArrayLike<number>[]): void {
  if (!(Number.isInteger(n) && n >= 0) || arrays.some((a) => a.length < n)) {
    throw new KernelShapeError(what, `need ${n} values, have ${arrays.map((a) => a.length).join(', ')}`)
  }
}

/**
 * The TypeScript reference ops, a line-by-line reading of docs/ARITHMETIC.md; used by the
 * reference backend and as the twin the WASM ops are tested against.
 */
export const referenceLayerOps: LayerOps = {
  kind: 'reference',
  allocF32: (n) => new Float32Array(n),
  allocF16: (n) => new Uint16Array(n),
  toHalf(dst, src, n) {
    checkLength('toHalf', n, dst, src)
    for (let i = 0; i < n; i++) dst[i] = f2h(src[i])
  },
  rmsnorm(out, x, w, nTok, dim, eps) {
    checkLength('rmsnorm', nTok * dim, out, x)
    checkLength('rmsnorm weight', dim, w)
    for (let t = 0; t < nTok; t++) rmsnormRow(out, t * dim, x, t * dim, w, dim, eps)
  },
  attention(out, q, k, v, shape) {
    checkAttentionShape(out, q, k, v, shape)
    const { start, nTok: T, nHead: nh, nKvHead: nkv, headDim: hd } = shape
    // tessera-arith/2: the binary16 values widened exactly (h2f), then v1's steps on them
    const rows = (start + T) * nkv * hd
    const kc = k instanceof Uint16Array ? Float32Array.from(k.subarray(0, rows), h2f) : k
    const vc = v instanceof Uint16Array ? Float32Array.from(v.subarray(0, rows), h2f) : v
    const W = shape.window ?? start + T
    const kvDim = nkv * hd
    const group = nh / nkv
    const scale = f(1 / f(Math.sqrt(hd)))
    const scores = new Float32Array(start + T)
    const acc = new Float32Array(hd)
    for (let t = 0; t < T; t++) {
      // positions lo .. start + t: all of them, or the last W
      const lo = Math.max(0, start + t + 1 - W)
      const n = start + t + 1 - lo
      for (let h = 0; h < nh; h++) {
        const qo = (t * nh + h) * hd
        const ko = Math.floor(h / group) * hd
        // s_u = DOT8(q_h, k_u) ⊗ scale; m = max_u s_u
        let m = -Infinity
        for (let u = 0; u < n; u++) {
          const s = f(dot8(q, qo, kc, (lo + u) * kvDim + ko, hd) * scale)
          scores[u] = s
          if (s > m) m = s
        }
        // e_u = EXP(s_u ⊖ m); inv = 1 ⊘ SUM8(e)
        for (let u = 0; u < n; u++) scores[u] = exp(f(scores[u] - m))
        const inv = f(1 / sum8(scores, 0, n))
        // o_d = (Σ_u e_u ⊗ v_u[d]) ⊗ inv, Σ sequential in u; a Float32Array store rounds each ⊕
        acc.fill(0)
        for (let u = 0; u < n; u++) {
          const e = scores[u]
          const vo = (lo + u) * kvDim + ko
          for (let d = 0; d < hd; d++) acc[d] = acc[d] + f(e * vc[vo + d])
        }
        const o = qo
        for (let d = 0; d < hd; d++) out[o + d] = f(acc[d] * inv)
      }
    }
  },
  siluMul(gate, up, n) {
    checkLength('siluMul', n, gate, up)
    for (let i = 0; i < n; i++) gate[i] = f(silu(gate[i]) * up[i])
  },
  add(x, y, n) {
    checkLength('add', n, x, y)
    for (let i = 0; i < n; i++) x[i] = f(x[i] + y[i])
  },
}
