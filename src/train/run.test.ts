/**
 * Training runs (src/train/run.ts) on a tiny config with the reference trainer: the manifest and
 * log are a pure function of the config; a run stopped mid-way and resumed writes exactly the
 * bytes of an uninterrupted one; `verifyRun` replays any range and finds a tampered checkpoint
 * file, log record, batch or manifest at the first differing step; fine-tuning from an exported
 * GGUF keeps its tokenizer; bad configs name the field.
 */
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { BUILTIN_TEXT } from '../engine/tokenizer/index.js'
import { openGgufSource } from '../runtime/ggufFile.js'
import { readInitModel } from './export.js'
import {
  batchTokens,
  checkpointFile,
  LOG_FILE,
  type LogRecord,
  MANIFEST_FILE,
  parseRunSpec,
  prepareRun,
  type RunSpec,
  recordHash,
  recordLine,
  SUMMARY_FILE,
  trainRun,
  verifyRun,
} from './run.js'

const base = mkdtempSync(join(tmpdir(), 'tessera-run-'))
after(() => rmSync(base, { recursive: true, force: true }))

const config = {
  name: 'tiny',
  data: {
    sources: [
      { name: 'harbour', files: ['a.txt'], weight: 3 },
      { name: 'shouted', files: ['b.txt'], weight: 1 },
    ],
  },
  tokenizer: { vocabSize: 320 },
  train: {
    dim: 32, nLayer: 2, nHead: 4, nKvHead: 2, ffDim: 64, ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: true, context: 16, batch: 2,
    lr: { peak: 0.01, warmupSteps: 2, totalSteps: 7, min: 0.001 }, adam: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, seed: '7',
  },
  checkpointEvery: 3,
}
const spec: RunSpec = parseRunSpec(config)
const opts = { spec, baseDir: base, backend: 'reference' as const }
const whole = join(base, 'whole')

before(async () => {
  writeFileSync(join(base, 'a.txt'), BUILTIN_TEXT)
  writeFileSync(join(base, 'b.txt'), BUILTIN_TEXT.toUpperCase())
  await trainRun({ ...opts, dir: whole })
})

const files = (dir: string) => readdirSync(join(dir, 'checkpoints')).sort()
const read = (dir: string, f: string) => readFileSync(join(dir, f))

test('a run writes manifest, chained log, checkpoints every K steps and the last, exports, run root', async () => {
  const lines = read(whole, LOG_FILE).toString().trim().split('\n')
  const records = lines.map((l) => JSON.parse(l) as LogRecord)
  assert.deepEqual(
    records.map((r) => r.step),
    [0, 3, 6, 7],
  )
  assert.deepEqual(
    records.map((r) => r.losses.length),
    [0, 3, 3, 1],
  )
  assert.equal(records[0].prev, JSON.parse(read(whole, SUMMARY_FILE).toString()).manifestHash)
  for (let i = 1; i < lines.length; i++) assert.equal(records[i].prev, recordHash(lines[i - 1]))
  assert.deepEqual(files(whole), ['step-00000000.bin', 'step-00000003.bin', 'step-00000006.bin', 'step-00000007.bin'])
  const summary = JSON.parse(read(whole, SUMMARY_FILE).toString())
  assert.equal(summary.runRoot, recordHash(lines[lines.length - 1]))
  assert.equal(summary.steps, 7)
  assert.deepEqual(
    summary.models.map((m: { type: string }) => m.type),
    ['f32', 'q8_0'],
  )
  // The manifest names everything the run depends on.
  const manifest = JSON.parse(read(whole, MANIFEST_FILE).toString())
  assert.equal(manifest.data.length, 2)
  assert.match(manifest.data[0].root, /^0x[0-9a-f]{64}$/)
  assert.match(manifest.tokenizer.root, /^0x[0-9a-f]{64}$/)
  assert.equal(manifest.train.vocabSize, 320)
  assert.equal(manifest.arithmetic, 'tessera-arith/1')
})

test('batches are a function of (manifest, step), drawn by weight from both sources', async () => {
  const inputs = await prepareRun(spec, { baseDir: base })
  const again = await prepareRun(spec, { baseDir: base })
  assert.equal(inputs.manifestText, again.manifestText)
  assert.deepEqual(batchTokens(inputs.train, inputs.sources, 5), batchTokens(again.train, again.sources, 5))
  assert.notDeepEqual(batchTokens(inputs.train, inputs.sources, 5), batchTokens(inputs.train, inputs.sources, 6))
  // Each sequence is a window of one source; over many draws the 3:1 weights show.
  const [a, b] = inputs.sources.map((s) => Array.from(s.tokens).join(','))
  const counts = [0, 0]
  const seq = inputs.train.context + 1
  for (let step = 0; step < 200; step++) {
    const t = batchTokens(inputs.train, inputs.sources, step)
    for (let j = 0; j < inputs.train.batch; j++) {
      const w = Array.from(t.subarray(j * seq, (j + 1) * seq)).join(',')
      const inA = a.includes(w)
      assert.ok(inA || b.includes(w), 'a window of a source')
      counts[inA ? 0 : 1]++
    }
  }
  assert.ok(counts[0] > 2 * counts[1] && counts[0] < 4 * counts[1], `3:1 weights: ${counts}`)
})

test('stopped mid-segment or at a checkpoint and resumed: the same bytes as an uninterrupted run', async () => {
  for (const stop of [4, 3]) {
    const dir = join(base, `resumed-${stop}`)
    const first = await trainRun({ ...opts, dir, stopAfter: stop })
    assert.equal(first.interrupted, true)
    const second = await trainRun({ ...opts, dir })
    assert.equal(second.resumedFrom, stop)
    assert.equal(second.interrupted, false)
    assert.deepEqual(read(dir, LOG_FILE), read(whole, LOG_FILE), `log after a stop at ${stop}`)
    assert.deepEqual(files(dir), files(whole))
    for (const f of files(dir)) assert.deepEqual(read(dir, `checkpoints/${f}`), read(whole, `checkpoints/${f}`), f)
    assert.deepEqual(read(dir, 'model-q8_0.gguf'), read(whole, 'model-q8_0.gguf'))
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('resume')), [], 'resume files removed')
  }
})

test('a folder holding another run, or a file, is refused', async () => {
  const other = parseRunSpec({ ...config, train: { ...config.train, seed: '8' } })
  await assert.rejects(trainRun({ ...opts, spec: other, dir: whole }), (e: Error) => e.name === 'RunDirError' && /holds another run/.test(e.message))
  await assert.rejects(trainRun({ ...opts, dir: join(base, 'a.txt') }), (e: Error) => e.name === 'RunDirError' && /a\.txt is a file, not a run folder/.test(e.message))
  // A folder another live process trains in is refused; a lock left by a dead one is taken over.
  const locked = join(base, 'locked')
  await trainRun({ ...opts, dir: locked, stopAfter: 1 })
  writeFileSync(join(locked, 'lock'), `${process.ppid}\n`)
  await assert.rejects(trainRun({ ...opts, dir: locked }), (e: Error) => e.name === 'RunDirError' && new RegExp(`is in use by process ${process.ppid}`).test(e.message))
  writeFileSync(join(locked, 'lock'), '2147483646\n')
  const r = await trainRun({ ...opts, dir: locked })
  assert.equal(r.resumedFrom, 1)
  assert.deepEqual(read(locked, LOG_FILE), read(whole, LOG_FILE))
  assert.equal(existsSync(join(locked, 'lock')), false, 'the lock is released')
  // A crash in the middle of appending a record: the partial line is dropped and redone.
  const log = read(locked, LOG_FILE).toString()
  writeFileSync(join(locked, LOG_FILE), log.slice(0, log.length - 20))
  await trainRun({ ...opts, dir: locked })
  assert.deepEqual(read(locked, LOG_FILE), read(whole, LOG_FILE))
})

test('verify replays all of a run, or a range from the checkpoint before it', async () => {
  const all = await verifyRun({ dir: whole, backend: 'reference' })
  assert.equal(all.from, 0)
  assert.equal(all.to, 7)
  assert.equal(all.exportsChecked, true)
  assert.equal(all.checkpoints, 3)
  const part = await verifyRun({ dir: whole, from: 4, to: 5, backend: 'reference' })
  assert.deepEqual([part.from, part.to, part.checkpoints, part.exportsChecked], [3, 5, 0, false])
  const first = await verifyRun({ dir: whole, from: 0, to: 2, backend: 'reference' })
  assert.deepEqual([first.from, first.to, first.checkpoints], [0, 2, 0])
})

/** A copy of the whole run to tamper with. */
function copy(name: string): string {
  const dir = join(base, name)
  cpSync(whole, dir, { recursive: true })
  return dir
}

/** Rewrites log record `index` with `edit`, then re-chains every later record (a careful forger). */
function forge(dir: string, index: number, edit: (r: LogRecord) => void): void {
  const lines = read(dir, LOG_FILE).toString().trim().split('\n')
  const records = lines.map((l) => JSON.parse(l) as LogRecord)
  edit(records[index])
  for (let i = index; i < records.length; i++) {
    if (i > 0) records[i].prev = recordHash(recordLine(records[i - 1]))
  }
  writeFileSync(join(dir, LOG_FILE), `${records.map(recordLine).join('\n')}\n`)
}

const verifyError = async (dir: string, pattern: RegExp, range: { from?: number; to?: number } = {}) =>
  assert.rejects(verifyRun({ dir, backend: 'reference', ...range }), (e: Error & { step?: number }) => {
    assert.equal(e.name, 'RunVerifyError', e.message)
    assert.match(e.message, pattern)
    assert.ok(!e.message.includes('\n'), 'one line')
    return true
  })

test('verify: a changed byte in a checkpoint file is found at its step', async () => {
  const dir = copy('bad-checkpoint')
  const f = checkpointFile(dir, 3)
  const bytes = readFileSync(f)
  bytes[100] ^= 1
  writeFileSync(f, bytes)
  await verifyError(dir, /^step 3: checkpoint file .*step-00000003\.bin does not match the log/)
  await verifyError(dir, /^step 3: checkpoint file/, { from: 4, to: 7 })
})

test('verify: an edited log record breaks the chain; a re-chained forgery is found by replay', async () => {
  const dir = copy('bad-log')
  const lines = read(dir, LOG_FILE).toString().split('\n')
  lines[1] = lines[1].replace(/"losses":\[([0-9.]+)/, (_, x) => `"losses":[${Number(x) + 0.5}`)
  writeFileSync(join(dir, LOG_FILE), lines.join('\n'))
  await verifyError(dir, /^run\.jsonl line 3 \(step 6\): prev 0x[0-9a-f]+ is not the hash of line 2/)

  const forged = copy('forged-loss')
  forge(forged, 2, (r) => {
    r.losses[1] += 0.25
  })
  await verifyError(forged, /^step 5: loss [0-9.]+ differs from the log's/)
  await verifyError(forged, /^step 5: loss/, { from: 4, to: 5 })

  const forgedRoot = copy('forged-root')
  forge(forgedRoot, 2, (r) => {
    r.batchRoot = `0x${'00'.repeat(32)}`
  })
  await verifyError(forgedRoot, /^step 6: batch root of steps 4\.\.6 is 0x[0-9a-f]+, the log says 0x0{64}/)
})

test('verify: a run that trained on another batch than the manifest gives is found at that step', async () => {
  const dir = join(base, 'cheat')
  await trainRun({
    ...opts,
    dir,
    tamperBatch: (step, tokens) => {
      if (step === 4) tokens[5] = (tokens[5] + 1) % 320
      return tokens
    },
  })
  await verifyError(dir, /^step 5: loss .* differs from the log's/)
  // Steps before it still check out.
  const early = await verifyRun({ dir, from: 0, to: 3, backend: 'reference' })
  assert.equal(early.to, 3)
})

test('verify: an edited manifest names the field that differs', async () => {
  const dir = copy('bad-manifest')
  const m = JSON.parse(read(dir, MANIFEST_FILE).toString())
  m.data[1].root = `0x${'11'.repeat(32)}`
  writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(m))
  await verifyError(dir, /^manifest: data\[1\]\.root \(recorded "0x1{64}", recomputed "0x[0-9a-f]{64}"\)/)
})

test('verify: a GGUF export naming another run is found', async () => {
  const dir = copy('bad-gguf-key')
  const runRoot: string = JSON.parse(read(dir, SUMMARY_FILE).toString()).runRoot
  const path = join(dir, 'model-q8_0.gguf')
  const bytes = readFileSync(path)
  const at = bytes.indexOf(Buffer.from(runRoot))
  assert.ok(at > 0)
  bytes.write('0x'.padEnd(66, 'e'), at)
  writeFileSync(path, bytes)
  await verifyError(dir, /model-q8_0\.gguf: tessera\.train\.run_root is "0xe{64}", expected 0x/)
})

test('fine-tuning from an exported GGUF keeps its tokenizer and shape', async () => {
  const init = join(whole, 'model-f32.gguf')
  const ftConfig = { ...config, tokenizer: undefined, train: { ...config.train, lr: { ...config.train.lr, totalSteps: 2 } } } as Record<string, unknown>
  delete ftConfig.tokenizer
  for (const k of ['dim', 'nLayer', 'nHead', 'nKvHead', 'ffDim', 'ropeBase', 'rmsEps', 'tiedEmbeddings']) delete (ftConfig.train as Record<string, unknown>)[k]
  const ft = parseRunSpec(ftConfig, true)
  const dir = join(base, 'finetune')
  const r = await trainRun({ ...opts, spec: ft, dir, init })
  assert.equal(r.summary.steps, 2)
  const manifest = JSON.parse(read(dir, MANIFEST_FILE).toString())
  assert.equal(manifest.init.modelRoot, JSON.parse(read(whole, SUMMARY_FILE).toString()).models[0].modelRoot)
  assert.equal(manifest.tokenizer.root, JSON.parse(read(whole, MANIFEST_FILE).toString()).tokenizer.root)
  assert.equal(manifest.train.dim, 32)
  // Step 0 of the fine-tune is the exported model's weights.
  const src = openGgufSource(init)
  const before = readInitModel(src).params
  src.close()
  const s = openGgufSource(join(dir, 'model-f32.gguf'))
  const afterTwo = readInitModel(s).params
  s.close()
  assert.notDeepEqual(afterTwo.get('blk.0.attn_q.weight'), before.get('blk.0.attn_q.weight'))
  assert.deepEqual(afterTwo.get('tokenizer'), undefined)
  const v = await verifyRun({ dir, backend: 'reference' })
  assert.equal(v.exportsChecked, true)
  // A fine-tuning config may not set its own tokenizer, nor a shape other than the model's.
  assert.throws(() => parseRunSpec({ ...ftConfig, tokenizer: { vocabSize: 400 } }, true), /config tokenizer: a fine-tuning run keeps/)
  const wrongDim = parseRunSpec({ ...ftConfig, train: { ...(ftConfig.train as object), dim: 64 } }, true)
  await assert.rejects(trainRun({ ...opts, spec: wrongDim, dir: join(base, 'ft-bad'), init }), /config train\.dim: 64 differs from the --init model's 32/)
})

test('bad configs name the field', () => {
  // biome-ignore lint/suspicious/noExplicitAny: each case edits a different field of the config
  type Loose = Record<string, any>
  const bad = (edit: (c: Loose) => void, pattern: RegExp) => {
    const c = structuredClone(config) as Loose
    edit(c)
    assert.throws(
      () => parseRunSpec(c),
      (e: Error) => e.name === 'RunConfigError' && pattern.test(e.message),
    )
  }
  bad((c) => delete c.train.lr.peak, /^config train\.lr\.peak: missing/)
  bad((c) => (c.train.lr.peak = -1), /^config train\.lr\.peak: expected a number in \(0, 1\), got -1/)
  bad((c) => (c.train.seed = 7), /^config train\.seed: expected a decimal string/)
  bad((c) => (c.data.sources[1].weight = 0.5), /^config data\.sources\[1\]\.weight: expected an integer/)
  bad((c) => (c.data.sources[0] = { corpus: 'bible', weight: 1 }), /^config data\.sources\[0\]\.corpus: expected one of moby-dick, sotu/)
  bad((c) => (c.train.colour = 'red'), /^config train\.colour: unknown field/)
  bad((c) => (c.tokenizer.vocabSize = 100), /^config tokenizer\.vocabSize: expected an integer from 300/)
  bad((c) => (c.train.nHead = 3), /^config train\.nHead: 3 heads must split dim 32/)
  bad((c) => (c.checkpointEvery = 0), /^config checkpointEvery: expected an integer from 1/)
  bad((c) => (c.train.lr.warmupSteps = 8), /^config train\.lr\.warmupSteps: 8 is more than lr\.totalSteps 7/)
  bad((c) => (c.train.vocabSize = 999), /^config train\.vocabSize: 999 differs from tokenizer\.vocabSize 320/)
})
