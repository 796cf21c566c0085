import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Forward64 } from '../../../test/support/forward64.js'
import { toHex } from '../bytes.js'
import { computeGgufModelRoot } from '../gguf/modelRoot.js'
import { dequantize } from '../gguf/quantize.js'
import { bufferSource, readGguf } from '../gguf/read.js'
import { GGMLType } from '../gguf/types.js'
import { encodeGguf, type GgufSpec } from '../gguf/write.js'
import { type ModelConfig, modelConfigFromGguf } from './config.js'
import { PRESETS } from './presets.js'
import { SYNTH_TYPES, presetConfig, synthModel, synthTensorType } from './synth.js'

function bytesOf(spec: GgufSpec): Uint8Array {
  const enc = encodeGguf(spec)
  const out = new Uint8Array(enc.byteLength)
  let o = 0
  for (const c of enc) {
    out.set(c, o)
    o += c.length
  }
  return out
}

/**
 * Golden model roots of `tiny` at seed 1 (docs/GGUF.md). They cover the weights, the quantizers,
 * the config and the synthetic tokenizer (src/engine/tokenizer/synth.ts): a change here means every
 * synthesized file and every receipt over it changes, so only update on purpose.
 */
const GOLDEN_TINY_SEED1: Record<string, string> = {
  f32: '0c83515e07c581e394f2b6076821fd5ba009dc4a9786dab3936a26f9036b577c',
  f16: '8a558b365c31981363d597dfacab2ee907ae095788093b01e84b77aa38c46a15',
  bf16: '57b0e193eb3d0797616e238288018672ad3f6f50cfb0c649fa3253870ede4288',
  q8_0: '3fdbe2da7821f75c96453d378b5400d784f944d212ae2d878e328dd215e0e135',
  q4_0: '018f8079f88814ebb21ab52e9c8f77338530a6bbd58905f4d179f9797e81bf0b',
  q4_k: '4c1a870912d627f2d7e74dd990b4ca2809598bb877f0ec994b91d09416600abc',
  q6_k: '999133cc03d5747fdbfb56a7cda014be5cf52f9ef623c8e4e425669accd79e00',
  q4_k_m: '1b361d4fdde0eb39b90cb0888252932d29cbc6874c0b71adad70299cc2a667c7',
  q5_k: 'd41454e00baa436778bed50cd12d07fe47f793aa41e740f6fb1b60a67bbb71fa',
  q5_k_m: '0421836427cf1ff7a2338a56d27015cbe8b8bf095c46409c6516b403edb42b32',
  q4_1: 'be8322a7a1792acebd2275823ea330f273202080d2c603c9fe26b9760355ec8d',
  q5_0: '25bb186b47e910d5d03f745500408c14293f967d59b7f2d58014eae715473bf7',
  q5_1: '3c5eb5734e8ddb5dcc3eb9e48258f2e11447778889c0cfe5fa0d588c07a3a5a1',
  q3_k_m: '5fa13ea205339d0207083e064c99c26df97c35f13f1bd5b35c3badbc2f47d206',
  q2_k: 'fc21585c4735a96d30b6dfd35b123e670f18653616eccc998d4d04caabe8a3b2',
}

describe('synthModel', () => {
  it('writes a file whose config and tensors validate, for every preset (shapes only)', () => {
    for (const name of Object.keys(PRESETS)) {
      const spec = synthModel({ preset: name, type: 'q8_0', seed: 1 })
      const cfg = modelConfigFromGguf(spec.metadata, spec.tensors.map((t) => ({ ...t, offset: 0 })))
      assert.deepEqual(cfg, presetConfig(PRESETS[name]), name)
    }
  })

  it('is deterministic, and the seed changes the weights', () => {
    const a = bytesOf(synthModel({ preset: 'tiny', type: 'q4_0', seed: 1 }))
    const b = bytesOf(synthModel({ preset: 'tiny', type: 'q4_0', seed: 1 }))
    const c = bytesOf(synthModel({ preset: 'tiny', type: 'q4_0', seed: 2 }))
    assert.deepEqual(a, b)
    assert.equal(a.length, c.length)
    assert.notDeepEqual(a, c)
  })

  it('has golden model roots for tiny at seed 1', () => {
    const roots: Record<string, string> = {}
    for (const type of SYNTH_TYPES) {
      const bytes = bytesOf(synthModel({ preset: 'tiny', type, seed: 1 }))
      const src = bufferSource(bytes)
      const gguf = readGguf(src)
      roots[type] = toHex(computeGgufModelRoot(src, gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors)).modelRoot)
    }
    assert.deepEqual(roots, GOLDEN_TINY_SEED1)
  })

  it('applies the type rules: F32 vectors, Q8_0 fallback for 576-wide K-quant rows, Q4_K_M mix', () => {
    const smol = PRESETS['smol-135m']
    assert.equal(synthTensorType('blk.0.attn_norm.weight', [576], 'q4_k', 30, true), GGMLType.F32)
    assert.equal(synthTensorType('blk.0.attn_q.weight', [576, 576], 'q4_k', 30, true), GGMLType.Q8_0)
    assert.equal(synthTensorType('blk.0.ffn_down.weight', [1536, 576], 'q4_k', 30, true), GGMLType.Q4_K)
    assert.equal(synthTensorType('blk.0.attn_q.weight', [576, 576], 'q4_0', 30, true), GGMLType.Q4_0)
    assert.equal(synthTensorType('blk.0.attn_q.weight', [100, 576], 'q8_0', 30, true), GGMLType.F16)
    // Q4_K_M on TinyLlama shapes: use_more_bits layers (0, 1, 2, 5, ..., 19, 20, 21 for 22 layers) get Q6_K.
    const t = (name: string, dims: number[]) => synthTensorType(name, dims, 'q4_k_m', 22, false)
    assert.equal(t('output.weight', [2048, 32000]), GGMLType.Q6_K)
    assert.equal(t('token_embd.weight', [2048, 32000]), GGMLType.Q4_K)
    assert.equal(t('blk.0.attn_v.weight', [2048, 256]), GGMLType.Q6_K)
    assert.equal(t('blk.3.attn_v.weight', [2048, 256]), GGMLType.Q4_K)
    assert.equal(t('blk.4.ffn_down.weight', [5632, 2048]), GGMLType.Q6_K)
    assert.equal(t('blk.21.ffn_down.weight', [5632, 2048]), GGMLType.Q6_K)
    assert.equal(t('blk.3.attn_q.weight', [2048, 2048]), GGMLType.Q4_K)
    assert.equal(synthTensorType('token_embd.weight', [256, 1024], 'q4_k_m', 2, true), GGMLType.Q6_K)
    assert.equal(smol.tiedEmbeddings, true)
    // Q5_K_M: the same use_more_bits layers in Q6_K, the rest Q5_K
    const t5 = (name: string, dims: number[]) => synthTensorType(name, dims, 'q5_k_m', 22, false)
    assert.equal(t5('output.weight', [2048, 32000]), GGMLType.Q6_K)
    assert.equal(t5('token_embd.weight', [2048, 32000]), GGMLType.Q5_K)
    assert.equal(t5('blk.0.attn_v.weight', [2048, 256]), GGMLType.Q6_K)
    assert.equal(t5('blk.3.attn_v.weight', [2048, 256]), GGMLType.Q5_K)
    assert.equal(t5('blk.4.ffn_down.weight', [5632, 2048]), GGMLType.Q6_K)
    assert.equal(t5('blk.3.attn_q.weight', [2048, 2048]), GGMLType.Q5_K)
    assert.equal(synthTensorType('blk.0.attn_q.weight', [576, 576], 'q5_k', 30, true), GGMLType.Q8_0)
    // Q3_K_M and Q2_K on TinyLlama shapes (22 layers, 32 heads over 4 kv heads: gqa 8)
    const t3 = (name: string, dims: number[]) => synthTensorType(name, dims, 'q3_k_m', 22, false, 8)
    assert.equal(t3('output.weight', [2048, 32000]), GGMLType.Q6_K)
    assert.equal(t3('token_embd.weight', [2048, 32000]), GGMLType.Q3_K)
    assert.equal(t3('blk.1.attn_v.weight', [2048, 256]), GGMLType.Q5_K)
    assert.equal(t3('blk.2.attn_v.weight', [2048, 256]), GGMLType.Q4_K)
    assert.equal(t3('blk.0.ffn_down.weight', [5632, 2048]), GGMLType.Q5_K)
    assert.equal(t3('blk.1.ffn_down.weight', [5632, 2048]), GGMLType.Q4_K)
    assert.equal(t3('blk.7.attn_output.weight', [2048, 2048]), GGMLType.Q4_K)
    assert.equal(t3('blk.7.ffn_up.weight', [2048, 5632]), GGMLType.Q3_K)
    const t2 = (name: string, dims: number[], gqa: number) => synthTensorType(name, dims, 'q2_k', 22, false, gqa)
    assert.equal(t2('output.weight', [2048, 32000], 8), GGMLType.Q6_K)
    assert.equal(t2('blk.5.attn_v.weight', [2048, 256], 8), GGMLType.Q4_K)
    assert.equal(t2('blk.5.attn_v.weight', [2048, 2048], 1), GGMLType.Q3_K)
    assert.equal(t2('blk.5.ffn_down.weight', [5632, 2048], 8), GGMLType.Q3_K)
    assert.equal(t2('blk.5.attn_output.weight', [2048, 2048], 8), GGMLType.Q3_K)
    assert.equal(t2('blk.5.attn_q.weight', [2048, 2048], 8), GGMLType.Q2_K)
  })

  it('names the valid presets and types in its errors', () => {
    assert.throws(() => synthModel({ preset: 'gpt5', type: 'q8_0', seed: 1 }), (e: Error) => e.name === 'UnknownPresetError' && /tiny/.test(e.message))
    assert.throws(() => synthModel({ preset: 'tiny', type: 'q7_k', seed: 1 }), (e: Error) => e.name === 'UnknownWeightTypeError' && /q5_k_m/.test(e.message))
  })
})

/** Greedy decode by the float64 twin (test/support/forward64.ts; test-only, Math.exp is fine here): each generated token and its probability. */
function floatGreedy(c: ModelConfig, W: Record<string, Float32Array>, prompt: number[], nGen: number): { token: number; top1: number }[] {
  const f = new Forward64(c, (name) => W[name])
  let logits: Float64Array = new Float64Array(0)
  for (const t of prompt) logits = f.step(t)
  const out: { token: number; top1: number }[] = []
  for (let n = 0; n < nGen; n++) {
    let best = 0
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i
    let S = 0
    for (const z of logits) S += Math.exp(z - logits[best])
    out.push({ token: best, top1: 1 / S })
    if (n < nGen - 1) logits = f.step(best)
  }
  return out
}

describe('synthetic weights behave like a language model (float forward)', () => {
  for (const preset of ['tiny', 'tiny-qwen2', 'tiny-bpe']) {
    it(`${preset}: peaked but not one-hot logits, no single-token collapse`, () => {
      const spec = synthModel({ preset, type: 'f32', seed: 1 })
      const W: Record<string, Float32Array> = {}
      for (const t of spec.tensors) W[t.name] = dequantize(t.type, Buffer.concat([...t.data()]))
      const steps = floatGreedy(presetConfig(PRESETS[preset]), W, [1, 300, 400, 500], 24)
      const top1 = steps.map((s) => s.top1).sort((a, b) => a - b)
      const median = top1[top1.length >> 1]
      assert.ok(median > 0.08 && median < 0.9, `median top-1 probability ${median}`)
      assert.ok(top1[top1.length - 1] < 0.99, 'never one-hot')
      const tokens = steps.map((s) => s.token)
      assert.ok(new Set(tokens).size >= tokens.length / 2, `distinct tokens ${new Set(tokens).size}/${tokens.length}: ${tokens.join(' ')}`)
      let run = 1
      for (let i = 1; i < tokens.length; i++) {
        run = tokens[i] === tokens[i - 1] ? run + 1 : 1
        assert.ok(run < 4, `token ${tokens[i]} repeats ${run} times`)
      }
    })
  }
})
