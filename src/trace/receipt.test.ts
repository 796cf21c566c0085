import { test } from 'node:test'
import assert from 'node:assert/strict'
import { leafHash, merkleRoot, toHex } from './merkle.js'
import { canonicalJson, paramsHash, type ReceiptV1, receiptDigestV1, tokensHash, tokensRoot } from './receipt.js'
import { vectorRoot } from './vector.js'

test('golden vectors: receipt digest, params hash, tokens hash; the trace layer\'s tree is the engine\'s', () => {
  const leaves = Array.from({ length: 5 }, (_, i) => leafHash(Uint8Array.of(i)))
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
})

// Computed independently with Python's hashlib from the byte layouts in docs/TRACE.md.
const GOLDEN = {
  root: '295a26fc71a0d56e25a91f2538457f33c4d0466c12a07e2c7a0c215d36627d21',
  tokens: '4636993d3e1da4e9d6b8f87b79e8f7c6d018580d52661950eabc3845c5897a4d',
  params: '80abff2c6a2001524043d5579cb2a390b021312a813afa0102ecbadb292eb02c', // sha256(abi.encode(IMachine.Sampling))
  receipt: 'e51e2387fee6e4f364e9cf9c013fd1e6763782fcf3856b9513a49ccb69be5e6f',
}
