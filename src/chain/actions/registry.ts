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
import { BaseError } from '../../errors.js'
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
 * `ModelTree.proveConfig()`'s (src/chain/weights.ts). Reverts BadConfigProof when they are not
 * the root's config leaf.
 *
 * @example
 *   await registerModel(c, d, { modelRoot: tree.modelRoot, ...tree.proveConfig(), arithVersion: toHex('tessera-arith/1', { size: 32 }) })
 */
export function registerModel(c: ChainClients, d: D, m: { modelRoot: Hex; config: ModelConfigV3; tokenizerHash: Hex; arithVersion: Hex; path: readonly Hex[] }) {
  // INVARIANT: the registry and the dispute machine have no attention window (configLeaf.ts).
  if (m.config.slidingWindow !== undefined) {
    throw new BaseError(`a sliding-window model (window ${m.config.slidingWindow}) cannot be registered on chain`, { details: 'the dispute machine does not decide windowed attention', docs: 'docs/MACHINE.md' })
  }
  return write(c, d, 'register', [m.modelRoot, m.config, m.tokenizerHash, m.arithVersion, m.path])
}

/** The config a registered model proved at registration (reverts UnknownModel if none). */
export function getModelConfig(c: ChainClients, d: D, modelRoot: Hex): Promise<ModelConfigV3> {
  return view(c, d, 'configOf', [modelRoot])
}

export function isModelRegistered(c: ChainClients, d: D, modelRoot: Hex): Promise<boolean> {
  return view(c, d, 'isRegistered', [modelRoot])
}
