/**
 * BPE pre-tokenizers: split a text fragment into words before byte-level BPE runs on each word.
 *
 * llama.cpp does not run these regexes through a regex engine: for the GPT-2, Llama 3 and Qwen2
 * patterns it uses hand-written scanners (`unicode_regex_split_custom_*` in `unicode.cpp`) whose
 * results differ from a real regex engine in corner cases (e.g. `\s+(?!\S)` is emulated by "a
 * whitespace run longer than one, not at the end of the fragment, gives back its last character",
 * and the `(?i:'s|...)` contractions only fold ASCII case). To agree with llama.cpp token for token
 * we implement the same scanners, not the regexes. The patterns they stand for:
 *
 *   gpt-2:     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   llama-bpe: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   qwen2:     the llama-bpe pattern with \p{N} (single digits) instead of \p{N}{1,3}
 *
 * The split works on codepoints; each returned word is a substring of the input.
 */
import { C_LETTER, C_NUMBER, C_SPACE, codepoints, cpClass, fromCodepoints } from './unicode.js'

/** The pre-tokenizer families Tessera supports, by their GGUF `tokenizer.ggml.pre` value. */
export type PreTokenizer = 'gpt-2' | 'llama-bpe' | 'qwen2'

const CR = 0x0d
const LF = 0x0a
const SPACE = 0x20
const APOS = 0x27

/** ASCII-only lower-casing, as the contraction rule needs (no non-ASCII codepoint folds to s,t,m,d,r,v,e,l). */
function lower(cp: number): number {
  return cp >= 0x41 && cp <= 0x5a ? cp + 32 : cp
}

/** Length (in codepoints) of a contraction starting at `pos`, or 0. */
function contraction(cps: readonly number[], pos: number, end: number, foldCase: boolean): number {
  if (cps[pos] !== APOS || pos + 1 >= end) return 0
  const f = foldCase ? lower : (c: number) => c
  const a = f(cps[pos + 1])
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return 2 // 's 't 'm 'd
  if (pos + 2 < end) {
    const b = f(cps[pos + 2])
    if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) return 3 // 're 've 'll
  }
  return 0
}

/**
 * Word lengths (in codepoints) of `cps` under the given pre-tokenizer. Positions past the end have
 * class 0, which is how the scanners express the regex's end-of-input conditions.
 */
export function splitLengths(cps: readonly number[], pre: PreTokenizer): number[] {
  const end = cps.length
  const cls = (p: number): number => (p < end ? cpClass(cps[p]) : 0)
  const out: number[] = []
  let pos = 0
  let last = 0
  const emit = (to: number): void => {
    if (to > last) out.push(to - last)
    last = to
    pos = to
  }

  if (pre === 'gpt-2') {
    while (pos < end) {
      const cp = cps[pos]
      const c = contraction(cps, pos, end, false)
      if (c > 0) { emit(pos + c); continue }
      // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class
      let f2 = cp === SPACE ? cls(pos + 1) : cls(pos)
      if (f2 & C_LETTER || f2 & C_NUMBER || (!(f2 & (C_SPACE | C_LETTER | C_NUMBER)) && f2 !== 0)) {
        const kind = f2 & C_LETTER ? C_LETTER : f2 & C_NUMBER ? C_NUMBER : 0
        let p = pos + (cp === SPACE ? 1 : 0)
        if (kind !== 0) {
          while (f2 & kind) f2 = cls(++p)
        } else {
          while (!(f2 & (C_SPACE | C_LETTER | C_NUMBER)) && f2 !== 0) f2 = cls(++p)
        }
        emit(p)
        continue
      }
      let n = 0
      while (cls(pos + n) & C_SPACE) n++
      if (n > 1 && pos + n < end) { emit(pos + n - 1); continue } // \s+(?!\S)
      if (n > 0) { emit(pos + n); continue } // \s+
      emit(pos + 1)
    }
    return out
  }

  const maxDigits = pre === 'llama-bpe' ? 3 : 1
  while (pos < end) {
    const cp = cps[pos]
    const f = cls(pos)
    const c = contraction(cps, pos, end, true)
    if (c > 0) { emit(pos + c); continue }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(cp === CR || cp === LF || f & C_NUMBER) && (f & C_LETTER || cls(pos + 1) & C_LETTER)) {
      let p = pos + 1
      while (cls(p) & C_LETTER) p++
      emit(p)
      continue
    }
    // \p{N}{1,maxDigits}
    if (f & C_NUMBER) {
      let p = pos
      let run = pos
      while (cls(p) & C_NUMBER) {
        p++
        if (p - run >= maxDigits) { emit(p); run = p }
      }
      emit(p)
      continue
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`; the current codepoint always has flags, so only f2 decides
    let f2 = cp === SPACE ? cls(pos + 1) : f
    if (!(f2 & (C_SPACE | C_LETTER | C_NUMBER))) {
      let p = pos + (cp === SPACE ? 1 : 0)
      while (!(f2 & (C_SPACE | C_LETTER | C_NUMBER)) && f2 !== 0) f2 = cls(++p)
      while (p < end && (cps[p] === CR || cps[p] === LF)) p++
      emit(p)
      continue
    }
    let n = 0
    let lastNewline = 0
    while (cls(pos + n) & C_SPACE) {
      if (cps[pos + n] === CR || cps[pos + n] === LF) lastNewline = pos + n + 1
      n++
    }
    if (lastNewline > 0) { emit(lastNewline); continue } // \s*[\r\n]+
    if (n > 1 && pos + n < end) { emit(pos + n - 1); continue } // \s+(?!\S)
    if (n > 0) { emit(pos + n); continue } // \s+
    emit(pos + 1)
  }
  return out
}

/**
 * Split text into pre-tokenizer words, exactly as llama.cpp's `unicode_regex_split` does for the
 * given `tokenizer.ggml.pre`.
 *
 * @example pretokenize("I'll see 12345 ships!", 'llama-bpe') // ['I', "'ll", ' see', ' ', '123', '45', ' ships', '!']
 */
export function pretokenize(text: string, pre: PreTokenizer): string[] {
  const cps = codepoints(text)
  const words: string[] = []
  let start = 0
  for (const len of splitLengths(cps, pre)) {
    words.push(fromCodepoints(cps, start, start + len))
    start += len
  }
  return words
}
