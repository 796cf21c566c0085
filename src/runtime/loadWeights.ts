/**
 * Loads a GGUF model into a kernel backend without ever holding the file: each 2-D weight is
 * allocated in the backend and its rows stream from disk in chunks of a few MB straight into
 * `backend.writeRows`, hashed on the way for the model root (docs/TRACE.md). 1-D tensors (norms,
 * biases) become Float32Arrays for the forward pass.
 *
 * The row hashing (most of a load's CPU time before it moved) runs on a pool of hash workers
 * (hashWorkers.ts) while this thread reads and writes rows; `hashWorkers: 0` hashes here instead.
 * Both run `rowCommitmentsInto`, so the root is the same either way.
 */
import { type Hash, merkleRootPacked } from '../trace/merkle.js'
import type { Backend, MatrixHandle } from '../engine/kernels/backend.js'
import { readGguf } from '../engine/gguf/read.js'
import { RowHasher, type TensorRoot, computeModelRoot, configLeafData, rowCommitmentsInto, tensorRowsCols } from '../engine/gguf/modelRoot.js'
import { dequantizeInto } from '../engine/gguf/quantize.js'
import { type GgufMetadata, rowBytes } from '../engine/gguf/types.js'
import { type ModelConfig, modelConfigFromGguf } from '../engine/model/config.js'
import { GgufFormatError } from '../engine/gguf/errors.js'
import { type FileByteSource, openGgufSource } from './ggufFile.js'
import { createHashPool, defaultHashWorkers, type HashPool } from './hashWorkers.js'

/** Files below this size hash on the loading thread unless `hashWorkers` says otherwise. */
const POOL_MIN_BYTES = 32 << 20

export type LoadedWeights = {
  config: ModelConfig
  metadata: GgufMetadata
  /** 2-D weights by tensor name, living in the backend. */
  matrices: Record<string, MatrixHandle>
  /** 1-D tensors (norm weights, biases) by tensor name, as f32. */
  vectors: Record<string, Float32Array>
  modelRoot: Hash
  /** Per-tensor row roots, for Merkle proofs of single rows. */
  tensorRoots: TensorRoot[]
  /** File size in bytes. */
  fileSize: number
}

export type LoadOptions = {
  /** Bytes read per `read` call (rounded down to whole rows, at least one row). Default 4 MiB. */
  chunkBytes?: number
  /**
   * Threads that hash rows for the model root beside the loading; 0 hashes on this thread.
   * Default: one per core (at most 4) for files of 32 MiB or more, 0 below (starting workers
   * would take longer than hashing a small model).
   */
  hashWorkers?: number
  /** `reference` hashes on this thread with the plain `RowHasher` (slow; for tests and the load benchmark). Same root. */
  hashing?: 'fast' | 'reference'
  /** Called after each tensor with (tensors done, total, bytes read so far). */
  onProgress?: (done: number, total: number, bytes: number) => void
  /** Stops the load between tensors with the signal's reason (the caller frees the backend). */
  signal?: AbortSignal
}

/**
 * Reads `path`, checks its config and tensor shapes, streams every weight into `backend`, and
 * computes the model root. Throws the named errors of `readGguf` / `modelConfigFromGguf`,
 * and `FileNotFoundError` when the file cannot be opened.
 *
 * @example
 *   const w = loadWeights('tiny.gguf', backend)
 *   toHex(w.modelRoot)
 */
export function loadWeights(path: string, backend: Backend, options: LoadOptions = {}): LoadedWeights {
  const steps = loadSteps(path, backend, options)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/**
 * `loadWeights` that yields to the event loop after each tensor, so `options.signal` (a timer,
 * Ctrl-C) can stop it; the file and the hash workers are closed either way.
 */
export async function loadWeightsAsync(path: string, backend: Backend, options: LoadOptions = {}): Promise<LoadedWeights> {
  const steps = loadSteps(path, backend, options)
  try {
    for (;;) {
      const r = steps.next()
      if (r.done) return r.value
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  } finally {
    steps.return(undefined as never) // an abandoned load runs its finally blocks: file and workers closed
  }
}

/** The load, one yield per tensor. */
function* loadSteps(path: string, backend: Backend, options: LoadOptions): Generator<void, LoadedWeights> {
  const src = openGgufSource(path)
  try {
    const gguf = readGguf(src)
    const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
    const chunkBytes = options.chunkBytes ?? 4 << 20
    const workers = options.hashing === 'reference' ? 0 : options.hashWorkers ?? (src.size >= POOL_MIN_BYTES ? defaultHashWorkers() : 0)
    const pool = workers > 0 ? createHashPool({ workers }) : undefined
    try {
      return yield* loadTensors(src, gguf, config, backend, options, chunkBytes, pool)
    } finally {
      pool?.close()
    }
  } finally {
    src.close()
  }
}

function* loadTensors(
  src: FileByteSource,
  gguf: ReturnType<typeof readGguf>,
  config: ModelConfig,
  backend: Backend,
  options: LoadOptions,
  chunkBytes: number,
  pool: HashPool | undefined,
): Generator<void, LoadedWeights> {
  const matrices: Record<string, MatrixHandle> = {}
  const vectors: Record<string, Float32Array> = {}
  const rowRoots: Hash[] = []
  let bytesRead = 0
  for (let i = 0; i < gguf.tensors.length; i++) {
    const t = gguf.tensors[i]
    options.signal?.throwIfAborted()
    const { rows, cols } = tensorRowsCols(t.dims)
    const rb = rowBytes(t.type, cols)
    // The tensor's row commitments, 32 bytes per row (filled here or by the pool).
    const commits = new Uint8Array(32 * rows)
    const plain = options.hashing === 'reference' ? new RowHasher(t.type, cols) : undefined
    // Hands `bytes` over: call it after the bytes are written or dequantized (the pool takes the buffer).
    const hashRows = (bytes: Uint8Array, row0: number): void => {
      if (pool) pool.hash(t.type, cols, bytes, commits, 32 * row0)
      else if (plain) plain.push(bytes)
      else rowCommitmentsInto(t.type, cols, bytes, commits, 32 * row0)
    }
    if (rows === 1 && t.dims.length === 1) {
      const bytes = readExact(src, t.fileOffset, t.byteLength, t.name)
      const v = new Float32Array(cols)
      dequantizeInto(t.type, bytes, 0, cols, v, 0)
      vectors[t.name] = v
      hashRows(bytes, 0)
    } else {
      const m = backend.allocMatrix(t.name, t.type, rows, cols)
      matrices[t.name] = m
      const rowsPerRead = Math.max(1, Math.floor(chunkBytes / rb))
      for (let r = 0; r < rows; r += rowsPerRead) {
        const n = Math.min(rowsPerRead, rows - r)
        const bytes = readExact(src, t.fileOffset + r * rb, n * rb, t.name)
        backend.writeRows(m, r, bytes) // backends copy (Backend.writeRows stores the bytes)
        hashRows(bytes, r)
      }
    }
    if (pool) pool.rowRoot(commits, rows, (root) => { rowRoots[i] = root })
    else rowRoots[i] = plain ? plain.root() : merkleRootPacked(commits, rows)
    bytesRead += t.byteLength
    options.onProgress?.(i + 1, gguf.tensors.length, bytesRead)
    yield
  }
  options.signal?.throwIfAborted()
  pool?.drain()
  const tensorRoots: TensorRoot[] = gguf.tensors.map((t, i) => {
    const { rows, cols } = tensorRowsCols(t.dims)
    return { name: t.name, type: t.type, rows, cols, rowRoot: rowRoots[i] }
  })
  const modelRoot = computeModelRoot(configLeafData(config, gguf.metadata), tensorRoots)
  return { config, metadata: gguf.metadata, matrices, vectors, modelRoot, tensorRoots, fileSize: src.size }
}

function readExact(src: FileByteSource, offset: number, length: number, tensor: string): Uint8Array {
  const b = src.read(offset, length)
  if (b.length !== length) throw new GgufFormatError(`truncated GGUF: tensor ${tensor} data ends at byte ${offset + length} but the file ends at byte ${offset + b.length}`)
  return b
}
