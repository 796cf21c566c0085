/**
 * The gateway as a node role (`tessera node start --role client,gateway`): the OpenAI-compatible
 * HTTP API (./server.ts) over the network backend (./networkBackend.ts), on any chain the node
 * reaches by JSON-RPC. Offers come from the node's OfferDiscovery; the `Router` learns each job's
 * measurements from the backend and, from the chain's events, each provider's slashes (Settlement
 * `Slashed`: excluded from routing) and audit verdicts (Audits `Revealed` on the provider's claimed
 * batches: its reputation, `reputationOf`). `GET /v1/receipts/{id}` adds the job's audit status
 * (`jobAuditStatus`: claimed in which batch, drawn or not, by whom, the verdict), and finds jobs
 * older than the gateway's memory in the node's store. `tessera devnet` runs its gateway through
 * `startNetworkGateway` too.
 */
import type { Address, Hex } from 'viem'
import { AUDIT, assignmentOf } from '../../chain/actions/audits.js'
import { getBalances } from '../../chain/actions/settlement.js'
import { auditsAbi, settlementAbi } from '#abi'
import type { Deployment } from '../../chain/client.js'
import type { ChainClients } from '../../chain/evm/clients.js'
import type { Host } from '../../p2p/host.js'
import type { OfferDiscovery } from '../../p2p/offers.js'
import { dialJob } from '../jobProtocol.js'
import { type JobOffer, randomNonces } from '../requestJob.js'
import type { Store } from '../store.js'
import { jobBookOf } from '../store.js'
import { type JobFile, jobFileOf } from '../transcript.js'
import type { GatewayModel } from './backend.js'
import { networkBackend } from './networkBackend.js'
import { Router } from './routing.js'
import { type Gateway, type GatewayOptions, startGateway } from './server.js'

/** What the role needs of a running node (src/node/node.ts TesseraNode). */
export type GatewayNode = { host: Host; discovery: OfferDiscovery; store: Store }

export type NetworkGatewayOptions = {
  node: GatewayNode
  /** The gateway's account: it signs requests and acknowledgements; its escrow pays. */
  clients: ChainClients
  deployment: Deployment
  models: GatewayModel[]
  router?: Router
  /** How often the chain's slashes and audit verdicts are read (ms, default 2000). */
  followMs?: number
  /** Called for each slash read (a devnet logs it with the node's name). */
  onSlash?(account: Address, amount: bigint): void
  log?: (line: string) => void
} & Omit<GatewayOptions, 'backend' | 'findReceipt' | 'auditStatus'>

export type NetworkGateway = { gateway: Gateway; router: Router; url: string; close(): Promise<void> }

/** The job offers of `root` the node has seen, each dialled on the job protocol. */
export function offersOf(node: Pick<GatewayNode, 'host' | 'discovery'>, root: Hex): JobOffer[] {
  return node.discovery.book.offersFor(root).map((s) => {
    const o = s.offer
    const m = o.models.find((x) => x.root.toLowerCase() === root.toLowerCase())!
    const target = o.addrs.find((a) => a.endsWith(`/p2p/${o.peerId}`)) ?? o.peerId
    return { provider: o.provider, pricePerToken: BigInt(m.pricePerToken), connect: (signal: AbortSignal) => dialJob(node.host, target, signal) }
  })
}

/**
 * A provider's audit reputation from its verdicts: (valid + 1) / (valid + 2 * invalid + 1). A
 * provider never audited has 1; one invalid verdict and nothing else 1/3 (below the router's
 * default minimum of 1/2: excluded); 5 valid and 1 invalid 3/4.
 */
export function reputationOf(valid: number, invalid: number): number {
  return (valid + 1) / (valid + 2 * invalid + 1)
}

export type ReputationFollower = { tick(): Promise<void>; readonly slashed: ReadonlySet<string> }

/**
 * Reads the chain's events after the deployment block, a range per tick: `BatchClaimed` (which
 * provider a batch is), Audits `Revealed` (a verdict on one job of a batch) and `Slashed`, and
 * sets each provider's reputation and slashed flag on the router.
 */
export function followReputation(o: { clients: ChainClients; deployment: Deployment; router: Router; onSlash?(account: Address, amount: bigint): void }): ReputationFollower {
  const d = o.deployment
  let from = BigInt(d.deployedAtBlock)
  const providerOfBatch = new Map<string, string>()
  const verdicts = new Map<string, { valid: number; invalid: number }>()
  const slashed = new Set<string>()
  const pub = o.clients.public
  return {
    slashed,
    async tick() {
      const to = await pub.getBlockNumber()
      if (to < from) return
      const range = { fromBlock: from, toBlock: to }
      const [batches, slashes, reveals] = await Promise.all([
        pub.getContractEvents({ address: d.settlement, abi: settlementAbi, eventName: 'BatchClaimed', ...range }),
        pub.getContractEvents({ address: d.settlement, abi: settlementAbi, eventName: 'Slashed', ...range }),
        d.audits ? pub.getContractEvents({ address: d.audits, abi: auditsAbi, eventName: 'Revealed', ...range }) : Promise.resolve([]),
      ])
      for (const e of batches) providerOfBatch.set(String(e.args.batchId), String(e.args.provider).toLowerCase())
      const touched = new Set<string>()
      for (const e of reveals) {
        const p = providerOfBatch.get(String(e.args.batchId))
        if (!p) continue
        const v = verdicts.get(p) ?? { valid: 0, invalid: 0 }
        e.args.valid ? v.valid++ : v.invalid++
        verdicts.set(p, v)
        touched.add(p)
      }
      for (const e of slashes) {
        const who = String(e.args.account).toLowerCase()
        slashed.add(who)
        touched.add(who)
        o.onSlash?.(e.args.account as Address, e.args.amount ?? 0n)
      }
      for (const p of touched) {
        const v = verdicts.get(p) ?? { valid: 0, invalid: 0 }
        o.router.setReputation(p, reputationOf(v.valid, v.invalid), slashed.has(p))
      }
      from = to + 1n
    },
  }
}

/** Where a job stands in the audits, as `GET /v1/receipts/{id}` shows it. */
export type JobAuditStatus = {
  /** Whether the provider has claimed the job on chain (audits draw from claimed batches). */
  claimed: boolean
  batchId?: string
  index?: number
  drawn: boolean
  auditor?: Address
  /** The assignment's state: none, drawn, committed, valid, invalid, paid, caught, forfeited. */
  state: string
  /** The auditor's verdict once revealed: 'valid' or 'invalid' (then a dispute game decides); kept after the audit is paid. */
  verdict?: 'valid' | 'invalid'
}

const STATE_NAMES = Object.fromEntries(Object.entries(AUDIT).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>

/**
 * The audit status of the job `client` asked with `nonce`: its `JobClaimed` event (batch, index),
 * then the Audits assignment of that job.
 */
export async function jobAuditStatus(c: ChainClients, d: Deployment, job: { client: Address; nonce: bigint }): Promise<JobAuditStatus> {
  const claims = await c.public.getContractEvents({
    address: d.settlement, abi: settlementAbi, eventName: 'JobClaimed', args: { client: job.client }, fromBlock: BigInt(d.deployedAtBlock), strict: true,
  })
  const claim = claims.find((e) => e.args.nonce === job.nonce)
  if (!claim) return { claimed: false, drawn: false, state: 'none' }
  const batchId = claim.args.batchId
  const index = Number(claim.args.index)
  if (!d.audits) return { claimed: true, batchId: String(batchId), index, drawn: false, state: 'none' }
  const a = await assignmentOf(c, d, { batchId, index: BigInt(index) })
  const status = Number(a.status)
  const drawn = status !== AUDIT.NONE
  let verdict: 'valid' | 'invalid' | undefined = status === AUDIT.VALID ? 'valid' : status === AUDIT.INVALID ? 'invalid' : undefined
  if (status === AUDIT.PAID || status === AUDIT.CAUGHT) {
    // settled (or a canary caught): the verdict is the one revealed
    const reveals = await c.public.getContractEvents({ address: d.audits, abi: auditsAbi, eventName: 'Revealed', args: { batchId }, fromBlock: BigInt(d.deployedAtBlock), strict: true })
    const last = reveals.filter((e) => Number(e.args.index) === index).at(-1)
    if (last) verdict = last.args.valid ? 'valid' : 'invalid'
  }
  return { claimed: true, batchId: String(batchId), index, drawn, ...(drawn ? { auditor: a.auditor } : {}), state: STATE_NAMES[status] ?? String(status), ...(verdict ? { verdict } : {}) }
}

/**
 * Starts the gateway on the node; resolves once it listens and the chain's earlier slashes and
 * verdicts are read. Logs a line when the account has no free escrow (no job can be paid).
 *
 * @example
 *   const gw = await startNetworkGateway({ node, clients, deployment, models: [gatewayModelOf(model)], port: 8080 })
 *   await gw.close()
 */
export async function startNetworkGateway(o: NetworkGatewayOptions): Promise<NetworkGateway> {
  const { node, clients, deployment: d } = o
  const log = o.log ?? (() => {})
  const router = o.router ?? new Router()
  const follower = followReputation({ clients, deployment: d, router, onSlash: o.onSlash })
  await follower.tick()
  const { escrow } = await getBalances(clients, d, clients.account.address)
  if (escrow === 0n) log(`gateway account ${clients.account.address} has no escrow: jobs cannot be paid until it deposits (tessera request deposits, or Settlement.deposit)`)
  const book = jobBookOf(node.store)
  const backend = networkBackend({ models: o.models, offers: (m) => offersOf(node, m.root), router, clients, deployment: d, nonces: randomNonces(), book,
    onFailedTry: (t) => log(`gateway: ${t.provider} ${t.outcome} a job: ${t.code} (${t.message.split('\n')[0]})`),
  })
  const { node: _n, clients: _c, deployment: _d, models: _m, router: _r, followMs, onSlash: _s, log: _l, ...http } = o
  const gateway = await startGateway({
    ...http,
    backend,
    findReceipt: async (id) => {
      const t = await book.getTranscript(id as Hex)
      return t && jobFileOf(t)
    },
    auditStatus: (_id, file: JobFile) => {
      const nonce = file.signed?.request.nonce
      if (nonce === undefined) return Promise.resolve({ claimed: false, drawn: false, state: 'none' })
      return jobAuditStatus(clients, d, { client: clients.account.address, nonce: BigInt(nonce) })
    },
  })
  const stop = new AbortController()
  const follow = (async () => {
    while (!stop.signal.aborted) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, followMs ?? 2000)
        stop.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true })
      })
      if (stop.signal.aborted) break
      await follower.tick().catch((e: unknown) => log(`gateway: reading the chain's audits failed (retrying): ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`))
    }
  })()
  let closing: Promise<void> | undefined
  return {
    gateway, router, url: gateway.url,
    close: () => {
      closing ??= (async () => {
        stop.abort()
        await follow
        await gateway.close()
      })()
      return closing
    },
  }
}
