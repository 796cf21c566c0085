/**
 * Vector roots (docs/MACHINE.md "Vector roots"): the commitment to a vector of 32-bit words
 * (binary32 bits or u32 token ids) that lets a contract open any single word. The words are cut
 * into chunks of VECTOR_CHUNK = 256 words (1,024 bytes, little-endian), the last chunk shorter,
 * and the root is the project's one Merkle tree (src/trace/merkle.ts) over leafHash(chunk). A
 * vector of at most 256 words has root leafHash(its bytes); the empty vector has root ZERO.
 */
import { buildLevels, type Hash, leafHash, merkleProof, merkleRoot, treeDepth, ZERO } from './merkle.js'

/** Words per chunk: word i lives in chunk floor(i / 256) at byte offset (i mod 256) * 4. */
export const VECTOR_CHUNK = 256

export type Words = Float32Array | Uint32Array | Int32Array

function chunkBytes(x: Words, c: number): Uint8Array {
  const start = c * VECTOR_CHUNK
  const end = Math.min(x.length, start + VECTOR_CHUNK)
  return new Uint8Array(x.buffer, x.byteOffset + start * 4, (end - start) * 4)
}

/** Number of chunks of a vector of `n` words. */
export function chunkCount(n: number): number {
  return Math.ceil(n / VECTOR_CHUNK)
}

/** Depth of a vector's chunk tree: the length every opening path of an n-word vector has. */
export function vectorDepth(n: number): number {
  return treeDepth(Math.max(chunkCount(n), 1))
}

/** The vector root of `x` (its words' little-endian bytes). */
export function vectorRoot(x: Words): Hash {
  if (x.length === 0) return ZERO
  const n = chunkCount(x.length)
  if (n === 1) return leafHash(chunkBytes(x, 0))
  const leaves: Hash[] = []
  for (let c = 0; c < n; c++) leaves.push(leafHash(chunkBytes(x, c)))
  return merkleRoot(leaves)
}

/** An opening of word `index`: the chunk that holds it and the chunk's path under the root. */
export type VectorOpening = { index: number; chunkIndex: number; chunk: Uint8Array; path: Hash[] }

/** A vector with its tree kept, for openings. */
export class VectorTree {
  readonly root: Hash
  private readonly levels: Hash[][]
  constructor(readonly words: Words) {
    const leaves = Array.from({ length: chunkCount(words.length) }, (_, c) => leafHash(chunkBytes(words, c)))
    this.levels = buildLevels(leaves)
    this.root = words.length === 0 ? ZERO : this.levels[this.levels.length - 1][0]
  }

  /** Opens word `index` (its chunk, copied, and the chunk's sibling path). */
  open(index: number): VectorOpening {
    if (!(Number.isInteger(index) && index >= 0 && index < this.words.length)) throw new RangeError(`word ${index} is outside a vector of ${this.words.length}`)
    const chunkIndex = Math.floor(index / VECTOR_CHUNK)
    return { index, chunkIndex, chunk: chunkBytes(this.words, chunkIndex).slice(), path: merkleProof(this.levels, chunkIndex) }
  }
}
