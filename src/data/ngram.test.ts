import assert from 'node:assert/strict'
import { test } from 'node:test'
import { f, log } from '../engine/math/canonical.js'
import { LOG2E } from './bpb.js'
import { heldOutMobyDick, mobyDickTraining } from './corpus.js'
import { discountsOf, type KneserNey, logProb, MIN_DISCOUNT, trainKneserNey } from './ngram.js'

const utf8 = new TextEncoder()

/**
 * The plain twin: interpolated modified Kneser-Ney straight from its definition (ngram.ts's
 * header), with maps of strings and counts recomputed per query. Same formulas, same order of
 * binary64 operations, so the fast model must agree bit for bit.
 */
function referenceKN(docs: Uint8Array[], order: number) {
  const key = (b: ArrayLike<number>) => Array.from(b).join(',')
  // counts[k]: k-gram key -> count (raw at `order`, continuation below)
  const counts: Map<string, number>[] = []
  const raw = new Map<string, number>()
  for (const d of docs) for (let i = 0; i + order <= d.length; i++) raw.set(key(d.subarray(i, i + order)), (raw.get(key(d.subarray(i, i + order))) ?? 0) + 1)
  counts[order] = raw
  for (let k = order - 1; k >= 1; k--) {
    const left = new Map<string, Set<string>>()
    for (const d of docs) {
      for (let i = 0; i + k <= d.length; i++) {
        const g = key(d.subarray(i, i + k))
        const before = i === 0 ? 'start' : String(d[i - 1])
        if (!left.has(g)) left.set(g, new Set())
        left.get(g)?.add(before)
      }
    }
    counts[k] = new Map([...left].map(([g, s]) => [g, s.size]))
  }
  const discount: [number, number, number][] = []
  for (let k = 1; k <= order; k++) {
    const nn = [0, 0, 0, 0, 0]
    for (const c of counts[k].values()) if (c <= 4) nn[c]++
    discount[k] = discountsOf(nn[1], nn[2], nn[3], nn[4])
  }
  return (hist: number[], w: number): number => {
    let p = 1 / 256
    for (let k = 1; k <= Math.min(order, hist.length + 1); k++) {
      const h = hist.slice(hist.length - (k - 1))
      const D = discount[k]
      let total = 0
      const n123 = [0, 0, 0]
      for (let x = 0; x < 256; x++) {
        const c = counts[k].get(key([...h, x])) ?? 0
        total += c
        if (c > 0) n123[Math.min(c, 3) - 1]++
      }
      if (total === 0) break
      const c = counts[k].get(key([...h, w])) ?? 0
      const d = c === 0 ? 0 : c === 1 ? D[0] : c === 2 ? D[1] : D[2]
      const gamma = (D[0] * n123[0] + D[1] * n123[1] + D[2] * n123[2]) / total
      p = (c - d) / total + gamma * p
    }
    return p
  }
}

function lcg(seed: number) {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s
  }
}

test('a known small example: "abracadabra", order 2, by hand', () => {
  const kn = trainKneserNey([utf8.encode('abracadabra')], 2)
  // bigram raw counts: ab 2, br 2, ra 2, ac 1, ca 1, ad 1, da 1 -> n1 = 4, n2 = 3, n3 = 0: default discounts
  assert.deepEqual(kn.discounts(2), [0.5, 1, 1.5])
  // unigram continuation counts: a {start, r, c, d} = 4, b {a} = 1, r {b} = 1, c {a} = 1, d {a} = 1 -> T = 8
  // n1 = 4, n2 = 0: default discounts too
  assert.deepEqual(kn.discounts(1), [0.5, 1, 1.5])
  // p1(b) = (1 - 0.5)/8 + gamma1 / 256, gamma1 = (0.5 * 4 + 1.5 * 1) / 8 = 3.5/8
  const p1b = (1 - 0.5) / 8 + (3.5 / 8) * (1 / 256)
  // context 'a': ab 2, ac 1, ad 1 -> T = 4; p2(b|a) = (2 - 1)/4 + gamma * p1(b), gamma = (0.5*2 + 1*1)/4
  const want = (2 - 1) / 4 + ((0.5 * 2 + 1 * 1) / 4) * p1b
  assert.equal(kn.prob(utf8.encode('a'), 1, 0x62), want)
  // an unseen context ('z') falls back to the unigram
  assert.equal(kn.prob(utf8.encode('z'), 1, 0x62), p1b)
  // the document's start: no history, the unigram alone
  assert.equal(kn.prob(new Uint8Array(0), 0, 0x62), p1b)
})

test('discounts from counts of counts (Chen & Goodman), clamped, with a default when undefined', () => {
  const [d1, d2, d3] = discountsOf(100, 40, 20, 10)
  const y = 100 / 180
  assert.equal(d1, 1 - (2 * y * 40) / 100)
  assert.equal(d2, 2 - (3 * y * 20) / 40)
  assert.equal(d3, 3 - (4 * y * 10) / 20)
  assert.deepEqual(discountsOf(5, 0, 1, 1), [0.5, 1, 1.5])
  for (const d of discountsOf(1, 1000, 1, 1000)) assert.ok(d >= MIN_DISCOUNT)
  assert.deepEqual(discountsOf(1000, 1, 1, 1000), [1 - (2 * (1000 / 1002)) / 1000, MIN_DISCOUNT, MIN_DISCOUNT])
})

test('probabilities over the 256 byte values sum to 1 for several contexts and orders', () => {
  const text = utf8.encode('Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world. ')
  const docs = [text, text.subarray(5, 120), utf8.encode('It is a way I have of driving off the spleen, and regulating the circulation.')]
  for (const order of [1, 2, 3, 5, 7]) {
    const kn = trainKneserNey(docs, order)
    for (const h of ['', 'C', ' the wa', 'ng the', 'xyzzy q', 'ittle ', '—']) {
      const hist = utf8.encode(h)
      let sum = 0
      for (const p of kn.distribution(hist, hist.length)) {
        assert.ok(p > 0)
        sum += p
      }
      assert.ok(Math.abs(sum - 1) < 1e-12, `order ${order} context ${JSON.stringify(h)}: sum ${sum}`)
    }
  }
})

test('the sorted-array model agrees bit for bit with the plain twin (random texts, orders 1-7)', () => {
  const next = lcg(7)
  for (let trial = 0; trial < 6; trial++) {
    // a small alphabet so that every count class occurs
    const docs = Array.from({ length: 1 + (next() % 4) }, () => Uint8Array.from({ length: next() % 300 }, () => 97 + (next() % 5)))
    docs.push(Uint8Array.from({ length: 40 }, () => next() & 0xff)) // and some high bytes
    const order = 1 + (trial % 7)
    const kn = trainKneserNey(docs, order)
    const ref = referenceKN(docs, order)
    for (let q = 0; q < 60; q++) {
      const hist = Array.from({ length: next() % 8 }, () => (q % 3 === 0 ? next() & 0xff : 97 + (next() % 5)))
      const w = q % 4 === 0 ? next() & 0xff : 97 + (next() % 5)
      assert.equal(kn.prob(Uint8Array.from(hist), hist.length, w), ref(hist, w), `trial ${trial} order ${order} hist ${hist} w ${w}`)
    }
  }
})

test('counts far from natural text (a text repeated 4 times) still give every byte a probability above 0, summing to 1', () => {
  // most 7-grams occur 4 times (n4 large), a few once, twice, three times: the estimate of D(3+) is below 0
  const text = utf8.encode('the cat sat on the mat; the dog sat on the log; the cat ate the rat. ')
  const [one, two, three] = ['QWERTYUIOPQ', 'ASDFGHJKLA', 'ZXCVBNMZX'].map((x) => utf8.encode(x))
  const kn = trainKneserNey([text, text, text, text, one, two, two, three, three, three], 7)
  assert.equal(kn.discounts(7)[2], MIN_DISCOUNT, 'the estimate of D(3+) was clamped')
  for (const h of ['the c', 'on the ', 'zzz']) {
    const hist = utf8.encode(h)
    const dist = kn.distribution(hist, hist.length)
    let sum = 0
    for (const p of dist) {
      assert.ok(p > 0, `context ${JSON.stringify(h)}`)
      sum += p
    }
    assert.ok(Math.abs(sum - 1) < 1e-12)
  }
})

test('logProb: LOG of binary32(p), scaled below the binary32 normal range; no probability 0', () => {
  assert.equal(logProb(0.25), log(f(0.25)))
  assert.equal(logProb(1), 0)
  const tiny = logProb(1e-40)
  assert.ok(Math.abs(tiny - Math.log(1e-40)) < 1e-4, `${tiny}`)
  assert.ok(Math.abs(logProb(1e-200) - Math.log(1e-200)) < 1e-3)
  assert.throws(() => logProb(0), RangeError)
  assert.throws(() => logProb(Number.NaN), RangeError)
})

test('logProbs: the canonical LOG of each byte given the bytes before it', () => {
  const kn: KneserNey = trainKneserNey([utf8.encode('the cat sat on the mat; the cat sat on the hat')], 4)
  const text = utf8.encode('the hat sat')
  const lp = kn.logProbs(text)
  assert.equal(lp.length, text.length)
  for (let i = 0; i < text.length; i++) assert.equal(lp[i], logProb(kn.prob(text, i, text[i])))
  assert.ok(lp[5] > lp[0], "'a' after 'the h' is likelier than 't' at the start")
  assert.throws(() => trainKneserNey([], 8), { name: 'InvalidParameterError' })
  assert.throws(() => trainKneserNey([], 0), { name: 'InvalidParameterError' })
})

test('the held-out baseline: a 7-gram counted on the Moby-Dick training text scores 2.006 bits per byte on the held-out chapters (docs/DATA.md)', () => {
  const kn = trainKneserNey(
    mobyDickTraining().map((d) => d.bytes),
    7,
  )
  let nats = 0
  let bytes = 0
  for (const d of heldOutMobyDick()) {
    for (const x of kn.logProbs(d.bytes)) nats -= x
    bytes += d.bytes.length
  }
  assert.equal(((nats * LOG2E) / bytes).toFixed(3), '2.006')
})
