/**
 * Lazy loading for commands: viem, EDR, libp2p and the runtime are imported inside a command's
 * `run`, not at the top of its module (see main.ts on start-up cost). Loading a module cannot be
 * cancelled, so Ctrl-C while it loads (a busy machine can take seconds) would wait for it; `load`
 * rejects at once with the signal's reason instead, and main.ts exits 130.
 */
export function load<T>(signal: AbortSignal, modules: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    modules.then(
      (m) => {
        signal.removeEventListener('abort', onAbort)
        resolve(m)
      },
      (e) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}
