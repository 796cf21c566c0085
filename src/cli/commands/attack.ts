/**
 * `tessera attack`: watch a cheater lose. Plays one whole job on the embedded chain (request,
 * answer, claim, audit, the dispute to its end) with an honest client and auditor against a
 * provider that cheats by KIND, or an honest provider against a lying challenger, and prints who
 * won, the stakes and bonds before and after, the rounds and the gas. Exit 0 when the honest
 * side won.
 */
import type { AttackReport } from '../../dispute/attack.js'
import { CHEAT_KINDS, type CheatKind } from '../../dispute/cheatKinds.js'
import { InvalidParameterError } from '../../errors.js'
import type { JobParams } from '../../trace/receipt.js'
import type { Command } from '../args.js'
import { load } from '../lazy.js'
import { UsageError } from '../args.js'
import { checkInputFile } from '../files.js'

const WHY = ['', 'the machine executed the disputed step', 'a clock ran out', "the provider's own state broke its program", 'upheld', 'voided']

function print(r: AttackReport, model: string, formatEther: (wei: bigint) => string): void {
  const coin = (x: bigint) => `${formatEther(x)} coin`
  const delta = (a: bigint, b: bigint) => `${coin(a)} -> ${coin(b)}`
  const lines: string[] = []
  lines.push(`model ${model}`)
  if (r.cheat) {
    const c = r.cheat
    const where = c.opName ? `op ${c.op} (${c.opName}) element ${c.elem} of trace leaf ${c.leaf}` : `trace leaf ${c.leaf}`
    lines.push(`cheat: ${c.kind} at position ${c.pos}, layer ${c.layer}: ${where}`)
  } else lines.push(r.lyingChallenger ? 'honest provider against a lying challenger' : 'honest provider, honest auditor')
  lines.push(`answer: ${r.nOutput} output tokens claimed (claim gas ${r.gas.claim})`)
  if (!r.game) lines.push("audit: the auditor's replay has the provider's trace root: no dispute")
  else {
    const g = r.game
    lines.push(`dispute: game ${g.gameId}, ${g.rounds} rounds, ${g.moves.length} moves; ended at trace leaf ${g.at.traceLeaf}, op ${g.at.op}, element ${g.at.elem}`)
    lines.push(`  moves: ${g.moves.map((m) => `${m.side === 'provider' ? 'P' : m.side === 'challenger' ? 'C' : '*'}:${m.move}`).join(', ')}`)
    lines.push(`  gas: provider ${g.gas.provider}, challenger ${g.gas.challenger} (+ open ${r.gas.open})${g.gas.anyone ? `, timeout ${g.gas.anyone}` : ''}`)
    lines.push(`  ${g.providerWon ? 'provider' : 'challenger'} won: ${WHY[g.why] ?? g.why}${g.stuck ? ` (the ${g.stuck.side} could not move: ${g.stuck.error})` : ''}`)
    if (r.puppet) lines.push(`  sock puppet's game ${r.puppet.gameId}: ${r.puppet.why}`)
  }
  lines.push(`provider stake: ${delta(r.before.provider.stake, r.after.provider.stake)}; owed by the game: ${delta(r.before.provider.owedByGame, r.after.provider.owedByGame)}`)
  lines.push(`challenger owed: settlement ${delta(r.before.challenger.owed, r.after.challenger.owed)}, game ${delta(r.before.challenger.owedByGame, r.after.challenger.owedByGame)}`)
  lines.push(`client escrow: ${delta(r.before.client.escrow, r.after.client.escrow)}; bonds held: ${delta(r.before.bonds, r.after.bonds)}`)
  lines.push(`value conserved: ${r.conserved ? 'yes' : 'NO'}`)
  lines.push(r.honestWon ? 'the honest side won' : 'THE HONEST SIDE LOST')
  console.log(lines.join('\n'))
}

const attack: Command = {
  name: 'attack',
  summary: 'Play one job on the embedded chain against a cheating provider (or a lying challenger) and show who wins',
  usage: 'attack --model FILE --cheat KIND [--seed N] [--json] [--lying-challenger]',
  flags: {
    model: { type: 'string', short: 'm', description: 'GGUF model file (small: every transition is replayed by the dispute machine)' },
    cheat: { type: 'string', description: `what the provider falsifies: ${[...CHEAT_KINDS, 'random'].join(', ')}` },
    seed: { type: 'number', description: "picks the cheat's position (and the liar's choices)", default: 1 },
    'lying-challenger': { type: 'boolean', description: 'an honest provider against a challenger that disputes a correct position' },
    prompt: { type: 'string', short: 'p', description: 'prompt text (default: three seeded tokens)' },
    'max-tokens': { type: 'number', short: 'n', description: 'output tokens at most', default: 3 },
    temperature: { type: 'number', description: '0 = greedy', default: 0 },
    json: { type: 'boolean', description: 'print the report as JSON' },
  },
  async run(a, signal) {
    const path = a.flags.model
    if (typeof path !== 'string' || path === '') throw new UsageError('missing --model', { details: 'see --help' })
    checkInputFile(path)
    const lying = a.flags['lying-challenger'] === true
    const cheatFlag = a.flags.cheat
    if (!lying && typeof cheatFlag !== 'string') throw new UsageError('missing --cheat (or --lying-challenger)', { details: `kinds: ${[...CHEAT_KINDS, 'random'].join(', ')}` })
    if (lying && cheatFlag !== undefined) throw new UsageError('--cheat and --lying-challenger play different games: give one')
    const cheat = cheatFlag as CheatKind | 'random' | undefined
    if (cheat !== undefined && cheat !== 'random' && !CHEAT_KINDS.includes(cheat)) throw new InvalidParameterError('cheat', cheat, [...CHEAT_KINDS, 'random'].join(', '))
    const seed = Number(a.flags.seed)
    if (!Number.isInteger(seed) || seed < 0) throw new InvalidParameterError('seed', a.flags.seed, 'an integer >= 0')
    const maxTokens = Number(a.flags['max-tokens'])
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidParameterError('max-tokens', maxTokens, 'an integer >= 1')
    const [{ formatEther }, { createDevnet }, { attackJob, jobSpecOf }, { findEndingPrompt, seededRng }, { openDisputeModel }] = await load(
      signal,
      Promise.all([import('viem'), import('../../chain/devnet.js'), import('../../dispute/attack.js'), import('../../dispute/cheats.js'), import('../../dispute/model.js')]),
    )

    const model = await openDisputeModel(path)
    try {
      const params: JobParams = { temperature: Number(a.flags.temperature), topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, repeatLastN: 64, maxTokens, stop: [] }
      const rng = seededRng(seed)
      let prompt = typeof a.flags.prompt === 'string' ? model.encode(a.flags.prompt) : [0, 1, 2].map(() => 3 + Math.floor(rng() * (model.config.vocabSize - 3)))
      if (cheat === 'length') {
        // billing past the end needs an answer that ends: find a prompt whose answer does
        const found = findEndingPrompt(model, jobSpecOf(model, { prompt, params: { ...params, maxTokens: Math.max(maxTokens, 4) }, seed: BigInt(seed) }), seed, 4000, signal)
        if (!found) throw new InvalidParameterError('cheat', 'length', 'a model whose answers end: no prompt tried ends before max-tokens')
        prompt = found
        params.maxTokens = Math.max(maxTokens, 4)
      }
      if (!a.flags.json) console.error(`playing one job of ${prompt.length} prompt tokens on the embedded chain ...`)
      const net = await createDevnet()
      try {
        const r = await attackJob({ net, model, job: { prompt, params, seed: BigInt(seed) }, cheat, lyingChallenger: lying, seed, nonce: 0n, signal })
        if (a.flags.json) console.log(JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2))
        else print(r, path, formatEther)
        return r.honestWon ? 0 : 1
      } finally {
        await net.close()
      }
    } finally {
      model.close()
    }
  },
}

export const attackCommands: Command[] = [attack]
