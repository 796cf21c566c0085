/**
 * The trace-provider interface (op-challenger's shape): everything one side of a dispute commits
 * or reveals at each level of the game for one job, computed lazily and cached per transition.
 *
 *   level 0   trace leaves v2 and their tree (the receipt's traceRoot)
 *   level 1   below trace leaf i: the transition's op-level leaves (pre, frame after each op,
 *             post), each op's slot (root, value, frame path)
 *   level 2   below op k: element j's micro-states and their tree
 *   steps     the value of any read a step opens (the judge's openings are built from these)
 *
 * `createReplayTraceProvider` puts the real engine replay (src/dispute/replay.ts) and the
 * dispute machine (computeTransition) behind it: the honest provider and the honest auditor both
 * use it; src/dispute/cheats.ts wraps it to play every kind of cheater. The players
 * (src/dispute/players/) see nothing else of a job.
 */
import { type Hex, toHex } from 'viem'
import type { ModelConfig } from '../engine/model/config.js'
import type { SamplingParams } from '../engine/sample.js'
import { BaseError } from '../errors.js'
import { type Hash, ZERO } from '../trace/merkle.js'
import { VectorTree, vectorRoot } from '../trace/vector.js'
import { tokensRoot } from '../trace/receipt.js'
import { type MachineSampling, type OpDef, type Read, type ReadValue, SLOT } from './machine/program.js'
import { type MicroState, type SlotValue, microLeaf, slotRoot } from './machine/state.js'
import { type OpeningSource, type TraceSource, oneStepProof, openStep, resultOpening } from './machine/openings.js'
import { type Transition, type TransitionInput, computeTransition } from './machine/transition.js'
import type { DisputeModel } from './model.js'
import type { JobTrace } from './replay.js'
import { type LevelTree, levelTree } from './tree.js'

/** One op's slot as the provider reveals it at enterOp (and publishes for the challenger to name an element). */
export type OpSlot = {
  op: OpDef
  /** The slot root the op wrote (ZERO for an empty block vector). */
  root: Hash
  /** The slot's words or blocks. */
  value: SlotValue | undefined
  /** The slot's 6-hash path in the frame after op k (the same path holds ZERO in frame k - 1). */
  path: Hash[]
}

/** Everything one side holds below one trace leaf. */
export interface TransitionView {
  /** The trace leaf index, its position and layer (nLayer: the head). */
  readonly index: number
  readonly pos: number
  readonly layer: number
  readonly ops: readonly OpDef[]
  /** The computed transition (slots, frames, reads), for openings. */
  readonly machine: Transition
  /** Level 1: leaves [pre, frame after op 1 .. n - 1, post], n = ops.length. */
  opTree(): LevelTree
  slot(k: number): OpSlot
  /** Level 2: micro-states 0 .. steps of element j of op k. */
  elementStates(k: number, j: number): readonly MicroState[]
  elementTree(k: number, j: number): LevelTree
  /** The value of a read in op k's pre-frame (what the judge opens). */
  read(k: number, r: Read): ReadValue
  /** The encoded openings this side's moves carry (src/dispute/machine/openings.ts). */
  readonly openings: {
    /** The proof of one-step op k (LOAD, STORE, TOKEN) for `stepOp`. */
    stepOp(k: number): Hex
    /** Element j of op k's slot opened under its root, for `expandElement`. */
    result(k: number, j: number): Hex
    /** The openings of every read of the step after `pre`, for `stepMicro`. */
    step(pre: MicroState): Hex[]
  }
}

/** One side's view of a whole job. */
export interface TraceProvider {
  readonly model: DisputeModel
  readonly nPrompt: number
  readonly nOutput: number
  readonly nLayer: number
  /** The tokens this side says were consumed (prompt, then outputs) and the outputs it delivered. */
  readonly tokens: readonly number[]
  readonly outputs: readonly number[]
  /** The prompt the client signed (what openings prove against), which a cheater may not have answered. */
  readonly signedPrompt: readonly number[]
  readonly sampling: MachineSampling
  /** Level 0: the trace leaves and their tree (its root is the receipt's traceRoot). */
  traceTree(): LevelTree
  /** The agreed state before trace leaf i: leaf i - 1, or the request's prompt root before leaf 0. */
  pre(i: number): Hash
  transition(i: number): TransitionView
  /** At the STORE of sampled head `pos`: the head leaf's token and logits root, and output token pos + 1 - nPrompt opened under the output root. */
  outputToken(pos: number): OutputTokenArg
}

/** `DisputeGame.OutputToken` as viem encodes it. */
export type OutputTokenArg = { token: number; logitsRoot: Hex; opening: { chunkIndex: number; chunk: Hex; path: Hex[] } }

/** Ways a cheating provider departs from the replay (src/dispute/cheats.ts). */
export type ReplayHooks = {
  /** Trace leaves to commit instead of the replay's. */
  leaves?: readonly Hash[]
  /** A tamper for computeTransition at trace leaf i (the cheater's falsified op value). */
  tamper?: (i: number) => TransitionInput['tamper']
  /** Replaces the micro-states of an element (the cheater's falsified final state). */
  element?: (i: number, k: number, j: number, states: MicroState[]) => MicroState[]
  /** The tokens the client was delivered (the claim's output root), where they are not the trace's (the `deliver` cheat). */
  delivered?: readonly number[]
}

/**
 * A replay computed under another arithmetic than the model's (DisputeModel.arith, its
 * registration's): its trace and the machine's SCORE / ATT programs would disagree.
 */
export class ArithMismatchError extends BaseError {
  override name = 'ArithMismatchError'
}

/** The machine's sampling parameters from the engine's. */
export function machineSampling(s: SamplingParams): MachineSampling {
  return { temperature: s.temperature, repeatPenalty: s.repeatPenalty, repeatLastN: s.repeatLastN, topK: s.topK, topP: s.topP, minP: s.minP, seed: s.seed }
}

/**
 * The TraceProvider of a replayed job (`replayJob`): the honest provider's and the honest auditor's.
 *
 * @example
 *   const mine = createReplayTraceProvider(model, replayJob(model.tf, spec))
 *   mine.traceTree().root              // the receipt's traceRoot
 *   mine.transition(7).opTree().leaves // pre, the 30-odd frames of that layer, post
 */
export function createReplayTraceProvider(model: DisputeModel, trace: JobTrace, hooks: ReplayHooks & { signedPrompt?: readonly number[] } = {}): TraceProvider {
  // INVARIANT: one arithmetic for the replay (the KV cache) and the machine (SCORE, ATT).
  if (trace.spec.arith !== model.arith) {
    throw new ArithMismatchError(`the job was replayed under ${trace.spec.arith}, the model is judged under ${model.arith}`, { docs: 'docs/MACHINE.md' })
  }
  const nLayer = model.config.nLayer
  const leaves = hooks.leaves ?? trace.leaves
  const signedPrompt = hooks.signedPrompt ?? trace.spec.prompt
  const entry = tokensRoot(signedPrompt)
  const sampling = machineSampling(trace.spec.sampling)
  let tree: LevelTree | undefined
  const traceTree = () => (tree ??= levelTree(leaves))
  let source: TraceSource | undefined
  const traceSource = () => (source ??= traceSourceOf(model.config, trace, traceTree()))
  let outTree: VectorTree | undefined
  // A game visits one trace leaf's transition (two, with the pre); keep the last few.
  const cache = new Map<number, TransitionView>()
  const self: TraceProvider = {
    model, nPrompt: trace.nPrompt, nOutput: (hooks.delivered ?? trace.outputs).length, nLayer, tokens: trace.tokens, outputs: hooks.delivered ?? trace.outputs,
    signedPrompt, sampling,
    traceTree,
    pre: (i) => (i === 0 ? entry : leaves[i - 1]),
    transition(i) {
      let v = cache.get(i)
      if (!v) {
        if (!(Number.isInteger(i) && i >= 0 && i < leaves.length)) throw new RangeError(`trace leaf ${i} is outside the ${leaves.length} leaves`)
        v = transitionView(model, trace, sampling, i, self.pre(i), leaves[i], hooks, traceSource, signedPrompt)
        if (cache.size >= 4) cache.delete(cache.keys().next().value as number)
        cache.set(i, v)
      }
      return v
    },
    outputToken(pos) {
      outTree ??= new VectorTree(Uint32Array.from(hooks.delivered ?? trace.outputs))
      const o = outTree.open(pos + 1 - trace.nPrompt)
      const t = self.transition(pos * (nLayer + 1) + nLayer).machine
      const next = t.slots[SLOT.NEXT]
      const token = next?.kind === 'words' ? next.words[0] : trace.nextToken(pos)
      const l = t.slots[SLOT.L]
      return { token, logitsRoot: toHex(l ? slotRoot(l) : ZERO), opening: { chunkIndex: o.chunkIndex, chunk: toHex(o.chunk), path: o.path.map((h) => toHex(h)) } }
    },
  }
  return self
}

/** The openings' view of this side's trace: its own leaves (root and paths), preimages from its replay. */
function traceSourceOf(config: ModelConfig, trace: JobTrace, tree: LevelTree): TraceSource {
  const L = config.nLayer
  const words = (x: Float32Array) => new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength))
  return {
    root: tree.root, nLayer: L,
    layer(u, l) {
      const kTree = new VectorTree(words(trace.replay.k(u, l)))
      const vTree = new VectorTree(words(trace.replay.v(u, l)))
      return { x: vectorRoot(trace.replay.residual(u, l)), k: kTree.root, v: vTree.root, path: tree.proof(u * (L + 1) + l), kTree, vTree }
    },
    head(u) {
      const logitsRoot = u < trace.nPrompt - 1 ? ZERO : vectorRoot(trace.logits(u))
      return { token: trace.nextToken(u), logitsRoot, path: tree.proof(u * (L + 1) + L) }
    },
  }
}

function transitionView(
  model: DisputeModel, trace: JobTrace, sampling: MachineSampling, i: number, pre: Hash, post: Hash, hooks: ReplayHooks,
  traceSource: () => TraceSource, prompt: readonly number[],
): TransitionView {
  const { config, arith, window, weights, eogTokens } = model
  const pos = Math.floor(i / (config.nLayer + 1))
  const layer = i % (config.nLayer + 1)
  const t = computeTransition({
    config, arith, window, weights, tokens: trace.tokens, nPrompt: trace.nPrompt, sampling, pos, layer, replay: trace.replay, pre, eogTokens,
    sortDirect: true, tamper: hooks.tamper?.(i),
  })
  // The last op-level leaf is this side's own trace leaf, whatever the machine makes of the
  // transition: a side never contradicts what it committed one level up.
  let ops: LevelTree | undefined
  const src = (): OpeningSource => ({ t, tree: model.tree, trace: traceSource(), prompt, pos, layer })
  const elems = new Map<string, MicroState[]>()
  const states = (k: number, j: number) => {
    const key = `${k}/${j}`
    let s = elems.get(key)
    if (!s) {
      s = t.elementStates(k, j)
      if (hooks.element) s = hooks.element(i, k, j, s)
      if (elems.size >= 8) elems.delete(elems.keys().next().value as string)
      elems.set(key, s)
    }
    return s
  }
  return {
    index: i, pos, layer, ops: t.ops, machine: t,
    opTree: () => (ops ??= levelTree([...t.opLeaves().slice(0, -1), post])),
    slot(k) {
      const op = t.ops[k - 1]
      if (!op || op.slot < 0) throw new RangeError(`op ${k} of trace leaf ${i} writes no slot`)
      const value = t.slots[op.slot]
      return { op, root: value ? slotRoot(value) : ZERO, value, path: t.frameProof(k, op.slot) }
    },
    elementStates: states,
    elementTree: (k, j) => levelTree(states(k, j).map(microLeaf)),
    read: (k, r) => t.read(k, r),
    openings: {
      stepOp: (k) => oneStepProof(src(), k),
      result: (k, j) => resultOpening(src(), k, j).opening,
      step: (s) => openStep(src(), s),
    },
  }
}
