/**
 * Leaf formats of the dispute game's lower levels (docs/CHAIN.md "Dispute game", OneStep.sol):
 * activation states, element states of a matmul, non-matmul op states and a quantized row's
 * primitive leaves, computed from plain vectors. Providers build their sub-traces from these
 * (src/chain/boundTrace.ts for scenarios).
 */
import { type Hex, encodeAbiParameters, toHex } from 'viem'
import { activationBlockSize, blockTerm, quantizeQ8 } from '../engine/kernels/reference.js'
import { BLOCK } from '../engine/gguf/types.js'
import { f, fold } from '../engine/math/canonical.js'
import { buildLevels, leafHash, merkleProof, sha256 } from '../trace/merkle.js'
import { type ActState, type BlockStep, type ElementState, OPCODE, actBlockLeaf, actStateLeaf, blockStepLeaf, elementStateLeaf } from './client.js'
import type { ModelTree } from './weights.js'

/** The state of a non-matmul op: leaf over its tag, op number and the hash of its outputs. */
export function opStateOf(op: number, outs: readonly Float32Array[]): Hex {
  const digest = sha256(...outs.map((o) => new Uint8Array(o.buffer, o.byteOffset, o.byteLength)))
  const data = encodeAbiParameters([{ type: 'uint8' }, { type: 'uint64' }, { type: 'bytes32' }], [OPCODE.OP_STATE, BigInt(op), toHex(digest)])
  return toHex(leafHash(hexBytes(data)))
}

const ZERO32: Hex = `0x${'0'.repeat(64)}`

/**
 * The quantized blocks (B = 32 or 256) of an activation vector as the judge opens them: leaf b =
 * actBlockLeaf(da_b, qa_b). Undefined when B does not divide the length (no matmul of that B can
 * consume it).
 */
export function activationTree(x: Float32Array, B: 32 | 256): { root: Hex; path(block: number): Hex[] } | undefined {
  if (x.length % B !== 0) return undefined
  const act = quantizeQ8(x, B)
  const leaves = Array.from({ length: x.length / B }, (_, b) => hexBytes(actBlockLeaf(f32Bits(act.d[b]), toHex(new Uint8Array(act.q.buffer, act.q.byteOffset + b * B, B)))))
  const levels = buildLevels(leaves)
  return { root: toHex(levels[levels.length - 1][0]), path: (b) => merkleProof(levels, b).map((h) => toHex(h)) }
}

/** The activation state after op `op` whose (first) output `outs[0]` feeds matmuls. */
export function actStateOf(op: number, outs: readonly Float32Array[]): { state: ActState; leaf: Hex } {
  const state: ActState = {
    op: BigInt(op),
    root32: activationTree(outs[0], 32)?.root ?? ZERO32,
    root256: activationTree(outs[0], 256)?.root ?? ZERO32,
    outputs: toHex(sha256(...outs.map((o) => new Uint8Array(o.buffer, o.byteOffset, o.byteLength)))),
  }
  return { state, leaf: actStateLeaf(state) }
}

/**
 * Element states of a matmul's output rows, chained from the op's pre-state, each naming the
 * activation state `act` the op multiplies. leaves[0] = pre.
 */
export function elementChain(pre: Hex, values: Float32Array, act: Hex): { leaves: Hex[]; states: ElementState[] } {
  const leaves: Hex[] = [pre]
  const states: ElementState[] = []
  for (let r = 0; r < values.length; r++) {
    const s = { row: BigInt(r), value: f32Bits(values[r]), prev: leaves[r], act }
    states.push(s)
    leaves.push(elementStateLeaf(s))
  }
  return { leaves, states }
}

/**
 * The BLOCK_TERM states of weight row `row` of `name` times the activation `x` (quantized as the
 * engine quantizes a matmul input): state b holds the SUM8 lanes after block b (the engine's own
 * `blockTerm`). `terms`, when given, receives each block's term.
 */
export function rowBlockSteps(tree: ModelTree, name: string, row: number, x: Float32Array, terms?: number[]): BlockStep[] {
  const { type, cols, tensorIndex } = tree.shape(name)
  const B = activationBlockSize(type)
  if (B === 0 || !BLOCK[type]) throw new TypeError(`tensor ${name} has no block terms`)
  if (x.length !== cols) throw new RangeError(`activation of ${x.length} values for a row of ${cols} columns`)
  const bytes = tree.readRow(name, row)
  const act = quantizeQ8(x, B)
  const lanes = [0, 0, 0, 0, 0, 0, 0, 0]
  const steps: BlockStep[] = []
  for (let b = 0; b < cols / B; b++) {
    const t = blockTerm(type, bytes, b, act.q, act.d[b])
    terms?.push(t)
    lanes[b & 7] = f(lanes[b & 7] + t)
    const qa = new Uint8Array(act.q.buffer, act.q.byteOffset + b * B, B)
    steps.push({ tensorIndex, row: BigInt(row), blockIndex: b, da: f32Bits(act.d[b]), acc: lanes.map(f32Bits), qa: toHex(qa) })
  }
  return steps
}

/** SUM8's closing fold of eight lanes given as binary32 bits, as bits: a row's element value. */
export function foldLanes(acc: readonly number[]): number {
  const a = acc.map(f32FromBits)
  return f32Bits(fold(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]))
}

/** Primitive-level leaves of a quantized row: element state before, block states, element state after. */
export function rowLeaves(steps: readonly BlockStep[], before: Hex, after: Hex): Hex[] {
  return [before, ...steps.map(blockStepLeaf), after]
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)
/** binary32 bits of a (binary32-representable) number. */
export function f32Bits(x: number): number {
  f32[0] = x
  return u32[0]
}

/** The binary32 number with these bits. */
export function f32FromBits(bits: number): number {
  u32[0] = bits
  return f32[0]
}

function hexBytes(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h.slice(2), 'hex'))
}
