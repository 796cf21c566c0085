/**
 * A committed level of the dispute game (trace leaves, a transition's frames, an element's
 * micro-states) as the players see it: a Merkle tree in the project's one shape
 * (src/trace/merkle.ts) with the nodes a provider reveals below a node, leaf proofs, and the
 * expansion that commits it to the contract. The contract's position arithmetic is
 * src/chain/bisection.ts.
 */
import type { Hex } from 'viem'
import { toHex0x } from '../engine/bytes.js'
import { VECTOR_CHUNK } from '../trace/vector.js'
import { type Hash, buildLevels, leafHash, merkleProof } from '../trace/merkle.js'
import { actBlockLeaf, type SlotValue } from './machine/state.js'

/** A level tree over leaf hashes. `depth` is the padded tree's depth (0 for one leaf). */
export type LevelTree = {
  readonly leaves: readonly Hash[]
  readonly root: Hash
  readonly depth: number
  /** The 2^s nodes s levels below node `index` at `dt` levels from the top: what a reveal sends. */
  children(dt: number, index: bigint, s: number): Hash[]
  /** Leaf i's sibling path. */
  proof(i: number): Hash[]
}

/** The tree over `leaves` (at least one). */
export function levelTree(leaves: readonly Hash[]): LevelTree {
  if (leaves.length === 0) throw new RangeError('a level tree needs at least one leaf')
  const levels = buildLevels(leaves)
  const depth = levels.length - 1
  return {
    leaves, depth, root: levels[depth][0],
    children(dt, index, s) {
      const row = levels[depth - dt - s]
      const first = Number(index) << s
      return row.slice(first, first + (1 << s))
    },
    proof: (i) => merkleProof(levels, i),
  }
}

/**
 * The tree of a slot as the game's level 2 bisects it (its root is the slot's root): one leaf per
 * 256-word chunk of a word slot (leafHash of the chunk's bytes), one per block of a block slot.
 */
export function slotTree(v: SlotValue): LevelTree {
  if (v.kind === 'blocks') return levelTree(v.blocks.map((b) => actBlockLeaf(b.da, b.qa)))
  return levelTree(Array.from({ length: Math.ceil(v.words.length / VECTOR_CHUNK) }, (_, c) => leafHash(chunkBytes(v.words, c))))
}

/** The bytes of chunk `c` of a word vector (256 words, the last shorter), as revealChunk sends them. */
export function chunkBytes(words: Uint32Array, c: number): Uint8Array {
  const end = Math.min(words.length, (c + 1) * VECTOR_CHUNK)
  return new Uint8Array(words.buffer, words.byteOffset + c * VECTOR_CHUNK * 4, (end - c * VECTOR_CHUNK) * 4)
}

/** A sub-level commitment as DisputeGame.Expansion takes it: leaf 0 and the last leaf proven. */
export type Expansion = { root: Hex; depth: number; lastLeaf: bigint; proofFirst: Hex[]; proofLast: Hex[] }

export function expansionOf(t: LevelTree): Expansion {
  const last = t.leaves.length - 1
  return { root: hex(t.root), depth: t.depth, lastLeaf: BigInt(last), proofFirst: t.proof(0).map(hex), proofLast: t.proof(last).map(hex) }
}

/** 0x-hex of a hash (the chain's form). */
export const hex: (h: Uint8Array) => Hex = toHex0x

/** The first index where two leaf lists differ, -1 when equal. */
export function firstDifference(a: readonly (Hash | Hex)[], b: readonly (Hash | Hex)[]): number {
  const n = Math.max(a.length, b.length)
  const s = (x: Hash | Hex | undefined) => (x === undefined ? '' : typeof x === 'string' ? x.toLowerCase() : hex(x))
  for (let i = 0; i < n; i++) if (s(a[i]) !== s(b[i])) return i
  return -1
}
