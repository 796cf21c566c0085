/**
 * The model root of docs/TRACE.md: one SHA-256 commitment to a model's config, tokenizer and the
 * exact bytes of every weight row, shaped so that a contract can check a single row with two
 * Merkle paths (row -> row root, tensor leaf -> model root).
 *
 *   row root     = merkleRoot(leafHash(row bytes) for each row)       (a 1-D tensor is one row)
 *   tensor leaf  = u32 nameLength | name (UTF-8) | u32 ggmlType | u64 rows | u64 cols | rowRoot
 *   config leaf  = "tessera-config/1" | SHA-256(canonicalJson(config)) | SHA-256(canonicalJson(tokenizer))
 *   model root   = merkleRoot([leafHash(config leaf), leafHash(tensor leaf) sorted by name])
 *
 * Integers little-endian. Names sort by UTF-16 code units (JS default sort; all llama.cpp tensor
 * names are ASCII, where this equals byte order).
 */
import { concatBytes, type Hash, leafHash, merkleRoot, sha256 } from '../../trace/merkle.js'
import type { ModelConfig } from '../model/config.js'
import { GgufFormatError } from './errors.js'
import type { ByteSource, GgufFile } from './read.js'
import { type GgufArrayItem, type GgufMetadata, rowBytes } from './types.js'

const utf8 = new TextEncoder()

/**
 * Canonical JSON: object keys sorted (UTF-16 code unit order), no whitespace, bigints written as
 * decimal strings, numbers as ECMAScript's shortest round-trip form (`JSON.stringify`).
 */
export function canonicalJson(value: unknown): string {
  if (typeof value === 'bigint') return JSON.stringify(value.toString())
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} has no JSON form`)
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`
}

/** The config object hashed into the config leaf: every `ModelConfig` field, by name. */
export function configForRoot(config: ModelConfig): Record<string, unknown> {
  return {
    arch: config.arch,
    dim: config.dim,
    nLayer: config.nLayer,
    nHead: config.nHead,
    nKvHead: config.nKvHead,
    headDim: config.headDim,
    ffDim: config.ffDim,
    vocabSize: config.vocabSize,
    contextLength: config.contextLength,
    ropeBase: config.ropeBase,
    rmsEps: config.rmsEps,
    hasQkvBias: config.hasQkvBias,
    tiedEmbeddings: config.tiedEmbeddings,
  }
}

/** The tokenizer object hashed into the config leaf: every `tokenizer.ggml.*` key with its plain value. */
export function tokenizerForRoot(metadata: GgufMetadata): Record<string, GgufArrayItem> {
  const out: Record<string, GgufArrayItem> = {}
  for (const [k, v] of metadata) if (k.startsWith('tokenizer.ggml.')) out[k] = v.value
  return out
}

/** Config leaf data (before `leafHash`). */
export function configLeafData(config: ModelConfig, metadata: GgufMetadata): Uint8Array {
  return concatBytes(
    utf8.encode('tessera-config/1'),
    sha256(utf8.encode(canonicalJson(configForRoot(config)))),
    sha256(utf8.encode(canonicalJson(tokenizerForRoot(metadata)))),
  )
}

/** Rows and columns of a tensor for the model root: cols = dims[0], rows = product of the rest. */
export function tensorRowsCols(dims: readonly number[]): { rows: number; cols: number } {
  let rows = 1
  for (let i = 1; i < dims.length; i++) rows *= dims[i]
  return { rows, cols: dims[0] }
}

/** Tensor leaf data (before `leafHash`). */
export function tensorLeafData(name: string, type: number, rows: number, cols: number, rowRoot: Uint8Array): Uint8Array {
  const nameBytes = utf8.encode(name)
  const head = new Uint8Array(4 + nameBytes.length + 4 + 8 + 8)
  const dv = new DataView(head.buffer)
  dv.setUint32(0, nameBytes.length, true)
  head.set(nameBytes, 4)
  let o = 4 + nameBytes.length
  dv.setUint32(o, type, true)
  dv.setBigUint64(o + 4, BigInt(rows), true)
  dv.setBigUint64(o + 12, BigInt(cols), true)
  return concatBytes(head, rowRoot)
}

/**
 * Accumulates one tensor's row hashes as rows stream past, so the row root is known without
 * keeping the rows. `push` takes any number of whole rows.
 */
export class RowHasher {
  private readonly leaves: Hash[] = []
  constructor(readonly rowBytes: number) {}

  push(bytes: Uint8Array): void {
    if (bytes.length % this.rowBytes !== 0) throw new RangeError(`RowHasher: ${bytes.length} bytes are not whole rows of ${this.rowBytes}`)
    for (let o = 0; o < bytes.length; o += this.rowBytes) this.leaves.push(leafHash(bytes.subarray(o, o + this.rowBytes)))
  }

  get rowCount(): number {
    return this.leaves.length
  }

  root(): Hash {
    return merkleRoot(this.leaves)
  }
}

/** One tensor's contribution to the model root. */
export type TensorRoot = { name: string; type: number; rows: number; cols: number; rowRoot: Hash }

/**
 * The model root from the config leaf and every tensor's row root (in any order: they are
 * sorted by name here).
 *
 * @example
 *   const root = computeModelRoot(configLeafData(config, metadata), tensorRoots)
 */
export function computeModelRoot(configLeaf: Uint8Array, tensors: readonly TensorRoot[]): Hash {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const leaves = [leafHash(configLeaf), ...sorted.map((t) => leafHash(tensorLeafData(t.name, t.type, t.rows, t.cols, t.rowRoot)))]
  return merkleRoot(leaves)
}

/**
 * The model root of a parsed GGUF file, reading each tensor's rows from `src` in chunks of
 * `chunkBytes` (nothing is kept but the row hashes). Used where no backend is needed
 * (`tessera model info`, tests); `loadWeights` computes the same root while loading.
 *
 * @example
 *   const { modelRoot } = computeGgufModelRoot(src, readGguf(src), config)
 */
export function computeGgufModelRoot(src: ByteSource, gguf: GgufFile, config: ModelConfig, chunkBytes = 4 << 20): { modelRoot: Hash; tensorRoots: TensorRoot[] } {
  const tensorRoots = gguf.tensors.map((t) => {
    const { rows, cols } = tensorRowsCols(t.dims)
    const rb = rowBytes(t.type, cols)
    const hasher = new RowHasher(rb)
    const rowsPerRead = Math.max(1, Math.floor(chunkBytes / rb))
    for (let r = 0; r < rows; r += rowsPerRead) {
      const n = Math.min(rowsPerRead, rows - r)
      const bytes = src.read(t.fileOffset + r * rb, n * rb)
      if (bytes.length !== n * rb) throw new GgufFormatError(`truncated GGUF: tensor ${t.name} data runs past the end of the file at byte ${src.size}`)
      hasher.push(bytes)
    }
    return { name: t.name, type: t.type, rows, cols, rowRoot: hasher.root() }
  })
  return { modelRoot: computeModelRoot(configLeafData(config, gguf.metadata), tensorRoots), tensorRoots }
}

