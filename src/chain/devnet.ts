/**
 * A ready devnet for tests, the gas benchmark and demos: an embedded chain with Tessera deployed,
 * one model registered and named actors (deployer, provider, client, challenger, auditor), plus a
 * scenario toolkit that signs requests, builds claims and made-up trace trees (`Tree`) for games
 * that end before the machine's levels (the players play whole games: src/dispute/players/).
 */
import { type Address, type Hex, hexToBytes, keccak256, toHex } from 'viem'
import { fromHex, toHex0x } from '../engine/bytes.js'
import { configLeafDataV3, type ModelConfigV3 } from '../engine/gguf/configLeaf.js'
import { ARITH_VERSION, type ArithVersion } from '../engine/version.js'
import { buildLevels, type Hash, leafHash, nodeHash } from '../trace/merkle.js'
import { type Totals, claimBatch, deposit, stake } from './actions/settlement.js'
import { isModelRegistered, registerModel } from './actions/registry.js'
import {
  type ClaimItem, type Deployment, type GameParams, type JobRequest, type SettlementParams, DEFAULT_SETTLEMENT_PARAMS, batchLeaf,
  batchTree, deployTessera, requestDigest, signDelivery, signJobRequest,
} from './client.js'
import { type ChainClients, connectClients } from './evm/clients.js'
import { createEmbeddedChain, type EmbeddedChain } from './evm/edr.js'

export type Devnet = {
  chain: EmbeddedChain
  d: Deployment
  deployer: ChainClients
  provider: ChainClients
  client: ChainClients
  challenger: ChainClients
  auditor: ChainClients
  modelRoot: Hex
  /** Clients for development account `i` (0 deployer, 1 provider, 2 client, 3 challenger, 4 auditor, 5.. spare). */
  at(i: number): ChainClients
  /** Moves chain time forward by `seconds` and mines a block. */
  warp(seconds: bigint | number): Promise<void>
  close(): Promise<void>
}

/**
 * The value-conservation invariant: each contract's coin balance equals the sum of its books
 * (stakes + escrow + pending claims + owed + burned; bonds + owed + burned).
 */
export function isConserved(t: Totals): boolean {
  return t.balance === t.staked + t.escrow + t.pending + t.owed + t.burned && t.gameBalance === t.bonds + t.gameOwed + t.gameBurned
}

/** Deterministic 32-byte test value from a label. */
export function h(label: string): Hex {
  return keccak256(toHex(label))
}

/**
 * The settlement parameters of `createDevnet` unless a test sets its own: the defaults without the
 * audit premium and the collusion factor, since the chain tests count exact pay and locks (the audit
 * economics tests set both; deployTessera's own defaults are tested there).
 */
export const DEVNET_SETTLEMENT_PARAMS: SettlementParams = { ...DEFAULT_SETTLEMENT_PARAMS, premiumBps: 0, collusionBps: 0 }

/**
 * Starts a devnet with contracts deployed, a 4-layer model registered and the provider staked
 * (10 coin unless `providerStake`); `accounts` (default 6, at least 5) funded development accounts.
 */
export async function createDevnet(opts: { settlement?: Partial<SettlementParams>; game?: Partial<GameParams>; providerStake?: bigint; accounts?: number } = {}): Promise<Devnet> {
  const chain = await createEmbeddedChain({ accounts: Math.max(5, opts.accounts ?? 6) })
  const at = (i: number) => {
    if (!(i >= 0 && i < chain.accounts.length)) throw new RangeError(`devnet account ${i}: the devnet has accounts 0..${chain.accounts.length - 1}`)
    return connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[i].privateKey })
  }
  const deployer = at(0)
  const d = await deployTessera(deployer, { ...opts, settlement: { ...DEVNET_SETTLEMENT_PARAMS, ...opts.settlement }, unpaidAudits: true })
  const model = fakeModel('model', 4)
  const modelRoot = model.modelRoot
  await registerModel(deployer, d, { ...model, arithVersion: toHex(ARITH_VERSION, { size: 32 }) })
  const provider = at(1)
  await stake(provider, d, { role: 'provider', amount: opts.providerStake ?? 10n * 10n ** 18n })
  return {
    chain, d, deployer, provider, client: at(2), challenger: at(3), auditor: at(4), modelRoot, at,
    async warp(seconds) {
      await chain.provider.request({ method: 'evm_increaseTime', params: [Number(seconds)] })
      await chain.provider.request({ method: 'evm_mine', params: [] })
    },
    close: () => chain.close(),
  }
}

/**
 * A model root the registry accepts (its config leaf, leaf 0, is a real `nLayer`-layer config;
 * its one sibling stands in for the tensors), with what `registerModel` needs: for tests whose
 * jobs never open a weight.
 */
export function fakeModel(label: string, nLayer: number): { modelRoot: Hex; config: ModelConfigV3; tokenizerHash: Hex; path: Hex[] } {
  const config: ModelConfigV3 = {
    arch: 1, nLayer, dim: 64, nHead: 4, nKvHead: 2, headDim: 16, ffDim: 128, vocab: 256, contextLength: 512,
    ropeBaseBits: 0x461c4000, rmsEpsBits: 0x3727c5ac, tiedEmbeddings: true, eogTokens: [2], // rope base 10000, eps 1e-5
  }
  const tokenizerHash = h(`${label}/tokenizer`)
  const tensors = h(`${label}/tensors`)
  const leaf = leafHash(configLeafDataV3(config, hexToBytes(tokenizerHash)))
  return { modelRoot: toHex(nodeHash(leaf, hexToBytes(tensors))), config, tokenizerHash, path: [tensors] }
}

/**
 * Registers a real model's tree (`buildModelTree`) with its proven config under the arithmetic
 * `arith` its jobs are judged under (default ARITH_VERSION), once: claims name registered models only.
 */
export async function registerTree(
  net: Devnet, tree: { modelRoot: Hex; proveConfig(): { config: ModelConfigV3; tokenizerHash: Hex; path: Hex[] } }, arith: ArithVersion = ARITH_VERSION,
): Promise<void> {
  if (await isModelRegistered(net.deployer, net.d, tree.modelRoot)) return
  const { config, tokenizerHash, path } = tree.proveConfig()
  await registerModel(net.deployer, net.d, { modelRoot: tree.modelRoot, config, tokenizerHash, path, arithVersion: toHex(arith, { size: 32 }) })
}

/** A request from the devnet's client to its provider, with sensible defaults. */
export function makeRequest(net: Devnet, over: Partial<JobRequest> = {}): JobRequest {
  return {
    provider: net.provider.account.address, modelRoot: net.modelRoot, promptRoot: h('input'), paramsHash: h('params'),
    seed: 42n, nonce: 0n, expiry: 2n ** 40n, maxTokens: 4096, pricePerToken: 10n ** 12n, ...over,
  }
}

/**
 * Signs `req` with `signer` and attaches receipt fields and the signer's acknowledgement of every
 * output token (unless `receipt.ack` is given): a claimable item. Its model must be registered
 * (the devnet's own is; a real model's tree with `registerTree`), with the item's nLayer.
 */
export async function makeItem(net: Devnet, signer: ChainClients, req: JobRequest, receipt: Partial<Omit<ClaimItem, 'req' | 'r' | 'vs'>> = {}): Promise<ClaimItem> {
  const { r, vs } = await signJobRequest(signer, net.d.settlement, req)
  const fields = { outputRoot: h('output'), traceRoot: h('trace'), nPrompt: 10, nOutput: 20, nLayer: 4, ...receipt }
  const request = requestDigest(net.chain.chainId, net.d.settlement, req)
  const ack = receipt.ack ?? (await signDelivery(signer, net.d.settlement, { request, nOutput: fields.nOutput, outputRoot: fields.outputRoot }))
  return { req, r, vs, ...fields, ack }
}

export type { Address }

/**
 * Claims a 3 + 2 token job of `tree`'s model (registered first; default: the devnet's 4-layer
 * model) with `traceRoot` (and request overrides) in its own batch; returns what `open` needs.
 */
export async function claimJob(net: Devnet, traceRoot: Hex, req: Partial<JobRequest>, tree?: Parameters<typeof registerTree>[1]): Promise<{ batchId: bigint; item: ClaimItem; proof: Hex[] }> {
  const { d, provider, client } = net
  if (tree) await registerTree(net, tree)
  await deposit(client, d, { amount: 10n ** 18n })
  const nLayer = tree ? tree.proveConfig().config.nLayer : 4
  const item = await makeItem(net, client, makeRequest(net, { ...(tree ? { modelRoot: tree.modelRoot } : {}), ...req }), { traceRoot, nPrompt: 3, nOutput: 2, nLayer })
  const { batchId } = await claimBatch(provider, d, { items: [item] })
  const leaf = batchLeaf(net.chain.chainId, d.settlement, item, client.account.address)
  return { batchId, item, proof: batchTree([leaf]).proof(0) }
}

// ---- made-up trace trees of scripted scenarios (the players use src/dispute/tree.ts) ----

/** A Merkle tree over hex leaves with node lookup by (depth from the top, index). */
export class Tree {
  readonly levels: Hash[][]
  readonly depth: number
  constructor(readonly leaves: Hex[]) {
    this.levels = buildLevels(leaves.map(fromHex))
    this.depth = this.levels.length - 1
  }
  get root(): Hex {
    return toHex0x(this.levels[this.depth][0])
  }
  /** Nodes `s` levels below node (dt, index): what the provider reveals. */
  children(dt: number, index: bigint, s: number): Hex[] {
    const row = this.levels[this.depth - dt - s]
    const first = Number(index) << s
    return row.slice(first, first + (1 << s)).map(toHex0x)
  }
  proof(i: number): Hex[] {
    const out: Hex[] = []
    for (let l = 0; l < this.depth; l++, i >>>= 1) out.push(toHex0x(this.levels[l][i ^ 1]))
    return out
  }
}
