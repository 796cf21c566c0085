import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Hex, parseEther } from 'viem'
import {
  type ClaimItem, type MicroStep, type Totals, DEFAULT_GAME_PARAMS, OPCODE, PHASE, batchLeaf, batchTree, chooseChild, claimBatch, claimTimeout, deposit,
  expandLevel, finalizeBatch, getBalances, getGame, getTotals, jobAmount, microStepLeaf, oneStep, openDispute,
  revealChildren, revealPre, unstake, withdrawFromGame, withdrawOwed, withdrawStake,
} from './client.js'
import { type Devnet, Tree, createDevnet, descendTo, h, isConserved, makeItem, makeRequest } from './devnet.js'

const F = { one: 0x3f800000, two: 0x40000000, three: 0x40400000, half: 0x3f000000, threeHalf: 0x40600000, four: 0x40800000 }
const BOND = 10n ** 17n
const DEPTH_BOND = DEFAULT_GAME_PARAMS.depthBond

function assertConserved(t: Totals) {
  assert.ok(isConserved(t))
}

const rejectsWith = (p: Promise<unknown>, errorName: string) =>
  assert.rejects(p, (e: { errorName?: string }) => e.errorName === errorName)

/**
 * A toy trace provider: a 20-leaf trace (nPrompt 3, nOutput 2, 4 layers) whose leaf 7 (position 1,
 * layer 2) hides a wrong (or, for an honest provider, a correct) micro-step three levels down:
 * op level [L6, o1 .. o11, x1, x2, o14, L7] (op 13 = SILU(gate) * up, a scalar op) -> element
 * level [x1, y1, x2] -> primitive level [x1, m1, m2, m3 = y1].
 */
function toyTrace(wrong: boolean) {
  const m1: MicroStep = { opcode: OPCODE.F32_ADD, chain: 0, a: F.one, b: F.two, result: F.three }
  const m2: MicroStep = { opcode: OPCODE.F32_ADD, chain: 1, a: F.three, b: F.half, result: wrong ? F.four : F.threeHalf }
  const m3: MicroStep = { opcode: OPCODE.F32_MUL, chain: 1, a: m2.result, b: F.one, result: m2.result }
  const x1 = h('x1'), x2 = h('x2')
  const y1 = microStepLeaf(m3)
  const leaves: Hex[] = Array.from({ length: 20 }, (_, i) => h(`leaf${i}`))
  const l0 = new Tree(leaves)
  const ops: Hex[] = Array.from({ length: 14 }, (_, i) => h(`op${i + 1}`))
  ops[11] = x1
  ops[12] = x2
  const l1 = new Tree([leaves[6], ...ops, leaves[7]])
  const l2 = new Tree([x1, y1, x2])
  const l3 = new Tree([x1, microStepLeaf(m1), microStepLeaf(m2), y1])
  return { m1, m2, m3, l0, l1, l2, l3 }
}

async function claimOne(net: Devnet, traceRoot: Hex, nonce: bigint) {
  const { d, provider, client } = net
  await deposit(client, d, { amount: parseEther('1') })
  const item: ClaimItem = await makeItem(net, client, makeRequest(net, { nonce }), { traceRoot, nPrompt: 3, nOutput: 2, nLayer: 4 })
  const { batchId } = await claimBatch(provider, d, { items: [item] })
  const leaf = batchLeaf(net.chain.chainId, d.settlement, item, client.account.address)
  return { batchId, item, proof: batchTree([leaf]).proof(0) }
}

/** Plays the whole game down to the primitive step; returns the toy trace. */
async function playToStep(net: Devnet, gameId: bigint, t: ReturnType<typeof toyTrace>) {
  const { d, provider } = net
  await descendTo(net, gameId, t.l0, 7)
  assert.equal((await getGame(provider, d, gameId)).phase, PHASE.REVEAL_PRE)
  await revealPre(provider, d, { gameId, preLeaf: t.l0.leaves[6], proof: t.l0.proof(6) })
  // The op list has the op table's 15 ops; any other count is refused.
  await rejectsWith(expandLevel(provider, d, { gameId, root: t.l1.root, depth: 4, lastLeaf: 14n, proofFirst: t.l1.proof(0), proofLast: t.l1.proof(14) }), 'WrongLeafCount')
  await expandLevel(provider, d, { gameId, root: t.l1.root, depth: 4, lastLeaf: 15n, proofFirst: t.l1.proof(0), proofLast: t.l1.proof(15) })
  // The challenger's first choice below the trace carries the depth bond, exactly.
  const children = t.l1.children(0, 0n, 4)
  await revealChildren(provider, d, { gameId, children })
  await rejectsWith(chooseChild(net.challenger, d, { gameId, children, choice: 13n }), 'BondMismatch')
  await rejectsWith(chooseChild(net.challenger, d, { gameId, children, choice: 13n, bond: DEPTH_BOND + 1n }), 'BondMismatch')
  await chooseChild(net.challenger, d, { gameId, children, choice: 13n, bond: DEPTH_BOND })
  await revealPre(provider, d, { gameId, preLeaf: t.l1.leaves[12], proof: t.l1.proof(12) })
  await expandLevel(provider, d, { gameId, root: t.l2.root, depth: 2, lastLeaf: 2n, proofFirst: t.l2.proof(0), proofLast: t.l2.proof(2) })
  await descendTo(net, gameId, t.l2, 1)
  await expandLevel(provider, d, { gameId, root: t.l3.root, depth: 2, lastLeaf: 3n, proofFirst: t.l3.proof(0), proofLast: t.l3.proof(3) })
  await descendTo(net, gameId, t.l3, 2)
  await revealPre(provider, d, { gameId, preLeaf: t.l3.leaves[1], proof: t.l3.proof(1) })
  const g = await getGame(provider, d, gameId)
  assert.equal(g.phase, PHASE.STEP)
  assert.equal(g.level, 3)
}

test('an honest challenger wins: the provider is slashed, the client refunded', async () => {
  const net = await createDevnet()
  try {
    const { d, provider, client, challenger } = net
    const t = toyTrace(true)
    const { batchId, item, proof } = await claimOne(net, t.l0.root, 1n)
    const escrowBefore = (await getBalances(client, d, client.account.address)).escrow
    const { gameId } = await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    await rejectsWith(openDispute(net.auditor, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND }), 'LeafAlreadyDisputed')
    await rejectsWith(revealChildren(challenger, d, { gameId, children: [] }), 'NotYourTurn')
    await playToStep(net, gameId, t)
    await oneStep(provider, d, { gameId, pre: t.m1, post: t.m2 })
    assert.equal((await getGame(provider, d, gameId)).phase, PHASE.CHALLENGER_WON)
    assert.equal((await getBalances(client, d, client.account.address)).escrow, escrowBefore + jobAmount(item))
    // Slash = max(price / p, min provider stake) = 1 ETH; half to the challenger, half burned.
    const stakeAfter = (await getBalances(provider, d, provider.account.address)).stake.active
    assert.equal(stakeAfter, parseEther('9'))
    const totals = await getTotals(client, d)
    assert.equal(totals.burned, parseEther('0.5'))
    assert.equal((await getBalances(challenger, d, challenger.account.address)).owed, parseEther('0.5'))
    await withdrawOwed(challenger, d)
    await withdrawFromGame(challenger, d) // the bond comes back
    await rejectsWith(withdrawFromGame(challenger, d), 'NothingToWithdraw')
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
    const t = toyTrace(false)
    const { batchId, item, proof } = await claimOne(net, t.l0.root, 2n)
    const { gameId } = await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    await playToStep(net, gameId, t)
    // A forged preimage is refused; the true one wins.
    await rejectsWith(oneStep(provider, d, { gameId, pre: t.m1, post: { ...t.m2, result: F.four } }), 'BadPreimage')
    await oneStep(provider, d, { gameId, pre: t.m1, post: t.m2 })
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
    const t = toyTrace(false)
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
    const t = toyTrace(true)
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
