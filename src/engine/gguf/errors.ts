/**
 * Errors raised while reading, writing or interpreting GGUF files. Each names the file position,
 * tensor or key at fault so that a user can tell a truncated download from an unsupported model.
 */
import { BaseError, type BaseErrorOptions } from '../../errors.js'

/** The bytes are not a well-formed GGUF file (bad magic, truncated, inconsistent header). */
export class GgufFormatError extends BaseError {
  override name = 'GgufFormatError'
  constructor(message: string, options: BaseErrorOptions = {}) {
    super(message, { docs: 'docs/GGUF.md', ...options })
  }
}

/** A tensor is stored in a ggml type that the canonical arithmetic does not define. */
export class UnsupportedTensorTypeError extends BaseError {
  override name = 'UnsupportedTensorTypeError'
  constructor(tensor: string, typeName: string, supported: readonly string[]) {
    super(`tensor ${tensor} has unsupported type ${typeName}`, {
      details: `supported types: ${supported.join(', ')}`,
      docs: 'docs/GGUF.md',
    })
  }
}

/** A metadata key that the model needs is missing or has the wrong type. */
export class GgufMetadataError extends BaseError {
  override name = 'GgufMetadataError'
  constructor(message: string, options: BaseErrorOptions = {}) {
    super(message, { docs: 'docs/GGUF.md', ...options })
  }
}

/** Tensor data or a tensor spec that does not match its declared type and shape. */
export class GgufTensorDataError extends BaseError {
  override name = 'GgufTensorDataError'
  constructor(message: string, options: BaseErrorOptions = {}) {
    super(message, { docs: 'docs/GGUF.md', ...options })
  }
}
