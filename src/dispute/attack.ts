/**
 * One whole job on a chain with an honest client and an honest auditor, against a provider that
 * cheats by `cheat` (or against a lying challenger): the client signs a request and escrows its
 * price, the provider reserves it, serves its answer (its TraceProvider), the client acknowledges
 * the tokens it received, the provider claims; the auditor replays the answer it was delivered,
 * and on another trace root opens a game; the one pair of players (src/dispute/players/) plays it
 * to the end. Reports who won, stakes, owed balances and bonds before and after, rounds and gas,
 * and whether the contracts' books still balance. `tessera attack` prints it; the property tests
 * assert on it.
 */
import { type Address, type Hex, toHex } from 'viem'
import type { Cfg } from '../chain/actions/disputeGame.js'
import { openGame, timeout } from '../chain/actions/disputeGame.js'
import { advertise, claimBatch, deposit, getBalances, getTotals, reserve } from '../chain/actions/settlement.js'
import { type ClaimItem, batchLeaf, batchTree, requestDigest, signDelivery, signJobRequest } from '../chain/client.js'
import { type Devnet, isConserved, registerTree } from '../chain/devnet.js'
import type { SamplingParams } from '../engine/sample.js'
import { type JobParams, paramsHash, tokensRoot } from '../trace/receipt.js'
import { type Cheat, type CheatKind, type CheatSite, makeCheat, seededRng, wrongReplay } from './cheats.js'
import type { DisputeModel } from './model.js'
import { createChallenger } from './players/challenger.js'
import { createDefender, gameCfg } from './players/defender.js'
import { type GameResult, playGame } from './players/play.js'
import { type JobSpec, type JobTrace, replayJob } from './replay.js'
import { type TraceProvider, createReplayTraceProvider } from './traceProvider.js'

/** A job to attack: the prompt's tokens, the sampling parameters (maxTokens: the answer's cap) and the seed. */
export type AttackJob = { prompt: readonly number[]; params: JobParams; seed: bigint }

export type AttackInit = {
  net: Devnet
  model: DisputeModel
  job: AttackJob
  /** The provider's cheat (`random`: a seeded pick); none: an honest provider. */
  cheat?: CheatKind | 'random'
  /**
   * An honest provider against a challenger that disputes correct positions: `true` (or `picks`)
   * picks seeded children and elements at every level; `replay` follows the first divergence from
   * its own wrong replay (a seeded cheat of its own view).
   */
  lyingChallenger?: boolean | 'picks' | 'replay'
  seed: number
  /** `micro` cheats: the op kind whose middle micro-state is falsified (default: a seeded pick). */
  microOp?: string
  /** The request's nonce (one per job of the same client). */
  nonce: bigint
  pricePerToken?: bigint
  signal?: AbortSignal
}

export type Books = {
  provider: { stake: bigint; owed: bigint; owedByGame: bigint }
  challenger: { owed: bigint; owedByGame: bigint }
  client: { escrow: bigint }
  bonds: bigint
}

export type AttackReport = {
  cheat?: CheatSite
  lyingChallenger: boolean
  /** Whether the auditor opened a game (it does when its replay's trace root differs, or when it lies). */
  disputed: boolean
  game?: GameResult
  /** self-dispute: the provider's sock-puppet game, voided once the provider lost the job. */
  puppet?: { gameId: bigint; why: string }
  /** Who won the dispute (no dispute: the provider kept its pay). */
  winner: 'provider' | 'challenger'
  /** The honest side won: the challenger against a cheater, the provider against a liar or with no dispute. */
  honestWon: boolean
  before: Books
  after: Books
  conserved: boolean
  gas: { claim: bigint; open: bigint }
  nOutput: number
}

/** The engine's sampling parameters and the machine's job spec of a job. */
export function jobSpecOf(model: DisputeModel, job: AttackJob): JobSpec {
  const { maxTokens, stop: _stop, ...s } = job.params
  const sampling: SamplingParams = { ...s, seed: job.seed }
  return { prompt: job.prompt, sampling, maxTokens, eogTokens: model.eogTokens, arith: model.arith }
}

async function books(net: Devnet, provider: Address, challenger: Address, client: Address): Promise<Books> {
  const p = await getBalances(net.deployer, net.d, provider)
  const c = await getBalances(net.deployer, net.d, challenger)
  const k = await getBalances(net.deployer, net.d, client)
  const t = await getTotals(net.deployer, net.d)
  return {
    provider: { stake: p.stake.active + p.stake.unbonding, owed: p.owed, owedByGame: p.owedByGame },
    challenger: { owed: c.owed, owedByGame: c.owedByGame },
    client: { escrow: k.escrow },
    bonds: t.bonds,
  }
}

/** A claimed job: what the provider committed, what the auditor replayed, and what `open` needs. */
export type ServedJob = {
  spec: JobSpec
  honest: JobTrace
  cheat?: Cheat
  /** What the provider committed (its trace). */
  served: JobTrace
  /** What the provider delivered: the tokens the client acknowledged and the claim bills (`served.outputs` but for `deliver`). */
  delivered: readonly number[]
  mine: TraceProvider
  item: ClaimItem
  batchId: bigint
  claimGas: bigint
  /** `openGame`'s arguments but the bond. */
  open: { batchId: bigint; jobIndex: bigint; item: ClaimItem; client: Address; proof: Hex[] }
  /** The context every machine-level move carries. */
  cfg: Cfg
}

/**
 * The job part of an attack: the provider (cheating by `cheat`, if given) serves `job` to the
 * devnet's client through request, reservation, delivery acknowledgement and claim (its own batch).
 *
 * @example
 *   const j = await serveJob({ net, model, job, cheat: 'silu', seed: 1, nonce: 4n })
 *   await openGame(net.auditor, net.d, { ...j.open, bond })
 */
export async function serveJob(a: Pick<AttackInit, 'net' | 'model' | 'job' | 'cheat' | 'seed' | 'nonce' | 'pricePerToken' | 'signal' | 'microOp'>): Promise<ServedJob> {
  const { net, model, signal } = a
  const { d, provider, client } = net
  const price = a.pricePerToken ?? 10n ** 12n
  const spec = jobSpecOf(model, a.job)
  await registerTree(net, model.tree, model.arith)

  // the provider serves: its answer and the trace it commits
  const honest = replayJob(model.tf, spec, { signal })
  const cheat: Cheat | undefined = a.cheat ? makeCheat(model, spec, honest, a.cheat, a.seed, { microOp: a.microOp }) : undefined
  const served = cheat?.trace ?? honest
  const delivered = cheat?.delivered ?? served.outputs
  const mine = cheat?.provider ?? createReplayTraceProvider(model, honest)

  // request, reservation, delivery, claim
  const nPrompt = spec.prompt.length
  const req = {
    provider: provider.account.address, modelRoot: model.tree.modelRoot, promptRoot: toHex(tokensRoot(spec.prompt)),
    paramsHash: toHex(paramsHash(a.job.params)), seed: a.job.seed, nonce: a.nonce, expiry: 2n ** 40n,
    maxTokens: nPrompt + a.job.params.maxTokens, pricePerToken: price,
  }
  await advertise(provider, d, { modelRoot: req.modelRoot, pricePerToken: price })
  await deposit(client, d, { amount: price * BigInt(req.maxTokens) })
  const sig = await signJobRequest(client, d.settlement, req)
  await reserve(provider, d, { req, r: sig.r, vs: sig.vs })
  const outputRoot = toHex(tokensRoot(delivered))
  const ack = await signDelivery(client, d.settlement, { request: requestDigest(net.chain.chainId, d.settlement, req), nOutput: delivered.length, outputRoot })
  const item: ClaimItem = { req, r: sig.r, vs: sig.vs, outputRoot, traceRoot: toHex(mine.traceTree().root), nPrompt, nOutput: delivered.length, nLayer: model.config.nLayer, ack }
  const claim = await claimBatch(provider, d, { items: [item] })
  const proof = batchTree([batchLeaf(net.chain.chainId, d.settlement, item, client.account.address)]).proof(0)
  return {
    spec, honest, cheat, served, delivered, mine, item, batchId: claim.batchId, claimGas: claim.gasUsed, cfg: gameCfg(model, a.job.params),
    open: { batchId: claim.batchId, jobIndex: 0n, item, client: client.account.address, proof },
  }
}

/**
 * Plays one job and its dispute on `net` (the devnet's provider, client and auditor; account 5 is
 * the provider's sock puppet).
 *
 * @example
 *   const r = await attackJob({ net, model, job: { prompt: [1, 15, 7], params, seed: 0n }, cheat: 'att', seed: 3, nonce: 0n })
 *   r.honestWon   // true: the cheater lost its game and the auditor was paid
 */
export async function attackJob(a: AttackInit): Promise<AttackReport> {
  const { net, model, signal } = a
  const { d, provider, client, auditor } = net
  const j = await serveJob(a)
  const { spec, honest, cheat, delivered, mine, cfg } = j
  const traceRoot = j.item.traceRoot
  const open = { ...j.open, bond: BigInt(d.params.game.challengerBond) }
  const before = await books(net, provider.account.address, auditor.account.address, client.account.address)

  // the auditor replays the answer it was delivered; it disputes another trace root (a liar disputes anyway)
  const lying = a.lyingChallenger === true ? 'picks' : a.lyingChallenger || undefined
  const theirs = lying === 'replay'
    ? wrongReplay(model, spec, honest, delivered, a.seed)
    : createReplayTraceProvider(model, replayJob(model.tf, spec, { forced: delivered, signal }))
  const disputed = lying !== undefined || toHex(theirs.traceTree().root) !== traceRoot
  const report = { cheat: cheat?.where, lyingChallenger: lying !== undefined, nOutput: delivered.length, disputed }
  if (!disputed) {
    const after = await books(net, provider.account.address, auditor.account.address, client.account.address)
    return { ...report, winner: 'provider', honestWon: !cheat, before, after, conserved: isConserved(await getTotals(net.deployer, net.d)), gas: { claim: j.claimGas, open: 0n } }
  }

  let puppet: { gameId: bigint } | undefined
  if (cheat?.sockPuppet) {
    // the provider's own account opens the first game and never moves in it
    const g = await openGame(net.at(5), d, open)
    puppet = { gameId: g.gameId }
  }
  const opened = await openGame(auditor, d, open)
  const gameId = opened.gameId
  const defender = createDefender({ clients: provider, deployment: d, gameId, trace: mine, cfg })
  const challenger = createChallenger({
    clients: auditor, deployment: d, gameId, trace: theirs, depthBond: BigInt(d.params.game.depthBond),
    // the provider's trace data as it publishes it, for naming the element that differs
    lie: lying === 'picks' ? { rng: seededRng(a.seed * 31 + 7) } : undefined,
  })
  const game = await playGame({ defender, challenger, anyone: net.deployer, deployment: d, warp: (s) => net.warp(s), signal })
  let puppetReport: AttackReport['puppet']
  if (puppet) {
    // a job the provider lost is never paid again: the puppet's game is voided at once (else its clock ends it)
    if (game.providerWon) await net.warp(BigInt(d.params.game.clock) + 1n)
    await timeout(net.deployer, d, { gameId: puppet.gameId })
    puppetReport = { gameId: puppet.gameId, why: game.providerWon ? 'timed out' : 'voided' }
  }
  const after = await books(net, provider.account.address, auditor.account.address, client.account.address)
  const winner = game.providerWon ? 'provider' : 'challenger'
  return {
    ...report, game, puppet: puppetReport, winner, honestWon: cheat ? !game.providerWon : game.providerWon, before, after,
    conserved: isConserved(await getTotals(net.deployer, net.d)), gas: { claim: j.claimGas, open: opened.gasUsed },
  }
}
