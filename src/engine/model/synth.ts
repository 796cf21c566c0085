/**
 * Synthetic models: a GGUF spec with real llama/qwen2/qwen3 shapes, a tokenizer, and deterministic
 * pseudo-random weights, for tests and benchmarks where no real weights can be downloaded.
 *
 * Weights come from xoshiro128** seeded per tensor by (seed, "preset/tensor name"), so any one
 * tensor can be regenerated alone and the file is a pure function of (preset, type, seed). Matrices
 * are uniform in [-a, a] (a = std * sqrt(3)); the scales keep the forward pass well-behaved
 * through every layer:
 *   q, k, v, gate, up:  std 1/sqrt(fan_in)           -> O(1) pre-activations, attention scores ~ N(0, 1)
 *   attn_output, down:  std RESID_GAIN/sqrt(fan_in)  -> each layer adds O(1) to the residual
 *   token_embd:         random signs, +-1            -> the token enters the residual at the same
 *                                                       O(1) scale as the layers add
 *   output.weight:      std logitStd/sqrt(dim)   -> logits ~ N(0, logitStd^2) (logitStd per preset): peaked, not one-hot
 *   output_norm:        pairs (+m, -m), m uniform in [0.9, 1.1] (times logitStd/sqrt(dim) when tied)
 *   other norms:        uniform in [0.9, 1.1] (qwen3's per-head q/k norms too);  q/k/v biases (qwen2): uniform std 0.1
 * Why the signs: with tied embeddings the current token's embedding e, still in the residual x,
 * would add sum_i g_i e_i^2 / rms(x) to its own logit (g = output_norm) and greedy decoding would
 * repeat the input token. With e_i^2 = 1 for every i and g summing to exactly zero in (+m, -m)
 * pairs, that self-bias is exactly 0 (in F32/F16/BF16/Q8_0; nearly 0 in the 4-bit types).
 *
 * Type rules (docs/GGUF.md): norms and biases stay F32; `q4_k_m` puts output (or the tied
 * token_embd) and attn_v / ffn_down of llama.cpp's "use_more_bits" layers in Q6_K, the rest Q4_K;
 * `q5_k_m` is the same mix over Q5_K (llama.cpp's Q5_K_M rules); `q5_k`, `q4_1`, `q5_0`, `q5_1` are
 * that type throughout (as `q4_0`, `q8_0`); `q3_k_m` and `q2_k` follow llama.cpp's Q3_K_M and Q2_K
 * rules (llama_tensor_get_type; `gqa` = heads per kv head): output (or the tied token_embd) Q6_K;
 * Q3_K_M: attn_v Q5_K in layers 0-1 else Q4_K, ffn_down Q5_K in the first sixteenth of the
 * layers else Q4_K, attn_output Q4_K, the rest Q3_K; Q2_K: attn_v Q4_K (gqa >= 4) or Q3_K,
 * ffn_down and attn_output Q3_K, the rest Q2_K;
 * a tensor whose row length is not a multiple of its type's block size falls back to Q8_0
 * (or F16 when not even a multiple of 32).
 */
import { BaseError } from '../../errors.js'
import { quantizeInto } from '../gguf/quantize.js'
import { BLOCK, GGMLType, type GgufMetadata, type GgufValue, gv, rowBytes } from '../gguf/types.js'
import type { GgufSpec, GgufTensorSpec } from '../gguf/write.js'
import { synthTokenizerMetadata } from '../tokenizer/synth.js'
import { type Architecture, expectedTensors, isSupportedArchitecture, type ModelConfig, SUPPORTED_ARCHITECTURES } from './config.js'
import { type ModelPreset, PRESETS } from './presets.js'

export const SYNTH_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q6_k', 'q4_k_m', 'q5_k', 'q5_k_m', 'q4_1', 'q5_0', 'q5_1', 'q3_k_m', 'q2_k'] as const
export type SynthType = (typeof SYNTH_TYPES)[number]

/** Residual-branch gain: each layer's attention and FFN output adds roughly this std per element. */
const RESID_GAIN = 1

export class UnknownPresetError extends BaseError {
  override name = 'UnknownPresetError'
  constructor(preset: string) {
    super(`unknown model preset "${preset}"`, { details: `valid presets: ${Object.keys(PRESETS).join(', ')}`, docs: 'docs/GGUF.md' })
  }
}

export class UnknownWeightTypeError extends BaseError {
  override name = 'UnknownWeightTypeError'
  constructor(type: string) {
    super(`unknown weight type "${type}"`, { details: `valid types: ${SYNTH_TYPES.join(', ')}`, docs: 'docs/GGUF.md' })
  }
}

/** Tokenizer metadata for a preset: `tokenizer.ggml.*` keys (see src/engine/tokenizer/synth.ts). */
export type TokenizerMetadataFn = (opts: { kind: 'spm' | 'bpe'; pre?: 'llama-bpe' | 'qwen2'; vocabSize: number; seed?: number }) => Record<string, GgufValue>

export type SynthOptions = {
  preset: string
  type: string
  seed: number
  /** Another architecture for the preset's shapes (`--arch`): `qwen3` adds per-head q/k norms. */
  arch?: string
  /** Writes `{arch}.attention.sliding_window` = this (attention over the last W positions). */
  slidingWindow?: number
  /** Produces the tokenizer keys; defaults to `synthTokenizerMetadata` (trained on its built-in text). */
  tokenizer?: TokenizerMetadataFn
  /** A Jinja chat template written as `tokenizer.chat_template` (none by default, as before). */
  chatTemplate?: string
}

/** llama.cpp's `llama_ftype` for `general.file_type` (informational for readers). */
const FILE_TYPE: Record<SynthType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k: 14, q4_k_m: 15, q5_k: 16, q5_k_m: 17, q6_k: 18, bf16: 32, q4_1: 3, q5_0: 8, q5_1: 9, q2_k: 10, q3_k_m: 12 }
const BASE_TYPE: Record<SynthType, number> = {
  f32: GGMLType.F32, f16: GGMLType.F16, bf16: GGMLType.BF16, q8_0: GGMLType.Q8_0, q4_0: GGMLType.Q4_0,
  q4_k: GGMLType.Q4_K, q6_k: GGMLType.Q6_K, q4_k_m: GGMLType.Q4_K, q5_k: GGMLType.Q5_K, q5_k_m: GGMLType.Q5_K,
  q4_1: GGMLType.Q4_1, q5_0: GGMLType.Q5_0, q5_1: GGMLType.Q5_1, q3_k_m: GGMLType.Q3_K, q2_k: GGMLType.Q2_K,
}

/** `arch` names no architecture the synthesizer can write. */
export class UnknownArchitectureOptionError extends BaseError {
  override name = 'UnknownArchitectureOptionError'
  constructor(arch: string) {
    super(`unknown architecture "${arch}"`, { details: `valid architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`, docs: 'docs/GGUF.md' })
  }
}

/** The `ModelConfig` a preset describes (with `arch` instead of the preset's when given). */
export function presetConfig(p: ModelPreset, arch: Architecture = p.arch): ModelConfig {
  return {
    arch, dim: p.dim, nLayer: p.nLayer, nHead: p.nHead, nKvHead: p.nKvHead, headDim: p.headDim ?? p.dim / p.nHead,
    ffDim: p.ffDim, vocabSize: p.vocabSize, contextLength: p.contextLength,
    ropeBase: Math.fround(p.ropeBase), rmsEps: Math.fround(p.rmsEps), hasQkvBias: arch === 'qwen2', hasQkNorm: arch === 'qwen3', tiedEmbeddings: p.tiedEmbeddings,
  }
}

/** llama.cpp's `use_more_bits(i_layer, n_layers)`: the first and last eighth, and every third layer between. */
function useMoreBits(layer: number, nLayer: number): boolean {
  const e = Math.floor(nLayer / 8)
  return layer < e || layer >= 7 * e || (layer - e) % 3 === 2
}

/**
 * The ggml type a tensor gets in a file of `type`: see the module comment for the rules.
 * `dims` are ne0-first.
 */
export function synthTensorType(name: string, dims: readonly number[], type: SynthType, nLayer: number, tied: boolean, gqa = 1): number {
  if (dims.length === 1) return GGMLType.F32
  let t = BASE_TYPE[type]
  if (type === 'q3_k_m' || type === 'q2_k') {
    const m = /^blk\.(\d+)\.(attn_v|ffn_down|attn_output)\.weight$/.exec(name)
    const layer = m ? Number(m[1]) : 0
    if (name === 'output.weight' || (tied && name === 'token_embd.weight')) t = GGMLType.Q6_K
    else if (m?.[2] === 'attn_v') t = type === 'q3_k_m' ? (layer < 2 ? GGMLType.Q5_K : GGMLType.Q4_K) : gqa >= 4 ? GGMLType.Q4_K : GGMLType.Q3_K
    else if (m?.[2] === 'ffn_down') t = type === 'q3_k_m' ? (layer < Math.floor(nLayer / 16) ? GGMLType.Q5_K : GGMLType.Q4_K) : GGMLType.Q3_K
    else if (m?.[2] === 'attn_output') t = type === 'q3_k_m' ? GGMLType.Q4_K : GGMLType.Q3_K
  }
  if (type === 'q4_k_m' || type === 'q5_k_m') {
    const m = /^blk\.(\d+)\.(attn_v|ffn_down)\.weight$/.exec(name)
    if (name === 'output.weight' || (tied && name === 'token_embd.weight')) t = GGMLType.Q6_K
    else if (m && useMoreBits(Number(m[1]), nLayer)) t = GGMLType.Q6_K
  }
  if (dims[0] % BLOCK[t].size !== 0) t = dims[0] % 32 === 0 ? GGMLType.Q8_0 : GGMLType.F16
  return t
}

/** FNV-1a of a string, to derive a per-tensor stream from the seed. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** SplitMix32-style finalizer, to spread seed bits into xoshiro's four state words. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}

/**
 * Fills `out` with uniform values in [lo, hi) from a xoshiro128** stream; `state` (4 words)
 * advances, so consecutive calls continue the stream.
 */
function fillUniform(state: Uint32Array, out: Float32Array, n: number, lo: number, hi: number): void {
  let s0 = state[0], s1 = state[1], s2 = state[2], s3 = state[3]
  const scale = (hi - lo) * 2 ** -32
  for (let i = 0; i < n; i++) {
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0
    const t = s1 << 9
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = rotl(s3, 11)
    out[i] = lo + r * scale
  }
  state[0] = s0; state[1] = s1; state[2] = s2; state[3] = s3
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

function seedState(seed: number, name: string): Uint32Array {
  const lo = seed >>> 0
  const hi = Math.floor(seed / 2 ** 32) >>> 0
  const h = fnv1a(name)
  const st = new Uint32Array(4)
  let x = mix32(lo ^ 0x9e3779b9) ^ mix32(hi ^ 0x7f4a7c15) ^ h
  for (let i = 0; i < 4; i++) {
    x = mix32(x + 0x9e3779b9 + i)
    st[i] = x
  }
  if ((st[0] | st[1] | st[2] | st[3]) === 0) st[0] = 1 // xoshiro's one forbidden state
  return st
}

/** How a tensor's values are drawn: uniform in [lo, hi), then optionally reshaped (module comment). */
type WeightLaw = { lo: number; hi: number; post?: 'signs' | 'pairs' }

function weightLaw(name: string, dims: readonly number[], config: ModelConfig, logitStd: number): WeightLaw {
  const sqrt3 = Math.sqrt(3)
  const logitScale = logitStd / Math.sqrt(config.dim)
  if (name === 'token_embd.weight') return { lo: -1, hi: 1, post: 'signs' }
  if (name === 'output_norm.weight') {
    const g = config.tiedEmbeddings ? logitScale : 1
    return { lo: 0.9 * g, hi: 1.1 * g, post: 'pairs' }
  }
  if (name.endsWith('norm.weight')) return { lo: 0.9, hi: 1.1 }
  if (name.endsWith('.bias')) return { lo: -0.1 * sqrt3, hi: 0.1 * sqrt3 }
  let std: number
  if (name === 'output.weight') std = logitScale
  else if (name.endsWith('attn_output.weight') || name.endsWith('ffn_down.weight')) std = RESID_GAIN / Math.sqrt(dims[0])
  else std = 1 / Math.sqrt(dims[0])
  return { lo: -std * sqrt3, hi: std * sqrt3 }
}

/** Roughly this many values are generated and quantized per yielded chunk (4 MiB of f32). */
const CHUNK_VALUES = 1 << 20

function tensorData(stream: string, name: string, dims: readonly number[], type: number, seed: number, config: ModelConfig, logitStd: number): () => Iterable<Uint8Array> {
  return function* () {
    const cols = dims[0]
    const rows = dims.length > 1 ? dims[1] : 1
    const law = weightLaw(name, dims, config, logitStd)
    const state = seedState(seed, stream)
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / cols))
    const buf = new Float32Array(Math.min(rows, rowsPerChunk) * cols)
    const rb = rowBytes(type, cols)
    for (let r = 0; r < rows; r += rowsPerChunk) {
      const nr = Math.min(rowsPerChunk, rows - r)
      const n = nr * cols
      fillUniform(state, buf, n, law.lo, law.hi)
      if (law.post === 'signs') for (let i = 0; i < n; i++) buf[i] = buf[i] < 0 ? -1 : 1
      else if (law.post === 'pairs') for (let i = 1; i < n; i += 2) buf[i] = -buf[i - 1]
      const out = new Uint8Array(nr * rb)
      quantizeInto(type, buf, 0, nr * cols, out, 0)
      yield out
    }
  }
}

/**
 * The `general.*` and `{arch}.*` GGUF keys of a model of `config`, with llama.cpp's names (shared
 * by the synthesizer and the training export, src/train/export.ts). `fileType` is llama.cpp's
 * `llama_ftype` (informational: F32 0, Q8_0 7).
 */
export function modelMetadata(config: ModelConfig, name: string, fileType: number): GgufMetadata {
  const arch = config.arch
  const md: GgufMetadata = new Map()
  md.set('general.architecture', gv.str(arch))
  md.set('general.name', gv.str(name))
  md.set('general.file_type', gv.u32(fileType))
  md.set('general.quantization_version', gv.u32(2))
  md.set(`${arch}.vocab_size`, gv.u32(config.vocabSize))
  md.set(`${arch}.context_length`, gv.u32(config.contextLength))
  md.set(`${arch}.embedding_length`, gv.u32(config.dim))
  md.set(`${arch}.block_count`, gv.u32(config.nLayer))
  md.set(`${arch}.feed_forward_length`, gv.u32(config.ffDim))
  md.set(`${arch}.attention.head_count`, gv.u32(config.nHead))
  md.set(`${arch}.attention.head_count_kv`, gv.u32(config.nKvHead))
  if (config.headDim !== config.dim / config.nHead) {
    md.set(`${arch}.attention.key_length`, gv.u32(config.headDim))
    md.set(`${arch}.attention.value_length`, gv.u32(config.headDim))
  }
  md.set(`${arch}.rope.dimension_count`, gv.u32(config.headDim))
  md.set(`${arch}.rope.freq_base`, gv.f32(config.ropeBase))
  md.set(`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(config.rmsEps))
  if (config.slidingWindow !== undefined) md.set(`${arch}.attention.sliding_window`, gv.u32(config.slidingWindow))
  return md
}

/**
 * A GGUF spec for `preset` with weights of `type` from `seed`; pass it to `encodeGguf` to get
 * the file's bytes. Deterministic: the same options always give the same bytes. Throws
 * `UnknownPresetError` / `UnknownWeightTypeError` listing the valid names.
 *
 * @example
 *   for (const chunk of encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 1 }))) sink(chunk)
 */
export function synthModel(opts: SynthOptions): GgufSpec {
  const preset = PRESETS[opts.preset]
  if (!preset) throw new UnknownPresetError(opts.preset)
  if (!(SYNTH_TYPES as readonly string[]).includes(opts.type)) throw new UnknownWeightTypeError(opts.type)
  if (!Number.isSafeInteger(opts.seed) || opts.seed < 0) throw new BaseError(`invalid seed ${opts.seed}`, { details: 'expected a non-negative integer' })
  if (opts.arch !== undefined && !isSupportedArchitecture(opts.arch)) throw new UnknownArchitectureOptionError(opts.arch)
  const w = opts.slidingWindow
  if (w !== undefined && !(Number.isSafeInteger(w) && w >= 1)) throw new BaseError(`invalid sliding window ${w}`, { details: 'expected a positive integer' })
  const type = opts.type as SynthType
  const config = presetConfig(preset, opts.arch as Architecture | undefined)
  const md = modelMetadata(config, `tessera-synth ${preset.name} ${type} seed ${opts.seed}`, FILE_TYPE[type])
  // the key as asked, also when W >= the context (where it is full attention)
  if (w !== undefined) md.set(`${config.arch}.attention.sliding_window`, gv.u32(w))
  const tokFn = opts.tokenizer ?? synthTokenizerMetadata
  const tok = tokFn({ kind: preset.tokenizer.kind, pre: preset.tokenizer.kind === 'bpe' ? preset.tokenizer.pre : undefined, vocabSize: config.vocabSize, seed: opts.seed })
  for (const [k, v] of Object.entries(tok)) md.set(k, v)
  if (opts.chatTemplate !== undefined) md.set('tokenizer.chat_template', gv.str(opts.chatTemplate))

  const tensors: GgufTensorSpec[] = expectedTensors(config).map(({ name, dims }) => {
    const t = synthTensorType(name, dims, type, config.nLayer, config.tiedEmbeddings, config.nHead / config.nKvHead)
    return { name, dims, type: t, data: tensorData(`${preset.name}/${name}`, name, dims, t, opts.seed, config, preset.logitStd) }
  })
  return { metadata: md, tensors }
}
