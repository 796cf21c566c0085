import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeAbiParameters, toHex as viemHex } from 'viem'
import { toHex } from '../bytes.js'
import { leafHash } from '../hash/merkle.js'
import { modelConfigFromGguf } from '../model/config.js'
import { synthModel } from '../model/synth.js'
import { createTokenizer } from '../tokenizer/index.js'
import { CONFIG_TAG, CONFIG_TAG_WINDOW, configLeafDataV3, encodeConfigV3, encodeModelConfigV3, type ModelConfigV3, modelConfigV3 } from './configLeaf.js'
import { configLeafData, tokenizerHash } from './modelRoot.js'

/** The struct as ModelRegistry.sol declares it, for viem's encoder. */
const STRUCT = {
  type: 'tuple',
  components: [
    { name: 'arch', type: 'uint8' },
    { name: 'nLayer', type: 'uint32' },
    { name: 'dim', type: 'uint32' },
    { name: 'nHead', type: 'uint32' },
    { name: 'nKvHead', type: 'uint32' },
    { name: 'headDim', type: 'uint32' },
    { name: 'ffDim', type: 'uint32' },
    { name: 'vocab', type: 'uint32' },
    { name: 'contextLength', type: 'uint32' },
    { name: 'ropeBaseBits', type: 'uint32' },
    { name: 'rmsEpsBits', type: 'uint32' },
    { name: 'tiedEmbeddings', type: 'bool' },
    { name: 'eogTokens', type: 'uint32[]' },
  ],
} as const

function tinyConfig(preset: string) {
  const spec = synthModel({ preset, type: 'q8_0', seed: 1 })
  const config = modelConfigFromGguf(
    spec.metadata,
    spec.tensors.map((t) => ({ ...t, offset: 0 })),
  )
  return { config, metadata: spec.metadata, tokenizer: createTokenizer(spec.metadata) }
}

describe('config leaf v3', () => {
  it('encodes ModelConfigV3 exactly as abi.encode (viem) does, with and without end tokens', () => {
    const base: ModelConfigV3 = {
      arch: 2,
      nLayer: 30,
      dim: 576,
      nHead: 9,
      nKvHead: 3,
      headDim: 64,
      ffDim: 1536,
      vocab: 49152,
      contextLength: 8192,
      ropeBaseBits: 0x471c4000,
      rmsEpsBits: 0x3727c5ac,
      tiedEmbeddings: true,
      eogTokens: [0, 2, 49151],
    }
    for (const c of [base, { ...base, eogTokens: [], tiedEmbeddings: false, arch: 1 }]) {
      const want = encodeAbiParameters([STRUCT], [{ ...c, eogTokens: [...c.eogTokens] }])
      assert.equal(`0x${toHex(encodeModelConfigV3(c))}`, want)
    }
    assert.throws(() => encodeModelConfigV3({ ...base, arch: 256 }), { name: 'GgufFormatError' })
    assert.throws(() => encodeModelConfigV3({ ...base, nLayer: 2 ** 32 }), { name: 'GgufFormatError' })
  })

  it('takes the engine config field by field, floats as binary32 bits, end tokens sorted and distinct', () => {
    for (const preset of ['tiny', 'tiny-qwen2', 'tiny-bpe']) {
      const { config, tokenizer } = tinyConfig(preset)
      const v3 = modelConfigV3(config, { eogTokens: [...tokenizer.eogTokens, ...tokenizer.eogTokens].reverse() })
      assert.equal(v3.arch, config.arch === 'llama' ? 1 : 2)
      assert.deepEqual(
        [v3.nLayer, v3.dim, v3.nHead, v3.nKvHead, v3.headDim, v3.ffDim, v3.vocab, v3.contextLength, v3.tiedEmbeddings],
        [config.nLayer, config.dim, config.nHead, config.nKvHead, config.headDim, config.ffDim, config.vocabSize, config.contextLength, config.tiedEmbeddings],
      )
      assert.equal(new Float32Array(new Uint32Array([v3.ropeBaseBits]).buffer)[0], config.ropeBase)
      assert.equal(new Float32Array(new Uint32Array([v3.rmsEpsBits]).buffer)[0], config.rmsEps)
      assert.deepEqual(
        v3.eogTokens,
        [...tokenizer.eogTokens].sort((a, b) => a - b),
      )
      assert.ok(v3.eogTokens.length > 0, `${preset} has end-of-generation tokens`)
    }
  })

  it("leaf data = tag || abi.encode(config) || tokenizer hash, and the default end tokens are the tokenizer's", () => {
    const { config, metadata, tokenizer } = tinyConfig('tiny-bpe')
    const leaf = configLeafData(config, metadata)
    const enc = encodeConfigV3(config, tokenizer)
    assert.equal(toHex(leaf), toHex(new Uint8Array([...new TextEncoder().encode(CONFIG_TAG), ...enc, ...tokenizerHash(metadata)])))
    assert.equal(toHex(leaf), toHex(configLeafData(config, metadata, tokenizer)))
    assert.equal(toHex(leaf), toHex(configLeafDataV3(modelConfigV3(config, tokenizer), tokenizerHash(metadata))))
    assert.equal(viemHex(leaf.subarray(0, 16)), viemHex(new TextEncoder().encode('tessera-config/3')))
  })

  it('qwen3 is arch 3; a sliding window gets the +window leaf (window LE after the tag), unlike the same model without it', () => {
    const { config, metadata, tokenizer } = tinyConfig('tiny-qwen3')
    assert.equal(modelConfigV3(config, tokenizer).arch, 3)
    const plain = configLeafData(config, metadata, tokenizer)
    const windowed = configLeafData({ ...config, slidingWindow: 100 }, metadata, tokenizer)
    const tag = new TextEncoder().encode(CONFIG_TAG_WINDOW)
    assert.equal(toHex(windowed), toHex(new Uint8Array([...tag, 100, 0, 0, 0, ...encodeConfigV3(config, tokenizer), ...tokenizerHash(metadata)])))
    assert.notEqual(toHex(leafHash(windowed)), toHex(leafHash(plain)))
    // the struct itself (what the registry hashes) has no window
    assert.equal(toHex(encodeModelConfigV3(modelConfigV3({ ...config, slidingWindow: 100 }, tokenizer))), toHex(encodeConfigV3(config, tokenizer)))
  })

  it('golden config leaf hashes (tiny, tiny-qwen2 at seed 1): a change here changes every model root', () => {
    const got = Object.fromEntries(
      ['tiny', 'tiny-qwen2'].map((p) => {
        const { config, metadata } = tinyConfig(p)
        return [p, toHex(leafHash(configLeafData(config, metadata)))]
      }),
    )
    assert.deepEqual(got, GOLDEN)
  })
})

const GOLDEN = {
  tiny: 'ab0012c0d37de41b7b21d2c1bacd49d1859cff5a5eb91106b7493d72eb6f541e',
  'tiny-qwen2': '9fa0750b8e2504c8fee7b1c0397839143a09d0f60924e7a318af180a7f5a136c',
}
