/**
 * Typed actions of data provenance on chain (docs/CHAIN.md "Data provenance"), viem's shape:
 * `fn(clients, deployment, { named params })`. DatasetRegistry records datasets by Merkle root (the
 * root and manifest of src/data/dataset.ts) with their licence and contributors; ModelRegistry
 * records a trained model with its training record (dataset roots and weights, the training
 * manifest's hash, the run root); Settlement credits a trained model's data share at every claim,
 * which each contributor withdraws per (model, dataset).
 *
 *   datasets   registerDataset, getDataset, isDatasetRegistered, datasetsAddress
 *   models     registerTrainedModel, getTrainingRecord
 *   payouts    dataEarned, dataOwedTo, withdrawData, withdrawAllData
 *   events     lineageEvents (datasets, training records, credits and withdrawals of a model),
 *              jobsOfModel (every claimed job on a model, from the claims' calldata)
 *
 * @example
 *   await registerDataset(c, d, { root: m.root, manifestHash: toHex(manifestHash(m)), licence: m.licence, contributors: m.contributors })
 *   await registerTrainedModel(c, d, { ...fakeModel('m', 4), arithVersion, record: { manifestHash, runRoot, datasets: [{ root: m.root, weightBps: 10_000 }] } })
 *   await withdrawData(contributor, d, { modelRoot, datasetIndex: 0 })
 */
import { type Address, decodeFunctionData, getAddress, type Hex } from 'viem'
import type { ModelConfigV3 } from '../../engine/gguf/configLeaf.js'
import { getArtifact } from '../artifacts.js'
import { type ClaimItem, ContractRevertError, type Deployment, jobAmount, read, send } from '../client.js'
import type { ChainClients } from '../evm/clients.js'

type D = Pick<Deployment, 'registry' | 'datasets'>
type DS = Pick<Deployment, 'registry' | 'datasets' | 'settlement'>

/** A contributor of a dataset and its share of the dataset's payouts (basis points, all summing to 10,000). */
export type ChainContributor = { address: Address; shareBps: number }
/** A registered dataset. */
export type ChainDataset = { root: Hex; manifestHash: Hex; licence: string; registrant: Address; registeredAt: bigint; contributors: ChainContributor[] }
/** What a trained model was trained on (ModelRegistry.TrainingRecord). */
export type TrainingRecord = { manifestHash: Hex; runRoot: Hex; datasets: { root: Hex; weightBps: number }[] }

/** The DatasetRegistry's address: the deployment's, or asked of ModelRegistry (deployment files written before it). */
export async function datasetsAddress(c: ChainClients, d: D): Promise<Address> {
  return d.datasets ?? read<Address>(c, d.registry, 'ModelRegistry', 'datasets')
}

/**
 * Registers a dataset (anyone, once per root: the first registration fixes it). Reverts
 * DatasetAlreadyRegistered, BadDataset(field), BadContributor(index), SharesNotWhole(sum).
 */
export async function registerDataset(c: ChainClients, d: D, a: { root: Hex; manifestHash: Hex; licence: string; contributors: readonly { address: string; shareBps: number }[] }) {
  const at = await datasetsAddress(c, d)
  return send(c, at, 'DatasetRegistry', 'register', [a.root, a.manifestHash, a.licence, a.contributors.map((x) => getAddress(x.address)), a.contributors.map((x) => x.shareBps)])
}

export async function isDatasetRegistered(c: ChainClients, d: D, root: Hex): Promise<boolean> {
  return read<boolean>(c, await datasetsAddress(c, d), 'DatasetRegistry', 'isRegistered', [root])
}

/** A registered dataset, or null when `root` is not registered. */
export async function getDataset(c: ChainClients, d: D, root: Hex): Promise<ChainDataset | null> {
  const at = await datasetsAddress(c, d)
  if (!(await read<boolean>(c, at, 'DatasetRegistry', 'isRegistered', [root]))) return null
  type Entry = { manifestHash: Hex; registrant: Address; registeredAt: bigint; nContributors: number }
  const e = await read<Entry>(c, at, 'DatasetRegistry', 'get', [root])
  const licence = await read<string>(c, at, 'DatasetRegistry', 'licenceOf', [root])
  const [list, bps] = await read<[readonly Address[], readonly number[]]>(c, at, 'DatasetRegistry', 'contributorsOf', [root])
  return { root, manifestHash: e.manifestHash, licence, registrant: e.registrant, registeredAt: e.registeredAt, contributors: list.map((address, i) => ({ address, shareBps: bps[i] })) }
}

/**
 * Registers a model (as registerModel does: its config proven at leaf 0 of the root) with its
 * training record. Reverts as registerModel does, UnknownDataset for a dataset not registered,
 * BadTrainingRecord(field) for a record that breaks a rule (weights must sum to 10,000).
 */
export function registerTrainedModel(
  c: ChainClients,
  d: D,
  m: { modelRoot: Hex; config: ModelConfigV3; tokenizerHash: Hex; arithVersion: Hex; path: readonly Hex[]; record: TrainingRecord },
) {
  const rec = { manifestHash: m.record.manifestHash, runRoot: m.record.runRoot, datasetRoots: m.record.datasets.map((x) => x.root), weightsBps: m.record.datasets.map((x) => x.weightBps) }
  return send(c, d.registry, 'ModelRegistry', 'registerTrained', [m.modelRoot, m.config, m.tokenizerHash, m.arithVersion, m.config.slidingWindow ?? 0, m.path, rec])
}

/** The training record of a registered model; null when it was registered without one. Reverts UnknownModel. */
export async function getTrainingRecord(c: ChainClients, d: D, modelRoot: Hex): Promise<TrainingRecord | null> {
  try {
    const r = await read<{ manifestHash: Hex; runRoot: Hex; datasetRoots: readonly Hex[]; weightsBps: readonly number[] }>(c, d.registry, 'ModelRegistry', 'recordOf', [modelRoot])
    return { manifestHash: r.manifestHash, runRoot: r.runRoot, datasets: r.datasetRoots.map((root, i) => ({ root, weightBps: r.weightsBps[i] })) }
  } catch (e) {
    if (e instanceof ContractRevertError && e.errorName === 'NoTrainingRecord') return null
    throw e
  }
}

/** The data share credited to `modelRoot`'s contributors so far (cumulative, wei). */
export function dataEarned(c: ChainClients, d: DS, modelRoot: Hex): Promise<bigint> {
  return read<bigint>(c, d.settlement, 'Settlement', 'dataEarned', [modelRoot])
}

/** What `contributor` can withdraw now from dataset `datasetIndex` of `modelRoot`'s record (wei). */
export function dataOwedTo(c: ChainClients, d: DS, a: { modelRoot: Hex; datasetIndex: number; contributor: Address }): Promise<bigint> {
  return read<bigint>(c, d.settlement, 'Settlement', 'dataOwedTo', [a.modelRoot, BigInt(a.datasetIndex), a.contributor])
}

/** Withdraws the caller's part of dataset `datasetIndex` of `modelRoot`; reverts NothingToWithdraw when there is none. */
export function withdrawData(c: ChainClients, d: DS, a: { modelRoot: Hex; datasetIndex: number }) {
  return send(c, d.settlement, 'Settlement', 'withdrawData', [a.modelRoot, BigInt(a.datasetIndex)])
}

/**
 * Withdraws everything the caller is owed by `modelRoot`'s data share: one withdrawal per dataset
 * of its record where it has something due. Returns the amounts withdrawn by dataset index.
 */
export async function withdrawAllData(c: ChainClients, d: DS, modelRoot: Hex): Promise<{ datasetIndex: number; amount: bigint }[]> {
  const rec = await getTrainingRecord(c, d, modelRoot)
  const out: { datasetIndex: number; amount: bigint }[] = []
  if (!rec) return out
  for (let i = 0; i < rec.datasets.length; i++) {
    const due = await dataOwedTo(c, d, { modelRoot, datasetIndex: i, contributor: c.account.address })
    if (due === 0n) continue
    await withdrawData(c, d, { modelRoot, datasetIndex: i })
    out.push({ datasetIndex: i, amount: due })
  }
  return out
}

/** What the chain's events say about one model's lineage (lineageEvents). */
export type LineageEvents = {
  /** ModelRegistered: absent when the model is not registered. */
  model?: { registrant: Address; configHash: Hex; tokenizerHash: Hex; nLayer: number; block: bigint; tx: Hex }
  /** TrainingRecorded (with the registration). */
  record?: { manifestHash: Hex; runRoot: Hex; datasets: { root: Hex; weightBps: number }[] }
  /** DatasetRegistered of each dataset the record names (absent ones: not found in the events). */
  datasets: { root: Hex; manifestHash: Hex; licence: string; registrant: Address; contributors: ChainContributor[]; block: bigint }[]
  /** DataCredited: the jobs of this model claimed in each batch and the data share they credited. */
  credits: { batchId: bigint; jobs: number; amount: bigint; block: bigint }[]
  /** DataWithdrawn: contributors' withdrawals from this model's data share. */
  withdrawals: { datasetIndex: number; contributor: Address; amount: bigint; block: bigint }[]
}

/**
 * Reads the events that make up `modelRoot`'s lineage from block `fromBlock` (default: the
 * deployment's block): its registration and training record (ModelRegistry), its datasets'
 * registrations (DatasetRegistry), and the data share its jobs credited and contributors withdrew
 * (Settlement). Events only: what they say is checked against the contracts' state by the caller.
 */
export async function lineageEvents(c: ChainClients, d: DS & Pick<Deployment, 'deployedAtBlock'>, modelRoot: Hex, fromBlock?: bigint): Promise<LineageEvents> {
  const from = fromBlock ?? BigInt(d.deployedAtBlock ?? 0)
  const logs = async (address: Address, contract: string, eventName: string, args: Record<string, unknown>) =>
    (await c.public.getContractEvents({ address, abi: getArtifact(contract).abi, eventName, args, fromBlock: from, toBlock: 'latest' } as never)) as unknown as {
      args: Record<string, unknown>
      blockNumber: bigint
      transactionHash: Hex
    }[]
  const out: LineageEvents = { datasets: [], credits: [], withdrawals: [] }
  const [reg] = await logs(d.registry, 'ModelRegistry', 'ModelRegistered', { modelRoot })
  if (reg) {
    const a = reg.args as { registrant: Address; configHash: Hex; tokenizerHash: Hex; nLayer: number }
    out.model = { registrant: a.registrant, configHash: a.configHash, tokenizerHash: a.tokenizerHash, nLayer: a.nLayer, block: reg.blockNumber, tx: reg.transactionHash }
  }
  const [rec] = await logs(d.registry, 'ModelRegistry', 'TrainingRecorded', { modelRoot })
  if (rec) {
    const a = rec.args as { manifestHash: Hex; runRoot: Hex; datasetRoots: readonly Hex[]; weightsBps: readonly number[] }
    out.record = { manifestHash: a.manifestHash, runRoot: a.runRoot, datasets: a.datasetRoots.map((root, i) => ({ root, weightBps: a.weightsBps[i] })) }
    const at = await datasetsAddress(c, d)
    for (const ds of out.record.datasets) {
      const [e] = await logs(at, 'DatasetRegistry', 'DatasetRegistered', { root: ds.root })
      if (!e) continue
      const x = e.args as { manifestHash: Hex; licence: string; registrant: Address; contributors: readonly Address[]; sharesBps: readonly number[] }
      out.datasets.push({
        root: ds.root, manifestHash: x.manifestHash, licence: x.licence, registrant: x.registrant, block: e.blockNumber,
        contributors: x.contributors.map((address, i) => ({ address, shareBps: x.sharesBps[i] })),
      })
    }
  }
  for (const e of await logs(d.settlement, 'Settlement', 'DataCredited', { modelRoot })) {
    const a = e.args as { batchId: bigint; jobs: number; amount: bigint }
    out.credits.push({ batchId: a.batchId, jobs: a.jobs, amount: a.amount, block: e.blockNumber })
  }
  for (const e of await logs(d.settlement, 'Settlement', 'DataWithdrawn', { modelRoot })) {
    const a = e.args as { datasetIndex: bigint; contributor: Address; amount: bigint }
    out.withdrawals.push({ datasetIndex: Number(a.datasetIndex), contributor: a.contributor, amount: a.amount, block: e.blockNumber })
  }
  return out
}

/** The jobs claimed on one model (jobsOfModel). */
export type ModelJobs = {
  /** Claimed jobs on the model, by batch: their count and billed amount (wei). */
  batches: { batchId: bigint; jobs: number; billed: bigint; dataShare: bigint }[]
  jobs: number
  billed: bigint
  /** Sum over the jobs of floor(billed * dataBps / 10,000): what they credit when the model has a training record. */
  dataShare: bigint
  /** Claim transactions whose calldata is not a direct claimBatch call (sent through another contract): not counted. */
  undecoded: number
}

/**
 * Every job claimed on `modelRoot` since `fromBlock` (default: the deployment's block), read from
 * the calldata of the transactions that emitted BatchClaimed (JobClaimed does not name the model):
 * per batch, the jobs on this model and their billed amounts, and the data share they give at
 * `dataBps`. Claims sent through another contract cannot be decoded this way and are counted in
 * `undecoded`.
 */
export async function jobsOfModel(
  c: ChainClients,
  d: Pick<Deployment, 'settlement' | 'deployedAtBlock' | 'params'>,
  modelRoot: Hex,
  fromBlock?: bigint,
): Promise<ModelJobs> {
  const abi = getArtifact('Settlement').abi
  const from = fromBlock ?? BigInt(d.deployedAtBlock ?? 0)
  const dataBps = BigInt(d.params.settlement.dataBps ?? 0)
  const logs = (await c.public.getContractEvents({ address: d.settlement, abi, eventName: 'BatchClaimed', fromBlock: from, toBlock: 'latest' } as never)) as unknown as {
    args: { batchId: bigint }
    transactionHash: Hex
  }[]
  const out: ModelJobs = { batches: [], jobs: 0, billed: 0n, dataShare: 0n, undecoded: 0 }
  const want = modelRoot.toLowerCase()
  for (const log of logs) {
    const tx = await c.public.getTransaction({ hash: log.transactionHash })
    let items: readonly ClaimItem[]
    try {
      const call = decodeFunctionData({ abi, data: tx.input } as never) as { functionName: string; args: readonly unknown[] }
      if (call.functionName !== 'claimBatch') throw new Error('not a claim')
      items = call.args[0] as readonly ClaimItem[]
    } catch {
      out.undecoded++
      continue
    }
    const mine = items.filter((it) => it.req.modelRoot.toLowerCase() === want)
    if (mine.length === 0) continue
    const billed = mine.reduce((s, it) => s + jobAmount(it), 0n)
    const dataShare = mine.reduce((s, it) => s + (jobAmount(it) * dataBps) / 10_000n, 0n)
    out.batches.push({ batchId: log.args.batchId, jobs: mine.length, billed, dataShare })
    out.jobs += mine.length
    out.billed += billed
    out.dataShare += dataShare
  }
  return out
}
