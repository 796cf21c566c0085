/**
 * Typed actions of DisputeGame (docs/MACHINE.md "Game moves"), viem's shape: one function per
 * move, `fn(clients, deployment, { named params })`, argument and result types inferred from the
 * generated ABI (build/abi.d.ts, imported as #abi), reverts decoded by custom error name
 * (ContractRevertError.errorName). Who may move when is the contract's rule; the players in
 * src/dispute/players/ decide which move to make.
 *
 *   level 0 (trace)   open, reveal, choose, revealPre, expandOps
 *   level 1 (ops)     reveal, choose, revealPre, stepOp (LOAD, STORE, TOKEN) or enterOp
 *   level 2 (slot)    reveal, choose, revealChunk (word slots), nameElement, expandElement
 *   level 3 (steps)   reveal, choose, revealPre, stepMicro
 *   any time          timeout, withdraw, getGame, revealedChildren, revealedChunk
 */
import type {
  Abi, Address, ContractFunctionArgs, ContractFunctionName, ContractFunctionReturnType, Hex,
} from 'viem'
import type { disputeGameAbi } from '#abi'
import { getArtifact } from '../artifacts.js'
import { type ClaimItem, type Deployment, ContractRevertError, decodeRevert, jobAmount } from '../client.js'
import type { ChainClients } from '../evm/clients.js'

type GameAbi = typeof disputeGameAbi
type Writes = 'nonpayable' | 'payable'
type D = Pick<Deployment, 'disputeGame'>
type Args<F extends ContractFunctionName<GameAbi, Writes>> = ContractFunctionArgs<GameAbi, Writes, F>

/** The provider's context of every machine-level move: the model's config and the request's sampling (`DisputeGame.Cfg`). */
export type Cfg = Args<'expandOps'>[1]
/**
 * The machine context (`IMachine.Ctx`) every move below the trace level passes whole: the game's
 * model, trace and prompt roots, the disputed leaf's position and layer, the seed, and the `Cfg`
 * proven at expandOps (the game checks it against one stored hash instead of reading its parts).
 */
export type Ctx = Args<'stepMicro'>[1]
/** A sub-level commitment (`DisputeGame.Expansion`): leaf 0 and the last leaf proven under the root. */
export type Expansion = Args<'expandOps'>[2]
/** A micro-state as the contract takes it (`MachineState.MicroState`). */
export type MicroStateArg = Args<'stepMicro'>[4]
/** The token a sampled head leaf commits, opened against the claim's output root (`DisputeGame.OutputToken`). */
export type OutputToken = Args<'stepOp'>[3]
/** A game as `getGame` returns it. */
export type Game = ContractFunctionReturnType<GameAbi, 'view', 'getGame'>

/** Phases (DisputeGame.sol): REVEAL .. STEP are the provider's turn, CHOOSE and NAME the challenger's. */
export const PHASE = { REVEAL: 1, REVEAL_PRE: 2, EXPAND: 3, STEP: 4, CHOOSE: 5, PROVIDER_WON: 6, CHALLENGER_WON: 7, NAME: 8, CHUNK: 9 } as const
/** Resolved(why): how a game ended. */
export const WHY = { STEP_CHECKED: 1, TIMED_OUT: 2, INCONSISTENT: 3, UNDECIDABLE: 4, JOB_LOST: 5 } as const

export const isOver = (g: Pick<Game, 'phase'>) => g.phase === PHASE.PROVIDER_WON || g.phase === PHASE.CHALLENGER_WON
export const isProviderTurn = (g: Pick<Game, 'phase'>) => !isOver(g) && g.phase !== PHASE.CHOOSE && g.phase !== PHASE.NAME

let abiCache: Abi | undefined
/** DisputeGame's ABI plus every custom error of the contracts it calls, so nested reverts decode by name. */
function gameAbi(): Abi {
  if (abiCache) return abiCache
  const own = getArtifact('DisputeGame').abi
  const names = new Set(own.filter((x) => x.type === 'error').map((x) => (x as { name: string }).name))
  const extra: Abi[number][] = []
  for (const n of ['Settlement', 'ModelRegistry', 'Machine', 'MachineMath']) {
    let abi: Abi
    try {
      abi = getArtifact(n).abi
    } catch {
      continue // an older build without the machine contract
    }
    for (const x of abi) if (x.type === 'error' && !names.has(x.name)) names.add(x.name) && extra.push(x)
  }
  return (abiCache = [...own, ...extra])
}

async function write<F extends ContractFunctionName<GameAbi, Writes>>(c: ChainClients, d: D, fn: F, args: Args<F>, value?: bigint, signal?: AbortSignal) {
  signal?.throwIfAborted()
  try {
    const { request, result } = (await c.public.simulateContract({ address: d.disputeGame, abi: gameAbi(), functionName: fn, args, value, account: c.account } as never)) as unknown as { request: never; result: unknown }
    // The whole ABI with every error: a revert between simulation and mining (a clock that ran out)
    // must still decode by name.
    const hash = await c.wallet.writeContract({ ...(request as object), abi: gameAbi() } as never)
    const receipt = await c.public.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') throw new ContractRevertError('DisputeGame', fn, 'Reverted', [hash])
    return { result: result as ContractFunctionReturnType<GameAbi, Writes, F>, receipt, gasUsed: receipt.gasUsed }
  } catch (err) {
    throw decodeRevert(err, 'DisputeGame', fn)
  }
}

async function read<F extends ContractFunctionName<GameAbi, 'view' | 'pure'>>(c: ChainClients, d: D, fn: F, args: ContractFunctionArgs<GameAbi, 'view' | 'pure', F>) {
  try {
    return (await c.public.readContract({ address: d.disputeGame, abi: gameAbi(), functionName: fn, args } as never)) as ContractFunctionReturnType<GameAbi, 'view' | 'pure', F>
  } catch (err) {
    throw decodeRevert(err, 'DisputeGame', fn)
  }
}

/**
 * Challenger: opens a game on job `jobIndex` of batch `batchId` with the exact `bond`; returns its id.
 *
 * @example
 *   const { gameId } = await openGame(auditor, d, { batchId, jobIndex: 0n, item, client, proof, bond: 10n ** 17n })
 */
export async function openGame(c: ChainClients, d: D, a: { batchId: bigint; jobIndex: bigint; item: ClaimItem; client: Address; proof: readonly Hex[]; bond: bigint; signal?: AbortSignal }) {
  const r = await write(c, d, 'open', [a.batchId, a.jobIndex, a.item, a.client, jobAmount(a.item), a.proof], a.bond, a.signal)
  return { ...r, gameId: r.result }
}

/** Provider: the 2^s nodes below the current node. */
export function reveal(c: ChainClients, d: D, a: { gameId: bigint; children: readonly Hex[]; signal?: AbortSignal }) {
  return write(c, d, 'reveal', [a.gameId, a.children], undefined, a.signal)
}

/** Challenger: child `choice` of the last reveal; `bond` is depthBond with its first choice at the op level. */
export function choose(c: ChainClients, d: D, a: { gameId: bigint; children: readonly Hex[]; choice: bigint; bond?: bigint; signal?: AbortSignal }) {
  return write(c, d, 'choose', [a.gameId, a.children, a.choice], a.bond, a.signal)
}

/** Provider: the leaf before the disputed one, with its path under the level root. */
export function revealPre(c: ChainClients, d: D, a: { gameId: bigint; preLeaf: Hex; proof: readonly Hex[]; signal?: AbortSignal }) {
  return write(c, d, 'revealPre', [a.gameId, a.preLeaf, a.proof], undefined, a.signal)
}

/** Provider, below the disputed trace leaf: the transition's frames (level 1), with the config and sampling the game checks. */
export function expandOps(c: ChainClients, d: D, a: { gameId: bigint; cfg: Cfg; expansion: Expansion; signal?: AbortSignal }) {
  return write(c, d, 'expandOps', [a.gameId, a.cfg, a.expansion], undefined, a.signal)
}

const NO_OUTPUT: OutputToken = { token: 0, logitsRoot: `0x${'0'.repeat(64)}`, opening: { chunkIndex: 0, chunk: '0x', path: [] } }

/**
 * Provider: decides a one-step op (LOAD, STORE, TOKEN) with its `proof` (openings.ts); at the
 * STORE of a sampled head, `out` opens the head leaf's token and the claim's output token.
 */
export async function stepOp(c: ChainClients, d: D, a: { gameId: bigint; cfg: Cfg; proof: Hex; out?: OutputToken; signal?: AbortSignal }) {
  return write(c, d, 'stepOp', [a.gameId, await machineCtx(c, d, a), a.proof, a.out ?? NO_OUTPUT], undefined, a.signal)
}

/** Provider: enters the disputed op: the slot root it wrote and the slot's 6-hash frame path. */
export async function enterOp(c: ChainClients, d: D, a: { gameId: bigint; cfg: Cfg; slotRoot: Hex; path: readonly Hex[]; signal?: AbortSignal }) {
  return write(c, d, 'enterOp', [a.gameId, await machineCtx(c, d, a), a.slotRoot, a.path], undefined, a.signal)
}

/** Provider: the chunk of the disputed word slot the level-2 bisection reached (its preimage). */
export function revealChunk(c: ChainClients, d: D, a: { gameId: bigint; chunk: Hex; signal?: AbortSignal }) {
  return write(c, d, 'revealChunk', [a.gameId, a.chunk], undefined, a.signal)
}

/** Challenger: names the element of the reached chunk (or block) it disputes, with `bond` = depthBond when its level is not bonded yet (else 0). */
export function nameElement(c: ChainClients, d: D, a: { gameId: bigint; elem: bigint; bond: bigint; signal?: AbortSignal }) {
  return write(c, d, 'nameElement', [a.gameId, a.elem], a.bond, a.signal)
}

/** Provider: the named element's micro-states (level 3): `last` its final state, `opening` its result in the slot. */
export async function expandElement(c: ChainClients, d: D, a: { gameId: bigint; cfg: Cfg; expansion: Expansion; last: MicroStateArg; opening: Hex; signal?: AbortSignal }) {
  return write(c, d, 'expandElement', [a.gameId, await machineCtx(c, d, a), a.expansion, a.last, a.opening], undefined, a.signal)
}

/**
 * Provider: executes the disputed micro-step from the agreed `pre` with the openings of its reads
 * (the context, the op's pre-frame and the disputed post-state read back from the game).
 */
export async function stepMicro(c: ChainClients, d: D, a: { gameId: bigint; cfg: Cfg; pre: MicroStateArg; reads: readonly Hex[]; signal?: AbortSignal }) {
  const g = await getGame(c, d, { gameId: a.gameId })
  return write(c, d, 'stepMicro', [a.gameId, ctxOf(g, a.cfg), g.frame, g.post, a.pre, a.reads], undefined, a.signal)
}

/**
 * The machine context of game `gameId`'s disputed trace leaf with `cfg` (what expandOps fixed):
 * the stored parts read back from the game.
 *
 * @example
 *   const ctx = await machineCtx(provider, d, { gameId, cfg })   // ctx.pos, ctx.layer: the disputed leaf
 */
export async function machineCtx(c: ChainClients, d: D, a: { gameId: bigint; cfg: Cfg }): Promise<Ctx> {
  return ctxOf(await getGame(c, d, { gameId: a.gameId }), a.cfg)
}

function ctxOf(g: Game, cfg: Cfg): Ctx {
  const leaves = BigInt(g.nLayer) + 1n
  return {
    modelRoot: g.modelRoot, traceRoot: g.traceRoot, promptRoot: g.promptRoot, nPrompt: g.nPrompt, pos: Number(g.traceLeaf / leaves),
    layer: Number(g.traceLeaf % leaves), seed: g.seed, config: cfg.config, sampling: cfg.sampling,
  }
}

/** Anyone: ends a game whose mover's clock is spent (or voids one whose job was lost elsewhere). */
export function timeout(c: ChainClients, d: D, a: { gameId: bigint; signal?: AbortSignal }) {
  return write(c, d, 'timeout', [a.gameId], undefined, a.signal)
}

/** Withdraws the bonds and rewards the game owes the caller. */
export function withdraw(c: ChainClients, d: D, a: { signal?: AbortSignal } = {}) {
  return write(c, d, 'withdraw', [], undefined, a.signal)
}

export function getGame(c: ChainClients, d: D, a: { gameId: bigint }): Promise<Game> {
  return read(c, d, 'getGame', [a.gameId])
}

export function getOwed(c: ChainClients, d: D, a: { account: Address }): Promise<bigint> {
  return read(c, d, 'owedTo', [a.account])
}

/** The children of the game's last `Revealed` event (what the challenger chooses among). */
export async function revealedChildren(c: ChainClients, d: Pick<Deployment, 'disputeGame' | 'deployedAtBlock'>, a: { gameId: bigint }): Promise<Hex[]> {
  const logs = (await c.public.getContractEvents({
    address: d.disputeGame, abi: gameAbi(), eventName: 'Revealed', args: { gameId: a.gameId }, fromBlock: BigInt(d.deployedAtBlock),
  } as never)) as unknown as { args: { children: readonly Hex[] } }[]
  const last = logs.at(-1)
  if (!last) throw new RangeError(`game ${a.gameId} has no revealed children yet`)
  return [...last.args.children]
}

/** The chunk of the game's last `ChunkRevealed` event: the provider's words the challenger names an element among. */
export async function revealedChunk(c: ChainClients, d: Pick<Deployment, 'disputeGame' | 'deployedAtBlock'>, a: { gameId: bigint }): Promise<Hex> {
  const logs = (await c.public.getContractEvents({
    address: d.disputeGame, abi: gameAbi(), eventName: 'ChunkRevealed', args: { gameId: a.gameId }, fromBlock: BigInt(d.deployedAtBlock),
  } as never)) as unknown as { args: { chunk: Hex } }[]
  const last = logs.at(-1)
  if (!last) throw new RangeError(`game ${a.gameId} has no revealed chunk yet`)
  return last.args.chunk
}

/** How the game ended (its `Resolved` event), or undefined while it is open. */
export async function resolution(c: ChainClients, d: Pick<Deployment, 'disputeGame' | 'deployedAtBlock'>, a: { gameId: bigint }): Promise<{ providerWon: boolean; why: number } | undefined> {
  const logs = (await c.public.getContractEvents({
    address: d.disputeGame, abi: gameAbi(), eventName: 'Resolved', args: { gameId: a.gameId }, fromBlock: BigInt(d.deployedAtBlock),
  } as never)) as unknown as { args: { providerWon: boolean; why: number } }[]
  const r = logs.at(-1)
  return r && { providerWon: r.args.providerWon, why: Number(r.args.why) }
}
