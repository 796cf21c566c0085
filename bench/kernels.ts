// Kernel throughput of the WASM backend: GB/s of GGUF weight bytes for single-token matvecs, and
// GOP/s (median and best of 9; best is the number to compare on a loaded machine) and tokens/s
// for 64-token batches (prefill), per type, at 1 and 2 threads; and both again as GOP/s of process
// CPU time (median), steadier than wall time when other processes share the cores. Several copies of each
// matrix (>= 64 MiB in all) are cycled so the matvec streams weights from DRAM, not L3.
// Q8_0, Q4_1, Q5_0, Q5_1 and the K-quants run twice when the native addon is built (src/runtime/native):
// the WASM kernel alone ("Q8_0") and with the native AVX2 kernel ("Q8_0n", "Q4_1n", "Q4_Kn" ...:
// matvecs and batches).
// Run: node --import tsx bench/kernels.ts [types, comma-separated] [threads, comma-separated]
import { BLOCK, GGMLType, rowBytes } from '../src/engine/gguf/types.js'
import { randomActivations, randomRows } from '../test/support/testData.js'
import { loadNativeQ8 } from '../src/runtime/native/q8.js'
import { createWasmBackend } from '../src/runtime/wasmBackend.js'
import { median } from './util.js'

const TYPES: Record<string, number> = {
  Q8_0: GGMLType.Q8_0, Q4_0: GGMLType.Q4_0, Q4_K: GGMLType.Q4_K, Q6_K: GGMLType.Q6_K,
  Q4_1: GGMLType.Q4_1, Q5_0: GGMLType.Q5_0, Q5_1: GGMLType.Q5_1, Q2_K: GGMLType.Q2_K, Q3_K: GGMLType.Q3_K, Q5_K: GGMLType.Q5_K,
  F16: GGMLType.F16, BF16: GGMLType.BF16, F32: GGMLType.F32,
}
const SHAPES: Array<[number, number]> = [[2048, 2048], [5632, 2048]] // rows x cols
const BATCH = 64

/** Process CPU seconds since `c0` (all threads: with 2+ threads it includes the workers' spinning). */
function cpuSeconds(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / 1e6
}

const pick = (arg: string | undefined, all: string[]) => (arg ? arg.split(',') : all)
const types = pick(process.argv[2], Object.keys(TYPES))
const threadCounts = pick(process.argv[3], ['1', '2']).map(Number)

const lines: string[] = []
for (const threads of threadCounts) {
  const nativeTypes = ['Q8_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K']
  const runs = types.flatMap((name) => (nativeTypes.includes(name) && loadNativeQ8() ? [name, `${name}n`] : [name]))
  for (const label of runs) {
    const native = label.endsWith('n')
    const name = native ? label.slice(0, -1) : label
    const type = TYPES[name]
    const backend = await createWasmBackend({ threads, native })
    try {
      for (const [rows, cols] of SHAPES) {
        const bytes = rowBytes(type, cols) * rows
        const copies = Math.max(1, Math.ceil((64 << 20) / bytes))
        const data = randomRows(type, rows, cols, 12345)
        const ms = Array.from({ length: copies }, (_, i) => {
          const m = backend.allocMatrix(`m${i}`, type, rows, cols)
          backend.writeRows(m, 0, data)
          return m
        })
        const x = randomActivations(cols * BATCH, 99)
        const x1 = x.subarray(0, cols)
        const out = new Float32Array(rows * BATCH)
        // Warm-up lets V8 tier up the kernels before timing.
        for (let i = 0; i < 3 * copies; i++) backend.matmul(ms[i % copies], x1, 1, out)
        const mv: number[] = []
        const mvCpu: number[] = []
        for (let rep = 0; rep < 7; rep++) {
          const c0 = process.cpuUsage()
          const t0 = performance.now()
          for (const m of ms) backend.matmul(m, x1, 1, out)
          mv.push((bytes * copies) / ((performance.now() - t0) / 1e3) / 1e9)
          mvCpu.push((2 * rows * cols * copies) / cpuSeconds(c0) / 1e9)
        }
        backend.matmul(ms[0], x, BATCH, out)
        const pf: number[] = []
        const pfCpu: number[] = []
        for (let rep = 0; rep < 9; rep++) {
          const c0 = process.cpuUsage()
          const t0 = performance.now()
          backend.matmul(ms[rep % copies], x, BATCH, out)
          const s = (performance.now() - t0) / 1e3
          pf.push((2 * rows * cols * BATCH) / s / 1e9)
          pfCpu.push((2 * rows * cols * BATCH) / cpuSeconds(c0) / 1e9)
        }
        const line = `${label.padEnd(5)} ${`${rows}x${cols}`.padEnd(10)} threads=${threads}  matvec ${median(mv).toFixed(1).padStart(5)} GB/s` +
          `  batch${BATCH} ${median(pf).toFixed(1).padStart(5)} GOP/s (best ${Math.max(...pf).toFixed(1)}; ${(median(pf) * 1e9 / (2 * rows * cols)).toFixed(0)} tok/s for this matrix)` +
          `  by CPU time: matvec ${median(mvCpu).toFixed(1)} GOP/s, batch ${median(pfCpu).toFixed(1)} GOP/s`
        console.log(line)
        lines.push(line)
      }
    } finally {
      backend.close()
    }
  }
}
void BLOCK
