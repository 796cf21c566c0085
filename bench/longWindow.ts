/**
 * Disputes deep in a long job (docs/BENCHMARKS.md "Long windows"): the tiny llama Q8_0 preset with
 * an 8,192-token context, a prompt of N seeded random tokens and one output token, played on a
 * fresh embedded chain per game against a cheat at a seeded late position:
 * `node --import tsx bench/longWindow.ts [N=4000] [KIND=att|micro:OP] [SEEDS=1,2,3]`.
 * Prints, per game, where the cheat was and where the game ended, the rounds, the deciding move's
 * gas (settlement included), each side's whole-game gas and the wall time. Each game replays the
 * whole job three times (provider, cheater, auditor): ~1 minute per game at N = 4,000.
 */
import { attackJob } from '../src/dispute/attack.js'
import { type CheatKind, seededRng } from '../src/dispute/cheats.js'
import { PRESETS } from '../src/engine/model/presets.js'
import { createDisputeDevnet } from '../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../test/support/disputeJobs.js'
import { benchArgs } from './util.js'

const positionals = benchArgs({
  summary: 'Disputes deep in a long job: the tiny llama Q8_0 preset, a prompt of N tokens, a cheat at a seeded late position, one game per seed on a fresh embedded chain (~1 minute a game at N = 4,000). Prints a line per game; writes nothing.',
  usage: 'node --import tsx bench/longWindow.ts [N=4000] [KIND=att|micro:OP] [SEEDS=1,2,3]',
  positionals: 3,
})

PRESETS['tiny-long'] ??= { ...PRESETS.tiny, name: 'tiny-long', description: 'tiny with an 8,192-token context (long-window disputes)', contextLength: 8192 }
const N = Number(positionals[0] ?? 4000)
const [kind, microOp] = (positionals[1] ?? 'att').split(':') as [CheatKind, string | undefined]
const seeds = (positionals[2] ?? '1,2,3').split(',').map(Number)
const model = await tinyDisputeModel('tiny-long', 'q8_0', 3)
const rng = seededRng(7)
const prompt = Array.from({ length: N }, () => 3 + Math.floor(rng() * (model.config.vocabSize - 3)))
try {
  for (const seed of seeds) {
    const net = await createDisputeDevnet()
    const t0 = performance.now()
    try {
      const r = await attackJob({ net, model, job: { prompt, params: { ...GREEDY, maxTokens: 1, stop: [] }, seed: 0n }, cheat: kind, microOp, seed, nonce: 0n })
      const g = r.game
      const last = g?.moves.at(-1)
      console.log(JSON.stringify({
        N, kind: positionals[1] ?? 'att', seed, cheat: r.cheat, winner: r.winner, at: g?.at, rounds: g?.rounds, last: last?.move, gas: String(last?.gasUsed),
        provider: String(g?.gas.provider), challenger: String(g?.gas.challenger), ms: Math.round(performance.now() - t0),
      }))
    } finally {
      await net.close()
    }
  }
} finally {
  model.close()
}
