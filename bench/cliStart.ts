/**
 * How long the `tessera` command takes to start and exit for help-like invocations, which should
 * load only the CLI's own small modules: `node --import tsx bench/cliStart.ts [--runs 10] [--before DIR]`.
 * Runs the installed entry (bin/tessera.js -> dist/), so build first (`npm run build`). The peer is
 * a bare `node -e 0`: what any Node program pays before running its first line. `--before DIR`
 * also runs DIR/bin/tessera.js (another build, e.g. an older commit's) in the same rounds.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { arg, benchArgs, median } from './util.js'

benchArgs({
  summary: 'How long `tessera` takes to start and exit for help-like invocations (bin/tessera.js -> dist/: build first), against a bare `node -e 0`. Prints a table; writes nothing.',
  usage: 'node --import tsx bench/cliStart.ts [flags]',
  flags: { runs: { value: 'N', help: 'rounds (default 10)' }, before: { value: 'DIR', help: "also run DIR/bin/tessera.js (another build) in the same rounds" } },
})

const runs = Number(arg('runs', '10'))
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${arg('runs', '10')}`)
if (!existsSync('dist/cli/main.js')) throw new Error('dist/cli/main.js is missing: run `npm run build` first')
const before = arg('before', '')
if (before && !existsSync(join(before, 'dist/cli/main.js'))) throw new Error(`--before ${before}: no dist/cli/main.js there`)

const cases: [string, string[]][] = [
  ['node -e 0 (peer)', ['-e', '0']],
  ['tessera --help', ['bin/tessera.js', '--help']],
  ['tessera --version', ['bin/tessera.js', '--version']],
  ['tessera help run', ['bin/tessera.js', 'help', 'run']],
  ['tessera run --help', ['bin/tessera.js', 'run', '--help']],
  ['tessera node --help', ['bin/tessera.js', 'node', '--help']],
  ['tessera node start --help', ['bin/tessera.js', 'node', 'start', '--help']],
  ['tessera chain start --help', ['bin/tessera.js', 'chain', 'start', '--help']],
]

function once(args: string[]): number {
  const started = process.hrtime.bigint()
  const res = spawnSync(process.execPath, args, { encoding: 'utf8' })
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (res.status !== 0) throw new Error(`node ${args.join(' ')} exited ${res.status}: ${res.stderr.trim().split('\n')[0]}`)
  return ms
}

// The same commands from the other build, named `... (before)`.
const beforeCases: [string, string[]][] = before ? cases.slice(1).map(([name, args]) => [`${name} (before)`, [join(before, 'bin/tessera.js'), ...args.slice(1)]]) : []
const all = [...cases, ...beforeCases]
const load = loadavg()[0]
const times = new Map<string, number[]>(all.map(([name]) => [name, []]))
// Interleaved rounds, so a burst of load from another process spreads over every case alike.
for (let r = 0; r < runs; r++) for (const [name, args] of all) times.get(name)?.push(once(args))

const peer = median(times.get(cases[0][0]) ?? [])
console.log(`CLI start, median of ${runs} runs, Node ${process.version}, load average ${load.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`)
console.log('')
const cell = (name: string) => {
  const t = times.get(name) ?? []
  return `${median(t).toFixed(0)} | ${Math.min(...t).toFixed(0)} | ${(median(t) / peer).toFixed(1)}`
}
if (!before) {
  console.log('| command | median ms | min ms | x node -e 0 |')
  console.log('|---|---:|---:|---:|')
  for (const [name] of cases) console.log(`| ${name} | ${cell(name)} |`)
} else {
  console.log('| command | before: median ms | min ms | x node -e 0 | now: median ms | min ms | x node -e 0 | now / before |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
  console.log(`| ${cases[0][0]} | | | | ${cell(cases[0][0])} | |`)
  for (const [name] of cases.slice(1)) {
    const ratio = median(times.get(name) ?? []) / median(times.get(`${name} (before)`) ?? [])
    console.log(`| ${name} | ${cell(`${name} (before)`)} | ${cell(name)} | ${ratio.toFixed(2)} |`)
  }
}
