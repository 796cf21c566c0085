// replayJob following a delivered answer (`forced`, the auditor) replays teacher-forced in batches:
// the same outputs, leaves, logits and per-(position, layer) states as the token-at-a-time loop
// that generates the same answer, for any batch size, also where the delivered answer departs
// from the model's (INVALID_LEAF heads), where it runs past the context, and under overrides.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { GREEDY, tinyDisputeModel, tinySpec } from '../../test/support/disputeJobs.js'
import { toHex } from '../trace/merkle.js'
import type { DisputeModel } from './model.js'
import { INVALID_LEAF, type JobTrace, replayJob } from './replay.js'

let m: DisputeModel
before(async () => {
  m = await tinyDisputeModel('tiny', 'q8_0', 3)
})
after(() => m?.close())

const PENALIZED = { ...GREEDY, repeatPenalty: 1.3, repeatLastN: 4 }
const SAMPLED = { temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, repeatPenalty: 1.1, repeatLastN: 64, seed: 9n }

/** Every part of two traces, compared bit for bit (states as bytes). */
function assertSameTrace(a: JobTrace, b: JobTrace, what: string): void {
  const bytes = (x: Float32Array) => toHex(new Uint8Array(x.buffer, x.byteOffset, x.byteLength))
  assert.deepEqual(a.outputs, b.outputs, `${what}: outputs`)
  assert.deepEqual(a.tokens, b.tokens, `${what}: tokens`)
  assert.deepEqual(a.leaves.map(toHex), b.leaves.map(toHex), `${what}: leaves`)
  const nL = m.tf.config.nLayer
  for (let p = 0; p < a.tokens.length - 1; p++) {
    assert.equal(a.nextToken(p), b.nextToken(p), `${what}: next token at ${p}`)
    if (p >= a.nPrompt - 1) assert.equal(bytes(a.logits(p)), bytes(b.logits(p)), `${what}: logits at ${p}`)
    for (let l = 0; l < nL; l++) {
      for (const s of ['residual', 'k', 'v'] as const) assert.equal(bytes(a.replay[s](p, l)), bytes(b.replay[s](p, l)), `${what}: ${s} at (${p}, ${l})`)
    }
  }
}

test('a forced replay of the answer the model gives is the generating replay, at every batch size', () => {
  for (const sampling of [PENALIZED, SAMPLED]) {
    const spec = tinySpec(m, [11, 250, 3, 7], 7, sampling)
    const gen = replayJob(m.tf, spec)
    for (const batchSize of [1, 2, 5, 128]) assertSameTrace(replayJob(m.tf, spec, { forced: gen.outputs, batchSize }), gen, `batch ${batchSize}`)
  }
})

test('a delivered answer that departs from the model: INVALID_LEAF at the departing head, the same trace at every batch size', () => {
  const spec = tinySpec(m, [11, 250, 3], 6, PENALIZED)
  const gen = replayJob(m.tf, spec)
  const forced = gen.outputs.slice()
  forced[2] = (forced[2] + 1) % m.tf.config.vocabSize
  const one = replayJob(m.tf, spec, { forced, batchSize: 1 })
  const nL = m.tf.config.nLayer
  const at = (3 - 1 + 2) * (nL + 1) + nL
  assert.equal(toHex(one.leaves[at]), toHex(INVALID_LEAF))
  assert.deepEqual(one.outputs, forced)
  assert.deepEqual(one.leaves.slice(0, at).map(toHex), gen.leaves.slice(0, at).map(toHex), 'the same trace before the departure')
  for (const batchSize of [3, 128]) assertSameTrace(replayJob(m.tf, spec, { forced, batchSize }), one, `batch ${batchSize}`)
})

test('a forced replay stops at the end of the context as the token loop does, and follows overrides', () => {
  const ctx = m.tf.config.contextLength
  const prompt = Array.from({ length: ctx - 3 }, (_, i) => (i * 37 + 5) % 1000)
  const spec = tinySpec(m, prompt, 10, GREEDY)
  const gen = replayJob(m.tf, spec)
  assert.equal(gen.outputs.length, 4, 'the generating loop stops when the context is full')
  const longer = [...gen.outputs, 1, 2, 3]
  assertSameTrace(replayJob(m.tf, spec, { forced: longer }), gen, 'past the context')

  const short = tinySpec(m, [11, 250, 3], 5, GREEDY)
  const honest = replayJob(m.tf, short)
  const c = m.tf.config
  const layer = { pos: 3, layer: 1, residual: new Float32Array(c.dim).fill(0.5), k: new Float32Array(c.nKvHead * c.headDim).fill(-1), v: new Float32Array(c.nKvHead * c.headDim).fill(2) }
  const head = { pos: 4, head: true as const, logits: new Float32Array(c.vocabSize).fill(1), next: 9 }
  for (const override of [layer, head]) {
    const one = replayJob(m.tf, short, { forced: honest.outputs, override, batchSize: 1 })
    assert.notDeepEqual(one.leaves.map(toHex), honest.leaves.map(toHex))
    assertSameTrace(replayJob(m.tf, short, { forced: honest.outputs, override }), one, 'override in one batch')
  }
})
