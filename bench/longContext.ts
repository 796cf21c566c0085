/**
 * Long-context attention (docs/BENCHMARKS.md "Long context"): decode tok/s at 1,000 / 4,000 / 8,000
 * tokens of context and the 8k/1k step-time ratio, and the prefill of a 4,000-token prompt, for
 * Tessera (WASM backend, untraced forward passes) and llama.cpp in the same run, at each thread count.
 *
 * One cache per thread count: the 4,000-token prompt is prefilled in batches of 64 (timed: the
 * prefill row), decode is timed at 1,000 positions by cutting the cache back (`cache.length`: the
 * rows past it are overwritten, and a step's cost depends only on how many rows it reads), then at
 * 4,000, then the prompt is extended to 8,000 and decode is timed there. llama.cpp: `timePrefill`
 * of the same 4,000 tokens and `timeDecode` after prompts of 1,000 / 4,000 / 8,000 tokens.
 *
 * Each point also records the process CPU time of the same interval (cpuSince): on a loaded machine a
 * 1-thread engine's CPU time per token hardly moves while its wall time does, so the second table
 * (CPU ms per token and llama.cpp's over Tessera's: > 1 means Tessera is cheaper) is the fairer
 * comparison there (with 2+ threads Tessera's spinning workers count too).
 *
 * `--arith 1,2` runs both arithmetics on one loaded model, interleaved: the prefill of each, then at
 * each context a decode point of each (tessera-arith/1 keeps K/V in binary32, /2 in binary16: half
 * the bytes each decode step streams). One row per arithmetic; llama.cpp's numbers are repeated.
 *
 * Usage: node --import tsx bench/longContext.ts [--model smol-135m] [--type q8_0] [--threads 1,2] [--arith 1,2] [--steps 16] [--no-llama]
 */
import { fileURLToPath } from 'node:url'
import { loadavg } from 'node:os'
import { KVCache } from '../src/engine/model/transformer.js'
import { ARITH_V1, ARITH_V2, ARITH_VERSION, type ArithVersion } from '../src/engine/version.js'
import { loadModel, type Model } from '../src/runtime/model.js'
import type { WasmLayerOps } from '../src/runtime/wasmLayerOps.js'
import { cpuSince, openLlamaCpp, synthModelFile } from './llamacpp.js'
import { arg, benchArgs, median } from './util.js'
import { argmax } from '../src/engine/sample.js'

benchArgs({
  summary: 'Decode tok/s at 1,000 / 4,000 / 8,000 tokens of context and a 4,000-token prefill, Tessera and llama.cpp. Prints tables; writes nothing.',
  usage: 'node --import tsx bench/longContext.ts [flags]',
  flags: {
    model: { value: 'PRESET', help: 'synth preset (default smol-135m)' },
    type: { value: 'TYPE', help: 'quant type (default q8_0)' },
    threads: { value: 'LIST', help: 'thread counts (default 1,2)' },
    steps: { value: 'N', help: 'decode steps timed per point (default 16)' },
    arith: { value: 'LIST', help: `arithmetics, 1 and/or 2, interleaved (default the engine's: ${ARITH_VERSION === ARITH_V1 ? 1 : 2})` },
    'no-llama': { help: 'Tessera alone' },
  },
})

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const preset = arg('model', 'smol-135m')
const type = arg('type', 'q8_0')
const threadCounts = arg('threads', '1,2').split(',').map(Number)
const steps = Number(arg('steps', '16'))
const withLlama = !process.argv.includes('--no-llama')
const ariths: ArithVersion[] = arg('arith', ARITH_VERSION === ARITH_V1 ? '1' : '2').split(',').map((a) => (a === '2' ? ARITH_V2 : ARITH_V1))
const tag = (a: ArithVersion) => (a === ARITH_V1 ? 'v1' : 'v2')
const CONTEXTS = [1000, 4000, 8000]
const PROMPT = 4000

/** Median ms of one greedy decode step over `steps` steps from `cache.length = at`, and CPU ms per step. */
function decodeMs(m: Model, cache: KVCache, at: number, first: number): { ms: number; cpu: number } {
  cache.length = at
  const ts: number[] = []
  let id = first
  const c0 = process.cpuUsage()
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now()
    id = argmax(m.transformer.forward([id], cache, 1))
    ts.push(performance.now() - t0)
  }
  return { ms: median(ts), cpu: (cpuSince(c0) * 1000) / steps }
}

/** Wall times (decode: ms per step; prefill: tok/s) and CPU ms per token of both engines. */
type Row = {
  threads: string; decode: number[]; prefill: number; lDecode: number[]; lPrefill: number
  cDecode: number[]; cPrefill: number; lcDecode: number[]; lcPrefill: number
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–')
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–')

/** One table row, printed as soon as its thread count is done (a long run keeps what it measured). */
function printRow(r: Row): void {
  const cells = r.decode.map((ms, i) => `${f1(1000 / ms)} (${f1(r.lDecode[i])}, ${f2(1000 / ms / r.lDecode[i])})`)
  const ratio = r.decode.at(-1)! / r.decode[0]
  const lRatio = r.lDecode[0] / r.lDecode.at(-1)!
  console.log(`| ${r.threads} | ${cells.join(' | ')} | ${f2(ratio)} (${f2(lRatio)}) | ${f1(r.prefill)} (${f1(r.lPrefill)}, ${f2(r.prefill / r.lPrefill)}) |`)
  const cpu = r.cDecode.map((c, i) => `${f1(c)} (${f1(r.lcDecode[i])}, ${f2(r.lcDecode[i] / c)})`)
  console.log(`| ${r.threads}, CPU ms/token | ${cpu.join(' | ')} | ${f2(r.cDecode.at(-1)! / r.cDecode[0])} (${f2(r.lcDecode.at(-1)! / r.lcDecode[0])}) | ${f2(r.cPrefill)} (${f2(r.lcPrefill)}, ${f2(r.lcPrefill / r.cPrefill)}) |`)
}

console.log(`${preset} ${type}, ${steps} decode steps per point (median step), load average at start ${loadavg()[0].toFixed(1)}`)
console.log(`| threads | ${CONTEXTS.map((c) => `decode @${c} tok/s (llama.cpp, ratio)`).join(' | ')} | step 8k/1k (llama.cpp) | prefill ${PROMPT} tok/s (llama.cpp, ratio) |`)
console.log(`|---|${CONTEXTS.map(() => '---').join('|')}|---|---|`)

const path = synthModelFile(`${ROOT}.tessera/bench`, preset, type)
for (const threads of threadCounts) {
  const m = await loadModel(path, { threads, hugePages: true })
  const V = m.transformer.config.vocabSize
  const prompt = Array.from({ length: CONTEXTS.at(-1)! + steps }, (_, i) => 3 + ((i * 7919 + 13) % (V - 3)))
  // attention workers start asynchronously: let them come up before timing
  const ops = m.backend.layerOps as WasmLayerOps | undefined
  for (let i = 0; i < 300 && ops && ops.readyWorkers < threads - 1; i++) await new Promise((r) => setTimeout(r, 20))
  // one cache per arithmetic, each step taken for every arithmetic in turn (interleaved)
  const caches = ariths.map((a) => new KVCache(m.transformer.config, prompt.length + steps, a))
  const rows = ariths.map(() => ({ prefill: 0, cPrefill: 0, decode: [] as number[], cDecode: [] as number[] }))
  process.stderr.write(`${preset} ${type}, ${threads} thread(s), ${ariths.map(tag).join('/')}: prefill ${PROMPT}`)
  caches.forEach((cache, i) => {
    const t0 = performance.now()
    const c0 = process.cpuUsage()
    for (let s = 0; s < PROMPT; s += 64) m.transformer.forward(prompt.slice(s, Math.min(s + 64, PROMPT)), cache, 0)
    rows[i].prefill = PROMPT / ((performance.now() - t0) / 1000)
    rows[i].cPrefill = (cpuSince(c0) * 1000) / PROMPT
    process.stderr.write(` ${tag(ariths[i])} (${rows[i].prefill.toFixed(1)} tok/s, ${rows[i].cPrefill.toFixed(2)} CPU ms/token)`)
  })
  for (const at of CONTEXTS) {
    caches.forEach((cache, i) => {
      if (at > PROMPT) {
        process.stderr.write(`, ${tag(ariths[i])} extend to ${at}`)
        cache.length = PROMPT
        for (let s = PROMPT; s < at; s += 64) m.transformer.forward(prompt.slice(s, Math.min(s + 64, at)), cache, 0)
      }
    })
    caches.forEach((cache, i) => {
      process.stderr.write(`, ${tag(ariths[i])} decode at ${at}`)
      const d = decodeMs(m, cache, at, prompt[at])
      process.stderr.write(` (${d.ms.toFixed(1)} ms, ${d.cpu.toFixed(1)} CPU ms)`)
      rows[i].decode.push(d.ms)
      rows[i].cDecode.push(d.cpu)
    })
  }
  m.close()
  const lDecode: number[] = []
  const lcDecode: number[] = []
  let lPrefill = Number.NaN
  let lcPrefill = Number.NaN
  if (withLlama) {
    process.stderr.write(', llama.cpp')
    const ll = await openLlamaCpp(path, { threads, contextSize: CONTEXTS.at(-1)! + steps + 64, batchSize: 512 })
    try {
      const p = await ll.timePrefill(prompt.slice(0, PROMPT))
      lPrefill = p.tokensPerSecond
      lcPrefill = (p.cpuSeconds * 1000) / p.tokens
      process.stderr.write(` (prefill ${lPrefill.toFixed(1)} tok/s)`)
      for (const at of CONTEXTS) {
        const d = await ll.timeDecode(prompt.slice(0, at), steps)
        lDecode.push(d.tokensPerSecond)
        lcDecode.push((d.cpuSeconds * 1000) / d.tokens)
        process.stderr.write(` (@${at} ${d.tokensPerSecond.toFixed(1)} tok/s)`)
      }
    } finally {
      await ll.close()
    }
  }
  process.stderr.write('\n')
  rows.forEach((r, i) => printRow({ threads: `${threads} ${tag(ariths[i])}`, ...r, lDecode, lPrefill, lcDecode, lcPrefill }))
}

console.log(`load average at the end ${loadavg()[0].toFixed(1)}`)
