// The dispute lifecycle on the embedded chain: who wins, what moves where (slash, refund, bonds,
// pay), clocks, unbonding during a dispute. Games on real tiny jobs are played to the machine's
// micro-step by the one pair of players (src/dispute/players/); the clock and unbonding scenarios
// need only a trace tree (TRACE: made-up leaves, as in attacks.test.ts). Every cheat kind and liar:
// src/dispute/attack.test.ts; named reverts of every move: src/dispute/players/moves.test.ts.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Hex, parseEther } from 'viem'
import { type Totals, finalizeBatch, getBalances, getTotals, unstake, withdrawOwed, withdrawStake } from './actions/settlement.js'
import { DEFAULT_GAME_PARAMS, jobAmount } from './client.js'
import { PHASE, choose, getGame, openGame, reveal, revealedChildren, timeout, withdraw } from './actions/disputeGame.js'
import { type Devnet, Tree, claimJob, createDevnet, h, isConserved } from './devnet.js'
import type { ChainClients } from './evm/clients.js'
import { type ServedJob, serveJob } from '../dispute/attack.js'
import { type CheatKind, seededRng } from '../dispute/cheats.js'
import type { DisputeModel } from '../dispute/model.js'
import { createChallenger } from '../dispute/players/challenger.js'
import { createDefender } from '../dispute/players/defender.js'
import { playGame } from '../dispute/players/play.js'
import { replayJob } from '../dispute/replay.js'
import { createReplayTraceProvider } from '../dispute/traceProvider.js'
import { createDisputeDevnet } from '../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../test/support/disputeJobs.js'
import { openRealModel, type RealModel } from '../../test/support/realModel.js'

const BOND = 10n ** 17n
/** A trace of made-up leaves (depth 4, as the 3-layer job's): the clock and unbonding games end at the first reveal. */
const TRACE = new Tree(Array.from({ length: 12 }, (_, i) => h(`leaf${i}`)))
const DEPTH_BOND = DEFAULT_GAME_PARAMS.depthBond

function assertConserved(t: Totals) {
  assert.ok(isConserved(t))
}

const rejectsWith = (p: Promise<unknown>, errorName: string) =>
  assert.rejects(p, (e: { errorName?: string }) => e.errorName === errorName)

let m: RealModel
let tiny: DisputeModel
before(async () => {
  m = openRealModel('q8_0', 3)
  tiny = await tinyDisputeModel('tiny', 'q8_0', 3)
})
after(() => {
  m?.close()
  tiny?.close()
})

function claimOne(net: Devnet, traceRoot: Hex, nonce: bigint) {
  return claimJob(net, traceRoot, { nonce }, m.tree)
}

const JOB = { prompt: [11, 250, 3], params: { ...GREEDY, maxTokens: 3, stop: [] }, seed: 0n }

/** A real tiny job served by a provider that cheats by `cheat` (or honestly) and claimed in its own batch. */
function serveOne(net: Devnet, nonce: bigint, cheat?: CheatKind): Promise<ServedJob> {
  return serveJob({ net, model: tiny, job: JOB, cheat, seed: 3, nonce })
}

/** Plays game `gameId` on job `j` to its end: the provider's defender against `who`'s honest (or lying) challenger. */
function playOut(net: Devnet, j: ServedJob, gameId: bigint, who: ChainClients, lie = false) {
  const theirs = createReplayTraceProvider(tiny, replayJob(tiny.tf, j.spec, { forced: j.served.outputs }))
  const defender = createDefender({ clients: net.provider, deployment: net.d, gameId, trace: j.mine, cfg: j.cfg })
  const challenger = createChallenger({
    clients: who, deployment: net.d, gameId, trace: theirs, depthBond: DEPTH_BOND,
    lie: lie ? { rng: seededRng(5) } : undefined,
  })
  return playGame({ defender, challenger, anyone: net.deployer, deployment: net.d, warp: (s) => net.warp(s) })
}

/** Depth bonds a game took: the op level's first choice, and naming an element. */
// One depth bond per level below the trace at which the challenger moved (op, slot, micro-step).
const levelOf = (move: string) => (move.startsWith('nameElement') ? 2 : Number(/^choose L(\d)/.exec(move)?.[1] ?? 0))
const depthBonds = (r: Awaited<ReturnType<typeof playOut>>) =>
  BigInt(new Set(r.moves.filter((x) => x.side === 'challenger').map((x) => levelOf(x.move)).filter((l) => l > 0)).size) * DEPTH_BOND

test('an honest challenger wins: the provider is slashed, the client refunded', async () => {
  const net = await createDisputeDevnet()
  try {
    const { d, provider, client, challenger } = net
    const job = await serveOne(net, 1n, 'att') // one attention output falsified
    const { batchId, item, proof } = { ...job.open, batchId: job.batchId }
    const escrowBefore = (await getBalances(client, d, client.account.address)).escrow
    const { gameId } = await openGame(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    // A second challenger opens its own game on the same job (nobody's open game blocks another's).
    const second = (await openGame(net.auditor, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })).gameId
    await rejectsWith(reveal(challenger, d, { gameId, children: [] }), 'NotYourTurn')
    const r = await playOut(net, job, gameId, challenger)
    assert.deepEqual([r.providerWon, r.why, r.at.op, r.at.elem], [false, 1, job.cheat!.where.op, job.cheat!.where.elem], 'decided at the falsified element')
    assert.equal((await getGame(provider, d, { gameId: gameId })).phase, PHASE.CHALLENGER_WON)
    assert.equal((await getBalances(client, d, client.account.address)).escrow, escrowBefore + jobAmount(item))
    // Slash = max(exposureOf(price), min provider stake) = 1 ETH; half to the challenger, half burned.
    const stakeAfter = (await getBalances(provider, d, provider.account.address)).stake.active
    assert.equal(stakeAfter, parseEther('9'))
    const totals = await getTotals(client, d)
    assert.equal(totals.burned, parseEther('0.5'))
    assert.equal((await getBalances(challenger, d, challenger.account.address)).owed, parseEther('0.5'))
    await withdrawOwed(challenger, d)
    assert.equal((await getBalances(challenger, d, challenger.account.address)).owedByGame, BOND + depthBonds(r))
    await withdraw(challenger, d) // the opening bond and the depth bonds come back
    await rejectsWith(withdraw(challenger, d), 'NothingToWithdraw')
    // The second game on the lost job is void: its bond comes back, nothing is slashed or refunded twice.
    await timeout(client, d, { gameId: second })
    assert.equal((await getGame(provider, d, { gameId: second })).phase, PHASE.CHALLENGER_WON)
    assert.equal((await getBalances(net.auditor, d, net.auditor.account.address)).owedByGame, BOND)
    assert.equal((await getBalances(provider, d, provider.account.address)).stake.active, parseEther('9'))
    // INVARIANT: a lost job cannot be disputed (or refunded) again.
    await rejectsWith(openGame(net.auditor, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND }), 'LeafAlreadyDisputed')
    await net.warp(86400)
    await finalizeBatch(provider, d, { batchId })
    assert.equal((await getBalances(provider, d, provider.account.address)).owed, 0n)
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})

test('an honest provider wins against a wrong challenge and keeps its pay', async () => {
  const net = await createDisputeDevnet()
  try {
    const { d, provider, client, challenger } = net
    const job = await serveOne(net, 2n)
    const { batchId, item, proof } = { ...job.open, batchId: job.batchId }
    const { gameId } = await openGame(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    const r = await playOut(net, job, gameId, challenger, true) // a seeded pick of correct positions
    assert.deepEqual([r.providerWon, r.why], [true, 1], 'the machine confirms the provider\'s step')
    assert.equal((await getGame(provider, d, { gameId: gameId })).phase, PHASE.PROVIDER_WON)
    // The challenger's bond grew by the depth bonds it paid going down; half goes to the provider.
    assert.equal((await getGame(provider, d, { gameId: gameId })).bond, BOND + depthBonds(r))
    assert.equal((await getBalances(provider, d, provider.account.address)).owedByGame, (BOND + depthBonds(r)) / 2n)
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
    const a = await claimOne(net, TRACE.root, 3n)
    const g1 = (await openGame(challenger, d, { batchId: a.batchId, jobIndex: 0n, item: a.item, client: client.account.address, proof: a.proof, bond: BOND })).gameId
    await rejectsWith(timeout(client, d, { gameId: g1 }), 'ClockRunning')
    await net.warp(86401)
    await rejectsWith(reveal(provider, d, { gameId: g1, children: TRACE.children(0, 0n, 4) }), 'ClockExpired')
    await timeout(client, d, { gameId: g1 })
    assert.equal((await getGame(provider, d, { gameId: g1 })).phase, PHASE.CHALLENGER_WON)

    const b = await claimOne(net, TRACE.root, 4n)
    const g2 = (await openGame(challenger, d, { batchId: b.batchId, jobIndex: 0n, item: b.item, client: client.account.address, proof: b.proof, bond: BOND })).gameId
    await reveal(provider, d, { gameId: g2, children: TRACE.children(0, 0n, 4) })
    await net.warp(86401)
    await timeout(provider, d, { gameId: g2 })
    assert.equal((await getGame(provider, d, { gameId: g2 })).phase, PHASE.PROVIDER_WON)
    await rejectsWith(timeout(provider, d, { gameId: g2 }), 'GameOver')
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
    const { batchId, item, proof } = await claimOne(net, TRACE.root, 5n)
    const { gameId } = await openGame(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    await unstake(provider, d, { amount: parseEther('0.5') })
    await net.warp(7 * 86400 + 1)
    await rejectsWith(withdrawStake(provider, d), 'DisputeOpen')
    await timeout(client, d, { gameId }) // the provider never answered
    const s = (await getBalances(provider, d, provider.account.address)).stake
    assert.equal(s.unbonding, 0n, 'the whole unbonding stake was slashed')
    await rejectsWith(withdrawStake(provider, d), 'NothingToWithdraw')
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})

test('depth bonds: the challenger\'s first move at each level below the trace (op, slot, micro-step) carries exactly depthBond', async () => {
  const net = await createDisputeDevnet()
  try {
    const { d, provider, client, challenger } = net
    const job = await serveOne(net, 6n, 'silu')
    const { batchId, item, proof } = { ...job.open, batchId: job.batchId }
    const { gameId } = await openGame(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    const theirs = createReplayTraceProvider(tiny, replayJob(tiny.tf, job.spec, { forced: job.served.outputs }))
    const defender = createDefender({ clients: provider, deployment: d, gameId, trace: job.mine, cfg: job.cfg })
    const auditor = createChallenger({ clients: challenger, deployment: d, gameId, trace: theirs, depthBond: DEPTH_BOND })
    const checked = new Set<number>()
    const levels = new Set<number>()
    for (let g = await getGame(provider, d, { gameId: gameId }); g.phase !== PHASE.CHALLENGER_WON; g = await getGame(provider, d, { gameId: gameId })) {
      if ((g.phase === PHASE.CHOOSE || g.phase === PHASE.NAME) && g.level > 0) levels.add(g.level)
      if (g.phase === PHASE.CHOOSE && !checked.has(g.level) && g.level <= 1) {
        checked.add(g.level)
        const children = await revealedChildren(challenger, d, { gameId })
        // At the trace level no depth bond is due; at the op level the first choice needs exactly one.
        if (g.level === 0) await rejectsWith(choose(challenger, d, { gameId, children, choice: 0n, bond: DEPTH_BOND }), 'BondMismatch')
        else {
          await rejectsWith(choose(challenger, d, { gameId, children, choice: 0n }), 'BondMismatch')
          await rejectsWith(choose(challenger, d, { gameId, children, choice: 0n, bond: DEPTH_BOND + 1n }), 'BondMismatch')
        }
      }
      assert.ok((await defender.act()) ?? (await auditor.act()), 'someone moves')
      const after = await getGame(provider, d, { gameId: gameId })
      if (after.level === 1 && after.phase === PHASE.REVEAL && checked.has(1)) assert.equal(after.bond, BOND + DEPTH_BOND)
    }
    assert.deepEqual([...checked], [0, 1])
    assert.ok(levels.has(1) && levels.has(2), 'the game went below the op level')
    assert.equal((await getGame(provider, d, { gameId: gameId })).bond, BOND + BigInt(levels.size) * DEPTH_BOND, 'one per level the challenger moved at')
  } finally {
    await net.close()
  }
})

test('no op upholds the provider any more: SILU(gate) * up, which the first game could not check, is decided at its micro-step', async () => {
  const net = await createDisputeDevnet()
  try {
    const { d, client, challenger } = net
    const job = await serveOne(net, 7n, 'silu')
    const { gameId } = await openGame(challenger, d, { ...job.open, batchId: job.batchId, bond: BOND })
    const r = await playOut(net, job, gameId, challenger)
    assert.deepEqual([r.providerWon, r.why, r.at.level, r.at.op], [false, 1, 3, job.cheat!.where.op])
    assert.match(job.cheat!.where.opName!, /SILU/)
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})

test('a sock puppet\'s stalled game on the job blocks nobody: the auditor opens its own game and wins the judged step', async () => {
  const net = await createDisputeDevnet()
  try {
    const { d, provider, client, challenger } = net
    const puppet = net.at(5)
    const job = await serveOne(net, 8n, 'att') // the provider's trace is wrong at one attention output
    const { batchId, item, proof } = { ...job.open, batchId: job.batchId }
    // The provider's second account disputes first and never moves again.
    const stalled = (await openGame(puppet, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })).gameId
    const { gameId } = await openGame(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: BOND })
    await playOut(net, job, gameId, challenger)
    assert.equal((await getGame(provider, d, { gameId: gameId })).phase, PHASE.CHALLENGER_WON)
    // The slash reward goes to the game that flagged the job first, the puppet's (docs/CHAIN.md
    // "Disputes nobody can block"): the provider still loses the burned half.
    assert.equal((await getBalances(puppet, d, puppet.account.address)).owed, parseEther('0.5'))
    // The puppet's game is void: its bond back, no second slash.
    await timeout(client, d, { gameId: stalled })
    assert.equal((await getGame(provider, d, { gameId: stalled })).phase, PHASE.CHALLENGER_WON)
    assert.equal((await getBalances(puppet, d, puppet.account.address)).owedByGame, BOND)
    assert.equal((await getBalances(provider, d, provider.account.address)).stake.active, parseEther('9'))
    assertConserved(await getTotals(client, d))
  } finally {
    await net.close()
  }
})
