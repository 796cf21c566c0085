/**
 * Hand-made vocabularies for the unit tests, as GGUF metadata records. Not exported from index.ts.
 */
import { type GgufValue, gv } from '../../src/engine/gguf/types.js'
import { BYTE_ORDER, BYTE_TO_UNICODE, byteToken } from '../../src/engine/tokenizer/unicode.js'

/** SPM: <unk>, <s>, </s>, optionally the 256 byte tokens, then `pieces` with their scores. */
export function spmVocab(pieces: [string, number][], withBytes = true): Record<string, GgufValue> {
  const tokens = ['<unk>', '<s>', '</s>']
  const types = [2, 3, 3]
  const scores = [0, 0, 0]
  if (withBytes) for (let b = 0; b < 256; b++) { tokens.push(byteToken(b)); types.push(6); scores.push(0) }
  for (const [p, s] of pieces) { tokens.push(p); types.push(1); scores.push(s) }
  return {
    'tokenizer.ggml.model': gv.str('llama'),
    'tokenizer.ggml.tokens': gv.arr('string', tokens),
    'tokenizer.ggml.scores': gv.arr('float32', scores),
    'tokenizer.ggml.token_type': gv.arr('int32', types),
  }
}

/** BPE: the 256 byte symbols (ids 0..255 in GPT-2 order), extra tokens, merges, then `specials` (control). */
export function bpeVocab(pre: string, extra: string[], merges: string[], specials: string[]): Record<string, GgufValue> {
  const tokens = [...BYTE_ORDER.map((b) => BYTE_TO_UNICODE[b]), ...extra, ...specials]
  const types = tokens.map((_, i) => (i < tokens.length - specials.length ? 1 : 3))
  return {
    'tokenizer.ggml.model': gv.str('gpt2'),
    'tokenizer.ggml.pre': gv.str(pre),
    'tokenizer.ggml.tokens': gv.arr('string', tokens),
    'tokenizer.ggml.token_type': gv.arr('int32', types),
    'tokenizer.ggml.merges': gv.arr('string', merges),
    'tokenizer.ggml.bos_token_id': gv.u32(tokens.length - specials.length),
    'tokenizer.ggml.eos_token_id': gv.u32(tokens.length - 1),
  }
}
