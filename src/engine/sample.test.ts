import { test } from 'node:test'
import assert from 'node:assert/strict'
import { argmax, DEFAULT_SAMPLING, sampleToken, type SamplingParams, validateSampling } from './sample.js'
import { rand, splitmix64 } from './math/rand.js'

const P = (over: Partial<SamplingParams>): SamplingParams => ({ ...DEFAULT_SAMPLING, ...over })

test('greedy picks the largest logit, the lowest id on ties', () => {
  assert.equal(argmax(Float32Array.of(1, 3, 3, 2)), 1)
  assert.equal(sampleToken(Float32Array.of(1, 3, 3, 2), P({ temperature: 0 }), [], 0), 1)
})

test('repetition penalty divides positive and multiplies negative logits of recent tokens', () => {
  const l = Float32Array.of(2, -2, 1.9)
  assert.equal(sampleToken(l, P({ temperature: 0, repeatPenalty: 2, repeatLastN: 1 }), [5, 0], 0), 2)
  assert.deepEqual(Array.from(l), [1, -2, Math.fround(1.9)])
})

test('top-k 1 and a tiny top-p are greedy; min-p cuts the tail', () => {
  const logits = Float32Array.from({ length: 50 }, (_, i) => Math.fround(Math.sin(i) * 3))
  const best = argmax(logits)
  for (let step = 0; step < 40; step++) {
    assert.equal(sampleToken(logits.slice(), P({ topK: 1, temperature: 1.5, seed: 9n }), [], step), best)
    assert.equal(sampleToken(logits.slice(), P({ topK: 0, topP: 1e-6, minP: 0, temperature: 1.5, seed: 9n }), [], step), best)
    // min-p 0.5 at temperature 1 keeps only tokens within ln 2 of the best
    const t = sampleToken(logits.slice(), P({ topK: 0, topP: 1, minP: 0.5, temperature: 1, seed: BigInt(step) }), [], step)
    assert.ok(logits[t] >= logits[best] - Math.LN2 - 1e-6, `token ${t}`)
  }
})

test('draws follow the distribution and are reproducible from (seed, step)', () => {
  const logits = Float32Array.of(0, Math.fround(Math.log(3)), -30)
  const counts = [0, 0, 0]
  for (let step = 0; step < 4000; step++) counts[sampleToken(logits.slice(), P({ topK: 0, topP: 1, minP: 0, temperature: 1, seed: 77n }), [], step)]++
  assert.equal(counts[2], 0)
  assert.ok(Math.abs(counts[1] / 4000 - 0.75) < 0.03, `p(1) = ${counts[1] / 4000}`)
  const again = Array.from({ length: 20 }, (_, s) => sampleToken(logits.slice(), P({ topK: 0, minP: 0, temperature: 1, seed: 77n }), [], s))
  const twice = Array.from({ length: 20 }, (_, s) => sampleToken(logits.slice(), P({ topK: 0, minP: 0, temperature: 1, seed: 77n }), [], s))
  assert.deepEqual(again, twice)
})

test('RAND golden values (SplitMix64 reference outputs)', () => {
  // SplitMix64 seeded with 0: the first outputs of the published reference generator
  assert.equal(splitmix64(0n, 0n), 0xe220a8397b1dcdafn)
  assert.equal(splitmix64(0n, 1n), 0x6e789e6aa1b965f4n)
  assert.equal(rand(0n, 0), Number(0xe220a8397b1dcdafn >> 40n) / 2 ** 24)
})

test('invalid parameters are named', () => {
  for (const bad of [{ temperature: -1 }, { topK: 1.5 }, { topP: 0 }, { minP: 1 }, { repeatPenalty: 0 }, { seed: -1n }]) {
    assert.throws(() => validateSampling(P(bad)), { name: 'InvalidParameterError' })
  }
})
