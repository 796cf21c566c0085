/**
 * The provider's player: answers every position the contract accepts from its TraceProvider.
 * `act` reads the game, makes the provider's next move if it is the provider's turn, and says
 * what it did; a loop over `act` (play.ts) plays a whole game. The openings a move carries
 * (one-step proofs, a step's reads, an element's result in its slot) come from the TraceProvider
 * (src/dispute/machine/openings.ts behind it).
 *
 *   REVEAL       the 2^s nodes below the current node of the level's tree
 *   REVEAL_PRE   the leaf before the disputed one, with its path
 *   EXPAND       level 0: the disputed transition's frames (expandOps); level 1: a one-step op's
 *                proof (stepOp) or the op's slot (enterOp); level 2, after the challenger named
 *                an element: its micro-states (expandElement)
 *   CHUNK        the word slot's chunk the level-2 bisection reached (revealChunk)
 *   STEP         the disputed micro-step with its reads opened (stepMicro)
 */
import { stride } from '../../chain/bisection.js'
import {
  type Cfg, type Game, type MicroStateArg, PHASE, enterOp, expandElement, expandOps, getGame, isOver, isProviderTurn,
  reveal, revealChunk, revealPre, stepMicro, stepOp,
} from '../../chain/actions/disputeGame.js'
import type { Address } from 'viem'
import { machineOf, proveWeightType, weightType } from '../../chain/actions/machine.js'
import type { Deployment } from '../../chain/client.js'
import type { ChainClients } from '../../chain/evm/clients.js'
import type { JobParams } from '../../trace/receipt.js'
import { samplingArg } from '../machine/openings.js'
import type { MicroState } from '../machine/state.js'
import type { DisputeModel } from '../model.js'
import type { TraceProvider } from '../traceProvider.js'
import { type LevelTree, chunkBytes, expansionOf, hex, slotTree } from '../tree.js'

/** One move a player made. */
export type Move = { move: string; gasUsed: bigint }

export type Player = {
  readonly gameId: bigint
  /** Makes this side's next move if it is its turn; undefined when it is not (or the game is over). */
  act(signal?: AbortSignal): Promise<Move | undefined>
}

export type DefenderInit = {
  clients: ChainClients
  deployment: Pick<Deployment, 'disputeGame' | 'deployedAtBlock'>
  gameId: bigint
  trace: TraceProvider
  /** The model's config and the request's sampling, as the game checks them. */
  cfg: Cfg
}

/**
 * The context every machine-level move carries: the model's config (as its config leaf commits
 * it) and the request's sampling parameters (what its paramsHash commits).
 */
export function gameCfg(model: DisputeModel, params: JobParams): Cfg {
  const { maxTokens, stop, ...s } = params
  return { config: model.tree.proveConfig().config, sampling: samplingArg({ ...s, seed: 0n }, { maxTokens, stop }) }
}

/** The state struct of a micro-state as the contract takes it. */
export function microStateArg(s: MicroState): MicroStateArg {
  return { op: s.op, elem: BigInt(s.elem), step: BigInt(s.step), r: Array.from(s.r) as unknown as MicroStateArg['r'], data: hex(s.data) }
}

/** The tree of the level the game is at, from one side's TraceProvider. */
export function levelOf(trace: TraceProvider, g: Game): LevelTree {
  if (g.level === 0) return trace.traceTree()
  const view = trace.transition(Number(g.traceLeaf))
  if (g.level === 1) return view.opTree()
  if (g.level === 2) {
    const v = view.slot(Number(g.opK)).value
    if (!v) throw new RangeError(`op ${g.opK} of trace leaf ${g.traceLeaf} has no slot value`)
    return slotTree(v)
  }
  return view.elementTree(Number(g.opK), Number(g.elem))
}

/**
 * The provider's player for game `gameId`.
 *
 * @example
 *   const defender = createDefender({ clients: provider, deployment: d, gameId, trace: mine, cfg: gameCfg(model, params) })
 *   while (await defender.act()) {}
 */
export function createDefender(init: DefenderInit): Player {
  const { clients: c, deployment: d, gameId, trace, cfg } = init
  let machine: Address | undefined
  return {
    gameId,
    async act(signal) {
      const g = await getGame(c, d, { gameId })
      if (isOver(g) || !isProviderTurn(g)) return undefined
      const a = { gameId, cfg, signal }
      switch (g.phase) {
        case PHASE.REVEAL: {
          const tree = levelOf(trace, g)
          const r = await reveal(c, d, { gameId, children: tree.children(tree.depth - g.depthLeft, g.index, stride(g.depthLeft)).map(hex), signal })
          return { move: `reveal L${g.level}`, gasUsed: r.gasUsed }
        }
        case PHASE.REVEAL_PRE: {
          const tree = levelOf(trace, g)
          const j = Number(g.index) - 1
          const r = await revealPre(c, d, { gameId, preLeaf: hex(tree.leaves[j]), proof: tree.proof(j).map(hex), signal })
          return { move: `revealPre L${g.level}`, gasUsed: r.gasUsed }
        }
        case PHASE.EXPAND: {
          if (g.level === 0) {
            const view = trace.transition(Number(g.index))
            const r = await expandOps(c, d, { ...a, expansion: expansionOf(view.opTree()) })
            return { move: 'expandOps', gasUsed: r.gasUsed }
          }
          const view = trace.transition(Number(g.traceLeaf))
          if (g.level === 1) {
            const k = Number(g.index)
            const op = view.ops[k - 1]
            if (!op.program) {
              const head = view.layer === trace.nLayer && op.code === 'STORE'
              const r = await stepOp(c, d, { ...a, proof: view.openings.stepOp(k), out: head ? trace.outputToken(view.pos) : undefined })
              return { move: `stepOp ${op.name}`, gasUsed: r.gasUsed }
            }
            const slot = view.slot(k)
            const r = await enterOp(c, d, { ...a, slotRoot: hex(slot.root), path: slot.path.map(hex) })
            return { move: `enterOp ${op.name}`, gasUsed: r.gasUsed }
          }
          const k = Number(g.opK), j = Number(g.elem)
          const states = view.elementStates(k, j)
          // a matmul's step count depends on its weight type, which the machine learns once per model
          const tensor = view.ops[k - 1].code === 'MATMUL' ? view.ops[k - 1].tensor : undefined
          let proveGas = 0n
          if (tensor) {
            machine ??= await machineOf(c, d)
            if (!(await weightType(c, { machine, modelRoot: trace.model.tree.modelRoot, name: tensor })).known) {
              proveGas = (await proveWeightType(c, { machine, tree: trace.model.tree, name: tensor, signal })).gasUsed
            }
          }
          const r = await expandElement(c, d, { ...a, expansion: expansionOf(view.elementTree(k, j)), last: microStateArg(states.at(-1)!), opening: view.openings.result(k, j) })
          return { move: 'expandElement', gasUsed: r.gasUsed + proveGas }
        }
        case PHASE.CHUNK: {
          const v = trace.transition(Number(g.traceLeaf)).slot(Number(g.opK)).value
          if (v?.kind !== 'words') throw new RangeError(`op ${g.opK} has no word slot to reveal a chunk of`)
          const r = await revealChunk(c, d, { gameId, chunk: hex(chunkBytes(v.words, Number(g.index))), signal })
          return { move: 'revealChunk', gasUsed: r.gasUsed }
        }
        case PHASE.STEP: {
          const view = trace.transition(Number(g.traceLeaf))
          const k = Number(g.opK), j = Number(g.elem)
          const pre = view.elementStates(k, j)[Number(g.index) - 1]
          const r = await stepMicro(c, d, { ...a, pre: microStateArg(pre), reads: view.openings.step(pre) })
          return { move: 'stepMicro', gasUsed: r.gasUsed }
        }
        default:
          return undefined
      }
    },
  }
}
