/**
 * Unicode helpers shared by the tokenizers: codepoint classes as llama.cpp's `unicode.cpp` sees
 * them, GPT-2's byte-to-unicode map, and UTF-8 conversions.
 *
 * Classes follow llama.cpp, not JavaScript's `\s`: llama.cpp's whitespace set (from
 * `unicode-data.cpp`) includes U+0085 and excludes U+FEFF, the reverse of JS. Letters and numbers
 * use the `\p{L}` / `\p{N}` general categories of the Unicode tables built into Node; they match
 * llama.cpp's generated tables except for codepoints assigned in a newer Unicode version than one
 * of the two knows (none occur in ordinary text).
 */

/** llama.cpp `unicode_set_whitespace`, the `\s` of every pre-tokenizer. */
const WHITESPACE = new Set<number>([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
])

/** Class bits of one codepoint; `OUT` marks a position outside the current fragment. */
export const C_LETTER = 1
export const C_NUMBER = 2
export const C_SPACE = 4
/** Any codepoint inside the text has at least this bit, so "no flags at all" means out of range. */
export const C_ANY = 8

const LETTER_RE = /^\p{L}$/u
const NUMBER_RE = /^\p{N}$/u
const classCache = new Map<number, number>()
const ASCII_CLASS = new Uint8Array(128)
for (let c = 0; c < 128; c++) ASCII_CLASS[c] = computeClass(c)

function computeClass(cp: number): number {
  const s = String.fromCodePoint(cp)
  let f = C_ANY
  if (LETTER_RE.test(s)) f |= C_LETTER
  else if (NUMBER_RE.test(s)) f |= C_NUMBER
  if (WHITESPACE.has(cp)) f |= C_SPACE
  return f
}

/** Class bits (C_LETTER | C_NUMBER | C_SPACE, always with C_ANY) of a codepoint. */
export function cpClass(cp: number): number {
  if (cp < 128) return ASCII_CLASS[cp]
  let f = classCache.get(cp)
  if (f === undefined) {
    f = computeClass(cp)
    classCache.set(cp, f)
  }
  return f
}

/** Codepoints of a string. Lone surrogates become U+FFFD, as the UTF-8 that llama.cpp receives holds. */
export function codepoints(s: string): number[] {
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        i++
      } else c = 0xfffd
    } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd
    out.push(c)
  }
  return out
}

/** String of a codepoint slice. */
export function fromCodepoints(cps: readonly number[], start = 0, end = cps.length): string {
  let s = ''
  for (let i = start; i < end; i++) s += String.fromCodePoint(cps[i])
  return s
}

const encoder = new TextEncoder()
/** UTF-8 bytes of a string (lone surrogates become U+FFFD). */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s)
}

/**
 * GPT-2's `bytes_to_unicode`: every byte maps to a printable codepoint so that byte-level BPE
 * tokens are valid text. Printable Latin-1 bytes map to themselves; the other 68 bytes take
 * U+0100.. in byte order. `BYTE_ORDER` lists bytes in the order GPT-2 vocabularies number them.
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const map: string[] = new Array(256)
  let n = 0
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
    if (printable) map[b] = String.fromCodePoint(b)
  }
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCodePoint(256 + n++)
  return map
})()

/** Inverse of BYTE_TO_UNICODE, keyed by the codepoint. */
export const UNICODE_TO_BYTE: ReadonlyMap<number, number> = new Map(
  BYTE_TO_UNICODE.map((ch, b) => [ch.codePointAt(0)!, b]),
)

/** Bytes in GPT-2 vocabulary order: printable ones first (`!`..`~`, `¡`..`¬`, `®`..`ÿ`), then the rest. */
export const BYTE_ORDER: readonly number[] = (() => {
  const order: number[] = []
  for (let b = 0; b < 256; b++) if (BYTE_TO_UNICODE[b].codePointAt(0) === b) order.push(b)
  for (let b = 0; b < 256; b++) if (BYTE_TO_UNICODE[b].codePointAt(0) !== b) order.push(b)
  return order
})()

/** Byte-level encoding of a string: its UTF-8 bytes, each replaced by its GPT-2 codepoint. */
export function byteEncode(s: string): string {
  const bytes = utf8(s)
  let out = ''
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_UNICODE[bytes[i]]
  return out
}

/** SentencePiece byte-fallback token text of a byte: `<0x0A>` (upper-case hex, as llama.cpp looks it up). */
export function byteToken(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`
}
