/**
 * The engine behind `bpb.ts`: a loaded llama-family model as a `LogProbFn`, its window, and the
 * tokenization of a text for scoring (docs/DATA.md "Bits per byte"). Each window is run as
 * BOS + its tokens in one teacher-forced pass from an empty cache; the log-probability of each
 * token is the canonical log-softmax of the logits before it:
 *
 *   m = max_j l_j,   s = SUM8(EXP(l_j - m)),   ln p(t) = (l_t - m) - LOG(s)      (binary32 each)
 *
 * with EXP, LOG and SUM8 from the canonical arithmetic (docs/ARITHMETIC.md), so a model's bits
 * per byte are the same on every machine and thread count, as its logits are.
 */
import { BaseError } from '../errors.js'
import { exp, f, log, sum8 } from '../engine/math/canonical.js'
import { KVCache, type Transformer } from '../engine/model/transformer.js'
import type { Tokenizer } from '../engine/tokenizer/index.js'
import type { LogProbFn } from './bpb.js'

/** A model that cannot be scored as asked (no BOS token, a tokenizer that loses text). */
export class ModelScoreError extends BaseError {
  override name = 'ModelScoreError'
  constructor(problem: string) {
    super(`cannot score the model: ${problem}`, { docs: 'docs/DATA.md' })
  }
}

/** ln softmax(logits[off .. off+V))[target] in binary32 (the formula above); `scratch` holds V floats. */
export function logSoftmaxAt(logits: Float32Array, off: number, vocab: number, target: number, scratch: Float32Array = new Float32Array(vocab)): number {
  let m = logits[off]
  for (let j = 1; j < vocab; j++) if (logits[off + j] > m) m = logits[off + j]
  for (let j = 0; j < vocab; j++) scratch[j] = exp(f(logits[off + j] - m))
  const s = sum8(scratch, 0, vocab)
  return f(f(logits[off + target] - m) - log(s))
}

/** The window a model of context C is scored in: C - 1 tokens after its BOS. */
export function modelWindow(tf: Transformer): number {
  return tf.config.contextLength - 1
}

/**
 * `tf` as a LogProbFn: a window of at most C - 1 tokens goes through the model as BOS + window in
 * batches of `batch` positions (64 by default, as the engine prefills; the batch changes no bits).
 */
export function transformerLogProbs(tf: Transformer, opts: { bos: number; batch?: number }): LogProbFn {
  const c = tf.config
  const V = c.vocabSize
  const batch = opts.batch ?? 64
  if (!Number.isInteger(opts.bos) || opts.bos < 0 || opts.bos >= V) throw new ModelScoreError(`it has no BOS token (id ${opts.bos}); each window starts from BOS`)
  const scratch = new Float32Array(V)
  return (window) => {
    if (window.length > c.contextLength - 1) throw new ModelScoreError(`a window of ${window.length} tokens and BOS exceed the context of ${c.contextLength}`)
    const input = [opts.bos, ...window.slice(0, -1)]
    const out = new Float32Array(window.length)
    const cache = new KVCache(c, Math.max(1, input.length))
    for (let s = 0; s < input.length; s += batch) {
      const chunk = input.slice(s, s + batch)
      // logits (chunk, V): row j predicts window[s + j]
      const logits = tf.forward(chunk, cache, chunk.length)
      for (let j = 0; j < chunk.length; j++) out[s + j] = logSoftmaxAt(logits, j * V, V, window[s + j], scratch)
    }
    return out
  }
}

const utf8 = new TextEncoder()

/**
 * The tokens of `text` without BOS or EOS, checked to stand for exactly its bytes (a SentencePiece
 * tokenizer's one leading space excepted): a tokenizer that drops or replaces text (unknown
 * tokens) would score fewer bytes than the text has, so it is refused.
 */
export function tokenizeForScoring(tok: Tokenizer, text: string): number[] {
  const ids = tok.encode(text, { addBos: false, addEos: false })
  const parts = ids.map((id) => tok.decodeToken(id, false))
  let n = 0
  for (const p of parts) n += p.length
  const got = new Uint8Array(n)
  let o = 0
  for (const p of parts) {
    got.set(p, o)
    o += p.length
  }
  const want = utf8.encode(text)
  const skip = got.length === want.length + 1 && got[0] === 0x20 ? 1 : 0
  let same = got.length - skip === want.length
  let at = 0
  for (; same && at < want.length; at++) same = got[at + skip] === want[at]
  if (!same) {
    let i = 0
    while (i < want.length && got[i + skip] === want[i]) i++
    throw new ModelScoreError(`the tokenizer does not reproduce the text (they differ from byte ${i}; unknown characters?)`)
  }
  return ids
}
