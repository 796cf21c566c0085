/**
 * Typed actions of ModelRegistry (docs/CHAIN.md), viem's shape: `fn(clients, deployment, { named
 * params })`, argument and result types inferred from the generated ABI
 * (build/abi.d.ts, imported as #abi), reverts decoded by custom error name (ContractRevertError.errorName).
 * Anyone registers a model once by its root, with the config the registry checks against the root's
 * config leaf; Settlement refuses claims and adverts for models it does not know.
 *
 * @example
 *   const tree = buildModelTree(src, gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors)) // src/chain/weights.ts
 *   await registerModel(c, d, { modelRoot: tree.modelRoot, ...tree.proveConfig(), arithVersion: toHex('tessera-arith/1', { size: 32 }) })
 *   await isModelRegistered(c, d, tree.modelRoot) // true
 */
import type { ContractFunctionArgs, ContractFunctionName, ContractFunctionReturnType, Hex } from 'viem'
import type { ModelConfigV3 } from '../../engine/gguf/configLeaf.js'
import type { modelRegistryAbi } from '#abi'
import { type Deployment, read, send } from '../client.js'
import type { ChainClients } from '../evm/clients.js'

type RegistryAbi = typeof modelRegistryAbi
type Writes = 'nonpayable' | 'payable'
type Reads = 'view' | 'pure'
type D = Pick<Deployment, 'registry'>

/** `send` to ModelRegistry with viem's types inferred from its ABI. */
async function write<F extends ContractFunctionName<RegistryAbi, Writes>>(c: ChainClients, d: D, fn: F, args: ContractFunctionArgs<RegistryAbi, Writes, F>) {
  const r = await send(c, d.registry, 'ModelRegistry', fn, args as readonly unknown[])
  return { ...r, result: r.result as ContractFunctionReturnType<RegistryAbi, Writes, F> }
}
/** `read` from ModelRegistry with viem's inferred argument and result types. */
function view<F extends ContractFunctionName<RegistryAbi, Reads>>(
  c: ChainClients, d: D, fn: F, args: ContractFunctionArgs<RegistryAbi, Reads, F>,
): Promise<ContractFunctionReturnType<RegistryAbi, Reads, F>> {
  return read(c, d.registry, 'ModelRegistry', fn, args as readonly unknown[])
}

/**
 * Registers a model by root (anyone; immutable) with its config, which the registry checks
 * against the model root: `config`, `tokenizerHash` and `path` (the config leaf's, leaf 0) are
 * `ModelTree.proveConfig()`'s (src/chain/weights.ts). A sliding-window model (`config.slidingWindow`)
 * is registered with its window, which its config leaf (`tessera-config/3+window`) commits to; the
 * dispute machine then decides its jobs with windowed attention (docs/MACHINE.md "Sliding window").
 * Reverts BadConfigProof when they are not the root's config leaf (a window the root does not
 * commit to included).
 *
 * @example
 *   await registerModel(c, d, { modelRoot: tree.modelRoot, ...tree.proveConfig(), arithVersion: toHex('tessera-arith/1', { size: 32 }) })
 */
export function registerModel(c: ChainClients, d: D, m: { modelRoot: Hex; config: ModelConfigV3; tokenizerHash: Hex; arithVersion: Hex; path: readonly Hex[] }) {
  return write(c, d, 'register', [m.modelRoot, m.config, m.tokenizerHash, m.arithVersion, windowArg(m.config), m.path])
}

/** `register`'s window argument: the config's sliding window, 0 for full attention. */
export function windowArg(config: ModelConfigV3): number {
  return config.slidingWindow ?? 0
}

/** The config a registered model proved at registration (reverts UnknownModel if none). */
export function getModelConfig(c: ChainClients, d: D, modelRoot: Hex): Promise<ModelConfigV3> {
  return view(c, d, 'configOf', [modelRoot])
}

/**
 * The attention window a registered model's root commits to (`ModelRegistry.windowOf`): 0 for full
 * attention (or an unregistered root), else W; the machine's SCORE / ATT read the last min(p + 1, W)
 * positions.
 */
export function getModelWindow(c: ChainClients, d: D, modelRoot: Hex): Promise<number> {
  return view(c, d, 'windowOf', [modelRoot])
}

export function isModelRegistered(c: ChainClients, d: D, modelRoot: Hex): Promise<boolean> {
  return view(c, d, 'isRegistered', [modelRoot])
}
