/**
 * The config leaf of the model root, version 3 (docs/TRACE.md "Model root", docs/MACHINE.md
 * "Config leaf, version 3"): leaf 0 of the model tree, in a form the contracts can decode, so the
 * registry and the dispute game read a model's shape from the model root instead of trusting
 * whoever registers it.
 *
 *   config leaf = "tessera-config/3" || abi.encode(ModelConfigV3) || SHA-256(canonical tokenizer JSON)
 *   ModelConfigV3 = (uint8 arch, uint32 nLayer, uint32 dim, uint32 nHead, uint32 nKvHead,
 *                    uint32 headDim, uint32 ffDim, uint32 vocab, uint32 contextLength,
 *                    uint32 ropeBaseBits, uint32 rmsEpsBits, bool tiedEmbeddings, uint32[] eogTokens)
 *
 * arch 1 = llama, 2 = qwen2 (qwen2 implies the q/k/v biases), 3 = qwen3 (per-head q/k norms); the two floats as their binary32
 * bits; eogTokens the tokenizer's end-of-generation ids, sorted ascending, distinct. The ABI
 * encoding is Solidity's `abi.encode(config)` of the struct (a dynamic tuple: one offset word,
 * then the tuple), written here by hand so the engine needs no chain library.
 *
 * A sliding-window model (ModelConfig.slidingWindow) has another leaf, so that its root can never
 * be the root of the same weights without the window:
 *
 *   config leaf = "tessera-config/3+window" || u32 window (LE) || abi.encode(ModelConfigV3) || tokenizer hash
 *
 * `ModelRegistry.register` takes W (0 for the plain leaf) and checks this leaf, and records W
 * (`windowOf`), which the dispute machine reads for its attention ops (docs/MACHINE.md "Sliding
 * window"): a windowed model is settled and disputed on chain like any other.
 */
import { concatBytes, f32ToBits } from '../bytes.js'
import { type Hash, sha256 } from '../hash/merkle.js'
import type { Architecture, ModelConfig } from '../model/config.js'
import { GgufFormatError } from './errors.js'

/** Version tag of the config leaf, and so of the whole model-root format (3: ABI-encoded config). */
export const CONFIG_TAG = 'tessera-config/3'
/** Tag of a sliding-window model's config leaf (see the module comment). */
export const CONFIG_TAG_WINDOW = 'tessera-config/3+window'

/** Architecture ids of `ModelConfigV3.arch`. */
export const ARCH_ID: Readonly<Record<Architecture, number>> = { llama: 1, qwen2: 2, qwen3: 3 }

/** The config the contracts decode; field names and order are the Solidity struct's (ModelRegistry.sol). */
export type ModelConfigV3 = {
  arch: number
  nLayer: number
  dim: number
  nHead: number
  nKvHead: number
  headDim: number
  ffDim: number
  vocab: number
  contextLength: number
  ropeBaseBits: number
  rmsEpsBits: number
  tiedEmbeddings: boolean
  eogTokens: readonly number[]
  /**
   * Not a field of the Solidity struct (never ABI-encoded): the attention window of a
   * sliding-window model, which gives it the `+window` config leaf.
   */
  slidingWindow?: number
}

/** What the config leaf needs of a tokenizer: its end-of-generation ids (`Tokenizer.eogTokens`). */
export type ConfigTokenizer = { readonly eogTokens: Iterable<number> }

/** The `ModelConfigV3` of an engine config and its tokenizer. */
export function modelConfigV3(config: ModelConfig, tokenizer: ConfigTokenizer): ModelConfigV3 {
  return {
    arch: ARCH_ID[config.arch],
    nLayer: config.nLayer,
    dim: config.dim,
    nHead: config.nHead,
    nKvHead: config.nKvHead,
    headDim: config.headDim,
    ffDim: config.ffDim,
    vocab: config.vocabSize,
    contextLength: config.contextLength,
    ropeBaseBits: f32ToBits(config.ropeBase),
    rmsEpsBits: f32ToBits(config.rmsEps),
    tiedEmbeddings: config.tiedEmbeddings,
    eogTokens: [...new Set(tokenizer.eogTokens)].sort((a, b) => a - b),
    ...(config.slidingWindow === undefined ? {} : { slidingWindow: config.slidingWindow }),
  }
}

const U32_FIELDS = ['nLayer', 'dim', 'nHead', 'nKvHead', 'headDim', 'ffDim', 'vocab', 'contextLength', 'ropeBaseBits', 'rmsEpsBits'] as const

/** Solidity's `abi.encode(c)` of a `ModelConfigV3` (its words big-endian). */
export function encodeModelConfigV3(c: ModelConfigV3): Uint8Array {
  const words = [0x20, c.arch, ...U32_FIELDS.map((k) => c[k]), c.tiedEmbeddings ? 1 : 0, 13 * 32, c.eogTokens.length, ...c.eogTokens]
  const out = new Uint8Array(32 * words.length)
  const dv = new DataView(out.buffer)
  words.forEach((w, i) => {
    const max = i === 1 ? 0xff : 0xffffffff
    if (!(Number.isInteger(w) && w >= 0 && w <= max)) throw new GgufFormatError(`config field ${i === 1 ? 'arch' : `word ${i}`} = ${w} does not fit ModelConfigV3`)
    dv.setUint32(32 * i + 28, w)
  })
  return out
}

/**
 * `abi.encode(ModelConfigV3)` of an engine config and its tokenizer: the middle part of the
 * config leaf, and what `ModelRegistry.register` takes (as the struct).
 *
 * @example
 *   const bytes = encodeConfigV3(model.transformer.config, model.tokenizer)
 */
export function encodeConfigV3(config: ModelConfig, tokenizer: ConfigTokenizer): Uint8Array {
  return encodeModelConfigV3(modelConfigV3(config, tokenizer))
}

/** Config leaf data (before `leafHash`) from the struct and the tokenizer hash (a window: the `+window` leaf). */
export function configLeafDataV3(config: ModelConfigV3, tokenizerHash: Uint8Array): Uint8Array {
  if (tokenizerHash.length !== 32) throw new RangeError(`tokenizer hash has ${tokenizerHash.length} bytes, expected 32`)
  const w = config.slidingWindow
  if (w === undefined) return concatBytes(new TextEncoder().encode(CONFIG_TAG), encodeModelConfigV3(config), tokenizerHash)
  if (!(Number.isInteger(w) && w >= 1 && w <= 0xffffffff)) throw new GgufFormatError(`config sliding window ${w} does not fit a u32`)
  const wb = new Uint8Array(4)
  new DataView(wb.buffer).setUint32(0, w, true)
  return concatBytes(new TextEncoder().encode(CONFIG_TAG_WINDOW), wb, encodeModelConfigV3(config), tokenizerHash)
}

/** SHA-256 of `abi.encode(config)`: the config hash the registry stores. */
export function configHashV3(config: ModelConfigV3): Hash {
  return sha256(encodeModelConfigV3(config))
}
