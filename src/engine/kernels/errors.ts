import { BaseError } from '../../errors.js'

// Unsupported tensor types are reported by the GGUF layer's error, whichever layer finds them.
export { UnsupportedTensorTypeError } from '../gguf/errors.js'

/** A matrix or vector whose size does not fit the operation (wrong length, cols not a block multiple, row out of range). */
export class KernelShapeError extends BaseError {
  override name = 'KernelShapeError'
  constructor(what: string, details: string) {
    super(`bad shape: ${what}`, { details })
  }
}

/** A WASM memory that cannot hold what was asked of it (a wasm32 memory ends at 4 GiB). */
export class KernelMemoryError extends BaseError {
  override name = 'KernelMemoryError'
  constructor(details: string) {
    super('out of kernel memory', { details })
  }
}
