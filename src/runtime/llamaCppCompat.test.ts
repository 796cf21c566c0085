// Proves llama.cpp (through node-llama-cpp's prebuilt CPU binary) accepts the files the
// synthesizer writes, for every weight type and all three tiny presets' architectures/tokenizers.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { encodeGguf } from '../engine/gguf/write.js'
import { SYNTH_TYPES, synthModel } from '../engine/model/synth.js'
import type { Token } from 'node-llama-cpp'
import { writeGgufFile } from './ggufFile.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-llamacpp-'))
after(() => rmSync(dir, { recursive: true, force: true }))

describe('llama.cpp loads synthesized GGUF files', async () => {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp')
  const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: 'never' })

  async function generate(path: string, prompt: number[], n: number): Promise<number[]> {
    const model = await llama.loadModel({ modelPath: path })
    try {
      const ctx = await model.createContext({ contextSize: 64, threads: 1 })
      const out: number[] = []
      for await (const tok of ctx.getSequence().evaluate(prompt as Token[])) {
        out.push(tok)
        if (out.length >= n) break
      }
      await ctx.dispose()
      return out
    } finally {
      await model.dispose()
    }
  }

  for (const type of SYNTH_TYPES) {
    it(`tiny ${type}`, async () => {
      const path = join(dir, `tiny-${type}.gguf`)
      writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny', type, seed: 1 })))
      const out = await generate(path, [1, 300, 400, 500], 4)
      assert.equal(out.length, 4)
      for (const t of out) assert.ok(Number.isInteger(t) && t >= 0 && t < 1024)
    })
  }

  for (const preset of ['tiny-qwen2', 'tiny-bpe']) {
    it(`${preset} q4_k_m (BPE tokenizer, ${preset === 'tiny-qwen2' ? 'qwen2 biases, tied embeddings' : 'llama3 pre-tokenizer'})`, async () => {
      const path = join(dir, `${preset}.gguf`)
      writeGgufFile(path, encodeGguf(synthModel({ preset, type: 'q4_k_m', seed: 1 })))
      const model = await llama.loadModel({ modelPath: path })
      try {
        const toks = model.tokenize('the quick brown fox')
        assert.ok(toks.length > 0 && toks.length < 20)
        assert.equal(model.detokenize(toks), 'the quick brown fox')
      } finally {
        await model.dispose()
      }
      assert.equal((await generate(path, [10, 20, 30], 3)).length, 3)
    })
  }
})
