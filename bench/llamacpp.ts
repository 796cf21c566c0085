/**
 * A small harness over node-llama-cpp 3.22 (llama.cpp's prebuilt CPU build): the reference engine
 * that the agreement tests (test/llamacpp/) and the engine benchmark (bench/engine.ts) compare
 * Tessera against. It loads one GGUF file into one context with one sequence and offers:
 * tokenization, the full next-token logits after a token sequence, greedy generation, and timed
 * prefill / decode.
 *
 * Every call starts from an empty sequence (the KV cache is cleared first), so results never
 * depend on what ran before. Logits come from `LlamaContextSequence.controlledEvaluate` with
 * `generateNext.logits: true`, which returns llama.cpp's raw output row (no sampler applied) for
 * the last token; greedy generation takes the argmax of those logits ourselves (ties to the lowest
 * id, as docs/ARITHMETIC.md's temperature-0 rule), so no llama.cpp sampler setting (repeat penalty,
 * top-k) can interfere. The timing helpers use the ordinary `evaluate` path with temperature 0,
 * which samples in native code, so the decode rate is llama.cpp's own and not slowed by logits
 * crossing into JavaScript.
 *
 * @example
 *   const ll = await openLlamaCpp('model.gguf', { threads: 2 })
 *   const logits = await ll.nextLogits(ll.tokenize('Once upon a time', true))
 *   await ll.close()
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { encodeGguf } from '../src/engine/gguf/write.js'
import { synthModel } from '../src/engine/model/synth.js'
import { synthTokenizerMetadata } from '../src/engine/tokenizer/synth.js'
import { writeGgufFile } from '../src/runtime/ggufFile.js'
import { getLlama, type Llama, type LlamaContext, type LlamaContextSequence, LlamaLogLevel, type LlamaModel, type Token } from 'node-llama-cpp'

export type LlamaCppOptions = {
  /** Threads llama.cpp may use for one evaluation (default 1). */
  threads?: number
  /** Largest number of tokens per llama_decode call (default 512). */
  batchSize?: number
  /** KV cache size in tokens (default 1024). */
  contextSize?: number
  /**
   * Element type of the K and V cache (default 'F16', llama.cpp's own default). 'F32' removes
   * the f16 rounding of K, V (and, in ggml's f16 dot products, of Q and the attention weights),
   * which is the largest single arithmetic difference from Tessera's f32 cache.
   */
  kvCacheType?: 'F16' | 'F32'
}

/**
 * `cpuSeconds`: CPU time of the whole process over the same interval (all threads; llama.cpp
 * evaluates on libuv worker threads while the event loop sleeps), a load-robust cost per token
 * on a shared machine for 1-thread runs.
 */
export type Timing = { tokens: number; seconds: number; tokensPerSecond: number; cpuSeconds: number }

export type LlamaCpp = {
  llama: Llama
  model: LlamaModel
  context: LlamaContext
  sequence: LlamaContextSequence
  vocabSize: number
  /** llama.cpp's tokenization of `text`; `addBos` prepends the BOS token when the model has one. */
  tokenize(text: string, addBos: boolean): number[]
  detokenize(tokens: readonly number[]): string
  /** Logits (vocabSize f32) for the token that follows `tokens`. */
  nextLogits(tokens: readonly number[]): Promise<Float32Array>
  /**
   * `n` tokens chosen by argmax of the raw logits (ties to the lowest id), EOG not special, with
   * llama.cpp's margin between its first and second logits at each step.
   */
  greedy(tokens: readonly number[], n: number): Promise<{ tokens: number[]; margins: number[] }>
  /** Time to evaluate `tokens` from an empty cache, without sampling. */
  timePrefill(tokens: readonly number[]): Promise<Timing>
  /** Time to generate `n` tokens at temperature 0 after `prompt`, counted from the first output token. */
  timeDecode(prompt: readonly number[], n: number): Promise<Timing>
  close(): Promise<void>
}

let llamaPromise: Promise<Llama> | undefined

/** One CPU-only llama.cpp instance per process (loading the native addon again is wasteful). */
export function cpuLlama(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false })
  return llamaPromise
}

/** Loads `path` into llama.cpp with one context and one sequence. */
export async function openLlamaCpp(path: string, opts: LlamaCppOptions = {}): Promise<LlamaCpp> {
  const threads = opts.threads ?? 1
  const llama = await cpuLlama()
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 })
  const contextSize = opts.contextSize ?? 1024
  const context = await model.createContext({
    contextSize,
    batchSize: Math.min(opts.batchSize ?? 512, contextSize),
    sequences: 1,
    // `threads.min` makes llama.cpp wait for this many threads rather than run with fewer.
    threads: { ideal: threads, min: threads },
    flashAttention: false,
    experimentalKvCacheKeyType: opts.kvCacheType ?? 'F16',
    experimentalKvCacheValueType: opts.kvCacheType ?? 'F16',
  })
  const sequence = context.getSequence()
  // Our synthesized files write `tokenizer.ggml.tokens` with exactly vocab_size entries.
  const vocabSize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0
  if (vocabSize === 0) throw new Error(`${path}: no tokenizer.ggml.tokens`)

  async function nextLogits(tokens: readonly number[]): Promise<Float32Array> {
    if (tokens.length === 0) throw new RangeError('nextLogits needs at least one token')
    await sequence.clearHistory()
    const input = tokens.map((t, i) => (i === tokens.length - 1 ? [t as Token, { generateNext: { logits: true } }] as const : t as Token))
    const out = await sequence.controlledEvaluate(input as Parameters<LlamaContextSequence['controlledEvaluate']>[0])
    const logits = out[tokens.length - 1]?.next.logits
    if (!logits) throw new Error('llama.cpp returned no logits')
    const row = new Float32Array(vocabSize).fill(-Infinity)
    for (const [tok, l] of logits) row[tok] = l
    return row
  }

  async function greedy(prompt: readonly number[], n: number): Promise<{ tokens: number[]; margins: number[] }> {
    await sequence.clearHistory()
    const out: number[] = []
    const margins: number[] = []
    let feed: readonly number[] = prompt
    for (let i = 0; i < n; i++) {
      const input = feed.map((t, j) => (j === feed.length - 1 ? [t as Token, { generateNext: { logits: true } }] as const : t as Token))
      const res = await sequence.controlledEvaluate(input as Parameters<LlamaContextSequence['controlledEvaluate']>[0])
      const logits = res[feed.length - 1]?.next.logits
      if (!logits) throw new Error('llama.cpp returned no logits')
      let best = -1
      let bestL = -Infinity
      let secondL = -Infinity
      for (const [tok, l] of logits) {
        if (l > bestL || (l === bestL && tok < best)) {
          secondL = bestL
          best = tok
          bestL = l
        } else if (l > secondL) secondL = l
      }
      out.push(best)
      margins.push(bestL - secondL)
      feed = [best]
    }
    return { tokens: out, margins }
  }

  async function timePrefill(tokens: readonly number[]): Promise<Timing> {
    await sequence.clearHistory()
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    await sequence.evaluateWithoutGeneratingNewTokens(tokens as Token[])
    return timing(tokens.length, (performance.now() - t0) / 1000, cpuSince(c0))
  }

  async function timeDecode(prompt: readonly number[], n: number): Promise<Timing> {
    await sequence.clearHistory()
    let count = 0
    let t0 = 0
    let c0 = process.cpuUsage()
    // The first token comes out of the prompt's prefill, so the clock starts once it arrives and
    // measures the n - 1 single-token decode steps that follow.
    for await (const _ of sequence.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
      count++
      if (count === 1) {
        t0 = performance.now()
        c0 = process.cpuUsage()
      }
      if (count >= n) break
    }
    return timing(count - 1, (performance.now() - t0) / 1000, cpuSince(c0))
  }

  return {
    llama, model, context, sequence, vocabSize,
    tokenize: (text, addBos) => {
      const toks = model.tokenize(text, false) as number[]
      const bos = model.tokens.bos
      return addBos && bos != null && model.tokens.shouldPrependBosToken ? [bos, ...toks] : toks
    },
    detokenize: (tokens) => model.detokenize(tokens as Token[]),
    nextLogits, greedy, timePrefill, timeDecode,
    close: async () => {
      await context.dispose()
      await model.dispose()
    },
  }
}

function timing(tokens: number, seconds: number, cpuSeconds: number): Timing {
  return { tokens, seconds, tokensPerSecond: tokens / seconds, cpuSeconds }
}

/** Process CPU seconds (user + system, all threads) since `c0`. */
export function cpuSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / 1e6
}

/**
 * Path of the synthesized model `(preset, type, seed)` under `dir`, writing it first when it is not
 * there yet (with the real synthetic tokenizer, as `tessera model synth` does). The file is a pure
 * function of its name's parts, so a cached copy is always valid; it is written to a temporary
 * name and renamed, so concurrent test processes never read a half-written file.
 */
export function synthModelFile(dir: string, preset: string, type: string, seed = 1): string {
  const path = join(dir, `${preset}-${type}-s${seed}.gguf`)
  if (existsSync(path)) return path
  mkdirSync(dir, { recursive: true })
  const tmp = `${path}.${process.pid}.tmp`
  writeGgufFile(tmp, encodeGguf(synthModel({ preset, type, seed, tokenizer: synthTokenizerMetadata })))
  renameSync(tmp, path)
  return path
}
