import type { WasmMemory, WasmModule } from './wasmTypes.js'

/**
 * The control block shared by the main thread and one kernel worker (an Int32Array over a
 * SharedArrayBuffer). The main thread writes a command and its arguments, then bumps SEQ; the
 * worker, spinning on SEQ, runs it and stores SEQ's value into DONE. Pointers are wasm32 addresses
 * stored as int32 bits (the kernels take them as i32, so the bits are all that matter).
 */
export const Ctrl = {
  SEQ: 0,
  DONE: 1,
  CMD: 2,
  /** Kernel index into KERNELS, then the kernel's 7 i32 arguments. */
  FN: 3,
  ARG0: 4,
  /** Non-zero when the last command threw (the worker keeps running). */
  ERROR: 12,
  /**
   * Cmd.ATTENTION's 13 arguments: layer.wasm `attention`'s, pointers into WorkerInit.layer's memory,
   * the last 1 for binary16 K/V caches (tessera-arith/2).
   */
  ATT0: 16,
  LENGTH: 29,
} as const

export const Cmd = { MATMUL: 1, STOP: 2, ATTENTION: 3 } as const

/** Kernel exports of build/kernels.wasm that take (w, ngroups, nb|cols, act, ntok, out, outStride). */
export const KERNELS = ['matmul_f32', 'matmul_f16', 'matmul_bf16', 'matmul_q8_0', 'matmul_q4_0', 'matmul_q4_k', 'matmul_q6_k', 'matmul_q5_k', 'matmul_q4_1', 'matmul_q5_0', 'matmul_q5_1', 'matmul_q2_k', 'matmul_q3_k'] as const
export type KernelName = (typeof KERNELS)[number]

/** Data the main thread hands a worker at start. */
export type WorkerInit = {
  module: WasmModule
  memory: WasmMemory
  ctrl: SharedArrayBuffer
  spinMs: number
  /** Run the NATIVE_KERNELS matmuls with the native addon (src/runtime/native) when it loads. */
  native: boolean
  /**
   * The layer ops' memory and build/layer.wasm, for Cmd.ATTENTION (query heads computed on this
   * worker: native attention when `native` and it loads, else the WASM export).
   */
  layer?: { module: WasmModule; memory: WasmMemory }
}

/**
 * The kernels the native addon (src/runtime/native) can replace, by KERNELS index: its function
 * and the fewest tokens for which it is used: every twin at every token count. WASM's one-token
 * kernels are compute-bound (Q8_0 at ~27 GOP/s per thread, about this machine's DRAM stream, the
 * others far below it); the native ones reach the DRAM bound with room to spare.
 */
type NativeFn = 'matmulQ8_0' | 'matmulQ4_1' | 'matmulQ5_0' | 'matmulQ5_1' | 'matmulQ2_K' | 'matmulQ3_K' | 'matmulQ4_K' | 'matmulQ5_K' | 'matmulQ6_K'
const NATIVE_OF: Partial<Record<KernelName, { fn: NativeFn; minTok: number }>> = {
  matmul_q8_0: { fn: 'matmulQ8_0', minTok: 1 },
  matmul_q4_1: { fn: 'matmulQ4_1', minTok: 1 },
  matmul_q5_0: { fn: 'matmulQ5_0', minTok: 1 },
  matmul_q5_1: { fn: 'matmulQ5_1', minTok: 1 },
  matmul_q2_k: { fn: 'matmulQ2_K', minTok: 1 },
  matmul_q3_k: { fn: 'matmulQ3_K', minTok: 1 },
  matmul_q4_k: { fn: 'matmulQ4_K', minTok: 1 },
  matmul_q5_k: { fn: 'matmulQ5_K', minTok: 1 },
  matmul_q6_k: { fn: 'matmulQ6_K', minTok: 1 },
}
export const NATIVE_KERNELS: ReadonlyArray<{ fn: NativeFn; minTok: number } | undefined> = KERNELS.map((k) => NATIVE_OF[k])

export type KernelExports = Record<KernelName, (w: number, ng: number, nb: number, act: number, ntok: number, out: number, outStride: number) => void> & {
  quantize(x: number, xStride: number, cols: number, bs: number, act: number, ntok: number): void
  actStride(cols: number, bs: number): number
}
