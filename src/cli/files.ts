/**
 * The CLI's checks on the files it is given, done before any work starts: an output path that
 * can be written (not a folder, not an existing file unless `--force`), a model path that is a
 * file, and a prompt from `--prompt`, `--prompt-file` or stdin (`-`).
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { BaseError, FileNotFoundError } from '../errors.js'
import { type ParsedArgs, UsageError } from './args.js'

/** A path that cannot be used the way the command needs (a folder given as a file, an unwritable folder). */
export class PathError extends BaseError {
  override name = 'PathError'
}

/** Checks that `--<flag> path` can be written: a file in a writable folder, overwritten only with `--force`. */
export function checkOutPath(path: string, force: boolean, flag = 'out'): void {
  const st = statSync(path, { throwIfNoEntry: false })
  if (st?.isDirectory()) throw new UsageError(`--${flag} ${path} is a directory`, { details: 'give a file name' })
  if (st && !force) throw new UsageError(`--${flag} ${path} exists`, { details: 'pass --force to overwrite it' })
  const dir = dirname(resolve(path))
  const dst = statSync(dir, { throwIfNoEntry: false })
  if (!dst?.isDirectory()) throw new PathError(`cannot write ${path}`, { details: `no folder ${dirname(path)}` })
  try {
    accessSync(st ? path : dir, constants.W_OK)
  } catch (cause) {
    throw new PathError(`cannot write ${path}`, { details: 'permission denied', cause })
  }
}

/** Checks that `path` is a readable file (a folder is "not a file", not EISDIR later). */
export function checkInputFile(path: string): void {
  const st = statSync(path, { throwIfNoEntry: false })
  if (!st) throw new FileNotFoundError(path)
  if (st.isDirectory()) throw new PathError(`${path} is a directory, not a file`)
}

/**
 * The prompt: `--prompt TEXT`, `--prompt -` or `--prompt-file -` (stdin), or `--prompt-file FILE`.
 * Text read from a file or stdin loses one trailing newline (as llama.cpp's `--file` does).
 */
export async function readPrompt(a: ParsedArgs, signal?: AbortSignal): Promise<string> {
  const text = a.flags.prompt
  const file = a.flags['prompt-file']
  if (typeof text === 'string' && typeof file === 'string') throw new UsageError('give --prompt or --prompt-file, not both')
  if (typeof text !== 'string' && typeof file !== 'string') throw new UsageError('missing --prompt', { details: 'see --help' })
  if (typeof text === 'string' && text !== '-') return text
  let raw: string
  if (text === '-' || file === '-') {
    raw = await readStdin(signal)
  } else {
    const path = file as string
    checkInputFile(path)
    try {
      raw = readFileSync(path, 'utf8')
    } catch (cause) {
      throw new FileNotFoundError(path, cause)
    }
  }
  return raw.endsWith('\n') ? raw.slice(0, raw.endsWith('\r\n') ? -2 : -1) : raw
}

/** All of stdin as UTF-8; an abort (Ctrl-C while a terminal waits for input) stops the read. */
function readStdin(signal?: AbortSignal): Promise<string> {
  signal?.throwIfAborted()
  const chunks: Buffer[] = []
  return new Promise<string>((resolve, reject) => {
    const onAbort = () => {
      process.stdin.destroy()
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    process.stdin.on('data', (c: Buffer) => chunks.push(c))
    process.stdin.once('error', reject)
    process.stdin.once('end', () => {
      signal?.removeEventListener('abort', onAbort)
      resolve(Buffer.concat(chunks).toString('utf8'))
    })
  })
}
