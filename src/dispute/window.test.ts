// Sliding-window models in the dispute game (docs/MACHINE.md "Sliding window"): a model whose root
// commits to an attention window W (config leaf tessera-config/3+window) is registered with it, and
// the judge runs SCORE, MAX, EXPS, ZINV and ATT over the last min(p + 1, W) positions. Whole jobs on
// the embedded chain, played to their end by the one pair of players against the Solidity judge, on
// the tiny llama Q8_0 model (2 layers, 3 prompt tokens, 3 answer tokens, positions 0 .. 4):
// (a) a W = 2 model served by a provider whose engine ignored the window (full attention) loses
//     the STORE one-step of layer 0 at position 2, the first the two tell apart, and is slashed
//     (its machine, the node's, runs the registered window: its ops agree with the auditor's up
//     to the trace leaf it committed);
// (b) a model without a window served with one (W = 2) loses the same way;
// (c) an honest W = 2 provider is not disputed by an auditor replaying under the registration;
// (d) the (a) cheater defending with a machine that follows its own engine (full attention) cannot
//     open its SCORE slot at the length the judge reads from the registry (nh · min(p + 1, W)):
//     it is stuck there and loses on the clock (a judge that ignored the window would side with it).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { WHY, openGame } from '../chain/actions/disputeGame.js'
import { getModelWindow } from '../chain/actions/registry.js'
import { createDisputeDevnet } from '../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../test/support/disputeJobs.js'
import { type AttackJob, attackJob, serveJob } from './attack.js'
import { createChallenger } from './players/challenger.js'
import { createDefender } from './players/defender.js'
import { playGame } from './players/play.js'
import { replayJob } from './replay.js'
import { createReplayTraceProvider } from './traceProvider.js'
import type { DisputeModel } from './model.js'

let plain: DisputeModel
let windowed: DisputeModel
let net: Awaited<ReturnType<typeof createDisputeDevnet>>
let nonce = 0n
before(async () => {
  // two roots: seeds 4 (no window) and 3 (W = 2), so one chain registers both
  plain = await tinyDisputeModel('tiny', 'q8_0', 4)
  windowed = await tinyDisputeModel('tiny', 'q8_0', 3, undefined, 2)
  net = await createDisputeDevnet()
})
after(async () => {
  await net?.close()
  plain?.close()
  windowed?.close()
})

const JOB: AttackJob = { prompt: [11, 250, 3], params: { ...GREEDY, maxTokens: 3, stop: [] }, seed: 5n }

for (const [name, model] of [['(a) a W = 2 model served with full attention', () => windowed], ['(b) a model without a window served with W = 2', () => plain]] as const) {
  test(`${name}: the provider loses the STORE of (p = 2, layer 0) on chain and is slashed`, async (t) => {
    const m = model()
    await net.topUp()
    const r = await attackJob({ net, model: m, job: JOB, cheat: 'window', seed: 1, nonce: nonce++ })
    assert.equal(await getModelWindow(net.deployer, net.d, m.tree.modelRoot), m.window, 'registered with the window its root commits to')
    assert.ok(r.disputed, 'the auditor replaying under the registered window disputes')
    assert.equal(r.winner, 'challenger', JSON.stringify(r.game?.moves.map((x) => x.move)))
    const c = r.cheat!
    assert.equal(c.leaf, 2 * (m.config.nLayer + 1), 'the traces first differ at (p = 2, layer 0)')
    assert.equal(c.opName, 'STORE', 'the last op-level leaf (its own trace leaf) is where it parts from the machine')
    assert.deepEqual([r.game!.why, r.game!.at.level, r.game!.at.traceLeaf, r.game!.at.op], [WHY.STEP_CHECKED, 1, c.leaf, c.op], 'the judge decided the one-step (op level)')
    t.diagnostic(`lost at trace leaf ${c.leaf}, op ${c.op} ${c.opName}: why ${r.game!.why} after ${r.game!.rounds} challenger moves`)
    assert.ok(r.after.provider.stake < r.before.provider.stake, 'the cheater is slashed')
    assert.ok(r.after.challenger.owed > r.before.challenger.owed, 'the challenger is paid the slash reward')
    assert.ok(r.conserved, 'value conserved')
  })
}

test('(c) an honest W = 2 provider: the auditor\'s replay under the registered window agrees, no game', async () => {
  await net.topUp()
  const r = await attackJob({ net, model: windowed, job: JOB, seed: 2, nonce: nonce++ })
  assert.equal(r.disputed, false)
  assert.equal(r.winner, 'provider')
})

test('(d) a full-attention cheater whose machine follows its engine is stuck at SCORE (the judge\'s n_u is the registered window\'s) and loses on the clock', async () => {
  await net.topUp()
  const { d, provider, auditor } = net
  const j = await serveJob({ net, model: windowed, job: JOB, cheat: 'window', seed: 3, nonce: nonce++ })
  const { slidingWindow: _, ...fullConfig } = windowed.config
  const tf = Object.assign(Object.create(Object.getPrototypeOf(windowed.tf) as object), windowed.tf, { config: fullConfig })
  const own = createReplayTraceProvider({ ...windowed, tf, config: fullConfig, window: 0 }, j.served)
  assert.equal(own.traceTree().root.join(), j.mine.traceTree().root.join(), 'the same committed trace')
  const honest = createReplayTraceProvider(windowed, replayJob(windowed.tf, j.spec, { forced: j.delivered }))
  const opened = await openGame(auditor, d, { ...j.open, bond: BigInt(d.params.game.challengerBond) })
  const defender = createDefender({ clients: provider, deployment: d, gameId: opened.gameId, trace: own, cfg: j.cfg })
  const challenger = createChallenger({ clients: auditor, deployment: d, gameId: opened.gameId, trace: honest, depthBond: BigInt(d.params.game.depthBond) })
  const game = await playGame({ defender, challenger, anyone: net.deployer, deployment: d, warp: (s) => net.warp(s) })
  assert.equal(game.providerWon, false)
  assert.equal(game.why, WHY.TIMED_OUT)
  assert.equal(game.stuck?.side, 'provider')
  assert.ok(game.moves.some((m) => m.move === 'enterOp SCORE'), JSON.stringify(game.moves.map((m) => m.move)))
})
