import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { encodeGguf } from '../engine/gguf/write.js'
import { createReferenceBackend } from '../engine/kernels/reference.js'
import { synthModel } from '../engine/model/synth.js'
import { KVCache, Transformer } from '../engine/model/transformer.js'
import { createTokenizer, type Tokenizer } from '../engine/tokenizer/index.js'
import { writeGgufFile } from '../runtime/ggufFile.js'
import { loadWeights } from '../runtime/loadWeights.js'
import { LOG2E, pooled, scoreTokens, windowsOf } from './bpb.js'
import { logSoftmaxAt, modelWindow, tokenizeForScoring, transformerLogProbs } from './modelScore.js'
import { trainKneserNey } from './ngram.js'

const utf8 = new TextEncoder()

test('windows: consecutive, non-overlapping, the last one shorter', () => {
  assert.deepEqual(windowsOf(10, 4), [
    [0, 4],
    [4, 8],
    [8, 10],
  ])
  assert.deepEqual(windowsOf(8, 4), [
    [0, 4],
    [4, 8],
  ])
  assert.deepEqual(windowsOf(0, 4), [])
  assert.throws(() => windowsOf(3, 0), { name: 'InvalidParameterError' })
  assert.throws(() => windowsOf(3, 1.5), { name: 'InvalidParameterError' })
})

test('bits per byte of a known scorer: uniform over 256 bytes is exactly 8, and each window restarts its context', async () => {
  const text = utf8.encode('exactly eight bits per byte')
  const uniform = await scoreTokens(Array.from(text), text.length, 5, (w) => w.map(() => -Math.LN2 * 8))
  assert.ok(Math.abs(uniform.bpb - 8) < 1e-12)
  assert.equal(uniform.windows, Math.ceil(text.length / 5))
  // a scorer that sees what the window shows it: each window gets exactly its own tokens
  const seen: number[][] = []
  await scoreTokens([1, 2, 3, 4, 5, 6, 7], 7, 3, (w) => {
    seen.push([...w])
    return w.map(() => -1)
  })
  assert.deepEqual(seen, [[1, 2, 3], [4, 5, 6], [7]])
  // bits = -(sum of ln p) * log2(e), summed token by token
  const s = await scoreTokens([0, 0, 0], 2, 10, () => [-0.5, -1.25, -2])
  assert.equal(s.bits, 3.75 * LOG2E)
  assert.equal(s.bpb, (3.75 * LOG2E) / 2)
  const both = pooled([s, uniform])
  assert.equal(both.bytes, 2 + text.length)
  assert.equal(both.bits, s.bits + uniform.bits)
})

test('a scorer that answers no log-probability is refused, naming the token', async () => {
  await assert.rejects(scoreTokens([1, 2], 2, 2, () => [-1]), { name: 'ScorerError' })
  await assert.rejects(scoreTokens([1, 2], 2, 2, () => [-1, Number.NaN]), (e: Error) => e.name === 'ScorerError' && /token 1/.test(e.message))
  await assert.rejects(scoreTokens([1, 2], 2, 2, () => [-1, 0.5]), { name: 'ScorerError' })
  await assert.rejects(scoreTokens([1, 2], 2, 2, () => [-1, Number.NEGATIVE_INFINITY]), { name: 'ScorerError' })
})

test('the Kneser-Ney model as a scorer: one window per text gives its logProbs summed', async () => {
  const kn = trainKneserNey([utf8.encode('the cat sat on the mat. the dog sat on the log.')], 5)
  const text = utf8.encode('the cat sat on the log.')
  const s = await scoreTokens(Array.from(text), text.length, text.length, (w) => kn.logProbs(w))
  let nats = 0
  for (const x of kn.logProbs(text)) nats -= x
  assert.equal(s.bits, nats * LOG2E)
  assert.ok(s.bpb > 0 && s.bpb < 8)
})

test('log-softmax in the canonical arithmetic: exp of it sums to 1 over the vocabulary', () => {
  const V = 37
  const logits = Float32Array.from({ length: V }, (_, i) => Math.fround(Math.sin(i * 1.7) * 6))
  let sum = 0
  for (let t = 0; t < V; t++) sum += Math.exp(logSoftmaxAt(logits, 0, V, t))
  assert.ok(Math.abs(sum - 1) < 1e-5, `sum ${sum}`)
  assert.equal(logSoftmaxAt(Float32Array.of(0, 0, 0, 0), 0, 4, 2), Math.fround(-Math.fround(Math.log(4))))
})

let dir = ''
let tf: Transformer
let tok: Tokenizer
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-bpb-'))
  const path = join(dir, 'tiny.gguf')
  writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 5 })))
  const backend = createReferenceBackend()
  const w = loadWeights(path, backend, { hashWorkers: 0 })
  tf = new Transformer({ config: w.config, matrices: w.matrices, vectors: w.vectors }, backend)
  tok = createTokenizer(w.metadata)
})
after(() => rmSync(dir, { recursive: true, force: true }))

test('a model as a scorer: BOS + window in batches gives, for each token, the log-softmax of the logits before it', async () => {
  assert.equal(modelWindow(tf), 511)
  const ids = tokenizeForScoring(tok, 'Call me Ishmael. Some years ago, never mind how long precisely.')
  assert.ok(ids.length > 8)
  const window = ids.slice(0, 9)
  const lp = await transformerLogProbs(tf, { bos: tok.bos, batch: 4 })(window)
  // the same positions one at a time from BOS: the engine's logits do not depend on the batch
  const cache = new KVCache(tf.config, 16)
  let logits = tf.forward([tok.bos], cache, 1)
  for (let i = 0; i < window.length; i++) {
    assert.equal(lp[i], logSoftmaxAt(logits, 0, tf.config.vocabSize, window[i]), `token ${i}`)
    logits = tf.forward([window[i]], cache, 1)
  }
  // windows of 4: the second window starts again from BOS
  const scorer = transformerLogProbs(tf, { bos: tok.bos })
  const s = await scoreTokens(window, 20, 4, scorer)
  const second = await scorer(window.slice(4, 8))
  let nats = 0
  for (const part of [await scorer(window.slice(0, 4)), second, await scorer(window.slice(8))]) for (const x of Array.from(part)) nats -= x
  assert.equal(s.bits, nats * LOG2E)
  assert.notEqual(second[0], lp[4], 'a new window forgets the tokens before it')
  assert.throws(() => transformerLogProbs(tf, { bos: -1 }), { name: 'ModelScoreError' })
  assert.throws(() => scorer(new Array(512).fill(5)), { name: 'ModelScoreError' })
})

test('tokenizeForScoring refuses a tokenizer that loses text', () => {
  const lossy = { ...tok, encode: (t: string) => tok.encode(t.replace('I', 'i'), { addBos: false }), decodeToken: tok.decodeToken } as Tokenizer
  assert.throws(() => tokenizeForScoring(lossy, 'Call me Ishmael.'), { name: 'ModelScoreError' })
  const ids = tokenizeForScoring(tok, 'Call me Ishmael.')
  assert.notEqual(ids[0], tok.bos)
})
