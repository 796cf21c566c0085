/**
 * The vocabulary as llama.cpp's `llama_vocab::impl::load` builds it from `tokenizer.ggml.*`
 * metadata: token texts, scores, per-token attributes (from `token_type`, then adjusted by
 * llama.cpp's by-text rules), special ids, BPE merge ranks, the end-of-generation set and the
 * special-token list used to split prompts.
 */
import type { GgufValue } from '../gguf/types.js'
import { TokenizerMetadataError, UnsupportedTokenizerError } from './errors.js'
import type { PreTokenizer } from './pretokenize.js'
import { utf8 } from './unicode.js'

/** llama.cpp `llama_token_attr` bits. */
export const Attr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
} as const

/** GGUF `token_type` -> attribute (llama.cpp `load`); unknown values are UNDEFINED. */
const TYPE_TO_ATTR: Record<number, number> = {
  1: Attr.NORMAL, 2: Attr.UNKNOWN, 3: Attr.CONTROL, 4: Attr.USER_DEFINED, 5: Attr.UNUSED, 6: Attr.BYTE,
}

/** Texts llama.cpp treats as control tokens whatever their type (its EOT/EOM/FIM/EOG auto-detection). */
const CONTROL_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>',
  '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>', '<|eom_id|>',
  '<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>',
  '<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>',
  '<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>',
  '<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]',
  '<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>', '<|file_sep|>',
  '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '</s>', '[EOS]', '<eos>', '<turn|>', '<|tool_response>', '[e~[',
])

/** Texts that end generation (llama.cpp's EOG list, plus the FIM pad/repo/file-separator tokens it adds). */
const EOG_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>',
  '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
  '<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]',
  '<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>', '<|file_sep|>',
])

export type Vocab = {
  kind: 'spm' | 'bpe'
  pre: PreTokenizer | null
  tokens: string[]
  scores: Float32Array
  attrs: Uint16Array
  tokenToId: Map<string, number>
  /** BPE merge ranks: ranks.get(left)?.get(right). */
  ranks: Map<string, Map<string, number>>
  bos: number
  eos: number
  unk: number
  addBos: boolean
  addEos: boolean
  addSpacePrefix: boolean
  /** Drop spaces before `?!.,` and around apostrophes when detokenizing (llama.cpp `clean_spaces`). */
  cleanSpaces: boolean
  /** Llama 3: a pre-tokenized word that is itself a token skips the merges. */
  ignoreMerges: boolean
  eog: Set<number>
  /** Control, user-defined and unknown tokens, longest text first: the prompt splitter's order. */
  specials: number[]
}

/** Metadata in either shape the project uses: a `GgufMetadata` map or a plain record. */
export type TokenizerMetadata = ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>

function getter(md: TokenizerMetadata): (key: string) => GgufValue | undefined {
  const raw = md instanceof Map ? (k: string) => md.get(k) : (k: string) => (md as Record<string, unknown>)[k]
  return (key) => {
    const v = raw(key)
    if (v === undefined) return undefined
    if (typeof v !== 'object' || v === null || !('type' in v) || !('value' in v)) {
      throw new TokenizerMetadataError(`metadata ${key} is not a typed GGUF value`)
    }
    return v as GgufValue
  }
}

/**
 * Read `tokenizer.ggml.*` metadata into a Vocab, with llama.cpp's defaults for every optional key.
 * Throws TokenizerMetadataError for missing or mistyped keys and UnsupportedTokenizerError for a
 * model or pre-tokenizer Tessera does not implement.
 */
export function loadVocab(md: TokenizerMetadata): Vocab {
  const get = getter(md)
  const str = (key: string): string | undefined => {
    const v = get(key)
    if (v === undefined) return undefined
    if (v.type !== 'string') throw new TokenizerMetadataError(`metadata ${key} has type ${v.type}, expected string`)
    return v.value
  }
  const arr = (key: string, itemTypes: readonly string[]): readonly unknown[] | undefined => {
    const v = get(key)
    if (v === undefined) return undefined
    if (v.type !== 'array' || !itemTypes.includes(v.itemType)) {
      throw new TokenizerMetadataError(`metadata ${key} has the wrong type`, { details: `expected an array of ${itemTypes.join(' or ')}` })
    }
    return v.value
  }
  const u32 = (key: string): number | undefined => {
    const v = get(key)
    if (v === undefined) return undefined
    if (v.type !== 'uint32') throw new TokenizerMetadataError(`metadata ${key} has type ${v.type}, expected uint32`)
    return v.value
  }
  const bool = (key: string): boolean | undefined => {
    const v = get(key)
    if (v === undefined) return undefined
    if (v.type !== 'bool') throw new TokenizerMetadataError(`metadata ${key} has type ${v.type}, expected bool`)
    return v.value
  }

  const model = str('tokenizer.ggml.model')
  if (model === undefined) throw new TokenizerMetadataError('missing metadata key tokenizer.ggml.model')
  let kind: 'spm' | 'bpe'
  let pre: PreTokenizer | null = null
  let bos: number, eos: number, unk: number
  let addBos = false
  let addSpacePrefix = false
  let cleanSpaces = false
  let ignoreMerges = false
  if (model === 'llama') {
    kind = 'spm'
    ;[bos, eos, unk] = [1, 2, 0]
    addBos = true
    addSpacePrefix = true
  } else if (model === 'gpt2') {
    kind = 'bpe'
    ;[bos, eos, unk] = [11, 11, -1]
    cleanSpaces = true
    const p = str('tokenizer.ggml.pre') ?? 'default'
    if (p === 'llama-bpe' || p === 'llama3' || p === 'llama-v3') {
      pre = 'llama-bpe'
      ignoreMerges = true
      addBos = true
    } else if (p === 'qwen2') {
      pre = 'qwen2'
      cleanSpaces = false
    } else if (p === 'gpt-2') {
      pre = 'gpt-2'
    } else {
      throw new UnsupportedTokenizerError('tokenizer.ggml.pre', p, ['llama-bpe', 'qwen2', 'gpt-2'])
    }
  } else {
    throw new UnsupportedTokenizerError('tokenizer.ggml.model', model, ['llama', 'gpt2'])
  }
  addSpacePrefix = bool('tokenizer.ggml.add_space_prefix') ?? addSpacePrefix

  const tokenList = arr('tokenizer.ggml.tokens', ['string']) as readonly string[] | undefined
  if (tokenList === undefined) throw new TokenizerMetadataError('missing metadata key tokenizer.ggml.tokens')
  const n = tokenList.length
  const scoreList = arr('tokenizer.ggml.scores', ['float32', 'int32']) as readonly number[] | undefined
  const typeList = arr('tokenizer.ggml.token_type', ['int32']) as readonly number[] | undefined
  if (scoreList && scoreList.length < n) throw new TokenizerMetadataError('tokenizer.ggml.scores is shorter than the vocabulary')
  if (typeList && typeList.length < n) throw new TokenizerMetadataError('tokenizer.ggml.token_type is shorter than the vocabulary')

  const tokens: string[] = new Array(n)
  const scores = new Float32Array(n)
  const attrs = new Uint16Array(n)
  const tokenToId = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const t = tokenList[i] === '' ? `[EMPTY_${i}]` : tokenList[i]
    tokens[i] = t
    tokenToId.set(t, i) // a later duplicate wins, as in llama.cpp's token_to_id[word] = i
    scores[i] = scoreList ? scoreList[i] : 0
    attrs[i] = typeList ? (TYPE_TO_ATTR[typeList[i]] ?? Attr.UNDEFINED) : Attr.NORMAL
  }
  if (tokenToId.size !== n) throw new TokenizerMetadataError('tokenizer.ggml.tokens holds duplicate texts')

  const ranks = new Map<string, Map<string, number>>()
  if (kind === 'bpe') {
    const merges = arr('tokenizer.ggml.merges', ['string']) as readonly string[] | undefined
    if (merges === undefined) throw new TokenizerMetadataError('missing metadata key tokenizer.ggml.merges')
    merges.forEach((m, rank) => {
      // llama.cpp splits at the first space after position 0 and keeps the first rank of a pair.
      const at = m.indexOf(' ', 1)
      const [first, second] = at < 0 ? ['', ''] : [m.slice(0, at), m.slice(at + 1)]
      let inner = ranks.get(first)
      if (inner === undefined) ranks.set(first, (inner = new Map()))
      if (!inner.has(second)) inner.set(second, rank)
    })
  }

  // Special ids: the defaults above unless the key is present and in range.
  const inRange = (id: number) => (id >= 0 && id < n ? id : -1)
  ;[bos, eos, unk] = [inRange(bos), inRange(eos), inRange(unk)]
  const pick = (key: string, dflt: number): number => {
    const v = u32(key)
    return v !== undefined && v < n ? v : dflt
  }
  bos = pick('tokenizer.ggml.bos_token_id', bos)
  eos = pick('tokenizer.ggml.eos_token_id', eos)
  unk = pick('tokenizer.ggml.unknown_token_id', unk)
  const eot = pick('tokenizer.ggml.eot_token_id', -1)
  const eom = pick('tokenizer.ggml.eom_token_id', -1)
  addBos = bool('tokenizer.ggml.add_bos_token') ?? addBos
  const addEos = bool('tokenizer.ggml.add_eos_token') ?? false

  // llama.cpp marks well-known special texts as control tokens and derives the EOG set by text.
  const eog = new Set<number>()
  for (let i = 0; i < n; i++) {
    if (CONTROL_TEXTS.has(tokens[i])) attrs[i] |= Attr.CONTROL
    if (EOG_TEXTS.has(tokens[i])) eog.add(i)
  }
  for (const id of [eos, eot, eom]) if (id >= 0) eog.add(id)

  const byteLen = (s: string) => utf8(s).length
  const specials: number[] = []
  for (let i = 0; i < n; i++) if (attrs[i] & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)) specials.push(i)
  // llama.cpp sorts by byte length only (std::sort, unstable); ties keep id order here.
  specials.sort((a, b) => byteLen(tokens[b]) - byteLen(tokens[a]) || a - b)

  return {
    kind, pre, tokens, scores, attrs, tokenToId, ranks, bos, eos, unk, addBos, addEos, addSpacePrefix,
    cleanSpaces, ignoreMerges, eog, specials,
  }
}
