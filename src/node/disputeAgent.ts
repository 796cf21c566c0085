/**
 * The two players of a dispute, each moving from its own replay of the job (opTrace.ts):
 *
 *   DisputeDefender   the provider: reveals children and pre-states of its own level trees,
 *                     enters the op list, the matmul's tensor and the disputed element, and sends
 *                     the one-step (BLOCK_TERM or fold) at the bottom
 *   DisputeChallenger the auditor: picks, among revealed children, the first whose hash differs
 *                     from its own tree at the same place (so it follows the first divergence), and
 *                     adds the depth bond with its first choice at each level
 *
 * `act()` makes the party's move if it is its turn and returns whether it moved; `playOut` lets two
 * players alternate until the game ends. Level trees are built lazily and cached per game.
 * docs/CHAIN.md "Dispute game".
 */
import type { Hex } from 'viem'
import { stride } from '../chain/bisection.js'
import {
  type Deployment, type GameState, PHASE, chooseChild, expandElement, expandLevel, expandTensor, getGame, oneStepBlockTerm,
  oneStepFold, revealChildren, revealPre,
} from '../chain/client.js'
import { getArtifact } from '../chain/artifacts.js'
import type { ChainClients } from '../chain/evm/clients.js'
import { actStateOf, activationTree, elementChain, rowBlockSteps, rowLeaves } from '../chain/gameStates.js'
import { Tree, expansionOf } from '../chain/levelTree.js'
import { actSource, opKind, tensorNamesOf } from '../chain/opTable.js'
import type { ModelTree } from '../chain/weights.js'
import { activationBlockSize } from '../engine/kernels/reference.js'
import type { OpObserver, Transformer } from '../engine/model/transformer.js'
import { BaseError } from '../errors.js'
import { type OpCapture, captureOps, opLevelLeaves, opPreState } from './opTrace.js'

/** A party's view of the job: the engine, the tokens it ran, its trace leaves and the model's weights. */
export type JobReplay = {
  tf: Transformer
  /** Prompt tokens, then the output tokens fed back (positions 0 .. nPos - 1). */
  tokens: readonly number[]
  /** The trace leaves this party committed to (provider) or computed (auditor). */
  leaves: readonly Hex[]
  weights: ModelTree
  /** A fault to replay with (tests play a cheating provider this way). */
  tamper?: OpObserver
}

/** A move the replay cannot make (e.g. the descent reached a head transition, not yet supported). */
export class DisputeAgentError extends BaseError {
  override name = 'DisputeAgentError'
}

/** The level trees of one party for one game, from its replay, built as the game reaches them. */
class LevelTrees {
  private traceTree?: Tree
  private ops?: { key: bigint; leaves: Hex[]; tree: Tree; cap: Map<number, OpCapture>; head: boolean; layer: number }
  private elems?: { key: string; chain: ReturnType<typeof elementChain>; tree: Tree; name: string; src: number }
  private row?: { key: string; steps: ReturnType<typeof rowBlockSteps>; tree: Tree }

  constructor(private readonly r: JobReplay) {}

  trace(): Tree {
    return (this.traceTree ??= new Tree([...this.r.leaves]))
  }

  /** Op level below trace leaf `traceLeaf`. */
  opLevel(traceLeaf: bigint, nLayer: number) {
    if (this.ops?.key !== traceLeaf) {
      const i = Number(traceLeaf)
      const pos = Math.floor(i / (nLayer + 1)), layer = i % (nLayer + 1)
      const head = layer === nLayer
      if (head) throw new DisputeAgentError(`trace leaf ${i} is the head of position ${pos}: head transitions are not replayed by the dispute agent yet`)
      const cap = captureOps(this.r.tf, this.r.tokens, pos, layer, this.r.tamper)
      const pre = i === 0 ? undefined : this.r.leaves[i - 1]
      if (!pre) throw new DisputeAgentError('trace leaf 0 starts from the job input hash: not replayed by the dispute agent yet')
      const leaves = opLevelLeaves(cap, head, pre, this.r.leaves[i])
      this.ops = { key: traceLeaf, leaves, tree: new Tree(leaves), cap, head, layer }
    }
    return this.ops
  }

  /** Element level of matmul op `opLeaf` (after opLevel). */
  elemLevel(opLeaf: number) {
    const ops = this.ops!
    const key = `${ops.key}/${opLeaf}`
    if (this.elems?.key !== key) {
      if (opKind(ops.head, opLeaf) !== 'matmul') throw new DisputeAgentError(`op ${opLeaf} is not a matmul`)
      const src = actSource(ops.head, opLeaf)
      const chain = elementChain(ops.leaves[opLeaf - 1], ops.cap.get(opLeaf)!.outs[0], ops.leaves[src])
      this.elems = { key, chain, tree: new Tree(chain.leaves), name: tensorNamesOf(ops.head, ops.layer, opLeaf)[0], src }
    }
    return this.elems
  }

  /** Primitive level of element `elemLeaf` (after elemLevel). */
  rowLevel(opLeaf: number, elemLeaf: number) {
    const e = this.elemLevel(opLeaf)
    const key = `${e.key}/${elemLeaf}`
    if (this.row?.key !== key) {
      const row = elemLeaf - 1
      const steps = rowBlockSteps(this.r.weights, e.name, row, this.ops!.cap.get(opLeaf)!.input!)
      this.row = { key, steps, tree: new Tree(rowLeaves(steps, e.chain.leaves[row], e.chain.leaves[row + 1])) }
    }
    return this.row
  }

  /** The tree of the level the game is at. */
  current(g: GameState): Tree {
    if (g.level === 0) return this.trace()
    this.opLevel(g.traceLeaf, g.nLayer)
    if (g.level === 1) return this.ops!.tree
    if (g.level === 2) return this.elemLevel(Number(g.opLeaf)).tree
    return this.rowLevel(Number(g.opLeaf), Number(g.elemLeaf)).tree
  }

  get captures() {
    return this.ops!
  }
}

const over = (g: GameState) => g.phase === PHASE.PROVIDER_WON || g.phase === PHASE.CHALLENGER_WON

/** The provider's player. */
export class DisputeDefender {
  private readonly trees: LevelTrees
  constructor(private readonly c: ChainClients, private readonly d: Deployment, readonly gameId: bigint, private readonly replay: JobReplay) {
    this.trees = new LevelTrees(replay)
  }

  async act(): Promise<boolean> {
    const { c, d, gameId, trees } = this
    const g = await getGame(c, d, gameId)
    if (over(g) || g.phase === PHASE.CHOOSE) return false
    const tree = trees.current(g)
    if (g.phase === PHASE.REVEAL) {
      await revealChildren(c, d, { gameId, children: tree.children(tree.depth - g.depthLeft, g.index, stride(g.depthLeft)) })
    } else if (g.phase === PHASE.REVEAL_PRE) {
      const j = Number(g.index) - 1
      await revealPre(c, d, { gameId, preLeaf: tree.leaves[j], proof: tree.proof(j) })
    } else if (g.phase === PHASE.EXPAND) {
      await this.expand(g)
    } else if (g.phase === PHASE.STEP) {
      await this.step(g)
    }
    return true
  }

  private async expand(g: GameState) {
    const { c, d, gameId, trees } = this
    if (g.level === 0) {
      const ops = trees.opLevel(g.index, g.nLayer)
      await expandLevel(c, d, { gameId, ...expansionOf(ops.tree) })
    } else if (g.level === 1) {
      const op = Number(g.index)
      const ops = trees.captures
      const e = trees.elemLevel(op)
      await expandTensor(c, d, { gameId, expansion: expansionOf(e.tree), tensor: this.replay.weights.proveTensor(e.name), opPre: opPreState(ops.cap, ops.head, ops.leaves, op) })
    } else {
      const e = trees.elemLevel(Number(g.opLeaf))
      const r = trees.rowLevel(Number(g.opLeaf), Number(g.index))
      await expandElement(c, d, { gameId, expansion: expansionOf(r.tree), element: e.chain.states[Number(g.index) - 1] })
    }
  }

  private async step(g: GameState) {
    const { c, d, gameId, trees } = this
    const op = Number(g.opLeaf), elem = Number(g.elemLeaf), leaf = Number(g.index)
    const { steps } = trees.rowLevel(op, elem)
    if (leaf === steps.length + 1) {
      await oneStepFold(c, d, { gameId, last: steps[steps.length - 1] })
      return
    }
    const e = trees.elemLevel(op)
    const ops = trees.captures
    const x = ops.cap.get(e.src)!.outs[0]
    const B = activationBlockSize(this.replay.weights.shape(e.name).type) as 32 | 256
    const block = leaf - 1
    await oneStepBlockTerm(c, d, {
      gameId, pre: steps[Math.max(0, block - 1)], post: steps[block], chunk: this.replay.weights.proveChunk(e.name, elem - 1, block),
      act: actStateOf(e.src, ops.cap.get(e.src)!.outs).state, actPath: activationTree(x, B)!.path(block),
    })
  }
}

/**
 * The auditor's player: follows the first divergence between the provider's trees and its own.
 * With `targets` (one leaf per level: trace, op, element, primitive) it disputes those leaves
 * instead, whatever the trees say: a wrong challenger, for tests.
 */
export class DisputeChallenger {
  private readonly trees: LevelTrees
  constructor(private readonly c: ChainClients, private readonly d: Deployment, readonly gameId: bigint, replay: JobReplay, private readonly targets?: readonly number[]) {
    this.trees = new LevelTrees(replay)
  }

  async act(): Promise<boolean> {
    const { c, d, gameId } = this
    const g = await getGame(c, d, gameId)
    if (over(g) || g.phase !== PHASE.CHOOSE) return false
    const s = stride(g.depthLeft)
    const theirs = await revealedChildren(c, d, gameId)
    let choice: number
    if (this.targets) {
      choice = (this.targets[g.level] >> (g.depthLeft - s)) & ((1 << s) - 1)
    } else {
      const own = this.trees.current(g)
      const mine = own.children(own.depth - g.depthLeft, g.index, s)
      choice = theirs.findIndex((h, i) => h !== mine[i])
      if (choice < 0) throw new DisputeAgentError('the revealed children equal the challenger\'s own: nothing to dispute below this node')
    }
    const bond = g.level > g.bondedLevel ? BigInt(d.params.game.depthBond) : undefined
    await chooseChild(c, d, { gameId, children: theirs, choice: BigInt(choice), bond })
    return true
  }
}

/** The children of the game's last `Revealed` event. */
async function revealedChildren(c: ChainClients, d: Deployment, gameId: bigint): Promise<Hex[]> {
  const logs = await c.public.getContractEvents({
    address: d.disputeGame, abi: getArtifact('DisputeGame').abi, eventName: 'Revealed', args: { gameId }, fromBlock: BigInt(d.deployedAtBlock),
  } as never) as unknown as { args: { children: readonly Hex[] } }[]
  const last = logs.at(-1)
  if (!last) throw new DisputeAgentError(`game ${gameId} has no revealed children yet`)
  return [...last.args.children]
}

/** Lets two players alternate until neither can move (the game is over); false if `maxMoves` ran out first. */
export async function playOut(defender: DisputeDefender, challenger: DisputeChallenger, maxMoves = 500): Promise<boolean> {
  for (let i = 0; i < maxMoves; i++) {
    const moved = (await defender.act()) || (await challenger.act())
    if (!moved) return true
  }
  return false
}
