/**
 * The Trainer: one optimizer step of the llama-shaped model (the engine's forward pass in F32,
 * src/engine/model/transformer.ts), its backward pass and AdamW, in the canonical arithmetic with
 * a fixed order for every reduction (docs/TRAINING.md "Model and arithmetic"). The same config,
 * tokens and seed give the same state bytes on every backend and thread count: the stages below
 * are shared, only the kernels (`TrainOps`) differ, and those are bit-for-bit twins.
 *
 * Legend: B sequences of C positions per call, N = B·C tokens (n = b·C + t), dim = model width,
 * nh/nkv = query/kv heads, hd = head dim, qDim = nh·hd, kvDim = nkv·hd, ff = FFN width, V = vocab.
 */
import { BaseError, InvalidParameterError } from '../errors.js'
import { cos, f, sin, sum8 } from '../engine/math/canonical.js'
import { ropeFrequencies } from '../engine/model/transformer.js'
import { loadNativeTrain, type NativeTrain, nativeTrainUnavailable } from '../runtime/native/train.js'
import { adamHyper, clipScale, globalNorm } from './adamw.js'
import { checkState, paramList, TrainStateError, type TrainConfig, type TrainState, validateConfig } from './model.js'
import { type AdamHyper, type AttnShape, referenceTrainOps, type TrainOps } from './ops.js'

export type { TrainConfig, TrainState } from './model.js'
export { decodeState, encodeState, initState, paramCount, paramShapes } from './model.js'

export type StepResult = {
  /** Mean cross-entropy in nats (binary32) of the step's batch, before the update. */
  loss: number
  /** Global gradient norm before clipping (binary32). */
  gradNorm: number
}

export interface Trainer {
  /** One optimizer step on `tokens` (batch sequences of context+1 token ids, row-major: inputs are [0..context), targets [1..context]); mutates state. */
  step(state: TrainState, tokens: Int32Array): Promise<StepResult>
  /** Mean cross-entropy (nats) of state's model on `tokens` (n sequences of context+1), no update. */
  loss(state: TrainState, tokens: Int32Array): Promise<number>
  close(): Promise<void>
}

export type TrainerOptions = { backend?: 'reference' | 'native' | 'auto'; threads?: number }

/** The native training kernels were asked for and cannot load here. */
export class TrainBackendError extends BaseError {
  override name = 'TrainBackendError'
  constructor(why: string) {
    super('the native training kernels are unavailable', { details: why, docs: 'docs/TRAINING.md' })
  }
}

/** Which kernels `opts` selects (throws TrainBackendError for 'native' without the addon). */
export function selectOps(opts: TrainerOptions = {}): TrainOps {
  const backend = opts.backend ?? 'auto'
  const threads = opts.threads ?? 1
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new InvalidParameterError('threads', threads, 'an integer from 1 to 256')
  if (backend === 'reference') return referenceTrainOps
  if (backend !== 'native' && backend !== 'auto') throw new InvalidParameterError('backend', backend, 'reference, native or auto')
  const native = loadNativeTrain()
  if (native) return nativeTrainOps(native, threads)
  if (backend === 'native') throw new TrainBackendError(nativeTrainUnavailable() ?? 'not built')
  return referenceTrainOps
}

export async function createTrainer(config: TrainConfig, opts: TrainerOptions = {}): Promise<Trainer> {
  validateConfig(config)
  const model = new TrainModel(config, selectOps(opts))
  return {
    step: async (state, tokens) => model.step(state, tokens),
    loss: async (state, tokens) => model.loss(state, tokens),
    close: async () => {},
  }
}

/** Activations of one layer kept for the backward pass. */
type LayerActs = {
  xIn: Float32Array; xn1: Float32Array; xhat1: Float32Array; s1: Float32Array
  q: Float32Array; k: Float32Array; v: Float32Array; o: Float32Array; e: Float32Array; inv: Float32Array
  xMid: Float32Array; xn2: Float32Array; xhat2: Float32Array; s2: Float32Array
  g: Float32Array; u: Float32Array; h: Float32Array
}

type Forward = { N: number; B: number; inp: Int32Array; tgt: Int32Array; layers: LayerActs[]; xF: Float32Array; xnF: Float32Array; xhatF: Float32Array; sF: Float32Array; z: Float32Array; lossTok: Float32Array }

/** The model's forward and backward passes over a kernel set (exported for tests and the bench). */
export class TrainModel {
  readonly hd: number
  private readonly cosT: Float32Array
  private readonly sinT: Float32Array
  /** Buffers reused between calls (by role and size): a step allocates nothing large. */
  private readonly ws = new Map<string, Float32Array>()

  /** The reusable buffer for `key` with n values (contents undefined: every user overwrites it or clears it first). */
  private buf(key: string, n: number): Float32Array {
    let a = this.ws.get(key)
    if (!a || a.length !== n) {
      a = new Float32Array(n)
      this.ws.set(key, a)
    }
    return a
  }

  constructor(readonly c: TrainConfig, readonly ops: TrainOps) {
    validateConfig(c)
    this.hd = c.dim / c.nHead
    // RoPE tables [C][hd/2] exactly as the engine's: a = i2f(pos) ⊗ freq_i, COS(a), SIN(a)
    const half = this.hd / 2
    const freq = ropeFrequencies(this.hd, c.ropeBase)
    this.cosT = new Float32Array(c.context * half)
    this.sinT = new Float32Array(c.context * half)
    for (let t = 0; t < c.context; t++) {
      for (let i = 0; i < half; i++) {
        const a = f(f(t) * freq[i])
        this.cosT[t * half + i] = cos(a)
        this.sinT[t * half + i] = sin(a)
      }
    }
  }

  /** Splits B sequences of C+1 ids into inputs and targets (N each), checking every id. */
  private split(tokens: Int32Array): { B: number; inp: Int32Array; tgt: Int32Array } {
    const C = this.c.context
    if (!(tokens instanceof Int32Array) || tokens.length === 0 || tokens.length % (C + 1) !== 0) {
      throw new TrainStateError(`tokens: ${tokens?.length} ids is not a positive multiple of context + 1 = ${C + 1}`)
    }
    const B = tokens.length / (C + 1)
    const inp = new Int32Array(B * C), tgt = new Int32Array(B * C)
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < C; t++) {
        inp[b * C + t] = tokens[b * (C + 1) + t]
        tgt[b * C + t] = tokens[b * (C + 1) + t + 1]
      }
    }
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i]
      if (id < 0 || id >= this.c.vocabSize) throw new TrainStateError(`tokens[${i}] = ${id} is outside the vocabulary 0..${this.c.vocabSize - 1}`)
    }
    return { B, inp, tgt }
  }

  /** The forward pass over B sequences; per-token losses in lossTok; with `grad` z holds dz. */
  forward(params: Map<string, Float32Array>, tokens: Int32Array, grad: boolean): Forward {
    const { c, ops, hd } = this
    const { B, inp, tgt } = this.split(tokens)
    const C = c.context, N = B * C, dim = c.dim, qDim = c.nHead * hd, kvDim = c.nKvHead * hd, ff = c.ffDim, V = c.vocabSize
    const P = (name: string) => params.get(name) as Float32Array
    // embedding: x = token_embd[inp]                                          (N, dim)
    const emb = P('token_embd.weight')
    const B_ = (key: string, n: number) => this.buf(key, n)
    let x = B_('x0', N * dim)
    for (let n = 0; n < N; n++) x.set(emb.subarray(inp[n] * dim, (inp[n] + 1) * dim), n * dim)
    const layers: LayerActs[] = []
    const shape = { B, C, nh: c.nHead, nkv: c.nKvHead, hd }
    for (let l = 0; l < c.nLayer; l++) {
      const p = `blk.${l}.`
      const a: LayerActs = {
        xIn: x, xn1: B_(`${l}.xn1`, N * dim), xhat1: B_(`${l}.xhat1`, N * dim), s1: B_(`${l}.s1`, N),
        q: B_(`${l}.q`, N * qDim), k: B_(`${l}.k`, N * kvDim), v: B_(`${l}.v`, N * kvDim),
        o: B_(`${l}.o`, N * qDim), e: B_(`${l}.e`, B * c.nHead * C * C), inv: B_(`${l}.inv`, B * c.nHead * C),
        xMid: B_(`${l}.xMid`, N * dim), xn2: B_(`${l}.xn2`, N * dim), xhat2: B_(`${l}.xhat2`, N * dim), s2: B_(`${l}.s2`, N),
        g: B_(`${l}.g`, N * ff), u: B_(`${l}.u`, N * ff), h: B_(`${l}.h`, N * ff),
      }
      // attention: rmsnorm, q/k/v = W xn, rope, causal attention, output projection, residual
      ops.rmsnorm(a.xn1, a.xhat1, a.s1, x, P(p + 'attn_norm.weight'), N, dim, c.rmsEps)
      ops.mm(a.q, a.xn1, P(p + 'attn_q.weight'), N, qDim, dim)
      ops.mm(a.k, a.xn1, P(p + 'attn_k.weight'), N, kvDim, dim)
      ops.mm(a.v, a.xn1, P(p + 'attn_v.weight'), N, kvDim, dim)
      ops.rope(a.q, N, c.nHead, hd, C, this.cosT, this.sinT, false)
      ops.rope(a.k, N, c.nKvHead, hd, C, this.cosT, this.sinT, false)
      ops.attention(a.o, a.e, a.inv, a.q, a.k, a.v, shape)
      ops.mm(a.xMid, a.o, P(p + 'attn_output.weight'), N, dim, qDim)
      ops.add(a.xMid, x, N * dim) // x ⊕ proj: ⊕ is commutative, so proj ⊕ x is the same bits
      // ffn: rmsnorm, gate/up, SILU(gate) ⊗ up, down, residual
      ops.rmsnorm(a.xn2, a.xhat2, a.s2, a.xMid, P(p + 'ffn_norm.weight'), N, dim, c.rmsEps)
      ops.mm(a.g, a.xn2, P(p + 'ffn_gate.weight'), N, ff, dim)
      ops.mm(a.u, a.xn2, P(p + 'ffn_up.weight'), N, ff, dim)
      ops.siluMul(a.h, a.g, a.u, N * ff)
      const xOut = B_(`${l}.xOut`, N * dim)
      ops.mm(xOut, a.h, P(p + 'ffn_down.weight'), N, dim, ff)
      ops.add(xOut, a.xMid, N * dim)
      layers.push(a)
      x = xOut
    }
    // final rmsnorm, logits, cross-entropy
    const xnF = B_('xnF', N * dim), xhatF = B_('xhatF', N * dim), sF = B_('sF', N)
    ops.rmsnorm(xnF, xhatF, sF, x, P('output_norm.weight'), N, dim, c.rmsEps)
    const z = B_('z', N * V)
    ops.mm(z, xnF, P(c.tiedEmbeddings ? 'token_embd.weight' : 'output.weight'), N, V, dim)
    const lossTok = new Float32Array(N)
    ops.crossEntropy(z, lossTok, tgt, N, V, f(1 / f(N)), grad)
    return { N, B, inp, tgt, layers, xF: x, xnF, xhatF, sF, z, lossTok }
  }

  /** Gradients of the mean loss of a forward pass run with `grad`, per parameter name. */
  backward(params: Map<string, Float32Array>, fw: Forward): Map<string, Float32Array> {
    const { c, ops, hd } = this
    const { N, B } = fw
    const C = c.context, dim = c.dim, qDim = c.nHead * hd, kvDim = c.nKvHead * hd, ff = c.ffDim, V = c.vocabSize
    const P = (name: string) => params.get(name) as Float32Array
    const grads = new Map<string, Float32Array>()
    const shape = { B, C, nh: c.nHead, nkv: c.nKvHead, hd }
    // scratch for transposes: the largest (rows × N) operand and weight
    const B_ = (key: string, n: number) => this.buf(key, n)
    const maxW = Math.max(V, ff, qDim, dim)
    const tA = B_('tA', maxW * N), tB = B_('tB', maxW * N)
    const wT = B_('wT', Math.max(V * dim, ff * dim, qDim * dim))
    /** dW (out, in) = DOT8 over tokens of dYᵀ_o and Xᵀ_i (`sameX`: X is the previous call's, its transpose is still in tB). */
    const weightGrad = (name: string, dY: Float32Array, X: Float32Array, out: number, inn: number, sameX = false): Float32Array => {
      ops.transpose(tA, dY, N, out)
      if (!sameX) ops.transpose(tB, X, N, inn)
      const dW = B_(`grad.${name}`, out * inn)
      ops.mm(dW, tA, tB, out, inn, N)
      return dW
    }
    /** dX (N, in) = dY (N, out) · W (out, in): DOT8(dY_t, Wᵀ_i). */
    const inputGrad = (dX: Float32Array, dY: Float32Array, W: Float32Array, out: number, inn: number): void => {
      ops.transpose(wT, W, out, inn)
      ops.mm(dX, dY, wT, N, inn, out)
    }
    /** d(norm weight)_i = DOT8 over tokens of dyᵀ_i and xhatᵀ_i. */
    const normGrad = (name: string, dy: Float32Array, xhat: Float32Array): Float32Array => {
      ops.transpose(tA, dy, N, dim)
      ops.transpose(tB, xhat, N, dim)
      const dw = B_(`grad.${name}`, dim)
      ops.rowDot(dw, tA, tB, dim, N)
      return dw
    }

    // logits: dz (in fw.z) -> d(output weight), dxnF; final norm -> dx
    const dz = fw.z
    const dOut = weightGrad('logits', dz, fw.xnF, V, dim)
    const dxnF = B_('dxnF', N * dim)
    inputGrad(dxnF, dz, P(c.tiedEmbeddings ? 'token_embd.weight' : 'output.weight'), V, dim)
    grads.set('output_norm.weight', normGrad('output_norm.weight', dxnF, fw.xhatF))
    const dx = B_('dx', N * dim).fill(0)
    ops.rmsnormBack(dx, dxnF, fw.xF, fw.sF, P('output_norm.weight'), N, dim)

    const dh = B_('dh', N * ff), dg = B_('dg', N * ff), du = B_('du', N * ff)
    const dxn = B_('dxn', N * dim), dxn2 = B_('dxn2', N * dim)
    const dO = B_('dO', N * qDim), dq = B_('dq', N * qDim)
    const dk = B_('dk', N * kvDim), dv = B_('dv', N * kvDim)
    for (let l = c.nLayer - 1; l >= 0; l--) {
      const p = `blk.${l}.`
      const a = fw.layers[l]
      // ffn: dx is the gradient at the layer's output (= x_mid ⊕ down)
      grads.set(p + 'ffn_down.weight', weightGrad(p + 'ffn_down.weight', dx, a.h, dim, ff))
      inputGrad(dh, dx, P(p + 'ffn_down.weight'), dim, ff)
      ops.siluMulBack(dg, du, dh, a.g, a.u, N * ff)
      grads.set(p + 'ffn_gate.weight', weightGrad(p + 'ffn_gate.weight', dg, a.xn2, ff, dim))
      grads.set(p + 'ffn_up.weight', weightGrad(p + 'ffn_up.weight', du, a.xn2, ff, dim, true))
      inputGrad(dxn, dg, P(p + 'ffn_gate.weight'), ff, dim)
      inputGrad(dxn2, du, P(p + 'ffn_up.weight'), ff, dim)
      ops.add(dxn, dxn2, N * dim) // dxn = dxn_gate ⊕ dxn_up
      grads.set(p + 'ffn_norm.weight', normGrad(p + 'ffn_norm.weight', dxn, a.xhat2))
      ops.rmsnormBack(dx, dxn, a.xMid, a.s2, P(p + 'ffn_norm.weight'), N, dim) // dx: gradient at x_mid
      // attention: output projection, attention, rope, q/k/v projections, norm
      grads.set(p + 'attn_output.weight', weightGrad(p + 'attn_output.weight', dx, a.o, dim, qDim))
      inputGrad(dO, dx, P(p + 'attn_output.weight'), dim, qDim)
      ops.attentionBack(dq, dk, dv, dO, a.o, a.e, a.inv, a.q, a.k, a.v, shape)
      ops.rope(dq, N, c.nHead, hd, C, this.cosT, this.sinT, true)
      ops.rope(dk, N, c.nKvHead, hd, C, this.cosT, this.sinT, true)
      grads.set(p + 'attn_q.weight', weightGrad(p + 'attn_q.weight', dq, a.xn1, qDim, dim))
      grads.set(p + 'attn_k.weight', weightGrad(p + 'attn_k.weight', dk, a.xn1, kvDim, dim, true))
      grads.set(p + 'attn_v.weight', weightGrad(p + 'attn_v.weight', dv, a.xn1, kvDim, dim, true))
      inputGrad(dxn, dq, P(p + 'attn_q.weight'), qDim, dim)
      inputGrad(dxn2, dk, P(p + 'attn_k.weight'), kvDim, dim)
      ops.add(dxn, dxn2, N * dim) // (dxn_q ⊕ dxn_k) ⊕ dxn_v
      inputGrad(dxn2, dv, P(p + 'attn_v.weight'), kvDim, dim)
      ops.add(dxn, dxn2, N * dim)
      grads.set(p + 'attn_norm.weight', normGrad(p + 'attn_norm.weight', dxn, a.xhat1))
      ops.rmsnormBack(dx, dxn, a.xIn, a.s1, P(p + 'attn_norm.weight'), N, dim) // dx: gradient at the layer's input
    }

    // embedding: scatter[v][i] = SUM8 over the tokens n with inp[n] = v (increasing n) of dx[n][i];
    // tied: d token_embd = d(logit weight) ⊕ scatter; untied: d token_embd = scatter, d output = d(logit weight)
    const scatter = embeddingScatter(dx, fw.inp, N, dim, V, B_('scatter', V * dim))
    if (c.tiedEmbeddings) {
      ops.add(dOut, scatter, V * dim)
      grads.set('token_embd.weight', dOut)
    } else {
      grads.set('token_embd.weight', scatter)
      grads.set('output.weight', dOut)
    }
    return grads
  }

  /** One optimizer step (forward, backward, clip, AdamW); mutates state. */
  step(state: TrainState, tokens: Int32Array): StepResult {
    const c = this.c
    checkState(c, state)
    if (tokens.length !== c.batch * (c.context + 1)) throw new TrainStateError(`tokens: ${tokens.length} ids, a step takes batch·(context+1) = ${c.batch * (c.context + 1)}`)
    const fw = this.forward(state.params, tokens, true)
    const loss = f(sum8(fw.lossTok) / f(fw.N))
    const grads = this.backward(state.params, fw)
    const list = paramList(c)
    const ss = new Float32Array(list.length)
    const one = new Float32Array(1)
    list.forEach((p, i) => {
      const g = grads.get(p.name) as Float32Array
      this.ops.rowDot(one, g, g, 1, p.size)
      ss[i] = one[0]
    })
    const gradNorm = globalNorm(ss)
    const scale = clipScale(c, gradNorm)
    for (const p of list) {
      const h = adamHyper(c, state.step, scale, p.decay)
      this.ops.adamw(state.params.get(p.name) as Float32Array, state.m.get(p.name) as Float32Array, state.v.get(p.name) as Float32Array, grads.get(p.name) as Float32Array, p.size, h)
    }
    state.step += 1
    return { loss, gradNorm }
  }

  /** Mean loss over n sequences, evaluated `batch` sequences at a time (per-token losses do not depend on the grouping). */
  loss(state: TrainState, tokens: Int32Array): number {
    const c = this.c
    checkState(c, state)
    const L = c.context + 1
    if (tokens.length === 0 || tokens.length % L !== 0) throw new TrainStateError(`tokens: ${tokens.length} ids is not a positive multiple of context + 1 = ${L}`)
    const nSeq = tokens.length / L
    const all = new Float32Array(nSeq * c.context)
    for (let s0 = 0; s0 < nSeq; s0 += c.batch) {
      const s1 = Math.min(nSeq, s0 + c.batch)
      const fw = this.forward(state.params, tokens.subarray(s0 * L, s1 * L), false)
      all.set(fw.lossTok, s0 * c.context)
    }
    return f(sum8(all) / f(all.length))
  }
}

/** scatter[v][i] = SUM8 over the positions n with inp[n] = v, in increasing n, of dx[n][i]; +0 for ids that do not occur. */
export function embeddingScatter(dx: Float32Array, inp: Int32Array, N: number, dim: number, V: number, into?: Float32Array): Float32Array {
  const out = into ? into.fill(0) : new Float32Array(V * dim)
  const count = new Int32Array(V)
  for (let n = 0; n < N; n++) count[inp[n]]++
  const start = new Int32Array(V + 1)
  for (let v = 0; v < V; v++) start[v + 1] = start[v] + count[v]
  const order = new Int32Array(N)
  const fill = start.slice(0, V)
  for (let n = 0; n < N; n++) order[fill[inp[n]]++] = n
  const buf = new Float32Array(N)
  for (let v = 0; v < V; v++) {
    const k = count[v]
    if (k === 0) continue
    const s = start[v]
    for (let i = 0; i < dim; i++) {
      for (let j = 0; j < k; j++) buf[j] = dx[order[s + j] * dim + i]
      out[v * dim + i] = sum8(buf, 0, k)
    }
  }
  return out
}

/** AdamHyper packed in the addon's order (each value already binary32). */
function packHyper(h: AdamHyper): Float32Array {
  return new Float32Array([h.clipScale, h.lr, h.beta1, h.beta2, h.oneMinusBeta1, h.oneMinusBeta2, h.bc1, h.bc2, h.eps, h.weightDecay])
}

/** TrainOps over the addon with `threads` worker threads (throws if the addon is not loaded). */
export function nativeTrainOps(n: NativeTrain, threads: number): TrainOps {
  return {
    kind: 'native',
    mm: (c, a, b, M, N, K) => n.mm(threads, c, a, b, M, N, K),
    rowDot: (out, a, b, rows, K) => n.rowDot(threads, out, a, b, rows, K),
    transpose: (dst, src, rows, cols) => n.transpose(dst, src, rows, cols, threads),
    rmsnorm: (y, xhat, s, x, w, N, dim, eps) => n.rmsnorm(y, xhat, s, x, w, N, dim, eps, threads),
    rmsnormBack: (dx, dy, x, s, w, N, dim) => n.rmsnormBack(dx, dy, x, s, w, N, dim, threads),
    rope: (x, N, heads, hd, C, cs, sn, back) => n.rope(x, N, heads, hd, C, cs, sn, back),
    attention: (o, e, inv, q, k, v, s: AttnShape) => n.attention(threads, o, e, inv, q, k, v, s.B, s.C, s.nh, s.nkv, s.hd),
    attentionBack: (dq, dk, dv, dO, o, e, inv, q, k, v, s: AttnShape) => n.attentionBack(threads, dq, dk, dv, dO, o, e, inv, q, k, v, s.B, s.C, s.nh, s.nkv, s.hd),
    siluMul: (h, g, u, N) => n.siluMul(threads, h, g, u, N),
    siluMulBack: (dg, du, dh, g, u, N) => n.siluMulBack(threads, dg, du, dh, g, u, N),
    add: (x, y, N) => n.add(x, y, N),
    crossEntropy: (z, loss, targets, N, V, invN, grad) => n.crossEntropy(threads, z, loss, targets, N, V, invN, grad),
    adamw: (p, m, v, g, N, h) => n.adamw(p, m, v, g, N, packHyper(h), threads),
  }
}
