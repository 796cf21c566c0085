/**
 * Agreement with llama.cpp (node-llama-cpp 3.22, CPU): Tessera and llama.cpp run the same
 * synthesized GGUF files on the same token ids and must agree wherever the arithmetic differences
 * between the two engines cannot change the answer. docs/AGREEMENT.md explains every difference
 * and records the measured table this test prints.
 *
 * What is asserted, per (preset, weight type):
 * - both tokenizers give the same ids for every prompt;
 * - the largest logit difference stays below MAX_LOGIT_DIFF, and the mean KL divergence of the
 *   next-token distributions below MAX_MEAN_KL;
 * - top-1 agrees on every prompt where llama.cpp's own top-2 margin exceeds the margin
 *   2 · MAX_LOGIT_DIFF;
 * - greedy generations (32 tokens) agree, and where one diverges, it does so at a step where
 *   llama.cpp's margin is below that margin (a near-tie that the rounding differences can flip);
 *   for K-quant and f16 weights at least 80% of prompts agree for all 32 tokens, and over all the
 *   2-layer cases together (Q8_0 included) at least 75%.
 *
 * Why a margin of 0.5 (2-layer presets): llama.cpp's arithmetic differs from docs/ARITHMETIC.md (activations rounded
 * to f16 for F16 weights, Q8_K scales for K-quants, FMA
 * and other summation orders, libm expf/sinf/cosf). Because the activation quantization is a
 * rounding step, a 1-ulp difference upstream can move an int8 by one, so differences do not stay
 * at the ulp level: the measured max |Δlogit| is up to ~0.25 (docs/AGREEMENT.md). The two top
 * logits each move by at most max |Δlogit|, so their order can only flip when the margin is below
 * 2 · max |Δlogit|; MAX_LOGIT_DIFF = 0.25 caps that at 0.5. A tighter threshold such as 0.05
 * would assert something the arithmetic does not promise.
 *
 * Both engines keep K and V in f32 here: Tessera under tessera-arith/1 (the default, v2, rounds
 * K/V to binary16 as llama.cpp's default f16 cache does, but that cache also rounds Q and the
 * attention weights, so the two f16 settings do not pair up op for op; the table in
 * docs/AGREEMENT.md also shows that setting).
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { openLlamaCpp, synthModelFile } from '../../bench/llamacpp.js'
import { KVCache } from '../../src/engine/model/transformer.js'
import { ARITH_V1 } from '../../src/engine/version.js'
import { loadModel, type Model } from '../../src/runtime/model.js'
import { argmax, commonPrefix, compareLogits } from './compare.js'

const MODELS = fileURLToPath(new URL('../../.tessera/test-models/', import.meta.url))
/** Bounds for the 2-layer presets; smol-135m's 30 layers compound the differences (see CASES). */
const MAX_LOGIT_DIFF = 0.25
const MAX_MEAN_KL = 5e-3
const GREEDY = 32

const PROMPTS = [
  'The harbour was quiet in the grey hour before dawn.',
  'Along the stone quay the fishing boats',
  'Once upon a time, there was a little',
  'In 1851, Herman Melville wrote: "Call me Ishmael."',
  'She opened the door and saw',
  'the the the of and to',
]

type Case = { preset: string; type: string; prompts?: number; greedy?: number; maxLogitDiff?: number; maxMeanKl?: number }
const CASES: Case[] = [
  { preset: 'tiny', type: 'q8_0' },
  { preset: 'tiny', type: 'q4_k' },
  { preset: 'tiny', type: 'f16' },
  { preset: 'tiny-qwen2', type: 'q8_0' },
  { preset: 'tiny-qwen2', type: 'q6_k' },
  { preset: 'tiny-bpe', type: 'q8_0' },
  { preset: 'tiny-bpe', type: 'q4_k_m' },
  { preset: 'tiny', type: 'q5_k' },
  { preset: 'tiny-bpe', type: 'q5_k_m' },
  { preset: 'tiny', type: 'q4_1' },
  { preset: 'tiny-qwen2', type: 'q5_0' },
  { preset: 'tiny-bpe', type: 'q5_1' },
  { preset: 'tiny', type: 'q3_k_m' },
  { preset: 'tiny-qwen2', type: 'q2_k' },
  // qwen3: per-head q/k RMSNorm before NEOX RoPE, head 128 beside width 256
  { preset: 'tiny-qwen3', type: 'q8_0' },
  { preset: 'tiny-qwen3', type: 'q4_k_m' },
  // 30 layers: the rounding differences compound (measured max |dlogit| 0.55, mean KL 6.5e-3);
  // fewer prompts and tokens keep the whole file near a minute on 2 shared cores.
  { preset: 'smol-135m', type: 'q8_0', prompts: 2, greedy: 16, maxLogitDiff: 0.7, maxMeanKl: 1.5e-2 },
]

/** Weight types whose matmuls llama.cpp runs with f16-rounded activation scales (Q8_0/Q8_1 blocks). */
// Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 weights meet int8 activations in blocks of 32: any remaining ulp difference can move
// an int8 by one, so per-case greedy agreement is noisier; they count in the overall share below.
const INT8_ACTIVATIONS_32 = new Set(['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'])
let greedyFull = 0
let greedyRuns = 0

const rows: string[] = []
after(() => {
  console.log(['', '| preset | type | mean KL | max abs dlogit | top-1 | greedy agreement (tokens) |', '|---|---|---|---|---|---|', ...rows].join('\n'))
})

/** Tessera's greedy continuation: argmax of the logits (ties to the lowest id), EOG not special. */
function tesseraGreedy(model: Model, prompt: readonly number[], n: number): number[] {
  const cache = new KVCache(model.transformer.config, prompt.length + n, ARITH_V1)
  const out: number[] = []
  let logits = model.transformer.forward(prompt, cache, 1)
  for (let i = 0; i < n; i++) {
    out.push(argmax(logits))
    if (i < n - 1) logits = model.transformer.forward([out[i]], cache, 1)
  }
  return out
}

for (const c of CASES) {
  test(`agrees with llama.cpp: ${c.preset} ${c.type}`, async () => {
    const path = synthModelFile(MODELS, c.preset, c.type)
    const model = await loadModel(path, { threads: 1, backend: 'wasm' })
    const ll = await openLlamaCpp(path, { threads: 1, kvCacheType: 'F32', contextSize: 256 })
    try {
      const prompts = PROMPTS.slice(0, c.prompts ?? PROMPTS.length)
      const maxLogitDiff = c.maxLogitDiff ?? MAX_LOGIT_DIFF
      const maxMeanKl = c.maxMeanKl ?? MAX_MEAN_KL
      const nGreedy = c.greedy ?? GREEDY
      // The top two logits each move by at most maxLogitDiff, so only a margin below twice that
      // can flip their order.
      const margin = 2 * maxLogitDiff
      let klSum = 0
      let maxDiff = 0
      let top1 = 0
      const lengths: number[] = []
      for (const text of prompts) {
        const ids = ll.tokenize(text, true)
        assert.deepEqual(model.tokenizer.encode(text), ids, `tokenizers disagree on ${JSON.stringify(text)}`)

        const ref = await ll.nextLogits(ids)
        const ours = model.transformer.forward(ids, new KVCache(model.transformer.config, ids.length, ARITH_V1), 1)
        const s = compareLogits(ref, ours)
        klSum += s.kl
        maxDiff = Math.max(maxDiff, s.maxAbsDiff)
        if (s.refTop1 === s.oursTop1) top1++
        else assert.ok(s.refMargin < margin, `top-1 differs (${s.refTop1} vs ${s.oursTop1}) with llama.cpp margin ${s.refMargin} on ${JSON.stringify(text)}`)

        const g = await ll.greedy(ids, nGreedy)
        const mine = tesseraGreedy(model, ids, nGreedy)
        const n = commonPrefix(g.tokens, mine)
        lengths.push(n)
        if (n < nGreedy) assert.ok(g.margins[n] < margin, `greedy diverges at step ${n} where llama.cpp's margin is ${g.margins[n]} on ${JSON.stringify(text)}`)
      }
      const meanKl = klSum / prompts.length
      rows.push(`| ${c.preset} | ${c.type} | ${meanKl.toExponential(1)} | ${maxDiff.toFixed(3)} | ${top1}/${prompts.length} | ${lengths.map((n) => `${n}/${nGreedy}`).join(', ')} |`)
      assert.ok(maxDiff < maxLogitDiff, `max |dlogit| ${maxDiff} >= ${maxLogitDiff}`)
      assert.ok(meanKl < maxMeanKl, `mean KL ${meanKl} >= ${maxMeanKl}`)
      const full = lengths.filter((n) => n === nGreedy).length
      if (nGreedy === 32) {
        greedyFull += full
        greedyRuns += prompts.length
      }
      if (!INT8_ACTIVATIONS_32.has(c.type)) {
        assert.ok(full >= 0.8 * prompts.length, `only ${full} of ${prompts.length} greedy runs agree for ${nGreedy} tokens: ${lengths.join(', ')}`)
      }
    } finally {
      await ll.close()
      model.close()
    }
  })
}

test('most greedy generations agree with llama.cpp for all 32 tokens (2-layer presets, every type)', () => {
  assert.ok(greedyRuns >= 30, `only ${greedyRuns} greedy runs were made`)
  assert.ok(greedyFull >= 0.75 * greedyRuns, `${greedyFull} of ${greedyRuns} greedy runs agree for 32 tokens`)
})
