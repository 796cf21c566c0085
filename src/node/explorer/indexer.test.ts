// The explorer's indexer on the embedded chain: an honest job and a cheated one (attackJob plays
// the cheater's whole game in-process), indexed from the chain alone. Asserts the jobs, the game's
// levels (trace -> op -> element -> micro-step, each round's revealed children and the chosen one),
// the verdict and the slash amount against the books attackJob read.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { WHY } from '../../chain/actions/disputeGame.js'
import { attackJob } from '../../dispute/attack.js'
import type { DisputeModel } from '../../dispute/model.js'
import { createDisputeDevnet } from '../../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../../test/support/disputeJobs.js'
import { createIndexer } from './indexer.js'

let model: DisputeModel
let net: Awaited<ReturnType<typeof createDisputeDevnet>>
before(async () => {
  model = await tinyDisputeModel('tiny', 'q8_0', 3)
  net = await createDisputeDevnet()
})
after(async () => {
  await net?.close()
  model?.close()
})

const params = { ...GREEDY, repeatPenalty: 1, repeatLastN: 4, maxTokens: 3, stop: [] }

test('indexes an honest job, a cheated job, its game level by level, the verdict and the slash', async () => {
  const ix = createIndexer({ clients: net.deployer, deployment: net.d, maxRange: 7n })
  const changes: string[][] = []
  ix.onChange((c) => changes.push(c.jobs))
  const honest = await attackJob({ net, model, job: { prompt: [11, 250, 3], params, seed: 1n }, seed: 1, nonce: 0n })
  assert.equal(honest.disputed, false)
  for (let i = 0; i < 100 && (await ix.poll()); i++);
  let s = ix.snapshot()
  assert.equal(s.providers.length, 1, 'the staked provider')
  assert.equal(s.providers[0].address.toLowerCase(), net.provider.account.address.toLowerCase())
  assert.equal(s.providers[0].models.length, 1, 'its advertised model')
  assert.equal(s.jobs.length, 1)
  const j0 = s.jobs[0]
  assert.equal(j0.state, 'claimed')
  assert.equal(j0.nPrompt, 3)
  assert.ok(j0.receipt?.traceRoot, 'the receipt from the claim calldata')
  assert.ok(changes.some((c) => c.includes(j0.id)), 'listeners told of the job')

  await net.topUp()
  const r = await attackJob({ net, model, job: { prompt: [11, 250, 3], params, seed: 2n }, cheat: 'micro', seed: 7, nonce: 1n })
  assert.equal(r.winner, 'challenger')
  for (let i = 0; i < 1000 && (await ix.poll()); i++);
  s = ix.snapshot()
  assert.equal(s.games.length, 1)
  const g = s.games[0]
  assert.equal(g.jobId, s.jobs[0].id, 'the game is on the cheated job')
  assert.equal(s.jobs[0].state, 'lost', 'the cheated job is lost')
  assert.deepEqual(s.jobs[0].games, [g.id])
  assert.deepEqual(g.levels.map((l) => l.name), ['trace', 'op', 'element', 'micro-step'])
  for (const l of g.levels) {
    // the element level bisects only an op with more than one element (this one named its one)
    if (l.name !== 'element') assert.ok(l.rounds.length > 0, `${l.name}: rounds`)
    for (const round of l.rounds) assert.ok(round.children.length >= 2, `${l.name}: revealed children`)
    assert.ok(l.rounds.every((x) => x.chosen), `${l.name}: every round has the challenger's choice`)
  }
  assert.ok(g.levels[1].op, 'the op entered')
  assert.ok(g.levels[2].element, 'the element named')
  assert.deepEqual(g.resolved && [g.resolved.providerWon, g.resolved.why], [false, r.game!.why])
  assert.notEqual(g.resolved!.why, WHY.TIMED_OUT)
  assert.equal(g.slashes.length, 1, 'one slash')
  const slash = g.slashes[0]
  assert.equal(slash.amount, r.before.provider.stake - r.after.provider.stake, 'the slash amount is what the provider lost')
  assert.equal(slash.account.toLowerCase(), net.provider.account.address.toLowerCase())
  assert.equal(slash.beneficiary.toLowerCase(), net.auditor.account.address.toLowerCase())
  assert.equal(slash.reward + slash.burned, slash.amount, 'where the value went')
  assert.ok(g.state.challengerClock > 0n && g.state.providerClock > 0n, 'clocks read from the chain')
  const p = s.providers[0]
  assert.equal(p.slashed, slash.amount)
  assert.deepEqual(p.games, { won: 0, lost: 1, open: 0 })
  assert.ok(p.reputation < 1)
  assert.equal(s.economics.at(-1)?.slashed, slash.amount)
  assert.equal(s.economics.at(-1)?.jobs, 2)
})
