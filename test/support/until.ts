/**
 * Polls `check` every `everyMs` until it gives a value (not undefined or false) and returns it;
 * throws naming `what` once `ms` have passed. For tests that wait on other processes or nodes.
 *
 * @example
 *   const offer = await until('the provider offer', () => client.offers().find((o) => o.provider === p), 30_000)
 */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms: number, everyMs = 100): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
