import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { gv } from '../gguf/types.js'
import { modelConfigFromGguf } from './config.js'
import { synthModel } from './synth.js'

function specInfos(preset: string, opts: { arch?: string; slidingWindow?: number } = {}) {
  const spec = synthModel({ preset, type: 'f16', seed: 3, ...opts })
  return { md: spec.metadata, tensors: spec.tensors.map(({ name, dims, type }) => ({ name, dims: [...dims], type, offset: 0 })) }
}

describe('modelConfigFromGguf', () => {
  it('reads llama and qwen2 configs, detecting tied embeddings and biases', () => {
    const l = specInfos('tiny')
    const c = modelConfigFromGguf(l.md, l.tensors)
    assert.deepEqual(
      [c.arch, c.dim, c.nLayer, c.nHead, c.nKvHead, c.headDim, c.ffDim, c.vocabSize, c.contextLength, c.tiedEmbeddings, c.hasQkvBias],
      ['llama', 256, 2, 4, 2, 64, 512, 1024, 512, false, false],
    )
    assert.equal(c.rmsEps, Math.fround(1e-5))
    const q = specInfos('tiny-qwen2')
    const cq = modelConfigFromGguf(q.md, q.tensors)
    assert.equal(cq.arch, 'qwen2')
    assert.equal(cq.tiedEmbeddings, true)
    assert.equal(cq.hasQkvBias, true)
    assert.equal(cq.ropeBase, 1000000)
  })

  it('reads qwen3: per-head q/k norms of headDim values, no biases, the head size from key_length', () => {
    const q = specInfos('tiny-qwen3')
    const c = modelConfigFromGguf(q.md, q.tensors)
    assert.deepEqual([c.arch, c.hasQkNorm, c.hasQkvBias, c.headDim, c.dim, c.nHead, c.tiedEmbeddings], ['qwen3', true, false, 128, 256, 4, true])
    assert.deepEqual(q.tensors.find((t) => t.name === 'blk.1.attn_k_norm.weight')?.dims, [128])
    assert.deepEqual(q.tensors.find((t) => t.name === 'blk.1.attn_q.weight')?.dims, [256, 512])
    const missing = q.tensors.filter((t) => t.name !== 'blk.0.attn_q_norm.weight')
    assert.throws(() => modelConfigFromGguf(q.md, missing), (e: Error) => e.name === 'TensorShapeError' && /blk\.0\.attn_q_norm\.weight/.test(e.message))
    // llama shapes written as qwen3 (--arch qwen3)
    const l = specInfos('tiny', { arch: 'qwen3' })
    assert.equal(modelConfigFromGguf(l.md, l.tensors).hasQkNorm, true)
    assert.throws(() => specInfos('tiny', { arch: 'gpt2' }), (e: Error) => e.name === 'UnknownArchitectureOptionError' && /gpt2/.test(e.message))
  })

  it('reads the sliding window: kept when smaller than the context, dropped when not, 0 rejected', () => {
    const w = specInfos('tiny', { slidingWindow: 100 })
    assert.equal(modelConfigFromGguf(w.md, w.tensors).slidingWindow, 100)
    const wide = specInfos('tiny', { slidingWindow: 512 })
    assert.equal(modelConfigFromGguf(wide.md, wide.tensors).slidingWindow, undefined)
    assert.equal(specInfos('tiny').md.has('llama.attention.sliding_window'), false)
    w.md.set('llama.attention.sliding_window', gv.u32(0))
    assert.throws(() => modelConfigFromGguf(w.md, w.tensors), (e: Error) => e.name === 'GgufMetadataError' && /sliding_window/.test(e.message))
  })

  it('rejects other architectures by name', () => {
    const l = specInfos('tiny')
    l.md.set('general.architecture', gv.str('mamba'))
    assert.throws(() => modelConfigFromGguf(l.md, l.tensors), (e: Error) => e.name === 'UnsupportedArchitectureError' && /mamba/.test(e.message))
  })

  it('names a tensor with the wrong shape, a missing tensor and an unexpected one', () => {
    const l = specInfos('tiny')
    const k = l.tensors.find((t) => t.name === 'blk.1.attn_k.weight')!
    k.dims = [256, 256]
    assert.throws(() => modelConfigFromGguf(l.md, l.tensors), (e: Error) => e.name === 'TensorShapeError' && /blk\.1\.attn_k\.weight/.test(e.message))
    const m = specInfos('tiny-qwen2')
    const missing = m.tensors.filter((t) => t.name !== 'blk.0.attn_v.bias')
    assert.throws(() => modelConfigFromGguf(m.md, missing), (e: Error) => e.name === 'TensorShapeError' && /blk\.0\.attn_v\.bias/.test(e.message))
    const extra = [...m.tensors, { name: 'rope_freqs.weight', dims: [32], type: 0, offset: 0 }]
    assert.throws(() => modelConfigFromGguf(m.md, extra), (e: Error) => e.name === 'TensorShapeError' && /rope_freqs/.test(e.message))
  })

  it('names missing or mistyped metadata keys', () => {
    const l = specInfos('tiny')
    l.md.delete('llama.block_count')
    assert.throws(() => modelConfigFromGguf(l.md, l.tensors), (e: Error) => e.name === 'GgufMetadataError' && /llama\.block_count/.test(e.message))
    const l2 = specInfos('tiny')
    l2.md.set('llama.attention.layer_norm_rms_epsilon', gv.str('1e-5'))
    assert.throws(() => modelConfigFromGguf(l2.md, l2.tensors), { name: 'GgufMetadataError' })
  })
})
