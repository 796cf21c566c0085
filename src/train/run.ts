/**
 * Training runs that anyone can re-check (docs/TRAINING.md, "Runs" and "Verify").
 *
 * A run is a pure function of its manifest: the manifest names the data (each source's documents
 * under a dataset root, its oversampling weight, the held-out rule), the tokenizer (learned from
 * the training documents, committed by its root), the TrainConfig (seed, schedule, shape), the
 * checkpoint interval K and the engine and arithmetic versions. It is written before step 0, so
 * nothing about the run can be chosen after seeing its result. From it:
 *
 *   batch(step)   sequences of context+1 tokens, each a window of one source's token stream:
 *                 draw d = 2 * (step * batch + j) of SPLITMIX64(seed XOR BATCH_DOMAIN, ·) picks the
 *                 source (d mod total weight, by cumulative integer weights), draw d + 1 the window
 *                 start (mod len - context); see `batchTokens`.
 *   batch leaf    leafHash(u32 step | i32 tokens...) (little-endian), per step
 *   batch root    merkleRoot of the batch leaves of the steps since the previous checkpoint
 *   state root    merkleRoot of leafHash over 4 KiB chunks of encodeState(state)
 *
 * The run log (run.jsonl) holds one canonical-JSON record per checkpoint (step 0, every K steps,
 * the last step): {kind, step, root, batchRoot, losses, prev}, where `prev` is the SHA-256 of the
 * previous record's line (the manifest hash for the first). The run root is the SHA-256 of the
 * last record's line: it commits to the manifest and every checkpoint and batch before it.
 *
 * Interrupted runs (Ctrl-C) stop at a step boundary and leave resume.bin / resume.json beside the
 * log (not in it), so a resumed run writes exactly the log and files of an uninterrupted one.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, isAbsolute, join, resolve } from 'node:path'
import { CORPORA, type CorpusName, trainingCorpus } from '../data/corpus.js'
import { type DatasetDocument, datasetRoot } from '../data/dataset.js'
import { BaseError } from '../errors.js'
import { type Hex0x, toHex0x } from '../engine/bytes.js'
import { splitmix64 } from '../engine/math/rand.js'
import { canonicalJson, computeGgufModelRoot } from '../engine/gguf/modelRoot.js'
import { bufferSource, readGguf } from '../engine/gguf/read.js'
import type { GgufMetadata } from '../engine/gguf/types.js'
import { encodeGguf } from '../engine/gguf/write.js'
import { leafHash, leafHashInto, merkleRoot, merkleRootPacked, sha256 } from '../engine/hash/merkle.js'
import { ARITH_V1, ENGINE_VERSION } from '../engine/version.js'
import { openGgufSource, writeGgufFile } from '../runtime/ggufFile.js'
import { EXPORT_TYPES, type ExportType, exportSpec, MANIFEST_HASH_KEY, RUN_ROOT_KEY, readInitModel, trainedModelConfig } from './export.js'
import { runTokenizer, type TokenizerSpec, tokenizerKeys, tokenizerRoot, tokenStream, trainRunTokenizer } from './tokenizer.js'
import { validateConfig } from './model.js'
import { createTrainer, decodeState, encodeState, initState, paramShapes, type TrainConfig, type TrainState } from './trainer.js'

export const RUN_FORMAT = 'tessera-train-run/1'
export const BATCH_RULE = 'tessera-train-batches/1'
/** XORed into the seed for the batch stream, so batches and weight init draw from different streams. */
export const BATCH_DOMAIN = 0x6261746368n // "batch"
/** Bytes per state-root leaf. */
export const STATE_CHUNK = 4096

// ---------------------------------------------------------------------------------------------
// The config file

export type { CorpusName }
export type DataSourceSpec = { corpus: CorpusName; weight: number } | { name: string; files: string[]; weight: number }
/** TrainConfig as a config file gives it: vocabSize comes from the tokenizer (or the --init model). */
export type TrainSpec = Omit<TrainConfig, 'vocabSize'> & { vocabSize?: number }
export type RunSpec = {
  name: string
  data: { sources: DataSourceSpec[] }
  /** Absent for a fine-tuning run (it keeps the --init model's tokenizer). */
  tokenizer?: TokenizerSpec
  train: TrainSpec
  /** Steps between checkpoints (K). */
  checkpointEvery: number
}

/** A config that is not what a run needs; the message names the field (`train.lr.peak`). */
export class RunConfigError extends BaseError {
  override name = 'RunConfigError'
  readonly field: string
  constructor(field: string, problem: string) {
    super(`config ${field}: ${problem}`, { docs: 'docs/TRAINING.md' })
    this.field = field
  }
}

/** A run folder that does not hold what it should (missing files, another run, a broken log). */
export class RunDirError extends BaseError {
  override name = 'RunDirError'
}

/** `train verify` found a difference: the message names the step and what differs. */
export class RunVerifyError extends BaseError {
  override name = 'RunVerifyError'
  readonly step: number
  constructor(step: number, message: string) {
    super(message, { docs: 'docs/TRAINING.md' })
    this.step = step
  }
}

const SHAPE_FIELDS = ['dim', 'nLayer', 'nHead', 'nKvHead', 'ffDim', 'ropeBase', 'rmsEps', 'tiedEmbeddings'] as const

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function object(v: unknown, field: string, keys: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (!isObject(v)) throw new RunConfigError(field, 'expected an object')
  for (const k of Object.keys(v)) if (!keys.includes(k) && !optional.includes(k)) throw new RunConfigError(field ? `${field}.${k}` : k, 'unknown field')
  for (const k of keys) if (v[k] === undefined) throw new RunConfigError(field ? `${field}.${k}` : k, 'missing')
  return v
}

function num(v: unknown, field: string, check: (x: number) => boolean, expected: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw new RunConfigError(field, `expected ${expected}, got ${JSON.stringify(v)}`)
  return v
}

const int = (lo: number, hi = Number.MAX_SAFE_INTEGER) => (x: number) => Number.isInteger(x) && x >= lo && x <= hi
const intIn = (lo: number, hi?: number) => `an integer from ${lo}${hi === undefined ? '' : ` to ${hi}`}`

/**
 * Checks a parsed config file and returns it as a `RunSpec`; the first problem is thrown as
 * `RunConfigError` naming the field. `fineTune`: the shape comes from the --init model, so
 * `tokenizer` must be absent and the shape fields may be left out.
 */
export function parseRunSpec(value: unknown, fineTune = false): RunSpec {
  const top = object(value, '', ['name', 'data', 'train', 'checkpointEvery'], ['tokenizer', '$comment'])
  if (typeof top.name !== 'string' || top.name === '') throw new RunConfigError('name', 'expected a non-empty string')
  const data = object(top.data, 'data', ['sources'])
  if (!Array.isArray(data.sources) || data.sources.length === 0) throw new RunConfigError('data.sources', 'expected a non-empty array')
  const names = new Set<string>()
  const sources: DataSourceSpec[] = data.sources.map((s, i) => {
    const f = `data.sources[${i}]`
    if (!isObject(s)) throw new RunConfigError(f, 'expected an object')
    const weight = num(s.weight, `${f}.weight`, int(1, 1_000_000), intIn(1, 1_000_000))
    let src: DataSourceSpec
    if ('corpus' in s) {
      object(s, f, ['corpus', 'weight'])
      if (!CORPORA.includes(s.corpus as CorpusName)) throw new RunConfigError(`${f}.corpus`, `expected one of ${CORPORA.join(', ')}, got ${JSON.stringify(s.corpus)}`)
      src = { corpus: s.corpus as CorpusName, weight }
    } else {
      object(s, f, ['name', 'files', 'weight'])
      if (typeof s.name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(s.name)) throw new RunConfigError(`${f}.name`, 'expected a name of letters, digits, ".", "_", "-"')
      if (!Array.isArray(s.files) || s.files.length === 0 || !s.files.every((x) => typeof x === 'string' && x !== '')) throw new RunConfigError(`${f}.files`, 'expected a non-empty array of file paths')
      src = { name: s.name, files: s.files as string[], weight }
    }
    const name = sourceName(src)
    if (names.has(name)) throw new RunConfigError(`${f}`, `source ${name} is given twice`)
    names.add(name)
    return src
  })
  let tokenizer: TokenizerSpec | undefined
  if (fineTune) {
    if (top.tokenizer !== undefined) throw new RunConfigError('tokenizer', 'a fine-tuning run keeps the --init model tokenizer: remove this field')
  } else {
    const t = object(top.tokenizer, 'tokenizer', ['vocabSize'])
    tokenizer = { vocabSize: num(t.vocabSize, 'tokenizer.vocabSize', int(300, 65536), intIn(300, 65536)) }
  }
  const shapeKeys = fineTune ? [] : SHAPE_FIELDS
  const t = object(top.train, 'train', ['context', 'batch', 'lr', 'adam', 'gradClip', 'seed', ...shapeKeys], ['vocabSize', ...SHAPE_FIELDS])
  const train: Partial<TrainSpec> = {}
  const posInt = (k: string, hi = 1 << 20) => num(t[k], `train.${k}`, int(1, hi), intIn(1, hi))
  if (t.vocabSize !== undefined) train.vocabSize = posInt('vocabSize', 65536)
  for (const k of ['dim', 'nLayer', 'nHead', 'nKvHead', 'ffDim'] as const) if (t[k] !== undefined) train[k] = posInt(k, 65536)
  if (t.ropeBase !== undefined) train.ropeBase = num(t.ropeBase, 'train.ropeBase', (x) => x > 0, 'a positive number')
  if (t.rmsEps !== undefined) train.rmsEps = num(t.rmsEps, 'train.rmsEps', (x) => x > 0 && x < 1, 'a number in (0, 1)')
  if (t.tiedEmbeddings !== undefined) {
    if (typeof t.tiedEmbeddings !== 'boolean') throw new RunConfigError('train.tiedEmbeddings', 'expected true or false')
    train.tiedEmbeddings = t.tiedEmbeddings
  }
  if (train.dim !== undefined && train.nHead !== undefined) {
    if (train.dim % train.nHead !== 0 || (train.dim / train.nHead) % 2 !== 0) throw new RunConfigError('train.nHead', `${train.nHead} heads must split dim ${train.dim} into even head sizes`)
    if (train.nKvHead !== undefined && train.nHead % train.nKvHead !== 0) throw new RunConfigError('train.nKvHead', `${train.nKvHead} must divide nHead ${train.nHead}`)
  }
  train.context = posInt('context', 1 << 16)
  train.batch = posInt('batch', 1 << 16)
  const lr = object(t.lr, 'train.lr', ['peak', 'warmupSteps', 'totalSteps', 'min'])
  train.lr = {
    peak: num(lr.peak, 'train.lr.peak', (x) => x > 0 && x < 1, 'a number in (0, 1)'),
    warmupSteps: num(lr.warmupSteps, 'train.lr.warmupSteps', int(0), intIn(0)),
    totalSteps: num(lr.totalSteps, 'train.lr.totalSteps', int(1, 100_000_000), intIn(1, 100_000_000)),
    min: num(lr.min, 'train.lr.min', (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
  }
  if (train.lr.min > train.lr.peak) throw new RunConfigError('train.lr.min', `${train.lr.min} is above lr.peak ${train.lr.peak}`)
  if (train.lr.warmupSteps > train.lr.totalSteps) throw new RunConfigError('train.lr.warmupSteps', `${train.lr.warmupSteps} is more than lr.totalSteps ${train.lr.totalSteps}`)
  const adam = object(t.adam, 'train.adam', ['beta1', 'beta2', 'eps', 'weightDecay'])
  train.adam = {
    beta1: num(adam.beta1, 'train.adam.beta1', (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
    beta2: num(adam.beta2, 'train.adam.beta2', (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
    eps: num(adam.eps, 'train.adam.eps', (x) => x > 0 && x < 1, 'a number in (0, 1)'),
    weightDecay: num(adam.weightDecay, 'train.adam.weightDecay', (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
  }
  train.gradClip = num(t.gradClip, 'train.gradClip', (x) => x >= 0, 'a number >= 0 (0 = off)')
  if (typeof t.seed !== 'string' || !/^\d+$/.test(t.seed) || BigInt(t.seed) >= 1n << 64n) throw new RunConfigError('train.seed', `expected a decimal string of a u64, got ${JSON.stringify(t.seed)}`)
  train.seed = t.seed
  const checkpointEvery = num(top.checkpointEvery, 'checkpointEvery', int(1, 100_000_000), intIn(1, 100_000_000))
  const spec: RunSpec = { name: top.name, data: { sources }, train: train as TrainSpec, checkpointEvery }
  if (tokenizer) {
    spec.tokenizer = tokenizer
    if (train.vocabSize !== undefined && train.vocabSize !== tokenizer.vocabSize) throw new RunConfigError('train.vocabSize', `${train.vocabSize} differs from tokenizer.vocabSize ${tokenizer.vocabSize} (leave it out)`)
  }
  return spec
}

/** Reads and checks a config file (JSON). */
export function readRunSpec(path: string, fineTune = false): RunSpec {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new RunDirError(`cannot read the config ${path}`, { cause })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new RunConfigError(path, `not JSON (${(e as Error).message.split('\n')[0]})`)
  }
  return parseRunSpec(value, fineTune)
}

function sourceName(s: DataSourceSpec): string {
  return 'corpus' in s ? s.corpus : s.name
}

// ---------------------------------------------------------------------------------------------
// Inputs: documents, tokenizer, token streams, the manifest

export type ManifestSource = {
  name: string
  weight: number
  /** Where the documents come from: `corpus:moby-dick`, or the files as the config names them. */
  origin: string
  /** Documents excluded from training (the held-out rule), or '' when none are. */
  heldOut: string
  documents: number
  bytes: number
  /** Dataset root (src/data/dataset.ts) of the documents, in order. */
  root: Hex0x
  tokens: number
  /** SHA-256 of the token stream (i32 little-endian). */
  tokensHash: Hex0x
}

export type RunManifest = {
  format: typeof RUN_FORMAT
  engine: string
  arithmetic: string
  spec: RunSpec
  /** The TrainConfig the trainer gets (vocabSize and, when fine-tuning, the shape filled in). */
  train: TrainConfig
  data: ManifestSource[]
  tokenizer: { root: Hex0x; vocabSize: number; learnedFrom: string[] | null }
  /** The --init model (fine-tuning): its model root. */
  init: { modelRoot: Hex0x } | null
  batches: typeof BATCH_RULE
  checkpointEvery: number
  totalSteps: number
}

export type RunSource = { name: string; weight: number; tokens: Int32Array }

/** Everything a run computes from its config before step 0. */
export type RunInputs = {
  manifest: RunManifest
  manifestText: string
  manifestHash: Hex0x
  train: TrainConfig
  sources: RunSource[]
  tokenizer: GgufMetadata
  initParams: Map<string, Float32Array> | null
}

/** Where a corpus's training documents come from (default: src/data/corpus.ts); tests may pass their own. */
export type CorpusLoader = (name: CorpusName) => Promise<{ documents: DatasetDocument[]; origin: string; heldOut: string }>

export type PrepareOptions = {
  /** Folder that `files` paths are relative to (the config file's folder). */
  baseDir: string
  /** A GGUF to fine-tune from. */
  init?: string
  corpus?: CorpusLoader
  onStage?: (what: string) => void
  /** Checked between the stages (each can take seconds). */
  signal?: AbortSignal
}

const utf8 = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })

async function loadSource(s: DataSourceSpec, opts: PrepareOptions): Promise<{ docs: { name: string; text: string; bytes: Uint8Array }[]; origin: string; heldOut: string }> {
  if ('corpus' in s) {
    const c = await (opts.corpus ?? defaultCorpus)(s.corpus)
    return { docs: c.documents.map((d) => ({ name: d.name, text: utf8Decoder.decode(d.bytes), bytes: d.bytes })), origin: c.origin, heldOut: c.heldOut }
  }
  const docs = s.files.map((f, i) => {
    const path = isAbsolute(f) ? f : resolve(opts.baseDir, f)
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(readFileSync(path))
    } catch {
      throw new RunConfigError(`data.sources files[${i}]`, `cannot read ${path}`)
    }
    let text: string
    try {
      text = utf8Decoder.decode(bytes)
    } catch {
      throw new RunConfigError(`data.sources files[${i}]`, `${path} is not UTF-8 text`)
    }
    return { name: f, text, bytes }
  })
  return { docs, origin: `files:${s.files.join(',')}`, heldOut: '' }
}

/** The corpora of src/data/corpus.ts, training documents only (Moby-Dick without its held-out chapters). */
export async function defaultCorpus(name: CorpusName): Promise<{ documents: DatasetDocument[]; origin: string; heldOut: string }> {
  return trainingCorpus(name)
}

const hex = (b: Uint8Array): Hex0x => toHex0x(b)

function i32Bytes(a: Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}

/**
 * Computes a run's inputs from its config: loads and roots the documents, learns (or, with
 * `init`, keeps) the tokenizer, tokenizes each source, and builds the manifest. Deterministic:
 * `train verify` calls it again and must get the same manifest bytes.
 */
export async function prepareRun(spec: RunSpec, opts: PrepareOptions): Promise<RunInputs> {
  const stage = async (what: string) => {
    await new Promise<void>((ok) => setImmediate(ok))
    opts.signal?.throwIfAborted()
    opts.onStage?.(what)
  }
  // Fail on a bad shape before the slow steps (a fine-tuning run's shape is checked below).
  if (opts.init === undefined) validateConfig({ ...spec.train, vocabSize: spec.tokenizer?.vocabSize ?? 0 })
  const loaded: (Awaited<ReturnType<typeof loadSource>> & { spec: DataSourceSpec })[] = []
  for (const s of spec.data.sources) {
    await stage(`reading ${sourceName(s)}`)
    loaded.push({ spec: s, ...(await loadSource(s, opts)) })
  }
  let tokenizer: GgufMetadata
  let initParams: Map<string, Float32Array> | null = null
  let init: RunManifest['init'] = null
  const train = { ...spec.train } as TrainConfig
  if (opts.init !== undefined) {
    await stage(`reading ${opts.init}`)
    const src = openGgufSource(opts.init)
    try {
      const m = readInitModel(src)
      const gguf = readGguf(src)
      init = { modelRoot: hex(computeGgufModelRoot(src, gguf, m.config).modelRoot) }
      tokenizer = tokenizerKeys(m.metadata)
      initParams = m.params
      const from: Record<(typeof SHAPE_FIELDS)[number] | 'vocabSize', number | boolean> = {
        dim: m.config.dim, nLayer: m.config.nLayer, nHead: m.config.nHead, nKvHead: m.config.nKvHead, ffDim: m.config.ffDim,
        ropeBase: m.config.ropeBase, rmsEps: m.config.rmsEps, tiedEmbeddings: m.config.tiedEmbeddings, vocabSize: m.config.vocabSize,
      }
      for (const [k, v] of Object.entries(from)) {
        const given = (spec.train as Record<string, unknown>)[k]
        if (given !== undefined && (typeof v === 'number' && typeof given === 'number' ? Math.fround(given) !== Math.fround(v) : given !== v)) {
          throw new RunConfigError(`train.${k}`, `${given} differs from the --init model's ${v} (leave it out)`)
        }
        ;(train as Record<string, unknown>)[k] = v
      }
    } finally {
      src.close()
    }
  } else {
    if (!spec.tokenizer) throw new RunConfigError('tokenizer', 'missing')
    await stage(`learning a ${spec.tokenizer.vocabSize}-token BPE vocabulary`)
    tokenizer = trainRunTokenizer(
      loaded.map((l) => ({ texts: l.docs.map((d) => d.text), weight: l.spec.weight })),
      spec.tokenizer,
    )
    train.vocabSize = spec.tokenizer.vocabSize
  }
  validateConfig(train)
  const tok = runTokenizer(tokenizer)
  if (tok.vocabSize !== train.vocabSize) throw new RunConfigError('train.vocabSize', `${train.vocabSize} differs from the tokenizer's ${tok.vocabSize} tokens`)
  const sources: RunSource[] = []
  const data: ManifestSource[] = []
  for (const [i, s] of spec.data.sources.entries()) {
    const l = loaded[i]
    await stage(`tokenizing ${sourceName(s)}`)
    const tokens = tokenStream(
      tok,
      l.docs.map((d) => d.text),
    )
    if (tokens.length < train.context + 1) throw new RunConfigError(`data.sources[${i}]`, `${tokens.length} tokens: fewer than context + 1 = ${train.context + 1}`)
    sources.push({ name: sourceName(s), weight: s.weight, tokens })
    data.push({
      name: sourceName(s),
      weight: s.weight,
      origin: l.origin,
      heldOut: l.heldOut,
      documents: l.docs.length,
      bytes: l.docs.reduce((n, d) => n + d.bytes.length, 0),
      root: hex(datasetRoot(l.docs.map((d) => ({ name: d.name, bytes: d.bytes })))),
      tokens: tokens.length,
      tokensHash: hex(sha256(i32Bytes(tokens))),
    })
  }
  const manifest: RunManifest = {
    format: RUN_FORMAT,
    engine: ENGINE_VERSION,
    // the trainer's forward is tessera-arith/1's (binary32 K/V: trainer.test's F32 check), whatever
    // the default arithmetic of inference jobs
    arithmetic: ARITH_V1,
    spec,
    train,
    data,
    tokenizer: { root: hex(tokenizerRoot(tokenizer)), vocabSize: tok.vocabSize, learnedFrom: init ? null : data.map((d) => d.name) },
    init,
    batches: BATCH_RULE,
    checkpointEvery: spec.checkpointEvery,
    totalSteps: train.lr.totalSteps,
  }
  const manifestText = canonicalJson(manifest)
  return { manifest, manifestText, manifestHash: hex(sha256(utf8.encode(manifestText))), train, sources, tokenizer, initParams }
}

// ---------------------------------------------------------------------------------------------
// Batches, roots, log records

/**
 * The tokens of optimizer step `step` (0-based: the batch that takes the state from `step` to
 * `step + 1`): `batch` sequences of `context + 1` tokens, row-major. Sequence j draws
 * r0 = SPLITMIX64(seed ^ BATCH_DOMAIN, 2i) and r1 = SPLITMIX64(.., 2i + 1), i = step * batch + j:
 * the source is the first whose cumulative weight exceeds r0 mod (sum of weights), the window
 * starts at r1 mod (tokens - context) of that source's stream.
 */
export function batchTokens(train: TrainConfig, sources: readonly RunSource[], step: number): Int32Array {
  const { batch, context } = train
  const seq = context + 1
  const out = new Int32Array(batch * seq)
  const seed = BigInt(train.seed) ^ BATCH_DOMAIN
  const total = BigInt(sources.reduce((n, s) => n + s.weight, 0))
  for (let j = 0; j < batch; j++) {
    const i = BigInt(step) * BigInt(batch) + BigInt(j)
    const pick = Number(splitmix64(seed, 2n * i) % total)
    let k = 0
    for (let acc = sources[0].weight; pick >= acc; acc += sources[++k].weight) {}
    const src = sources[k].tokens
    const start = Number(splitmix64(seed, 2n * i + 1n) % BigInt(src.length - context))
    out.set(src.subarray(start, start + seq), j * seq)
  }
  return out
}

/** leafHash(u32 step | i32 tokens), little-endian. */
export function batchLeaf(step: number, tokens: Int32Array): Uint8Array {
  const data = new Uint8Array(4 + tokens.byteLength)
  new DataView(data.buffer).setUint32(0, step, true)
  data.set(i32Bytes(tokens), 4)
  return leafHash(data)
}

/** Merkle root of leafHash over the STATE_CHUNK-byte chunks of a checkpoint's bytes. */
export function stateRoot(bytes: Uint8Array): Uint8Array {
  const n = Math.max(1, Math.ceil(bytes.length / STATE_CHUNK))
  const leaves = new Uint8Array(32 * n)
  for (let i = 0; i < n; i++) leafHashInto(bytes.subarray(i * STATE_CHUNK, Math.min(bytes.length, (i + 1) * STATE_CHUNK)), leaves, 32 * i)
  return merkleRootPacked(leaves, n)
}

export type LogRecord = {
  kind: 'checkpoint'
  step: number
  /** State root after `step` steps. */
  root: Hex0x
  /** Root of the batches of steps (previous record's step, step]; null for step 0. */
  batchRoot: Hex0x | null
  /** Training loss of each of those steps (binary32 values), in order. */
  losses: number[]
  /** SHA-256 of the previous record's line (the manifest hash for the first). */
  prev: Hex0x
}

export function recordLine(r: LogRecord): string {
  return canonicalJson(r)
}

export function recordHash(line: string): Hex0x {
  return hex(sha256(utf8.encode(line)))
}

/** The checkpoint steps of a run: 0, K, 2K, ..., and the last step. */
export function checkpointSteps(K: number, total: number): number[] {
  const out: number[] = []
  for (let s = 0; s < total; s += K) out.push(s)
  out.push(total)
  return out
}

// ---------------------------------------------------------------------------------------------
// The run folder

export const MANIFEST_FILE = 'manifest.json'
export const LOG_FILE = 'run.jsonl'
export const RESUME_FILE = 'resume.bin'
export const RESUME_META = 'resume.json'
export const SUMMARY_FILE = 'run.json'
export const CHECKPOINT_DIR = 'checkpoints'

export function checkpointFile(dir: string, step: number): string {
  return join(dir, CHECKPOINT_DIR, `step-${String(step).padStart(8, '0')}.bin`)
}

export function modelFile(dir: string, type: ExportType): string {
  return join(dir, `model-${type}.gguf`)
}

function writeAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, data)
  renameSync(tmp, path)
}

/** The log's records, with the chain checked (each `prev` the hash of the line before). */
export function readLog(dir: string, manifestHash: Hex0x): { records: LogRecord[]; lines: string[] } {
  const path = join(dir, LOG_FILE)
  if (!existsSync(path)) return { records: [], lines: [] }
  const lines = readFileSync(path, 'utf8').split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const records: LogRecord[] = []
  let prev = manifestHash
  lines.forEach((line, i) => {
    let r: LogRecord
    try {
      r = JSON.parse(line) as LogRecord
    } catch {
      throw new RunVerifyError(-1, `${LOG_FILE} line ${i + 1} is not JSON`)
    }
    if (recordLine(r) !== line) throw new RunVerifyError(r.step ?? -1, `${LOG_FILE} line ${i + 1} is not a canonical record`)
    if (r.prev !== prev) {
      throw new RunVerifyError(r.step, `${LOG_FILE} line ${i + 1} (step ${r.step}): prev ${r.prev} is not the hash of ${i === 0 ? 'the manifest' : `line ${i}`} (${prev}): the log was edited`)
    }
    records.push(r)
    prev = recordHash(line)
  })
  return { records, lines }
}

export type RunSummary = {
  name: string
  manifestHash: Hex0x
  runRoot: Hex0x
  steps: number
  finalLoss: number
  /** The exports; `file` is relative to the run folder (the record can move). */
  models: { type: ExportType; file: string; modelRoot: Hex0x; bytes: number }[]
}

// ---------------------------------------------------------------------------------------------
// Training

export type Backend = 'auto' | 'native' | 'reference'

export type Progress = {
  step: number
  total: number
  loss: number
  /** Steps done in this process (for rates). */
  stepsThisRun: number
  tokensPerStep: number
}

export type TrainOptions = {
  spec: RunSpec
  dir: string
  baseDir: string
  init?: string
  backend?: Backend
  threads?: number
  signal?: AbortSignal
  corpus?: CorpusLoader
  onStage?: (what: string) => void
  /** Called once the manifest is written (or found equal): its hash and the step training starts at. */
  onManifest?: (manifestHash: Hex0x, startStep: number) => void
  onProgress?: (p: Progress) => void
  /** Stop (as if interrupted) once the state reaches this step; for tests of resuming. */
  stopAfter?: number
  /**
   * Replaces the batch of a step before training on it: a cheating trainer, for tests of
   * `verifyRun` (the log then records batch roots of the batches really used).
   */
  tamperBatch?: (step: number, tokens: Int32Array) => Int32Array
}

export type TrainResult = { summary: RunSummary; resumedFrom: number; interrupted: boolean }

function loadCheckpoint(dir: string, step: number, train: TrainConfig, expectRoot: Hex0x): TrainState {
  const path = checkpointFile(dir, step)
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(readFileSync(path))
  } catch {
    throw new RunDirError(`cannot read the checkpoint of step ${step}`, { details: path })
  }
  const root = hex(stateRoot(bytes))
  if (root !== expectRoot) throw new RunVerifyError(step, `step ${step}: checkpoint file ${path} does not match the log (root ${root}, log ${expectRoot})`)
  return decodeState(train, bytes)
}

/** A fresh state: the deterministic init, or the --init model's weights with zero moments. */
function startState(inputs: RunInputs): TrainState {
  const state = initState(inputs.train)
  if (inputs.initParams) {
    for (const [name, dims] of paramShapes(inputs.train)) {
      const v = inputs.initParams.get(name)
      const n = dims.reduce((a, b) => a * b, 1)
      if (!v || v.length !== n) throw new RunConfigError('--init', `the model has no ${dims.join(' x ')} tensor ${name}`)
      state.params.set(name, Float32Array.from(v))
    }
  }
  return state
}

export const LOCK_FILE = 'lock'

/**
 * Takes the run folder for this process (DIR/lock holds its pid): a second `tessera train` on the
 * same folder is refused while the first runs; a lock left by a process that is gone is taken over.
 */
function lockRun(dir: string): () => void {
  const path = join(dir, LOCK_FILE)
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' })
      return () => rmSync(path, { force: true })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new RunDirError(`cannot lock ${dir}`, { details: (e as Error).message })
      const pid = Number(readFileSync(path, 'utf8').trim())
      let alive = false
      try {
        alive = Number.isInteger(pid) && pid > 0 && pid !== process.pid && process.kill(pid, 0)
      } catch {
        alive = false
      }
      if (alive) throw new RunDirError(`${dir} is in use by process ${pid}`, { details: `another tessera train runs there; delete ${path} if it does not` })
      rmSync(path, { force: true })
    }
  }
  throw new RunDirError(`cannot lock ${dir}`)
}

/**
 * Trains (or resumes) the run of `spec` in `dir`: writes the manifest before step 0, a checkpoint
 * file and a log record every K steps, then the F32 and Q8_0 GGUF exports and run.json. A folder
 * that holds another run's manifest is refused. On abort (`signal`) it stops after the current
 * step, saves resume.bin, and throws the signal's reason.
 */
export async function trainRun(opts: TrainOptions): Promise<TrainResult> {
  const inputs = await prepareRun(opts.spec, { baseDir: opts.baseDir, init: opts.init, corpus: opts.corpus, onStage: opts.onStage, signal: opts.signal })
  const dir = opts.dir
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new RunDirError(`${dir} is a file, not a run folder`)
  try {
    mkdirSync(join(dir, CHECKPOINT_DIR), { recursive: true })
  } catch (cause) {
    throw new RunDirError(`cannot create the run folder ${dir}`, { details: (cause as Error).message, cause })
  }
  const release = lockRun(dir)
  try {
    return await trainInDir(opts, inputs, dir)
  } finally {
    release()
  }
}

/** trainRun's work once the folder exists and is locked. */
async function trainInDir(opts: TrainOptions, inputs: RunInputs, dir: string): Promise<TrainResult> {
  const { train, manifestHash } = inputs
  const manifestPath = join(dir, MANIFEST_FILE)
  if (existsSync(manifestPath)) {
    const have = readFileSync(manifestPath, 'utf8')
    if (have !== inputs.manifestText) {
      throw new RunDirError(`${dir} holds another run`, { details: `its manifest hash is ${hex(sha256(utf8.encode(have)))}, this config gives ${manifestHash}; use another --out` })
    }
  } else {
    writeAtomic(manifestPath, inputs.manifestText)
  }
  writeLocal(dir, opts.baseDir, opts.init)
  const K = opts.spec.checkpointEvery
  const total = train.lr.totalSteps
  const logPath = join(dir, LOG_FILE)
  // A record cut short by a crash (no newline yet) was never committed: drop it and redo its steps.
  if (existsSync(logPath)) {
    const text = readFileSync(logPath, 'utf8')
    if (text !== '' && !text.endsWith('\n')) writeAtomic(logPath, text.slice(0, text.lastIndexOf('\n') + 1))
  }
  const { records, lines } = readLog(dir, manifestHash)

  let state: TrainState
  let prev: Hex0x
  let segment: { leaves: Uint8Array[]; losses: number[] }
  if (records.length === 0) {
    state = startState(inputs)
    const bytes = encodeState(train, state)
    writeAtomic(checkpointFile(dir, 0), bytes)
    const line = recordLine({ kind: 'checkpoint', step: 0, root: hex(stateRoot(bytes)), batchRoot: null, losses: [], prev: manifestHash })
    writeAtomic(logPath, `${line}\n`)
    lines.push(line)
    records.push(JSON.parse(line))
    prev = recordHash(line)
    segment = { leaves: [], losses: [] }
  } else {
    const last = records[records.length - 1]
    prev = recordHash(lines[lines.length - 1])
    state = loadCheckpoint(dir, last.step, train, last.root)
    segment = { leaves: [], losses: [] }
    const resume = readResume(dir, train, last.step)
    if (resume) {
      state = resume.state
      segment.losses = resume.losses
      for (let s = last.step; s < resume.state.step; s++) segment.leaves.push(batchLeaf(s, batchTokens(train, inputs.sources, s)))
    }
  }
  const resumedFrom = state.step
  opts.onManifest?.(manifestHash, resumedFrom)
  const tokensPerStep = train.batch * train.context
  let interrupted = false
  if (state.step < total) {
    const trainer = await createTrainer(train, { backend: opts.backend ?? 'auto', threads: opts.threads ?? 1 })
    try {
      let lastYield = 0
      let stepsThisRun = 0
      while (state.step < total) {
        const s = state.step
        let tokens = batchTokens(train, inputs.sources, s)
        if (opts.tamperBatch) tokens = opts.tamperBatch(s, tokens)
        segment.leaves.push(batchLeaf(s, tokens))
        const r = await trainer.step(state, tokens)
        segment.losses.push(r.loss)
        stepsThisRun++
        if (state.step !== s + 1) throw new RunDirError(`the trainer left the state at step ${state.step} after step ${s + 1}`)
        if (state.step % K === 0 || state.step === total) {
          const bytes = encodeState(train, state)
          writeAtomic(checkpointFile(dir, state.step), bytes)
          const line = recordLine({ kind: 'checkpoint', step: state.step, root: hex(stateRoot(bytes)), batchRoot: hex(merkleRoot(segment.leaves)), losses: segment.losses, prev })
          writeFileSync(logPath, `${line}\n`, { flag: 'a' })
          lines.push(line)
          prev = recordHash(line)
          segment = { leaves: [], losses: [] }
          rmSync(join(dir, RESUME_FILE), { force: true })
          rmSync(join(dir, RESUME_META), { force: true })
        }
        opts.onProgress?.({ step: state.step, total, loss: r.loss, stepsThisRun, tokensPerStep })
        // Let Ctrl-C (a macrotask) in between steps, at most every 50 ms.
        const now = performance.now()
        if (now - lastYield > 50) {
          lastYield = now
          await new Promise<void>((ok) => setImmediate(ok))
        }
        if (state.step < total && (opts.signal?.aborted || (opts.stopAfter !== undefined && state.step >= opts.stopAfter))) {
          if (state.step % K !== 0) writeResume(dir, train, state, segment.losses)
          interrupted = true
          break
        }
      }
    } finally {
      await trainer.close()
    }
  }
  if (interrupted) {
    if (opts.signal?.aborted) throw opts.signal.reason
    return { summary: summaryOf(inputs, lines, []), resumedFrom, interrupted }
  }
  opts.onStage?.('exporting GGUF files')
  const models = exportModels(dir, inputs, state, recordHash(lines[lines.length - 1]))
  const summary = summaryOf(inputs, lines, models)
  writeAtomic(join(dir, SUMMARY_FILE), `${JSON.stringify(summary, null, 2)}\n`)
  return { summary, resumedFrom, interrupted }
}

function summaryOf(inputs: RunInputs, lines: string[], models: RunSummary['models']): RunSummary {
  const last = JSON.parse(lines[lines.length - 1]) as LogRecord
  return {
    name: inputs.manifest.spec.name,
    manifestHash: inputs.manifestHash,
    runRoot: recordHash(lines[lines.length - 1]),
    steps: last.step,
    finalLoss: last.losses.length ? last.losses[last.losses.length - 1] : Number.NaN,
    models,
  }
}

function writeResume(dir: string, train: TrainConfig, state: TrainState, losses: number[]): void {
  const bytes = encodeState(train, state)
  writeAtomic(join(dir, RESUME_FILE), bytes)
  writeAtomic(join(dir, RESUME_META), `${JSON.stringify({ step: state.step, root: hex(stateRoot(bytes)), losses })}\n`)
}

function readResume(dir: string, train: TrainConfig, after: number): { state: TrainState; losses: number[] } | undefined {
  const metaPath = join(dir, RESUME_META)
  if (!existsSync(metaPath) || !existsSync(join(dir, RESUME_FILE))) return undefined
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as { step: number; root: Hex0x; losses: number[] }
  if (meta.step <= after) return undefined
  const bytes = new Uint8Array(readFileSync(join(dir, RESUME_FILE)))
  if (hex(stateRoot(bytes)) !== meta.root) throw new RunDirError(`${join(dir, RESUME_FILE)} does not match ${RESUME_META}`, { details: 'delete both to resume from the last checkpoint' })
  const state = decodeState(train, bytes)
  if (state.step !== meta.step || meta.losses.length !== meta.step - after) throw new RunDirError(`${RESUME_META} does not describe ${RESUME_FILE}`, { details: 'delete both to resume from the last checkpoint' })
  return { state, losses: meta.losses }
}

/** Writes model-f32.gguf and model-q8_0.gguf from `state`; returns their model roots. */
export function exportModels(dir: string, inputs: RunInputs, state: TrainState, runRoot: Hex0x): RunSummary['models'] {
  const out: RunSummary['models'] = []
  for (const type of EXPORT_TYPES) {
    const path = modelFile(dir, type)
    const bytes = writeGgufFile(
      path,
      encodeGguf(exportSpec({ shape: inputs.train, params: state.params, tokenizer: inputs.tokenizer, type, name: `${inputs.manifest.spec.name} (${type})`, runRoot, manifestHash: inputs.manifestHash })),
    )
    const src = openGgufSource(path)
    try {
      const gguf = readGguf(src)
      out.push({ type, file: basename(path), modelRoot: hex(computeGgufModelRoot(src, gguf, trainedModelConfig(inputs.train)).modelRoot), bytes })
    } finally {
      src.close()
    }
  }
  return out
}


// ---------------------------------------------------------------------------------------------
// Verify

export type VerifyOptions = {
  dir: string
  /** Folder that `files` sources are relative to; default the folder recorded at training time. */
  baseDir?: string
  init?: string
  /** Steps A..B to replay (default all): from the checkpoint at or before A to step B; each step's loss is checked, and the roots at every checkpoint reached. */
  from?: number
  to?: number
  backend?: Backend
  threads?: number
  signal?: AbortSignal
  corpus?: CorpusLoader
  onStage?: (what: string) => void
  onProgress?: (p: Progress) => void
}

export type VerifyResult = {
  manifestHash: Hex0x
  runRoot: Hex0x
  /** The replayed range: from the checkpoint at or before A to step B. */
  from: number
  to: number
  /** Checkpoints reached on the way (their batch, state and file roots checked). */
  checkpoints: number
  /** The log reaches the last step. */
  complete: boolean
  /** The replay reached the end and the GGUF exports' model roots were rebuilt and matched. */
  exportsChecked: boolean
}

export const LOCAL_FILE = 'local.json'

/** Where a run's relative `files` paths and --init model were (not part of the manifest). */
export function writeLocal(dir: string, baseDir: string, init?: string): void {
  writeAtomic(join(dir, LOCAL_FILE), `${JSON.stringify({ baseDir: resolve(baseDir), init: init === undefined ? null : resolve(init) })}\n`)
}

function firstDifference(a: unknown, b: unknown, path = ''): string {
  if (isObject(a) && isObject(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const d = firstDifference(a[k], b[k], path ? `${path}.${k}` : k)
      if (d) return d
    }
    return ''
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`)
      if (d) return d
    }
    return ''
  }
  return canonicalJson(a ?? null) === canonicalJson(b ?? null) ? '' : `${path} (recorded ${canonicalJson(a ?? null)}, recomputed ${canonicalJson(b ?? null)})`
}

/**
 * Re-checks a run: recomputes the manifest from its config and data (every root must match the
 * recorded one), checks the log's hash chain, then replays steps `from..to` from the checkpoint
 * at or before `from`, recomputing each batch from the manifest; every loss, batch root and state
 * root on the way must equal the log's, and every checkpoint file its logged root. The first
 * difference is thrown as `RunVerifyError` naming the step and what differs.
 */
export async function verifyRun(opts: VerifyOptions): Promise<VerifyResult> {
  const dir = opts.dir
  const manifestPath = join(dir, MANIFEST_FILE)
  if (!existsSync(manifestPath)) throw new RunDirError(`${dir} holds no run`, { details: `no ${MANIFEST_FILE}` })
  const manifestText = readFileSync(manifestPath, 'utf8')
  const manifestHash = hex(sha256(utf8.encode(manifestText)))
  let recorded: RunManifest
  try {
    recorded = JSON.parse(manifestText) as RunManifest
  } catch {
    throw new RunVerifyError(0, `${manifestPath} is not JSON`)
  }
  if (recorded.format !== RUN_FORMAT) throw new RunVerifyError(0, `${manifestPath}: format ${JSON.stringify(recorded.format)}, expected ${RUN_FORMAT}`)
  let local: { baseDir?: string; init?: string | null } = {}
  if (existsSync(join(dir, LOCAL_FILE))) local = JSON.parse(readFileSync(join(dir, LOCAL_FILE), 'utf8'))
  const fineTune = recorded.init !== null
  const spec = parseRunSpec(recorded.spec, fineTune)
  const init = opts.init ?? (fineTune ? (local.init ?? undefined) : undefined)
  if (fineTune && init === undefined) throw new RunDirError('this run fine-tunes a model: give it with --init FILE.gguf')
  const inputs = await prepareRun(spec, { baseDir: opts.baseDir ?? local.baseDir ?? dir, init, corpus: opts.corpus, onStage: opts.onStage, signal: opts.signal })
  if (inputs.manifestText !== manifestText) {
    throw new RunVerifyError(0, `manifest: ${firstDifference(recorded, JSON.parse(inputs.manifestText)) || 'not in canonical form'}`)
  }
  const { train } = inputs
  const { records, lines } = readLog(dir, manifestHash)
  if (records.length === 0) throw new RunDirError(`${dir} has no ${LOG_FILE}`)
  const K = spec.checkpointEvery
  const total = train.lr.totalSteps
  const expected = checkpointSteps(K, total)
  records.forEach((r, i) => {
    if (r.kind !== 'checkpoint' || r.step !== expected[i]) throw new RunVerifyError(r.step, `${LOG_FILE} line ${i + 1}: step ${r.step}, expected a checkpoint at step ${expected[i]}`)
    const n = i === 0 ? 0 : r.step - records[i - 1].step
    if (!Array.isArray(r.losses) || r.losses.length !== n) throw new RunVerifyError(r.step, `${LOG_FILE} line ${i + 1} (step ${r.step}): ${r.losses?.length} losses for ${n} steps`)
  })
  const last = records[records.length - 1]
  const from = Math.max(0, opts.from ?? 0)
  const to = Math.min(opts.to ?? last.step, last.step)
  if (from > to) throw new RunDirError(`no steps to replay: ${from}..${to}`, { details: `the log ends at step ${last.step}` })
  // Start at the last checkpoint at or before `from`; replay to step `to` exactly.
  let si = 0
  while (si + 1 < records.length && records[si + 1].step <= from) si++
  const start = records[si]
  let state: TrainState
  if (start.step === 0) {
    state = startState(inputs)
    const root = hex(stateRoot(encodeState(train, state)))
    if (root !== start.root) throw new RunVerifyError(0, `step 0: initial state root ${root} differs from the log's ${start.root}`)
    checkFile(dir, 0, start.root)
  } else {
    state = loadCheckpoint(dir, start.step, train, start.root)
  }
  const trainer = await createTrainer(train, { backend: opts.backend ?? 'auto', threads: opts.threads ?? 1 })
  let stepsThisRun = 0
  let checkpoints = 0
  // records[i] holds the losses of the steps after records[i - 1] and the roots at its step.
  let i = si + 1
  let leaves: Uint8Array[] = []
  try {
    for (let s = start.step; s < to; s++) {
      opts.signal?.throwIfAborted()
      const rec = records[i]
      const tokens = batchTokens(train, inputs.sources, s)
      leaves.push(batchLeaf(s, tokens))
      const r = await trainer.step(state, tokens)
      const logged = rec.losses[s - records[i - 1].step]
      if (r.loss !== logged) throw new RunVerifyError(s + 1, `step ${s + 1}: loss ${r.loss} differs from the log's ${logged} (the batch or the state differs)`)
      stepsThisRun++
      opts.onProgress?.({ step: state.step, total: to, loss: r.loss, stepsThisRun, tokensPerStep: train.batch * train.context })
      if (stepsThisRun % 16 === 0) await new Promise<void>((ok) => setImmediate(ok))
      if (state.step === rec.step) {
        const batchRoot = hex(merkleRoot(leaves))
        if (batchRoot !== rec.batchRoot) throw new RunVerifyError(rec.step, `step ${rec.step}: batch root of steps ${records[i - 1].step + 1}..${rec.step} is ${batchRoot}, the log says ${rec.batchRoot}`)
        const root = hex(stateRoot(encodeState(train, state)))
        if (root !== rec.root) throw new RunVerifyError(rec.step, `step ${rec.step}: state root ${root} differs from the log's ${rec.root}`)
        checkFile(dir, rec.step, rec.root)
        checkpoints++
        leaves = []
        i++
      }
    }
  } finally {
    await trainer.close()
  }
  const runRoot = recordHash(lines[lines.length - 1])
  const summaryPath = join(dir, SUMMARY_FILE)
  let exportsChecked = false
  if (existsSync(summaryPath)) {
    const s = JSON.parse(readFileSync(summaryPath, 'utf8')) as RunSummary
    if (s.runRoot !== runRoot) throw new RunVerifyError(last.step, `${SUMMARY_FILE}: run root ${s.runRoot} is not the log's ${runRoot}`)
    if (to === total && last.step === total) {
      // The exports are a function of the final state: rebuild them and compare model roots.
      for (const m of s.models) {
        const root = hex(exportedModelRoot(inputs, state, runRoot, m.type))
        if (root !== m.modelRoot) throw new RunVerifyError(total, `${m.type} export: model root ${root} differs from ${SUMMARY_FILE}'s ${m.modelRoot}`)
        const path = modelFile(dir, m.type)
        if (existsSync(path)) {
          const src = openGgufSource(path)
          try {
            const have = hex(computeGgufModelRoot(src, readGguf(src), trainedModelConfig(train)).modelRoot)
            if (have !== m.modelRoot) throw new RunVerifyError(total, `${path}: model root ${have} differs from the replayed model's ${m.modelRoot}`)
            // The model root leaves out general.* and tessera.* keys: check the run's keys too.
            const md = readGguf(src).metadata
            for (const [key, want] of [[RUN_ROOT_KEY, runRoot], [MANIFEST_HASH_KEY, manifestHash]] as const) {
              const v = md.get(key)
              if (v?.type !== 'string' || v.value !== want) throw new RunVerifyError(total, `${path}: ${key} is ${v ? JSON.stringify(v.value) : 'missing'}, expected ${want}`)
            }
          } finally {
            src.close()
          }
        }
      }
      exportsChecked = true
    }
  }
  return { manifestHash, runRoot, from: start.step, to, checkpoints, complete: last.step === total, exportsChecked }
}

/** The model root of an export of `state`, computed in memory. */
function exportedModelRoot(inputs: RunInputs, state: TrainState, runRoot: Hex0x, type: ExportType): Uint8Array {
  const enc = encodeGguf(exportSpec({ shape: inputs.train, params: state.params, tokenizer: inputs.tokenizer, type, name: `${inputs.manifest.spec.name} (${type})`, runRoot, manifestHash: inputs.manifestHash }))
  const bytes = new Uint8Array(enc.byteLength)
  let at = 0
  for (const c of enc) {
    bytes.set(c, at)
    at += c.length
  }
  const src = bufferSource(bytes)
  return computeGgufModelRoot(src, readGguf(src), trainedModelConfig(inputs.train)).modelRoot
}

/** A checkpoint file, when present, must hold the logged state (a missing one is allowed: pruned). */
function checkFile(dir: string, step: number, root: Hex0x): void {
  const path = checkpointFile(dir, step)
  if (!existsSync(path) || !statSync(path).isFile()) return
  const have = hex(stateRoot(new Uint8Array(readFileSync(path))))
  if (have !== root) throw new RunVerifyError(step, `step ${step}: checkpoint file ${path} does not match the log (root ${have}, log ${root})`)
}
