/**
 * A kernel worker: instantiates build/kernels.wasm over its own shared memory (which the main
 * thread fills with this worker's weight rows and activations) and runs matmul commands from the
 * control block. It spins on the block for `spinMs` after each command, because waking from
 * Atomics.wait costs milliseconds; past that it sleeps in Atomics.wait so an idle process does
 * not burn a core.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { WA } from './wasmTypes.js'
import { Cmd, Ctrl, KERNELS, NATIVE_KERNELS, type KernelExports, type WorkerInit } from './wasmProtocol.js'
import { loadNativeQ8 } from './native/q8.js'
import { loadNativeAttention } from './native/attention.js'

const init = workerData as WorkerInit
const ctrl = new Int32Array(init.ctrl)
const exports = new WA.Instance(init.module, { env: { memory: init.memory } }).exports as unknown as KernelExports
const kernels = KERNELS.map((k) => exports[k])
const native = init.native ? loadNativeQ8() : undefined
// A view of the whole memory for the native kernel, re-made when the memory has grown.
let view = new Uint8Array(init.memory.buffer)

/**
 * Cmd.ATTENTION: query heads h0..h1 (ATT0's 13 arguments, layer.wasm `attention`'s) over the layer
 * ops' memory, natively when the addon loads, else with layer.wasm instantiated over that memory.
 */
const attend = ((layer) => {
  if (!layer) return undefined
  const nat = init.native ? loadNativeAttention() : undefined
  if (nat) {
    let lview = new Uint8Array(layer.memory.buffer)
    return (a: number[]) => {
      if (lview.byteLength !== layer.memory.buffer.byteLength) lview = new Uint8Array(layer.memory.buffer)
      nat.attention(lview, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12])
    }
  }
  const wasm = (new WA.Instance(layer.module, { env: { memory: layer.memory } }).exports as unknown as { attention: (...a: number[]) => void }).attention
  return (a: number[]) => wasm(...a)
})(init.layer)
const attArgs = new Array<number>(13)

function waitForCommand(last: number): number {
  let seq = Atomics.load(ctrl, Ctrl.SEQ)
  if (seq !== last) return seq
  const start = performance.now()
  for (let n = 1; ; n++) {
    seq = Atomics.load(ctrl, Ctrl.SEQ)
    if (seq !== last) return seq
    if ((n & 4095) === 0 && performance.now() - start > init.spinMs) break
  }
  while ((seq = Atomics.load(ctrl, Ctrl.SEQ)) === last) Atomics.wait(ctrl, Ctrl.SEQ, last)
  return seq
}

parentPort!.postMessage('ready')
// SEQ starts at 0; reading it here instead would race with a command sent right after 'ready'.
let last = 0
for (;;) {
  last = waitForCommand(last)
  const cmd = ctrl[Ctrl.CMD]
  if (cmd === Cmd.STOP) break
  try {
    const a = Ctrl.ARG0
    const fn = ctrl[Ctrl.FN]
    const nk = native && NATIVE_KERNELS[fn]
    if (cmd === Cmd.ATTENTION) {
      // Pointers are wasm32 addresses stored as int32 bits: >>> 0 reads them unsigned.
      for (let i = 0; i < 13; i++) attArgs[i] = i < 5 ? ctrl[Ctrl.ATT0 + i] >>> 0 : ctrl[Ctrl.ATT0 + i]
      if (!attend) throw new Error('no layer memory')
      attend(attArgs)
    } else if (nk && ctrl[a + 4] >= nk.minTok) {
      if (view.byteLength !== init.memory.buffer.byteLength) view = new Uint8Array(init.memory.buffer)
      // Pointers are wasm32 addresses stored as int32 bits: >>> 0 reads them unsigned.
      native[nk.fn](view, ctrl[a] >>> 0, ctrl[a + 1], ctrl[a + 2], ctrl[a + 3] >>> 0, ctrl[a + 4], ctrl[a + 5] >>> 0, ctrl[a + 6])
    } else {
      kernels[fn](ctrl[a], ctrl[a + 1], ctrl[a + 2], ctrl[a + 3], ctrl[a + 4], ctrl[a + 5], ctrl[a + 6])
    }
    ctrl[Ctrl.ERROR] = 0
  } catch {
    ctrl[Ctrl.ERROR] = 1
  }
  Atomics.store(ctrl, Ctrl.DONE, last)
  Atomics.notify(ctrl, Ctrl.DONE)
}
