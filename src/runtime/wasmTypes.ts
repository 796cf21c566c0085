import { readFileSync } from 'node:fs'
import { KernelBuildMissingError } from '../engine/kernels/errors.js'

/**
 * The few WebAssembly JS API types the kernel runtime uses. The project compiles with lib ES2022
 * and no DOM, where TypeScript has no `WebAssembly` namespace, so they are declared here, locally,
 * rather than as globals that could clash with other declarations.
 */
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer
  grow(pages: number): number
}
/** An opaque compiled module (structured-cloneable to workers). */
export interface WasmModule {
  readonly __wasmModule?: never
}
export interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> }
  Memory: new (desc: { initial: number; maximum: number; shared: true }) => WasmMemory
}

export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly

const compiled = new Map<string, WasmModule>()

/**
 * A module built by scripts/build/10-wasm.mjs into build/ (`kernels.wasm`, `layer.wasm`),
 * compiled once per process; the relative path is the same from src/ and from dist/.
 */
export function builtModule(file: string): WasmModule {
  let m = compiled.get(file)
  if (!m) {
    const url = new URL(`../../build/${file}`, import.meta.url)
    let bytes: Buffer
    try {
      bytes = readFileSync(url)
    } catch (err) {
      throw new KernelBuildMissingError(url.pathname, err)
    }
    m = new WA.Module(bytes)
    compiled.set(file, m)
  }
  return m
}
