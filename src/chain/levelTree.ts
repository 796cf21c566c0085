/**
 * A level tree of the dispute game: a Merkle tree (the project's one shape, src/trace/merkle.ts)
 * over hex leaves, with what the players need: the nodes a provider reveals below a node, leaf
 * proofs, and the expansion that commits the tree to the contract.
 */
import type { Hex } from 'viem'
import { buildLevels, type Hash } from '../trace/merkle.js'
import type { Expansion } from './client.js'

/** A Merkle tree over hex leaves with node lookup by (depth from the top, index). */
export class Tree {
  readonly levels: Hash[][]
  readonly depth: number
  constructor(readonly leaves: Hex[]) {
    this.levels = buildLevels(leaves.map((x) => Buffer.from(x.slice(2), 'hex')))
    this.depth = this.levels.length - 1
  }
  get root(): Hex {
    return hex(this.levels[this.depth][0])
  }
  /** Nodes `s` levels below node (dt, index): what the provider reveals. */
  children(dt: number, index: bigint, s: number): Hex[] {
    const row = this.levels[this.depth - dt - s]
    const first = Number(index) << s
    return row.slice(first, first + (1 << s)).map(hex)
  }
  proof(i: number): Hex[] {
    const out: Hex[] = []
    for (let l = 0; l < this.depth; l++, i >>>= 1) out.push(hex(this.levels[l][i ^ 1]))
    return out
  }
}

/** The expansion committing level tree `t` (leaf 0 and the last leaf proven). */
export function expansionOf(t: Tree): Expansion {
  const last = t.leaves.length - 1
  return { root: t.root, depth: t.depth, lastLeaf: BigInt(last), proofFirst: t.proof(0), proofLast: t.proof(last) }
}

function hex(b: Uint8Array): Hex {
  return `0x${Buffer.from(b).toString('hex')}`
}
