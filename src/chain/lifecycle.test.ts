import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Abi, parseEther } from 'viem'
import { getArtifact } from './artifacts.js'
import {
  type Totals, advertise, claimBatch, deposit, finalizeBatch, getBalances, getBatch, getTotals, stake,
  unstake, withdrawEscrow, withdrawOwed, withdrawStake,
} from './actions/settlement.js'
import { registerModel } from './actions/registry.js'
import { type ClaimItem, batchLeaf, batchTree } from './client.js'
import { openGame } from './actions/disputeGame.js'
import { deployContract } from './evm/clients.js'
import { type Devnet, createDevnet, fakeModel, h, isConserved, makeItem, makeRequest } from './devnet.js'

let net: Devnet
before(async () => {
  net = await createDevnet()
})
after(async () => net.close())

const rejectsWith = (p: Promise<unknown>, errorName: string) =>
  assert.rejects(p, (e: { name: string; errorName?: string }) => {
    assert.equal(e.name, 'ContractRevertError')
    assert.equal(e.errorName, errorName)
    return true
  })

/** INVARIANT: the contracts hold exactly what their books say (nothing minted, nothing lost). */
function assertConserved(t: Totals) {
  assert.ok(isConserved(t), JSON.stringify(t, (_, v) => (typeof v === 'bigint' ? v.toString() : v)))
}

test('register, stake, advertise, serve, claim, finalize, withdraw', async () => {
  const { d, provider, client } = net
  await advertise(provider, d, { modelRoot: net.modelRoot, pricePerToken: 10n ** 12n })
  await deposit(client, d, { amount: parseEther('1') })
  const items: ClaimItem[] = []
  for (let i = 0; i < 3; i++) items.push(await makeItem(net, client, makeRequest(net, { nonce: BigInt(100 + i) })))
  const { batchId } = await claimBatch(provider, d, { items })
  const price = 30n * 10n ** 12n * 3n
  const batch = await getBatch(provider, d, batchId)
  assert.equal(batch.amount, price)
  assert.equal(batch.count, 3)
  const leaves = items.map((it) => batchLeaf(net.chain.chainId, d.settlement, it, client.account.address))
  assert.equal(batch.root, batchTree(leaves).root, 'TS and Solidity batch roots agree')
  assert.equal((await getBalances(client, d, client.account.address)).escrow, parseEther('1') - price)
  await rejectsWith(finalizeBatch(provider, d, { batchId }), 'ChallengeWindowOpen')
  await net.warp(86400)
  await finalizeBatch(client, d, { batchId })
  await rejectsWith(finalizeBatch(provider, d, { batchId }), 'BatchNotPending')
  // INVARIANT: a finalized claim cannot be disputed.
  await rejectsWith(openGame(net.challenger, d, { batchId, jobIndex: 0n, item: items[0], client: client.account.address, proof: batchTree(leaves).proof(0), bond: 10n ** 17n }), 'BatchNotPending')
  assert.equal((await getBalances(provider, d, provider.account.address)).owed, price)
  await withdrawOwed(provider, d)
  // INVARIANT: nobody withdraws twice.
  await rejectsWith(withdrawOwed(provider, d), 'NothingToWithdraw')
  await withdrawEscrow(client, d, { amount: parseEther('0.5') })
  await rejectsWith(withdrawEscrow(client, d, { amount: parseEther('1') }), 'InsufficientEscrow')
  assertConserved(await getTotals(client, d))
})

test('models are immutable and stake must reach the minimum', async () => {
  const { d, auditor, client } = net
  await rejectsWith(registerModel(client, d, { ...fakeModel('model', 4), arithVersion: h('z') }), 'ModelAlreadyRegistered')
  await rejectsWith(stake(auditor, d, { role: 'auditor', amount: parseEther('0.01') }), 'StakeTooLow')
  await stake(auditor, d, { role: 'auditor', amount: parseEther('0.2') })
  await rejectsWith(stake(auditor, d, { role: 'provider', amount: parseEther('2') }), 'WrongRole')
  await rejectsWith(unstake(auditor, d, { amount: parseEther('0.15') }), 'StakeTooLow')
  await rejectsWith(advertise(auditor, d, { modelRoot: net.modelRoot, pricePerToken: 1n }), 'WrongRole')
  // A client that never staked cannot claim, even with a valid request naming it.
  await deposit(client, d, { amount: parseEther('0.1') })
  const item = await makeItem(net, client, makeRequest(net, { provider: auditor.account.address, nonce: 7n }))
  await rejectsWith(claimBatch(auditor, d, { items: [item] }), 'WrongRole')
  await rejectsWith(claimBatch(net.provider, d, { items: [] }), 'EmptyBatch')
})

test('replayed, forged and foreign signatures are refused', async () => {
  const { d, provider, client, challenger } = net
  await deposit(client, d, { amount: parseEther('0.1') })
  const item = await makeItem(net, client, makeRequest(net, { nonce: 500n }))
  await claimBatch(provider, d, { items: [item] })
  await rejectsWith(claimBatch(provider, d, { items: [item] }), 'JobAlreadyClaimed')
  // Same request twice in one batch.
  const twin = await makeItem(net, client, makeRequest(net, { nonce: 501n }))
  await rejectsWith(claimBatch(provider, d, { items: [twin, twin] }), 'JobAlreadyClaimed')
  // A signature over other fields recovers a stranger, whom the client's delivery acknowledgement does not name.
  const forged: ClaimItem = { ...twin, req: { ...twin.req, pricePerToken: twin.req.pricePerToken * 100n } }
  await rejectsWith(claimBatch(provider, d, { items: [forged] }), 'NotAcknowledged')
  // Another provider cannot claim a request naming this one.
  await stake(challenger, d, { role: 'provider', amount: parseEther('1') })
  await rejectsWith(claimBatch(challenger, d, { items: [twin] }), 'NotTheProvider')
  // High-s (malleable) signatures are refused outright.
  const highS: ClaimItem = { ...twin, vs: `0x${'f'.repeat(64)}` }
  await rejectsWith(claimBatch(provider, d, { items: [highS] }), 'BadSignature')
  // Expired requests and too many tokens.
  const old = await makeItem(net, client, makeRequest(net, { nonce: 502n, expiry: 1n }))
  await rejectsWith(claimBatch(provider, d, { items: [old] }), 'RequestExpired')
  const long = await makeItem(net, client, makeRequest(net, { nonce: 503n, maxTokens: 10 }))
  await rejectsWith(claimBatch(provider, d, { items: [long] }), 'TooManyTokens')
  assertConserved(await getTotals(client, d))
})

test('unbonding waits for the delay', async () => {
  const { d, auditor } = net
  await unstake(auditor, d, { amount: parseEther('0.2') })
  await rejectsWith(withdrawStake(auditor, d), 'StillUnbonding')
  await net.warp(7 * 86400 + 1)
  const before = (await getBalances(auditor, d, auditor.account.address)).stake
  assert.equal(before.unbonding, parseEther('0.2'))
  await withdrawStake(auditor, d)
  await rejectsWith(withdrawStake(auditor, d), 'NothingToWithdraw')
  assertConserved(await getTotals(auditor, d))
})

test('reentrancy is impossible: a re-entering receiver cannot withdraw twice', async () => {
  const { d, deployer } = net
  const { address } = await deployContract(deployer, { name: 'ReentrantClient', args: [d.settlement] })
  const abi = getArtifact('ReentrantClient').abi as Abi
  await deployer.wallet.writeContract({ address, abi, functionName: 'fund', args: [], value: parseEther('1') })
  const hash = await deployer.wallet.writeContract({ address, abi, functionName: 'attack', args: [parseEther('1')], gas: 500_000n })
  const rc = await deployer.public.waitForTransactionReceipt({ hash })
  assert.equal(rc.status, 'reverted')
  assert.equal((await getBalances(deployer, d, address)).escrow, parseEther('1'))
  assertConserved(await getTotals(deployer, d))
})
