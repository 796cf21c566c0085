import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type ClaimItem, DEFAULT_GAME_PARAMS, DEFAULT_SETTLEMENT_PARAMS, deliveryDigest, deployTessera, receiptDigest, requestDigest } from './client.js'
import { connectClients, deployContract } from './evm/clients.js'
import { createEmbeddedChain } from './evm/edr.js'
import { loadArtifacts } from './artifacts.js'
import type { Hex } from 'viem'

test('the chain client and Settlement compute the same request, receipt (v2) and delivery digests', async () => {
  const chain = await createEmbeddedChain({ accounts: 1 })
  try {
    const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    const d = await deployTessera(c)
    const hex = (x: string) => `0x${x.repeat(64)}` as Hex
    const it: ClaimItem = {
      req: { provider: `0x${'7'.repeat(40)}`, modelRoot: hex('1'), promptRoot: hex('2'), paramsHash: hex('3'), seed: 2n ** 64n - 1n, nonce: 5n, expiry: 2n ** 40n, maxTokens: 4096, pricePerToken: 2n ** 127n },
      r: hex('0'), vs: hex('0'), outputRoot: hex('4'), traceRoot: hex('5'), nPrompt: 7, nOutput: 9, nLayer: 32,
      ack: { nOutput: 3, outputRoot: hex('6'), r: hex('0'), vs: hex('0') },
    }
    const read = (functionName: string, args: unknown[]) => c.public.readContract({ address: d.settlement, abi: loadArtifacts().contracts.Settlement.abi, functionName, args } as never) as Promise<Hex>
    const rd = requestDigest(chain.chainId, d.settlement, it.req)
    assert.equal(await read('requestDigest', [it.req]), rd)
    assert.equal(await read('receiptDigest', [it]), receiptDigest(chain.chainId, d.settlement, it))
    assert.equal(await read('deliveryDigest', [rd, 3, hex('6')]), deliveryDigest(chain.chainId, d.settlement, { request: rd, nOutput: 3, outputRoot: hex('6') }))
  } finally {
    await chain.close()
  }
})

test('the build writes each ABI as a TypeScript module identical to build/contracts.json', async () => {
  // The client's types come from this module (import type); the run-time ABI from contracts.json.
  const script: string = '../../scripts/build/50-contracts.mjs'
  const { default: buildContracts } = (await import(script)) as { default: (o: { quiet: boolean }) => void }
  buildContracts({ quiet: true })
  const generated: string = '#abi'
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
    // A 100% slash reward burns nothing, so a provider's own sock puppet would take back the whole slash.
    await assert.rejects(deployTessera(c, { settlement: { rewardBps: 10_000 } }), /settlement rewardBps must be below 10000/)
    // Past the client's check, the constructor itself refuses a zero audit probability.
    const registry = (await deployContract(c, { name: 'ModelRegistry' })).address
    await assert.rejects(deployContract(c, { name: 'Settlement', args: [registry, { ...DEFAULT_SETTLEMENT_PARAMS, auditBps: 0 }] }))
    await assert.rejects(deployContract(c, { name: 'Settlement', args: [registry, { ...DEFAULT_SETTLEMENT_PARAMS, rewardBps: 10_000 }] }))
    const settlement = (await deployContract(c, { name: 'Settlement', args: [registry, DEFAULT_SETTLEMENT_PARAMS] })).address
    // A game clock of zero, or a per-move increment above the clock, is refused.
    const math = (await deployContract(c, { name: 'MachineMath' })).address
    const steps = [(await deployContract(c, { name: 'MachineStepsA', args: [math] })).address, (await deployContract(c, { name: 'MachineStepsB', args: [math, registry] })).address]
    const machine = (await deployContract(c, { name: 'Machine', args: steps })).address
    await assert.rejects(deployContract(c, { name: 'DisputeGame', args: [settlement, machine, { ...DEFAULT_GAME_PARAMS, clock: 0n, increment: 0n }] }))
    await assert.rejects(deployContract(c, { name: 'DisputeGame', args: [settlement, machine, { ...DEFAULT_GAME_PARAMS, clock: 100n, increment: 101n }] }))
    await deployContract(c, { name: 'DisputeGame', args: [settlement, machine, { ...DEFAULT_GAME_PARAMS, clock: 100n, increment: 100n }] })
  } finally {
    await chain.close()
  }
})
