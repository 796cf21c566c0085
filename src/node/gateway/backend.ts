/**
 * What the OpenAI-compatible gateway (./server.ts) runs jobs on: a `GatewayBackend` lists the
 * models it can serve and runs one job (prompt tokens, the job's parameters, a seed), streaming the
 * answer's text as it is sampled and returning the output with its receipt bundle. The gateway
 * does the HTTP, the OpenAI shapes and the chat template; a backend does only the job.
 *
 * Two backends fit this interface:
 * - `localBackend` (here): the engine in this process, each receipt signed by a local provider key,
 *   for tests, benchmarks and a single-node gateway.
 * - a network backend (to be wired to src/node/requestJob.ts, the network client): for one job it
 *   orders the model's offers with a `Router` (./routing.ts), signs a request to the first
 *   provider, forwards each streamed token's text to `onText`, verifies the receipt, and when a
 *   provider fails mid-stream asks the next one at the same seed, passing on only the text beyond
 *   what was already forwarded (the deterministic engine makes the first answer a prefix of the
 *   second). The gateway sees one uninterrupted `run`; `bundle.provider` names who answered.
 */
import { type Address, getAddress, type Hex, type LocalAccount } from 'viem'
import { type JobRequest, receiptFieldsDigest, requestDigest, signReceipt } from '../../chain/client.js'
import type { Tokenizer } from '../../engine/tokenizer/index.js'
import { BaseError } from '../../errors.js'
import { generateAsync, type Model } from '../../runtime/model.js'
import { toHex } from '../../trace/merkle.js'
import type { JobParams, Receipt } from '../../trace/receipt.js'
import { JOB_FILE_FORMAT, type JobFile, receiptFieldsOf, requestToJson, type StopReason } from '../transcript.js'

/** A model a backend serves, as the gateway lists it (`GET /v1/models`). */
export type GatewayModel = {
  /** `name@` + the first 16 hex digits of the model root: what clients put in `model`. */
  id: string
  /** A short name (the GGUF `general.name` or the file's); clients may use it alone when unique. */
  name: string
  /** The model root, 0x-hex (docs/TRACE.md "Model root"). */
  root: Hex
  ownedBy: string
  /** Unix seconds, for the OpenAI `created` field. */
  created: number
  contextLength: number
  tokenizer: Tokenizer
  /** The GGUF `tokenizer.chat_template`, when the file has one. */
  chatTemplate?: string
}

/** One job as the gateway asks for it. `params.maxTokens` is already checked against the context. */
export type RunRequest = { model: GatewayModel; promptTokens: number[]; params: JobParams; seed: bigint; signal: AbortSignal }

/** The receipt of one job and what makes it checkable: the provider's signature over it and the request it answers. */
export type ReceiptBundle = {
  receipt: Receipt
  /** The provider's EIP-712 signature over the receipt fields (docs/CHAIN.md "Formats"). */
  receiptSignature?: Hex
  provider?: Address
  /** EIP-712 digest of the signed request: the job's id (`GET /v1/receipts/{id}`). */
  requestDigest?: Hex
  /** EIP-712 digest of the receipt fields (what the signature signs; Settlement.receiptDigest). */
  receiptDigest?: Hex
  /** The job file `tessera verify --receipt` reads (its trace leaves when the backend has them). */
  jobFile?: JobFile
}

export type GatewayResult = {
  /** Output token ids, the end-of-generation token included when it ended the answer. */
  outputTokens: number[]
  text: string
  stopReason: StopReason
  usage: { promptTokens: number; completionTokens: number }
  bundle: ReceiptBundle
}

export type GatewayBackend = {
  models(): GatewayModel[]
  /**
   * Runs one job, calling `onText` with each new piece of the answer's text; rejects with the
   * signal's reason once `req.signal` aborts (the job stops between tokens).
   */
  run(req: RunRequest, onText: (delta: string) => void): Promise<GatewayResult>
}

/** The gateway asked a backend for a model it does not serve. */
export class UnknownModelError extends BaseError {
  override name = 'UnknownModelError'
  constructor(model: string) {
    super(`model ${JSON.stringify(model)} is not served here`)
  }
}

/** The key and EIP-712 domain a local backend signs its receipts with (a devnet provider's account, or the node's key). */
export type LocalSigner = { account: LocalAccount; chainId: number; settlement: Address }

export type LocalModel = { model: Model; name?: string; ownedBy?: string; created?: number; chatTemplate?: string }

/** The metadata string at `key`, if the GGUF has one. */
function metaString(m: Model, key: string): string | undefined {
  const v = m.metadata.get(key)
  return v?.type === 'string' ? v.value : undefined
}

/** The gateway's view of a loaded model: `name` defaults to the GGUF `general.name`, then the file name, as [A-Za-z0-9._-] runs joined by '-'. */
export function gatewayModelOf(m: Model, o: Omit<LocalModel, 'model'> = {}): GatewayModel {
  const root = toHex(m.modelRoot)
  // A model id fit for a URL or a shell: runs of other characters become one '-' ("tessera-default-1m (q8_0)" -> "tessera-default-1m-q8_0").
  const raw = o.name ?? metaString(m, 'general.name') ?? m.path.replace(/^.*\//, '').replace(/\.gguf$/, '')
  const name = raw.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '')
  return {
    id: `${name}@${root.slice(0, 16)}`,
    name,
    root: `0x${root}`,
    ownedBy: o.ownedBy ?? 'tessera',
    created: o.created ?? 0,
    contextLength: m.transformer.config.contextLength,
    tokenizer: m.tokenizer,
    chatTemplate: o.chatTemplate ?? metaString(m, 'tokenizer.chat_template'),
  }
}

/**
 * A backend on the engine in this process: each job runs `generateAsync` (yielding between tokens,
 * so concurrent jobs interleave and an abort stops a job after its current token) and its receipt
 * is signed, as `tessera run` signs one, over a request naming the signer as provider (price 0, a
 * fresh nonce per job), so `tessera verify` checks the job file it returns.
 *
 * @example
 *   const backend = localBackend([{ model: await loadModel('tiny.gguf') }], { account: privateKeyToAccount(key), chainId: 31337, settlement })
 *   const gw = await startGateway({ backend })
 */
export function localBackend(models: LocalModel[], signer: LocalSigner): GatewayBackend {
  const served = models.map((m) => ({ model: m.model, info: gatewayModelOf(m.model, m) }))
  // Nonces of this backend's requests: unique per job (they make two jobs with the same prompt, params and seed two requests).
  let nonce = BigInt(Date.now()) * 1000n
  return {
    models: () => served.map((s) => s.info),
    async run(req, onText) {
      const s = served.find((x) => x.info.id === req.model.id)
      if (!s) throw new UnknownModelError(req.model.id)
      const r = await generateAsync(s.model, { prompt: req.promptTokens, seed: req.seed, ...req.params, signal: req.signal, onText })
      const request: JobRequest = {
        provider: signer.account.address, modelRoot: `0x${r.receipt.modelRoot}`, promptRoot: `0x${r.receipt.promptRoot}`,
        paramsHash: `0x${r.receipt.paramsHash}`, seed: req.seed, nonce: nonce++, expiry: BigInt(Math.floor(Date.now() / 1000) + 3600),
        maxTokens: r.receipt.nPrompt + r.receipt.params.maxTokens, pricePerToken: 0n,
      }
      const rd = requestDigest(signer.chainId, signer.settlement, request)
      const fields = receiptFieldsOf(r.receipt, rd)
      const signature = await signReceipt(signer.account, signer.chainId, signer.settlement, fields)
      const provider = getAddress(signer.account.address)
      const jobFile: JobFile = {
        format: JOB_FILE_FORMAT,
        text: r.text, tokens: r.outputTokens, promptTokens: r.promptTokens, stopReason: r.stopReason, receipt: r.receipt,
        traceLeaves: Buffer.concat(r.leaves).toString('base64'),
        signed: { chainId: signer.chainId, settlement: signer.settlement, request: requestToJson(request), requestDigest: rd, signer: provider, signature },
      }
      return {
        outputTokens: r.outputTokens,
        text: r.text,
        stopReason: r.stopReason,
        usage: { promptTokens: r.promptTokens.length, completionTokens: r.outputTokens.length },
        bundle: {
          receipt: r.receipt, receiptSignature: signature, provider, requestDigest: rd,
          receiptDigest: receiptFieldsDigest(signer.chainId, signer.settlement, fields), jobFile,
        },
      }
    },
  }
}
