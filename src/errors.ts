/**
 * One error base for the whole project (after viem's `errors/base.ts`): a short message, optional
 * details, the cause chain and a pointer into docs/. Library code throws subclasses; only the CLI
 * entry turns them into one line and an exit code. Tests assert on `name`, never on the text.
 */
export type BaseErrorOptions = { details?: string; cause?: unknown; docs?: string }

export class BaseError extends Error {
  override name = 'BaseError'
  readonly shortMessage: string
  readonly details?: string
  readonly docs?: string

  constructor(shortMessage: string, options: BaseErrorOptions = {}) {
    super(shortMessage + (options.details ? `: ${options.details}` : ''), { cause: options.cause })
    this.shortMessage = shortMessage
    this.details = options.details
    this.docs = options.docs
  }
}

/**
 * A parameter outside its allowed range, named by `param` (the option's name, e.g. `max-tokens`;
 * the CLI shows it as the flag `--max-tokens`).
 */
export class InvalidParameterError extends BaseError {
  override name = 'InvalidParameterError'
  readonly param: string
  readonly value: unknown
  readonly expected: string
  constructor(param: string, value: unknown, expected: string) {
    super(`invalid ${param} ${JSON.stringify(value)}`, { details: `expected ${expected}` })
    this.param = param
    this.value = value
    this.expected = expected
  }
}

/** A file that does not exist or cannot be read. */
export class FileNotFoundError extends BaseError {
  override name = 'FileNotFoundError'
  constructor(path: string, cause?: unknown) {
    super(`cannot read ${path}`, { details: 'no such file or not readable', cause })
  }
}
