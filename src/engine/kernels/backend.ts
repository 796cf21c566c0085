/**
 * The kernel backend: where weight matrices live and how they are multiplied. Two implementations
 * must agree bit for bit (docs/ARITHMETIC.md): the plain TypeScript reference
 * (`reference.ts`) and the WASM SIMD backend with worker threads (`src/runtime/wasmBackend.ts`).
 *
 * Weights are written once, straight from the GGUF file into the memory the kernels read
 * (`writeRows`), so a model is never held twice; a backend may split rows across several memories
 * (one per worker), which is how models larger than one wasm32 memory run.
 *
 * Legend: `rows` = output features, `cols` = input features, `nTok` = tokens in a batch.
 */
import type { LayerOps } from './layerOps.js'

export interface MatrixHandle {
  readonly name: string
  /** GGMLType id of the stored weights. */
  readonly type: number
  readonly rows: number
  readonly cols: number
}

export interface Backend {
  readonly kind: 'reference' | 'wasm'
  readonly threads: number
  /** Reserves space for a `rows x cols` weight matrix of `type` (GGUF row-major blocks). */
  allocMatrix(name: string, type: number, rows: number, cols: number): MatrixHandle
  /** Stores raw GGUF bytes of rows `[row0, row0 + bytes.length / rowBytes)`. */
  writeRows(m: MatrixHandle, row0: number, bytes: Uint8Array): void
  /** Canonical `Y = matmul(W, X)`: X is (nTok, cols) f32, returns (nTok, rows) f32. */
  matmul(m: MatrixHandle, x: Float32Array, nTok: number, out?: Float32Array): Float32Array
  /** Canonical dequantization of one row to f32 (embedding lookup), into `out` (cols). */
  getRow(m: MatrixHandle, row: number, out: Float32Array): void
  /**
   * The backend's fast RMSNorm / attention / SILU / add ops (bit-identical to
   * `referenceLayerOps`); absent means the transformer uses the TypeScript reference.
   */
  readonly layerOps?: LayerOps
  /** Frees the memories and stops the workers. */
  close(): void
}
