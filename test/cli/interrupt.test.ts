/**
 * Ctrl-C stops `run`, `verify`, `model synth` and `chain start` at once with exit 130 (a blocking
 * replay is ended by the signal itself, which a shell reports as 130 too), leaving no half-written
 * file; and `run ... | head` ends quietly when the reader goes away.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'
import { type CliResult, cli, startCli, waitFor } from '../support/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-interrupt-'))
const model = join(dir, 'tiny.gguf')
before(() => void writeGgufFile(model, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 2 }))))
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

test('verify: Ctrl-C during the replay ends it at once', async () => {
  const jobFile = join(dir, 'job.json')
  const made = await cli('run', '-m', model, '-p', 'hi', '-n', '400', '--temperature', '0', '--out', jobFile, '--json')
  assert.equal(made.code, 0, made.err)
  const child = startCli(['verify', '-m', model, '--receipt', jobFile, '--backend', 'reference'])
  await new Promise((r) => setTimeout(r, 1500)) // tsx start and model load take ~1 s here, the replay ~5 s
  const sent = Date.now()
  child.kill('SIGINT')
  const r = await child.result
  assert.ok(r.code === 130 || r.signal === 'SIGINT', `verify: exit ${r.code} (${r.signal}), stdout ${r.out}`)
  assert.equal(r.out, '', 'no verdict printed')
  assert.ok(Date.now() - sent < 2000)
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
