/**
 * One inference job end to end, in the pure core: generate with trace commitments and a receipt
 * (`runJob`), and re-check a claimed answer by teacher-forced batched replay (`verifyJob`).
 * Both share one definition of where an answer stops (`stopState`), so a provider cannot cut
 * an answer short, or run past a stop, without the replay noticing.
 */
import { ARITH_V1, ARITH_V2, ARITH_VERSION, type ArithVersion, ENGINE_VERSION, isArithVersion } from '../engine/version.js'
import { type SamplingParams, sampleToken, validateSampling } from '../engine/sample.js'
import { KVCache, type Transformer } from '../engine/model/transformer.js'
import { BaseError, InvalidParameterError } from '../errors.js'
import { equalBytes, fromHex, type Hash, toHex } from './merkle.js'
import { type JobParams, paramsHash, type Receipt, RECEIPT_VERSION, tokensRoot } from './receipt.js'
import { logitsRoot, TRACE_FORMAT, TraceTree, traceRootOnly } from './traceTree.js'

/** What the job needs of a tokenizer: the bytes of a token and which tokens end generation. */
export type JobTokenizer = { decodeToken(id: number): Uint8Array; eogTokens: ReadonlySet<number> }

export type Job = {
  promptTokens: number[]
  params: JobParams
  seed: bigint
  /** Prefill batch size; any value gives the same bits (default 64). */
  batchSize?: number
  /**
   * The arithmetic the job runs under (default ARITH_VERSION): the model's registered one
   * (`ModelRegistry.models(root).arithVersion`). The receipt names it.
   */
  arith?: ArithVersion
}

export type JobResult = {
  outputTokens: number[]
  text: string
  stopReason: 'eog' | 'stop' | 'length'
  receipt: Receipt
  /** Every trace leaf hash, in leaf order (position * (nLayer + 1) + layer). */
  leaves: Hash[]
  /** The leaf layout of `leaves` and the receipt's traceRoot (docs/TRACE.md "Trace root"). */
  traceFormat: typeof TRACE_FORMAT
}

export class ContextOverflowError extends BaseError {
  override name = 'ContextOverflowError'
  constructor(nPrompt: number, ctx: number) {
    super(`prompt of ${nPrompt} tokens does not fit the context of ${ctx}`, { details: 'shorten the prompt: the context must hold it and at least one answer token' })
  }
}

/**
 * Incremental UTF-8 text of the output and the stop decision after each token. Text that could
 * still become a stop string is held back, so a streamed answer never shows a stop string.
 */
export class StopState {
  private readonly decoder = new TextDecoder('utf-8')
  private emitted = 0
  text = ''
  stopped: JobResult['stopReason'] | undefined
  constructor(private readonly tok: JobTokenizer, private readonly params: JobParams) {}

  /** Feeds token `id` (output number `count`, 1-based); returns the text now safe to print. */
  push(id: number, count: number): string {
    if (this.tok.eogTokens.has(id)) this.stopped = 'eog'
    else {
      this.text += this.decoder.decode(this.tok.decodeToken(id), { stream: true })
      for (const s of this.params.stop) {
        const at = s ? this.text.indexOf(s) : -1
        if (at >= 0) {
          this.text = this.text.slice(0, at)
          this.stopped = 'stop'
          break
        }
      }
    }
    if (!this.stopped && count >= this.params.maxTokens) this.stopped = 'length'
    if (this.stopped && this.stopped !== 'stop') this.text += this.decoder.decode()
    const end = this.stopped ? this.text.length : this.text.length - this.heldBack()
    const out = this.text.slice(this.emitted, Math.max(end, this.emitted))
    this.emitted = Math.max(end, this.emitted)
    return out
  }

  /** Length of the longest tail of the text that begins some stop string. */
  private heldBack(): number {
    let held = 0
    for (const s of this.params.stop) {
      for (let n = Math.min(s.length - 1, this.text.length); n > held; n--) {
        if (this.text.endsWith(s.slice(0, n))) {
          held = n
          break
        }
      }
    }
    return held
  }
}

function samplingOf(job: Job): SamplingParams {
  const { maxTokens: _m, stop: _s, ...rest } = job.params
  return { ...rest, seed: job.seed }
}

function validateJob(tf: Transformer, job: Job): void {
  validateSampling(samplingOf(job))
  const p = job.params
  if (!Number.isInteger(p.maxTokens) || p.maxTokens < 1) throw new InvalidParameterError('max-tokens', p.maxTokens, 'an integer >= 1')
  if (job.promptTokens.length === 0) throw new InvalidParameterError('prompt', '', 'at least one token')
  const ctx = tf.config.contextLength
  if (job.promptTokens.length > ctx - 1) throw new ContextOverflowError(job.promptTokens.length, ctx)
  for (const t of job.promptTokens) if (!(t >= 0 && t < tf.config.vocabSize)) throw new InvalidParameterError('prompt', t, `token ids below ${tf.config.vocabSize}`)
}

/**
 * One step of `runJobSteps`: a prefill batch done (`done` of the `total` prompt tokens processed),
 * or an output token sampled with the text it adds.
 */
export type JobStep = { kind: 'prefill'; done: number; total: number } | { kind: 'token'; token: number; text: string }

/**
 * Generates the answer to `job`, yielding each token and its new text as it is sampled, and
 * returns the output with its receipt and trace leaves. Generation stops at an end-of-generation
 * token, a stop string, `maxTokens`, or the end of the context window.
 */
export function* runJob(tf: Transformer, tok: JobTokenizer, modelRoot: Uint8Array, job: Job): Generator<{ token: number; text: string }, JobResult> {
  const steps = runJobSteps(tf, tok, modelRoot, job)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
    if (r.value.kind === 'token') yield { token: r.value.token, text: r.value.text }
  }
}

/**
 * `runJob` that also yields after each prefill batch, so a caller can report progress on a long
 * prompt and stop between batches (an abandoned generator holds nothing but garbage).
 */
export function* runJobSteps(tf: Transformer, tok: JobTokenizer, modelRoot: Uint8Array, job: Job): Generator<JobStep, JobResult> {
  validateJob(tf, job)
  const c = tf.config
  const prompt = job.promptTokens
  const sampling = samplingOf(job)
  const maxOut = Math.min(job.params.maxTokens, c.contextLength - prompt.length + 1)
  const params = { ...job.params, maxTokens: maxOut }
  const arith = job.arith ?? ARITH_VERSION
  const cache = new KVCache(c, Math.min(c.contextLength, prompt.length + maxOut), arith)
  const tree = new TraceTree(c.nLayer, c.dim, c.nKvHead * c.headDim)
  const batch = job.batchSize ?? 64

  // prefill in batches; only the last prompt token's logits are needed
  let logits: Float32Array = new Float32Array(0)
  for (let s = 0; s < prompt.length; s += batch) {
    const chunk = prompt.slice(s, s + batch)
    logits = tf.forward(chunk, cache, s + chunk.length === prompt.length ? 1 : 0, tree.observeLayer)
    yield { kind: 'prefill', done: s + chunk.length, total: prompt.length }
  }
  for (let p = 0; p < prompt.length - 1; p++) tree.setHead(p, prompt[p + 1])

  const out: number[] = []
  const history = prompt.slice()
  const stop = new StopState(tok, params)
  for (;;) {
    const pos = prompt.length - 1 + out.length
    // the head leaf commits the logits as computed: their root is taken before sampling, which
    // may change them in place (the repeat penalty), so no 4·V-byte copy per token
    const root = logitsRoot(logits)
    const id = sampleToken(logits, sampling, history, out.length)
    tree.setHeadRoot(pos, id, root)
    out.push(id)
    history.push(id)
    const text = stop.push(id, out.length)
    yield { kind: 'token', token: id, text }
    if (stop.stopped) break
    logits = tf.forward([id], cache, 1, tree.observeLayer)
  }

  const leaves = tree.leafHashes(prompt.length + out.length - 1)
  const receipt: Receipt = {
    version: RECEIPT_VERSION,
    arith,
    engine: ENGINE_VERSION,
    modelRoot: toHex(modelRoot),
    promptRoot: toHex(tokensRoot(prompt)),
    paramsHash: toHex(paramsHash(job.params)),
    outputRoot: toHex(tokensRoot(out)),
    traceRoot: toHex(traceRootOnly(leaves)),
    params: job.params,
    seed: job.seed.toString(),
    nPrompt: prompt.length,
    nOutput: out.length,
    nLayer: c.nLayer,
  }
  return { outputTokens: out, text: stop.text, stopReason: stop.stopped!, receipt, leaves, traceFormat: TRACE_FORMAT }
}

/** Where replay first disagrees with the claim: a trace position and a layer (nLayer = head). */
export type Divergence = { position: number; layer: number; leafIndex: number; head: boolean }

/** What verifyJob found wrong, by kind; `message` says it in words, `step` names the output token where one applies. */
export type VerifyProblemCode =
  | 'receipt-version'
  | 'arith-version'
  | 'model-root'
  | 'prompt-root'
  | 'output-root'
  | 'params-hash'
  | 'counts'
  | 'empty-output'
  | 'trace-format'
  | 'leaves-root'
  | 'sampled-token'
  | 'late-stop'
  | 'no-stop'
  | 'trace-root'
  | 'text'
export type VerifyProblem = { code: VerifyProblemCode; message: string; step?: number }

export type Verdict = { valid: boolean; problems: VerifyProblem[]; divergence?: Divergence }

/** A verdict's problems in words, one line: "a; b". */
export function problemsText(v: Pick<Verdict, 'problems'>): string {
  return v.problems.map((p) => p.message).join('; ')
}

export type Claim = {
  receipt: Receipt
  promptTokens: number[]
  outputTokens: number[]
  /** The provider's trace leaves, when published; without them only the root can be compared. */
  leaves?: Hash[]
  /** The trace format the provider says its leaves follow, when the job file names one. */
  traceFormat?: number
  /** The answer's text as the provider delivered it, when known: it must be the text of the output tokens. */
  text?: string
  /**
   * The arithmetic the job must be judged under, when known (the model's on-chain registration):
   * a receipt naming another is refused. Unset, the receipt's own arithmetic is replayed.
   */
  arith?: string
}

/**
 * Re-runs a claimed job by teacher-forced batched prefill over prompt + output, under the
 * arithmetic the receipt names (tessera-arith/1 or /2; any other is refused), and checks every
 * part of the receipt: hashes, sampling of each output token, where the answer stopped, and the
 * trace root. Returns the first divergent (position, layer) when the claimed leaves are known.
 */
/**
 * The replay's default batch: twice runJob's prefill batch. A batch reads every weight once, and a
 * replay computes logits at every output position, so larger batches pay off more than in a
 * prefill (smol-135m, 1 thread, by CPU time: 3.5% less per position than 64; docs/BENCHMARKS.md
 * "Verify and decode path"). Any size gives the same verdict.
 */
export const VERIFY_BATCH = 128

export function verifyJob(tf: Transformer, tok: JobTokenizer, modelRoot: Uint8Array, claim: Claim, batchSize = VERIFY_BATCH): Verdict {
  const steps = verifyJobSteps(tf, tok, modelRoot, claim, batchSize)
  for (;;) {
    const r = steps.next()
    if (r.done) return r.value
  }
}

/** Replay progress of `verifyJobSteps`: `done` of the `total` positions replayed. */
export type ReplayStep = { done: number; total: number }

/** `verifyJob` that yields after each replayed batch (for progress and stopping between batches). */
export function* verifyJobSteps(tf: Transformer, tok: JobTokenizer, modelRoot: Uint8Array, claim: Claim, batchSize = VERIFY_BATCH): Generator<ReplayStep, Verdict> {
  const { receipt: r, promptTokens: prompt, outputTokens: out } = claim
  const c = tf.config
  const problems: VerifyProblem[] = []
  const expect = (ok: boolean, code: VerifyProblemCode, message: string) => {
    if (!ok) problems.push({ code, message })
  }
  expect(r.version === RECEIPT_VERSION, 'receipt-version', `receipt version ${r.version} is not ${RECEIPT_VERSION}`)
  expect(isArithVersion(r.arith), 'arith-version', `receipt arithmetic ${r.arith} is not one this engine computes (${ARITH_V1}, ${ARITH_V2})`)
  expect(claim.arith === undefined || r.arith === claim.arith, 'arith-version', `receipt arithmetic ${r.arith} is not the model's registered ${claim.arith}`)
  expect(r.modelRoot === toHex(modelRoot), 'model-root', 'receipt is for another model (model root differs)')
  expect(r.promptRoot === toHex(tokensRoot(prompt)), 'prompt-root', 'prompt tokens do not match the receipt promptRoot')
  expect(r.outputRoot === toHex(tokensRoot(out)), 'output-root', 'output tokens do not match the receipt outputRoot')
  expect(r.paramsHash === toHex(paramsHash(r.params)), 'params-hash', 'params do not match the receipt paramsHash')
  expect(r.nPrompt === prompt.length && r.nOutput === out.length && r.nLayer === c.nLayer, 'counts', 'receipt token or layer counts do not match')
  expect(out.length >= 1, 'empty-output', 'empty output')
  expect(
    claim.traceFormat === undefined || claim.traceFormat === TRACE_FORMAT,
    'trace-format',
    `trace format ${claim.traceFormat} is not ${TRACE_FORMAT}: the leaves were committed with another leaf layout (docs/TRACE.md "Trace root"); re-run the job with this version`,
  )
  if (claim.leaves) expect(equalBytes(traceRootOnly(claim.leaves), fromHex(r.traceRoot)), 'leaves-root', 'published trace leaves do not hash to the receipt traceRoot')
  if (problems.length) return { valid: false, problems }

  const job: Job = { promptTokens: prompt, params: r.params, seed: BigInt(r.seed) }
  validateJob(tf, job)
  const sampling = samplingOf(job)
  const all = prompt.concat(out.slice(0, -1))
  const cache = new KVCache(c, all.length, r.arith as ArithVersion)
  const tree = new TraceTree(c.nLayer, c.dim, c.nKvHead * c.headDim)
  const stop = new StopState(tok, { ...r.params, maxTokens: Math.min(r.params.maxTokens, c.contextLength - prompt.length + 1) })
  const first = prompt.length - 1 // first position whose logits pick an output token
  let divergence: Divergence | undefined
  // the first sampling or stopping problem only: later tokens follow from a wrong one
  let sampled: VerifyProblem | undefined

  // the tokens before output token `step` (prompt + out[0 .. step)), grown as the replay goes
  const history = prompt.slice()
  for (let s = 0; s < all.length; s += batchSize) {
    const chunk = all.slice(s, s + batchSize)
    const nLogits = Math.max(0, s + chunk.length - Math.max(s, first))
    const logits = tf.forward(chunk, cache, nLogits, tree.observeLayer)
    for (let j = 0; j < chunk.length; j++) {
      const pos = s + j
      if (pos < first) {
        tree.setHead(pos, all[pos + 1])
        continue
      }
      const step = pos - first
      const row = logits.subarray((j - (chunk.length - nLogits)) * c.vocabSize, (j - (chunk.length - nLogits) + 1) * c.vocabSize)
      tree.setHead(pos, out[step], row)
      // sampleToken may change the row in place (the repeat penalty): nothing reads it after this
      // position's head leaf above, so it samples the row itself rather than a 4·V-byte copy
      const want = sampleToken(row, sampling, history, step)
      history.push(out[step])
      if (want !== out[step] && !sampled) sampled = { code: 'sampled-token', message: `output token ${step} is ${out[step]} but sampling gives ${want}`, step }
      stop.push(out[step], step + 1)
      if (stop.stopped && step < out.length - 1 && !sampled) sampled = { code: 'late-stop', message: `the answer should have stopped (${stop.stopped}) after output token ${step}`, step }
    }
    yield { done: s + chunk.length, total: all.length }
  }
  // every output token, the last included, went through the stop rules above
  if (!stop.stopped && !sampled) sampled = { code: 'no-stop', message: `the answer stops after ${out.length} tokens without an end token, stop string or max-tokens` }
  if (sampled) problems.push(sampled)

  const leaves = tree.leafHashes(all.length)
  // The published leaves hash to the receipt's root (checked above): when the replay's leaves are
  // the same list, its root is that root and need not be hashed again.
  let sameLeaves = false
  if (claim.leaves) {
    const i = leaves.findIndex((h, k) => !claim.leaves![k] || !equalBytes(h, claim.leaves![k]))
    if (i >= 0) {
      const position = Math.floor(i / (c.nLayer + 1))
      const layer = i % (c.nLayer + 1)
      divergence = { position, layer, leafIndex: i, head: layer === c.nLayer }
    } else sameLeaves = claim.leaves.length === leaves.length
  }
  if (!sameLeaves && !equalBytes(traceRootOnly(leaves), fromHex(r.traceRoot))) problems.push({ code: 'trace-root', message: 'replayed trace root differs from the receipt traceRoot' })
  if (!divergence && sampled?.code === 'sampled-token' && sampled.step !== undefined) {
    // sampling disagrees though the states agree: the divergence is the sampling step itself
    const step = sampled.step
    divergence = { position: first + step, layer: c.nLayer, leafIndex: (first + step) * (c.nLayer + 1) + c.nLayer, head: true }
  }
  if (claim.text !== undefined && claim.text !== stop.text) problems.push({ code: 'text', message: 'the text is not the text of the output tokens' })
  return { valid: problems.length === 0, problems, divergence }
}
