/**
 * The game played in memory with the TypeScript twin of the judge, for tests that need no chain:
 * an honest challenger follows the first divergence of its TraceProvider from the provider's at
 * each level (trace leaves, frames, the named element's slot word, micro-states), and the bottom
 * is decided as the contract decides it: a one-step op (LOAD, STORE, TOKEN) by whether the
 * provider's leaf is the challenger's (the machine's oneStep is exact), an element step by
 * `executeStep` from the agreed pre-state with the values the judge would open. Returns where it
 * ended and who won.
 */
import { executeStep, nextStep } from '../../src/dispute/machine/program.js'
import { actBlockLeaf, microLeaf, stateResult } from '../../src/dispute/machine/state.js'
import type { TraceProvider } from '../../src/dispute/traceProvider.js'
import { firstDifference, hex } from '../../src/dispute/tree.js'
import { toHex } from '../../src/trace/merkle.js'

export type LocalOutcome = {
  providerWon: boolean
  how: 'no-divergence' | 'one-step' | 'result' | 'step'
  leaf: number
  op?: number
  opName?: string
  elem?: number
  step?: number
}

/** Plays `provider` against the honest `challenger` in memory. */
export function playLocally(provider: TraceProvider, challenger: TraceProvider): LocalOutcome {
  const leaf = firstDifference(provider.traceTree().leaves, challenger.traceTree().leaves)
  if (leaf < 0) return { providerWon: true, how: 'no-divergence', leaf: -1 }
  const pv = provider.transition(leaf)
  const cv = challenger.transition(leaf)
  const k = firstDifference(pv.opTree().leaves, cv.opTree().leaves)
  if (k <= 0) throw new RangeError(`leaf ${leaf}: the op-level leaves agree (or differ at the agreed pre-state)`)
  const op = cv.ops[k - 1]
  const at = { leaf, op: k, opName: op.name }
  if (!op.program) return { providerWon: toHex(pv.opTree().leaves[k]) === toHex(cv.opTree().leaves[k]), how: 'one-step', ...at }
  // the challenger names the first element whose value differs from its own
  const ps = pv.slot(k), cs = cv.slot(k)
  let j = -1
  if (ps.value && cs.value) {
    const n = cs.op.length
    for (let e = 0; e < n && j < 0; e++) {
      const a = ps.value.kind === 'words' ? ps.value.words[e] : hex(actBlockLeaf(ps.value.blocks[e].da, ps.value.blocks[e].qa))
      const b = cs.value.kind === 'words' ? cs.value.words[e] : hex(actBlockLeaf(cs.value.blocks[e].da, cs.value.blocks[e].qa))
      if (a !== b) j = e
    }
  }
  if (j < 0) return { providerWon: true, how: 'result', ...at }
  const pStates = pv.elementStates(k, j)
  const last = pStates.at(-1)!
  const pval = ps.value!
  const want = pval.kind === 'words' ? String(pval.words[j]) : toHex(actBlockLeaf(pval.blocks[j].da, pval.blocks[j].qa))
  const got = stateResult(last, pval.kind === 'blocks')
  if (('word' in got ? String(got.word) : toHex(got.leaf)) !== want) return { providerWon: false, how: 'result', ...at, elem: j }
  const s = firstDifference(pStates.map(microLeaf), cv.elementStates(k, j).map(microLeaf))
  if (s <= 0) return { providerWon: true, how: 'step', ...at, elem: j, step: s }
  // the judge: the agreed state s - 1, the reads opened in the agreed pre-frame (the challenger's values)
  const pre = cv.elementStates(k, j)[s - 1]
  const post = executeStep(cv.ops, pre, nextStep(cv.ops, pre).reads.map((r) => cv.read(k, r)))
  return { providerWon: toHex(microLeaf(post)) === toHex(microLeaf(pStates[s])), how: 'step', ...at, elem: j, step: s }
}
