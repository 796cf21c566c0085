/**
 * An attention worker for the WASM layer ops (wasmLayerOps.ts): instantiates build/layer.wasm over
 * the layer ops' own shared memory (where the KV cache lives), or uses the native attention
 * (src/runtime/native/attention.cc) on a view of it, and computes the query heads the main thread
 * hands it. Like the kernel workers (wasmWorker.ts) it spins for `spinMs` after each
 * command, because the next layer's attention follows within milliseconds and waking from
 * Atomics.wait costs about that much; past that it sleeps.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { WA, type WasmMemory, type WasmModule } from './wasmTypes.js'
import { loadNativeAttention } from './native/attention.js'

/**
 * The control block: SEQ (command number), DONE (last finished), ERROR, STOP, READY (set once the
 * worker takes commands: read with Atomics, so a forward pass that never yields to the event loop
 * still sees it), then the 13 arguments (layer.wasm `attention`'s, the last: binary16 K/V caches).
 */
export const LayerCtrl = { SEQ: 0, DONE: 1, ERROR: 2, STOP: 3, READY: 4, ARG0: 5, LENGTH: 18 } as const
/** `native`: compute with the native attention (src/runtime/native/attention.cc) when it loads here. */
export type LayerWorkerInit = { module: WasmModule; memory: WasmMemory; ctrl: SharedArrayBuffer; spinMs: number; native?: boolean }

type Attention = (...args: number[]) => void

function run(init: LayerWorkerInit): void {
  const ctrl = new Int32Array(init.ctrl)
  const wasm = (new WA.Instance(init.module, { env: { memory: init.memory } }).exports as unknown as { attention: Attention }).attention
  const native = init.native ? loadNativeAttention() : undefined
  let bytes = new Uint8Array(init.memory.buffer)
  const attention: Attention = native
    ? (...a) => {
        if (bytes.byteLength !== init.memory.buffer.byteLength) bytes = new Uint8Array(init.memory.buffer)
        native.attention(bytes, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12])
      }
    : wasm
  const waitForCommand = (last: number): number => {
    let seq = Atomics.load(ctrl, LayerCtrl.SEQ)
    const start = performance.now()
    for (let n = 1; seq === last; n++) {
      if ((n & 4095) === 0 && performance.now() - start > init.spinMs) Atomics.wait(ctrl, LayerCtrl.SEQ, last)
      seq = Atomics.load(ctrl, LayerCtrl.SEQ)
    }
    return seq
  }
  Atomics.store(ctrl, LayerCtrl.READY, 1)
  let last = 0
  for (;;) {
    last = waitForCommand(last)
    if (ctrl[LayerCtrl.STOP] !== 0) break
    try {
      const a = LayerCtrl.ARG0
      // Pointers are wasm32 addresses stored as int32 bits: >>> 0 reads them unsigned.
      attention(ctrl[a] >>> 0, ctrl[a + 1] >>> 0, ctrl[a + 2] >>> 0, ctrl[a + 3] >>> 0, ctrl[a + 4] >>> 0, ctrl[a + 5], ctrl[a + 6], ctrl[a + 7], ctrl[a + 8], ctrl[a + 9], ctrl[a + 10], ctrl[a + 11], ctrl[a + 12])
      ctrl[LayerCtrl.ERROR] = 0
    } catch {
      ctrl[LayerCtrl.ERROR] = 1
    }
    Atomics.store(ctrl, LayerCtrl.DONE, last)
    Atomics.notify(ctrl, LayerCtrl.DONE)
  }
}

if (parentPort && workerData?.ctrl instanceof SharedArrayBuffer) run(workerData as LayerWorkerInit)
