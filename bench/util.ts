/** Small helpers shared by the benchmark scripts. */
import { basename } from 'node:path'

/** The value after `--name` on the command line, or `def`. */
export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def
}

/** A flag of a bench script: `value` names its argument (`--runs N`); a flag without one is a switch (`--no-write`). */
export type BenchFlag = { value?: string; help: string }

/** What a bench script accepts on its command line (benchArgs checks it before the bench runs). */
export type BenchSpec = {
  /** What the script measures and where it writes, a line or two. */
  summary: string
  /** The command line, e.g. `node --import tsx bench/engine.ts [flags]`. */
  usage: string
  flags?: Record<string, BenchFlag>
  /** Most positional arguments it takes (default 0; Infinity for a list). */
  positionals?: number
  /** A first argument that puts the script in an internal mode with a command line of its own (a child process it starts itself): not checked. */
  internal?: readonly string[]
}

/** The help text of a bench script. */
export function benchHelp(spec: BenchSpec): string {
  const flags = Object.entries({ ...spec.flags, help: { help: 'print this and exit (the bench does not run)' } as BenchFlag })
  const names = flags.map(([n, f]) => `--${n}${f.value ? ` ${f.value}` : ''}`)
  const width = Math.max(...names.map((n) => n.length)) + 2
  return [`usage: ${spec.usage}`, '', spec.summary, '', 'flags:', ...flags.map(([, f], i) => `  ${names[i].padEnd(width)}${f.help}`), ''].join('\n')
}

/**
 * Checks `argv` against `spec`: `help` when it asks for help (`--help`, `-h`), `error` (one line)
 * for a flag the script does not take, a flag missing its value or an argument too many; else the
 * positional arguments.
 */
export function checkBenchArgs(spec: BenchSpec, argv: readonly string[]): { help: string } | { error: string } | { positionals: string[] } {
  if (argv.includes('--help') || argv.includes('-h')) return { help: benchHelp(spec) }
  if (argv.length > 0 && spec.internal?.includes(argv[0])) return { positionals: [] }
  const flags = spec.flags ?? {}
  const taken = Object.keys(flags).map((n) => `--${n}`)
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      const f = a.startsWith('--') ? flags[a.slice(2)] : undefined
      if (!f || !Object.hasOwn(flags, a.slice(2))) return { error: `unknown flag ${a} (${taken.length ? `it takes ${taken.join(', ')}` : 'it takes no flags'}; --help for usage)` }
      if (f.value) {
        const v = argv[i + 1]
        if (v === undefined || v.startsWith('--')) return { error: `${a} needs a value (${f.value})` }
        i++
      }
      continue
    }
    if (positionals.length >= (spec.positionals ?? 0)) return { error: `unexpected argument ${JSON.stringify(a)} (--help for usage)` }
    positionals.push(a)
  }
  return { positionals }
}

/**
 * What every bench script calls first: prints its help and exits 0 on `--help`, refuses a bad
 * command line in one line (exit 2), before anything is measured or written. Returns the positional
 * arguments.
 */
export function benchArgs(spec: BenchSpec, argv: readonly string[] = process.argv.slice(2)): string[] {
  const r = checkBenchArgs(spec, argv)
  if ('help' in r) {
    process.stdout.write(r.help)
    process.exit(0)
  }
  if ('error' in r) {
    process.stderr.write(`bench/${basename(process.argv[1] ?? 'bench')}: ${r.error}\n`)
    process.exit(2)
  }
  return r.positionals
}

/** Median (the mean of the two middle values for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
