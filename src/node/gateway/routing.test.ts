/** The router's decisions (./routing.ts): price, speed, uptime, reputation, cooldown and exploration. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { makeRng } from '../../../test/support/testData.js'
import { type RouteOffer, Router, type RouterOptions } from './routing.js'

/** A router with a settable clock and no exploration unless asked. */
function router(o: RouterOptions = {}) {
  let t = 1_000_000
  const r = new Router({ exploration: 0, now: () => t, ...o })
  return { r, advance: (ms: number) => (t += ms) }
}
const offer = (provider: string, price: bigint | number): RouteOffer => ({ provider, pricePerToken: BigInt(price) })
/** `n` served jobs: first token after `ttftMs`, `tokens` tokens at `tps`. */
function serve(r: Router, p: string, n: number, ttftMs = 200, tps = 50, tokens = 100) {
  for (let i = 0; i < n; i++) r.record(p, { ok: true, ttftMs, tokens, ms: ttftMs + ((tokens - 1) * 1000) / tps })
}
const names = (xs: RouteOffer[]) => xs.map((x) => x.provider)

describe('Router', () => {
  test('at equal speed and uptime the cheaper offer goes first; at equal price the faster', () => {
    const { r } = router()
    serve(r, 'a', 5)
    serve(r, 'b', 5)
    assert.deepEqual(names(r.order([offer('a', 20), offer('b', 10)])), ['b', 'a'])
    assert.deepEqual(names(r.order([offer('a', 10), offer('b', 20)])), ['a', 'b'])
    serve(r, 'c', 5, 200, 100) // twice the throughput
    assert.deepEqual(names(r.order([offer('a', 10), offer('c', 10)])), ['c', 'a'])
    serve(r, 'd', 5, 5000, 50) // slow first token
    assert.deepEqual(names(r.order([offer('d', 10), offer('a', 10)])), ['a', 'd'])
  })

  test('price and speed trade off by the formula: 2x the price for 4x the speed wins', () => {
    const { r } = router()
    serve(r, 'slow', 5, 0, 25)
    serve(r, 'fast', 5, 0, 100)
    const s = r.scores([offer('slow', 99), offer('fast', 199)])
    const [slow, fast] = [...s.values()]
    assert.ok(Math.abs(fast / slow - 2) < 0.05, `fast/slow = ${fast / slow}`)
    assert.deepEqual(names(r.order([offer('slow', 99), offer('fast', 199)])), ['fast', 'slow'])
  })

  test('a provider that failed recently drops behind the others, then recovers after the cooldown', () => {
    const { r, advance } = router({ cooldownMs: 60_000 })
    serve(r, 'a', 10, 100, 100)
    serve(r, 'b', 10)
    const offers = [offer('a', 10), offer('b', 10)]
    assert.deepEqual(names(r.order(offers)), ['a', 'b'])
    r.record('a', { ok: false })
    assert.deepEqual(names(r.order(offers)), ['b', 'a'], 'still the failover candidate')
    advance(61_000)
    assert.deepEqual(names(r.order(offers)), ['a', 'b'], 'one failure in eleven jobs, a minute ago')
  })

  test('repeated failures lower uptime even after the cooldown; old failures fade with the half-life', () => {
    const { r, advance } = router({ cooldownMs: 1000, halfLifeMs: 60_000 })
    serve(r, 'a', 4, 100, 100)
    serve(r, 'b', 4)
    for (let i = 0; i < 6; i++) r.record('a', { ok: false })
    advance(2000)
    const offers = [offer('a', 10), offer('b', 10)]
    assert.deepEqual(names(r.order(offers)), ['b', 'a'])
    advance(3_600_000)
    serve(r, 'a', 1, 100, 100)
    assert.deepEqual(names(r.order(offers)), ['a', 'b'], 'an hour later the failures weigh nothing')
  })

  test('a slashed provider or one with bad audits is excluded, however cheap', () => {
    const { r } = router()
    serve(r, 'a', 5)
    serve(r, 'b', 5)
    serve(r, 'c', 5)
    r.setReputation('a', 1, true)
    r.setReputation('b', 0.2)
    assert.deepEqual(names(r.order([offer('a', 0), offer('b', 0), offer('c', 100)])), ['c'])
    assert.equal(r.eligible('a'), false)
    r.setReputation('c', 0.7)
    serve(r, 'd', 5)
    assert.deepEqual(names(r.order([offer('c', 10), offer('d', 10)])), ['d', 'c'], 'a lower audit score ranks lower')
  })

  test('a new provider gets a share of traffic near the exploration rate, and ranks on its merits once measured', () => {
    const rng = makeRng(7)
    const { r } = router({ exploration: 0.1, rng: () => rng() / 2 ** 32 })
    serve(r, 'old', 20)
    const offers = [offer('old', 10), offer('new', 30)] // dearer: it would never win on score
    let firsts = 0
    for (let i = 0; i < 2000; i++) if (r.order(offers)[0].provider === 'new') firsts++
    assert.ok(firsts > 2000 * 0.07 && firsts < 2000 * 0.13, `new first ${firsts} of 2000`)
    const quiet = router().r
    serve(quiet, 'old', 20)
    assert.equal(quiet.order(offers)[0].provider, 'old', 'without exploration the dear newcomer is never first')
    serve(r, 'new', 5, 200, 200) // measured: 4x the throughput
    assert.equal(r.order(offers)[0].provider, 'new')
  })

  test('order is a permutation of the eligible offers', () => {
    const { r } = router({ exploration: 0.5, rng: () => 0.3 })
    const offers = ['p1', 'p2', 'p3', 'p4', 'p5'].map((p, i) => offer(p, i * 3))
    serve(r, 'p2', 5)
    r.record('p3', { ok: false })
    const o = r.order(offers)
    assert.deepEqual([...names(o)].sort(), ['p1', 'p2', 'p3', 'p4', 'p5'])
    assert.equal(o.at(-1)!.provider, 'p3')
  })
})
