/**
 * A model as a dispute needs it: the engine (to replay jobs), its weights by name (what the
 * machine's programs read), its model tree (what the judge's weight openings prove against,
 * and the config the registry holds) and the arithmetic its jobs are computed and judged under
 * (its registration's: docs/CHAIN.md "What the judge checks"). Both players of a game open the
 * same GGUF file this way.
 */
import { type Hex, hexToString } from 'viem'
import { type Deployment, read } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import { readGguf } from '../engine/gguf/read.js'
import type { ModelConfig } from '../engine/model/config.js'
import { ARITH_VERSION, type ArithVersion, isArithVersion } from '../engine/version.js'
import type { Transformer } from '../engine/model/transformer.js'
import { openGgufSource } from '../runtime/ggufFile.js'
import { loadModel } from '../runtime/model.js'
import type { ConfigTokenizer } from '../engine/gguf/configLeaf.js'
import { type ConfigProof, type ModelTree, type TreeDepths, buildModelTree } from '../chain/weights.js'
import { UnknownArithError, attentionWindow } from './machine/program.js'
import type { WeightAccessor } from './machine/transition.js'

export type DisputeModel = {
  path: string
  tf: Transformer
  config: ModelConfig
  /**
   * The arithmetic of the model's jobs: its on-chain registration's (`ModelRegistry.arithOf`). The
   * replay's KV cache (replayJob, from JobSpec.arith) and the machine's SCORE / ATT programs follow it.
   */
  arith: ArithVersion
  /**
   * The model's attention window W (0: full attention): its config's, which its root's config leaf
   * commits to and its registration records (`ModelRegistry.windowOf`). The machine's SCORE / ATT
   * programs read the last min(p + 1, W) positions (ProgramContext.window).
   */
  window: number
  tree: ModelTree
  weights: WeightAccessor
  /** End-of-generation tokens as the config leaf commits them (the head STORE's stop rule). */
  eogTokens: readonly number[]
  /** Token ids of a text (the model's own tokenizer). */
  encode(text: string): number[]
  close(): void
}

/**
 * Loads the GGUF file at `path` for disputes (engine backend: `wasm` by default, bit-identical to
 * `reference`) under the arithmetic `arith` its registration names (default ARITH_VERSION, what
 * new registrations use; `tessera-arith/1` for a model registered under v1). `depths` pads the
 * model tree to a bigger model's path depths (weights.ts TreeDepths: gas measurement only, the
 * root is then not the file's).
 *
 * @example
 *   const m = await openDisputeModel('tiny.gguf', { arith: 'tessera-arith/2' })
 *   m.tree.modelRoot   // the root a request names
 */
export async function openDisputeModel(path: string, opts: { backend?: 'wasm' | 'reference'; depths?: TreeDepths; arith?: ArithVersion } = {}): Promise<DisputeModel> {
  const arith = opts.arith ?? ARITH_VERSION
  // INVARIANT: a model is replayed and judged only under an arithmetic the engine and machine compute.
  if (!isArithVersion(arith)) throw new UnknownArithError(arith)
  const model = await loadModel(path, { backend: opts.backend ?? 'wasm' })
  const src = openGgufSource(path)
  try {
    const gguf = readGguf(src)
    const config = model.transformer.config
    const tree = buildModelTree(src, gguf, config, model.tokenizer, opts.depths)
    const weights: WeightAccessor = (name) => {
      const s = tree.shape(name)
      return { type: s.type, rows: s.rows, cols: s.cols, row: (r) => tree.readRow(name, r) }
    }
    return {
      path, tf: model.transformer, config, arith, window: attentionWindow(config), tree, weights, eogTokens: tree.proveConfig().config.eogTokens.slice(),
      encode: (text) => model.tokenizer.encode(text),
      close() {
        src.close()
        model.close()
      },
    }
  } catch (e) {
    src.close()
    model.close()
    throw e
  }
}

/**
 * The arithmetic `modelRoot` is registered under (`ModelRegistry.arithOf`): what a node opens its
 * DisputeModel with (`openDisputeModel(path, { arith })`) to serve, audit or dispute that model's
 * jobs. Throws UnknownArithError for a root registered under none (an unregistered root).
 *
 * @example
 *   const m = await openDisputeModel(path, { arith: await registeredArith(c, d, root) })
 */
export async function registeredArith(c: ChainClients, d: Pick<Deployment, 'registry'>, modelRoot: Hex): Promise<ArithVersion> {
  const arith = await registrationArith(c, d, modelRoot)
  if (arith === undefined) throw new UnknownArithError('')
  return arith
}

/**
 * `registeredArith`, or undefined for an unregistered root: one registry read says both whether
 * `modelRoot` is registered and under which arithmetic (a registered root always has one, the
 * registry refusing others: `arithOf` is zero exactly for an unregistered root). Throws
 * UnknownArithError for an arithmetic this node does not implement.
 *
 * @example
 *   const arith = await registrationArith(c, d, root) // undefined: not registered yet
 */
export async function registrationArith(c: ChainClients, d: Pick<Deployment, 'registry'>, modelRoot: Hex): Promise<ArithVersion | undefined> {
  const tag = await read<Hex>(c, d.registry, 'ModelRegistry', 'arithOf', [modelRoot])
  if (/^0x0*$/.test(tag)) return undefined
  const arith = hexToString(tag, { size: 32 })
  if (!isArithVersion(arith)) throw new UnknownArithError(arith)
  return arith
}

/**
 * The config leaf proof of the GGUF file at `path` (`buildModelTree(..).proveConfig()`; reads
 * every row once): what `registerModel` needs beside the model root. It lives here, not beside
 * `buildModelTree` in chain/, because reading a file is the runtime's, which chain may not import.
 *
 * @example
 *   await registerModel(c, d, { modelRoot, ...proveModelConfig(model.path, model.transformer.config, model.tokenizer), arithVersion })
 */
export function proveModelConfig(path: string, config: ModelConfig, tokenizer?: ConfigTokenizer): ConfigProof {
  const src = openGgufSource(path)
  try {
    return buildModelTree(src, readGguf(src), config, tokenizer).proveConfig()
  } finally {
    src.close()
  }
}
