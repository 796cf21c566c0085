/**
 * The messages of `/tessera/job/1.4.0` (docs/NETWORK.md "Jobs"), jobs one after another per stream:
 *
 *   client   -> {t:'request', request, signature:{r,vs}, client, prompt, params}
 *      1.4.0: or the request without `signature`, followed by {t:'signature', signature:{r,vs}}: the
 *      provider starts the engine on the request's content while the client signs, and holds
 *      `accepted` and every token until the signature checks (a bad one: {t:'error', code:'bad-signature'})
 *   provider -> {t:'accepted'}                         after its local checks (1.4.0: and the signature's)
 *   provider -> {t:'token', i, id, text}*              as sampled, several to a write when they come fast
 *   provider -> {t:'end', n, stopReason}               1.3.0: the answer's n tokens are all sent
 *   provider -> {t:'done', receipt, receiptSignature, stopReason}   the signed receipt (`reserve` goes out after it)
 *   client   -> {t:'ack', delivery}                    after checking tokens and receipt
 *   (1.3.0: the stream stays open; the client's next request may follow the ack)
 *   either   -> {t:'cancel'} | {t:'error', code, message?}
 *
 * `/tessera/job/1.3.0` (`JOB_PROTOCOL_1_3`, still served) is the same with the signature always in
 * the request. `/tessera/job/1.2.0` (`JOB_PROTOCOL_1_2`, still served) is 1.3.0 without `end`, one job per
 * stream. `end` lets the client sign its acknowledgement while the provider signs the receipt;
 * a kept stream saves libp2p's stream open (multistream-select) on every job after the first.
 *
 * `client` (the address the client says signed the request) lets the provider tell a bad
 * signature from a request signed by someone else: any 65 bytes recover some address. The parsers
 * here check every field's type and bound; anything else is a ProtocolError with code
 * `bad-message`, which goes back to the remote before the stream closes.
 */
import type { Address, Hex } from 'viem'
import type { Delivery } from '../chain/client.js'
import { type FrameConn, ProtocolError } from '../p2p/frames.js'
import type { JobParams, Receipt } from '../trace/receipt.js'
import {
  type CompactSignature, isAddr, isCompactSignature, isDelivery, isJobParams, isReceipt, isRequestJson, isTokens, type RequestJson,
  type StopReason,
} from './transcript.js'

/** The job protocol's id (docs/NETWORK.md "Protocols"); a new message shape is a new version. */
export const JOB_PROTOCOL = '/tessera/job/1.4.0'
/** The previous version, still served: the signature always in the request. */
export const JOB_PROTOCOL_1_3 = '/tessera/job/1.3.0'
/** What a client dials, newest first (`dialJob`). */
export const JOB_PROTOCOLS = [JOB_PROTOCOL, JOB_PROTOCOL_1_3] as const
/** The previous version, still served: one job per stream, no `end`. */
export const JOB_PROTOCOL_1_2 = '/tessera/job/1.2.0'

/** Refusal and failure codes of `{t:'error', code}` (docs/NETWORK.md "Jobs"). */
export const JOB_ERROR_CODES = [
  'bad-message', 'bad-signature', 'wrong-provider', 'unknown-model', 'prompt-mismatch', 'params-mismatch', 'replayed', 'expired',
  'price-too-low', 'busy', 'stake-too-low', 'escrow-too-low', 'internal',
] as const
export type JobErrorCode = (typeof JOB_ERROR_CODES)[number]

/** 1.4.0: `signature` may be left out of the request and follow in a `SignatureMsg`. */
export type RequestMsg = { t: 'request'; request: RequestJson; signature?: CompactSignature; client: Address; prompt: number[]; params: JobParams }
/** 1.4.0: the request's signature, right after a request sent without one. */
export type SignatureMsg = { t: 'signature'; signature: CompactSignature }
/** 1.1.0: `accepted` comes before the reservation is mined, and names none. */
export type AcceptedMsg = { t: 'accepted' }
export type TokenMsg = { t: 'token'; i: number; id: number; text: string }
/** 1.3.0: all `n` tokens of the answer are sent; the receipt follows. */
export type EndMsg = { t: 'end'; n: number; stopReason: StopReason }
/** 1.2.0: `done` no longer waits for the reservation, so it names none (the provider keeps it). */
export type DoneMsg = { t: 'done'; receipt: Receipt; receiptSignature: Hex; stopReason: StopReason }
export type AckMsg = { t: 'ack'; delivery: Delivery }
export type CancelMsg = { t: 'cancel' }
export type ErrorMsg = { t: 'error'; code: JobErrorCode | string; message?: string }

/** What the provider may receive, and what the client may receive. */
export type ToProvider = RequestMsg | SignatureMsg | AckMsg | CancelMsg | ErrorMsg
export type ToClient = AcceptedMsg | TokenMsg | EndMsg | DoneMsg | CancelMsg | ErrorMsg

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const bad = (what: string) => new ProtocolError(`bad ${what} message`, { code: 'bad-message' })

function parseCommon(m: Record<string, unknown>): CancelMsg | ErrorMsg | undefined {
  if (m.t === 'cancel') return { t: 'cancel' }
  if (m.t === 'error') {
    if (typeof m.code !== 'string' || m.code.length > 64 || (m.message !== undefined && typeof m.message !== 'string')) throw bad('error')
    return { t: 'error', code: m.code, message: typeof m.message === 'string' ? m.message.slice(0, 1000) : undefined }
  }
  return undefined
}

/** A message to the provider, checked; throws ProtocolError (`bad-message`). */
export function parseToProvider(raw: unknown): ToProvider {
  if (!isObj(raw)) throw bad('non-object')
  const common = parseCommon(raw)
  if (common) return common
  switch (raw.t) {
    case 'request':
      if (
        !isRequestJson(raw.request) || (raw.signature !== undefined && !isCompactSignature(raw.signature)) || !isAddr(raw.client) || !isTokens(raw.prompt) ||
        raw.prompt.length === 0 || !isJobParams(raw.params)
      ) {
        throw bad('request')
      }
      return { t: 'request', request: raw.request, ...(raw.signature === undefined ? {} : { signature: raw.signature }), client: raw.client, prompt: raw.prompt, params: raw.params }
    case 'signature':
      if (!isCompactSignature(raw.signature)) throw bad('signature')
      return { t: 'signature', signature: raw.signature }
    case 'ack':
      if (!isDelivery(raw.delivery)) throw bad('ack')
      return { t: 'ack', delivery: raw.delivery }
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(String(raw.t)).slice(0, 40)}`, { code: 'bad-message' })
  }
}

/** A message to the client, checked; throws ProtocolError (`bad-message`). */
export function parseToClient(raw: unknown): ToClient {
  if (!isObj(raw)) throw bad('non-object')
  const common = parseCommon(raw)
  if (common) return common
  switch (raw.t) {
    case 'accepted':
      return { t: 'accepted' }
    case 'token':
      if (!Number.isInteger(raw.i) || (raw.i as number) < 0 || !Number.isInteger(raw.id) || (raw.id as number) < 0 || (raw.id as number) > 0xffffffff || typeof raw.text !== 'string' || raw.text.length > 4096) {
        throw bad('token')
      }
      return { t: 'token', i: raw.i as number, id: raw.id as number, text: raw.text }
    case 'end':
      if (!Number.isInteger(raw.n) || (raw.n as number) < 0 || !['eog', 'stop', 'length'].includes(raw.stopReason as string)) throw bad('end')
      return { t: 'end', n: raw.n as number, stopReason: raw.stopReason as StopReason }
    case 'done':
      if (
        !isReceipt(raw.receipt) || typeof raw.receiptSignature !== 'string' || !/^0x[0-9a-fA-F]{130}$/.test(raw.receiptSignature) ||
        !['eog', 'stop', 'length'].includes(raw.stopReason as string)
      ) {
        throw bad('done')
      }
      return { t: 'done', receipt: raw.receipt, receiptSignature: raw.receiptSignature as Hex, stopReason: raw.stopReason as StopReason }
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(String(raw.t)).slice(0, 40)}`, { code: 'bad-message' })
  }
}

/** What `dialJob` needs of a host (src/p2p/host.ts `Host`). */
export type JobDialer = { dial(peerOrAddr: string, protocol: string, options?: { signal?: AbortSignal }): Promise<FrameConn> }

/**
 * Opens a job stream to `target` on the newest version it serves: 1.4.0, else 1.3.0 (a provider
 * that does not speak 1.4.0 costs one more multistream-select round trip). The stream's
 * `protocol` says which, so the client knows whether it may send the signature after the request.
 */
export async function dialJob(host: JobDialer, target: string, signal?: AbortSignal): Promise<FrameConn> {
  let first: unknown
  for (const protocol of JOB_PROTOCOLS) {
    try {
      const conn = await host.dial(target, protocol, { signal })
      return { ...conn, protocol, remotePeer: conn.remotePeer, reused: conn.reused }
    } catch (e) {
      first ??= e
      // only a provider that does not speak this version gets the older one (an unreachable one is not dialled twice)
      if (signal?.aborted || (e as { cause?: Error }).cause?.name !== 'UnsupportedProtocolError') break
    }
  }
  throw first
}
