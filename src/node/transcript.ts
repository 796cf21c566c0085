/**
 * The transcript of one network job (docs/NETWORK.md "Jobs"): what the client and the provider
 * both store, what a drawn auditor fetches to replay the job, and what `tessera verify` reads
 * once turned into a job file (`jobFileOf`). Version 1 holds the signed request (as JSON: uint64
 * and uint128 fields as decimal strings), its digest and signature, the client, the prompt tokens
 * and parameters, the output tokens and text, the signed receipt and, once received, the client's
 * delivery acknowledgement (the provider needs it to claim).
 *
 * A transcript from elsewhere is untrusted: `transcriptProblems` checks its shape and that every
 * root, hash and count in it matches the tokens it carries (typed problems, no exceptions), and
 * `verifyTranscript` adds the three signatures (request by the client, receipt by the request's
 * provider, acknowledgement by the client).
 */
import { type Address, getAddress, type Hex, isAddress } from 'viem'
import {
  type ClaimItem, type Delivery, deliveryDigest, type JobRequest, type ReceiptFields, receiptFieldsDigest, requestDigest,
} from '../chain/client.js'
import { isSignedBy, recoverSigner, type SignatureLike } from '../chain/evm/secp.js'
import { BaseError } from '../errors.js'
import { JOB_FILE_FORMAT } from './jobFileFormat.js'
import { canonicalJson, type JobParams, paramsHash, type Receipt, RECEIPT_VERSION, tokensRoot } from '../trace/receipt.js'
import { toHex } from '../trace/merkle.js'

export const TRANSCRIPT_VERSION = 1

/** A JobRequest in JSON (uint64/uint128 as decimal strings). */
export type RequestJson = Omit<JobRequest, 'seed' | 'nonce' | 'expiry' | 'pricePerToken'> & { seed: string; nonce: string; expiry: string; pricePerToken: string }

/** An EIP-2098 compact signature, as requests and acknowledgements carry it. */
export type CompactSignature = { r: Hex; vs: Hex }

export type StopReason = 'eog' | 'stop' | 'length'

export type Transcript = {
  v: typeof TRANSCRIPT_VERSION
  /** The EIP-712 domain: chain and Settlement contract. */
  chainId: number
  settlement: Address
  request: RequestJson
  requestDigest: Hex
  requestSignature: CompactSignature
  /** Who signed the request (the escrow that pays). */
  client: Address
  prompt: number[]
  params: JobParams
  /** Output token ids, the end-of-generation token included when it ended the answer. */
  output: number[]
  text: string
  stopReason: StopReason
  receipt: Receipt
  /** The provider's EIP-712 signature over the receipt fields (65 bytes). */
  receiptSignature: Hex
  /** The provider's `reserve` transaction, on the provider's side. */
  reservation?: Hex
  /** The client's acknowledgement of the output tokens, once received. */
  ack?: Delivery
}

/**
 * What makes a receipt v2 a signed statement: the request it answers (EIP-712 domain "Tessera" v1,
 * `chainId`, verifying contract `settlement`), that request's digest, and the provider's
 * signature over `Receipt(request, outputRoot, traceRoot, nPrompt, nOutput, nLayer)`.
 */
export type SignedReceipt = { chainId: number; settlement: Address; request: RequestJson; requestDigest: Hex; signer: Address; signature: Hex }

/** The file `tessera run --json` prints and `tessera verify` reads: the answer, its tokens, receipt and trace. */
// The format tag lives in ./jobFileFormat.ts (no imports, so the CLI reads it without loading viem).
export { JOB_FILE_FORMAT }

export type JobFile = {
  /** `JOB_FILE_FORMAT`; absent in files written before the tag (same layout). */
  format?: typeof JOB_FILE_FORMAT
  text: string
  tokens: number[]
  promptTokens: number[]
  stopReason: string
  receipt: Receipt
  /** All trace leaf hashes, concatenated, base64 (absent for a network job whose leaves were not published). */
  traceLeaves?: string
  stats?: { prefillTokensPerSec: number; decodeTokensPerSec: number; seconds: number }
  /** The provider's EIP-712 signature over the receipt, with the request it answers. */
  signed?: SignedReceipt
}

/** A transcript that fails `transcriptProblems`; `problems` says what. */
export class InvalidTranscriptError extends BaseError {
  override name = 'InvalidTranscriptError'
  readonly problems: TranscriptProblem[]
  constructor(problems: TranscriptProblem[]) {
    super('invalid transcript', { details: problems.map((p) => p.message).join('; ') })
    this.problems = problems
  }
}

export function requestToJson(q: JobRequest): RequestJson {
  return { ...q, seed: String(q.seed), nonce: String(q.nonce), expiry: String(q.expiry), pricePerToken: String(q.pricePerToken) }
}

/** The request a RequestJson stands for (throws SyntaxError on a non-integer field: check `isRequestJson` first). */
export function requestFromJson(j: RequestJson): JobRequest {
  return {
    provider: j.provider, modelRoot: j.modelRoot, promptRoot: j.promptRoot, paramsHash: j.paramsHash, seed: BigInt(j.seed),
    nonce: BigInt(j.nonce), expiry: BigInt(j.expiry), maxTokens: j.maxTokens, pricePerToken: BigInt(j.pricePerToken),
  }
}

/** Who signed a request (throws on a malformed signature). */
export async function recoverRequestSigner(chainId: number, settlement: Address, req: JobRequest, sig: CompactSignature): Promise<Address> {
  return recoverSigner(requestDigest(chainId, settlement, req), sig)
}

/** Who signed a delivery acknowledgement of `request` (throws on a malformed signature). */
export async function recoverDeliverySigner(chainId: number, settlement: Address, request: Hex, ack: Delivery): Promise<Address> {
  return recoverSigner(deliveryDigestOf(chainId, settlement, request, ack), ack)
}

const deliveryDigestOf = (chainId: number, settlement: Address, request: Hex, ack: Delivery): Hex =>
  deliveryDigest(chainId, settlement, { request, nOutput: ack.nOutput, outputRoot: ack.outputRoot })

/** undefined when `signer` signed `hash`, else the start of a problem: `<what> recovers X, not`. */
function signedBy(hash: Hex, sig: SignatureLike, signer: Address, what: string): string | undefined {
  if (isSignedBy(hash, sig, signer)) return undefined
  let actual: Address | undefined
  try {
    actual = recoverSigner(hash, sig)
  } catch {}
  return `${what} recovers ${actual ?? 'nothing'}, not`
}

/** Whether `ack` is the transcript's client's acknowledgement of its request. */
export function isAckOf(t: Transcript, ack: Delivery): boolean {
  return isSignedBy(deliveryDigestOf(t.chainId, t.settlement, t.requestDigest, ack), ack, t.client)
}

/** The fields of `receipt` the provider signs, answering the request of digest `request`. */
export function receiptFieldsOf(receipt: Receipt, request: Hex): ReceiptFields {
  return { request, outputRoot: `0x${receipt.outputRoot}`, traceRoot: `0x${receipt.traceRoot}`, nPrompt: receipt.nPrompt, nOutput: receipt.nOutput, nLayer: receipt.nLayer }
}

// ------------------------------------------------------------------ shapes of untrusted JSON

const HEX32 = /^0x[0-9a-fA-F]{64}$/
const BARE32 = /^[0-9a-f]{64}$/
/** Longest prompt, output or stop list a message may carry (a frame is at most 1 MiB anyway). */
export const MAX_TOKENS_PER_MESSAGE = 1 << 18

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isUint = (v: unknown, max = 0xffffffff): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max
const isUintString = (v: unknown, bits: number): v is string => typeof v === 'string' && /^\d{1,39}$/.test(v) && BigInt(v) < 1n << BigInt(bits)
export const isHex32 = (v: unknown): v is Hex => typeof v === 'string' && HEX32.test(v)
export const isAddr = (v: unknown): v is Address => typeof v === 'string' && isAddress(v, { strict: false })
export const isTokens = (v: unknown): v is number[] => Array.isArray(v) && v.length <= MAX_TOKENS_PER_MESSAGE && v.every((t) => isUint(t))

export function isCompactSignature(v: unknown): v is CompactSignature {
  return isObj(v) && isHex32(v.r) && isHex32(v.vs)
}

export function isRequestJson(v: unknown): v is RequestJson {
  return (
    isObj(v) && isAddr(v.provider) && isHex32(v.modelRoot) && isHex32(v.promptRoot) && isHex32(v.paramsHash) && isUintString(v.seed, 64) &&
    isUintString(v.nonce, 64) && isUintString(v.expiry, 64) && isUint(v.maxTokens) && isUintString(v.pricePerToken, 128)
  )
}

/** JobParams of the right types (their ranges are the engine's `validateSampling`). */
export function isJobParams(v: unknown): v is JobParams {
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x)
  return (
    isObj(v) && num(v.temperature) && isUint(v.topK) && num(v.topP) && num(v.minP) && num(v.repeatPenalty) && isUint(v.repeatLastN) &&
    isUint(v.maxTokens) && (v.maxTokens as number) >= 1 && Array.isArray(v.stop) && v.stop.length <= 16 && v.stop.every((s) => typeof s === 'string' && s.length <= 256)
  )
}

export function isReceipt(v: unknown): v is Receipt {
  return (
    isObj(v) && v.version === RECEIPT_VERSION && typeof v.arith === 'string' && typeof v.engine === 'string' &&
    (['modelRoot', 'promptRoot', 'paramsHash', 'outputRoot', 'traceRoot'] as const).every((k) => typeof v[k] === 'string' && BARE32.test(v[k] as string)) &&
    isJobParams(v.params) && isUintString(v.seed, 64) && isUint(v.nPrompt) && isUint(v.nOutput) && isUint(v.nLayer)
  )
}

export function isDelivery(v: unknown): v is Delivery {
  return isObj(v) && isUint(v.nOutput) && isHex32(v.outputRoot) && isHex32(v.r) && isHex32(v.vs)
}

// ------------------------------------------------------------------ checks

export type TranscriptProblemCode =
  | 'shape' // a field is missing or of the wrong type
  | 'request-digest' // requestDigest is not the request's
  | 'prompt' // the prompt tokens do not hash to the request's promptRoot (or the receipt's counts)
  | 'params' // the params do not hash to the request's paramsHash, or are not the receipt's
  | 'output' // the output tokens do not hash to the receipt's outputRoot (or its count)
  | 'receipt' // the receipt is not for this request (model, prompt, params, seed, token cap)
  | 'request-signature' // the request signature does not recover the client
  | 'receipt-signature' // the receipt signature does not recover the request's provider
  | 'ack' // the acknowledgement is not the client's or not of this answer
export type TranscriptProblem = { code: TranscriptProblemCode; message: string }

const STOP_REASONS: readonly string[] = ['eog', 'stop', 'length']

/**
 * What is wrong with an untrusted transcript, without signatures: its shape, then whether the
 * request digest, prompt, params, output and receipt agree with each other. Empty: consistent.
 * `ownRequest`: the request, its digest, prompt and params were built by the caller (a client
 * checking the answer to its own request), so their hashes are not computed again; everything
 * the provider sent (output, receipt) is checked against them as for any transcript.
 */
export function transcriptProblems(raw: unknown, opts: { ownRequest?: boolean } = {}): TranscriptProblem[] {
  const shape = (field: string): TranscriptProblem[] => [{ code: 'shape', message: `the transcript's ${field} is missing or malformed` }]
  if (!isObj(raw)) return shape('body')
  const t = raw as Partial<Record<keyof Transcript, unknown>>
  if (t.v !== TRANSCRIPT_VERSION) return shape(`version (${String(t.v)}, this reads ${TRANSCRIPT_VERSION})`)
  if (!isUint(t.chainId, Number.MAX_SAFE_INTEGER)) return shape('chainId')
  for (const k of ['settlement', 'client'] as const) if (!isAddr(t[k])) return shape(k)
  if (!isRequestJson(t.request)) return shape('request')
  if (!isHex32(t.requestDigest)) return shape('requestDigest')
  if (!isCompactSignature(t.requestSignature)) return shape('requestSignature')
  if (!isTokens(t.prompt) || t.prompt.length === 0) return shape('prompt')
  if (!isJobParams(t.params)) return shape('params')
  if (!isTokens(t.output) || t.output.length === 0) return shape('output')
  if (typeof t.text !== 'string') return shape('text')
  if (typeof t.stopReason !== 'string' || !STOP_REASONS.includes(t.stopReason)) return shape('stopReason')
  if (!isReceipt(t.receipt)) return shape('receipt')
  if (typeof t.receiptSignature !== 'string' || !/^0x[0-9a-fA-F]{130}$/.test(t.receiptSignature)) return shape('receiptSignature')
  if (t.reservation !== undefined && !isHex32(t.reservation)) return shape('reservation')
  if (t.ack !== undefined && !isDelivery(t.ack)) return shape('ack')

  const x = raw as Transcript
  const out: TranscriptProblem[] = []
  const problem = (code: TranscriptProblemCode, message: string) => out.push({ code, message })
  const q = requestFromJson(x.request)
  const r = x.receipt
  const same = (a: string, b: string) => a.replace(/^0x/, '').toLowerCase() === b.replace(/^0x/, '').toLowerCase()
  if (!opts.ownRequest) {
    if (requestDigest(x.chainId, x.settlement, q) !== x.requestDigest.toLowerCase()) problem('request-digest', "the request digest is not the request's")
    if (!same(toHex(tokensRoot(x.prompt)), q.promptRoot)) problem('prompt', "the prompt tokens do not hash to the request's promptRoot")
    if (!same(toHex(paramsHash(x.params)), q.paramsHash)) problem('params', "the params do not hash to the request's paramsHash")
  }
  if (canonicalJson(r.params) !== canonicalJson(x.params)) problem('params', "the receipt's params are not the transcript's")
  for (const [name, a, b] of [['modelRoot', r.modelRoot, q.modelRoot], ['promptRoot', r.promptRoot, q.promptRoot], ['paramsHash', r.paramsHash, q.paramsHash]] as const) {
    if (!same(a, b)) problem('receipt', `the receipt's ${name} is not the request's`)
  }
  if (r.seed !== String(q.seed)) problem('receipt', "the receipt's seed is not the request's")
  if (r.nPrompt !== x.prompt.length) problem('prompt', `the receipt counts ${r.nPrompt} prompt tokens, the transcript has ${x.prompt.length}`)
  if (r.nOutput !== x.output.length) problem('output', `the receipt counts ${r.nOutput} output tokens, the transcript has ${x.output.length}`)
  if (!same(toHex(tokensRoot(x.output)), r.outputRoot)) problem('output', "the output tokens do not hash to the receipt's outputRoot")
  if (r.nPrompt + r.nOutput > q.maxTokens) problem('receipt', `the receipt's ${r.nPrompt + r.nOutput} tokens exceed the request's maxTokens ${q.maxTokens}`)
  if (x.ack) {
    const n = x.ack.nOutput
    if (!(n >= 1 && n <= x.output.length) || !same(toHex(tokensRoot(x.output.slice(0, n))), x.ack.outputRoot)) problem('ack', 'the acknowledgement is not of a prefix of the output')
  }
  return out
}

/** The transcript, or InvalidTranscriptError with its `transcriptProblems`. */
export function parseTranscript(raw: unknown): Transcript {
  const problems = transcriptProblems(raw)
  if (problems.length) throw new InvalidTranscriptError(problems)
  return raw as Transcript
}

/**
 * `transcriptProblems` plus the signatures: the request's recovers `client`, the receipt's the
 * request's provider, the acknowledgement's (when present) `client`. `ownRequest` (a client
 * checking the answer to the request it built and signed): the request's hashes and signature
 * are the caller's own and are not checked again.
 *
 * @example
 *   const v = await verifyTranscript(JSON.parse(body))
 *   if (!v.ok) console.log(v.problems.map((p) => p.code))
 */
export async function verifyTranscript(raw: unknown, opts: { ownRequest?: boolean } = {}): Promise<{ ok: true; transcript: Transcript } | { ok: false; problems: TranscriptProblem[] }> {
  const problems = transcriptProblems(raw, opts)
  if (problems.some((p) => p.code === 'shape')) return { ok: false, problems }
  const t = raw as Transcript
  const q = requestFromJson(t.request)
  // an own request's digest is the caller's (transcriptProblems skipped it); anyone else's is recomputed
  const rd = opts.ownRequest ? (t.requestDigest.toLowerCase() as Hex) : requestDigest(t.chainId, t.settlement, q)
  const client = getAddress(t.client)
  const byClient = opts.ownRequest ? undefined : signedBy(rd, t.requestSignature, client, 'the request signature')
  if (byClient) problems.push({ code: 'request-signature', message: `${byClient} the client ${client}` })
  const provider = getAddress(q.provider)
  const byProvider = signedBy(receiptFieldsDigest(t.chainId, t.settlement, receiptFieldsOf(t.receipt, rd)), t.receiptSignature, provider, 'the receipt signature')
  if (byProvider) problems.push({ code: 'receipt-signature', message: `${byProvider} the request's provider ${provider}` })
  if (t.ack) {
    const acked = signedBy(deliveryDigestOf(t.chainId, t.settlement, rd, t.ack), t.ack, client, 'the acknowledgement')
    if (acked) problems.push({ code: 'ack', message: `${acked} the client` })
  }
  return problems.length ? { ok: false, problems } : { ok: true, transcript: t }
}

/**
 * The job file of a network job, for `tessera verify --receipt FILE` (which checks the receipt
 * signature against the request, then replays the answer): `traceLeaves` are the provider's leaf
 * hashes when it has them (the client does not).
 */
export function jobFileOf(t: Transcript, traceLeaves?: readonly Uint8Array[]): JobFile {
  return {
    format: JOB_FILE_FORMAT,
    text: t.text,
    tokens: t.output.slice(),
    promptTokens: t.prompt.slice(),
    stopReason: t.stopReason,
    receipt: t.receipt,
    ...(traceLeaves ? { traceLeaves: Buffer.concat(traceLeaves).toString('base64') } : {}),
    signed: {
      chainId: t.chainId, settlement: t.settlement, request: t.request, requestDigest: t.requestDigest,
      signer: getAddress(t.request.provider), signature: t.receiptSignature,
    },
  }
}

/** The claim item of an acknowledged transcript (Settlement.claimBatch), billing what the client acknowledged. */
export function claimItemOf(t: Transcript & { ack: Delivery }): ClaimItem {
  const r = t.receipt
  return {
    req: requestFromJson(t.request), r: t.requestSignature.r, vs: t.requestSignature.vs, outputRoot: `0x${r.outputRoot}`, traceRoot: `0x${r.traceRoot}`,
    nPrompt: r.nPrompt, nOutput: r.nOutput, nLayer: r.nLayer, ack: t.ack,
  }
}
