/**
 * Synthetic tokenizer vocabularies, written as the `tokenizer.ggml.*` GGUF metadata that llama.cpp
 * loads. No real model's vocabulary can be downloaded here, so tests and the model synthesizer
 * learn one from English text: BPE merges (byte-level, GPT-2 style) or SentencePiece-BPE pieces
 * with scores, plus byte tokens and special tokens, then fill the remaining ids deterministically.
 * See docs/TOKENIZER.md, "Synthetic vocabularies".
 */
import { InvalidParameterError } from '../../errors.js'
import { rand } from '../math/rand.js'
import { type GgufValue, gv } from '../gguf/types.js'
import { pretokenize } from './pretokenize.js'
import { bpeWord } from './bpe.js'
import { spmTokenize } from './spm.js'
import { learnMerges } from './train.js'
import { BYTE_ORDER, BYTE_TO_UNICODE, byteEncode, byteToken, codepoints, cpClass, C_SPACE } from './unicode.js'

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp `llama_token_type`). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const

export type SynthTokenizerOptions = {
  /** 'spm': llama.cpp model `llama` (SentencePiece); 'bpe': model `gpt2` (byte-level BPE). */
  kind: 'spm' | 'bpe'
  /** BPE pre-tokenizer (`tokenizer.ggml.pre`); default 'llama-bpe'. Ignored for SPM. */
  pre?: 'llama-bpe' | 'qwen2' | 'gpt-2'
  /** Exact number of tokens. */
  vocabSize: number
  /** Seed of the filler tokens (default 0). */
  seed?: number
  /** Text to learn from; default a built-in English sample (about 3 KB). */
  trainingText?: string
}

/**
 * Special tokens of each BPE flavour, in id order at the end of the vocabulary, and which are
 * BOS/EOS. The texts are the real models' so llama.cpp's by-text detection (EOG, EOT) applies.
 */
const BPE_SPECIALS = {
  'llama-bpe': {
    tokens: ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
    bos: '<|begin_of_text|>', eos: '<|end_of_text|>', addBos: true,
  },
  qwen2: {
    tokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    bos: '<|endoftext|>', eos: '<|im_end|>', addBos: false,
  },
  'gpt-2': {
    tokens: ['<|endoftext|>'],
    bos: '<|endoftext|>', eos: '<|endoftext|>', addBos: false,
  },
} as const

/** Word-start marker of SentencePiece (U+2581), which replaces spaces. */
const SPM_SPACE = '\u2581'
const LETTERS = /^\p{L}+$/u
const LOWER = /^\p{Ll}+$/u
const ASCII_WORD = /^[A-Za-z]+$/
const ASCII_LOWER = /^[a-z]+$/

/**
 * Build a deterministic tokenizer vocabulary of exactly `vocabSize` tokens and return it as GGUF
 * metadata. Every value is a typed `GgufValue` (see gguf/types.ts), so the writer knows each
 * array's element type: `tokens` and `merges` are string arrays, `scores` float32, `token_type`
 * int32, the ids uint32, the flags bool. Merge the result into a model's metadata map.
 *
 * SPM layout: 0 `<unk>`, 1 `<s>`, 2 `</s>`, 3..258 `<0x00>`..`<0xFF>`, then learned pieces by
 * descending score, then single characters. BPE layout: 256 byte symbols (GPT-2 order), learned
 * merge results in merge order, filler merges, then the special tokens.
 *
 * @example
 * const md = synthTokenizerMetadata({ kind: 'bpe', pre: 'llama-bpe', vocabSize: 4096 })
 * md['tokenizer.ggml.tokens'] // { type: 'array', itemType: 'string', value: [ '!', '"', ... ] }
 */
export function synthTokenizerMetadata(opts: SynthTokenizerOptions): Record<string, GgufValue> {
  const { kind, vocabSize } = opts
  const text = opts.trainingText ?? BUILTIN_TEXT
  if (kind !== 'spm' && kind !== 'bpe') throw new InvalidParameterError('tokenizer-kind', kind, "'spm' or 'bpe'")
  if (!Number.isInteger(vocabSize)) throw new InvalidParameterError('vocab-size', vocabSize, 'an integer')
  if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed)) throw new InvalidParameterError('seed', opts.seed, 'a safe integer')
  const seed = BigInt(opts.seed ?? 0)
  return kind === 'spm' ? synthSpm(text, vocabSize, seed) : synthBpe(text, vocabSize, seed, opts.pre ?? 'llama-bpe')
}

/** Word frequencies of `words`, in order of first appearance (keeps training deterministic). */
function countWords(words: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>()
  for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1)
  return counts
}

/**
 * Add `need` tokens `left + right`, a word-start piece followed by a lower-case letters piece,
 * keeping only pairs that `reachable` accepts (the current vocabulary splits their text into
 * exactly `left`, `right`, so the new merge makes the whole text one token). Draws use the
 * canonical PRNG keyed by (seed, draw index). Word-starts come from the learned vocabulary; once
 * draws keep failing, the fillers made so far join them, growing longer pseudo-words.
 */
function fillPairs(
  starts: readonly string[], conts: readonly string[], need: number, seed: bigint,
  reachable: (left: string, right: string) => boolean, add: (left: string, right: string) => void,
): void {
  let pool = [...starts]
  let made: string[] = []
  let step = 0
  let failures = 0
  for (let n = 0; n < need; ) {
    const left = pool[Math.floor(rand(seed, step++) * pool.length)]
    const right = conts[Math.floor(rand(seed, step++) * conts.length)]
    if (reachable(left, right)) {
      add(left, right)
      made.push(left + right)
      n++
      failures = 0
    } else if (++failures >= 256) {
      if (made.length === 0) throw new InvalidParameterError('training-text', `${starts.length} word starts`, 'more distinct words to build filler tokens from')
      pool = pool.concat(made)
      made = []
      failures = 0
    }
  }
}

function synthSpm(text: string, vocabSize: number, seed: bigint): Record<string, GgufValue> {
  const fixed = 3 + 256
  if (vocabSize < fixed + 1) throw new InvalidParameterError('vocab-size', vocabSize, `at least ${fixed + 1} for spm`)

  // Words as SentencePiece sees them: split on whitespace, each prefixed with U+2581.
  const words: string[] = []
  let cur = ''
  for (const cp of codepoints(text)) {
    if (cpClass(cp) & C_SPACE) {
      if (cur) words.push(SPM_SPACE + cur)
      cur = ''
    } else cur += String.fromCodePoint(cp)
  }
  if (cur) words.push(SPM_SPACE + cur)
  const wordCounts = countWords(words)

  // Characters by frequency (ties: first appearance); at most a quarter of the free ids, the rest
  // of the characters fall back to byte tokens.
  const charCounts = new Map<string, number>([[SPM_SPACE, 0]])
  for (const [w, n] of wordCounts) for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + n)
  const maxChars = Math.max(1, Math.floor((vocabSize - fixed) / 4))
  const chars = [...charCounts.entries()]
    .map(([ch, n], i) => ({ ch, n: ch === SPM_SPACE ? Infinity : n, i }))
    .sort((x, y) => y.n - x.n || x.i - y.i)
    .slice(0, maxChars)
    .map((x) => x.ch)
  const charSet = new Set(chars)

  // Training words split at characters that did not make the cut.
  const train: { symbols: string[]; count: number }[] = []
  for (const [w, n] of wordCounts) {
    let part: string[] = []
    for (const ch of w) {
      if (charSet.has(ch)) part.push(ch)
      else { if (part.length > 1) train.push({ symbols: part, count: n }); part = [] }
    }
    if (part.length > 1) train.push({ symbols: part, count: n })
  }

  const reserved = new Set<string>(['<unk>', '<s>', '</s>', ...chars])
  for (let b = 0; b < 256; b++) reserved.add(byteToken(b))
  const budget = vocabSize - fixed - chars.length
  const pieces = learnMerges(train, budget, { known: reserved })
    .filter((m) => m.isNew)
    .map((m) => m.result)

  // Final layout: specials, bytes, `budget` pieces (score = minus the merge rank: llama.cpp's SPM
  // merges the highest-scoring piece first), then the characters with the lowest scores.
  const tokens: string[] = ['<unk>', '<s>', '</s>']
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
  for (let b = 0; b < 256; b++) { tokens.push(byteToken(b)); types.push(TokenType.BYTE) }
  const scores = new Array<number>(vocabSize).fill(0)
  const tokenToId = new Map<string, number>(tokens.map((t, i) => [t, i]))
  const addPiece = (p: string): void => {
    tokenToId.set(p, tokens.length)
    scores[tokens.length] = -(tokens.length - fixed)
    tokens.push(p)
    types.push(TokenType.NORMAL)
  }
  pieces.forEach(addPiece)
  chars.forEach((c, j) => { tokenToId.set(c, fixed + budget + j); scores[fixed + budget + j] = -(budget + j) })

  if (pieces.length < budget) {
    const all = [...pieces, ...chars]
    const starts = all.filter((p) => p.startsWith(SPM_SPACE) && LETTERS.test(p.slice(1)))
    let conts = all.filter((p) => LOWER.test(p))
    if (conts.length === 0) conts = all.filter((p) => LETTERS.test(p))
    if (starts.length === 0 || conts.length === 0) {
      throw new InvalidParameterError('vocab-size', vocabSize, 'a training text with words (no letters to build filler pieces from)')
    }
    const vocab = { tokenToId, scores, unk: 0 }
    const out: number[] = []
    fillPairs(starts, conts, budget - pieces.length, seed, (left, right) => {
      if (tokenToId.has(left + right)) return false
      out.length = 0
      spmTokenize(vocab, left + right, out)
      return out.length === 2 && out[0] === tokenToId.get(left) && out[1] === tokenToId.get(right)
    }, (left, right) => addPiece(left + right))
  }
  for (const c of chars) { tokens.push(c); types.push(TokenType.NORMAL) }

  return {
    'tokenizer.ggml.model': gv.str('llama'),
    'tokenizer.ggml.tokens': gv.arr('string', tokens),
    'tokenizer.ggml.scores': gv.arr('float32', scores),
    'tokenizer.ggml.token_type': gv.arr('int32', types),
    'tokenizer.ggml.bos_token_id': gv.u32(1),
    'tokenizer.ggml.eos_token_id': gv.u32(2),
    'tokenizer.ggml.unknown_token_id': gv.u32(0),
    'tokenizer.ggml.add_bos_token': gv.bool(true),
    'tokenizer.ggml.add_eos_token': gv.bool(false),
    'tokenizer.ggml.add_space_prefix': gv.bool(true),
  }
}

function synthBpe(
  text: string, vocabSize: number, seed: bigint, pre: 'llama-bpe' | 'qwen2' | 'gpt-2',
): Record<string, GgufValue> {
  const specials = BPE_SPECIALS[pre]
  if (!specials) throw new InvalidParameterError('tokenizer-pre', pre, "'llama-bpe', 'qwen2' or 'gpt-2'")
  const fixed = 256 + specials.tokens.length
  if (vocabSize < fixed + 1) throw new InvalidParameterError('vocab-size', vocabSize, `at least ${fixed + 1} for bpe`)

  // Train on the same words the tokenizer will see: pre-tokenized, then byte-encoded.
  const wordCounts = countWords(pretokenize(text, pre).map(byteEncode))
  const train = [...wordCounts].map(([w, count]) => ({ symbols: [...w], count }))
  const byteSyms = BYTE_ORDER.map((b) => BYTE_TO_UNICODE[b])
  const budget = vocabSize - fixed
  const learned = learnMerges(train, budget, { known: byteSyms })
  const merges = learned.map((m) => `${m.left} ${m.right}`)
  const tokens = [...byteSyms, ...learned.filter((m) => m.isNew).map((m) => m.result)]

  if (tokens.length < 256 + budget) {
    const tokenToId = new Map<string, number>(tokens.map((t, i) => [t, i]))
    specials.tokens.forEach((t, k) => tokenToId.set(t, vocabSize - specials.tokens.length + k))
    const ranks = new Map<string, Map<string, number>>()
    const addRank = (left: string, right: string, rank: number): void => {
      let inner = ranks.get(left)
      if (inner === undefined) ranks.set(left, (inner = new Map()))
      if (!inner.has(right)) inner.set(right, rank)
    }
    learned.forEach((m, rank) => addRank(m.left, m.right, rank))
    // Byte symbols such as 'Å' are letters to \p{L} but stand for raw UTF-8 bytes: test ASCII only.
    const G = BYTE_TO_UNICODE[0x20] // 'Ġ', the byte-level space
    const starts = tokens.filter((t) => t.startsWith(G) && ASCII_WORD.test(t.slice(1)))
    const conts = tokens.filter((t) => ASCII_LOWER.test(t))
    // Candidates are single pre-tokenizer words (Ġ + ASCII letters); reachability is checked
    // without Llama 3's whole-word shortcut, so it holds for every pre-tokenizer.
    const vocab = { tokenToId, ranks, ignoreMerges: false, pre }
    const out: number[] = []
    fillPairs(starts, conts, 256 + budget - tokens.length, seed, (left, right) => {
      if (tokenToId.has(left + right)) return false
      out.length = 0
      bpeWord(vocab, left + right, out)
      return out.length === 2 && out[0] === tokenToId.get(left) && out[1] === tokenToId.get(right)
    }, (left, right) => {
      addRank(left, right, merges.length)
      merges.push(`${left} ${right}`)
      tokenToId.set(left + right, tokens.length)
      tokens.push(left + right)
    })
  }
  tokens.push(...specials.tokens)
  const types = tokens.map((_, i) => (i < tokens.length - specials.tokens.length ? TokenType.NORMAL : TokenType.CONTROL))
  return {
    'tokenizer.ggml.model': gv.str('gpt2'),
    'tokenizer.ggml.pre': gv.str(pre),
    'tokenizer.ggml.tokens': gv.arr('string', tokens),
    'tokenizer.ggml.token_type': gv.arr('int32', types),
    'tokenizer.ggml.merges': gv.arr('string', merges),
    'tokenizer.ggml.bos_token_id': gv.u32(tokens.indexOf(specials.bos)),
    'tokenizer.ggml.eos_token_id': gv.u32(tokens.indexOf(specials.eos)),
    'tokenizer.ggml.add_bos_token': gv.bool(specials.addBos),
    'tokenizer.ggml.add_eos_token': gv.bool(false),
  }
}

/**
 * The default training text: plain English written for this project (so it carries no license),
 * with contractions, numbers, punctuation and line breaks so the learned merges cover them.
 */
export const BUILTIN_TEXT = `The harbour was quiet in the grey hour before dawn. Along the stone quay the fishing boats
rocked against their ropes, and the water slapped softly at the old timber posts. A man in a
heavy coat walked slowly from one end of the pier to the other, counting the boats as he went:
twelve, thirteen, fourteen. He had counted them every morning for 27 years, and he didn't expect
the number to change today.

"You're early again," said the woman who kept the tea stall. She was already lighting the
stove, and the kettle began to hum. "It's only half past four."

"I'm always early," he answered. "The sea doesn't wait, and neither do I. We'll see rain before
noon, I think; the gulls are flying low and the wind has turned to the west."

She laughed and poured two cups. The steam rose into the cold air. Across the bay, a single
light moved on the water: the first trawler coming home, heavy with the night's catch. Behind it
the sky was turning from black to a deep and patient blue.

In the town the bakers had been working since three o'clock. The smell of bread drifted down the
narrow streets toward the sea, past the shuttered shops, the church with its crooked tower, and
the school where 134 children would arrive at nine. Nobody remembered when the tower had started
to lean; the records said 1842, but the records were often wrong.

When the trawler reached the harbour, the crew threw their lines ashore and the man in the heavy
coat caught them, one after another, and made them fast. "How was it?" he asked the captain.
"Better than last week," the captain said. "We filled 48 boxes, maybe 50. The prices should be
good, if the buyers from the city come down on Thursday."

They unloaded the catch together while the light grew. Silver fish slid across the wet deck and
into wooden boxes packed with ice. Someone started singing an old song about a ship that sailed
too far north and never came back, and the others joined in at the chorus, laughing at the
words they had all forgotten. By six o'clock the work was done, the boxes were stacked on the
quay, and the first customers were walking down the hill with their baskets.

The woman at the tea stall counted her coins and wrote the numbers in a small book: 3.50, 7.25,
12.00. Her mother had kept the same kind of book, and her grandmother before that. There were
shelves of them at home, a hundred years of mornings written in careful ink. Nothing important,
she always said, just tea and weather and the names of boats. But sometimes she read them at
night, and it seemed to her that the whole history of the town was there, between the lines.
`
