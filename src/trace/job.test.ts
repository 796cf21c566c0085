/**
 * verifyJob's trace-root check when the published leaves are given: the replay skips hashing its
 * own tree only when its leaves are exactly the published list (same count, same bytes). And the
 * arithmetic: a receipt is replayed under the arithmetic it names (tessera-arith/1 or /2), so a
 * relabelled receipt, or a v2 job computed without v2's binary16 K/V rounding, fails.
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
import { fromHex, toHex } from './merkle.js'
import { executionId } from './receipt.js'
import { ARITH_V1, ARITH_V2, ARITH_VERSION } from '../engine/version.js'
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

test('arithmetic: v1 and v2 receipts verify under their own; relabelled (or a v2 job computed on the v1 path) they fail; unknown or unregistered arithmetic refused', async () => {
  const path = join(dir, 'tiny-arith.gguf')
  writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 4 })))
  const model = await loadModel(path, { threads: 1, backend: 'wasm' })
  try {
    const job = { prompt: 'It was the best of times', maxTokens: 5, temperature: 0 }
    const v1 = generate(model, { ...job, arith: ARITH_V1 })
    const v2 = generate(model, { ...job, arith: ARITH_V2 })
    assert.equal(v1.receipt.arith, ARITH_V1)
    assert.equal(v2.receipt.arith, ARITH_V2)
    assert.notEqual(v2.receipt.traceRoot, v1.receipt.traceRoot, 'the binary16 rounding changes the trace')
    const claim = (r: typeof v1) => ({ receipt: r.receipt, promptTokens: r.promptTokens, outputTokens: r.outputTokens, leaves: r.leaves })
    assert.equal(verify(model, claim(v1)).valid, true, 'a v1 receipt stays verifiable')
    assert.equal(verify(model, claim(v2)).valid, true, 'a v2 receipt verifies')
    assert.equal(verify(model, { ...claim(v2), arith: ARITH_V2 }).valid, true, 'under its registered arithmetic')

    // a v2 job's receipt relabelled v1: replayed under v1, the trace differs
    const relabelled = verify(model, { ...claim(v2), receipt: { ...v2.receipt, arith: ARITH_V1 } })
    assert.equal(relabelled.valid, false)
    assert.ok(relabelled.problems.some((p) => p.code === 'trace-root'), 'v2 relabelled v1: trace root')
    assert.ok(relabelled.divergence !== undefined)
    // a provider that runs a v2 job on the v1 path (no rounding) and signs it as v2
    const lazy = verify(model, { ...claim(v1), receipt: { ...v1.receipt, arith: ARITH_V2 } })
    assert.equal(lazy.valid, false)
    assert.ok(lazy.problems.some((p) => p.code === 'trace-root'), 'v1 work labelled v2: trace root')
    // the registered arithmetic pins it: an honest v1 receipt for a model registered v2 is refused
    assert.deepEqual(verify(model, { ...claim(v1), arith: ARITH_V2 }).problems.map((p) => p.code), ['arith-version'])
    // an arithmetic this engine does not compute: refused before any replay, one line
    const unknown = verify(model, { ...claim(v2), receipt: { ...v2.receipt, arith: 'tessera-arith/9' } })
    assert.deepEqual(unknown.problems.map((p) => p.code), ['arith-version'])
    assert.match(unknown.problems[0].message, /^receipt arithmetic tessera-arith\/9 is not one this engine computes/)
    // the execution id names the arithmetic
    const root = fromHex(v1.receipt.modelRoot)
    assert.notDeepEqual(executionId(root, ARITH_V2), executionId(root, ARITH_V1))
    assert.deepEqual(executionId(root), executionId(root, ARITH_VERSION))
  } finally {
    model.close()
  }
})
