/**
 * The auditor's player: follows the first divergence between what the provider reveals and its
 * own TraceProvider through every level (the trace, the ops, the disputed op's slot, the element's
 * micro-steps), names the first element of the reached chunk whose value differs from its own,
 * and pays the depth bonds (its first move at each level below the trace). `act` makes the
 * challenger's next move if it is its turn. Everything it compares is on chain: the revealed
 * children, and the chunk the provider must reveal (`ChunkRevealed`) before an element is named.
 *
 * A lying challenger (`lie`) disputes correct positions instead: a seeded pick among the children
 * it may choose and the elements it may name, whatever its own view says (tests and
 * `tessera attack --lying-challenger` use it against an honest provider, which must win).
 */
import type { Hex } from 'viem'
import { descend, stride } from '../../chain/bisection.js'
import { type Game, PHASE, choose, getGame, isOver, isProviderTurn, nameElement, revealedChildren, revealedChunk } from '../../chain/actions/disputeGame.js'
import type { Deployment } from '../../chain/client.js'
import type { ChainClients } from '../../chain/evm/clients.js'
import { equalBytes, fromHex } from '../../engine/bytes.js'
import { BaseError } from '../../errors.js'
import type { TraceProvider } from '../traceProvider.js'
import { chunkBytes, hex } from '../tree.js'
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
  /** Plays a lying challenger: `rng` picks children and elements. */
  lie?: { rng: () => number }
}

/** The first word where two chunks differ (-1 when equal). */
function firstDifferentWord(mine: Uint8Array, theirs: Hex): number {
  const t = fromHex(theirs)
  for (let i = 0; i < mine.length; i += 4) if (!equalBytes(t.subarray(i, i + 4), mine.subarray(i, i + 4))) return i / 4
  return -1
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
        // the reached leaf is one block of a block slot, or a chunk of 256 words the provider revealed
        const chunk = Number(g.index)
        const first = chunk * 256
        const words = Math.min(256, Number(g.elemCount) - first)
        let j: number
        if (g.slotIsBlock) j = chunk
        else if (lie) j = first + Math.floor(lie.rng() * words)
        else {
          const mine = trace.transition(Number(g.traceLeaf)).slot(Number(g.opK)).value
          if (mine?.kind !== 'words') throw new NothingToDisputeError(`game ${gameId}: op ${g.opK} has no word slot in the challenger's view`)
          const w = firstDifferentWord(chunkBytes(mine.words, chunk), await revealedChunk(c, d, { gameId }))
          if (w < 0) throw new NothingToDisputeError(`game ${gameId}: the revealed chunk equals the challenger's own`)
          j = first + w
        }
        const bond = g.level > g.bondedLevel ? depthBond : 0n
        const r = await nameElement(c, d, { gameId, elem: BigInt(j), bond, signal })
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
      // the first move at each level below the trace carries the depth bond
      const bond = g.level > g.bondedLevel ? depthBond : undefined
      const r = await choose(c, d, { gameId, children: theirs, choice: BigInt(choice), bond, signal })
      return { move: `choose L${g.level} ${choice}`, gasUsed: r.gasUsed }
    },
  }
}
