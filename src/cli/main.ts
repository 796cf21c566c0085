/**
 * The `tessera` CLI entry: the only place that reads argv, prints errors and sets the exit code.
 * Each command lives in `commands/<topic>.ts` and exports a list of `Command`s; a command named
 * `model synth` belongs to the group `model` (`tessera model --help` lists the group).
 *
 * Exit codes: 0 done, 1 failed (or `verify`: invalid), 2 bad usage, 130 interrupted (Ctrl-C).
 *
 * Start-up cost: every command's help must come back at once, so this file and the command
 * modules import only small modules at their top (node:*, errors, args, files, and constants from
 * import-free modules such as dispute/cheatKinds.ts). viem, EDR, libp2p, the engine and the runtime
 * are loaded with `await import()` inside the `run` that needs them. test/cli/usage.test.ts runs
 * every help with those packages made unloadable; bench/cliStart.ts measures the start.
 */
import { readFileSync } from 'node:fs'
import { BaseError, InvalidParameterError } from '../errors.js'
import { type Command, helpText, parseArgs, UsageError } from './args.js'
import { INTERRUPTED, interruptSignal } from './signals.js'

// Set by main() from ./commands/index.js, which `--version` does not need.
let commands: Command[] = []
let groups: string[] = []

function usage(all: Command[]): string {
  const rows = all.map((c) => `  ${c.name.padEnd(16)} ${c.summary}`)
  return ['Usage: tessera <command> [options]', '', 'Commands:', ...rows, '', 'Run `tessera help <command>` or `tessera <command> --help` for its options; `tessera --version` for the version.'].join(
    '\n',
  )
}

function groupUsage(group: string): string {
  const members = commands.filter((c) => c.name.startsWith(`${group} `))
  const related = commands.filter((c) => c.group === group && !members.includes(c))
  const rows = [...members, ...related].map((c) => `  ${c.name.padEnd(16)} ${c.summary}`)
  return [`Usage: tessera ${group} <${members.map((c) => c.name.split(' ')[1]).join('|')}> [options]`, '', 'Commands:', ...rows, '', 'Run `tessera help <command>` for its options.'].join('\n')
}

function version(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two folders below package.json.
  return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version
}

/** The command that `words` names: the longest command name that prefixes them (`model synth` before `model`). */
function find(words: string[]): Command | undefined {
  return commands.filter((c) => c.name.split(' ').every((w, i) => words[i] === w)).sort((a, b) => b.name.length - a.name.length)[0]
}

/** Help for `words` (a command, a group, or nothing: everything); undefined if they name neither. */
function helpFor(words: string[]): string | undefined {
  if (words.length === 0) return usage(commands)
  const cmd = find(words)
  if (cmd && cmd.name.split(' ').length === words.length) return helpText(cmd)
  if (words.length === 1 && groups.includes(words[0])) return groupUsage(words[0])
  return undefined
}

let current: Command | undefined

async function main(argv: string[]): Promise<number> {
  const first = argv[0]
  if (first === '--version' || first === '-V' || first === 'version') {
    console.log(`tessera ${version()}`)
    return 0
  }
  commands = (await import('./commands/index.js')).commands
  groups = [...new Set(commands.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]))]
  if (argv.length === 0 || first === '--help' || first === '-h' || first === 'help') {
    const words = first === 'help' ? argv.slice(1) : []
    const text = helpFor(words)
    if (text === undefined) throw new UsageError(`unknown command "${words.join(' ')}" (see tessera --help)`)
    console.log(text)
    return 0
  }
  const match = find(argv)
  if (!match) {
    if (groups.includes(first)) {
      if (argv[1] === '--help' || argv[1] === '-h') {
        console.log(groupUsage(first))
        return 0
      }
      const names = commands.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.split(' ')[1])
      if (argv.length === 1) throw new UsageError(`${first} needs a command: ${names.join(' or ')} (see tessera ${first} --help)`)
      throw new UsageError(`unknown command "${first} ${argv[1]}" (see tessera ${first} --help)`)
    }
    throw new UsageError(`unknown command "${first}" (see tessera --help)`)
  }
  current = match
  const rest = argv.slice(match.name.split(' ').length)
  const dashdash = rest.indexOf('--')
  const options = dashdash < 0 ? rest : rest.slice(0, dashdash)
  if (options.includes('--help') || options.includes('-h')) {
    console.log(helpText(match))
    return 0
  }
  const args = parseArgs(rest, match.flags, match.positionals ?? 0)
  return match.run(args, signal)
}

/** One line for an error: library errors say `invalid max-tokens`, the CLI names the flag. */
function message(err: unknown): string {
  if (err instanceof InvalidParameterError && current?.flags[err.param]) return `invalid --${err.param} ${JSON.stringify(err.value)}: expected ${err.expected}`
  if (err instanceof BaseError) return err.message.split('\n')[0]
  const text = err instanceof Error ? err.message.split('\n')[0] : String(err)
  return `internal error: ${text} (set TESSERA_DEBUG=1 for the stack)`
}

// A reader that goes away (`tessera run ... | head`) ends the command quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0)
    throw err
  })
}

const signal = interruptSignal()
/** After Ctrl-C the command has cleaned up; nothing left running (a stdin read, a worker) may hold the exit. */
function interrupted(): never {
  console.error('tessera: interrupted')
  process.exit(INTERRUPTED)
}

main(process.argv.slice(2)).then(
  (code) => {
    if (signal.aborted) interrupted()
    process.exitCode = code
  },
  (err) => {
    if (signal.aborted) interrupted()
    if (process.env.TESSERA_DEBUG) console.error(err)
    else console.error(`tessera: ${message(err)}`)
    process.exitCode = err instanceof BaseError && err.name === 'UsageError' ? 2 : 1
  },
)
