/**
 * Generation, verification and loading stop between steps when their AbortSignal fires (a
 * timer, Ctrl-C), promptly and with the signal's reason, and leave the model ready for the next
 * job; long prompts and replays report rising progress that ends at the total.
 *
 * The aborts below are scheduled with `setImmediate` from a progress callback: they can only land
 * if the work really yields to the event loop between steps, which is what a Ctrl-C handler or a
 * timer needs.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { encodeGguf } from '../engine/gguf/write.js'
import { synthModel } from '../engine/model/synth.js'
import { writeGgufFile } from './ggufFile.js'
import { type GenerateResult, generate, generateAsync, loadModel, type Model, verify, verifyAsync } from './model.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-abort-'))
const path = join(dir, 'tiny.gguf')
let model: Model
let prompt: number[]
/** The uninterrupted answer every run after an abort must reproduce. */
let expected: GenerateResult
const JOB = { maxTokens: 6, temperature: 0.8, topK: 40, topP: 0.95, seed: 5n, batchSize: 16 } as const

before(async () => {
  writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 3 })))
  model = await loadModel(path)
  prompt = model.tokenizer.encode('The whale swam far. '.repeat(30))
  expected = generate(model, { prompt, ...JOB })
})
after(() => {
  model?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Aborts `c` on the next turn of the event loop; returns when that happened (ms). */
function abortSoon(c: AbortController): { at: number } {
  const when = { at: Number.NaN }
  setImmediate(() => {
    when.at = performance.now()
    c.abort()
  })
  return when
}

function assertSameAnswer(r: GenerateResult, what: string): void {
  assert.deepEqual(r.outputTokens, expected.outputTokens, what)
  assert.equal(r.receipt.traceRoot, expected.receipt.traceRoot, what)
}

test('prefill progress rises batch by batch to the prompt length', () => {
  const seen: Array<[number, number]> = []
  const r = generate(model, { prompt, ...JOB, onPrefill: (done, total) => seen.push([done, total]) })
  assertSameAnswer(r, 'a progress callback changes nothing')
  assert.ok(prompt.length > 256, `${prompt.length} prompt tokens`)
  assert.equal(seen.length, Math.ceil(prompt.length / JOB.batchSize))
  for (let i = 0; i < seen.length; i++) {
    assert.equal(seen[i][1], prompt.length)
    assert.ok(seen[i][0] > (i ? seen[i - 1][0] : 0), `rising: ${seen.map((s) => s[0])}`)
  }
  assert.equal(seen.at(-1)![0], prompt.length)
})

test('generateAsync aborted mid-prefill rejects at the next batch; the model then answers as before', async () => {
  const c = new AbortController()
  const seen: number[] = []
  let when = { at: Number.NaN }
  const tokens: number[] = []
  const run = generateAsync(model, {
    prompt, ...JOB, signal: c.signal,
    onPrefill: (done) => {
      seen.push(done)
      if (seen.length === 2) when = abortSoon(c)
    },
    onText: () => tokens.push(1),
  })
  await assert.rejects(run, { name: 'AbortError' })
  const ms = performance.now() - when.at
  assert.deepEqual(seen, [16, 32], 'stopped right after the batch during which the abort came')
  assert.equal(tokens.length, 0)
  assert.ok(ms < 1000, `${ms} ms from the abort to the rejection`)
  assertSameAnswer(await generateAsync(model, { prompt, ...JOB }), 'after an aborted prefill')
})

test('generateAsync aborted mid-decode rejects after the current token; a timeout signal works too', async () => {
  const c = new AbortController()
  let texts = 0
  let when = { at: Number.NaN }
  const run = generateAsync(model, {
    prompt: [1, 300, 400], maxTokens: 200, temperature: 0, signal: c.signal,
    onText: () => {
      if (++texts === 3) when = abortSoon(c)
    },
  })
  await assert.rejects(run, { name: 'AbortError' })
  assert.equal(texts, 3, 'no token after the abort')
  assert.ok(performance.now() - when.at < 1000)

  // a timer: 200 plain-TypeScript tokens take seconds, the signal fires after 50 ms
  const ref = await loadModel(path, { backend: 'reference' })
  try {
    const t0 = performance.now()
    await assert.rejects(generateAsync(ref, { prompt: [1, 300, 400], maxTokens: 200, temperature: 0, signal: AbortSignal.timeout(50) }), { name: 'TimeoutError' })
    assert.ok(performance.now() - t0 < 2000, 'stopped within a token or two of the timeout')
  } finally {
    ref.close()
  }
  assertSameAnswer(await generateAsync(model, { prompt, ...JOB }), 'after an aborted decode')
})

test('synchronous generate and verify stop when a callback aborts, with the signal\'s reason', () => {
  const c = new AbortController()
  class Stop extends Error {
    override name = 'Stop'
  }
  assert.throws(() => generate(model, { prompt, ...JOB, signal: c.signal, onPrefill: (done) => done >= 48 && c.abort(new Stop('enough')) }), { name: 'Stop' })
  const claim = { receipt: expected.receipt, promptTokens: prompt, outputTokens: expected.outputTokens }
  const v = new AbortController()
  let last = 0
  assert.throws(() => verify(model, claim, { signal: v.signal, onProgress: (done) => { last = done; if (done >= 128) v.abort() } }), { name: 'AbortError' })
  assert.equal(last, 128)
  assert.ok(verify(model, claim).valid, 'the model verifies after an aborted replay')
})

test('verifyAsync reports rising progress to the whole replay, and stops between batches when aborted', async () => {
  const claim = { receipt: expected.receipt, promptTokens: prompt, outputTokens: expected.outputTokens, text: expected.text }
  const seen: number[] = []
  const total = prompt.length + expected.outputTokens.length - 1
  const v = await verifyAsync(model, claim, { batchSize: 32, onProgress: (done, all) => { assert.equal(all, total); seen.push(done) } })
  assert.ok(v.valid, JSON.stringify(v.problems))
  assert.deepEqual(seen, Array.from({ length: Math.ceil(total / 32) }, (_, i) => Math.min(total, 32 * (i + 1))))

  const c = new AbortController()
  let calls = 0
  let when = { at: Number.NaN }
  const run = verifyAsync(model, claim, { batchSize: 32, signal: c.signal, onProgress: () => { if (++calls === 3) when = abortSoon(c) } })
  await assert.rejects(run, { name: 'AbortError' })
  assert.equal(calls, 3)
  assert.ok(performance.now() - when.at < 1000)
})

test('loadModel aborted between tensors rejects, and its backend\'s worker threads end', async (t) => {
  await assert.rejects(loadModel(path, { signal: AbortSignal.abort() }), { name: 'AbortError' }, 'an aborted signal loads nothing')
  if (!existsSync('/proc/self/task')) return t.skip('counting threads needs /proc (Linux)')
  const threads = () => readdirSync('/proc/self/task').length
  const before = threads()
  const c = new AbortController()
  let done = 0
  let total = 0
  const load = loadModel(path, {
    threads: 3, signal: c.signal,
    onProgress: (d, n) => {
      done = d
      total = n
      if (d === 2) abortSoon(c)
    },
  })
  await assert.rejects(load, { name: 'AbortError' })
  assert.ok(done === 2 && total > 2, `stopped after tensor ${done} of ${total}`)
  // the two kernel workers were terminated by backend.close()
  const until = Date.now() + 5000
  while (threads() > before && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
  assert.equal(threads(), before, 'no thread left from the aborted load')
})
