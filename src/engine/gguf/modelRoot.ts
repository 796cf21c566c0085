/**
 * The model root of docs/TRACE.md: one SHA-256 commitment to a model's config, tokenizer and the
 * exact bytes of every weight row, shaped so that a contract can check one ~2 KiB piece of a row
 * with three Merkle paths (chunk -> row commitment, row -> row root, tensor leaf -> model root)
 * instead of carrying and hashing a whole (possibly 10+ KiB) row.
 *
 *   chunk        = chunkBlocks(type) whole GGUF blocks of a row (the last chunk may be shorter)
 *   row commit   = merkleRoot(leafHash(chunk bytes) for each chunk of the row)
 *   row root     = merkleRoot(row commit for each row)   (commitments used as leaf hashes; a 1-D tensor is one row)
 *   tensor leaf  = u32 nameLength | name (UTF-8) | u32 ggmlType | u64 rows | u64 cols | rowRoot
 *   config leaf  = "tessera-config/3" | abi.encode(ModelConfigV3) | SHA-256(canonicalJson(tokenizer))   (configLeaf.ts)
 *   model root   = merkleRoot([leafHash(config leaf), leafHash(tensor leaf) sorted by name])
 *
 * Integers little-endian. Names sort by UTF-16 code units (JS default sort; all llama.cpp tensor
 * names are ASCII, where this equals byte order).
 */
import { concatBytes } from '../bytes.js'
import { type Hash, leafHash, leafHashInto, merkleRoot, merkleRootInPlace, merkleRootPacked, sha256, treeDepth } from '../hash/merkle.js'
import type { ModelConfig } from '../model/config.js'
import { loadVocab } from '../tokenizer/vocab.js'
import { type ConfigTokenizer, configLeafDataV3, modelConfigV3 } from './configLeaf.js'
import { GgufFormatError } from './errors.js'
import type { ByteSource, GgufFile } from './read.js'
import { BLOCK, type GgufArrayItem, type GgufMetadata, ggmlTypeName, rowBytes } from './types.js'

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

/** The tokenizer object hashed into the config leaf: every `tokenizer.ggml.*` key with its plain value. */
export function tokenizerForRoot(metadata: GgufMetadata): Record<string, GgufArrayItem> {
  const out: Record<string, GgufArrayItem> = {}
  for (const [k, v] of metadata) if (k.startsWith('tokenizer.ggml.')) out[k] = v.value
  return out
}

/** SHA-256 of the canonical JSON of the tokenizer metadata: the last 32 bytes of the config leaf. */
export function tokenizerHash(metadata: GgufMetadata): Hash {
  return sha256(utf8.encode(canonicalJson(tokenizerForRoot(metadata))))
}

/**
 * Config leaf data (before `leafHash`), version 3 (configLeaf.ts). The end-of-generation ids
 * are the tokenizer's (`loadVocab(metadata).eog`, the set `createTokenizer` uses); pass
 * `tokenizer` when it is already built.
 */
export function configLeafData(config: ModelConfig, metadata: GgufMetadata, tokenizer: ConfigTokenizer = { eogTokens: loadVocab(metadata).eog }): Uint8Array {
  return configLeafDataV3(modelConfigV3(config, tokenizer), tokenizerHash(metadata))
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
  const o = 4 + nameBytes.length
  dv.setUint32(o, type, true)
  dv.setBigUint64(o + 4, BigInt(rows), true)
  dv.setBigUint64(o + 12, BigInt(cols), true)
  return concatBytes(head, rowRoot)
}

/** Target size of one row chunk in bytes: a chunk is as many whole blocks as fit (at least one). */
export const ROW_CHUNK_BYTES = 2048

/**
 * Whole GGUF blocks per row chunk for a tensor type: max(1, floor(2048 / block bytes)); a block
 * of F32/F16/BF16 is one element. Q8_0: 60 (2,040 B), Q4_0: 113, Q4_1: 102, Q5_0: 93, Q5_1: 85,
 * Q2_K: 24, Q3_K: 18, Q4_K: 14, Q5_K: 11, Q6_K: 9.
 */
export function chunkBlocks(type: number): number {
  const b = BLOCK[type]
  if (!b) throw new GgufFormatError(`the model root has no chunk layout for tensor type ${ggmlTypeName(type)}`)
  return Math.max(1, Math.floor(ROW_CHUNK_BYTES / b.bytes))
}

/** Bytes of every full chunk of a row of `type` (the last chunk of a row may be shorter). */
export function chunkBytesOf(type: number): number {
  return chunkBlocks(type) * BLOCK[type].bytes
}

/** Leaf hashes of the chunks of one row's raw bytes, in order. */
export function rowChunkLeaves(row: Uint8Array, chunkBytes: number): Hash[] {
  const leaves: Hash[] = []
  for (let o = 0; o < row.length; o += chunkBytes) leaves.push(leafHash(row.subarray(o, Math.min(o + chunkBytes, row.length))))
  return leaves
}

/**
 * The commitment to one row of a tensor of `type`: the Merkle root over its chunks' leaf hashes.
 * It is the row's leaf (as a leaf hash, not hashed again) in the tensor's row tree.
 */
export function rowCommitment(type: number, row: Uint8Array): Hash {
  return merkleRoot(rowChunkLeaves(row, chunkBytesOf(type)))
}

/**
 * Accumulates one tensor's row commitments as rows stream past, so the row root is known without
 * keeping the rows. `push` takes any number of whole rows.
 */
export class RowHasher {
  readonly rowBytes: number
  private readonly chunkBytes: number
  private readonly leaves: Hash[] = []
  constructor(readonly type: number, readonly cols: number) {
    this.chunkBytes = chunkBytesOf(type)
    this.rowBytes = rowBytes(type, cols)
  }

  push(bytes: Uint8Array): void {
    if (bytes.length % this.rowBytes !== 0) throw new RangeError(`RowHasher: ${bytes.length} bytes are not whole rows of ${this.rowBytes}`)
    for (let o = 0; o < bytes.length; o += this.rowBytes) this.leaves.push(merkleRoot(rowChunkLeaves(bytes.subarray(o, o + this.rowBytes), this.chunkBytes)))
  }

  get rowCount(): number {
    return this.leaves.length
  }

  /** The row commitments pushed so far, in row order (the leaves of the row tree). */
  commitments(): readonly Hash[] {
    return this.leaves
  }

  root(): Hash {
    return merkleRoot(this.leaves)
  }
}

/**
 * The fast twin of `RowHasher.push` (same bytes out, tested against it): the commitments of the
 * whole rows in `bytes` of a tensor of `type` with `cols` columns, written 32 bytes each into
 * `out` from byte `at`. Hashes go straight into packed buffers (no per-hash objects or
 * concatenation), which is what makes loading a model fast. Returns the number of rows.
 *
 * @example
 *   const commits = new Uint8Array(32 * rows)
 *   rowCommitmentsInto(type, cols, bytes, commits, 0)
 *   const rowRoot = merkleRootPacked(commits, rows)   // = new RowHasher(type, cols) pushed bytes, .root()
 */
export function rowCommitmentsInto(type: number, cols: number, bytes: Uint8Array, out: Uint8Array, at: number): number {
  const rb = rowBytes(type, cols)
  const cb = chunkBytesOf(type)
  const rows = bytes.length / rb
  if (!Number.isInteger(rows)) throw new RangeError(`rowCommitmentsInto: ${bytes.length} bytes are not whole rows of ${rb}`)
  if (at < 0 || at + 32 * rows > out.length) throw new RangeError(`rowCommitmentsInto: ${rows} commitments do not fit at byte ${at} of ${out.length}`)
  const chunks = Math.ceil(rb / cb)
  const work = new Uint8Array(32 << treeDepth(chunks)) // one row's chunk tree, reused row after row
  for (let r = 0, o = 0; r < rows; r++, o += rb) {
    if (chunks === 1) {
      leafHashInto(bytes.subarray(o, o + rb), out, at + 32 * r) // a one-leaf tree's root is the leaf
      continue
    }
    for (let c = 0; c < chunks; c++) leafHashInto(bytes.subarray(o + c * cb, o + Math.min((c + 1) * cb, rb)), work, 32 * c)
    merkleRootInPlace(work, chunks)
    out.set(work.subarray(0, 32), at + 32 * r)
  }
  return rows
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
 * The model root of a parsed GGUF file, reading each tensor's rows from `src` in reads of
 * about `readBytes` (nothing is kept but the row hashes). Used where no backend is needed
 * (`tessera model info`, tests); `loadWeights` computes the same root while loading.
 * `hashing` picks the fast packed path (`rowCommitmentsInto`, default) or the plain reference
 * (`RowHasher`); both give the same root.
 *
 * @example
 *   const { modelRoot } = computeGgufModelRoot(src, readGguf(src), config)
 */
export function computeGgufModelRoot(src: ByteSource, gguf: GgufFile, config: ModelConfig, readBytes = 4 << 20, hashing: 'fast' | 'reference' = 'fast'): { modelRoot: Hash; tensorRoots: TensorRoot[] } {
  const tensorRoots = gguf.tensors.map((t) => {
    const { rows, cols } = tensorRowsCols(t.dims)
    const rb = rowBytes(t.type, cols)
    const hasher = hashing === 'reference' ? new RowHasher(t.type, cols) : undefined
    const commits = hasher ? undefined : new Uint8Array(32 * rows)
    const rowsPerRead = Math.max(1, Math.floor(readBytes / rb))
    for (let r = 0; r < rows; r += rowsPerRead) {
      const n = Math.min(rowsPerRead, rows - r)
      const bytes = src.read(t.fileOffset + r * rb, n * rb)
      if (bytes.length !== n * rb) throw new GgufFormatError(`truncated GGUF: tensor ${t.name} data runs past the end of the file at byte ${src.size}`)
      if (hasher) hasher.push(bytes)
      else rowCommitmentsInto(t.type, cols, bytes, commits!, 32 * r)
    }
    return { name: t.name, type: t.type, rows, cols, rowRoot: hasher ? hasher.root() : merkleRootPacked(commits!, rows) }
  })
  return { modelRoot: computeModelRoot(configLeafData(config, gguf.metadata), tensorRoots), tensorRoots }
}
