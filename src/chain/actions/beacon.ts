/**
 * Typed actions of Beacon.sol (docs/CHAIN.md "Beacon"), viem's shape: `fn(clients, { beacon },
 * { named params })`, argument and result types inferred from the generated ABI, reverts decoded
 * by custom error name (BadBeaconSignature, BeaconRoundNotYet). Rounds travel as drand publishes
 * them (src/chain/beacon.ts `BeaconRound`); `beaconArgs` turns one into the contract's arguments.
 *
 * @example
 *   const beacon = createDevBeacon({ seed: 'devnet', genesisTime: now, period: 3 })
 *   const d = await deployBeacon(c, beacon.info)                      // or deployBeacon(c, DRAND_QUICKNET)
 *   await readBeaconRandomness(c, d, beaconArgs(beacon.sign(1)))      // 0x + the round's randomness
 */
import type { Address, ContractFunctionArgs, ContractFunctionName, ContractFunctionReturnType, Hex } from 'viem'
import type { beaconAbi } from '#abi'
import { type BeaconChainInfo, type BeaconRound, toContractPublicKey, toContractSig } from '../beacon.js'
import { read, send } from '../client.js'
import { type ChainClients, deployContract } from '../evm/clients.js'

type BeaconAbi = typeof beaconAbi
type Writes = 'nonpayable' | 'payable'
type Reads = 'view' | 'pure'
/** Where a Beacon lives (a deployment's `beacon` field). */
type D = { beacon: Address }
/** A round as the contract takes it: the signature uncompressed (128 bytes, EIP-2537 G1 encoding). */
export type BeaconArgs = { round: bigint; sig: Hex }

async function write<F extends ContractFunctionName<BeaconAbi, Writes>>(c: ChainClients, d: D, fn: F, args: ContractFunctionArgs<BeaconAbi, Writes, F>) {
  const r = await send(c, d.beacon, 'Beacon', fn, args as readonly unknown[])
  return { ...r, result: r.result as ContractFunctionReturnType<BeaconAbi, Writes, F> }
}
function view<F extends ContractFunctionName<BeaconAbi, Reads>>(
  c: ChainClients, d: D, fn: F, args: ContractFunctionArgs<BeaconAbi, Reads, F>,
): Promise<ContractFunctionReturnType<BeaconAbi, Reads, F>> {
  return read(c, d.beacon, 'Beacon', fn, args as readonly unknown[])
}

/** The contract's arguments for a round as drand publishes it (throws BadBeaconPointError on a malformed signature). */
export function beaconArgs(r: Pick<BeaconRound, 'round' | 'signature'>): BeaconArgs {
  return { round: BigInt(r.round), sig: toContractSig(r.signature) }
}

/**
 * Deploys a Beacon for one drand chain: drand's quicknet (`DRAND_QUICKNET`) or a dev beacon's
 * `info`. Returns `{ beacon, gasUsed }`; the constructor refuses a key off G2 (BadBeaconKey).
 *
 * @example
 *   const { beacon } = await deployBeacon(c, DRAND_QUICKNET)
 */
export async function deployBeacon(c: ChainClients, info: Pick<BeaconChainInfo, 'public_key' | 'genesis_time' | 'period'>): Promise<{ beacon: Address; gasUsed: bigint }> {
  const { address, gasUsed } = await deployContract(c, { name: 'Beacon', args: [toContractPublicKey(info.public_key), BigInt(info.genesis_time), BigInt(info.period)] })
  return { beacon: address, gasUsed }
}

/** Whether `sig` is the beacon's signature of a round that is due (Beacon.verify; never reverts). */
export function checkBeaconRound(c: ChainClients, d: D, a: BeaconArgs): Promise<boolean> {
  return view(c, d, 'verify', [a.round, a.sig])
}

/** The round's randomness (0x-hex), verified on chain; reverts BeaconRoundNotYet or BadBeaconSignature. */
export function readBeaconRandomness(c: ChainClients, d: D, a: BeaconArgs): Promise<Hex> {
  return view(c, d, 'randomness', [a.round, a.sig])
}

/** Verifies a round and stores its randomness for cheap reads (Beacon.record); same reverts as readBeaconRandomness. */
export function recordBeaconRound(c: ChainClients, d: D, a: BeaconArgs) {
  return write(c, d, 'record', [a.round, a.sig])
}

/** A recorded round's randomness, or 0x00..00 if nobody recorded it. */
export function getRecordedRandomness(c: ChainClients, d: D, round: bigint): Promise<Hex> {
  return view(c, d, 'randomnessOf', [round])
}

/** The latest round due at `time` (unix seconds) by the contract's clock formula. */
export function getBeaconRoundAt(c: ChainClients, d: D, time: bigint): Promise<bigint> {
  return view(c, d, 'roundAt', [time])
}
