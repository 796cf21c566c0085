import assert from 'node:assert/strict'
import { test } from 'node:test'
import { receiptDigest as traceReceiptDigest, type Receipt } from '../trace/receipt.js'
import { type ClaimItem, DEFAULT_SETTLEMENT_PARAMS, deployTessera, receiptDigest } from './client.js'
import { connectClients, deployContract } from './evm/clients.js'
import { createEmbeddedChain } from './evm/edr.js'
import { loadArtifacts } from './artifacts.js'

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

test('the build writes each ABI as a TypeScript module identical to build/contracts.json', async () => {
  // The client's types come from this module (import type); the run-time ABI from contracts.json.
  const script: string = '../../scripts/build/50-contracts.mjs'
  const { default: buildContracts } = (await import(script)) as { default: (o: { quiet: boolean }) => void }
  buildContracts({ quiet: true })
  const generated: string = './abi.generated.js'
  const abis = (await import(generated)) as Record<string, unknown>
  for (const name of ['Settlement', 'DisputeGame', 'ModelRegistry']) {
    assert.deepEqual(abis[`${name[0].toLowerCase()}${name.slice(1)}Abi`], loadArtifacts().contracts[name].abi, name)
  }
})

test('deployment parameters out of range are refused by name, by the client and by the constructors', async () => {
  const chain = await createEmbeddedChain({ accounts: 1 })
  try {
    const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    await assert.rejects(deployTessera(c, { settlement: { auditBps: 0 } }), /auditBps must be 1\.\.10000/)
    await assert.rejects(deployTessera(c, { game: { rewardBps: 10_001 } }), /game rewardBps must be 0\.\.10000/)
    // Past the client's check, the constructor itself refuses a zero audit probability.
    const registry = (await deployContract(c, { name: 'ModelRegistry' })).address
    await assert.rejects(deployContract(c, { name: 'Settlement', args: [registry, { ...DEFAULT_SETTLEMENT_PARAMS, auditBps: 0 }] }))
    await deployContract(c, { name: 'Settlement', args: [registry, DEFAULT_SETTLEMENT_PARAMS] })
  } finally {
    await chain.close()
  }
})
