/**
 * File I/O for GGUF: a `ByteSource` that reads a file by ranges (the header is parsed without
 * loading the tensors), and an atomic streaming writer (temp file + rename, so a crashed or
 * aborted write never leaves a half-written model under the final name).
 */
import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { FileNotFoundError } from '../errors.js'
import type { ByteSource } from '../engine/gguf/read.js'

/** A `ByteSource` over an open file; call `close()` when done. */
export type FileByteSource = ByteSource & { readonly path: string; close(): void }

/**
 * Opens `path` for ranged reads. `read(offset, length)` returns a fresh buffer holding the bytes
 * (fewer only at the end of the file).
 *
 * @example
 *   const src = openGgufSource('model.gguf'); try { readGguf(src) } finally { src.close() }
 */
export function openGgufSource(path: string): FileByteSource {
  let fd: number
  let size: number
  try {
    fd = openSync(path, 'r')
    size = statSync(path).size
  } catch (cause) {
    throw new FileNotFoundError(path, cause)
  }
  return {
    path,
    size,
    read(offset: number, length: number): Uint8Array {
      const n = Math.max(0, Math.min(length, size - offset))
      const buf = new Uint8Array(n)
      let got = 0
      while (got < n) {
        const r = readSync(fd, buf, got, n - got, offset + got)
        if (r === 0) break
        got += r
      }
      return got === n ? buf : buf.subarray(0, got)
    },
    close(): void {
      closeSync(fd)
    },
  }
}

/** Progress callback: bytes written so far (and the expected total when the caller knows it). */
export type WriteProgress = (written: number) => void

/**
 * Writes `chunks` to `path` atomically: into `path.tmp-<pid>` first, fsynced, then renamed over
 * `path`. On any error (or an abort through `signal`) the temp file is removed and the error
 * rethrown. Returns the bytes written.
 *
 * @example
 *   writeGgufFile('tiny.gguf', encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 1 })))
 */
export function writeGgufFile(path: string, chunks: Iterable<Uint8Array>, onProgress?: WriteProgress, signal?: AbortSignal): number {
  const steps = writeSteps(path, chunks, onProgress, signal)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/**
 * `writeGgufFile` that yields to the event loop after each chunk, so `signal` (e.g. Ctrl-C) stops
 * a long write, which then leaves no file behind.
 */
export async function writeGgufFileAsync(path: string, chunks: Iterable<Uint8Array>, onProgress?: WriteProgress, signal?: AbortSignal): Promise<number> {
  const steps = writeSteps(path, chunks, onProgress, signal)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

/** The one write loop: yields after each chunk; the temp file goes on any throw. */
function* writeSteps(path: string, chunks: Iterable<Uint8Array>, onProgress?: WriteProgress, signal?: AbortSignal): Generator<void, number> {
  signal?.throwIfAborted()
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w')
  let written = 0
  try {
    for (const chunk of chunks) {
      signal?.throwIfAborted()
      let o = 0
      while (o < chunk.length) o += writeSync(fd, chunk, o, chunk.length - o)
      written += chunk.length
      onProgress?.(written)
      yield
    }
    signal?.throwIfAborted()
    fsyncSync(fd)
    closeSync(fd)
  } catch (err) {
    closeSync(fd)
    rmSync(tmp, { force: true })
    throw err
  }
  renameSync(tmp, path)
  return written
}
