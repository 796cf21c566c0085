/**
 * The `tessera` CLI entry: the only place that reads argv, prints errors and sets the exit code.
 * Each command lives in `commands/<topic>.ts` and exports a list of `Command`s.
 */
import { BaseError } from '../errors.js'
import { type Command, helpText, parseArgs } from './args.js'
import { commands } from './commands/index.js'

function usage(all: Command[]): string {
  const rows = all.map((c) => `  ${c.name.padEnd(16)} ${c.summary}`)
  return ['Usage: tessera <command> [options]', '', 'Commands:', ...rows, '', 'Run `tessera <command> --help` for its options.'].join('\n')
}

async function main(argv: string[]): Promise<number> {
  // The longest command name that prefixes argv wins (`model synth` before `model`).
  const match = commands.filter((c) => c.name.split(' ').every((w, i) => argv[i] === w)).sort((a, b) => b.name.length - a.name.length)[0]
  if (!match) {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      console.log(usage(commands))
      return 0
    }
    console.error(`tessera: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${usage(commands)}`)
    return 2
  }
  const rest = argv.slice(match.name.split(' ').length)
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(helpText(match))
    return 0
  }
  const controller = new AbortController()
  process.once('SIGINT', () => controller.abort())
  return match.run(parseArgs(rest, match.flags), controller.signal)
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    if (err instanceof BaseError) console.error(`tessera: ${err.message}`)
    else if (process.env.TESSERA_DEBUG) console.error(err)
    else console.error(`tessera: internal error: ${err instanceof Error ? err.message : String(err)} (set TESSERA_DEBUG=1 for the stack)`)
    process.exitCode = err instanceof BaseError && err.name === 'UsageError' ? 2 : 1
  },
)
