/**
 * The read-opening protocol of the dispute machine, provider side (docs/MACHINE.md "Read
 * openings"): for any `Read` of a micro-step, the ABI-encoded bytes that prove its value to
 * `Machine.step` against the agreed roots (the op's pre-frame, the model root, the trace root, the
 * prompt root); the `IMachine.Ctx` of a transition; the proofs of the one-step ops (LOAD, STORE,
 * TOKEN); and the opening of an element's result in its slot. The Solidity side is
 * src/chain/contracts/lib/MachineReads.sol and Machine.sol: every format here is decoded there
 * with `abi.decode(bytes, (Struct))`.
 *
 * Legend: k an op's number (1-based), j an element, u a cached position, l a layer, p the
 * transition's position, V the vocabulary.
 */
import { type Hex, encodeAbiParameters, sha256 as viemSha256 } from 'viem'
import { toHex0x } from '../../engine/bytes.js'
import type { ModelConfigV3 } from '../../engine/gguf/configLeaf.js'
import type { ModelConfig } from '../../engine/model/config.js'
import type { ModelTree } from '../../chain/weights.js'
import { BaseError } from '../../errors.js'
import { type Hash, buildLevels, merkleProof, ZERO } from '../../trace/merkle.js'
import { VectorTree, vectorRoot } from '../../trace/vector.js'
import { type MachineSampling, type Read, SLOT, bits, nextStep } from './program.js'
import { type MicroState, actBlockLeaf, headLeafV2, layerLeafV2, slotRoot } from './state.js'
import type { Replay, Transition } from './transition.js'

/** A read or proof the provider cannot build from what it holds (a caller or replay bug). */
export class OpeningError extends BaseError {
  override name = 'OpeningError'
  constructor(message: string) {
    super(message, { docs: 'docs/MACHINE.md' })
  }
}

// ---- ABI shapes (Machine.sol / MachineReads.sol structs) -------------------------------------------

const OPENING = { type: 'tuple', components: [{ name: 'chunkIndex', type: 'uint32' }, { name: 'chunk', type: 'bytes' }, { name: 'path', type: 'bytes32[]' }] } as const
const WORDS = { type: 'tuple', components: [
  { name: 'root', type: 'bytes32' }, { name: 'framePath', type: 'bytes32[]' }, { name: 'chunkIndex', type: 'uint32' }, { name: 'chunk', type: 'bytes' }, { name: 'chunkPath', type: 'bytes32[]' },
] } as const
const BLOCK_ = { type: 'tuple', components: [
  { name: 'root', type: 'bytes32' }, { name: 'framePath', type: 'bytes32[]' }, { name: 'da', type: 'uint32' }, { name: 'qa', type: 'bytes' }, { name: 'blockPath', type: 'bytes32[]' },
] } as const
const WEIGHT = { type: 'tuple', components: [
  { name: 'tensorIndex', type: 'uint32' }, { name: 'ggmlType', type: 'uint32' }, { name: 'rows', type: 'uint64' }, { name: 'cols', type: 'uint64' }, { name: 'rowRoot', type: 'bytes32' },
  { name: 'tensorPath', type: 'bytes32[]' }, { name: 'chunkIndex', type: 'uint32' }, { name: 'chunk', type: 'bytes' }, { name: 'chunkPath', type: 'bytes32[]' }, { name: 'rowPath', type: 'bytes32[]' },
] } as const
const KV = { type: 'tuple', components: [
  { name: 'x', type: 'bytes32' }, { name: 'k', type: 'bytes32' }, { name: 'v', type: 'bytes32' }, { name: 'tracePath', type: 'bytes32[]' },
  { name: 'chunkIndex', type: 'uint32' }, { name: 'chunk', type: 'bytes' }, { name: 'chunkPath', type: 'bytes32[]' },
] } as const
const HEAD = { type: 'tuple', components: [{ name: 'token', type: 'uint32' }, { name: 'logitsRoot', type: 'bytes32' }, { name: 'tracePath', type: 'bytes32[]' }] } as const
const HEAD_STORE = { type: 'tuple', components: [
  { name: 'next', type: 'uint32' }, { name: 'nextPath', type: 'bytes32[]' }, { name: 'logitsRoot', type: 'bytes32' }, { name: 'logitsPath', type: 'bytes32[]' }, { name: 'prev', ...HEAD },
] } as const

const hx = toHex0x
const hxs = (p: readonly Uint8Array[]): Hex[] => p.map(hx)

// ---- the trace the judge opens K/V and tokens from -----------------------------------------------

/** Layer leaf (u, l)'s v2 preimage roots, its path under the trace root, and its K / V vectors. */
export type LayerLeafOpening = { x: Hash; k: Hash; v: Hash; path: Hash[]; kTree: VectorTree; vTree: VectorTree }
/** Head leaf u's v2 preimage and its path. */
export type HeadLeafOpening = { token: number; logitsRoot: Hash; path: Hash[] }

/** The job's trace of v2 leaves (u·(nLayer+1) + l), kept for openings. */
export type TraceSource = {
  root: Hash
  nLayer: number
  layer(u: number, l: number): LayerLeafOpening
  head(u: number): HeadLeafOpening
}

/**
 * The v2 trace of a job from its replay: for every position u < positions, the layer leaves
 * (residual, K after RoPE, V) and the head leaf (the token consumed at u + 1, or `lastToken` for
 * the last position; the logits root, ZERO for teacher-forced positions).
 *
 * @example
 *   const trace = traceSource({ config, tokens, nPrompt: 3, replay, logits: (u) => logitsAt(u), positions: tokens.length })
 *   trace.layer(1, 0).path   // the path of leaf (1, 0) under trace.root
 */
export function traceSource(input: {
  config: ModelConfig
  tokens: readonly number[]
  nPrompt: number
  replay: Replay
  logits(u: number): Float32Array
  positions: number
  lastToken?: number
}): TraceSource {
  const { config: c, tokens, nPrompt, replay, positions } = input
  const L = c.nLayer
  const leaves: Hash[] = []
  const trees = new Map<string, VectorTree>()
  const vec = (key: string, x: Float32Array) => {
    let t = trees.get(key)
    if (!t) trees.set(key, (t = new VectorTree(new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength)))))
    return t
  }
  const heads: { token: number; logitsRoot: Hash }[] = []
  for (let u = 0; u < positions; u++) {
    for (let l = 0; l < L; l++) {
      leaves.push(layerLeafV2(u, l, vectorRoot(replay.residual(u, l)), vec(`k${u}/${l}`, replay.k(u, l)).root, vec(`v${u}/${l}`, replay.v(u, l)).root))
    }
    const token = u + 1 < tokens.length ? tokens[u + 1] : (input.lastToken ?? 0)
    const logitsRoot = u < nPrompt - 1 ? ZERO : vectorRoot(input.logits(u))
    heads.push({ token, logitsRoot })
    leaves.push(headLeafV2(u, L, token, logitsRoot))
  }
  const levels = buildLevels(leaves)
  const check = (u: number) => {
    if (!(Number.isInteger(u) && u >= 0 && u < positions)) throw new OpeningError(`position ${u} is outside the trace (${positions} positions)`)
  }
  return {
    root: levels[levels.length - 1][0],
    nLayer: L,
    layer(u, l) {
      check(u)
      const kTree = vec(`k${u}/${l}`, replay.k(u, l))
      const vTree = vec(`v${u}/${l}`, replay.v(u, l))
      return { x: vectorRoot(replay.residual(u, l)), k: kTree.root, v: vTree.root, path: merkleProof(levels, u * (L + 1) + l), kTree, vTree }
    },
    head(u) {
      check(u)
      return { ...heads[u], path: merkleProof(levels, u * (L + 1) + L) }
    },
  }
}

// ---- the context ----------------------------------------------------------------------------------

/** `IMachine.Sampling` as viem encodes it. */
export type SamplingArg = {
  temperatureBits: number
  topK: number
  topPBits: number
  minPBits: number
  repeatPenaltyBits: number
  repeatLastN: number
  maxTokens: number
  stopHash: Hex
}

/** `IMachine.Ctx` as viem encodes it. */
export type CtxArg = {
  modelRoot: Hex
  traceRoot: Hex
  promptRoot: Hex
  nPrompt: number
  pos: number
  layer: number
  seed: bigint
  config: ModelConfigV3
  sampling: SamplingArg
}

/** The sha256 of the canonical JSON list of stop strings (docs/MACHINE.md "Sampling params"). */
export function stopHashOf(stop: readonly string[] = []): Hex {
  return viemSha256(new TextEncoder().encode(JSON.stringify(stop)))
}

/** The request's sampling parameters as the contract takes them (floats as binary32 bits). */
export function samplingArg(s: MachineSampling, extra: { maxTokens?: number; stop?: readonly string[] } = {}): SamplingArg {
  return {
    temperatureBits: bits(s.temperature),
    topK: s.topK ?? 0,
    topPBits: bits(s.topP ?? 1),
    minPBits: bits(s.minP ?? 0),
    repeatPenaltyBits: bits(s.repeatPenalty),
    repeatLastN: s.repeatLastN,
    maxTokens: extra.maxTokens ?? 0,
    stopHash: stopHashOf(extra.stop),
  }
}

/**
 * The context of transition (pos, layer) for `Machine` (layer = nLayer: the head).
 *
 * @example
 *   const c = ctxOf({ tree, traceRoot: trace.root, prompt, pos: 2, layer: 1, sampling })
 *   await machine.read.step([c, frame, microStateArg(pre), reads])
 */
export function ctxOf(input: {
  tree: ModelTree
  traceRoot: Hash
  prompt: readonly number[]
  pos: number
  layer: number
  sampling: MachineSampling
  maxTokens?: number
  stop?: readonly string[]
}): CtxArg {
  return {
    modelRoot: input.tree.modelRoot,
    traceRoot: hx(input.traceRoot),
    promptRoot: hx(vectorRoot(Uint32Array.from(input.prompt))),
    nPrompt: input.prompt.length,
    pos: input.pos,
    layer: input.layer,
    seed: input.sampling.seed ?? 0n,
    config: input.tree.proveConfig().config,
    sampling: samplingArg(input.sampling, input),
  }
}

/** A `MachineState.MicroState` argument. */
export function microStateArg(s: MicroState): { op: number; elem: bigint; step: bigint; r: readonly number[]; data: Hex } {
  return { op: s.op, elem: BigInt(s.elem), step: BigInt(s.step), r: Array.from(s.r), data: hx(s.data) }
}

/** The arguments of `IMachine.proveWeightType` for tensor `name` of the model. */
export function weightTypeArgs(tree: ModelTree, name: string): readonly [Hex, Hex, number, number, bigint, bigint, Hex, Hex[]] {
  const t = tree.proveTensor(name)
  return [tree.modelRoot, t.name, t.tensorIndex, t.ggmlType, t.rows, t.cols, t.rowRoot, t.tensorPath] as const
}

// ---- reads ----------------------------------------------------------------------------------------

/** What the provider holds for one transition: its computation, the model tree, the trace, the prompt. */
export type OpeningSource = {
  t: Transition
  tree: ModelTree
  trace: TraceSource
  prompt: readonly number[]
  /** The transition's position and layer (nLayer for the head). */
  pos: number
  layer: number
}

const treeCache = new WeakMap<object, VectorTree>()
function wordsTree(words: Uint32Array): VectorTree {
  let t = treeCache.get(words)
  if (!t) treeCache.set(words, (t = new VectorTree(words)))
  return t
}

function chunkOpening(tree: VectorTree, index: number) {
  const o = tree.open(index)
  return { chunkIndex: o.chunkIndex, chunk: hx(o.chunk), path: hxs(o.path) }
}

/** Slot `slot` of op k's pre-frame (frame k − 1): its value, root and 6-hash path. */
function preSlot(src: OpeningSource, k: number, slot: number) {
  const writer = src.t.ops.find((o) => o.slot === slot)
  const v = writer && writer.op < k ? src.t.slots[slot] : undefined
  if (!v) throw new OpeningError(`slot ${slot} is not in op ${k}'s pre-frame`)
  return { v, root: hx(slotRoot(v)), framePath: hxs(src.t.frameProof(k - 1, slot)) }
}

/**
 * The opening bytes of `read`, a read of a step of op k (docs/MACHINE.md "Read openings").
 *
 * @example
 *   const reads = nextStep(t.ops, pre).reads.map((r) => openRead(src, pre.op, r))
 */
export function openRead(src: OpeningSource, k: number, read: Read): Hex {
  switch (read.kind) {
    case 'words': {
      const { v, root, framePath } = preSlot(src, k, read.slot)
      if (v.kind !== 'words') throw new OpeningError(`slot ${read.slot} holds blocks`)
      const o = chunkOpening(wordsTree(v.words), read.start)
      return encodeAbiParameters([WORDS], [{ root, framePath, chunkIndex: o.chunkIndex, chunk: o.chunk, chunkPath: o.path }])
    }
    case 'block': {
      const { v, root, framePath } = preSlot(src, k, read.slot)
      if (v.kind !== 'blocks') throw new OpeningError(`slot ${read.slot} holds words`)
      const b = v.blocks[read.index]
      const levels = buildLevels(v.blocks.map((x) => actBlockLeaf(x.da, x.qa)))
      return encodeAbiParameters([BLOCK_], [{ root, framePath, da: b.da, qa: hx(b.qa), blockPath: hxs(merkleProof(levels, read.index)) }])
    }
    case 'weight':
      return weightOpening(src.tree, read.tensor, read.row, read.start, src.t.ops[k - 1]?.code === 'MATMUL')
    case 'kv': {
      const leaf = src.trace.layer(read.pos, read.layer)
      const o = chunkOpening(read.which === 'k' ? leaf.kTree : leaf.vTree, read.start)
      return encodeAbiParameters([KV], [{ x: hx(leaf.x), k: hx(leaf.k), v: hx(leaf.v), tracePath: hxs(leaf.path), chunkIndex: o.chunkIndex, chunk: o.chunk, chunkPath: o.path }])
    }
    case 'prompt':
      return promptOpening(src.prompt, read.index)
    case 'headToken':
      return headOpening(src.trace, read.pos)
  }
}

/** The openings of every read of the step after `pre` (what `Machine.step` takes as `reads`). */
export function openStep(src: OpeningSource, pre: MicroState): Hex[] {
  return nextStep(src.t.ops, pre).reads.map((r) => openRead(src, pre.op, r))
}

/**
 * A weight opening: the tensor leaf (its name is the contract's) and the chunk holding `block`.
 * `recorded`: the tensor's leaf is recorded on chain (a MATMUL's, by `proveWeightType`), so the
 * opening carries no path to the model root (the judge checks the leaf against the record).
 */
export function weightOpening(tree: ModelTree, tensor: string, row: number, block: number, recorded = false): Hex {
  const t = tree.proveTensor(tensor)
  const c = tree.proveChunk(tensor, row, block)
  return encodeAbiParameters([WEIGHT], [{
    tensorIndex: t.tensorIndex, ggmlType: t.ggmlType, rows: t.rows, cols: t.cols, rowRoot: t.rowRoot, tensorPath: recorded ? [] : t.tensorPath,
    chunkIndex: c.chunkIndex, chunk: c.chunk, chunkPath: c.chunkPath, rowPath: c.rowPath,
  }])
}

/** Prompt token `index` under the prompt root (`MachineState.Opening`). */
export function promptOpening(prompt: readonly number[], index: number): Hex {
  return encodeAbiParameters([OPENING], [chunkOpening(wordsTree(promptWords(prompt)), index)])
}

const promptCache = new WeakMap<readonly number[], Uint32Array>()
function promptWords(prompt: readonly number[]): Uint32Array {
  let w = promptCache.get(prompt)
  if (!w) promptCache.set(prompt, (w = Uint32Array.from(prompt)))
  return w
}

function headArg(trace: TraceSource, u: number) {
  const h = trace.head(u)
  return { token: h.token, logitsRoot: hx(h.logitsRoot), tracePath: hxs(h.path) }
}

/** Head leaf u's preimage and path (`HeadOpening`). */
export function headOpening(trace: TraceSource, u: number): Hex {
  return encodeAbiParameters([HEAD], [headArg(trace, u)])
}

// ---- one-step ops and results ---------------------------------------------------------------------

/**
 * The proof of one-step op k (LOAD, STORE or TOKEN) for `Machine.oneStep`:
 * - LOAD X: `abi.encode(bytes32 x, bytes32 k, bytes32 v)`, the pre leaf (p, l − 1)'s roots;
 * - LOAD TOK: the prompt opening of token p (p < nPrompt), else head leaf p − 1's `HeadOpening`;
 * - STORE (layer): `abi.encode(bytes32[3] roots, bytes32[] x3Path, bytes32[] krPath, bytes32[] vPath)`
 *   of the pre-frame's X3, KR and V (qwen2: VB);
 * - STORE (head): `HeadStoreProof` (NEXT's token and path, L's root and path, head leaf p − 1);
 * - TOKEN: the prompt opening of token p + 1.
 */
export function oneStepProof(src: OpeningSource, k: number): Hex {
  const { t, pos: p, layer: l } = src
  const op = t.ops[k - 1]
  if (op?.code === 'TOKEN') return promptOpening(src.prompt, p + 1)
  if (op?.code === 'LOAD') {
    if (op.slot === SLOT.TOK) return p < src.prompt.length ? promptOpening(src.prompt, p) : headOpening(src.trace, p - 1)
    const pre = src.trace.layer(p, l - 1)
    return encodeAbiParameters([{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }], [hx(pre.x), hx(pre.k), hx(pre.v)])
  }
  if (op?.code !== 'STORE') throw new OpeningError(`op ${k} is not a one-step op`)
  const path = (slot: number) => hxs(t.frameProof(k - 1, slot))
  const root = (slot: number) => hx(slotRoot(t.slots[slot]!))
  if (l === src.trace.nLayer) {
    const next = t.slots[SLOT.NEXT]
    if (next?.kind !== 'words') throw new OpeningError('the head has no NEXT slot')
    const prev = p >= src.prompt.length ? headArg(src.trace, p - 1) : { token: 0, logitsRoot: hx(ZERO), tracePath: [] }
    return encodeAbiParameters([HEAD_STORE], [{ next: next.words[0], nextPath: path(SLOT.NEXT), logitsRoot: root(SLOT.L), logitsPath: path(SLOT.L), prev }])
  }
  const v = t.slots[SLOT.VB] ? SLOT.VB : SLOT.V
  return encodeAbiParameters(
    [{ type: 'bytes32[3]' }, { type: 'bytes32[]' }, { type: 'bytes32[]' }, { type: 'bytes32[]' }],
    [[root(SLOT.X3), root(SLOT.KR), root(v)], path(SLOT.X3), path(SLOT.KR), path(v)],
  )
}

/**
 * The opening of element j of op k's slot for `Machine.result`: a `MachineState.Opening` of the
 * word for a word slot, the block's path (`bytes32[]`) for a block slot. Also returns the slot root.
 */
export function resultOpening(src: OpeningSource, k: number, j: number): { slotRoot: Hex; opening: Hex } {
  const op = src.t.ops[k - 1]
  const v = op ? src.t.slots[op.slot] : undefined
  if (!v) throw new OpeningError(`op ${k} writes no slot`)
  if (v.kind === 'words') return { slotRoot: hx(slotRoot(v)), opening: encodeAbiParameters([OPENING], [chunkOpening(wordsTree(v.words), j)]) }
  const levels = buildLevels(v.blocks.map((x) => actBlockLeaf(x.da, x.qa)))
  return { slotRoot: hx(slotRoot(v)), opening: encodeAbiParameters([{ type: 'bytes32[]' }], [hxs(merkleProof(levels, j))]) }
}
