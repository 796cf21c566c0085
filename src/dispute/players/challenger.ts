/**
 * The auditor's player: follows the first divergence between what the provider reveals and its
 * own TraceProvider through every level, names the first element of the disputed op whose value
 * differs from its own, and pays the depth bonds (its first choice at the op level, and the
 * naming). `act` makes the challenger's next move if it is its turn.
 *
 * Naming an element needs the provider's slot values, which the chain only holds as a root: the
 * provider publishes its trace data off chain (`published`), as it serves the job file. Without it
 * the challenger names the first element, which wins only if that element is the wrong one.
 *
 * A lying challenger (`lie`) disputes correct positions instead: a seeded pick among the children
 * it may choose and the elements it may name, whatever its own view says (tests and
 * `tessera attack --lying-challenger` use it against an honest provider, which must win).
 */
import type { Hex } from 'viem'
import { descend, stride } from '../../chain/bisection.js'
import { type Game, PHASE, choose, getGame, isOver, isProviderTurn, nameElement, revealedChildren } from '../../chain/actions/disputeGame.js'
import type { Deployment } from '../../chain/client.js'
import type { ChainClients } from '../../chain/evm/clients.js'
import { BaseError } from '../../errors.js'
import { actBlockLeaf, type SlotValue } from '../machine/state.js'
import type { TraceProvider } from '../traceProvider.js'
import { hex } from '../tree.js'
import { type Player, levelOf } from './defender.js'

/** The challenger's view agrees with every revealed child: it has nothing to dispute below this node. */
export class NothingToDisputeError extends BaseError {
  override name = 'NothingToDisputeError'
}

export type ChallengerInit = {
  clients: ChainClients
  deployment: Pick<Deployment, 'disputeGame' | 'deployedAtBlock'>
  gameId: bigint
  trace: TraceProvider
  depthBond: bigint
  /** The provider's published slot (trace leaf, op k), to name the element that differs. */
  published?: (traceLeaf: number, k: number) => SlotValue | undefined
  /** Plays a lying challenger: `rng` picks children and elements. */
  lie?: { rng: () => number }
}

const elementKey = (v: SlotValue, j: number): string => (v.kind === 'words' ? String(v.words[j]) : hex(actBlockLeaf(v.blocks[j].da, v.blocks[j].qa)))

/** The first element of op k's slot where `theirs` differs from `mine` (0 when unknown). */
function firstDifferentElement(mine: SlotValue | undefined, theirs: SlotValue | undefined, n: number): number {
  if (!mine || !theirs) return 0
  for (let j = 0; j < n; j++) if (elementKey(mine, j) !== elementKey(theirs, j)) return j
  return 0
}

/** The choices (child indexes) the contract accepts at this node. */
function validChoices(g: Game): number[] {
  const out: number[] = []
  for (let i = 0; i < 1 << stride(g.depthLeft); i++) if (descend(g.index, g.depthLeft, BigInt(i), g.minLeaf, g.lastLeaf).ok) out.push(i)
  return out
}

/**
 * The auditor's player for game `gameId`.
 *
 * @example
 *   const challenger = createChallenger({ clients: auditor, deployment: d, gameId, trace: mine, depthBond })
 *   await challenger.act()   // a choice, or the element it names
 */
export function createChallenger(init: ChallengerInit): Player {
  const { clients: c, deployment: d, gameId, trace, depthBond, lie } = init
  return {
    gameId,
    async act(signal) {
      const g = await getGame(c, d, { gameId })
      if (isOver(g) || isProviderTurn(g)) return undefined
      if (g.phase === PHASE.NAME) {
        const k = Number(g.opK)
        const n = Number(g.elemCount)
        let j: number
        if (lie) j = Math.floor(lie.rng() * n)
        else {
          const leaf = Number(g.traceLeaf)
          j = firstDifferentElement(trace.transition(leaf).slot(k).value, init.published?.(leaf, k), n)
        }
        const r = await nameElement(c, d, { gameId, elem: BigInt(j), bond: depthBond, signal })
        return { move: `nameElement ${j}`, gasUsed: r.gasUsed }
      }
      if (g.phase !== PHASE.CHOOSE) return undefined
      const theirs: Hex[] = await revealedChildren(c, d, { gameId })
      const ok = validChoices(g)
      let choice: number
      if (lie) choice = ok[Math.floor(lie.rng() * ok.length)]
      else {
        const own = levelOf(trace, g)
        const mine = own.children(own.depth - g.depthLeft, g.index, stride(g.depthLeft)).map(hex)
        // the first child that differs holds the first differing leaf: the first divergence
        const i = ok.find((x) => theirs[x].toLowerCase() !== mine[x])
        if (i === undefined) throw new NothingToDisputeError(`game ${gameId}: the revealed children at level ${g.level} equal the challenger's own`)
        choice = i
      }
      // the first choice at the op level carries the depth bond (naming the element carries the next)
      const bond = g.level > g.bondedLevel ? depthBond : undefined
      const r = await choose(c, d, { gameId, children: theirs, choice: BigInt(choice), bond, signal })
      return { move: `choose L${g.level} ${choice}`, gasUsed: r.gasUsed }
    },
  }
}
