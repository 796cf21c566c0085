/**
 * A small, strict argument parser for the CLI: `--flag value`, `--flag=value`, boolean `--flag`,
 * positionals. Unknown flags are errors that name the flag, so a typo never silently becomes a
 * default.
 */
import { BaseError, InvalidParameterError } from '../errors.js'

export type FlagSpec = { type: 'string' | 'number' | 'boolean'; description: string; default?: string | number | boolean }

export type Command = {
  /** Space-separated command path, e.g. `model synth`. */
  name: string
  summary: string
  usage: string
  flags: Record<string, FlagSpec>
  run(args: ParsedArgs, signal: AbortSignal): Promise<number>
}

export type ParsedArgs = { flags: Record<string, string | number | boolean | undefined>; positionals: string[] }

export class UsageError extends BaseError {
  override name = 'UsageError'
}

export function parseArgs(argv: string[], flags: Record<string, FlagSpec>): ParsedArgs {
  const out: ParsedArgs = { flags: {}, positionals: [] }
  for (const [name, spec] of Object.entries(flags)) if (spec.default !== undefined) out.flags[name] = spec.default
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) {
      out.positionals.push(a)
      continue
    }
    const eq = a.indexOf('=')
    const name = a.slice(2, eq < 0 ? undefined : eq)
    const spec = flags[name]
    if (!spec) throw new UsageError(`unknown option --${name}`, { details: 'see --help' })
    if (spec.type === 'boolean') {
      out.flags[name] = eq < 0 ? true : a.slice(eq + 1) !== 'false'
      continue
    }
    let raw: string | undefined = eq < 0 ? argv[++i] : a.slice(eq + 1)
    if (raw === undefined) throw new UsageError(`option --${name} needs a value`)
    if (spec.type === 'number') {
      const n = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(n)) throw new InvalidParameterError(name, raw, 'a number')
      out.flags[name] = n
    } else out.flags[name] = raw
  }
  return out
}

export function helpText(cmd: Command): string {
  const lines = [`Usage: tessera ${cmd.usage}`, '', cmd.summary, '']
  const names = Object.keys(cmd.flags)
  if (names.length) lines.push('Options:')
  for (const n of names) {
    const f = cmd.flags[n]
    const left = `  --${n}${f.type === 'boolean' ? '' : ` <${f.type}>`}`
    const def = f.default !== undefined ? ` (default ${f.default})` : ''
    lines.push(`${left.padEnd(26)} ${f.description}${def}`)
  }
  return lines.join('\n')
}
