/**
 * A running Tessera node (docs/NETWORK.md "Roles in a node"): one key (the chain account and the
 * libp2p identity), one store, one libp2p host, and a loop per role.
 *
 * - provider: loads its models, registers them on chain if nobody has, stakes if asked, advertises,
 *   publishes signed offers, serves `/tessera/job/1.4.0` and 1.3.0 (serveJobs; 1.2.0 by serveJob) and `/tessera/transcript/1.0.0`,
 *   claims acknowledged jobs (the Claimer's tick) and defends every game opened on its jobs.
 * - auditor: stakes and registers with Audits if asked, follows claims and draws, fetches the
 *   transcripts of its audits from the provider over `/tessera/transcript/1.0.0` (the provider's
 *   peer found through its offer), draws batches with the beacon's rounds, replays, disputes.
 * - client: discovers offers (gossip + DHT); jobs are asked by `tessera request` or the gateway.
 *
 * Every loop ticks at most every `pollMs`; a tick's error is logged as one line and the tick is
 * retried next time, never ending the node. `stop()` withdraws the offer, stops the loops and
 * closes the host and the store. The node writes `DIR/status.json` every few seconds
 * (node/status.ts), which `tessera node status` reads while the store is locked by this process.
 */
import '../p2p/polyfill.js'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { type Address, type Hex, formatEther, getAddress, toHex as viemHex } from 'viem'
import { getAuditors, registerAuditor } from '../chain/actions/audits.js'
import { registerModel } from '../chain/actions/registry.js'
import { advertise, getStake, stake } from '../chain/actions/settlement.js'
import { BeaconFetchError, createDevBeacon, fetchRound, toContractSig } from '../chain/beacon.js'
import { type Deployment, requestDigest } from '../chain/client.js'
import { connectClients } from '../chain/evm/clients.js'
import { useNativeSecp } from '../chain/evm/secp.js'
import type { CheatKind } from '../dispute/cheats.js'
import { type DisputeModel, openDisputeModel, registrationArith } from '../dispute/model.js'
import { ARITH_VERSION, ENGINE_VERSION } from '../engine/version.js'
import { BaseError } from '../errors.js'
import type { FrameConn } from '../p2p/frames.js'
import { createHost, type Host, type Reachability } from '../p2p/host.js'
import { addressOfPeer, identityFromKey } from '../p2p/identity.js'
import { fetchOffer, OFFER_TOPIC, OfferDiscovery, OfferPublisher, type OfferTerms, type SignedOffer } from '../p2p/offers.js'
import { loadModel, type Model } from '../runtime/model.js'
import { loadNativeSecp } from '../runtime/native/secp.js'
import { toHex } from '../trace/merkle.js'
import { type Auditor, type ClaimedJob, type JobTranscript, createAuditor, serviceStore } from './auditor.js'
import { claimedItem, followProviderView, runEvery } from './chainWatch.js'
import { createIndexer } from './explorer/indexer.js'
import { type RunningExplorer, startExplorer } from './explorer/server.js'
import { type Claimer, createClaimer } from './claims.js'
import { type Defence, createDefence } from './defence.js'
import { JOB_PROTOCOL, JOB_PROTOCOL_1_2, JOB_PROTOCOL_1_3 } from './jobProtocol.js'
import { KEYSTORE_FILE, createKeystore, loadKeystore } from './keystore.js'
import { createJobSlots, modelsByRoot, type ServedModel, type ServeOutcome, serveJob, serveJobs } from './serveJob.js'
import { type NodeCounters, type NodeStatus, unreachableReasons, writeStatus } from './status.js'
import { type Store, jobBookOf, openStore } from './store.js'
import { claimItemOf, parseTranscript, type Transcript } from './transcript.js'
import { type AccessJson, type AccessVerdict, createTranscriptGate, signTranscriptAccess, type TranscriptGate } from './transcriptAccess.js'

/** `{t:'get', request: digest, access}` -> `{t:'transcript', transcript}` or `{t:'error', code, message}` (node/transcriptAccess.ts). */
export const TRANSCRIPT_PROTOCOL = '/tessera/transcript/1.0.0'

export type Role = 'provider' | 'auditor' | 'client'
export const ROLES: readonly Role[] = ['provider', 'auditor', 'client']

export type NodeOptions = {
  dataDir: string
  roles: ReadonlySet<Role>
  /** GGUF files: a provider serves them, an auditor replays jobs of them. */
  models: readonly string[]
  /** JSON-RPC URL of the chain. */
  rpc: string
  deployment: Deployment
  listen?: string[]
  bootstrap?: string[]
  /** Serve as a circuit relay v2 for peers behind NAT (a provider can be a relay). */
  relay?: boolean
  /**
   * Relays (multiaddrs ending in `/p2p/<id>`) to take a reservation on: the node listens on
   * `<relay>/p2p-circuit` too, and a provider's offer carries those relayed addresses.
   */
  relayVia?: string[]
  /**
   * Whether peers can dial this node, taken as given instead of AutoNAT's verdicts (see
   * `HostOptions.reachability`). A node whose reachability is 'private' (given, or found by
   * AutoNAT) takes a relay reservation by itself on a relay among its peers and advertises the
   * relayed address (`HostOptions.autoRelay`).
   */
  reachability?: Reachability
  /** Wei per token the provider asks for each model. */
  price?: bigint
  /** Stake (wei) the node brings its role's active stake up to at start; none: it stakes nothing. */
  stake?: bigint
  capacity?: number
  cheat?: CheatKind
  /**
   * Test-only fault (`--cheat withhold`): the provider gives a job's transcript to nobody but its
   * client and leaves availability challenges unanswered, so the drawn auditor challenges and the
   * provider is slashed (docs/NETWORK.md "Transcripts").
   */
  withhold?: boolean
  /** A drand-compatible HTTP endpoint for the audit draws; none: the devnet's beacon (public key) signs locally when the deployment names its seed. */
  beaconUrl?: string
  /** Each role's loop ticks at most this often (ms). */
  pollMs?: number
  passphrase: string
  /** On first start, the keystore holds this key instead of a fresh one (a funded devnet account). */
  importKey?: Hex
  /** Claim when a job waited this many seconds (default 300). */
  claimAfterSec?: number
  /** Offers are re-signed every this many seconds (default 30). */
  offerRefreshSec?: number
  /** How often status.json is written (ms, default 2000). */
  statusEveryMs?: number
  /** Serve the explorer (src/node/explorer/) at http://127.0.0.1:PORT/explorer/ (0: any free port). */
  explorerPort?: number
  log?: (line: string) => void
}

export type TesseraNode = {
  readonly address: Address
  readonly peerId: string
  readonly host: Host
  readonly store: Store
  readonly discovery: OfferDiscovery
  addrs(): string[]
  status(): Promise<NodeStatus>
  /** The explorer's URL when it was asked for (`explorerPort`). */
  readonly explorerUrl?: string
  /** Withdraws the offer, stops the loops, closes host and store (idempotent). */
  stop(): Promise<void>
}

/** The node cannot start: one line a person can act on. */
export class NodeStartError extends BaseError {
  override name = 'NodeStartError'
}

/** How often the node pings the peers whose offers it holds, and at most how many, for their latency. */
const LATENCY_EVERY_MS = 10_000
const MAX_PINGED = 64

/** Longest wait at start for a `relayVia` reservation before the first offer goes out, ms. */
const RESERVATION_WAIT_MS = 10_000

const oneLine = (e: unknown) => (e instanceof BaseError ? e.message : e instanceof Error ? e.message : String(e)).split('\n')[0]

/**
 * Starts a node with `opts.roles`.
 *
 * @example
 *   const node = await startNode({ dataDir: 'n1', roles: new Set(['provider']), models: ['tiny.gguf'], rpc, deployment, passphrase: 'pw', price: 10n ** 9n })
 *   await node.stop()
 */
export async function startNode(opts: NodeOptions): Promise<TesseraNode> {
  const log = opts.log ?? (() => {})
  const pollMs = opts.pollMs ?? 1000
  const d = opts.deployment
  const roles = opts.roles
  if (roles.has('provider') && roles.has('auditor')) throw new NodeStartError('a node is either a provider or an auditor (one stake role per account); run two nodes')

  // ---- key: the chain account and the libp2p identity
  if (!existsSync(join(opts.dataDir, KEYSTORE_FILE))) {
    mkdirSync(opts.dataDir, { recursive: true })
    const { address } = await createKeystore(opts.dataDir, opts.passphrase, opts.importKey)
    log(`created ${join(opts.dataDir, 'keystore.json')} for ${address}`)
  }
  const key = await loadKeystore(opts.dataDir, opts.passphrase)
  // the job path's signatures by the native secp256k1 when it is built (the same bytes and answers)
  useNativeSecp(loadNativeSecp())
  const c = connectClients({ transport: opts.rpc, chainId: d.chainId, privateKey: key.privateKey })
  const chainId = await c.public.getChainId().catch((e: unknown) => {
    throw new NodeStartError(`cannot reach the chain at ${opts.rpc}`, { cause: e })
  })
  if (chainId !== d.chainId) throw new NodeStartError(`the chain at ${opts.rpc} has id ${chainId}, the deployment is for ${d.chainId}`)

  // ---- models (before the store and host: a bad file fails fast)
  const dispute = new Map<string, DisputeModel>()
  const engines: Model[] = []
  const served: ServedModel[] = []
  const price = opts.price ?? 10n ** 9n
  try {
    for (const path of opts.models) {
      const dm = await openDisputeModel(path)
      dispute.set(dm.tree.modelRoot.toLowerCase(), dm)
      if (roles.has('provider')) {
        const m = await loadModel(path, { hugePages: true })
        engines.push(m)
        served.push({ model: m, pricePerToken: price, dispute: dm })
      }
    }
  } catch (e) {
    for (const m of dispute.values()) m.close()
    for (const m of engines) m.close()
    throw e
  }
  if (roles.has('provider') && served.length === 0) throw new NodeStartError('a provider needs at least one model (the models option names none)')
  const models = { get: (root: Hex) => dispute.get(root.toLowerCase()) }

  const relayVia = opts.relayVia ?? []
  for (const r of relayVia) if (!/\/p2p\/[^/]+$/.test(r)) throw new NodeStartError(`a relay address must end in /p2p/<peer id>: ${r}`)
  const store = await openStore(opts.dataDir)
  const identity = identityFromKey(key.privateKey)
  let host: Host
  try {
    const listen = [...(opts.listen ?? ['/ip4/127.0.0.1/tcp/0']), ...relayVia.map((r) => `${r}/p2p-circuit`)]
    host = await createHost({
      privateKey: identity.libp2pKey, listen, bootstrap: opts.bootstrap, relay: opts.relay, reachability: opts.reachability, limits: { inboundConnectionThreshold: 100 },
    })
  } catch (e) {
    await store.close()
    throw e
  }
  const controller = new AbortController()
  const signal = controller.signal
  const counters: NodeCounters = { served: 0, refused: {}, cancelled: 0, failed: 0, transcriptsGiven: 0, transcriptsRefused: 0, tickErrors: {} }
  const book = jobBookOf(store)
  const discovery = new OfferDiscovery({ host })
  /** Last measured round trip (ms) to each offering peer; a peer that did not answer is dropped. */
  const latencies = new Map<string, number>()
  const measureLatencies = async () => {
    const peers = [...new Set(discovery.book.all().map((o) => o.offer.peerId))].filter((p) => p !== host.peerId).slice(0, MAX_PINGED)
    await Promise.all(
      peers.map((p) =>
        host.ping(p, { timeoutMs: 2_000 }).then(
          (ms) => latencies.set(p, ms),
          () => latencies.delete(p),
        ),
      ),
    )
  }
  discovery.start()
  void askPeersForOffers(host, discovery, opts.bootstrap ?? [])
  const loops: Promise<void>[] = []
  let publisher: OfferPublisher | undefined
  let claimer: Claimer | undefined
  let defence: Defence | undefined
  let auditor: Auditor | undefined
  let explorer: RunningExplorer | undefined
  let transcriptGate: TranscriptGate | undefined
  const notes: string[] = []
  const tickError = (role: string) => (e: unknown) => {
    counters.tickErrors[role] = (counters.tickErrors[role] ?? 0) + 1
    counters.lastError = `${role}: ${oneLine(e)}`
    log(`${role} tick failed (retrying): ${oneLine(e)}`)
  }
  const loop = (role: string, tick: () => Promise<unknown>) => loops.push(runEvery(tick, { pollMs, signal, onError: tickError(role) }))

  const stopAll = async () => {
    controller.abort()
    await explorer?.close().catch(() => {})
    await publisher?.stop().catch(() => {})
    discovery.stop()
    await Promise.allSettled(loops)
    await host.stop().catch(() => {})
    await store.close().catch(() => {})
    for (const m of dispute.values()) m.close()
    for (const m of engines) m.close()
  }

  try {
    /** Brings the active stake of `role` up to opts.stake; says clearly when the wallet cannot pay. */
    const ensureStake = async (role: 'provider' | 'auditor') => {
      const s = await getStake(c, d, c.account.address)
      const want = opts.stake
      if (want === undefined || s.active >= want) return s.active
      if (s.role !== 0 && s.role !== (role === 'provider' ? 1 : 2)) throw new NodeStartError(`account ${c.account.address} is staked as another role`)
      const need = want - s.active
      const wallet = await c.public.getBalance({ address: c.account.address })
      if (wallet <= need) {
        notes.push(`cannot stake ${formatEther(need)} coin: the wallet holds ${formatEther(wallet)}`)
        log(`cannot stake ${formatEther(need)} coin: account ${c.account.address} holds ${formatEther(wallet)} (fund it, then restart)`)
        return s.active
      }
      await stake(c, d, { role, amount: need })
      log(`staked ${formatEther(need)} coin as ${role}`)
      return want
    }

    if (roles.has('provider')) {
      for (const m of served) {
        const root = `0x${toHex(m.model.modelRoot)}` as Hex
        const dm = dispute.get(root.toLowerCase())!
        // its jobs run, and are judged, under the arithmetic it is registered under: one read says
        // whether it is registered and under which; one this node registers is under ARITH_VERSION
        let arith = await registrationArith(c, d, root)
        if (arith === undefined) {
          await registerModel(c, d, { modelRoot: root, ...dm.tree.proveConfig(), arithVersion: viemHex(ARITH_VERSION, { size: 32 }) })
          log(`registered model ${root}`)
          arith = ARITH_VERSION
        }
        m.arith = arith
        dm.arith = arith
      }
      const active = await ensureStake('provider')
      const minStake = BigInt(d.params.settlement.minProviderStake ?? '0')
      if (active < minStake) log(`no stake: ${formatEther(active)} coin active, the minimum is ${formatEther(minStake)} (start with --stake); clients' jobs will be refused`)
      else
        for (const m of served) {
          try {
            await advertise(c, d, { modelRoot: `0x${toHex(m.model.modelRoot)}`, pricePerToken: price })
          } catch (e) {
            log(`advertise failed: ${oneLine(e)}`)
          }
        }
      claimer = createClaimer({ store, clients: c, deployment: d, maxAgeSec: opts.claimAfterSec })
      const terms: OfferTerms = {
        // each model with the arithmetic it is registered (and served) under
        models: served.map((m) => ({ root: `0x${toHex(m.model.modelRoot)}` as Hex, pricePerToken: price.toString(), arith: m.arith ?? ARITH_VERSION })),
        capacity: opts.capacity ?? 4, engine: ENGINE_VERSION, stake: active.toString(),
      }
      // the job checks' cached stake and block time, refreshed at each new block; the offer follows the stake
      const chainView = followProviderView({ clients: c, deployment: d, unclaimed: () => claimer!.unclaimedWei() }, {
        pollMs, signal, onError: tickError('chain view'),
        onFacts: async (f) => {
          if (!publisher || f.active.toString() === terms.stake) return
          log(`active stake now ${formatEther(f.active)} coin (was ${formatEther(BigInt(terms.stake))}): offer re-signed`)
          terms.stake = f.active.toString()
          await publisher.update({ ...terms })
        },
      })
      loops.push(chainView.done)
      const ctx = {
        clients: c, deployment: d, models: modelsByRoot(served), capacity: opts.capacity ?? 4, slots: createJobSlots(), book,
        unclaimed: () => claimer!.unclaimedWei(), cheat: opts.cheat, signal, view: chainView.view,
      }
      const report = async (o: ServeOutcome) => {
        if (o.outcome === 'served') {
          counters.served++
          if (o.acked && o.transcript.ack) await claimer!.add(claimItemOf({ ...o.transcript, ack: o.transcript.ack })).catch(tickError('claims'))
          log(`served ${o.transcript.requestDigest.slice(0, 10)} to ${o.transcript.client} (${o.transcript.output.length} tokens${o.acked ? '' : ', not acknowledged'})`)
        } else if (o.outcome === 'refused') {
          counters.refused[o.code] = (counters.refused[o.code] ?? 0) + 1
          log(`refused a job: ${o.code} (${o.message})`)
        } else if (o.outcome === 'cancelled') counters.cancelled++
        else if (o.outcome === 'failed') {
          counters.failed++
          log(`a job failed: ${oneLine(o.error)}`)
        }
      }
      // 1.4.0: jobs one after another on a stream, the signature may follow the request; 1.3.0 and 1.2.0 (older clients)
      await host.handle(JOB_PROTOCOL, (conn) => serveJobs(conn, ctx, report), { maxInbound: 64 })
      await host.handle(JOB_PROTOCOL_1_3, (conn) => serveJobs(conn, ctx, report, JOB_PROTOCOL_1_3), { maxInbound: 64 })
      await host.handle(JOB_PROTOCOL_1_2, async (conn) => report(await serveJob(conn, ctx)), { maxInbound: 64 })
      transcriptGate = createTranscriptGate({ clients: c, deployment: d, transcriptOf: (digest) => book.getTranscript(digest), withhold: opts.withhold })
      await host.handle(TRANSCRIPT_PROTOCOL, (conn) => serveTranscript(conn), { maxInbound: 16, maxBytes: 4096 })
      // the first offer should carry the relayed addresses: wait (bounded) for a reservation
      if (relayVia.length > 0) {
        const end = Date.now() + RESERVATION_WAIT_MS
        while (!host.addrs().some((a) => a.includes('/p2p-circuit')) && Date.now() < end && !signal.aborted) await new Promise((r) => setTimeout(r, 100))
        const relayed = host.addrs().filter((a) => a.includes('/p2p-circuit'))
        log(relayed.length > 0 ? `relay reservation: ${relayed.join(' ')}` : `no relay reservation on ${relayVia.join(', ')} yet; the offer carries the direct addresses only until one is held`)
      }
      publisher = new OfferPublisher({
        host, privateKey: key.privateKey, refreshSec: opts.offerRefreshSec, terms: { ...terms },
        onError: (e) => log(`offer refresh failed: ${oneLine(e)}`),
      })
      await publisher.start()
      defence = createDefence({ clients: c, deployment: d, store, models, cheat: opts.cheat, signal, transcriptOf: async (digest) => (opts.withhold ? undefined : transcriptView(await book.getTranscript(digest))) })
      loop('claims', async () => {
        const r = await claimer!.tick()
        for (const b of r.claimed) log(`claimed batch ${b.batchId}: ${b.count} job(s), ${formatEther(b.amount)} coin`)
        for (const b of r.finalized) log(`finalized batch ${b.batchId}: paid ${formatEther(b.paid)} coin`)
        for (const x of r.skipped) log(`skipped claiming ${x.digest.slice(0, 10)}: ${x.reason}`)
      })
      loop('defence', async () => {
        const r = await defence!.tick()
        if (r.seen || r.resolved) log(`defence: ${r.seen} new games, ${r.moves} moves, ${r.resolved} resolved`)
      })
    }

    if (roles.has('auditor')) {
      // audits replay a registered model's jobs under the arithmetic it is registered under (one
      // read per model; an unregistered one keeps openDisputeModel's default)
      for (const dm of dispute.values()) dm.arith = (await registrationArith(c, d, dm.tree.modelRoot as Hex)) ?? dm.arith
      await ensureStake('auditor')
      if (d.audits) {
        const me = c.account.address.toLowerCase()
        const listed = (await getAuditors(c, d)).some((a) => a.account.toLowerCase() === me)
        const s = await getStake(c, d, c.account.address)
        if (!listed && s.role === 2 && s.active >= BigInt(d.params.settlement.minAuditorStake ?? '0')) {
          await registerAuditor(c, d)
          log('registered with Audits')
        } else if (!listed) log('not registered with Audits: stake as auditor first (--stake); no audits will be drawn for this node')
      }
      auditor = createAuditor({ clients: c, deployment: d, store, models, transcripts: fetchTranscript, beaconRound: beaconRoundOf(d, opts.beaconUrl), signal })
      loop('auditor', async () => {
        const r = await auditor!.tick()
        for (const e of r.errors) tickError(`auditor ${e.key}`)(e.error)
        if (r.audited || r.opened || r.resolved || r.audits) log(`auditor: ${r.audited} audited, ${r.opened} disputes opened, ${r.moves} moves, ${r.resolved} resolved, ${r.audits} audit transactions`)
      })
    }

    if (opts.explorerPort !== undefined) {
      const indexer = createIndexer({ clients: c, deployment: d })
      explorer = await startExplorer({ indexer, port: opts.explorerPort, statusDir: opts.dataDir, transcriptOf: (digest) => book.getTranscript(digest), pollMs, onError: tickError('explorer') })
      log(`explorer at ${explorer.url}`)
    }

    const writeNow = async () => writeStatus(opts.dataDir, await snapshot())
    loops.push(runEvery(writeNow, { pollMs: opts.statusEveryMs ?? 2000, signal, onError: tickError('status') }))
    // latency to the providers whose offers this node holds (libp2p ping), for status and the explorer
    loops.push(runEvery(measureLatencies, { pollMs: LATENCY_EVERY_MS, signal, onError: tickError('latency') }))
  } catch (e) {
    await stopAll()
    throw e
  }

  /** Who may read a transcript: the job's client or its drawn auditor (node/transcriptAccess.ts, docs/NETWORK.md "Transcripts"). */
  async function serveTranscript(conn: FrameConn): Promise<void> {
    const msg = await conn.recv(5_000)
    if (msg === undefined) return
    let v: AccessVerdict
    try {
      v = await transcriptGate!.check(msg, addressOfPeer(conn.remotePeer))
    } catch (e) {
      // a chain read failed: the requester asks again with a fresh signature
      v = { ok: false, code: 'unavailable', message: `cannot check the access now: ${oneLine(e)}` }
    }
    if (!v.ok) {
      counters.transcriptsRefused++
      counters.transcriptRefusals = { ...counters.transcriptRefusals, [v.code]: (counters.transcriptRefusals?.[v.code] ?? 0) + 1 }
      log(`refused a transcript to ${addressOfPeer(conn.remotePeer)}: ${v.code} (${v.message})`)
      await conn.send({ t: 'error', code: v.code, message: v.message })
      return
    }
    counters.transcriptsGiven++
    await conn.send({ t: 'transcript', transcript: v.transcript })
  }

  /** The auditor's fetch: the provider's peer from its offer, then `/tessera/transcript/1.0.0`. */
  async function fetchTranscript(job: ClaimedJob): Promise<JobTranscript | undefined> {
    const rec = await serviceStore(store).audits.get(`${job.batchId}:${job.index}`)
    if (!rec) return undefined
    const item = await claimedItem(c, d, { tx: rec.tx, index: rec.index, client: rec.client, leaf: rec.leaf })
    // an offer gossiped before this node joined is not in the book: ask the DHT for the model's providers
    if (!discovery.book.get(job.provider)) await discovery.findOffers(item.req.modelRoot, { timeoutMs: 5_000 }).catch(() => [])
    const offer = discovery.book.get(job.provider)
    if (!offer) return undefined
    const digest = requestDigest(d.chainId, d.settlement, item.req)
    // signed for this job's place on chain: the provider gives it to the auditor drawn there only
    const access = await signTranscriptAccess(c, d, { requestDigest: digest, provider: job.provider, batchId: job.batchId, index: job.index, issuedAt: Math.floor(Date.now() / 1000) })
    const t = await getTranscript(host, offer, digest, access)
    return transcriptView(t)
  }

  async function snapshot(): Promise<NodeStatus> {
    const s = await getStake(c, d, c.account.address).catch(() => undefined)
    const wallet = await c.public.getBalance({ address: c.account.address }).catch(() => undefined)
    const svc = serviceStore(store)
    const audits: Record<string, number> = {}
    for await (const a of svc.audits.values()) audits[a.state] = (audits[a.state] ?? 0) + 1
    const disputes: Record<string, number> = {}
    for await (const g of svc.disputes.values()) disputes[`${g.role}:${g.state}`] = (disputes[`${g.role}:${g.state}`] ?? 0) + 1
    const claims = claimer ? await claimer.status() : undefined
    const offers = discovery.book.all().map((o) => ({
      provider: o.offer.provider, peerId: o.offer.peerId, models: o.offer.models, capacity: o.offer.capacity, expiresAt: o.offer.expiresAt,
      latencyMs: latencies.get(o.offer.peerId),
    }))
    const own = publisher?.current()
    const why: string[] = [...notes]
    if (roles.has('provider')) {
      const minStake = BigInt(d.params.settlement.minProviderStake ?? '0')
      if (s && s.active < minStake) why.push(`no stake: ${formatEther(s.active)} coin active, minimum ${formatEther(minStake)}`)
      if (host.peers().length === 0) why.push('no peers: nobody sees the offer (check --bootstrap)')
      if (!own) why.push('no offer published')
      for (const m of own?.offer.models ?? []) {
        const others = discovery.book.offersFor(m.root).filter((o) => getAddress(o.offer.provider) !== c.account.address)
        const cheapest = others.map((o) => BigInt(o.offer.models.find((x) => x.root.toLowerCase() === m.root.toLowerCase())?.pricePerToken ?? '0')).sort((a, b) => (a < b ? -1 : 1))[0]
        if (cheapest !== undefined && cheapest < BigInt(m.pricePerToken)) why.push(`price above the market for ${m.root.slice(0, 10)}: ${m.pricePerToken} wei/token, cheapest other ${cheapest}`)
      }
      if ((disputes['provider:lost'] ?? 0) > 0) why.push(`failed audits: lost ${disputes['provider:lost']} dispute(s) on its jobs (slashed); clients may avoid it`)
      if ((disputes['provider:open'] ?? 0) > 0) why.push(`failed audits: ${disputes['provider:open']} dispute(s) open against its jobs`)
      why.push(...unreachableReasons({ addrs: host.addrs(), relayVia, peers: host.peers().length, offerTopicPeers: host.topicPeers(OFFER_TOPIC).length, reachability: host.reachability(), listening: host.listenAddrs(), dialBacks: host.dialBacks() }))
      if (counters.refused['stake-too-low']) why.push(`${counters.refused['stake-too-low']} job(s) refused for stake-too-low`)
    }
    return {
      v: 1, pid: process.pid, updatedAt: Date.now(), state: signal.aborted ? 'stopping' : 'running',
      address: c.account.address, peerId: host.peerId, addrs: host.addrs(), roles: [...roles],
      peers: host.peers().length, wallet: wallet?.toString(), stake: s && { role: s.role, active: s.active.toString(), locked: s.locked.toString() },
      offersSeen: offers, offerProblems: { ...discovery.book.problems }, ownOffer: own ? { seq: own.offer.seq, expiresAt: own.offer.expiresAt } : undefined,
      jobs: { ...counters },
      claims: claims && { pending: claims.pending, pendingWei: claims.pendingWei.toString(), claimed: claims.claimed, openBatches: claims.openBatches, finalized: claims.finalized, earned: claims.earned.toString(), withdrawn: claims.withdrawn.toString(), blocked: claims.blocked },
      audits, disputes, whyNoWork: roles.has('provider') ? why : [], relay: opts.relay === true,
    }
  }

  let stopping: Promise<void> | undefined
  log(`node ${c.account.address} (${[...roles].join(', ')}) peer ${host.peerId} listening on ${host.addrs().join(' ')}`)
  return {
    address: c.account.address, peerId: host.peerId, host, store, discovery, explorerUrl: explorer?.url,
    addrs: () => host.addrs(),
    status: snapshot,
    stop() {
      stopping ??= (async () => {
        const last = await snapshot().catch(() => undefined)
        await stopAll()
        if (last) writeStatus(opts.dataDir, { ...last, state: 'stopped', updatedAt: Date.now() })
      })()
      return stopping
    },
  }
}

/**
 * Asks each of `peers` (multiaddrs) for its current offer into the discovery's book, so that a node
 * that just joined knows the offers gossiped before it came (errors: that peer has none).
 */
export async function askPeersForOffers(host: Host, discovery: OfferDiscovery, peers: readonly string[]): Promise<void> {
  await Promise.all(peers.map((p) => fetchOffer(host, p, { timeoutMs: 3_000 }).then((o) => discovery.book.add(o), () => undefined)))
}

/** What the services read of a stored transcript. */
function transcriptView(t: Transcript | undefined): JobTranscript | undefined {
  return t && { prompt: t.prompt, params: t.params, output: t.output, requestDigest: t.requestDigest }
}

/**
 * Asks a provider (its offer's peer) for a job's transcript with a signed access request
 * (`signTranscriptAccess` by this host's account); undefined if it refuses or has none.
 */
export async function getTranscript(host: Host, offer: SignedOffer, digest: Hex, access: AccessJson, timeoutMs = 10_000): Promise<Transcript | undefined> {
  const target = offer.offer.addrs.find((a) => a.endsWith(`/p2p/${offer.offer.peerId}`)) ?? offer.offer.peerId
  const conn = await host.dial(target, TRANSCRIPT_PROTOCOL, { signal: AbortSignal.timeout(timeoutMs) })
  try {
    await conn.send({ t: 'get', request: digest, access })
    const reply = (await conn.recv(timeoutMs)) as { t?: unknown; transcript?: unknown } | undefined
    await conn.close()
    if (reply?.t !== 'transcript') return undefined
    return parseTranscript(reply.transcript)
  } catch (e) {
    conn.abort(e instanceof Error ? e : new Error(String(e)))
    throw e
  }
}

/**
 * The contract form of a beacon round's signature for the auditor's draws: fetched from `url`
 * (drand's HTTP API) when given, else signed locally when the deployment's beacon is the devnet's
 * (its seed is public). undefined while the round is not due.
 */
export function beaconRoundOf(d: Deployment, url?: string): ((round: bigint) => Promise<Hex | undefined>) | undefined {
  const b = d.params.beacon
  if (url) {
    return async (round) => {
      try {
        return toContractSig((await fetchRound(url, Number(round), { timeoutMs: 5_000 })).signature)
      } catch (e) {
        if (e instanceof BeaconFetchError && e.status === 425) return undefined
        throw e
      }
    }
  }
  if (b?.devSeed && b.genesisTime && b.period) {
    const dev = createDevBeacon({ seed: b.devSeed, genesisTime: Number(b.genesisTime), period: Number(b.period) })
    return async (round) => (Number(round) <= dev.roundAt() ? toContractSig(dev.sign(Number(round)).signature) : undefined)
  }
  return undefined
}
