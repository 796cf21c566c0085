// qwen3's per-head q/k RMSNorm in the dispute game: on the tiny qwen3 model (head 128 beside width
// 256, tied embeddings) an honest provider and auditor agree everywhere; a cheat in each of the
// four new ops (QS, KS: a head's RMS scale; QN, KN: a normed value) loses exactly where it cheated,
// at the element's micro-step, against the TypeScript judge; and the q-norm cheat played to its end
// on the embedded chain (the Solidity judge) loses, the cheater slashed, the books balanced.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { playLocally } from '../../test/support/localGame.js'
import { createDisputeDevnet } from '../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel, tinySpec } from '../../test/support/disputeJobs.js'
import { toHex } from '../trace/merkle.js'
import { attackJob } from './attack.js'
import { type CheatKind, makeCheat } from './cheats.js'
import type { DisputeModel } from './model.js'
import { replayJob } from './replay.js'
import { createReplayTraceProvider } from './traceProvider.js'

let m: DisputeModel
before(async () => {
  m = await tinyDisputeModel('tiny-qwen3', 'q8_0', 3)
})
after(() => m?.close())

const PROMPT = [11, 250, 3]

test('qwen3: the honest provider and auditor agree; the transitions hold the per-head norm ops', () => {
  const spec = tinySpec(m, PROMPT, 3)
  const honest = replayJob(m.tf, spec)
  const mine = createReplayTraceProvider(m, honest)
  const theirs = createReplayTraceProvider(m, replayJob(m.tf, spec, { forced: honest.outputs }))
  assert.equal(toHex(mine.traceTree().root), toHex(theirs.traceTree().root))
  assert.deepEqual(playLocally(mine, theirs), { providerWon: true, how: 'no-divergence', leaf: -1 })
  const names = mine.transition(1).ops.map((o) => o.name)
  assert.deepEqual(names.slice(names.indexOf('V'), names.indexOf('QR') + 1), ['V', 'QS', 'QN', 'KS', 'KN', 'FREQ', 'ROTCS', 'QR'])
})

for (const kind of ['qn', 'qs', 'kn', 'ks'] as CheatKind[]) {
  test(`qwen3 ${kind}: a falsified per-head norm value loses at its own leaf, op and element`, () => {
    const spec = tinySpec(m, PROMPT, 3)
    const honest = replayJob(m.tf, spec)
    const c = makeCheat(m, spec, honest, kind, 4)
    const auditor = createReplayTraceProvider(m, replayJob(m.tf, spec, { forced: c.delivered ?? c.trace.outputs }))
    const o = playLocally(c.provider, auditor)
    assert.equal(o.providerWon, false, JSON.stringify(o))
    assert.equal(o.leaf, c.where.leaf)
    assert.deepEqual([o.op, o.elem, o.how], [c.where.op, c.where.elem, 'step'])
    assert.equal(c.provider.transition(c.where.leaf).ops[c.where.op! - 1].name, kind.toUpperCase())
  })
}

test('qwen3 qn on chain: the Solidity judge decides the q-norm step against the cheater, who is slashed', async () => {
  const net = await createDisputeDevnet()
  try {
    await net.topUp()
    const r = await attackJob({ net, model: m, job: { prompt: PROMPT, params: { ...GREEDY, maxTokens: 3, stop: [] }, seed: 5n }, cheat: 'qn', seed: 5, nonce: 0n })
    assert.ok(r.disputed, 'the auditor disputes')
    assert.equal(r.winner, 'challenger', JSON.stringify(r.game?.moves.map((x) => x.move)))
    const c = r.cheat!
    assert.deepEqual([r.game!.at.traceLeaf, r.game!.at.op, r.game!.at.elem], [c.leaf, c.op, c.elem], 'the game ends at the falsified element')
    assert.ok(r.after.provider.stake < r.before.provider.stake, 'the cheater is slashed')
    assert.ok(r.conserved, 'value conserved')
  } finally {
    await net.close()
  }
})
