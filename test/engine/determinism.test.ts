/**
 * The canonical arithmetic's promise, checked end to end on synthesized GGUF files: the same
 * receipt (and so the same trace root) across repeated runs, thread counts, prefill batch sizes
 * (one token at a time vs one batch) and kernel implementations (TypeScript reference vs WASM
 * SIMD), for every preset architecture and tensor type; golden trace roots catch any change of
 * numerics (tessera-arith/1, named explicitly so a change of the default arithmetic leaves them be;
 * one tessera-arith/2 golden on tiny q8_0); `verify` accepts honest answers and locates tampering.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'
import { generate, loadModel, type Model, verify } from '../../src/runtime/model.js'
import { vectorRoot } from '../../src/trace/vector.js'
import { problemsText } from '../../src/trace/job.js'
import { ARITH_V1, ARITH_V2 } from '../../src/engine/version.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-det-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function synth(preset: string, type: string, seed = 1): string {
  const path = join(dir, `${preset}-${type}-${seed}.gguf`)
  writeGgufFile(path, encodeGguf(synthModel({ preset, type, seed })))
  return path
}

const PROMPT = 'Call me Ishmael. Some years ago, never mind how long'
const GREEDY = { prompt: PROMPT, maxTokens: 8, temperature: 0, arith: ARITH_V1 }
const SAMPLED = { prompt: PROMPT, maxTokens: 8, temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, repeatPenalty: 1.1, seed: 42, arith: ARITH_V1 }

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
/** The block types added for issue #10, on one preset (the kernels' own tests cover their shapes). */
const NEWER_TYPES = ['q5_k', 'q5_k_m', 'q4_1', 'q5_0', 'q5_1', 'q3_k_m', 'q2_k']

for (const preset of PRESETS) {
  describe(`${preset}: bit-exact across implementations, threads and batch sizes`, () => {
    for (const type of preset === 'tiny' ? [...TYPES, ...NEWER_TYPES] : TYPES) {
      test(type, async () => {
        const path = synth(preset, type)
        const runs: Record<string, string[]> = {}
        const record = (name: string, m: Model) => {
          const g = generate(m, { ...GREEDY, batchSize: name.endsWith('b1') ? 1 : 64 })
          const s = generate(m, { ...SAMPLED, batchSize: name.endsWith('b1') ? 1 : 64 })
          runs[name] = [g.receipt.traceRoot, g.receipt.outputRoot, s.receipt.traceRoot, s.receipt.outputRoot]
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

test('tessera-arith/2 (binary16 K/V), tiny q8_0: reference, WASM 1 and 2 threads, one token at a time agree; golden trace root; not v1\'s', async () => {
  const path = synth('tiny', 'q8_0')
  const v2 = { ...GREEDY, arith: ARITH_V2 }
  const roots: Record<string, string> = {}
  await withModel(path, { backend: 'reference' }, (m) => void (roots.reference = generate(m, v2).receipt.traceRoot))
  await withModel(path, { backend: 'wasm', threads: 1 }, (m) => void (roots.b1 = generate(m, { ...v2, batchSize: 1 }).receipt.traceRoot))
  await withModel(path, { backend: 'wasm', threads: 2 }, (m) => void (roots.t2 = generate(m, v2).receipt.traceRoot))
  assert.deepEqual(roots, { reference: GOLDEN_V2, b1: GOLDEN_V2, t2: GOLDEN_V2 })
  assert.notEqual(GOLDEN_V2, GOLDEN['tiny/q8_0'])
})

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
      receipt: { ...r.receipt, outputRoot: rootOf(forged) },
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
      receipt: { ...r.receipt, outputRoot: rootOf(short), nOutput: 6 },
      promptTokens: r.promptTokens,
      outputTokens: short,
    })
    assert.equal(v1.valid, false)
    assert.ok(v1.problems.some((p) => p.code === 'no-stop' && p.message.includes('stops after 6 tokens')), problemsText(v1))
    const v2 = verify(model, { receipt: { ...r.receipt, seed: '43' }, promptTokens: r.promptTokens, outputTokens: r.outputTokens })
    assert.equal(v2.valid, false)
    const v3 = verify(model, { receipt: { ...r.receipt, modelRoot: '00'.repeat(32) }, promptTokens: r.promptTokens, outputTokens: r.outputTokens })
    assert.deepEqual(v3.problems, [{ code: 'model-root', message: 'receipt is for another model (model root differs)' }])
  })

  test('leaves of another trace format are refused by name, before any replay', () => {
    const r = generate(model, { ...GREEDY, maxTokens: 4 })
    assert.equal(r.traceFormat, 2)
    const v = verify(model, { receipt: r.receipt, promptTokens: r.promptTokens, outputTokens: r.outputTokens, leaves: r.leaves, traceFormat: 1 })
    assert.equal(v.valid, false)
    assert.match(problemsText(v), /trace format 1 is not 2/)
    assert.deepEqual(v.problems.map((p) => p.code), ['trace-format'])
  })
})

/** Receipt v2's output root: the vector root of the token ids (src/trace/vector.ts), hex. */
function rootOf(t: number[]): string {
  return Buffer.from(vectorRoot(Uint32Array.from(t))).toString('hex')
}

/** tiny/q8_0, GREEDY, under tessera-arith/2. */
const GOLDEN_V2 = '8cb16031646f1755ae250d81356c4d95c2d3de9b6a41a4a82eefc5a7eefd2e9a'

// Trace format 2 (docs/TRACE.md): leaves commit vector roots of the residual, K, V and logits.
const GOLDEN: Record<string, string> = {
  'tiny/f32': '4557c76dcf499c0f9f7817136ed3ad1bcb69f1f83155bea010269d7b084dc388',
  'tiny/f16': '31585484ee3268a910640fd3acd2301136f0fea1d46b8bbbb7c867e2fd418e9f',
  'tiny/bf16': '2417f124d96219b901fc59cdc1e41d3c1ca5a1ca2f834148557b2aefd3c2bff9',
  'tiny/q8_0': 'd2df81c15b7f93439952dfd2ddb0b2a1150de5d3f628052ed348b41c43e115f8',
  'tiny/q4_0': '45f985117a41021d6017e9e5b5212b617f0214caf9f4bc020e53abdf662c9d12',
  'tiny/q4_k': '828b4fc1be460dcb8e0c28397810b3a3f92730dbffd79a03e7bf54aa3f7450ed',
  'tiny/q6_k': 'd6a0ace2970c0c10f5a42413173bd702ca649bc31c1dd759a26d4f102229bdc9',
  'tiny/q4_k_m': '0e9221c0ba9d4b7ca874dd2a21e962c3e4182e2379659e0bdcb8f452289bb925',
  'tiny/q5_k': '50c3ae20a9bea7fda4fda839d14bb99dc1f8b6ce8deebae3e92c07818552ada4',
  'tiny/q5_k_m': '65d99227bf2791e046f0757983673befbf792c007666e3a8376c23479c57e465',
  'tiny/q4_1': '6966bc13991b76d4cac7838b9cd19a95ffa4baa632affa5ba26e3cca325ce934',
  'tiny/q5_0': 'bdeb360e7f772a0b26064b3e5e03037833f29a3fbfa290feff0e61bc98359bf4',
  'tiny/q5_1': '3ddf1b24b7f15f00766d08e87269da9c500b85fd367e4f817f263fba098dc464',
  'tiny/q3_k_m': '27c82d425da95dfcdfea356a8a1371eaf88302077e3a232b5e3ba07d1fcb01ab',
  'tiny/q2_k': '109f15685c6bba9b723013dcc193249d5dcfaa679c52af3e05611e57773e615f',
  'tiny-qwen2/f32': '68f48bf44e9cee1ebb5efb490087778c0c23f6856b0de24b2cc06eea45ae84a7',
  'tiny-qwen2/f16': '62204b4d9e5eb060baad7fe8f145d8bfc300a5db8da481b153cc8c456b6b23b1',
  'tiny-qwen2/bf16': 'f0380473f58a4f970919d02928ca53f683159ce6068e007d2eddd9872509accb',
  'tiny-qwen2/q8_0': '8db29c4ca262dff4d7e5382ea9af79c3567556ef29371f3f69173d687ad42b1a',
  'tiny-qwen2/q4_0': '13e91418b0fa271639cb987d654e192f91af5a4c71350f0041cb656cff36534c',
  'tiny-qwen2/q4_k': '90407f92b5ef02b2955b2e7b62d6b98567c6a02c9c868d4d6a68e89ec2f7d0cb',
  'tiny-qwen2/q6_k': '3894f5e2bde8b7d4c613ac49148b680488d477b5e04f0fcd01cb7b05e51e4ee6',
  'tiny-qwen2/q4_k_m': 'eb6af0d2e54060f4c7af8440c1ebdb2dbe2d148b54f8839b8855ce763a1cdefa',
  'tiny-bpe/f32': '3a74f9b0dd13c292ec8f843e2a16b6124793901726476839f275b5882a423acd',
  'tiny-bpe/f16': '7f3677c06fdf4beffc6b1d2ec9aaccbbc50173fdd0e9d93b8ca3b6c4fc459ed6',
  'tiny-bpe/bf16': '88d8231cba22f55325ff73b99b597d5378b83e98472049b8b04661262469244f',
  'tiny-bpe/q8_0': '6ddc3e2432e9beebc2890796c9c3ee6a0e11b283ebcbb7f2d07abddd7d52ff66',
  'tiny-bpe/q4_0': 'eb7e6a444a73ee386c961f93ae5bfa34ab5a9643da3f3b4729778baedb44e6e5',
  'tiny-bpe/q4_k': '29090b7694541bb30ff080dbd09396fe2eebfd073f711eb6b5de4e7811e6f316',
  'tiny-bpe/q6_k': '3a049dc63148144dde8d4855c8ac3beb83be83c280ab87c18ca504290919c366',
  'tiny-bpe/q4_k_m': '8ae5fdc336664fc4e9bbf6a3094663a405439845468cdb9184b1ebfae20c4665',
}
