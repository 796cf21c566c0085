/**
 * The model-load benchmark (`npm run bench:load`): where the time of `loadModel` goes, on the same
 * synthesized Q8_0 files as `npm run bench` (cached under .tessera/bench/, gitignored).
 *
 * Per model, each the median of RUNS rounds (one process, file in the page cache; each round runs
 * every phase once, so a busy spell on the shared machine hits all phases alike):
 * - load: `loadModel(path, { threads })` wall time, end to end (backend start, reads, row hashing,
 *   writeRows, tokenizer, model root);
 * - loadWeights (backend start + `loadWeights`) with the row hashing three ways: on the hash worker
 *   pool (the default), the fast path on the loading thread (`hashWorkers: 0`), and the plain
 *   `RowHasher` on the loading thread (`hashing: 'reference'`, how every load hashed before);
 * - read: every tensor's bytes read as `loadWeights` reads them (4 MiB reads), nothing else;
 * - hash: the model root's row commitments and row roots over those bytes, reads not counted:
 *   the plain reference (`RowHasher`) and the fast single-thread path (`rowCommitmentsInto`);
 * - writeRows: `backend.writeRows` of every 2-D weight into a fresh WASM backend, reads not counted.
 * The phases are timed one at a time; in `load` the hashing runs on worker threads beside the
 * reads and writeRows, so the phases do not add up to the load time. Share = phase / load.
 *
 * Usage: npm run bench:load [-- --models smol-135m,tinyllama-1.1b --threads 2 --runs 3]
 * (`npm run bench:load` runs node with --expose-gc, so that each phase starts after a full GC).
 */
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { RowHasher, rowCommitmentsInto, tensorRowsCols } from '../src/engine/gguf/modelRoot.js'
import { readGguf } from '../src/engine/gguf/read.js'
import { rowBytes } from '../src/engine/gguf/types.js'
import { type FileByteSource, openGgufSource } from '../src/runtime/ggufFile.js'
import { type LoadOptions, loadWeights } from '../src/runtime/loadWeights.js'
import { loadModel } from '../src/runtime/model.js'
import { createWasmBackend } from '../src/runtime/wasmBackend.js'
import { merkleRootPacked } from '../src/trace/merkle.js'
import { synthModelFile } from './llamacpp.js'
import { arg, benchArgs, median } from './util.js'

benchArgs({
  summary: 'Where the time of loadModel goes (load, loadWeights, reads, hashing, writeRows) on the synthesized Q8_0 files. Prints a table; writes nothing.',
  usage: 'npm run bench:load [-- flags]   (node --expose-gc --import tsx bench/load.ts [flags])',
  flags: {
    models: { value: 'LIST', help: 'synth presets (default smol-135m,tinyllama-1.1b)' },
    threads: { value: 'N', help: 'threads (default 2)' },
    runs: { value: 'N', help: 'rounds, the median reported (default 3)' },
  },
})

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CACHE = `${ROOT}.tessera/bench`
const READ_BYTES = 4 << 20

type Piece = { name: string; type: number; rows: number; cols: number; row0: number; n: number; matrix: boolean; bytes: () => Uint8Array }

/** Every tensor's bytes in `loadWeights`' read pattern: whole rows, about 4 MiB per read. */
function* pieces(src: FileByteSource): Generator<Piece> {
  const gguf = readGguf(src)
  for (const t of gguf.tensors) {
    const { rows, cols } = tensorRowsCols(t.dims)
    const rb = rowBytes(t.type, cols)
    const per = Math.max(1, Math.floor(READ_BYTES / rb))
    for (let r = 0; r < rows; r += per) {
      const n = Math.min(per, rows - r)
      yield { name: t.name, type: t.type, rows, cols, row0: r, n, matrix: t.dims.length > 1, bytes: () => src.read(t.fileOffset + r * rb, n * rb) }
    }
  }
}

/** Seconds spent in `timed(piece, bytes)` over every piece (reads outside the clock). */
function phase(path: string, timed: (p: Piece, bytes: Uint8Array) => void, end?: () => void): number {
  const src = openGgufSource(path)
  try {
    let s = 0
    for (const p of pieces(src)) {
      const bytes = p.bytes()
      const t0 = performance.now()
      timed(p, bytes)
      s += performance.now() - t0
    }
    const t0 = performance.now()
    end?.()
    return (s + performance.now() - t0) / 1000
  } finally {
    src.close()
  }
}

function readSeconds(path: string): number {
  const src = openGgufSource(path)
  try {
    const t0 = performance.now()
    for (const p of pieces(src)) p.bytes()
    return (performance.now() - t0) / 1000
  } finally {
    src.close()
  }
}

function referenceHashSeconds(path: string): number {
  const hashers = new Map<string, RowHasher>()
  return phase(path, (p, bytes) => {
    let h = hashers.get(p.name)
    if (!h) hashers.set(p.name, (h = new RowHasher(p.type, p.cols)))
    h.push(bytes)
    if (h.rowCount === p.rows) h.root()
  })
}

function fastHashSeconds(path: string): number {
  const commits = new Map<string, Uint8Array>()
  return phase(path, (p, bytes) => {
    let c = commits.get(p.name)
    if (!c) commits.set(p.name, (c = new Uint8Array(32 * p.rows)))
    rowCommitmentsInto(p.type, p.cols, bytes, c, 32 * p.row0)
    if (p.row0 + p.n === p.rows) merkleRootPacked(c, p.rows)
  })
}

async function writeRowsSeconds(path: string, threads: number): Promise<number> {
  const backend = await createWasmBackend({ threads })
  try {
    const handles = new Map<string, ReturnType<typeof backend.allocMatrix>>()
    return phase(path, (p, bytes) => {
      if (!p.matrix) return
      let m = handles.get(p.name)
      if (!m) handles.set(p.name, (m = backend.allocMatrix(p.name, p.type, p.rows, p.cols)))
      backend.writeRows(m, p.row0, bytes)
    })
  } finally {
    backend.close()
  }
}

async function loadWeightsSeconds(path: string, threads: number, options: LoadOptions): Promise<number> {
  const t0 = performance.now()
  const backend = await createWasmBackend({ threads })
  try {
    loadWeights(path, backend, options)
    return (performance.now() - t0) / 1000
  } finally {
    backend.close()
  }
}

async function loadSeconds(path: string, threads: number): Promise<number> {
  const t0 = performance.now()
  const model = await loadModel(path, { threads })
  const s = (performance.now() - t0) / 1000
  model.close()
  return s
}

async function main(): Promise<void> {
  const models = arg('models', 'smol-135m,tinyllama-1.1b').split(',')
  const threads = Number(arg('threads', '2'))
  const runs = Number(arg('runs', '3'))
  const load0 = loadavg()
  const out: string[] = ['| model | phase | seconds | share of load |', '|---|---|---:|---:|']
  for (const m of models) {
    process.stderr.write(`model ${m} q8_0 (synthesized once into ${CACHE})\n`)
    const path = synthModelFile(CACHE, m, 'q8_0')
    readSeconds(path) // page cache warm-up
    const phases: [string, () => number | Promise<number>][] = [
      [`load (loadModel, ${threads} threads)`, () => loadSeconds(path, threads)],
      ['loadWeights, hash on worker pool (default)', () => loadWeightsSeconds(path, threads, {})],
      ['loadWeights, fast hash on the loading thread', () => loadWeightsSeconds(path, threads, { hashWorkers: 0 })],
      ['loadWeights, plain RowHasher (as before)', () => loadWeightsSeconds(path, threads, { hashing: 'reference' })],
      ['read (4 MiB reads)', () => readSeconds(path)],
      ['hash, reference (RowHasher)', () => referenceHashSeconds(path)],
      ['hash, fast (rowCommitmentsInto, 1 thread)', () => fastHashSeconds(path)],
      [`writeRows (WASM, ${threads} threads)`, () => writeRowsSeconds(path, threads)],
    ]
    const times = phases.map((): number[] => [])
    for (let r = 0; r < runs; r++) {
      for (const [i, [name, f]] of phases.entries()) {
        process.stderr.write(`  ${m}: round ${r + 1}: ${name}\n`)
        // Closed backends' memories (GBs for 1.1B) go back only at a GC; start every phase without them.
        ;(globalThis as { gc?: () => void }).gc?.()
        times[i].push(await f())
      }
    }
    const load = median(times[0])
    phases.forEach(([name], i) => out.push(`| ${m} | ${name} | ${median(times[i]).toFixed(2)} | ${(100 * median(times[i]) / load).toFixed(0)}% |`))
  }
  const cpu = cpus()
  console.log(`Command: npm run bench:load -- --models ${models.join(',')} --threads ${threads} --runs ${runs} (median of ${runs})`)
  console.log(`Machine: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ` +
    `load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${loadavg().map((x) => x.toFixed(2)).join(' ')} at end`)
  console.log('')
  console.log(out.join('\n'))
}

await main()
