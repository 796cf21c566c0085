/**
 * verifyJob's trace-root check when the published leaves are given: the replay skips hashing its
 * own tree only when its leaves are exactly the published list (same count, same bytes).
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeGguf } from '../engine/gguf/write.js'
import { synthModel } from '../engine/model/synth.js'
import { writeGgufFile } from '../runtime/ggufFile.js'
import { generate, loadModel, verify } from '../runtime/model.js'
import { toHex } from './merkle.js'
import { traceRoot } from './traceTree.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-job-'))
after(() => rmSync(dir, { recursive: true, force: true }))

test('published leaves: honest list verifies; a list with an extra leaf (root re-signed) fails on the trace root', async () => {
  const path = join(dir, 'tiny.gguf')
  writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 3 })))
  const model = await loadModel(path, { threads: 1, backend: 'wasm' })
  try {
    const r = generate(model, { prompt: 'Call me Ishmael.', maxTokens: 6, temperature: 0 })
    const claim = { receipt: r.receipt, promptTokens: r.promptTokens, outputTokens: r.outputTokens, leaves: r.leaves }
    assert.deepEqual(verify(model, claim), { valid: true, problems: [], divergence: undefined })
    // every replayed leaf matches its published one, but the list (and the signed root) has one more
    const longer = [...r.leaves, new Uint8Array(32).fill(9)]
    const v = verify(model, { ...claim, receipt: { ...r.receipt, traceRoot: toHex(traceRoot(longer).root) }, leaves: longer })
    assert.equal(v.valid, false)
    assert.deepEqual(v.problems.map((p) => p.code), ['trace-root'])
    assert.equal(v.divergence, undefined)
    // the same root without published leaves: the replayed root is compared directly
    const bare = verify(model, { ...claim, receipt: { ...r.receipt, traceRoot: toHex(traceRoot(longer).root) }, leaves: undefined })
    assert.deepEqual(bare.problems.map((p) => p.code), ['trace-root'])
  } finally {
    model.close()
  }
})
