/**
 * A bounded poller of the contract events the node's services act on (docs/NETWORK.md "Roles in a
 * node"): each `poll()` reads the logs of Settlement, DisputeGame and Audits from the block after its
 * cursor to the latest block (at most `maxRange` blocks a round), hands them, decoded and in chain
 * order, to the caller, and only then moves its cursor, persisted in the store's `meta` sublevel.
 * A service killed between the two sees the same events again, so its handlers are idempotent
 * (they write records by key). Our chains do not reorganize (the embedded chain, an L2 sequencer's
 * final blocks), so a cursor never goes back.
 *
 * Also here: the claimed item a job's leaf commits and the item a game was opened on, both read
 * from the calldata of the transaction that emitted the event (the events carry only hashes); and
 * the follower of new blocks that refreshes a provider's cached chain view (`followProviderView`).
 */
import { type Address, type Hex, decodeEventLog, decodeFunctionData } from 'viem'
import { auditsAbi, disputeGameAbi, settlementAbi } from '#abi'
import { type Game, isOver, isProviderTurn } from '../chain/actions/disputeGame.js'
import { getBatch } from '../chain/actions/settlement.js'
import { type ClaimItem, type Deployment, batchLeaf, batchTree } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import { BaseError } from '../errors.js'
import { type ChainFacts, createProviderView, type ProviderView, type ServeContext } from './serveJob.js'
import type { Sublevel } from './store.js'


/** Where an event was emitted. */
export type EventAt = { block: bigint; logIndex: number; tx: Hex }

/** The events the services follow, decoded (ids and amounts as bigints). */
export type ChainEvent = EventAt & (
  | { type: 'BatchClaimed'; batchId: bigint; provider: Address; root: Hex; count: number; amount: bigint; finalizesAt: bigint }
  | { type: 'JobClaimed'; batchId: bigint; index: number; client: Address; nonce: bigint; leaf: Hex; amount: bigint }
  | { type: 'Slashed'; account: Address; amount: bigint; beneficiary: Address; reward: bigint; burned: bigint }
  | { type: 'DisputeOpened'; gameId: bigint; batchId: bigint; challenger: Address; jobIndex: bigint }
  /** Any move of a game (Revealed, Chosen, PreRevealed, Expanded, OpEntered, ElementNamed, ChunkRevealed). */
  | { type: 'GameMoved'; gameId: bigint; move: string }
  | { type: 'Resolved'; gameId: bigint; providerWon: boolean; why: number }
  /** Audits: an auditor was drawn for a job (also on a redraw, `attempt` > 0). */
  | { type: 'AuditorDrawn'; batchId: bigint; index: number; auditor: Address; why: number; attempt: number; commitDeadline: bigint }
  /** Audits: a job's transcript must be posted on chain before `deadline` (its provider is slashed otherwise). */
  | { type: 'AvailabilityChallenged'; batchId: bigint; index: number; challenger: Address; requestDigest: Hex; deadline: bigint }
)

/** A transaction's calldata is not the call the service expected (a claim or an open through another contract). */
export class UnexpectedCalldataError extends BaseError {
  override name = 'UnexpectedCalldataError'
}

export type ChainWatch = {
  /** The last block whose events were handed over. */
  cursor(): Promise<bigint>
  /**
   * One round: the events after the cursor (up to `maxRange` blocks), handed to `handle`, then the
   * cursor moved past them. Returns the events.
   */
  poll(handle?: (events: ChainEvent[]) => Promise<void>): Promise<ChainEvent[]>
}

export type ChainWatchInit = {
  clients: ChainClients
  deployment: Pick<Deployment, 'settlement' | 'disputeGame' | 'audits' | 'deployedAtBlock'>
  /** The store's `meta` sublevel: the cursor lives at `watch:<name>`. */
  meta: Sublevel<unknown>
  /** One cursor per service sharing a store. */
  name: string
  /** Blocks a round reads at most (default 2,000). */
  maxRange?: bigint
  /** The first block a fresh cursor reads (default: the deployment's block, so a new node catches up on everything). */
  since?: bigint
}

const GAME_MOVES = new Set(['Revealed', 'Chosen', 'PreRevealed', 'Expanded', 'OpEntered', 'ElementNamed', 'ChunkRevealed'])
const SETTLEMENT_EVENTS = new Set(['BatchClaimed', 'JobClaimed', 'Slashed'])
const AUDITS_EVENTS = new Set(['AuditorDrawn', 'AvailabilityChallenged'])

type Decoded = { eventName: string; args: Record<string, unknown> }

function decode(abi: typeof settlementAbi | typeof disputeGameAbi | typeof auditsAbi, log: { data: Hex; topics: [Hex, ...Hex[]] | [] }): Decoded | undefined {
  try {
    return decodeEventLog({ abi, data: log.data, topics: log.topics }) as unknown as Decoded
  } catch {
    return undefined // an event of this contract the services do not follow, or another contract's
  }
}

function toEvent(d: Decoded, at: EventAt): ChainEvent | undefined {
  const a = d.args
  switch (d.eventName) {
    case 'BatchClaimed':
      return { ...at, type: 'BatchClaimed', batchId: a.batchId as bigint, provider: a.provider as Address, root: a.root as Hex, count: Number(a.count), amount: a.amount as bigint, finalizesAt: a.finalizesAt as bigint }
    case 'JobClaimed':
      return { ...at, type: 'JobClaimed', batchId: a.batchId as bigint, index: Number(a.index), client: a.client as Address, nonce: a.nonce as bigint, leaf: a.leaf as Hex, amount: a.amount as bigint }
    case 'Slashed':
      return { ...at, type: 'Slashed', account: a.account as Address, amount: a.amount as bigint, beneficiary: a.beneficiary as Address, reward: a.reward as bigint, burned: a.burned as bigint }
    case 'DisputeOpened':
      return { ...at, type: 'DisputeOpened', gameId: a.gameId as bigint, batchId: a.batchId as bigint, challenger: a.challenger as Address, jobIndex: a.jobIndex as bigint }
    case 'Resolved':
      return { ...at, type: 'Resolved', gameId: a.gameId as bigint, providerWon: a.providerWon as boolean, why: Number(a.why) }
    case 'AuditorDrawn':
      return {
        ...at, type: 'AuditorDrawn', batchId: a.batchId as bigint, index: Number(a.index), auditor: a.auditor as Address, why: Number(a.why),
        attempt: Number(a.attempt), commitDeadline: a.commitDeadline as bigint,
      }
    case 'AvailabilityChallenged':
      return {
        ...at, type: 'AvailabilityChallenged', batchId: a.batchId as bigint, index: Number(a.index), challenger: a.challenger as Address,
        requestDigest: a.requestDigest as Hex, deadline: a.deadline as bigint,
      }
    default:
      return GAME_MOVES.has(d.eventName) ? { ...at, type: 'GameMoved', gameId: a.gameId as bigint, move: d.eventName } : undefined
  }
}

/**
 * A watcher of Settlement's and DisputeGame's events with its cursor in `meta`.
 *
 * @example
 *   const watch = createChainWatch({ clients, deployment: d, meta: store.meta, name: 'auditor' })
 *   await watch.poll(async (events) => { for (const e of events) if (e.type === 'JobClaimed') await note(e) })
 */
export function createChainWatch(init: ChainWatchInit): ChainWatch {
  const { clients: c, deployment: d, meta, name } = init
  const key = `watch:${name}`
  const maxRange = init.maxRange ?? 2000n
  const cursor = async () => {
    const v = await meta.get(key)
    return v === undefined ? (init.since ?? BigInt(d.deployedAtBlock)) - 1n : BigInt(v as string)
  }
  return {
    cursor,
    async poll(handle) {
      const from = (await cursor()) + 1n
      const latest = await c.public.getBlockNumber()
      if (from > latest) return []
      const to = latest - from + 1n > maxRange ? from + maxRange - 1n : latest
      const logs = await c.public.getLogs({ address: [d.settlement, d.disputeGame, ...(d.audits ? [d.audits] : [])], fromBlock: from, toBlock: to })
      const events: ChainEvent[] = []
      for (const log of logs) {
        const at = log.address.toLowerCase()
        const dec = at === d.settlement.toLowerCase() ? decode(settlementAbi, log) : at === d.disputeGame.toLowerCase() ? decode(disputeGameAbi, log) : decode(auditsAbi, log)
        // Settlement's and Audits' other events (Revealed is also an Audits event) are not followed
        if (!dec || (at === d.settlement.toLowerCase() && !SETTLEMENT_EVENTS.has(dec.eventName))) continue
        if (at === d.audits?.toLowerCase() && !AUDITS_EVENTS.has(dec.eventName)) continue
        const e = toEvent(dec, { block: log.blockNumber, logIndex: log.logIndex, tx: log.transactionHash })
        if (e) events.push(e)
      }
      events.sort((x, y) => (x.block === y.block ? x.logIndex - y.logIndex : x.block < y.block ? -1 : 1))
      if (handle) await handle(events)
      await meta.put(key, to.toString())
      return events
    },
  }
}

/**
 * The item of job `index` as the claim transaction `tx` carried it (Settlement.claimBatch's
 * calldata), checked against the job's leaf in the batch (`leaf`, from JobClaimed).
 */
export async function claimedItem(c: ChainClients, d: Pick<Deployment, 'settlement' | 'chainId'>, a: { tx: Hex; index: number; client: Address; leaf: Hex }): Promise<ClaimItem> {
  const t = await c.public.getTransaction({ hash: a.tx })
  let item: ClaimItem | undefined
  try {
    const call = decodeFunctionData({ abi: settlementAbi, data: t.input })
    if (call.functionName === 'claimBatch') item = (call.args[0] as readonly ClaimItem[])[a.index]
  } catch {
    // not a direct call of claimBatch
  }
  if (!item || batchLeaf(d.chainId, d.settlement, item, a.client) !== a.leaf) {
    throw new UnexpectedCalldataError(`transaction ${a.tx} does not carry job ${a.index} of its batch`)
  }
  return item
}

/** The item a game was opened on (DisputeGame.open's calldata in transaction `tx`). */
export async function openedItem(c: ChainClients, a: { tx: Hex }): Promise<ClaimItem> {
  const t = await c.public.getTransaction({ hash: a.tx })
  try {
    const call = decodeFunctionData({ abi: disputeGameAbi, data: t.input })
    if (call.functionName === 'open') return call.args[2] as ClaimItem
  } catch {
    // not a direct call of open
  }
  throw new UnexpectedCalldataError(`transaction ${a.tx} is not a call of DisputeGame.open`)
}

/** Job `index` of batch `batchId` as its claim's JobClaimed event tells it, with the batch's provider. */
export async function claimedJob(c: ChainClients, d: Pick<Deployment, 'settlement' | 'disputeGame' | 'deployedAtBlock'>, a: { batchId: bigint; index: number }) {
  const logs = await c.public.getContractEvents({ address: d.settlement, abi: settlementAbi, eventName: 'JobClaimed', args: { batchId: a.batchId }, fromBlock: BigInt(d.deployedAtBlock) })
  const l = logs.find((x) => Number(x.args.index) === a.index)
  if (!l) throw new RangeError(`no JobClaimed event for job ${a.index} of batch ${a.batchId}`)
  const provider = (await getBatch(c, d, a.batchId)).provider
  return { provider, client: l.args.client as Address, leaf: l.args.leaf as Hex, amount: l.args.amount as bigint, tx: l.transactionHash, block: l.blockNumber }
}

/** The proof of job `index` under its batch root, from the batch's JobClaimed events (all in its claim's block). */
export async function batchProof(c: ChainClients, d: Pick<Deployment, 'settlement'>, a: { batchId: bigint; index: number; block: bigint }): Promise<Hex[]> {
  const logs = await c.public.getContractEvents({ address: d.settlement, abi: settlementAbi, eventName: 'JobClaimed', args: { batchId: a.batchId }, fromBlock: a.block, toBlock: a.block })
  const leaves: Hex[] = []
  for (const l of logs) leaves[Number(l.args.index)] = l.args.leaf as Hex
  if (leaves.length === 0 || leaves.includes(undefined as never)) throw new RangeError(`batch ${a.batchId} has no complete JobClaimed events in block ${a.block}`)
  return batchTree(leaves).proof(a.index)
}

/** A game's end as the chain recorded it: who won, why, and the slash reward `account` received in the resolving transaction. */
export async function gameOutcome(c: ChainClients, d: Pick<Deployment, 'settlement' | 'disputeGame' | 'deployedAtBlock'>, a: { gameId: bigint; account: Address }): Promise<{ providerWon: boolean; why: number; reward: bigint } | undefined> {
  const logs = await c.public.getContractEvents({ address: d.disputeGame, abi: disputeGameAbi, eventName: 'Resolved', args: { gameId: a.gameId }, fromBlock: BigInt(d.deployedAtBlock) })
  const r = logs.at(-1)
  if (!r) return undefined
  const receipt = await c.public.getTransactionReceipt({ hash: r.transactionHash })
  let reward = 0n
  for (const log of receipt.logs) {
    if (log.address.toLowerCase() !== d.settlement.toLowerCase()) continue
    const e = decode(settlementAbi, log)
    if (e?.eventName === 'Slashed' && (e.args.beneficiary as Address).toLowerCase() === a.account.toLowerCase()) reward += e.args.reward as bigint
  }
  return { providerWon: r.args.providerWon as boolean, why: Number(r.args.why), reward }
}

/** Whether the side to move in `g` has spent its whole clock at the latest block (then anyone may call `timeout`). */
export async function moverOutOfTime(c: ChainClients, g: Pick<Game, 'phase' | 'lastMove' | 'providerClock' | 'challengerClock'>): Promise<boolean> {
  if (isOver(g)) return false
  const now = (await c.public.getBlock({ blockTag: 'latest' })).timestamp
  return now - g.lastMove > (isProviderTurn(g) ? g.providerClock : g.challengerClock)
}

/**
 * Calls `tick` every `pollMs` until `signal` aborts (a tick's error goes to `onError`, and the loop
 * goes on): the loop of a node's role.
 */
export async function runEvery(tick: () => Promise<unknown>, a: { pollMs: number; signal: AbortSignal; onError?: (e: unknown) => void }): Promise<void> {
  while (!a.signal.aborted) {
    try {
      await tick()
    } catch (e) {
      if (a.signal.aborted) break
      a.onError?.(e)
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, a.pollMs)
      function done() {
        clearTimeout(t)
        a.signal.removeEventListener('abort', done)
        resolve()
      }
      a.signal.addEventListener('abort', done, { once: true })
    })
  }
}

/**
 * Calls `onBlock(n)` whenever the chain's latest block number is higher than at the last call
 * (one `eth_blockNumber` every `pollMs`; several blocks between two polls are one call), until
 * `signal` aborts. A failed poll or handler goes to `onError` and is retried at the next poll (the
 * block counts as seen only once its handler succeeded).
 */
export function followBlocks(c: ChainClients, a: { pollMs: number; signal: AbortSignal; onBlock: (block: bigint) => Promise<void>; onError?: (e: unknown) => void }): Promise<void> {
  let seen = -1n
  return runEvery(
    async () => {
      const n = await c.public.getBlockNumber({ cacheTime: 0 })
      if (n <= seen) return
      await a.onBlock(n)
      seen = n
    },
    { pollMs: a.pollMs, signal: a.signal, onError: a.onError },
  )
}

/** How often a provider's chain view is read when no block comes at all (the fallback timer), ms. */
export const VIEW_FALLBACK_MS = 30_000

/**
 * The provider's cached chain view (serveJob's ProviderView: its stake, locked stake, unclaimed wei
 * and the latest block's time) refreshed on every new block instead of on a fast timer: whatever
 * changes those (a stake, an unstake, a claim locking stake, a finalization releasing it, a slash)
 * is a transaction, so a block; and the block's time is one of the facts. On a quiet chain the
 * view costs one `eth_blockNumber` per `pollMs`; the slow timer (`fallbackMs`) is there in case
 * the block follower fails for a while. `onFacts` hears each refresh (the node re-signs its offer
 * when the active stake moved).
 *
 * @example
 *   const { view, done } = followProviderView(ctx, { pollMs: 250, signal })
 *   const facts = await view.facts()
 */
export function followProviderView(
  ctx: Pick<ServeContext, 'clients' | 'deployment' | 'unclaimed'>,
  a: { pollMs: number; signal: AbortSignal; fallbackMs?: number; onFacts?: (f: ChainFacts) => void | Promise<void>; onError?: (e: unknown) => void },
): { view: ProviderView; done: Promise<void> } {
  const fallbackMs = a.fallbackMs ?? VIEW_FALLBACK_MS
  // facts() waits for a read only past twice the fallback: between blocks nothing it caches changes
  const view = createProviderView(ctx, { refreshMs: fallbackMs, maxAgeMs: 2 * fallbackMs, signal: a.signal })
  const done = followBlocks(ctx.clients, {
    pollMs: a.pollMs, signal: a.signal, onError: a.onError,
    onBlock: async () => {
      const f = await view.refresh()
      await a.onFacts?.(f)
    },
  })
  return { view, done }
}
