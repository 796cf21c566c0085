/**
 * Sampled against greedy decode (`node --import tsx bench/sample.ts`): the cost of the canonical
 * sampler (docs/ARITHMETIC.md "Sampling") per generated token, on smol-135m Q8_0 (a 49,152-token
 * vocabulary), next to llama.cpp's sampled and greedy decode on the same file.
 *
 * Measured per thread count, each the median of RUNS runs after a warm-up:
 * - Tessera decode tok/s with the per-token work of `runJob` (forward step with the trace
 *   observer, head leaf with the logits hash, then the pick on a copy of the logits): greedy,
 *   sampled with the fast sampler (`sampleToken`), and sampled with the plain twin
 *   (`sampleTokenReference`, the sampler as it was before);
 * - the pick alone, ms per token, on logits vectors of the model's own decode, for those three
 *   and for sampling without a top-k cut (every token a candidate); the sampler's cost is the
 *   sampled pick minus the greedy pick, as a share of the greedy decode step (less sensitive to
 *   a busy machine than the ratio of two decode rates);
 * - llama.cpp (node-llama-cpp 3.22, prebuilt CPU build) decode at temperature 0 and sampled with
 *   the same settings (its own native sampler chain).
 * Sampling settings: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05 (the CLI's defaults).
 *
 * Usage: node --import tsx bench/sample.ts [--threads 1,2] [--tokens 64] [--runs 5]
 */
import { fileURLToPath } from 'node:url'
import { cpus, loadavg } from 'node:os'
import { KVCache } from '../src/engine/model/transformer.js'
import { argmax, DEFAULT_SAMPLING, type SamplingParams, sampleToken, sampleTokenReference } from '../src/engine/sample.js'
import { BUILTIN_TEXT } from '../src/engine/tokenizer/index.js'
import { loadModel, type Model } from '../src/runtime/model.js'
import { TraceTree } from '../src/trace/traceTree.js'
import { openLlamaCpp, synthModelFile } from './llamacpp.js'
import type { Token } from 'node-llama-cpp'
import { arg, benchArgs, median } from './util.js'

benchArgs({
  summary: 'The canonical sampler against greedy decode on smol-135m Q8_0, next to llama.cpp sampled and greedy. Prints tables; writes nothing.',
  usage: 'node --import tsx bench/sample.ts [flags]',
  flags: {
    threads: { value: 'LIST', help: 'thread counts (default 1,2)' },
    tokens: { value: 'N', help: 'tokens per run (default 64)' },
    runs: { value: 'N', help: 'runs, the median reported (default 5)' },
  },
})

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CACHE = `${ROOT}.tessera/bench`
const PROMPT = 16
const SAMPLED: SamplingParams = { ...DEFAULT_SAMPLING, temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: 1n }
const FULL: SamplingParams = { ...SAMPLED, topK: 0 }

const GREEDY: SamplingParams = { ...SAMPLED, temperature: 0 }

/** The pick as runJob makes it: on a copy of the logits (the repetition penalty writes to it). */
type Pick = (logits: Float32Array, history: number[], step: number) => number
const PICKS: Record<string, Pick> = {
  greedy: (l, h, s) => sampleToken(l.slice(), GREEDY, h, s),
  sampled: (l, h, s) => sampleToken(l.slice(), SAMPLED, h, s),
  'sampled (plain twin)': (l, h, s) => sampleTokenReference(l.slice(), SAMPLED, h, s),
  'sampled, no top-k': (l, h, s) => sampleToken(l.slice(), FULL, h, s),
}
/** The variants timed in the decode loop (all four are timed alone). */
const DECODED = ['greedy', 'sampled', 'sampled (plain twin)']

/** Seconds for `n` decode steps after `prompt`, doing what runJob does per token. */
function decodeSeconds(model: Model, prompt: number[], n: number, pick: Pick): number {
  const c = model.transformer.config
  const cache = new KVCache(c, prompt.length + n + 1)
  const tree = new TraceTree(c.nLayer, c.dim, c.nKvHead * c.headDim)
  const history = prompt.slice()
  let logits = model.transformer.forward(prompt, cache, 1, tree.observeLayer)
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const id = pick(logits, history, i)
    tree.setHead(cache.length - 1, id, logits)
    history.push(id)
    logits = model.transformer.forward([id], cache, 1, tree.observeLayer)
  }
  return (performance.now() - t0) / 1000
}

/** The model's own decode logits, `n` vectors, for timing the pick alone. */
function decodeLogits(model: Model, prompt: number[], n: number): Float32Array[] {
  const c = model.transformer.config
  const cache = new KVCache(c, prompt.length + n + 1)
  const out: Float32Array[] = []
  let logits = model.transformer.forward(prompt, cache, 1)
  for (let i = 0; i < n; i++) {
    out.push(logits.slice())
    logits = model.transformer.forward([argmax(logits)], cache, 1)
  }
  return out
}

/** Milliseconds per pick over the collected vectors (median of `runs` passes). */
function pickMs(rows: Float32Array[], prompt: number[], pick: Pick, runs: number): number {
  const times: number[] = []
  for (let r = 0; r < runs + 1; r++) {
    const t0 = performance.now()
    rows.forEach((l, i) => pick(l, prompt, i))
    if (r > 0) times.push((performance.now() - t0) / rows.length)
  }
  return median(times)
}

type Row = { threads: number; rates: Record<string, number>; ms: Record<string, number>; lGreedy: number; lSampled: number }

async function measure(path: string, threads: number, n: number, runs: number): Promise<Row> {
  process.stderr.write(`  threads=${threads}: tessera`)
  const model = await loadModel(path, { threads, hugePages: true })
  const rates: Record<string, number> = {}
  const ms: Record<string, number> = {}
  let prompt: number[]
  try {
    prompt = model.tokenizer.encode(BUILTIN_TEXT).slice(0, PROMPT)
    const samples: Record<string, number[]> = Object.fromEntries(DECODED.map((k) => [k, []]))
    for (const name of DECODED) decodeSeconds(model, prompt, 4, PICKS[name])
    for (let r = 0; r < runs; r++) {
      process.stderr.write(`, run ${r + 1}`)
      // interleaved, so a change in the machine's load hits every variant alike
      for (const name of DECODED) samples[name].push(n / decodeSeconds(model, prompt, n, PICKS[name]))
    }
    for (const name of DECODED) rates[name] = median(samples[name])
    const rows = decodeLogits(model, prompt, 32)
    for (const [name, pick] of Object.entries(PICKS)) ms[name] = pickMs(rows, prompt, pick, name === 'sampled (plain twin)' || name === 'sampled, no top-k' ? 2 : runs)
  } finally {
    model.close()
  }

  process.stderr.write(', llama.cpp')
  const ll = await openLlamaCpp(path, { threads, contextSize: 512, batchSize: 512 })
  const lg: number[] = []
  const ls: number[] = []
  try {
    await ll.timeDecode(prompt, 5)
    for (let r = 0; r < runs; r++) {
      lg.push((await ll.timeDecode(prompt, n + 1)).tokensPerSecond)
      ls.push(await llamaSampled(ll.sequence, prompt, n + 1))
    }
  } finally {
    await ll.close()
  }
  process.stderr.write('\n')
  return { threads, rates, ms, lGreedy: median(lg), lSampled: median(ls) }
}

/** llama.cpp's decode tok/s with its own sampler chain at SAMPLED's settings, from the first output token. */
async function llamaSampled(sequence: Awaited<ReturnType<typeof openLlamaCpp>>['sequence'], prompt: number[], n: number): Promise<number> {
  await sequence.clearHistory()
  let count = 0
  let t0 = 0
  const opts = { temperature: SAMPLED.temperature, topK: SAMPLED.topK, topP: SAMPLED.topP, minP: SAMPLED.minP, seed: 1, yieldEogToken: true }
  for await (const _ of sequence.evaluate(prompt as Token[], opts)) {
    if (++count === 1) t0 = performance.now()
    if (count >= n) break
  }
  return (count - 1) / ((performance.now() - t0) / 1000)
}

const f1 = (x: number) => x.toFixed(1)
const f2 = (x: number) => x.toFixed(2)

function table(rows: Row[]): string {
  const out = [
    '| threads | Tessera greedy tok/s | sampled | sampled / greedy | sampled, plain twin (before) | twin / greedy | pick ms/token: greedy | sampled | plain twin | no top-k | sampling cost / greedy step | llama.cpp greedy | llama.cpp sampled | llama.cpp sampled / greedy | Tessera sampled / llama.cpp sampled |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for (const r of rows) {
    const g = r.rates.greedy
    out.push(
      `| ${r.threads} | ${f1(g)} | ${f1(r.rates.sampled)} | ${f2(r.rates.sampled / g)} | ${f1(r.rates['sampled (plain twin)'])} | ${f2(r.rates['sampled (plain twin)'] / g)} | ` +
        `${r.ms.greedy.toFixed(3)} | ${r.ms.sampled.toFixed(3)} | ${r.ms['sampled (plain twin)'].toFixed(3)} | ${r.ms['sampled, no top-k'].toFixed(2)} | ${(100 * (r.ms.sampled - r.ms.greedy) * g / 1000).toFixed(2)}% | ` +
        `${f1(r.lGreedy)} | ${f1(r.lSampled)} | ${f2(r.lSampled / r.lGreedy)} | ${f2(r.rates.sampled / r.lSampled)} |`,
    )
  }
  return out.join('\n')
}

const threads = arg('threads', '1,2').split(',').map(Number)
const n = Number(arg('tokens', '64'))
const runs = Number(arg('runs', '5'))
const path = synthModelFile(CACHE, 'smol-135m', 'q8_0')
const load = loadavg()[0]
process.stderr.write(`smol-135m Q8_0, ${n} decode tokens after a ${PROMPT}-token prompt, ${runs} runs\n`)
const rows: Row[] = []
for (const t of threads) rows.push(await measure(path, t, n, runs))
console.log(table(rows))
console.log(`\n${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, load average ${load.toFixed(1)} at the start (other work on the machine)`)
