/**
 * One job replayed through the engine, keeping what the dispute machine reads of every earlier
 * state: the residual, K (after RoPE) and V each layer appended at each position, the logits of
 * each sampled position, the tokens consumed, and the trace leaves v2 (docs/MACHINE.md "Trace
 * leaves, version 2"). This is the "real replay" behind a TraceProvider: the honest provider, the
 * honest auditor and every cheat start from it.
 *
 * Positions are 0 .. nPrompt + nOutput - 2 (the last output token is never consumed). Generating
 * decodes one token at a time after a one-batch prefill; following a delivered answer (`forced`,
 * the auditor) replays prompt + answer teacher-forced in batches, as verifyJob: any batching gives
 * the same bits.
 *
 * Legend: p position, l layer (nLayer = the head), dim model width, kvDim = nKvHead · headDim.
 */
import type { SamplingParams } from '../engine/sample.js'
import { sampleToken } from '../engine/sample.js'
import { LAYER_OP } from '../engine/model/opTable.js'
import { KVCache, type Transformer } from '../engine/model/transformer.js'
import type { ArithVersion } from '../engine/version.js'
import { type Hash, leafHash } from '../trace/merkle.js'
import { VERIFY_BATCH } from '../trace/job.js'
import { headLeaf, layerLeaf } from '../trace/traceTree.js'
import type { Replay } from './machine/transition.js'

/** What the client signed about a job, as the machine needs it. */
export type JobSpec = {
  prompt: readonly number[]
  /** The engine's sampling parameters, seed included. */
  sampling: SamplingParams
  /** Output tokens at most (the request's cap on the answer). */
  maxTokens: number
  /** The config's end-of-generation tokens: an answer stops after the first one. */
  eogTokens: readonly number[]
  /**
   * The arithmetic the job is computed under: its model's registered one (DisputeModel.arith).
   * Under tessera-arith/2 the replay's KV cache is binary16; the trace keeps the unrounded K and V.
   */
  arith: ArithVersion
}

/**
 * A forced change of one transition's outputs (a cheat): the layer's residual, K and V at
 * (pos, layer), or the head's logits and next token at pos. Values are what the cheater's own
 * machine run of that transition produced, so the rest of the replay continues from them.
 */
export type Override =
  | { pos: number; layer: number; residual: Float32Array; k: Float32Array; v: Float32Array }
  | { pos: number; head: true; logits: Float32Array; next: number }

export type ReplayOptions = {
  /**
   * Feed these output tokens back instead of sampling (an auditor following the answer it was
   * delivered). A head whose computed token is not the delivered one has no valid state under the
   * claim (its STORE checks the billed token): its leaf is INVALID_LEAF.
   */
  forced?: readonly number[]
  /** Keep generating after an end-of-generation token, up to `maxTokens` (the `length` cheat). */
  ignoreEog?: boolean
  override?: Override
  /** Checked between tokens (between batches when `forced`). */
  signal?: AbortSignal
  /** Batch size of a `forced` replay (default VERIFY_BATCH, trace/job.ts); any size gives the same bits. */
  batchSize?: number
}

/** A replayed job: tokens, per-position states, trace leaves. */
export type JobTrace = {
  spec: JobSpec
  nPrompt: number
  /** Output tokens, the end-of-generation token included when it ended the answer. */
  outputs: number[]
  /** Prompt then outputs: the token consumed at position p is tokens[p]. */
  tokens: number[]
  /** Residual, K and V per (position, layer), for computeTransition. */
  replay: Replay
  /** Logits at a sampled position (p >= nPrompt - 1), before the penalty. */
  logits(pos: number): Float32Array
  /** The token this replay computes at head p (its own sample, also when `forced` fed another). */
  nextToken(pos: number): number
  /**
   * Trace leaves v2 in leaf order (p · (nLayer + 1) + l); INVALID_LEAF where the stop rule forbids a
   * head, or where a `forced` token is not the one the head computes.
   */
  leaves: Hash[]
}

/**
 * The leaf an honest party holds for a head transition that the stop rule forbids (the token it
 * consumes ended the answer), or whose computed token is not the token the client was delivered
 * and billed (a provider that streamed one answer and committed the trace of another): no honest
 * state exists there, so any leaf the other side committed differs from it and the dispute lands
 * on that head's STORE (or on the op whose value the other side falsified before it).
 */
export const INVALID_LEAF: Hash = leafHash(new TextEncoder().encode('tessera: no state, the answer ended before this position'))

/**
 * Replays `spec` (generating, or following `opts.forced`) and records every state.
 *
 * @example
 *   const t = replayJob(tf, { prompt: [1, 15, 7], sampling, maxTokens: 4, eogTokens: [2], arith: 'tessera-arith/2' })
 *   t.leaves.length === (t.tokens.length - 1) * (tf.config.nLayer + 1)
 */
export function replayJob(tf: Transformer, spec: JobSpec, opts: ReplayOptions = {}): JobTrace {
  const c = tf.config
  const nL = c.nLayer
  const dim = c.dim
  const kvDim = c.nKvHead * c.headDim
  const prompt = spec.prompt.slice()
  const nPrompt = prompt.length
  const eog = new Set(spec.eogTokens)
  const cap = opts.forced ? opts.forced.length : spec.maxTokens
  const cache = new KVCache(c, Math.min(c.contextLength, nPrompt + cap), spec.arith)
  const res = new Map<number, Float32Array>(), ks = new Map<number, Float32Array>(), vs = new Map<number, Float32Array>()
  const key = (p: number, l: number) => p * (nL + 1) + l
  const leaves: Hash[] = []
  const o = opts.override

  const observe = (l: number, start: number, T: number, x: Float32Array, k: Float32Array, v: Float32Array) => {
    for (let t = 0; t < T; t++) {
      const i = key(start + t, l)
      res.set(i, x.slice(t * dim, (t + 1) * dim))
      ks.set(i, k.slice(t * kvDim, (t + 1) * kvDim))
      vs.set(i, v.slice(t * kvDim, (t + 1) * kvDim))
      leaves[i] = layerLeaf(start + t, l, x, t * dim, dim, k, v, t * kvDim, kvDim)
    }
  }
  // A layer override replaces the transition's outputs where the engine keeps them: V before it is
  // cached (after the biases), K after RoPE (before it is cached), the residual after the layer,
  // so later layers and positions compute from the cheater's values.
  const tamper = o && !('head' in o)
    ? (l: number, op: number, start: number, T: number, outs: readonly Float32Array[]) => {
        const t = o.pos - start
        if (l !== o.layer || t < 0 || t >= T) return
        if (op === LAYER_OP.QKV_BIAS) outs[2].set(o.v, t * kvDim)
        else if (op === LAYER_OP.ROPE) outs[1].set(o.k, t * kvDim)
        else if (op === LAYER_OP.FFN_RESIDUAL) outs[0].set(o.residual, t * dim)
      }
    : undefined

  const logitsAt = new Map<number, Float32Array>()
  const next = new Map<number, number>()
  const outputs: number[] = []
  const tokens = prompt.slice()
  /** The head at position p (= tokens.length - 1) from its logits: sample, leaf, the token fed next. */
  const head = (p: number, logits: Float32Array): number => {
    let row = logits.slice()
    let id: number
    if (o && 'head' in o && o.pos === p) {
      row = o.logits.slice()
      id = o.next
    } else {
      id = sampleToken(row.slice(), spec.sampling, tokens, outputs.length)
    }
    logitsAt.set(p, row)
    next.set(p, id)
    const out = opts.forced ? opts.forced[outputs.length] : id
    // The stop rule (head STORE): a position that consumes an end token has no valid head state.
    // (A provider that ignores it commits its head anyway: `ignoreEog`.)
    const stopped = p >= nPrompt && eog.has(tokens[p]) && !opts.ignoreEog
    leaves[key(p, nL)] = stopped || out !== id ? INVALID_LEAF : headLeaf(p, nL, id, row)
    outputs.push(out)
    tokens.push(out)
    return out
  }
  for (let p = 0; p + 1 < nPrompt; p++) leaves[key(p, nL)] = headLeaf(p, nL, prompt[p + 1])

  const forced = opts.forced
  if (forced && forced.length > 0 && nPrompt <= c.contextLength) {
    // Following a delivered answer, every token consumed is known up front: a teacher-forced
    // replay in batches (as verifyJob), logits at every head. The heads are the ones the
    // token-at-a-time loop below computes: one per delivered token, or up to the context's end.
    const nHead = Math.min(forced.length, c.contextLength - nPrompt + 1)
    const all = prompt.concat(forced.slice(0, nHead - 1))
    const batch = opts.batchSize ?? VERIFY_BATCH
    const first = nPrompt - 1
    for (let s = 0; s < all.length; s += batch) {
      opts.signal?.throwIfAborted()
      const chunk = all.slice(s, s + batch)
      const nLogits = Math.max(0, s + chunk.length - Math.max(s, first))
      const logits = tf.forward(chunk, cache, nLogits, observe, tamper)
      for (let i = 0; i < nLogits; i++) head(s + chunk.length - nLogits + i, logits.subarray(i * c.vocabSize, (i + 1) * c.vocabSize))
    }
  } else {
    let logits = tf.forward(prompt, cache, 1, observe, tamper)
    for (;;) {
      opts.signal?.throwIfAborted()
      const out = head(tokens.length - 1, logits)
      const done = forced ? outputs.length >= forced.length : outputs.length >= spec.maxTokens || (eog.has(out) && !opts.ignoreEog)
      if (done || tokens.length > c.contextLength) break
      logits = tf.forward([out], cache, 1, observe, tamper)
    }
  }

  const get = (m: Map<number, Float32Array>, p: number, l: number) => {
    const x = m.get(key(p, l))
    if (!x) throw new RangeError(`no replayed state at position ${p}, layer ${l}`)
    return x
  }
  return {
    spec, nPrompt, outputs, tokens, leaves,
    replay: { residual: (p, l) => get(res, p, l), k: (p, l) => get(ks, p, l), v: (p, l) => get(vs, p, l) },
    logits(pos) {
      const x = logitsAt.get(pos)
      if (!x) throw new RangeError(`position ${pos} is not a sampled position of this job`)
      return x
    },
    nextToken(pos) {
      if (pos < nPrompt - 1) return prompt[pos + 1]
      const t = next.get(pos)
      if (t === undefined) throw new RangeError(`position ${pos} is outside this job`)
      return t
    },
  }
}
