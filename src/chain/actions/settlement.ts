/**
 * Typed actions of Settlement (docs/CHAIN.md "Economics"), viem's shape: `fn(clients, deployment,
 * { named params })`, argument and result types inferred from the generated ABI
 * (build/abi.d.ts, imported as #abi), reverts decoded by custom error name (ContractRevertError.errorName).
 * Providers and auditors bond stake; a client deposits escrow and signs requests (src/chain/client.ts
 * has the digests and signing), which the provider reserves; the provider claims its jobs in a batch,
 * which anyone finalizes after the challenge window, and withdraws what it is owed. The readers
 * (getStake, getBalances, getTotals, getBatch, getReservation) report the contract's books.
 *
 *   stake         stake, unstake, withdrawStake, getStake, exposureOf
 *   escrow        deposit, withdrawEscrow, reserve, release, getReservation
 *   jobs          advertise, claimBatch, finalizeBatch, withdrawOwed, getBatch, premiumOf
 *   books         getBalances, getTotals
 *
 * @example
 *   await stake(provider, d, { role: 'provider', amount: parseEther('10') })
 *   await deposit(client, d, { amount: parseEther('1') })
 *   await reserve(provider, d, { req, ...(await signJobRequest(client, d.settlement, req)) })
 *   const { batchId } = await claimBatch(provider, d, { items: [item] })
 */
import type { Address, ContractFunctionArgs, ContractFunctionName, ContractFunctionReturnType, Hex } from 'viem'
import type { settlementAbi } from '#abi'
import { type ClaimItem, type Deployment, type JobRequest, type SettlementParams, read, send } from '../client.js'
import type { ChainClients } from '../evm/clients.js'

type SettlementAbi = typeof settlementAbi
type D = Pick<Deployment, 'settlement' | 'disputeGame' | 'audits'>
type Writes = 'nonpayable' | 'payable'
type Reads = 'view' | 'pure'

/** `send` to Settlement with viem's types inferred from its ABI: the function name and argument tuple are checked, the result typed. */
async function sendSettlement<F extends ContractFunctionName<SettlementAbi, Writes>>(
  c: ChainClients, d: D, fn: F, args: ContractFunctionArgs<SettlementAbi, Writes, F>, value?: bigint,
) {
  const r = await send(c, d.settlement, 'Settlement', fn, args as readonly unknown[], value)
  return { ...r, result: r.result as ContractFunctionReturnType<SettlementAbi, Writes, F> }
}
/** `read` from Settlement with viem's inferred argument and result types. */
function readSettlement<F extends ContractFunctionName<SettlementAbi, Reads>>(
  c: ChainClients, d: D, fn: F, args: ContractFunctionArgs<SettlementAbi, Reads, F>,
): Promise<ContractFunctionReturnType<SettlementAbi, Reads, F>> {
  return read(c, d.settlement, 'Settlement', fn, args as readonly unknown[])
}

export const ROLE = { provider: 1, auditor: 2 } as const

/** Bonds `amount` as provider or auditor. */
export function stake(c: ChainClients, d: D, a: { role: keyof typeof ROLE; amount: bigint }) {
  return sendSettlement(c, d, 'stake', [ROLE[a.role]], a.amount)
}
/** Starts unbonding `amount` of unlocked active stake (still slashable until withdrawn). */
export function unstake(c: ChainClients, d: D, a: { amount: bigint }) {
  return sendSettlement(c, d, 'unstake', [a.amount])
}
export function withdrawStake(c: ChainClients, d: D) {
  return sendSettlement(c, d, 'withdrawStake', [])
}
export function advertise(c: ChainClients, d: D, a: { modelRoot: Hex; pricePerToken: bigint }) {
  return sendSettlement(c, d, 'advertise', [a.modelRoot, a.pricePerToken])
}
export function deposit(c: ChainClients, d: D, a: { amount: bigint }) {
  return sendSettlement(c, d, 'deposit', [], a.amount)
}
/** Withdraws free escrow (not what reservations hold). */
export function withdrawEscrow(c: ChainClients, d: D, a: { amount: bigint }) {
  return sendSettlement(c, d, 'withdrawEscrow', [a.amount])
}
/**
 * Provider: accepts a signed request by reserving its maximum price (maxTokens * pricePerToken)
 * from the client's free escrow, so the claim pays whatever the client does meanwhile.
 */
export function reserve(c: ChainClients, d: D, a: { req: JobRequest; r: Hex; vs: Hex }) {
  return sendSettlement(c, d, 'reserve', [a.req, a.r, a.vs])
}
/** Anyone: returns an expired, unclaimed reservation (by request digest) to the client's free escrow. */
export function release(c: ChainClients, d: D, a: { requestDigest: Hex }) {
  return sendSettlement(c, d, 'release', [a.requestDigest])
}
/** A reservation by request digest (client zero: none). */
export async function getReservation(c: ChainClients, d: D, requestDigest: Hex): Promise<{ client: Address; expiry: bigint; amount: bigint }> {
  const [client, expiry, amount] = await readSettlement(c, d, 'reservations', [requestDigest])
  return { client, expiry, amount }
}
export function withdrawOwed(c: ChainClients, d: D) {
  return sendSettlement(c, d, 'withdrawOwed', [])
}
/** Claims a batch of jobs (locking their exposure of the caller's stake); returns the batch id with the receipt. */
export async function claimBatch(c: ChainClients, d: D, a: { items: readonly ClaimItem[] }) {
  const r = await sendSettlement(c, d, 'claimBatch', [a.items])
  return { ...r, batchId: r.result }
}
export function finalizeBatch(c: ChainClients, d: D, a: { batchId: bigint }) {
  return sendSettlement(c, d, 'finalize', [a.batchId])
}

/**
 * An account's stake. `locked` is the part of `active` that backs pending claims (docs/CHAIN.md
 * "Economics"): it cannot be unbonded, and a claim needs its exposure in `active - locked`.
 */
export type StakeInfo = { role: number; openDisputes: number; unbondAt: bigint; active: bigint; unbonding: bigint; locked: bigint }
export async function getStake(c: ChainClients, d: D, account: Address): Promise<StakeInfo> {
  const [role, openDisputes, unbondAt, unbonding, active, locked] = await readSettlement(c, d, 'stakers', [account])
  return { role, openDisputes, unbondAt, active, unbonding, locked }
}
/**
 * Stake a pending claim worth `amount` locks, and the slash a lost dispute on it takes before the
 * minimum-stake floor: amount / (p * (1 - r) * (1 - c)) = amount * 10^12 / (auditBps * (10,000 -
 * rewardBps) * (10,000 - collusionBps)), rounded down (Settlement.exposureOf): a provider's sock
 * puppet may collect the reward share r of the slash, and auditors colluding with it (the tolerated
 * share c of auditor stake) approve its cheats, so only the burned share, amount / (p * (1 - c)),
 * deters a cheat caught with probability p * (1 - c). `collusionBps` absent counts as 0 (deployment
 * files written before the parameter).
 */
export function exposureOf(
  amount: bigint,
  params: { auditBps: number | bigint | string; rewardBps: number | bigint | string; collusionBps?: number | bigint | string },
): bigint {
  const div = BigInt(params.auditBps) * (10_000n - BigInt(params.rewardBps)) * (10_000n - BigInt(params.collusionBps ?? 0))
  return (amount * 1_000_000_000_000n) / div
}
/**
 * A claimed job's audit premium and what its batch holds for the provider (docs/CHAIN.md
 * "Audits"): premium = amount * premiumBps / 10,000 (rounded down) goes to the Audits pool at
 * claim; net = amount - premium is paid out, or refunded to the client when the job is lost.
 */
export function premiumOf(amount: bigint, params: { premiumBps: number | bigint | string }): { premium: bigint; net: bigint } {
  const premium = (amount * BigInt(params.premiumBps)) / 10_000n
  return { premium, net: amount - premium }
}
/** `owedByAudits`: fees, bonds and canary rewards Audits owes (0 for a deployment without it). */
export type Balances = { wallet: bigint; escrow: bigint; owed: bigint; owedByGame: bigint; owedByAudits: bigint; stake: StakeInfo }
/** Everything an account holds: coin, escrow, withdrawable earnings and stake. */
export async function getBalances(c: ChainClients, d: D, account: Address): Promise<Balances> {
  return {
    wallet: await c.public.getBalance({ address: account }),
    escrow: await readSettlement(c, d, 'escrowOf', [account]),
    owed: await readSettlement(c, d, 'owedTo', [account]),
    owedByGame: await read<bigint>(c, d.disputeGame, 'DisputeGame', 'owedTo', [account]),
    owedByAudits: d.audits ? await read<bigint>(c, d.audits, 'Audits', 'owedTo', [account]) : 0n,
    stake: await getStake(c, d, account),
  }
}
export type Totals = { balance: bigint; staked: bigint; escrow: bigint; pending: bigint; owed: bigint; burned: bigint; gameBalance: bigint; bonds: bigint; gameOwed: bigint; gameBurned: bigint }
/** Contract-wide totals, for the value-conservation invariant. */
export async function getTotals(c: ChainClients, d: D): Promise<Totals> {
  const s = (fn: 'totalStaked' | 'totalEscrow' | 'totalPending' | 'totalOwed' | 'totalBurned') => readSettlement(c, d, fn, [])
  const g = (fn: string) => read<bigint>(c, d.disputeGame, 'DisputeGame', fn)
  return {
    balance: await c.public.getBalance({ address: d.settlement }),
    staked: await s('totalStaked'), escrow: await s('totalEscrow'), pending: await s('totalPending'),
    owed: await s('totalOwed'), burned: await s('totalBurned'),
    gameBalance: await c.public.getBalance({ address: d.disputeGame }),
    bonds: await g('totalBonds'), gameOwed: await g('totalOwed'), gameBurned: await g('totalBurned'),
  }
}
/**
 * A claimed batch (Settlement.Batch): `{ provider, finalizesAt, status, openDisputes, count, amount,
 * disputed, root }`; status 1 pending, 2 final, 3 paid out except its disputed jobs (`amount` is
 * what is still pending, `disputed` the part under open games).
 */
export type Batch = ContractFunctionReturnType<SettlementAbi, 'view', 'getBatch'>
export function getBatch(c: ChainClients, d: D, batchId: bigint): Promise<Batch> {
  return readSettlement(c, d, 'getBatch', [batchId])
}
