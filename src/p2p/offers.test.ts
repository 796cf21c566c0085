import './polyfill.js'
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Hex } from 'viem'
import { generatePrivateKey } from 'viem/accounts'
import { ARITH_V1, ARITH_V2, ARITH_VERSION, ENGINE_VERSION } from '../engine/version.js'
import { createHost, type Host } from './host.js'
import { identityFromKey } from './identity.js'
import { cidOfModel, decodeOffer, encodeOffer, fetchOffer, type Offer, OfferBook, OfferDiscovery, OfferPublisher, signOffer } from './offers.js'

const NOW = 1_800_000_000
const ROOT_A: Hex = `0x${'aa'.repeat(32)}`
const ROOT_B: Hex = `0x${'bb'.repeat(32)}`
const LOOPBACK = { inboundConnectionThreshold: 1000 }

function party() {
  const key = generatePrivateKey()
  const id = identityFromKey(key)
  const offer = (over: Partial<Offer> = {}): Offer => ({
    v: 2,
    provider: id.address,
    peerId: id.peerId.toString(),
    addrs: ['/ip4/127.0.0.1/tcp/4001'],
    models: [{ root: ROOT_A, pricePerToken: '10', arith: ARITH_VERSION }],
    capacity: 2,
    engine: ENGINE_VERSION,
    stake: '1000000000000000000',
    seq: 1,
    issuedAt: NOW,
    expiresAt: NOW + 90,
    ...over,
  })
  return { key, id, offer }
}

/** Poll `cond` every 50 ms until it holds or `ms` pass. */
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return cond()
}

describe('offer rules (OfferBook)', () => {
  let now = NOW
  const clock = () => now

  test('a valid offer is kept and listed for its model, cheapest first', async () => {
    now = NOW
    const book = new OfferBook({ now: clock })
    const [p, q, r] = [party(), party(), party()]
    assert.deepEqual(await book.add(await signOffer(p.offer({ models: [{ root: ROOT_A, pricePerToken: '30', arith: ARITH_VERSION }] }), p.key)), { kept: true, withdrawn: false })
    await book.add(await signOffer(q.offer({ models: [{ root: ROOT_B, pricePerToken: '5', arith: ARITH_VERSION }, { root: ROOT_A, pricePerToken: '20', arith: ARITH_VERSION }] }), q.key))
    await book.add(await signOffer(r.offer({ models: [{ root: ROOT_B, pricePerToken: '1', arith: ARITH_VERSION }] }), r.key))
    assert.deepEqual(
      book.offersFor(ROOT_A).map((s) => s.offer.provider),
      [q.id.address, p.id.address],
    )
    assert.deepEqual(
      book.offersFor(ROOT_B).map((s) => s.offer.provider),
      [r.id.address, q.id.address],
    )
    assert.equal(book.size, 3)
  })

  test('attacker: an offer whose signature is not the provider\'s is dropped', async () => {
    const book = new OfferBook({ now: clock })
    const p = party()
    const mallory = party()
    // signed by mallory, claiming to be p
    const forged = await signOffer(p.offer(), mallory.key)
    assert.equal((await book.add(forged)).kept, false)
    // a valid offer whose price was edited after signing
    const signed = await signOffer(p.offer(), p.key)
    const edited = { ...signed, offer: { ...signed.offer, models: [{ root: ROOT_A, pricePerToken: '1', arith: ARITH_VERSION }] } }
    const r = await book.add(edited)
    assert.deepEqual([r.kept, !r.kept && r.problem], [false, 'bad-signature'])
    assert.equal(book.problems['bad-signature'], 2)
    assert.equal(book.size, 0)
  })

  test('each model carries its own arith: two models under different arithmetics round-trip through the wire and the book', async () => {
    now = NOW
    const book = new OfferBook({ now: clock })
    const p = party()
    const models = [{ root: ROOT_A, pricePerToken: '10', arith: ARITH_V1 }, { root: ROOT_B, pricePerToken: '20', arith: ARITH_V2 }]
    const signed = await signOffer(p.offer({ models }), p.key)
    // as gossip carries it: bytes, parsed back, then checked by the book
    assert.deepEqual(await book.add(decodeOffer(encodeOffer(signed))), { kept: true, withdrawn: false })
    assert.deepEqual(book.offersFor(ROOT_A)[0].offer.models, models)
    assert.equal(book.offersFor(ROOT_B)[0].offer.models.find((m) => m.root === ROOT_B)?.arith, ARITH_V2)
  })

  test('attacker: a model\'s arith edited after signing fails the signature', async () => {
    now = NOW
    const book = new OfferBook({ now: clock })
    const p = party()
    const signed = await signOffer(p.offer({ models: [{ root: ROOT_A, pricePerToken: '10', arith: ARITH_V1 }, { root: ROOT_B, pricePerToken: '10', arith: ARITH_V2 }] }), p.key)
    // a relay that relabels model B as v1 (or swaps the two), keeping the provider's signature
    for (const models of [
      [signed.offer.models[0], { ...signed.offer.models[1], arith: ARITH_V1 }],
      [{ ...signed.offer.models[0], arith: ARITH_V2 }, { ...signed.offer.models[1], arith: ARITH_V1 }],
    ]) {
      const r = await book.add({ ...signed, offer: { ...signed.offer, models } })
      assert.deepEqual([r.kept, !r.kept && r.problem], [false, 'bad-signature'])
    }
    assert.equal(book.problems['bad-signature'], 2)
    assert.equal((await book.add(signed)).kept, true, 'the untouched offer is kept')
  })

  test('an older node\'s version 1 offer (one comma-joined arith) is refused as version, not read', async () => {
    now = NOW
    const book = new OfferBook({ now: clock })
    const p = party()
    // exactly what a v1 node signed: no per-model arith, the served models' arithmetics in one field
    const { v: _v, models: _m, ...rest } = p.offer()
    const v1 = { ...rest, v: 1, models: [{ root: ROOT_A, pricePerToken: '10' }, { root: ROOT_B, pricePerToken: '10' }], arith: `${ARITH_V2},${ARITH_V1}` }
    const r = await book.add(await signOffer(v1 as unknown as Offer, p.key))
    assert.equal(r.kept, false)
    assert.equal(!r.kept && r.problem, 'version')
    assert.match(!r.kept ? r.details : '', /version 1/)
    assert.equal(book.problems.version, 1)
    assert.equal(book.problems.malformed, 0)
    assert.equal(book.size, 0)
  })

  test('attacker: an offer naming another node\'s PeerId is dropped', async () => {
    const book = new OfferBook({ now: clock })
    const p = party()
    const other = party()
    const r = await book.add(await signOffer(p.offer({ peerId: other.id.peerId.toString() }), p.key))
    assert.deepEqual([r.kept, !r.kept && r.problem], [false, 'peer-mismatch'])
    assert.equal(book.problems['peer-mismatch'], 1)
  })

  test('an expired offer is dropped on arrival, and a kept one disappears once it expires', async () => {
    now = NOW
    const book = new OfferBook({ now: clock })
    const p = party()
    const old = await book.add(await signOffer(p.offer({ issuedAt: NOW - 100, expiresAt: NOW - 10 }), p.key))
    assert.deepEqual([old.kept, !old.kept && old.problem], [false, 'expired'])
    const q = party()
    assert.equal((await book.add(await signOffer(q.offer(), q.key))).kept, true)
    assert.equal(book.offersFor(ROOT_A).length, 1)
    now = NOW + 90
    assert.equal(book.offersFor(ROOT_A).length, 0)
    assert.equal(book.get(q.id.address), undefined)
  })

  test('attacker: a replayed offer with a lower (or the same) seq is dropped', async () => {
    now = NOW
    const book = new OfferBook({ now: clock })
    const p = party()
    const first = await signOffer(p.offer({ seq: 5, models: [{ root: ROOT_A, pricePerToken: '10', arith: ARITH_VERSION }] }), p.key)
    const second = await signOffer(p.offer({ seq: 6, models: [{ root: ROOT_A, pricePerToken: '50', arith: ARITH_VERSION }] }), p.key)
    assert.equal((await book.add(first)).kept, true)
    assert.equal((await book.add(second)).kept, true)
    const replay = await book.add(first) // the cheaper old offer, replayed by someone
    assert.deepEqual([replay.kept, !replay.kept && replay.problem], [false, 'replayed'])
    const sameSeq = await book.add(await signOffer(p.offer({ seq: 6, capacity: 9 }), p.key))
    assert.deepEqual([sameSeq.kept, !sameSeq.kept && sameSeq.problem], [false, 'replayed'])
    const dup = await book.add(second)
    assert.deepEqual([dup.kept, !dup.kept && dup.problem], [false, 'duplicate'])
    assert.equal(book.get(p.id.address)?.offer.models[0].pricePerToken, '50')
    assert.equal(book.problems.replayed, 2)
  })

  test('a withdrawal removes the offer, and the withdrawn offer cannot be replayed', async () => {
    now = NOW
    const book = new OfferBook({ now: clock })
    const p = party()
    const offer = await signOffer(p.offer({ seq: 1 }), p.key)
    await book.add(offer)
    assert.deepEqual(await book.add(await signOffer(p.offer({ seq: 2, models: [], withdrawn: true }), p.key)), { kept: true, withdrawn: true })
    assert.equal(book.offersFor(ROOT_A).length, 0)
    assert.equal((await book.add(offer)).kept, false)
    // someone else cannot withdraw p's offer
    const q = party()
    await book.add(await signOffer(q.offer({ seq: 1 }), q.key))
    await book.add(await signOffer(p.offer({ provider: q.id.address, peerId: q.id.peerId.toString(), seq: 2, models: [], withdrawn: true }), p.key))
    assert.equal(book.offersFor(ROOT_A).length, 1)
  })

  test('the book is bounded, and pruning to make room never re-opens a replay', async () => {
    now = NOW
    const book = new OfferBook({ now: clock, maxProviders: 2 })
    const [p, q, r] = [party(), party(), party()]
    const pOld = await signOffer(p.offer({ seq: 1 }), p.key)
    await book.add(pOld)
    await book.add(await signOffer(p.offer({ seq: 2, models: [], withdrawn: true }), p.key))
    await book.add(await signOffer(q.offer(), q.key))
    // p has withdrawn, but its offer of seq 1 has not expired: p's seq must be remembered
    const full = await book.add(await signOffer(r.offer(), r.key))
    assert.deepEqual([full.kept, !full.kept && full.problem], [false, 'full'])
    assert.equal((await book.add(pOld)).kept, false)
    // a day later every offer p could have signed before its withdrawal has expired: p is forgotten
    now = NOW + 25 * 3600
    const later = await book.add(await signOffer(r.offer({ issuedAt: now, expiresAt: now + 90 }), r.key))
    assert.equal(later.kept, true)
    assert.equal(book.problems.full, 1)
  })

  test('malformed offers are dropped without throwing', async () => {
    const book = new OfferBook({ now: clock })
    const p = party()
    const signed = await signOffer(p.offer(), p.key)
    const cases: unknown[] = [
      undefined,
      'offer',
      { offer: signed.offer },
      { ...signed, signature: '0x1234' },
      { ...signed, offer: { ...signed.offer, v: 3 } },
      { ...signed, offer: { ...signed.offer, extra: 1 } },
      { ...signed, offer: { ...signed.offer, models: [{ root: '0x12', pricePerToken: '1', arith: ARITH_VERSION }] } },
      { ...signed, offer: { ...signed.offer, models: [{ root: ROOT_A, pricePerToken: '1' }] } },
      { ...signed, offer: { ...signed.offer, models: [{ root: ROOT_A, pricePerToken: '1', arith: '' }] } },
      { ...signed, offer: { ...signed.offer, models: [{ root: ROOT_A, pricePerToken: '1', arith: 2 }] } },
      { ...signed, offer: { ...signed.offer, models: [{ root: ROOT_A, pricePerToken: '1', arith: ARITH_V2, extra: 1 }] } },
      { ...signed, offer: { ...signed.offer, arith: ARITH_V2 } },
      { ...signed, offer: { ...signed.offer, stake: '-1' } },
      { ...signed, offer: { ...signed.offer, expiresAt: NOW + 10 * 24 * 3600 } },
      { ...signed, offer: { ...signed.offer, withdrawn: true } },
      { ...signed, offer: { ...signed.offer, addrs: Array(100).fill('/ip4/1.2.3.4/tcp/1') } },
    ]
    for (const c of cases) {
      const r = await book.add(c)
      assert.deepEqual([r.kept, !r.kept && r.problem], [false, 'malformed'], JSON.stringify(c)?.slice(0, 80))
    }
    assert.equal(book.problems.malformed, cases.length)
  })

  test('cidOfModel is stable, distinct per root, and not the root itself', () => {
    assert.equal(cidOfModel(ROOT_A).toString(), cidOfModel(ROOT_A).toString())
    assert.notEqual(cidOfModel(ROOT_A).toString(), cidOfModel(ROOT_B).toString())
    assert.notEqual(Buffer.from(cidOfModel(ROOT_A).multihash.digest).toString('hex'), 'aa'.repeat(32))
  })
})

describe('offers on a network of 4 hosts on 127.0.0.1', () => {
  let boot: Host
  const clients: Host[] = []
  const discoveries: OfferDiscovery[] = []
  let provider: Host
  let providerKey: Hex
  let publisher: OfferPublisher

  before(async () => {
    boot = await createHost({ privateKey: identityFromKey(generatePrivateKey()).libp2pKey, limits: LOOPBACK })
    // everyone knows only the bootstrap node
    for (let i = 0; i < 2; i++) clients.push(await createHost({ privateKey: identityFromKey(generatePrivateKey()).libp2pKey, bootstrap: boot.addrs(), limits: LOOPBACK }))
    providerKey = generatePrivateKey()
    provider = await createHost({ privateKey: identityFromKey(providerKey).libp2pKey, bootstrap: boot.addrs(), limits: LOOPBACK })
    for (const h of [boot, ...clients]) {
      const d = new OfferDiscovery({ host: h })
      d.start()
      discoveries.push(d)
    }
    // wait until the provider's gossip reaches the mesh: every subscriber is known to the provider
    await waitFor(() => provider.peers().includes(boot.peerId) && clients.every((c) => c.peers().includes(boot.peerId)), 5000)
  })

  after(async () => {
    for (const d of discoveries) d.stop()
    await Promise.all([boot.stop(), provider.stop(), ...clients.map((c) => c.stop())])
  })

  test('a published offer reaches every node by gossip; a withdrawal on stop removes it everywhere', async () => {
    publisher = new OfferPublisher({
      host: provider,
      privateKey: providerKey,
      terms: { models: [{ root: ROOT_A, pricePerToken: '7', arith: ARITH_VERSION }], capacity: 4, engine: ENGINE_VERSION, stake: '5' },
      refreshSec: 60,
    })
    // gossipsub needs the subscriptions exchanged before a publish reaches anyone: republish until seen (bounded)
    await waitFor(() => provider.topicPeers('tessera/offers/1').length >= 1, 5000)
    await publisher.start()
    const everyone = () => discoveries.every((d) => d.book.offersFor(ROOT_A).length === 1)
    for (let i = 0; i < 5 && !(await waitFor(everyone, 1500)); i++) await publisher.refresh()
    assert.ok(everyone(), `offer seen by ${discoveries.filter((d) => d.book.offersFor(ROOT_A).length === 1).length}/3 nodes`)
    const seen = discoveries[2].book.offersFor(ROOT_A)[0].offer
    assert.equal(seen.peerId, provider.peerId)
    assert.equal(seen.models[0].pricePerToken, '7')
    assert.equal(seen.models[0].arith, ARITH_VERSION)

    // the offer protocol answers with the same current offer
    const fetched = (await fetchOffer(clients[0], provider.addrs()[0])) as { offer: Offer }
    assert.equal(fetched.offer.seq, publisher.current()?.offer.seq)

    // the DHT: a client that never heard the gossip finds the provider through the bootstrap node alone
    const late = await createHost({ privateKey: identityFromKey(generatePrivateKey()).libp2pKey, bootstrap: boot.addrs(), limits: LOOPBACK })
    try {
      await waitFor(() => late.peers().includes(boot.peerId), 5000)
      const discovery = new OfferDiscovery({ host: late })
      let found: unknown[] = []
      for (let i = 0; i < 5 && found.length === 0; i++) found = await discovery.findOffers(ROOT_A, { timeoutMs: 3000 })
      assert.equal(found.length, 1)
      assert.equal((await discovery.findOffers(ROOT_B, { timeoutMs: 1000 })).length, 0)
    } finally {
      await late.stop()
    }

    await publisher.stop()
    const nobody = () => discoveries.every((d) => d.book.offersFor(ROOT_A).length === 0)
    assert.ok(await waitFor(nobody, 5000), 'the withdrawal reached every node')
  })

  test('attacker: a forged offer on the gossip topic is rejected and not kept anywhere', async () => {
    const mallory = party()
    const victim = party()
    const forged = await signOffer(victim.offer({ issuedAt: Math.floor(Date.now() / 1000), expiresAt: Math.floor(Date.now() / 1000) + 90 }), mallory.key)
    const before = discoveries.map((d) => d.book.problems['bad-signature'])
    await clients[0].publish('tessera/offers/1', new TextEncoder().encode(JSON.stringify(forged)))
    assert.ok(await waitFor(() => discoveries[0].book.problems['bad-signature'] > before[0], 3000), 'the bootstrap node checked and refused it')
    assert.ok(discoveries.every((d) => d.book.size === 0))
  })
})

describe('offers republished when the host\'s addresses change', () => {
  test('a relay reservation made, then lost: each reaches a client as a new offer, without waiting for the refresh', async () => {
    const providerKey = generatePrivateKey()
    const provider = await createHost({ privateKey: identityFromKey(providerKey).libp2pKey, listen: ['/ip4/127.0.0.1/tcp/0', '/p2p-circuit'], limits: LOOPBACK })
    const client = await createHost({ privateKey: identityFromKey(generatePrivateKey()).libp2pKey, bootstrap: provider.addrs(), limits: LOOPBACK })
    const discovery = new OfferDiscovery({ host: client })
    discovery.start()
    let relay: Host | undefined
    // refreshSec of an hour: only the address change can send a new offer within this test
    const publisher = new OfferPublisher({
      host: provider,
      privateKey: providerKey,
      terms: { models: [{ root: ROOT_A, pricePerToken: '7', arith: ARITH_VERSION }], capacity: 1, engine: ENGINE_VERSION, stake: '0' },
      refreshSec: 3600,
      addrsSettleMs: 100,
    })
    try {
      await waitFor(() => provider.topicPeers('tessera/offers/1').length >= 1, 10_000)
      const first = await publisher.start()
      const seen = () => discovery.book.offersFor(ROOT_A)[0]?.offer
      for (let i = 0; i < 5 && !(await waitFor(() => seen() !== undefined, 1500)); i++) await publisher.refresh()
      const before = seen()
      assert.ok(before !== undefined && before.seq >= first.offer.seq, 'the client holds the first offer')
      assert.ok(!before.addrs.some((a) => a.includes('/p2p-circuit')))

      // a relay connects: the provider takes a reservation, its addresses gain a /p2p-circuit one
      relay = await createHost({ privateKey: identityFromKey(generatePrivateKey()).libp2pKey, relay: true, limits: LOOPBACK })
      await fetchOffer(relay, provider.addrs()[0])
      const relayed = () => seen()?.addrs.some((a) => a.startsWith(`${relay!.addrs()[0]}/p2p-circuit/p2p/${provider.peerId}`)) === true
      assert.ok(await waitFor(relayed, 10_000), `the client's offer for the provider has its relayed address: ${seen()?.addrs}`)
      assert.ok(seen()!.seq > before.seq)
      assert.deepEqual(seen()!.addrs, publisher.current()?.offer.addrs)

      // the relay goes away: the reservation is lost and the relayed address leaves the offer
      const withRelay = seen()!.seq
      await relay.stop()
      assert.ok(await waitFor(() => (seen()?.seq ?? 0) > withRelay && !relayed(), 10_000), `the relayed address was withdrawn: ${seen()?.addrs}`)
    } finally {
      discovery.stop()
      await publisher.stop()
      await Promise.all([provider.stop(), client.stop(), relay?.stop()])
    }
  })

  test('attacker: a relay that makes and drops reservations in a burst cannot make the provider flood the topic', async () => {
    const key = generatePrivateKey()
    let addrs = ['/ip4/127.0.0.1/tcp/4001']
    let changed: ((addrs: string[]) => void) | undefined
    const published: Offer[] = []
    // a host whose address changes the test drives; everything the publisher does not use throws
    const host = new Proxy({} as Host, {
      get(_, name) {
        if (name === 'peerId') return identityFromKey(key).peerId.toString()
        if (name === 'addrs') return () => addrs
        if (name === 'handle' || name === 'unhandle') return async () => {}
        if (name === 'provide') return async () => {}
        if (name === 'publish') return async (_t: string, data: Uint8Array) => void published.push((JSON.parse(new TextDecoder().decode(data)) as { offer: Offer }).offer)
        if (name === 'onAddrsChange')
          return (l: (a: string[]) => void) => {
            changed = l
            return () => (changed = undefined)
          }
        throw new Error(`the publisher used host.${String(name)}`)
      },
    })
    const publisher = new OfferPublisher({ host, privateKey: key, terms: { models: [], capacity: 1, engine: ENGINE_VERSION, stake: '0' }, refreshSec: 3600, addrsSettleMs: 50 })
    await publisher.start()
    assert.equal(published.length, 1)
    const relayed = '/ip4/10.0.0.1/tcp/4001/p2p/relay/p2p-circuit'
    const base = '/ip4/127.0.0.1/tcp/4001'
    // 50 flaps in ~500 ms, ending with a reservation on another relay
    const t0 = Date.now()
    for (let i = 0; i < 50; i++) {
      addrs = i % 2 === 0 ? [base, relayed] : [base]
      changed?.(addrs)
      await new Promise((r) => setTimeout(r, 10))
    }
    const other = '/ip4/10.0.0.2/tcp/4001/p2p/relay2/p2p-circuit'
    addrs = [base, other]
    changed?.(addrs)
    const burstMs = Date.now() - t0
    await new Promise((r) => setTimeout(r, Math.max(0, 1_500 - burstMs)))
    assert.equal(published.length, 2, 'one offer for the first 1.5 s of the burst')
    // the rest of the burst goes out once the 2 s gap has passed, as one offer with the final addresses
    assert.ok(await waitFor(() => published.length === 3, 2_000), 'the final addresses are published after the gap')
    assert.deepEqual(published[2].addrs, [base, other])
    assert.ok(published[2].seq > published[1].seq && published[1].seq > published[0].seq)
    await new Promise((r) => setTimeout(r, 2_500))
    assert.equal(published.length, 3, 'nothing more without a change')
    // a reservation lost and made again before it settled: the offer already says so, nothing is sent
    addrs = [base]
    changed?.(addrs)
    addrs = [base, other]
    changed?.(addrs)
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(published.length, 3)
    await publisher.stop()
    assert.equal(changed, undefined, 'stop unsubscribes')
    assert.equal(published.at(-1)?.withdrawn, true)
  })
})
