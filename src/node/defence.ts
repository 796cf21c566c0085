/**
 * The provider's defence (docs/NETWORK.md "Roles in a node"): finds every game opened on this
 * provider's jobs (DisputeOpened, then the game's provider), reads the disputed item from the
 * opening transaction, rebuilds the TraceProvider of what it committed from its stored transcript
 * (the engine's replay; a provider started with `--cheat` plays the same lie it signed, `cheat`),
 * and answers every position with the one defender (src/dispute/players/defender.ts), one move
 * per tick; it calls `timeout` on a challenger whose clock ran out and records how each game ended.
 *
 * Games live in the store's `disputes` sublevel (by game id) from the moment they are seen; a
 * restarted defence finds them there and in the chain's events after its persisted cursor, and
 * plays on from the game's state on chain (a move is never repeated: each `act` reads the phase).
 *
 * It also answers the availability challenges on this provider's jobs (Audits): the prompt and
 * sampling parameters of its stored transcript, posted on chain before the challenge's deadline.
 * Challenges to answer are kept in `meta` (`availability:<batchId>:<index>`) until answered.
 */
import { type Hex, toHex } from 'viem'
import { CHALLENGE, answerAvailability, challengeOf } from '../chain/actions/audits.js'
import { getGame, isOver, isProviderTurn, timeout } from '../chain/actions/disputeGame.js'
import { getBatch } from '../chain/actions/settlement.js'
import { ContractRevertError, type Deployment, requestDigest } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import { type CheatKind, CheatNotApplicableError } from '../dispute/cheats.js'
import { samplingArg } from '../dispute/machine/openings.js'
import { type Player, createDefender, gameCfg } from '../dispute/players/defender.js'
import type { TraceProvider } from '../dispute/traceProvider.js'
import { type DisputeRecord, type JobTranscript, type Models, ignoreRace, replayedTrace, serviceStore } from './auditor.js'
import { type Store, sortableKey } from './store.js'
import { cheatingTrace } from './cheat.js'
import { type ChainEvent, createChainWatch, gameOutcome, moverOutOfTime, openedItem } from './chainWatch.js'

export type DefenceInit = {
  clients: ChainClients
  deployment: Deployment
  store: Store
  models: Models
  /** The provider's stored transcript of a job, by request digest. */
  transcriptOf: (requestDigest: Hex) => Promise<JobTranscript | undefined>
  /** A provider started with `--cheat KIND`: it defends the lie it signed (node/cheat.ts, deterministic from the request). */
  cheat?: CheatKind
  /** The first block a fresh store follows (default: the deployment's). */
  since?: bigint
  signal?: AbortSignal
}

export type DefenceTick = {
  seen: number
  moves: number
  resolved: number
  /** Availability challenges answered. */
  answered: number
  /** Games or challenges whose step failed this tick (retried next tick). */
  errors: { key: string; error: unknown }[]
}

export type Defence = {
  /** One round: new games on this provider's jobs, one move (or timeout) in every open game. */
  tick(): Promise<DefenceTick>
  dispute(gameId: bigint): Promise<DisputeRecord | undefined>
}

/**
 * The provider's defence service.
 *
 * @example
 *   const defence = createDefence({ clients: provider, deployment: d, store, models, transcriptOf: (digest) => transcripts.get(digest) })
 *   for (let i = 0; i < 100; i++) await defence.tick()
 */
export function createDefence(init: DefenceInit): Defence {
  const { clients: c, deployment: d, models, signal } = init
  const store = serviceStore(init.store)
  const me = c.account.address.toLowerCase()
  const watch = createChainWatch({ clients: c, deployment: d, meta: store.meta, name: 'defence', since: init.since })
  const players = new Map<string, Player>()
  const stuck = new Set<string>()

  // Open games are indexed in meta (`defence:open:<game key>`), written in one batch with the record.
  const OPEN = 'defence:open:'
  const putDispute = (key: string, rec: DisputeRecord) =>
    init.store.batch([store.disputes.putOp(key, rec), rec.state === 'open' ? store.meta.putOp(OPEN + key, 1) : store.meta.delOp(OPEN + key)])

  async function noteGames(events: ChainEvent[]) {
    for (const e of events) {
      if (e.type === 'AvailabilityChallenged') {
        const key = `availability:${e.batchId}:${e.index}`
        if ((await getBatch(c, d, e.batchId)).provider.toLowerCase() === me) await store.meta.put(key, e.requestDigest)
        continue
      }
      if (e.type !== 'DisputeOpened') continue
      const id = e.gameId.toString()
      if (await store.disputes.get(sortableKey(e.gameId))) continue
      const g = await getGame(c, d, { gameId: e.gameId })
      if (g.provider.toLowerCase() !== me) continue
      await putDispute(sortableKey(e.gameId), { gameId: id, role: 'provider', batchId: e.batchId.toString(), jobIndex: Number(e.jobIndex), state: 'open', tx: e.tx })
    }
  }

  /** The defender of a game, or a reason it cannot defend (no transcript, no model). */
  async function playerOf(r: DisputeRecord): Promise<Player | string> {
    const cached = players.get(r.gameId)
    if (cached) return cached
    const item = await openedItem(c, { tx: r.tx! })
    const digest = requestDigest(d.chainId, d.settlement, item.req)
    const model = models.get(item.req.modelRoot)
    if (!model) return `no model ${item.req.modelRoot}`
    const transcript = await init.transcriptOf(digest)
    if (!transcript) return 'no transcript'
    // what it signed: the trace whose root is the claimed one (a --cheat node's lie, or the replay
    // for a job it served honestly: before a restart with --cheat, or one its cheat did not apply to)
    const job = { prompt: transcript.prompt, params: transcript.params, output: transcript.output, seed: item.req.seed }
    const candidates = [() => replayedTrace(model, job, signal)]
    if (init.cheat) candidates.unshift(() => cheatingTrace(model, { ...job, requestDigest: digest }, init.cheat!).provider)
    let trace: TraceProvider | undefined
    for (const make of candidates) {
      try {
        const t = make()
        if (toHex(t.traceTree().root) === item.traceRoot.toLowerCase()) trace = t
      } catch (e) {
        if (!(e instanceof CheatNotApplicableError)) throw e
      }
      if (trace) break
    }
    if (!trace) return 'no trace with the claimed root'
    const p = createDefender({ clients: c, deployment: d, gameId: BigInt(r.gameId), trace, cfg: gameCfg(model, transcript.params) })
    players.set(r.gameId, p)
    if (r.requestDigest !== digest) await update(BigInt(r.gameId), { requestDigest: digest })
    return p
  }

  /** Posts the transcript of a challenged job (what the client signed: prompt token ids, sampling params). */
  async function answer(key: string, digest: Hex, report: DefenceTick): Promise<void> {
    const [, batchId, index] = key.split(':')
    const at = { batchId: BigInt(batchId), index: BigInt(index) }
    const ch = await challengeOf(c, d, at)
    if (ch.status === CHALLENGE.OPEN) {
      const t = await init.transcriptOf(digest)
      if (!t) return // nothing to post: the challenge will slash (kept, in case the transcript turns up)
      const { maxTokens, stop, ...s } = t.params
      await answerAvailability(c, d, { ...at, prompt: t.prompt, sampling: samplingArg({ ...s, seed: 0n }, { maxTokens, stop }) })
      report.answered++
    }
    await store.meta.del(key)
  }

  /** Merges `patch` into a game's record. */
  async function update(gameId: bigint, patch: Partial<DisputeRecord>) {
    const key = sortableKey(gameId)
    const r = await store.disputes.get(key)
    if (r) await putDispute(key, { ...r, ...patch })
  }

  async function play(r: DisputeRecord, report: DefenceTick): Promise<void> {
    const gameId = BigInt(r.gameId)
    const g = await getGame(c, d, { gameId })
    if (isOver(g)) {
      const out = await gameOutcome(c, d, { gameId, account: c.account.address })
      if (!out) return
      await update(gameId, { state: out.providerWon ? 'won' : 'lost', result: { ...out, reward: out.reward.toString() } })
      players.delete(r.gameId)
      report.resolved++
      return
    }
    if (!isProviderTurn(g)) {
      if (await moverOutOfTime(c, g)) {
        await timeout(c, d, { gameId, signal }).catch(ignoreRace)
        report.moves++
      }
      return
    }
    if (stuck.has(r.gameId)) return
    let why: string | undefined
    try {
      const p = await playerOf(r)
      if (typeof p === 'string') why = p
      else if (await p.act(signal)) report.moves++
    } catch (e) {
      if (!(e instanceof ContractRevertError)) throw e
      why = e.errorName // a cheater's proof the machine refuses: the clock ends the game
    }
    if (why !== undefined) {
      stuck.add(r.gameId)
      await update(gameId, { stuck: why })
    }
  }

  return {
    async tick() {
      signal?.throwIfAborted()
      const report: DefenceTick = { seen: 0, moves: 0, resolved: 0, answered: 0, errors: [] }
      await watch.poll(async (events) => {
        await noteGames(events)
        report.seen += events.filter((e) => e.type === 'DisputeOpened').length
      })
      // one game's or challenge's failure does not hold up the others; it is retried next tick
      const guard = async (key: string, f: () => Promise<void>) => {
        signal?.throwIfAborted()
        try {
          await f()
        } catch (e) {
          if (signal?.aborted) throw e
          report.errors.push({ key, error: e })
        }
      }
      for (const { key, value } of await store.meta.list('availability:')) await guard(key, () => answer(key, value as Hex, report))
      for (const { key: open } of await store.meta.list(OPEN)) {
        const r = await store.disputes.get(open.slice(OPEN.length))
        if (r?.state === 'open') await guard(r.gameId, () => play(r, report))
        else await store.meta.del(open)
      }
      return report
    },
    dispute: (gameId) => store.disputes.get(sortableKey(gameId)),
  }
}
