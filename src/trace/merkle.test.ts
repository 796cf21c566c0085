import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildLevels, fromHex, leafHash, merkleProof, merkleRoot, nodeHash, toHex, verifyProof, ZERO } from './merkle.js'
import { canonicalJson, paramsHash, type ReceiptV1, receiptDigestV1, tokensHash, tokensRoot } from './receipt.js'
import { vectorRoot } from './vector.js'

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

test('golden vectors: Merkle root, receipt digest, params hash, tokens hash', () => {
  assert.equal(toHex(merkleRoot(leaves)), GOLDEN.root)
  assert.equal(toHex(tokensHash([1, 2, 3])), GOLDEN.tokens)
  const params = { temperature: 0, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, repeatLastN: 64, maxTokens: 16, stop: ['\n'] }
  assert.equal(canonicalJson(params), '{"maxTokens":16,"minP":0.05,"repeatLastN":64,"repeatPenalty":1,"stop":["\\n"],"temperature":0,"topK":40,"topP":0.95}')
  assert.equal(toHex(paramsHash(params)), GOLDEN.params)
  const r: ReceiptV1 = {
    version: 1, arith: 'tessera-arith/1', engine: 'x', modelRoot: '11'.repeat(32), inputHash: '22'.repeat(32),
    paramsHash: '33'.repeat(32), outputHash: '44'.repeat(32), traceRoot: '55'.repeat(32), params, seed: '18446744073709551615',
    nPrompt: 7, nOutput: 9, nLayer: 30,
  }
  assert.equal(toHex(receiptDigestV1(r)), GOLDEN.receipt)
  // receipt v2 commits to tokens by vector root: for a short list, leafHash of the u32 LE bytes
  assert.deepEqual(tokensRoot([1, 2, 3]), vectorRoot(Uint32Array.of(1, 2, 3)))
  assert.deepEqual(fromHex('0x0aff'), Uint8Array.of(10, 255))
})

// Computed independently with Python's hashlib from the byte layouts in docs/TRACE.md.
const GOLDEN = {
  root: '295a26fc71a0d56e25a91f2538457f33c4d0466c12a07e2c7a0c215d36627d21',
  tokens: '4636993d3e1da4e9d6b8f87b79e8f7c6d018580d52661950eabc3845c5897a4d',
  params: '80abff2c6a2001524043d5579cb2a390b021312a813afa0102ecbadb292eb02c', // sha256(abi.encode(IMachine.Sampling))
  receipt: 'e51e2387fee6e4f364e9cf9c013fd1e6763782fcf3856b9513a49ccb69be5e6f',
}
