import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toHex } from '../bytes.js'
import { buildLevels, leafHash, merkleProof, merkleRoot, nodeHash, verifyProof, ZERO } from './merkle.js'

const leaves = Array.from({ length: 5 }, (_, i) => leafHash(Uint8Array.of(i)))

test('tree shape: domain-separated leaves, zero padding to a power of two', () => {
  const l4 = [...leaves, ZERO, ZERO, ZERO]
  const want = nodeHash(nodeHash(nodeHash(l4[0], l4[1]), nodeHash(l4[2], l4[3])), nodeHash(nodeHash(l4[4], l4[5]), nodeHash(l4[6], l4[7])))
  assert.equal(toHex(merkleRoot(leaves)), toHex(want))
  assert.equal(toHex(merkleRoot([leaves[0]])), toHex(leaves[0]))
  assert.notEqual(toHex(leafHash(new Uint8Array(64))), toHex(nodeHash(new Uint8Array(32), new Uint8Array(32))))
})

test('every proof verifies, and a wrong index, leaf or sibling does not', () => {
  const levels = buildLevels(leaves)
  const root = merkleRoot(leaves)
  for (let i = 0; i < leaves.length; i++) {
    const proof = merkleProof(levels, i)
    assert.equal(proof.length, 3)
    assert.ok(verifyProof(root, leaves[i], i, proof))
    assert.ok(!verifyProof(root, leaves[i], (i + 1) % 5, proof))
    assert.ok(!verifyProof(root, leafHash(Uint8Array.of(9)), i, proof))
    const bad = proof.slice()
    bad[1] = ZERO
    assert.ok(!verifyProof(root, leaves[i], i, bad))
  }
})

test('golden vector: the root of five leaves', () => {
  assert.equal(toHex(merkleRoot(leaves)), GOLDEN_ROOT)
})

// Computed independently with Python's hashlib from the byte layouts in docs/TRACE.md.
const GOLDEN_ROOT = '295a26fc71a0d56e25a91f2538457f33c4d0466c12a07e2c7a0c215d36627d21'
