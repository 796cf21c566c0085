/**
 * Tokenizers that agree with llama.cpp token for token: SentencePiece (`tokenizer.ggml.model =
 * llama`) and byte-level BPE (`gpt2`, pre-tokenizers llama-bpe, qwen2, gpt2), built from a
 * model's GGUF metadata. The spec followed is llama.cpp's `llama-vocab.cpp` (`tokenize`,
 * `tokenizer_st_partition`, `token_to_piece`, `detokenize`); docs/TOKENIZER.md describes it and
 * the agreement tests in this folder check it against node-llama-cpp.
 */
import { bpeTokenize } from './bpe.js'
import { TokenIdOutOfRangeError, TokenizerMetadataError } from './errors.js'
import { spmTokenize } from './spm.js'
import { codepoints, UNICODE_TO_BYTE, utf8 } from './unicode.js'
import { Attr, loadVocab, type TokenizerMetadata, type Vocab } from './vocab.js'

export type EncodeOptions = {
  /** Prepend BOS (default: the model's `add_bos_token`). */
  addBos?: boolean
  /** Append EOS (default: the model's `add_eos_token`). */
  addEos?: boolean
  /**
   * Turn the texts of control and unknown tokens (`<s>`, `<|im_start|>`, ...) into those tokens.
   * Default false, as node-llama-cpp's `model.tokenize(text)` and llama.cpp's `parse_special`
   * default: user text cannot inject control tokens. User-defined tokens are always matched.
   */
  parseSpecial?: boolean
}

export type DecodeOptions = {
  /** Drop a leading BOS / trailing EOS when the model adds them (llama.cpp `remove_special`). */
  removeSpecial?: boolean
  /** Render control and unknown tokens as their text instead of nothing (llama.cpp `unparse_special`). */
  unparseSpecial?: boolean
}

export type Tokenizer = {
  readonly kind: 'spm' | 'bpe'
  readonly vocabSize: number
  /** BOS / EOS ids, -1 when the vocabulary has none. */
  readonly bos: number
  readonly eos: number
  /** Tokens that end generation (EOS, EOT, `<|im_end|>`, ... as llama.cpp decides by text). */
  readonly eogTokens: ReadonlySet<number>
  /** Whether `encode` prepends BOS by default. */
  readonly addBos: boolean
  /** Token ids of a text (llama.cpp `llama_tokenize`). */
  encode(text: string, opts?: EncodeOptions): number[]
  /** The bytes a token stands for (llama.cpp `token_to_piece`, no space stripping); control tokens give no bytes unless `special`. */
  decodeToken(id: number, special?: boolean): Uint8Array
  /** Text of a token sequence (llama.cpp `llama_detokenize`, defaults as node-llama-cpp's `detokenize`). */
  decode(ids: readonly number[], opts?: DecodeOptions): string
  /** The raw vocabulary text of a token (e.g. `▁the`, `Ġthe`, `<0x0A>`). */
  tokenText(id: number): string
}

type Fragment = { text: string } | { token: number }

/**
 * Build a tokenizer from GGUF metadata (a `GgufMetadata` map or a record of typed values, such as
 * `synthTokenizerMetadata` returns).
 *
 * @example
 * const tok = createTokenizer(synthTokenizerMetadata({ kind: 'spm', vocabSize: 1000 }))
 * const ids = tok.encode('Hello world')   // [1, ...]: BOS, then the pieces of "▁Hello▁world"
 * tok.decode(ids)                          // ' Hello world' (llama.cpp keeps the space after a kept BOS)
 */
export function createTokenizer(metadata: TokenizerMetadata): Tokenizer {
  const vocab = loadVocab(metadata)
  const n = vocab.tokens.length
  const pieces: (Uint8Array | undefined)[] = new Array(n)
  const check = (id: number): void => {
    if (!Number.isInteger(id) || id < 0 || id >= n) throw new TokenIdOutOfRangeError(id, n)
  }
  const piece = (id: number): Uint8Array => (pieces[id] ??= tokenPiece(vocab, id))
  const decodeToken = (id: number, special = false): Uint8Array => {
    check(id)
    if (!special && vocab.attrs[id] & (Attr.UNKNOWN | Attr.CONTROL)) return new Uint8Array(0)
    return piece(id)
  }

  return {
    kind: vocab.kind,
    vocabSize: n,
    bos: vocab.bos,
    eos: vocab.eos,
    eogTokens: vocab.eog,
    addBos: vocab.addBos,
    encode: (text, opts = {}) => encode(vocab, text, opts),
    decodeToken,
    decode: (ids, opts = {}) => decode(vocab, ids, opts, decodeToken),
    tokenText: (id) => { check(id); return vocab.tokens[id] },
  }
}

/**
 * Split a text at special-token occurrences (llama.cpp `tokenizer_st_partition`): longest special
 * texts first, each splitting every remaining raw fragment at all its non-overlapping matches.
 */
function partition(vocab: Vocab, text: string, parseSpecial: boolean): Fragment[] {
  let frags: Fragment[] = [{ text }]
  for (const id of vocab.specials) {
    if (!parseSpecial && vocab.attrs[id] & (Attr.CONTROL | Attr.UNKNOWN)) continue
    const needle = vocab.tokens[id]
    const nextFrags: Fragment[] = []
    for (const f of frags) {
      if (!('text' in f)) { nextFrags.push(f); continue }
      let from = 0
      for (let at = f.text.indexOf(needle); at >= 0; at = f.text.indexOf(needle, from)) {
        if (at > from) nextFrags.push({ text: f.text.slice(from, at) })
        nextFrags.push({ token: id })
        from = at + needle.length
      }
      if (from < f.text.length) nextFrags.push({ text: from === 0 ? f.text : f.text.slice(from) })
    }
    frags = nextFrags
  }
  return frags
}

function encode(vocab: Vocab, text: string, opts: EncodeOptions): number[] {
  const addBos = opts.addBos ?? vocab.addBos
  const addEos = opts.addEos ?? vocab.addEos
  const frags = text === '' ? [] : partition(vocab, text, opts.parseSpecial ?? false)
  const out: number[] = []
  if (addBos) {
    if (vocab.bos < 0) throw new TokenizerMetadataError('cannot add BOS: the vocabulary has no BOS token')
    out.push(vocab.bos)
  }
  // SPM prefixes a space to the text at the start and after every special token.
  let prevSpecial = true
  for (const f of frags) {
    if ('token' in f) {
      out.push(f.token)
      prevSpecial = true
    } else if (vocab.kind === 'spm') {
      const t = (vocab.addSpacePrefix && prevSpecial ? ' ' : '') + f.text
      spmTokenize(vocab, t.replaceAll(' ', '\u2581'), out)
      prevSpecial = false
    } else {
      bpeTokenize(vocab, f.text, out)
    }
  }
  if (addEos) {
    if (vocab.eos < 0) throw new TokenizerMetadataError('cannot add EOS: the vocabulary has no EOS token')
    out.push(vocab.eos)
  }
  return out
}

/** The bytes of a token as llama.cpp's piece cache holds them (special tokens rendered). */
function tokenPiece(vocab: Vocab, id: number): Uint8Array {
  const attr = vocab.attrs[id]
  const text = vocab.tokens[id]
  if (attr & (Attr.UNKNOWN | Attr.CONTROL | Attr.USER_DEFINED)) return utf8(text)
  if (attr & Attr.NORMAL) return vocab.kind === 'spm' ? utf8(text.replaceAll('\u2581', ' ')) : byteDecode(text)
  if (attr & Attr.BYTE) return Uint8Array.of(parseInt(text.substr(3, 2), 16) || 0)
  return new Uint8Array(0) // unused or undefined tokens render as nothing
}

/** Inverse GPT-2 byte map over a token's text (llama.cpp `llama_decode_text`, including its odd marker for unmapped codepoints). */
function byteDecode(text: string): Uint8Array {
  const out: number[] = []
  for (const cp of codepoints(text)) {
    const b = UNICODE_TO_BYTE.get(cp)
    if (b !== undefined) { out.push(b); continue }
    const hex = [...utf8(String.fromCodePoint(cp))].map((x) => x.toString(16).padStart(2, '0')).join('')
    out.push(...utf8(`[UNK_BYTE_0x${hex}${text}]`))
  }
  return Uint8Array.from(out)
}

const decoder = new TextDecoder('utf-8', { ignoreBOM: true })

function decode(
  vocab: Vocab, ids: readonly number[], opts: DecodeOptions, decodeToken: (id: number, special: boolean) => Uint8Array,
): string {
  let first = 0
  let end = ids.length
  let removeSpace = vocab.addSpacePrefix
  if (opts.removeSpecial && vocab.addBos && end > 0 && ids[0] === vocab.bos) {
    removeSpace = false
    first = 1
  }
  if (opts.removeSpecial && vocab.addEos && end > first && ids[end - 1] === vocab.eos) end--

  const parts: Uint8Array[] = []
  let total = 0
  for (let i = first; i < end; i++) {
    let p = decodeToken(ids[i], opts.unparseSpecial ?? false)
    // Only the first token may lose one leading space, whether or not it renders (llama.cpp lstrip).
    if (removeSpace && p.length > 0 && p[0] === 0x20) p = p.subarray(1)
    removeSpace = false
    parts.push(p)
    total += p.length
  }
  let bytes: Uint8Array = new Uint8Array(total)
  let o = 0
  for (const p of parts) { bytes.set(p, o); o += p.length }
  if (vocab.cleanSpaces) bytes = cleanSpaces(bytes)
  return decoder.decode(bytes)
}

const SP = 0x20, QUOTE = 0x27
/**
 * llama.cpp's `clean_spaces` post-pass of `detokenize`, three in-place passes over the bytes:
 * drop the space before `? ! . ,`; turn ` ' ` into `'`; drop the space before `'s 'm 're 've`.
 */
function cleanSpaces(input: Uint8Array): Uint8Array {
  const t = Uint8Array.from(input)
  let total = t.length
  // pass 1: " ?", " !", " .", " ,"
  let n = total
  total = n ? 1 : 0
  for (let i = 1; i < n; i++) {
    const x = t[i]
    if (t[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--
    t[total++] = x
  }
  // pass 2: a lone apostrophe between spaces
  n = total
  total = n ? 1 : 0
  for (let i = 1; i < n; i++) {
    const x = t[i]
    if (x === QUOTE && i + 1 < n && t[i - 1] === SP && t[i + 1] === SP) {
      total--
      t[++i] = 0
    }
    t[total++] = x
  }
  // pass 3: contractions " 's", " 'm", " 're", " 've" (not " 't", " 'd", " 'll")
  n = total
  total = n ? 1 : 0
  for (let i = 1; i < n; i++) {
    const x = t[i]
    if (t[i - 1] === SP && x === QUOTE && i + 1 < n) {
      const x1 = t[i + 1]
      if (x1 === 0x73 || x1 === 0x6d) total--
      else if (i + 2 < n && ((x1 === 0x72 && t[i + 2] === 0x65) || (x1 === 0x76 && t[i + 2] === 0x65))) total--
    }
    t[total++] = x
  }
  return t.subarray(0, total)
}
