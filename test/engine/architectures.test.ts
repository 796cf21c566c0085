/**
 * qwen3 (per-head q/k RMSNorm before RoPE) and sliding-window attention, end to end on
 * synthesized files:
 * - the forward pass applies qwen3's norms per head, with the norm weights, between the QKV
 *   projections and RoPE;
 * - windowed attention: the reference's windowed loop equals full causal attention over only the
 *   window's positions (an independent slicing of the caches), and the WASM ops equal the
 *   reference bit for bit, for batches that straddle the window and single tokens;
 * - whole jobs: the same receipt across TypeScript reference / WASM, 1 and 2 threads, batch 1 and
 *   64; a window >= the context gives exactly the trace of full attention, a small one differs.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { type AttentionShape, referenceLayerOps as ref } from '../../src/engine/kernels/layerOps.js'
import { rmsnorm } from '../../src/engine/math/canonical.js'
import { LAYER_OP } from '../../src/engine/model/opTable.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { KVCache } from '../../src/engine/model/transformer.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'
import { generate, loadModel, type Model } from '../../src/runtime/model.js'
import { createWasmLayerOps } from '../../src/runtime/wasmLayerOps.js'
import { windowArg } from '../../src/chain/actions/registry.js'
import { computeGgufModelRoot } from '../../src/engine/gguf/modelRoot.js'
import { bufferSource, readGguf } from '../../src/engine/gguf/read.js'
import { modelConfigFromGguf } from '../../src/engine/model/config.js'
import { concatBytes, toHex } from '../../src/engine/bytes.js'
import { buildModelTree } from '../../src/chain/weights.js'
import { layerOps } from '../../src/dispute/machine/program.js'
import { ARITH_V1 } from '../../src/engine/version.js'
import { tinyModel, tinyModelFrom } from '../support/machineModels.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-arch-'))
const wasmOps = createWasmLayerOps()
after(() => {
  wasmOps.close()
  rmSync(dir, { recursive: true, force: true })
})

function bitsOf(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length))
}

test('qwen3: q and k are RMS-normalized per head (hd values, the layer attn_q_norm / attn_k_norm weights) before RoPE', () => {
  const m = tinyModel('tiny-qwen3', 'q8_0', 2)
  const c = m.config
  assert.deepEqual([c.arch, c.hasQkNorm, c.hasQkvBias, c.headDim, c.nHead * c.headDim], ['qwen3', true, false, 128, 512])
  // the norm weights are F32 rows of headDim values
  const vec = (name: string) => new Float32Array(m.weights(name).row(0).slice().buffer)
  let before: Float32Array[] = []
  let checked = 0
  m.tf.forward([5, 17, 300], new KVCache(c, 8), 1, undefined, (layer, op, _start, nTok, outs) => {
    if (layer === c.nLayer) return
    if (op === LAYER_OP.QKV_BIAS) before = [outs[0].slice(), outs[1].slice()]
    if (op !== LAYER_OP.QK_NORM) return
    for (const [i, which, heads] of [[0, 'q', c.nHead], [1, 'k', c.nKvHead]] as const) {
      const w = vec(`blk.${layer}.attn_${which}_norm.weight`)
      const want = new Float32Array(nTok * heads * c.headDim)
      for (let r = 0; r < nTok * heads; r++) rmsnorm(want, r * c.headDim, before[i], r * c.headDim, w, c.headDim, c.rmsEps)
      assert.deepEqual(bitsOf(outs[i]), bitsOf(want), `layer ${layer} ${which}`)
      // a norm changes the values (it is not skipped)
      assert.notDeepEqual(bitsOf(outs[i]), bitsOf(before[i]))
      checked++
    }
  })
  assert.equal(checked, 2 * c.nLayer)
})

test('windowed attention: the reference equals full attention over the window alone; WASM equals the reference', () => {
  let s = 12345
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 4294967296 - 0.5
  }
  for (const [start, nTok, window, nh, nkv, hd] of [[0, 9, 4, 4, 2, 16], [5, 7, 3, 2, 1, 8], [10, 1, 6, 4, 4, 32], [2, 3, 20, 2, 2, 8], [3, 6, 1, 2, 1, 8]]) {
    const kvDim = nkv * hd
    const n = start + nTok
    const q = Float32Array.from({ length: nTok * nh * hd }, rnd)
    const k = wasmOps.allocF32(n * kvDim)
    const v = wasmOps.allocF32(n * kvDim)
    for (let i = 0; i < n * kvDim; i++) {
      k[i] = rnd() * 4
      v[i] = rnd()
    }
    const shape: AttentionShape = { start, nTok, nHead: nh, nKvHead: nkv, headDim: hd, window }
    const got = new Float32Array(nTok * nh * hd)
    ref.attention(got, q, k, v, shape)
    // plain: each token alone, full attention over cache rows lo .. pos copied out
    const want = new Float32Array(nTok * nh * hd)
    for (let t = 0; t < nTok; t++) {
      const pos = start + t
      const lo = Math.max(0, pos - window + 1)
      const o = new Float32Array(nh * hd)
      ref.attention(o, q.slice(t * nh * hd, (t + 1) * nh * hd), k.slice(lo * kvDim, (pos + 1) * kvDim), v.slice(lo * kvDim, (pos + 1) * kvDim), {
        start: pos - lo, nTok: 1, nHead: nh, nKvHead: nkv, headDim: hd,
      })
      want.set(o, t * nh * hd)
    }
    const at = `start ${start}, ${nTok} tokens, window ${window}`
    assert.deepEqual(bitsOf(got), bitsOf(want), at)
    const w = new Float32Array(nTok * nh * hd)
    wasmOps.attention(w, q, k, v, shape)
    assert.deepEqual(bitsOf(w), bitsOf(got), `WASM, ${at}`)
    // a window that reaches position 0 for every token is full attention
    if (window >= n) {
      const full = new Float32Array(nTok * nh * hd)
      ref.attention(full, q, k, v, { ...shape, window: undefined })
      assert.deepEqual(bitsOf(full), bitsOf(got), `full, ${at}`)
    }
  }
})

function synth(name: string, opts: Parameters<typeof synthModel>[0]): string {
  const path = join(dir, `${name}.gguf`)
  writeGgufFile(path, encodeGguf(synthModel(opts)))
  return path
}

const PROMPT = 'Call me Ishmael. Some years ago, never mind how long'

/** Trace and output roots of a greedy and a sampled job on every backend, thread count and batch size; all must agree. */
async function receipts(path: string, backends: 'all' | 'reference' = 'all'): Promise<string[]> {
  const runs: Record<string, string[]> = {}
  const run = (name: string, m: Model, batchSize: number) => {
    const g = generate(m, { prompt: PROMPT, maxTokens: 8, temperature: 0, batchSize })
    const sm = generate(m, { prompt: PROMPT, maxTokens: 8, temperature: 0.9, topK: 20, topP: 0.9, seed: 7, batchSize })
    runs[name] = [g.receipt.traceRoot, g.receipt.outputRoot, sm.receipt.traceRoot, sm.receipt.outputRoot]
  }
  const all = [['reference', { backend: 'reference' }, [64]], ['wasm-t1', { backend: 'wasm', threads: 1 }, [64, 1]], ['wasm-t2', { backend: 'wasm', threads: 2 }, [64]]] as const
  for (const [name, opts, batches] of backends === 'all' ? all : all.slice(0, 1)) {
    const m = await loadModel(path, opts)
    try {
      for (const b of batches) run(`${name}-b${b}`, m, b)
    } finally {
      m.close()
    }
  }
  for (const [name, r] of Object.entries(runs)) assert.deepEqual(r, runs['reference-b64'], `${name} differs from the reference`)
  return runs['reference-b64']
}

test('qwen3 jobs: the same receipts on the reference and WASM, 1 and 2 threads, batch 64 and 1', async () => {
  for (const type of ['q8_0', 'q4_k_m']) await receipts(synth(`qwen3-${type}`, { preset: 'tiny-qwen3', type, seed: 1 }))
  // llama's shapes as qwen3 (head 64 = width / heads)
  await receipts(synth('qwen3-tiny-f16', { preset: 'tiny', type: 'f16', seed: 1, arch: 'qwen3' }))
})

test('sliding window jobs: W >= context is full attention bit for bit; W = 4 differs and agrees across backends and batches', async () => {
  const full = await receipts(synth('full', { preset: 'tiny', type: 'q8_0', seed: 1 }), 'reference')
  assert.deepEqual(await receipts(synth('w-ctx', { preset: 'tiny', type: 'q8_0', seed: 1, slidingWindow: 512 }), 'reference'), full)
  const w4 = await receipts(synth('w4', { preset: 'tiny-qwen3', type: 'q8_0', seed: 1, slidingWindow: 4 }))
  const q3 = await receipts(synth('q3', { preset: 'tiny-qwen3', type: 'q8_0', seed: 1 }), 'reference')
  assert.notEqual(w4[0], q3[0])
})

test('a windowed model has its own model root and registers with its window', async () => {
  const rootOf = (slidingWindow?: number) => {
    const bytes = concatBytes(...encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 1, slidingWindow })))
    const src = bufferSource(bytes)
    const gguf = readGguf(src)
    const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
    return { root: toHex(computeGgufModelRoot(src, gguf, config).modelRoot), tree: buildModelTree(src, gguf, config), config }
  }
  const plain = rootOf()
  const w = rootOf(8)
  // W >= the context is no window: the same root
  assert.equal(rootOf(512).root, plain.root)
  assert.notEqual(w.root, plain.root)
  assert.equal(w.tree.modelRoot.slice(2), w.root)
  const proof = w.tree.proveConfig()
  assert.equal(proof.config.slidingWindow, 8)
  // registered with its window (src/chain/registry.test.ts checks the registry against the root)
  assert.equal(windowArg(proof.config), 8)
  const sampling = { temperature: 0, repeatPenalty: 1, repeatLastN: 64 }
  const shape = (n: string) => w.tree.shape(n)
  // the machine's attention ops run over the last min(p + 1, W) positions; a context without the model's window is refused
  const ops = layerOps({ config: w.config, arith: ARITH_V1, window: 8, shape, pos: 10, layer: 0, nPrompt: 2, sampling })
  assert.equal(ops.find((o) => o.name === 'SCORE')!.length, w.config.nHead * 8)
  for (const window of [0, 9]) assert.throws(() => layerOps({ config: w.config, arith: ARITH_V1, window, shape, pos: 3, layer: 0, nPrompt: 2, sampling }), { name: 'WindowMismatchError' })
})

test('a windowed KV cache keeps W - 1 + the batch positions; token by token and in batches of 7 (compacting) equal one batch (not) bit for bit', () => {
  for (const [preset, W] of [['tiny', 5], ['tiny-qwen3', 1], ['tiny-qwen3', 16]] as const) {
    const bytes = concatBytes(...encodeGguf(synthModel({ preset, type: 'q8_0', seed: 2, slidingWindow: W })))
    const m = tinyModelFrom(bytes)
    const tokens = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 1000)
    const all = m.tf.forward(tokens, new KVCache(m.config, 64), tokens.length)
    const cache = new KVCache(m.config, 64)
    const V = m.config.vocabSize
    for (let i = 0; i < tokens.length; i++) {
      const l = m.tf.forward([tokens[i]], cache, 1)
      assert.deepEqual(bitsOf(l), bitsOf(all.subarray(i * V, (i + 1) * V)), `${preset} W ${W}: position ${i}`)
      assert.ok(cache.rows <= Math.max(2 * W, W), `${preset} W ${W}: ${cache.rows} rows`)
    }
    assert.ok(cache.base > 0, 'old positions were dropped')
    // batches of 7: the cache grows to W - 1 + 7 at most
    const c7 = new KVCache(m.config, 64)
    for (let i = 0; i < tokens.length; i += 7) {
      const n = Math.min(7, tokens.length - i)
      const l = m.tf.forward(tokens.slice(i, i + n), c7, n)
      assert.deepEqual(bitsOf(l), bitsOf(all.subarray(i * V, (i + n) * V)), `${preset} W ${W}: batch at ${i}`)
      assert.ok(c7.rows <= Math.max(2 * W, W - 1 + 7), `${preset} W ${W}: ${c7.rows} rows in batches of 7`)
    }
  }
})
