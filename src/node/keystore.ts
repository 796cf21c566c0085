/**
 * The node's key file (docs/NETWORK.md "Identity and keys"): one secp256k1 key, the node's chain
 * account and its libp2p identity, kept at `DIR/keystore.json` in the Web3 Secret Storage format
 * (version 3, scrypt; `@ethereumjs/wallet` `toV3`/`fromV3`), so any Ethereum wallet can open it.
 * The file is written once, readable by its owner only (0600), and never overwritten: losing a
 * node's key loses its stake and earnings.
 *
 * The passphrase comes from a file, else the `TESSERA_PASSPHRASE` environment variable, else a
 * prompt on a terminal that does not echo (`passphraseFrom`).
 *
 * @example
 *   const { address } = await createKeystore(dir, 'correct horse')
 *   const { privateKey } = await loadKeystore(dir, 'correct horse')
 */
import { chmodSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet } from '@ethereumjs/wallet'
import { type Address, type Hex, hexToBytes } from 'viem'
import { generatePrivateKey, privateKeyToAddress } from 'viem/accounts'
import { BaseError, FileNotFoundError } from '../errors.js'

export const KEYSTORE_FILE = 'keystore.json'
/** scrypt cost of new key files (STACK.md: ~0.3 s to encrypt and decrypt on this machine). */
export const DEFAULT_SCRYPT_N = 2 ** 14

/** An error meant to be shown as its one line: its stack is that line too. */
abstract class OneLineError extends BaseError {
  constructor(shortMessage: string, options?: ConstructorParameters<typeof BaseError>[1]) {
    super(shortMessage, options)
    this.stack = `${new.target.name}: ${this.message}`
  }
}

/** The passphrase does not open the key file (or the file's MAC was altered: the two look alike). */
export class BadPassphraseError extends OneLineError {
  override name = 'BadPassphraseError'
  constructor(file: string) {
    super(`wrong passphrase for ${file}`)
  }
}
/** A key file that is not a readable Web3 Secret Storage v3 file. */
export class KeystoreCorruptError extends OneLineError {
  override name = 'KeystoreCorruptError'
  readonly file: string
  constructor(file: string, details: string, cause?: unknown) {
    super(`${file} is not a valid key file`, { details, cause })
    this.file = file
  }
}
/** A key file already exists where a new one would be written. */
export class KeystoreExistsError extends OneLineError {
  override name = 'KeystoreExistsError'
  readonly file: string
  constructor(file: string) {
    super(`${file} already exists; it is never overwritten`)
    this.file = file
  }
}
/** No passphrase source: no file, no environment variable, no terminal to prompt on. */
export class NoPassphraseError extends OneLineError {
  override name = 'NoPassphraseError'
  constructor() {
    super('no passphrase: give a passphrase file, set TESSERA_PASSPHRASE, or run on a terminal to be asked')
  }
}

/**
 * Writes a new key file `dir/keystore.json` for `privateKey` (a fresh random key if none) encrypted
 * with `passphrase`; refuses (KeystoreExistsError) if one exists. `scryptN` below the default is
 * for tests only.
 */
export async function createKeystore(dir: string, passphrase: string, privateKey?: Hex, opts: { scryptN?: number } = {}): Promise<{ address: Address; file: string }> {
  const file = join(dir, KEYSTORE_FILE)
  const key = privateKey ?? generatePrivateKey()
  const v3 = await Wallet.fromPrivateKey(hexToBytes(key)).toV3(passphrase, { kdf: 'scrypt', n: opts.scryptN ?? DEFAULT_SCRYPT_N })
  // Written beside, then hard-linked into place: the link fails if the file exists (no overwrite,
  // even racing another process), and a crash never leaves a half-written key file.
  const tmp = join(dir, `.${KEYSTORE_FILE}.${process.pid}.${Date.now()}.tmp`)
  writeFileSync(tmp, `${JSON.stringify(v3)}\n`, { mode: 0o600, flag: 'wx' })
  try {
    chmodSync(tmp, 0o600) // whatever the umask
    linkSync(tmp, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeystoreExistsError(file)
    throw err
  } finally {
    unlinkSync(tmp)
  }
  return { address: privateKeyToAddress(key), file }
}

/** Opens `dir/keystore.json` with `passphrase`. */
export async function loadKeystore(dir: string, passphrase: string): Promise<{ privateKey: Hex; address: Address }> {
  const file = join(dir, KEYSTORE_FILE)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new FileNotFoundError(file, err)
  }
  let json: { version?: unknown; address?: unknown; crypto?: { mac?: unknown } }
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new KeystoreCorruptError(file, 'not JSON', err)
  }
  if (json?.version !== 3 || typeof json.crypto?.mac !== 'string') throw new KeystoreCorruptError(file, 'not a version 3 key file')
  let wallet: Wallet
  try {
    wallet = await Wallet.fromV3(json as Parameters<typeof Wallet.fromV3>[0], passphrase)
  } catch (err) {
    if (/possibly wrong passphrase/.test((err as Error).message)) throw new BadPassphraseError(file)
    throw new KeystoreCorruptError(file, (err as Error).message, err)
  }
  const privateKey = wallet.getPrivateKeyString() as Hex
  const address = privateKeyToAddress(privateKey)
  if (typeof json.address === 'string' && json.address.toLowerCase().replace(/^0x/, '') !== address.slice(2).toLowerCase()) {
    throw new KeystoreCorruptError(file, `its address ${json.address} is not its key's`)
  }
  return { privateKey, address }
}

/** A terminal-like input (stdin on a TTY has `setRawMode`) and where to write the question. */
export type PromptIO = { input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(on: boolean): unknown }; output: NodeJS.WritableStream }

/**
 * The node's passphrase: the contents of `file` (one trailing newline dropped), else `env`, else
 * what the user types at a prompt on a terminal (`prompt`, default stdin when it is a TTY;
 * `false` never prompts). None of them: NoPassphraseError.
 */
export async function passphraseFrom(s: { file?: string; env?: string; prompt?: PromptIO | false } = {}): Promise<string> {
  const { file, env = process.env.TESSERA_PASSPHRASE } = s
  if (file !== undefined) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new FileNotFoundError(file, err)
    }
    const pass = text.replace(/\r?\n$/, '')
    if (pass === '') throw new KeystoreCorruptError(file, 'the passphrase file is empty')
    return pass
  }
  if (env) return env
  const io = s.prompt ?? (process.stdin.isTTY ? { input: process.stdin, output: process.stderr } : false)
  if (!io) throw new NoPassphraseError()
  return promptHidden(io, 'passphrase: ')
}

/** Reads one line from a terminal without echoing it (raw mode: Enter ends, Backspace erases, Ctrl-C or Ctrl-D abandons). */
export function promptHidden(io: PromptIO, question: string): Promise<string> {
  const { input, output } = io
  output.write(question)
  input.setRawMode?.(true)
  input.resume()
  return new Promise<string>((resolve, reject) => {
    let line = ''
    const done = (err?: Error) => {
      input.removeListener('data', onData)
      input.removeListener('end', onEnd)
      input.setRawMode?.(false)
      input.pause()
      output.write('\n')
      if (err) reject(err)
      else resolve(line)
    }
    const onEnd = () => done(line ? undefined : new NoPassphraseError())
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') return done(line ? undefined : new NoPassphraseError())
        if (ch === '\u0003' || ch === '\u0004') return done(new NoPassphraseError())
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1)
        else line += ch
      }
    }
    input.on('data', onData)
    input.on('end', onEnd)
  })
}
