/**
 * A model trained and exported by `tessera train` (src/train/run.ts) loads in llama.cpp
 * (node-llama-cpp 3.22, CPU) as F32 and as Q8_0: both tokenizers give the same ids, and the
 * next-token logits agree within the bounds test/llamacpp/agreement.test.ts uses for synthesized
 * models (max |Δlogit| < 0.25, top-1 equal wherever llama.cpp's margin exceeds 0.5).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { openLlamaCpp } from '../../bench/llamacpp.js'
import { BUILTIN_TEXT } from '../../src/engine/tokenizer/index.js'
import { KVCache } from '../../src/engine/model/transformer.js'
import { ARITH_V1 } from '../../src/engine/version.js'
import { loadModel } from '../../src/runtime/model.js'
import { parseRunSpec, trainRun } from '../../src/train/run.js'
import { compareLogits } from './compare.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-trained-llamacpp-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const PROMPTS = ['The harbour was quiet', 'He had counted them every morning for 27 years,', '"You\'re early again," said the woman']

test('a trained model exported as F32 and Q8_0 loads in llama.cpp and agrees with the engine', async () => {
  writeFileSync(join(dir, 'text.txt'), BUILTIN_TEXT)
  const spec = parseRunSpec({
    name: 'llamacpp-check',
    data: { sources: [{ name: 'harbour', files: ['text.txt'], weight: 1 }] },
    tokenizer: { vocabSize: 384 },
    train: {
      dim: 64, nLayer: 2, nHead: 4, nKvHead: 2, ffDim: 128, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: true, context: 32, batch: 4,
      lr: { peak: 0.01, warmupSteps: 2, totalSteps: 12, min: 0.001 }, adam: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, seed: '3',
    },
    checkpointEvery: 12,
  })
  const { summary } = await trainRun({ spec, dir: join(dir, 'run'), baseDir: dir })
  for (const { type } of summary.models) {
    const file = join(dir, 'run', `model-${type}.gguf`)
    const model = await loadModel(file, { backend: 'reference' })
    const ll = await openLlamaCpp(file, { threads: 1, kvCacheType: 'F32', contextSize: 64 })
    try {
      for (const text of PROMPTS) {
        const ids = ll.tokenize(text, true)
        assert.deepEqual(model.tokenizer.encode(text), ids, `${type}: tokenizers disagree on ${JSON.stringify(text)}`)
        const s = compareLogits(await ll.nextLogits(ids), model.transformer.forward(ids, new KVCache(model.transformer.config, ids.length, ARITH_V1), 1))
        assert.ok(s.maxAbsDiff < 0.25, `${type}: max |dlogit| ${s.maxAbsDiff} on ${JSON.stringify(text)}`)
        if (s.refTop1 !== s.oursTop1) assert.ok(s.refMargin < 0.5, `${type}: top-1 differs with margin ${s.refMargin}`)
      }
    } finally {
      await ll.close()
      model.close()
    }
  }
})
