/**
 * The Trainer end to end: the whole model's gradient against central finite differences of a
 * float64 twin, the F32 forward equal bit for bit to the engine's forward of the exported GGUF, a
 * short run whose loss falls, and identical state bytes for the reference and the native kernels
 * at 1, 2 and 3 threads (odd sizes, GQA, tied and untied).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Forward64 } from '../../test/support/forward64.js'
import { GGMLType } from '../engine/gguf/types.js'
import { encodeGguf } from '../engine/gguf/write.js'
import { createReferenceBackend } from '../engine/kernels/reference.js'
import type { ModelConfig } from '../engine/model/config.js'
import { modelMetadata } from '../engine/model/synth.js'
import { KVCache, Transformer } from '../engine/model/transformer.js'
import { ARITH_V1 } from '../engine/version.js'
import { synthTokenizerMetadata } from '../engine/tokenizer/synth.js'
import { loadNativeTrain } from '../runtime/native/train.js'
import { loadWeights } from '../runtime/loadWeights.js'
import { paramList } from './model.js'
import { referenceTrainOps } from './ops.js'
import { createTrainer, decodeState, encodeState, initState, type TrainConfig, TrainModel } from './trainer.js'

const tiny: TrainConfig = {
  vocabSize: 37, dim: 24, nLayer: 2, nHead: 6, nKvHead: 2, ffDim: 35, context: 11, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: true, batch: 3,
  lr: { peak: 1e-2, warmupSteps: 2, totalSteps: 40, min: 1e-3 }, adam: { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01 }, gradClip: 1, seed: '42',
}

/** Deterministic token ids (an LCG), `nSeq` sequences of context + 1. */
function tokens(c: TrainConfig, nSeq: number, salt = 0): Int32Array {
  const t = new Int32Array(nSeq * (c.context + 1))
  let x = 987654321 + salt
  for (let i = 0; i < t.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    t[i] = (x >>> 8) % c.vocabSize
  }
  return t
}

/** A learnable sequence: id_{i+1} = (3·id_i + 1) mod V, from a few starts. */
function patterned(c: TrainConfig, nSeq: number): Int32Array {
  const t = new Int32Array(nSeq * (c.context + 1))
  for (let s = 0; s < nSeq; s++) {
    let id = (s * 5) % c.vocabSize
    for (let i = 0; i <= c.context; i++) {
      t[s * (c.context + 1) + i] = id
      id = (3 * id + 1) % c.vocabSize
    }
  }
  return t
}

/** The mean cross-entropy of the model by the float64 twin (test/support/forward64.ts: Math.exp/log/cos/sin, no rounding to binary32). */
function loss64(c: TrainConfig, P: Map<string, Float64Array>, toks: Int32Array): number {
  const C = c.context
  const nSeq = toks.length / (C + 1)
  const config = { arch: 'llama', dim: c.dim, nLayer: c.nLayer, nHead: c.nHead, nKvHead: c.nKvHead, headDim: c.dim / c.nHead, ffDim: c.ffDim, vocabSize: c.vocabSize, ropeBase: c.ropeBase, rmsEps: c.rmsEps, hasQkvBias: false } as const
  let total = 0
  for (let s = 0; s < nSeq; s++) {
    const ids = toks.subarray(s * (C + 1), (s + 1) * (C + 1))
    const f = new Forward64(config, (n) => P.get(n))
    for (let t = 0; t < C; t++) {
      const z = f.step(ids[t])
      const m = Math.max(...z)
      let S = 0
      for (const v of z) S += Math.exp(v - m)
      total += m + Math.log(S) - z[ids[t + 1]]
    }
  }
  return total / (nSeq * C)
}

for (const tied of [true, false]) {
  test(`whole-model gradient matches float64 central differences (${tied ? 'tied' : 'untied'} embeddings)`, () => {
    const c: TrainConfig = { ...tiny, tiedEmbeddings: tied, nLayer: 2, context: 6, batch: 2 }
    const state = initState(c)
    // move off the init (norm weights all 1, tiny embeddings) so every path carries gradient
    let x = 7
    for (const [, w] of state.params) {
      for (let i = 0; i < w.length; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0
        w[i] = Math.fround(w[i] * 4 + ((x >>> 8) / 2 ** 24 - 0.5) * 0.2)
      }
    }
    const toks = tokens(c, c.batch, 3)
    const model = new TrainModel(c, referenceTrainOps)
    const grads = model.backward(state.params, model.forward(state.params, toks, true))
    const P64 = new Map([...state.params].map(([k, v]) => [k, Float64Array.from(v)]))
    const h = 1e-5
    let checked = 0
    for (const p of paramList(c)) {
      const g = grads.get(p.name) as Float32Array
      const w = P64.get(p.name) as Float64Array
      let gmax = 0
      for (const v of g) gmax = Math.max(gmax, Math.abs(v))
      assert.ok(gmax > 0, `${p.name}: gradient is all zero`)
      for (let j = 0; j < 4; j++) {
        const i = (j * 7919 + 13) % p.size
        const keep = w[i]
        w[i] = keep + h
        const up = loss64(c, P64, toks)
        w[i] = keep - h
        const dn = loss64(c, P64, toks)
        w[i] = keep
        const fd = (up - dn) / (2 * h)
        const err = Math.abs(fd - g[i])
        assert.ok(err <= 2e-3 * gmax + 2e-2 * Math.abs(fd), `${p.name}[${i}]: analytic ${g[i]}, finite differences ${fd} (max |g| ${gmax})`)
        checked++
      }
    }
    assert.ok(checked >= 4 * paramList(c).length)
  })
}

test('the F32 forward equals the engine forward of the exported F32 GGUF, logits bit for bit', () => {
  for (const tied of [true, false]) {
    // 300 ids: the engine's loader wants a tokenizer, and a byte-level BPE needs 256 byte tokens
    const c: TrainConfig = { ...tiny, vocabSize: 300, tiedEmbeddings: tied, batch: 2 }
    const state = initState(c)
    const trainer = new TrainModel(c, referenceTrainOps)
    // a few steps first, so the weights are not the init's
    for (let i = 0; i < 3; i++) trainer.step(state, tokens(c, c.batch, i))
    const hd = c.dim / c.nHead
    const mc = {
      arch: 'llama', dim: c.dim, nLayer: c.nLayer, nHead: c.nHead, nKvHead: c.nKvHead, headDim: hd, ffDim: c.ffDim, vocabSize: c.vocabSize,
      contextLength: c.context, ropeBase: Math.fround(c.ropeBase), rmsEps: Math.fround(c.rmsEps), hasQkvBias: false, hasQkNorm: false, tiedEmbeddings: tied,
    } as ModelConfig
    const metadata = modelMetadata(mc, 'trainer-test', 0)
    for (const [k, v] of Object.entries(synthTokenizerMetadata({ kind: 'bpe', vocabSize: c.vocabSize }))) metadata.set(k, v)
    const spec = {
      metadata,
      tensors: paramList(c).map((p) => {
        const a = state.params.get(p.name) as Float32Array
        return { name: p.name, dims: p.dims, type: GGMLType.F32, data: () => [new Uint8Array(a.buffer, a.byteOffset, a.byteLength)] }
      }),
    }
    const dir = mkdtempSync(join(tmpdir(), 'tessera-train-'))
    try {
      const file = join(dir, 'm.gguf')
      writeFileSync(file, Buffer.concat([...encodeGguf(spec)]))
      const backend = createReferenceBackend()
      const w = loadWeights(file, backend, { hashWorkers: 0 })
      const engine = new Transformer({ config: w.config, matrices: w.matrices, vectors: w.vectors }, backend)
      const toks = tokens(c, 2, 9)
      // logits: the trainer's z before the loss (a forward without gradient leaves z as logits)
      const fw = trainer.forward(state.params, toks, false)
      for (let s = 0; s < 2; s++) {
        const ids = Array.from(toks.subarray(s * (c.context + 1), s * (c.context + 1) + c.context))
        // the trainer's attention is tessera-arith/1's (binary32 K/V)
        const logits = engine.forward(ids, new KVCache(w.config, c.context, ARITH_V1), c.context)
        const mine = fw.z.subarray(s * c.context * c.vocabSize, (s + 1) * c.context * c.vocabSize)
        assert.deepEqual(new Uint32Array(logits.buffer, logits.byteOffset, logits.length), new Uint32Array(mine.buffer, mine.byteOffset, mine.length), `sequence ${s} (${tied ? 'tied' : 'untied'})`)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
})

test('a short run on a learnable pattern: the loss falls', async () => {
  const c: TrainConfig = { ...tiny, lr: { peak: 2e-2, warmupSteps: 3, totalSteps: 40, min: 2e-3 } }
  const trainer = await createTrainer(c, { backend: 'auto' })
  const state = initState(c)
  const data = patterned(c, c.batch)
  const first = await trainer.loss(state, data)
  let last = 0
  for (let i = 0; i < 30; i++) last = (await trainer.step(state, data)).loss
  const after = await trainer.loss(state, data)
  assert.ok(first > 3.4 && first < 3.8, `initial loss ${first} should be near ln(37) = 3.61`)
  assert.ok(after < first * 0.5, `loss ${first} -> ${after} (last step ${last})`)
  assert.equal(state.step, 30)
})

test('loss() is the mean per-token loss whatever the grouping into batches; a step without update changes nothing', async () => {
  const c: TrainConfig = { ...tiny, batch: 2 }
  const state = initState(c)
  const toks = tokens(c, 5, 1)
  const a = await (await createTrainer(c, { backend: 'reference' })).loss(state, toks)
  const b = await (await createTrainer({ ...c, batch: 5 }, { backend: 'reference' })).loss(state, toks)
  assert.equal(a, b)
  const before = encodeState(c, state)
  assert.deepEqual(encodeState(c, decodeState(c, before)), before)
})

test('bad tokens and states are refused with one clear error', async () => {
  const trainer = await createTrainer(tiny, { backend: 'reference' })
  const state = initState(tiny)
  await assert.rejects(trainer.step(state, new Int32Array(5)), { name: 'TrainStateError' })
  const bad = tokens(tiny, tiny.batch)
  bad[3] = tiny.vocabSize
  await assert.rejects(trainer.step(state, bad), { name: 'TrainStateError', message: /tokens\[3\] = 37 is outside/ })
  await assert.rejects(createTrainer(tiny, { threads: 0 }), { name: 'InvalidParameterError' })
  await assert.rejects(createTrainer(tiny, { backend: 'gpu' as 'auto' }), { name: 'InvalidParameterError' })
  state.params.delete('output_norm.weight')
  await assert.rejects(trainer.loss(state, tokens(tiny, 1)), { name: 'TrainStateError', message: /lacks output_norm.weight/ })
})

const native = loadNativeTrain()
test('native kernels at 1, 2 and 3 threads give the reference state bytes, step after step', { skip: native ? false : 'native training kernels not built' }, async () => {
  const configs: TrainConfig[] = [
    tiny,
    { ...tiny, tiedEmbeddings: false, nHead: 3, nKvHead: 3, dim: 18, ffDim: 13, context: 9, vocabSize: 29, batch: 2, gradClip: 0 },
    { ...tiny, nHead: 4, nKvHead: 1, dim: 32, ffDim: 40, context: 17, nLayer: 1, adam: { ...tiny.adam, weightDecay: 0 }, gradClip: 0.05 },
  ]
  for (const c of configs) {
    const digests: string[] = []
    for (const [backend, threads] of [['reference', 1], ['native', 1], ['native', 2], ['native', 3]] as const) {
      const trainer = await createTrainer(c, { backend, threads })
      const state = initState(c)
      const losses: number[] = []
      for (let i = 0; i < 3; i++) losses.push((await trainer.step(state, tokens(c, c.batch, i))).loss)
      losses.push(await trainer.loss(state, tokens(c, 3, 100)))
      digests.push(`${losses.join(',')} ${createHash('sha256').update(encodeState(c, state)).digest('hex')}`)
    }
    for (const d of digests) assert.equal(d, digests[0], `config dim ${c.dim}, heads ${c.nHead}/${c.nKvHead}`)
  }
})
