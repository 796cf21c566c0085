import { BaseError } from '../../errors.js'

/** A tensor type the canonical arithmetic does not define (docs/ARITHMETIC.md lists the ones it does). */
export class UnsupportedTensorTypeError extends BaseError {
  override name = 'UnsupportedTensorTypeError'
  constructor(type: number, where: string) {
    super(`tensor type ${type} is not supported by ${where}`, {
      details: 'supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K',
      docs: 'docs/ARITHMETIC.md',
    })
  }
}

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
