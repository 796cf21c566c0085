/**
 * The WASM SIMD layer ops (build/layer.wasm, from src/engine/kernels/assembly/layer.ts):
 * RMSNorm, causal attention, SILU(gate) ⊗ up and adds, bit-identical to `referenceLayerOps`
 * (docs/KERNELS.md, "Layer ops"). They run on the calling thread, in one shared
 * WebAssembly.Memory of their own.
 *
 * `allocF32` hands out views into that memory (the KV cache lives there, so attention reads it
 * without copying); any other array is copied into a scratch region for the call and results are
 * copied back. Views over a shared memory stay valid when it grows, so allocations never move. An
 * allocation's space is reused (zeroed) once the array returned for it is garbage-collected: keep
 * the array itself, not only a subarray of it, for as long as its contents are needed.
 */
import type { Worker } from 'node:worker_threads'
import { spawnWorker } from './spawnWorker.js'
import { InvalidParameterError } from '../errors.js'
import { KernelMemoryError, KernelTimeoutError, KernelWorkerError } from '../engine/kernels/errors.js'
import { LayerCtrl, type LayerWorkerInit } from './layerWorker.js'
import { type AttentionShape, attentionInWindow, checkAttentionShape, checkLength, type LayerOps } from '../engine/kernels/layerOps.js'
import { builtModule, WA, type WasmMemory } from './wasmTypes.js'
import { loadNativeAttention } from './native/attention.js'

const PAGE = 65536
const MAX_PAGES = 65536
/** Allocations start above page 0 (the module's static data, if any). */
const HEAP_BASE = PAGE

type LayerExports = {
  rmsnorm(out: number, x: number, w: number, nTok: number, dim: number, eps: number): void
  attention(out: number, q: number, k: number, v: number, scores: number, start: number, nTok: number, nh: number, nkv: number, hd: number, h0: number, h1: number, half: number): void
  to_half(dst: number, src: number, n: number): void
  from_half(out: number, h: number, n: number): void
  silu_mul(gate: number, up: number, n: number): void
  add(x: number, y: number, n: number): void
  exp_many(out: number, x: number, n: number): void
}

/** The WASM layer ops plus what the tests need: EXP over many values. */
export type WasmLayerOps = LayerOps & {
  /** out[i] = EXP(x[i]) computed in WASM (the AssemblyScript twin of canonical.ts `exp`). */
  expMany(x: Float32Array): Float32Array
  /** out[i] = h2f(h[i]) computed in WASM (the AssemblyScript twin of half.ts `h2f`). */
  fromHalfMany(h: Uint16Array): Float32Array
  /** Attention workers that have started and take commands (threads - 1 once all are up). */
  readonly readyWorkers: number
  /** Stops the attention workers; the ops keep working on the calling thread alone. */
  close(): void
}

export type WasmLayerOpsOptions = {
  /**
   * Threads for attention (default 1): the calling thread plus threads-1 workers over the same
   * memory, each computing a contiguous range of query heads. Any count gives the same bits.
   */
  threads?: number
  /** How long an idle worker spins before it sleeps (ms, default 50). */
  spinMs?: number
  /**
   * Attention calls reading fewer cached rows than this, times the batch's tokens, stay on the
   * calling thread (default 256): handing off costs microseconds, a short context's heads less.
   */
  minThreadedWork?: number
  /**
   * Attention on the native AVX2 kernel (src/runtime/native/attention.cc) when it is built and
   * loads (default true), on the calling thread and in the layer workers; bit-identical to the
   * WASM export, so this changes only speed.
   */
  native?: boolean
  /** The memory to use (default: a new one), for helpers that were handed it before the ops exist. */
  memory?: WasmMemory
  /**
   * Other threads to split attention's query heads with instead of starting `threads - 1` layer
   * workers (the WASM backend's matmul workers, so no thread is added beside them).
   */
  helpers?: AttentionHelper[]
}

/**
 * A thread that computes a range of query heads over the ops' memory: `start` hands it the 13
 * arguments of layer.wasm `attention` (byte addresses; the last says whether the K/V caches are
 * binary16), `wait` returns once it is done (and throws
 * if it failed); `ready` says whether it takes commands now (else the calling thread does its part).
 */
export type AttentionHelper = { ready(): boolean; start(args: number[]): void; wait(): void }

/** One attention worker: its control block and whether it has exited. */
type LayerWorker = { worker: Worker; ctrl: Int32Array; seq: number; exited: boolean }

/** Whether `w` takes commands: it has started (READY, set by the worker itself) and not exited. */
function isReady(w: LayerWorker): boolean {
  return !w.exited && Atomics.load(w.ctrl, LayerCtrl.READY) === 1
}

function startLayerWorker(init: LayerWorkerInit): LayerWorker {
  const worker = spawnWorker('layerWorker', { workerData: init })
  const w: LayerWorker = { worker, ctrl: new Int32Array(init.ctrl), seq: 0, exited: false }
  // Until the worker is READY (and once it is known to have exited) the calling thread computes
  // its heads itself, so a slow start never blocks a forward pass.
  worker.on('error', () => { w.exited = true })
  worker.on('exit', () => { w.exited = true })
  worker.unref()
  return w
}

/** A memory for the layer ops (shared, so attention helpers on other threads can read it). */
export function createLayerMemory(): WasmMemory {
  return new WA.Memory({ initial: HEAP_BASE / PAGE, maximum: MAX_PAGES, shared: true })
}

/**
 * Creates a set of WASM layer ops with its own memory. Example:
 * `const ops = createWasmLayerOps({ threads: 2 }); const k = ops.allocF32(ctx * kvDim); ops.attention(...)`.
 */
export function createWasmLayerOps(options: WasmLayerOpsOptions = {}): WasmLayerOps {
  const threads = options.threads ?? 1
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new InvalidParameterError('threads', threads, 'an integer from 1 to 256')
  const minWork = options.minThreadedWork ?? 256
  const memory: WasmMemory = options.memory ?? createLayerMemory()
  const module = builtModule('layer.wasm')
  const wasm = new WA.Instance(module, { env: { memory } }).exports as unknown as LayerExports
  const native = options.native === false ? undefined : loadNativeAttention()
  /** A view of the whole memory for the native kernel, re-made after the memory grows. */
  let bytes = new Uint8Array(memory.buffer)
  const workers: LayerWorker[] = []
  if (!options.helpers) {
    for (let i = 1; i < threads; i++) {
      workers.push(startLayerWorker({ module, memory, ctrl: new SharedArrayBuffer(LayerCtrl.LENGTH * 4), spinMs: options.spinMs ?? 50, native: native !== undefined }))
    }
  }
  const pool: AttentionHelper[] = options.helpers ?? workers.map((w) => ({ ready: () => isReady(w), start: (args) => release(w, args), wait: () => waitDone(w) }))

  function release(w: LayerWorker, args: number[]): void {
    for (let i = 0; i < args.length; i++) w.ctrl[LayerCtrl.ARG0 + i] = args[i]
    w.seq = (w.seq + 1) | 0
    Atomics.store(w.ctrl, LayerCtrl.SEQ, w.seq)
    Atomics.notify(w.ctrl, LayerCtrl.SEQ)
  }

  function waitDone(w: LayerWorker): void {
    const c = w.ctrl
    const start = performance.now()
    for (let n = 1; Atomics.load(c, LayerCtrl.DONE) !== w.seq; n++) {
      if ((n & 1023) !== 0) continue
      const waited = performance.now() - start
      if (waited > 600_000) throw new KernelTimeoutError('attention worker did not finish its heads in 10 minutes')
      if (waited > 2) Atomics.wait(c, LayerCtrl.DONE, Atomics.load(c, LayerCtrl.DONE), 50)
    }
    if (c[LayerCtrl.ERROR] !== 0) throw new KernelWorkerError('attention threw in a layer worker')
  }
  /** Every buffer object this memory has shown us: an array over one of them lives in the memory. */
  const ours = new WeakSet<SharedArrayBuffer>()
  let heap = new Float32Array(memory.buffer)
  ours.add(memory.buffer)
  let top = HEAP_BASE
  /** Freed allocations (their arrays were collected), by byte size. */
  const free = new Map<number, number[]>()
  const registry = new FinalizationRegistry<{ at: number; bytes: number }>(({ at, bytes }) => {
    const list = free.get(bytes)
    if (list) list.push(at)
    else free.set(bytes, [at])
  })
  let scratch = { at: 0, bytes: 0 }

  /** The current view of the whole memory (re-made after a grow, which old views do not see). */
  function view(): Float32Array {
    if (heap.length * 4 !== memory.buffer.byteLength) {
      heap = new Float32Array(memory.buffer)
      ours.add(memory.buffer)
    }
    return heap
  }

  function bump(bytes: number): number {
    const at = (top + 63) & ~63
    const end = at + bytes
    if (end > MAX_PAGES * PAGE) throw new KernelMemoryError(`${bytes} bytes do not fit in the layer ops' 4 GiB wasm32 memory (${at} used)`)
    const have = memory.buffer.byteLength
    if (end > have) memory.grow(Math.ceil((end - have) / PAGE))
    top = end
    return at
  }

  /** Byte address of `a` if it lives in this memory, else -1. */
  function addressOf(a: Float32Array | Uint16Array): number {
    return ours.has(a.buffer as SharedArrayBuffer) ? a.byteOffset : -1
  }

  /**
   * Lays out one call's operands: arrays already in the memory are used in place; the others get
   * a slot in the scratch region (`copy`: their first `n` values copied in). Returns addresses.
   */
  function place(items: Array<{ a: Float32Array | Uint16Array; n: number; copy: boolean }>): number[] {
    let need = 0
    const addr = items.map((it) => {
      const at = addressOf(it.a)
      if (at >= 0) return at
      const off = need
      need += (it.n * it.a.BYTES_PER_ELEMENT + 15) & ~15
      return -1 - off
    })
    if (need > scratch.bytes) {
      const bytes = Math.max(need, scratch.bytes * 2, PAGE)
      scratch = { at: bump(bytes), bytes }
    }
    const h = view()
    for (let i = 0; i < items.length; i++) {
      if (addr[i] >= 0) continue
      addr[i] = scratch.at + (-1 - addr[i])
      const it = items[i]
      if (!it.copy || it.n === 0) continue
      if (it.a instanceof Uint16Array) new Uint16Array(memory.buffer, addr[i], it.n).set(it.a.subarray(0, it.n))
      else h.set(it.a.subarray(0, it.n), addr[i] / 4)
    }
    return addr
  }

  /** Copies `n` results at `at` back into `a` unless `a` is where they were written. */
  function back(a: Float32Array, at: number, n: number): void {
    if (addressOf(a) === at) return
    a.set(view().subarray(at / 4, at / 4 + n))
  }

  /** A zero-filled array of `n` elements of `Type` in the memory (allocF32, allocF16). */
  function alloc<A extends Float32Array | Uint16Array>(Type: { new (b: ArrayBufferLike, at: number, n: number): A; new (n: number): A; BYTES_PER_ELEMENT: number }, n: number, what: string): A {
    if (!(Number.isInteger(n) && n >= 0)) throw new InvalidParameterError(what, n, 'a non-negative integer')
    const bytes = (n * Type.BYTES_PER_ELEMENT + 63) & ~63
    const reuse = free.get(bytes)?.pop()
    // A memory that cannot hold the array (a KV cache of several GiB) falls back to a plain
    // array: still correct, copied into scratch on each call.
    if (reuse === undefined && ((top + 63) & ~63) + bytes > MAX_PAGES * PAGE - (64 << 20)) return new Type(n)
    const at = reuse ?? bump(bytes)
    const a = new Type(memory.buffer, at, n)
    ours.add(a.buffer as SharedArrayBuffer)
    if (reuse !== undefined) a.fill(0)
    registry.register(a, { at, bytes })
    return a
  }

  return {
    kind: 'wasm',
    allocF32: (n) => alloc(Float32Array, n, 'allocF32'),
    allocF16: (n) => alloc(Uint16Array, n, 'allocF16'),
    toHalf(dst, src, n) {
      checkLength('toHalf', n, dst, src)
      const [d, s] = place([{ a: dst, n, copy: false }, { a: src, n, copy: true }])
      if (native) {
        if (bytes.byteLength !== memory.buffer.byteLength) bytes = new Uint8Array(memory.buffer)
        native.toHalf(bytes, d, s, n)
      } else wasm.to_half(d, s, n)
      if (addressOf(dst) !== d) dst.set(new Uint16Array(memory.buffer, d, n))
    },
    rmsnorm(out, x, w, nTok, dim, eps) {
      checkLength('rmsnorm', nTok * dim, out, x)
      checkLength('rmsnorm weight', dim, w)
      // The WASM function takes eps as binary32; the spec's eps is a binary32 model constant.
      if (Math.fround(eps) !== eps) throw new InvalidParameterError('eps', eps, 'a binary32 value')
      const n = nTok * dim
      const [o, xi, wi] = place([{ a: out, n, copy: false }, { a: x, n, copy: true }, { a: w, n: dim, copy: true }])
      wasm.rmsnorm(o, xi, wi, nTok, dim, eps)
      back(out, o, n)
    },
    attention(out, q, k, v, shape: AttentionShape) {
      checkAttentionShape(out, q, k, v, shape)
      // a sliding window: full-causal calls over each window (layerOps.ts attentionInWindow)
      if (shape.window !== undefined) return attentionInWindow((o, qq, kk, vv, sh) => this.attention(o, qq, kk, vv, sh), out, q, k, v, shape)
      const { start, nTok, nHead, nKvHead, headDim } = shape
      const half = k instanceof Uint16Array ? 1 : 0
      const qn = nTok * nHead * headDim
      const kn = (start + nTok) * nKvHead * headDim
      const rows = start + nTok
      const helpers = rows * nTok >= minWork ? pool.filter((h) => h.ready()).slice(0, nHead - 1) : []
      // one scores scratch per thread, 16-byte aligned
      const scoreBytes = (rows * 4 + 15) & ~15
      const [o, qi, ki, vi, scores] = place([
        { a: out, n: qn, copy: false }, { a: q, n: qn, copy: true },
        { a: k, n: kn, copy: true }, { a: v, n: kn, copy: true },
        { a: new Float32Array(0), n: (scoreBytes / 4) * (helpers.length + 1), copy: false },
      ])
      // contiguous head ranges, the calling thread taking the first (and any remainder)
      const parts = helpers.length + 1
      const per = Math.floor(nHead / parts)
      const first = nHead - per * helpers.length
      helpers.forEach((w, i) => {
        const h0 = first + i * per
        w.start([o, qi, ki, vi, scores + (i + 1) * scoreBytes, start, nTok, nHead, nKvHead, headDim, h0, h0 + per, half])
      })
      let failed: unknown
      try {
        if (native) {
          if (bytes.byteLength !== memory.buffer.byteLength) bytes = new Uint8Array(memory.buffer)
          native.attention(bytes, o, qi, ki, vi, scores, start, nTok, nHead, nKvHead, headDim, 0, first, half)
        } else {
          wasm.attention(o, qi, ki, vi, scores, start, nTok, nHead, nKvHead, headDim, 0, first, half)
        }
      } catch (err) {
        failed = err
      }
      // every helper must be done before the scratch or the output is touched again
      for (const w of helpers) w.wait()
      if (failed) throw failed
      back(out, o, qn)
    },
    siluMul(gate, up, n) {
      checkLength('siluMul', n, gate, up)
      const [g, u] = place([{ a: gate, n, copy: true }, { a: up, n, copy: true }])
      wasm.silu_mul(g, u, n)
      back(gate, g, n)
    },
    add(x, y, n) {
      checkLength('add', n, x, y)
      const [xi, yi] = place([{ a: x, n, copy: true }, { a: y, n, copy: true }])
      wasm.add(xi, yi, n)
      back(x, xi, n)
    },
    get readyWorkers() {
      return pool.filter((h) => h.ready()).length
    },
    close() {
      for (const w of workers.splice(0)) {
        w.exited = true
        w.ctrl[LayerCtrl.STOP] = 1
        release(w, [])
        void w.worker.terminate()
      }
    },
    fromHalfMany(h) {
      const [o, hi] = place([{ a: new Float32Array(0), n: h.length, copy: false }, { a: h, n: h.length, copy: true }])
      wasm.from_half(o, hi, h.length)
      return view().slice(o / 4, o / 4 + h.length)
    },
    expMany(x) {
      const [o, xi] = place([{ a: new Float32Array(0), n: x.length, copy: false }, { a: x, n: x.length, copy: true }])
      wasm.exp_many(o, xi, x.length)
      return view().slice(o / 4, o / 4 + x.length)
    },
  }
}
