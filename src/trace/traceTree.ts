/**
 * Trace commitments (docs/TRACE.md, "Trace root"): one leaf per (position, layer) hashing that
 * layer's output state, plus one head leaf per position for the token that follows it. Leaf
 * index = position * (nLayer + 1) + layer, where layer = nLayer is the head leaf.
 */
import { buildLevels, concatBytes, type Hash, leafHash, merkleProof, sha256, sha256Once, ZERO } from './merkle.js'

// Leaves hash raw Float32Array bytes: the commitments assume little-endian binary32, which every
// platform JavaScript runs on uses; refuse to run rather than commit to other bytes.
if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error('tessera needs a little-endian platform')

/** The token id written in head leaves of positions whose next token is not known. */
export const NO_TOKEN = 0xffffffff

function header(pos: number, layer: number, extra = 0): Uint8Array {
  const h = new Uint8Array(8 + extra)
  const dv = new DataView(h.buffer)
  dv.setUint32(0, pos, true)
  dv.setUint32(4, layer, true)
  return h
}

function bytesOf(x: Float32Array, off: number, n: number): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset + off * 4, n * 4)
}

// Scratch for layer leaves: 0x00 || header || residual || k || v, assembled in place and hashed in
// one native call (a decode step hashes nLayer of them; allocation and per-call overhead dominated).
let scratch = new Uint8Array(0)

/** Leaf hash of layer `layer` at `pos`: header || residual (dim) || k (kvDim) || v (kvDim). */
export function layerLeaf(pos: number, layer: number, residual: Float32Array, rOff: number, dim: number, k: Float32Array, v: Float32Array, kvOff: number, kvDim: number): Hash {
  const n = 9 + (dim + 2 * kvDim) * 4
  if (scratch.length < n) scratch = new Uint8Array(n)
  const buf = scratch.subarray(0, n)
  buf[0] = 0 // leafHash's domain byte
  const dv = new DataView(buf.buffer, buf.byteOffset, 9)
  dv.setUint32(1, pos, true)
  dv.setUint32(5, layer, true)
  buf.set(bytesOf(residual, rOff, dim), 9)
  buf.set(bytesOf(k, kvOff, kvDim), 9 + dim * 4)
  buf.set(bytesOf(v, kvOff, kvDim), 9 + (dim + kvDim) * 4)
  return sha256Once(buf)
}

/** Head leaf at `pos`: header || next token (u32) || SHA-256(logits) or 32 zero bytes. */
export function headLeaf(pos: number, nLayer: number, nextToken: number, logits?: Float32Array): Hash {
  const h = header(pos, nLayer, 4)
  new DataView(h.buffer).setUint32(8, nextToken >>> 0, true)
  return leafHash(concatBytes(h, logits ? sha256(bytesOf(logits, 0, logits.length)) : ZERO))
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

/** Root and inclusion proofs over a full list of leaf hashes. */
export function traceRoot(leaves: readonly Hash[]): { root: Hash; proof(index: number): Hash[] } {
  const levels = buildLevels(leaves)
  return { root: levels[levels.length - 1][0], proof: (i) => merkleProof(levels, i) }
}
