/**
 * The engine benchmark (`npm run bench`): Tessera (WASM backend) against llama.cpp
 * (node-llama-cpp 3.22, prebuilt AVX2 CPU build) on the same synthesized GGUF files (Q8_0 by
 * default; `--types q4_k_m` for the K-quant mix), in one process, on 1 and 2 threads. It prints a
 * markdown table and rewrites the "Engine" section of docs/BENCHMARKS.md (Q8_0 alone) or the
 * "Engine, K-quants" section (any other type list); other sections are kept.
 *
 * Measured per (model, threads), each the median of RUNS runs after a warm-up:
 * - decode tok/s: single-token steps after a 16-token prompt. Tessera's headline number includes
 *   the trace commitments (layer observer + head leaf with the logits hash, as `runJob` does);
 *   it is also measured without them, which gives the trace cost;
 * - prefill tok/s: a 128-token prompt from an empty cache (Tessera in batches of 64, as `runJob`,
 *   with the trace; llama.cpp in one batch of 512);
 * - trace hashing measured directly: `TraceTree.observeLayer` for every layer plus `setHead` with
 *   the logits, per token, on the model's shapes, as a share of the untraced decode step;
 * - verify: `verify()` (teacher-forced batched replay of prompt + output) positions/s against the
 *   traced decode tok/s;
 * - the memory-bandwidth bound: weight bytes read per token (every 2-D weight, the token embedding
 *   only when it is also the output matrix) against STACK.md's measured read bandwidth;
 * - peak RSS of a 1.1B Q8_0 generation in a child process (`process.resourceUsage().maxRSS`).
 *
 * Models are synthesized once and cached under .tessera/bench/ (gitignored).
 *
 * Usage: npm run bench [-- --models smol-135m,tinyllama-1.1b --types q8_0 --threads 1,2 --runs 3 --no-write]
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { readGguf } from '../src/engine/gguf/read.js'
import { rowBytes } from '../src/engine/gguf/types.js'
import { KVCache } from '../src/engine/model/transformer.js'
import { BUILTIN_TEXT } from '../src/engine/tokenizer/index.js'
import { openGgufSource } from '../src/runtime/ggufFile.js'
import { generate, loadModel, type Model, verify } from '../src/runtime/model.js'
import { TraceTree } from '../src/trace/traceTree.js'
import { cpuLlama, cpuSince, openLlamaCpp, synthModelFile } from './llamacpp.js'
import { arg, benchArgs, median } from './util.js'
import { argmax } from '../src/engine/sample.js'
import { problemsText } from '../src/trace/job.js'

benchArgs({
  summary: 'Tessera (WASM backend) against llama.cpp on synthesized GGUF files: decode, prefill, trace cost, verify, peak RSS. Rewrites the "Engine" section of docs/BENCHMARKS.md (q8_0 alone) or "Engine, K-quants" unless --no-write.',
  usage: 'npm run bench [-- flags]   (node --import tsx bench/engine.ts [flags])',
  flags: {
    models: { value: 'LIST', help: 'synth presets (default smol-135m,tinyllama-1.1b)' },
    types: { value: 'LIST', help: 'quant types (default q8_0)' },
    threads: { value: 'LIST', help: 'thread counts (default 1,2)' },
    runs: { value: 'N', help: 'runs per point, the median reported (default 3)' },
    'no-write': { help: 'print the table only; leave docs/BENCHMARKS.md alone' },
  },
  internal: ['--rss-child'],
})

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CACHE = `${ROOT}.tessera/bench`
const DOC = `${ROOT}docs/BENCHMARKS.md`
/** Read bandwidth measured on this machine class (docs: /work/shared/design/STACK.md), GB/s. */
const BANDWIDTH: Record<number, number> = { 1: 21, 2: 33 }
const PREFILL = 128
const PROMPT = 16
const DECODE: Record<string, number> = { 'smol-135m': 64, 'tinyllama-1.1b': 32 }

type Row = {
  model: string
  /** The synthesized file's weight type (`q8_0`, `q4_k_m`, ...). */
  type: string
  threads: number
  weightBytes: number
  tDecode: number
  tDecodeNoTrace: number
  tPrefill: number
  traceShare: number
  tVerify: number
  tGenerate: number
  lDecode: number
  lPrefill: number
  loadSeconds: number
  /** CPU seconds per token (whole process): Tessera's traced decode and prefill, llama.cpp's. */
  cDecode: number
  cPrefill: number
  lcDecode: number
  lcPrefill: number
}

/** Bytes of weights one decode step reads: every 2-D tensor, token_embd only when tied. */
function weightBytesPerToken(path: string): number {
  const src = openGgufSource(path)
  try {
    const g = readGguf(src)
    const tied = !g.tensors.some((t) => t.name === 'output.weight')
    let n = 0
    for (const t of g.tensors) {
      if (t.dims.length < 2) continue
      if (t.name === 'token_embd.weight' && !tied) continue
      n += rowBytes(t.type, t.dims[0]) * t.dims.slice(1).reduce((a, b) => a * b, 1)
    }
    return n
  } finally {
    src.close()
  }
}

/** Wall and process CPU seconds of the last `decodeSeconds` / `prefillSeconds` call. */
let lastCpu = 0

/** Seconds for `n` greedy decode steps after `prompt`, with or without the trace commitments. */
function decodeSeconds(model: Model, prompt: number[], n: number, traced: boolean): number {
  const c = model.transformer.config
  const cache = new KVCache(c, prompt.length + n + 1)
  const tree = new TraceTree(c.nLayer, c.dim, c.nKvHead * c.headDim)
  const obs = traced ? tree.observeLayer : undefined
  let logits = model.transformer.forward(prompt, cache, 1, obs)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const id = argmax(logits)
    if (traced) tree.setHead(cache.length - 1, id, logits)
    logits = model.transformer.forward([id], cache, 1, obs)
  }
  lastCpu = cpuSince(c0)
  return (performance.now() - t0) / 1000
}

/** Seconds for a traced prefill of `prompt` in batches of 64 (as runJob). */
function prefillSeconds(model: Model, prompt: number[]): number {
  const c = model.transformer.config
  const cache = new KVCache(c, prompt.length)
  const tree = new TraceTree(c.nLayer, c.dim, c.nKvHead * c.headDim)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let s = 0; s < prompt.length; s += 64) {
    const chunk = prompt.slice(s, s + 64)
    model.transformer.forward(chunk, cache, s + chunk.length === prompt.length ? 1 : 0, tree.observeLayer)
  }
  lastCpu = cpuSince(c0)
  return (performance.now() - t0) / 1000
}

/** Seconds per token of the trace hashing alone: every layer leaf plus the head leaf with logits. */
function traceHashSecondsPerToken(model: Model, tokens: number): number {
  const c = model.transformer.config
  const kvDim = c.nKvHead * c.headDim
  const tree = new TraceTree(c.nLayer, c.dim, kvDim)
  const residual = new Float32Array(c.dim).map((_, i) => Math.sin(i))
  const k = new Float32Array(kvDim).fill(0.5)
  const v = new Float32Array(kvDim).fill(-0.25)
  const logits = new Float32Array(c.vocabSize).map((_, i) => Math.cos(i))
  const t0 = performance.now()
  for (let p = 0; p < tokens; p++) {
    for (let l = 0; l < c.nLayer; l++) tree.observeLayer(l, p, 1, residual, k, v)
    tree.setHead(p, 1, logits)
  }
  return (performance.now() - t0) / 1000 / tokens
}

async function measure(preset: string, type: string, path: string, threads: number, runs: number): Promise<Row> {
  const nDecode = DECODE[preset] ?? 32
  const weightBytes = weightBytesPerToken(path)
  process.stderr.write(`  ${preset} ${type} threads=${threads}: tessera load`)
  let t0 = performance.now()
  const model = await loadModel(path, { threads, backend: 'wasm', hugePages: true })
  const loadSeconds = (performance.now() - t0) / 1000
  const all = model.tokenizer.encode(BUILTIN_TEXT)
  if (all.length < PREFILL) throw new Error(`the built-in text gives only ${all.length} tokens`)
  const prefillPrompt = all.slice(0, PREFILL)
  const prompt = all.slice(0, PROMPT)

  const tDecode: number[] = []
  const tDecodeNoTrace: number[] = []
  const tPrefill: number[] = []
  const tVerify: number[] = []
  const tGenerate: number[] = []
  const cDecode: number[] = []
  const cPrefill: number[] = []
  let traceShare = 0
  try {
    process.stderr.write(', warm-up')
    prefillSeconds(model, all.slice(0, 64))
    decodeSeconds(model, prompt, 4, true)
    decodeSeconds(model, prompt, 4, false)
    for (let r = 0; r < runs; r++) {
      process.stderr.write(`, run ${r + 1}`)
      tPrefill.push(PREFILL / prefillSeconds(model, prefillPrompt))
      cPrefill.push(lastCpu / PREFILL)
      tDecode.push(nDecode / decodeSeconds(model, prompt, nDecode, true))
      cDecode.push(lastCpu / nDecode)
      tDecodeNoTrace.push(nDecode / decodeSeconds(model, prompt, nDecode, false))
      // generate() end to end (sampling, trace, receipt); its decode rate counts from the first token
      let tFirst = 0
      t0 = performance.now()
      const res = generate(model, { prompt, maxTokens: nDecode + 1, temperature: 0, onFirstToken: () => { tFirst = performance.now() } })
      const tEnd = performance.now()
      if (res.outputTokens.length > 1) tGenerate.push((res.outputTokens.length - 1) / ((tEnd - tFirst) / 1000))
      t0 = performance.now()
      const verdict = verify(model, { receipt: res.receipt, promptTokens: prompt, outputTokens: res.outputTokens, leaves: res.leaves })
      const s = (performance.now() - t0) / 1000
      if (!verdict.valid) throw new Error(`verify rejected an honest run: ${problemsText(verdict)}`)
      tVerify.push((prompt.length + res.outputTokens.length - 1) / s)
    }
    const hash = traceHashSecondsPerToken(model, 20)
    traceShare = hash / (1 / median(tDecodeNoTrace))
  } finally {
    model.close()
  }

  process.stderr.write(', llama.cpp')
  const ll = await openLlamaCpp(path, { threads, contextSize: 512, batchSize: 512 })
  const lDecode: number[] = []
  const lPrefill: number[] = []
  const lcDecode: number[] = []
  const lcPrefill: number[] = []
  try {
    await ll.timePrefill(all.slice(0, 64))
    await ll.timeDecode(prompt, 5)
    for (let r = 0; r < runs; r++) {
      const p = await ll.timePrefill(prefillPrompt)
      lPrefill.push(p.tokensPerSecond)
      lcPrefill.push(p.cpuSeconds / p.tokens)
      const d = await ll.timeDecode(prompt, nDecode + 1)
      lDecode.push(d.tokensPerSecond)
      lcDecode.push(d.cpuSeconds / d.tokens)
    }
  } finally {
    await ll.close()
  }
  process.stderr.write('\n')
  return {
    model: preset, type, threads, weightBytes, loadSeconds,
    tDecode: median(tDecode), tDecodeNoTrace: median(tDecodeNoTrace), tPrefill: median(tPrefill),
    tVerify: median(tVerify), tGenerate: tGenerate.length ? median(tGenerate) : NaN, traceShare,
    lDecode: median(lDecode), lPrefill: median(lPrefill),
    cDecode: median(cDecode), cPrefill: median(cPrefill), lcDecode: median(lcDecode), lcPrefill: median(lcPrefill),
  }
}

/** Child mode: load a model, generate 16 tokens, print the peak resident set size. */
async function rssChild(path: string, threads: number): Promise<void> {
  const model = await loadModel(path, { threads, backend: 'wasm', hugePages: true })
  const prompt = model.tokenizer.encode(BUILTIN_TEXT).slice(0, PROMPT)
  generate(model, { prompt, maxTokens: 16, temperature: 0 })
  model.close()
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  console.log(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, vmHwmKiB: hwm ? Number(hwm[1]) : null }))
}

function peakRss(path: string, threads: number): { maxRssKiB: number; vmHwmKiB: number | null } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--rss-child', path, String(threads)], { encoding: 'utf8', cwd: ROOT })
  if (res.status !== 0) throw new Error(`peak RSS child failed: ${res.stderr}`)
  return JSON.parse(res.stdout.trim().split('\n').pop()!)
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a')
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a')

function table(rows: Row[]): string {
  const out = [
    '| model | threads | decode tok/s Tessera (trace) | decode no trace | llama.cpp decode | ratio | bandwidth bound tok/s | share of bound | prefill tok/s Tessera | llama.cpp prefill | ratio | trace cost (decode, direct hash) | verify pos/s | verify / decode | generate() tok/s | load s |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for (const r of rows) {
    const bound = (BANDWIDTH[r.threads] * 1e9) / r.weightBytes
    const traceLoop = 1 - r.tDecode / r.tDecodeNoTrace
    out.push(`| ${r.model}${r.type === 'q8_0' ? '' : ` ${r.type.toUpperCase()}`} | ${r.threads} | ${f1(r.tDecode)} | ${f1(r.tDecodeNoTrace)} | ${f1(r.lDecode)} | ${f2(r.tDecode / r.lDecode)} | ${f1(bound)} | ${(100 * r.tDecode / bound).toFixed(0)}% | ${f1(r.tPrefill)} | ${f1(r.lPrefill)} | ${f2(r.tPrefill / r.lPrefill)} | ${(100 * traceLoop).toFixed(1)}%, ${(100 * r.traceShare).toFixed(1)}% | ${f1(r.tVerify)} | ${f2(r.tVerify / r.tDecode)} | ${f1(r.tGenerate)} | ${f1(r.loadSeconds)} |`)
  }
  return out.join('\n')
}

/**
 * Process CPU time per token of each engine over the same intervals as the wall-clock rates: on a
 * loaded machine a 1-thread engine's CPU time hardly moves while its wall time does, so the ratio
 * (llama.cpp's CPU per token over Tessera's; > 1 means Tessera is cheaper) is the fairer comparison
 * there. 2-thread rows include spin-waiting on both sides.
 */
function cpuTable(rows: Row[]): string {
  const ms = (x: number) => (1000 * x).toFixed(2)
  const out = [
    '| model | threads | decode CPU ms/token Tessera (trace) | llama.cpp | ratio (CPU time) | prefill CPU ms/token Tessera (trace) | llama.cpp | ratio (CPU time) |',
    '|---|---|---|---|---|---|---|---|',
  ]
  for (const r of rows) {
    out.push(`| ${r.model}${r.type === 'q8_0' ? '' : ` ${r.type.toUpperCase()}`} | ${r.threads} | ${ms(r.cDecode)} | ${ms(r.lcDecode)} | ${f2(r.lcDecode / r.cDecode)} | ${ms(r.cPrefill)} | ${ms(r.lcPrefill)} | ${f2(r.lcPrefill / r.cPrefill)} |`)
  }
  return out.join('\n')
}

function targets(rows: Row[], rss: { maxRssKiB: number } | undefined): string {
  const find = (m: string, t: number) => rows.find((r) => r.model === m && r.threads === t)
  const lines: string[] = []
  const check = (name: string, ok: boolean | undefined, detail: string) => lines.push(`- ${ok === undefined ? 'not measured' : ok ? 'met' : '**not met**'}: ${name} (${detail})`)
  const big = find('tinyllama-1.1b', 2)
  check('decode 1.1B, 2 threads >= 0.9x llama.cpp', big && big.tDecode / big.lDecode >= 0.9, big ? `${f2(big.tDecode / big.lDecode)}x` : '-')
  const small = rows.filter((r) => r.model === 'smol-135m')
  check('decode 135M >= 1.2x llama.cpp', small.length ? small.every((r) => r.tDecode / r.lDecode >= 1.2) : undefined, small.map((r) => `${r.threads}t ${f2(r.tDecode / r.lDecode)}x`).join(', '))
  check('prefill >= 0.5x llama.cpp', rows.length ? rows.every((r) => r.tPrefill / r.lPrefill >= 0.5) : undefined, rows.map((r) => `${r.model} ${r.threads}t ${f2(r.tPrefill / r.lPrefill)}x`).join(', '))
  check('trace < 3% of decode (direct hash share)', rows.length ? rows.every((r) => r.traceShare < 0.03) : undefined, rows.map((r) => `${r.model} ${r.threads}t ${(100 * r.traceShare).toFixed(1)}%`).join(', '))
  check('verify >= 3x faster per token than generation', rows.length ? rows.every((r) => r.tVerify / r.tDecode >= 3) : undefined, rows.map((r) => `${r.model} ${r.threads}t ${f2(r.tVerify / r.tDecode)}x`).join(', '))
  check('peak memory of a 1.1B Q8_0 run < 1.6 GB', rss ? rss.maxRssKiB * 1024 < 1.6e9 : undefined, rss ? `${(rss.maxRssKiB * 1024 / 1e9).toFixed(2)} GB` : '-')
  return lines.join('\n')
}

/** Issue #10's targets for the K-quant files: decode >= 1.0x and prefill >= 0.8x llama.cpp, every row. */
function kquantTargets(rows: Row[]): string {
  const each = (f: (r: Row) => number, min: number) => rows.map((r) => `${r.model} ${r.type} ${r.threads}t ${f2(f(r))}x${f(r) >= min ? '' : ' (miss)'}`).join(', ')
  const all = (f: (r: Row) => number, min: number) => (rows.length ? (rows.every((r) => f(r) >= min) ? 'met' : '**not met**') : 'not measured')
  const dec = (r: Row) => r.tDecode / r.lDecode, pre = (r: Row) => r.tPrefill / r.lPrefill
  const cdec = (r: Row) => r.lcDecode / r.cDecode, cpre = (r: Row) => r.lcPrefill / r.cPrefill
  return [
    `- ${all(dec, 1)}: decode >= 1.0x llama.cpp, wall clock (${each(dec, 1)}); by CPU time: ${all(cdec, 1)} (${each(cdec, 1)})`,
    `- ${all(pre, 0.8)}: prefill >= 0.8x llama.cpp, wall clock (${each(pre, 0.8)}); by CPU time: ${all(cpre, 0.8)} (${each(cpre, 0.8)})`,
  ].join('\n')
}

/** Replaces (or appends) the section headed `## ${title}` of docs/BENCHMARKS.md, keeping the others. */
function writeDoc(title: string, section: string): void {
  const head = '# Benchmarks\n'
  let doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : head
  const start = doc.search(new RegExp(`^## ${title.replace(/[()]/g, '\\$&')}$`, 'm'))
  if (start < 0) doc = `${doc.trimEnd()}\n\n${section.trimEnd()}\n`
  else {
    const rest = doc.slice(start + 1)
    const next = rest.search(/^## /m)
    const end = next < 0 ? doc.length : start + 1 + next
    doc = `${doc.slice(0, start)}${section.trimEnd()}\n${next < 0 ? '' : '\n'}${doc.slice(end)}`
  }
  writeFileSync(DOC, doc)
}

async function main(): Promise<void> {
  if (process.argv[2] === '--rss-child') return rssChild(process.argv[3], Number(process.argv[4]))
  const models = arg('models', 'smol-135m,tinyllama-1.1b').split(',')
  const types = arg('types', 'q8_0').split(',')
  const q8Only = types.length === 1 && types[0] === 'q8_0'
  const threadList = arg('threads', '1,2').split(',').map(Number)
  const runs = Number(arg('runs', '3'))
  const load0 = loadavg()[0]
  const paths: Record<string, string> = {}
  for (const m of models) {
    for (const ty of types) {
      process.stderr.write(`model ${m} ${ty} (synthesized once into ${CACHE})\n`)
      paths[`${m} ${ty}`] = synthModelFile(CACHE, m, ty)
    }
  }
  await cpuLlama()
  const rows: Row[] = []
  for (const m of models) for (const ty of types) for (const t of threadList) rows.push(await measure(m, ty, paths[`${m} ${ty}`], t, runs))
  let rss: ReturnType<typeof peakRss> | undefined
  if (paths['tinyllama-1.1b q8_0']) {
    process.stderr.write('peak RSS of a tinyllama-1.1b q8_0 run (child process, 2 threads)\n')
    rss = peakRss(paths['tinyllama-1.1b q8_0'], Math.max(...threadList))
  }
  const cpu = cpus()
  const machine = `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ` +
    `node-llama-cpp 3.22.1 (CPU, K/V cache f16, its default), load average ${load0.toFixed(1)} at start / ${loadavg()[0].toFixed(1)} at end`
  const title = q8Only ? 'Engine' : 'Engine, K-quants'
  const command = q8Only ? '`npm run bench`' : `\`npm run bench -- --models ${models.join(',')} --types ${types.join(',')} --threads ${threadList.join(',')} --runs ${runs}\``
  const section = [
    `## ${title}`,
    '',
    `Command: ${command} (bench/engine.ts), ${new Date().toISOString().slice(0, 10)}. Median of ${runs} runs after a warm-up, one process.`,
    `Machine: ${machine}.`,
    '',
    `Models: synthesized ${types.map((t) => t.toUpperCase()).join(', ')} GGUF files with real shapes (random weights). Decode: ${Object.entries(DECODE).filter(([m]) => models.includes(m)).map(([m, n]) => `${n} steps (${m})`).join(', ')} after a ${PROMPT}-token prompt;`,
    `prefill: ${PREFILL} tokens. Tessera runs the WASM backend; its decode and prefill include the trace commitments unless marked.`,
    `Bandwidth bound = ${BANDWIDTH[1]} GB/s (1 thread) or ${BANDWIDTH[2]} GB/s (2 threads) / weight bytes per token. Trace cost: first the`,
    'decode slowdown with the trace (noisy: same order as run-to-run variation), then the hashing timed directly as a share of an untraced decode step.',
    'Verify: positions per second of the teacher-forced replay (prompt + output) vs traced decode tokens per second.',
    'Caveat: on a shared machine (load average above the core count) 2-thread numbers of both engines are unreliable:',
    "spin barriers and llama.cpp's thread pool need both cores free; compare 1-thread rows, or rerun on an idle machine.",
    '',
    table(rows),
    '',
    'CPU time per token, same runs:',
    '',
    cpuTable(rows),
    '',
    rss ? `Peak RSS of a tinyllama-1.1b Q8_0 run (load + 16 tokens, ${Math.max(...threadList)} threads, child process): ${(rss.maxRssKiB / 2 ** 20).toFixed(2)} GiB (${(rss.maxRssKiB * 1024 / 1e9).toFixed(2)} GB; VmHWM ${rss.vmHwmKiB} KiB).` : '',
    '',
    'Targets:',
    q8Only ? targets(rows, rss) : kquantTargets(rows),
    '',
  ].join('\n')
  console.log(section)
  if (!process.argv.includes('--no-write')) writeDoc(title, section)
}

await main()
