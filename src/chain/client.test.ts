import assert from 'node:assert/strict'
import { test } from 'node:test'
import { receiptDigest as traceReceiptDigest, type Receipt } from '../trace/receipt.js'
import { type ClaimItem, receiptDigest } from './client.js'

test('the chain client and the trace layer compute the same receipt digest', () => {
  const hex = (c: string) => c.repeat(64)
  const r: Receipt = {
    version: 1, arith: 'tessera-arith/1', engine: 'x', modelRoot: hex('1'), inputHash: hex('2'), paramsHash: hex('3'),
    outputHash: hex('4'), traceRoot: hex('5'), params: {} as Receipt['params'], seed: '18446744073709551615', nPrompt: 7, nOutput: 9, nLayer: 32,
  }
  const it: ClaimItem = {
    req: { provider: `0x${'0'.repeat(40)}`, modelRoot: `0x${r.modelRoot}`, inputHash: `0x${r.inputHash}`, paramsHash: `0x${r.paramsHash}`, seed: 2n ** 64n - 1n, nonce: 0n, expiry: 0n, maxTokens: 0, pricePerToken: 0n },
    r: '0x', vs: '0x', outputHash: `0x${r.outputHash}`, traceRoot: `0x${r.traceRoot}`, nPrompt: 7, nOutput: 9, nLayer: 32,
  }
  assert.equal(receiptDigest(it), `0x${Buffer.from(traceReceiptDigest(r)).toString('hex')}`)
})
