// The replay behind every TraceProvider and the cheaters built on it, without a chain: the replay's
// trace leaves are runJob's; an honest provider and an honest auditor agree everywhere; each cheat
// is self-consistent after its position (every later transition the cheater commits is its own
// machine run) and, played in memory against the TypeScript judge (test/support/localGame.ts),
// loses exactly where it cheated. Kinds a job does not have fail by name.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { runJob } from '../trace/job.js'
import { toHex } from '../trace/merkle.js'
import { playLocally } from '../../test/support/localGame.js'
import { GREEDY, tinyDisputeModel, tinySpec } from '../../test/support/disputeJobs.js'
import { HEAD_TABLE, LAYER_TABLE } from '../engine/model/opTable.js'
import { type CheatKind, CheatNotApplicableError, OP_KINDS, findEndingPrompt, makeCheat, opOfKind } from './cheats.js'
import type { DisputeModel } from './model.js'
import { INVALID_LEAF, replayJob } from './replay.js'
import { createReplayTraceProvider } from './traceProvider.js'

let m: DisputeModel
before(async () => {
  m = await tinyDisputeModel('tiny', 'q8_0', 3)
})
after(() => m?.close())

const PENALIZED = { ...GREEDY, repeatPenalty: 1.3, repeatLastN: 4 }
const SAMPLED = { temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, repeatPenalty: 1, repeatLastN: 64, seed: 9n }

test('OP_KINDS are the kinds of the engine op table rows with element programs, in table order, one kind per row', () => {
  const rows = [...LAYER_TABLE, ...HEAD_TABLE].filter((r) => r.code !== 'LOAD' && r.code !== 'STORE' && r.code !== 'TOKEN')
  const kindsOf = (r: (typeof rows)[number]) => OP_KINDS.filter((k) => opOfKind({ op: 0, code: r.code, name: r.name, slot: r.slot, block: false, length: 0 }, k))
  for (const r of rows) assert.equal(kindsOf(r).length, 1, `row ${r.name}: ${kindsOf(r).join(', ') || 'no kind'}`)
  assert.deepEqual([...new Set(rows.map((r) => kindsOf(r)[0]))], [...OP_KINDS])
})

test('replayJob commits the same trace leaves and answer as runJob (greedy with penalty, and sampled)', () => {
  for (const sampling of [PENALIZED, SAMPLED]) {
    const spec = tinySpec(m, [11, 250, 3], 4, sampling)
    const r = replayJob(m.tf, spec)
    const tok = { decodeToken: () => new Uint8Array(0), eogTokens: new Set(m.eogTokens) }
    const { seed, ...rest } = sampling
    const gen = runJob(m.tf, tok, new Uint8Array(32), { promptTokens: [11, 250, 3], params: { ...rest, maxTokens: 4, stop: [] }, seed })
    let done = gen.next()
    while (!done.done) done = gen.next()
    assert.deepEqual(r.outputs, done.value.outputTokens)
    assert.deepEqual(r.leaves.map(toHex), done.value.leaves.map(toHex))
    // an auditor following the delivered answer replays the same leaves
    assert.deepEqual(replayJob(m.tf, spec, { forced: r.outputs }).leaves.map(toHex), r.leaves.map(toHex))
  }
})

test('the honest provider and the honest auditor agree at every level they can be asked about', () => {
  const spec = tinySpec(m, [11, 250, 3], 3, PENALIZED)
  const honest = replayJob(m.tf, spec)
  const mine = createReplayTraceProvider(m, honest)
  const theirs = createReplayTraceProvider(m, replayJob(m.tf, spec, { forced: honest.outputs }))
  assert.equal(toHex(mine.traceTree().root), toHex(theirs.traceTree().root))
  assert.deepEqual(playLocally(mine, theirs), { providerWon: true, how: 'no-divergence', leaf: -1 })
  // every transition's last op-level leaf is its own committed trace leaf
  for (const i of [0, 5, 8]) assert.equal(toHex(mine.transition(i).opTree().leaves.at(-1)!), toHex(honest.leaves[i]))
})

/** The first seed's result that is not CheatNotApplicableError (the last seed's error otherwise). */
function firstApplicable<T>(make: (seed: number) => T, seeds: readonly number[]): T {
  for (const [i, seed] of seeds.entries()) {
    try {
      return make(seed)
    } catch (e) {
      if (!(e instanceof CheatNotApplicableError) || i === seeds.length - 1) throw e
    }
  }
  throw new RangeError('no seeds')
}

const KINDS: [CheatKind, typeof PENALIZED | typeof SAMPLED][] = [
  ['embed', PENALIZED], ['norm', PENALIZED], ['quant32', PENALIZED], ['k', PENALIZED], ['rotcs', PENALIZED], ['score', PENALIZED],
  ['att', PENALIZED], ['res', PENALIZED], ['down', PENALIZED], ['logits', PENALIZED], ['penalty', PENALIZED], ['argmax', PENALIZED],
  ['sort', SAMPLED], ['keep', SAMPLED], ['draw', SAMPLED], ['prompt', PENALIZED], ['no-compute', PENALIZED], ['micro', PENALIZED],
  ['deliver', PENALIZED],
]

for (const [kind, sampling] of KINDS) {
  test(`${kind}: the cheater's trace is its own run after the cheat, and it loses where it cheated`, () => {
    const spec = tinySpec(m, [11, 250, 3], 3, sampling)
    const honest = replayJob(m.tf, spec)
    // a seed whose falsified value changes this job's trace (a SORT or KEEP value need not: the
    // draw may pick the same token; which seed does depends on the job's logits)
    const c = firstApplicable((seed) => makeCheat(m, spec, honest, kind, seed), [4, 5, 6, 7])
    const auditor = createReplayTraceProvider(m, replayJob(m.tf, spec, { forced: c.delivered ?? c.trace.outputs }))
    const o = playLocally(c.provider, auditor)
    assert.equal(o.providerWon, false, JSON.stringify(o))
    assert.equal(o.leaf, c.where.leaf)
    if (c.where.op !== undefined) assert.deepEqual([o.op, o.elem, o.how], [c.where.op, c.where.elem, 'step'])
    else assert.equal(o.how, 'one-step')
    // micro: the step into the falsified middle state, not the element's last step
    if (c.where.step !== undefined) assert.equal(o.step, c.where.step)
    // deliver: the head that computed another token than the one delivered, at its STORE
    if (kind === 'deliver') assert.equal(o.opName, 'STORE')
    if (kind !== 'no-compute') {
      const n = c.provider.traceTree().leaves.length
      for (const i of [c.where.leaf + 1, n - 1]) {
        if (i >= n) continue
        assert.equal(toHex(c.provider.transition(i).machine.post), toHex(c.provider.traceTree().leaves[i]), `leaf ${i} is the cheater's own machine run`)
      }
    }
  })
}

test('length: the answer goes on past its end token; the first head that consumes it has no honest state', () => {
  const spec = tinySpec(m, [1, 2], 4, GREEDY)
  const prompt = findEndingPrompt(m, spec, 1, 4000)
  assert.ok(prompt)
  const s = { ...spec, prompt }
  const honest = replayJob(m.tf, s)
  const c = makeCheat(m, s, honest, 'length', 2)
  assert.ok(c.trace.outputs.length > honest.outputs.length)
  const auditor = replayJob(m.tf, s, { forced: c.trace.outputs })
  assert.equal(toHex(auditor.leaves[c.where.leaf]), toHex(INVALID_LEAF))
  const o = playLocally(c.provider, createReplayTraceProvider(m, auditor))
  assert.deepEqual([o.providerWon, o.leaf, o.how, o.opName], [false, c.where.leaf, 'one-step', 'STORE'])
})

test('kinds a job does not have fail by name', () => {
  const spec = tinySpec(m, [11, 250, 3], 3, GREEDY)
  const honest = replayJob(m.tf, spec)
  for (const kind of ['qb', 'penalty', 'draw'] as const) assert.throws(() => makeCheat(m, spec, honest, kind, 1), { name: 'CheatNotApplicableError' })
  if (!m.eogTokens.includes(honest.outputs.at(-1)!)) assert.throws(() => makeCheat(m, spec, honest, 'length', 1), CheatNotApplicableError)
})
