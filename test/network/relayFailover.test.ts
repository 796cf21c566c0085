// Two gaps of the NAT work at node level (docs/NETWORK.md "NAT"), in-process on 127.0.0.1 with the
// embedded chain.
// A relay cuts a job mid-stream: provider A has no listener and is reachable only through a relay
// (a bare host, `relay: true`) whose data limit (`HostOptions.relayLimits`) is reached in the
// middle of a 300-token answer; provider B listens directly. A client node (no listener, so no
// direct connection to A can appear) takes the offers in price order (A is cheaper) the way
// `tessera request` does (jobOfferOf + requestJob):
//  - with A alone, the cut fails the job (`JobFailedError`, the try 'closed' with some tokens):
//    what the failover below has to get around;
//  - with A then B, the cut try is reported as failed in `tries` and B completes the job; the
//    answer is the engine's for the same seed (what A would have given), its text shown once, the
//    transcript verifies, and A, which never got the client's acknowledgement, has nothing to claim.
// `node status` names the addresses peers cannot dial: B's AutoNAT verdicts (injected where AutoNAT
// reports them: loopback never produces one, see nat.test.ts) confirm one observed public address
// and fail another; the failed one is left out of B's addresses and offer, and status names both.
// `unreachableReasons` with listen addresses and per-address verdicts, without a network.
// About 12 s; every node and host is stopped in `after`.
import '../../src/p2p/polyfill.js'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { generatePrivateKey } from 'viem/accounts'
import type { Hex } from 'viem'
import { deposit } from '../../src/chain/actions/settlement.js'
import { type Deployment, deployTessera } from '../../src/chain/client.js'
import { connectClients } from '../../src/chain/evm/clients.js'
import { createEmbeddedChain, devAccount, type EmbeddedChain } from '../../src/chain/evm/edr.js'
import { serveJsonRpc } from '../../src/chain/evm/server.js'
import { jobOfferOf } from '../../src/cli/commands/request.js'
import { defaultDevnetModel } from '../../src/node/devnet.js'
import { askPeersForOffers, startNode, type TesseraNode } from '../../src/node/node.js'
import { JobFailedError, randomNonces, requestJob } from '../../src/node/requestJob.js'
import { unreachableReasons } from '../../src/node/status.js'
import { verifyTranscript } from '../../src/node/transcript.js'
import { createHost, type Host, LIBP2P } from '../../src/p2p/host.js'
import { identityFromKey } from '../../src/p2p/identity.js'
import { generate, jobParams, loadModel, type Model } from '../../src/runtime/model.js'
import { toHex } from '../../src/trace/merkle.js'
import { until } from '../support/until.js'

const COIN = 10n ** 18n
const GWEI = 10n ** 9n
/** What the relay lets one relayed connection carry: the handshakes, identify, the offer and the request fit; a 300-token answer does not. */
const RELAY_DATA = 12n << 10n
/** The address manager and AutoNAT service inside a host (libp2p 3): where identify and AutoNAT report what they found. */
type Verdict = { multiaddr: ReturnType<typeof multiaddr>; type: string; queue: { abort(): void } }
type Internals = { addressManager: { addObservedAddr(ma: ReturnType<typeof multiaddr>): void }; autoNAT: { confirmAddress(r: Verdict): void; unconfirmAddress(r: Verdict): void } }
function internalsOf(h: Host): Internals {
  const node = (h as unknown as { [LIBP2P]: { components: { addressManager: Internals['addressManager'] }; services: { autoNAT: Internals['autoNAT'] } } })[LIBP2P]
  return { addressManager: node.components.addressManager, autoNAT: node.services.autoNAT }
}
const show = (x: unknown) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? `${v}` : v))

describe('a relay cuts a job mid-stream: the client completes it on another provider; node status names undialable addresses', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-relay-failover-'))
  const nodes: TesseraNode[] = []
  let relay: Host
  let chain: EmbeddedChain
  let rpc: { url: string; close(): Promise<void> }
  let d: Deployment
  let modelPath: string
  let model: Model
  let root: Hex
  let a: TesseraNode
  let b: TesseraNode
  let client: TesseraNode
  /** Tokens the client had when each cut came (logged: ~6 KB of the limit go before the job). */
  const cuts: number[] = []

  before(async () => {
    modelPath = defaultDevnetModel(join(dir, 'model'))
    model = await loadModel(modelPath)
    root = `0x${toHex(model.modelRoot)}` as Hex
    chain = await createEmbeddedChain({ accounts: 8 })
    d = await deployTessera(connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey }))
    rpc = await serveJsonRpc(chain.provider, { port: 0 })
    relay = await createHost({ privateKey: identityFromKey(generatePrivateKey()).libp2pKey, relay: true, relayLimits: { dataBytes: RELAY_DATA }, limits: { inboundConnectionThreshold: 100 } })
    const relayAddr = relay.addrs()[0]!
    const base = { rpc: rpc.url, deployment: d, passphrase: 'pw', pollMs: 200, offerRefreshSec: 2 }
    const provider = { ...base, roles: new Set(['provider'] as const), models: [modelPath], stake: 10n * COIN }
    a = await startNode({ ...provider, dataDir: join(dir, 'a'), importKey: devAccount(2).privateKey, price: GWEI, listen: [], relayVia: [relayAddr], bootstrap: [relayAddr] })
    nodes.push(a)
    b = await startNode({ ...provider, dataDir: join(dir, 'b'), importKey: devAccount(3).privateKey, price: 2n * GWEI, listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(b)
    client = await startNode({ ...base, dataDir: join(dir, 'client'), roles: new Set(['client']), models: [], importKey: devAccount(1).privateKey, listen: [], bootstrap: [b.addrs()[0]!] })
    nodes.push(client)
    await deposit(connectClients({ transport: rpc.url, chainId: d.chainId, privateKey: devAccount(1).privateKey }), d, { amount: 10n * COIN })
  })

  after(async () => {
    for (const n of nodes.reverse()) await n.stop().catch(() => {})
    await relay?.stop().catch(() => {})
    await rpc?.close()
    await chain?.close()
    model?.close()
    rmSync(dir, { recursive: true, force: true })
    console.log(`relay failover: cut after ${cuts.join(', ')} of 300 tokens`)
  })

  const prompt = () => model.tokenizer.encode('Cut by the relay')
  // seed 2 runs the whole 300 tokens (no end-of-text before), ~10 KB of token frames
  const params = jobParams({ maxTokens: 300, temperature: 0.8 })
  const SEED = 2n
  const job = (offers: ReturnType<typeof jobOfferOf>[], onText?: (s: string) => void) =>
    requestJob({
      clients: connectClients({ transport: rpc.url, chainId: d.chainId, privateKey: devAccount(1).privateKey }),
      deployment: d, offers, modelRoot: root, prompt: prompt(), params, seed: SEED, nonces: randomNonces(), maxTries: offers.length, timeoutMs: 40_000, stallMs: 10_000, onText,
    })

  test('the client sees both offers, A (relayed only) first by price', async () => {
    const circuit = await until('A\'s relayed address', () => a.addrs().find((x) => x.includes('/p2p-circuit/')), 10_000)
    assert.ok(a.addrs().every((x) => x.includes('/p2p-circuit/')), `A is reachable only through the relay: ${a.addrs().join(' ')}`)
    // what `tessera request` does with its bootstrap addresses: ask them for their offers
    await askPeersForOffers(client.host, client.discovery, [circuit])
    const offers = await until('both offers', () => client.discovery.book.offersFor(root).length === 2 && client.discovery.book.offersFor(root), 10_000)
    assert.deepEqual(offers.map((o) => o.offer.provider), [a.address, b.address])
  })

  test('A alone: the relay cuts the job mid-stream and the job fails, the try reported as closed', async () => {
    const [offerA] = client.discovery.book.offersFor(root).map((o) => jobOfferOf(client.host, o, root))
    const err = await job([offerA!]).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof JobFailedError, `the job failed: ${err}`)
    const [t] = err.tries
    cuts.push(t?.tokens ?? -1)
    assert.equal(t?.provider, a.address)
    assert.equal(t?.code, 'closed', show(t))
    assert.ok(t!.tokens > 0 && t!.tokens < params.maxTokens, `cut mid-stream: ${t!.tokens} of ${params.maxTokens} tokens`)
    const toA = client.host.connections().filter((c) => c.peerId === a.peerId)
    assert.ok(toA.every((c) => c.relayed), `never a direct connection to A: ${JSON.stringify(toA)}`)
  })

  test('A then B: the cut try is reported as failed and B completes the job with the answer A would have given', async () => {
    const offers = client.discovery.book.offersFor(root).map((o) => jobOfferOf(client.host, o, root))
    let text = ''
    const { transcript, tries } = await job(offers, (s) => (text += s))
    assert.equal(tries.length, 2, show(tries))
    cuts.push(tries[0]!.tokens)
    assert.deepEqual([tries[0]!.provider, tries[0]!.outcome, tries[0]!.code], [a.address, 'failed', 'closed'])
    assert.ok(tries[0]!.tokens > 0 && tries[0]!.tokens < params.maxTokens, `cut mid-stream: ${tries[0]!.tokens} tokens`)
    assert.deepEqual([tries[1]!.provider, tries[1]!.outcome], [b.address, 'done'])
    assert.equal(transcript.request.provider, b.address)
    // the same seed gives the same tokens anywhere: B's answer is the engine's, which A's began
    const direct = generate(model, { prompt: prompt(), seed: SEED, ...params })
    assert.equal(direct.outputTokens.length, params.maxTokens)
    assert.deepEqual(transcript.output, direct.outputTokens)
    assert.equal(text, direct.text, 'the text shown once: A\'s part, then the rest from B')
    const v = await verifyTranscript(transcript, { ownRequest: true })
    assert.ok(v.ok, JSON.stringify(v))
    // B counts the job once it has the client's acknowledgement; A got none, so it has nothing to claim
    await until('B to count the job served', async () => (await b.status()).jobs.served === 1, 10_000)
    const sa = await a.status()
    assert.equal(sa.jobs.served, 0)
    assert.equal(sa.claims?.pending, 0, 'a cut job is not claimable')
  })

  // last: it gives B public addresses
  test('node status names the public addresses AutoNAT peers could not dial back, which B\'s offer leaves out', async () => {
    // MCAST-TEST-NET (RFC 5771, for documentation): public to libp2p (its private list has the unicast
    // documentation ranges, which its observed addresses ignore), and no dial to it can succeed
    const good = '/ip4/233.252.0.5/tcp/4001'
    const bad = '/ip4/233.252.0.9/tcp/4001'
    assert.ok((await b.status()).whyNoWork.some((w) => /^reachable from this machine only/.test(w)), 'B listens on loopback only')
    // identify: peers saw B at both; AutoNAT: peers dialled `good` back, and could not dial `bad` (8 networks)
    const { addressManager, autoNAT } = internalsOf(b.host)
    for (const a of [good, bad]) addressManager.addObservedAddr(multiaddr(a))
    autoNAT.confirmAddress({ multiaddr: multiaddr(good), type: 'observed', queue: { abort() {} } })
    autoNAT.unconfirmAddress({ multiaddr: multiaddr(bad), type: 'observed', queue: { abort() {} } })
    assert.equal(b.host.reachability(), 'public')
    assert.deepEqual(b.host.dialBacks(), [{ addr: good, ok: true }, { addr: bad, ok: false }])
    assert.ok(b.addrs().includes(`${good}/p2p/${b.peerId}`) && !b.addrs().some((a) => a.startsWith(bad)), b.addrs().join(' '))
    const why = (await b.status()).whyNoWork
    const line = why.find((w) => w.startsWith('partly reachable:'))
    assert.ok(line?.includes(`peers dialled back ${good}`) && line.includes(`could not dial back ${bad}`), why.join(' | '))
    // the offer follows the addresses: clients get `good`, never `bad`
    const offer = await until('B\'s offer with the dialled-back address', () => {
      const o = client.discovery.book.get(b.address)
      return o?.offer.addrs.some((a) => a.startsWith(good)) && o
    }, 10_000)
    assert.ok(!offer.offer.addrs.some((a) => a.startsWith(bad)), offer.offer.addrs.join(' '))
  })
})

describe('unreachableReasons with listen addresses and AutoNAT\'s per-address verdicts', () => {
  const pub = '/ip4/203.0.113.5/tcp/4001'
  const pub2 = '/ip4/198.51.100.9/tcp/4001'
  const lan = '/ip4/192.168.1.4/tcp/4001/p2p/me'
  const relayed = '/ip4/203.0.113.7/tcp/4001/p2p/R/p2p-circuit/p2p/me'
  const base = { relayVia: [], peers: 3, offerTopicPeers: 2 }
  test('listening on a public address not dialled back yet: not "no listen address", the address named', () => {
    const r = unreachableReasons({ ...base, addrs: [], listening: [pub], dialBacks: [] })
    assert.equal(r.length, 1, r.join(' | '))
    assert.match(r[0]!, /^unreachable: no address offered: no peer has dialled back \/ip4\/203\.0\.113\.5\/tcp\/4001 yet/)
  })
  test('a public address peers could not dial back, the only one: named as the reason nothing is offered', () => {
    const r = unreachableReasons({ ...base, addrs: [], listening: [pub], dialBacks: [{ addr: pub, ok: false }], reachability: 'private' })
    assert.equal(r.length, 1, r.join(' | '))
    assert.match(r[0]!, /^unreachable: no address offered: AutoNAT peers could not dial back \/ip4\/203\.0\.113\.5\/tcp\/4001 \(/)
  })
  test('behind NAT: the NAT\'s address that failed is named; a given --reachability private says so instead of blaming AutoNAT', () => {
    const r = unreachableReasons({ ...base, addrs: [lan], listening: [lan], dialBacks: [{ addr: pub, ok: false }], reachability: 'private' })
    assert.deepEqual(r.length, 1, r.join(' | '))
    assert.match(r[0]!, /^unreachable from outside: AutoNAT peers could not dial back \/ip4\/203\.0\.113\.5\/tcp\/4001 and no relay reservation/)
    const given = unreachableReasons({ ...base, addrs: [lan], listening: [lan], dialBacks: [], reachability: 'private' })
    assert.match(given.join(), /^unreachable from outside: reachability private \(--reachability private/)
  })
  test('some public addresses dialled back, others not: both named; none once a relay reservation carries the node', () => {
    const r = unreachableReasons({ ...base, addrs: [`${pub}/p2p/me`, lan], listening: [lan], dialBacks: [{ addr: pub, ok: true }, { addr: pub2, ok: false }], reachability: 'public' })
    assert.equal(r.length, 1, r.join(' | '))
    assert.equal(r[0], `partly reachable: peers dialled back ${pub}; AutoNAT peers could not dial back ${pub2} (left out of the offer)`)
    assert.deepEqual(unreachableReasons({ ...base, addrs: [lan, relayed], listening: [lan], dialBacks: [{ addr: pub, ok: false }], reachability: 'private' }), [])
    assert.deepEqual(unreachableReasons({ ...base, addrs: [`${pub}/p2p/me`], listening: [pub], dialBacks: [{ addr: pub, ok: true }], reachability: 'public' }), [], 'all dialled back')
  })
  test('loopback only, with a public address that failed: both said', () => {
    const r = unreachableReasons({ ...base, addrs: ['/ip4/127.0.0.1/tcp/5/p2p/me'], listening: ['/ip4/127.0.0.1/tcp/5'], dialBacks: [{ addr: pub, ok: false }], reachability: 'private' })
    assert.deepEqual(r, [`reachable from this machine only: every address (a relay's too) is loopback; AutoNAT peers could not dial back ${pub}`])
  })
  test('private addresses offered and a public listen address untested: both said', () => {
    const r = unreachableReasons({ ...base, addrs: [lan], listening: [lan, pub] })
    assert.equal(r.length, 1, r.join(' | '))
    assert.match(r[0]!, /^maybe unreachable from outside this network: only private addresses and no relay reservation; no peer has dialled back \/ip4\/203\.0\.113\.5\/tcp\/4001 yet/)
  })
})
