/**
 * Trace leaf hashing alone, per model shape: trace format 2 (src/trace/traceTree.ts: vector roots
 * of residual, K, V and logits) against format 1 (one SHA-256 over the raw vectors per layer leaf,
 * SHA-256 of the logits in the head leaf; reproduced here as it was). Format 2 is timed on the JS
 * path (one node:crypto call per chunk and per tree node) and, when the native addon is built, on
 * its one-call-per-vector-or-leaf path (`useTraceHasher`, what loadModel's WASM backend installs).
 * Prints microseconds per layer leaf, per head leaf (with logits) and per decoded token (nLayer
 * layer leaves + one head leaf), the median of `--runs` runs of `--tokens` tokens each.
 *
 * Usage: node --import tsx bench/trace.ts [--models smol-135m,tinyllama-1.1b --tokens 200 --runs 5]
 */
import { loadavg } from 'node:os'
import { PRESETS } from '../src/engine/model/presets.js'
import { leafHash, sha256, sha256Once } from '../src/trace/merkle.js'
import { loadNativeQ8 } from '../src/runtime/native/q8.js'
import { headLeaf, layerLeaf, useTraceHasher } from '../src/trace/traceTree.js'
import { arg, benchArgs, median } from './util.js'

benchArgs({
  summary: 'Trace leaf hashing alone per model shape, trace format 2 (JS and native paths) against format 1. Prints a table; writes nothing.',
  usage: 'node --import tsx bench/trace.ts [flags]',
  flags: {
    models: { value: 'LIST', help: 'synth presets (default smol-135m,tinyllama-1.1b)' },
    tokens: { value: 'N', help: 'tokens per run (default 200)' },
    runs: { value: 'N', help: 'runs, the median reported (default 5)' },
  },
})

// Format 1, as traceTree.ts computed it before format 2 (commit 0aab917^): 0x00 || u32 pos ||
// u32 layer || residual || k || v assembled in reused scratch and hashed in one call.
let scratch = new Uint8Array(0)
function layerLeafV1(pos: number, layer: number, residual: Float32Array, dim: number, k: Float32Array, v: Float32Array, kvDim: number): Uint8Array {
  const n = 9 + (dim + 2 * kvDim) * 4
  if (scratch.length < n) scratch = new Uint8Array(n)
  const buf = scratch.subarray(0, n)
  const dv = new DataView(buf.buffer, buf.byteOffset, 9)
  dv.setUint32(1, pos, true)
  dv.setUint32(5, layer, true)
  buf.set(new Uint8Array(residual.buffer, residual.byteOffset, dim * 4), 9)
  buf.set(new Uint8Array(k.buffer, k.byteOffset, kvDim * 4), 9 + dim * 4)
  buf.set(new Uint8Array(v.buffer, v.byteOffset, kvDim * 4), 9 + (dim + kvDim) * 4)
  return sha256Once(buf)
}
function headLeafV1(pos: number, nLayer: number, next: number, logits: Float32Array): Uint8Array {
  const h = new Uint8Array(12)
  const dv = new DataView(h.buffer)
  dv.setUint32(0, pos, true)
  dv.setUint32(4, nLayer, true)
  dv.setUint32(8, next, true)
  return leafHash(Buffer.concat([h, sha256(new Uint8Array(logits.buffer))]))
}

/** Microseconds per call of `fn(i)` over `n` calls, the median of `runs` runs (one warm-up). */
function time(n: number, runs: number, fn: (i: number) => void): number {
  const out: number[] = []
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) fn(i)
    if (r > 0) out.push(((performance.now() - t0) * 1000) / n)
  }
  return median(out)
}

const models = arg('models', 'smol-135m,tinyllama-1.1b').split(',')
const tokens = Number(arg('tokens', '200'))
const runs = Number(arg('runs', '5'))
console.log(`load average ${loadavg()[0].toFixed(2)} at start; ${tokens} tokens x ${runs} runs, median; Node ${process.version}`)
const native = loadNativeQ8()
useTraceHasher(undefined)
console.log('| model | dim, kvDim, nLayer, vocab | layer leaf v1 µs | v2 JS | v2 native | head leaf v1 µs | v2 JS | v2 native | per token v1 µs | v2 JS | v2 native |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|')
for (const name of models) {
  const p = PRESETS[name]
  if (!p) throw new Error(`unknown model ${name}: ${Object.keys(PRESETS).join(', ')}`)
  const dim = p.dim
  const kvDim = p.nKvHead * (p.dim / p.nHead)
  const residual = new Float32Array(dim).map((_, i) => Math.sin(i))
  const k = new Float32Array(kvDim).map((_, i) => Math.cos(i))
  const v = new Float32Array(kvDim).fill(-0.25)
  const logits = new Float32Array(p.vocabSize).map((_, i) => Math.cos(i * 0.1))
  const n = tokens * p.nLayer
  const l1 = time(n, runs, (i) => layerLeafV1(i, i % p.nLayer, residual, dim, k, v, kvDim))
  const v2 = () => ({
    l: time(n, runs, (i) => layerLeaf(i, i % p.nLayer, residual, 0, dim, k, v, 0, kvDim)),
    h: time(tokens, runs, (i) => headLeaf(i, p.nLayer, 1, logits)),
  })
  const js = v2()
  let nat: { l: number; h: number } | undefined
  if (native) {
    useTraceHasher(native)
    nat = v2()
    useTraceHasher(undefined)
  }
  const h1 = time(tokens, runs, (i) => headLeafV1(i, p.nLayer, 1, logits))
  const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(1))
  const tok = (l: number, h: number) => p.nLayer * l + h
  console.log(
    `| ${name} | ${dim}, ${kvDim}, ${p.nLayer}, ${p.vocabSize} | ${f(l1)} | ${f(js.l)} | ${f(nat?.l)} | ${f(h1)} | ${f(js.h)} | ${f(nat?.h)} | ` +
      `${f(tok(l1, h1))} | ${f(tok(js.l, js.h))} | ${f(nat && tok(nat.l, nat.h))} |`,
  )
}
console.log(`load average ${loadavg()[0].toFixed(2)} at end`)
