/**
 * The llama/qwen2/qwen3 forward pass in the canonical arithmetic (docs/ARITHMETIC.md, "The ops of
 * a llama/qwen2 forward pass"; qwen3 adds a per-head RMSNorm of q and k before RoPE, and any of
 * them may attend within a sliding window). It reads top to bottom, one comment per stage. A batch of tokens
 * (prefill) and one token at a time (decode) give identical bits: every matmul output element and
 * every attention row is computed the same way whatever the batch, and the stages per token never
 * mix tokens except through the KV cache.
 *
 * Legend: T = tokens in this batch, dim = model width, hd = head dim, nh/nkv = query/kv heads,
 * kvDim = nkv*hd, ff = FFN width, V = vocab, ctx = context length.
 */
import type { Backend, MatrixHandle } from '../kernels/backend.js'
import { attentionInWindow, type KvArray, type LayerOps, referenceLayerOps } from '../kernels/layerOps.js'
import { ARITH_VERSION, type ArithVersion, roundsKv } from '../version.js'
import type { ModelConfig } from './config.js'
import { HEAD_OP, LAYER_OP } from './opTable.js'
import { cos, exp, f, log, sin } from '../math/canonical.js'

export type TransformerConfig = ModelConfig

/** The weights the forward pass reads: 2-D matrices in the backend, 1-D vectors in JS. */
export type TransformerWeights = {
  config: TransformerConfig
  matrices: Record<string, MatrixHandle>
  vectors: Record<string, Float32Array>
}

/**
 * Per-layer states emitted for trace commitments: (T, dim) residual and (T, kvDim) new K, V. The
 * arrays are the forward pass's scratch, overwritten by the next layer and call: copy what you keep.
 */
export type LayerObserver = (layer: number, startPos: number, nTok: number, residual: Float32Array, k: Float32Array, v: Float32Array) => void

/**
 * Per-op states for the dispute game's op level: called at report point `op` of a layer
 * (LAYER_OP, opTable.ts) or of the head (layer = nLayer: HEAD_OP) with its outputs for the batch's
 * tokens at `startPos ..` ((nTok, n) each; the machine slots they are: LAYER_OP_SLOTS) and, for a
 * matmul, its input (nTok, cols). Arrays are reused between layers: copy what you keep. An
 * observer may change the outputs in place (tests and cheats inject faults this way) and nothing
 * else.
 */
export type OpObserver = (layer: number, op: number, startPos: number, nTok: number, outs: readonly Float32Array[], input?: Float32Array) => void

/**
 * K and V of the positions attention can still read, per layer: (nLayer, rows, kvDim), row r
 * holding position `base + r`. Without a sliding window that is every position (rows = capacity,
 * base 0). With a window W, positions no later query can see are dropped: before a batch at
 * `start`, only the W - 1 positions before it are kept (moved to the front), so the cache holds
 * W - 1 + the batch's tokens rather than the whole context. The arrays are allocated on first use
 * in the memory the layer ops read without copying (WASM memory for the WASM ops); a cache handed
 * to other ops later moves there once, keeping its contents.
 *
 * The cache decides the job's arithmetic (`arith`, default ARITH_VERSION): under tessera-arith/1
 * it holds binary32 values, under tessera-arith/2 binary16 bits (f2h of each K and V value, half
 * the bytes), which attention widens exactly: the rounding R = h2f∘f2h of docs/ARITHMETIC.md.
 */
export class KVCache {
  private store?: { ops: LayerOps; rows: number; k: KvArray[]; v: KvArray[] }
  /** Number of positions filled. */
  length = 0
  /** The position row 0 holds (> 0 only once a sliding window dropped older positions). */
  base = 0
  /** Whether K and V are kept as binary16 (tessera-arith/2). */
  readonly half: boolean
  constructor(
    readonly config: TransformerConfig,
    readonly capacity = config.contextLength,
    readonly arith: ArithVersion = ARITH_VERSION,
  ) {
    this.half = roundsKv(arith)
  }

  /** Positions the arrays have room for (0 before first use). */
  get rows(): number {
    return this.store?.rows ?? 0
  }

  /** The per-layer K and V arrays, living where `ops` computes (rows base .. base + rows - 1). */
  storage(ops: LayerOps): { k: KvArray[]; v: KvArray[] } {
    if (this.store?.ops !== ops) this.store = this.allocate(ops, this.store?.rows ?? this.initialRows())
    return this.store
  }

  /**
   * The arrays ready for a batch of `nTok` tokens at `start` (= length): rows for positions
   * start - base .. start - base + nTok - 1 exist, and every position the batch attends to is held.
   */
  prepare(ops: LayerOps, start: number, nTok: number): { k: KvArray[]; v: KvArray[]; base: number } {
    const st = this.storage(ops)
    const W = this.config.slidingWindow
    if (W !== undefined && start - this.base + nTok > this.store!.rows) {
      // keep the W - 1 positions before the batch (the oldest its first query sees), at the front
      const keep = Math.min(start, W - 1)
      const from = start - keep - this.base
      const kvDim = this.config.nKvHead * this.config.headDim
      if (from > 0) {
        for (const a of [...st.k, ...st.v]) a.copyWithin(0, from * kvDim, (from + keep) * kvDim)
        this.base += from
      }
      if (keep + nTok > this.store!.rows) this.store = this.allocate(ops, keep + nTok)
    }
    return { k: this.store!.k, v: this.store!.v, base: this.base }
  }

  /** Rows of a new storage: the capacity, or for a window twice it (compacted once per W tokens). */
  private initialRows(): number {
    const W = this.config.slidingWindow
    return W === undefined ? this.capacity : Math.min(this.capacity, 2 * W)
  }

  private allocate(ops: LayerOps, rows: number): { ops: LayerOps; rows: number; k: KvArray[]; v: KvArray[] } {
    const kvDim = this.config.nKvHead * this.config.headDim
    const old = this.store
    const alloc = (l: number, from?: KvArray[]): KvArray => {
      const a = this.half ? ops.allocF16(rows * kvDim) : ops.allocF32(rows * kvDim)
      if (from) (a as Float32Array).set(from[l].subarray(0, Math.min(from[l].length, rows * kvDim)))
      return a
    }
    return {
      ops,
      rows,
      k: Array.from({ length: this.config.nLayer }, (_, l) => alloc(l, old?.k)),
      v: Array.from({ length: this.config.nLayer }, (_, l) => alloc(l, old?.v)),
    }
  }
}

/** RoPE frequencies freq_i = EXP((-2i ⊘ hd) ⊗ LOG(base)), i < hd/2. */
export function ropeFrequencies(headDim: number, base: number): Float32Array {
  const lnBase = log(f(base))
  const out = new Float32Array(headDim / 2)
  for (let i = 0; i < headDim / 2; i++) out[i] = exp(f(f(f(-2 * i) / headDim) * lnBase))
  return out
}

/**
 * Batches of at most this many tokens run in scratch arrays the transformer keeps (in the layer
 * ops' memory, so the WASM ops read and write them without copies, and no array is allocated and
 * zero-filled per matmul); larger ones (a long prompt in one batch) allocate per call, so a one-off
 * batch does not hold its arrays for the model's lifetime.
 */
const SCRATCH_TOKENS = 128

/** One layer's weights, looked up once (a `blk.N.` name built and hashed per use costs per token). */
type LayerWeights = {
  attnNorm: Float32Array
  q: MatrixHandle
  k: MatrixHandle
  v: MatrixHandle
  qBias?: Float32Array
  kBias?: Float32Array
  vBias?: Float32Array
  qNorm?: Float32Array
  kNorm?: Float32Array
  attnOutput: MatrixHandle
  ffnNorm: Float32Array
  gate: MatrixHandle
  up: MatrixHandle
  down: MatrixHandle
}

/**
 * One forward call's working arrays, (T, n) each; the matmul outputs are filled by the backend.
 * `k` and `v` stage a binary16 cache's new rows in binary32 (unused with a binary32 cache).
 */
type Work = { x: Float32Array; xn: Float32Array; attnOut: Float32Array; q: Float32Array; k: Float32Array; v: Float32Array; proj: Float32Array; gate: Float32Array; up: Float32Array; down: Float32Array; last: Float32Array }

export class Transformer {
  readonly config: TransformerConfig
  private readonly freq: Float32Array
  private readonly m: Record<string, MatrixHandle>
  private readonly vec: Record<string, Float32Array>
  /** RMSNorm, attention, SILU and adds: the backend's (WASM) or the TypeScript reference. */
  private readonly ops: LayerOps
  /** Scratch for batches up to `scratchTokens` tokens: whole arrays (allocF32 frees on collection of these). */
  private scratch?: Work
  private scratchTokens = 0
  private layerWeights?: LayerWeights[]

  constructor(weights: TransformerWeights, private readonly backend: Backend) {
    this.config = weights.config
    this.m = weights.matrices
    this.vec = weights.vectors
    this.ops = backend.layerOps ?? referenceLayerOps
    this.freq = ropeFrequencies(this.config.headDim, this.config.ropeBase)
  }

  /** Each layer's weights by role, from the name tables (once, on the first forward call). */
  private layers(): LayerWeights[] {
    this.layerWeights ??= Array.from({ length: this.config.nLayer }, (_, l) => {
      const p = `blk.${l}.`
      const [m, v] = [this.m, this.vec]
      return {
        attnNorm: v[p + 'attn_norm.weight'],
        q: m[p + 'attn_q.weight'],
        k: m[p + 'attn_k.weight'],
        v: m[p + 'attn_v.weight'],
        qBias: v[p + 'attn_q.bias'],
        kBias: v[p + 'attn_k.bias'],
        vBias: v[p + 'attn_v.bias'],
        qNorm: v[p + 'attn_q_norm.weight'],
        kNorm: v[p + 'attn_k_norm.weight'],
        attnOutput: m[p + 'attn_output.weight'],
        ffnNorm: v[p + 'ffn_norm.weight'],
        gate: m[p + 'ffn_gate.weight'],
        up: m[p + 'ffn_up.weight'],
        down: m[p + 'ffn_down.weight'],
      }
    })
    return this.layerWeights
  }

  /**
   * The working arrays of a T-token batch, each exactly (T, n): views of the kept scratch (grown
   * to the largest batch up to SCRATCH_TOKENS), or fresh arrays for a larger batch.
   */
  private work(T: number): Work {
    const c = this.config
    const kvDim = c.nKvHead * c.headDim
    const sizes = { x: c.dim, xn: c.dim, attnOut: c.nHead * c.headDim, q: c.nHead * c.headDim, k: kvDim, v: kvDim, proj: c.dim, gate: c.ffDim, up: c.ffDim, down: c.dim, last: c.dim }
    const keys = Object.keys(sizes) as (keyof Work)[]
    if (T > SCRATCH_TOKENS) return Object.fromEntries(keys.map((key) => [key, new Float32Array(T * sizes[key])])) as Work
    if (T > this.scratchTokens) {
      const n = Math.max(T, Math.min(SCRATCH_TOKENS, 2 * this.scratchTokens), 1)
      this.scratch = Object.fromEntries(keys.map((key) => [key, this.ops.allocF32(n * sizes[key])])) as Work
      this.scratchTokens = n
    }
    const s = this.scratch!
    return Object.fromEntries(keys.map((key) => [key, s[key].subarray(0, T * sizes[key])])) as Work
  }

  /**
   * Runs tokens at positions `cache.length ..` through the model, appending their K/V to the
   * cache. Returns the logits (n, V) of the last `logitsFor` tokens of the batch (0 for none).
   */
  forward(tokens: readonly number[], cache: KVCache, logitsFor = 1, observe?: LayerObserver, observeOp?: OpObserver): Float32Array {
    const c = this.config
    const T = tokens.length
    const start = cache.length
    if (start + T > cache.capacity) throw new RangeError(`context overflow: ${start + T} > ${cache.capacity}`)
    const { dim, hd, kvDim, nh, nkv } = { dim: c.dim, hd: c.headDim, kvDim: c.nKvHead * c.headDim, nh: c.nHead, nkv: c.nKvHead }
    const b = this.backend
    const ops = this.ops
    // the cache's rows for this batch: row r is position base + r (base > 0 only with a window)
    const kv = cache.prepare(ops, start, T)
    const row0 = start - kv.base

    // working arrays (T, n) for this batch (reused between calls; observers copy what they keep)
    const w = this.work(T)
    const { x, xn, attnOut } = w

    // embedding: x = token_embd[tokens]                               (T, dim)
    for (let t = 0; t < T; t++) b.getRow(this.m['token_embd.weight'], tokens[t], x.subarray(t * dim, (t + 1) * dim))
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

    const layers = this.layers()
    for (let l = 0; l < c.nLayer; l++) {
      const L = layers[l]
      // attention rmsnorm                                            (T, dim)
      ops.rmsnorm(xn, x, L.attnNorm, T, dim, c.rmsEps)
      observeOp?.(l, LAYER_OP.ATTN_NORM, start, T, [xn])

      // qkv projections (+ bias for qwen2)                         (T, nh*hd), (T, kvDim) x2
      const q = b.matmul(L.q, xn, T, w.q)
      observeOp?.(l, LAYER_OP.Q, start, T, [q], xn)
      // K and V go straight into a binary32 cache's rows of this batch (RoPE then turns K there in
      // place); a binary16 cache's rows are filled from binary32 staging after RoPE (below)
      const kRows = kv.k[l].subarray(row0 * kvDim, (row0 + T) * kvDim)
      const vRows = kv.v[l].subarray(row0 * kvDim, (row0 + T) * kvDim)
      const k = b.matmul(L.k, xn, T, kRows instanceof Float32Array ? kRows : w.k)
      observeOp?.(l, LAYER_OP.K, start, T, [k], xn)
      const v = b.matmul(L.v, xn, T, vRows instanceof Float32Array ? vRows : w.v)
      observeOp?.(l, LAYER_OP.V, start, T, [v], xn)
      addBias(ops, q, L.qBias, T)
      addBias(ops, k, L.kBias, T)
      addBias(ops, v, L.vBias, T)
      observeOp?.(l, LAYER_OP.QKV_BIAS, start, T, [q, k, v])

      // qwen3: RMSNorm of each head of q and k (hd values, weights shared by the heads) (T*nh, hd), (T*nkv, hd)
      if (c.hasQkNorm) {
        ops.rmsnorm(q, q, L.qNorm!, T * nh, hd, c.rmsEps)
        ops.rmsnorm(k, k, L.kNorm!, T * nkv, hd, c.rmsEps)
      }
      observeOp?.(l, LAYER_OP.QK_NORM, start, T, [q, k])

      // rope on q and k: pairs (2i, 2i+1) for llama, (i, i + hd/2) for qwen2 and qwen3 (NEOX)
      const neox = c.arch === 'qwen2' || c.arch === 'qwen3'
      const half = neox ? hd / 2 : 1
      const stride = neox ? 1 : 2
      for (let t = 0; t < T; t++) {
        const cs = t * (hd / 2)
        for (let h = 0; h < nh; h++) rope(q, (t * nh + h) * hd, ropeCos, ropeSin, cs, hd, stride, half)
        for (let h = 0; h < nkv; h++) rope(k, (t * nkv + h) * hd, ropeCos, ropeSin, cs, hd, stride, half)
      }
      observeOp?.(l, LAYER_OP.ROPE, start, T, [q, k])

      // tessera-arith/2: the cache keeps f2h of each new K and V value (the trace keeps k, v)
      if (kRows instanceof Uint16Array) ops.toHalf(kRows, k, T * kvDim)
      if (vRows instanceof Uint16Array) ops.toHalf(vRows, v, T * kvDim)

      // causal attention per token and head over positions u <= pos   (T, nh*hd)
      // (sliding window W: pos - W < u <= pos)
      //   s_u = DOT8(q_h, k_u) ⊗ (1 ⊘ √hd), e_u = EXP(s_u ⊖ max s), o = (Σ_u e_u ⊗ v_u) ⊗ (1 ⊘ SUM8(e))
      //   (tessera-arith/2: k_u, v_u are the binary16 cache's values, h2f(f2h(·)) of the trace's)
      //   (a window is cut into full-causal calls here, so every LayerOps, threaded or native, runs it)
      const shape = { start: row0, nTok: T, nHead: nh, nKvHead: nkv, headDim: hd }
      if (c.slidingWindow === undefined) ops.attention(attnOut, q, kv.k[l], kv.v[l], shape)
      else attentionInWindow((o, qq, kk, vv, sh) => ops.attention(o, qq, kk, vv, sh), attnOut, q, kv.k[l], kv.v[l], { ...shape, window: c.slidingWindow })
      observeOp?.(l, LAYER_OP.ATTENTION, start, T, [attnOut])

      // output projection and residual                              (T, dim)
      const proj = b.matmul(L.attnOutput, attnOut, T, w.proj)
      observeOp?.(l, LAYER_OP.ATTN_OUTPUT, start, T, [proj], attnOut)
      ops.add(x, proj, T * dim)
      observeOp?.(l, LAYER_OP.ATTN_RESIDUAL, start, T, [x])

      // ffn: rmsnorm, gate/up, silu(gate) * up, down, residual     (T, ff) -> (T, dim)
      ops.rmsnorm(xn, x, L.ffnNorm, T, dim, c.rmsEps)
      observeOp?.(l, LAYER_OP.FFN_NORM, start, T, [xn])
      const gate = b.matmul(L.gate, xn, T, w.gate)
      observeOp?.(l, LAYER_OP.GATE, start, T, [gate], xn)
      const up = b.matmul(L.up, xn, T, w.up)
      observeOp?.(l, LAYER_OP.UP, start, T, [up], xn)
      ops.siluMul(gate, up, gate.length)
      observeOp?.(l, LAYER_OP.SILU_MUL, start, T, [gate])
      const down = b.matmul(L.down, gate, T, w.down)
      observeOp?.(l, LAYER_OP.DOWN, start, T, [down], gate)
      ops.add(x, down, T * dim)
      observeOp?.(l, LAYER_OP.FFN_RESIDUAL, start, T, [x])

      observe?.(l, start, T, x, k, v)
    }
    cache.length = start + T

    // final rmsnorm and logits of the last `logitsFor` tokens          (logitsFor, V)
    const nOut = Math.min(logitsFor, T)
    if (nOut === 0) return new Float32Array(0)
    const last = w.last.subarray(0, nOut * dim)
    ops.rmsnorm(last, x.subarray((T - nOut) * dim), this.vec['output_norm.weight'], nOut, dim, c.rmsEps)
    observeOp?.(c.nLayer, HEAD_OP.OUTPUT_NORM, start + T - nOut, nOut, [last])
    const out = this.m['output.weight'] ?? this.m['token_embd.weight']
    const logits = b.matmul(out, last, nOut)
    observeOp?.(c.nLayer, HEAD_OP.LOGITS, start + T - nOut, nOut, [logits], last)
    return logits
  }
}

/** y[t] = y[t] ⊕ bias for each of the T rows (qwen2's QKV biases). */
function addBias(ops: LayerOps, y: Float32Array, bias: Float32Array | undefined, T: number): void {
  if (!bias) return
  const n = bias.length
  for (let t = 0; t < T; t++) ops.add(y.subarray(t * n, (t + 1) * n), bias, n)
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
