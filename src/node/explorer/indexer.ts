/**
 * The explorer's indexer: reads the chain (no second copy of the truth) and keeps an in-memory
 * model of what the explorer shows. Each `poll()` reads the logs of Settlement, DisputeGame and
 * Audits from the block after its cursor (the deployment's block at first) to the latest, at most
 * `maxRange` blocks a round, decodes every event, folds it into the model (providers, auditors,
 * jobs, batches, games level by level, audits, economics), then refreshes what events do not carry
 * (stakes, a game's clocks and bonds) with the typed actions, and tells its listeners what changed.
 * The model is rebuilt from the chain on every start; the node's status.json adds peers and offers.
 */
import { type Address, type Hex, decodeEventLog } from 'viem'
import { auditsAbi, disputeGameAbi, settlementAbi } from '#abi'
import { PHASE, WHY, getGame } from '../../chain/actions/disputeGame.js'
import { getStake } from '../../chain/actions/settlement.js'
import { type ClaimItem, type Deployment, requestDigest } from '../../chain/client.js'
import type { ChainClients } from '../../chain/evm/clients.js'
import { claimedItem, openedItem } from '../chainWatch.js'

/** The levels of a game's bisection (DisputeGame's `level`). */
export const LEVELS = ['trace', 'op', 'element', 'micro-step'] as const

export type StakeView = { active: bigint; locked: bigint; unbonding: bigint }

export type ProviderView = {
  address: Address
  models: { modelRoot: Hex; pricePerToken: bigint }[]
  stake: StakeView
  jobs: number
  tokens: number
  earned: bigint
  audits: { valid: number; invalid: number }
  games: { won: number; lost: number; open: number }
  slashed: bigint
  /** 0..1: jobs not lost and audits found valid, over all such outcomes (1 with none yet). */
  reputation: number
}

export type AuditorView = {
  address: Address
  registered: boolean
  weightGwei: bigint
  stake: StakeView
  drawn: number
  committed: number
  revealed: { valid: number; invalid: number }
  fees: bigint
  games: { won: number; lost: number }
}

export type AuditView = { auditor: Address; why: number; attempt: number; state: 'drawn' | 'committed' | 'valid' | 'invalid' | 'settled' | 'forfeited'; fee: bigint }

export type JobView = {
  id: string
  batchId: bigint
  index: number
  /** streaming: reserved, not claimed yet; claimed: in a pending batch; settled: its batch finalized; disputed: under an open game; lost: the provider lost it. */
  state: 'streaming' | 'claimed' | 'settled' | 'disputed' | 'lost'
  provider: Address
  client: Address
  requestDigest?: Hex
  modelRoot?: Hex
  pricePerToken?: bigint
  nPrompt?: number
  nOutput?: number
  amount: bigint
  receipt?: { outputRoot: Hex; traceRoot: Hex; nLayer: number; leaf: Hex; nonce: bigint; seed: bigint; paramsHash: Hex; promptRoot: Hex }
  block: bigint
  time: number
  tx: Hex
  audits: AuditView[]
  games: bigint[]
}

export type RoundView = { index: bigint; children: Hex[]; chosen?: { index: bigint; depthLeft: number } }
/** One level of a game: its rounds; `pre` the agreed state revealed; `expanded` the level's own tree (the provider's expansion into it); `op`/`element` what was entered or named there. */
export type LevelView = { level: number; name: string; rounds: RoundView[]; pre?: Hex; expanded?: { root: Hex; depth: number; lastLeaf: bigint }; op?: { op: bigint; slotRoot: Hex; elements: bigint }; element?: { op: bigint; elem: bigint } }
export type SlashView = { account: Address; amount: bigint; beneficiary: Address; reward: bigint; burned: bigint; block: bigint }

export type GameView = {
  id: bigint
  batchId: bigint
  jobIndex: bigint
  jobId: string
  provider?: Address
  challenger: Address
  openedAt: number
  levels: LevelView[]
  moves: { move: string; block: bigint; time: number; tx: Hex }[]
  state: { phase: number; level: number; providerClock: bigint; challengerClock: bigint; lastMove: bigint; bond: bigint; jobAmount: bigint }
  resolved?: { providerWon: boolean; why: number; whyName: string; time: number }
  slashes: SlashView[]
}

/** One point of the economics series: cumulative values at a block. */
export type EconomicsPoint = { block: bigint; time: number; jobs: number; tokens: number; fees: bigint; stake: bigint; slashed: bigint; games: number }

export type Snapshot = {
  chainId: number
  head: bigint
  providers: ProviderView[]
  auditors: AuditorView[]
  jobs: JobView[]
  games: GameView[]
  economics: EconomicsPoint[]
}

/** What changed in a poll (the server pushes it over SSE). */
export type Change = { head: bigint; jobs: string[]; games: string[]; providers: boolean; economics: boolean }

export type Indexer = {
  poll(): Promise<Change | undefined>
  snapshot(): Snapshot
  job(id: string): JobView | undefined
  game(id: bigint): GameView | undefined
  onChange(fn: (c: Change) => void): () => void
  /** Polls every `ms` until `signal` aborts (errors go to `onError`). */
  run(a: { ms: number; signal: AbortSignal; onError?: (e: unknown) => void }): Promise<void>
}

export type IndexerInit = {
  clients: ChainClients
  deployment: Pick<Deployment, 'chainId' | 'settlement' | 'disputeGame' | 'audits' | 'deployedAtBlock'>
  /** Blocks a round reads at most (default 2,000). */
  maxRange?: bigint
  /** Jobs kept (newest), default 2,000; games and economics are kept whole. */
  maxJobs?: number
}

const WHY_NAME: Record<number, string> = Object.fromEntries(Object.entries(WHY).map(([k, v]) => [v, k.toLowerCase().replace('_', ' ')]))
const zeroStake = (): StakeView => ({ active: 0n, locked: 0n, unbonding: 0n })
const lc = (a: string) => a.toLowerCase()

type Decoded = { eventName: string; args: Record<string, unknown> }
type Log = { address: Hex; data: Hex; topics: [Hex, ...Hex[]] | []; blockNumber: bigint; logIndex: number; transactionHash: Hex }

function decode(abi: typeof settlementAbi | typeof disputeGameAbi | typeof auditsAbi, log: Log): Decoded | undefined {
  try {
    return decodeEventLog({ abi, data: log.data, topics: log.topics }) as unknown as Decoded
  } catch {
    return undefined
  }
}

/**
 * An indexer of deployment `d` read through `clients`.
 *
 * @example
 *   const ix = createIndexer({ clients, deployment: d })
 *   await ix.poll()
 *   ix.snapshot().games[0].levels[0].rounds   // the trace level's revealed children and choices
 */
export function createIndexer(init: IndexerInit): Indexer {
  const { clients: c, deployment: d } = init
  const maxRange = init.maxRange ?? 2000n
  const maxJobs = init.maxJobs ?? 2000
  let cursor = BigInt(d.deployedAtBlock) - 1n
  const providers = new Map<string, ProviderView>()
  const auditors = new Map<string, AuditorView>()
  const jobs = new Map<string, JobView>()
  const reserved = new Map<string, JobView>() // by request digest, until claimed
  const batches = new Map<string, { provider: Address; count: number; amount: bigint; finalized: boolean; jobs: string[] }>()
  const games = new Map<string, GameView>()
  const economics: EconomicsPoint[] = []
  const totals = { jobs: 0, tokens: 0, fees: 0n, slashed: 0n, games: 0 }
  const times = new Map<bigint, number>()
  const listeners = new Set<(c: Change) => void>()

  const provider = (a: Address) => {
    let p = providers.get(lc(a))
    if (!p) {
      p = { address: a, models: [], stake: zeroStake(), jobs: 0, tokens: 0, earned: 0n, audits: { valid: 0, invalid: 0 }, games: { won: 0, lost: 0, open: 0 }, slashed: 0n, reputation: 1 }
      providers.set(lc(a), p)
    }
    return p
  }
  const auditor = (a: Address) => {
    let x = auditors.get(lc(a))
    if (!x) {
      x = { address: a, registered: false, weightGwei: 0n, stake: zeroStake(), drawn: 0, committed: 0, revealed: { valid: 0, invalid: 0 }, fees: 0n, games: { won: 0, lost: 0 } }
      auditors.set(lc(a), x)
    }
    return x
  }
  const timeOf = async (block: bigint) => {
    let t = times.get(block)
    if (t === undefined) {
      t = Number((await c.public.getBlock({ blockNumber: block })).timestamp) * 1000
      times.set(block, t)
    }
    return t
  }
  const jobAudit = (batchId: bigint, index: number, who: Address) => {
    const j = jobs.get(`${batchId}-${index}`)
    return j?.audits.filter((a) => lc(a.auditor) === lc(who)).at(-1)
  }

  async function fold(log: Log, e: Decoded, change: Change) {
    const a = e.args
    const at = lc(log.address)
    const time = await timeOf(log.blockNumber)
    const tx = log.transactionHash
    if (at === lc(d.settlement)) {
      switch (e.eventName) {
        case 'Staked': {
          if (Number(a.role) === 1) provider(a.account as Address)
          else auditor(a.account as Address)
          change.providers = true
          return
        }
        case 'Advertised': {
          const p = provider(a.provider as Address)
          const m = p.models.find((x) => x.modelRoot === a.modelRoot)
          if (m) m.pricePerToken = a.pricePerToken as bigint
          else p.models.push({ modelRoot: a.modelRoot as Hex, pricePerToken: a.pricePerToken as bigint })
          change.providers = true
          return
        }
        case 'Reserved': {
          const digest = a.requestDigest as Hex
          const j: JobView = {
            id: `r-${digest.slice(2, 14)}`, batchId: -1n, index: -1, state: 'streaming', provider: a.provider as Address, client: a.client as Address,
            requestDigest: digest, amount: a.amount as bigint, block: log.blockNumber, time, tx, audits: [], games: [],
          }
          reserved.set(lc(digest), j)
          jobs.set(j.id, j)
          change.jobs.push(j.id)
          return
        }
        case 'BatchClaimed': {
          batches.set(String(a.batchId), { provider: a.provider as Address, count: Number(a.count), amount: a.amount as bigint, finalized: false, jobs: [] })
          return
        }
        case 'JobClaimed': {
          const batchId = a.batchId as bigint
          const index = Number(a.index)
          const b = batches.get(String(batchId))
          let item: ClaimItem | undefined
          try {
            item = await claimedItem(c, d, { tx, index, client: a.client as Address, leaf: a.leaf as Hex })
          } catch {
            item = undefined // claimed through another contract: the event's fields only
          }
          const digest = item ? requestDigest(d.chainId, d.settlement, item.req) : undefined
          const streaming = digest ? reserved.get(lc(digest)) : undefined
          if (streaming) {
            jobs.delete(streaming.id)
            reserved.delete(lc(digest!))
            change.jobs.push(streaming.id)
          }
          const id = `${batchId}-${index}`
          const j: JobView = {
            id, batchId, index, state: 'claimed', provider: (b?.provider ?? item?.req.provider) as Address, client: a.client as Address, requestDigest: digest,
            modelRoot: item?.req.modelRoot, pricePerToken: item?.req.pricePerToken, nPrompt: item?.nPrompt, nOutput: item?.nOutput, amount: a.amount as bigint,
            receipt: item && {
              outputRoot: item.outputRoot, traceRoot: item.traceRoot, nLayer: item.nLayer, leaf: a.leaf as Hex, nonce: item.req.nonce, seed: item.req.seed,
              paramsHash: item.req.paramsHash, promptRoot: item.req.promptRoot,
            },
            block: log.blockNumber, time, tx, audits: [], games: [],
          }
          jobs.set(id, j)
          b?.jobs.push(id)
          const p = provider(j.provider)
          p.jobs++
          p.tokens += (item?.nPrompt ?? 0) + (item?.nOutput ?? 0)
          totals.jobs++
          totals.tokens += (item?.nPrompt ?? 0) + (item?.nOutput ?? 0)
          totals.fees += j.amount
          change.jobs.push(id)
          change.economics = change.providers = true
          return
        }
        case 'BatchFinalized': {
          const b = batches.get(String(a.batchId))
          if (!b) return
          b.finalized = true
          provider(b.provider).earned += a.amount as bigint
          for (const id of b.jobs) {
            const j = jobs.get(id)
            if (j && j.state === 'claimed') j.state = 'settled'
            change.jobs.push(id)
          }
          change.providers = true
          return
        }
        case 'Slashed': {
          const s: SlashView = { account: a.account as Address, amount: a.amount as bigint, beneficiary: a.beneficiary as Address, reward: a.reward as bigint, burned: a.burned as bigint, block: log.blockNumber }
          const p = providers.get(lc(s.account))
          if (p) p.slashed += s.amount
          totals.slashed += s.amount
          // the game resolved in this transaction (Resolved follows or precedes in the same tx)
          pendingSlashes.push({ tx, s })
          change.economics = change.providers = true
          return
        }
      }
      return
    }
    if (at === lc(d.disputeGame)) {
      const gid = a.gameId as bigint
      if (e.eventName === 'DisputeOpened') {
        const jobId = `${a.batchId}-${a.jobIndex}`
        let item: ClaimItem | undefined
        try {
          item = await openedItem(c, { tx })
        } catch {
          item = undefined
        }
        const g: GameView = {
          id: gid, batchId: a.batchId as bigint, jobIndex: a.jobIndex as bigint, jobId, provider: (batches.get(String(a.batchId))?.provider ?? item?.req.provider) as Address | undefined,
          challenger: a.challenger as Address, openedAt: time, levels: [], moves: [{ move: 'open', block: log.blockNumber, time, tx }],
          state: { phase: PHASE.REVEAL, level: 0, providerClock: 0n, challengerClock: 0n, lastMove: 0n, bond: 0n, jobAmount: 0n }, slashes: [],
        }
        games.set(String(gid), g)
        totals.games++
        const j = jobs.get(jobId)
        if (j) {
          j.games.push(gid)
          if (j.state !== 'lost') j.state = 'disputed'
          change.jobs.push(jobId)
        }
        if (g.provider) provider(g.provider).games.open++
        change.games.push(String(gid))
        change.economics = change.providers = true
        return
      }
      const g = games.get(String(gid))
      if (!g) return
      g.moves.push({ move: e.eventName, block: log.blockNumber, time, tx })
      change.games.push(String(gid))
      const levelOf = (l: number) => {
        let v = g.levels.find((x) => x.level === l)
        if (!v) {
          v = { level: l, name: LEVELS[l] ?? `level ${l}`, rounds: [] }
          g.levels.push(v)
          g.levels.sort((x, y) => x.level - y.level)
        }
        return v
      }
      switch (e.eventName) {
        case 'Revealed':
          levelOf(Number(a.level)).rounds.push({ index: a.index as bigint, children: [...(a.children as Hex[])] })
          return
        case 'Chosen': {
          const r = levelOf(Number(a.level)).rounds.at(-1)
          if (r) r.chosen = { index: a.index as bigint, depthLeft: Number(a.depthLeft) }
          return
        }
        case 'PreRevealed':
          levelOf(Number(a.level)).pre = a.pre as Hex
          return
        case 'Expanded':
          levelOf(Number(a.level)).expanded = { root: a.root as Hex, depth: Number(a.depth), lastLeaf: a.lastLeaf as bigint }
          return
        case 'OpEntered':
          levelOf(1).op = { op: a.op as bigint, slotRoot: a.slotRoot as Hex, elements: a.elements as bigint }
          return
        case 'ElementNamed':
          levelOf(2).element = { op: a.op as bigint, elem: a.elem as bigint }
          return
        case 'Resolved': {
          const won = a.providerWon as boolean
          const why = Number(a.why)
          g.resolved = { providerWon: won, why, whyName: WHY_NAME[why] ?? String(why), time }
          resolvedTx.set(lc(tx), g)
          if (g.provider) {
            const p = provider(g.provider)
            p.games.open--
            if (why !== WHY.JOB_LOST) won ? p.games.won++ : p.games.lost++
          }
          const ch = auditors.get(lc(g.challenger))
          if (ch && why !== WHY.JOB_LOST) won ? ch.games.lost++ : ch.games.won++
          const j = jobs.get(g.jobId)
          if (j && !won && why !== WHY.JOB_LOST) {
            j.state = 'lost'
            change.jobs.push(j.id)
          } else if (j && j.state === 'disputed' && !j.games.some((x) => x !== gid && !games.get(String(x))?.resolved)) {
            j.state = batches.get(String(j.batchId))?.finalized ? 'settled' : 'claimed'
            change.jobs.push(j.id)
          }
          change.providers = true
          return
        }
      }
      return
    }
    if (d.audits && at === lc(d.audits)) {
      switch (e.eventName) {
        case 'AuditorRegistered': {
          const x = auditor(a.account as Address)
          x.registered = true
          x.weightGwei = a.weightGwei as bigint
          change.providers = true
          return
        }
        case 'AuditorRemoved':
          auditor(a.account as Address).registered = false
          change.providers = true
          return
        case 'AuditorDrawn': {
          const j = jobs.get(`${a.batchId}-${Number(a.index)}`)
          auditor(a.auditor as Address).drawn++
          if (j) {
            j.audits.push({ auditor: a.auditor as Address, why: Number(a.why), attempt: Number(a.attempt), state: 'drawn', fee: 0n })
            change.jobs.push(j.id)
          }
          change.providers = true
          return
        }
        case 'Committed': {
          auditor(a.auditor as Address).committed++
          const x = jobAudit(a.batchId as bigint, Number(a.index), a.auditor as Address)
          if (x) x.state = 'committed'
          change.jobs.push(`${a.batchId}-${Number(a.index)}`)
          return
        }
        case 'Revealed': {
          const valid = a.valid as boolean
          const au = auditor(a.auditor as Address)
          valid ? au.revealed.valid++ : au.revealed.invalid++
          const x = jobAudit(a.batchId as bigint, Number(a.index), a.auditor as Address)
          if (x) {
            x.state = valid ? 'valid' : 'invalid'
            x.fee = a.fee as bigint
          }
          const j = jobs.get(`${a.batchId}-${Number(a.index)}`)
          if (j) {
            const p = provider(j.provider)
            valid ? p.audits.valid++ : p.audits.invalid++
            change.jobs.push(j.id)
          }
          change.providers = true
          return
        }
        case 'AuditSettled': {
          auditor(a.auditor as Address).fees += a.fee as bigint
          const x = jobAudit(a.batchId as bigint, Number(a.index), a.auditor as Address)
          if (x) x.state = 'settled'
          change.jobs.push(`${a.batchId}-${Number(a.index)}`)
          change.providers = true
          return
        }
        case 'AuditForfeited': {
          const x = jobAudit(a.batchId as bigint, Number(a.index), a.auditor as Address)
          if (x) x.state = 'forfeited'
          change.jobs.push(`${a.batchId}-${Number(a.index)}`)
          return
        }
      }
    }
  }

  const pendingSlashes: { tx: Hex; s: SlashView }[] = []
  const resolvedTx = new Map<string, GameView>()

  async function refresh(change: Change) {
    if (change.providers || change.games.length > 0) {
      for (const x of [...providers.values(), ...auditors.values()]) {
        const s = await getStake(c, d, x.address)
        x.stake = { active: s.active, locked: s.locked, unbonding: s.unbonding }
      }
      for (const p of providers.values()) {
        const good = p.jobs - p.games.lost + p.audits.valid
        const all = p.jobs + p.audits.valid + p.audits.invalid
        p.reputation = all === 0 ? 1 : Math.max(0, good) / all
      }
    }
    for (const id of new Set(change.games)) {
      const g = games.get(id)
      if (!g) continue
      const s = await getGame(c, d, { gameId: g.id })
      g.state = { phase: s.phase, level: s.level, providerClock: s.providerClock, challengerClock: s.challengerClock, lastMove: s.lastMove, bond: s.bond, jobAmount: s.jobAmount }
      g.provider ??= s.provider
    }
  }

  function snapshot(): Snapshot {
    return {
      chainId: d.chainId, head: cursor, providers: [...providers.values()], auditors: [...auditors.values()],
      jobs: [...jobs.values()].reverse(), games: [...games.values()].reverse(), economics,
    }
  }

  return {
    snapshot,
    job: (id) => jobs.get(id),
    game: (id) => games.get(String(id)),
    onChange(fn) {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
    async poll() {
      const latest = await c.public.getBlockNumber()
      const from = cursor + 1n
      if (from > latest) return undefined
      const to = latest - from + 1n > maxRange ? from + maxRange - 1n : latest
      const logs = (await c.public.getLogs({ address: [d.settlement, d.disputeGame, ...(d.audits ? [d.audits] : [])], fromBlock: from, toBlock: to })) as unknown as Log[]
      logs.sort((x, y) => (x.blockNumber === y.blockNumber ? x.logIndex - y.logIndex : x.blockNumber < y.blockNumber ? -1 : 1))
      const change: Change = { head: to, jobs: [], games: [], providers: false, economics: false }
      for (const log of logs) {
        const at = lc(log.address)
        const dec = at === lc(d.settlement) ? decode(settlementAbi, log) : at === lc(d.disputeGame) ? decode(disputeGameAbi, log) : decode(auditsAbi, log)
        if (dec) await fold(log, dec, change)
        if (change.economics) {
          const last = economics.at(-1)
          const stake = [...providers.values()].reduce((s, p) => s + p.stake.active, 0n)
          const point = { block: log.blockNumber, time: await timeOf(log.blockNumber), ...totals, stake }
          if (last && last.block === log.blockNumber) economics[economics.length - 1] = point
          else economics.push(point)
        }
      }
      // slashes belong to the game resolved in their transaction
      for (const { tx, s } of pendingSlashes.splice(0)) {
        const g = resolvedTx.get(lc(tx))
        if (g) {
          g.slashes.push(s)
          change.games.push(String(g.id))
        }
      }
      while (jobs.size > maxJobs) jobs.delete(jobs.keys().next().value as string)
      cursor = to
      await refresh(change)
      if (change.economics && economics.length > 0) {
        economics[economics.length - 1].stake = [...providers.values()].reduce((s, p) => s + p.stake.active, 0n)
      }
      change.jobs = [...new Set(change.jobs)]
      change.games = [...new Set(change.games)]
      const changed = change.jobs.length > 0 || change.games.length > 0 || change.providers || change.economics
      if (changed) for (const fn of listeners) fn(change)
      return changed ? change : undefined
    },
    async run(a) {
      while (!a.signal.aborted) {
        try {
          // catch up in bounded rounds, then wait
          for (let i = 0; i < 50 && !a.signal.aborted; i++) {
            const before = cursor
            await this.poll()
            if (cursor === before || cursor >= (await c.public.getBlockNumber())) break
          }
        } catch (e) {
          if (a.signal.aborted) break
          a.onError?.(e)
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, a.ms)
          function done() {
            clearTimeout(t)
            a.signal.removeEventListener('abort', done)
            resolve()
          }
          a.signal.addEventListener('abort', done, { once: true })
        })
      }
    },
  }
}
