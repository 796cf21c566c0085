/**
 * The tokenizer of a training run: a byte-level BPE vocabulary (GPT-2 style, llama.cpp model
 * `gpt2` with pre-tokenizer `llama-bpe`) learned by the project's BPE trainer
 * (`learnMerges`, engine/tokenizer/train.ts) from the run's training documents only, written as
 * the `tokenizer.ggml.*` GGUF keys that the engine and llama.cpp load. The same documents, weights
 * and vocabulary size give the same vocabulary, so the run's manifest can commit to its root
 * (`tokenizerHash`, the hash the model root's config leaf carries) before step 0.
 *
 * Word counts are weighted like the batches: a source's words count `mult` times, with `mult`
 * proportional to weight / bytes (the smallest 100), so each source's share of the counted text is
 * its share of the sampled windows (a small, oversampled corpus shapes the vocabulary as much as
 * it shapes training). Layout: the 256 byte symbols (GPT-2 order), the learned merge results in
 * merge order, then `<|begin_of_text|>` (BOS) and `<|end_of_text|>` (EOS).
 *
 * The token stream of a source is its documents in order, each encoded by the engine's tokenizer
 * as BOS + text + EOS (docs/TRAINING.md, "Runs").
 */
import { InvalidParameterError } from '../errors.js'
import { tokenizerHash } from '../engine/gguf/modelRoot.js'
import { type GgufMetadata, gv } from '../engine/gguf/types.js'
import { createTokenizer, pretokenize, type Tokenizer, TokenType } from '../engine/tokenizer/index.js'
import { learnMerges } from '../engine/tokenizer/train.js'
import { BYTE_ORDER, BYTE_TO_UNICODE, byteEncode } from '../engine/tokenizer/unicode.js'

export type TokenizerSpec = {
  /** Exact number of tokens, the two special tokens included. */
  vocabSize: number
}

export const BOS_TEXT = '<|begin_of_text|>'
export const EOS_TEXT = '<|end_of_text|>'
const SPECIALS = [BOS_TEXT, EOS_TEXT]

/** One source's documents and its sampling weight. */
export type TokenizerSource = { texts: readonly string[]; weight: number }

/**
 * Learns a BPE vocabulary of `spec.vocabSize` tokens from the training documents of `sources`
 * (word counts weighted as the module comment says) and returns it as GGUF metadata.
 * Deterministic in (sources, spec). Throws `InvalidParameterError` naming `tokenizer.vocabSize`
 * when the text has fewer distinct merges than the vocabulary needs.
 *
 * @example
 *   const md = trainRunTokenizer([{ texts: ['Call me Ishmael.'], weight: 1 }], { vocabSize: 270 })
 *   createTokenizer(md).encode('Call me')
 */
export function trainRunTokenizer(sources: readonly TokenizerSource[], spec: TokenizerSpec): GgufMetadata {
  const fixed = 256 + SPECIALS.length
  if (!Number.isInteger(spec.vocabSize) || spec.vocabSize <= fixed || spec.vocabSize > 65536) {
    throw new InvalidParameterError('tokenizer.vocabSize', spec.vocabSize, `an integer from ${fixed + 1} to 65536`)
  }
  const enc = new TextEncoder()
  const bytes = sources.map((s) => s.texts.reduce((n, t) => n + enc.encode(t).length, 0))
  if (bytes.some((b) => b === 0)) throw new InvalidParameterError('data.sources', 'an empty source', 'text in every source')
  const density = sources.map((s, i) => s.weight / bytes[i])
  const least = Math.min(...density)
  const mult = density.map((d) => Math.round((100 * d) / least))
  // Word counts in order of first appearance (the trainer breaks ties by it).
  const counts = new Map<string, number>()
  sources.forEach((s, i) => {
    for (const t of s.texts) for (const w of pretokenize(t, 'llama-bpe')) {
      const word = byteEncode(w)
      counts.set(word, (counts.get(word) ?? 0) + mult[i])
    }
  })
  const words = [...counts].map(([w, count]) => ({ symbols: [...w], count }))
  const byteSyms = BYTE_ORDER.map((b) => BYTE_TO_UNICODE[b])
  const budget = spec.vocabSize - fixed
  const learned = learnMerges(words, budget, { known: byteSyms })
  const tokens = [...byteSyms, ...learned.filter((m) => m.isNew).map((m) => m.result)]
  if (tokens.length < 256 + budget) {
    throw new InvalidParameterError('tokenizer.vocabSize', spec.vocabSize, `at most ${tokens.length + SPECIALS.length}: the training text has no more merges`)
  }
  tokens.push(...SPECIALS)
  const md: GgufMetadata = new Map()
  md.set('tokenizer.ggml.model', gv.str('gpt2'))
  md.set('tokenizer.ggml.pre', gv.str('llama-bpe'))
  md.set('tokenizer.ggml.tokens', gv.arr('string', tokens))
  md.set('tokenizer.ggml.token_type', gv.arr('int32', tokens.map((_, i) => (i < tokens.length - SPECIALS.length ? TokenType.NORMAL : TokenType.CONTROL))))
  md.set('tokenizer.ggml.merges', gv.arr('string', learned.map((m) => `${m.left} ${m.right}`)))
  md.set('tokenizer.ggml.bos_token_id', gv.u32(tokens.indexOf(BOS_TEXT)))
  md.set('tokenizer.ggml.eos_token_id', gv.u32(tokens.indexOf(EOS_TEXT)))
  md.set('tokenizer.ggml.add_bos_token', gv.bool(true))
  md.set('tokenizer.ggml.add_eos_token', gv.bool(false))
  return md
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
