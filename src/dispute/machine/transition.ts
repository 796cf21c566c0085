/**
 * One trace transition computed by the dispute machine (docs/MACHINE.md): every slot of the
 * layer (or head) transition at one position, obtained by running every element's program step by
 * step (src/dispute/machine/program.ts), never by calling the engine; the frame after each op;
 * the version-2 trace leaf the transition ends in; and, for any (op, element), the element's full
 * list of micro-states, which is what a provider commits at the element level and a challenger
 * compares with its own.
 *
 * The transition's only inputs are those the judge can open: weights (under the model root), the
 * job's tokens (prompt root and earlier head leaves), the residual entering the layer (the
 * previous trace leaf) and K / V of earlier positions (earlier trace leaves), here supplied by a
 * replay of the job.
 */
import { BaseError } from '../../errors.js'
import { BLOCK } from '../../engine/gguf/types.js'
import type { ModelConfig } from '../../engine/model/config.js'
import type { ArithVersion } from '../../engine/version.js'
import { type Hash, ZERO } from '../../trace/merkle.js'
import { VECTOR_CHUNK } from '../../trace/vector.js'
import { type ElementProgram, type MachineSampling, type OpDef, type Read, type ReadValue, type TensorShape, SLOT, transitionOps } from './program.js'
import { type MicroState, type SlotValue, frameProof, frameRoot, headLeafV2, layerLeafV2, microLeaf, slotRoot } from './state.js'

/** A weight tensor: its shape and its rows' raw GGUF bytes. */
export type WeightTensor = TensorShape & { row(r: number): Uint8Array }

/** The model's tensors by name (e.g. over a ModelTree: `{ ...tree.shape(n), row: (r) => tree.readRow(n, r) }`). */
export type WeightAccessor = (name: string) => WeightTensor

/** Earlier trace states, from a replay of the job: residual after a layer, K after RoPE and V. */
export type Replay = {
  /** The residual after layer `layer` at `pos` (dim). */
  residual(pos: number, layer: number): Float32Array
  /** K after RoPE appended by layer `layer` at `pos` (kvDim). */
  k(pos: number, layer: number): Float32Array
  /** V appended by layer `layer` at `pos` (kvDim). */
  v(pos: number, layer: number): Float32Array
}

export type TransitionInput = {
  config: ModelConfig
  /** The job's arithmetic: its model's registered one (SCORE and ATT read K/V rounded to binary16 under v2). */
  arith: ArithVersion
  /** The model's attention window, 0 for none (ProgramContext.window: `attentionWindow(config)`). */
  window: number
  weights: WeightAccessor
  /** The token consumed at each position: the prompt, then the output tokens. */
  tokens: readonly number[]
  nPrompt: number
  sampling: MachineSampling
  pos: number
  /** 0 .. nLayer - 1, or nLayer for the head. */
  layer: number
  replay: Replay
  /** The previous trace leaf (op-level leaf 0), when the caller wants `opLeaves`. */
  pre?: Hash
  /** The config's end-of-generation tokens, for the head STORE's stop rule. */
  eogTokens?: readonly number[]
  /**
   * Compute the RANK and SORT slots of temperature sampling by one sort instead of their
   * programs (V²/8 comparisons: hours for a 32k vocabulary). Same words; elementStates still
   * runs the programs. Default false.
   */
  sortDirect?: boolean
  /**
   * Replaces the value an op writes before later ops read it (src/dispute/cheats.ts plays a
   * provider that falsified one value this way; its later slots follow from it). Default none.
   */
  tamper?: (op: OpDef, value: SlotValue) => SlotValue
}

/** A computed transition. */
export type Transition = {
  ops: OpDef[]
  /** Every slot the transition wrote (index = slot number). */
  slots: (SlotValue | undefined)[]
  /** frames[k] = the frame after op k (k = 1 .. N; frames[0] is the empty frame, ZERO slots). */
  frames: Hash[]
  /** The trace leaf v2 the transition ends in (STORE or TOKEN). */
  post: Hash
  /**
   * The head STORE's stop rule: false when p >= nPrompt and the token consumed at p (head leaf
   * (p - 1)'s nextToken) is an end-of-generation token, i.e. the job should have ended before p.
   */
  stopRuleHolds: boolean
  /** Op-level leaves: [pre, frames 1 .. N, post] (needs input.pre). */
  opLeaves(): Hash[]
  /** The 6-hash path of `slot` in frame k (also its path, holding ZERO, in frame k - 1). */
  frameProof(k: number, slot: number): Hash[]
  /** The micro-states 0 .. steps of element `elem` of op k. */
  elementStates(k: number, elem: number): MicroState[]
  /** Their leaf hashes (the element tree's leaves). */
  elementLeaves(k: number, elem: number): Hash[]
  /** The value of a read as the judge would open it in op k's pre-frame (throws where it cannot). */
  read(k: number, r: Read): ReadValue
}

/** A read that the judge could not open in this position: a program or replay bug. */
export class InvalidReadError extends BaseError {
  override name = 'InvalidReadError'
  constructor(message: string) {
    super(message, { docs: 'docs/MACHINE.md' })
  }
}

/**
 * Runs every op of the transition `input` names through its element programs.
 *
 * @example
 *   const t = computeTransition({ config, arith: ARITH_V1, window: 0, weights, tokens, nPrompt, sampling, pos: 3, layer: 1, replay })
 *   t.slots[SLOT.X3]            // the residual after the layer, as binary32 bits
 *   t.elementLeaves(5, 17)      // the micro-state leaves of row 17 of op 5
 */
export function computeTransition(input: TransitionInput): Transition {
  const { config: c, weights, tokens, nPrompt, pos: p, layer: l, replay } = input
  const shape = (name: string): TensorShape => {
    const t = weights(name)
    return { type: t.type, rows: t.rows, cols: t.cols }
  }
  const ops = transitionOps({ config: c, arith: input.arith, window: input.window, shape, pos: p, layer: l, nPrompt, sampling: input.sampling })
  const slots: (SlotValue | undefined)[] = new Array(64).fill(undefined)
  const writer: number[] = new Array(64).fill(Number.POSITIVE_INFINITY)
  const roots: (Hash | undefined)[] = new Array(64).fill(undefined)
  const frames: Hash[] = [frameRoot(roots)]
  const head = l === c.nLayer
  const tokenAt = (u: number): number => {
    if (!(u >= 0 && u <= p && u < tokens.length)) throw new InvalidReadError(`token at position ${u} is not known at position ${p}`)
    return tokens[u]
  }

  const read = (k: number, r: Read): ReadValue => {
    switch (r.kind) {
      case 'words': {
        const v = slots[r.slot]
        if (!v || writer[r.slot] >= k || v.kind !== 'words') throw new InvalidReadError(`op ${k} reads word slot ${r.slot}, which is not in its pre-frame`)
        if (!(r.count >= 1 && r.start >= 0 && r.start + r.count <= v.words.length && (r.start % VECTOR_CHUNK) + r.count <= VECTOR_CHUNK)) {
          throw new InvalidReadError(`op ${k} reads words ${r.start} + ${r.count} of slot ${r.slot} (${v.words.length} words)`)
        }
        return v.words.subarray(r.start, r.start + r.count)
      }
      case 'block': {
        const v = slots[r.slot]
        if (!v || writer[r.slot] >= k || v.kind !== 'blocks' || !(r.index >= 0 && r.index < v.blocks.length)) {
          throw new InvalidReadError(`op ${k} reads block ${r.index} of slot ${r.slot}, which is not in its pre-frame`)
        }
        return v.blocks[r.index]
      }
      case 'weight': {
        const t = weights(r.tensor)
        const bb = BLOCK[t.type].bytes
        if (!(r.row >= 0 && r.row < t.rows && r.start >= 0 && (r.start + r.count) * BLOCK[t.type].size <= t.cols)) {
          throw new InvalidReadError(`row ${r.row} blocks ${r.start} + ${r.count} are outside ${r.tensor}`)
        }
        return t.row(r.row).subarray(r.start * bb, (r.start + r.count) * bb)
      }
      case 'kv': {
        if (!(r.pos >= 0 && r.pos < p && r.layer === l)) throw new InvalidReadError(`K/V of (${r.pos}, ${r.layer}) is not an earlier leaf of layer ${l} at ${p}`)
        const x = r.which === 'k' ? replay.k(r.pos, r.layer) : replay.v(r.pos, r.layer)
        if (!(r.count >= 1 && r.start >= 0 && r.start + r.count <= x.length && (r.start % VECTOR_CHUNK) + r.count <= VECTOR_CHUNK)) {
          throw new InvalidReadError(`op ${k} reads ${r.which} words ${r.start} + ${r.count} of leaf (${r.pos}, ${r.layer})`)
        }
        return new Uint32Array(x.buffer, x.byteOffset + 4 * r.start, r.count)
      }
      case 'prompt':
        if (!(r.index < nPrompt)) throw new InvalidReadError(`prompt token ${r.index} of ${nPrompt}`)
        return tokenAt(r.index)
      case 'headToken':
        if (!(r.pos < p && r.pos + 1 >= nPrompt)) throw new InvalidReadError(`head leaf ${r.pos} is not an earlier output position at ${p}`)
        return tokenAt(r.pos + 1)
    }
  }

  const run = (k: number, prog: ElementProgram, keep?: MicroState[]): MicroState => {
    let s = prog.init
    keep?.push(s)
    for (let i = 1; i <= prog.steps; i++) {
      const step = prog.step(i, s)
      s = step.run(s, step.reads.map((r) => read(k, r)))
      keep?.push(s)
    }
    return s
  }

  const write = (k: number, slot: number, value: SlotValue) => {
    const v = input.tamper ? input.tamper(ops[k - 1], value) : value
    slots[slot] = v
    writer[slot] = k
    roots[slot] = slotRoot(v)
  }
  const wordsOf = (x: Float32Array) => new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength))
  const rootOf = (slot: number) => (slots[slot] ? slotRoot(slots[slot]!) : ZERO)

  let post: Hash = ZERO
  for (const op of ops) {
    const k = op.op
    if (op.code === 'LOAD') {
      if (op.slot === SLOT.TOK) write(k, SLOT.TOK, { kind: 'words', words: Uint32Array.of(tokenAt(p)) })
      else write(k, SLOT.X, { kind: 'words', words: wordsOf(replay.residual(p, l - 1)) })
    } else if (op.code === 'STORE') {
      post = head
        ? headLeafV2(p, c.nLayer, (slots[SLOT.NEXT] as { words: Uint32Array }).words[0], rootOf(SLOT.L))
        : layerLeafV2(p, l, rootOf(SLOT.X3), rootOf(SLOT.KR), rootOf(c.arch === 'qwen2' ? SLOT.VB : SLOT.V))
    } else if (op.code === 'TOKEN') {
      // teacher forced: the next token is the prompt's (p < nPrompt - 1)
      if (!(p + 1 < nPrompt && p + 1 < tokens.length)) throw new InvalidReadError(`position ${p} is not teacher forced`)
      post = headLeafV2(p, c.nLayer, tokens[p + 1], ZERO)
    } else if (input.sortDirect && (op.code === 'RANK' || op.code === 'SORT')) {
      write(k, op.slot, { kind: 'words', words: sortedSlot(op.code, slots[SLOT.PL] ?? slots[SLOT.L], op.length) })
    } else {
      const prog = op.program!
      if (op.block) {
        write(k, op.slot, { kind: 'blocks', blocks: Array.from({ length: op.length }, (_, j) => {
          const s = run(k, prog(j))
          return { da: s.r[0], qa: s.data }
        }) })
      } else {
        const w = new Uint32Array(op.length)
        for (let j = 0; j < op.length; j++) w[j] = run(k, prog(j)).r[0]
        write(k, op.slot, { kind: 'words', words: w })
      }
    }
    if (op.code !== 'STORE' && op.code !== 'TOKEN') frames[k] = frameRoot(roots)
  }
  // The frame roots as each op left them: recomputed per op above; slot roots for proofs per frame.
  const rootsAfter = (k: number): (Hash | undefined)[] => roots.map((r, s) => (writer[s] <= k ? r : undefined))

  const opOf = (k: number): OpDef => {
    const op = ops[k - 1]
    if (!op?.program) throw new RangeError(`op ${k} of this transition has no element programs`)
    return op
  }
  const stopRuleHolds = !(head && p >= nPrompt && (input.eogTokens ?? []).includes(tokenAt(p)))
  return {
    ops, slots, frames, post, stopRuleHolds,
    opLeaves() {
      if (!input.pre) throw new RangeError('the transition was computed without its pre leaf')
      return [input.pre, ...frames.slice(1), post]
    },
    frameProof: (k, slot) => frameProof(rootsAfter(k), slot),
    elementStates(k, elem) {
      const op = opOf(k)
      if (!(Number.isInteger(elem) && elem >= 0 && elem < op.length)) throw new RangeError(`op ${k} (${op.name}) has elements 0 .. ${op.length - 1}, not ${elem}`)
      const keep: MicroState[] = []
      run(k, op.program!(elem), keep)
      return keep
    },
    elementLeaves(k, elem) {
      return this.elementStates(k, elem).map(microLeaf)
    },
    read,
  }
}

/**
 * RK (rank of each id) or ID (ids by rank, first `n`) of the logits by one sort in the engine's
 * order (higher logit first, then lower id): the words the RANK and SORT programs compute.
 */
function sortedSlot(code: 'RANK' | 'SORT', logits: SlotValue | undefined, n: number): Uint32Array {
  if (logits?.kind !== 'words') throw new InvalidReadError('sampling needs the logits slot')
  const l = new Float32Array(logits.words.buffer, logits.words.byteOffset, logits.words.length)
  const ids = Array.from(l.keys()).sort((a, b) => (l[a] > l[b] ? -1 : l[a] < l[b] ? 1 : a - b))
  if (code === 'SORT') return Uint32Array.from(ids.slice(0, n))
  const rk = new Uint32Array(l.length)
  ids.forEach((id, r) => (rk[id] = r))
  return rk
}
