/**
 * Tiny synthesized models and jobs for the dispute machine's tests (src/dispute/machine/*.test.ts):
 * the engine on the reference backend with the raw GGUF rows beside it, and a job's replay
 * (residual, K, V per position and layer, and every position's logits) from one batched forward.
 */
import { tensorRowsCols } from '../../src/engine/gguf/modelRoot.js'
import { bufferSource, readGguf } from '../../src/engine/gguf/read.js'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import type { MatrixHandle } from '../../src/engine/kernels/backend.js'
import { createReferenceBackend, dequantizeRow } from '../../src/engine/kernels/reference.js'
import { type ModelConfig, modelConfigFromGguf } from '../../src/engine/model/config.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { KVCache, Transformer } from '../../src/engine/model/transformer.js'
import { sampleToken } from '../../src/engine/sample.js'
import { ARITH_V1, type ArithVersion } from '../../src/engine/version.js'
import type { MachineSampling } from '../../src/dispute/machine/program.js'
import type { Replay, WeightAccessor, WeightTensor } from '../../src/dispute/machine/transition.js'
import { buildModelTree, type ModelTree } from '../../src/chain/weights.js'
import { concatBytes } from '../../src/trace/merkle.js'

export type Tiny = { config: ModelConfig; tf: Transformer; weights: WeightAccessor; tree: ModelTree }

/** A synthesized model in memory: the engine on the reference backend and the raw GGUF rows. */
export function tinyModel(preset: string, type: string, seed: number, slidingWindow?: number): Tiny {
  return tinyModelFrom(concatBytes(...encodeGguf(synthModel({ preset, type, seed, slidingWindow }))))
}

/** `tinyModel` of a GGUF file's bytes (e.g. a synthesized spec with options `tinyModel` lacks). */
export function tinyModelFrom(bytes: Uint8Array): Tiny {
  const src = bufferSource(bytes)
  const gguf = readGguf(src)
  const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
  const backend = createReferenceBackend()
  const matrices: Record<string, MatrixHandle> = {}
  const vectors: Record<string, Float32Array> = {}
  const tensors = new Map<string, WeightTensor>()
  for (const t of gguf.tensors) {
    const { rows, cols } = tensorRowsCols(t.dims)
    const data = src.read(t.fileOffset, t.byteLength)
    const rb = t.byteLength / rows
    if (t.dims.length === 1) {
      vectors[t.name] = new Float32Array(cols)
      dequantizeRow(t.type, data, vectors[t.name])
    } else {
      matrices[t.name] = backend.allocMatrix(t.name, t.type, rows, cols)
      backend.writeRows(matrices[t.name], 0, data)
    }
    tensors.set(t.name, { type: t.type, rows, cols, row: (r) => data.subarray(r * rb, (r + 1) * rb) })
  }
  const weights: WeightAccessor = (name) => {
    const t = tensors.get(name)
    if (!t) throw new Error(`no tensor ${name}`)
    return t
  }
  return { config, tf: new Transformer({ config, matrices, vectors }, backend), weights, tree: buildModelTree(src, gguf, config) }
}

/** A job: `prompt`, then `nOut - 1` greedy (penalized) output tokens fed back; its replay (KV caches under `arith`). */
export function job(m: Tiny, prompt: number[], nOut: number, sampling: MachineSampling, arith: ArithVersion = ARITH_V1) {
  const c = m.config
  const params = { topK: 0, topP: 1, minP: 0, seed: 0n, ...sampling }
  const tokens = prompt.slice()
  const cache = new KVCache(c, 64, arith)
  let logits = m.tf.forward(prompt, cache, 1)
  for (let i = 0; i < nOut - 1; i++) {
    const id = sampleToken(logits.slice(), params, tokens, i)
    tokens.push(id)
    logits = m.tf.forward([id], cache, 1)
  }
  // replay: one batch over every position, keeping residual, K and V per (position, layer)
  const kvDim = c.nKvHead * c.headDim
  const res = new Map<string, Float32Array>(), ks = new Map<string, Float32Array>(), vs = new Map<string, Float32Array>()
  const all = m.tf.forward(tokens, new KVCache(c, 64, arith), tokens.length, (l, start, nTok, x, k, v) => {
    for (let t = 0; t < nTok; t++) {
      const key = `${start + t}/${l}`
      res.set(key, x.slice(t * c.dim, (t + 1) * c.dim))
      ks.set(key, k.slice(t * kvDim, (t + 1) * kvDim))
      vs.set(key, v.slice(t * kvDim, (t + 1) * kvDim))
    }
  })
  const get = (m: Map<string, Float32Array>, p: number, l: number) => {
    const x = m.get(`${p}/${l}`)
    if (!x) throw new Error(`no replay state (${p}, ${l})`)
    return x
  }
  const replay: Replay = { residual: (p, l) => get(res, p, l), k: (p, l) => get(ks, p, l), v: (p, l) => get(vs, p, l) }
  const logitsAt = (p: number) => all.slice(p * c.vocabSize, (p + 1) * c.vocabSize)
  return { tokens, replay, logitsAt, params }
}
