import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createPublicClient, custom, parseEther, toHex } from 'viem'
import { getArtifact } from '../artifacts.js'
import { fakeModel } from '../devnet.js'
import { connectClients, deployContract } from './clients.js'
import { createEmbeddedChain, devAccount } from './edr.js'

test('embedded chain starts fast with pre-funded deterministic accounts', async () => {
  const t0 = performance.now()
  const chain = await createEmbeddedChain({ accounts: 3 })
  const ms = performance.now() - t0
  assert.ok(ms < 1000, `start took ${ms} ms`)
  assert.equal(chain.accounts.length, 3)
  assert.equal(chain.accounts[1].address, devAccount(1).address)
  const pub = createPublicClient({ transport: custom(chain.provider) })
  assert.equal(await pub.getBalance({ address: chain.accounts[2].address }), 10n ** 24n)
  assert.equal(await pub.getChainId(), 31337)
  await chain.close()
})

test('unknown methods fail with -32601 so viem does not retry', async () => {
  const chain = await createEmbeddedChain({ accounts: 1 })
  await assert.rejects(chain.provider.request({ method: 'eth_fillTransaction', params: [{}] }), (e: { code: number; name: string }) => e.code === -32601 && e.name === 'RpcRequestError')
  await chain.close()
})

test('deploys a compiled contract and restores state from the journal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-chain-'))
  try {
    const chain = await createEmbeddedChain({ dataDir: dir, accounts: 2 })
    const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    const { address } = await deployContract(c, { name: 'ModelRegistry' })
    const abi = getArtifact('ModelRegistry').abi
    const m = fakeModel('edr-journal', 4)
    await c.wallet.writeContract({ address, abi, functionName: 'register', args: [m.modelRoot, m.config, m.tokenizerHash, toHex('tessera-arith/1', { size: 32 }), 0, m.path] })
    await c.public.request({ method: 'evm_increaseTime' as never, params: [3600] as never })
    await c.wallet.sendTransaction({ to: chain.accounts[1].address, value: parseEther('1') })
    const block = await c.public.getBlock()
    await chain.close()

    const again = await createEmbeddedChain({ dataDir: dir })
    assert.equal(again.replayed, 4)
    const c2 = connectClients({ transport: again.provider, chainId: again.chainId, privateKey: again.accounts[0].privateKey })
    assert.equal(await c2.public.readContract({ address, abi, functionName: 'isRegistered', args: [m.modelRoot] }), true)
    const block2 = await c2.public.getBlock()
    assert.equal(block2.hash, block.hash)
    assert.equal(await c2.public.getBalance({ address: again.accounts[1].address }), 10n ** 24n + parseEther('1'))
    await again.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
