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

/** A kernel worker thread that exited (while starting or mid-run) or whose command threw. */
export class KernelWorkerError extends BaseError {
  override name = 'KernelWorkerError'
  constructor(details: string, cause?: unknown) {
    super('kernel worker failed', { details, cause })
  }
}

/** A kernel worker that did not finish a command in the time allowed (stuck or starved). */
export class KernelTimeoutError extends BaseError {
  override name = 'KernelTimeoutError'
  constructor(details: string) {
    super('kernel worker timed out', { details })
  }
}

/** A compiled kernel file (build/*.wasm) that is missing or unreadable: the build step did not run. */
export class KernelBuildMissingError extends BaseError {
  override name = 'KernelBuildMissingError'
  constructor(path: string, cause?: unknown) {
    super(`missing kernel build ${path}`, { details: 'run `npm run build` (scripts/build/10-wasm.mjs)', cause })
  }
}

/** A call on a kernel backend after `close()`. */
export class KernelClosedError extends BaseError {
  override name = 'KernelClosedError'
  constructor(what: string) {
    super('the kernel backend is closed', { details: `cannot ${what} after close()` })
  }
}
