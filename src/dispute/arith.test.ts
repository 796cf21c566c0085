// The arithmetic in the dispute game (docs/MACHINE.md "Which arithmetic"): a model is judged under
// the arithmetic it is registered under, tessera-arith/1 or /2 (v1 with the cached K and V that
// attention reads rounded to binary16). Whole jobs on the embedded chain, played to their end by the
// one pair of players against the Solidity judge, on the tiny llama Q8_0 model (2 layers, 3 prompt
// tokens, 3 answer tokens):
// (a) a v2 model served by a provider whose attention skipped the rounding (v1) loses at a DOT8 or
//     ACC step, the only steps the two arithmetics do not share, and is slashed;
// (b) a v1 model served with v2's binary16 KV cache loses the same way;
// (c) an honest v2 provider disputed by a challenger that replays under v1 wins: the judge executes
//     the disputed DOT8 / ACC step under the registration's v2 and confirms the provider's.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { WHY, openGame } from '../chain/actions/disputeGame.js'
import { registerTree } from '../chain/devnet.js'
import { ARITH_V1, ARITH_V2, type ArithVersion } from '../engine/version.js'
import { createDisputeDevnet } from '../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../test/support/disputeJobs.js'
import { type AttackJob, attackJob, serveJob } from './attack.js'
import { nextStep } from './machine/program.js'
import { type DisputeModel, registeredArith, registrationArith } from './model.js'
import { createChallenger } from './players/challenger.js'
import { createDefender } from './players/defender.js'
import { playGame } from './players/play.js'
import { type JobSpec, replayJob } from './replay.js'
import { ArithMismatchError, type TraceProvider, createReplayTraceProvider } from './traceProvider.js'

let v1: DisputeModel
let v2: DisputeModel
let net: Awaited<ReturnType<typeof createDisputeDevnet>>
let nonce = 0n
before(async () => {
  // two model roots (seeds), so that one chain registers one under each arithmetic
  v1 = { ...(await tinyDisputeModel('tiny', 'q8_0', 4)), arith: ARITH_V1 }
  v2 = { ...(await tinyDisputeModel('tiny', 'q8_0', 3)), arith: ARITH_V2 }
  net = await createDisputeDevnet()
})
after(async () => {
  await net?.close()
  v1?.close()
  v2?.close()
})

const JOB: AttackJob = { prompt: [11, 250, 3], params: { ...GREEDY, maxTokens: 3, stop: [] }, seed: 5n }

/** The micro-step kind that takes state `step - 1` of element `elem` of op `op` at trace leaf `leaf` to state `step`. */
function stepKind(view: TraceProvider, leaf: number, op: number, elem: number, step: number): string {
  const t = view.transition(leaf)
  return `${t.ops[op - 1].name} ${nextStep(t.ops, t.elementStates(op, elem)[step - 1]).name}`
}

for (const [name, model, other] of [['(a) a v2 model served under v1', () => v2, ARITH_V1], ['(b) a v1 model served under v2', () => v1, ARITH_V2]] as const) {
  test(`${name}: the provider loses at a DOT8 or ACC step, on chain, and is slashed`, async (t) => {
    const m = model()
    await net.topUp()
    const r = await attackJob({ net, model: m, job: JOB, cheat: 'arith', seed: 1, nonce: nonce++ })
    assert.ok(r.disputed, 'the auditor replaying under the registered arithmetic disputes')
    assert.equal(r.winner, 'challenger', JSON.stringify(r.game?.moves.map((x) => x.move)))
    assert.equal(r.game!.why, WHY.STEP_CHECKED, 'the machine decided a step')
    const c = r.cheat!
    assert.deepEqual([r.game!.at.level, r.game!.at.traceLeaf, r.game!.at.op, r.game!.at.elem, r.game!.at.step], [3, c.leaf, c.op, c.elem, c.step], 'where the traces first differ')
    const honest = createReplayTraceProvider(m, replayJob(m.tf, { prompt: JOB.prompt, sampling: { ...GREEDY, seed: JOB.seed }, maxTokens: 3, eogTokens: m.eogTokens, arith: m.arith }))
    const kind = stepKind(honest, c.leaf, c.op!, c.elem!, c.step!)
    assert.match(kind, /^(SCORE DOT8|ATT ACC)$/)
    assert.notEqual(m.arith, other)
    t.diagnostic(`lost at trace leaf ${c.leaf}, ${kind} element ${c.elem} step ${c.step}, ${r.game!.rounds} challenger moves`)
    assert.ok(r.after.provider.stake < r.before.provider.stake, 'the cheater is slashed')
    assert.ok(r.after.challenger.owed > r.before.challenger.owed, 'the challenger is paid the slash reward')
    assert.ok(r.conserved, 'value conserved')
  })
}

test('(c) an honest v2 provider against a challenger that replays under v1: the judge confirms the v2 step', async (t) => {
  await net.topUp()
  const { d, provider, auditor } = net
  const j = await serveJob({ net, model: v2, job: JOB, seed: 2, nonce: nonce++ })
  // the challenger's replay and machine under v1, on the v2 model's answer
  const wrong = { ...v2, arith: ARITH_V1 as ArithVersion }
  const theirs = createReplayTraceProvider(wrong, replayJob(v2.tf, { ...j.spec, arith: ARITH_V1 }, { forced: j.delivered }))
  const opened = await openGame(auditor, d, { ...j.open, bond: BigInt(d.params.game.challengerBond) })
  const defender = createDefender({ clients: provider, deployment: d, gameId: opened.gameId, trace: j.mine, cfg: j.cfg })
  const challenger = createChallenger({ clients: auditor, deployment: d, gameId: opened.gameId, trace: theirs, depthBond: BigInt(d.params.game.depthBond) })
  const game = await playGame({ defender, challenger, anyone: net.deployer, deployment: d, warp: (s) => net.warp(s) })
  assert.equal(game.providerWon, true, JSON.stringify(game.moves.map((x) => x.move)))
  assert.equal(game.why, WHY.STEP_CHECKED, 'the machine confirmed the provider\'s step')
  assert.equal(game.at.level, 3)
  const kind = stepKind(j.mine, game.at.traceLeaf, game.at.op, game.at.elem, game.at.step)
  assert.match(kind, /^(SCORE DOT8|ATT ACC)$/)
  t.diagnostic(`won at trace leaf ${game.at.traceLeaf}, ${kind} element ${game.at.elem} step ${game.at.step}`)
})

test('registeredArith reads the registration back (v1, v2); an unregistered root has none', async () => {
  for (const m of [v1, v2]) await registerTree(net, m.tree, m.arith)
  assert.equal(await registeredArith(net.deployer, net.d, v1.tree.modelRoot), ARITH_V1)
  assert.equal(await registeredArith(net.deployer, net.d, v2.tree.modelRoot), ARITH_V2)
  await assert.rejects(registeredArith(net.deployer, net.d, `0x${'42'.repeat(32)}`), { name: 'UnknownArithError' })
  // registrationArith: the same read, undefined (not an error) for the unregistered root
  assert.equal(await registrationArith(net.deployer, net.d, v2.tree.modelRoot), ARITH_V2)
  assert.equal(await registrationArith(net.deployer, net.d, `0x${'42'.repeat(32)}`), undefined)
})

test('a replay under one arithmetic is never played with a machine under the other', () => {
  const spec: JobSpec = { prompt: JOB.prompt, sampling: { ...GREEDY, seed: 0n }, maxTokens: 2, eogTokens: v2.eogTokens, arith: ARITH_V1 }
  assert.throws(() => createReplayTraceProvider(v2, replayJob(v2.tf, spec)), ArithMismatchError)
})
