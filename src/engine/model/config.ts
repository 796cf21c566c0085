/**
 * The model hyper-parameters the engine needs, read from GGUF metadata with llama.cpp's key names
 * (`{arch}.embedding_length`, ...), and a check that every tensor the forward pass reads exists
 * with the shape those parameters imply. GGUF shapes are ne0-first: a weight `W` used as
 * `y = W x` with `x` of length `cols` and `y` of length `rows` is stored with dims `[cols, rows]`.
 *
 * Architectures: `llama`; `qwen2` (q/k/v biases, NEOX RoPE); `qwen3` (per-head q/k RMSNorm
 * before RoPE, NEOX RoPE, no biases, head size from `{arch}.attention.key_length`). Any of them
 * may carry `{arch}.attention.sliding_window`.
 *
 * Legend: `dim` model width, `nHead`/`nKvHead` query/key-value heads, `headDim` per-head width,
 * `kvDim = nKvHead * headDim`, `ffDim` FFN width, `vocabSize` rows of the token embedding.
 */
import { BaseError } from '../../errors.js'
import { GgufMetadataError } from '../gguf/errors.js'
import type { GgufMetadata, GgufTensorInfo } from '../gguf/types.js'

export type Architecture = 'llama' | 'qwen2' | 'qwen3'
export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = ['llama', 'qwen2', 'qwen3']

/** Whether `arch` names an architecture the engine implements. */
export function isSupportedArchitecture(arch: string): arch is Architecture {
  return (SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)
}

export type ModelConfig = {
  arch: Architecture
  dim: number
  nLayer: number
  nHead: number
  nKvHead: number
  headDim: number
  ffDim: number
  vocabSize: number
  contextLength: number
  /** RoPE base frequency (binary32 value as stored). */
  ropeBase: number
  /** RMSNorm epsilon (binary32 value as stored). */
  rmsEps: number
  /** qwen2: q/k/v projections carry biases. */
  hasQkvBias: boolean
  /**
   * qwen3: each head of q and k is RMS-normalized (weights `attn_q_norm` / `attn_k_norm`, headDim
   * values, shared by all heads) after the projection and before RoPE.
   */
  hasQkNorm: boolean
  /**
   * Sliding-window attention (`{arch}.attention.sliding_window`): the query at position p attends
   * to positions max(0, p - W + 1) .. p only. Absent when the file has no window or W >=
   * contextLength (then it is full causal attention).
   */
  slidingWindow?: number
  /** No `output.weight`: the logits use the token embedding. */
  tiedEmbeddings: boolean
}

/** `general.architecture` names a model family the engine does not implement. */
export class UnsupportedArchitectureError extends BaseError {
  override name = 'UnsupportedArchitectureError'
  constructor(arch: string) {
    super(`unsupported model architecture "${arch}"`, { details: `supported: ${SUPPORTED_ARCHITECTURES.join(', ')}`, docs: 'docs/GGUF.md' })
  }
}

/** A tensor is missing, unexpected, or has a shape that does not match the model config. */
export class TensorShapeError extends BaseError {
  override name = 'TensorShapeError'
  constructor(message: string) {
    super(message, { docs: 'docs/GGUF.md' })
  }
}

function getUint(md: GgufMetadata, key: string, fallback?: number): number {
  const v = md.get(key)
  if (v === undefined) {
    if (fallback !== undefined) return fallback
    throw new GgufMetadataError(`missing metadata key ${key}`)
  }
  if (v.type === 'uint64' || v.type === 'int64') {
    if (v.value < 0n || v.value > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufMetadataError(`metadata ${key} = ${v.value} is out of range`)
    return Number(v.value)
  }
  if (v.type === 'uint8' || v.type === 'uint16' || v.type === 'uint32' || v.type === 'int8' || v.type === 'int16' || v.type === 'int32') {
    if (v.value < 0) throw new GgufMetadataError(`metadata ${key} = ${v.value} is negative`)
    return v.value
  }
  throw new GgufMetadataError(`metadata ${key} has type ${v.type}, expected an unsigned integer`)
}

function getFloat(md: GgufMetadata, key: string, fallback?: number): number {
  const v = md.get(key)
  if (v === undefined) {
    if (fallback !== undefined) return fallback
    throw new GgufMetadataError(`missing metadata key ${key}`)
  }
  // float64 values are narrowed: the engine computes in binary32 only.
  if (v.type === 'float32' || v.type === 'float64') return Math.fround(v.value)
  throw new GgufMetadataError(`metadata ${key} has type ${v.type}, expected float32`)
}

/**
 * Builds the `ModelConfig` from GGUF metadata and tensor infos. `tiedEmbeddings` is decided by
 * the absence of `output.weight`; `vocabSize` comes from `{arch}.vocab_size`, else the token
 * list, else the embedding's row count. Throws `UnsupportedArchitectureError`,
 * `GgufMetadataError` (missing or mistyped key) or `TensorShapeError` (see `validateTensors`).
 *
 * @example
 *   const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
 */
export function modelConfigFromGguf(md: GgufMetadata, tensors: readonly GgufTensorInfo[]): ModelConfig {
  const archV = md.get('general.architecture')
  if (archV === undefined) throw new GgufMetadataError('missing metadata key general.architecture')
  if (archV.type !== 'string') throw new GgufMetadataError(`metadata general.architecture has type ${archV.type}, expected string`)
  const arch = archV.value
  if (!isSupportedArchitecture(arch)) throw new UnsupportedArchitectureError(arch)
  const p = (k: string) => `${arch}.${k}`

  const dim = getUint(md, p('embedding_length'))
  const nLayer = getUint(md, p('block_count'))
  const nHead = getUint(md, p('attention.head_count'))
  const nKvHead = getUint(md, p('attention.head_count_kv'), nHead)
  if (nHead === 0 || dim % nHead !== 0) throw new GgufMetadataError(`${p('attention.head_count')} = ${nHead} does not divide the width ${dim}`)
  if (nKvHead === 0 || nHead % nKvHead !== 0) throw new GgufMetadataError(`${p('attention.head_count_kv')} = ${nKvHead} does not divide the head count ${nHead}`)
  const headDim = getUint(md, p('attention.key_length'), dim / nHead)
  const valueDim = getUint(md, p('attention.value_length'), headDim)
  if (valueDim !== headDim) throw new GgufMetadataError(`${p('attention.value_length')} = ${valueDim} differs from the key length ${headDim}`)
  const ropeDims = getUint(md, p('rope.dimension_count'), headDim)
  if (ropeDims !== headDim) throw new GgufMetadataError(`partial RoPE is not supported: ${p('rope.dimension_count')} = ${ropeDims}, head size ${headDim}`)
  if (headDim % 2 !== 0) throw new GgufMetadataError(`head size ${headDim} is odd; RoPE needs pairs`)
  if (md.has(p('rope.scaling.type'))) {
    const t = md.get(p('rope.scaling.type'))
    if (!(t?.type === 'string' && t.value === 'none')) throw new GgufMetadataError(`RoPE scaling (${p('rope.scaling.type')}) is not supported`)
  }

  const embd = tensors.find((t) => t.name === 'token_embd.weight')
  const tokens = md.get('tokenizer.ggml.tokens')
  const contextLength = getUint(md, p('context_length'))
  const window = md.has(p('attention.sliding_window')) ? getUint(md, p('attention.sliding_window')) : undefined
  if (window === 0) throw new GgufMetadataError(`${p('attention.sliding_window')} = 0: a window must hold at least the current position`)
  const vocabSize = getUint(md, p('vocab_size'), tokens?.type === 'array' ? tokens.value.length : (embd?.dims[1] ?? 0))
  if (vocabSize === 0) throw new GgufMetadataError(`cannot tell the vocabulary size: no ${p('vocab_size')}, token list or token_embd.weight`)

  const config: ModelConfig = {
    arch,
    dim,
    nLayer,
    nHead,
    nKvHead,
    headDim,
    ffDim: getUint(md, p('feed_forward_length')),
    vocabSize,
    contextLength,
    ropeBase: getFloat(md, p('rope.freq_base'), 10000),
    rmsEps: getFloat(md, p('attention.layer_norm_rms_epsilon')),
    hasQkvBias: arch === 'qwen2',
    hasQkNorm: arch === 'qwen3',
    tiedEmbeddings: !tensors.some((t) => t.name === 'output.weight'),
  }
  if (window !== undefined && window < contextLength) config.slidingWindow = window
  validateTensors(config, tensors)
  return config
}

/**
 * Every tensor the forward pass of `config` reads, with its expected ne0-first dims.
 * Order: embedding, layers in order, final norm, output.
 */
export function expectedTensors(config: ModelConfig): { name: string; dims: number[] }[] {
  const { dim, headDim, nHead, nKvHead, ffDim, vocabSize } = config
  const qDim = nHead * headDim
  const kvDim = nKvHead * headDim
  const out: { name: string; dims: number[] }[] = [{ name: 'token_embd.weight', dims: [dim, vocabSize] }]
  for (let l = 0; l < config.nLayer; l++) {
    const b = `blk.${l}.`
    out.push(
      { name: `${b}attn_norm.weight`, dims: [dim] },
      { name: `${b}attn_q.weight`, dims: [dim, qDim] },
      { name: `${b}attn_k.weight`, dims: [dim, kvDim] },
      { name: `${b}attn_v.weight`, dims: [dim, kvDim] },
    )
    if (config.hasQkvBias) {
      out.push({ name: `${b}attn_q.bias`, dims: [qDim] }, { name: `${b}attn_k.bias`, dims: [kvDim] }, { name: `${b}attn_v.bias`, dims: [kvDim] })
    }
    if (config.hasQkNorm) out.push({ name: `${b}attn_q_norm.weight`, dims: [headDim] }, { name: `${b}attn_k_norm.weight`, dims: [headDim] })
    out.push(
      { name: `${b}attn_output.weight`, dims: [qDim, dim] },
      { name: `${b}ffn_norm.weight`, dims: [dim] },
      { name: `${b}ffn_gate.weight`, dims: [dim, ffDim] },
      { name: `${b}ffn_up.weight`, dims: [dim, ffDim] },
      { name: `${b}ffn_down.weight`, dims: [ffDim, dim] },
    )
  }
  out.push({ name: 'output_norm.weight', dims: [dim] })
  if (!config.tiedEmbeddings) out.push({ name: 'output.weight', dims: [dim, vocabSize] })
  return out
}

/**
 * Checks that the file holds exactly the tensors `config` needs, each with the expected shape;
 * the first problem is thrown as `TensorShapeError` naming the tensor, e.g.
 * "tensor blk.3.attn_k.weight has shape [576, 192], expected [576, 64]".
 */
export function validateTensors(config: ModelConfig, tensors: readonly GgufTensorInfo[]): void {
  const byName = new Map(tensors.map((t) => [t.name, t]))
  const expected = expectedTensors(config)
  for (const e of expected) {
    const t = byName.get(e.name)
    if (!t) throw new TensorShapeError(`missing tensor ${e.name} (expected shape [${e.dims.join(', ')}])`)
    // A trailing dimension of 1 is the same shape (some writers store vectors as [n, 1]).
    const dims = t.dims.length > e.dims.length && t.dims.slice(e.dims.length).every((d) => d === 1) ? t.dims.slice(0, e.dims.length) : t.dims
    if (dims.length !== e.dims.length || dims.some((d, i) => d !== e.dims[i])) {
      throw new TensorShapeError(`tensor ${e.name} has shape [${t.dims.join(', ')}], expected [${e.dims.join(', ')}]`)
    }
  }
  const known = new Set(expected.map((e) => e.name))
  for (const t of tensors) {
    if (!known.has(t.name)) throw new TensorShapeError(`unexpected tensor ${t.name}: the ${config.arch} forward pass does not use it`)
  }
}
