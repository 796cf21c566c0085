/**
 * The canonical arithmetic's promise, checked end to end on synthesized GGUF files: the same
 * receipt (and so the same trace root) across repeated runs, thread counts, prefill batch sizes
 * (one token at a time vs one batch) and kernel implementations (TypeScript reference vs WASM
 * SIMD), for every preset architecture and tensor type; golden trace roots catch any change of
 * numerics; `verify` accepts honest answers and locates tampering.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'
import { generate, loadModel, type Model, verify } from '../../src/runtime/model.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-det-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function synth(preset: string, type: string, seed = 1): string {
  const path = join(dir, `${preset}-${type}-${seed}.gguf`)
  writeGgufFile(path, encodeGguf(synthModel({ preset, type, seed })))
  return path
}

const PROMPT = 'Call me Ishmael. Some years ago, never mind how long'
const GREEDY = { prompt: PROMPT, maxTokens: 8, temperature: 0 }
const SAMPLED = { prompt: PROMPT, maxTokens: 8, temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, repeatPenalty: 1.1, seed: 42 }

async function withModel<T>(path: string, opts: Parameters<typeof loadModel>[1], fn: (m: Model) => T): Promise<T> {
  const m = await loadModel(path, opts)
  try {
    return fn(m)
  } finally {
    m.close()
  }
}

const TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q6_k', 'q4_k_m']
const PRESETS = ['tiny', 'tiny-qwen2', 'tiny-bpe']

for (const preset of PRESETS) {
  describe(`${preset}: bit-exact across implementations, threads and batch sizes`, () => {
    for (const type of TYPES) {
      test(type, async () => {
        const path = synth(preset, type)
        const runs: Record<string, string[]> = {}
        const record = (name: string, m: Model) => {
          const g = generate(m, { ...GREEDY, batchSize: name.endsWith('b1') ? 1 : 64 })
          const s = generate(m, { ...SAMPLED, batchSize: name.endsWith('b1') ? 1 : 64 })
          runs[name] = [g.receipt.traceRoot, g.receipt.outputHash, s.receipt.traceRoot, s.receipt.outputHash]
          return g
        }
        const honest = await withModel(path, { backend: 'reference' }, (m) => record('reference', m))
        await withModel(path, { backend: 'wasm', threads: 1 }, (m) => {
          record('wasm-t1', m)
          record('wasm-t1-repeat', m)
          record('wasm-t1-b1', m)
        })
        await withModel(path, { backend: 'wasm', threads: 2 }, (m) => record('wasm-t2', m))
        for (const [name, r] of Object.entries(runs)) assert.deepEqual(r, runs.reference, `${name} differs from the reference`)
        assert.equal(honest.outputTokens.length, 8)
        assert.equal(runs.reference[0], GOLDEN[`${preset}/${type}`], `golden trace root of ${preset}/${type}`)
      })
    }
  })
}

describe('verify', () => {
  let path: string
  let model: Model
  before(async () => {
    path = synth('tiny', 'q8_0', 3)
    model = await loadModel(path, { backend: 'wasm', threads: 2 })
  })
  after(() => model.close())

  test('accepts an honest greedy and an honest sampled answer', () => {
    for (const opts of [GREEDY, SAMPLED]) {
      const r = generate(model, { ...opts, maxTokens: 12 })
      const v = verify(model, { receipt: r.receipt, promptTokens: r.promptTokens, outputTokens: r.outputTokens, leaves: r.leaves })
      assert.deepEqual(v, { valid: true, problems: [], divergence: undefined })
    }
  })

  test('an answer ended by a stop string verifies, and the stop string is not in the text', () => {
    const full = generate(model, { ...GREEDY, maxTokens: 16 })
    assert.ok(full.text.length >= 10, `text too short for the test: ${JSON.stringify(full.text)}`)
    const stop = full.text.slice(6, 9)
    const r = generate(model, { ...GREEDY, maxTokens: 16, stop: [stop] })
    assert.equal(r.stopReason, 'stop')
    assert.ok(r.outputTokens.length < full.outputTokens.length)
    assert.equal(r.text, full.text.slice(0, full.text.indexOf(stop)))
    const v = verify(model, { receipt: r.receipt, promptTokens: r.promptTokens, outputTokens: r.outputTokens, leaves: r.leaves })
    assert.deepEqual(v.problems, [])
  })

  test('a forged output token is caught at its sampling step', () => {
    const r = generate(model, { ...SAMPLED, maxTokens: 12 })
    const forged = r.outputTokens.slice()
    forged[5] = (forged[5] + 1) % model.transformer.config.vocabSize
    // an honest-looking receipt for the forged answer: the cheat recomputes hashes but not the model
    const v = verify(model, {
      receipt: { ...r.receipt, outputHash: hashTokens(forged) },
      promptTokens: r.promptTokens,
      outputTokens: forged,
      leaves: r.leaves,
    })
    assert.equal(v.valid, false)
    const nPrompt = r.promptTokens.length
    assert.deepEqual(v.divergence && [v.divergence.position, v.divergence.head], [nPrompt - 1 + 5, true])
  })

  test('a tampered layer state is located at its (step, layer)', async () => {
    const r = generate(model, { ...GREEDY, maxTokens: 6 })
    const nLayer = model.transformer.config.nLayer
    const leaves = r.leaves.slice()
    const at = 4 * (nLayer + 1) + 1 // position 4, layer 1
    leaves[at] = new Uint8Array(32).fill(7)
    const { traceRoot } = await import('../../src/trace/traceTree.js')
    const { toHex } = await import('../../src/trace/merkle.js')
    const v = verify(model, { receipt: { ...r.receipt, traceRoot: toHex(traceRoot(leaves).root) }, promptTokens: r.promptTokens, outputTokens: r.outputTokens, leaves })
    assert.equal(v.valid, false)
    assert.deepEqual(v.divergence, { position: 4, layer: 1, leafIndex: at, head: false })
  })

  test('an answer cut short, a changed seed or another model are invalid', () => {
    const r = generate(model, { ...SAMPLED, maxTokens: 12 })
    const short = r.outputTokens.slice(0, 6)
    const v1 = verify(model, {
      receipt: { ...r.receipt, outputHash: hashTokens(short), nOutput: 6 },
      promptTokens: r.promptTokens,
      outputTokens: short,
    })
    assert.equal(v1.valid, false)
    assert.ok(v1.problems.some((p) => p.includes('stops after 6 tokens')), v1.problems.join('; '))
    const v2 = verify(model, { receipt: { ...r.receipt, seed: '43' }, promptTokens: r.promptTokens, outputTokens: r.outputTokens })
    assert.equal(v2.valid, false)
    const v3 = verify(model, { receipt: { ...r.receipt, modelRoot: '00'.repeat(32) }, promptTokens: r.promptTokens, outputTokens: r.outputTokens })
    assert.deepEqual(v3.problems, ['receipt is for another model (model root differs)'])
  })
})

function hashTokens(t: number[]): string {
  const b = Buffer.alloc(t.length * 4)
  t.forEach((x, i) => b.writeUInt32LE(x, i * 4))
  return createHash('sha256').update(b).digest('hex')
}

const GOLDEN: Record<string, string> = {
  'tiny/f32': '1165bb1c113dc5e2d89073c347be363347899154afdc8983245aefa6c7d321ba',
  'tiny/f16': 'f95b6fca1160c18a7b2a0b0994688e96981aa23ab1743bc2d17c22d8706fc00a',
  'tiny/bf16': '7dd8d4393f7a992eaa7a03fe6647453327c20888b4085bd9825ef212a6cd378d',
  'tiny/q8_0': '9e295d9fb6900ce93f4813ed24cb5c183cdc0aba39eda7683fbefe4ab5441feb',
  'tiny/q4_0': 'e86cd4ea36beba91cc04d2459c856e8f4a17318516a7e59c60c39ba2905d768d',
  'tiny/q4_k': 'f2c7bbb9be3573c86bbb99b96f3ce3337f6847d2132f51117cf0698b59f9e9d6',
  'tiny/q6_k': 'd50f0fc1959f6f96058e1e2b31f8c387f8116640ed71bbd8a81dff90dde51d24',
  'tiny/q4_k_m': '8b95d66601d2c8b7bf33cea859d32f3a6e890292b9e5dc3e9bc68ea6258c3578',
  'tiny-qwen2/f32': 'a0fe3e00f13f3f9cb77fa3f59295933c9a4889c005142b7510bec58018815f84',
  'tiny-qwen2/f16': '305add156bdc40e55f4b990b741464581be5475f75bba7db0eb35818914f27c6',
  'tiny-qwen2/bf16': '1ca088cb582756ba77a17f224d7417d4a7ed081fa4b2e3fbbb9c86b1b56cda1d',
  'tiny-qwen2/q8_0': 'e037455963e88757a14e156cfb4ee412ef18801ded55b3aabf0dbc5793cb93e6',
  'tiny-qwen2/q4_0': 'db0d7d90a81b19900e8077a4059e729f8f52aea0a5896fd44dff2f564901979b',
  'tiny-qwen2/q4_k': '349b0bc072300231e943f45999e7cb143265c5dbcf7170741462a652cf82ee0c',
  'tiny-qwen2/q6_k': 'fdc7f960f1f645c12df97476cbb22d1924be21b28b75ec62f8fe613f49e0ea03',
  'tiny-qwen2/q4_k_m': '40f065b2cd1b02f3971ea9d198b9249fe10ca5941f115d88d21d55274ad2136a',
  'tiny-bpe/f32': '22edaf522e5e3a7b305b6a5000f519fbab4ce0f2d80017e7167705c988487a26',
  'tiny-bpe/f16': '0fe939b4a162b7831d51d2953af637ea379c042418b2474d4076fa8706b87f63',
  'tiny-bpe/bf16': '3bf0ffbffb58b44b5bd857ce1fb29ee9449e301a4927b8a3a96da593cc89f74a',
  'tiny-bpe/q8_0': 'a953c586154f3f3cc66addb713484cf47c56cd969b0edb3cb218857606cdb38d',
  'tiny-bpe/q4_0': 'cb31e5c94ff53d5b1cb4847b5b258bbfe36aa09d57965f19bea71b3e12ccdd09',
  'tiny-bpe/q4_k': '9deffc2242f353fe6bf8b6c5c1c08516616ca8b9974261547ac1521bcf3fb2c8',
  'tiny-bpe/q6_k': '92dfafbdba915e0090ac9fbba6335325e7c72f871a0d23f7f201ad827f83b196',
  'tiny-bpe/q4_k_m': '3ab5889539f7326420bf22bb5b1fefb6f8190549507a47dcfb9c69b1078add48',
}
