/**
 * The fast kernel backend: WASM SIMD kernels (build/kernels.wasm, from
 * src/engine/kernels/assembly/kernels.ts) on worker threads, bit-identical to the reference
 * backend (docs/ARITHMETIC.md, docs/KERNELS.md).
 *
 * Every matrix's rows are split into row groups of 4 and the groups partitioned across the
 * threads; each thread owns one shared WebAssembly.Memory holding only its slices, so a model
 * larger than one 4 GiB wasm32 memory runs on 2+ threads, and weights are never held twice (they
 * are repacked straight from the GGUF bytes into the owning memory). The main thread is thread 0
 * (its own memory, no worker); `matmul` is synchronous: it writes the activations into every
 * memory, releases the workers through their control blocks, computes its share and gathers.
 */
import type { Worker } from 'node:worker_threads'
import { spawnWorker } from './spawnWorker.js'
import { InvalidParameterError } from '../errors.js'
import type { Backend, MatrixHandle } from '../engine/kernels/backend.js'
import { KernelClosedError, KernelMemoryError, KernelShapeError, KernelTimeoutError, KernelWorkerError } from '../engine/kernels/errors.js'
import { activationBlockSize, dequantizeRow } from '../engine/kernels/reference.js'
import { BLOCK, GGMLType, rowBytes as rowBytesOf } from '../engine/gguf/types.js'
import { Cmd, Ctrl, KERNELS, NATIVE_KERNELS, type KernelExports, type KernelName, type WorkerInit } from './wasmProtocol.js'
import { builtModule, WA, type WasmMemory } from './wasmTypes.js'
import { type AttentionHelper, createLayerMemory, createWasmLayerOps, type WasmLayerOps } from './wasmLayerOps.js'
import { loadNativeQ8 } from './native/q8.js'

export type WasmBackendOptions = {
  /** Threads including the main thread (1 = no workers). */
  threads: number
  /** How long an idle worker spins before sleeping in Atomics.wait (default 50 ms). */
  spinMs?: number
  /**
   * Q8_0 matmuls of 2+ tokens and Q4_K/Q5_K/Q6_K matmuls of any size on the native AVX2 kernels
   * (src/runtime/native) when they are built and load (default true); bit-identical to the WASM
   * kernels, so this changes only speed.
   */
  native?: boolean
  /**
   * Threads for attention (wasmLayerOps.ts; default `threads`, at most `threads`): the main thread
   * plus that many minus one of the matmul workers, each computing a range of query heads over the
   * layer ops' memory (Cmd.ATTENTION), so no thread is added beside the matmul workers. 1 = the
   * main thread alone. Any count gives the same bits.
   */
  attentionThreads?: number
  /**
   * Transparent huge pages for the kernel memories (default false; the environment's
   * TESSERA_HUGEPAGES=1 or =0 overrides the option either way, for A/B runs): each newly grown
   * range is `madvise(MADV_HUGEPAGE)`d through the native addon before the weights are written
   * there, so a one-token matvec streams them with far fewer TLB misses (docs/KERNELS.md "Weights
   * on huge pages"). Worth it for a process that loads once and decodes for long (a provider, the
   * gateway, the devnet), not for a one-shot run: the load's page faults cost more here. A hint
   * only: no byte changes; a no-op where the addon is absent or the OS has no transparent huge pages.
   */
  hugePages?: boolean
}

const PAGE = 65536
const MAX_PAGES = 65536
const ROWS_PER_GROUP = 4
const HUGE_PAGE = 2 << 20
/** Allocations start above page 0, which holds the module's static data (the SUM8 accumulators). */
const HEAP_BASE = PAGE

/**
 * Where each byte of a quantized GGUF block goes in the packed group block, as pieces
 * [offset in the GGUF block, length, offset in the group block for row 0, step per row]: row s's
 * piece lands at `dst + s·step`. Most types interleave each GGUF field across the 4 rows (field
 * at `fo`, length `len` -> [fo, len, 4·fo, len]); Q8_0 interleaves its quants by column pairs
 * (docs/KERNELS.md): bytes 2kp, 2kp+1 of row s at 8 + 8·kp + 2·s.
 */
const fieldPieces = (fields: ReadonlyArray<readonly [number, number]>) =>
  fields.map(([fo, len]) => [fo, len, ROWS_PER_GROUP * fo, len] as const)
const PIECES: Record<number, ReadonlyArray<readonly [number, number, number, number]>> = {
  [GGMLType.Q8_0]: [[0, 2, 0, 2], ...Array.from({ length: 16 }, (_, kp) => [2 + 2 * kp, 2, 8 + 8 * kp, 2] as const)],
  [GGMLType.Q4_0]: fieldPieces([[0, 2], [2, 16]]),
  [GGMLType.Q4_1]: fieldPieces([[0, 2], [2, 2], [4, 16]]),
  [GGMLType.Q5_0]: fieldPieces([[0, 2], [2, 4], [6, 16]]),
  [GGMLType.Q5_1]: fieldPieces([[0, 2], [2, 2], [4, 4], [8, 16]]),
  [GGMLType.Q2_K]: fieldPieces([[0, 16], [16, 64], [80, 2], [82, 2]]),
  [GGMLType.Q3_K]: fieldPieces([[0, 32], [32, 64], [96, 12], [108, 2]]),
  [GGMLType.Q4_K]: fieldPieces([[0, 2], [2, 2], [4, 12], [16, 128]]),
  [GGMLType.Q5_K]: fieldPieces([[0, 2], [2, 2], [4, 12], [16, 32], [48, 128]]),
  [GGMLType.Q6_K]: fieldPieces([[0, 128], [128, 64], [192, 16], [208, 2]]),
}

const KERNEL_OF: Record<number, KernelName> = {
  [GGMLType.F32]: 'matmul_f32', [GGMLType.F16]: 'matmul_f16', [GGMLType.BF16]: 'matmul_bf16',
  [GGMLType.Q8_0]: 'matmul_q8_0', [GGMLType.Q4_0]: 'matmul_q4_0', [GGMLType.Q4_1]: 'matmul_q4_1', [GGMLType.Q5_0]: 'matmul_q5_0', [GGMLType.Q5_1]: 'matmul_q5_1', [GGMLType.Q2_K]: 'matmul_q2_k', [GGMLType.Q3_K]: 'matmul_q3_k', [GGMLType.Q4_K]: 'matmul_q4_k', [GGMLType.Q5_K]: 'matmul_q5_k', [GGMLType.Q6_K]: 'matmul_q6_k',
}

/** One thread's memory and the bump allocator over it. */
type Slot = {
  memory: WasmMemory
  top: number
  worker?: Worker
  ctrl?: Int32Array
  seq: number
  scratch: { at: number; bytes: number }
  /** Huge-page advice for this memory: the offset of its first 2 MiB-aligned byte, and the addon's madvise. */
  huge?: { at: number; advise: (mem: Uint8Array, from: number, to: number) => number }
}

type Part = { slot: number; group0: number; groups: number; offset: number }

type WasmMatrix = MatrixHandle & {
  rowBytes: number
  /** Blocks per row (quantized) or 8-value chunks per row (float types). */
  nb: number
  /** Bytes of one row group's block (4 rows) in the packed layout. */
  gbb: number
  parts: Part[]
}

function bytesOf(slot: Slot): Uint8Array {
  return new Uint8Array(slot.memory.buffer)
}

function alloc(slot: Slot, bytes: number): number {
  const at = (slot.top + 63) & ~63
  const end = at + bytes
  if (end > MAX_PAGES * PAGE) {
    throw new KernelMemoryError(`${bytes} bytes do not fit in a 4 GiB wasm32 memory (${at} used): use more threads`)
  }
  if (end > slot.memory.buffer.byteLength) grow(slot, end)
  slot.top = end
  return at
}

/**
 * Grows a slot's memory to hold `end` bytes. With huge-page advice, up to the next 2 MiB boundary
 * of the address space, so that the huge page holding `end` lies wholly in accessible memory when
 * the weights first touch it (the kernel maps a huge page only into a 2 MiB-aligned range it can
 * fill); the new range is advised before anything is written there. Bytes past `end` stay
 * untouched, costing nothing until a later allocation uses them.
 */
function grow(slot: Slot, end: number): void {
  const have = slot.memory.buffer.byteLength
  const h = slot.huge
  const want = h ? Math.min(MAX_PAGES * PAGE, Math.max(end, h.at + Math.ceil((end - h.at) / HUGE_PAGE) * HUGE_PAGE)) : end
  slot.memory.grow(Math.ceil((want - have) / PAGE))
  if (h) h.advise(new Uint8Array(slot.memory.buffer), have, slot.memory.buffer.byteLength)
}

/** A scratch region of at least `bytes` in a slot, reallocated (doubling) when too small. */
function scratch(slot: Slot, bytes: number): number {
  if (slot.scratch.bytes < bytes) {
    const size = Math.max(bytes, slot.scratch.bytes * 2, PAGE)
    slot.scratch = { at: alloc(slot, size), bytes: size }
  }
  return slot.scratch.at
}

async function startWorker(init: WorkerInit): Promise<Worker> {
  const worker = spawnWorker('wasmWorker', { workerData: init })
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve())
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new KernelWorkerError(`kernel worker exited with code ${code} while starting`)))
  })
  worker.removeAllListeners('error')
  worker.removeAllListeners('exit')
  worker.on('error', () => {}) // a worker dying mid-run shows up as a timeout in waitDone
  worker.unref()
  return worker
}

/** The option, unless TESSERA_HUGEPAGES is '1' or '0'. */
function hugePagesWanted(option: boolean | undefined): boolean {
  const env = process.env.TESSERA_HUGEPAGES
  return env === '1' ? true : env === '0' ? false : (option ?? false)
}

/**
 * Creates the WASM SIMD backend with `threads` threads (the main thread plus threads-1 workers).
 * Example: `const b = await createWasmBackend({ threads: 2 })`, then allocMatrix / writeRows /
 * matmul as with the reference backend, and `b.close()` when done.
 */
export async function createWasmBackend(options: WasmBackendOptions): Promise<Backend> {
  const threads = options.threads
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new InvalidParameterError('threads', threads, 'an integer from 1 to 256')
  const spinMs = options.spinMs ?? 50
  const native = options.native === false ? undefined : loadNativeQ8()
  const adviser = hugePagesWanted(options.hugePages) ? loadNativeQ8() : undefined
  const module = builtModule('kernels.wasm')
  const slots: Slot[] = []
  for (let i = 0; i < threads; i++) {
    const memory = new WA.Memory({ initial: HEAP_BASE / PAGE, maximum: MAX_PAGES, shared: true })
    // (an addon built before the advice existed lacks it: no advice then)
    const huge = typeof adviser?.adviseHugePages === 'function'
      ? { at: adviser.hugePageOffset(new Uint8Array(memory.buffer)), advise: adviser.adviseHugePages }
      : undefined
    slots.push({ memory, top: HEAP_BASE, seq: 0, scratch: { at: 0, bytes: 0 }, huge })
  }
  const main = new WA.Instance(module, { env: { memory: slots[0].memory } }).exports as unknown as KernelExports
  // The layer ops' memory (KV cache, activations), made now so the workers can be handed it:
  // attention's query heads are split between the main thread and matmul workers 1 .. attThreads-1.
  const attThreads = Math.max(1, Math.min(threads, options.attentionThreads ?? threads))
  const layer = attThreads > 1 ? { module: builtModule('layer.wasm'), memory: createLayerMemory() } : undefined
  try {
    await Promise.all(slots.slice(1).map(async (slot) => {
      const sab = new SharedArrayBuffer(Ctrl.LENGTH * 4)
      slot.ctrl = new Int32Array(sab)
      slot.worker = await startWorker({ module, memory: slot.memory, ctrl: sab, spinMs, native: native !== undefined, layer })
    }))
  } catch (err) {
    for (const s of slots) void s.worker?.terminate()
    throw err
  }
  let closed = false
  /** Slot 0's memory as bytes for the native kernel, re-made when the memory has grown. */
  let view0 = new Uint8Array(slots[0].memory.buffer)
  /**
   * What the activation regions hold: `B cols nTok` and the regions' offsets of the last quantized
   * input (its f32 bytes at slot 0's region), '' when they may hold anything else.
   */
  let quantized = ''
  let layerOps: WasmLayerOps | undefined

  function release(slot: Slot, cmd: number, fn: number, args: number[]): void {
    const c = slot.ctrl!
    c[Ctrl.CMD] = cmd
    c[Ctrl.FN] = fn
    for (let i = 0; i < args.length; i++) c[Ctrl.ARG0 + i] = args[i]
    slot.seq = (slot.seq + 1) | 0
    Atomics.store(c, Ctrl.SEQ, slot.seq)
    Atomics.notify(c, Ctrl.SEQ)
  }

  function waitDone(slot: Slot, what: string): void {
    const c = slot.ctrl!
    if (Atomics.load(c, Ctrl.DONE) !== slot.seq) {
      const start = performance.now()
      for (let n = 1; Atomics.load(c, Ctrl.DONE) !== slot.seq; n++) {
        if ((n & 1023) !== 0) continue
        const waited = performance.now() - start
        if (waited > 600_000) throw new KernelTimeoutError(`kernel worker did not finish ${what} in 10 minutes`)
        if (waited > 2) Atomics.wait(c, Ctrl.DONE, Atomics.load(c, Ctrl.DONE), 50)
      }
    }
    if (c[Ctrl.ERROR] !== 0) throw new KernelWorkerError(`a command threw in the worker: ${what}`)
  }

  const own = (m: MatrixHandle): WasmMatrix => m as WasmMatrix

  /**
   * Calls `fn(slot, packedOffset, byteOffsetInRow, length)` for each piece of rows `row0 .. row0+n-1`
   * (row i's bytes at i·rowBytes) in the packed layout.
   */
  function forEachPiece(m: WasmMatrix, row0: number, n: number, fn: (slot: Slot, dst: number, src: number, len: number) => void): void {
    const pieces = PIECES[m.type]
    const bb = BLOCK[m.type].bytes // float types: bytes per value
    for (let i = 0; i < n; i++) {
      const r = row0 + i
      const g = Math.floor(r / ROWS_PER_GROUP)
      const s = r % ROWS_PER_GROUP
      const part = m.parts.find((p) => g >= p.group0 && g < p.group0 + p.groups)!
      const slot = slots[part.slot]
      const base = part.offset + (g - part.group0) * m.nb * m.gbb
      const src0 = i * m.rowBytes
      if (pieces === undefined) {
        // Float types: chunks of 8 values; row s of a chunk at s * 8 * elementBytes.
        for (let c = 0; c < m.nb; c++) fn(slot, base + c * m.gbb + s * 8 * bb, src0 + c * 8 * bb, Math.min(8, m.cols - 8 * c) * bb)
        continue
      }
      for (let b = 0; b < m.nb; b++) {
        const db = base + b * m.gbb, sb = src0 + b * bb
        for (const [so, len, dst, step] of pieces) fn(slot, db + dst + s * step, sb + so, len)
      }
    }
  }

  /**
   * writeRows for Q8_0, the hot path of loading a model: PIECES[Q8_0] moved as 2-byte units
   * (every piece is 2 bytes at an even offset, and packed offsets are even).
   */
  function writeQ8_0(m: WasmMatrix, row0: number, n: number, bytes: Uint8Array): void {
    const src = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1)
    const rowHalves = m.rowBytes >> 1
    let dst: Uint16Array | undefined
    let dstSlot: Slot | undefined
    for (let i = 0; i < n; i++) {
      const r = row0 + i
      const g = Math.floor(r / ROWS_PER_GROUP)
      const part = m.parts.find((p) => g >= p.group0 && g < p.group0 + p.groups)!
      const slot = slots[part.slot]
      if (slot !== dstSlot) { dst = new Uint16Array(slot.memory.buffer); dstSlot = slot }
      const v = dst!
      // in 2-byte units: row s's scale at s, its pair kp at 4 + 4·kp + s; group blocks of 68
      let d = ((part.offset + (g - part.group0) * m.nb * m.gbb) >> 1) + (r % ROWS_PER_GROUP)
      let q = i * rowHalves
      for (let b = 0; b < m.nb; b++, d += 68, q += 17) {
        v[d] = src[q]
        for (let kp = 0; kp < 16; kp++) v[d + 4 + 4 * kp] = src[q + 1 + kp]
      }
    }
  }

  return {
    kind: 'wasm',
    threads,
    /**
     * RMSNorm, attention, SILU, adds in WASM on the main thread (own memory, made on first use);
     * attention natively when the addon loads, its heads split with attThreads - 1 matmul workers.
     */
    get layerOps() {
      if (layerOps) return layerOps
      const helpers: AttentionHelper[] | undefined = layer && slots.slice(1, attThreads).map((slot) => ({
        ready: () => !closed,
        start: (args: number[]) => {
          for (let i = 0; i < args.length; i++) slot.ctrl![Ctrl.ATT0 + i] = args[i]
          release(slot, Cmd.ATTENTION, 0, [])
        },
        wait: () => waitDone(slot, 'attention'),
      }))
      layerOps = createWasmLayerOps({ spinMs, native: options.native !== false, memory: layer?.memory, helpers })
      return layerOps
    },
    allocMatrix(name, type, rows, cols) {
      const B = activationBlockSize(type) // throws for unsupported types
      const blk = BLOCK[type]
      if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows > 0 && cols > 0 && cols % blk.size === 0)) {
        throw new KernelShapeError(name, `${rows} x ${cols} is not a valid ${blk.name} matrix`)
      }
      const nb = B === 0 ? Math.ceil(cols / 8) : cols / blk.size
      const gbb = B === 0 ? ROWS_PER_GROUP * 8 * blk.bytes : ROWS_PER_GROUP * blk.bytes
      const groups = Math.ceil(rows / ROWS_PER_GROUP)
      const parts: Part[] = []
      for (let k = 0; k < threads; k++) {
        const group0 = Math.floor((groups * k) / threads)
        const n = Math.floor((groups * (k + 1)) / threads) - group0
        if (n === 0) continue
        const bytes = n * nb * gbb
        const offset = alloc(slots[k], bytes)
        // Padding rows and padding values stay zero: grown memory is zeroed, and fresh space is never reused.
        parts.push({ slot: k, group0, groups: n, offset })
      }
      const m: WasmMatrix = { name, type, rows, cols, rowBytes: rowBytesOf(type, cols), nb, gbb, parts }
      return m
    },
    writeRows(handle, row0, bytes) {
      const m = own(handle)
      const n = bytes.length / m.rowBytes
      if (!Number.isInteger(n) || !Number.isInteger(row0) || row0 < 0 || row0 + n > m.rows) {
        throw new KernelShapeError(m.name, `cannot write ${bytes.length} bytes at row ${row0}`)
      }
      if (m.type === GGMLType.Q8_0 && (bytes.byteOffset & 1) === 0) return writeQ8_0(m, row0, n, bytes)
      let view: Uint8Array | undefined
      let viewSlot: Slot | undefined
      forEachPiece(m, row0, n, (slot, dst, src, len) => {
        if (slot !== viewSlot) { view = bytesOf(slot); viewSlot = slot }
        const v = view!
        // Long pieces (K-quant quants, 64-128 bytes) as one native copy; short ones (scales) by hand,
        // where a subarray + set costs more than the bytes.
        if (len >= 32) v.set(bytes.subarray(src, src + len), dst)
        else for (let j = 0; j < len; j++) v[dst + j] = bytes[src + j]
      })
    },
    getRow(handle, row, out) {
      const m = own(handle)
      if (!(Number.isInteger(row) && row >= 0 && row < m.rows) || out.length < m.cols) {
        throw new KernelShapeError(m.name, `row ${row} of ${m.rows} into ${out.length} values`)
      }
      const raw = new Uint8Array(m.rowBytes)
      forEachPiece(m, row, 1, (slot, dst, src, len) => raw.set(bytesOf(slot).subarray(dst, dst + len), src))
      dequantizeRow(m.type, raw, out.subarray(0, m.cols))
    },
    matmul(handle, x, nTok, out) {
      if (closed) throw new KernelClosedError(`matmul ${handle.name}`)
      const m = own(handle)
      const { rows, cols } = m
      if (!(Number.isInteger(nTok) && nTok >= 1) || x.length < nTok * cols) {
        throw new KernelShapeError(m.name, `x has ${x.length} values, need ${nTok} x ${cols}`)
      }
      const y = out ?? new Float32Array(nTok * rows)
      if (y.length < nTok * rows) throw new KernelShapeError(m.name, `out has ${y.length} values, need ${nTok} x ${rows}`)
      const B = activationBlockSize(m.type)
      const stride = B === 0 ? m.nb * 32 : main.actStride(cols, B)
      const actBytes = nTok * stride
      const maxOut = Math.max(...m.parts.map((p) => p.groups)) * ROWS_PER_GROUP * nTok * 4
      // Scratch layout per slot: [activations | f32 input (slot 0, quantized types) | outputs]: the
      // input's place depends only on the input's shape, so the next matmul of the same input finds it.
      const inBytes = B === 0 ? 0 : nTok * cols * 4
      const need = ((actBytes + 63) & ~63) + ((inBytes + 63) & ~63) + maxOut
      // Slot 0 always gets a region: it quantizes (in WASM) even when it owns none of the rows.
      const regionOf = (slot: number) => {
        const at = scratch(slots[slot], need)
        const inp = at + ((actBytes + 63) & ~63)
        return { act: at, inp, out: inp + ((inBytes + 63) & ~63) }
      }
      const r0 = regionOf(0)
      const regions = m.parts.map((p) => (p.slot === 0 ? r0 : regionOf(p.slot)))
      // Activations into every memory: floats padded to whole 8-value chunks (padding = +0,
      // masked by the kernel anyway); quantized types quantized once, in slot 0's memory, then copied.
      if (B === 0) {
        quantized = '' // the f32 rows overwrite the activation records
        for (let i = 0; i < m.parts.length; i++) {
          const f = new Float32Array(slots[m.parts[i].slot].memory.buffer, regions[i].act, actBytes / 4)
          const per = stride / 4
          for (let t = 0; t < nTok; t++) {
            f.set(x.subarray(t * cols, (t + 1) * cols), t * per)
            f.fill(0, t * per + cols, (t + 1) * per)
          }
        }
      } else {
        // q/k/v and gate/up multiply the same input: when this input's bytes equal the last one
        // quantized (kept at r0.inp) and its records still sit in every region this call reads, they
        // are reused (same bytes in, same records out: the quantizer is a pure function).
        const mem0 = slots[0].memory.buffer
        const key = `${B} ${cols} ${nTok} ${r0.act} ${regions.map((r, i) => `${m.parts[i].slot}:${r.act}`).join(' ')}`
        const inp = new Float32Array(mem0, r0.inp, nTok * cols)
        const xs = x.subarray(0, nTok * cols)
        if (key !== quantized || !Buffer.from(xs.buffer, xs.byteOffset, xs.byteLength).equals(Buffer.from(mem0, r0.inp, xs.byteLength))) {
          quantized = ''
          inp.set(xs)
          main.quantize(r0.inp, cols * 4, cols, B, r0.act, nTok)
          const src = new Uint8Array(mem0, r0.act, actBytes)
          for (let i = 0; i < m.parts.length; i++) {
            if (m.parts[i].slot !== 0) new Uint8Array(slots[m.parts[i].slot].memory.buffer, regions[i].act, actBytes).set(src)
          }
          quantized = key
        }
      }
      const fn = KERNELS.indexOf(KERNEL_OF[m.type])
      const dim = B === 0 ? cols : m.nb
      const exports = main as unknown as Record<KernelName, (...a: number[]) => void>
      for (let i = 0; i < m.parts.length; i++) {
        const p = m.parts[i]
        if (p.slot === 0) continue
        release(slots[p.slot], Cmd.MATMUL, fn, [p.offset, p.groups, dim, regions[i].act, nTok, regions[i].out, p.groups * ROWS_PER_GROUP])
      }
      for (let i = 0; i < m.parts.length; i++) {
        const p = m.parts[i]
        if (p.slot !== 0) continue
        const nk = native && NATIVE_KERNELS[fn]
        if (nk && nTok >= nk.minTok) {
          if (view0.byteLength !== slots[0].memory.buffer.byteLength) view0 = new Uint8Array(slots[0].memory.buffer)
          native[nk.fn](view0, p.offset, p.groups, dim, regions[i].act, nTok, regions[i].out, p.groups * ROWS_PER_GROUP)
        } else {
          exports[KERNEL_OF[m.type]](p.offset, p.groups, dim, regions[i].act, nTok, regions[i].out, p.groups * ROWS_PER_GROUP)
        }
      }
      for (let i = 0; i < m.parts.length; i++) {
        const p = m.parts[i]
        if (p.slot !== 0) waitDone(slots[p.slot], `matmul ${m.name}`)
        const ostride = p.groups * ROWS_PER_GROUP
        const row0 = p.group0 * ROWS_PER_GROUP
        const n = Math.min(rows, row0 + ostride) - row0
        const o = new Float32Array(slots[p.slot].memory.buffer, regions[i].out, nTok * ostride)
        for (let t = 0; t < nTok; t++) y.set(o.subarray(t * ostride, t * ostride + n), t * rows + row0)
      }
      return y
    },
    close() {
      if (closed) return
      closed = true
      layerOps?.close()
      for (const s of slots) {
        if (!s.worker) continue
        release(s, Cmd.STOP, 0, [])
        void s.worker.terminate()
      }
    },
  }
}
