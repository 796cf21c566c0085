// The dispute game's state machine fuzzed with seeded random move sequences (issue 7, "Checked by
// tests in CI": nothing reverts that should not; no state lets value out), on real tiny jobs: tiny
// llama Q8_0 (2 layers), 3-token prompts, served, acknowledged, claimed and opened as `tessera
// attack` does (src/dispute/attack.ts serveJob), against cheating providers (op-kind cheats,
// cheats.ts makeCheat) and lying challengers (seeded picks, or a wrong replay of their own).
//
// Each step picks at random: the defender's next move, the challenger's next move (the one pair of
// players, src/dispute/players/, each moving only on its own turn), a bad move for either side
// (wrong phase, wrong mover, wrong bond, a choice or element out of range, children that do not
// hash to the node, a stale or foreign proof, a wrong cfg, a wrong chunk, a wrong pre-state, the
// wrong move kind for the level, `timeout` while the clock runs, an unknown or finished game), a
// clock warp (small, or past the mover's clock) or `timeout`. Checked after every step:
//   1. a player's move on its turn with its clock running succeeds: the honest side's always; the
//      dishonest side may only be refused by a named revert (it then stops moving, and its clock
//      ends the game); with the clock spent, the move reverts ClockExpired;
//   2. a bad move reverts with the custom error the contract's check order gives (UnknownGame,
//      GameOver, WrongPhase, NotYourTurn, ClockExpired, then the move's own check): never an
//      unnamed revert, and getGame and every book are unchanged;
//   3. value is conserved (devnet isConserved over getTotals) and moves only as the step allows: a
//      challenger's move adds exactly the depth bond it owes, a resolution moves the bond (and the
//      slash) as docs/CHAIN.md "Outcome" says, nothing else moves a bond, a stake or escrow;
//   4. the game ends within MAX_STEPS; the honest side wins unless a clock ran out, and then the
//      side whose clock ran out loses;
//   5. once it is over every move and `timeout` revert GameOver, and the players stop.
// Around each game: bad opens (bond, job index, claim, proof: named, no value moved); clock edges
// to the second (evm_setNextBlockTimestamp); every fourth game a second challenger's game on the
// same job, opened first or later (slash reward routing; voided JOB_LOST games return the bond and
// move nothing else; a lost job refuses new games); withdraw pays exactly what is owed, once.
//
// CI plays GAMES_CI games (~30 s on two busy cores, each game 1-6 s). Nightly size (~2 s a game, 150 games ~5 min):
//   TESSERA_GAME_FUZZ=200 npm test -- src/dispute/players/fuzz.test.ts
// Game i plays seed TESSERA_GAME_FUZZ_SEED (default 1) + i. A failure names its seed and its last
// steps; replay it alone with TESSERA_GAME_FUZZ=1 TESSERA_GAME_FUZZ_SEED=<seed>.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Hex } from 'viem'
import { descend, stride } from '../../chain/bisection.js'
import {
  type Cfg, type Game, type MicroStateArg, PHASE, WHY, choose, enterOp, expandElement, expandOps, getGame, getOwed, isOver, isProviderTurn, nameElement, openGame,
  resolution, reveal, revealChunk, revealPre, revealedChildren, stepMicro, stepOp, timeout, withdraw,
} from '../../chain/actions/disputeGame.js'
import { machineOf, weightType } from '../../chain/actions/machine.js'
import { type Totals, getBalances, getStake, getTotals } from '../../chain/actions/settlement.js'
import { ContractRevertError } from '../../chain/client.js'
import { isConserved } from '../../chain/devnet.js'
import type { ChainClients } from '../../chain/evm/clients.js'
import type { JobParams } from '../../trace/receipt.js'
import { createDisputeDevnet } from '../../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../../test/support/disputeJobs.js'
import { type ServedJob, jobSpecOf, serveJob } from '../attack.js'
import { type CheatKind, CheatNotApplicableError, applicable, seededRng, wrongReplay } from '../cheats.js'
import type { DisputeModel } from '../model.js'
import { replayJob } from '../replay.js'
import { type TraceProvider, createReplayTraceProvider } from '../traceProvider.js'
import { type LevelTree, chunkBytes, expansionOf, hex } from '../tree.js'
import { NothingToDisputeError, createChallenger } from './challenger.js'
import { type Player, createDefender, levelOf, microStateArg } from './defender.js'

const GAMES_CI = 12
const GAMES = Number(process.env.TESSERA_GAME_FUZZ ?? 0) || GAMES_CI
const FIRST_SEED = Number(process.env.TESSERA_GAME_FUZZ_SEED ?? 1)
/** Steps after which a game that has not ended fails rule 4 (a played-out game needs ~20 moves, ~100 steps). */
const MAX_STEPS = 600
/** Seconds of clock either side of zero where the next block's timestamp could fall either way: clock-dependent moves are not judged there. */
const MARGIN = 1800n
const Z: Hex = `0x${'0'.repeat(64)}`
const PHASE_NAME: Record<number, string> = Object.fromEntries(Object.entries(PHASE).map(([k, v]) => [v, k]))

// op-kind cheats of the tiny llama (the applicable ones of each job are picked from)
const CHEATS: readonly CheatKind[] = ['embed', 'norm', 'quant32', 'q', 'kr', 'score', 'max', 'exps', 'att', 'wo', 'res', 'silu', 'down', 'logits', 'penalty', 'argmax', 'texp', 'draw']

type Side = 'provider' | 'challenger' | 'stranger'
type Fn = 'reveal' | 'choose' | 'revealPre' | 'expandOps' | 'stepOp' | 'enterOp' | 'revealChunk' | 'nameElement' | 'expandElement' | 'stepMicro'
const FNS: readonly Fn[] = ['reveal', 'choose', 'revealPre', 'expandOps', 'stepOp', 'enterOp', 'revealChunk', 'nameElement', 'expandElement', 'stepMicro']
const PHASE_OF: Record<Fn, number> = {
  reveal: PHASE.REVEAL, choose: PHASE.CHOOSE, revealPre: PHASE.REVEAL_PRE, expandOps: PHASE.EXPAND, stepOp: PHASE.EXPAND, enterOp: PHASE.EXPAND,
  revealChunk: PHASE.CHUNK, nameElement: PHASE.NAME, expandElement: PHASE.EXPAND, stepMicro: PHASE.STEP,
}
const moverOf = (fn: Fn): Side => (fn === 'choose' || fn === 'nameElement' ? 'challenger' : 'provider')

type Scenario = {
  seed: number
  /** The dishonest side: a cheating provider (op kind) or a lying challenger. */
  cheat?: CheatKind
  lie?: 'picks' | 'replay'
  prompt: number[]
  params: JobParams
  /** Per-step weight of a warp past the mover's clock (0: the game is played out unless a side gets stuck). */
  pastRate: number
  /**
   * A second game on the same job by another challenger (the stranger) that never moves: opened
   * before the main game (it flagged the job first: a provider's sock puppet) or after it. It is
   * decided after the main game: voided at once when the provider lost the job, else by the clock.
   */
  crowd?: 'before' | 'after'
}

/** A bad move: `specific` is what its own check reverts with once phase, turn and clock pass. */
type Bad = { what: string; fn: Fn | 'timeout'; sender: Side; specific: string; run: (c: ChainClients) => Promise<unknown>; game?: bigint }

type Snap = { g: Game; t: Totals; stake: bigint; owedP: bigint; owedC: bigint; settleOwedC: bigint; owedX: bigint; settleOwedX: bigint; escrow: bigint }

type Summary = {
  seed: number
  scenario: string
  steps: number
  moves: number
  bad: Record<string, number>
  /** Bad moves by the phase and level they were tried at. */
  at: Record<string, number>
  warps: number
  /** Steps at the exact last second of a clock, or one second past it. */
  edges: number
  timeouts: number
  stuck?: string
  end: { providerWon: boolean; why: number; by: 'move' | 'timeout'; level: number }
  ms: number
}

const greedy = (maxTokens: number, penalty = 1): JobParams => ({ ...GREEDY, repeatPenalty: penalty, repeatLastN: 4, maxTokens, stop: [] })
const sampled = (maxTokens: number): JobParams => ({ temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, repeatPenalty: 1, repeatLastN: 64, maxTokens, stop: [] })

function scenarioOf(model: DisputeModel, seed: number): Scenario {
  const rng = seededRng(seed * 104_729 + 11)
  const vocab = model.config.vocabSize
  const prompt = Array.from({ length: 3 }, () => 3 + Math.floor(rng() * (vocab - 3)))
  const r = rng()
  const params = r < 0.3 ? sampled(3) : r < 0.65 ? greedy(3, 1.3) : greedy(3)
  // every third game a liar (alternately seeded picks and a wrong replay); two in five never warp past a clock (played out unless a side is stuck)
  const liar = seed % 3 === 0
  const pastRate = [0, 0.01, 0, 0.02, 0.004][seed % 5]
  // every fourth game has a second challenger on the job
  const crowd = seed % 4 === 2 ? (seed % 8 === 2 ? 'before' : 'after') : undefined
  if (liar) return { seed, lie: seed % 2 ? 'picks' : 'replay', prompt, params, pastRate, crowd }
  const spec = jobSpecOf(model, { prompt, params, seed: BigInt(seed) })
  const honest = replayJob(model.tf, spec)
  const kinds = CHEATS.filter((k) => applicable(model, spec, honest, k))
  return { seed, cheat: kinds[Math.floor(rng() * kinds.length)], prompt, params, pastRate, crowd }
}

const describeScenario = (s: Scenario) =>
  `${s.cheat ? `cheat ${s.cheat}` : `liar (${s.lie})`}${s.crowd ? `, a second game ${s.crowd}` : ''}, prompt [${s.prompt}], ${s.params.temperature ? 'sampled' : `greedy penalty ${s.params.repeatPenalty}`}, past-clock rate ${s.pastRate}`

const eqList = (a: readonly Hex[], b: readonly Hex[]) => a.length === b.length && a.every((x, i) => x.toLowerCase() === b[i].toLowerCase())
const flip = (h: Hex, at = 2): Hex => `${h.slice(0, at)}${((Number.parseInt(h[at], 16) ^ 1) & 15).toString(16)}${h.slice(at + 1)}` as Hex
const errorName = (e: unknown) => (e instanceof ContractRevertError ? e.errorName : e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e))
const named = (e: unknown): e is ContractRevertError => e instanceof ContractRevertError && !['Error', 'UnknownRevert', 'Reverted', 'Panic'].includes(e.errorName)

describe('dispute game state machine, fuzzed on real tiny jobs', () => {
  let model: DisputeModel
  let net: Awaited<ReturnType<typeof createDisputeDevnet>>
  let foreign: TraceProvider
  let nonce = 0n
  const finished: bigint[] = []
  const summaries: Summary[] = []

  before(async () => {
    model = await tinyDisputeModel('tiny', 'q8_0', 3)
    net = await createDisputeDevnet()
    // another job's trace: its children, leaves, expansions and chunks are the "foreign proofs"
    foreign = createReplayTraceProvider(model, replayJob(model.tf, jobSpecOf(model, { prompt: [17, 400, 9], params: greedy(3), seed: 0n })))
  })
  after(async () => {
    await net?.close()
    model?.close()
  })

  for (let i = 0; i < GAMES; i++) {
    const seed = FIRST_SEED + i
    test(`seed ${seed}`, async (t) => {
      const sc = scenarioOf(model, seed)
      const log: string[] = []
      try {
        const s = await fuzzGame(sc, log)
        summaries.push(s)
        t.diagnostic(
          `seed ${seed}: ${s.scenario}: ${s.steps} steps, ${s.moves} moves, ${Object.values(s.bad).reduce((a, b) => a + b, 0)} bad moves, ${s.warps} warps, ${s.edges} clock edges, ` +
            `${s.timeouts} timeout calls${s.stuck ? `, stuck: ${s.stuck}` : ''}; ${s.end.providerWon ? 'provider' : 'challenger'} won (why ${s.end.why}, by ${s.end.by}, level ${s.end.level}) in ${s.ms} ms`,
        )
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e)
        throw new Error(
          `game fuzz seed ${seed} (${describeScenario(sc)}) failed: ${msg}\n` +
            `replay: TESSERA_GAME_FUZZ=1 TESSERA_GAME_FUZZ_SEED=${seed} node --import tsx --test src/dispute/players/fuzz.test.ts\nlast steps:\n  ${log.slice(-25).join('\n  ')}`,
          { cause: e },
        )
      }
    })
  }

  test('summary: the fuzz reached every phase, both endings and named reverts', (t) => {
    const bad: Record<string, number> = {}
    const at: Record<string, number> = {}
    for (const s of summaries) for (const [k, v] of Object.entries(s.bad)) bad[k] = (bad[k] ?? 0) + v
    for (const s of summaries) for (const [k, v] of Object.entries(s.at)) at[k] = (at[k] ?? 0) + v
    const ms = summaries.reduce((a, s) => a + s.ms, 0)
    t.diagnostic(`${summaries.length} games, ${summaries.reduce((a, s) => a + s.steps, 0)} steps, ${summaries.reduce((a, s) => a + s.moves, 0)} moves in ${ms} ms`)
    t.diagnostic(`bad moves by revert: ${JSON.stringify(bad)}`)
    t.diagnostic(`bad moves by position: ${JSON.stringify(at)}`)
    t.diagnostic(`endings: ${JSON.stringify(summaries.map((s) => `${s.seed}:${s.end.providerWon ? 'P' : 'C'}/${s.end.why}/${s.end.by}`))}`)
    if (summaries.length < GAMES || GAMES < GAMES_CI) return // a game failed (its own test says why), or a replay of a few seeds
    for (const e of ['WrongPhase', 'NotYourTurn', 'BadReveal', 'BadChoice', 'BondMismatch', 'ClockRunning']) assert.ok(bad[e], `some bad move reverted ${e}`)
    for (const p of ['EXPAND L0', 'EXPAND L1', 'NAME L2', 'EXPAND L2', 'STEP L3']) assert.ok(at[p], `some bad move was tried at ${p}`)
    assert.ok(summaries.some((s) => s.end.by === 'move'), 'some game was decided by the machine')
    assert.ok(summaries.some((s) => s.end.by === 'timeout'), 'some game was decided by a clock')
  })

  // Found by this fuzz (seed 5013 of an earlier version): a move that passes its simulation on the
  // latest block but reverts in the block it is mined in (its clock ran out in between) came back
  // as 'UnknownRevert'; write()/send() now hand writeContract the whole ABI, errors included.
  test('a move mined after its clock ran out reverts by name (ClockExpired), not UnknownRevert', async () => {
    const j = await serveJob({ net, model, job: { prompt: [11, 250, 3], params: greedy(3), seed: 0n }, seed: 1, nonce: nonce++ })
    const { gameId } = await openGame(net.auditor, net.d, { ...j.open, bond: BigInt(net.d.params.game.challengerBond) })
    const g = await getGame(net.deployer, net.d, { gameId })
    const tr = j.mine.traceTree()
    const children = tr.children(tr.depth - g.depthLeft, g.index, stride(g.depthLeft)).map(hex)
    // simulated on the latest block (the clock runs), mined one second past the clock
    await net.chain.provider.request({ method: 'evm_setNextBlockTimestamp', params: [Number(g.lastMove + g.providerClock + 1n)] })
    await expectRevert(reveal(net.provider, net.d, { gameId, children }), 'ClockExpired', 'the provider\'s reveal mined past its clock')
  })

  /** One game: serve, open, fuzz to the end; throws on the first rule broken. */
  async function fuzzGame(sc: Scenario, log: string[]): Promise<Summary> {
    const started = Date.now()
    const { d } = net
    const rng = seededRng(sc.seed)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]
    const bondOpen = BigInt(d.params.game.challengerBond)
    const depthBond = BigInt(d.params.game.depthBond)
    const rewardBps = BigInt(d.params.game.rewardBps)
    const clients: Record<Side, ChainClients> = { provider: net.provider, challenger: net.auditor, stranger: net.at(5) }
    const honestSide: Side = sc.cheat ? 'challenger' : 'provider'
    await net.topUp()

    // the job: a cheater's (its own trace) or an honest provider's, claimed in its own batch
    let j: ServedJob | undefined
    for (let tries = 0; !j; tries++) {
      try {
        j = await serveJob({ net, model, job: { prompt: sc.prompt, params: sc.params, seed: BigInt(sc.seed) }, cheat: sc.cheat, seed: sc.seed + tries, nonce: nonce++ })
      } catch (e) {
        // a kind this job has no falsifiable value of: another seed of the same kind, then another kind
        if (!(e instanceof CheatNotApplicableError) || tries >= 6) throw e
        if (tries >= 2) sc.cheat = CHEATS[(CHEATS.indexOf(sc.cheat!) + 1) % CHEATS.length]
      }
    }
    const mine = j.mine
    const theirs = sc.lie === 'replay'
      ? wrongReplay(model, j.spec, j.honest, j.delivered, sc.seed)
      : createReplayTraceProvider(model, replayJob(model.tf, j.spec, { forced: j.delivered }))
    const cfg = j.cfg
    const wrongCfgs: { what: string; cfg: Cfg }[] = [
      { what: 'a sampling the client did not sign', cfg: { ...cfg, sampling: { ...cfg.sampling, repeatLastN: cfg.sampling.repeatLastN + 1 } } },
      { what: 'another layer count', cfg: { ...cfg, config: { ...cfg.config, nLayer: cfg.config.nLayer + 1 } } },
      { what: 'another RoPE base', cfg: { ...cfg, config: { ...cfg.config, ropeBaseBits: cfg.config.ropeBaseBits ^ 1 } } },
      { what: 'another top-k', cfg: { ...cfg, sampling: { ...cfg.sampling, topK: cfg.sampling.topK + 5 } } },
    ]

    const snap = async (gameId: bigint): Promise<Snap> => {
      const [g, tt, st, owedP, owedC, owedX, cb, xb, kb] = await Promise.all([
        getGame(net.deployer, d, { gameId }),
        getTotals(net.deployer, d),
        getStake(net.deployer, d, net.provider.account.address),
        getOwed(net.deployer, d, { account: net.provider.account.address }),
        getOwed(net.deployer, d, { account: net.auditor.account.address }),
        getOwed(net.deployer, d, { account: clients.stranger.account.address }),
        getBalances(net.deployer, d, net.auditor.account.address),
        getBalances(net.deployer, d, clients.stranger.account.address),
        getBalances(net.deployer, d, net.client.account.address),
      ])
      return { g, t: tt, stake: st.active + st.unbonding, owedP, owedC, settleOwedC: cb.owed, owedX, settleOwedX: xb.owed, escrow: kb.escrow }
    }

    // rule 2 at the door: a wrong opening bond
    const totals0 = await getTotals(net.deployer, d)
    await expectRevert(openGame(net.auditor, d, { ...j.open, bond: bondOpen + 1n }), 'BondMismatch', 'open with a wrong bond')
    await expectRevert(openGame(net.auditor, d, { ...j.open, bond: 0n }), 'BondMismatch', 'open with no bond')
    await expectRevert(openGame(net.auditor, d, { ...j.open, jobIndex: 1n, bond: bondOpen }), 'NotInBatch', 'open on a job the batch does not have')
    await expectRevert(openGame(net.auditor, d, { ...j.open, jobIndex: 2n ** 64n, bond: bondOpen }), 'NotInBatch', 'open on job 2^64')
    await expectRevert(openGame(net.auditor, d, { ...j.open, item: { ...j.open.item, traceRoot: Z }, bond: bondOpen }), 'NotInBatch', 'open on a claim the batch does not hold')
    await expectRevert(openGame(net.auditor, d, { ...j.open, proof: [Z], bond: bondOpen }), 'NotInBatch', 'open with a proof of another tree')
    assert.deepEqual(await getTotals(net.deployer, d), totals0, 'a refused open moves no value')
    const second = () => openGame(clients.stranger, d, { ...j.open, bond: bondOpen })
    const puppetBefore = sc.crowd === 'before' ? (await second()).gameId : undefined
    const { gameId } = await openGame(net.auditor, d, { ...j.open, bond: bondOpen })
    const puppet = puppetBefore ?? (sc.crowd === 'after' ? (await second()).gameId : undefined)
    const totals1 = await getTotals(net.deployer, d)
    assert.ok(isConserved(totals1), 'conserved after open')
    assert.equal(totals1.bonds - totals0.bonds, bondOpen * (puppet === undefined ? 1n : 2n), 'open holds exactly the bond')

    const defender: Player = createDefender({ clients: net.provider, deployment: d, gameId, trace: mine, cfg })
    const challenger: Player = createChallenger({
      clients: net.auditor, deployment: d, gameId, trace: theirs, depthBond, lie: sc.lie === 'picks' ? { rng: seededRng(sc.seed * 31 + 7) } : undefined,
    })
    const players: Record<'provider' | 'challenger', Player> = { provider: defender, challenger }
    const machine = await machineOf(net.deployer, d)

    const summary: Summary = {
      seed: sc.seed, scenario: describeScenario(sc), steps: 0, moves: 0, bad: {}, at: {}, warps: 0, edges: 0, timeouts: 0,
      end: { providerWon: false, why: 0, by: 'move', level: 0 }, ms: 0,
    }
    const stuck: Partial<Record<'provider' | 'challenger', string>> = {}
    let endedBy: { by: 'move' | 'timeout'; loser?: 'provider' | 'challenger' } | undefined
    let lastPosition: Game | undefined

    // ---- the clock: the mover's seconds left before the next block, judged only away from zero
    const clockOf = async (g: Game) => {
      const now = (await net.deployer.public.getBlock()).timestamp
      const left = (isProviderTurn(g) ? g.providerClock : g.challengerClock) - (now - g.lastMove)
      return { left, expired: left < 0n, ambiguous: left >= 0n && left < MARGIN }
    }
    type Clock = Awaited<ReturnType<typeof clockOf>>
    const moverSide = (g: Game): 'provider' | 'challenger' => (isProviderTurn(g) ? 'provider' : 'challenger')

    /** The revert a bad move must give, by the contract's order of checks; undefined when the clock makes it a toss-up. */
    const expected = (g: Game, b: Bad, clock: Clock): string | undefined => {
      if (b.game !== undefined) return b.game >= gameId + 1000n ? 'UnknownGame' : 'GameOver'
      if (isOver(g)) return 'GameOver'
      if (b.fn === 'timeout') return clock.ambiguous || clock.expired ? undefined : 'ClockRunning'
      if (PHASE_OF[b.fn] !== g.phase) return 'WrongPhase'
      if (b.sender !== moverSide(g)) return 'NotYourTurn'
      if (clock.ambiguous) return undefined
      if (clock.expired) return 'ClockExpired'
      return b.specific
    }

    // ---- moves with junk arguments (for the wrong phase, the wrong kind, or a finished game)
    const JUNK_STATE = { op: 0, elem: 0n, step: 0n, r: [0, 0, 0, 0, 0, 0, 0, 0], data: '0x' } as unknown as MicroStateArg
    const JUNK_EXP = { root: Z, depth: 0, lastLeaf: 0n, proofFirst: [], proofLast: [] }
    const junk = (fn: Fn, id: bigint) => (c: ChainClients): Promise<unknown> => {
      const a = { gameId: id }
      switch (fn) {
        case 'reveal': return reveal(c, d, { ...a, children: [Z, Z] })
        case 'choose': return choose(c, d, { ...a, children: [Z, Z], choice: 0n })
        case 'revealPre': return revealPre(c, d, { ...a, preLeaf: Z, proof: [] })
        case 'expandOps': return expandOps(c, d, { ...a, cfg, expansion: JUNK_EXP })
        case 'stepOp': return stepOp(c, d, { ...a, cfg, proof: '0x' })
        case 'enterOp': return enterOp(c, d, { ...a, cfg, slotRoot: Z, path: [] })
        case 'revealChunk': return revealChunk(c, d, { ...a, chunk: '0x' })
        case 'nameElement': return nameElement(c, d, { ...a, elem: 0n, bond: 0n })
        case 'expandElement': return expandElement(c, d, { ...a, cfg, expansion: JUNK_EXP, last: JUNK_STATE, opening: '0x' })
        case 'stepMicro': return stepMicro(c, d, { ...a, cfg, pre: JUNK_STATE, reads: [] })
      }
    }

    const foreignLevel = (g: Game): LevelTree | undefined => {
      try {
        return levelOf(foreign, g)
      } catch {
        return undefined
      }
    }
    const validChoices = (g: Game) => {
      const out: number[] = []
      for (let c = 0; c < 1 << stride(g.depthLeft); c++) if (descend(g.index, g.depthLeft, BigInt(c), g.minLeaf, g.lastLeaf).ok) out.push(c)
      return out
    }
    const due = (g: Game) => (g.level > g.bondedLevel ? depthBond : 0n)
    const matmulUnknown = async (g: Game) => {
      const op = mine.transition(Number(g.traceLeaf)).ops[Number(g.opK) - 1]
      if (op.code !== 'MATMUL' || !op.tensor) return false
      return !(await weightType(net.deployer, { machine, modelRoot: model.tree.modelRoot, name: op.tensor })).known
    }

    /** The mover's right move at this position (from the provider's own trace; the first valid choice or element), for a wrong sender. */
    const rightMove = async (g: Game): Promise<{ fn: Fn; run: (c: ChainClients) => Promise<unknown> }> => {
      const a = { gameId, cfg }
      switch (g.phase) {
        case PHASE.REVEAL: {
          const tr = levelOf(mine, g)
          const children = tr.children(tr.depth - g.depthLeft, g.index, stride(g.depthLeft)).map(hex)
          return { fn: 'reveal', run: (c) => reveal(c, d, { gameId, children }) }
        }
        case PHASE.CHOOSE: {
          const children = await revealedChildren(net.deployer, d, { gameId })
          const choice = BigInt(validChoices(g)[0])
          return { fn: 'choose', run: (c) => choose(c, d, { gameId, children, choice, bond: due(g) }) }
        }
        case PHASE.REVEAL_PRE: {
          const tr = levelOf(mine, g)
          const jj = Number(g.index) - 1
          return { fn: 'revealPre', run: (c) => revealPre(c, d, { gameId, preLeaf: hex(tr.leaves[jj]), proof: tr.proof(jj).map(hex) }) }
        }
        case PHASE.EXPAND: {
          if (g.level === 0) {
            const expansion = expansionOf(mine.transition(Number(g.index)).opTree())
            return { fn: 'expandOps', run: (c) => expandOps(c, d, { ...a, expansion }) }
          }
          const view = mine.transition(Number(g.traceLeaf))
          if (g.level === 1) {
            const k = Number(g.index)
            const op = view.ops[k - 1]
            if (!op.program) {
              const out = view.layer === mine.nLayer && op.code === 'STORE' ? mine.outputToken(view.pos) : undefined
              return { fn: 'stepOp', run: (c) => stepOp(c, d, { ...a, proof: view.openings.stepOp(k), out }) }
            }
            const slot = view.slot(k)
            return { fn: 'enterOp', run: (c) => enterOp(c, d, { ...a, slotRoot: hex(slot.root), path: slot.path.map(hex) }) }
          }
          const k = Number(g.opK), e = Number(g.elem)
          const expansion = expansionOf(view.elementTree(k, e))
          const last = microStateArg(view.elementStates(k, e).at(-1)!)
          return { fn: 'expandElement', run: (c) => expandElement(c, d, { ...a, expansion, last, opening: view.openings.result(k, e) }) }
        }
        case PHASE.CHUNK: {
          const v = mine.transition(Number(g.traceLeaf)).slot(Number(g.opK)).value
          const chunk = v?.kind === 'words' ? hex(chunkBytes(v.words, Number(g.index))) : '0x'
          return { fn: 'revealChunk', run: (c) => revealChunk(c, d, { gameId, chunk }) }
        }
        case PHASE.NAME: {
          const elem = g.slotIsBlock ? g.index : g.index * 256n
          return { fn: 'nameElement', run: (c) => nameElement(c, d, { gameId, elem, bond: due(g) }) }
        }
        default: {
          const view = mine.transition(Number(g.traceLeaf))
          const pre = view.elementStates(Number(g.opK), Number(g.elem))[Number(g.index) - 1]
          return { fn: 'stepMicro', run: (c) => stepMicro(c, d, { ...a, pre: microStateArg(pre), reads: view.openings.step(pre) }) }
        }
      }
    }

    /** The bad moves of this position that only the move's own checks refuse. */
    const ownChecks = async (g: Game): Promise<Bad[]> => {
      const out: Bad[] = []
      const add = (what: string, fn: Fn, specific: string, run: Bad['run']) => out.push({ what, fn, sender: moverOf(fn), specific, run })
      const a = { gameId }
      switch (g.phase) {
        case PHASE.REVEAL: {
          const tr = levelOf(mine, g)
          const dt = tr.depth - g.depthLeft, s = stride(g.depthLeft)
          const C = tr.children(dt, g.index, s).map(hex)
          const at = Math.floor(rng() * C.length)
          const variants: [string, Hex[]][] = [
            ['children rotated', [...C.slice(1), C[0]]],
            ['one child changed', C.map((x, i) => (i === at ? flip(x, 5) : x))],
            ['half the children', C.slice(0, C.length / 2)],
            ['one child too many', [...C, C[0]]],
            ['a sibling node\'s children (stale)', tr.children(dt, g.index ^ 1n, s).map(hex)],
            ['the level root\'s children (stale)', tr.children(0, 0n, stride(tr.depth)).map(hex)],
          ]
          const ft = foreignLevel(g)
          if (ft && ft.depth === tr.depth) variants.push(['another job\'s children (foreign)', ft.children(dt, g.index, s).map(hex)])
          for (const [what, children] of variants) if (children.length > 0 && !eqList(children, C)) add(what, 'reveal', 'BadReveal', (c) => reveal(c, d, { ...a, children }))
          break
        }
        case PHASE.CHOOSE: {
          const T = await revealedChildren(net.deployer, d, { gameId })
          const ok = validChoices(g)
          const c0 = BigInt(pick(ok))
          const b = due(g)
          add('a bond one wei over', 'choose', 'BondMismatch', (c) => choose(c, d, { ...a, children: T, choice: c0, bond: b + 1n }))
          add(b ? 'no depth bond' : 'a depth bond not owed', 'choose', 'BondMismatch', (c) => choose(c, d, { ...a, children: T, choice: c0, bond: b ? 0n : depthBond }))
          add('a choice past the reveal', 'choose', 'BadChoice', (c) => choose(c, d, { ...a, children: T, choice: BigInt(T.length + Math.floor(rng() * 100)), bond: b }))
          add('choice 2^256 - 1', 'choose', 'BadChoice', (c) => choose(c, d, { ...a, children: T, choice: 2n ** 256n - 1n, bond: b }))
          const outside = Array.from({ length: T.length }, (_, i) => i).filter((i) => !ok.includes(i))
          if (outside.length) {
            const o = BigInt(pick(outside))
            add('a child with no disputable leaf', 'choose', 'BadChoice', (c) => choose(c, d, { ...a, children: T, choice: o, bond: b }))
          }
          const changed = T.map((x, i) => (i === Number(c0) ? flip(x, 7) : x))
          add('children that do not hash to the node', 'choose', 'BadReveal', (c) => choose(c, d, { ...a, children: changed, choice: c0, bond: b }))
          const tr = levelOf(mine, g)
          const stale = tr.children(tr.depth - g.depthLeft, g.index ^ 1n, stride(g.depthLeft)).map(hex)
          if (stale.length === T.length && !eqList(stale, T)) add('a sibling node\'s children (stale)', 'choose', 'BadReveal', (c) => choose(c, d, { ...a, children: stale, choice: c0, bond: b }))
          const ft = foreignLevel(g)
          const fc = ft && ft.depth === tr.depth ? ft.children(ft.depth - g.depthLeft, g.index, stride(g.depthLeft)).map(hex) : []
          if (fc.length === T.length && !eqList(fc, T)) add('another job\'s children (foreign)', 'choose', 'BadReveal', (c) => choose(c, d, { ...a, children: fc, choice: c0, bond: b }))
          break
        }
        case PHASE.REVEAL_PRE: {
          const tr = levelOf(mine, g)
          const jj = Number(g.index) - 1
          const leaf = hex(tr.leaves[jj])
          const proof = tr.proof(jj).map(hex)
          const other = tr.proof(jj + 1).map(hex)
          if (!eqList(other, proof)) add('the disputed leaf\'s path', 'revealPre', 'BadProof', (c) => revealPre(c, d, { ...a, preLeaf: leaf, proof: other }))
          if (hex(tr.leaves[jj + 1]) !== leaf) add('the disputed leaf as its own pre', 'revealPre', 'BadProof', (c) => revealPre(c, d, { ...a, preLeaf: hex(tr.leaves[jj + 1]), proof }))
          add('a path one hash short', 'revealPre', 'BadProof', (c) => revealPre(c, d, { ...a, preLeaf: leaf, proof: proof.slice(1) }))
          add('a path one hash long', 'revealPre', 'BadProof', (c) => revealPre(c, d, { ...a, preLeaf: leaf, proof: [...proof, Z] }))
          add('a changed leaf', 'revealPre', 'BadProof', (c) => revealPre(c, d, { ...a, preLeaf: flip(leaf, 9), proof }))
          const ft = foreignLevel(g)
          if (ft && ft.depth === tr.depth && jj < ft.leaves.length && hex(ft.leaves[jj]) !== leaf) {
            const fl = hex(ft.leaves[jj]), fp = ft.proof(jj).map(hex)
            add('another job\'s leaf and path (foreign)', 'revealPre', 'BadProof', (c) => revealPre(c, d, { ...a, preLeaf: fl, proof: fp }))
          }
          break
        }
        case PHASE.EXPAND: {
          const wrong = pick(wrongCfgs)
          if (g.level === 0) {
            const e = expansionOf(mine.transition(Number(g.index)).opTree())
            add(`expandOps with ${wrong.what}`, 'expandOps', 'BadPreimage', (c) => expandOps(c, d, { ...a, cfg: wrong.cfg, expansion: e }))
            add('one op too few', 'expandOps', 'WrongLeafCount', (c) => expandOps(c, d, { ...a, cfg, expansion: { ...e, lastLeaf: e.lastLeaf - 1n } }))
            add('one op too many', 'expandOps', 'WrongLeafCount', (c) => expandOps(c, d, { ...a, cfg, expansion: { ...e, lastLeaf: e.lastLeaf + 1n } }))
            add('a root its leaves do not prove', 'expandOps', 'BadProof', (c) => expandOps(c, d, { ...a, cfg, expansion: { ...e, root: Z } }))
            add('proofs swapped', 'expandOps', 'BadProof', (c) => expandOps(c, d, { ...a, cfg, expansion: { ...e, proofFirst: e.proofLast, proofLast: e.proofFirst } }))
            add('a depth over 48', 'expandOps', 'BadProof', (c) => expandOps(c, d, { ...a, cfg, expansion: { ...e, depth: 49 } }))
            add('enterOp at the trace level', 'enterOp', 'WrongStepKind', junk('enterOp', gameId))
            add('stepOp at the trace level', 'stepOp', 'WrongStepKind', junk('stepOp', gameId))
            add('expandElement at the trace level', 'expandElement', 'WrongStepKind', junk('expandElement', gameId))
            let fe: ReturnType<typeof expansionOf> | undefined
            try {
              fe = expansionOf(foreign.transition(Number(g.index)).opTree())
            } catch {}
            if (fe && fe.root !== e.root) {
              const x = fe
              add('another job\'s op frames (foreign)', 'expandOps', x.lastLeaf === e.lastLeaf ? 'BadProof' : 'WrongLeafCount', (c) => expandOps(c, d, { ...a, cfg, expansion: x }))
            }
          } else if (g.level === 1) {
            const k = Number(g.index)
            const view = mine.transition(Number(g.traceLeaf))
            const op = view.ops[k - 1]
            add('expandOps at the op level', 'expandOps', 'WrongStepKind', junk('expandOps', gameId))
            add('expandElement at the op level', 'expandElement', 'WrongStepKind', junk('expandElement', gameId))
            if (!op.program) {
              const out = view.layer === mine.nLayer && op.code === 'STORE' ? mine.outputToken(view.pos) : undefined
              add(`enterOp on one-step ${op.name}`, 'enterOp', 'WrongStepKind', (c) => enterOp(c, d, { ...a, cfg, slotRoot: Z, path: Array(6).fill(Z) }))
              add(`stepOp with ${wrong.what}`, 'stepOp', 'BadPreimage', (c) => stepOp(c, d, { ...a, cfg: wrong.cfg, proof: view.openings.stepOp(k), out }))
              if (out && !sc.cheat && g.index === g.lastLeaf && view.pos + 1 >= mine.nPrompt) {
                // the sampled head's STORE (its one-step proof holds: an honest provider's): the
                // output token it opens must be the head leaf's, under the claim's output root
                const proof = view.openings.stepOp(k)
                const o = out.opening
                add('a head STORE opening another token', 'stepOp', 'BadPreimage', (c) => stepOp(c, d, { ...a, cfg, proof, out: { ...out, token: out.token + 1 } }))
                add('a head STORE opening another logits root', 'stepOp', 'BadPreimage', (c) => stepOp(c, d, { ...a, cfg, proof, out: { ...out, logitsRoot: flip(out.logitsRoot, 4) } }))
                add('an output token opened in another chunk', 'stepOp', 'BadProof', (c) => stepOp(c, d, { ...a, cfg, proof, out: { ...out, opening: { ...o, chunkIndex: o.chunkIndex + 1 } } }))
                add('an output token chunk that is not under the output root', 'stepOp', 'BadProof', (c) => stepOp(c, d, { ...a, cfg, proof, out: { ...out, opening: { ...o, chunk: `${o.chunk}00000000` } } }))
              }
            } else {
              const slot = view.slot(k)
              const root = hex(slot.root), path = slot.path.map(hex)
              add(`stepOp on ${op.name} (it has elements)`, 'stepOp', 'WrongStepKind', junk('stepOp', gameId))
              add(`enterOp with ${wrong.what}`, 'enterOp', 'BadPreimage', (c) => enterOp(c, d, { ...a, cfg: wrong.cfg, slotRoot: root, path }))
              if (!eqList(path, Array(6).fill(Z))) add('a wrong frame path', 'enterOp', 'BadProof', (c) => enterOp(c, d, { ...a, cfg, slotRoot: root, path: Array(6).fill(Z) }))
              add('a frame path one hash short', 'enterOp', 'BadProof', (c) => enterOp(c, d, { ...a, cfg, slotRoot: root, path: path.slice(1) }))
              add('another slot root', 'enterOp', 'BadProof', (c) => enterOp(c, d, { ...a, cfg, slotRoot: flip(root, 11), path }))
              let fs: { root: Hex; path: Hex[] } | undefined
              try {
                const f = foreign.transition(Number(g.traceLeaf)).slot(k)
                fs = { root: hex(f.root), path: f.path.map(hex) }
              } catch {}
              if (fs && (fs.root !== root || !eqList(fs.path, path))) {
                const x = fs
                add('another job\'s slot (foreign)', 'enterOp', 'BadProof', (c) => enterOp(c, d, { ...a, cfg, slotRoot: x.root, path: x.path }))
              }
            }
          } else {
            const k = Number(g.opK), jj = Number(g.elem)
            const view = mine.transition(Number(g.traceLeaf))
            const e = expansionOf(view.elementTree(k, jj))
            const last = microStateArg(view.elementStates(k, jj).at(-1)!)
            const opening = view.openings.result(k, jj)
            const machineCheck = (await matmulUnknown(g)) ? 'UnknownWeightType' : undefined
            add('expandOps at the slot level', 'expandOps', 'WrongStepKind', junk('expandOps', gameId))
            add('enterOp at the slot level', 'enterOp', 'WrongStepKind', junk('enterOp', gameId))
            add('stepOp at the slot level', 'stepOp', 'WrongStepKind', junk('stepOp', gameId))
            add(`expandElement with ${wrong.what}`, 'expandElement', 'BadPreimage', (c) => expandElement(c, d, { ...a, cfg: wrong.cfg, expansion: e, last, opening }))
            add('one micro-step too many', 'expandElement', machineCheck ?? 'WrongLeafCount', (c) => expandElement(c, d, { ...a, cfg, expansion: { ...e, lastLeaf: e.lastLeaf + 1n }, last, opening }))
            if (e.lastLeaf > 0n) {
              add('one micro-step too few', 'expandElement', machineCheck ?? 'WrongLeafCount', (c) => expandElement(c, d, { ...a, cfg, expansion: { ...e, lastLeaf: e.lastLeaf - 1n }, last, opening }))
              add('a micro-state root its states do not prove', 'expandElement', machineCheck ?? 'BadProof', (c) => expandElement(c, d, { ...a, cfg, expansion: { ...e, root: Z }, last, opening }))
              if (!eqList(e.proofFirst, e.proofLast)) {
                add('micro-state proofs swapped', 'expandElement', machineCheck ?? 'BadProof', (c) => expandElement(c, d, { ...a, cfg, expansion: { ...e, proofFirst: e.proofLast, proofLast: e.proofFirst }, last, opening }))
              }
            }
          }
          break
        }
        case PHASE.CHUNK: {
          const v = mine.transition(Number(g.traceLeaf)).slot(Number(g.opK)).value
          if (v?.kind !== 'words') break
          const ci = Number(g.index)
          const ch = hex(chunkBytes(v.words, ci))
          const variants: [string, Hex][] = [
            ['a chunk with one word changed', flip(ch, 2 + 8 * Math.floor(rng() * ((ch.length - 2) / 8)))],
            ['a chunk one word short', `0x${ch.slice(2, -8)}`],
            ['a chunk one word long', `${ch}00000000`],
          ]
          const chunks = Math.ceil(v.words.length / 256)
          if (chunks > 1) variants.push(['another chunk of the slot (stale)', hex(chunkBytes(v.words, (ci + 1) % chunks))])
          try {
            const fv = foreign.transition(Number(g.traceLeaf)).slot(Number(g.opK)).value
            if (fv?.kind === 'words' && ci * 256 < fv.words.length) variants.push(['another job\'s chunk (foreign)', hex(chunkBytes(fv.words, ci))])
          } catch {}
          for (const [what, chunk] of variants) if (chunk.toLowerCase() !== ch.toLowerCase()) add(what, 'revealChunk', 'BadPreimage', (c) => revealChunk(c, d, { ...a, chunk }))
          break
        }
        case PHASE.NAME: {
          const b = due(g)
          const first = g.slotIsBlock ? g.index : g.index * 256n
          const words = g.slotIsBlock ? 1n : (g.elemCount - first < 256n ? g.elemCount - first : 256n)
          const e0 = first + BigInt(Math.floor(rng() * Number(words)))
          add('an element past the slot', 'nameElement', 'BadChoice', (c) => nameElement(c, d, { ...a, elem: g.elemCount + BigInt(Math.floor(rng() * 3)), bond: b }))
          add('element 2^64 - 1', 'nameElement', 'BadChoice', (c) => nameElement(c, d, { ...a, elem: 2n ** 64n - 1n, bond: b }))
          const next = g.slotIsBlock ? g.index + 1n : first + 256n
          const prev = g.slotIsBlock ? g.index - 1n : first - 1n
          if (next < g.elemCount) add('an element of the next chunk', 'nameElement', 'BadChoice', (c) => nameElement(c, d, { ...a, elem: next, bond: b }))
          if (prev >= 0n) add('an element of the previous chunk', 'nameElement', 'BadChoice', (c) => nameElement(c, d, { ...a, elem: prev, bond: b }))
          add('a bond one wei short', 'nameElement', 'BondMismatch', (c) => nameElement(c, d, { ...a, elem: e0, bond: b ? b - 1n : depthBond }))
          add('two depth bonds', 'nameElement', 'BondMismatch', (c) => nameElement(c, d, { ...a, elem: e0, bond: b + depthBond }))
          break
        }
        case PHASE.STEP: {
          const k = Number(g.opK), jj = Number(g.elem), s = Number(g.index)
          const view = mine.transition(Number(g.traceLeaf))
          const states = view.elementStates(k, jj)
          const pre = states[s - 1]
          const wrong = pick(wrongCfgs)
          const others = [s - 2, s].filter((x) => x >= 0 && x < states.length)
          const w = states[pick(others)]
          // (the agreed state's reads: the final state has no step after it to open reads for)
          add('a pre-state that is not the agreed one', 'stepMicro', 'BadPreimage', (c) => stepMicro(c, d, { ...a, cfg, pre: microStateArg(w), reads: view.openings.step(pre) }))
          add(`stepMicro with ${wrong.what}`, 'stepMicro', 'BadPreimage', (c) => stepMicro(c, d, { ...a, cfg: wrong.cfg, pre: microStateArg(pre), reads: view.openings.step(pre) }))
          const agreed = microStateArg(pre)
          const changed = { ...agreed, step: agreed.step + 1n }
          add('the agreed pre-state with another step number', 'stepMicro', 'BadPreimage', (c) => stepMicro(c, d, { ...a, cfg, pre: changed, reads: view.openings.step(pre) }))
          break
        }
      }
      return out
    }

    /** One bad move of a random class. */
    const badMove = async (g: Game): Promise<Bad> => {
      for (;;) {
        const r = rng()
        if (r < 0.15) {
          const fn = pick(FNS)
          if (PHASE_OF[fn] === g.phase) continue
          return { what: `${fn} in phase ${PHASE_NAME[g.phase]}`, fn, sender: moverOf(fn), specific: 'WrongPhase', run: junk(fn, gameId) }
        }
        if (r < 0.3) {
          const m = await rightMove(g)
          const sender: Side = rng() < 0.7 ? (moverSide(g) === 'provider' ? 'challenger' : 'provider') : 'stranger'
          return { what: `${m.fn} by the ${sender}`, fn: m.fn, sender, specific: '(turn)', run: m.run }
        }
        if (r < 0.38) return { what: 'timeout while the clock runs', fn: 'timeout', sender: pick(['provider', 'challenger', 'stranger'] as const), specific: 'ClockRunning', run: (c) => timeout(c, d, { gameId }) }
        if (r < 0.41) {
          const fn = pick(FNS)
          return { what: `${fn} on an unknown game`, fn, sender: moverOf(fn), specific: 'UnknownGame', run: junk(fn, gameId + 1000n + BigInt(Math.floor(rng() * 5))), game: gameId + 1000n }
        }
        if (r < 0.45 && finished.length) {
          const old = pick(finished)
          const fn = pick(FNS)
          return { what: `${fn} on finished game ${old}`, fn, sender: moverOf(fn), specific: 'GameOver', run: junk(fn, old), game: old }
        }
        const own = await ownChecks(g)
        if (own.length) return pick(own)
      }
    }

    // ---- rule 3: what a step may do to the books
    const checkBooks = async (before: Snap, after: Snap, paid: bigint, what: string) => {
      assert.ok(isConserved(after.t), `${what}: value conserved: ${JSON.stringify(after.t, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`)
      const same = (keys: (keyof Totals)[]) => {
        for (const k of keys) assert.equal(after.t[k], before.t[k], `${what}: ${k} unchanged`)
      }
      if (!isOver(after.g)) {
        assert.equal(after.t.gameBalance - before.t.gameBalance, paid, `${what}: the game holds exactly what was paid`)
        assert.equal(after.t.bonds - before.t.bonds, paid, `${what}: the bonds grow by what was paid`)
        assert.equal(after.g.bond - before.g.bond, paid, `${what}: the game's bond grows by what was paid`)
        same(['gameOwed', 'gameBurned', 'balance', 'staked', 'escrow', 'pending', 'owed', 'burned'])
        const held = (x: Snap) => [x.stake, x.owedP, x.owedC, x.settleOwedC, x.owedX, x.settleOwedX, x.escrow]
        assert.deepEqual(held(after), held(before), `${what}: no stake, owed or escrow moved`)
        return
      }
      if (isOver(before.g)) {
        assert.deepEqual(after, before, `${what}: nothing moves once the game is over`)
        return
      }
      // a resolution
      const r = await resolution(net.deployer, d, { gameId })
      assert.ok(r, `${what}: the game is over and says how (Resolved)`)
      const bond = before.g.bond
      assert.equal(paid, 0n, `${what}: a resolving move pays nothing`)
      assert.equal(after.t.gameBalance, before.t.gameBalance, `${what}: a resolution pays nothing out of the game`)
      assert.equal(after.t.bonds, before.t.bonds - bond, `${what}: the game's whole bond leaves the open bonds`)
      assert.equal(after.t.balance, before.t.balance, `${what}: a resolution pays nothing out of the settlement`)
      if (r.providerWon) {
        const reward = (bond * rewardBps) / 10_000n
        assert.equal(after.owedP - before.owedP, reward, `${what}: the provider earns its share of the bond`)
        assert.equal(after.t.gameOwed - before.t.gameOwed, reward, `${what}: owed grows by the reward`)
        assert.equal(after.t.gameBurned - before.t.gameBurned, bond - reward, `${what}: the rest of the bond burns`)
        assert.equal(after.owedC, before.owedC, `${what}: the losing challenger gets nothing back`)
        assert.equal(after.stake, before.stake, `${what}: the winning provider keeps its stake`)
        assert.equal(after.escrow, before.escrow, `${what}: no refund when the provider wins`)
      } else {
        assert.equal(after.owedC - before.owedC, bond, `${what}: the challenger gets its whole bond back`)
        assert.equal(after.t.gameOwed - before.t.gameOwed, bond, `${what}: owed grows by the bond`)
        assert.equal(after.t.gameBurned, before.t.gameBurned, `${what}: nothing burns when the challenger wins`)
        assert.equal(after.owedP, before.owedP, `${what}: the losing provider earns nothing from the game`)
        const slashed = before.stake - after.stake
        assert.ok(slashed > 0n, `${what}: the losing provider is slashed`)
        assert.equal(before.t.staked - after.t.staked, slashed, `${what}: the slash leaves the staked total`)
        assert.equal(after.t.owed - before.t.owed + (after.t.burned - before.t.burned), slashed, `${what}: the slash is paid out as reward and burned, nothing else`)
        // the slash reward goes to the challenger of the game that flagged the job first while that game is open (docs/CHAIN.md)
        const reward = after.t.owed - before.t.owed
        assert.ok(reward > 0n, `${what}: the slash pays a reward`)
        if (puppetBefore !== undefined) {
          assert.equal(after.settleOwedX - before.settleOwedX, reward, `${what}: the game that flagged the job first is paid the slash reward`)
          assert.equal(after.settleOwedC, before.settleOwedC, `${what}: and this game's challenger only its bonds`)
        } else {
          assert.equal(after.settleOwedC - before.settleOwedC, reward, `${what}: the challenger is paid the slash reward`)
          assert.equal(after.settleOwedX, before.settleOwedX, `${what}: and the later game's challenger nothing`)
        }
        assert.equal(after.owedX, before.owedX, `${what}: the other game's bond stays held`)
        assert.equal(after.escrow - before.escrow, before.g.jobAmount, `${what}: the client gets the job's price back`)
        assert.equal(before.t.pending - after.t.pending, before.g.jobAmount, `${what}: the job leaves the pending claims`)
      }
    }

    const expectRevertUnchanged = async (p: Promise<unknown>, name: string, what: string, before: Snap) => {
      await expectRevert(p, name, what)
      const after = await snap(gameId)
      assert.deepEqual(after.g, before.g, `${what}: a refused move leaves the game unchanged`)
      await checkBooks(before, after, 0n, what)
      summary.bad[name] = (summary.bad[name] ?? 0) + 1
      const key = `${PHASE_NAME[before.g.phase]} L${before.g.level}`
      summary.at[key] = (summary.at[key] ?? 0) + 1
    }

    /** The mover's player moves with its clock running (rule 1), or is refused by name if it is the dishonest side. */
    const playerMove = async (side: 'provider' | 'challenger', before: Snap, where: string) => {
      const g = before.g
      const player = players[side]
      const paid = side === 'challenger' ? due(g) : 0n
      let moved: Awaited<ReturnType<Player['act']>>
      try {
        moved = await player.act()
      } catch (e) {
        log.push(`${where}: ${side} move threw ${errorName(e)}`)
        // rule 1: the honest side's legal move on its turn never reverts
        if (side === honestSide) throw new Error(`${where}: the honest ${side}'s move reverted: ${errorName(e)}`, { cause: e })
        // the dishonest side may be refused, by name, changing nothing; it then stops moving
        if (!(named(e) || (side === 'challenger' && e instanceof NothingToDisputeError))) throw new Error(`${where}: the ${side}'s move failed without a named revert: ${errorName(e)}`, { cause: e })
        const after = await snap(gameId)
        assert.deepEqual(after.g, g, `${where}: a refused move leaves the game unchanged`)
        await checkBooks(before, after, 0n, where)
        stuck[side] = errorName(e)
        summary.stuck = `${side}: ${stuck[side]}`
        return
      }
      assert.ok(moved, `${where}: the ${side} moves on its turn`)
      summary.moves++
      const after = await snap(gameId)
      log.push(`${where}: ${side} ${moved.move}${isOver(after.g) ? ' -> game over' : ''}`)
      assert.notDeepEqual(after.g, g, `${where}: a move changes the game`)
      await checkBooks(before, after, paid, `${where}: ${moved.move}`)
      if (isOver(after.g)) {
        endedBy = { by: 'move' }
        lastPosition = g
      }
    }

    // ---- the fuzz
    let step = 0
    for (; step < MAX_STEPS; step++) {
      const before = await snap(gameId)
      const g = before.g
      if (isOver(g)) break
      const clock = await clockOf(g)
      const mover = moverSide(g)
      const where = `step ${step} ${PHASE_NAME[g.phase]} L${g.level} idx ${g.index} (${mover} to move, ${clock.left} s left)`
      const anyStuck = stuck.provider !== undefined || stuck.challenger !== undefined
      const weights: [string, number][] = [
        ['provider', 0.2], ['challenger', 0.2], ['bad', 0.4], ['warp', 0.08], ['timeout', clock.expired ? 0.3 : 0.04],
        ['past', clock.ambiguous ? 1 : sc.pastRate + (anyStuck ? 0.3 : 0)], ['edge', 0.015],
      ]
      let r = rng() * weights.reduce((acc, [, w]) => acc + w, 0)
      const action = weights.find(([, w]) => (r -= w) < 0)?.[0] ?? 'bad'

      if (action === 'provider' || action === 'challenger') {
        const side = action
        const player = players[side]
        const turn = side === mover
        if (turn && stuck[side]) {
          log.push(`${where}: ${side} (stuck) does not move`)
          continue
        }
        if (turn && clock.ambiguous) continue
        if (!turn) {
          const m = await player.act()
          assert.equal(m, undefined, `${where}: the ${side} does not move out of turn`)
          const after = await snap(gameId)
          assert.deepEqual(after.g, g, `${where}: nothing changed`)
          log.push(`${where}: ${side} waits`)
          continue
        }
        if (clock.expired) {
          await expectRevertUnchanged(player.act(), 'ClockExpired', `${where}: the ${side}'s move after its clock ran out`, before)
          log.push(`${where}: ${side} moves late -> ClockExpired`)
          continue
        }
        await playerMove(side, before, where)
      } else if (action === 'bad') {
        const b = await badMove(g)
        const name = expected(g, b, clock)
        if (name === undefined) continue
        log.push(`${where}: bad: ${b.what} (${b.sender}) -> ${name}`)
        await expectRevertUnchanged(b.run(clients[b.sender]), name, `${where}: ${b.what} by the ${b.sender}`, before)
      } else if (action === 'edge') {
        // the mover's clock to the second. The typed actions simulate a move on the latest block
        // and the chain mines it in the next one, so: (a) a move mined at exactly spent == clock
        // (evm_setNextBlockTimestamp) succeeds and leaves the mover exactly the increment; (b) on a
        // block at spent == clock, timeout still refuses (ClockRunning, 0 s left); on one a second
        // later the move is ClockExpired and timeout ends the game (played-out games only try (a)).
        // Not before a matmul's expandElement, which the defender precedes with its own
        // transaction (proveWeightType).
        if (clock.expired || clock.ambiguous || stuck[mover] || (g.phase === PHASE.EXPAND && g.level === 2)) continue
        const late = sc.pastRate > 0 && rng() < 0.5
        const target = g.lastMove + (mover === 'provider' ? g.providerClock : g.challengerClock)
        const setNext = (ts: bigint) => net.chain.provider.request({ method: 'evm_setNextBlockTimestamp', params: [Number(ts)] })
        const mineAt = async (ts: bigint) => {
          await setNext(ts)
          await net.chain.provider.request({ method: 'evm_mine', params: [] })
        }
        summary.edges++
        const sender = pick(['provider', 'challenger', 'stranger'] as const)
        if (!late) {
          const edge = `${where}: a move mined in the last second of the ${mover}'s clock`
          log.push(`${edge}`)
          await setNext(target)
          const movesBefore = summary.moves
          await playerMove(mover, before, edge)
          const after = await getGame(net.deployer, d, { gameId })
          if (summary.moves > movesBefore && !isOver(after)) {
            assert.equal(after.lastMove, target, `${edge}: mined at the clock's last second`)
            const increment = BigInt(d.params.game.increment)
            const left = mover === 'provider' ? after.providerClock : after.challengerClock
            assert.equal(left, increment < BigInt(d.params.game.clock) ? increment : BigInt(d.params.game.clock), `${edge}: leaves the mover exactly the increment`)
          }
        } else {
          const edge = `${where}: the ${mover}'s clock spent to the second`
          log.push(`${edge}: timeout by the ${sender} -> ClockRunning (0 s left); a second later the ${mover}'s move -> ClockExpired, timeout ends the game`)
          await mineAt(target)
          const atEdge = await snap(gameId)
          let err: unknown
          await timeout(clients[sender], d, { gameId }).catch((e) => (err = e))
          assert.ok(err instanceof ContractRevertError && err.errorName === 'ClockRunning', `${edge}: timeout at spent == clock refuses: ${errorName(err)}`)
          assert.equal(err.args[1], 0n, `${edge}: with 0 s left`)
          assert.deepEqual(await snap(gameId), atEdge, `${edge}: a refused timeout changes nothing`)
          await mineAt(target + 1n)
          const late1 = await snap(gameId)
          await expectRevertUnchanged(players[mover].act(), 'ClockExpired', `${edge}: the ${mover}'s move a second later`, late1)
          await timeout(clients[sender], d, { gameId })
          const after = await snap(gameId)
          assert.ok(isOver(after.g), `${edge}: a timeout one second past the clock ends the game`)
          await checkBooks(late1, after, 0n, `${edge}: timeout`)
          endedBy = { by: 'timeout', loser: mover }
          lastPosition = g
        }
      } else if (action === 'warp' || action === 'past') {
        let secs: bigint
        if (action === 'warp') {
          // a small warp that keeps the mover's clock clear of zero
          const room = clock.left - MARGIN - 60n
          if (clock.expired || room < 1n) continue
          secs = 1n + BigInt(Math.floor(rng() * Math.min(5000, Number(room))))
        } else {
          if (clock.expired) continue
          secs = clock.left + 1n + BigInt(Math.floor(rng() * 3600))
        }
        await net.warp(secs)
        summary.warps++
        log.push(`${where}: warp ${secs} s${action === 'past' ? ' (past the mover\'s clock)' : ''}`)
        const after = await snap(gameId)
        assert.deepEqual(after, before, `${where}: a warp moves nothing`)
      } else {
        // timeout from anyone: ends the game iff the mover's clock is spent
        if (clock.ambiguous) continue
        const sender = pick(['provider', 'challenger', 'stranger'] as const)
        summary.timeouts++
        if (!clock.expired) {
          log.push(`${where}: timeout by the ${sender} -> ClockRunning`)
          await expectRevertUnchanged(timeout(clients[sender], d, { gameId }), 'ClockRunning', `${where}: timeout while the clock runs`, before)
          continue
        }
        await timeout(clients[sender], d, { gameId })
        const after = await snap(gameId)
        log.push(`${where}: timeout by the ${sender} -> game over`)
        assert.ok(isOver(after.g), `${where}: a timeout on a spent clock ends the game`)
        await checkBooks(before, after, 0n, `${where}: timeout`)
        endedBy = { by: 'timeout', loser: mover }
        lastPosition = g
      }
    }
    summary.steps = step

    // rule 4: the game ended, and the right side won
    const g = await getGame(net.deployer, d, { gameId })
    assert.ok(isOver(g), `the game ends within ${MAX_STEPS} steps (it is in ${PHASE_NAME[g.phase]} at level ${g.level})`)
    assert.ok(endedBy, 'the game ended by a step of the fuzz')
    const r = await resolution(net.deployer, d, { gameId })
    assert.ok(r)
    if (endedBy.by === 'timeout') {
      assert.equal(r.why, WHY.TIMED_OUT, 'a timeout ends the game TIMED_OUT')
      assert.equal(r.providerWon, endedBy.loser === 'challenger', `the side whose clock ran out (${endedBy.loser}) loses`)
    } else {
      assert.notEqual(r.why, WHY.TIMED_OUT)
      assert.notEqual(r.why, WHY.JOB_LOST)
      if (sc.cheat) assert.equal(r.providerWon, false, `the cheater (${sc.cheat}, at ${JSON.stringify(j.cheat?.where)}) loses (why ${r.why})`)
      else {
        assert.equal(r.providerWon, true, `the honest provider beats the liar (why ${r.why})`)
        assert.equal(r.why, WHY.STEP_CHECKED, 'the machine confirmed the honest provider\'s step')
      }
    }

    // rule 5: after the end every move, and timeout, reverts GameOver; the players stop
    const end = await snap(gameId)
    for (const fn of FNS) {
      for (const side of [moverOf(fn), 'stranger'] as const) await expectRevert(junk(fn, gameId)(clients[side]), 'GameOver', `${fn} by the ${side} after the end`)
    }
    if (lastPosition) {
      // the move that was right at the last open position, as its mover would send it
      const m = await rightMove(lastPosition)
      await expectRevert(m.run(clients[moverOf(m.fn)]), 'GameOver', `the last position's right move (${m.fn}) after the end`)
    }
    await expectRevert(timeout(clients.stranger, d, { gameId }), 'GameOver', 'timeout after the end')
    await net.warp(BigInt(d.params.game.clock) + 1n)
    await expectRevert(timeout(clients.provider, d, { gameId }), 'GameOver', 'timeout after the end, clocks long spent')
    assert.equal(await defender.act(), undefined, 'the defender stops')
    assert.equal(await challenger.act(), undefined, 'the challenger stops')
    await checkBooks(end, await snap(gameId), 0n, 'after the end')
    finished.push(gameId)

    if (puppet !== undefined) {
      // the second game: voided at once on a job the provider lost (its challenger's bond back, nothing
      // else moves); on a job the provider defended, the provider never answered it, so its clock ends it
      const b = await snap(puppet)
      assert.ok(!isOver(b.g), 'the second game is still open')
      if (r.providerWon) await net.warp(BigInt(d.params.game.clock) + 1n)
      await timeout(net.client, d, { gameId: puppet })
      const a = await snap(puppet)
      const pr = await resolution(net.deployer, d, { gameId: puppet })
      const what = `second game ${puppet} (${sc.crowd} the main one)`
      assert.ok(pr && isOver(a.g) && !pr.providerWon, `${what}: ended against the provider`)
      assert.ok(isConserved(a.t), `${what}: value conserved`)
      assert.equal(b.t.bonds - a.t.bonds, b.g.bond, `${what}: its bond leaves the open bonds`)
      assert.equal(a.owedX - b.owedX, b.g.bond, `${what}: its challenger gets its bond back`)
      assert.equal(a.t.gameBalance, b.t.gameBalance, `${what}: nothing leaves the game contract`)
      assert.equal(a.t.balance, b.t.balance, `${what}: nothing leaves the settlement`)
      if (!r.providerWon) {
        assert.equal(pr.why, WHY.JOB_LOST, `${what}: voided`)
        const held = (x: Snap) => [x.stake, x.escrow, x.owedP, x.owedC, x.settleOwedC, x.settleOwedX, x.t.staked, x.t.escrow, x.t.pending, x.t.owed, x.t.burned, x.t.gameBurned]
        assert.deepEqual(held(a), held(b), `${what}: a voided game slashes, refunds and burns nothing`)
      } else {
        assert.equal(pr.why, WHY.TIMED_OUT, `${what}: the provider's clock ran out`)
        assert.ok(a.stake < b.stake, `${what}: the provider is slashed`)
        assert.equal(a.escrow - b.escrow, b.g.jobAmount, `${what}: the client is refunded`)
        assert.equal(a.settleOwedX - b.settleOwedX, a.t.owed - b.t.owed, `${what}: its challenger is paid the slash reward`)
      }
      finished.push(puppet)
    }
    // value leaves the game contract only by withdraw, exactly what is owed
    for (const side of ['provider', 'challenger', 'stranger'] as const) {
      const c = clients[side]
      const owed = await getOwed(net.deployer, d, { account: c.account.address })
      if (owed === 0n) {
        await expectRevert(withdraw(c, d), 'NothingToWithdraw', `the ${side} withdraws with nothing owed`)
        continue
      }
      const t0 = await getTotals(net.deployer, d)
      await withdraw(c, d)
      const t1 = await getTotals(net.deployer, d)
      assert.ok(isConserved(t1), `the ${side}'s withdraw keeps the books`)
      assert.equal(t0.gameBalance - t1.gameBalance, owed, `the ${side} withdraws exactly what it is owed`)
      assert.equal(t0.gameOwed - t1.gameOwed, owed, 'and the owed total falls by as much')
      assert.equal(await getOwed(net.deployer, d, { account: c.account.address }), 0n)
      await expectRevert(withdraw(c, d), 'NothingToWithdraw', `the ${side} withdraws twice`)
    }
    if (!r.providerWon || puppet !== undefined) {
      // the job is lost now: nobody may dispute it again
      const before = await getTotals(net.deployer, d)
      await expectRevert(openGame(net.auditor, d, { ...j.open, bond: bondOpen }), 'LeafAlreadyDisputed', 'a game on a job the provider lost')
      assert.deepEqual(await getTotals(net.deployer, d), before, 'a refused open moves no value')
    }

    summary.end = { providerWon: r.providerWon, why: r.why, by: endedBy.by, level: g.level }
    summary.ms = Date.now() - started
    return summary
  }
})

async function expectRevert(p: Promise<unknown>, name: string, what: string) {
  let err: unknown
  try {
    await p
  } catch (e) {
    err = e
  }
  assert.ok(err !== undefined, `${what}: expected a revert ${name}, but the move was accepted`)
  assert.ok(err instanceof ContractRevertError, `${what}: expected the custom error ${name}, got ${errorName(err)}`)
  assert.ok(named(err), `${what}: an unnamed revert (${err.errorName}: ${err.message.split('\n')[0]}), expected ${name}`)
  assert.equal(err.errorName, name, `${what}: reverted ${err.errorName}, expected ${name}`)
}
