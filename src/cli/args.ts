/**
 * A small, strict argument parser for the CLI: `--flag value`, `--flag=value`, `-f value`, boolean
 * `--flag`, positionals, `--` before positionals that start with a dash. Unknown flags and surplus
 * words are errors that name them, so a typo never silently becomes a default; a flag given twice
 * is an error unless it is `multiple` (then every value is kept, in order).
 */
import { BaseError, InvalidParameterError } from '../errors.js'

export type FlagSpec = {
  type: 'string' | 'number' | 'boolean'
  description: string
  default?: string | number | boolean
  /** One-letter alias, e.g. `m` for `-m`. */
  short?: string
  /** Repeatable: the parsed value is the array of every value given. */
  multiple?: boolean
}

export type Command = {
  /** Space-separated command path, e.g. `model synth`. */
  name: string
  summary: string
  usage: string
  flags: Record<string, FlagSpec>
  /** A group whose help lists this command too (`stake` is listed by `tessera chain --help`). */
  group?: string
  /** Most positional words the command takes (default 0). */
  positionals?: number
  run(args: ParsedArgs, signal: AbortSignal): Promise<number>
}

export type FlagValue = string | number | boolean | string[] | number[] | undefined

export type ParsedArgs = { flags: Record<string, FlagValue>; positionals: string[] }

export class UsageError extends BaseError {
  override name = 'UsageError'
}

export function parseArgs(argv: string[], flags: Record<string, FlagSpec>, maxPositionals = Number.POSITIVE_INFINITY): ParsedArgs {
  const out: ParsedArgs = { flags: {}, positionals: [] }
  const seen = new Set<string>()
  const shorts = new Map(Object.entries(flags).flatMap(([name, spec]) => (spec.short ? [[spec.short, name] as const] : [])))
  let onlyPositionals = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (onlyPositionals || a === '-' || !a.startsWith('-')) {
      if (out.positionals.length >= maxPositionals) throw new UsageError(`unexpected argument "${a}"`, { details: 'see --help' })
      out.positionals.push(a)
      continue
    }
    if (a === '--') {
      onlyPositionals = true
      continue
    }
    let name: string
    let inline: string | undefined
    if (a.startsWith('--')) {
      const eq = a.indexOf('=')
      name = a.slice(2, eq < 0 ? undefined : eq)
      inline = eq < 0 ? undefined : a.slice(eq + 1)
      if (!flags[name]) throw new UsageError(`unknown option --${name}`, { details: 'see --help' })
    } else {
      const long = shorts.get(a.slice(1, 2))
      if (!long) throw new UsageError(`unknown option ${a.slice(0, 2)}`, { details: 'see --help' })
      name = long
      if (a.length > 2) inline = a.slice(2)
    }
    const spec = flags[name]
    if (seen.has(name) && !spec.multiple) throw new UsageError(`option --${name} given twice`)
    seen.add(name)
    if (spec.type === 'boolean') {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') throw new InvalidParameterError(name, inline, 'true or false')
      out.flags[name] = inline !== 'false'
      continue
    }
    const raw: string | undefined = inline ?? argv[++i]
    if (raw === undefined) throw new UsageError(`option --${name} needs a value`)
    let value: string | number = raw
    if (spec.type === 'number') {
      value = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(value)) throw new InvalidParameterError(name, raw, 'a number')
    }
    if (spec.multiple) out.flags[name] = [...((out.flags[name] as (string | number)[] | undefined) ?? []), value] as string[] | number[]
    else out.flags[name] = value
  }
  for (const [name, spec] of Object.entries(flags)) if (out.flags[name] === undefined && spec.default !== undefined) out.flags[name] = spec.default
  return out
}

/** Every value of a `multiple` string flag (none: an empty array). */
export function stringList(v: FlagValue): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]
}

export function helpText(cmd: Command): string {
  const lines = [`Usage: tessera ${cmd.usage}`, '', cmd.summary, '']
  const names = Object.keys(cmd.flags)
  if (names.length) lines.push('Options:')
  for (const n of names) {
    const f = cmd.flags[n]
    const left = `  ${f.short ? `-${f.short}, ` : ''}--${n}${f.type === 'boolean' ? '' : ` <${f.type}>`}`
    const def = f.default !== undefined ? ` (default ${f.default})` : ''
    const many = f.multiple ? ' (repeatable)' : ''
    lines.push(`${left.padEnd(28)} ${f.description}${def}${many}`)
  }
  lines.push('  -h, --help                   show this help')
  return lines.join('\n')
}
