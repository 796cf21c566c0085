/**
 * Model shapes the synthesizer can write. The two large presets copy the shapes of real public
 * models (SmolLM2-135M, TinyLlama-1.1B) so that benchmarks measure realistic sizes; the tiny ones
 * are for fast tests. Row lengths of the tiny presets (256, 512) are multiples of the K-quant
 * block size so that every tensor type is exercised without fallback.
 */
import type { Architecture } from './config.js'

export type ModelPreset = {
  name: string
  description: string
  arch: Architecture
  dim: number
  nLayer: number
  nHead: number
  nKvHead: number
  /** Per-head width when it is not dim / nHead (qwen3 writes `{arch}.attention.key_length`). */
  headDim?: number
  ffDim: number
  vocabSize: number
  contextLength: number
  ropeBase: number
  rmsEps: number
  /** No output.weight: logits reuse token_embd. */
  tiedEmbeddings: boolean
  /**
   * Std of the synthetic logits. A larger vocabulary needs a larger spread for the same top-1
   * probability (the maximum of V Gaussians grows like sqrt(2 ln V)).
   */
  logitStd: number
  tokenizer: { kind: 'spm' } | { kind: 'bpe'; pre: 'llama-bpe' | 'qwen2' }
}

export const PRESETS: Record<string, ModelPreset> = {
  tiny: {
    name: 'tiny',
    description: 'llama, 2 layers, width 256, SPM tokenizer (tests)',
    arch: 'llama', dim: 256, nLayer: 2, nHead: 4, nKvHead: 2, ffDim: 512, vocabSize: 1024,
    contextLength: 512, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false, logitStd: 3,
    tokenizer: { kind: 'spm' },
  },
  'tiny-qwen2': {
    name: 'tiny-qwen2',
    description: 'qwen2 with q/k/v biases, 2 layers, width 256, tied embeddings, qwen2 BPE tokenizer (tests)',
    arch: 'qwen2', dim: 256, nLayer: 2, nHead: 4, nKvHead: 2, ffDim: 512, vocabSize: 1024,
    contextLength: 512, ropeBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: true, logitStd: 3,
    tokenizer: { kind: 'bpe', pre: 'qwen2' },
  },
  'tiny-qwen3': {
    name: 'tiny-qwen3',
    description: 'qwen3 with per-head q/k norms, 2 layers, width 256, head 128 (q width 512), tied embeddings, qwen2 BPE tokenizer (tests)',
    arch: 'qwen3', dim: 256, nLayer: 2, nHead: 4, nKvHead: 2, headDim: 128, ffDim: 512, vocabSize: 1024,
    contextLength: 512, ropeBase: 1000000, rmsEps: 1e-6, tiedEmbeddings: true, logitStd: 3,
    tokenizer: { kind: 'bpe', pre: 'qwen2' },
  },
  'tiny-bpe': {
    name: 'tiny-bpe',
    description: 'llama, 2 layers, width 256, llama3 BPE tokenizer (tests)',
    arch: 'llama', dim: 256, nLayer: 2, nHead: 4, nKvHead: 2, ffDim: 512, vocabSize: 1024,
    contextLength: 512, ropeBase: 500000, rmsEps: 1e-5, tiedEmbeddings: false, logitStd: 3,
    tokenizer: { kind: 'bpe', pre: 'llama-bpe' },
  },
  'smol-135m': {
    name: 'smol-135m',
    description: 'SmolLM2-135M shapes: llama, 30 layers, width 576, tied embeddings, BPE tokenizer',
    arch: 'llama', dim: 576, nLayer: 30, nHead: 9, nKvHead: 3, ffDim: 1536, vocabSize: 49152,
    contextLength: 8192, ropeBase: 100000, rmsEps: 1e-5, tiedEmbeddings: true, logitStd: 4.5,
    tokenizer: { kind: 'bpe', pre: 'llama-bpe' },
  },
  'tinyllama-1.1b': {
    name: 'tinyllama-1.1b',
    description: 'TinyLlama-1.1B shapes: llama, 22 layers, width 2048, SPM tokenizer',
    arch: 'llama', dim: 2048, nLayer: 22, nHead: 32, nKvHead: 4, ffDim: 5632, vocabSize: 32000,
    contextLength: 2048, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false, logitStd: 4.5,
    tokenizer: { kind: 'spm' },
  },
}
