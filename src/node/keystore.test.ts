import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { privateKeyToAddress } from 'viem/accounts'
import { createKeystore, DEFAULT_SCRYPT_N, KEYSTORE_FILE, loadKeystore, passphraseFrom } from './keystore.js'

// tests use a cheap scrypt; one test below checks the default cost is what new files get
const FAST = { scryptN: 2 ** 4 }
const KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318' as const

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-keystore-'))
  try {
    await fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('a key file round-trips its key; the address is viem privateKeyToAddress; the file is 0600 standard V3 scrypt', async () => {
  await withDir(async (dir) => {
    const made = await createKeystore(dir, 'correct horse', KEY, FAST)
    assert.equal(made.address, privateKeyToAddress(KEY))
    assert.equal(made.file, join(dir, KEYSTORE_FILE))
    const loaded = await loadKeystore(dir, 'correct horse')
    assert.equal(loaded.privateKey, KEY)
    assert.equal(loaded.address, privateKeyToAddress(KEY))
    assert.equal(statSync(made.file).mode & 0o777, 0o600)
    const v3 = JSON.parse(readFileSync(made.file, 'utf8'))
    assert.equal(v3.version, 3)
    assert.equal(v3.crypto.kdf, 'scrypt')
    assert.equal(v3.crypto.kdfparams.n, FAST.scryptN)
    assert.ok(!readFileSync(made.file, 'utf8').includes(KEY.slice(2)), 'the key is not in clear')
  })
})

test('without a key, a fresh one is made; without scryptN, the file gets the default cost 2^14', async () => {
  await withDir(async (dir) => {
    const made = await createKeystore(dir, 'pw')
    assert.equal(JSON.parse(readFileSync(made.file, 'utf8')).crypto.kdfparams.n, DEFAULT_SCRYPT_N)
    assert.equal(DEFAULT_SCRYPT_N, 2 ** 14)
    const loaded = await loadKeystore(dir, 'pw')
    assert.equal(loaded.address, made.address)
    assert.equal(privateKeyToAddress(loaded.privateKey), made.address)
  })
})

test('a wrong passphrase is BadPassphraseError, one line with no stack trace', async () => {
  await withDir(async (dir) => {
    await createKeystore(dir, 'right', KEY, FAST)
    await assert.rejects(loadKeystore(dir, 'wrong'), (err: Error) => {
      assert.equal(err.name, 'BadPassphraseError')
      assert.ok(!err.message.includes('\n'))
      assert.equal(err.stack, `BadPassphraseError: ${err.message}`)
      return true
    })
  })
})

test('an existing key file is never overwritten', async () => {
  await withDir(async (dir) => {
    await createKeystore(dir, 'first', KEY, FAST)
    const before = readFileSync(join(dir, KEYSTORE_FILE), 'utf8')
    await assert.rejects(createKeystore(dir, 'second', undefined, FAST), { name: 'KeystoreExistsError' })
    assert.equal(readFileSync(join(dir, KEYSTORE_FILE), 'utf8'), before)
    assert.equal((await loadKeystore(dir, 'first')).privateKey, KEY)
  })
})

test('a corrupt or tampered key file names the file; a missing one is FileNotFoundError', async () => {
  await withDir(async (dir) => {
    const file = join(dir, KEYSTORE_FILE)
    await assert.rejects(loadKeystore(dir, 'x'), { name: 'FileNotFoundError' })
    writeFileSync(file, '{"version": 3, "crypto": ')
    await assert.rejects(loadKeystore(dir, 'x'), (err: Error & { file?: string }) => err.name === 'KeystoreCorruptError' && err.file === file && err.message.includes(file))
    writeFileSync(file, '{"version": 1}')
    await assert.rejects(loadKeystore(dir, 'x'), { name: 'KeystoreCorruptError' })
    rmSync(file)
    // someone swaps the address field for theirs: the file no longer says whose key it holds
    await createKeystore(dir, 'pw', KEY, FAST)
    const v3 = JSON.parse(readFileSync(file, 'utf8'))
    writeFileSync(file, JSON.stringify({ ...v3, address: '00000000000000000000000000000000000000aa' }))
    await assert.rejects(loadKeystore(dir, 'pw'), { name: 'KeystoreCorruptError' })
    // an unknown kdf
    writeFileSync(file, JSON.stringify({ ...v3, crypto: { ...v3.crypto, kdf: 'argon9' } }))
    await assert.rejects(loadKeystore(dir, 'pw'), { name: 'KeystoreCorruptError' })
  })
})

test('passphrase sources: file before env before prompt; none is one line naming the three ways', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'pass.txt')
    writeFileSync(file, 'from-file\n')
    const noPrompt = { prompt: false as const }
    assert.equal(await passphraseFrom({ file, env: 'from-env', ...noPrompt }), 'from-file')
    assert.equal(await passphraseFrom({ env: 'from-env', ...noPrompt }), 'from-env')
    await assert.rejects(passphraseFrom({ file: join(dir, 'absent'), env: 'from-env' }), { name: 'FileNotFoundError' })
    writeFileSync(file, '\n')
    await assert.rejects(passphraseFrom({ file }), { name: 'KeystoreCorruptError' })
    await assert.rejects(passphraseFrom({ env: '', ...noPrompt }), (err: Error) => {
      assert.equal(err.name, 'NoPassphraseError')
      assert.ok(!err.message.includes('\n'))
      assert.match(err.message, /file/)
      assert.match(err.message, /TESSERA_PASSPHRASE/)
      assert.match(err.message, /terminal/)
      return true
    })
  })
})

test('the prompt reads a line without echoing it, in raw mode, honouring backspace; Ctrl-C abandons', async () => {
  const run = async (typed: string) => {
    const input = Object.assign(new PassThrough(), { isTTY: true, raw: [] as boolean[], setRawMode(on: boolean) { this.raw.push(on) } })
    const output = new PassThrough()
    let shown = ''
    output.on('data', (b) => { shown += b })
    const p = passphraseFrom({ env: '', prompt: { input, output } })
    input.write(typed)
    try {
      return { pass: await p, shown, raw: input.raw }
    } catch (err) {
      return { err: err as Error, shown, raw: input.raw }
    }
  }
  const ok = await run('hunter2x\u007f\r')
  assert.equal(ok.pass, 'hunter2')
  assert.equal(ok.shown, 'passphrase: \n')
  assert.deepEqual(ok.raw, [true, false])
  const cancelled = await run('abc\u0003')
  assert.equal(cancelled.err?.name, 'NoPassphraseError')
  assert.deepEqual(cancelled.raw, [true, false])
})
