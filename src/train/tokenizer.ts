/**
 * The tokenizer of a training run: a byte-level BPE vocabulary (GPT-2 style, pre-tokenizer
 * `llama-bpe`) learned by the project's BPE trainer (engine/tokenizer/train.ts, through
 * `synthTokenizerMetadata`) from the run's training documents only, written as the
 * `tokenizer.ggml.*` GGUF keys that the engine and llama.cpp load. The same documents and
 * vocabulary size give the same vocabulary, so the run's manifest can commit to its root
 * (`tokenizerHash`, the hash the model root's config leaf carries) before step 0.
 *
 * The token stream of a source is its documents in order, each encoded by the engine's tokenizer
 * as BOS + text + EOS (docs/TRAINING.md, "Runs").
 */
import { InvalidParameterError } from '../errors.js'
import { tokenizerHash } from '../engine/gguf/modelRoot.js'
import type { GgufMetadata, GgufValue } from '../engine/gguf/types.js'
import { createTokenizer, synthTokenizerMetadata, type Tokenizer } from '../engine/tokenizer/index.js'

/** The pre-tokenizers a run may name (each with its own special tokens: engine/tokenizer/synth.ts). */
export const RUN_PRE_TOKENIZERS = ['llama-bpe', 'qwen2', 'gpt-2'] as const
export type RunPreTokenizer = (typeof RUN_PRE_TOKENIZERS)[number]

export type TokenizerSpec = {
  /** Exact number of tokens, special tokens included. */
  vocabSize: number
  /** Default 'llama-bpe' (BOS `<|begin_of_text|>`, EOS `<|end_of_text|>`). */
  pre?: RunPreTokenizer
}

/** Separator between documents in the trainer's text: a word boundary for every pre-tokenizer. */
const DOC_SEPARATOR = '\n\n'

/**
 * Learns a BPE vocabulary of `spec.vocabSize` tokens from `texts` (the training documents in
 * order) and returns it as GGUF metadata. Deterministic in (texts, spec).
 *
 * @example
 *   const md = trainRunTokenizer(['Call me Ishmael.', 'Some years ago'], { vocabSize: 300 })
 *   createTokenizer(md).encode('Call me')
 */
export function trainRunTokenizer(texts: readonly string[], spec: TokenizerSpec): GgufMetadata {
  const pre = spec.pre ?? 'llama-bpe'
  if (!(RUN_PRE_TOKENIZERS as readonly string[]).includes(pre)) throw new InvalidParameterError('tokenizer.pre', pre, RUN_PRE_TOKENIZERS.join(', '))
  if (!Number.isInteger(spec.vocabSize) || spec.vocabSize < 300 || spec.vocabSize > 65536) {
    throw new InvalidParameterError('tokenizer.vocabSize', spec.vocabSize, 'an integer from 300 to 65536')
  }
  if (texts.length === 0) throw new InvalidParameterError('data.sources', 0, 'at least one training document')
  const md = synthTokenizerMetadata({ kind: 'bpe', pre, vocabSize: spec.vocabSize, trainingText: texts.join(DOC_SEPARATOR), seed: 0 })
  return new Map<string, GgufValue>(Object.entries(md))
}

/** SHA-256 of the canonical JSON of the `tokenizer.ggml.*` keys: the tokenizer root a run commits to. */
export function tokenizerRoot(md: GgufMetadata): Uint8Array {
  return tokenizerHash(md)
}

/** Only the `tokenizer.ggml.*` keys of a model's metadata (what a fine-tuning run keeps). */
export function tokenizerKeys(md: GgufMetadata): GgufMetadata {
  const out: GgufMetadata = new Map()
  for (const [k, v] of md) if (k.startsWith('tokenizer.')) out.set(k, v)
  return out
}

/**
 * The token stream of `texts`: each document as BOS (if the vocabulary has one) + its tokens +
 * EOS (if it has one), concatenated in order.
 */
export function tokenStream(tok: Tokenizer, texts: readonly string[]): Int32Array {
  const parts: number[][] = []
  let n = 0
  for (const t of texts) {
    const ids = tok.encode(t, { addBos: false, addEos: false })
    const doc = [...(tok.bos >= 0 ? [tok.bos] : []), ...ids, ...(tok.eos >= 0 ? [tok.eos] : [])]
    parts.push(doc)
    n += doc.length
  }
  const out = new Int32Array(n)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** A tokenizer for `md` (re-exported so run code needs one import). */
export function runTokenizer(md: GgufMetadata): Tokenizer {
  return createTokenizer(md)
}
