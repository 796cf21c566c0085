/**
 * Ctrl-C for the CLI. The first SIGINT aborts the command's `AbortSignal`: async work and the
 * loops that yield between steps (tokens, file chunks, the chain server) stop, clean up, and the
 * CLI exits 130. A second SIGINT exits 130 at once. Work that blocks the event loop and has
 * nothing to clean up (loading a model, a replay) runs inside `endOnInterrupt`, where SIGINT has
 * its default action: the process ends at once, killed by the signal (a shell reports 130 too).
 */
export const INTERRUPTED = 130

let onSigint: (() => void) | undefined

/** Installs the SIGINT handler for one command run; returns its signal. */
export function interruptSignal(): AbortSignal {
  const controller = new AbortController()
  onSigint = () => {
    if (controller.signal.aborted) process.exit(INTERRUPTED)
    controller.abort(new InterruptedError())
  }
  process.on('SIGINT', onSigint)
  return controller.signal
}

/** Runs `fn` with SIGINT's default action (see the file comment); rethrows if already interrupted. */
export async function endOnInterrupt<T>(signal: AbortSignal, fn: () => T | Promise<T>): Promise<T> {
  signal.throwIfAborted()
  if (onSigint) process.off('SIGINT', onSigint)
  try {
    return await fn()
  } finally {
    if (onSigint) process.on('SIGINT', onSigint)
  }
}

export class InterruptedError extends Error {
  override name = 'InterruptedError'
  constructor() {
    super('interrupted')
  }
}
