/**
 * The training export: a params map becomes F32 and Q8_0 GGUF files that the engine loads and
 * generates from, carrying the run's tokenizer and the run root / manifest hash keys; an F32 file
 * read back for fine-tuning gives the same values bit for bit; a missing or mis-sized tensor is
 * named.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { GGMLType } from '../engine/gguf/types.js'
import { encodeGguf } from '../engine/gguf/write.js'
import { expectedTensors } from '../engine/model/config.js'
import { BUILTIN_TEXT } from '../engine/tokenizer/index.js'
import { openGgufSource, writeGgufFile } from '../runtime/ggufFile.js'
import { generateAsync, loadModel } from '../runtime/model.js'
import { type ExportShape, exportSpec, MANIFEST_HASH_KEY, RUN_ROOT_KEY, readInitModel, trainedModelConfig } from './export.js'
import { trainRunTokenizer } from './tokenizer.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-export-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const tokenizer = trainRunTokenizer([{ texts: [BUILTIN_TEXT], weight: 1 }], { vocabSize: 320 })
const shape: ExportShape = { vocabSize: 320, dim: 64, nLayer: 2, nHead: 4, nKvHead: 2, ffDim: 96, context: 64, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: true }

/** Small pseudo-random weights (an LCG), norms at 1. */
function randomParams(s: ExportShape): Map<string, Float32Array> {
  let x = 12345
  const params = new Map<string, Float32Array>()
  for (const { name, dims } of expectedTensors(trainedModelConfig(s))) {
    const a = new Float32Array(dims.reduce((p, d) => p * d, 1))
    for (let i = 0; i < a.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      a[i] = name.endsWith('norm.weight') ? 1 : ((x / 2 ** 32) * 2 - 1) * 0.2
    }
    params.set(name, a)
  }
  return params
}

test('F32 and Q8_0 exports load in the engine, answer, and carry the run keys and tokenizer', async () => {
  const params = randomParams(shape)
  const runRoot = `0x${'ab'.repeat(32)}`
  const manifestHash = `0x${'cd'.repeat(32)}`
  for (const type of ['f32', 'q8_0'] as const) {
    const path = join(dir, `model-${type}.gguf`)
    writeGgufFile(path, encodeGguf(exportSpec({ shape, params, tokenizer, type, name: 'test run', runRoot, manifestHash })))
    const model = await loadModel(path, { backend: 'reference' })
    try {
      assert.equal(model.transformer.config.contextLength, 64)
      assert.equal(model.transformer.config.tiedEmbeddings, true)
      const md = model.metadata
      assert.deepEqual(md.get(RUN_ROOT_KEY), { type: 'string', value: runRoot })
      assert.deepEqual(md.get(MANIFEST_HASH_KEY), { type: 'string', value: manifestHash })
      assert.deepEqual(md.get('tokenizer.ggml.tokens'), tokenizer.get('tokenizer.ggml.tokens'))
      assert.equal(model.tokenizer.decode(model.tokenizer.encode('The harbour was quiet.'), { removeSpecial: true }), 'The harbour was quiet.')
      const r = await generateAsync(model, { prompt: 'The harbour', maxTokens: 5, temperature: 0 })
      assert.equal(r.outputTokens.length, 5)
    } finally {
      model.close()
    }
    const src = openGgufSource(path)
    try {
      const init = readInitModel(src)
      assert.equal(init.config.dim, 64)
      assert.ok(init.metadata.has('tokenizer.ggml.merges'))
      const q = init.params.get('blk.0.attn_q.weight')
      assert.ok(q)
      if (type === 'f32') {
        for (const [name, v] of params) assert.deepEqual(init.params.get(name), v, name)
      } else {
        // Q8_0 keeps each value within half a quantization step of its block's scale.
        const orig = params.get('blk.0.attn_q.weight') as Float32Array
        let worst = 0
        for (let i = 0; i < orig.length; i++) worst = Math.max(worst, Math.abs(orig[i] - q[i]))
        assert.ok(worst > 0 && worst < 0.2 / 127, `max error ${worst}`)
        assert.deepEqual(init.params.get('blk.0.attn_norm.weight'), params.get('blk.0.attn_norm.weight'))
      }
    } finally {
      src.close()
    }
  }
})

test('tensor types: norms F32, matrices Q8_0 (F16 where a row is not whole blocks)', () => {
  const odd: ExportShape = { ...shape, ffDim: 80 }
  const spec = exportSpec({ shape: odd, params: randomParams(odd), tokenizer, type: 'q8_0', name: 'odd' })
  const types = new Map(spec.tensors.map((t) => [t.name, t.type]))
  assert.equal(types.get('blk.0.attn_norm.weight'), GGMLType.F32)
  assert.equal(types.get('blk.0.attn_q.weight'), GGMLType.Q8_0)
  assert.equal(types.get('blk.0.ffn_down.weight'), GGMLType.F16, 'ffn_down rows are 80 values')
  assert.equal(types.get('output.weight'), undefined, 'tied: no output.weight')
})

test('a missing or mis-sized parameter is named', () => {
  const params = randomParams(shape)
  params.delete('blk.1.ffn_up.weight')
  assert.throws(() => exportSpec({ shape, params, tokenizer, type: 'f32', name: 'x' }), (e: Error) => e.name === 'ExportError' && /blk\.1\.ffn_up\.weight is missing/.test(e.message))
  params.set('blk.1.ffn_up.weight', new Float32Array(3))
  assert.throws(() => exportSpec({ shape, params, tokenizer, type: 'f32', name: 'x' }), /blk\.1\.ffn_up\.weight has 3 values/)
})
