/**
 * Ctrl-C for the CLI. The first SIGINT aborts the command's `AbortSignal`: async work and the
 * loops that yield between steps (a model load between tensors, a prefill or a replay between
 * batches, generation between tokens, file chunks, the chain server) stop, clean up, and the CLI
 * exits 130 with one line. A second SIGINT exits 130 at once, for a step that takes too long.
 */
export const INTERRUPTED = 130

/** Installs the SIGINT handler for one command run; returns its signal. */
export function interruptSignal(): AbortSignal {
  const controller = new AbortController()
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(INTERRUPTED)
    controller.abort(new InterruptedError())
  })
  return controller.signal
}

export class InterruptedError extends Error {
  override name = 'InterruptedError'
  constructor() {
    super('interrupted')
  }
}
