/**
 * Byte-level BPE (llama.cpp `llm_tokenizer_bpe_session`): pre-tokenize into words, byte-encode
 * each word with GPT-2's map, then inside each word repeatedly merge the adjacent pair with the
 * lowest merge rank (ties: leftmost first). Llama 3 vocabularies (`ignore_merges`) take a word
 * that is itself a token as one token without merging.
 */
import { Heap } from './heap.js'
import { pretokenize } from './pretokenize.js'
import { byteEncode } from './unicode.js'
import type { Vocab } from './vocab.js'

type Bigram = { left: number; right: number; text: string; rank: number }

/** What BPE needs of the vocabulary (the synthesizer passes a growing one). */
export type BpeVocab = Pick<Vocab, 'tokenToId' | 'ranks' | 'ignoreMerges' | 'pre'>

/** llama.cpp's comparator: lower rank first, then the smaller left index. */
const before = (a: Bigram, b: Bigram): boolean => a.rank < b.rank || (a.rank === b.rank && a.left < b.left)

/** Token ids of a raw text fragment (no special tokens inside). Appends to `out`. */
export function bpeTokenize(vocab: BpeVocab, text: string, out: number[]): void {
  for (const raw of pretokenize(text, vocab.pre!)) bpeWord(vocab, byteEncode(raw), out)
}

/** Token ids of one pre-tokenized, byte-encoded word. Appends to `out`. */
export function bpeWord(vocab: BpeVocab, word: string, out: number[]): void {
  if (vocab.ignoreMerges) {
    const id = vocab.tokenToId.get(word)
    if (id !== undefined) { out.push(id); return }
  }
  // Byte-encoded words hold only U+0021..U+0143, so every symbol starts as one UTF-16 unit.
  const sym: string[] = [...word]
  const prev = sym.map((_, i) => i - 1)
  const next = sym.map((_, i) => (i + 1 < sym.length ? i + 1 : -1))
  const queue = new Heap<Bigram>(before)
  const tryAdd = (left: number, right: number): void => {
    if (left === -1 || right === -1) return
    const rank = vocab.ranks.get(sym[left])?.get(sym[right])
    if (rank === undefined) return
    queue.push({ left, right, text: sym[left] + sym[right], rank })
  }
  for (let i = 1; i < sym.length; i++) tryAdd(i - 1, i)
  for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
    if (sym[b.left] === '' || sym[b.right] === '' || sym[b.left] + sym[b.right] !== b.text) continue // outdated
    sym[b.left] = b.text
    sym[b.right] = ''
    next[b.left] = next[b.right]
    if (next[b.right] >= 0) prev[next[b.right]] = b.left
    tryAdd(prev[b.left], b.left)
    tryAdd(b.left, next[b.left])
  }
  for (const s of sym) {
    if (s === '') continue
    const id = vocab.tokenToId.get(s)
    if (id !== undefined) { out.push(id); continue }
    // llama.cpp then looks up each UTF-8 byte of the symbol as a one-byte token and silently
    // drops the bytes that are not: only ASCII characters can match.
    for (const ch of s) {
      const one = ch.codePointAt(0)! < 0x80 ? vocab.tokenToId.get(ch) : undefined
      if (one !== undefined) out.push(one)
    }
  }
}
