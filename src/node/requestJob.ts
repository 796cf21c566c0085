/**
 * The client's side of a network job (docs/NETWORK.md "Jobs"): sign a request for the first
 * offer, stream its tokens to `onText`, check the receipt against what was sent and received,
 * return the transcript, and acknowledge delivery right after. If the provider refuses, dies, stalls or
 * answers with a receipt that does not check out, the next offer gets a new request (fresh nonce,
 * same seed): the engine is deterministic, so its tokens must start with the ones already shown,
 * and only the rest is shown. Tries and the whole job are bounded.
 *
 * Escrow is the caller's job: every try's provider reserves `maxTokens * price` of the client's
 * free escrow when it accepts, and a try that dies keeps its reservation until the request
 * expires (then anyone may `release` it), so deposit enough for the tries you allow.
 */
import { randomBytes } from 'node:crypto'
import { type Address, getAddress, type Hex } from 'viem'
import { type Delivery, type Deployment, type JobRequest, requestDigest, signDelivery, signJobRequest } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import type { ArithVersion } from '../engine/version.js'
import { BaseError } from '../errors.js'
import { type FrameConn, FrameTimeoutError } from '../p2p/frames.js'
import { toHex } from '../trace/merkle.js'
import { type JobParams, paramsHash, tokensRoot } from '../trace/receipt.js'
import { JOB_PROTOCOL, parseToClient, type RequestMsg, type SignatureMsg, type ToClient } from './jobProtocol.js'
import { chainNow } from './serveJob.js'
import { requestToJson, type Transcript, TRANSCRIPT_VERSION, verifyTranscript } from './transcript.js'

/** A provider to ask: its address, its price for the model, and how to open a job stream to it. */
export type JobOffer = { provider: Address; pricePerToken: bigint; connect(signal: AbortSignal): Promise<FrameConn> }

/** Fresh request nonces for a client (uint64; each is paid at most once). */
export type NonceSource = { next(): Promise<bigint> }

/** Random 64-bit nonces: a collision with an earlier request of the same client is about 2^-64 per pair. */
export function randomNonces(): NonceSource {
  return { next: async () => randomBytes(8).readBigUInt64BE() }
}

export type RequestJobOptions = {
  /** The client's chain clients: its account signs the request and the acknowledgement. */
  clients: ChainClients
  deployment: Deployment
  /** Offers in the order to try them (cheapest first, say). */
  offers: readonly JobOffer[]
  modelRoot: Hex
  prompt: readonly number[]
  params: JobParams
  seed: bigint
  nonces: NonceSource
  /** Seconds from chain time to the request's expiry (default 3600: the provider must claim before it). */
  lifetimeS?: bigint
  /** Offers tried at most (default 3). */
  maxTries?: number
  /** The whole job, all tries (default 10 minutes). */
  timeoutMs?: number
  /** Longest wait for the acceptance, the next token or the receipt (default 60 s). */
  stallMs?: number
  /** Called with each new piece of the answer's text (never twice for the same text across tries). */
  onText?: (text: string) => void
  /**
   * On a 1.4.0 stream, send the request before signing it, the signature following (the provider's
   * engine starts meanwhile). Default: only when the account cannot sign a digest locally (a wallet
   * over JSON-RPC, slow); a local key signs in ~0.04 ms (libsecp256k1) to ~0.4 ms (viem), less than
   * a second message costs (docs/BENCHMARKS.md "Network", fourth and seventh passes).
   */
  signatureAfter?: boolean
  /**
   * The arithmetic the model is registered under (`registrationArith`): a receipt naming another
   * is refused (`bad-receipt`, the next offer is tried). Its answer would verify under the
   * receipt's arithmetic, but auditors and the judge replay under the registered one, so such a
   * provider loses its audits; the client does not take that answer. Undefined: not checked (an
   * unregistered model).
   */
  arith?: ArithVersion
  /** Stores the transcript before the acknowledgement goes out (the client's JobBook); if it fails, no acknowledgement goes out (`acked` false). */
  book?: { putTranscript(t: Transcript): Promise<void> }
  signal?: AbortSignal
}

/** How one try ended. */
export type JobTry = { provider: Address; nonce: bigint; outcome: 'done' | 'refused' | 'failed'; code: string; message: string; tokens: number }

/** No try gave a verified answer; `tries` says why each failed. */
export class JobFailedError extends BaseError {
  override name = 'JobFailedError'
  constructor(readonly tries: JobTry[]) {
    super(`the job failed after ${tries.length} ${tries.length === 1 ? 'try' : 'tries'}`, { details: tries.map((t) => `${t.provider}: ${t.code} (${t.message})`).join('; ') })
  }
}

/** A later provider's answer does not start with the tokens already shown: one of them lied. */
export class AnswerMismatchError extends BaseError {
  override name = 'AnswerMismatchError'
  constructor(readonly provider: Address, readonly index: number, readonly tries: JobTry[]) {
    super(`provider ${provider}'s answer differs at token ${index} from the one already shown`, { details: 'a deterministic job gives the same tokens everywhere; one of the providers served a wrong answer' })
  }
}

/** The job was cancelled (the caller's signal) or ran past its timeout. */
export class JobAbortedError extends BaseError {
  override name = 'JobAbortedError'
}

/** A try that ended without an answer, with the code to report. */
class TryFailure extends Error {
  constructor(readonly outcome: 'refused' | 'failed', readonly code: string, message: string) {
    super(message)
  }
}

/**
 * Runs one job on the network, failing over between `offers`. Resolves once the answer is
 * verified; `acked` resolves once the delivery acknowledgement (which the provider's claim needs)
 * is on its way, after the client's book stored the transcript (the transcript's `ack` is set by
 * then): a process about to exit awaits it.
 *
 * @example
 *   const { transcript, acked } = await requestJob({ clients, deployment, offers, modelRoot, prompt, params, seed: 0n, nonces: randomNonces(), onText: (s) => process.stdout.write(s) })
 *   await acked
 *   writeFileSync('job.json', JSON.stringify(jobFileOf(transcript)))   // tessera verify --receipt job.json
 */
export async function requestJob(o: RequestJobOptions): Promise<{ transcript: Transcript; tries: JobTry[]; acked: Promise<boolean> }> {
  const timeout = AbortSignal.timeout(o.timeoutMs ?? 600_000)
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout
  const tries: JobTry[] = []
  // what was already shown: the token ids and their text
  const shown = { ids: [] as number[], text: '' }
  const maxTries = Math.min(o.maxTries ?? 3, o.offers.length)
  for (let n = 0; n < maxTries; n++) {
    if (signal.aborted) throw new JobAbortedError(signal.reason === timeout.reason ? `the job ran past ${o.timeoutMs ?? 600_000} ms` : 'the job was cancelled', { cause: signal.reason })
    const offer = o.offers[n]
    const nonce = await o.nonces.next()
    const got = { tokens: 0 }
    try {
      const { transcript, acked } = await tryOffer(o, offer, nonce, shown, got, signal)
      tries.push({ provider: offer.provider, nonce, outcome: 'done', code: 'ok', message: 'verified', tokens: got.tokens })
      return { transcript, tries, acked }
    } catch (e) {
      if (e instanceof AnswerMismatchError) throw new AnswerMismatchError(e.provider, e.index, [...tries, { provider: offer.provider, nonce, outcome: 'failed', code: 'mismatch', message: e.message, tokens: got.tokens }])
      if (signal.aborted) throw new JobAbortedError(signal.reason === timeout.reason ? `the job ran past ${o.timeoutMs ?? 600_000} ms` : 'the job was cancelled', { cause: signal.reason })
      const f = e instanceof TryFailure ? e : new TryFailure('failed', (e as Error).name === 'FrameTimeoutError' ? 'timeout' : 'closed', (e as Error).message)
      tries.push({ provider: offer.provider, nonce, outcome: f.outcome, code: f.code, message: f.message, tokens: got.tokens })
    }
  }
  throw new JobFailedError(tries)
}

/**
 * In a later turn of the event loop: sets the transcript's `ack` once `signed` gives it, stores the
 * transcript in the client's book, then sends the acknowledgement; true once it is handed to the
 * stream, false when the signature, the store or the stream failed (the answer stays verified; the
 * provider cannot claim the job without it).
 */
function acknowledge(o: RequestJobOptions, conn: FrameConn, transcript: Transcript, signed: () => Promise<Delivery>): Promise<boolean> {
  return new Promise<void>((resolve) => setImmediate(resolve))
    .then(async () => {
      const ack = await signed()
      transcript.ack = ack
      await o.book?.putTranscript(transcript)
      await conn.send({ t: 'ack', delivery: ack })
      return true
    })
    .catch((e: unknown) => {
      conn.abort(e instanceof Error ? e : new Error(String(e)))
      return false
    })
}

/** The last block's time per client, and when it was read (ms). */
const blockTimes = new WeakMap<ChainClients, { ts: bigint; at: number }>()

/**
 * Chain time for a request's expiry without a read per job: the last block time read (at most
 * `BLOCK_TIME_MAX_AGE_MS` ago) plus the time since, or the clock when later (`chainNow`).
 */
async function chainTimeOf(c: ChainClients): Promise<bigint> {
  let b = blockTimes.get(c)
  if (!b || Date.now() - b.at > BLOCK_TIME_MAX_AGE_MS) {
    const at = Date.now()
    b = { ts: (await c.public.getBlock()).timestamp, at }
    blockTimes.set(c, b)
  }
  return chainNow(b.ts + BigInt(Math.floor((Date.now() - b.at) / 1000)))
}
const BLOCK_TIME_MAX_AGE_MS = 10_000
/** Kept streams found closed at the first exchange before a new one is opened for the same try. */
const MAX_STALE_STREAMS = 3

async function tryOffer(o: RequestJobOptions, offer: JobOffer, nonce: bigint, shown: { ids: number[]; text: string }, got: { tokens: number }, signal: AbortSignal): Promise<{ transcript: Transcript; acked: Promise<boolean> }> {
  const d = o.deployment
  const me = o.clients.account.address
  // the stream opens (round trips to the provider) while the request is built (CPU here)
  let connecting = offer.connect(signal)
  connecting.catch(() => {})
  let req: JobRequest
  try {
    req = {
      provider: getAddress(offer.provider), modelRoot: o.modelRoot, promptRoot: `0x${toHex(tokensRoot(o.prompt))}`, paramsHash: `0x${toHex(paramsHash(o.params))}`,
      seed: o.seed, nonce, expiry: (await chainTimeOf(o.clients)) + (o.lifetimeS ?? 3600n), maxTokens: o.prompt.length + o.params.maxTokens, pricePerToken: offer.pricePerToken,
    }
  } catch (e) {
    connecting.then((c) => c.abort(e as Error), () => {})
    throw e
  }
  // what the request signature signs, the receipt answers and the acknowledgement names
  const digest = requestDigest(d.chainId, d.settlement, req)
  // signed once; on 1.4.0 after the request went out (the provider's engine starts meanwhile)
  let signing: Promise<Awaited<ReturnType<typeof signJobRequest>>> | undefined
  const sign = () => {
    signing ??= signJobRequest(o.clients, d.settlement, req, digest)
    return signing
  }
  let conn: FrameConn
  const open = async () => {
    try {
      return await connecting
    } catch (e) {
      throw new TryFailure('failed', 'unreachable', (e as Error).message)
    }
  }
  conn = await open()
  // the caller's cancel reaches the provider as {t:'cancel'}, which stops its engine
  const onAbort = () => {
    conn.send({ t: 'cancel' }).then(() => conn.close(), () => {}).catch(() => {})
    setTimeout(() => conn.abort(new JobAbortedError('the job was cancelled')), 1000).unref()
  }
  signal.addEventListener('abort', onAbort, { once: true })
  const stallMs = o.stallMs ?? 60_000
  const next = async (): Promise<ToClient> => {
    let raw: unknown
    try {
      raw = await conn.recv(stallMs)
    } catch (e) {
      if (e instanceof FrameTimeoutError) throw new TryFailure('failed', 'timeout', `no message from the provider in ${stallMs} ms`)
      throw new TryFailure('failed', 'closed', (e as Error).message)
    }
    if (raw === undefined) throw new TryFailure('failed', 'closed', 'the provider closed the stream')
    try {
      return parseToClient(raw)
    } catch (e) {
      throw new TryFailure('failed', 'bad-message', (e as Error).message)
    }
  }
  const request: RequestMsg = { t: 'request', request: requestToJson(req), client: me, prompt: o.prompt.slice(), params: o.params }
  let signature: Awaited<ReturnType<typeof signJobRequest>> | undefined
  try {
    let first: ToClient
    for (let attempt = 1; ; attempt++) {
      try {
        if (conn.protocol === JOB_PROTOCOL && (o.signatureAfter ?? o.clients.account.sign === undefined)) {
          // 1.4.0: the request's content first, its signature right after (the provider holds
          // `accepted` and the tokens until it checks)
          const sent = conn.send(request)
          sent.catch(() => {})
          signature = await sign()
          await sent
          await conn.send({ t: 'signature', signature } satisfies SignatureMsg)
        } else {
          signature = await sign()
          await conn.send({ ...request, signature })
        }
        first = await next()
        break
      } catch (e) {
        // a kept stream (1.3.0) the provider closed meanwhile, found out at this first exchange: the
        // same request on a new stream (if the provider did read it, it refuses it as replayed)
        const closed = !(e instanceof TryFailure) || e.code === 'closed'
        if (!conn.reused || !closed || attempt >= MAX_STALE_STREAMS || signal.aborted) throw e
        conn.abort(e as Error)
        connecting = offer.connect(signal)
        conn = await open()
      }
    }
    if (first.t === 'error') throw new TryFailure('refused', first.code, first.message ?? '')
    // `accepted` comes with the first token: a job stopped before it (a provider shutting down) cancels first
    if (first.t === 'cancel') throw new TryFailure('failed', 'cancelled', 'the provider cancelled')
    if (first.t !== 'accepted') throw new TryFailure('failed', 'bad-message', `expected accepted, got ${first.t}`)

    const ids: number[] = []
    let text = ''
    let done: Extract<ToClient, { t: 'done' }>
    // 1.3.0: `end` says the answer is complete (no token may follow it)
    let ended = false
    for (;;) {
      const m = await next()
      if (m.t === 'done') {
        done = m
        break
      }
      if (m.t === 'error' || m.t === 'cancel') throw new TryFailure('failed', m.t === 'error' ? m.code : 'cancelled', m.t === 'error' ? (m.message ?? '') : 'the provider cancelled')
      if (m.t === 'end') {
        if (m.n !== ids.length || ended) throw new TryFailure('failed', 'bad-message', `end says ${m.n} tokens after ${ids.length}`)
        ended = true
        continue
      }
      if (m.t !== 'token') throw new TryFailure('failed', 'bad-message', `unexpected ${m.t} message`)
      if (ended) throw new TryFailure('failed', 'bad-token', 'a token after end')
      if (m.i !== ids.length) throw new TryFailure('failed', 'bad-token', `token ${m.i} arrived where ${ids.length} was due`)
      if (ids.length >= o.params.maxTokens) throw new TryFailure('failed', 'bad-token', `more than the ${o.params.maxTokens} tokens asked for`)
      // a deterministic job: what was shown must be a prefix of this answer
      if (m.i < shown.ids.length && shown.ids[m.i] !== m.id) throw new AnswerMismatchError(offer.provider, m.i, [])
      ids.push(m.id)
      got.tokens = ids.length
      text += m.text
      if (text.length > shown.text.length) {
        if (!text.startsWith(shown.text)) throw new AnswerMismatchError(offer.provider, m.i, [])
        o.onText?.(text.slice(shown.text.length))
        shown.text = text
      }
      if (ids.length > shown.ids.length) shown.ids = ids.slice()
    }

    const transcript: Transcript = {
      v: TRANSCRIPT_VERSION, chainId: d.chainId, settlement: d.settlement, request: requestToJson(req), requestDigest: digest, requestSignature: signature!,
      client: me, prompt: o.prompt.slice(), params: o.params, output: ids, text, stopReason: done.stopReason, receipt: done.receipt,
      receiptSignature: done.receiptSignature,
    }
    // the receipt must be the provider's signature over this request and exactly these tokens
    // (the request and its signature are this client's own, built above)
    const v = await verifyTranscript(transcript, { ownRequest: true })
    if (!v.ok) throw new TryFailure('failed', 'bad-receipt', v.problems.map((p) => p.message).join('; '))
    if (o.arith !== undefined && done.receipt.arith !== o.arith) throw new TryFailure('failed', 'bad-receipt', `the receipt names arithmetic ${done.receipt.arith}, the model is registered under ${o.arith}`)
    if (ids.length < shown.ids.length || text !== shown.text) throw new AnswerMismatchError(offer.provider, ids.length, [])
    // the caller has its verified answer now; the acknowledgement (its signature, the store write,
    // the message) follows, after the caller's own continuation: the provider needs it, the answer does not
    // (the receipt's outputRoot is that of `ids`, which the check above includes)
    const acked = acknowledge(o, conn, transcript, () => signDelivery(o.clients, d.settlement, { request: digest, nOutput: ids.length, outputRoot: `0x${done.receipt.outputRoot}` }))
    // a 1.3.0 stream is kept for this provider's next job at once; a dial that takes it waits for the ack to go out
    if (conn.release) conn.release(acked)
    else void acked.then(() => conn.close().catch(() => {}))
    return { transcript, acked }
  } catch (e) {
    conn.abort(e as Error)
    throw e
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
