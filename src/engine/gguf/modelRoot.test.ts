import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildLevels, leafHash, merkleProof, verifyProof, toHex } from '../../trace/merkle.js'
import { modelConfigFromGguf } from '../model/config.js'
import { synthModel } from '../model/synth.js'
import { canonicalJson, computeGgufModelRoot, configLeafData, tensorLeafData } from './modelRoot.js'
import { bufferSource, readGguf } from './read.js'
import { encodeGguf } from './write.js'

function tinyBytes(): Uint8Array {
  return Buffer.concat([...encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 1 }))])
}

function rootOf(bytes: Uint8Array) {
  const src = bufferSource(bytes)
  const gguf = readGguf(src)
  return { gguf, ...computeGgufModelRoot(src, gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors), 1000) }
}

describe('model root', () => {
  it('canonical JSON sorts keys at every level and writes bigints as strings', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: true, c: 'x' }], e: 2n ** 64n }), '{"a":[{"c":"x","d":true}],"b":1,"e":"18446744073709551616"}')
  })

  it('changes when any single weight byte changes, and only that tensor root changes', () => {
    const bytes = tinyBytes()
    const base = rootOf(bytes)
    const t = base.gguf.tensors.find((x) => x.name === 'blk.1.ffn_up.weight')!
    const mutated = bytes.slice()
    mutated[t.fileOffset + 34 * 5 + 7] ^= 1
    const after = rootOf(mutated)
    assert.notEqual(toHex(after.modelRoot), toHex(base.modelRoot))
    const changed = after.tensorRoots.filter((r, i) => toHex(r.rowRoot) !== toHex(base.tensorRoots[i].rowRoot)).map((r) => r.name)
    assert.deepEqual(changed, ['blk.1.ffn_up.weight'])
  })

  it('changes with tokenizer metadata, and does not depend on the read chunk size', () => {
    const spec = synthModel({ preset: 'tiny', type: 'q8_0', seed: 1 })
    spec.metadata.set('tokenizer.ggml.bos_token_id', { type: 'uint32', value: 2 })
    const a = rootOf(Buffer.concat([...encodeGguf(spec)]))
    const b = rootOf(tinyBytes())
    assert.notEqual(toHex(a.modelRoot), toHex(b.modelRoot))
    const src = bufferSource(tinyBytes())
    const gguf = readGguf(src)
    const big = computeGgufModelRoot(src, gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors), 1 << 24)
    assert.equal(toHex(big.modelRoot), toHex(b.modelRoot))
  })

  it('proves one weight row with two Merkle paths', () => {
    const bytes = tinyBytes()
    const { gguf, tensorRoots, modelRoot } = rootOf(bytes)
    const t = gguf.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!
    const rowBytes = 34 * (256 / 32)
    const rows = Array.from({ length: 256 }, (_, r) => leafHash(bytes.subarray(t.fileOffset + r * rowBytes, t.fileOffset + (r + 1) * rowBytes)))
    const tr = tensorRoots.find((x) => x.name === t.name)!
    assert.ok(verifyProof(tr.rowRoot, rows[17], 17, merkleProof(buildLevels(rows), 17)))
    // Tensor leaves sorted by name after the config leaf at index 0.
    const sorted = [...tensorRoots].sort((a, b) => (a.name < b.name ? -1 : 1))
    const leaves = sorted.map((x) => leafHash(tensorLeafData(x.name, x.type, x.rows, x.cols, x.rowRoot)))
    const idx = sorted.findIndex((x) => x.name === t.name)
    // The model root's leaf list is [config, ...tensors sorted by name]: 1 + 20 leaves, padded to 32.
    const realLevels = buildLevels([leafHashOfConfig(bytes), ...leaves])
    assert.equal(realLevels[0].length, 32)
    assert.ok(verifyProof(modelRoot, leaves[idx], idx + 1, merkleProof(realLevels, idx + 1)))
  })
})

function leafHashOfConfig(bytes: Uint8Array): Uint8Array {
  const gguf = readGguf(bufferSource(bytes))
  return leafHash(configLeafData(modelConfigFromGguf(gguf.metadata, gguf.tensors), gguf.metadata))
}
