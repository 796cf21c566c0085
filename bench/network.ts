/**
 * Network benchmarks, as a list of sections (each prints its own table; `--only a,b` picks some).
 *
 * offers: time until every node holds every other node's offer, with N in-process hosts on
 * 127.0.0.1 (one bootstrap node, the others dialled to it and left to find each other through the
 * DHT and gossipsub). Every node publishes at the same instant (`OfferPublisher.refresh`, a new
 * seq each run) and runs an `OfferDiscovery`; the clock stops when all N books hold N-1 offers.
 * Median of the completed runs out of `--runs` on one network per size (a run that misses its
 * deadline, 20 s + N^2 x 25 ms, is counted in "runs ok" and left out of the times).
 *
 * What limits it: every host shares one Node thread, so this measures CPU, not a network. Per
 * (node, offer) pair a node checks gossipsub's message signature and the offer's (two pure-JS
 * secp256k1 operations, @noble/curves), and libp2p re-derives secp256k1 PeerIds (a point
 * decompression each) all over its internals; `cpu ms` ~ the wall time says so. Past ~25 nodes on
 * a loaded 2-core machine the starved event loop misses ping and stream timeouts, connections drop
 * and some runs never complete; the `verify` section gives the offer's own share of the cost.
 *
 * Usage: node --import tsx bench/network.ts [--only offers,verify --nodes 10,50 --runs 3 --setup-s 90]
 */
import '../src/p2p/polyfill.js'
import { cpus, loadavg } from 'node:os'
import type { Hex } from 'viem'
import { generatePrivateKey } from 'viem/accounts'
import { ARITH_VERSION, ENGINE_VERSION } from '../src/engine/version.js'
import { createHost, type Host } from '../src/p2p/host.js'
import { identityFromKey } from '../src/p2p/identity.js'
import { OFFER_TOPIC, type Offer, OfferDiscovery, OfferPublisher, signOffer, verifyOffer } from '../src/p2p/offers.js'
import { arg, median } from './util.js'

type Section = { name: string; what: string; run: () => Promise<void> }

const ROOT: Hex = `0x${'ab'.repeat(32)}`
const LOOPBACK = { inboundConnectionThreshold: 10_000, maxConnections: 128 }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(cond: () => boolean, ms: number, everyMs = 10): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await sleep(everyMs)
  }
  return cond()
}

type Node = { host: Host; key: Hex; publisher: OfferPublisher; discovery: OfferDiscovery }

async function startNetwork(n: number): Promise<Node[]> {
  const nodes: Node[] = []
  const start = async (bootstrap: string[]): Promise<Node> => {
    const key = generatePrivateKey()
    const host = await createHost({ privateKey: identityFromKey(key).libp2pKey, bootstrap, limits: LOOPBACK })
    const publisher = new OfferPublisher({
      host,
      privateKey: key,
      terms: { models: [{ root: ROOT, pricePerToken: String(1 + nodes.length) }], capacity: 1, engine: ENGINE_VERSION, arith: ARITH_VERSION, stake: '0' },
      refreshSec: 3600,
    })
    const discovery = new OfferDiscovery({ host })
    discovery.start()
    return { host, key, publisher, discovery }
  }
  // three bootstrap nodes (the first three), as a deployment would list: one alone takes every handshake
  for (let i = 0; i < n; i++) nodes.push(await start(nodes.slice(0, 3).flatMap((x) => x.host.addrs())))
  return nodes
}

async function benchOffers(): Promise<void> {
  const sizes = arg('nodes', '10,50').split(',').map(Number)
  const runs = Number(arg('runs', '3'))
  const trace = process.argv.includes('--trace')
  const rows: string[][] = []
  for (const n of sizes) {
    const t0 = Date.now()
    const nodes = await startNetwork(n)
    // ready: every node knows a subscriber of the topic; then two gossipsub heartbeats to graft meshes
    const setupLimitS = Number(arg('setup-s', '90'))
    await waitFor(() => nodes.every((x) => x.host.topicPeers(OFFER_TOPIC).length > 0), setupLimitS * 1000, 50)
    const formed = nodes.filter((x) => x.host.topicPeers(OFFER_TOPIC).length > 0).length
    // warm-up, not timed: serve the offer protocol, publish once and provide the model on the DHT
    // (the provides of every node at once are DHT work, not offer propagation)
    await Promise.all(nodes.map((x) => x.publisher.start()))
    await sleep(Number(arg('settle-s', '10')) * 1000)
    const setupS = (Date.now() - t0) / 1000
    const times: number[] = []
    const p50: number[] = []
    const p90: number[] = []
    const cpu: number[] = []
    const pairs = n * (n - 1)
    for (let r = 0; r < runs; r++) {
      // this run's offers are those with a seq from now on: OfferPublisher takes seq from the clock in ms
      const floor = Date.now()
      const cpu0 = process.cpuUsage()
      const start = performance.now()
      const published = Promise.all(nodes.map((x) => x.publisher.refresh()))
      const seen = () => nodes.reduce((a, x) => a + x.discovery.book.all().filter((s) => s.offer.seq >= floor).length, 0)
      const deadline = Date.now() + 20_000 + n * n * 25
      let half = Number.NaN
      let ninety = Number.NaN
      let all = Number.NaN
      while (Date.now() < deadline) {
        const k = seen()
        const t = performance.now() - start
        if (k >= pairs / 2 && Number.isNaN(half)) half = t
        if (k >= 0.9 * pairs && Number.isNaN(ninety)) ninety = t
        if (trace && Math.floor(t / 2000) !== Math.floor((t - 10) / 2000)) console.log(`  run ${r}: ${(t / 1000).toFixed(0)} s, ${k}/${pairs} (node, offer) pairs, ${nodes.filter((x) => x.discovery.book.all().filter((o) => o.offer.seq >= floor).length === n - 1).length} nodes complete`)
        if (k === pairs) {
          all = t
          const c = process.cpuUsage(cpu0)
          cpu.push((c.user + c.system) / 1000)
          break
        }
        await sleep(10)
      }
      await published
      if (!Number.isNaN(all)) {
        times.push(all)
        p50.push(half)
        p90.push(ninety)
      }
      await sleep(1200) // let the previous round's gossip (IHAVE/IWANT) settle
    }
    const peers = median(nodes.map((x) => x.host.peers().length))
    const problems = nodes.reduce((a, x) => a + Object.values(x.discovery.book.problems).reduce((p, q) => p + q, 0), 0)
    rows.push([String(n), `${times.length}/${runs}`, fmt(median(p50)), fmt(median(p90)), fmt(median(times)), fmt(Math.min(...times)), fmt(Math.max(...times)), fmt(median(cpu)), String(peers), `${formed}/${n}`, setupS.toFixed(1), String(problems)])
    await Promise.all(nodes.map(async (x) => {
      x.discovery.stop()
      await x.publisher.stop()
    }))
    await Promise.all(nodes.map((x) => x.host.stop()))
  }
  table(['nodes', 'runs ok', '50% ms', '90% ms', 'all ms', 'all min', 'all max', 'cpu ms', 'peers/node', 'formed', 'setup s', 'refused'], rows)
}

async function benchVerify(): Promise<void> {
  const count = Number(arg('verify-count', '300'))
  const key = generatePrivateKey()
  const id = identityFromKey(key)
  const now = Math.floor(Date.now() / 1000)
  const offer = (seq: number): Offer => ({
    v: 1, provider: id.address, peerId: id.peerId.toString(), addrs: ['/ip4/127.0.0.1/tcp/4001'], models: [{ root: ROOT, pricePerToken: '1' }],
    capacity: 1, engine: ENGINE_VERSION, arith: ARITH_VERSION, stake: '0', seq, issuedAt: now, expiresAt: now + 90,
  })
  const signed = []
  let t = performance.now()
  for (let i = 0; i < count; i++) signed.push(await signOffer(offer(i + 1), key))
  const signUs = ((performance.now() - t) * 1000) / count
  t = performance.now()
  for (const s of signed) if (!(await verifyOffer(s, now)).ok) throw new Error('bench offer did not verify')
  const verifyUs = ((performance.now() - t) * 1000) / count
  table(['op', 'us/offer', 'offers'], [['signOffer', signUs.toFixed(0), String(count)], ['verifyOffer', verifyUs.toFixed(0), String(count)]])
}

const SECTIONS: Section[] = [
  { name: 'offers', what: 'offer propagation: every node sees every offer (gossip)', run: benchOffers },
  { name: 'verify', what: 'offer signing and checking, one core', run: benchVerify },
]

const fmt = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(0) : '-')

function table(head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(w[i])).join(' | ')} |`
  console.log(line(head))
  console.log(`|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`)
  for (const r of rows) console.log(line(r))
}

const only = arg('only', SECTIONS.map((s) => s.name).join(',')).split(',')
console.log(`network bench, ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`)
for (const s of SECTIONS.filter((x) => only.includes(x.name))) {
  console.log(`\n## ${s.name}: ${s.what}`)
  await s.run()
}
process.exit(0)
