/**
 * `tessera train` and `tessera train verify` as a user runs them (CI-sized): a few steps of a tiny
 * config trained, verified, exported, loaded by `tessera run` and answering; Ctrl-C stops at a
 * step boundary and the same command resumes to the same bytes as an uninterrupted run; a
 * tampered checkpoint makes `verify` exit 1 with one line naming the step; bad configs and flags
 * are one line naming the field.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { BUILTIN_TEXT } from '../../engine/tokenizer/index.js'
import { assertOneLine, cli, expectOneLine, startCli, waitFor } from '../../../test/support/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-train-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function config(totalSteps: number, checkpointEvery: number): object {
  return {
    name: 'cli-tiny',
    data: { sources: [{ name: 'harbour', files: ['harbour.txt'], weight: 1 }] },
    tokenizer: { vocabSize: 320 },
    train: {
      dim: 32,
      nLayer: 1,
      nHead: 2,
      nKvHead: 1,
      ffDim: 64,
      ropeBase: 10000,
      rmsEps: 1e-5,
      tiedEmbeddings: true,
      context: 32,
      batch: 2,
      lr: { peak: 0.01, warmupSteps: 2, totalSteps, min: 0.001 },
      adam: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 },
      gradClip: 1,
      seed: '11',
    },
    checkpointEvery,
  }
}

const short = join(dir, 'short.json')
const long = join(dir, 'long.json')
before(() => {
  writeFileSync(join(dir, 'harbour.txt'), BUILTIN_TEXT)
  writeFileSync(short, JSON.stringify(config(6, 4)))
  writeFileSync(long, JSON.stringify(config(150, 40)))
})

test('train, verify, and the exported model answers in tessera run', async () => {
  const out = join(dir, 'short')
  const r = await cli('train', '--config', short, '--out', out, '--backend', 'reference')
  assert.equal(r.code, 0, r.err)
  assert.match(r.out, /^manifest {2}0x[0-9a-f]{64} /m)
  const runRoot = /^run root {2}(0x[0-9a-f]{64}) \(6 steps, final loss [0-9.]+\)$/m.exec(r.out)?.[1]
  assert.ok(runRoot, r.out)
  assert.match(r.out, /model-q8_0\.gguf \([0-9.]+ MB, model root 0x[0-9a-f]{64}\)/)
  assert.match(r.err, /train step 6\/6 {2}loss [0-9.]+ {2}\d+ tok\/s {2}ETA/)

  const v = await cli('train', 'verify', out, '--backend', 'reference')
  assert.equal(v.code, 0, v.err)
  assert.match(v.out, /steps {5}0\.\.6 replayed: every loss equal, 2 checkpoints reached/)
  assert.match(v.out, /model roots equal/)
  assert.equal(/^run root {2}(0x[0-9a-f]{64})/m.exec(v.out)?.[1], runRoot)
  assert.match(v.out, /^valid$/m)

  const gen = await cli('run', '-m', join(out, 'model-q8_0.gguf'), '-p', 'The harbour', '-n', '5', '--temperature', '0', '--json')
  assert.equal(gen.code, 0, gen.err)
  assert.equal(JSON.parse(gen.out).tokens.length, 5)
  const info = await cli('model', 'info', join(out, 'model-f32.gguf'))
  assert.match(info.out, /architecture {2}llama, tied embeddings/)

  // A tampered checkpoint: exit 1, one line naming the step.
  const ckpt = join(out, 'checkpoints', 'step-00000004.bin')
  const bytes = readFileSync(ckpt)
  bytes[64] ^= 0x10
  writeFileSync(ckpt, bytes)
  const bad = await cli('train', 'verify', out, '--steps', '5..6', '--quiet', '--backend', 'reference')
  assertOneLine(bad, 1, /^tessera: step 4: checkpoint file .*step-00000004\.bin does not match the log/, 'tampered verify')
})

test('Ctrl-C stops at a step boundary; the same command resumes to the same bytes', async () => {
  const whole = join(dir, 'whole')
  const w = await cli('train', '--config', long, '--out', whole, '--backend', 'reference', '--quiet')
  assert.equal(w.code, 0, w.err)
  const out = join(dir, 'interrupted')
  const child = startCli(['train', '--config', long, '--out', out, '--backend', 'reference'])
  let err = ''
  child.stderr?.on('data', (d: string) => (err += d))
  let done = false
  void child.result.then(() => (done = true))
  await waitFor(() => done || /train step (1[0-9]|[2-9][0-9])\//.test(err), true)
  assert.equal(done, false, `ended before the signal: ${err}`)
  child.kill('SIGINT')
  const r = await child.result
  assert.equal(r.code, 130, r.err)
  const lines = r.err.trim().split('\n')
  assert.equal(lines.at(-1), 'tessera: interrupted')
  const stopped = Number(/stopped after step (\d+): run the same command again to resume/.exec(r.err)?.[1])
  assert.ok(stopped > 0 && stopped < 150, r.err)
  const again = await cli('train', '--config', long, '--out', out, '--backend', 'reference')
  assert.equal(again.code, 0, again.err)
  assert.match(again.err, new RegExp(`resuming at step ${stopped}`))
  assert.deepEqual(readFileSync(join(out, 'run.jsonl')), readFileSync(join(whole, 'run.jsonl')))
  assert.deepEqual(readFileSync(join(out, 'model-f32.gguf')), readFileSync(join(whole, 'model-f32.gguf')))
  assert.equal(again.out.split('\n')[1], w.out.split('\n')[1], 'same run root line')
})

test('bad configs and flags: one line naming the field or flag', async () => {
  const bad = join(dir, 'bad.json')
  const c = config(6, 4) as { train: { lr: Record<string, unknown> } }
  c.train.lr.peak = 'fast'
  writeFileSync(bad, JSON.stringify(c))
  await expectOneLine(['train', '--config', bad, '--out', join(dir, 'x')], 1, /^tessera: config train\.lr\.peak: expected a number in \(0, 1\), got "fast"$/)
  writeFileSync(bad, '{ "name": ')
  await expectOneLine(['train', '--config', bad, '--out', join(dir, 'x')], 1, /^tessera: config .*bad\.json: not JSON/)
  await Promise.all([
    expectOneLine(['train', '--out', join(dir, 'x')], 2, /missing --config/),
    expectOneLine(['train', '--config', short], 2, /missing --out/),
    expectOneLine(['train', '--config', join(dir, 'none.json'), '--out', join(dir, 'x')], 1, /cannot read .*none\.json/),
    expectOneLine(['train', '--config', short, '--out', join(dir, 'x'), '--backend', 'gpu'], 1, /^tessera: invalid --backend "gpu": expected auto, native, reference$/),
    expectOneLine(['train', 'verify', dir, '--steps', '9..2'], 1, /^tessera: invalid --steps "9\.\.2": expected A <= B$/),
    expectOneLine(['train', 'verify', join(dir, 'nothing')], 1, /holds no run/),
    expectOneLine(['train', 'verify'], 2, /train verify needs the run folder/),
  ])
})
