/**
 * Plays one game to its end with the one pair of players: the defender and the challenger take
 * turns (each `act` moves only on its own turn); a side that cannot make its move (a cheater whose
 * proof the contract refuses, a challenger with nothing to dispute) stops moving, and once neither
 * moves the game is ended by the clock: time is moved past the mover's clock (the embedded chain
 * can; on a real chain one waits) and anyone calls `timeout`.
 */
import { ContractRevertError, type Deployment } from '../../chain/client.js'
import { getGame, isOver, resolution, timeout } from '../../chain/actions/disputeGame.js'
import type { ChainClients } from '../../chain/evm/clients.js'
import { BaseError } from '../../errors.js'
import { NothingToDisputeError } from './challenger.js'
import type { Player } from './defender.js'

export type GameMove = { side: 'provider' | 'challenger' | 'anyone'; move: string; gasUsed: bigint }

export type GameResult = {
  gameId: bigint
  providerWon: boolean
  /** Resolved(why): 1 the machine decided a step, 2 a clock ran out, 3 the provider's own state was inconsistent, 5 voided. */
  why: number
  moves: GameMove[]
  /** Challenger moves (choices and the naming): one per round of reveal + choose. */
  rounds: number
  gas: { provider: bigint; challenger: bigint; anyone: bigint }
  /** Why a side stopped moving before the end, if one did (the revert or error name). */
  stuck?: { side: 'provider' | 'challenger'; error: string }
  /**
   * Where the game ended: the level, the disputed trace leaf, op and element (when reached), and at
   * the micro-step level the disputed micro-state (the step takes state `step - 1` to it; else -1).
   */
  at: { level: number; traceLeaf: number; op: number; elem: number; step: number }
}

/** The game did not end within `maxMoves`: a player bug (each level is a bounded descent). */
export class GameDidNotEndError extends BaseError {
  override name = 'GameDidNotEndError'
}

export type PlayInit = {
  defender: Player
  challenger: Player
  /** Any account, for `timeout`. */
  anyone: ChainClients
  deployment: Pick<Deployment, 'disputeGame' | 'deployedAtBlock' | 'params'>
  /** Moves chain time forward (the embedded chain's evm_increaseTime). */
  warp(seconds: bigint): Promise<void>
  maxMoves?: number
  signal?: AbortSignal
}

/** Moves a side could not make: the contract refused it (a cheater's bad proof) or the challenger has no divergence. */
function cannotMove(e: unknown): string | undefined {
  if (e instanceof ContractRevertError) return e.errorName
  if (e instanceof NothingToDisputeError) return e.name
  return undefined
}

/**
 * Plays game `defender.gameId` to its end.
 *
 * @example
 *   const r = await playGame({ defender, challenger, anyone: net.deployer, deployment: net.d, warp: net.warp })
 *   r.providerWon   // false against every cheater
 */
export async function playGame(init: PlayInit): Promise<GameResult> {
  const { defender, challenger, anyone, deployment: d, signal } = init
  const gameId = defender.gameId
  const moves: GameMove[] = []
  let stuck: GameResult['stuck']
  const maxMoves = init.maxMoves ?? 400
  for (let i = 0; i < maxMoves; i++) {
    signal?.throwIfAborted()
    let moved = false
    for (const [side, p] of [['provider', defender], ['challenger', challenger]] as const) {
      if (stuck?.side === side) continue
      try {
        const m = await p.act(signal)
        if (m) {
          moves.push({ side, ...m })
          moved = true
        }
      } catch (e) {
        const why = cannotMove(e)
        if (why === undefined) throw e
        stuck = { side, error: why }
      }
    }
    const g = await getGame(anyone, d, { gameId })
    if (isOver(g)) return result(init, gameId, moves, stuck)
    if (!moved) {
      // neither side moves: the mover's clock decides (the whole clock plus one second)
      await init.warp(BigInt(d.params.game.clock ?? 86400) + 1n)
      const r = await timeout(anyone, d, { gameId, signal })
      moves.push({ side: 'anyone', move: 'timeout', gasUsed: r.gasUsed })
      return result(init, gameId, moves, stuck)
    }
  }
  throw new GameDidNotEndError(`game ${gameId} did not end within ${maxMoves} moves`)
}

async function result(init: PlayInit, gameId: bigint, moves: GameMove[], stuck: GameResult['stuck']): Promise<GameResult> {
  const r = await resolution(init.anyone, init.deployment, { gameId })
  if (!r) throw new GameDidNotEndError(`game ${gameId} is over but has no Resolved event`)
  const g = await getGame(init.anyone, init.deployment, { gameId })
  const sum = (side: GameMove['side']) => moves.filter((m) => m.side === side).reduce((a, m) => a + m.gasUsed, 0n)
  return {
    gameId, providerWon: r.providerWon, why: r.why, moves, stuck,
    at: { level: g.level, traceLeaf: Number(g.level === 0 ? g.index : g.traceLeaf), op: Number(g.opK !== 0n ? g.opK : g.level === 1 ? g.index : 0n), elem: Number(g.elem), step: g.level === 3 ? Number(g.index) : -1 },
    rounds: moves.filter((m) => m.side === 'challenger').length,
    gas: { provider: sum('provider'), challenger: sum('challenger'), anyone: sum('anyone') },
  }
}
