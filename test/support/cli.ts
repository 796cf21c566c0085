/**
 * Runs the `tessera` CLI from source in a child process, for tests that check what a user sees:
 * the exit code, stdout, and that errors are one line on stderr with no stack trace.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'

export const root = resolve(import.meta.dirname, '../..')

export type CliResult = { code: number | null; signal: NodeJS.Signals | null; out: string; err: string }

/**
 * Starts `tessera ...args` (from src/ through tsx); `input` is written to its stdin, which is then
 * closed, unless `holdStdin` keeps it open (a terminal waiting for input).
 */
export function startCli(args: string[], opts: { input?: string; cwd?: string; holdStdin?: boolean } = {}): ChildProcess & { result: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(root, 'src/cli/main.ts'), ...args], { cwd: opts.cwd ?? root, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  child.stdin.on('error', () => {})
  if (!opts.holdStdin) child.stdin.end(opts.input)
  const result = new Promise<CliResult>((ok) => child.on('close', (code, signal) => ok({ code, signal, out, err })))
  return Object.assign(child, { result })
}

export function cli(...args: string[]): Promise<CliResult> {
  return startCli(args).result
}

/** Asserts exit `code` and exactly one stderr line matching `pattern`, with no stack trace. */
export function assertOneLine(r: CliResult, code: number, pattern: RegExp, what = ''): void {
  assert.equal(r.code, code, `${what}: exit ${r.code}, stderr:\n${r.err}`)
  const lines = r.err.trim().split('\n')
  assert.equal(lines.length, 1, `${what}: one stderr line expected, got:\n${r.err}`)
  assert.match(lines[0], pattern, what)
  assert.match(lines[0], /^tessera: /, what)
  assert.doesNotMatch(r.err, /\bat .*\.(ts|js):\d+/, what)
}

export async function expectOneLine(args: string[], code: number, pattern: RegExp): Promise<CliResult> {
  const r = await cli(...args)
  assertOneLine(r, code, pattern, args.join(' '))
  return r
}

/** Resolves once `read()` matches `pattern` (polled), or rejects after `ms`. */
export async function waitFor(read: () => string | boolean, pattern: RegExp | true, ms = 60_000): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    const v = read()
    if (pattern === true ? v === true : typeof v === 'string' && pattern.test(v)) return
    if (Date.now() > until) throw new Error(`timed out waiting for ${pattern}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
