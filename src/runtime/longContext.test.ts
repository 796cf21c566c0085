/**
 * Long-context attention end to end: a one-layer model with an 8,192-token context, prefilled past
 * 7,100 positions (where decode used to fall off a cliff), gives the same logits bit for bit with
 * WASM attention on 1 thread (native off), native attention with its heads split between the main
 * thread and the matmul worker (2 threads, the default), native attention in 3 threads of layer
 * workers, WASM attention on 2 threads' matmul worker (native off), prefilled in batches of 512,
 * 64 or 100 and then decoded one token at a time, and the TypeScript reference on the last tokens
 * over the same cache.
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
function prefill(m: Model, prompt: number[], batch: number): KVCache {
  const cache = new KVCache(m.transformer.config, prompt.length)
  for (let s = 0; s < CONTEXT; s += batch) m.transformer.forward(prompt.slice(s, Math.min(s + batch, CONTEXT)), cache, 0)
  return cache
}

/** Logits (TAIL, vocab) of the tail tokens, one forward call each (decode). */
function decodeTail(m: Model, prompt: number[], cache: KVCache): Float32Array {
  const V = m.transformer.config.vocabSize
  const out = new Float32Array(TAIL * V)
  for (let i = 0; i < TAIL; i++) out.set(m.transformer.forward([prompt[CONTEXT + i]], cache, 1), i * V)
  return out
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
    let s = 12345
    const prompt = Array.from({ length: CONTEXT + TAIL }, () => 3 + ((s = (s * 1103515245 + 12345) >>> 0) % (V - 3)))

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
