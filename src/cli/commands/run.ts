/** `tessera run` and `tessera verify`: generate with a receipt, and re-check a receipt. */
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { BaseError, FileNotFoundError, InvalidParameterError } from '../../errors.js'
import { RECEIPT_VERSION } from '../../trace/receipt.js'
import { ARITH_V1, ARITH_V2, ARITH_VERSION, type ArithVersion } from '../../engine/version.js'
import type { Command, FlagSpec, ParsedArgs } from '../args.js'
import { stringList, UsageError } from '../args.js'
import { checkInputFile, checkOutPath, readPrompt } from '../files.js'
import { load } from '../lazy.js'
import { signFlags } from './signFlags.js'
import { JOB_FILE_FORMAT } from '../../node/jobFileFormat.js'
import type { JobFile } from '../../node/transcript.js'

const modelFlags: Record<string, FlagSpec> = {
  model: { type: 'string', short: 'm', description: 'GGUF model file' },
  threads: { type: 'number', description: 'kernel threads (any count gives the same bits)', default: 1 },
  backend: { type: 'string', description: 'wasm (fast) or reference (plain TypeScript)', default: 'wasm' },
}

function need(a: ParsedArgs, name: string): string {
  const v = a.flags[name]
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing --${name}`, { details: 'see --help' })
  return v
}

function backendOf(a: ParsedArgs): 'wasm' | 'reference' {
  const b = a.flags.backend
  if (b !== 'wasm' && b !== 'reference') throw new InvalidParameterError('backend', b, 'wasm or reference')
  return b
}

/** Progress lines on stderr while a model of 500 MB or more loads (one per quarter of its tensors). */
function loadProgress(path: string): ((done: number, total: number, bytes: number) => void) | undefined {
  let size = 0
  try {
    size = statSync(path).size
  } catch {
    return undefined // loadModel reports the missing file
  }
  if (size < 500e6) return undefined
  let shown = 0
  return (done, total, bytes) => {
    if (done < total && done / total < shown + 0.25) return
    shown = done / total
    process.stderr.write(`  loading ${path}: ${(bytes / 1e6).toFixed(0)} / ${(size / 1e6).toFixed(0)} MB\n`)
  }
}

/** Prompts and replays longer than this get a progress line on stderr. */
const PROGRESS_MIN = 256

/**
 * A progress callback for a long prefill or replay, printing `  LABEL: done / total UNIT` on
 * stderr: one line rewritten in place on a terminal, else a line at each quarter. A line left
 * open when `signal` aborts is ended, so the interruption message starts a line of its own.
 */
function stepProgress(label: string, unit: string, total: number, signal: AbortSignal): ((done: number, total: number) => void) | undefined {
  if (total <= PROGRESS_MIN) return undefined
  const tty = process.stderr.isTTY === true
  let open = false
  let shown = 0
  signal.addEventListener(
    'abort',
    () => {
      if (open) process.stderr.write('\n')
      open = false
    },
    { once: true },
  )
  return (done, all) => {
    const text = `  ${label}: ${done} / ${all} ${unit}`
    if (tty) {
      process.stderr.write(`\r${text}${done === all ? '\n' : ''}`)
      open = done < all
    } else if (done === all || done / all >= shown + 0.25) {
      shown = done / all
      process.stderr.write(`${text}\n`)
    }
  }
}

/** `--arith 1|2` (or the full name) as an arithmetic; absent, the default. */
function arithOf(v: unknown): ArithVersion {
  if (v === undefined) return ARITH_VERSION
  const s = String(v)
  if (s === '1' || s === ARITH_V1) return ARITH_V1
  if (s === '2' || s === ARITH_V2) return ARITH_V2
  throw new InvalidParameterError('arith', s, `1 (${ARITH_V1}) or 2 (${ARITH_V2})`)
}

function parseSeed(v: unknown): bigint {
  const s = String(v ?? '0')
  if (!/^\d+$/.test(s) || BigInt(s) >= 1n << 64n) throw new InvalidParameterError('seed', s, 'an integer in [0, 2^64)')
  return BigInt(s)
}

const run: Command = {
  name: 'run',
  summary: 'Generate text with a signed-off receipt and trace commitments',
  usage:
    'run -m FILE (-p TEXT | --prompt-file FILE | -p -) [-n MAX_TOKENS] [--seed S] [--temperature T] [--top-k K] [--top-p P] [--stop TEXT]... [--arith 1|2] [--threads T] [--json] [--out FILE [--force]]',
  flags: {
    ...modelFlags,
    prompt: { type: 'string', short: 'p', description: 'prompt text (- reads it from stdin)' },
    'prompt-file': { type: 'string', description: 'read the prompt from this file (- for stdin)' },
    'max-tokens': { type: 'number', short: 'n', description: 'most tokens to generate (capped by the context)', default: 128 },
    seed: { type: 'string', description: 'sampling seed, uint64', default: '0' },
    temperature: { type: 'number', description: 'sampling temperature, 0 = greedy', default: 0.8 },
    'top-k': { type: 'number', description: 'keep the k most likely tokens, 0 = off', default: 40 },
    'top-p': { type: 'number', description: 'nucleus sampling threshold, 1 = off', default: 0.95 },
    'min-p': { type: 'number', description: 'drop tokens below min-p times the best, 0 = off', default: 0.05 },
    'repeat-penalty': { type: 'number', description: 'penalty for repeating recent tokens, 1 = off', default: 1 },
    stop: { type: 'string', multiple: true, description: 'stop generating at this text' },
    'batch-size': { type: 'number', description: 'prefill batch size (same bits for any value)', default: 64 },
    arith: { type: 'string', description: `arithmetic: 1 (${ARITH_V1}) or 2 (${ARITH_V2}, K/V cached in binary16); default ${ARITH_VERSION}` },
    json: { type: 'boolean', description: 'print one JSON object (text, tokens, receipt, trace, signature) instead of streaming' },
    out: { type: 'string', description: 'also write that JSON object to this file' },
    ...signFlags,
    force: { type: 'boolean', description: 'overwrite the --out file if it exists' },
  },
  async run(a, signal) {
    // The runtime and the signing libraries load here, not at the top: see main.ts on start-up cost.
    const [{ generateAsync, loadModel }, { signerOf, signJob }] = await load(signal, Promise.all([import('../../runtime/model.js'), import('./signedReceipt.js')]))
    const modelPath = need(a, 'model')
    const out = typeof a.flags.out === 'string' ? a.flags.out : undefined
    if (out !== undefined) checkOutPath(out, a.flags.force === true)
    checkInputFile(modelPath)
    const seed = parseSeed(a.flags.seed)
    const signer = signerOf(a)
    const batchSize = a.flags['batch-size'] as number
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidParameterError('batch-size', batchSize, 'an integer >= 1')
    const arith = arithOf(a.flags.arith)
    const prompt = await readPrompt(a, signal)
    const model = await loadModel(modelPath, { threads: a.flags.threads as number, backend: backendOf(a), onProgress: loadProgress(modelPath), signal })
    try {
      const json = a.flags.json === true
      const promptTokens = model.tokenizer.encode(prompt)
      const maxTokens = a.flags['max-tokens'] as number
      const room = model.transformer.config.contextLength - promptTokens.length + 1
      if (Number.isInteger(maxTokens) && maxTokens > room && room >= 1) {
        console.error(`tessera: note: --max-tokens ${maxTokens} capped to ${room} by the context (${model.transformer.config.contextLength} tokens, ${promptTokens.length} in the prompt)`)
      }
      const started = performance.now()
      let firstAt = 0
      const result = await generateAsync(model, {
        prompt: promptTokens,
        seed,
        maxTokens,
        temperature: a.flags.temperature as number,
        topK: a.flags['top-k'] as number,
        topP: a.flags['top-p'] as number,
        minP: a.flags['min-p'] as number,
        repeatPenalty: a.flags['repeat-penalty'] as number,
        stop: stringList(a.flags.stop),
        batchSize,
        arith,
        signal,
        onPrefill: stepProgress('prompt', 'tokens', promptTokens.length, signal),
        onText: (t) => {
          if (!json) process.stdout.write(t)
        },
        onFirstToken: () => {
          firstAt = performance.now()
        },
      })
      const ended = performance.now()
      const nOut = result.outputTokens.length
      const stats = {
        prefillTokensPerSec: round(result.promptTokens.length / ((firstAt - started) / 1000)),
        decodeTokensPerSec: nOut > 1 ? round((nOut - 1) / ((ended - firstAt) / 1000)) : 0,
        seconds: round((ended - started) / 1000),
      }
      const file: JobFile = {
        format: JOB_FILE_FORMAT,
        text: result.text,
        tokens: result.outputTokens,
        promptTokens: result.promptTokens,
        stopReason: result.stopReason,
        receipt: result.receipt,
        traceLeaves: Buffer.concat(result.leaves).toString('base64'),
        stats,
        signed: await signJob(result.receipt, signer),
      }
      const text = JSON.stringify(file, null, 2)
      if (out !== undefined) writeFileSync(out, text + '\n')
      if (json) console.log(text)
      else {
        process.stdout.write('\n')
        console.error(
          `[${nOut} tokens, ${result.stopReason}; prefill ${stats.prefillTokensPerSec} tok/s, decode ${stats.decodeTokensPerSec} tok/s; trace root ${result.receipt.traceRoot.slice(0, 16)}…]`,
        )
      }
      return 0
    } finally {
      model.close()
    }
  },
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 100) / 100 : 0
}

export class ReceiptFileError extends BaseError {
  override name = 'ReceiptFileError'
}

/** Reads a job file written by `run --json`/`--out`, checking the fields verify needs. */
export function readJobFile(path: string): JobFile {
  let raw: string
  try {
    raw = readFileSync(path, 'utf8')
  } catch (e) {
    throw new FileNotFoundError(path, e)
  }
  let j: JobFile
  try {
    j = JSON.parse(raw)
  } catch (e) {
    throw new ReceiptFileError(`${path} is not JSON`, { cause: e })
  }
  const ids = (v: unknown) => Array.isArray(v) && v.every((t) => Number.isInteger(t) && t >= 0)
  if (!j || typeof j !== 'object') throw new ReceiptFileError(`${path} is not a job file (a JSON object)`)
  if (j.format !== undefined && j.format !== JOB_FILE_FORMAT) throw new ReceiptFileError(`${path} is job file format ${JSON.stringify(j.format)}: this tessera reads ${JOB_FILE_FORMAT}`)
  if (!j.receipt || typeof j.receipt !== 'object') throw new ReceiptFileError(`${path} has no "receipt" object`)
  const version = (j.receipt as { version: unknown }).version
  if (version !== RECEIPT_VERSION)
    throw new ReceiptFileError(`receipt format version ${String(version)} is not supported: this tessera reads version ${RECEIPT_VERSION} (re-run the job with \`tessera run --json\`)`)
  if (!ids(j.tokens) || !ids(j.promptTokens)) throw new ReceiptFileError(`${path} needs "tokens" and "promptTokens" arrays of token ids`)
  for (const k of ['modelRoot', 'promptRoot', 'paramsHash', 'outputRoot', 'traceRoot'] as const) {
    if (typeof j.receipt[k] !== 'string' || !/^[0-9a-f]{64}$/.test(j.receipt[k])) throw new ReceiptFileError(`receipt field "${k}" must be 64 hex digits`)
  }
  if (j.traceLeaves !== undefined && typeof j.traceLeaves !== 'string') throw new ReceiptFileError('"traceLeaves" must be a base64 string')
  return j
}

const verifyCmd: Command = {
  name: 'verify',
  summary: 'Re-run a job by teacher-forced replay and check its receipt (exit 0 valid, 1 invalid)',
  usage: 'verify -m FILE --receipt FILE.json [--threads T] [--batch-size B] [--json]',
  flags: {
    ...modelFlags,
    receipt: { type: 'string', description: 'job file written by `tessera run --json` or `--out`' },
    'batch-size': { type: 'number', description: "replay batch size (same verdict for any value; Ctrl-C stops between batches; default: the engine's, 128)" },
    json: { type: 'boolean', description: 'print the verdict as JSON' },
  },
  async run(a, signal) {
    const [{ loadModel, verifyAsync }, { checkSignature }, { problemsText }] = await load(
      signal,
      Promise.all([import('../../runtime/model.js'), import('./signedReceipt.js'), import('../../trace/job.js')]),
    )
    const job = readJobFile(need(a, 'receipt'))
    const modelPath = need(a, 'model')
    checkInputFile(modelPath)
    const batchSize = a.flags['batch-size'] as number | undefined
    if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1)) throw new InvalidParameterError('batch-size', batchSize, 'an integer >= 1')
    let leaves: Uint8Array[] | undefined
    if (job.traceLeaves) {
      const buf = Buffer.from(job.traceLeaves, 'base64')
      if (buf.length % 32) throw new ReceiptFileError('"traceLeaves" is not a whole number of 32-byte hashes')
      leaves = Array.from({ length: buf.length / 32 }, (_, i) => new Uint8Array(buf.subarray(32 * i, 32 * i + 32)))
    }
    // The signature first: without the provider's signature the receipt proves nothing about anyone.
    const sig = await checkSignature(job.receipt, job.signed)
    if (!sig.ok) {
      if (a.flags.json === true) console.log(JSON.stringify({ valid: false, problems: [sig.problem] }, null, 2))
      else console.log(`invalid: ${sig.problem}`)
      return 1
    }
    // Loading and the replay yield between tensors and batches: Ctrl-C stops them there.
    const model = await loadModel(modelPath, { threads: a.flags.threads as number, backend: backendOf(a), onProgress: loadProgress(modelPath), signal })
    try {
      const started = performance.now()
      const positions = job.promptTokens.length + job.tokens.length - 1
      const claim = { receipt: job.receipt, promptTokens: job.promptTokens, outputTokens: job.tokens, leaves, text: job.text }
      const v = await verifyAsync(model, claim, { signal, batchSize, onProgress: stepProgress('replay', 'positions', positions, signal) })
      const seconds = (performance.now() - started) / 1000
      const where = v.divergence ? ` first divergence at step ${v.divergence.position}, ${v.divergence.head ? 'head (logits and sampling)' : `layer ${v.divergence.layer}`}` : ''
      const r = job.receipt
      if (a.flags.json === true) console.log(JSON.stringify({ ...v, signer: sig.signer, seconds: round(seconds) }, null, 2))
      else if (v.valid) {
        console.log(
          `valid: receipt v${r.version} signed by ${sig.signer} (the request's provider; EIP-712 on chain ${job.signed!.chainId}, Settlement ${job.signed!.settlement}); ` +
            `prompt (${r.nPrompt} tokens) and output (${r.nOutput} tokens) match their roots; the text is the output tokens' text; ` +
            `every token re-sampled and the stop rule checked; ${r.nOutput} output tokens replayed in ${seconds.toFixed(2)} s, trace root ${r.traceRoot}`,
        )
      } else console.log(`invalid:${where}${where ? ';' : ''} ${problemsText(v)}`)
      return v.valid ? 0 : 1
    } finally {
      model.close()
    }
  },
}

export const runCommands: Command[] = [run, verifyCmd]
