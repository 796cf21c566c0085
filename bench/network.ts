/**
 * Network benchmarks, as a list of sections (each prints its own table; `--only a,b` picks some).
 *
 * offers: time until every node holds every other node's offer, with N hosts on 127.0.0.1 (three
 * bootstrap nodes, the others dialled to them and left to find each other through the DHT and
 * gossipsub). The N nodes are spread over `--procs` worker processes (default 2, one per core of
 * the machine this was written on: more processes than cores only adds scheduling and memory;
 * `--procs 1` runs them all in this process). Every node publishes at the same instant
 * (`OfferPublisher.refresh`, a new seq each run) and runs an `OfferDiscovery`; a node is complete
 * when its book holds the other N-1 offers of this run, and the run ends when every node is.
 * Reported: median over the completed runs out of `--runs` of the time until 50%, 90% and all
 * nodes are complete (a run that misses its deadline, 20 s + N^2 x 25 ms, counts in "runs ok"
 * only), and the CPU of all processes during a run.
 *
 * What limits it: this is CPU, not a network. Per (node, offer) pair a node checks the offer's
 * signature (pure-JS secp256k1 ecrecover, @noble/curves; gossipsub's own signatures are off,
 * see src/p2p/host.ts), and libp2p re-derives secp256k1 PeerIds (a point decompression each) all
 * over its internals; identify, ping and the DHT's table upkeep grow with the connections.
 *
 * Usage: node --import tsx bench/network.ts [--only offers,verify --nodes 10,50 --procs 2 --runs 3 --setup-s 90]
 */
import '../src/p2p/polyfill.js'
import { type ChildProcess, fork } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import type { Hex } from 'viem'
import { generatePrivateKey } from 'viem/accounts'
import { ARITH_VERSION, ENGINE_VERSION } from '../src/engine/version.js'
import { createHost, type Host } from '../src/p2p/host.js'
import { identityFromKey } from '../src/p2p/identity.js'
import { OFFER_TOPIC, type Offer, OfferDiscovery, OfferPublisher, signOffer, verifyOffer } from '../src/p2p/offers.js'
import { arg, benchArgs, median } from './util.js'

benchArgs({
  summary: 'Network benchmarks (offers: time until every node holds every offer; verify: offer signature checks), each section printing its own table; writes nothing.',
  usage: 'npm run bench:network   (node --import tsx bench/network.ts [flags])',
  flags: {
    only: { value: 'LIST', help: 'sections to run (default all)' },
    nodes: { value: 'LIST', help: 'network sizes (default 10,50)' },
    procs: { value: 'N', help: 'worker processes the nodes are spread over (default 2)' },
    runs: { value: 'N', help: 'runs per size (default 3)' },
    'setup-s': { value: 'S', help: 'seconds allowed to set up the nodes (default 90)' },
    'settle-s': { value: 'S', help: 'seconds to let the mesh settle before a run (default 5)' },
    'verify-count': { value: 'N', help: 'offers verified in the verify section (default 300)' },
    'max-conns': { value: 'N', help: "each host's libp2p maxConnections (default 128)" },
    trace: { help: 'log each run\'s progress' },
  },
  internal: ['--worker'],
})

type Section = { name: string; what: string; run: () => Promise<void> }

const ROOT: Hex = `0x${'ab'.repeat(32)}`
// every node dials the same three bootstrap nodes at start: more inbound handshakes at once than a deployment's default
const LOOPBACK = { inboundConnectionThreshold: 10_000, maxIncomingPendingConnections: 128, maxConnections: Number(arg('max-conns', '128')) }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(cond: () => boolean, ms: number, everyMs = 10): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await sleep(everyMs)
  }
  return cond()
}

type Node = { host: Host; publisher: OfferPublisher; discovery: OfferDiscovery }

/** What one round reports: per node, ms from the publish until it held all n-1 offers (null: not by the deadline; JSON over IPC has no NaN), and the CPU it took. */
type RoundResult = { doneMs: (number | null)[]; cpuMs: number; held: number[]; peers: number[]; topicPeers: number[] }

/**
 * The nodes of one process. The same object runs in this process (`--procs 1`) or in a worker,
 * driven over IPC by `remoteGroup`.
 */
class Group {
  readonly nodes: Node[] = []

  /** Start `count` nodes one after another; `bootstrap` empty: the first three started here are the bootstrap nodes. */
  async start(count: number, bootstrap: string[], priceFrom: number): Promise<string[]> {
    for (let i = 0; i < count; i++) {
      const key = generatePrivateKey()
      const boot = bootstrap.length > 0 ? bootstrap : this.nodes.slice(0, 3).flatMap((x) => x.host.addrs())
      const host = await createHost({ privateKey: identityFromKey(key).libp2pKey, bootstrap: boot, limits: LOOPBACK })
      const publisher = new OfferPublisher({
        host,
        privateKey: key,
        terms: { models: [{ root: ROOT, pricePerToken: String(priceFrom + i), arith: ARITH_VERSION }], capacity: 1, engine: ENGINE_VERSION, stake: '0' },
        refreshSec: 3600,
      })
      const discovery = new OfferDiscovery({ host })
      discovery.start()
      this.nodes.push({ host, publisher, discovery })
    }
    return this.nodes.slice(0, 3).flatMap((x) => x.host.addrs())
  }

  formed(): number {
    return this.nodes.filter((x) => x.host.topicPeers(OFFER_TOPIC).length > 0).length
  }

  async publishFirst(): Promise<void> {
    await Promise.all(this.nodes.map((x) => x.publisher.start()))
  }

  async republish(): Promise<void> {
    await Promise.all(this.nodes.map((x) => x.publisher.refresh()))
  }

  /** Nodes holding an offer from each of the other `total - 1`. */
  ready(total: number): number {
    return this.nodes.filter((x) => x.discovery.book.size >= total - 1).length
  }

  /**
   * Re-publish every node's offer now and wait until each holds `total - 1` offers with a seq
   * from `floor` on (OfferPublisher takes seq from the clock in ms), or `deadline` (epoch ms).
   * Times count from `t0`, the coordinator's clock when it asked: the processes share a clock.
   */
  async round(floor: number, t0: number, total: number, deadline: number): Promise<RoundResult> {
    const cpu0 = process.cpuUsage()
    const published = Promise.all(this.nodes.map((x) => x.publisher.refresh()))
    const doneMs: (number | null)[] = this.nodes.map(() => null)
    while (Date.now() < deadline) {
      this.nodes.forEach((x, i) => {
        if (doneMs[i] === null && x.discovery.book.all().filter((o) => o.offer.seq >= floor).length >= total - 1) doneMs[i] = Date.now() - t0
      })
      if (doneMs.every((d) => d !== null)) break
      await sleep(10)
    }
    await published
    const c = process.cpuUsage(cpu0)
    const held = this.nodes.map((x) => x.discovery.book.all().filter((o) => o.offer.seq >= floor).length)
    return { doneMs, cpuMs: (c.user + c.system) / 1000, held, peers: this.nodes.map((x) => x.host.peers().length), topicPeers: this.nodes.map((x) => x.host.topicPeers(OFFER_TOPIC).length) }
  }

  stats(): { peers: number[]; refused: number } {
    return {
      peers: this.nodes.map((x) => x.host.peers().length),
      refused: this.nodes.reduce((a, x) => a + Object.values(x.discovery.book.problems).reduce((p, q) => p + q, 0), 0),
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (x) => {
        x.discovery.stop()
        await x.publisher.stop()
      }),
    )
    await Promise.all(this.nodes.map((x) => x.host.stop()))
  }
}

/** The `Group` methods the coordinator calls, all async (in-process or over IPC). */
type GroupApi = { [K in 'start' | 'formed' | 'publishFirst' | 'republish' | 'ready' | 'round' | 'stats' | 'stop']: (...args: Parameters<Group[K]>) => Promise<Awaited<ReturnType<Group[K]>>> }

function localGroup(): GroupApi {
  const g = new Group()
  return {
    start: (...a) => g.start(...a),
    formed: async () => g.formed(),
    publishFirst: () => g.publishFirst(),
    republish: () => g.republish(),
    ready: async (...a) => g.ready(...a),
    round: (...a) => g.round(...a),
    stats: async () => g.stats(),
    stop: () => g.stop(),
  }
}

type Request = { id: number; method: keyof GroupApi; args: unknown[] }
type Reply = { id: number; result?: unknown; error?: string }

/** A worker process (this script with `--worker`) holding one `Group`. */
function remoteGroup(): GroupApi & { exit(): void } {
  const child: ChildProcess = fork(process.argv[1], ['--worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const pending = new Map<number, { resolve: (x: unknown) => void; reject: (e: Error) => void }>()
  let next = 0
  child.on('message', (m: Reply) => {
    const p = pending.get(m.id)
    pending.delete(m.id)
    if (m.error !== undefined) p?.reject(new Error(`worker ${child.pid}: ${m.error}`))
    else p?.resolve(m.result)
  })
  child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`worker ${child.pid} exited with ${code}`))
    pending.clear()
  })
  const call =
    (method: keyof GroupApi) =>
    (...args: unknown[]): Promise<never> =>
      new Promise((resolve, reject) => {
        const id = next++
        pending.set(id, { resolve: resolve as (x: unknown) => void, reject })
        child.send({ id, method, args } satisfies Request)
      })
  const api = Object.fromEntries((['start', 'formed', 'publishFirst', 'republish', 'ready', 'round', 'stats', 'stop'] as const).map((m) => [m, call(m)])) as unknown as GroupApi
  return { ...api, exit: () => child.kill() }
}

function serveWorker(): void {
  const g = localGroup()
  process.on('message', (m: Request) => {
    const fn = g[m.method] as (...a: unknown[]) => Promise<unknown>
    fn(...m.args).then(
      (result) => process.send?.({ id: m.id, result } satisfies Reply),
      (err: unknown) => process.send?.({ id: m.id, error: err instanceof Error ? err.message : String(err) } satisfies Reply),
    )
  })
  process.on('disconnect', () => process.exit(0))
}

async function benchOffers(): Promise<void> {
  const sizes = arg('nodes', '10,50').split(',').map(Number)
  const runs = Number(arg('runs', '3'))
  const procs = Number(arg('procs', '2'))
  const trace = process.argv.includes('--trace')
  const rows: string[][] = []
  for (const n of sizes) {
    const t0 = Date.now()
    const workers = procs > 1 ? Array.from({ length: procs }, () => remoteGroup()) : []
    const groups: GroupApi[] = procs > 1 ? workers : [localGroup()]
    // nodes dealt out evenly; the first group starts the three bootstrap nodes, then every group
    // starts the rest of its nodes (one after another within a group, the groups side by side)
    const counts = groups.map((_, i) => Math.floor(n / groups.length) + (i < n % groups.length ? 1 : 0))
    const first = Math.min(3, counts[0])
    const bootstrap = await groups[0].start(first, [], 1)
    counts[0] -= first
    await Promise.all(groups.map((g, i) => g.start(counts[i], bootstrap, 1 + first + counts.slice(0, i).reduce((a, b) => a + b, 0))))
    // formed: every node knows a subscriber of the topic. Then warm-up, not timed: serve the offer
    // protocol, publish and provide the model on the DHT (the provides of every node at once are
    // DHT work, not offer propagation), re-publishing every 10 s until every node holds every
    // offer: the runs time propagation on a network that has formed, as a node's 30 s refresh
    // would keep it, not the network's formation.
    const setupEnd = Date.now() + Number(arg('setup-s', '90')) * 1000
    let formed = 0
    while (Date.now() < setupEnd && (formed = (await Promise.all(groups.map((g) => g.formed()))).reduce((a, b) => a + b, 0)) < n) {
      await sleep(200)
      if (trace) console.log(`  setup ${((Date.now() - t0) / 1000).toFixed(0)} s: formed ${formed}/${n}, peers per group ${(await Promise.all(groups.map((g) => g.stats()))).map((x) => x.peers.join(',')).join(' | ')}`)
    }
    await Promise.all(groups.map((g) => g.publishFirst()))
    const ready = async () => (await Promise.all(groups.map((g) => g.ready(n)))).reduce((a, b) => a + b, 0)
    let warm = await ready()
    for (let last = Date.now(); warm < n && Date.now() < setupEnd; warm = await ready()) {
      await sleep(500)
      if (Date.now() - last < 10_000) continue
      await Promise.all(groups.map((g) => g.republish()))
      last = Date.now()
    }
    await sleep(Number(arg('settle-s', '5')) * 1000)
    const setupS = (Date.now() - t0) / 1000
    const p50: number[] = []
    const p90: number[] = []
    const all: number[] = []
    const cpu: number[] = []
    let ok = 0
    for (let r = 0; r < runs; r++) {
      const start = Date.now()
      const results = await Promise.all(groups.map((g) => g.round(start, start, n, start + 20_000 + n * n * 25)))
      const complete = results
        .flatMap((x) => x.doneMs)
        .filter((d) => d !== null)
        .sort((a, b) => a - b)
      const at = (q: number) => (complete.length >= Math.ceil(q * n) ? complete[Math.ceil(q * n) - 1] : Number.NaN)
      if (complete.length === n) {
        ok++
        p50.push(at(0.5))
        p90.push(at(0.9))
        all.push(at(1))
        cpu.push(results.reduce((a, x) => a + x.cpuMs, 0))
      }
      if (trace) {
        const spread = (xs: number[]) => `${Math.min(...xs)}/${median(xs)}/${Math.max(...xs)}`
        const held = results.flatMap((x) => x.held)
        console.log(`  ${n} nodes, run ${r}: ${complete.length}/${n} nodes complete, all at ${fmt(at(1))} ms; offers held min/median/max ${spread(held)}, peers ${spread(results.flatMap((x) => x.peers))}, topic peers ${spread(results.flatMap((x) => x.topicPeers))}`)
      }
      await sleep(1200) // let the previous round's gossip (IHAVE/IWANT) settle
    }
    const stats = await Promise.all(groups.map((g) => g.stats()))
    const peers = median(stats.flatMap((s) => s.peers))
    const refused = stats.reduce((a, s) => a + s.refused, 0)
    rows.push([String(n), String(groups.length), `${ok}/${runs}`, fmt(median(p50)), fmt(median(p90)), fmt(median(all)), fmt(Math.min(...all)), fmt(Math.max(...all)), fmt(median(cpu)), String(peers), `${formed}/${n}`, `${warm}/${n}`, setupS.toFixed(1), String(refused)])
    await Promise.all(groups.map((g) => g.stop()))
    for (const w of workers) w.exit()
  }
  table(['nodes', 'procs', 'runs ok', '50% nodes ms', '90% ms', 'all ms', 'all min', 'all max', 'cpu ms', 'peers/node', 'formed', 'ready', 'setup s', 'refused'], rows)
}

async function benchVerify(): Promise<void> {
  const count = Number(arg('verify-count', '300'))
  const key = generatePrivateKey()
  const id = identityFromKey(key)
  const now = Math.floor(Date.now() / 1000)
  const offer = (seq: number): Offer => ({
    v: 2, provider: id.address, peerId: id.peerId.toString(), addrs: ['/ip4/127.0.0.1/tcp/4001'], models: [{ root: ROOT, pricePerToken: '1', arith: ARITH_VERSION }],
    capacity: 1, engine: ENGINE_VERSION, stake: '0', seq, issuedAt: now, expiresAt: now + 90,
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

if (process.argv.includes('--worker')) serveWorker()
else await main()

async function main(): Promise<void> {
const only = arg('only', SECTIONS.map((s) => s.name).join(',')).split(',')
console.log(`network bench, ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`)
for (const s of SECTIONS.filter((x) => only.includes(x.name))) {
  console.log(`\n## ${s.name}: ${s.what}`)
  await s.run()
}
process.exit(0)
}
