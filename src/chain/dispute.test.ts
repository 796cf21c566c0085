// The dispute lifecycle on the embedded chain: who wins, what moves where (slash, refund, bonds,
// pay), clocks, unbonding during a dispute. Games end in the BLOCK_TERM one-step of a real weight
// row (boundTrace.ts's row scenario); the one-step rules themselves are onestep.dispute.test.ts's.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Hex, parseEther } from 'viem'
import { type BoundTrace, expansionOf, playBoundTrace, rowScenario } from './boundTrace.js'
import {
  type Totals, DEFAULT_GAME_PARAMS, PHASE, chooseChild, claimTimeout,
  expandLevel, finalizeBatch, getBalances, getGame, getTotals, jobAmount, openDispute,
  revealChildren, revealPre, unstake, withdrawFromGame, withdrawOwed, withdrawStake,
} from './client.js'
import { type Devnet, claimJob, createDevnet, descendTo, isConserved } from './devnet.js'
import { openRealModel, type RealModel } from './realModel.js'

const BOND = 10n ** 17n
const DEPTH_BOND = DEFAULT_GAME_PARAMS.depthBond

function assertConserved(t: Totals) {
  assert.ok(isConserved(t))
}

const rejectsWith = (p: Promise<unknown>, errorName: string) =>
  assert.rejects(p, (e: { errorName?: string }) => e.errorName === errorName)

let m: RealModel
before(() => {
  m = openRealModel('q8_0', 3)
})
after(() => m?.close())

function claimOne(net: Devnet, traceRoot: Hex, nonce: bigint) {
  return claimJob(net, traceRoot, { nonce }, m.tree)
}

/** Plays the row scenario to its BLOCK_TERM one-step at block 9, which the provider then sends. */
async function playToStep(net: Devnet, gameId: bigint, s: ReturnType<typeof rowScenario>) {
  await playBoundTrace(net, gameId, s.t, 10)
  const g = await getGame(net.provider, net.d, gameId)
  assert.equal(g.phase, PHASE.STEP)
  assert.equal(g.level, 3)
  return s.oneStep(net, gameId, 9)
}

test('an honest challenger wins: the provider is slashed, the client refunded', async () => {
  const net = await createDevnet()
  try {
    const { d, provider, client, challenger } = net
    const sc = rowScenario(m, 9)
    const { batchId, item, proof } = await claimOne(net, sc.t.l0.root, 1n)
    const escrowBefore = (await getBalances(client, d, client.account.address)).escrow
    const { gameId } = await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    // A second challenger opens its own game on the same job (nobody's open game blocks another's).
    const second = (await openDispute(net.auditor, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })).gameId
    await rejectsWith(revealChildren(challenger, d, { gameId, children: [] }), 'NotYourTurn')
    await playToStep(net, gameId, sc)
    assert.equal((await getGame(provider, d, gameId)).phase, PHASE.CHALLENGER_WON)
    assert.equal((await getBalances(client, d, client.account.address)).escrow, escrowBefore + jobAmount(item))
    // Slash = max(exposureOf(price) = price / (p (1 - rewardBps)), min provider stake) = 1 ETH; half to the challenger, half burned.
    const stakeAfter = (await getBalances(provider, d, provider.account.address)).stake.active
    assert.equal(stakeAfter, parseEther('9'))
    const totals = await getTotals(client, d)
    assert.equal(totals.burned, parseEther('0.5'))
    assert.equal((await getBalances(challenger, d, challenger.account.address)).owed, parseEther('0.5'))
    await withdrawOwed(challenger, d)
    assert.equal((await getBalances(challenger, d, challenger.account.address)).owedByGame, BOND + 3n * DEPTH_BOND)
    await withdrawFromGame(challenger, d) // the opening bond and the three depth bonds come back
    await rejectsWith(withdrawFromGame(challenger, d), 'NothingToWithdraw')
    // The second game on the lost job is void: its bond comes back, nothing is slashed or refunded twice.
    await claimTimeout(client, d, { gameId: second })
    assert.equal((await getGame(provider, d, second)).phase, PHASE.CHALLENGER_WON)
    assert.equal((await getBalances(net.auditor, d, net.auditor.account.address)).owedByGame, BOND)
    assert.equal((await getBalances(provider, d, provider.account.address)).stake.active, parseEther('9'))
    // INVARIANT: a lost job cannot be disputed (or refunded) again.
    await rejectsWith(openDispute(net.auditor, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND }), 'LeafAlreadyDisputed')
    await net.warp(86400)
    await finalizeBatch(provider, d, { batchId })
    assert.equal((await getBalances(provider, d, provider.account.address)).owed, 0n)
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})

test('an honest provider wins against a wrong challenge and keeps its pay', async () => {
  const net = await createDevnet()
  try {
    const { d, provider, client, challenger } = net
    const sc = rowScenario(m)
    const { batchId, item, proof } = await claimOne(net, sc.t.l0.root, 2n)
    const { gameId } = await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    await playToStep(net, gameId, sc)
    assert.equal((await getGame(provider, d, gameId)).phase, PHASE.PROVIDER_WON)
    // The challenger's bond grew by the depth bond at each of the 3 levels below the trace; half goes to the provider.
    assert.equal((await getGame(provider, d, gameId)).bond, BOND + 3n * DEPTH_BOND)
    assert.equal((await getBalances(provider, d, provider.account.address)).owedByGame, (BOND + 3n * DEPTH_BOND) / 2n)
    assert.equal((await getBalances(provider, d, provider.account.address)).stake.active, parseEther('10'))
    await net.warp(86400)
    await finalizeBatch(provider, d, { batchId })
    assert.equal((await getBalances(provider, d, provider.account.address)).owed, jobAmount(item))
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})

test('timeouts: a silent provider loses, a silent challenger loses', async () => {
  const net = await createDevnet()
  try {
    const { d, provider, client, challenger } = net
    const t = rowScenario(m).t
    const a = await claimOne(net, t.l0.root, 3n)
    const g1 = (await openDispute(challenger, d, { batchId: a.batchId, jobIndex: 0n, item: a.item, client: client.account.address, proof: a.proof, bond: BOND })).gameId
    await rejectsWith(claimTimeout(client, d, { gameId: g1 }), 'ClockRunning')
    await net.warp(86401)
    await rejectsWith(revealChildren(provider, d, { gameId: g1, children: t.l0.children(0, 0n, 4) }), 'ClockExpired')
    await claimTimeout(client, d, { gameId: g1 })
    assert.equal((await getGame(provider, d, g1)).phase, PHASE.CHALLENGER_WON)

    const b = await claimOne(net, t.l0.root, 4n)
    const g2 = (await openDispute(challenger, d, { batchId: b.batchId, jobIndex: 0n, item: b.item, client: client.account.address, proof: b.proof, bond: BOND })).gameId
    await revealChildren(provider, d, { gameId: g2, children: t.l0.children(0, 0n, 4) })
    await net.warp(86401)
    await claimTimeout(provider, d, { gameId: g2 })
    assert.equal((await getGame(provider, d, g2)).phase, PHASE.PROVIDER_WON)
    await rejectsWith(claimTimeout(provider, d, { gameId: g2 }), 'GameOver')
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})

test('unbonding during a dispute: stake stays slashable and cannot leave', async () => {
  // 1.5 coin: the claim locks its exposure, and the active stake left after unbonding 0.5 must
  // stay at the 1-coin minimum; the slash's floor top-up takes the unbonding 0.5 first.
  const net = await createDevnet({ providerStake: parseEther('1.5') })
  try {
    const { d, provider, client, challenger } = net
    const { t } = rowScenario(m, 9)
    const { batchId, item, proof } = await claimOne(net, t.l0.root, 5n)
    const { gameId } = await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    await unstake(provider, d, { amount: parseEther('0.5') })
    await net.warp(7 * 86400 + 1)
    await rejectsWith(withdrawStake(provider, d), 'DisputeOpen')
    await claimTimeout(client, d, { gameId }) // the provider never answered
    const s = (await getBalances(provider, d, provider.account.address)).stake
    assert.equal(s.unbonding, 0n, 'the whole unbonding stake was slashed')
    await rejectsWith(withdrawStake(provider, d), 'NothingToWithdraw')
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})

test('depth bonds: the challenger\'s first choice at each level below the trace carries exactly depthBond', async () => {
  const net = await createDevnet()
  try {
    const { d, provider, client, challenger } = net
    const { t } = rowScenario(m)
    const { batchId, item, proof } = await claimOne(net, t.l0.root, 6n)
    const { gameId } = await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    // At the trace level no depth bond is due: a choice carrying one is refused.
    const top = t.l0.children(0, 0n, 4)
    await revealChildren(provider, d, { gameId, children: top })
    const first = BigInt(t.traceLeaf >> (t.l0.depth - 4)) // the child on the way to the trace leaf
    await rejectsWith(chooseChild(challenger, d, { gameId, children: top, choice: first, bond: DEPTH_BOND }), 'BondMismatch')
    await chooseChild(challenger, d, { gameId, children: top, choice: first })
    await descendTo(net, gameId, t.l0, t.traceLeaf)
    await revealPre(provider, d, { gameId, preLeaf: t.l0.leaves[t.traceLeaf - 1], proof: t.l0.proof(t.traceLeaf - 1) })
    // The op list has the op table's 15 ops; any other count is refused.
    const e = expansionOf(t.l1)
    await rejectsWith(expandLevel(provider, d, { gameId, ...e, lastLeaf: 14n, proofLast: t.l1.proof(14) }), 'WrongLeafCount')
    await expandLevel(provider, d, { gameId, ...e })
    const children = t.l1.children(0, 0n, 4)
    await revealChildren(provider, d, { gameId, children })
    await rejectsWith(chooseChild(challenger, d, { gameId, children, choice: BigInt(t.opLeaf) }), 'BondMismatch')
    await rejectsWith(chooseChild(challenger, d, { gameId, children, choice: BigInt(t.opLeaf), bond: DEPTH_BOND + 1n }), 'BondMismatch')
    await chooseChild(challenger, d, { gameId, children, choice: BigInt(t.opLeaf), bond: DEPTH_BOND })
    assert.equal((await getGame(provider, d, gameId)).bond, BOND + DEPTH_BOND)
  } finally {
    await net.close()
  }
})

test('an op the judge cannot check yet (here SILU(gate) * up) upholds the provider as soon as the challenger points at it', async () => {
  const net = await createDevnet()
  try {
    const { d, provider, client, challenger } = net
    const { t } = rowScenario(m, 9) // wrong somewhere, but the challenger disputes op 13, not the matmul
    const { batchId, item, proof } = await claimOne(net, t.l0.root, 7n)
    const { gameId } = await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    const op13: BoundTrace = { ...t, opLeaf: 13 }
    await playBoundTrace(net, gameId, op13, 1).catch(() => undefined) // stops where the game ends
    const g = await getGame(provider, d, gameId)
    assert.deepEqual([g.level, g.phase], [1, PHASE.PROVIDER_WON])
    assert.equal((await getBalances(provider, d, provider.account.address)).owedByGame, (BOND + DEPTH_BOND) / 2n)
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})

test('a sock puppet\'s stalled game on the job blocks nobody: the auditor opens its own game and wins the judged step', async () => {
  const net = await createDevnet()
  try {
    const { d, provider, client, challenger } = net
    const puppet = net.at(5)
    const sc = rowScenario(m, 9) // the provider's trace is wrong at block 9
    const { batchId, item, proof } = await claimOne(net, sc.t.l0.root, 8n)
    // The provider's second account disputes first and never moves again.
    const stalled = (await openDispute(puppet, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })).gameId
    const { gameId } = await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    await playToStep(net, gameId, sc)
    assert.equal((await getGame(provider, d, gameId)).phase, PHASE.CHALLENGER_WON)
    // The slash reward goes to the game that flagged the job first, the puppet's (docs/CHAIN.md
    // "Disputes nobody can block"): the provider still loses the burned half.
    assert.equal((await getBalances(puppet, d, puppet.account.address)).owed, parseEther('0.5'))
    // The puppet's game is void: its bond back, no second slash.
    await claimTimeout(client, d, { gameId: stalled })
    assert.equal((await getGame(provider, d, stalled)).phase, PHASE.CHALLENGER_WON)
    assert.equal((await getBalances(puppet, d, puppet.account.address)).owedByGame, BOND)
    assert.equal((await getBalances(provider, d, provider.account.address)).stake.active, parseEther('9'))
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})
