/**
 * The auditor's service (docs/NETWORK.md "Roles in a node", issue 8 "Audits that actually
 * happen"): for each job it audits, fetches the transcript, checks it against the claimed item
 * (prompt, params, output, request), replays it through the engine (teacher-forced on the
 * delivered tokens) and compares its own trace root with the claimed one. Equal: the job is
 * `valid`. Different: it opens a game with the challenger bond and plays it to the end with the
 * one challenger (src/dispute/players/challenger.ts), one move per tick, calling `timeout` when
 * the provider's clock runs out, and records how the game ended and the slash reward it was paid.
 *
 * Which jobs. On a deployment with Audits (docs/CHAIN.md "Audits"): the jobs the beacon draws for
 * this auditor. It commits to its own trace root (the salt is on disk first), reveals "valid" with
 * the drawn trace leaf or "invalid" with the game it opened, and settles after the canary window;
 * a transcript nobody hands over opens the availability challenge, whose silence slashes the
 * provider. Given the beacon's rounds, it also draws claimed batches and redraws no-shows (anyone
 * may). Otherwise, or with `shouldAudit`: self-appointed audits of the jobs of other providers
 * (no commitment, no pay; a mismatch is disputed all the same).
 *
 * Every step is a record in the store's `audits` (by `batchId:index`) and `disputes` (by game id)
 * sublevels, written before the transaction that follows from it: an `opening` record is checked
 * against the chain's DisputeOpened events before a game is opened again, a commitment against the
 * assignment's status, so an auditor killed at any point resumes without a second game, bond or
 * commitment. It keeps the transcript it replayed (the provider may withhold it once the game is
 * open) and replays it again after a restart.
 *
 *   new -> valid | bad-transcript | no-model | unavailable
 *       -> opening -> disputed -> won | lost        opening -> open-failed
 *       -> challenging -> challenged -> withheld | answered | (answered, fetched) new
 *   duty (drawn audits): commit -> reveal -> settle -> done      (a deadline passed: missed)
 */
import { randomBytes } from 'node:crypto'
import { type Address, type Hex, toHex } from 'viem'
import { disputeGameAbi } from '#abi'
import { getGame, isOver, isProviderTurn, openGame, timeout } from '../chain/actions/disputeGame.js'
import { getBatch } from '../chain/actions/settlement.js'
import {
  AUDIT, type AuditParams, CHALLENGE, type JobProof, assignmentOf, auditCommitment, auditDeadlines, challengeAvailability, challengeOf,
  claimWithholding, commitAudit, designatedRound, draw, getAuditParams, getDraw, leafIndexOf, redraw, redrawRound, revealInvalid, revealValid,
  settleAudit,
} from '../chain/actions/audits.js'
import { type ClaimItem, ContractRevertError, type Deployment, jobAmount, requestDigest } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import { jobSpecOf } from '../dispute/attack.js'
import type { DisputeModel } from '../dispute/model.js'
import { NothingToDisputeError, createChallenger } from '../dispute/players/challenger.js'
import type { Player } from '../dispute/players/defender.js'
import { replayJob } from '../dispute/replay.js'
import { type TraceProvider, createReplayTraceProvider } from '../dispute/traceProvider.js'
import { hex } from '../dispute/tree.js'
import { BaseError } from '../errors.js'
import { type JobParams, paramsHash, tokensRoot } from '../trace/receipt.js'
import { type Store, type Sublevel, sortableKey } from './store.js'
import type { Transcript } from './transcript.js'
import { type ChainEvent, batchProof, claimedItem, claimedJob, createChainWatch, gameOutcome, moverOutOfTime } from './chainWatch.js'

/**
 * What a service needs of a job's transcript: the prompt tokens, the parameters, the output tokens
 * delivered (and billed) and, when it names one, the request's digest. A node/transcript.ts
 * Transcript is one.
 */
export type JobTranscript = Pick<Transcript, 'prompt' | 'params' | 'output'> & { requestDigest?: Hex }

/**
 * A claimed job, as the auditor learns it from the claim's events; `requestDigest` is set when the
 * auditor asks for the job's transcript (the claimed request's EIP-712 digest, what
 * `/tessera/transcript` is asked by).
 */
export type ClaimedJob = { batchId: bigint; index: number; provider: Address; client: Address; leaf: Hex; amount: bigint; requestDigest?: Hex }

export type AuditState =
  | 'new' | 'valid' | 'unavailable' | 'bad-transcript' | 'no-model' | 'opening' | 'disputed' | 'won' | 'lost' | 'open-failed'
  /** Drawn audits whose transcript nobody handed over: the availability challenge (intent, open, outcome). */
  | 'challenging' | 'challenged' | 'withheld' | 'answered'

/**
 * A drawn audit's duties on Audits (docs/CHAIN.md "Audits"): commit to the own trace root (the
 * salt is on disk before the commitment is sent), reveal the verdict ("valid" with the drawn
 * trace leaf, "invalid" with the game), settle after the canary window. `missed`: a deadline passed.
 */
export type AuditDuty = { salt: Hex; step: 'commit' | 'reveal' | 'settle' | 'done' | 'missed'; fee?: string; reason?: string }

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
  /** Drawn by Audits for this auditor (absent: a self-appointed audit, no commit or reveal). */
  duty?: AuditDuty
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

/** Models by root: a Map of DisputeModels by their tree's modelRoot (lowercase 0x-hex, as roots decode from chain data). */
export type Models = { get(root: Hex): DisputeModel | undefined }

export type AuditorInit = {
  clients: ChainClients
  deployment: Deployment
  store: Store
  models: Models
  /** The transcript of a job (the p2p fetch from its provider or client); undefined: nobody handed it over. */
  transcripts: (job: ClaimedJob) => Promise<JobTranscript | undefined>
  /**
   * Self-appointed audits of the claimed jobs this picks (no commitment, no pay). Default: the
   * jobs Audits draws for this auditor (committed, revealed and settled as the contract requires),
   * or, on a deployment without Audits, every job of another provider.
   */
  shouldAudit?: (job: ClaimedJob) => boolean
  /**
   * The contract form (`toContractSig`) of a beacon round's signature, or undefined while it is
   * not out: with it the auditor also draws the batches it sees claimed once their round is due,
   * and redraws jobs whose drawn auditor did not commit in time (anyone may do both).
   */
  beaconRound?: (round: bigint) => Promise<Hex | undefined>
  /** Jobs fetched and replayed per tick at most (default 4). */
  rate?: number
  /** The first block a fresh store follows (default: the deployment's). */
  since?: bigint
  signal?: AbortSignal
}

export type TickReport = {
  audited: number
  opened: number
  moves: number
  resolved: number
  /** Audits' transactions sent: draws, commitments, reveals, settlements, availability challenges. */
  audits: number
  /** Records whose step failed this tick (retried next tick), by key. */
  errors: { key: string; error: unknown }[]
}

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

const FINAL: ReadonlySet<AuditState> = new Set(['valid', 'unavailable', 'bad-transcript', 'no-model', 'won', 'lost', 'open-failed', 'withheld', 'answered'])
const isDone = (r: AuditRecord) => FINAL.has(r.state) && (!r.duty || r.duty.step === 'done' || r.duty.step === 'missed')

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
  // drawn audits when the deployment has Audits and the caller picks no jobs itself
  const drawn = !init.shouldAudit && d.audits !== undefined
  const watch = createChainWatch({ clients: c, deployment: d, meta: store.meta, name: 'auditor', since: init.since })
  const players = new Map<string, Player>()
  // Games this process saw its challenger unable to move in (it waits for the clock then).
  const stuck = new Set<string>()
  let auditParams: AuditParams | undefined

  // Audits still to act on are indexed in meta (`auditor:open:<key>`), written in one batch with the
  // record, so a tick reads the open ones, not every audit ever made.
  const OPEN = 'auditor:open:'
  const putAudit = (key: string, rec: AuditRecord) =>
    init.store.batch([store.audits.putOp(key, rec), isDone(rec) ? store.meta.delOp(OPEN + key) : store.meta.putOp(OPEN + key, 1)])

  const newRecord = (job: ClaimedJob, at: { tx: Hex; block: bigint }, duty?: AuditDuty): AuditRecord => ({
    batchId: job.batchId.toString(), index: job.index, provider: job.provider, client: job.client, leaf: job.leaf, amount: job.amount.toString(),
    tx: at.tx, block: at.block.toString(), state: 'new', duty,
  })
  const jobOf = (r: AuditRecord): ClaimedJob => ({ batchId: BigInt(r.batchId), index: r.index, provider: r.provider, client: r.client, leaf: r.leaf, amount: BigInt(r.amount) })
  const now = async () => (await c.public.getBlock({ blockTag: 'latest' })).timestamp

  async function noteEvents(events: ChainEvent[]) {
    // a batch's JobClaimed events and its BatchClaimed are logs of one transaction, so of one poll
    const providers = new Map<bigint, Address>()
    for (const e of events) if (e.type === 'BatchClaimed') providers.set(e.batchId, e.provider)
    for (const e of events) {
      if (e.type === 'BatchClaimed' && drawn && init.beaconRound && e.provider.toLowerCase() !== me.toLowerCase()) {
        await store.meta.put(`draw:${e.batchId}`, 'pending')
      }
      if (e.type === 'JobClaimed' && !drawn) {
        const provider = providers.get(e.batchId)
        if (!provider || provider.toLowerCase() === me.toLowerCase()) continue
        const job: ClaimedJob = { batchId: e.batchId, index: e.index, provider, client: e.client, leaf: e.leaf, amount: e.amount }
        if (init.shouldAudit && !init.shouldAudit(job)) continue
        const key = auditKey(e.batchId, e.index)
        if (!(await store.audits.get(key))) await putAudit(key, newRecord(job, e))
      }
      // every drawn job is watched for a no-show, whoever was drawn (a redraw may draw this auditor)
      if (e.type === 'AuditorDrawn' && drawn && init.beaconRound) await store.meta.put(`redraw:${e.batchId}:${e.index}`, e.commitDeadline.toString())
      if (e.type === 'AuditorDrawn' && drawn && e.auditor.toLowerCase() === me.toLowerCase()) {
        const key = auditKey(e.batchId, e.index)
        if (await store.audits.get(key)) continue
        const j = await claimedJob(c, d, { batchId: e.batchId, index: e.index })
        const job: ClaimedJob = { batchId: e.batchId, index: e.index, provider: j.provider, client: j.client, leaf: j.leaf, amount: j.amount }
        await putAudit(key, newRecord(job, j, { salt: toHex(randomBytes(32)), step: 'commit' }))
      }
    }
  }

  /** Runs `f` for one scheduled draw or redraw: a failure is reported and retried next tick; a batch no longer pending is dropped. */
  async function scheduled(key: string, batchId: bigint, report: TickReport, f: () => Promise<void>) {
    try {
      if ((await getBatch(c, d, batchId)).status !== 1) await store.meta.del(key) // no longer pending: nothing to draw any more
      else await f()
    } catch (e) {
      if (signal?.aborted) throw e
      report.errors.push({ key, error: e })
    }
  }

  /** Draws the claimed batches whose beacon round is out (anyone may; the first draw counts). */
  async function drawBatches(report: TickReport) {
    for (const { key } of await store.meta.list('draw:')) {
      const batchId = BigInt(key.slice('draw:'.length))
      await scheduled(key, batchId, report, () => drawBatch(key, batchId, report))
    }
  }

  async function drawBatch(key: string, batchId: bigint, report: TickReport) {
    if ((await getDraw(c, d, { batchId })).drawnAt === 0n) {
      const round = await designatedRound(c, d, { batchId })
      const sig = await init.beaconRound!(round)
      if (!sig) return
      try {
        await draw(c, d, { batchId, round, sig })
        report.audits++
      } catch (e) {
        const name = e instanceof ContractRevertError ? e.errorName : undefined
        if (name === 'BeaconRoundNotYet') return
        if (name !== 'AlreadyDrawn') throw e
      }
    }
    await store.meta.del(key)
  }


  /** Redraws the jobs whose drawn auditor did not commit by its deadline (anyone may, with the redraw round). */
  async function redraws(report: TickReport) {
    const t = await now()
    for (const { key, value } of await store.meta.list('redraw:')) {
      if (t <= BigInt(value as string)) continue
      const [, batchId, index] = key.split(':')
      const at = { batchId: BigInt(batchId), index: BigInt(index) }
      await scheduled(key, at.batchId, report, async () => {
        if ((await assignmentOf(c, d, at)).status === AUDIT.DRAWN) {
          const round = await redrawRound(c, d, at)
          const sig = await init.beaconRound!(round)
          if (!sig) return
          try {
            await redraw(c, d, { ...at, round, sig })
            report.audits++
          } catch (e) {
            const name = e instanceof ContractRevertError ? e.errorName : undefined
            if (name === 'BeaconRoundNotYet') return
            // redraws spent or too late, or someone else redrew (or the auditor committed) first
            if (name !== 'TooLate' && name !== 'WrongAuditState' && name !== 'AuditDeadline') throw e
          }
        }
        await store.meta.del(key) // a redraw's AuditorDrawn schedules the next check
      })
    }
  }

  /** Fetch, check, replay, compare: the audit's verdict, or `opening` on another trace root. */
  async function audit(r: AuditRecord): Promise<AuditRecord> {
    const item = await claimedItem(c, d, { tx: r.tx, index: r.index, client: r.client, leaf: r.leaf })
    const model = models.get(item.req.modelRoot)
    if (!model) return { ...r, state: 'no-model', reason: `no model ${item.req.modelRoot}`, duty: r.duty && { ...r.duty, step: 'missed', reason: 'no model' } }
    const digest = requestDigest(d.chainId, d.settlement, item.req)
    const t = await init.transcripts({ ...jobOf(r), requestDigest: digest })
    // a drawn auditor makes the provider post it on chain (or be slashed for withholding it)
    if (!t) return { ...r, state: r.duty ? 'challenging' : 'unavailable' }
    try {
      checkTranscript(t, item, digest)
    } catch (e) {
      if (e instanceof TranscriptMismatchError) return { ...r, state: r.duty ? 'challenging' : 'bad-transcript', reason: e.shortMessage }
      throw e
    }
    const job = { prompt: [...t.prompt], params: t.params, output: [...t.output], seed: item.req.seed.toString(), modelRoot: item.req.modelRoot }
    const own = toHex(traceOf({ ...r, job }).traceTree().root)
    const claimedRoot = item.traceRoot.toLowerCase() as Hex
    return { ...r, state: own === claimedRoot ? 'valid' : 'opening', claimedRoot, ownRoot: own, job }
  }

  const traces = new Map<string, TraceProvider>()
  /** The auditor's own replay of a record's kept transcript (cached: the reveal and the game read it again). */
  function traceOf(r: AuditRecord): TraceProvider {
    const key = auditKey(r.batchId, r.index)
    let t = traces.get(key)
    if (!t) {
      const job = r.job!
      const model = models.get(job.modelRoot)
      if (!model) throw new RangeError(`no model ${job.modelRoot} for audit ${key}`)
      t = replayedTrace(model, { ...job, seed: BigInt(job.seed) }, signal)
      if (traces.size >= 8) traces.delete(traces.keys().next().value as string)
      traces.set(key, t)
    }
    return t
  }

  /** The JobProof Audits takes: the claimed item, its client and amount, its path under the batch root. */
  async function jobProofOf(r: AuditRecord): Promise<JobProof> {
    const item = await claimedItem(c, d, { tx: r.tx, index: r.index, client: r.client, leaf: r.leaf })
    const proof = await batchProof(c, d, { batchId: BigInt(r.batchId), index: r.index, block: BigInt(r.block) })
    return { item, client: r.client, amount: jobAmount(item), proof }
  }

  /** The game this auditor opened on the job, if the chain has one (a restart between open and its record). */
  async function openedBefore(r: AuditRecord): Promise<bigint | undefined> {
    const logs = await c.public.getContractEvents({
      address: d.disputeGame, abi: disputeGameAbi, eventName: 'DisputeOpened', args: { batchId: BigInt(r.batchId), challenger: me }, fromBlock: BigInt(r.block),
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

  /** The availability challenge of a drawn job nobody handed over: open it, then slash the silence or re-fetch what was posted. */
  async function challenge(r: AuditRecord, report: TickReport): Promise<AuditRecord> {
    const at = { batchId: BigInt(r.batchId), index: BigInt(r.index) }
    let ch = await challengeOf(c, d, at)
    if (r.state === 'challenging') {
      if (ch.status === CHALLENGE.NONE) {
        try {
          // the drawn auditor challenges without a bond
          await challengeAvailability(c, d, { ...at, job: await jobProofOf(r), bond: 0n })
          report.audits++
        } catch (e) {
          if (e instanceof ContractRevertError && (e.errorName === 'TooLate' || e.errorName === 'JobUnderDispute')) {
            return { ...r, state: 'unavailable', reason: `no availability challenge: ${e.errorName}` }
          }
          throw e
        }
        ch = await challengeOf(c, d, at)
      }
      r = { ...r, state: 'challenged' }
    }
    if (ch.status === CHALLENGE.SLASHED) return { ...r, state: 'withheld' }
    if (ch.status === CHALLENGE.ANSWERED) {
      // posted on chain: the transcript exists, so ask for it again (the prompt and params alone do not say the output)
      const again = await audit({ ...r, state: 'new' })
      return again.state === 'challenging' ? { ...r, state: 'answered', reason: again.reason } : again
    }
    if (ch.status === CHALLENGE.OPEN && (await now()) > ch.deadline) {
      try {
        await claimWithholding(c, d, at)
        report.audits++
      } catch (e) {
        // a game on the job settles it instead
        if (e instanceof ContractRevertError && e.errorName === 'JobUnderDispute') return { ...r, state: 'unavailable', reason: 'the job is under dispute' }
        if (!(e instanceof ContractRevertError && e.errorName === 'ChallengeState')) throw e
      }
      return { ...r, state: 'withheld' }
    }
    return r
  }

  /** Commit, reveal and settle a drawn audit as far as its state and the clock allow. */
  async function duties(key: string, r: AuditRecord, report: TickReport): Promise<AuditRecord> {
    const duty = r.duty!
    const at = { batchId: BigInt(r.batchId), index: BigInt(r.index) }
    auditParams ??= await getAuditParams(c, d)
    const missed = (why: string): AuditRecord => ({ ...r, duty: { ...duty, step: 'missed', reason: why } })
    if (duty.step === 'commit') {
      // no replay (a transcript never had, a job no game settles): nothing to commit to, ever
      if (!r.ownRoot) return FINAL.has(r.state) ? missed(`nothing replayed (${r.state})`) : r
      const a = await assignmentOf(c, d, at)
      if (a.auditor.toLowerCase() !== me.toLowerCase()) return missed('redrawn to another auditor')
      if (a.status === AUDIT.DRAWN) {
        try {
          await commitAudit(c, d, { ...at, commitment: auditCommitment(r.ownRoot, duty.salt, me), bond: auditParams.auditorBond })
          report.audits++
        } catch (e) {
          if (e instanceof ContractRevertError && e.errorName === 'AuditDeadline') return missed('commit deadline passed')
          throw e
        }
      }
      r = { ...r, duty: { ...duty, step: 'reveal' } }
      await putAudit(key, r)
    }
    if (r.duty!.step === 'reveal') {
      const a = await assignmentOf(c, d, at)
      if (a.status === AUDIT.COMMITTED) {
        try {
          if (r.state === 'valid') {
            // the trace leaf drawn from the seed and the commitment, with its path under the claimed root
            const tree = traceOf(r).traceTree()
            const li = Number(await leafIndexOf(c, d, { ...at, nLeaves: BigInt(tree.leaves.length) }))
            await revealValid(c, d, { ...at, job: await jobProofOf(r), salt: duty.salt, leaf: hex(tree.leaves[li]), leafProof: tree.proof(li).map(hex) })
          } else if (r.gameId !== undefined) {
            await revealInvalid(c, d, { ...at, traceRoot: r.ownRoot!, salt: duty.salt, gameId: BigInt(r.gameId) })
          } else if (FINAL.has(r.state)) {
            return missed(`no game to reveal (${r.state})`) // an "invalid" verdict needs the auditor's own game
          } else return r // the game is not open yet
          report.audits++
        } catch (e) {
          if (e instanceof ContractRevertError && e.errorName === 'AuditDeadline') return missed('reveal deadline passed')
          throw e
        }
      }
      r = { ...r, duty: { ...r.duty!, step: 'settle' } }
      await putAudit(key, r)
    }
    if (r.duty!.step === 'settle') {
      const a = await assignmentOf(c, d, at)
      if (a.status === AUDIT.VALID || a.status === AUDIT.INVALID) {
        if ((await now()) <= auditDeadlines(a, auditParams).canary) return r
        await settleAudit(c, d, at)
        report.audits++
        return { ...r, duty: { ...r.duty!, step: 'done', fee: a.fee.toString() } }
      }
      return { ...r, duty: { ...r.duty!, step: a.status === AUDIT.PAID ? 'done' : 'missed', reason: a.status === AUDIT.PAID ? undefined : `assignment status ${a.status}` } }
    }
    return r
  }

  function playerOf(r: AuditRecord): Player {
    let p = players.get(r.gameId!)
    if (!p) {
      p = createChallenger({ clients: c, deployment: d, gameId: BigInt(r.gameId!), trace: traceOf(r), depthBond: BigInt(d.params.game.depthBond) })
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

  /** Moves one audit as far as it goes this tick; every state is on disk before the transaction it leads to. */
  async function step(key: string, r: AuditRecord, report: TickReport): Promise<void> {
    const save = async (next: AuditRecord) => {
      if (next !== r) await putAudit(key, next)
      r = next
    }
    if (r.state === 'new') {
      if (report.audited >= rate) return
      report.audited++
      await save(await audit(r))
    }
    if (r.state === 'challenging' || r.state === 'challenged') await save(await challenge(r, report))
    // commit before anything else goes on chain: the commitment fixes the drawn leaf
    if (r.duty?.step === 'commit') await save(await duties(key, r, report))
    if (r.state === 'opening') {
      const opened = await open(key, r)
      await save(opened)
      if (opened.state === 'disputed') report.opened++
    }
    if (r.duty && r.duty.step !== 'commit') await save(await duties(key, r, report))
    if (r.state === 'disputed') await save(await play(key, r, report))
  }

  return {
    async tick() {
      signal?.throwIfAborted()
      const report: TickReport = { audited: 0, opened: 0, moves: 0, resolved: 0, audits: 0, errors: [] }
      await watch.poll(noteEvents)
      if (drawn && init.beaconRound) {
        await drawBatches(report)
        await redraws(report)
      }
      for (const { key: open } of await store.meta.list(OPEN)) {
        signal?.throwIfAborted()
        const key = open.slice(OPEN.length)
        try {
          const r = await store.audits.get(key)
          if (r && !isDone(r)) await step(key, r, report)
          else await store.meta.del(open)
        } catch (e) {
          // one job's failure (a fetch, a transaction) does not hold the others up; it is retried next tick
          if (signal?.aborted) throw e
          report.errors.push({ key, error: e })
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
