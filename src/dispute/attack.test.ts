// Property tests of the one way to play a game: whole jobs on the embedded chain (request,
// reservation, delivery acknowledgement, claim, the auditor's replay, the dispute to its end), with
// the one pair of players (src/dispute/players/) on real tiny models (llama Q8_0, qwen2 Q4_K_M,
// 2 layers). For every cheat kind and seed the cheater loses where it cheated, is slashed, and the
// honest challenger gets its bonds back and the slash reward; for every lying challenger the honest
// provider wins and keeps its stake; the contracts' books balance after every game.
//
// CI plays each applicable kind twice per model (the temperature-sampling ops once) and a few liars.
// Nightly size: TESSERA_GAMES=500 npm test -- src/dispute/attack.test.ts spreads about that many
// games per model over the kinds and seeds (docs/CHAIN.md "Attack tests").
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { WHY } from '../chain/actions/disputeGame.js'
import type { JobParams } from '../trace/receipt.js'
import { createDisputeDevnet } from '../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../test/support/disputeJobs.js'
import { type AttackReport, attackJob, jobSpecOf } from './attack.js'
import { CHEAT_KINDS, type CheatKind, CheatNotApplicableError, GAME_KINDS, applicable, findEndingPrompt } from './cheats.js'
import type { DisputeModel } from './model.js'
import { replayJob } from './replay.js'

const NIGHTLY = Number(process.env.TESSERA_GAMES ?? 0)
const COIN = 10n ** 18n

const greedy = (maxTokens: number, penalty = 1): JobParams => ({ ...GREEDY, repeatPenalty: penalty, repeatLastN: 4, maxTokens, stop: [] })
const sampled = (maxTokens: number): JobParams => ({ temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, repeatPenalty: 1, repeatLastN: 64, maxTokens, stop: [] })

/** The cheater lost where it cheated; its stake paid the challenger; the books balance. */
function assertCheaterLost(r: AttackReport, what: string) {
  assert.ok(r.disputed, `${what}: the auditor's replay differs, so it disputes`)
  assert.ok(r.game, `${what}: a game was played`)
  assert.equal(r.winner, 'challenger', `${what}: ${JSON.stringify(r.game.moves.map((m) => m.move))} ended ${r.game.why}`)
  assert.notEqual(r.game.why, WHY.JOB_LOST)
  assert.notEqual(r.game.why, WHY.TIMED_OUT, `${what}: the machine decided, not the clock (stuck: ${JSON.stringify(r.game.stuck)})`)
  const c = r.cheat!
  if (c.op !== undefined) {
    assert.deepEqual([r.game.at.traceLeaf, r.game.at.op, r.game.at.elem], [c.leaf, c.op, c.elem], `${what}: the game ends at the falsified element`)
    // a falsified middle micro-state: the game ends at the step into it, not at the element's last
    if (c.step !== undefined) assert.equal(r.game.at.step, c.step, `${what}: the game ends at the falsified micro-step`)
  } else {
    assert.equal(r.game.at.traceLeaf, c.leaf, `${what}: the game ends at the trace leaf that broke the rules`)
  }
  assert.ok(r.after.provider.stake < r.before.provider.stake, `${what}: the cheater is slashed`)
  // the challenger's opening bond and its depth bonds (one per level below the trace it moved at:
  // op, slot, micro-step) come back in full
  const levelOf = (m: string) => (m.startsWith('nameElement') ? 2 : Number(/^choose L(\d)/.exec(m)?.[1] ?? 0))
  const bonded = new Set(r.game.moves.filter((m) => m.side === 'challenger').map((m) => levelOf(m.move)).filter((l) => l > 0)).size
  assert.equal(r.after.challenger.owedByGame - r.before.challenger.owedByGame, COIN / 10n + BigInt(bonded) * (COIN / 20n), `${what}: bonds back`)
  // the slash reward (a sock puppet that flagged the job first keeps it: docs/CHAIN.md)
  if (c.kind !== 'self-dispute') assert.ok(r.after.challenger.owed > r.before.challenger.owed, `${what}: the challenger is paid the slash reward`)
  else assert.ok(r.puppet, `${what}: the puppet's game was played out`)
  assert.ok(r.conserved, `${what}: value conserved`)
}

function assertProviderWon(r: AttackReport, what: string) {
  assert.ok(r.game, `${what}: a game was played`)
  assert.equal(r.winner, 'provider', `${what}: ${JSON.stringify(r.game.moves.map((m) => m.move))} ended ${r.game.why}`)
  assert.equal(r.game.why, WHY.STEP_CHECKED, `${what}: the machine confirmed the provider's step`)
  assert.equal(r.after.provider.stake, r.before.provider.stake, `${what}: the honest provider keeps its stake`)
  assert.ok(r.after.provider.owedByGame > r.before.provider.owedByGame, `${what}: and earns a share of the liar's bond`)
  assert.ok(r.conserved, `${what}: value conserved`)
}

for (const [preset, type] of [['tiny', 'q8_0'], ['tiny-qwen2', 'q4_k_m']] as const) {
  describe(`${preset} ${type}: every cheater loses, every liar loses`, () => {
    let model: DisputeModel
    let net: Awaited<ReturnType<typeof createDisputeDevnet>>
    let nonce = 0n
    before(async () => {
      model = await tinyDisputeModel(preset, type, 3)
      net = await createDisputeDevnet()
    })
    after(async () => {
      await net?.close()
      model?.close()
    })
    const play = async (a: { prompt: number[]; params: JobParams; cheat?: CheatKind | 'random'; lie?: 'picks' | 'replay'; seed: number }) => {
      await net.topUp()
      return attackJob({ net, model, job: { prompt: a.prompt, params: a.params, seed: BigInt(a.seed) }, cheat: a.cheat, lyingChallenger: a.lie, seed: a.seed, nonce: nonce++ })
    }

    // greedy with a repetition penalty (PENALTY and ARGMAX), temperature sampling (RANK .. DRAW)
    const jobs = [{ name: 'greedy', params: greedy(3, 1.3) }, { name: 'sampled', params: sampled(3) }]
    for (const job of jobs) {
      test(`${job.name}: each op kind, sample, prompt and no-compute cheats lose at their own position`, async (t) => {
        const prompt = [11, 250, 3]
        const spec = jobSpecOf(model, { prompt, params: job.params, seed: 5n })
        const honest = replayJob(model.tf, spec)
        // (arith and window are deterministic cheats, played in arith.test.ts and window.test.ts)
        const kinds = CHEAT_KINDS.filter((k) => k !== 'length' && k !== 'self-dispute' && k !== 'arith' && k !== 'window' && applicable(model, spec, honest, k))
        // sampled jobs add only the sampling ops; the layer kinds are the greedy job's
        const mine = job.name === 'sampled' ? kinds.filter((k) => ['rank', 'sort', 'tscale', 'texp', 'tsum', 'prob', 'keep', 'draw', 'sample'].includes(k)) : kinds
        // CI: four seeds of every layer and head kind (each another leaf, element and value), two of the sampling ops
        const seeds = NIGHTLY ? Math.max(1, Math.ceil(NIGHTLY / 2 / (mine.length + 4))) : job.name === 'greedy' ? 4 : 2
        let played = 0
        for (const kind of mine) {
          for (let s = 0; s < seeds; s++) {
            let r: AttackReport
            try {
              r = await play({ prompt, params: job.params, cheat: kind, seed: 5 + s * 101 })
            } catch (e) {
              // e.g. quant256 on a model whose matmuls all read blocks of 32: no value it could falsify is read
              if (e instanceof CheatNotApplicableError) continue
              throw e
            }
            assertCheaterLost(r, `${kind} seed ${s}`)
            played++
          }
        }
        t.diagnostic(`${played} cheating games`)
        assert.ok(played >= seeds * (mine.length - 2), 'nearly every kind was playable')
      })
    }

    test('length (billing past the end of the answer), self-dispute (a sock puppet first) and random cheats lose', async () => {
      const params = greedy(4)
      const spec = jobSpecOf(model, { prompt: [1, 2], params, seed: 0n })
      const ending = findEndingPrompt(model, spec, 1, 4000)
      assert.ok(ending, 'a prompt whose answer ends')
      const seeds = NIGHTLY ? Math.max(2, Math.ceil(NIGHTLY / 2 / 6)) : 2
      for (let s = 0; s < seeds; s++) {
        assertCheaterLost(await play({ prompt: ending, params, cheat: 'length', seed: 40 + s }), `length seed ${s}`)
        assertCheaterLost(await play({ prompt: [11, 250, 3], params: greedy(3), cheat: 'self-dispute', seed: 50 + s }), `self-dispute seed ${s}`)
        assertCheaterLost(await play({ prompt: [11, 250, 3], params: greedy(3), cheat: 'random', seed: 60 + s }), `random seed ${s}`)
      }
    })

    test('lying challengers (seeded picks of level and position, or a wrong replay of their own) lose against the honest provider', async () => {
      const seeds = NIGHTLY ? Math.max(4, Math.ceil(NIGHTLY / 4)) : 4
      for (let s = 0; s < seeds; s++) {
        const lie = s % 2 ? 'replay' : 'picks'
        assertProviderWon(await play({ prompt: [11, 250, 3], params: s % 4 >= 2 ? sampled(3) : greedy(3, 1.3), lie, seed: 70 + s }), `liar (${lie}) seed ${s}`)
      }
    })

    test('an honest provider is not disputed by the honest auditor and keeps its pay', async () => {
      const r = await play({ prompt: [11, 250, 3], params: greedy(3), seed: 1 })
      assert.equal(r.disputed, false)
      assert.equal(r.honestWon, true)
      assert.ok(r.conserved)
    })
  })
}

test('cheat kinds cover the op table and the game-level cheats', () => {
  for (const k of ['att', 'qr', 'kr', 'norm', 'silu', 'res', 'q', 'embed', 'argmax', 'draw', ...GAME_KINDS]) assert.ok(CHEAT_KINDS.includes(k as CheatKind), k)
})
