import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { toHex } from '../bytes.js'
import { buildLevels, leafHash, leafHashInto, merkleProof, merkleRoot, merkleRootPacked, verifyProof } from '../hash/merkle.js'
import { modelConfigFromGguf } from '../model/config.js'
import { SYNTH_TYPES, synthModel } from '../model/synth.js'
import { RowHasher, canonicalJson, chunkBlocks, chunkBytesOf, computeGgufModelRoot, configLeafData, rowCommitment, rowCommitmentsInto, tensorLeafData } from './modelRoot.js'
import { BLOCK, GGMLType, rowBytes as rowBytesOf } from './types.js'
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

  it('chunks rows into whole blocks of at most 2 KiB (at least one block), the last chunk shorter', () => {
    assert.deepEqual([GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.F32, GGMLType.F16, GGMLType.BF16].map(chunkBlocks), [60, 113, 102, 93, 85, 24, 18, 14, 11, 9, 512, 1024, 1024])
    assert.equal(chunkBytesOf(GGMLType.Q6_K), 1890)
    assert.throws(() => chunkBlocks(GGMLType.Q8_K), { name: 'GgufFormatError' })
    // An 11,008-column Q8_0 row: 344 blocks = 5 chunks of 60 blocks (2,040 B) and one of 44 (1,496 B).
    const row = Uint8Array.from({ length: 344 * 34 }, (_, i) => (i * 31 + 7) & 255)
    const chunks = [0, 1, 2, 3, 4, 5].map((c) => row.subarray(c * 2040, Math.min((c + 1) * 2040, row.length)))
    assert.equal(chunks[5].length, 1496)
    const commit = merkleRoot(chunks.map((c) => leafHash(c)))
    assert.equal(toHex(rowCommitment(GGMLType.Q8_0, row)), toHex(commit))
    assert.notEqual(toHex(commit), toHex(leafHash(row)))
    // A chunk opens against the row commitment; the commitments are the row tree's leaves as is.
    assert.ok(verifyProof(commit, leafHash(chunks[5]), 5, merkleProof(buildLevels(chunks.map((c) => leafHash(c))), 5)))
    const h = new RowHasher(GGMLType.Q8_0, 11008)
    const other = row.map((b) => b ^ 0x55)
    h.push(Buffer.concat([row, other]))
    assert.equal(h.rowCount, 2)
    assert.equal(toHex(h.root()), toHex(merkleRoot([commit, rowCommitment(GGMLType.Q8_0, other)])))
    assert.throws(() => h.push(row.subarray(1)), { name: 'RangeError' })
  })

  it('proves one weight row with two Merkle paths (a 256-column Q8_0 row is one chunk)', () => {
    const bytes = tinyBytes()
    const { gguf, tensorRoots, modelRoot } = rootOf(bytes)
    const t = gguf.tensors.find((x) => x.name === 'blk.0.attn_q.weight')!
    const rowBytes = 34 * (256 / 32)
    // One chunk: the row commitment is the chunk's leaf hash (the root of a one-leaf tree).
    const rows = Array.from({ length: 256 }, (_, r) => leafHash(bytes.subarray(t.fileOffset + r * rowBytes, t.fileOffset + (r + 1) * rowBytes)))
    assert.equal(toHex(rows[17]), toHex(rowCommitment(GGMLType.Q8_0, bytes.subarray(t.fileOffset + 17 * rowBytes, t.fileOffset + 18 * rowBytes))))
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

/** Deterministic filler bytes (hashing does not care whether they are valid blocks). */
function fill(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed * 2654435761 + 1
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

describe('fast row hashing (rowCommitmentsInto, merkleRootPacked) against the plain reference (RowHasher)', () => {
  it('packed leaf hashes and roots equal leafHash and merkleRoot (0 to 33, 255, 257, 5632 leaves; leaves past the scratch size)', () => {
    for (const len of [0, 1, 34, 2040, 4096, 5000, 70000]) {
      const data = fill(len, len)
      const out = new Uint8Array(40).fill(7)
      leafHashInto(data, out, 5)
      assert.equal(toHex(out.subarray(5, 37)), toHex(leafHash(data)), `leaf of ${len} bytes`)
      assert.deepEqual([...out.subarray(0, 5), ...out.subarray(37)], [7, 7, 7, 7, 7, 7, 7, 7], 'nothing written outside the 32 bytes')
    }
    for (const n of [...Array.from({ length: 34 }, (_, i) => i), 255, 257, 5632]) {
      const leaves = Array.from({ length: n }, (_, i) => leafHash(Uint8Array.of(i, n)))
      const packed = new Uint8Array(32 * n)
      leaves.forEach((l, i) => packed.set(l, 32 * i))
      const copy = packed.slice()
      assert.equal(toHex(merkleRootPacked(packed, n)), toHex(merkleRoot(leaves)), `${n} leaves`)
      assert.deepEqual(packed, copy, 'the input is left unchanged')
    }
  })

  // Odd shapes per type: a row shorter than one chunk, rows of exactly 1, 2 and 3 full chunks, a
  // last chunk shorter than the others, 5-8 chunks (padded tree), and 1-row (1-D) tensors.
  const blocks = (type: number) => [1, 2, chunkBlocks(type) - 1, chunkBlocks(type), 2 * chunkBlocks(type), 3 * chunkBlocks(type), 2 * chunkBlocks(type) + 1, 7 * chunkBlocks(type) + 3]
  for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K]) {
    it(`type ${type}: row commitments and row roots are byte-identical for every shape and split`, () => {
      for (const nb of blocks(type).filter((b) => b >= 1)) {
        const cols = nb * BLOCK[type].size
        const rb = rowBytesOf(type, cols)
        for (const rows of [1, 2, 3, 9]) {
          const bytes = fill(rows * rb, nb * 31 + rows)
          const ref = new RowHasher(type, cols)
          ref.push(bytes)
          // The fast path in uneven pieces (1 row, then the rest), at an offset into `out`.
          const out = new Uint8Array(32 * (rows + 1))
          assert.equal(rowCommitmentsInto(type, cols, bytes.subarray(0, rb), out, 32), 1)
          if (rows > 1) assert.equal(rowCommitmentsInto(type, cols, bytes.subarray(rb), out, 64), rows - 1)
          const fast = out.subarray(32)
          ref.commitments().forEach((h, r) => assert.equal(toHex(fast.subarray(32 * r, 32 * r + 32)), toHex(h), `${nb} blocks, row ${r} of ${rows}`))
          assert.equal(toHex(merkleRootPacked(fast, rows)), toHex(ref.root()), `${nb} blocks x ${rows} rows: row root`)
        }
      }
    })
  }

  it('refuses bytes that are not whole rows or commitments that do not fit', () => {
    const rb = rowBytesOf(GGMLType.Q8_0, 64)
    assert.throws(() => rowCommitmentsInto(GGMLType.Q8_0, 64, new Uint8Array(rb + 1), new Uint8Array(64), 0), { name: 'RangeError' })
    assert.throws(() => rowCommitmentsInto(GGMLType.Q8_0, 64, new Uint8Array(2 * rb), new Uint8Array(63), 0), { name: 'RangeError' })
  })

  for (const type of SYNTH_TYPES) {
    it(`tiny ${type}: computeGgufModelRoot gives the same tensor roots and model root fast and plain`, () => {
      const bytes = Buffer.concat([...encodeGguf(synthModel({ preset: 'tiny', type, seed: 3 }))])
      const src = bufferSource(bytes)
      const gguf = readGguf(src)
      const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
      const ref = computeGgufModelRoot(src, gguf, config, 5000, 'reference')
      const fast = computeGgufModelRoot(src, gguf, config, 5000, 'fast')
      assert.ok(gguf.tensors.some((t) => t.dims.length === 1), 'has 1-D tensors')
      assert.deepEqual(fast.tensorRoots.map((t) => [t.name, toHex(t.rowRoot)]), ref.tensorRoots.map((t) => [t.name, toHex(t.rowRoot)]))
      assert.equal(toHex(fast.modelRoot), toHex(ref.modelRoot))
    })
  }
})

function leafHashOfConfig(bytes: Uint8Array): Uint8Array {
  const gguf = readGguf(bufferSource(bytes))
  return leafHash(configLeafData(modelConfigFromGguf(gguf.metadata, gguf.tensors), gguf.metadata))
}
