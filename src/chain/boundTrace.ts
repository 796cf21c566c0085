/**
 * Dispute scenarios whose lower levels follow the program the judge derives (docs/CHAIN.md
 * "Op table"): a matmul op's element level has one leaf per output row (element states chained
 * from the op's input state), and a row's primitive level is its block states then the element
 * state (reached by the SUM8 fold). Used by the one-step dispute tests and the gas benchmark;
 * an honest provider builds the same shapes from its own trace.
 */
import type { Hex } from 'viem'
import { type ActState, type BlockStep, type ElementState, type TensorLeaf, expandElement, expandLevel, expandTensor, oneStepBlockTerm, revealPre } from './client.js'
import { type Devnet, Tree, descendTo, expansionOf, h } from './devnet.js'

export { expansionOf }
import { actStateOf, activationTree, elementChain, f32FromBits, foldLanes, rowLeaves } from './gameStates.js'
import { LAYER_OPS, actSource, opLeafOf } from './opTable.js'
import { activation, type RealModel, rowDotSteps } from './realModel.js'
import { activationBlockSize } from '../engine/kernels/reference.js'

/**
 * Trace shape of every scenario: nPrompt 3, nOutput 2 and the tiny presets' 2 layers (claims must
 * name the registered model's layer count): 4 positions x 3 leaves.
 */
export const SCENARIO_RECEIPT = { nPrompt: 3, nOutput: 2, nLayer: 2 } as const

export type BoundTrace = {
  l0: Tree; l1: Tree; l2: Tree; l3: Tree
  /** Where the dispute goes: trace leaf, op leaf, element leaf. */
  traceLeaf: number; opLeaf: number; elemLeaf: number
  /** For a matmul op: the tensor the provider proves, and the disputed element's state. */
  tensor?: TensorLeaf
  element?: ElementState
  /** For a matmul op: the activation state it multiplies and a block's path in it (for the row's B). */
  act?: ActState
  actPath?(block: number): Hex[]
}

function traceLeaves(): Hex[] {
  const { nPrompt, nOutput, nLayer } = SCENARIO_RECEIPT
  return Array.from({ length: (nPrompt + nOutput - 1) * (nLayer + 1) }, (_, i) => h(`leaf${i}`))
}

/**
 * A provider's trace in which trace leaf (position 1, layer L) computes `tensor` (a matmul weight
 * blk.L.* whose op's input is the activation state just before it, e.g. blk.0.ffn_down.weight; L <
 * SCENARIO_RECEIPT.nLayer) on the activation `x`; output row `row` has the block states `steps` and
 * the element value `value` (binary32 bits). Other rows get filler values. `elementAct` makes the
 * element states name another activation state (an inconsistent provider).
 */
export function rowTrace(tensor: TensorLeaf, tensorName: string, row: number, x: Float32Array, steps: readonly BlockStep[], value: number, B: 32 | 256, elementAct?: Hex): BoundTrace {
  const leaves = traceLeaves()
  const [, layer, suffix] = /^blk\.(\d+)\.(.+)$/.exec(tensorName) ?? []
  if (!(Number(layer) < SCENARIO_RECEIPT.nLayer)) throw new RangeError(`${tensorName}: rowTrace needs a blk.L. tensor with L < ${SCENARIO_RECEIPT.nLayer}`)
  const traceLeaf = 1 * (SCENARIO_RECEIPT.nLayer + 1) + Number(layer)
  const opLeaf = opLeafOf(suffix)
  if (actSource(false, opLeaf) !== opLeaf - 1) throw new RangeError(`${tensorName}: rowTrace needs a matmul whose input is the previous op's output`)
  const act = actStateOf(opLeaf - 1, [x])
  const values = Float32Array.from({ length: Number(tensor.rows) }, (_, r) => f32FromBits(r === row ? value : (0x3f000000 + r) >>> 0))
  const chain = elementChain(act.leaf, values, elementAct ?? act.leaf)
  const ops: Hex[] = Array.from({ length: LAYER_OPS.length - 1 }, (_, i) => h(`op${i + 1}`))
  ops[opLeaf - 2] = act.leaf
  ops[opLeaf - 1] = chain.leaves.at(-1)!
  const tree = activationTree(x, B)!
  return {
    l0: new Tree(leaves),
    l1: new Tree([leaves[traceLeaf - 1], ...ops, leaves[traceLeaf]]),
    l2: new Tree(chain.leaves),
    l3: new Tree(rowLeaves(steps, chain.leaves[row], chain.leaves[row + 1])),
    traceLeaf, opLeaf, elemLeaf: row + 1, tensor, element: chain.states[row], act: act.state, actPath: (b) => tree.path(b),
  }
}

/**
 * The row scenario of the tests and bench:gas: output row 5 of blk.0.ffn_down.weight (Q8_0, 512
 * columns: 16 blocks) of a RealModel on the activation of seed 99. With `badAt`, the provider's
 * lane (badAt mod 8) is wrong from block badAt on (its later states stay consistent with it), so
 * it loses the BLOCK_TERM at that block. `oneStep` sends the provider's BLOCK_TERM at a block.
 */
export function rowScenario(m: RealModel, badAt?: number, name = 'blk.0.ffn_down.weight', row = 5) {
  const seed = 99
  const { steps: honest } = rowDotSteps(m.tree, name, row, seed)
  const steps = badAt === undefined ? honest : honest.map((st, b) => (b < badAt ? st : { ...st, acc: st.acc.map((v, i) => (i === (badAt & 7) ? (v + 0x10) >>> 0 : v)) }))
  const value = foldLanes(steps[steps.length - 1].acc)
  const t = rowTrace(m.tree.proveTensor(name), name, row, activation(m.tree.shape(name).cols, seed), steps, value, activationBlockSize(m.tree.shape(name).type) as 32 | 256)
  return {
    t, steps, value,
    oneStep: (net: Devnet, gameId: bigint, block: number) =>
      oneStepBlockTerm(net.provider, net.d, { gameId, pre: steps[Math.max(0, block - 1)], post: steps[block], chunk: m.tree.proveChunk(name, row, block), act: t.act!, actPath: t.actPath!(block) }),
  }
}


/** Plays a bound trace down to the STEP phase at primitive leaf `target` (>= 1), as provider and challenger. */
export async function playBoundTrace(net: Devnet, gameId: bigint, t: BoundTrace, target: number): Promise<void> {
  const { d, provider } = net
  const levels: [Tree, number][] = [[t.l0, t.traceLeaf], [t.l1, t.opLeaf], [t.l2, t.elemLeaf], [t.l3, target]]
  for (const [level, [tree, leaf]] of levels.entries()) {
    await descendTo(net, gameId, tree, leaf)
    // The level's first disputable leaf follows its entry state; later ones reveal their predecessor.
    if (leaf > (level === 0 ? 0 : 1)) await revealPre(provider, d, { gameId, preLeaf: tree.leaves[leaf - 1], proof: tree.proof(leaf - 1) })
    if (level === 3) break
    const next = levels[level + 1][0]
    if (level === 1 && t.tensor) await expandTensor(provider, d, { gameId, expansion: expansionOf(next), tensor: t.tensor })
    else if (level === 2 && t.element) await expandElement(provider, d, { gameId, expansion: expansionOf(next), element: t.element })
    else await expandLevel(provider, d, { gameId, ...expansionOf(next) })
  }
}
