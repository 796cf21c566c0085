/**
 * Loading one of the optional native addons that scripts/build/20-native.mjs builds into
 * build/native/ (tessera_q8, tessera_attention, tessera_train): x86-64 only, loaded once per
 * thread, and when it cannot load the reason is kept (each caller falls back to its WASM or
 * TypeScript twin, which gives the same bits).
 */
import { createRequire } from 'node:module'

export type AddonLoader<T> = {
  /** The addon; undefined when it is not built or cannot run here. */
  load(): T | undefined
  /** Why `load` returned undefined (undefined when it loaded). */
  unavailable(): string | undefined
}

/** `target` is the binding.gyp target name; `what` names it in the reason (e.g. "native attention"); `onLoad` runs once after a load. */
export function addonLoader<T>(target: string, what: string, onLoad?: (addon: T) => void): AddonLoader<T> {
  let loaded: T | undefined
  let why: string | undefined
  const load = (): T | undefined => {
    if (loaded || why !== undefined) return loaded
    if (process.arch !== 'x64') {
      why = `${what} is x86-64 only (this is ${process.arch})`
      return undefined
    }
    // Same relative path from src/runtime/native and dist/runtime/native.
    const file = new URL(`../../../build/native/build/Release/${target}.node`, import.meta.url)
    try {
      loaded = createRequire(import.meta.url)(file.pathname) as T
      onLoad?.(loaded)
    } catch (err) {
      why = `${what} not loaded from ${file.pathname}: ${(err as Error).message.split('\n')[0]}`
    }
    return loaded
  }
  return {
    load,
    unavailable: () => {
      load()
      return why
    },
  }
}
