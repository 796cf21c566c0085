/**
 * Golden vectors: token ids of fixed strings under each synthesized tokenizer (4,096 tokens from
 * the built-in text, seed 0), and a digest of each vocabulary. A change to the synthesizer or to
 * a tokenizer that moves any id fails here; if the change is intended, regenerate the vectors
 * and say why in the commit.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { synthTokenizerMetadata } from './synth.js'
import { createTokenizer } from './tokenizer.js'

const STRINGS = [
  'The harbour was quiet in the grey hour before dawn.',
  "I'm sure you'll see 1842 boats!\n\nCafé 😀 中文",
  '<|im_start|>user\n  two  spaces<|im_end|>',
]

const GOLDEN = {
  spm: {
    digest: '0c1caf3f9adeefa1',
    ids: [
      [1, 314, 526, 320, 863, 292, 261, 791, 707, 410, 978],
      [1, 362, 638, 264, 4061, 266, 417, 280, 4073, 295, 465, 364, 4092, 4086, 4076, 514, 36, 13, 13, 70, 4050, 4066, 198, 172, 4046, 243, 162, 155, 131, 4046, 231, 187, 176, 233, 153, 138],
      [1, 4046, 63, 127, 4056, 4060, 98, 310, 309, 4048, 127, 65, 4061, 4054, 271, 13, 4046, 875, 4046, 264, 4069, 550, 281, 63, 127, 4056, 4060, 98, 4047, 269, 127, 65],
    ],
  },
  'llama-bpe': {
    digest: 'fc87cc4b5e3b33de',
    ids: [
      [4091, 292, 519, 319, 841, 296, 258, 786, 699, 404, 915, 13],
      [4091, 40, 622, 262, 84, 263, 413, 276, 624, 465, 220, 887, 17, 401, 0, 308, 34, 64, 69, 127, 102, 220, 172, 253, 246, 222, 220, 160, 116, 255, 162, 244, 229],
      [4091, 27, 91, 72, 76, 62, 277, 305, 83, 91, 29, 557, 268, 198, 220, 641, 220, 262, 79, 538, 282, 27, 91, 72, 76, 62, 68, 266, 91, 29],
    ],
  },
  qwen2: {
    digest: 'aa366a17729dfab9',
    ids: [
      [292, 518, 319, 833, 296, 258, 778, 691, 404, 905, 13],
      [40, 619, 262, 84, 263, 413, 276, 621, 464, 220, 16, 23, 19, 17, 401, 0, 308, 34, 64, 69, 127, 102, 220, 172, 253, 246, 222, 220, 160, 116, 255, 162, 244, 229],
      [4094, 556, 268, 198, 220, 633, 220, 262, 79, 537, 282, 4095],
    ],
  },
}

for (const [name, golden] of Object.entries(GOLDEN)) {
  test(`golden token ids and vocabulary digest: ${name}`, () => {
    const md = name === 'spm'
      ? synthTokenizerMetadata({ kind: 'spm', vocabSize: 4096 })
      : synthTokenizerMetadata({ kind: 'bpe', pre: name as 'llama-bpe' | 'qwen2', vocabSize: 4096 })
    const h = createHash('sha256')
    for (const key of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges']) {
      h.update(`${key}=${JSON.stringify(md[key]?.value ?? null)}\n`)
    }
    assert.equal(h.digest('hex').slice(0, 16), golden.digest)
    const tok = createTokenizer(md)
    STRINGS.forEach((s, i) => {
      const ids = tok.encode(s, { parseSpecial: true })
      assert.deepEqual(ids, golden.ids[i], JSON.stringify(s))
      // Round trip: what llama.cpp would print (SPM keeps the space after a kept BOS).
      assert.equal(tok.decode(ids, { unparseSpecial: true }).replace(/^<s> |^<\|begin_of_text\|>/, ''), s)
    })
  })
}
