/**
 * A trained model as GGUF files (docs/TRAINING.md, "Export"): llama architecture, F32 or Q8_0
 * weights, the run's tokenizer embedded, and two keys naming the run it came from
 * (`tessera.train.run_root`, `tessera.train.manifest_hash`). The `general.*` / `llama.*` keys are
 * the synthesizer's (`modelMetadata`, engine/model/synth.ts) and the per-tensor types its rules
 * (`synthTensorType`: norms F32, matrices Q8_0 when rows are a multiple of 32, else F16), so the
 * files are the kind the engine and llama.cpp already load. Also the reverse: the parameters of
 * an existing F32/Q8_0 GGUF, for fine-tuning (`tessera train --init`).
 */
import { BaseError } from '../errors.js'
import { dequantize, quantizeInto } from '../engine/gguf/quantize.js'
import type { ByteSource } from '../engine/gguf/read.js'
import { readGguf } from '../engine/gguf/read.js'
import { GGMLType, type GgufMetadata, type GgufValue, ggmlTypeName, gv, rowBytes } from '../engine/gguf/types.js'
import type { GgufSpec, GgufTensorSpec } from '../engine/gguf/write.js'
import { expectedTensors, type ModelConfig, modelConfigFromGguf } from '../engine/model/config.js'
import { modelMetadata, synthTensorType } from '../engine/model/synth.js'
import type { TrainConfig } from './model.js'

/** The hyper-parameters an export needs (a `TrainConfig` has them all). */
export type ExportShape = Pick<TrainConfig, 'vocabSize' | 'dim' | 'nLayer' | 'nHead' | 'nKvHead' | 'ffDim' | 'context' | 'ropeBase' | 'rmsEps' | 'tiedEmbeddings'>

export const EXPORT_TYPES = ['f32', 'q8_0'] as const
export type ExportType = (typeof EXPORT_TYPES)[number]

/** llama.cpp's `llama_ftype` of each export type (informational). */
const FILE_TYPE: Record<ExportType, number> = { f32: 0, q8_0: 7 }

/** Metadata keys naming the run a model came from (0x-prefixed hex strings). */
export const RUN_ROOT_KEY = 'tessera.train.run_root'
export const MANIFEST_HASH_KEY = 'tessera.train.manifest_hash'

export class ExportError extends BaseError {
  override name = 'ExportError'
}

/** The engine's `ModelConfig` of a trained llama model. */
export function trainedModelConfig(s: ExportShape): ModelConfig {
  const config = {
    arch: 'llama',
    dim: s.dim,
    nLayer: s.nLayer,
    nHead: s.nHead,
    nKvHead: s.nKvHead,
    headDim: s.dim / s.nHead,
    ffDim: s.ffDim,
    vocabSize: s.vocabSize,
    contextLength: s.context,
    ropeBase: Math.fround(s.ropeBase),
    rmsEps: Math.fround(s.rmsEps),
    hasQkvBias: false,
    hasQkNorm: false,
    tiedEmbeddings: s.tiedEmbeddings,
  }
  return config as ModelConfig
}

export type ExportOptions = {
  shape: ExportShape
  /** GGUF tensor names (llama layout), ne0-first, f32 values. */
  params: ReadonlyMap<string, Float32Array>
  /** `tokenizer.ggml.*` keys (trainRunTokenizer, or those of the --init model). */
  tokenizer: GgufMetadata
  type: ExportType
  name: string
  runRoot?: string
  manifestHash?: string
}

/**
 * The GGUF spec of a trained model; `encodeGguf` turns it into the file's bytes. Throws
 * `ExportError` naming a tensor that is missing or has the wrong number of values.
 *
 * @example
 *   writeGgufFile('model.gguf', encodeGguf(exportSpec({ shape: config, params: state.params, tokenizer, type: 'q8_0', name: 'run' })))
 */
export function exportSpec(opts: ExportOptions): GgufSpec {
  const config = trainedModelConfig(opts.shape)
  const md = modelMetadata(config, opts.name, FILE_TYPE[opts.type])
  for (const [k, v] of opts.tokenizer) if (k.startsWith('tokenizer.')) md.set(k, v)
  if (!md.has('tokenizer.ggml.tokens')) throw new ExportError('the export has no tokenizer', { details: 'tokenizer.ggml.tokens is missing' })
  if (opts.runRoot !== undefined) md.set(RUN_ROOT_KEY, gv.str(opts.runRoot))
  if (opts.manifestHash !== undefined) md.set(MANIFEST_HASH_KEY, gv.str(opts.manifestHash))
  const tensors: GgufTensorSpec[] = expectedTensors(config).map(({ name, dims }) => {
    const values = opts.params.get(name)
    const n = dims.reduce((a, b) => a * b, 1)
    if (!values) throw new ExportError(`parameter ${name} is missing`, { details: `expected ${dims.join(' x ')} values` })
    if (values.length !== n) throw new ExportError(`parameter ${name} has ${values.length} values`, { details: `expected ${dims.join(' x ')} = ${n}` })
    const type = synthTensorType(name, dims, opts.type, config.nLayer, config.tiedEmbeddings)
    return { name, dims, type, data: () => tensorChunks(values, dims[0], type) }
  })
  return { metadata: md, tensors }
}

/** A tensor's bytes in chunks of about 1M values (whole rows). */
function* tensorChunks(values: Float32Array, cols: number, type: number): Iterable<Uint8Array> {
  const rows = values.length / cols
  const rowsPer = Math.max(1, Math.floor((1 << 20) / cols))
  const rb = rowBytes(type, cols)
  for (let r = 0; r < rows; r += rowsPer) {
    const nr = Math.min(rowsPer, rows - r)
    const out = new Uint8Array(nr * rb)
    quantizeInto(type, values, r * cols, nr * cols, out, 0)
    yield out
  }
}

/** What a GGUF file gives a fine-tuning run: its shape, its weights as f32, its tokenizer keys. */
export type InitModel = { config: ModelConfig; params: Map<string, Float32Array>; metadata: GgufMetadata }

/**
 * Reads an F32 or Q8_0 (or F16/BF16) llama GGUF's weights as f32 for `tessera train --init`.
 * Throws `ExportError` for another architecture, a biased or qk-normed model, or a tensor type
 * it does not take.
 */
export function readInitModel(src: ByteSource): InitModel {
  const gguf = readGguf(src)
  const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
  if (config.arch !== 'llama' || config.hasQkvBias || (config as { hasQkNorm?: boolean }).hasQkNorm === true) throw new ExportError(`cannot fine-tune a ${config.arch} model`, { details: 'training takes llama models (no q/k/v biases or q/k norms)' })
  if (config.headDim * config.nHead !== config.dim) throw new ExportError('cannot fine-tune this model', { details: `head size ${config.headDim} x ${config.nHead} heads is not the width ${config.dim}` })
  const params = new Map<string, Float32Array>()
  const allowed = new Set<number>([GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0])
  for (const t of gguf.tensors) {
    if (!allowed.has(t.type)) throw new ExportError(`tensor ${t.name} is ${ggmlTypeName(t.type)}`, { details: 'fine-tuning starts from F32, F16, BF16 or Q8_0 weights' })
    params.set(t.name, dequantize(t.type, src.read(t.fileOffset, t.byteLength)))
  }
  const metadata: GgufMetadata = new Map<string, GgufValue>()
  for (const [k, v] of gguf.metadata) if (k.startsWith('tokenizer.')) metadata.set(k, v)
  return { config, params, metadata }
}
