/**
 * The dispute machine's states and commitments (docs/MACHINE.md "Formats"): micro-states and
 * their leaves, frames (the 64 slot roots after each op of a transition), slot roots of word and
 * block vectors, the result of a final micro-state, and the version-2 trace leaves. The Solidity
 * twin is src/chain/contracts/lib/MachineState.sol: every format here is hashed the same way there.
 *
 * Legend: `r` the 8 registers (uint32: binary32 bits, token ids or flags), `data` a state's byte
 * string (the int8 values a QUANT program has produced so far), B the activation block size.
 */
import { bytesToHex, encodeAbiParameters, hexToBytes } from 'viem'
import { type Hash, buildLevels, concatBytes, leafHash, merkleProof, merkleRoot, ZERO } from '../../trace/merkle.js'
import { vectorRoot } from '../../trace/vector.js'

/** One element's program state after `step` micro-steps; step 0 is the initial state. */
export type MicroState = {
  /** The op's number k in its transition (1-based; the op-level leaf index). */
  op: number
  /** The element of the op's slot this program computes. */
  elem: number
  step: number
  /** Eight uint32 registers. */
  r: Uint32Array
  data: Uint8Array
}

/** Leaf tag of a micro-state (tags 7-11 are the first game's leaf kinds). */
export const MICRO_TAG = 12
/** Slots per frame, and the depth of a frame's tree. */
export const FRAME_SLOTS = 64
export const FRAME_DEPTH = 6

/** A state with the given registers (others +0) and data (default empty). */
export function microState(op: number, elem: number, step: number, r: ArrayLike<number> = [], data: Uint8Array = new Uint8Array(0)): MicroState {
  const regs = new Uint32Array(8)
  regs.set(r)
  return { op, elem, step, r: regs, data }
}

const MICRO_ABI = [{ type: 'uint8' }, { type: 'uint32' }, { type: 'uint64' }, { type: 'uint64' }, { type: 'uint32[8]' }, { type: 'bytes' }] as const

/** `sha256(0x00 || abi.encode(uint8 12, uint32 op, uint64 elem, uint64 step, uint32[8] r, bytes data))`. */
export function microLeaf(s: MicroState): Hash {
  const enc = encodeAbiParameters(MICRO_ABI, [MICRO_TAG, s.op, BigInt(s.elem), BigInt(s.step), Array.from(s.r) as never, bytesToHex(s.data)])
  return leafHash(hexToBytes(enc))
}

/** One quantized activation block: its scale's binary32 bits and its B int8 values (as bytes). */
export type Block = { da: number; qa: Uint8Array }

/** The activation block leaf `sha256(0x00 || abi.encode(uint32 da, bytes qa))`. */
export function actBlockLeaf(da: number, qa: Uint8Array): Hash {
  return leafHash(hexToBytes(encodeAbiParameters([{ type: 'uint32' }, { type: 'bytes' }], [da >>> 0, bytesToHex(qa)])))
}

/**
 * What a slot holds: a word vector (binary32 bits or token ids) or a block vector. A block
 * vector is empty when its B does not divide the activation's length.
 */
export type SlotValue = { kind: 'words'; words: Uint32Array } | { kind: 'blocks'; blocks: Block[] }

/** The root a frame holds for a slot: vectorRoot of the words, or the Merkle root over block leaves (ZERO when empty). */
export function slotRoot(v: SlotValue): Hash {
  if (v.kind === 'words') return vectorRoot(v.words)
  if (v.blocks.length === 0) return ZERO
  return merkleRoot(v.blocks.map((b) => actBlockLeaf(b.da, b.qa)))
}

/**
 * The leaf an element's final state stands for, which must equal the slot's opening at that
 * element: r[0] (as 4 little-endian bytes, the word) for a word slot, actBlockLeaf(r[0], data)
 * for a block slot.
 */
export function stateResult(s: MicroState, block: boolean): { word: number } | { leaf: Hash } {
  return block ? { leaf: actBlockLeaf(s.r[0], s.data) } : { word: s.r[0] }
}

/** A frame: the Merkle root over 64 slot roots used as leaf hashes (absent slots ZERO). */
export function frameRoot(slotRoots: readonly (Hash | undefined)[]): Hash {
  return merkleRoot(padSlots(slotRoots))
}

/**
 * The 6-hash path of slot `slot` in a frame; for the frame an op produced it is also the path of
 * the same slot (then ZERO) in the op's pre-frame, which is what `frameUpdate` checks.
 */
export function frameProof(slotRoots: readonly (Hash | undefined)[], slot: number): Hash[] {
  if (!(Number.isInteger(slot) && slot >= 0 && slot < FRAME_SLOTS)) throw new RangeError(`slot ${slot} is outside a frame of ${FRAME_SLOTS}`)
  return merkleProof(buildLevels(padSlots(slotRoots)), slot)
}

function padSlots(slotRoots: readonly (Hash | undefined)[]): Hash[] {
  if (slotRoots.length > FRAME_SLOTS) throw new RangeError(`a frame has ${FRAME_SLOTS} slots, not ${slotRoots.length}`)
  return Array.from({ length: FRAME_SLOTS }, (_, i) => slotRoots[i] ?? ZERO)
}

function le32(x: number): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, x >>> 0, true)
  return b
}

/** Trace leaf v2 of layer `layer` at `pos`: leafHash(u32 pos || u32 layer || x root || k root || v root). */
export function layerLeafV2(pos: number, layer: number, residualRoot: Hash, kRoot: Hash, vRoot: Hash): Hash {
  return leafHash(concatBytes(le32(pos), le32(layer), residualRoot, kRoot, vRoot))
}

/** Trace leaf v2 of the head at `pos`: leafHash(u32 pos || u32 nLayer || u32 nextToken || logits root). */
export function headLeafV2(pos: number, nLayer: number, nextToken: number, logitsRoot: Hash): Hash {
  return leafHash(concatBytes(le32(pos), le32(nLayer), le32(nextToken), logitsRoot))
}

/** The hash of a list of micro-state leaves as the element tree's root (the provider's commitment). */
export function elementRoot(states: readonly MicroState[]): Hash {
  return merkleRoot(states.map(microLeaf))
}
