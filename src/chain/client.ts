/**
 * What Tessera's contract actions share: deployment (deploy, load, save), reverts decoded into
 * errors named after the contract's custom error, the shared write and read the actions send
 * through, and the digests a client and provider sign (identical to the contracts'). The actions
 * themselves live per contract in src/chain/actions/ (settlement.ts, registry.ts, disputeGame.ts,
 * machine.ts), each `fn(client, deployment, { named params })`.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import {
  type Abi, type Address, type ContractFunctionArgs, type ContractFunctionReturnType, type Hex,
  BaseError as ViemBaseError, ContractFunctionRevertedError, encodeAbiParameters, parseSignature, recoverTypedDataAddress,
  sha256, signatureToCompactSignature,
} from 'viem'
import { BaseError } from '../errors.js'
// Types only (erased at run time, so tsx runs need no generated file): the ABIs `as const`,
// written by scripts/build/50-contracts.mjs before tsc runs. The run-time ABI is build/contracts.json.
import type { auditsAbi, settlementAbi } from '#abi'
import { getArtifact } from './artifacts.js'
import { createDevBeacon } from './beacon.js'
import { flatTypedDigest } from './typedDigest.js'
import { type ChainClients, deployContract } from './evm/clients.js'
import { signHash } from './evm/secp.js'
import { buildLevels, merkleProof } from '../trace/merkle.js'

// ------------------------------------------------------------------ parameters and deployment

type SettlementAbi = typeof settlementAbi
/**
 * Settlement parameters (docs/CHAIN.md "Economics"), as `Settlement.getParams` returns them:
 * `{ minProviderStake, minAuditorStake, unbondingDelay, challengeWindow, auditBps, rewardBps,
 * premiumBps, collusionBps }`. Amounts in wei, times in seconds. `premiumBps` of every claimed job
 * goes to the audit pool (docs/CHAIN.md "Audits"); `deployTessera` defaults it to `auditBps`, so
 * that an audit pays the job's own price (premium / p), and refuses 0 unless asked for unpaid
 * audits. `collusionBps` is the share of auditor stake the deployment tolerates colluding with a
 * provider: the claim lock and slash grow by 1 / (1 - collusionBps / 10,000).
 */
export type SettlementParams = ContractFunctionReturnType<SettlementAbi, 'view', 'getParams'>
/**
 * Dispute game parameters (docs/CHAIN.md "Economics"): `clock` is each party's time for the whole
 * game, `increment` the seconds each move adds back to the mover's clock (never above `clock`).
 */
export type GameParams = { challengerBond: bigint; clock: bigint; rewardBps: number; depthBond: bigint; increment: bigint }

const ETH = 10n ** 18n
export const DEFAULT_SETTLEMENT_PARAMS: SettlementParams = {
  minProviderStake: 1n * ETH,
  minAuditorStake: ETH / 10n,
  unbondingDelay: 7n * 86400n,
  challengeWindow: 86400n,
  auditBps: 500,
  rewardBps: 5000,
  /** deployTessera uses `auditBps` (at most 5000) when `premiumBps` is not given (500 at the default p). */
  premiumBps: 500,
  collusionBps: 2000,
  /** Share of each job on a model with a training record paid to its datasets' contributors (docs/CHAIN.md "Data provenance"). */
  dataBps: 1000,
}
/** The default premium is `auditBps` up to this: half of every job's price. */
const MAX_DEFAULT_PREMIUM_BPS = 5000
/**
 * Audit parameters (IAudits.Params, docs/CHAIN.md "Audits"): windows in seconds (beaconDelay at
 * least the beacon's period; beaconDelay + commit + reveal + canary windows, and beaconDelay +
 * answerWindow, below the settlement's challenge window), bonds and the value threshold in wei.
 */
export type AuditParams = ContractFunctionReturnType<typeof auditsAbi, 'view', 'getParams'>
export const DEFAULT_AUDIT_PARAMS: AuditParams = {
  beaconDelay: 30n,
  commitWindow: 7200n,
  revealWindow: 7200n,
  canaryWindow: 7200n,
  answerWindow: 14400n,
  maxRedraws: 3,
  auditorBond: ETH / 100n,
  challengeBond: ETH / 20n,
  valueThreshold: ETH,
}
/**
 * The beacon a deployment verifies (docs/CHAIN.md "Beacon"): an existing Beacon contract, or one
 * to deploy with a G2 public key in the contract's encoding (`toContractPublicKey`), its genesis
 * time and period. Absent: the devnet's beacon, `createDevBeacon({ seed: DEV_BEACON_SEED,
 * genesisTime: the chain's time at deployment, period: 3 })`, whose key is public: devnets only.
 */
export type BeaconOption = { address: Address } | { publicKey: Hex; genesisTime: number; period: number }
/** Seed of the devnet beacon's key (public: anyone can sign its rounds; never for a real network). */
export const DEV_BEACON_SEED = 'tessera-devnet'
export const DEFAULT_GAME_PARAMS: GameParams = { challengerBond: ETH / 10n, clock: 86400n, rewardBps: 5000, depthBond: ETH / 20n, increment: 3600n }

/** Where the contracts live on one chain: the deployment file's content. */
export type Deployment = {
  chainId: number
  registry: Address
  /** DatasetRegistry (deployed by ModelRegistry); absent in deployment files written before it. */
  datasets?: Address
  settlement: Address
  /** The dispute machine's entry contract (IMachine); absent in deployment files written before it. */
  machine?: Address
  disputeGame: Address
  /** The randomness beacon (IBeacon) and the audit protocol; absent in deployment files written before them. */
  beacon?: Address
  audits?: Address
  deployedAtBlock: string
  params: { settlement: Record<string, string>; game: Record<string, string>; audits?: Record<string, string>; beacon?: Record<string, string> }
}

/** A deployment file that is missing, unreadable or for another chain. */
export class DeploymentError extends BaseError {
  override name = 'DeploymentError'
}

/**
 * Deploys ModelRegistry, Settlement, the dispute machine (MachineMath, MachineStepsA and B, Machine:
 * docs/MACHINE.md "Solidity judge"), DisputeGame, the beacon (unless given) and Audits, and wires
 * them together. `premiumBps` defaults to `auditBps` (at most 5000); 0 is refused (auditors would work unpaid)
 * unless `unpaidAudits` says the chain means it (tests that count a provider's exact pay).
 *
 * @example
 *   const d = await deployTessera(clients)  // d.settlement, d.disputeGame, d.registry, d.audits, d.beacon
 */
export async function deployTessera(
  c: ChainClients,
  opts: { settlement?: Partial<SettlementParams>; game?: Partial<GameParams>; audits?: Partial<AuditParams>; beacon?: BeaconOption; unpaidAudits?: boolean } = {},
): Promise<Deployment> {
  const sp = { ...DEFAULT_SETTLEMENT_PARAMS, ...opts.settlement }
  // The premium follows p unless given: an audit then pays premium / p = the job's price, what an
  // honest replay of the job costs at most (docs/CHAIN.md "Audits", "Premium"). Capped at half the
  // price, so a test or demo chain auditing every job (p = 100%) still pays its providers.
  if (opts.settlement?.premiumBps === undefined) sp.premiumBps = Math.min(Number(sp.auditBps), MAX_DEFAULT_PREMIUM_BPS)
  const gp = { ...DEFAULT_GAME_PARAMS, ...opts.game }
  const ap = { ...DEFAULT_AUDIT_PARAMS, ...opts.audits }
  if (!(sp.premiumBps >= 0 && sp.premiumBps < 10_000)) throw new DeploymentError(`premiumBps must be 0..9999 (a share of each job in basis points), got ${sp.premiumBps}`)
  const windows = ap.beaconDelay + ap.commitWindow + ap.revealWindow + ap.canaryWindow
  if (windows >= sp.challengeWindow || ap.beaconDelay + ap.answerWindow >= sp.challengeWindow) {
    throw new DeploymentError(`audit windows (${windows} s) must end inside the challenge window (${sp.challengeWindow} s), so that a mismatch an audit finds can still open a game`)
  }
  // The constructors refuse these too (BadParameter), but a constructor revert reaches viem undecoded.
  if (!(sp.auditBps >= 1 && sp.auditBps <= 10_000)) throw new DeploymentError(`auditBps must be 1..10000 (an audit probability in basis points), got ${sp.auditBps}`)
  for (const [name, v] of [['settlement rewardBps', sp.rewardBps], ['game rewardBps', gp.rewardBps]] as const) {
    if (!(v >= 0 && v <= 10_000)) throw new DeploymentError(`${name} must be 0..10000 (a share in basis points), got ${v}`)
  }
  // Some of every slash must burn: a provider's sock puppet can collect the reward share (docs/CHAIN.md "Economics").
  if (sp.rewardBps === 10_000) throw new DeploymentError('settlement rewardBps must be below 10000: a provider\'s own sock puppet could collect a 100% reward, so no slash would deter')
  if (Number(sp.premiumBps) === 0 && !opts.unpaidAudits) {
    throw new DeploymentError(`premiumBps 0 with auditBps ${sp.auditBps}: drawn auditors would replay jobs unpaid, so none would; set premiumBps (default: auditBps, an audit then pays the job's price) or pass unpaidAudits: true`)
  }
  if (!(Number(sp.collusionBps) >= 0 && Number(sp.collusionBps) < 10_000)) {
    throw new DeploymentError(`collusionBps must be 0..9999 (the tolerated share of auditor stake colluding with a provider, in basis points), got ${sp.collusionBps}`)
  }
  if (!(Number(sp.dataBps) >= 0 && Number(sp.premiumBps) + Number(sp.dataBps) < 10_000)) {
    throw new DeploymentError(`dataBps must be 0..${9999 - Number(sp.premiumBps)} (with premiumBps ${sp.premiumBps}, something of every job must be left for its provider), got ${sp.dataBps}`)
  }
  const registry = (await deployContract(c, { name: 'ModelRegistry' })).address
  const datasets = await read<Address>(c, registry, 'ModelRegistry', 'datasets')
  const settlement = (await deployContract(c, { name: 'Settlement', args: [registry, sp] })).address
  const math = (await deployContract(c, { name: 'MachineMath' })).address
  const stepsA = (await deployContract(c, { name: 'MachineStepsA', args: [math] })).address
  const stepsB = (await deployContract(c, { name: 'MachineStepsB', args: [math, registry] })).address
  const machine = (await deployContract(c, { name: 'Machine', args: [stepsA, stepsB] })).address
  const disputeGame = (await deployContract(c, { name: 'DisputeGame', args: [settlement, machine, gp] })).address
  await send(c, settlement, 'Settlement', 'wire', [disputeGame])
  let beacon: Address
  let beaconParams: Record<string, string> = {}
  if (opts.beacon && 'address' in opts.beacon) beacon = opts.beacon.address
  else {
    const b = opts.beacon ?? devBeaconOption(Number((await c.public.getBlock()).timestamp))
    if (ap.beaconDelay < BigInt(b.period)) throw new DeploymentError(`beaconDelay (${ap.beaconDelay} s) must be at least the beacon period (${b.period} s): the draw's round must come after the claim`)
    beacon = (await deployContract(c, { name: 'Beacon', args: [b.publicKey, BigInt(b.genesisTime), BigInt(b.period)] })).address
    beaconParams = { genesisTime: String(b.genesisTime), period: String(b.period), ...(opts.beacon ? {} : { devSeed: DEV_BEACON_SEED }) }
  }
  const audits = (await deployContract(c, { name: 'Audits', args: [settlement, disputeGame, beacon, ap] })).address
  await send(c, settlement, 'Settlement', 'wireAudits', [audits])
  const block = await c.public.getBlockNumber()
  const str = (o: object) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)]))
  return {
    chainId: c.chain.id, registry, datasets, settlement, machine, disputeGame, beacon, audits, deployedAtBlock: String(block),
    params: { settlement: str(sp), game: str(gp), audits: str(ap), beacon: beaconParams },
  }
}

/** The devnet beacon's deployment option: its key from DEV_BEACON_SEED, round 1 at `genesisTime`, a round every 3 s. */
export function devBeaconOption(genesisTime: number): { publicKey: Hex; genesisTime: number; period: number } {
  const b = createDevBeacon({ seed: DEV_BEACON_SEED, genesisTime, period: 3 })
  return { publicKey: b.publicKeyForContract(), genesisTime, period: 3 }
}

export function saveDeployment(path: string, d: Deployment): void {
  writeFileSync(path, JSON.stringify(d, null, 2) + '\n')
}

export function loadDeployment(path: string, chainId?: number): Deployment {
  let d: Deployment
  try {
    d = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new DeploymentError(`cannot read deployment file ${path}`, { details: 'run `tessera chain deploy` first', cause: err })
  }
  if (chainId !== undefined && d.chainId !== chainId) throw new DeploymentError(`deployment ${path} is for chain ${d.chainId}, not ${chainId}`)
  return d
}

// ------------------------------------------------------------------ errors

/** A contract call reverted; `errorName` is the Solidity custom error (Errors.sol). */
export class ContractRevertError extends BaseError {
  override name = 'ContractRevertError'
  readonly errorName: string
  readonly args: readonly unknown[]
  constructor(contract: string, fn: string, errorName: string, args: readonly unknown[], cause?: unknown) {
    const shown = args.map((a) => (typeof a === 'bigint' ? a.toString() : String(a))).join(', ')
    super(`${contract}.${fn} reverted: ${errorName}(${shown})`, { cause, docs: 'docs/CHAIN.md#errors' })
    this.errorName = errorName
    this.args = args
  }
}

/** Turns a viem error from a contract call into ContractRevertError when the revert is known. */
export function decodeRevert(err: unknown, contract: string, fn: string): unknown {
  if (err instanceof ViemBaseError) {
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError)
    if (revert instanceof ContractFunctionRevertedError) {
      const name = revert.data?.errorName ?? (revert.reason ? 'Error' : 'UnknownRevert')
      return new ContractRevertError(contract, fn, name, revert.data?.args ?? (revert.reason ? [revert.reason] : []), err)
    }
  }
  return err
}

const abis = new Map<string, Abi>()
/** A contract's ABI plus every custom error of the system, so a revert from a nested call
 *  (DisputeGame -> Settlement, DisputeGame -> Machine) still decodes by name. */
function abiOf(contract: string): Abi {
  let abi = abis.get(contract)
  if (!abi) {
    const own = getArtifact(contract).abi
    const names = new Set(own.filter((x) => x.type === 'error').map((x) => (x as { name: string }).name))
    const extra = ['ModelRegistry', 'Settlement', 'DisputeGame', 'Machine', 'MachineStepsA', 'MachineStepsB', 'MachineMath', 'Beacon', 'Audits']
      .flatMap((n) => getArtifact(n).abi)
      .filter((x) => x.type === 'error' && !names.has((x as { name: string }).name) && names.add((x as { name: string }).name))
    abi = [...own, ...extra]
    abis.set(contract, abi)
  }
  return abi
}

/**
 * Simulates (so reverts decode by name), sends, waits; returns the receipt's gas and logs. The
 * shared write of the contract actions (src/chain/actions/): `contract` names the artifact whose ABI,
 * with every custom error of the system, encodes the call and decodes its revert.
 *
 * With `gas`, the call is sent at once with that limit, without the simulation and the estimate
 * (two executions of the call on the JSON-RPC node before it is even sent): for a hot path whose
 * gas is known. Its `result` is then undefined; a revert is decoded by simulating the call after
 * the fact (same state, since the reverted one changed nothing), and one that simulates fine ran out
 * of gas (`errorName` 'OutOfGas').
 */
export async function send(c: ChainClients, address: Address, contract: string, fn: string, args: readonly unknown[], value?: bigint, o: { gas?: bigint; fees?: Fees } = {}) {
  const abi = abiOf(contract)
  if (o.gas !== undefined) return sendUnsimulated(c, address, abi, contract, fn, args, value, o.gas, o.fees)
  try {
    const { request, result } = await c.public.simulateContract({ address, abi, functionName: fn, args, value, account: c.account } as never) as unknown as { request: never; result: unknown }
    // The whole ABI, every error included: a revert between simulation and mining (a clock that ran
    // out, a race with another transaction) must still decode by name.
    const hash = await c.wallet.writeContract({ ...(request as object), abi } as never)
    const receipt = await c.public.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') throw new ContractRevertError(contract, fn, 'Reverted', [hash])
    return { result, receipt, gasUsed: receipt.gasUsed }
  } catch (err) {
    throw decodeRevert(err, contract, fn)
  }
}

/** EIP-1559 fees a caller already knows (node/serveJob.ts caches them for `reserve`): no fee reads per transaction. */
export type Fees = { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }

async function sendUnsimulated(c: ChainClients, address: Address, abi: Abi, contract: string, fn: string, args: readonly unknown[], value: bigint | undefined, gas: bigint, fees?: Fees) {
  let receipt: Awaited<ReturnType<ChainClients['public']['waitForTransactionReceipt']>>
  try {
    const hash = await c.wallet.writeContract({ address, abi, functionName: fn, args, value, gas, ...fees, account: c.account, chain: c.chain } as never)
    receipt = await c.public.waitForTransactionReceipt({ hash })
  } catch (err) {
    throw decodeRevert(err, contract, fn)
  }
  if (receipt.status === 'success') return { result: undefined as unknown, receipt, gasUsed: receipt.gasUsed }
  // why it reverted: the same call on the state it left unchanged
  try {
    await c.public.simulateContract({ address, abi, functionName: fn, args, value, account: c.account } as never)
  } catch (err) {
    throw decodeRevert(err, contract, fn)
  }
  throw new ContractRevertError(contract, fn, 'OutOfGas', [receipt.transactionHash, gas])
}

/** Reads a view of `contract` at `address`, reverts decoded by name; the shared read of the contract actions. */
export async function read<T>(c: ChainClients, address: Address, contract: string, fn: string, args: readonly unknown[] = []): Promise<T> {
  try {
    return (await c.public.readContract({ address, abi: abiOf(contract), functionName: fn, args } as never)) as T
  } catch (err) {
    throw decodeRevert(err, contract, fn)
  }
}

// ------------------------------------------------------------------ formats

/**
 * One claimed job (Settlement.ClaimItem, inferred from the ABI): `{ req: JobRequest, r, vs,
 * outputRoot, traceRoot, nPrompt, nOutput, nLayer, ack: Delivery }`: the request, the client's
 * compact signature, the receipt's remaining fields and the client's last delivery acknowledgement.
 */
export type ClaimItem = ContractFunctionArgs<SettlementAbi, 'nonpayable', 'claimBatch'>[0][number]
/**
 * What a client signs (EIP-712 `JobRequest`, domain "Tessera" v1 at the Settlement contract):
 * `{ provider, modelRoot, promptRoot, paramsHash, seed, nonce, expiry, maxTokens, pricePerToken }`;
 * `promptRoot` is the vector root of the prompt token ids (src/trace/vector.ts).
 */
export type JobRequest = ClaimItem['req']
/**
 * The client's acknowledgement that it received the first `nOutput` output tokens, whose vector
 * root is `outputRoot` (EIP-712 `Delivery`, compact signature `r`, `vs`). A claim bills the
 * prompt plus `nOutput` of the last acknowledgement.
 */
export type Delivery = ClaimItem['ack']

const JOB_REQUEST_TYPES = {
  JobRequest: [
    { name: 'provider', type: 'address' }, { name: 'modelRoot', type: 'bytes32' }, { name: 'promptRoot', type: 'bytes32' },
    { name: 'paramsHash', type: 'bytes32' }, { name: 'seed', type: 'uint64' }, { name: 'nonce', type: 'uint64' },
    { name: 'expiry', type: 'uint64' }, { name: 'maxTokens', type: 'uint32' }, { name: 'pricePerToken', type: 'uint128' },
  ],
} as const

function domain(chainId: number, settlement: Address) {
  return { name: 'Tessera', version: '1', chainId, verifyingContract: settlement } as const
}

/** EIP-712 digest of a request, as Settlement.requestDigest computes it. */
export function requestDigest(chainId: number, settlement: Address, req: JobRequest): Hex {
  return flatTypedDigest(chainId, settlement, 'JobRequest', JOB_REQUEST_TYPES.JobRequest, req)
}

/** The client signs a request (`digest`: its requestDigest, when the caller has it); returns the EIP-2098 compact signature the claim carries. */
export async function signJobRequest(c: ChainClients, settlement: Address, req: JobRequest, digest?: Hex): Promise<{ r: Hex; vs: Hex }> {
  // a local account signs the digest (flatTypedDigest: the bytes signTypedData hashes, computed faster)
  const sig = c.account.sign
    ? await signHash(c.account, digest ?? requestDigest(c.chain.id, settlement, req))
    : await c.wallet.signTypedData({ domain: domain(c.chain.id, settlement), types: JOB_REQUEST_TYPES, primaryType: 'JobRequest', message: req })
  const compact = signatureToCompactSignature(parseSignature(sig))
  return { r: compact.r, vs: compact.yParityAndS }
}

const RECEIPT_TYPES = {
  Receipt: [
    { name: 'request', type: 'bytes32' }, { name: 'outputRoot', type: 'bytes32' }, { name: 'traceRoot', type: 'bytes32' },
    { name: 'nPrompt', type: 'uint32' }, { name: 'nOutput', type: 'uint32' }, { name: 'nLayer', type: 'uint32' },
  ],
} as const
const DELIVERY_TYPES = {
  Delivery: [{ name: 'request', type: 'bytes32' }, { name: 'nOutput', type: 'uint32' }, { name: 'outputRoot', type: 'bytes32' }],
} as const

/**
 * What a provider signs about a job (receipt v2, EIP-712 `Receipt`): `request` is the EIP-712
 * digest of the JobRequest, which fixes the model, prompt root, params and seed.
 */
export type ReceiptFields = { request: Hex; outputRoot: Hex; traceRoot: Hex; nPrompt: number; nOutput: number; nLayer: number }
/** Anything that signs EIP-712 data: a wallet client with its account (`c.wallet`) or a viem local account. */
export type TypedDataSigner = { signTypedData(args: never): Promise<Hex> }

/** Receipt digest v2 (docs/TRACE.md), as Settlement.receiptDigest computes it: the EIP-712 digest of the receipt fields. */
export function receiptFieldsDigest(chainId: number, settlement: Address, f: ReceiptFields): Hex {
  return flatTypedDigest(chainId, settlement, 'Receipt', RECEIPT_TYPES.Receipt, f)
}
/** The receipt fields of a claimed job. */
export function receiptFieldsOf(chainId: number, settlement: Address, it: ClaimItem): ReceiptFields {
  return { request: requestDigest(chainId, settlement, it.req), outputRoot: it.outputRoot, traceRoot: it.traceRoot, nPrompt: it.nPrompt, nOutput: it.nOutput, nLayer: it.nLayer }
}
/** Receipt digest v2 of a claimed job (Settlement.receiptDigest). */
export function receiptDigest(chainId: number, settlement: Address, it: ClaimItem): Hex {
  return receiptFieldsDigest(chainId, settlement, receiptFieldsOf(chainId, settlement, it))
}
/**
 * The provider signs a receipt (EIP-712 `Receipt`); returns the 65-byte signature the job file carries.
 *
 * @example
 *   const sig = await signReceipt(privateKeyToAccount(key), 31337, d.settlement, fields)
 */
export function signReceipt(signer: TypedDataSigner, chainId: number, settlement: Address, f: ReceiptFields): Promise<Hex> {
  return signer.signTypedData({ domain: domain(chainId, settlement), types: RECEIPT_TYPES, primaryType: 'Receipt', message: f } as never)
}
/** Who signed a receipt (the provider), from its fields and signature. */
export function recoverReceiptSigner(chainId: number, settlement: Address, f: ReceiptFields, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({ domain: domain(chainId, settlement), types: RECEIPT_TYPES, primaryType: 'Receipt', message: f, signature })
}
/** EIP-712 digest of a delivery acknowledgement (Settlement.deliveryDigest). */
export function deliveryDigest(chainId: number, settlement: Address, a: { request: Hex; nOutput: number; outputRoot: Hex }): Hex {
  return flatTypedDigest(chainId, settlement, 'Delivery', DELIVERY_TYPES.Delivery, a)
}
/**
 * The client acknowledges the first `nOutput` output tokens of a request (their vector root
 * `outputRoot`); returns the Delivery a claim carries. Sent as tokens arrive, or once at the end.
 */
export async function signDelivery(c: ChainClients, settlement: Address, a: { request: Hex; nOutput: number; outputRoot: Hex }): Promise<Delivery> {
  const sig = c.account.sign
    ? await signHash(c.account, deliveryDigest(c.chain.id, settlement, a))
    : await c.wallet.signTypedData({ domain: domain(c.chain.id, settlement), types: DELIVERY_TYPES, primaryType: 'Delivery', message: a })
  const compact = signatureToCompactSignature(parseSignature(sig))
  return { nOutput: a.nOutput, outputRoot: a.outputRoot, r: compact.r, vs: compact.yParityAndS }
}

/** Price of a claimed job: (nPrompt + acknowledged output tokens) * pricePerToken. */
export function jobAmount(it: ClaimItem): bigint {
  return BigInt(it.nPrompt + it.ack.nOutput) * it.req.pricePerToken
}

/** Batch leaf hash of a job: sha256(0x00 || abi.encode(receiptDigest, requestDigest, client, amount)). */
export function batchLeaf(chainId: number, settlement: Address, it: ClaimItem, client: Address): Hex {
  const data = encodeAbiParameters(
    [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'address' }, { type: 'uint128' }],
    [receiptDigest(chainId, settlement, it), requestDigest(chainId, settlement, it.req), client, jobAmount(it)],
  )
  return sha256(`0x00${data.slice(2)}`)
}

/** Root of a batch and proofs of its leaves (the shape of src/trace/merkle.ts and lib/MerkleProof.sol). */
export function batchTree(leaves: readonly Hex[]): { root: Hex; proof(i: number): Hex[] } {
  const levels = buildLevels(leaves.map((h) => Buffer.from(h.slice(2), 'hex')))
  const hex = (b: Uint8Array) => `0x${Buffer.from(b).toString('hex')}` as Hex
  return { root: hex(levels[levels.length - 1][0]), proof: (i) => merkleProof(levels, i).map(hex) }
}
