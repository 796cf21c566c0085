/**
 * Loads a GGUF model into a kernel backend without ever holding the file: each 2-D weight is
 * allocated in the backend and its rows stream from disk in chunks of a few MB straight into
 * `backend.writeRows`, hashed on the way for the model root (docs/TRACE.md). 1-D tensors (norms,
 * biases) become Float32Arrays for the forward pass.
 */
import type { Hash } from '../trace/merkle.js'
import type { Backend, MatrixHandle } from '../engine/kernels/backend.js'
import { readGguf } from '../engine/gguf/read.js'
import { RowHasher, type TensorRoot, computeModelRoot, configLeafData, tensorRowsCols } from '../engine/gguf/modelRoot.js'
import { dequantizeInto } from '../engine/gguf/quantize.js'
import { type GgufMetadata, rowBytes } from '../engine/gguf/types.js'
import { type ModelConfig, modelConfigFromGguf } from '../engine/model/config.js'
import { GgufFormatError } from '../engine/gguf/errors.js'
import { type FileByteSource, openGgufSource } from './ggufFile.js'

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
  /** Called after each tensor with (tensors done, total, bytes read so far). */
  onProgress?: (done: number, total: number, bytes: number) => void
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
  const src = openGgufSource(path)
  try {
    return loadFromSource(src, backend, options)
  } finally {
    src.close()
  }
}

function loadFromSource(src: FileByteSource, backend: Backend, options: LoadOptions): LoadedWeights {
  const gguf = readGguf(src)
  const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
  const chunkBytes = options.chunkBytes ?? 4 << 20
  const matrices: Record<string, MatrixHandle> = {}
  const vectors: Record<string, Float32Array> = {}
  const tensorRoots: TensorRoot[] = []
  let bytesRead = 0
  gguf.tensors.forEach((t, i) => {
    options.signal?.throwIfAborted()
    const { rows, cols } = tensorRowsCols(t.dims)
    const rb = rowBytes(t.type, cols)
    const hasher = new RowHasher(t.type, cols)
    if (rows === 1 && t.dims.length === 1) {
      const bytes = readExact(src, t.fileOffset, t.byteLength, t.name)
      hasher.push(bytes)
      const v = new Float32Array(cols)
      dequantizeInto(t.type, bytes, 0, cols, v, 0)
      vectors[t.name] = v
    } else {
      const m = backend.allocMatrix(t.name, t.type, rows, cols)
      matrices[t.name] = m
      const rowsPerRead = Math.max(1, Math.floor(chunkBytes / rb))
      for (let r = 0; r < rows; r += rowsPerRead) {
        const n = Math.min(rowsPerRead, rows - r)
        const bytes = readExact(src, t.fileOffset + r * rb, n * rb, t.name)
        hasher.push(bytes)
        backend.writeRows(m, r, bytes)
      }
    }
    bytesRead += t.byteLength
    tensorRoots.push({ name: t.name, type: t.type, rows, cols, rowRoot: hasher.root() })
    options.onProgress?.(i + 1, gguf.tensors.length, bytesRead)
  })
  const modelRoot = computeModelRoot(configLeafData(config, gguf.metadata), tensorRoots)
  return { config, metadata: gguf.metadata, matrices, vectors, modelRoot, tensorRoots, fileSize: src.size }
}

function readExact(src: FileByteSource, offset: number, length: number, tensor: string): Uint8Array {
  const b = src.read(offset, length)
  if (b.length !== length) throw new GgufFormatError(`truncated GGUF: tensor ${tensor} data ends at byte ${offset + length} but the file ends at byte ${offset + b.length}`)
  return b
}
