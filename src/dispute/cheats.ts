/**
 * Every kind of cheating provider, built on the real replay so that each cheat is what a
 * rational cheater would commit: self-consistent everywhere it can be.
 *
 *   op kinds      one value of one op (by the op table's name: `att`, `qr`, `norm`, `silu`,
 *                 `res`, `q`, `quant32`, `argmax`, ...) is falsified at a seeded trace leaf and
 *                 element; the cheater's later ops, layers and positions are computed from it
 *                 (the machine's run of that transition with the value replaced, then the engine
 *                 continuing from its outputs), and the element's own program is honest up to
 *                 its final state, which carries the falsified value
 *   sample        another token at a seeded sampled position (the head's NEXT), the answer
 *                 continuing from it
 *   prompt        the answer to another prompt (one token changed at a seeded position) than
 *                 the one the client signed
 *   no-compute    random trace leaves (the model never ran); the tokens delivered are random
 *   length        bills tokens past the end of the answer: generation continues after its
 *                 end-of-generation token
 *   self-dispute  a game-level cheat (src/dispute/players/play.ts): the provider's sock puppet
 *                 opens a game on the job first; the trace carries one of the op cheats
 *   micro         one MIDDLE micro-state of an element's program is falsified (a seeded op kind,
 *                 element and step; `microOp` names the op kind): the element's later steps are
 *                 run honestly from it, so its final state carries the value they compute and
 *                 the game ends at that one step, not at the element's last one
 *   deliver       the client is delivered (and acknowledges) another answer than the one whose
 *                 trace the provider commits: one output token changed at a seeded position
 *   arith         the job computed under the other arithmetic than its model's registration
 *                 (docs/MACHINE.md "Which arithmetic"): a v1 engine serving a v2 model, or v2's
 *                 binary16 KV cache on a v1 model; honest otherwise, so it loses at a DOT8 or ACC
 *                 step, the only ones the two arithmetics do not share
 *   window        the job computed with another attention window than its model's root commits
 *                 to (docs/MACHINE.md "Sliding window"): full attention on a sliding-window
 *                 model, or a window of 2 on a model without one, defended with the machine of
 *                 the registered window; it loses the STORE one-step of the first position the
 *                 two windows tell apart
 *
 * `random` is a seeded pick over all of these. What a cheat changed is reported (`where`) so
 * tests can check the game ends there.
 */
import { BaseError } from '../errors.js'
import { type Hash, leafHash, toHex } from '../trace/merkle.js'
import { ARITH_V1, ARITH_V2 } from '../engine/version.js'
import type { ModelConfig } from '../engine/model/config.js'
import type { Transformer } from '../engine/model/transformer.js'
import { type OpCode, type OpDef, SLOT, bits, executeStep, nextStep, transitionOps, val } from './machine/program.js'
import { type MicroState, type SlotValue, actBlockLeaf, microLeaf, microState } from './machine/state.js'
import type { DisputeModel } from './model.js'
import { INVALID_LEAF, type JobSpec, type JobTrace, type Override, replayJob } from './replay.js'
import { InvalidReadError } from './machine/transition.js'
import { type TraceProvider, type TransitionView, createReplayTraceProvider, machineSampling } from './traceProvider.js'
import { firstDifference, hex } from './tree.js'

import { CHEAT_KINDS, type CheatKind, GAME_KINDS, OP_KINDS } from './cheatKinds.js'

// The kinds' names live in ./cheatKinds.ts (no imports, so the CLI lists them without loading this module).
export { CHEAT_KINDS, type CheatKind, GAME_KINDS, OP_KINDS }

/** A cheat kind that cannot be played on this model or job (e.g. `qb` on a llama model); the message says why. */
export class CheatNotApplicableError extends BaseError {
  override name = 'CheatNotApplicableError'
}

/**
 * What a cheat changed: the trace leaf, and for op cheats the op (its number and name) and element;
 * for `micro` also the micro-state it falsified (the game's last step takes state `step - 1` to it).
 */
export type CheatSite = { kind: CheatKind; leaf: number; pos: number; layer: number; op?: number; opName?: string; elem?: number; step?: number }

export type Cheat = {
  kind: CheatKind
  /** The cheater's view of the job (what it commits and reveals). */
  provider: TraceProvider
  /** The cheater's job: its tokens, what it commits and bills. */
  trace: JobTrace
  /** `deliver`: the tokens the client was streamed and acknowledged, where they are not `trace.outputs`. */
  delivered?: readonly number[]
  where: CheatSite
  /** self-dispute: the provider opens a sock-puppet game on its own job first. */
  sockPuppet: boolean
}

/** A small seeded generator (mulberry32): the same seed picks the same cheat everywhere. */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

const pick = <T>(rng: () => number, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]

/** Whether op `op` is of op kind `kind`. */
export function opOfKind(op: OpDef, kind: string): boolean {
  if (op.code === 'MATMUL') return op.name.toLowerCase() === kind
  if (op.code === 'BIAS' || op.code === 'ROPE' || op.code === 'HEAD_RMS' || op.code === 'HEAD_NORM') return op.name.toLowerCase() === kind
  return op.code.toLowerCase() === kind
}

// Ops whose slot holds integers (token ids, ranks, counts), falsified as another integer.
const INTEGER_OPS: ReadonlySet<OpCode> = new Set(['ARGMAX', 'DRAW', 'RANK', 'SORT', 'KEEP'])

/** The value an op wrote with element j falsified (attempt n > 0 makes a larger change). */
function falsify(op: OpDef, v: SlotValue, j: number, rng: () => number, attempt: number, vocab: number): SlotValue {
  if (v.kind === 'blocks') {
    const blocks = v.blocks.slice()
    const b = { da: blocks[j].da, qa: blocks[j].qa.slice() }
    if (attempt % 2 === 1) b.da = bits(val(b.da) * 2 + 1e-3)
    else {
      const i = Math.floor(rng() * b.qa.length)
      const q = (b.qa[i] << 24) >> 24
      b.qa[i] = (q >= 120 ? q - 7 : q + 7) & 0xff
    }
    blocks[j] = b
    return { kind: 'blocks', blocks }
  }
  const w = v.words.slice()
  if (INTEGER_OPS.has(op.code)) {
    if (op.code === 'KEEP') {
      // a kept count stays a count the draw can use (1 .. K)
      w[j] = attempt === 0 && w[j] > 1 ? w[j] - 1 : w[j] > 1 ? 1 : 2
    } else {
      const n = op.code === 'SORT' || op.code === 'RANK' ? op.length : vocab
      w[j] = (w[j] + 1 + Math.floor(rng() * (n - 1))) % n
    }
  } else if (attempt === 0) {
    // the subtle cheat: one high mantissa bit of one binary32 value
    w[j] ^= 1 << (18 + Math.floor(rng() * 5))
  } else if (attempt < 6) {
    w[j] = bits(val(w[j]) * (attempt + 1) + (rng() < 0.5 ? -attempt : attempt))
  } else {
    // values whose change normalization cancels (a softmax's max) need one far off to matter
    w[j] = bits(-100 * attempt)
  }
  return { kind: 'words', words: w }
}

/** The element's honest micro-states with the final state's result replaced by the falsified slot element. */
function falsifiedStates(states: MicroState[], v: SlotValue, j: number): MicroState[] {
  const last = states.at(-1)!
  const r = last.r.slice()
  let data = last.data
  if (v.kind === 'blocks') {
    r[0] = v.blocks[j].da
    data = v.blocks[j].qa
  } else {
    r[0] = v.words[j]
  }
  return [...states.slice(0, -1), microState(last.op, last.elem, last.step, r, data)]
}

/**
 * Builds cheat `kind` (`random`: a seeded pick) against the honest job `spec` of `model`, from the
 * honest replay `honest` (replayJob(model.tf, spec)).
 *
 * @example
 *   const c = makeCheat(model, spec, honest, 'att', 7)
 *   c.provider.traceTree().root   // the cheater's traceRoot
 *   c.where                       // { leaf, pos, layer, op, opName: 'ATT', elem }
 */
export function makeCheat(model: DisputeModel, spec: JobSpec, honest: JobTrace, kind: CheatKind | 'random', seed: number, opts: { microOp?: string } = {}): Cheat {
  const rng = seededRng(seed * 7919 + 17)
  if (kind === 'random') {
    // a seeded pick among the kinds this job has (a llama model has no biases, a greedy job no DRAW)
    const kinds = CHEAT_KINDS.filter((x) => applicable(model, spec, honest, x))
    for (let tries = 0; ; tries++) {
      try {
        return makeCheat(model, spec, honest, pick(rng, kinds), seed + tries)
      } catch (e) {
        if (!(e instanceof CheatNotApplicableError) || tries >= 8) throw e
      }
    }
  }
  const k: CheatKind = kind
  const nL = model.config.nLayer
  const leafOf = (pos: number, layer: number) => pos * (nL + 1) + layer
  const site = (leaf: number): CheatSite => ({ kind: k, leaf, pos: Math.floor(leaf / (nL + 1)), layer: leaf % (nL + 1) })
  switch (k) {
    case 'prompt': {
      const q = Math.floor(rng() * spec.prompt.length)
      const other = spec.prompt.slice()
      other[q] = (other[q] + 1 + Math.floor(rng() * (model.config.vocabSize - 2))) % model.config.vocabSize
      const trace = replayJob(model.tf, { ...spec, prompt: other })
      // the first state that shows the other token: the teacher-forced head before it (TOKEN), or LOAD at position 0
      const leaf = q === 0 ? leafOf(0, 0) : leafOf(q - 1, nL)
      return { kind: k, trace, provider: createReplayTraceProvider(model, trace, { signedPrompt: spec.prompt }), where: site(leaf), sockPuppet: false }
    }
    case 'no-compute': {
      // The delivered tokens are random too; the op level is the best such a cheater can do: the
      // honest machine's frames (computed now, from those tokens) ending in its random leaf.
      const outputs = honest.outputs.map(() => Math.floor(rng() * model.config.vocabSize))
      const trace = replayJob(model.tf, spec, { forced: outputs })
      const leaves: Hash[] = trace.leaves.map(() => randomHash(rng))
      const fake: JobTrace = { ...trace, leaves }
      return { kind: k, trace: fake, provider: createReplayTraceProvider(model, trace, { leaves }), where: site(0), sockPuppet: false }
    }
    case 'length': {
      if (!model.eogTokens.includes(honest.outputs.at(-1)!)) {
        throw new CheatNotApplicableError(`the honest answer stops at max-tokens (${honest.outputs.length}), not at an end-of-generation token: nothing to bill past it`, { details: 'pick a prompt whose answer ends (findEndingPrompt)' })
      }
      const extra = 1 + Math.floor(rng() * 2)
      const trace = replayJob(model.tf, { ...spec, maxTokens: honest.outputs.length + extra }, { ignoreEog: true })
      // the first head that consumes the end token is the first state that may not exist
      return { kind: k, trace, provider: createReplayTraceProvider(model, trace), where: site(leafOf(spec.prompt.length + honest.outputs.length - 1, nL)), sockPuppet: false }
    }
    case 'self-dispute': {
      const kinds = OP_KINDS.filter((x) => applicable(model, spec, honest, x))
      for (let tries = 0; ; tries++) {
        try {
          const inner = makeCheat(model, spec, honest, pick(rng, kinds), seed + 1 + tries)
          return { ...inner, kind: k, where: { ...inner.where, kind: k }, sockPuppet: true }
        } catch (e) {
          if (!(e instanceof CheatNotApplicableError) || tries >= 8) throw e
        }
      }
    }
    case 'micro': {
      // op kinds whose element programs have a middle state of binary32 registers (SILU, RES, ...
      // are one step; ARGMAX, RANK, ... and EMBED keep indices and token ids in theirs)
      const kinds = opts.microOp ? [opts.microOp] : OP_KINDS.filter((x) => sitesOf(model, spec, honest, x).some(({ op }) => op.program!(0).steps >= 2 && !INTEGER_OPS.has(op.code) && op.code !== 'EMBED'))
      for (let tries = 0; ; tries++) {
        try {
          return opCheat(model, spec, honest, pick(rng, kinds), k, rng, undefined, true)
        } catch (e) {
          if (!(e instanceof CheatNotApplicableError) || tries >= 8 || opts.microOp) throw e
        }
      }
    }
    case 'deliver': {
      // the trace is the honest one; the stream the client acknowledged has one token changed
      const i = Math.floor(rng() * honest.outputs.length)
      const delivered = honest.outputs.slice()
      delivered[i] = (delivered[i] + 1 + Math.floor(rng() * (model.config.vocabSize - 1))) % model.config.vocabSize
      // the first state the two answers disagree on: the head that sampled output i
      return { kind: k, trace: honest, delivered, provider: createReplayTraceProvider(model, honest, { delivered }), where: site(leafOf(honest.nPrompt - 1 + i, nL)), sockPuppet: false }
    }
    case 'arith': {
      const other = model.arith === ARITH_V2 ? ARITH_V1 : ARITH_V2
      const trace = replayJob(model.tf, { ...spec, arith: other })
      const provider = createReplayTraceProvider({ ...model, arith: other }, trace)
      // the honest auditor replays the delivered answer under the registered arithmetic: the game
      // ends where the two first differ, at a DOT8 (SCORE) or ACC (ATT) step
      const auditor = createReplayTraceProvider(model, replayJob(model.tf, spec, { forced: trace.outputs }))
      return { kind: k, trace, provider, where: { ...firstDivergence(provider, auditor, site), kind: k }, sockPuppet: false }
    }
    case 'window': {
      // the cheater's engine: the same weights under the registered root, another window; it
      // defends with the node's machine (the registered window), so its op-level leaves are the
      // honest ones up to its own trace leaf, and it loses the STORE of the first position the
      // two windows tell apart. (A cheater whose machine follows its own window cannot even open
      // its S and E slots at the judge's lengths: it is stuck at that SCORE op and times out.)
      const tf = withAttentionWindow(model.tf, model.window === 0 ? 2 : undefined)
      const trace = replayJob(tf, spec)
      const provider = createReplayTraceProvider(model, trace)
      const auditor = createReplayTraceProvider(model, replayJob(model.tf, spec, { forced: trace.outputs }))
      return { kind: k, trace, provider, where: { ...firstDivergence(provider, auditor, site), kind: k }, sockPuppet: false }
    }
    default:
      return opCheat(model, spec, honest, k === 'sample' ? (spec.sampling.temperature === 0 ? 'argmax' : 'draw') : k, k, rng)
  }
}

/**
 * The window cheater's engine: `tf`'s weights and backend with attention window `window`
 * (undefined: full attention) in its config, which its forward pass and KV cache follow.
 */
function withAttentionWindow(tf: Transformer, window: number | undefined): Transformer {
  const config: ModelConfig = { ...tf.config, slidingWindow: window }
  if (window === undefined) delete config.slidingWindow
  return Object.assign(Object.create(Object.getPrototypeOf(tf) as object) as Transformer, tf, { config })
}

/**
 * Where an honest challenger following `theirs` meets `mine` at the bottom of the game: the first
 * differing trace leaf, op-level leaf (op k), slot element and micro-state (as the players descend).
 */
function firstDivergence(mine: TraceProvider, theirs: TraceProvider, site: (leaf: number) => CheatSite): CheatSite {
  const leaf = firstDifference(mine.traceTree().leaves, theirs.traceTree().leaves)
  if (leaf < 0) throw new CheatNotApplicableError('the two traces agree: nothing to dispute')
  const pv = mine.transition(leaf), cv = theirs.transition(leaf)
  const k = firstDifference(pv.opTree().leaves, cv.opTree().leaves)
  const op = cv.ops[k - 1]
  if (!op?.program) return { ...site(leaf), op: k, opName: op?.name }
  const word = (v: SlotValue | undefined, e: number) => (v?.kind === 'words' ? String(v.words[e]) : v ? hex(actBlockLeaf(v.blocks[e].da, v.blocks[e].qa)) : '')
  const ps = pv.slot(k).value, cs = cv.slot(k).value
  let elem = 0
  while (elem < op.length - 1 && word(ps, elem) === word(cs, elem)) elem++
  const step = firstDifference(pv.elementStates(k, elem).map(microLeaf), cv.elementStates(k, elem).map(microLeaf))
  return { ...site(leaf), op: k, opName: op.name, elem, step }
}

function randomHash(rng: () => number): Hash {
  return leafHash(Uint8Array.from({ length: 32 }, () => Math.floor(rng() * 256)))
}

/** The trace leaves whose transition has an op of `kind` with elements. */
function sitesOf(model: DisputeModel, spec: JobSpec, honest: JobTrace, kind: string): { leaf: number; op: OpDef }[] {
  const c = model.config
  const out: { leaf: number; op: OpDef }[] = []
  const shape = (n: string) => model.weights(n)
  for (let leaf = 0; leaf < honest.leaves.length; leaf++) {
    const pos = Math.floor(leaf / (c.nLayer + 1)), layer = leaf % (c.nLayer + 1)
    const ops = transitionOps({ config: c, arith: model.arith, window: model.window, shape, pos, layer, nPrompt: honest.nPrompt, sampling: machineSampling(spec.sampling) })
    for (const op of ops) if (op.program && op.length > 0 && opOfKind(op, kind)) out.push({ leaf, op })
  }
  return out
}

/** Whether op kind `kind` occurs in this job (qwen2's biases, penalty, temperature sampling). */
export function applicable(model: DisputeModel, spec: JobSpec, honest: JobTrace, kind: CheatKind): boolean {
  if ((GAME_KINDS as readonly string[]).includes(kind)) return kind !== 'length' || model.eogTokens.includes(honest.outputs.at(-1)!)
  return sitesOf(model, spec, honest, kind).length > 0
}

/**
 * A falsified middle micro-state of element j of op k (in `base`, the honest transition): state s
 * (1 <= s < steps) with one bit of one of its registers flipped, then the element's later steps run
 * from it on the honest reads. Undefined when the change does not reach the element's result (e.g.
 * a maximum that ignores it) or a later step cannot run on it.
 */
function midStateCheat(base: TransitionView, op: OpDef, j: number, rng: () => number): { states: MicroState[]; step: number } | undefined {
  const honestStates = base.elementStates(op.op, j)
  const steps = honestStates.length - 1
  if (steps < 2) return undefined
  const s = 1 + Math.floor(rng() * (steps - 1))
  const at = honestStates[s]
  const r = Array.from(at.r)
  if (r.length === 0) return undefined
  const x = Math.floor(rng() * r.length)
  r[x] = (r[x] ^ (1 << (18 + Math.floor(rng() * 5)))) >>> 0
  const states = honestStates.slice(0, s)
  let cur = microState(at.op, at.elem, at.step, r, at.data)
  states.push(cur)
  try {
    for (let t = s + 1; t <= steps; t++) {
      cur = executeStep(base.ops, cur, nextStep(base.ops, cur).reads.map((x) => base.read(op.op, x)))
      states.push(cur)
    }
  } catch (e) {
    // a register a later step cannot use (an index or row out of range): pick again
    if (e instanceof Error) return undefined
    throw e
  }
  const last = states[steps], honestLast = honestStates[steps]
  if (last.r[0] === honestLast.r[0] && toHex(last.data) === toHex(honestLast.data)) return undefined
  return { states, step: s }
}

/** The slot `v` with element j replaced by the result of final state `last`. */
function withResult(v: SlotValue, j: number, last: MicroState): SlotValue {
  if (v.kind === 'blocks') {
    const blocks = v.blocks.slice()
    blocks[j] = { da: last.r[0], qa: last.data.slice() }
    return { kind: 'blocks', blocks }
  }
  const words = v.words.slice()
  words[j] = last.r[0]
  return { kind: 'words', words }
}

function opCheat(model: DisputeModel, spec: JobSpec, honest: JobTrace, opKind: string, kind: CheatKind, rng: () => number, forced?: readonly number[], mid = false): Cheat {
  const sites = sitesOf(model, spec, honest, opKind)
  if (sites.length === 0) throw new CheatNotApplicableError(`this job has no ${opKind} op`, { details: `model ${model.config.arch}, temperature ${spec.sampling.temperature}, repeat penalty ${spec.sampling.repeatPenalty}` })
  const honestProvider = createReplayTraceProvider(model, honest)
  const nL = model.config.nLayer
  for (let attempt = 0; attempt < 12; attempt++) {
    const { leaf, op } = pick(rng, sites)
    const j = Math.floor(rng() * op.length)
    const base = honestProvider.transition(leaf)
    const v = base.machine.slots[op.slot]!
    const micro = mid ? midStateCheat(base, op, j, rng) : undefined
    if (mid && !micro) continue
    const bad = micro ? withResult(v, j, micro.states.at(-1)!) : falsify(op, v, j, rng, attempt, model.config.vocabSize)
    const tamper = (o: OpDef, value: SlotValue) => (o.op === op.op ? bad : value)
    // The cheater's own run of the transition, its value replaced: later ops read it.
    let mine: TransitionView
    try {
      mine = createReplayTraceProvider(model, honest, { tamper: (i) => (i === leaf ? tamper : undefined) }).transition(leaf)
    } catch (e) {
      // a value later ops cannot even read (e.g. an index outside its vector): pick again
      if (e instanceof InvalidReadError) continue
      throw e
    }
    if (toHex(mine.machine.post) === toHex(honest.leaves[leaf])) continue // no effect on the leaf (e.g. an unread quantization): pick again
    const pos = Math.floor(leaf / (nL + 1)), layer = leaf % (nL + 1)
    const f32 = (slot: number) => {
      const s = mine.machine.slots[slot]
      if (s?.kind !== 'words') throw new RangeError(`slot ${slot} is not a word slot of the tampered transition`)
      return new Float32Array(s.words.buffer.slice(s.words.byteOffset, s.words.byteOffset + s.words.byteLength))
    }
    const override: Override = layer === nL
      ? { pos, head: true, logits: f32(SLOT.L), next: (mine.machine.slots[SLOT.NEXT] as { words: Uint32Array }).words[0] }
      : { pos, layer, residual: f32(SLOT.X3), k: f32(SLOT.KR), v: f32(model.config.arch === 'qwen2' ? SLOT.VB : SLOT.V) }
    const trace = replayJob(model.tf, spec, { override, forced })
    if (toHex(trace.leaves[leaf]) !== toHex(mine.machine.post)) {
      // a wrong replay that follows the delivered tokens (`forced`) and changed the token its
      // head computes holds no valid head there (INVALID_LEAF): pick another value
      if (forced && toHex(trace.leaves[leaf]) === toHex(INVALID_LEAF)) continue
      throw new RangeError(`the cheater's replay at leaf ${leaf} is not its own machine run`)
    }
    const provider = createReplayTraceProvider(model, trace, {
      tamper: (i) => (i === leaf ? tamper : undefined),
      element: (i, k, e, states) => (i === leaf && k === op.op && e === j ? (micro?.states ?? falsifiedStates(states, bad, j)) : states),
    })
    return { kind, trace, provider, where: { kind, leaf, pos, layer, op: op.op, opName: op.name, elem: j, ...(micro ? { step: micro.step } : {}) }, sockPuppet: false }
  }
  throw new CheatNotApplicableError(`no falsified ${mid ? 'middle micro-state of a ' : ''}${opKind} value changed this job's trace in 12 tries`)
}

/**
 * A prompt whose answer ends at an end-of-generation token before `spec.maxTokens` (what the
 * `length` cheat needs: an answer to bill past): the first of `tries` seeded prompts of
 * `spec.prompt.length` tokens, or undefined.
 *
 * @example
 *   const prompt = findEndingPrompt(model, spec, 1, 4000)   // then makeCheat(.., 'length', ..)
 */
export function findEndingPrompt(model: DisputeModel, spec: JobSpec, seed: number, tries: number, signal?: AbortSignal): number[] | undefined {
  const rng = seededRng(seed * 104729 + 3)
  const eog = new Set(model.eogTokens)
  const V = model.config.vocabSize
  for (let t = 0; t < tries; t++) {
    signal?.throwIfAborted()
    const prompt = spec.prompt.map(() => Math.floor(rng() * V)).filter((x) => !eog.has(x))
    if (prompt.length === 0) continue
    const r = replayJob(model.tf, { ...spec, prompt, maxTokens: Math.max(1, spec.maxTokens - 1) })
    if (eog.has(r.outputs.at(-1)!)) return prompt
  }
  return undefined
}

/**
 * The view of an auditor whose own replay is wrong (a lying challenger that believes itself): the
 * answer it was delivered (`outputs`) replayed with one op value falsified at a seeded position
 * (a seeded op kind this job has), so its trace has the claim's shape and differs from the honest
 * one from that position on.
 */
export function wrongReplay(model: DisputeModel, spec: JobSpec, honest: JobTrace, outputs: readonly number[], seed: number): TraceProvider {
  const rng = seededRng(seed * 613 + 5)
  const kinds = OP_KINDS.filter((x) => applicable(model, spec, honest, x))
  for (let tries = 0; ; tries++) {
    try {
      const kind = pick(rng, kinds)
      return opCheat(model, spec, honest, kind, kind, rng, outputs).provider
    } catch (e) {
      if (!(e instanceof CheatNotApplicableError) || tries >= 8) throw e
    }
  }
}
