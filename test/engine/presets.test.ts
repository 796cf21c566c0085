/**
 * Bit-exactness on the realistic presets (SmolLM2-135M shapes in CI; TinyLlama-1.1B shapes when
 * TESSERA_LARGE_TESTS=1, since its file alone takes ~1.2 GB and over a minute to write): the same
 * trace root from the TypeScript reference, WASM on 1 and 2 threads, and one-token-at-a-time
 * prefill. Kept short (a few positions) because the reference is slow on 30 layers.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'
import { generate, loadModel, type LoadOptions } from '../../src/runtime/model.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-presets-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const cases: Array<[string, string]> = [['smol-135m', 'q8_0'], ['smol-135m', 'q4_k_m']]
if (process.env.TESSERA_LARGE_TESTS === '1') cases.push(['tinyllama-1.1b', 'q8_0'], ['tinyllama-1.1b', 'q4_k_m'])

for (const [preset, type] of cases) {
  test(`${preset} ${type}: reference, WASM 1 and 2 threads, batch 1 and batched give one trace root`, async () => {
    const path = join(dir, `${preset}-${type}.gguf`)
    writeGgufFile(path, encodeGguf(synthModel({ preset, type, seed: 1 })))
    const prompt = [1, 500, 900, 1200]
    const root = async (opts: LoadOptions, maxTokens: number, batchSize = 64) => {
      const m = await loadModel(path, opts)
      try {
        return generate(m, { prompt, maxTokens, temperature: 0.7, seed: 5, batchSize }).receipt.traceRoot
      } finally {
        m.close()
      }
    }
    // the reference is slow on 30 layers: it runs 2 output tokens, the WASM runs 2 and 3
    assert.equal(await root({ threads: 2 }, 2), await root({ backend: 'reference' }, 2), 'WASM differs from the reference')
    const roots = {
      'wasm-t1': await root({ threads: 1 }, 3),
      'wasm-t2': await root({ threads: 2 }, 3),
      'wasm-t1-b1': await root({ threads: 1 }, 3, 1),
    }
    assert.equal(roots['wasm-t2'], roots['wasm-t1'])
    assert.equal(roots['wasm-t1-b1'], roots['wasm-t1'])
  })
}
