/**
 * Bad input gives one clear line naming the problem and a non-zero exit, never a stack trace;
 * and a good `run --json` / `verify` round trip exits 0, a forged one exits 1.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { toHex } from '../../src/trace/merkle.js'
import { devAccount } from '../../src/chain/evm/edr.js'
import { devnetDomain, signJob } from '../../src/cli/commands/signedReceipt.js'
import { tokensRoot } from '../../src/trace/receipt.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'))
const model = join(dir, 'tiny.gguf')

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', timeout: 120_000 })
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr }
}

before(() => assert.equal(cli('model', 'synth', '--preset', 'tiny', '--type', 'q8_0', '--seed', '2', '--out', model).code, 0))
after(() => rmSync(dir, { recursive: true, force: true }))

function expectOneLine(args: string[], pattern: RegExp, code = 1) {
  const r = cli(...args)
  assert.equal(r.code, code, `${args.join(' ')}: exit ${r.code}, stderr ${r.err}`)
  const lines = r.err.trim().split('\n')
  assert.equal(lines.length, 1, `one line expected, got:\n${r.err}`)
  assert.match(lines[0], pattern)
  assert.doesNotMatch(r.err, /\bat .*\.(ts|js):\d+/)
}

test('missing, truncated and non-GGUF model files', () => {
  expectOneLine(['run', '--model', join(dir, 'nope.gguf'), '--prompt', 'hi'], /cannot read .*nope\.gguf/)
  writeFileSync(join(dir, 'trunc.gguf'), readFileSync(model).subarray(0, 1000))
  expectOneLine(['run', '--model', join(dir, 'trunc.gguf'), '--prompt', 'hi'], /truncated GGUF/)
  writeFileSync(join(dir, 'junk.gguf'), 'not a model at all')
  expectOneLine(['model', 'info', join(dir, 'junk.gguf')], /not a GGUF file/)
})

test('invalid parameters are named', () => {
  expectOneLine(['run', '--model', model, '--prompt', 'hi', '--temperature', '-1'], /--temperature/)
  expectOneLine(['run', '--model', model, '--prompt', 'hi', '--top-p', '2'], /--top-p/)
  expectOneLine(['run', '--model', model, '--prompt', 'hi', '--seed', 'x'], /--seed/)
  expectOneLine(['run', '--model', model, '--prompt', 'hi', '--threads', '0'], /--threads/)
  expectOneLine(['run', '--model', model, '--prompt', 'hi', '--max-tokens', '0'], /--max-tokens/)
  expectOneLine(['run', '--model', model, '--prompt', 'hi', '--bogus', '1'], /unknown option --bogus/, 2)
  expectOneLine(['model', 'synth', '--preset', 'huge', '--type', 'q8_0', '--out', join(dir, 'x.gguf')], /unknown model preset "huge"/)
  expectOneLine(['model', 'synth', '--preset', 'tiny', '--type', 'q9_k', '--out', join(dir, 'x.gguf')], /q9_k/)
})

test('a prompt longer than the context', () => {
  expectOneLine(['run', '--model', model, '--prompt', 'word '.repeat(700)], /does not fit the context of 512/)
})

test('run --json then verify: valid exits 0, a forged answer exits 1 naming the step', async () => {
  const job = join(dir, 'job.json')
  const r = cli('run', '--model', model, '--prompt', 'Call me Ishmael.', '--max-tokens', '8', '--seed', '3', '--out', job, '--json')
  assert.equal(r.code, 0, r.err)
  const j = JSON.parse(r.out)
  assert.equal(j.tokens.length, 8)
  assert.match(j.receipt.traceRoot, /^[0-9a-f]{64}$/)
  const ok = cli('verify', '--model', model, '--receipt', job, '--threads', '2')
  assert.equal(ok.code, 0, ok.out + ok.err)
  assert.match(ok.out, new RegExp(`^valid: receipt v2 signed by ${devAccount(1).address} \\(the request's provider`))
  assert.match(ok.out, /the text is the output tokens' text/)
  assert.equal(j.signed.signer, devAccount(1).address)
  // forge the third output token (and its root, and sign it, as a cheating provider would)
  const forged = { ...j, tokens: j.tokens.map((t: number, i: number) => (i === 2 ? (t + 1) % 1024 : t)) }
  forged.receipt = { ...j.receipt, outputRoot: toHex(tokensRoot(forged.tokens)) }
  forged.signed = await signJob(forged.receipt, { key: devAccount(1).privateKey, domain: devnetDomain(), terms: { nonce: 0n, expiry: 2n ** 40n - 1n, pricePerToken: 0n } })
  writeFileSync(join(dir, 'forged.json'), JSON.stringify(forged))
  const bad = cli('verify', '--model', model, '--receipt', join(dir, 'forged.json'))
  assert.equal(bad.code, 1, bad.out + bad.err)
  assert.match(bad.out, new RegExp(`^invalid: first divergence at step ${j.promptTokens.length - 1 + 2}, head`))
  expectOneLine(['verify', '--model', model, '--receipt', model], /is not JSON/)
})

/** verify fails with exit 1 and one line on stdout. */
function expectInvalid(file: string, pattern: RegExp) {
  const r = cli('verify', '--model', model, '--receipt', file)
  assert.equal(r.code, 1, r.out + r.err)
  const lines = r.out.trim().split('\n')
  assert.equal(lines.length, 1, `one line expected, got:\n${r.out}`)
  assert.match(lines[0], pattern)
}

test('verify refuses a made-up text, a wrong signature, a tampered field and an old receipt format', () => {
  const job = join(dir, 'job2.json')
  const r = cli('run', '-m', model, '--prompt', 'Call me Ishmael.', '--max-tokens', '6', '--seed', '5', '--temperature', '0', '--out', job, '--json')
  assert.equal(r.code, 0, r.err)
  const j = JSON.parse(r.out)
  const write = (name: string, v: unknown) => {
    const p = join(dir, name)
    writeFileSync(p, JSON.stringify(v))
    return p
  }
  // The text the provider delivered is not what its tokens decode to.
  expectInvalid(write('text.json', { ...j, text: `${j.text} and then some` }), /^invalid: the text is not the text of the output tokens$/)
  // Signed by someone other than the request's provider.
  const other = cli('run', '-m', model, '--prompt', 'Call me Ishmael.', '--max-tokens', '6', '--seed', '5', '--temperature', '0', '--account', '2', '--json')
  assert.equal(other.code, 0, other.err)
  const stranger = JSON.parse(other.out).signed.signature
  expectInvalid(
    write('sig.json', { ...j, signed: { ...j.signed, signature: stranger } }),
    new RegExp(`^invalid: the receipt signature is not the provider's \\(it recovers 0x[0-9a-fA-F]{40}, the request names ${devAccount(1).address}\\)$`),
  )
  // A field changed after signing.
  expectInvalid(write('field.json', { ...j, receipt: { ...j.receipt, traceRoot: '00'.repeat(32) } }), /^invalid: the receipt signature is not the provider's/)
  expectInvalid(write('prompt.json', { ...j, receipt: { ...j.receipt, promptRoot: '00'.repeat(32) } }), /^invalid: the signed request's promptRoot is not the receipt's$/)
  expectInvalid(write('unsigned.json', { ...j, signed: undefined }), /^invalid: the receipt is not signed/)
  // Receipt format 1 is refused by name.
  expectOneLine(['verify', '-m', model, '--receipt', write('v1.json', { ...j, receipt: { ...j.receipt, version: 1 } })], /receipt format version 1 is not supported: this tessera reads version 2/)
  // the job file names its format; another one is refused, a file from before the tag is still read
  assert.equal(j.format, 'tessera-job/1')
  expectOneLine(['verify', '-m', model, '--receipt', write('f9.json', { ...j, format: 'tessera-job/9' })], /is job file format "tessera-job\/9": this tessera reads tessera-job\/1/)
  const { format: _, ...untagged } = j
  assert.equal(cli('verify', '-m', model, '--receipt', write('untagged.json', untagged)).code, 0)
})
