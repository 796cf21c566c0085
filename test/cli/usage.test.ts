/**
 * The CLI behaves like a well-made tool: --version, help for every command and group, short flags,
 * unknown words and flags rejected by name, repeatable --stop, the prompt from a file or stdin,
 * --out and model paths checked before any work, a note when --max-tokens is capped. Every error
 * is one line on stderr (exit 2 for bad usage, 1 otherwise) with no stack trace.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'
import { loadModel } from '../../src/runtime/model.js'
import { cli, expectOneLine, root, startCli } from '../support/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-usage-'))
const model = join(dir, 'tiny.gguf')
before(() => void writeGgufFile(model, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 2 }))))
after(() => rmSync(dir, { recursive: true, force: true }))

const greedy = ['-m', model, '--temperature', '0', '--json']
const job = (out: string) => JSON.parse(out) as { text: string; tokens: number[]; promptTokens: number[]; stopReason: string }

test('--version, help CMD, and group help', async () => {
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version
  const v = await cli('--version')
  assert.equal(v.code, 0)
  assert.equal(v.out.trim(), `tessera ${version}`)
  for (const [args, first] of [
    [['help', 'run'], /^Usage: tessera run /],
    [['help', 'model', 'synth'], /^Usage: tessera model synth /],
    [['help', 'chain'], /^Usage: tessera chain </],
    [['model', '--help'], /^Usage: tessera model <synth\|info\|pull\|register\|lineage>/],
    [['model', 'register', '--help'], /^Usage: tessera model register FILE\.gguf /],
    [['model', 'lineage', '--help'], /^Usage: tessera model lineage ROOT_OR_FILE /],
    [['data', '--help'], /^Usage: tessera data <add\|withdraw>/],
    [['data', 'add', '--help'], /^Usage: tessera data add FILES\.\.\. --licence ID --contributor ADDR:SHARE /],
    [['data', 'withdraw', '--help'], /^Usage: tessera data withdraw MODEL_ROOT /],
    [['chain', '--help'], /^Usage: tessera chain <start\|deploy>/],
    [['run', '-h'], /^Usage: tessera run /],
    [['help', 'train'], /^Usage: tessera train --config FILE\.json --out DIR /],
    [['train', 'verify', '--help'], /^Usage: tessera train verify DIR /],
  ] as const) {
    const r = await cli(...args)
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`)
    assert.match(r.out, first, args.join(' '))
  }
  const h = await cli('help', 'run')
  assert.match(h.out, /-m, --model <string>/)
  assert.match(h.out, /--stop <string> .*\(repeatable\)/)
})

test('unknown words and flags are rejected by name (exit 2, one line)', async () => {
  await expectOneLine(['bogus'], 2, /unknown command "bogus"/)
  await expectOneLine(['help', 'bogus'], 2, /unknown command "bogus"/)
  await expectOneLine(['model'], 2, /model needs a command: synth or info/)
  await expectOneLine(['model', 'bogus'], 2, /unknown command "model bogus"/)
  await expectOneLine(['run', '-m', model, '-p', 'hi', 'extra'], 2, /unexpected argument "extra"/)
  await expectOneLine(['run', '-m', model, '-p', 'hi', '-x'], 2, /unknown option -x/)
  await expectOneLine(['run', '-m', model, '-p', 'hi', '--colour'], 2, /unknown option --colour/)
  await expectOneLine(['run', '-m', model, '-m', model, '-p', 'hi'], 2, /option --model given twice/)
  await expectOneLine(['model', 'info', model, model], 2, /unexpected argument/)
  await expectOneLine(['run', '-m', model, '-p', 'hi', '--json=maybe'], 1, /invalid --json "maybe"/)
})

test('short flags -m -p -n, and every --stop is kept', async () => {
  const base = job((await cli('run', ...greedy, '-p', 'Call me Ishmael.', '-n', '40')).out)
  assert.equal(base.tokens.length, 40)
  const text = base.text
  const early = text.slice(3, 6)
  const late = text.slice(-4)
  assert.ok(early.trim() && late.trim(), 'stop strings from the answer')
  const run = async (...stops: string[]) => job((await cli('run', ...greedy, '-p', 'Call me Ishmael.', '-n', '40', ...stops.flatMap((s) => ['--stop', s]))).out)
  const both = await run(early, late)
  const lateOnly = await run(late)
  const earlyOnly = await run(early)
  assert.equal(both.stopReason, 'stop')
  assert.deepEqual(both.tokens, earlyOnly.tokens, 'the first --stop is not dropped')
  assert.ok(both.tokens.length < lateOnly.tokens.length)
})

test('the prompt from --prompt-file or stdin (-), one trailing newline dropped', async () => {
  const want = job((await cli('run', ...greedy, '-p', 'The whale', '-n', '2')).out).promptTokens
  writeFileSync(join(dir, 'prompt.txt'), 'The whale\n')
  assert.deepEqual(job((await cli('run', ...greedy, '--prompt-file', join(dir, 'prompt.txt'), '-n', '2')).out).promptTokens, want)
  assert.deepEqual(job((await startCli(['run', ...greedy, '-p', '-', '-n', '2'], { input: 'The whale\n' }).result).out).promptTokens, want)
  assert.deepEqual(job((await startCli(['run', ...greedy, '--prompt-file', '-', '-n', '2'], { input: 'The whale' }).result).out).promptTokens, want)
  await expectOneLine(['run', '-m', model, '-p', 'x', '--prompt-file', join(dir, 'prompt.txt')], 2, /--prompt or --prompt-file, not both/)
  await expectOneLine(['run', '-m', model, '--prompt-file', join(dir, 'none.txt')], 1, /cannot read .*none\.txt/)
  await expectOneLine(['run', '-m', model, '--prompt-file', dir], 1, /is a directory, not a file/)
  await expectOneLine(['run', '-m', model], 2, /missing --prompt/)
})

test('a note on stderr when --max-tokens is capped by the context', async () => {
  const r = await cli('run', ...greedy, '-p', 'hi', '-n', '600', '--top-k', '1')
  assert.equal(r.code, 0, r.err)
  assert.match(r.err.trim(), /^tessera: note: --max-tokens 600 capped to \d+ by the context \(512 tokens, \d+ in the prompt\)$/)
})

test('a folder given as a model is "not a file"', async () => {
  await expectOneLine(['run', '-m', dir, '-p', 'hi'], 1, /is a directory, not a file/)
  await expectOneLine(['verify', '-m', dir, '--receipt', model], 1, /is not JSON|is a directory, not a file/)
  await expectOneLine(['model', 'info', dir], 1, /is a directory, not a file/)
})

test('--out is checked before the work starts; overwriting needs --force', async () => {
  const out = join(dir, 'job.json')
  writeFileSync(out, 'an earlier job\n')
  await expectOneLine(['run', '-m', model, '-p', 'hi', '-n', '2', '--out', out], 2, /--out .*job\.json exists: pass --force/)
  assert.equal(readFileSync(out, 'utf8'), 'an earlier job\n')
  await expectOneLine(['run', '-m', model, '-p', 'hi', '--out', dir], 2, /--out .* is a directory/)
  await expectOneLine(['run', '-m', model, '-p', 'hi', '--out', join(dir, 'no/such/dir/job.json')], 1, /cannot write .*job\.json: no folder/)
  const r = await cli('run', '-m', model, '-p', 'hi', '-n', '2', '--out', out, '--force')
  assert.equal(r.code, 0, r.err)
  assert.equal(job(readFileSync(out, 'utf8')).tokens.length, 2)
})

test('model synth does not overwrite a file without --force', async () => {
  const out = join(dir, 'precious.gguf')
  writeFileSync(out, 'weights I trained')
  await expectOneLine(['model', 'synth', '--preset', 'tiny', '--out', out], 2, /precious\.gguf exists: pass --force/)
  assert.equal(readFileSync(out, 'utf8'), 'weights I trained')
  mkdirSync(join(dir, 'folder.gguf'))
  await expectOneLine(['model', 'synth', '--preset', 'tiny', '--out', join(dir, 'folder.gguf')], 2, /is a directory/)
  const r = await cli('model', 'synth', '--preset', 'tiny', '--out', out, '--force')
  assert.equal(r.code, 0, r.err)
  assert.ok(statSync(out).size > 1e6)
})

test('library errors name the option without CLI dashes; the CLI adds them', async () => {
  await assert.rejects(loadModel(model, { threads: 0 }), (e: Error) => e.name === 'InvalidParameterError' && /^invalid threads 0/.test(e.message))
  await expectOneLine(['run', '-m', model, '-p', 'hi', '--threads', '0'], 1, /^tessera: invalid --threads 0: expected an integer from 1 to 64$/)
})

/**
 * Start-up cost: help and --version must not load the heavy libraries (viem, EDR, libp2p, LevelDB)
 * nor the runtime, chain or p2p layers. A module hook makes those fail to resolve; every help must
 * still come out, and a command that does run (which needs them) must hit the hook.
 */
const HEAVY = /\/node_modules\/(viem|@nomicfoundation|libp2p|@libp2p|@chainsafe|@multiformats|classic-level|@ethereumjs|@huggingface)\/|\/src\/(runtime|chain|p2p)\//
const hook = `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context)
  if (${HEAVY}.test(r.url)) throw new Error('start-up hook refused ' + r.url)
  return r
}`
const registerHook = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)})`)}`

function withoutHeavy(nodeArgs: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', registerHook, ...nodeArgs], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  return new Promise((ok) => child.on('close', (code) => ok({ code, out, err })))
}

test('help and --version load none of the heavy libraries', async () => {
  // Every command module at once, and every command's help text from them.
  const all = await withoutHeavy([
    '--input-type=module',
    '-e',
    "const { commands } = await import('./src/cli/commands/index.ts'); const { helpText } = await import('./src/cli/args.ts'); for (const c of commands) helpText(c); console.log(commands.length)",
  ])
  assert.equal(all.code, 0, all.err)
  assert.ok(Number(all.out) >= 15, `commands: ${all.out}`)
  const main = join(root, 'src/cli/main.ts')
  const runs = await Promise.all([['--help'], ['--version'], ['help', 'run'], ['node', 'start', '--help'], ['request', '--help'], ['chain', '--help']].map((a) => withoutHeavy([main, ...a])))
  for (const r of runs) {
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^(Usage: tessera|tessera \d)/)
  }
  // The hook does refuse them: a command that runs a model loads the runtime and is stopped.
  const run = await withoutHeavy([main, 'run', '-m', model, '-p', 'hi'])
  assert.equal(run.code, 1)
  assert.match(run.err, /start-up hook refused .*\/src\/runtime\//)
})
