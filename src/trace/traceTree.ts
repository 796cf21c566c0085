/**
 * Trace commitments (docs/TRACE.md, "Trace root", trace format 2): one leaf per (position, layer)
 * committing to that layer's output state, plus one head leaf per position for the token that
 * follows it. Leaf index = position * (nLayer + 1) + layer, where layer = nLayer is the head leaf.
 * Every vector in a leaf is committed by its vector root (src/trace/vector.ts), so the judge can
 * open any single value of it (docs/MACHINE.md "Trace leaves, version 2"):
 *   layer leaf = u32 pos || u32 layer || vecRoot(residual) || vecRoot(k after RoPE) || vecRoot(v)
 *   head leaf  = u32 pos || u32 nLayer || u32 nextToken || vecRoot(logits), or ZERO without logits
 */
import { buildLevels, type Hash, merkleProof, merkleRootInPlace, sha256Once, treeDepth, ZERO } from './merkle.js'
import { VECTOR_CHUNK, vectorRoot } from './vector.js'

// Leaves hash raw Float32Array bytes: the commitments assume little-endian binary32, which every
// platform JavaScript runs on uses; refuse to run rather than commit to other bytes.
if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error('tessera needs a little-endian platform')

/**
 * The trace format these leaves follow (docs/TRACE.md). 1 hashed whole vectors into each leaf;
 * 2 commits each vector by its vector root. A trace of one format never verifies as the other.
 */
export const TRACE_FORMAT = 2

/** The token id written in head leaves of positions whose next token is not known. */
export const NO_TOKEN = 0xffffffff

function bytesOf(x: Float32Array, off: number, n: number): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset + off * 4, n * 4)
}

// The fast path: one-shot SHA-256 from reused scratch, no Hash object per chunk or per leaf (a
// decode step hashes nLayer layer leaves, each several chunks; per-call overhead dominates).
// chunkScratch = 0x00 || one chunk (leafHash of a chunk); treeScratch = a vector's chunk hashes,
// packed, merged in place; leafScratch = 0x00 || the leaf data.
const CHUNK_BYTES = 4 * VECTOR_CHUNK
const chunkScratch = new Uint8Array(1 + CHUNK_BYTES)
// Views of chunkScratch by length (a vector's chunks have at most two lengths): a fresh subarray
// per chunk would cost a good part of hashing it.
const chunkViews: (Uint8Array | undefined)[] = []
let treeScratch = new Uint8Array(32)
const leafScratch = new Uint8Array(1 + 12 + 32 * 3)

/**
 * A faster implementation of the trace's hashes (same bytes out): `vectorRoot` of little-endian
 * word bytes into out[at .. at + 32), and the layer leaf hash of three vectors' bytes into
 * out[0 .. 32).
 */
export type TraceHasher = {
  vectorRoot(bytes: Uint8Array, out: Uint8Array, at: number): void
  layerLeaf(residual: Uint8Array, k: Uint8Array, v: Uint8Array, pos: number, layer: number, out: Uint8Array): void
}
let hasher: TraceHasher | undefined

/**
 * Installs a faster implementation of the trace's hashes (the runtime's native addon,
 * src/runtime/native/q8.ts: one native call per vector or leaf instead of one per chunk and
 * node), or with `undefined` restores the JS path. The hashes are the same bytes either way
 * (tested), so this changes only speed.
 */
export function useTraceHasher(h: TraceHasher | undefined): void {
  hasher = h
}

function chunkView(n: number): Uint8Array {
  return (chunkViews[n] ??= chunkScratch.subarray(0, n))
}

/**
 * `vectorRoot` of the `n` words of `x` from word `off`, written to out[at .. at + 32): the fast
 * twin of src/trace/vector.ts `vectorRoot` (tested equal).
 */
export function vectorRootInto(x: Float32Array, off: number, n: number, out: Uint8Array, at: number): void {
  if (n === 0) {
    out.fill(0, at, at + 32)
    return
  }
  const bytes = bytesOf(x, off, n)
  if (hasher) return hasher.vectorRoot(bytes, out, at)
  const chunks = Math.ceil(n / VECTOR_CHUNK)
  if (chunks === 1) {
    chunkScratch.set(bytes, 1) // chunkScratch[0] stays 0x00, the leaf domain byte
    out.set(sha256Once(chunkView(1 + bytes.length)), at)
    return
  }
  const need = 32 << treeDepth(chunks)
  if (treeScratch.length < need) treeScratch = new Uint8Array(need)
  for (let c = 0; c < chunks; c++) {
    const part = bytes.subarray(c * CHUNK_BYTES, Math.min((c + 1) * CHUNK_BYTES, bytes.length))
    chunkScratch.set(part, 1)
    treeScratch.set(sha256Once(chunkView(1 + part.length)), 32 * c)
  }
  merkleRootInPlace(treeScratch, chunks)
  out.set(treeScratch.subarray(0, 32), at)
}

/**
 * Leaf hash of layer `layer` at `pos`: u32 pos || u32 layer || vecRoot(residual[rOff .. +dim]) ||
 * vecRoot(k[kvOff .. +kvDim]) || vecRoot(v[kvOff .. +kvDim]).
 */
export function layerLeaf(pos: number, layer: number, residual: Float32Array, rOff: number, dim: number, k: Float32Array, v: Float32Array, kvOff: number, kvDim: number): Hash {
  if (hasher) {
    const h = new Uint8Array(32)
    hasher.layerLeaf(bytesOf(residual, rOff, dim), bytesOf(k, kvOff, kvDim), bytesOf(v, kvOff, kvDim), pos, layer, h)
    return h
  }
  const buf = leafScratch.subarray(0, 1 + 8 + 96)
  buf[0] = 0 // leafHash's domain byte
  const dv = new DataView(buf.buffer, buf.byteOffset, 9)
  dv.setUint32(1, pos, true)
  dv.setUint32(5, layer, true)
  vectorRootInto(residual, rOff, dim, buf, 9)
  vectorRootInto(k, kvOff, kvDim, buf, 41)
  vectorRootInto(v, kvOff, kvDim, buf, 73)
  return sha256Once(buf)
}

/** Head leaf at `pos`: u32 pos || u32 nLayer || u32 nextToken || vecRoot(logits), or ZERO without logits. */
export function headLeaf(pos: number, nLayer: number, nextToken: number, logits?: Float32Array): Hash {
  const buf = headLeafPrefix(pos, nLayer, nextToken)
  if (logits) vectorRootInto(logits, 0, logits.length, buf, 13)
  else buf.set(ZERO, 13)
  return sha256Once(buf)
}

/** `headLeaf(pos, nLayer, nextToken, logits)` from `logitsRoot(logits)` taken earlier. */
export function headLeafOfRoot(pos: number, nLayer: number, nextToken: number, logitsRoot: Uint8Array): Hash {
  const buf = headLeafPrefix(pos, nLayer, nextToken)
  buf.set(logitsRoot.subarray(0, 32), 13)
  return sha256Once(buf)
}

/** The vector root a head leaf commits its logits by (so they can be committed before sampling changes them). */
export function logitsRoot(logits: Float32Array): Uint8Array {
  const root = new Uint8Array(32)
  vectorRootInto(logits, 0, logits.length, root, 0)
  return root
}

/** leafScratch holding 0x00 || u32 pos || u32 nLayer || u32 nextToken, room for the logits root. */
function headLeafPrefix(pos: number, nLayer: number, nextToken: number): Uint8Array {
  const buf = leafScratch.subarray(0, 1 + 12 + 32)
  buf[0] = 0
  const dv = new DataView(buf.buffer, buf.byteOffset, 13)
  dv.setUint32(1, pos, true)
  dv.setUint32(5, nLayer, true)
  dv.setUint32(9, nextToken >>> 0, true)
  return buf
}

/** Layer leaf data (before `leafHash`), built plainly from `vectorRoot`: the reference for `layerLeaf`. */
export function layerLeafData(pos: number, layer: number, residual: Float32Array, k: Float32Array, v: Float32Array): Uint8Array {
  const d = new Uint8Array(8 + 96)
  const dv = new DataView(d.buffer)
  dv.setUint32(0, pos, true)
  dv.setUint32(4, layer, true)
  d.set(vectorRoot(residual), 8)
  d.set(vectorRoot(k), 40)
  d.set(vectorRoot(v), 72)
  return d
}

/** Head leaf data (before `leafHash`), built plainly: the reference for `headLeaf`. */
export function headLeafData(pos: number, nLayer: number, nextToken: number, logits?: Float32Array): Uint8Array {
  const d = new Uint8Array(12 + 32)
  const dv = new DataView(d.buffer)
  dv.setUint32(0, pos, true)
  dv.setUint32(4, nLayer, true)
  dv.setUint32(8, nextToken >>> 0, true)
  d.set(logits ? vectorRoot(logits) : ZERO, 12)
  return d
}


/** Collects leaf hashes as the forward pass emits them; positions may arrive in batches. */
export class TraceTree {
  private readonly leaves: Hash[] = []
  constructor(readonly nLayer: number, readonly dim: number, readonly kvDim: number) {}

  /** Observer for Transformer.forward: hashes each token's state after `layer`. */
  readonly observeLayer = (layer: number, startPos: number, nTok: number, residual: Float32Array, k: Float32Array, v: Float32Array): void => {
    for (let t = 0; t < nTok; t++) {
      const pos = startPos + t
      this.leaves[this.index(pos, layer)] = layerLeaf(pos, layer, residual, t * this.dim, this.dim, k, v, t * this.kvDim, this.kvDim)
    }
  }

  setHead(pos: number, nextToken: number, logits?: Float32Array): void {
    this.leaves[this.index(pos, this.nLayer)] = headLeaf(pos, this.nLayer, nextToken, logits)
  }

  /** `setHead(pos, nextToken, logits)` with `logitsRoot(logits)` taken before the logits changed. */
  setHeadRoot(pos: number, nextToken: number, root: Uint8Array): void {
    this.leaves[this.index(pos, this.nLayer)] = headLeafOfRoot(pos, this.nLayer, nextToken, root)
  }

  index(pos: number, layer: number): number {
    return pos * (this.nLayer + 1) + layer
  }

  /** Leaf hashes of positions 0 .. nPos-1; throws if one was never set. */
  leafHashes(nPos: number): Hash[] {
    const out = this.leaves.slice(0, nPos * (this.nLayer + 1))
    for (let i = 0; i < nPos * (this.nLayer + 1); i++) {
      if (!out[i]) throw new Error(`trace leaf ${i} (position ${Math.floor(i / (this.nLayer + 1))}) missing`)
    }
    return out
  }
}

/**
 * The root alone of `traceRoot(leaves)` (same bytes, tested): the leaf hashes packed into one
 * buffer and merged in place with one-shot hashes, padding subtrees not hashed. A job's replay
 * needs only roots; building every level (traceRoot) hashes the padding too and costs a Hash
 * object per node: ~5% of a short verify.
 */
export function traceRootOnly(leaves: readonly Hash[]): Hash {
  const n = leaves.length
  // a leaf that is not 32 bytes (a malformed published list) packs differently: the plain tree
  for (let i = 0; i < n; i++) if (leaves[i].length !== 32) return traceRoot(leaves).root
  const work = new Uint8Array(32 << treeDepth(Math.max(n, 1)))
  for (let i = 0; i < n; i++) work.set(leaves[i], 32 * i)
  merkleRootInPlace(work, n)
  return work.slice(0, 32)
}

/** Root and inclusion proofs over a full list of leaf hashes. */
export function traceRoot(leaves: readonly Hash[]): { root: Hash; proof(index: number): Hash[] } {
  const levels = buildLevels(leaves)
  return { root: levels[levels.length - 1][0], proof: (i) => merkleProof(levels, i) }
}
