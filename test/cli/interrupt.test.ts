/**
 * Ctrl-C stops `run` (during a long prompt's prefill, between tokens), `verify` (during
 * the replay), `model synth` and `chain start` at once with exit 130 and one line, leaving no
 * half-written file; and `run ... | head` ends quietly when the reader goes away. Long prompts and
 * replays show their progress on stderr.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'
import { type CliResult, cli, startCli, waitFor } from '../support/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-interrupt-'))
const model = join(dir, 'tiny.gguf')
/** About 400 tokens of the tiny model's tokenizer: over the 256 that get a progress line. */
const longPrompt = join(dir, 'long.txt')
before(() => {
  writeGgufFile(model, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 2 })))
  writeFileSync(longPrompt, 'The whale swam far. '.repeat(36))
})
after(() => rmSync(dir, { recursive: true, force: true }))

/** Sends SIGINT once `ready` holds; returns the result and how long the exit took after the signal. */
async function interrupt(args: string[], ready: (out: string, err: string) => boolean): Promise<CliResult & { ms: number }> {
  const child = startCli(args)
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: string) => (out += d))
  child.stderr?.on('data', (d: string) => (err += d))
  let exited: CliResult | undefined
  void child.result.then((r) => (exited = r))
  await waitFor(() => exited !== undefined || ready(out, err), true)
  assert.equal(exited, undefined, `${args.join(' ')} ended before it was interrupted: ${exited?.err}`)
  const sent = Date.now()
  child.kill('SIGINT')
  const r = await child.result
  return { ...r, ms: Date.now() - sent }
}

function assertInterrupted(r: CliResult & { ms: number }, what: string): void {
  assert.equal(r.code, 130, `${what}: exit ${r.code} (${r.signal}), stderr:\n${r.err}`)
  assert.equal(r.err.trim().split('\n').at(-1), 'tessera: interrupted', what)
  assert.doesNotMatch(r.err, /\bat .*\.(ts|js):\d+/, what)
  assert.ok(r.ms < 2000, `${what}: took ${r.ms} ms after SIGINT`)
}

test('run: Ctrl-C between tokens exits 130 at once', async () => {
  // The plain TypeScript backend makes 500 tokens take several seconds.
  const r = await interrupt(['run', '-m', model, '-p', 'hi', '-n', '500', '--backend', 'reference'], (out) => out.length > 10)
  assertInterrupted(r, 'run')
})

test('run -p -: Ctrl-C while waiting for stdin ends it at once', async () => {
  const child = startCli(['run', '-m', model, '-p', '-'], { holdStdin: true })
  // Nothing shows that the read has begun: wait past tsx's start (~1 s here). Should the signal
  // still come first under load, Node's default action ends the process, which passes too.
  await new Promise((r) => setTimeout(r, 3000))
  const sent = Date.now()
  child.kill('SIGINT')
  const r = await child.result
  assert.ok(r.code === 130 || r.signal === 'SIGINT', `exit ${r.code} (${r.signal}), stderr:\n${r.err}`)
  if (r.code === 130) assert.equal(r.err.trim(), 'tessera: interrupted')
  assert.ok(Date.now() - sent < 2000, 'a pending stdin read does not hold the exit')
})

test("run: Ctrl-C during a long prompt's prefill exits 130 at once", async () => {
  // 16-token batches on the plain TypeScript backend: the prefill takes seconds, a batch a fraction
  const r = await interrupt(['run', '-m', model, '--prompt-file', longPrompt, '-n', '4', '--backend', 'reference', '--batch-size', '16'], (_, err) => err.includes('prompt:'))
  assertInterrupted(r, 'run (prefill)')
  assert.equal(r.out, '', 'no token was generated')
})

test('run: a long prompt reports its prefill progress on stderr, rising to the total', async () => {
  const r = await cli('run', '-m', model, '--prompt-file', longPrompt, '-n', '2', '--temperature', '0', '--batch-size', '32')
  assert.equal(r.code, 0, r.err)
  const seen = [...r.err.matchAll(/^ {2}prompt: (\d+) \/ (\d+) tokens$/gm)].map((m) => [Number(m[1]), Number(m[2])])
  assert.ok(seen.length >= 2, `progress lines expected, stderr:\n${r.err}`)
  const total = seen[0][1]
  assert.ok(total > 256, `${total} prompt tokens`)
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] > seen[i - 1][0] && seen[i][1] === total, `rising counts: ${JSON.stringify(seen)}`)
  assert.equal(seen.at(-1)![0], total, 'the last line is the whole prompt')
  // a short prompt prints none
  const short = await cli('run', '-m', model, '-p', 'hi', '-n', '2')
  assert.equal(short.code, 0, short.err)
  assert.doesNotMatch(short.err, /prompt:/)
})

test('verify: Ctrl-C during the replay exits 130 at once with one line', async () => {
  const jobFile = join(dir, 'job.json')
  const made = await cli('run', '-m', model, '-p', 'hi', '-n', '400', '--temperature', '0', '--out', jobFile, '--json')
  assert.equal(made.code, 0, made.err)
  // the replay of ~400 positions in batches of 16 takes seconds on the plain backend; its first progress line comes at a quarter
  const r = await interrupt(['verify', '-m', model, '--receipt', jobFile, '--backend', 'reference', '--batch-size', '16'], (_, err) => err.includes('replay:'))
  assertInterrupted(r, 'verify')
  assert.equal(r.out, '', 'no verdict printed')
})

test('model synth: Ctrl-C exits 130 and leaves no file behind', async () => {
  const out = join(dir, 'smol.gguf')
  const r = await interrupt(['model', 'synth', '--preset', 'smol-135m', '--out', out], () => readdirSync(dir).some((f) => f.startsWith('smol.gguf.tmp-')))
  assertInterrupted(r, 'model synth')
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('smol')),
    [],
  )
})

test('chain start: Ctrl-C closes the chain and exits 130', async () => {
  const data = join(dir, 'chain')
  const r = await interrupt(['chain', 'start', '--port', '0', '--data-dir', data, '--accounts', '2'], (out) => out.includes('development accounts'))
  assertInterrupted(r, 'chain start')
  assert.ok(existsSync(join(data, 'journal.jsonl')))
})

test('run | head: a reader that goes away ends the command quietly', async () => {
  const child = startCli(['run', '-m', model, '-p', 'hi', '-n', '500', '--backend', 'reference'])
  let got = ''
  child.stdout?.on('data', (d: string) => {
    got += d
    if (got.length > 10) child.stdout?.destroy()
  })
  const r = await child.result
  assert.equal(r.code, 0, r.err)
  assert.equal(r.err, '')
})
