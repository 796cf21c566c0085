/**
 * The provider's claims book (docs/NETWORK.md "Roles in a node", "Store"): served and acknowledged
 * jobs wait here until they are claimed on chain in a batch (`claimBatch`), the batch is finalized
 * once its challenge window has passed (`finalizeBatch`), and what the provider is owed is
 * withdrawn (`withdrawOwed`). `tick(now)` does one bounded round of that work; the node's loop
 * calls it every poll and tests drive it directly.
 *
 * Claiming is the state change that must not happen twice or be lost. So, in the store's `claims`
 * sublevel, the items of a batch are first written as an intent (taken out of the pending set in
 * the same atomic write), then sent; the batch is recorded (and the intent deleted) once mined.
 * A node killed in between finds the intent on start and asks the chain what became of each item
 * before anything is sent again (`classify`): a live reservation or an unused nonce means
 * unclaimed; a used nonce is looked up among the `JobClaimed` events of the provider's batches
 * since the intent (the same leaf: claimed, record that batch; another leaf: the nonce went to
 * another claim, skip). The contract refuses a second payment of a nonce anyway; the book's job is
 * to know which batch paid it.
 *
 * An item the chain refuses (expired request, a bad acknowledgement, an escrow that cannot pay...)
 * is skipped with the reason recorded; it never blocks the items queued behind it: a batch that
 * reverts is retried without the items that revert on their own. A batch whose exposure the
 * unlocked stake cannot cover is cut to the part that fits; the rest waits for finalized batches
 * to unlock stake.
 *
 * Records (claims sublevel):
 *   job:<digest>       the job's state: pending | claiming | claimed (batchId) | skipped (reason)
 *   pending:<digest>   an item waiting for a batch, with its client and the time it was added
 *   intent:<n>         the items of a batch being claimed, and the block before it was sent
 *   open:<batchId>     a claimed batch not yet finalized; final:<batchId> once it is
 *   skipped:<digest>   an item the chain refused, with the refusal and the item itself
 *   stats              counters for `node status`
 *
 * @example
 *   const claimer = createClaimer({ store, clients: provider, deployment: d, maxBatch: 16, maxAgeSec: 300 })
 *   await claimer.add(claimItemOf(transcript))   // once the client's acknowledgement is in
 *   setInterval(() => claimer.tick(), 5_000)
 */
import { type Address, getAddress, type Hex, parseEventLogs, zeroAddress } from 'viem'
import type { settlementAbi } from '#abi'
import { getArtifact } from '../chain/artifacts.js'
import { claimBatch, exposureOf, finalizeBatch, getBatch, getReservation, getStake, withdrawOwed } from '../chain/actions/settlement.js'
import { batchLeaf, type ClaimItem, ContractRevertError, decodeRevert, type Deployment, jobAmount, read, requestDigest } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import { BaseError } from '../errors.js'
import { type BatchOp, type Schema, type Store, sortableKey } from './store.js'
import { recoverRequestSigner } from './transcript.js'

export type ClaimerInit = {
  store: Store
  /** The provider's clients: its account claims, finalizes and withdraws. */
  clients: ChainClients
  deployment: Pick<Deployment, 'settlement' | 'disputeGame' | 'deployedAtBlock' | 'params'>
  /** Claim when this many items wait (default 16); also the largest batch. */
  maxBatch?: number
  /** Claim when the oldest waiting item is this old, in seconds of `now` (default 300). */
  maxAgeSec?: number
  /** Claim at once an item whose request expires within this many seconds of chain time (default 600). */
  expiryMarginSec?: number
  /** Withdraw what is owed once it reaches this many wei (default 1: anything). */
  withdrawAbove?: bigint
  /** Batches finalized per tick at most (default 8). */
  maxFinalize?: number
  /** Unix seconds; `add` stamps items with it and `tick()` defaults to it (default: the wall clock). */
  clock?: () => number
  /**
   * Called after an intent is written and before its transaction is sent: a test throws here to
   * play a crash between the two (or sends the claim itself, then throws, to play one after it).
   */
  onIntent?: (intent: Intent) => Promise<void>
}

/** A job waiting to be claimed. */
export type Pending = { digest: Hex; client: Address; item: ClaimItem; addedAt: number }
/** The items of a batch being claimed; `fromBlock`: the chain's block before it was sent. */
export type Intent = { n: number; items: Pending[]; fromBlock: bigint; at: number }
export type JobState =
  | { state: 'pending' | 'claiming'; at: number }
  | { state: 'claimed'; batchId: bigint; at: number }
  | { state: 'skipped'; reason: string; at: number }
/** A claimed batch: `amount` is what it holds (net of the audit premium), `paid` what its finalization paid. */
export type BatchRecord = { batchId: bigint; digests: Hex[]; amount: bigint; finalizesAt: bigint; paid?: bigint; finalizedAt?: number }
export type ClaimStats = { claimedJobs: number; claimedBatches: number; finalizedBatches: number; skipped: number; earned: bigint; withdrawn: bigint; nextIntent: number }

/** What `node status` shows of the claims book. */
export type ClaimStatus = {
  /** Items waiting for a batch or in one being sent, and what they will bill. */
  pending: number
  pendingWei: bigint
  /** Jobs claimed on chain so far, and batches claimed but not finalized. */
  claimed: number
  openBatches: number
  finalized: number
  /** Wei paid to the provider by finalized batches, and withdrawn. */
  earned: bigint
  withdrawn: bigint
  skipped: number
  /** Why the last round could not claim, if it could not (a batch-wide refusal: stake too low...). */
  blocked?: string
}

/** What one `tick` did. */
export type TickReport = {
  claimed: { batchId: bigint; count: number; amount: bigint }[]
  /** Items found already claimed in a batch of this provider (recovered, or replayed), not sent again. */
  recovered: { digest: Hex; batchId: bigint }[]
  skipped: { digest: Hex; reason: string }[]
  finalized: { batchId: bigint; paid: bigint }[]
  withdrawn: bigint
  blocked?: string
}

export type Claimer = {
  /** Queues an acknowledged job for claiming (idempotent by request digest; a later acknowledgement of more tokens replaces a waiting one). */
  add(item: ClaimItem): Promise<void>
  /** One bounded round: recover intents, claim if a trigger fires, finalize due batches, withdraw. */
  tick(now?: number): Promise<TickReport>
  status(): Promise<ClaimStatus>
  /** Items skipped, with why. */
  skipped(): Promise<{ digest: Hex; reason: string }[]>
  /** What the waiting items will bill (wei): serveJob's `unclaimed`, whose exposure new work must leave room for. */
  unclaimedWei(): Promise<bigint>
  /** The state of one job by request digest. */
  job(digest: Hex): Promise<JobState | undefined>
}

/** A claim item the provider cannot claim at all: another provider's, or unsigned. */
export class NotClaimableError extends BaseError {
  override name = 'NotClaimableError'
}

const REQ = ['seed', 'nonce', 'expiry', 'pricePerToken'].map((k) => `req.${k}`)
/** Where the claims sublevel's records keep bigints. */
export const CLAIMS_SCHEMA: Schema = {
  bigint: [
    ...REQ.map((p) => `item.${p}`), ...REQ.map((p) => `items[].item.${p}`), 'fromBlock',
    'batchId', 'amount', 'finalizesAt', 'paid', 'earned', 'withdrawn',
  ],
}
/** Settlement's ABI at run time (build/contracts.json; the generated file gives only its type). */
const abi = () => getArtifact('Settlement').abi as unknown as typeof settlementAbi

/** Contract errors that refuse the whole batch whatever its items: claiming fewer cannot help (except StakeLocked: a smaller batch may fit). */
const BATCH_WIDE = new Set(['WrongRole', 'StakeTooLow', 'StakeLocked', 'EmptyBatch'])

const EMPTY_STATS: ClaimStats = { claimedJobs: 0, claimedBatches: 0, finalizedBatches: 0, skipped: 0, earned: 0n, withdrawn: 0n, nextIntent: 0 }

type Verdict = { kind: 'claimable' } | { kind: 'mine'; batchId: bigint } | { kind: 'skip'; reason: string }

/** The claims book of the provider `init.clients.account` over `init.store`. */
export function createClaimer(init: ClaimerInit): Claimer {
  const { store, clients: c, deployment: d } = init
  const me = getAddress(c.account.address)
  const chainId = c.chain.id
  const maxBatch = init.maxBatch ?? 16
  const maxAgeSec = init.maxAgeSec ?? 300
  const expiryMargin = BigInt(init.expiryMarginSec ?? 600)
  const withdrawAbove = init.withdrawAbove ?? 1n
  const maxFinalize = init.maxFinalize ?? 8
  const clock = init.clock ?? (() => Math.floor(Date.now() / 1000))
  const sp = d.params.settlement
  const deployedAt = BigInt(d.deployedAtBlock)
  const risk = { auditBps: Number(sp.auditBps), rewardBps: Number(sp.rewardBps), collusionBps: Number(sp.collusionBps ?? 0) }
  const claims = store.sublevel<unknown>('claims', CLAIMS_SCHEMA)
  const get = <T>(key: string) => claims.get(key) as Promise<T | undefined>
  const put = <T>(key: string, v: T) => claims.putOp(key, v)
  let blocked: string | undefined

  // Store writes of add and tick are short critical sections, one at a time; chain calls are outside them.
  let lock: Promise<unknown> = Promise.resolve()
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = lock.then(fn, fn)
    lock = run.catch(() => undefined)
    return run
  }
  // One tick at a time (the node's loop and a manual `tick` may overlap).
  let ticking: Promise<TickReport> | undefined

  const stats = async () => ({ ...EMPTY_STATS, ...(await get<ClaimStats>('stats')) })
  const list = async <T>(prefix: string) => (await claims.list(prefix)).map((r) => r.value as T)

  // ---------------------------------------------------------------- chain reads

  async function isClaimed(client: Address, nonce: bigint): Promise<boolean> {
    return read<boolean>(c, d.settlement, 'Settlement', 'isClaimed', [client, nonce])
  }

  /**
   * What became of a job on chain: still claimable (a live reservation, or an unused nonce), or
   * claimed by this provider with exactly this leaf (which batch), or not claimable (why).
   */
  async function classify(p: Pending, fromBlock: bigint, chainNow: bigint): Promise<Verdict> {
    const reservation = await getReservation(c, d, p.digest)
    if (reservation.client === zeroAddress && (await isClaimed(p.client, p.item.req.nonce))) {
      const batchId = await findMine(p, fromBlock)
      if (batchId !== undefined) return { kind: 'mine', batchId }
      return { kind: 'skip', reason: 'nonce already used: claimed in another claim, or its reservation was released' }
    }
    // the claim reverts RequestExpired once block.timestamp > expiry; the next block is at least now + 1
    if (p.item.req.expiry <= chainNow) return { kind: 'skip', reason: `request expired at ${p.item.req.expiry} (chain time ${chainNow})` }
    return { kind: 'claimable' }
  }

  /** The batch of this provider, claimed at or after `fromBlock`, whose JobClaimed event is this item's leaf. */
  async function findMine(p: Pending, fromBlock: bigint): Promise<bigint | undefined> {
    const logs = await c.public.getContractEvents({ address: d.settlement, abi: abi(), eventName: 'JobClaimed', args: { client: p.client }, fromBlock, strict: true })
    const leaf = batchLeaf(chainId, d.settlement, p.item, p.client).toLowerCase()
    for (const log of logs) {
      if (log.args.nonce !== p.item.req.nonce || log.args.leaf.toLowerCase() !== leaf) continue
      const b = await getBatch(c, d, log.args.batchId)
      if (getAddress(b.provider) === me) return log.args.batchId
    }
    return undefined
  }

  async function chainTime(): Promise<bigint> {
    return (await c.public.getBlock()).timestamp
  }

  // ---------------------------------------------------------------- store transitions

  /** Ops recording `batchId` as claimed with these items (creating or extending its open record). */
  async function recordClaimed(batchId: bigint, items: Pending[], st: ClaimStats, facts: { amount: bigint; finalizesAt: bigint }) {
    const key = `open:${sortableKey(batchId)}`
    const existing = (await get<BatchRecord>(key)) ?? (await get<BatchRecord>(`final:${sortableKey(batchId)}`))
    const ops = items.flatMap((p) => [put(`job:${p.digest}`, { state: 'claimed', batchId, at: clock() }), claims.delOp(`pending:${p.digest}`)])
    st.claimedJobs += items.length
    if (existing) {
      const digests = [...new Set([...existing.digests, ...items.map((p) => p.digest)])]
      ops.push(put(existing.paid === undefined ? key : `final:${sortableKey(batchId)}`, { ...existing, digests }))
    } else {
      st.claimedBatches++
      ops.push(put(key, { batchId, digests: items.map((p) => p.digest), amount: facts.amount, finalizesAt: facts.finalizesAt } satisfies BatchRecord))
    }
    return ops
  }

  function recordSkipped(items: { p: Pending; reason: string }[], st: ClaimStats) {
    st.skipped += items.length
    return items.flatMap(({ p, reason }) => [put(`job:${p.digest}`, { state: 'skipped', reason, at: clock() }), put(`skipped:${p.digest}`, { digest: p.digest, reason, item: p.item }), claims.delOp(`pending:${p.digest}`)])
  }

  function backToPending(items: Pending[]) {
    return items.flatMap((p) => [put(`pending:${p.digest}`, p), put(`job:${p.digest}`, { state: 'pending', at: clock() })])
  }

  // ---------------------------------------------------------------- one round

  type Sorted = { claimable: Pending[]; mine: Map<bigint, Pending[]>; skip: { p: Pending; reason: string }[] }

  /** Sorts items into claimable, already claimed by this provider (by batch) and skipped. */
  async function sort(items: Pending[], fromBlock: bigint, chainNow: bigint): Promise<Sorted> {
    const s: Sorted = { claimable: [], mine: new Map(), skip: [] }
    const verdicts = await Promise.all(items.map((p) => classify(p, fromBlock, chainNow)))
    items.forEach((p, i) => {
      const v = verdicts[i]
      if (v.kind === 'claimable') s.claimable.push(p)
      else if (v.kind === 'mine') s.mine.set(v.batchId, [...(s.mine.get(v.batchId) ?? []), p])
      else s.skip.push({ p, reason: v.reason })
    })
    return s
  }

  /** What a claimed batch held and when its window closes, from its BatchClaimed event (its books change as it settles). */
  async function batchFacts(batchId: bigint, fromBlock: bigint): Promise<{ amount: bigint; finalizesAt: bigint }> {
    const [ev] = await c.public.getContractEvents({ address: d.settlement, abi: abi(), eventName: 'BatchClaimed', args: { batchId }, fromBlock, strict: true })
    if (ev) return { amount: ev.args.amount, finalizesAt: ev.args.finalizesAt }
    const b = await getBatch(c, d, batchId)
    return { amount: b.amount, finalizesAt: BigInt(b.finalizesAt) }
  }

  /**
   * Writes, in one batch with `ops`, what `sort` found: items claimed by this provider recorded in
   * their batches, skipped items with why, and `again` back among the pending.
   */
  async function settle(s: Sorted, again: Pending[], fromBlock: bigint, ops: BatchOp[], report: TickReport) {
    const facts = new Map<bigint, { amount: bigint; finalizesAt: bigint }>()
    for (const batchId of s.mine.keys()) facts.set(batchId, await batchFacts(batchId, fromBlock))
    await exclusive(async () => {
      const st = await stats()
      const all = [...ops, ...backToPending(again), ...recordSkipped(s.skip, st)]
      for (const [batchId, items] of s.mine) all.push(...(await recordClaimed(batchId, items, st, facts.get(batchId)!)))
      await store.batch([...all, put('stats', st)])
    })
    for (const [batchId, items] of s.mine) for (const p of items) report.recovered.push({ digest: p.digest, batchId })
    for (const { p, reason } of s.skip) report.skipped.push({ digest: p.digest, reason })
  }

  /** Settles intents left by a crash: each item is claimed (record its batch), claimable (back to pending) or skipped. */
  async function recover(report: TickReport, chainNow: bigint) {
    for (const intent of await list<Intent>('intent:')) {
      const s = await sort(intent.items, intent.fromBlock, chainNow)
      await settle(s, s.claimable, intent.fromBlock, [claims.delOp(`intent:${sortableKey(intent.n)}`)], report)
    }
  }

  /** The largest prefix of `items` whose exposure the unlocked stake covers. */
  async function fitStake(items: Pending[]): Promise<Pending[]> {
    const s = await getStake(c, d, me)
    const unlocked = s.active - s.locked
    let total = 0n
    let n = 0
    for (const p of items) {
      if (exposureOf(total + jobAmount(p.item), risk) > unlocked) break
      total += jobAmount(p.item)
      n++
    }
    return items.slice(0, n)
  }

  /**
   * Writes the intent, sends the claim, records the batch. A revert claims nothing: the items that
   * revert alone are skipped (and the rest retried by the caller); if none does, the batch as a
   * whole was refused: a stake or role refusal waits, anything else is tried in halves (two
   * unreserved jobs of one client may each fit its escrow but not together).
   */
  async function claim(items: Pending[], report: TickReport, depth = 0): Promise<'sent' | 'retry' | 'stop'> {
    const stop = (why: string) => {
      blocked = why
      report.blocked = why
      return 'stop' as const
    }
    const fits = await fitStake(items)
    if (fits.length === 0) return stop(`unlocked stake does not cover the exposure of the next job (${jobAmount(items[0].item)} wei)`)
    const fromBlock = await c.public.getBlockNumber()
    const intent = await exclusive(async () => {
      const st = await stats()
      const it: Intent = { n: st.nextIntent, items: fits, fromBlock, at: clock() }
      await store.batch([
        ...fits.flatMap((p) => [claims.delOp(`pending:${p.digest}`), put(`job:${p.digest}`, { state: 'claiming', at: clock() })]),
        put(`intent:${sortableKey(it.n)}`, it), put('stats', { ...st, nextIntent: st.nextIntent + 1 }),
      ])
      return it
    })
    await init.onIntent?.(intent)
    let sent: Awaited<ReturnType<typeof claimBatch>>
    try {
      sent = await claimBatch(c, d, { items: fits.map((p) => p.item) })
    } catch (err) {
      if (!(err instanceof ContractRevertError)) throw err // the intent stays: the next round finds out what happened
      const waits = BATCH_WIDE.has(err.errorName) && err.errorName !== 'StakeLocked'
      const found = waits ? { claimable: fits, mine: new Map(), skip: [] } : await isolate(fits)
      await settle(found, found.claimable, deployedAt, [claims.delOp(`intent:${sortableKey(intent.n)}`)], report)
      // some items were settled for good (skipped, or found claimed): the caller retries the rest
      if (found.skip.length || found.mine.size) return 'retry'
      const why = `claim refused: ${err.errorName}(${err.args.map(String).join(', ')})`
      if (waits || fits.length === 1 || depth >= 8) return stop(why)
      return claim(fits.slice(0, Math.ceil(fits.length / 2)), report, depth + 1)
    }
    // the event, not the simulation's return value: another claim mined first would shift the id
    const [ev] = parseEventLogs({ abi: abi(), logs: sent.receipt.logs, eventName: 'BatchClaimed' })
    const batchId = ev.args.batchId
    await exclusive(async () => {
      const st = await stats()
      const ops = await recordClaimed(batchId, fits, st, { amount: ev.args.amount, finalizesAt: ev.args.finalizesAt })
      await store.batch([claims.delOp(`intent:${sortableKey(intent.n)}`), ...ops, put('stats', st)])
    })
    blocked = undefined
    report.claimed.push({ batchId, count: fits.length, amount: ev.args.amount })
    return 'sent'
  }

  /**
   * Sorts the items of a refused batch by claiming each alone (simulated): those that revert for a
   * reason of their own are skipped with it, except a nonce already used by this provider's own
   * claim (a claim sent before a crash, mined after it): that one is recorded in its batch.
   */
  async function isolate(items: Pending[]): Promise<Sorted> {
    const s: Sorted = { claimable: [], mine: new Map(), skip: [] }
    for (const p of items) {
      const alone = await simulateClaim([p.item])
      if (!alone || BATCH_WIDE.has(alone.errorName)) {
        s.claimable.push(p)
        continue
      }
      if (alone.errorName === 'JobAlreadyClaimed') {
        // used by a claim of ours that is mined (record it), or still in the mempool (not yet in
        // the logs: leave it, the next round's classify sees it mined); a nonce used by anything
        // else is caught by classify before sending
        const batchId = await findMine(p, deployedAt)
        if (batchId !== undefined) s.mine.set(batchId, [...(s.mine.get(batchId) ?? []), p])
        else s.claimable.push(p)
        continue
      }
      s.skip.push({ p, reason: `${alone.errorName}(${alone.args.map(String).join(', ')})` })
    }
    return s
  }

  /** The revert a claim of `items` would meet now, if any. */
  async function simulateClaim(items: ClaimItem[]): Promise<ContractRevertError | undefined> {
    try {
      await c.public.simulateContract({ address: d.settlement, abi: abi(), functionName: 'claimBatch', args: [items], account: c.account })
      return undefined
    } catch (err) {
      const e = decodeRevert(err, 'Settlement', 'claimBatch')
      if (e instanceof ContractRevertError) return e
      throw e
    }
  }

  /** Claims when a trigger fires: enough items, the oldest old enough, or one close to its expiry. */
  async function flush(now: number, chainNow: bigint, report: TickReport) {
    // Once a trigger fires, the round flushes what waits (the items a refused batch gave back
    // included). Bounded: each try claims a batch or removes at least one item for good.
    let due = false
    for (let tries = 0; tries < 4; tries++) {
      const pending = (await list<Pending>('pending:')).sort((a, b) => a.addedAt - b.addedAt)
      if (pending.length === 0) {
        blocked = undefined // nothing waits, nothing is blocked
        return
      }
      const urgent = pending.filter((p) => p.item.req.expiry <= chainNow + expiryMargin)
      due ||= pending.length >= maxBatch || pending[0].addedAt + maxAgeSec <= now || urgent.length > 0
      if (!due) return
      const ordered = [...urgent, ...pending.filter((p) => !urgent.includes(p))].slice(0, maxBatch)
      const s = await sort(ordered, deployedAt, chainNow)
      if (s.skip.length || s.mine.size) await settle(s, [], deployedAt, [], report)
      if (s.claimable.length === 0) continue
      if ((await claim(s.claimable, report)) === 'stop') return
    }
  }

  /** Finalizes the open batches whose window has passed (at most maxFinalize). */
  async function finalizeDue(chainNow: bigint, report: TickReport) {
    const due = (await list<BatchRecord>('open:')).filter((b) => b.finalizesAt <= chainNow).slice(0, maxFinalize)
    for (const b of due) {
      try {
        await finalizeBatch(c, d, { batchId: b.batchId })
      } catch (err) {
        // the next block's time is what counts: a window closing right now is for the next round
        if (err instanceof ContractRevertError && err.errorName === 'ChallengeWindowOpen') continue
        // anyone may finalize: someone did first (BatchNotPending); the batch's books say what was paid
        if (!(err instanceof ContractRevertError && err.errorName === 'BatchNotPending')) throw err
      }
      const now = await getBatch(c, d, b.batchId)
      // what finalization paid: all but the disputed jobs it holds back (they settle with their games)
      const paid = b.amount - now.amount
      await exclusive(async () => {
        const st = await stats()
        st.finalizedBatches++
        st.earned += paid
        const rec: BatchRecord = { ...b, paid, finalizedAt: clock() }
        await store.batch([claims.delOp(`open:${sortableKey(b.batchId)}`), put(`final:${sortableKey(b.batchId)}`, rec), put('stats', st)])
      })
      report.finalized.push({ batchId: b.batchId, paid })
    }
  }

  async function withdraw(report: TickReport) {
    const owed = await read<bigint>(c, d.settlement, 'Settlement', 'owedTo', [me])
    if (owed === 0n || owed < withdrawAbove) return
    const r = await withdrawOwed(c, d)
    const [ev] = parseEventLogs({ abi: abi(), logs: r.receipt.logs, eventName: 'Withdrawn' })
    const amount = ev?.args.amount ?? owed
    await exclusive(async () => {
      const st = await stats()
      await store.batch([put('stats', { ...st, withdrawn: st.withdrawn + amount })])
    })
    report.withdrawn = amount
  }

  async function round(now: number): Promise<TickReport> {
    const report: TickReport = { claimed: [], recovered: [], skipped: [], finalized: [], withdrawn: 0n }
    const chainNow = await chainTime()
    await recover(report, chainNow)
    // finalizing first unlocks the stake of paid batches for this round's claim
    await finalizeDue(chainNow, report)
    await flush(now, chainNow, report)
    await withdraw(report)
    if (blocked) report.blocked = blocked
    return report
  }

  return {
    async add(item) {
      if (getAddress(item.req.provider) !== me) throw new NotClaimableError(`the request names provider ${item.req.provider}, this is ${me}`)
      const digest = requestDigest(chainId, d.settlement, item.req).toLowerCase() as Hex
      let client: Address
      try {
        client = await recoverRequestSigner(chainId, d.settlement, item.req, { r: item.r, vs: item.vs })
      } catch (err) {
        throw new NotClaimableError('the request signature is malformed', { cause: err })
      }
      await exclusive(async () => {
        const state = await get<JobState>(`job:${digest}`)
        if (state && state.state !== 'pending') return
        const waiting = state && (await get<Pending>(`pending:${digest}`))
        // a later acknowledgement of more tokens bills more: it replaces the waiting one, keeping its place in line
        if (waiting && waiting.item.ack.nOutput >= item.ack.nOutput) return
        const p: Pending = { digest, client, item, addedAt: waiting?.addedAt ?? clock() }
        await store.batch([put(`pending:${digest}`, p), put(`job:${digest}`, { state: 'pending', at: clock() })])
      })
    },
    tick(now = clock()) {
      const run = (ticking ?? Promise.resolve()).catch(() => undefined).then(() => round(now))
      ticking = run
      return run
    },
    status,
    async skipped() {
      return (await list<{ digest: Hex; reason: string }>('skipped:')).map(({ digest, reason }) => ({ digest, reason }))
    },
    async unclaimedWei() {
      return (await status()).pendingWei
    },
    job: (digest) => get<JobState>(`job:${digest.toLowerCase()}`),
  }

  async function status(): Promise<ClaimStatus> {
    const st = await stats()
    const waiting = [...(await list<Pending>('pending:')), ...(await list<Intent>('intent:')).flatMap((i) => i.items)]
    return {
      pending: waiting.length, pendingWei: waiting.reduce((s, p) => s + jobAmount(p.item), 0n),
      claimed: st.claimedJobs, openBatches: (await claims.list('open:')).length, finalized: st.finalizedBatches,
      earned: st.earned, withdrawn: st.withdrawn, skipped: st.skipped, ...(blocked ? { blocked } : {}),
    }
  }
}
