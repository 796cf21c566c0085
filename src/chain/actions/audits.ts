/**
 * Typed actions of Audits (docs/CHAIN.md "Audits"), viem's shape: `fn(clients, deployment, { named
 * params })`, argument and result types inferred from the generated ABI, reverts decoded by custom
 * error name (ContractRevertError.errorName). What an auditor node needs to take part: follow draws
 * (`auditsOf`, `pendingAuditsOf`, `watchAudits`), replay, commit, reveal, settle; and what a
 * client or provider needs: request audits, plant canaries, answer availability challenges.
 *
 *   auditors      registerAuditor, deregisterAuditor, pruneAuditor, getAuditors
 *   jobs          requestAudit, plantCanary, fundPool
 *   draws         designatedRound, draw, drawForced (and its fee, auditFeeOf), redrawRound, redraw
 *   verdicts      commitAudit, revealValid, revealInvalid, revealCanary, settleAudit, withdrawAudits
 *   availability  challengeAvailability, answerAvailability, claimWithholding
 *   views         getAuditParams, getDraw, assignmentOf, challengeOf, leafIndexOf, isDrawnAtRate,
 *                 auditTotals, auditsOf, pendingAuditsOf, auditEvents
 *   pure helpers  auditCommitment, canaryCommitment, jobProof, promptBytes, auditDeadlines
 *
 * @example
 *   const round = await designatedRound(c, d, { batchId })
 *   await draw(c, d, { batchId, round, sig: toContractSig(beacon.sign(Number(round)).signature) })
 *   for (const a of await pendingAuditsOf(c, d, { auditor: me })) ...  // replay, then:
 *   await commitAudit(me, d, { batchId, index, commitment: auditCommitment(root, salt, me.account.address) })
 */
import {
  type Address, type ContractFunctionArgs, type ContractFunctionName, type ContractFunctionReturnType, type Hex,
  encodeAbiParameters, keccak256, parseEventLogs,
} from 'viem'
import type { auditsAbi } from '#abi'
import { toHex0x } from '../../engine/bytes.js'
import { getArtifact } from '../artifacts.js'
import { type ClaimItem, type Deployment, DeploymentError, batchLeaf, batchTree, jobAmount, read, send } from '../client.js'
import type { ChainClients } from '../evm/clients.js'

type AuditsAbi = typeof auditsAbi
type D = Pick<Deployment, 'audits'>
type Writes = 'nonpayable' | 'payable'
type Reads = 'view' | 'pure'

function addressOf(d: D): Address {
  if (!d.audits) throw new DeploymentError('this deployment has no Audits contract', { details: 'redeploy with a version that deploys Beacon and Audits' })
  return d.audits
}
async function sendAudits<F extends ContractFunctionName<AuditsAbi, Writes>>(c: ChainClients, d: D, fn: F, args: ContractFunctionArgs<AuditsAbi, Writes, F>, value?: bigint) {
  const r = await send(c, addressOf(d), 'Audits', fn, args as readonly unknown[], value)
  return { ...r, result: r.result as ContractFunctionReturnType<AuditsAbi, Writes, F> }
}
function readAudits<F extends ContractFunctionName<AuditsAbi, Reads>>(c: ChainClients, d: D, fn: F, args: ContractFunctionArgs<AuditsAbi, Reads, F>): Promise<ContractFunctionReturnType<AuditsAbi, Reads, F>> {
  return read(c, addressOf(d), 'Audits', fn, args as readonly unknown[])
}

/** A job as its batch leaf commits it, with its path (IAudits.JobProof). */
export type JobProof = ContractFunctionArgs<AuditsAbi, 'payable', 'drawForced'>[2]
/** One audited job (IAudits.Assignment). */
export type Assignment = ContractFunctionReturnType<AuditsAbi, 'view', 'assignmentOf'>
/** A batch's draw (IAudits.Draw); `drawnAt` 0: not drawn. */
export type Draw = ContractFunctionReturnType<AuditsAbi, 'view', 'drawOf'>
/** An availability challenge (IAudits.Challenge). */
export type Challenge = ContractFunctionReturnType<AuditsAbi, 'view', 'challengeOf'>
/** Sampling params as signed (IMachine.Sampling), what a transcript posts. */
export type Sampling = ContractFunctionArgs<AuditsAbi, 'nonpayable', 'answerAvailability'>[3]
export type AuditParams = ContractFunctionReturnType<AuditsAbi, 'view', 'getParams'>

/** Assignment.status values. */
export const AUDIT = { NONE: 0, DRAWN: 1, COMMITTED: 2, VALID: 3, INVALID: 4, PAID: 5, CAUGHT: 6, FORFEITED: 7 } as const
/** Assignment.why values. */
export const WHY_AUDITED = { RATE: 1, VALUE: 2, REQUEST: 3 } as const
/** Challenge.status values. */
export const CHALLENGE = { NONE: 0, OPEN: 1, ANSWERED: 2, SLASHED: 3 } as const

// ------------------------------------------------------------------ pure helpers

/** The commitment an auditor sends: keccak256(abi.encode(traceRoot, salt, auditor)) (Audits.commitmentOf). */
export function auditCommitment(traceRoot: Hex, salt: Hex, auditor: Address): Hex {
  return keccak256(encodeAbiParameters([{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'address' }], [traceRoot, salt, auditor]))
}
/** A canary's commitment: keccak256(abi.encode(requestDigest, salt, planter)) (Audits.canaryCommitment). */
export function canaryCommitment(requestDigest: Hex, salt: Hex, planter: Address): Hex {
  return keccak256(encodeAbiParameters([{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'address' }], [requestDigest, salt, planter]))
}
/**
 * The JobProof of job `index` of a batch whose items and clients are known (as the provider
 * claimed them, in order): the leaf data and its path under the batch root.
 */
export function jobProof(chainId: number, settlement: Address, items: readonly { item: ClaimItem; client: Address }[], index: number): JobProof {
  const tree = batchTree(items.map((x) => batchLeaf(chainId, settlement, x.item, x.client)))
  const { item, client } = items[index]
  return { item, client, amount: jobAmount(item), proof: tree.proof(index) }
}
/** The prompt's token ids as answerAvailability posts them: u32 little-endian bytes. */
export function promptBytes(tokens: readonly number[]): Hex {
  const b = Buffer.alloc(tokens.length * 4)
  tokens.forEach((t, i) => b.writeUInt32LE(t, i * 4))
  return toHex0x(b)
}
/** An assignment's deadlines (unix seconds): commit, reveal, canary (then settle). */
export function auditDeadlines(a: Pick<Assignment, 'start'>, p: Pick<AuditParams, 'commitWindow' | 'revealWindow' | 'canaryWindow'>) {
  const commit = a.start + p.commitWindow
  const reveal = commit + p.revealWindow
  return { commit, reveal, canary: reveal + p.canaryWindow }
}

// ------------------------------------------------------------------ auditors, requests, canaries

/** Auditor (staked as auditor in Settlement): joins or refreshes its stake weight in the draw list. */
export function registerAuditor(c: ChainClients, d: D) {
  return sendAudits(c, d, 'registerAuditor', [])
}
export function deregisterAuditor(c: ChainClients, d: D) {
  return sendAudits(c, d, 'deregisterAuditor', [])
}
/** Anyone: removes a listed auditor whose stake fell below the auditor minimum. */
export function pruneAuditor(c: ChainClients, d: D, a: { account: Address }) {
  return sendAudits(c, d, 'prune', [a.account])
}
/** The draw list: accounts and their weights (gwei of auditor stake at registration). */
export async function getAuditors(c: ChainClients, d: D): Promise<{ account: Address; weightGwei: bigint }[]> {
  const [accounts, weights] = await readAudits(c, d, 'auditors', [])
  return accounts.map((account, i) => ({ account, weightGwei: weights[i] }))
}
/** Client: asks that its job be audited whatever the draw (before the batch's draw). */
export function requestAudit(c: ChainClients, d: D, a: { requestDigest: Hex }) {
  return sendAudits(c, d, 'requestAudit', [a.requestDigest])
}
/** Client of a deliberately faulty job: plants its canary commitment before the job is claimed. */
export function plantCanary(c: ChainClients, d: D, a: { commitment: Hex }) {
  return sendAudits(c, d, 'plantCanary', [a.commitment])
}
/** Anyone: adds `amount` to the audit pool. */
export function fundPool(c: ChainClients, d: D, a: { amount: bigint; batchId?: bigint }) {
  return sendAudits(c, d, 'fund', [a.batchId ?? 0n], a.amount)
}

// ------------------------------------------------------------------ draws

/** The one beacon round that draws a batch. */
export function designatedRound(c: ChainClients, d: D, a: { batchId: bigint }) {
  return readAudits(c, d, 'designatedRound', [a.batchId])
}
/** Anyone: draws a batch with its designated round's signature (128-byte EIP-2537 G1, `toContractSig`). */
export function draw(c: ChainClients, d: D, a: { batchId: bigint; round: bigint; sig: Hex }) {
  return sendAudits(c, d, 'draw', [a.batchId, a.round, a.sig])
}
/**
 * An audit's fee, premium / p = amount * premiumBps / auditBps (rounded down; Audits._fee): what
 * `settle` pays a revealed audit, and what the caller of `drawForced` pays in for a forced one.
 */
export function auditFeeOf(amount: bigint, params: { premiumBps: number | bigint | string; auditBps: number | bigint | string }): bigint {
  return (amount * BigInt(params.premiumBps)) / BigInt(params.auditBps)
}
/**
 * Anyone: assigns an auditor to a job at or above the value threshold, or requested by its client,
 * paying the audit's fee into the pool (`auditFeeOf(job.amount)`; read from the chain's parameters
 * unless `fee` is given; another value reverts WrongBond): a forced audit brings its own fee.
 */
export async function drawForced(c: ChainClients, d: D, a: { batchId: bigint; index: bigint; job: JobProof; fee?: bigint }) {
  let fee = a.fee
  if (fee === undefined) {
    const settlement = await readAudits(c, d, 'settlement', [])
    fee = auditFeeOf(a.job.amount, await read<{ premiumBps: number; auditBps: number }>(c, settlement, 'Settlement', 'getParams', []))
  }
  return sendAudits(c, d, 'drawForced', [a.batchId, a.index, a.job], fee)
}
export function redrawRound(c: ChainClients, d: D, a: { batchId: bigint; index: bigint }) {
  return readAudits(c, d, 'redrawRound', [a.batchId, a.index])
}
/** Anyone: the drawn auditor did not commit in time: draws another with the redraw round. */
export function redraw(c: ChainClients, d: D, a: { batchId: bigint; index: bigint; round: bigint; sig: Hex }) {
  return sendAudits(c, d, 'redraw', [a.batchId, a.index, a.round, a.sig])
}

// ------------------------------------------------------------------ verdicts

/** Drawn auditor: commits auditCommitment(its trace root, salt, itself) with the auditor bond. */
export function commitAudit(c: ChainClients, d: D, a: { batchId: bigint; index: bigint; commitment: Hex; bond: bigint }) {
  return sendAudits(c, d, 'commit', [a.batchId, a.index, a.commitment], a.bond)
}
/** Auditor: "valid", with the trace leaf at leafIndexOf and its path under the claimed trace root. */
export function revealValid(c: ChainClients, d: D, a: { batchId: bigint; index: bigint; job: JobProof; salt: Hex; leaf: Hex; leafProof: readonly Hex[] }) {
  return sendAudits(c, d, 'revealValid', [a.batchId, a.index, a.job, a.salt, a.leaf, a.leafProof])
}
/** Auditor: "invalid", with its committed root and its own open game on the job. */
export function revealInvalid(c: ChainClients, d: D, a: { batchId: bigint; index: bigint; traceRoot: Hex; salt: Hex; gameId: bigint }) {
  return sendAudits(c, d, 'revealInvalid', [a.batchId, a.index, a.traceRoot, a.salt, a.gameId])
}
/** Planter (the job's client): reveals its canary after a "valid" verdict on it. */
export function revealCanary(c: ChainClients, d: D, a: { batchId: bigint; index: bigint; job: JobProof; salt: Hex }) {
  return sendAudits(c, d, 'revealCanary', [a.batchId, a.index, a.job, a.salt])
}
/** Anyone, after the canary deadline: pays the audit (fee + bond), or forfeits an unrevealed bond. */
export function settleAudit(c: ChainClients, d: D, a: { batchId: bigint; index: bigint }) {
  return sendAudits(c, d, 'settle', [a.batchId, a.index])
}
/** Withdraws fees, bonds and rewards owed by Audits. */
export function withdrawAudits(c: ChainClients, d: D) {
  return sendAudits(c, d, 'withdraw', [])
}

// ------------------------------------------------------------------ availability

/** The job's drawn auditor (bond 0) or anyone (bond = challengeBond): the transcript must be posted. */
export function challengeAvailability(c: ChainClients, d: D, a: { batchId: bigint; index: bigint; job: JobProof; bond: bigint }) {
  return sendAudits(c, d, 'challengeAvailability', [a.batchId, a.index, a.job], a.bond)
}
/** Anyone: posts the transcript (prompt token ids, sampling params) before the challenge's deadline. */
export function answerAvailability(c: ChainClients, d: D, a: { batchId: bigint; index: bigint; prompt: readonly number[]; sampling: Sampling }) {
  return sendAudits(c, d, 'answerAvailability', [a.batchId, a.index, promptBytes(a.prompt), a.sampling])
}
/** Anyone, after an unanswered challenge's deadline: the provider is slashed as for a lost dispute. */
export function claimWithholding(c: ChainClients, d: D, a: { batchId: bigint; index: bigint }) {
  return sendAudits(c, d, 'claimWithholding', [a.batchId, a.index])
}

// ------------------------------------------------------------------ views

export function getAuditParams(c: ChainClients, d: D): Promise<AuditParams> {
  return readAudits(c, d, 'getParams', [])
}
export function getDraw(c: ChainClients, d: D, a: { batchId: bigint }): Promise<Draw> {
  return readAudits(c, d, 'drawOf', [a.batchId])
}
/** The assignment of job `index` of a batch (status NONE: not audited). */
export function assignmentOf(c: ChainClients, d: D, a: { batchId: bigint; index: bigint }): Promise<Assignment> {
  return readAudits(c, d, 'assignmentOf', [a.batchId, a.index])
}
export function challengeOf(c: ChainClients, d: D, a: { batchId: bigint; index: bigint }): Promise<Challenge> {
  return readAudits(c, d, 'challengeOf', [a.batchId, a.index])
}
/** The trace leaf a "valid" reveal proves (after the commitment: it depends on it). */
export function leafIndexOf(c: ChainClients, d: D, a: { batchId: bigint; index: bigint; nLeaves: bigint }) {
  return readAudits(c, d, 'leafIndexOf', [a.batchId, a.index, a.nLeaves])
}
/** Whether the batch's draw selected job `index` at rate p (forced audits are not counted). */
export function isDrawnAtRate(c: ChainClients, d: D, a: { batchId: bigint; index: bigint }) {
  return readAudits(c, d, 'isDrawnAtRate', [a.batchId, a.index])
}
export type AuditTotals = { balance: bigint; pool: bigint; bonds: bigint; owed: bigint; burned: bigint }
/** Audits' books; conserved when balance == pool + bonds + owed + burned (`isAuditConserved`). */
export async function auditTotals(c: ChainClients, d: D): Promise<AuditTotals> {
  return {
    balance: await c.public.getBalance({ address: addressOf(d) }),
    pool: await readAudits(c, d, 'totalPool', []), bonds: await readAudits(c, d, 'totalBonds', []),
    owed: await readAudits(c, d, 'totalOwed', []), burned: await readAudits(c, d, 'totalBurned', []),
  }
}
export function isAuditConserved(t: AuditTotals): boolean {
  return t.balance === t.pool + t.bonds + t.owed + t.burned
}
export function auditOwedTo(c: ChainClients, d: D, a: { account: Address }) {
  return readAudits(c, d, 'owedTo', [a.account])
}

/** Every Audits event from `fromBlock` (default 0) to the head, decoded: what a node follows. */
export async function auditEvents(c: ChainClients, d: D, a: { fromBlock?: bigint; toBlock?: bigint } = {}) {
  const logs = await c.public.getLogs({ address: addressOf(d), fromBlock: a.fromBlock ?? 0n, toBlock: a.toBlock ?? 'latest' })
  return parseEventLogs({ abi: getArtifact('Audits').abi as AuditsAbi, logs })
}

/** An auditor's drawn jobs: (batchId, index) with the assignment's current state. */
export type AuditJob = { batchId: bigint; index: bigint; assignment: Assignment }
/** Every job drawn for `auditor` (AuditorDrawn events, the latest draw of each job still naming it). */
export async function auditsOf(c: ChainClients, d: D, a: { auditor: Address; fromBlock?: bigint }): Promise<AuditJob[]> {
  const seen = new Map<string, { batchId: bigint; index: bigint }>()
  for (const e of await auditEvents(c, d, { fromBlock: a.fromBlock })) {
    if (e.eventName !== 'AuditorDrawn') continue
    const { batchId, index } = e.args
    seen.set(`${batchId}:${index}`, { batchId, index })
  }
  const out: AuditJob[] = []
  for (const j of seen.values()) {
    const assignment = await assignmentOf(c, d, j)
    if (assignment.auditor.toLowerCase() === a.auditor.toLowerCase()) out.push({ ...j, assignment })
  }
  return out
}
/** The jobs `auditor` must still act on: drawn and not committed, or committed and not revealed. */
export async function pendingAuditsOf(c: ChainClients, d: D, a: { auditor: Address; fromBlock?: bigint }): Promise<AuditJob[]> {
  return (await auditsOf(c, d, a)).filter((j) => j.assignment.status === AUDIT.DRAWN || j.assignment.status === AUDIT.COMMITTED)
}
