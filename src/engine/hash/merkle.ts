/**
 * Binary SHA-256 Merkle trees, the one tree shape used for model roots, trace roots and receipt
 * batches (docs/TRACE.md). Leaves are domain-separated from inner nodes:
 *   leafHash(data) = SHA-256(0x00 || data)
 *   node(l, r)     = SHA-256(0x01 || l || r)
 * A tree over n leaves is padded to the next power of two with ZERO (32 zero bytes) leaves, so a
 * proof is exactly `depth` sibling hashes and the verifier needs only the leaf index.
 *
 * It lives in the engine because the model root (engine/gguf/modelRoot.ts) is such a tree; the
 * trace layer builds its trace and receipt trees from the same functions (src/trace/merkle.ts).
 */
import * as nodeCrypto from 'node:crypto'
import { equalBytes } from '../bytes.js'

const { createHash } = nodeCrypto

export type Hash = Uint8Array & { readonly __brand?: 'Hash' }

export const ZERO: Hash = new Uint8Array(32)

export function sha256(...parts: Uint8Array[]): Hash {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  const d = h.digest()
  return new Uint8Array(d.buffer, d.byteOffset, 32)
}

const LEAF = Uint8Array.of(0)
const NODE = Uint8Array.of(1)

export function leafHash(data: Uint8Array): Hash {
  return sha256(LEAF, data)
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Hash {
  return sha256(NODE, left, right)
}

// The fast packed-hash path below: the same hashes as leafHash / nodeHash / merkleRoot, computed
// with node:crypto's one-shot `hash` (Node >= 20.12; createHash otherwise) from reused scratch
// buffers, so a 2 KiB leaf costs one native call and no Hash object (model loading hashes ~1M).
type OneShot = (algorithm: string, data: Uint8Array, outputEncoding: 'buffer') => Uint8Array
const oneShot: OneShot | undefined = (nodeCrypto as unknown as { hash?: OneShot }).hash

/** SHA-256 of one byte array in a single native call (the one-shot path when Node has it). */
export function sha256Once(data: Uint8Array): Hash {
  const d = oneShot ? oneShot('sha256', data, 'buffer') : createHash('sha256').update(data).digest()
  return new Uint8Array(d.buffer, d.byteOffset, 32)
}

function digestInto(data: Uint8Array, out: Uint8Array, at: number): void {
  out.set(sha256Once(data), at)
}

let leafScratch = new Uint8Array(4097)
// Views of leafScratch by length: a row's chunks have at most two lengths, and a fresh subarray
// per leaf costs about as much as copying the leaf.
let leafViews = new Map<number, Uint8Array>()
const nodeScratch = Uint8Array.of(1, ...new Uint8Array(64))
// zeroHashes[k]: the root of a subtree of 2^k ZERO leaves (all padding), so padding is never hashed.
const zeroHashes: Uint8Array[] = [ZERO]

function zeroHash(k: number): Uint8Array {
  while (zeroHashes.length <= k) {
    const z = zeroHashes[zeroHashes.length - 1]
    const h = new Uint8Array(32)
    nodeScratch.set(z, 1)
    nodeScratch.set(z, 33)
    digestInto(nodeScratch, h, 0)
    zeroHashes.push(h)
  }
  return zeroHashes[k]
}

/** `leafHash(data)` written to out[at .. at + 32). */
export function leafHashInto(data: Uint8Array, out: Uint8Array, at: number): void {
  const n = data.length + 1
  if (n > leafScratch.length) {
    leafScratch = new Uint8Array(n)
    leafViews = new Map()
  }
  let view = leafViews.get(n)
  if (!view) {
    if (leafViews.size > 8) leafViews.clear()
    leafViews.set(n, (view = leafScratch.subarray(0, n)))
  }
  leafScratch.set(data, 1) // leafScratch[0] stays 0x00, the leaf domain byte
  digestInto(view, out, at)
}

/**
 * In place: `work` holds `n` hashes packed 32 bytes apart and has room for the padded tree's
 * next power of two of them; afterwards work[0 .. 32) is `merkleRoot` of those n leaves.
 * Subtrees that are all padding are not hashed: their roots are `zeroHash(level)`.
 */
export function merkleRootInPlace(work: Uint8Array, n: number): void {
  const depth = treeDepth(Math.max(n, 1))
  if (work.length < 32 << depth) throw new RangeError(`merkleRootInPlace: ${work.length} bytes cannot hold ${1 << depth} padded leaves`)
  if (n === 0) work.fill(0, 0, 32)
  // live = nodes of this level that cover at least one real leaf; the rest are padding subtrees.
  let live = n
  for (let k = 0; k < depth; k++) {
    if (live & 1) work.set(zeroHash(k), 32 * live)
    const pairs = (live + 1) >> 1
    for (let j = 0; j < pairs; j++) {
      nodeScratch.set(work.subarray(64 * j, 64 * j + 64), 1)
      digestInto(nodeScratch, work, 32 * j)
    }
    live = pairs
  }
}

/** `merkleRoot` of `n` leaf hashes packed 32 bytes apart in `hashes` (left unchanged). */
export function merkleRootPacked(hashes: Uint8Array, n: number): Hash {
  const work = new Uint8Array(32 << treeDepth(Math.max(n, 1)))
  work.set(hashes.subarray(0, 32 * n))
  merkleRootInPlace(work, n)
  return work.slice(0, 32)
}

/** Depth of the padded tree over `n` leaves (0 for one leaf). */
export function treeDepth(n: number): number {
  let d = 0
  while (1 << d < n) d++
  return d
}

/** All levels of the tree over already-hashed leaves: levels[0] = padded leaves, last = [root]. */
export function buildLevels(leaves: readonly Uint8Array[]): Hash[][] {
  const depth = treeDepth(Math.max(leaves.length, 1))
  let level: Hash[] = leaves.slice()
  while (level.length < 1 << depth) level.push(ZERO)
  const levels = [level]
  while (level.length > 1) {
    const next: Hash[] = []
    for (let i = 0; i < level.length; i += 2) next.push(nodeHash(level[i], level[i + 1]))
    levels.push(next)
    level = next
  }
  return levels
}

/** Root over hashed leaves (an empty list has the root of one ZERO leaf: ZERO). */
export function merkleRoot(leaves: readonly Uint8Array[]): Hash {
  const levels = buildLevels(leaves)
  return levels[levels.length - 1][0]
}

/** Sibling hashes from the leaf up to (not including) the root. */
export function merkleProof(levels: readonly Hash[][], index: number): Hash[] {
  const proof: Hash[] = []
  for (let l = 0; l < levels.length - 1; l++) {
    proof.push(levels[l][index ^ 1])
    index >>>= 1
  }
  return proof
}

/** True when `leaf` sits at `index` under `root` given its sibling path. */
export function verifyProof(root: Uint8Array, leaf: Uint8Array, index: number, proof: readonly Uint8Array[]): boolean {
  let h: Uint8Array = leaf
  for (const sib of proof) {
    h = index & 1 ? nodeHash(sib, h) : nodeHash(h, sib)
    index >>>= 1
  }
  return index === 0 && equalBytes(h, root)
}
