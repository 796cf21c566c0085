/**
 * Weight-row proofs for the BLOCK_TERM one-step: the model tree of docs/TRACE.md ("Model root")
 * kept with every tensor's row hashes, so a provider can hand the judge one row with its two
 * Merkle paths (row -> row root, tensor leaf -> model root). Same bytes as
 * src/engine/gguf/modelRoot.ts, which only keeps the roots.
 */
import { type Hex, toHex } from 'viem'
import type { ByteSource, GgufFile } from '../engine/gguf/read.js'
import { configLeafData, tensorLeafData, tensorRowsCols } from '../engine/gguf/modelRoot.js'
import { rowBytes } from '../engine/gguf/types.js'
import type { ModelConfig } from '../engine/model/config.js'
import { BaseError } from '../errors.js'
import { type Hash, buildLevels, leafHash, merkleProof } from '../trace/merkle.js'
import type { WeightProof } from './client.js'

/** A tensor name or row index that the model does not have. */
export class UnknownWeightRowError extends BaseError {
  override name = 'UnknownWeightRowError'
}

type TensorEntry = { name: string; type: number; rows: number; cols: number; rowBytes: number; fileOffset: number; rowLevels: Hash[][] }

/** A model's tree with the row level of every tensor: proves any weight row. */
export type ModelTree = {
  modelRoot: Hex
  /** Tensor names in model-tree order (leaf i + 1 is tensor i). */
  names: readonly string[]
  /** The tensor's ggml type, rows and columns. */
  shape(name: string): { type: number; rows: number; cols: number; tensorIndex: number }
  /** Row `row` of tensor `name`: its raw bytes, its tensor's leaf index, and the proof for the judge. */
  proveRow(name: string, row: number): { tensorIndex: number; bytes: Uint8Array; proof: WeightProof }
}

const utf8 = new TextEncoder()
const hx = (b: Uint8Array): Hex => toHex(b)

/**
 * Builds the model tree of a parsed GGUF file, reading every row once from `src` (it stays
 * needed: `proveRow` reads the row again). The root equals `computeGgufModelRoot`'s.
 *
 * @example
 *   const tree = buildModelTree(src, gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors))
 *   const { tensorIndex, proof } = tree.proveRow('blk.0.ffn_down.weight', 3)
 */
export function buildModelTree(src: ByteSource, gguf: GgufFile, config: ModelConfig): ModelTree {
  const entries: TensorEntry[] = gguf.tensors.map((t) => {
    const { rows, cols } = tensorRowsCols(t.dims)
    const rb = rowBytes(t.type, cols)
    const all = src.read(t.fileOffset, rows * rb)
    if (all.length !== rows * rb) throw new UnknownWeightRowError(`tensor ${t.name} runs past the end of the file`)
    const leaves: Hash[] = []
    for (let r = 0; r < rows; r++) leaves.push(leafHash(all.subarray(r * rb, (r + 1) * rb)))
    return { name: t.name, type: t.type, rows, cols, rowBytes: rb, fileOffset: t.fileOffset, rowLevels: buildLevels(leaves) }
  })
  // Tensor leaves sort by name after the config leaf (modelRoot.ts computeModelRoot).
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const rootOf = (e: TensorEntry) => e.rowLevels[e.rowLevels.length - 1][0]
  const modelLevels = buildLevels([
    leafHash(configLeafData(config, gguf.metadata)),
    ...entries.map((e) => leafHash(tensorLeafData(e.name, e.type, e.rows, e.cols, rootOf(e)))),
  ])
  const byName = new Map(entries.map((e, i) => [e.name, { e, tensorIndex: i + 1 }]))
  const lookup = (name: string) => {
    const x = byName.get(name)
    if (!x) throw new UnknownWeightRowError(`the model has no tensor ${name}`)
    return x
  }
  return {
    modelRoot: hx(modelLevels[modelLevels.length - 1][0]),
    names: entries.map((e) => e.name),
    shape(name) {
      const { e, tensorIndex } = lookup(name)
      return { type: e.type, rows: e.rows, cols: e.cols, tensorIndex }
    },
    proveRow(name, row) {
      const { e, tensorIndex } = lookup(name)
      if (!Number.isInteger(row) || row < 0 || row >= e.rows) throw new UnknownWeightRowError(`tensor ${name} has no row ${row}`, { details: `rows: ${e.rows}` })
      const bytes = src.read(e.fileOffset + row * e.rowBytes, e.rowBytes)
      return {
        tensorIndex,
        bytes,
        proof: {
          name: hx(utf8.encode(e.name)), ggmlType: e.type, rows: BigInt(e.rows), cols: BigInt(e.cols), rowRoot: hx(rootOf(e)),
          tensorPath: merkleProof(modelLevels, tensorIndex).map(hx), rowBytes: hx(bytes), rowPath: merkleProof(e.rowLevels, row).map(hx),
        },
      }
    },
  }
}
