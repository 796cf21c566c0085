// Every bench script's command line is checked before it measures anything (bench/util.ts
// benchArgs): `--help` prints its usage and exits 0 without running the bench or writing a file
// (bench/engine.ts used to run the whole bench and rewrite docs/BENCHMARKS.md's Engine section), and
// a flag it does not take is refused in one line. Each script runs with an empty working folder, so
// a relative write would land there; docs/BENCHMARKS.md must keep its bytes and mtime.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { benchHelp, checkBenchArgs } from '../../bench/util.js'
import { root } from '../support/cli.js'

/** The scripts bench/util.ts's benchArgs guards (bench/kernels.ts and bench/networkJobs.ts have parsers of their own; llamacpp.ts is a library). */
const SCRIPTS = ['chainProcess', 'cliStart', 'engine', 'gas', 'gateway', 'heldout', 'load', 'longContext', 'longWindow', 'network', 'providerProcess', 'sample', 'stepGas', 'trace', 'train']
const TSX = import.meta.resolve('tsx')
const DOC = join(root, 'docs', 'BENCHMARKS.md')

function runBench(script: string, args: string[], cwd: string): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  const t0 = Date.now()
  const child = spawn(process.execPath, ['--import', TSX, join(root, 'bench', `${script}.ts`), ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((ok) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      ok({ code, out, err, ms: Date.now() - t0 })
    }),
  )
}

/** Runs `f` over `items`, `width` at a time (the machine has two cores). */
async function pool<T, R>(items: readonly T[], width: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await f(items[i])
    }),
  )
  return out
}

test('the shared parser: help, unknown flags, missing values and extra arguments', () => {
  const spec = { summary: 'S', usage: 'u', flags: { runs: { value: 'N', help: 'rounds' }, 'no-write': { help: 'no doc' } }, positionals: 1, internal: ['--child'] }
  assert.deepEqual(checkBenchArgs(spec, ['--runs', '3', '--no-write', 'x']), { positionals: ['x'] })
  assert.deepEqual(checkBenchArgs(spec, ['--runs', '-1']), { positionals: [] })
  assert.deepEqual(checkBenchArgs(spec, ['--child', 'a', 'b', '--zzz']), { positionals: [] }, 'an internal mode is not checked')
  for (const h of [['--help'], ['-h'], ['--runs', '3', '--help'], ['--bogus', '--help']]) assert.deepEqual(checkBenchArgs(spec, h), { help: benchHelp(spec) })
  assert.match(benchHelp(spec), /^usage: u\n\nS\n\nflags:\n {2}--runs N +rounds\n {2}--no-write +no doc\n {2}--help +print this and exit/)
  assert.deepEqual(checkBenchArgs(spec, ['--bogus']), { error: 'unknown flag --bogus (it takes --runs, --no-write; --help for usage)' })
  assert.deepEqual(checkBenchArgs(spec, ['--runs=3']), { error: 'unknown flag --runs=3 (it takes --runs, --no-write; --help for usage)' })
  assert.deepEqual(checkBenchArgs(spec, ['--constructor']), { error: 'unknown flag --constructor (it takes --runs, --no-write; --help for usage)' })
  assert.deepEqual(checkBenchArgs(spec, ['--runs']), { error: '--runs needs a value (N)' })
  assert.deepEqual(checkBenchArgs(spec, ['--runs', '--no-write']), { error: '--runs needs a value (N)' })
  assert.deepEqual(checkBenchArgs(spec, ['a', 'b']), { error: 'unexpected argument "b" (--help for usage)' })
  assert.deepEqual(checkBenchArgs({ summary: '', usage: '' }, ['-x']), { error: 'unknown flag -x (it takes no flags; --help for usage)' })
})

test('--help of every bench script prints its usage and exits 0 at once, writing nothing; an unknown flag is one line, exit 2', { timeout: 300_000 }, async () => {
  const before = { bytes: readFileSync(DOC), mtime: statSync(DOC).mtimeMs }
  const dirs: string[] = []
  try {
    const runs = await pool(
      [...SCRIPTS.map((s) => [s, '--help']), ['engine', '--bogus'], ['gas', '--types']],
      3,
      async ([script, flag]) => {
        const cwd = mkdtempSync(join(tmpdir(), `tessera-bench-${script}-`))
        dirs.push(cwd)
        return { script, flag, cwd, ...(await runBench(script, [flag], cwd)) }
      },
    )
    for (const r of runs) {
      const what = `bench/${r.script}.ts ${r.flag}: exit ${r.code} in ${r.ms} ms\n${r.out}${r.err}`
      assert.deepEqual(readdirSync(r.cwd), [], `${what}: wrote into its working folder`)
      if (r.flag === '--help') {
        assert.equal(r.code, 0, what)
        assert.match(r.out, /^usage: .*\n\n.+\n\nflags:\n/, what)
        assert.match(r.out, /--help +print this and exit/, what)
        assert.equal(r.err, '', what)
      } else {
        assert.equal(r.code, 2, what)
        assert.equal(r.out, '', what)
        assert.equal(r.err.trim().split('\n').length, 1, what)
        assert.match(r.err, new RegExp(`^bench/${r.script}.ts: unknown flag ${r.flag} \\(`), what)
      }
    }
    assert.ok(readFileSync(DOC).equals(before.bytes), 'docs/BENCHMARKS.md changed')
    assert.equal(statSync(DOC).mtimeMs, before.mtime, 'docs/BENCHMARKS.md was rewritten')
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
})
