/**
 * A plain float64 forward pass of the llama-family transformer, for tests only (Math.exp / log /
 * sin / cos and no rounding to binary32: an independent reading of the model, not the engine's
 * canonical arithmetic). One token at a time with its own K/V cache, so a whole sequence (causal
 * attention over every earlier position) and greedy decode are the same calls.
 *
 * Used by the trainer's gradient check (src/train/trainer.test.ts: central differences of the mean
 * cross-entropy) and by the synthetic-weights sanity test (src/engine/model/synth.test.ts: greedy
 * decode of the presets). llama RoPE rotates adjacent pairs, qwen2 the two halves of each head
 * (NEOX); q/k/v biases when `hasQkvBias`; the logits use `output.weight`, or the token embedding
 * when the model has none (tied). Not covered: per-head q/k norms (qwen3) and sliding windows.
 *
 * @example
 *   const f = new Forward64(config, (name) => weights.get(name))
 *   const logits = [f.step(1), f.step(300)] // positions 0 and 1
 */
import type { ModelConfig } from '../../src/engine/model/config.js'

export type Forward64Config = Pick<ModelConfig, 'arch' | 'dim' | 'nLayer' | 'nHead' | 'nKvHead' | 'headDim' | 'ffDim' | 'vocabSize' | 'ropeBase' | 'rmsEps' | 'hasQkvBias'> &
  Partial<Pick<ModelConfig, 'hasQkNorm' | 'slidingWindow'>>

/** A tensor's values by GGUF name (row-major, rows of the input width), or undefined when the model has none. */
export type Weights64 = (name: string) => ArrayLike<number> | undefined

export class Forward64 {
  private readonly K: Float64Array[][]
  private readonly V: Float64Array[][]
  private pos = 0

  constructor(
    private readonly c: Forward64Config,
    private readonly weights: Weights64,
  ) {
    if (c.hasQkNorm || c.slidingWindow !== undefined) throw new Error('Forward64: per-head q/k norms and sliding windows are not implemented')
    this.K = Array.from({ length: c.nLayer }, () => [])
    this.V = Array.from({ length: c.nLayer }, () => [])
  }

  private w(name: string): ArrayLike<number> {
    const t = this.weights(name)
    if (!t) throw new Error(`Forward64: no tensor ${name}`)
    return t
  }

  private matvec(w: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number): Float64Array {
    const y = new Float64Array(rows)
    for (let r = 0; r < rows; r++) {
      let s = 0
      for (let i = 0; i < cols; i++) s += w[r * cols + i] * x[i]
      y[r] = s
    }
    return y
  }

  private rms(x: Float64Array, w: ArrayLike<number>): Float64Array {
    let ss = 0
    for (const v of x) ss += v * v
    const k = 1 / Math.sqrt(ss / x.length + this.c.rmsEps)
    return x.map((v, i) => v * k * w[i])
  }

  private rope(x: Float64Array, heads: number, pos: number): void {
    const hd = this.c.headDim
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const ang = pos * this.c.ropeBase ** ((-2 * i) / hd)
        const a = this.c.arch === 'llama' ? h * hd + 2 * i : h * hd + i
        const b = this.c.arch === 'llama' ? a + 1 : a + hd / 2
        const x0 = x[a]
        const x1 = x[b]
        x[a] = x0 * Math.cos(ang) - x1 * Math.sin(ang)
        x[b] = x0 * Math.sin(ang) + x1 * Math.cos(ang)
      }
    }
  }

  /** The logits after `token` at the next position (0 first). */
  step(token: number): Float64Array {
    const { dim, headDim: hd, nHead: nh, nKvHead: nkv, ffDim: ff } = this.c
    const pos = this.pos++
    const emb = this.w('token_embd.weight')
    let x = Float64Array.from({ length: dim }, (_, i) => emb[token * dim + i])
    for (let l = 0; l < this.c.nLayer; l++) {
      const p = `blk.${l}.`
      const xn = this.rms(x, this.w(`${p}attn_norm.weight`))
      const q = this.matvec(this.w(`${p}attn_q.weight`), xn, nh * hd, dim)
      const k = this.matvec(this.w(`${p}attn_k.weight`), xn, nkv * hd, dim)
      const v = this.matvec(this.w(`${p}attn_v.weight`), xn, nkv * hd, dim)
      if (this.c.hasQkvBias) {
        for (const [vec, name] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
          const bias = this.w(`${p}attn_${name}.bias`)
          for (let i = 0; i < vec.length; i++) vec[i] += bias[i]
        }
      }
      this.rope(q, nh, pos)
      this.rope(k, nkv, pos)
      this.K[l].push(k)
      this.V[l].push(v)
      const att = new Float64Array(nh * hd)
      for (let h = 0; h < nh; h++) {
        const g = Math.floor(h / (nh / nkv))
        const s = this.K[l].map((kk) => {
          let d = 0
          for (let i = 0; i < hd; i++) d += q[h * hd + i] * kk[g * hd + i]
          return d / Math.sqrt(hd)
        })
        const m = Math.max(...s)
        const e = s.map((z) => Math.exp(z - m))
        const S = e.reduce((a, b) => a + b, 0)
        for (let u = 0; u < e.length; u++) for (let i = 0; i < hd; i++) att[h * hd + i] += (e[u] / S) * this.V[l][u][g * hd + i]
      }
      const o = this.matvec(this.w(`${p}attn_output.weight`), att, dim, nh * hd)
      x = x.map((val, i) => val + o[i])
      const yn = this.rms(x, this.w(`${p}ffn_norm.weight`))
      const gate = this.matvec(this.w(`${p}ffn_gate.weight`), yn, ff, dim)
      const up = this.matvec(this.w(`${p}ffn_up.weight`), yn, ff, dim)
      const hh = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i])
      const d = this.matvec(this.w(`${p}ffn_down.weight`), hh, dim, ff)
      x = x.map((val, i) => val + d[i])
    }
    const out = this.weights('output.weight') ?? this.w('token_embd.weight')
    return this.matvec(out, this.rms(x, this.w('output_norm.weight')), this.c.vocabSize, dim)
  }
}
