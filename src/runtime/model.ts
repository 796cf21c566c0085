/**
 * The library API around the pure engine: load a GGUF file into a kernel backend, generate with a
 * receipt, verify a claim. This layer owns the I/O (files, worker threads); the engine and trace
 * layers it calls are pure.
 *
 * @example
 * const model = await loadModel('model.gguf', { threads: 2 })
 * const result = generate(model, { prompt: 'Once upon a time', maxTokens: 16, temperature: 0 })
 * console.log(result.text, result.receipt.traceRoot)
 * model.close()
 */
import type { GgufMetadata } from '../engine/gguf/types.js'
import type { Backend } from '../engine/kernels/backend.js'
import { createReferenceBackend } from '../engine/kernels/reference.js'
import { Transformer } from '../engine/model/transformer.js'
import type { ArithVersion } from '../engine/version.js'
import { DEFAULT_SAMPLING } from '../engine/sample.js'
import { createTokenizer, type Tokenizer } from '../engine/tokenizer/index.js'
import { statSync } from 'node:fs'
import { FileNotFoundError, InvalidParameterError } from '../errors.js'
import { type Claim, type JobResult, runJobSteps, type Verdict, verifyJobSteps } from '../trace/job.js'
import type { JobParams } from '../trace/receipt.js'
import { loadWeightsAsync } from './loadWeights.js'
import { createWasmBackend } from './wasmBackend.js'

/** Weight bytes one kernel memory is given (of its 4 GiB; the rest is scratch and headroom). */
const MEMORY_BUDGET = 3.5 * 2 ** 30

export type LoadOptions = {
  /** Kernel threads (default 1); any count gives the same bits. */
  threads?: number
  /** `wasm` (default, fast) or `reference` (plain TypeScript, slow, the readable twin). */
  backend?: 'wasm' | 'reference'
  /** The wasm backend's native AVX2 Q8_0 matmul when built (default true; same bits either way). */
  native?: boolean
  /**
   * Weights on transparent huge pages (default false): faster decode, slower load (wasmBackend.ts
   * `hugePages`); the long-running node, gateway and devnet turn it on.
   */
  hugePages?: boolean
  /** Called after each tensor is loaded with (tensors done, total, bytes read so far). */
  onProgress?: (done: number, total: number, bytes: number) => void
  /**
   * Stops the load between tensors (the promise rejects with the signal's reason, an
   * `AbortError` unless the signal names another) and frees the backend it was filling.
   */
  signal?: AbortSignal
}

export type Model = {
  path: string
  transformer: Transformer
  tokenizer: Tokenizer
  backend: Backend
  modelRoot: Uint8Array
  metadata: GgufMetadata
  close(): void
}

/**
 * Loads a GGUF file into a kernel backend. The load yields to the event loop between tensors, so
 * `opts.signal` (a timer, Ctrl-C) can stop it.
 */
export async function loadModel(path: string, opts: LoadOptions = {}): Promise<Model> {
  opts.signal?.throwIfAborted()
  const threads = opts.threads ?? 1
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new InvalidParameterError('threads', threads, 'an integer from 1 to 64')
  // Each kernel thread holds its share of every weight matrix in its own wasm32 memory (at most
  // 4 GiB): a file too large for the requested threads gets more memories, i.e. more threads.
  // Any thread count gives the same bits, so this changes only speed.
  let size = 0
  try {
    size = statSync(path).size
  } catch (e) {
    throw new FileNotFoundError(path, e)
  }
  const wasmThreads = Math.max(threads, Math.ceil(size / MEMORY_BUDGET))
  const backend = opts.backend === 'reference' ? createReferenceBackend() : await createWasmBackend({ threads: wasmThreads, native: opts.native, hugePages: opts.hugePages })
  try {
    const w = await loadWeightsAsync(path, backend, { onProgress: opts.onProgress, signal: opts.signal })
    const tokenizer = createTokenizer(w.metadata)
    return {
      path,
      transformer: new Transformer(w, backend),
      tokenizer,
      backend,
      modelRoot: w.modelRoot,
      metadata: w.metadata,
      close: () => backend.close(),
    }
  } catch (e) {
    backend.close()
    throw e
  }
}

export type GenerateOptions = Partial<JobParams> & {
  prompt: string | number[]
  seed?: bigint | number
  /** Called with each piece of text as it is generated. */
  onText?: (text: string) => void
  /** Called once the prompt is processed and the first token sampled (for timing). */
  onFirstToken?: () => void
  /**
   * Called after each prefill batch with (prompt tokens processed, prompt tokens): counts rise
   * and the last call has done = total.
   */
  onPrefill?: (done: number, total: number) => void
  batchSize?: number
  /** The arithmetic (default ARITH_VERSION; a registered model's jobs use its registered one). */
  arith?: ArithVersion
  /**
   * Stops the job between prefill batches and between tokens (throws the signal's reason, an
   * `AbortError` unless the signal names another). `generate` runs without yielding, so only a
   * callback can abort it; `generateAsync` yields at each of those steps, so any abort (a timer,
   * Ctrl-C, a closed connection) stops it after the current batch or token. Nothing needs
   * freeing after an abort: the model is ready for the next job.
   */
  signal?: AbortSignal
}

export type GenerateResult = JobResult & { promptTokens: number[] }

/** Resolves options against the defaults (the CLI and the gateway share this). */
export function jobParams(opts: Partial<JobParams>): JobParams {
  const d = DEFAULT_SAMPLING
  return {
    temperature: opts.temperature ?? d.temperature,
    topK: opts.topK ?? d.topK,
    topP: opts.topP ?? d.topP,
    minP: opts.minP ?? d.minP,
    repeatPenalty: opts.repeatPenalty ?? d.repeatPenalty,
    repeatLastN: opts.repeatLastN ?? d.repeatLastN,
    maxTokens: opts.maxTokens ?? 128,
    stop: opts.stop ?? [],
  }
}

/** Generates an answer with its receipt and trace leaves (synchronous: the kernels block). */
export function generate(model: Model, opts: GenerateOptions): GenerateResult {
  const steps = generateSteps(model, opts)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/**
 * `generate` that yields to the event loop after each prefill batch and each token, so timers,
 * I/O and `opts.signal` run while the job does.
 *
 * @example
 * const r = await generateAsync(model, { prompt: 'The whale', maxTokens: 16, signal: AbortSignal.timeout(10_000) })
 */
export async function generateAsync(model: Model, opts: GenerateOptions): Promise<GenerateResult> {
  const steps = generateSteps(model, opts)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
    await nextTurn()
  }
}

/** Lets timers, I/O and abort signals run. */
function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve))
}

/** The one generation loop: yields after each prefill batch and token (callbacks done, signal checked). */
function* generateSteps(model: Model, opts: GenerateOptions): Generator<void, GenerateResult> {
  opts.signal?.throwIfAborted()
  const promptTokens = typeof opts.prompt === 'string' ? model.tokenizer.encode(opts.prompt) : opts.prompt
  const seed = BigInt(opts.seed ?? 0)
  const it = runJobSteps(model.transformer, model.tokenizer, model.modelRoot, { promptTokens, params: jobParams(opts), seed, batchSize: opts.batchSize, arith: opts.arith })
  let first = true
  for (;;) {
    const r = it.next()
    if (r.done) return { ...r.value, promptTokens }
    const step = r.value
    if (step.kind === 'prefill') opts.onPrefill?.(step.done, step.total)
    else {
      if (first) opts.onFirstToken?.()
      first = false
      if (step.text) opts.onText?.(step.text)
    }
    opts.signal?.throwIfAborted()
    yield
    opts.signal?.throwIfAborted()
  }
}

export type VerifyOptions = {
  /** Called after each replayed batch with (positions replayed, positions): rising, ending at the total. */
  onProgress?: (done: number, total: number) => void
  /** Stops the replay between batches (throws the signal's reason); see `GenerateOptions.signal`. */
  signal?: AbortSignal
  /** Replay batch size; any value gives the same verdict (default 128, trace/job.ts VERIFY_BATCH). */
  batchSize?: number
}

/**
 * Re-checks a claimed answer against the model by teacher-forced replay under the receipt's
 * arithmetic (synchronous); `claim.arith` pins the arithmetic the model is registered under.
 */
export function verify(model: Model, claim: Claim, opts: VerifyOptions = {}): Verdict {
  const steps = verifySteps(model, claim, opts)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/**
 * `verify` that yields to the event loop after each replayed batch, so `opts.signal` can stop it.
 *
 * @example
 * const v = await verifyAsync(model, claim, { signal: AbortSignal.timeout(60_000), onProgress: (d, t) => console.error(`${d}/${t}`) })
 */
export async function verifyAsync(model: Model, claim: Claim, opts: VerifyOptions = {}): Promise<Verdict> {
  const steps = verifySteps(model, claim, opts)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
    await nextTurn()
  }
}

function* verifySteps(model: Model, claim: Claim, opts: VerifyOptions): Generator<void, Verdict> {
  opts.signal?.throwIfAborted()
  const it = verifyJobSteps(model.transformer, model.tokenizer, model.modelRoot, claim, opts.batchSize)
  for (;;) {
    const r = it.next()
    if (r.done) return r.value
    opts.onProgress?.(r.value.done, r.value.total)
    opts.signal?.throwIfAborted()
    yield
    opts.signal?.throwIfAborted()
  }
}
