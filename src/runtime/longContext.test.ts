/**
 * Long-context attention end to end: a one-layer model with an 8,192-token context, prefilled past
 * 7,100 positions (where decode used to fall off a cliff), gives the same logits bit for bit with
 * WASM attention on 1 thread (native off), native attention with its heads split between the main
 * thread and the matmul worker (2 threads, the default), native attention in 3 threads of layer
 * workers, WASM attention on 2 threads' matmul worker (native off), prefilled in batches of 512,
 * 64 or 100 and then decoded one token at a time, and the TypeScript reference on the last tokens
 * over the same cache (tessera-arith/1, binary32 K/V). Then tessera-arith/2 (binary16 K/V) over
 * 2,000 positions the same way (1, 2 and 3 threads, native and WASM, batches of 64, 7 and 1, the
 * reference), with its trace K/V equal to v1's and its logits not; and a sliding window under v2
 * (the cache compacted in binary16) across backends and batch sizes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeGguf } from '../engine/gguf/write.js'
import { PRESETS } from '../engine/model/presets.js'
import { synthModel } from '../engine/model/synth.js'
import { KVCache, Transformer, type TransformerWeights } from '../engine/model/transformer.js'
import { writeGgufFile } from './ggufFile.js'
import { loadModel, type Model } from './model.js'
import { createWasmLayerOps } from './wasmLayerOps.js'
import { loadNativeAttention } from './native/attention.js'
import { exactBits } from '../../test/support/bits.js'
import { ARITH_V1, ARITH_V2, type ArithVersion } from '../engine/version.js'
import { f2h, h2f } from '../engine/math/half.js'

const CONTEXT = 7100
const TAIL = 4

PRESETS['test-long'] ??= {
  ...PRESETS.tiny, name: 'test-long', description: 'one layer, two query heads sharing one kv head, 8,192-token context (tests)',
  dim: 128, nLayer: 1, nHead: 2, nKvHead: 1, ffDim: 256, contextLength: 8192,
}

/** The weights a loaded model's transformer reads (its private fields, for a second transformer over them). */
function weightsOf(m: Model): TransformerWeights {
  const t = m.transformer as unknown as { m: TransformerWeights['matrices']; vec: TransformerWeights['vectors'] }
  return { config: m.transformer.config, matrices: t.m, vectors: t.vec }
}

/** Prefills `prompt` minus its last TAIL tokens in batches of `batch`, leaving the cache for the tail. */
function prefill(m: Model, prompt: number[], batch: number, arith: ArithVersion = ARITH_V1): KVCache {
  const n = prompt.length - TAIL
  const cache = new KVCache(m.transformer.config, prompt.length, arith)
  for (let s = 0; s < n; s += batch) m.transformer.forward(prompt.slice(s, Math.min(s + batch, n)), cache, 0)
  return cache
}

/** Logits (TAIL, vocab) of the tail tokens, one forward call each (decode). */
function decodeTail(m: Model, prompt: number[], cache: KVCache): Float32Array {
  const V = m.transformer.config.vocabSize
  const n = prompt.length - TAIL
  const out = new Float32Array(TAIL * V)
  for (let i = 0; i < TAIL; i++) out.set(m.transformer.forward([prompt[n + i]], cache, 1), i * V)
  return out
}

/** A deterministic prompt of `n` token ids below `V` (LCG). */
function promptOf(n: number, V: number): number[] {
  let s = 12345
  return Array.from({ length: n }, () => 3 + ((s = (s * 1103515245 + 12345) >>> 0) % (V - 3)))
}

/** The test-long model with attention on 3 threads of layer workers (the backend's layer ops swapped). */
function withThreeThreads(m: Model): { model: Model; ops: ReturnType<typeof createWasmLayerOps> } {
  const ops = createWasmLayerOps({ threads: 3 })
  return { model: { ...m, transformer: new Transformer(weightsOf(m), Object.create(m.backend, { layerOps: { value: ops } })) }, ops }
}

async function workersUp(ops: ReturnType<typeof createWasmLayerOps>): Promise<void> {
  const t0 = Date.now()
  while (ops.readyWorkers < 2 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20))
  assert.equal(ops.readyWorkers, 2, 'attention workers started')
}

test(`logits at ${CONTEXT}+ positions: native and WASM attention, 1, 2 and 3 threads, batches of 512, 100, 64 and 1, and the reference agree bit for bit`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-long-'))
  const path = join(dir, 'long.gguf')
  writeGgufFile(path, encodeGguf(synthModel({ preset: 'test-long', type: 'q8_0', seed: 5 })))
  const one = await loadModel(path, { threads: 1, native: false })
  const two = await loadModel(path, { threads: 2 })
  const twoWasm = await loadModel(path, { threads: 2, native: false })
  const one3 = await loadModel(path, { threads: 1 })
  // the same weights with attention on 3 threads (the backend's layer ops swapped for threaded ones)
  const ops3 = createWasmLayerOps({ threads: 3 })
  const three = { ...one3, transformer: new Transformer(weightsOf(one3), Object.create(one3.backend, { layerOps: { value: ops3 } })) }
  const ref = await loadModel(path, { backend: 'reference' })
  try {
    const V = one.transformer.config.vocabSize
    const prompt = promptOf(CONTEXT + TAIL, V)

    // 1 thread: prefill in 512s, the tail as one batch
    const cacheOne = prefill(one, prompt, 512)
    const want = one.transformer.forward(prompt.slice(CONTEXT), cacheOne, TAIL)
    assert.equal(want.length, TAIL * V)

    // 3 threads: prefill in 64s, the tail token by token, with both attention workers running
    const t0 = Date.now()
    while (ops3.readyWorkers < 2 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20))
    assert.equal(ops3.readyWorkers, 2, 'attention workers started')
    const c3 = prefill(three, prompt, 64)
    exactBits(decodeTail(three, prompt, c3), want, '3 threads, decode')

    // 2 threads: attention's heads split between the main thread and the matmul worker, natively
    // where the addon is built (else WASM, and this repeats the next case), and with native off
    const native = loadNativeAttention() !== undefined
    const c2 = prefill(two, prompt, 100)
    exactBits(decodeTail(two, prompt, c2), want, `2 threads${native ? ', native attention' : ''}, decode`)
    const c2w = prefill(twoWasm, prompt, 512)
    exactBits(decodeTail(twoWasm, prompt, c2w), want, '2 threads, WASM attention, decode')

    // the reference over the 1-thread prefill's cache (moved into reference memory), tail by decode
    cacheOne.length = CONTEXT
    exactBits(decodeTail(ref, prompt, cacheOne), want, 'reference, decode')
  } finally {
    one.close()
    two.close()
    twoWasm.close()
    ops3.close()
    one3.close()
    ref.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tessera-arith/2 (binary16 K/V) at 2,000 positions: native and WASM, 1, 2 and 3 threads, batches of 64, 7 and 1, and the reference agree bit for bit; trace K/V equal v1\'s, logits do not', async () => {
  const N = 2000
  const dir = mkdtempSync(join(tmpdir(), 'tessera-long2-'))
  const path = join(dir, 'long.gguf')
  writeGgufFile(path, encodeGguf(synthModel({ preset: 'test-long', type: 'q8_0', seed: 5 })))
  const one = await loadModel(path, { threads: 1, native: false })
  const two = await loadModel(path, { threads: 2 })
  const one3 = await loadModel(path, { threads: 1 })
  const { model: three, ops: ops3 } = withThreeThreads(one3)
  const ref = await loadModel(path, { backend: 'reference' })
  try {
    const V = one.transformer.config.vocabSize
    const prompt = promptOf(N + TAIL, V)
    // 1 thread, WASM attention: prefill in 64s, the tail as one batch, its K/V as the trace sees them
    const cacheOne = prefill(one, prompt, 64, ARITH_V2)
    assert.ok(cacheOne.storage(one.backend.layerOps!).k[0] instanceof Uint16Array, 'a v2 cache holds binary16')
    const traced: Float32Array[] = []
    const keep = (_l: number, _s: number, _n: number, _x: Float32Array, k: Float32Array, v: Float32Array) => traced.push(k.slice(), v.slice())
    const want = one.transformer.forward(prompt.slice(N), cacheOne, TAIL, keep)

    // 3 threads (native layer workers): prefill in 7s, decode
    await workersUp(ops3)
    exactBits(decodeTail(three, prompt, prefill(three, prompt, 7, ARITH_V2)), want, 'v2, 3 threads, batches of 7, decode')
    // 2 threads (heads split with the matmul worker, native where built): the last 100 positions
    // of the prefill one token at a time
    const c2 = new KVCache(two.transformer.config, prompt.length, ARITH_V2)
    for (let p = 0; p < N - 100; p += 64) two.transformer.forward(prompt.slice(p, Math.min(p + 64, N - 100)), c2, 0)
    for (let p = N - 100; p < N; p++) two.transformer.forward([prompt[p]], c2, 0)
    exactBits(decodeTail(two, prompt, c2), want, 'v2, 2 threads, one token at a time')
    // the reference over the 1-thread cache (moved into reference memory, still binary16)
    cacheOne.length = N
    exactBits(decodeTail(ref, prompt, cacheOne), want, 'v2, reference, decode')

    // v1 over the same prompt: the trace's K and V are v1's (unrounded), the logits are not
    const cacheV1 = prefill(one, prompt, 512, ARITH_V1)
    const tracedV1: Float32Array[] = []
    const v1 = one.transformer.forward(prompt.slice(N), cacheV1, TAIL, (_l, _s, _n, _x, k, v) => tracedV1.push(k.slice(), v.slice()))
    assert.equal(traced.length, 2)
    exactBits(traced[0], tracedV1[0], 'trace K: v2 keeps the unrounded values')
    exactBits(traced[1], tracedV1[1], 'trace V: v2 keeps the unrounded values')
    assert.ok(traced[0].some((x) => h2f(f2h(x)) !== x), 'the trace K holds values binary16 cannot (not rounded)')
    const differs = want.some((x, i) => x !== v1[i])
    assert.ok(differs, 'v2 logits differ from v1 (the binary16 rounding takes effect)')
  } finally {
    one.close()
    two.close()
    ops3.close()
    one3.close()
    ref.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('tessera-arith/2 with a sliding window of 32 over 160 positions (binary16 cache compacted): reference, WASM and native, batches of 64, 7 and 1 agree', async () => {
  const N = 160
  const dir = mkdtempSync(join(tmpdir(), 'tessera-win2-'))
  const path = join(dir, 'win.gguf')
  writeGgufFile(path, encodeGguf(synthModel({ preset: 'test-long', type: 'q8_0', seed: 6, slidingWindow: 32 })))
  const one = await loadModel(path, { threads: 1, native: false })
  const two = await loadModel(path, { threads: 2 })
  const ref = await loadModel(path, { backend: 'reference' })
  try {
    assert.equal(one.transformer.config.slidingWindow, 32)
    const prompt = promptOf(N + TAIL, one.transformer.config.vocabSize)
    const want = decodeTail(ref, prompt, prefill(ref, prompt, 64, ARITH_V2))
    exactBits(decodeTail(one, prompt, prefill(one, prompt, 7, ARITH_V2)), want, 'window, v2, WASM, batches of 7')
    exactBits(decodeTail(two, prompt, prefill(two, prompt, 1, ARITH_V2)), want, 'window, v2, 2 threads, one token at a time')
    const v1 = decodeTail(one, prompt, prefill(one, prompt, 64, ARITH_V1))
    assert.ok(v1.some((x, i) => x !== want[i]), 'window: v2 logits differ from v1')
  } finally {
    one.close()
    two.close()
    ref.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
