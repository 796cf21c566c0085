import { test } from 'node:test'
import assert from 'node:assert/strict'
import { argmax, DEFAULT_SAMPLING, sampleToken, sampleTokenReference, type SamplingParams, validateSampling } from './sample.js'
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

/** A small deterministic generator for the test vectors (xorshift32). */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 2 ** 32
  }
}

/**
 * Logits vectors of every shape the fast sampler takes a shortcut on: wide and narrow spreads,
 * many ties (few distinct values), -0 beside +0, spreads so wide that most EXPs are 0, one
 * dominant token, and non-finite values (which must take the reference path).
 */
function logitsCase(r: () => number, V: number, kind: number): Float32Array {
  const l = new Float32Array(V)
  for (let i = 0; i < V; i++) {
    const u = r()
    switch (kind) {
      case 0: l[i] = (u - 0.5) * 20; break
      case 1: l[i] = Math.floor(u * 4) - 2; break // ties everywhere
      case 2: l[i] = u < 0.3 ? -0 : u < 0.6 ? 0 : (u - 0.6) * 3; break
      case 3: l[i] = (u - 0.5) * 1000; break // most EXPs underflow to 0
      case 4: l[i] = i === (V >> 1) ? 50 : u; break
      case 5: l[i] = u < 0.1 ? -Infinity : (u - 0.5) * 8; break
      case 6: l[i] = u < 0.02 ? Number.NaN : u < 0.04 ? Infinity : u * 5; break
      case 7: l[i] = (u - 0.5) * 3e38; break // temperatures below 1 overflow the scaled logits
      default: l[i] = 1
    }
  }
  return l
}

const KINDS = 9

/** Parameter sets over the edges: k around V, top-p at 1 and tiny, min-p whose floor underflows. */
function paramsCase(r: () => number, V: number, i: number): SamplingParams {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]
  return {
    temperature: pick([1e-3, 0.1, 0.8, 0.8, 1, 2.5, 1e6]),
    topK: pick([0, 0, 1, 2, 40, 40, V - 1, V, V + 5].filter((k) => k >= 0)),
    topP: pick([1, 1, 0.95, 0.5, 1e-6, 0.999999]),
    minP: pick([0, 0, 0.05, 0.5, 1e-45]),
    repeatPenalty: pick([1, 1, 1.3, 0.7]),
    repeatLastN: pick([0, 3, 64]),
    seed: BigInt(i) * 0x9e3779b9n + 7n,
  }
}

test('sampleToken is bit-for-bit sampleTokenReference over thousands of random logits vectors', () => {
  const r = prng(12345)
  let n = 0
  const seen = new Set<number>()
  for (const V of [1, 2, 3, 7, 40, 41, 100, 1000, 3000]) {
    for (let kind = 0; kind < KINDS; kind++) {
      for (let rep = 0; rep < (V >= 1000 ? 8 : 30); rep++) {
        const logits = logitsCase(r, V, kind)
        const p = paramsCase(r, V, n)
        const history = Array.from({ length: Math.floor(r() * 10) }, () => Math.floor(r() * V))
        for (const step of [0, 1, 17 + rep]) {
          const a = logits.slice()
          const b = logits.slice()
          const fast = sampleToken(a, p, history, step)
          const ref = sampleTokenReference(b, p, history, step)
          assert.equal(fast, ref, `V ${V} kind ${kind} step ${step} params ${JSON.stringify({ ...p, seed: String(p.seed) })}`)
          assert.deepEqual(a, b, 'the penalty changes the logits the same way')
          seen.add(fast)
          n++
        }
      }
    }
  }
  // the draws are spread over many tokens, not one degenerate answer
  assert.ok(seen.size > 200, `${seen.size} distinct tokens`)
})

test('fast and reference agree where the top-p running sum lands exactly on top-p and on every tie', () => {
  // four equal logits: each probability is exactly 0.25, so top-p 0.5 keeps exactly two
  const four = Float32Array.of(1, 1, 1, 1)
  for (let step = 0; step < 64; step++) {
    for (const topP of [0.25, 0.5, 0.75, 1]) {
      const p = P({ topK: 0, topP, minP: 0, temperature: 1, seed: 3n })
      const got = sampleToken(four.slice(), p, [], step)
      assert.equal(got, sampleTokenReference(four.slice(), p, [], step))
      assert.ok(got < topP * 4, `top-p ${topP} keeps the ${topP * 4} lowest ids, got ${got}`)
    }
  }
  // k larger than the vocabulary is no cut; k equal to it too
  const l = Float32Array.of(0.5, -0, 0, 2, 2, -1)
  for (const topK of [5, 6, 7, 100]) {
    for (let step = 0; step < 50; step++) {
      const p = P({ topK, topP: 1, minP: 0, temperature: 1.7, seed: 11n })
      assert.equal(sampleToken(l.slice(), p, [], step), sampleTokenReference(l.slice(), p, [], step))
    }
  }
})

test('golden draws: the canonical sampler gives the tokens it gave before the fast path', () => {
  // Recorded with the sampler as it was before the heap/radix version (commit 4ed0989), on a
  // fixed 49,152-token vector (smol-135m's vocabulary size): a change here changes receipts.
  const r = prng(2026)
  const logits = new Float32Array(49152)
  for (let i = 0; i < logits.length; i++) logits[i] = Math.fround((r() - 0.5) * 12 + (i % 97 === 0 ? 4 : 0))
  const draw = (over: Partial<SamplingParams>) => Array.from({ length: 12 }, (_, step) => sampleToken(logits.slice(), P({ seed: 42n, ...over }), [7, 8, 9], step))
  assert.deepEqual(draw({}), GOLDEN.defaults)
  assert.deepEqual(draw({ minP: 0 }), GOLDEN.noMinP)
  assert.deepEqual(draw({ topK: 0, topP: 0.9, minP: 0 }), GOLDEN.noTopK)
  assert.deepEqual(draw({ temperature: 1.3, topK: 500, topP: 1, minP: 0, repeatPenalty: 1.2 }), GOLDEN.wide)
})

const GOLDEN = {
  defaults: [8051, 28130, 12222, 6887, 43262, 33853, 45881, 3007, 6887, 970, 45881, 9991],
  noMinP: [8051, 28130, 12222, 6887, 43262, 33853, 45881, 3007, 6887, 970, 45881, 9991],
  noTopK: [25099, 18333, 4656, 8051, 47530, 8525, 9991, 40644, 8051, 11446, 41225, 44911],
  wide: [11737, 41225, 8051, 29391, 9215, 10280, 4656, 4556, 33853, 38897, 14162, 7857],
}
