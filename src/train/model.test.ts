/**
 * The trained model's layout and state: tensor names and shapes match the engine's llama layout,
 * initialization is a pure function of the seed (RAND of docs/ARITHMETIC.md), state bytes round
 * trip, and bad configs or state bytes are refused with one clear error.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { rand } from '../engine/math/rand.js'
import { expectedTensors, type ModelConfig } from '../engine/model/config.js'
import { decodeState, encodeState, initScale, initState, paramCount, paramList, paramShapes, randFast, type TrainConfig } from './model.js'

const c: TrainConfig = {
  vocabSize: 50, dim: 16, nLayer: 2, nHead: 4, nKvHead: 2, ffDim: 40, context: 8, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: false, batch: 2,
  lr: { peak: 1e-3, warmupSteps: 2, totalSteps: 10, min: 1e-4 }, adam: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, seed: '18446744073709551615',
}

test('paramShapes is the engine llama layout (names, order, GGUF dims)', () => {
  for (const tied of [true, false]) {
    const cc = { ...c, tiedEmbeddings: tied }
    const mc = { arch: 'llama', dim: 16, nLayer: 2, nHead: 4, nKvHead: 2, headDim: 4, ffDim: 40, vocabSize: 50, contextLength: 8, ropeBase: 10000, rmsEps: 1e-5, hasQkvBias: false, hasQkNorm: false, tiedEmbeddings: tied } as ModelConfig
    assert.deepEqual([...paramShapes(cc)], expectedTensors(mc).map((t) => [t.name, t.dims]))
  }
  assert.equal(paramCount(c), [...paramShapes(c).values()].reduce((a, d) => a + d.reduce((x, y) => x * y, 1), 0))
  assert.deepEqual(paramList(c).filter((p) => !p.decay).map((p) => p.name), ['blk.0.attn_norm.weight', 'blk.0.ffn_norm.weight', 'blk.1.attn_norm.weight', 'blk.1.ffn_norm.weight', 'output_norm.weight'])
})

test('randFast equals RAND(seed, k) of the canonical arithmetic', () => {
  for (const seed of [0n, 1n, 42n, 0xffffffffn, 0x100000000n, 18446744073709551615n, 12345678901234567890n]) {
    const hi = Number(seed >> 32n) >>> 0, lo = Number(seed & 0xffffffffn) >>> 0
    for (const k of [0, 1, 2, 1000, 65535, 2 ** 32 - 2, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 17, 2 ** 53 - 2]) assert.equal(randFast(hi, lo, k), rand(seed, k), `seed ${seed}, k ${k}`)
  }
})

test('initState: deterministic from the seed, uniform in [-a, a), norms 1, zero moments', () => {
  const a = initState(c), b = initState(c), d = initState({ ...c, seed: '7' })
  assert.deepEqual(encodeState(c, a), encodeState(c, b))
  assert.notDeepEqual(a.params.get('blk.0.attn_q.weight'), d.params.get('blk.0.attn_q.weight'))
  const seed = BigInt(c.seed)
  let offset = 0
  for (const p of paramList(c)) {
    const w = a.params.get(p.name) as Float32Array
    const s = initScale(c, p)
    if (s === 0) assert.ok(w.every((x) => x === 1), p.name)
    else {
      // element j draws RAND(seed, offset + j)
      const j = p.size - 1
      assert.equal(w[j], Math.fround(Math.fround(Math.fround(2 * rand(seed, offset + j)) - 1) * s), p.name)
      assert.ok(w.every((x) => x >= -s && x < s), p.name)
    }
    assert.ok((a.m.get(p.name) as Float32Array).every((x) => x === 0))
    offset += p.size
  }
  assert.equal(a.step, 0)
})

test('state bytes round trip and carry the step; wrong bytes are refused', () => {
  const s = initState(c)
  s.step = 17
  ;(s.m.get('output.weight') as Float32Array)[3] = -0
  ;(s.v.get('token_embd.weight') as Float32Array)[0] = 1.5
  const bytes = encodeState(c, s)
  assert.equal(bytes.length, 16 + 12 * paramCount(c))
  const back = decodeState(c, bytes)
  assert.equal(back.step, 17)
  assert.deepEqual(encodeState(c, back), bytes)
  assert.ok(Object.is((back.m.get('output.weight') as Float32Array)[3], -0))
  // A Node Buffer (what readFileSync gives), also one offset inside a larger allocation: each
  // tensor must be its own array of its own length (Buffer.slice is a view, not a copy).
  const inside = Buffer.alloc(bytes.length + 8)
  inside.set(bytes, 8)
  const fromBuffer = decodeState(c, inside.subarray(8))
  for (const [name, a] of fromBuffer.params) assert.equal(a.length, (s.params.get(name) as Float32Array).length, name)
  assert.deepEqual(encodeState(c, fromBuffer), bytes)
  assert.throws(() => decodeState(c, bytes.subarray(0, bytes.length - 4)), { name: 'TrainStateError' })
  assert.throws(() => decodeState({ ...c, dim: 20, nHead: 5, nKvHead: 5 }, bytes), { name: 'TrainStateError' })
  const bad = bytes.slice()
  bad[0] ^= 1
  assert.throws(() => decodeState(c, bad), { name: 'TrainStateError', message: /not a version-1 training state/ })
})

test('bad configs are refused naming the field', () => {
  const bad: [Partial<TrainConfig>, RegExp][] = [
    [{ dim: 15 }, /dim = 15 is not a multiple of nHead/],
    [{ nKvHead: 3 }, /nHead = 4 is not a multiple of nKvHead = 3/],
    [{ dim: 12, nHead: 4 }, /head dim 3 is odd/],
    [{ seed: '-1' }, /config.seed/],
    [{ seed: '18446744073709551616' }, /config.seed/],
    [{ vocabSize: 0 }, /config.vocabSize/],
    [{ lr: { peak: 1e-3, warmupSteps: 20, totalSteps: 10, min: 0 } }, /warmupSteps = 20 exceeds totalSteps/],
    [{ adam: { beta1: 1, beta2: 0.9, eps: 1e-8, weightDecay: 0 } }, /beta1 and beta2 must be below 1/],
    [{ rmsEps: 0 }, /config.rmsEps/],
  ]
  for (const [over, re] of bad) assert.throws(() => paramShapes({ ...c, ...over }), { name: 'TrainConfigError', message: re }, JSON.stringify(over))
})
