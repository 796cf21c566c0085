/**
 * SentencePiece (llama.cpp `llm_tokenizer_spm_session`): split the escaped text into codepoints,
 * then repeatedly merge the adjacent pair whose concatenation is the highest-scoring token
 * (ties: leftmost pair first), and finally emit each symbol as its token or, when it is not one,
 * as byte-fallback tokens `<0xXX>`.
 */
import { Heap } from './heap.js'
import { TokenizerMetadataError } from './errors.js'
import { byteToken, utf8 } from './unicode.js'
import type { Vocab } from './vocab.js'

type Bigram = { left: number; right: number; score: number; size: number }

/** What SPM needs of the vocabulary (the synthesizer passes a growing one). */
export type SpmVocab = Pick<Vocab, 'tokenToId' | 'unk'> & { scores: ArrayLike<number> }

/** llama.cpp's comparator: higher score first, then the smaller left index. */
const before = (a: Bigram, b: Bigram): boolean => a.score > b.score || (a.score === b.score && a.left < b.left)

/**
 * Token ids of `text`, which must already carry the SentencePiece escaping (spaces as U+2581 and
 * the optional leading space). Appends to `out`.
 */
export function spmTokenize(vocab: SpmVocab, text: string, out: number[]): void {
  if (text.length === 0) return
  // Symbols: one per codepoint, as [start, length) in UTF-16 units, in a doubly linked list.
  const start: number[] = []
  const len: number[] = []
  const prev: number[] = []
  const next: number[] = []
  for (let i = 0; i < text.length; ) {
    const l = text.codePointAt(i)! > 0xffff ? 2 : 1
    start.push(i)
    len.push(l)
    prev.push(start.length - 2)
    i += l
    next.push(i === text.length ? -1 : start.length)
  }

  const queue = new Heap<Bigram>(before)
  const tryAdd = (left: number, right: number): void => {
    if (left === -1 || right === -1) return
    const id = vocab.tokenToId.get(text.substr(start[left], len[left] + len[right]))
    if (id === undefined) return
    queue.push({ left, right, score: vocab.scores[id], size: len[left] + len[right] })
  }
  for (let i = 1; i < start.length; i++) tryAdd(i - 1, i)

  for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
    // A bigram is stale once either side was merged away or grew; the size test detects both.
    if (len[b.left] === 0 || len[b.right] === 0 || len[b.left] + len[b.right] !== b.size) continue
    len[b.left] += len[b.right]
    len[b.right] = 0
    next[b.left] = next[b.right]
    if (next[b.right] >= 0) prev[next[b.right]] = b.left
    tryAdd(prev[b.left], b.left)
    tryAdd(b.left, next[b.left])
  }

  // Merged symbols are tokens by construction; llama.cpp's `rev_merge` re-segmentation can only
  // apply to single codepoints that are not tokens, which it never finds, so those go to bytes.
  for (let i = 0; i !== -1; i = next[i]) {
    const piece = text.substr(start[i], len[i])
    const id = vocab.tokenToId.get(piece)
    if (id !== undefined) { out.push(id); continue }
    for (const byte of utf8(piece)) out.push(byteToId(vocab, byte))
  }
}

/**
 * llama.cpp `byte_to_token` for SPM: the `<0xXX>` token, else the one-character token of that byte.
 * llama.cpp throws when neither exists; we fall back to `<unk>` when the vocabulary has one.
 */
function byteToId(vocab: SpmVocab, byte: number): number {
  const id = vocab.tokenToId.get(byteToken(byte)) ?? (byte < 0x80 ? vocab.tokenToId.get(String.fromCharCode(byte)) : undefined)
  if (id !== undefined) return id
  if (vocab.unk >= 0) return vocab.unk
  throw new TokenizerMetadataError(`vocabulary has no byte token for 0x${byte.toString(16)} and no <unk>`)
}
