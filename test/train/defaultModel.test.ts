/**
 * The shipped default model (models/default/, docs/TRAINING.md "The default model") is what its
 * training record says it is: CI replays the first steps of its run from the manifest (data,
 * tokenizer and config recomputed from the npm corpora) and checks every loss against the log; the
 * GGUF names the run and the manifest, and its model root is the one the run recorded; it answers
 * with a receipt that verifies; and its held-out score is the one the docs quote.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, test } from 'node:test'
import { pooled, scoreTokens } from '../../src/data/bpb.js'
import { heldOutMobyDick } from '../../src/data/corpus.js'
import { modelWindow, tokenizeForScoring, transformerLogProbs } from '../../src/data/modelScore.js'
import { toHex } from '../../src/engine/bytes.js'
import { DEFAULT_MODEL_PATH } from '../../src/runtime/defaultModel.js'
import { generate, loadModel, verify } from '../../src/runtime/model.js'
import { MANIFEST_HASH_KEY, RUN_ROOT_KEY } from '../../src/train/export.js'
import { cli } from '../support/cli.js'

const dir = dirname(DEFAULT_MODEL_PATH)
const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'))
const tmp = mkdtempSync(join(tmpdir(), 'tessera-default-'))
after(() => rmSync(tmp, { recursive: true, force: true }))

/** The shipped model's held-out bits per byte, as docs/TRAINING.md and docs/BENCHMARKS.md quote it. */
const HELD_OUT_BPB = '1.922'

test('the shipped run replays: tessera train verify models/default --steps 0..3', { timeout: 300_000 }, async () => {
  const r = await cli('train', 'verify', dir, '--steps', '0..3', '--threads', '2')
  assert.equal(r.code, 0, r.err + r.out)
  assert.match(r.out, /every loss equal/)
  assert.match(r.out, new RegExp(`run root +${run.runRoot}`))
  // A copy whose log claims another loss at step 2 is caught at that step.
  const forged = join(tmp, 'forged')
  cpSync(dir, forged, { recursive: true })
  const log = readFileSync(join(forged, 'run.jsonl'), 'utf8').split('\n')
  const rec = JSON.parse(log[1])
  rec.losses[1] = rec.losses[1] + 0.5
  log[1] = JSON.stringify(rec)
  writeFileSync(join(forged, 'run.jsonl'), log.join('\n'))
  const bad = await cli('train', 'verify', forged, '--steps', '0..3')
  assert.equal(bad.code, 1, bad.out + bad.err)
})

test("the shipped GGUF is the run's Q8_0 export, answers with a receipt that verifies, and scores what the docs say", { timeout: 300_000 }, async () => {
  const manifestHash = `0x${createHash('sha256').update(readFileSync(join(dir, 'manifest.json'))).digest('hex')}`
  assert.equal(manifestHash, run.manifestHash)
  const model = await loadModel(DEFAULT_MODEL_PATH)
  try {
    const md = model.metadata
    assert.equal(md.get(RUN_ROOT_KEY)?.value, run.runRoot)
    assert.equal(md.get(MANIFEST_HASH_KEY)?.value, run.manifestHash)
    assert.equal(`0x${toHex(model.modelRoot)}`, run.models.find((m: { type: string }) => m.type === 'q8_0').modelRoot)

    const r = generate(model, { prompt: 'Call me Ishmael.', maxTokens: 12, temperature: 0 })
    assert.equal(r.outputTokens.length, 12)
    assert.ok(verify(model, { receipt: r.receipt, promptTokens: r.promptTokens, outputTokens: r.outputTokens, leaves: r.leaves }).valid)

    // docs/TRAINING.md "The default model": held-out Moby-Dick chapters 10, 20, ..., 130.
    const scorer = transformerLogProbs(model.transformer, { bos: model.tokenizer.bos })
    const dec = new TextDecoder()
    const scores = []
    for (const d of heldOutMobyDick()) scores.push(await scoreTokens(tokenizeForScoring(model.tokenizer, dec.decode(d.bytes)), d.bytes.length, modelWindow(model.transformer), scorer))
    assert.equal(pooled(scores).bpb.toFixed(3), HELD_OUT_BPB)
  } finally {
    model.close()
  }
})
