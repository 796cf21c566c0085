/**
 * The auditor's service (docs/NETWORK.md "Roles in a node", issue 8 "Audits that actually
 * happen"): follows the jobs providers claim, fetches the transcript of each job it audits, checks
 * it against the claimed leaf, replays it through the engine (teacher-forced on the delivered
 * tokens) and compares its own trace root with the claimed one. Equal: the job is `valid`.
 * Different: it opens a game with the challenger bond and plays it to the end with the one
 * challenger (src/dispute/players/challenger.ts), one move per tick, calling `timeout` when the
 * provider's clock runs out, and records how the game ended and the slash reward it was paid.
 *
 * Every step is a record in the store's `audits` (by `batchId:index`) and `disputes` (by game id)
 * sublevels, written before the transaction that follows from it: an `opening` record is checked
 * against the chain's DisputeOpened events before a game is opened again, so an auditor killed at
 * any point resumes without a second game or a second bond. It keeps the transcript it replayed
 * (the provider may withhold it once the game is open) and replays it again after a restart.
 *
 *   new -> valid | unavailable | bad-transcript | no-model | opening -> disputed -> won | lost
 *                                                            opening -> open-failed
 *
 * Which jobs: every job of another provider (or those `shouldAudit` picks) until the on-chain
 * audit draw (Audits.sol) decides it.
 */
import type { Address, Hex } from 'viem'
import { toHex } from 'viem'
import { disputeGameAbi } from '../chain/abi.generated.js'
import { getGame, isOver, isProviderTurn, openGame, timeout } from '../chain/actions/disputeGame.js'
import { ContractRevertError, type ClaimItem, type Deployment, requestDigest } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import { jobSpecOf } from '../dispute/attack.js'
import type { DisputeModel } from '../dispute/model.js'
import { NothingToDisputeError, createChallenger } from '../dispute/players/challenger.js'
import type { Player } from '../dispute/players/defender.js'
import { replayJob } from '../dispute/replay.js'
import { type TraceProvider, createReplayTraceProvider } from '../dispute/traceProvider.js'
import { BaseError } from '../errors.js'
import { type JobParams, paramsHash, tokensRoot } from '../trace/receipt.js'
import { type Store, type Sublevel, sortableKey } from './store.js'
import { type ChainEvent, batchProof, claimedItem, createChainWatch, gameOutcome, moverOutOfTime } from './chainWatch.js'

/** What a service needs of a job's transcript (node/transcript.ts's Transcript carries these and more). */
export type JobTranscript = {
  prompt: readonly number[]
  params: JobParams
  /** The output tokens delivered (and billed). */
  output: readonly number[]
  /** The request's EIP-712 digest, when the transcript names it. */
  requestDigest?: Hex
}

/** A claimed job, as the auditor learns it from the claim's events. */
export type ClaimedJob = { batchId: bigint; index: number; provider: Address; client: Address; leaf: Hex; amount: bigint }

export type AuditState = 'new' | 'valid' | 'unavailable' | 'bad-transcript' | 'no-model' | 'opening' | 'disputed' | 'won' | 'lost' | 'open-failed'

/** One audit in the store (JSON: bigints as decimal strings). */
export type AuditRecord = {
  batchId: string
  index: number
  provider: Address
  client: Address
  leaf: Hex
  amount: string
  /** The claim transaction and its block (the item and the batch's leaves are read from them). */
  tx: Hex
  block: string
  state: AuditState
  /** Why a transcript was refused, a game could not be opened, or a side stopped. */
  reason?: string
  /** The claimed trace root and the auditor's own. */
  claimedRoot?: Hex
  ownRoot?: Hex
  /** The transcript the auditor replayed, kept for the dispute (seed: the request's, decimal). */
  job?: { prompt: number[]; params: JobParams; output: number[]; seed: string; modelRoot: Hex }
  gameId?: string
}

/** One game in the store, from either side. */
export type DisputeRecord = {
  gameId: string
  role: 'challenger' | 'provider'
  batchId: string
  jobIndex: number
  state: 'open' | 'won' | 'lost'
  /** The audit it came from (challenger) or the request digest of the disputed job (provider). */
  audit?: string
  requestDigest?: Hex
  /** The transaction that opened it (the provider reads the disputed item from it). */
  tx?: Hex
  /** Why this side stopped moving (a revert name, NothingToDisputeError, no transcript): the clocks end its game. */
  stuck?: string
  result?: { providerWon: boolean; why: number; reward: string }
}

/** The store's sublevels the services write (node/store.ts): audits by `batchId:index`, disputes by game id (sortableKey). */
export type ServiceStore = { audits: Sublevel<AuditRecord>; disputes: Sublevel<DisputeRecord>; meta: Sublevel<unknown> }

/** The services' typed views of a node's store (their records hold no bigints or bytes: ids and amounts are decimal strings). */
export function serviceStore(store: Store): ServiceStore {
  return { audits: store.sublevel<AuditRecord>('audits'), disputes: store.sublevel<DisputeRecord>('disputes'), meta: store.sublevel('meta') }
}

/** Models by root (a Map of DisputeModels by their tree's modelRoot). */
export type Models = { get(root: Hex): DisputeModel | undefined }

export type AuditorInit = {
  clients: ChainClients
  deployment: Deployment
  store: Store
  models: Models
  /** The transcript of a job (the p2p fetch from its provider or client); undefined: nobody handed it over. */
  transcripts: (job: ClaimedJob) => Promise<JobTranscript | undefined>
  /** Which claimed jobs to audit (default: every job of another provider). */
  shouldAudit?: (job: ClaimedJob) => boolean
  /** Jobs fetched and replayed per tick at most (default 4). */
  rate?: number
  signal?: AbortSignal
}

export type TickReport = { audited: number; opened: number; moves: number; resolved: number }

export type Auditor = {
  /** One round: new claims, pending audits, one move (or timeout) in every open game. */
  tick(): Promise<TickReport>
  /** A job's audit record. */
  audit(batchId: bigint, index: number): Promise<AuditRecord | undefined>
  /** A game's record (this auditor's side). */
  dispute(gameId: bigint): Promise<DisputeRecord | undefined>
}

/** A transcript that does not match what the provider claimed (another prompt, params, outputs or request). */
export class TranscriptMismatchError extends BaseError {
  override name = 'TranscriptMismatchError'
}

const FINAL: ReadonlySet<AuditState> = new Set(['valid', 'unavailable', 'bad-transcript', 'no-model', 'won', 'lost', 'open-failed'])

const auditKey = (batchId: bigint | string, index: number) => `${batchId}:${index}`

/** Throws TranscriptMismatchError unless `t` is the job `item` commits (prompt, params, outputs, request). */
export function checkTranscript(t: JobTranscript, item: ClaimItem, digest: Hex): void {
  const bad = (what: string) => {
    throw new TranscriptMismatchError(`the transcript's ${what} is not the claimed job's`)
  }
  if (t.requestDigest !== undefined && t.requestDigest.toLowerCase() !== digest.toLowerCase()) bad('request')
  if (t.prompt.length !== item.nPrompt || toHex(tokensRoot(t.prompt)) !== item.req.promptRoot.toLowerCase()) bad('prompt')
  if (toHex(paramsHash(t.params)) !== item.req.paramsHash.toLowerCase()) bad('params')
  if (t.output.length !== item.nOutput || toHex(tokensRoot(t.output)) !== item.outputRoot.toLowerCase()) bad('output')
}

/** The replay of a transcript (teacher-forced on its outputs) as a TraceProvider. */
export function replayedTrace(model: DisputeModel, job: { prompt: readonly number[]; params: JobParams; output: readonly number[]; seed: bigint }, signal?: AbortSignal): TraceProvider {
  const spec = jobSpecOf(model, { prompt: job.prompt, params: job.params, seed: job.seed })
  return createReplayTraceProvider(model, replayJob(model.tf, spec, { forced: job.output, signal }))
}

/**
 * The auditor's service.
 *
 * @example
 *   const auditor = createAuditor({ clients, deployment: d, store, models, transcripts: (job) => fetchTranscript(job) })
 *   for (let i = 0; i < 100; i++) await auditor.tick()
 */
export function createAuditor(init: AuditorInit): Auditor {
  const { clients: c, deployment: d, models, signal } = init
  const store = serviceStore(init.store)
  const me = c.account.address
  const rate = init.rate ?? 4
  const watch = createChainWatch({ clients: c, deployment: d, meta: store.meta, name: 'auditor' })
  const players = new Map<string, Player>()
  // Games this process saw its challenger unable to move in (it waits for the clock then).
  const stuck = new Set<string>()

  async function noteClaims(events: ChainEvent[]) {
    // a batch's JobClaimed events and its BatchClaimed are logs of one transaction, so of one poll
    const providers = new Map<bigint, Address>()
    for (const e of events) if (e.type === 'BatchClaimed') providers.set(e.batchId, e.provider)
    for (const e of events) {
      if (e.type !== 'JobClaimed') continue
      const provider = providers.get(e.batchId)
      if (!provider) continue
      const job: ClaimedJob = { batchId: e.batchId, index: e.index, provider, client: e.client, leaf: e.leaf, amount: e.amount }
      if (provider.toLowerCase() === me.toLowerCase()) continue
      if (init.shouldAudit && !init.shouldAudit(job)) continue
      const key = auditKey(e.batchId, e.index)
      if (await store.audits.get(key)) continue
      await store.audits.put(key, {
        batchId: e.batchId.toString(), index: e.index, provider, client: e.client, leaf: e.leaf, amount: e.amount.toString(),
        tx: e.tx, block: e.block.toString(), state: 'new',
      })
    }
  }

  /** Fetch, check, replay, compare: the audit's verdict, or `opening` on another trace root. */
  async function audit(r: AuditRecord): Promise<AuditRecord> {
    const job: ClaimedJob = { batchId: BigInt(r.batchId), index: r.index, provider: r.provider, client: r.client, leaf: r.leaf, amount: BigInt(r.amount) }
    const item = await claimedItem(c, d, { tx: r.tx, index: r.index, client: r.client, leaf: r.leaf })
    const model = models.get(item.req.modelRoot)
    if (!model) return { ...r, state: 'no-model', reason: `no model ${item.req.modelRoot}` }
    const t = await init.transcripts(job)
    if (!t) return { ...r, state: 'unavailable' }
    try {
      checkTranscript(t, item, requestDigest(d.chainId, d.settlement, item.req))
    } catch (e) {
      if (e instanceof TranscriptMismatchError) return { ...r, state: 'bad-transcript', reason: e.shortMessage }
      throw e
    }
    const kept = { prompt: [...t.prompt], params: t.params, output: [...t.output], seed: item.req.seed.toString(), modelRoot: item.req.modelRoot }
    const own = toHex(replayedTrace(model, { ...kept, seed: item.req.seed }, signal).traceTree().root)
    const claimedRoot = item.traceRoot.toLowerCase() as Hex
    if (own === claimedRoot) return { ...r, state: 'valid', claimedRoot, ownRoot: own }
    return { ...r, state: 'opening', claimedRoot, ownRoot: own, job: kept }
  }

  /** The game this auditor opened on the job, if the chain has one (a restart between open and its record). */
  async function openedBefore(r: AuditRecord): Promise<bigint | undefined> {
    const logs = await c.public.getContractEvents({
      address: d.disputeGame, abi: disputeGameAbi, eventName: 'DisputeOpened',
      args: { batchId: BigInt(r.batchId), challenger: me }, fromBlock: BigInt(r.block),
    })
    return logs.find((l) => l.args.jobIndex === BigInt(r.index))?.args.gameId
  }

  async function open(key: string, r: AuditRecord): Promise<AuditRecord> {
    let gameId = await openedBefore(r)
    if (gameId === undefined) {
      const item = await claimedItem(c, d, { tx: r.tx, index: r.index, client: r.client, leaf: r.leaf })
      const proof = await batchProof(c, d, { batchId: BigInt(r.batchId), index: r.index, block: BigInt(r.block) })
      try {
        const o = await openGame(c, d, { batchId: BigInt(r.batchId), jobIndex: BigInt(r.index), item, client: r.client, proof, bond: BigInt(d.params.game.challengerBond), signal })
        gameId = o.gameId
      } catch (e) {
        if (e instanceof ContractRevertError) return { ...r, state: 'open-failed', reason: e.errorName }
        throw e
      }
    }
    const id = gameId.toString()
    await store.disputes.put(sortableKey(gameId), { gameId: id, role: 'challenger', batchId: r.batchId, jobIndex: r.index, state: 'open', audit: key })
    return { ...r, state: 'disputed', gameId: id }
  }

  function playerOf(r: AuditRecord): Player {
    let p = players.get(r.gameId!)
    if (!p) {
      const job = r.job!
      const model = models.get(job.modelRoot)
      if (!model) throw new RangeError(`no model ${job.modelRoot} for game ${r.gameId}`)
      const trace = replayedTrace(model, { ...job, seed: BigInt(job.seed) }, signal)
      p = createChallenger({ clients: c, deployment: d, gameId: BigInt(r.gameId!), trace, depthBond: BigInt(d.params.game.depthBond) })
      players.set(r.gameId!, p)
    }
    return p
  }

  /** One step of a disputed job's game: record its end, time out a provider out of time, or make the challenger's move. */
  async function play(key: string, r: AuditRecord, report: TickReport): Promise<AuditRecord> {
    const id = r.gameId!
    const gameId = BigInt(id)
    const g = await getGame(c, d, { gameId })
    if (isOver(g)) {
      const out = await gameOutcome(c, d, { gameId, account: me })
      if (!out) return r // the Resolved event is in the same transaction; read again next tick
      const won = !out.providerWon
      const rec = await store.disputes.get(sortableKey(gameId))
      await store.disputes.put(sortableKey(gameId), { ...(rec ?? { gameId: id, role: 'challenger', batchId: r.batchId, jobIndex: r.index, audit: key }), state: won ? 'won' : 'lost', result: { ...out, reward: out.reward.toString() } })
      players.delete(id)
      report.resolved++
      return { ...r, state: won ? 'won' : 'lost' }
    }
    if (isProviderTurn(g)) {
      if (await moverOutOfTime(c, g)) {
        await timeout(c, d, { gameId, signal }).catch(ignoreRace)
        report.moves++
      }
      return r
    }
    if (stuck.has(id)) return r
    try {
      if (await playerOf(r).act(signal)) report.moves++
    } catch (e) {
      const why = e instanceof ContractRevertError ? e.errorName : e instanceof NothingToDisputeError ? e.name : undefined
      if (why === undefined) throw e
      stuck.add(id)
      const rec = await store.disputes.get(sortableKey(gameId))
      if (rec) await store.disputes.put(sortableKey(gameId), { ...rec, stuck: why })
    }
    return r
  }

  return {
    async tick() {
      signal?.throwIfAborted()
      const report: TickReport = { audited: 0, opened: 0, moves: 0, resolved: 0 }
      await watch.poll(noteClaims)
      const pending: [string, AuditRecord][] = []
      for (const { key, value } of await store.audits.list()) if (!FINAL.has(value.state)) pending.push([key, value])
      for (const [key, r0] of pending) {
        signal?.throwIfAborted()
        let r = r0
        if (r.state === 'new') {
          if (report.audited >= rate) continue
          report.audited++
          r = await audit(r)
          await store.audits.put(key, r)
        }
        if (r.state === 'opening') {
          // the intent is on disk before the transaction: a restart finds the game instead of opening another
          r = await open(key, r)
          await store.audits.put(key, r)
          if (r.state === 'disputed') report.opened++
          continue
        }
        if (r.state === 'disputed') {
          const next = await play(key, r, report)
          if (next !== r) await store.audits.put(key, next)
        }
      }
      return report
    },
    audit: (batchId, index) => store.audits.get(auditKey(batchId, index)),
    dispute: (gameId) => store.disputes.get(sortableKey(gameId)),
  }
}

/** A timeout that lost a race (the game ended, or a move landed first) changes nothing. */
export function ignoreRace(e: unknown): void {
  if (e instanceof ContractRevertError && (e.errorName === 'GameOver' || e.errorName === 'ClockRunning')) return
  throw e
}
