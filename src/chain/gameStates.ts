/**
 * The first dispute game's activation commitment, kept only as the reference that
 * src/dispute/machine/transition.test.ts checks the machine's block-vector slot root against (the
 * machine's own is src/dispute/machine/state.ts `slotRoot`). Remove it once that test no longer
 * imports it.
 */
import { type Hex, toHex } from 'viem'
import { quantizeQ8 } from '../engine/kernels/reference.js'
import { buildLevels, merkleProof } from '../trace/merkle.js'
import { actBlockLeaf } from './client.js'

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

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)
function f32Bits(x: number): number {
  f32[0] = x
  return u32[0]
}

function hexBytes(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h.slice(2), 'hex'))
}
