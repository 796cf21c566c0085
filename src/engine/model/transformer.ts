/**
 * The llama/qwen2 forward pass in the canonical arithmetic (docs/ARITHMETIC.md, "The ops of a
 * llama/qwen2 forward pass"). It reads top to bottom, one comment per stage. A batch of tokens
 * (prefill) and one token at a time (decode) give identical bits: every matmul output element and
 * every attention row is computed the same way whatever the batch, and the stages per token never
 * mix tokens except through the KV cache.
 *
 * Legend: T = tokens in this batch, dim = model width, hd = head dim, nh/nkv = query/kv heads,
 * kvDim = nkv*hd, ff = FFN width, V = vocab, ctx = context length.
 */
import type { Backend, MatrixHandle } from '../kernels/backend.js'
import type { ModelConfig } from './config.js'
import { cos, dot8, exp, f, log, rmsnorm, silu, sin, sum8 } from '../math/canonical.js'

export type TransformerConfig = ModelConfig

/** The weights the forward pass reads: 2-D matrices in the backend, 1-D vectors in JS. */
export type TransformerWeights = {
  config: TransformerConfig
  matrices: Record<string, MatrixHandle>
  vectors: Record<string, Float32Array>
}

/** Per-layer states emitted for trace commitments: (T, dim) residual and (T, kvDim) new K, V. */
export type LayerObserver = (layer: number, startPos: number, nTok: number, residual: Float32Array, k: Float32Array, v: Float32Array) => void

/** K and V of every position so far, per layer: (nLayer, ctx, kvDim). */
export class KVCache {
  readonly k: Float32Array[]
  readonly v: Float32Array[]
  /** Number of positions filled. */
  length = 0
  constructor(readonly config: TransformerConfig, readonly capacity = config.contextLength) {
    const kvDim = config.nKvHead * config.headDim
    this.k = Array.from({ length: config.nLayer }, () => new Float32Array(capacity * kvDim))
    this.v = Array.from({ length: config.nLayer }, () => new Float32Array(capacity * kvDim))
  }
}

/** RoPE frequencies freq_i = EXP((-2i ⊘ hd) ⊗ LOG(base)), i < hd/2. */
export function ropeFrequencies(headDim: number, base: number): Float32Array {
  const lnBase = log(f(base))
  const out = new Float32Array(headDim / 2)
  for (let i = 0; i < headDim / 2; i++) out[i] = exp(f(f(f(-2 * i) / headDim) * lnBase))
  return out
}

export class Transformer {
  readonly config: TransformerConfig
  private readonly freq: Float32Array
  private readonly m: Record<string, MatrixHandle>
  private readonly vec: Record<string, Float32Array>

  constructor(weights: TransformerWeights, private readonly backend: Backend) {
    this.config = weights.config
    this.m = weights.matrices
    this.vec = weights.vectors
    this.freq = ropeFrequencies(this.config.headDim, this.config.ropeBase)
  }

  /**
   * Runs tokens at positions `cache.length ..` through the model, appending their K/V to the
   * cache. Returns the logits (n, V) of the last `logitsFor` tokens of the batch (0 for none).
   */
  forward(tokens: readonly number[], cache: KVCache, logitsFor = 1, observe?: LayerObserver): Float32Array {
    const c = this.config
    const T = tokens.length
    const start = cache.length
    if (start + T > cache.capacity) throw new RangeError(`context overflow: ${start + T} > ${cache.capacity}`)
    const { dim, hd, kvDim, nh, nkv } = { dim: c.dim, hd: c.headDim, kvDim: c.nKvHead * c.headDim, nh: c.nHead, nkv: c.nKvHead }
    const b = this.backend

    // embedding: x = token_embd[tokens]                               (T, dim)
    const x = new Float32Array(T * dim)
    const row = new Float32Array(dim)
    for (let t = 0; t < T; t++) {
      b.getRow(this.m['token_embd.weight'], tokens[t], row)
      x.set(row, t * dim)
    }
    const xn = new Float32Array(T * dim)
    const attnOut = new Float32Array(T * nh * hd)
    const scores = new Float32Array(start + T)
    const acc = new Float32Array(hd)
    const ropeCos = new Float32Array(T * (hd / 2))
    const ropeSin = new Float32Array(T * (hd / 2))
    for (let t = 0; t < T; t++) {
      const pos = f(start + t)
      for (let i = 0; i < hd / 2; i++) {
        const a = f(pos * this.freq[i])
        ropeCos[t * (hd / 2) + i] = cos(a)
        ropeSin[t * (hd / 2) + i] = sin(a)
      }
    }
    const scale = f(1 / f(Math.sqrt(hd)))

    for (let l = 0; l < c.nLayer; l++) {
      const p = `blk.${l}.`
      // attention rmsnorm                                            (T, dim)
      for (let t = 0; t < T; t++) rmsnorm(xn, t * dim, x, t * dim, this.vec[p + 'attn_norm.weight'], dim, c.rmsEps)

      // qkv projections (+ bias for qwen2)                         (T, nh*hd), (T, kvDim) x2
      const q = b.matmul(this.m[p + 'attn_q.weight'], xn, T)
      const k = b.matmul(this.m[p + 'attn_k.weight'], xn, T)
      const v = b.matmul(this.m[p + 'attn_v.weight'], xn, T)
      addBias(q, this.vec[p + 'attn_q.bias'], T)
      addBias(k, this.vec[p + 'attn_k.bias'], T)
      addBias(v, this.vec[p + 'attn_v.bias'], T)

      // rope on q and k: pairs (2i, 2i+1) for llama, (i, i + hd/2) for qwen2 (NEOX)
      const half = c.arch === 'qwen2' ? hd / 2 : 1
      const stride = c.arch === 'qwen2' ? 1 : 2
      for (let t = 0; t < T; t++) {
        const cs = t * (hd / 2)
        for (let h = 0; h < nh; h++) rope(q, (t * nh + h) * hd, ropeCos, ropeSin, cs, hd, stride, half)
        for (let h = 0; h < nkv; h++) rope(k, (t * nkv + h) * hd, ropeCos, ropeSin, cs, hd, stride, half)
      }

      // append K, V to the cache                                      (ctx, kvDim)
      const kc = cache.k[l]
      const vc = cache.v[l]
      kc.set(k, start * kvDim)
      vc.set(v, start * kvDim)

      // causal attention per token and head over positions u <= pos   (T, nh*hd)
      const group = nh / nkv
      for (let t = 0; t < T; t++) {
        const n = start + t + 1
        for (let h = 0; h < nh; h++) {
          const qo = (t * nh + h) * hd
          const ko = Math.floor(h / group) * hd
          let m = -Infinity
          for (let u = 0; u < n; u++) {
            const s = f(dot8(q, qo, kc, u * kvDim + ko, hd) * scale)
            scores[u] = s
            if (s > m) m = s
          }
          for (let u = 0; u < n; u++) scores[u] = exp(f(scores[u] - m))
          const inv = f(1 / sum8(scores, 0, n))
          // o_d = (Σ_u e_u ⊗ v_u[d]) ⊗ inv, Σ sequential in u; a Float32Array store rounds each ⊕
          acc.fill(0)
          for (let u = 0; u < n; u++) {
            const e = scores[u]
            const vo = u * kvDim + ko
            for (let d = 0; d < hd; d++) acc[d] = acc[d] + f(e * vc[vo + d])
          }
          const o = t * nh * hd + h * hd
          for (let d = 0; d < hd; d++) attnOut[o + d] = f(acc[d] * inv)
        }
      }

      // output projection and residual                              (T, dim)
      const proj = b.matmul(this.m[p + 'attn_output.weight'], attnOut, T)
      addInPlace(x, proj)

      // ffn: rmsnorm, gate/up, silu(gate) * up, down, residual     (T, ff) -> (T, dim)
      for (let t = 0; t < T; t++) rmsnorm(xn, t * dim, x, t * dim, this.vec[p + 'ffn_norm.weight'], dim, c.rmsEps)
      const gate = b.matmul(this.m[p + 'ffn_gate.weight'], xn, T)
      const up = b.matmul(this.m[p + 'ffn_up.weight'], xn, T)
      for (let i = 0; i < gate.length; i++) gate[i] = f(silu(gate[i]) * up[i])
      const down = b.matmul(this.m[p + 'ffn_down.weight'], gate, T)
      addInPlace(x, down)

      observe?.(l, start, T, x, k, v)
    }
    cache.length = start + T

    // final rmsnorm and logits of the last `logitsFor` tokens          (logitsFor, V)
    const nOut = Math.min(logitsFor, T)
    if (nOut === 0) return new Float32Array(0)
    const last = new Float32Array(nOut * dim)
    for (let j = 0; j < nOut; j++) rmsnorm(last, j * dim, x, (T - nOut + j) * dim, this.vec['output_norm.weight'], dim, c.rmsEps)
    const out = this.m['output.weight'] ?? this.m['token_embd.weight']
    return b.matmul(out, last, nOut)
  }
}

function addBias(y: Float32Array, bias: Float32Array | undefined, T: number): void {
  if (!bias) return
  const n = bias.length
  for (let t = 0; t < T; t++) for (let i = 0; i < n; i++) y[t * n + i] = f(y[t * n + i] + bias[i])
}

function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] = f(x[i] + y[i])
}

/** Rotates one head in place: pair i is (off + i*stride, off + i*stride + half). */
function rope(x: Float32Array, off: number, cs: Float32Array, sn: Float32Array, csOff: number, hd: number, stride: number, half: number): void {
  for (let i = 0; i < hd / 2; i++) {
    const a = off + i * stride
    const x0 = x[a]
    const x1 = x[a + half]
    const c = cs[csOff + i]
    const s = sn[csOff + i]
    x[a] = f(f(x0 * c) - f(x1 * s))
    x[a + half] = f(f(x0 * s) + f(x1 * c))
  }
}
