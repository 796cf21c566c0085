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
