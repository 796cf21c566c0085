import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { gv } from '../gguf/types.js'
import { modelConfigFromGguf } from './config.js'
import { synthModel } from './synth.js'

function specInfos(preset: string) {
  const spec = synthModel({ preset, type: 'f16', seed: 3 })
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
