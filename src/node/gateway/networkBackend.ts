/**
 * The gateway's backend on the network: each job goes to providers over the job protocol
 * (`requestJob`, src/node/requestJob.ts), in the order a `Router` (./routing.ts) gives among the
 * model's current offers. When a provider refuses, dies or stalls mid-stream, `requestJob` asks
 * the next one with a fresh nonce and the same seed and passes on only the text beyond what was
 * already shown, so the gateway's client sees one uninterrupted answer. After each job the router
 * learns every try's outcome (a failure, or a served job's time to first token and throughput).
 *
 * The gateway node needs each model's tokenizer and chat template (the GGUF's metadata) to build
 * prompts, not its weights: `models` are those, with the root providers serve.
 */
import type { Address, Hex } from 'viem'
import { type Deployment, receiptFieldsDigest } from '../../chain/client.js'
import type { ChainClients } from '../../chain/evm/clients.js'
import { registrationArith } from '../../dispute/model.js'
import type { ArithVersion } from '../../engine/version.js'
import { AnswerMismatchError, type JobOffer, JobFailedError, type JobTry, type NonceSource, requestJob } from '../requestJob.js'
import { jobFileOf, receiptFieldsOf, type Transcript } from '../transcript.js'
import type { GatewayBackend, GatewayModel } from './backend.js'
import { GatewayError } from './openai.js'
import type { Router } from './routing.js'

export type NetworkBackendOptions = {
  models: GatewayModel[]
  /** The model's offers now (from the node's OfferBook), each with a way to open a job stream. */
  offers(model: GatewayModel): readonly JobOffer[]
  router: Router
  /** The gateway's chain account: it signs requests and acknowledgements, and its escrow pays. */
  clients: ChainClients
  deployment: Deployment
  nonces: NonceSource
  /** Stores each transcript before it is acknowledged (the node's store). */
  book?: { putTranscript(t: Transcript): Promise<void> }
  /** Providers tried per job at most (default 3). */
  maxTries?: number
  /** Longest wait for a provider's next message (default 60 s). */
  stallMs?: number
  /** Told of each try that did not give an answer (the router then ranks that provider lower). */
  onFailedTry?: (t: JobTry) => void
}

/**
 * A backend that runs jobs on the network's providers, failing over between them.
 *
 * @example
 *   const backend = networkBackend({ models, offers: (m) => offersFor(m.root), router: new Router(), clients, deployment, nonces: randomNonces() })
 *   const gw = await startGateway({ backend })
 */
export function networkBackend(o: NetworkBackendOptions): GatewayBackend {
  // each model's registered arithmetic (requestJob refuses a receipt under another), read once; a failed read is retried at the next job
  const ariths = new Map<string, Promise<ArithVersion | undefined>>()
  const arithOf = (root: Hex): Promise<ArithVersion | undefined> => {
    let a = ariths.get(root.toLowerCase())
    if (!a) {
      a = registrationArith(o.clients, o.deployment, root)
      ariths.set(root.toLowerCase(), a)
      a.catch(() => ariths.delete(root.toLowerCase()))
    }
    return a
  }
  return {
    models: () => o.models,
    async run(req, onText) {
      const offers = o.offers(req.model)
      if (offers.length === 0) throw new GatewayError(503, `no provider offers the model ${req.model.id} now`, { type: 'server_error', code: 'no_provider' })
      const byProvider = new Map(offers.map((x) => [x.provider, x]))
      const ordered = o.router.order(offers).map((x) => byProvider.get(x.provider as Address)!)
      if (ordered.length === 0) throw new GatewayError(503, `every provider of ${req.model.id} is excluded (slashed or failed audits)`, { type: 'server_error', code: 'no_provider' })

      // when each try began (its connect) and when text was last first shown, to time the provider that served
      const startedAt = new Map<string, number>()
      let firstTextAt: number | undefined
      const timed = ordered.map((x): JobOffer => ({
        ...x,
        connect: (signal) => {
          startedAt.set(x.provider, performance.now())
          firstTextAt = undefined
          return x.connect(signal)
        },
      }))
      const learn = (tries: JobTry[]) => {
        for (const t of tries) {
          if (t.outcome !== 'done') {
            o.router.record(t.provider, { ok: false })
            o.onFailedTry?.(t)
          } else {
            const t0 = startedAt.get(t.provider) ?? performance.now()
            const ms = performance.now() - t0
            o.router.record(t.provider, { ok: true, ttftMs: firstTextAt !== undefined ? firstTextAt - t0 : ms / Math.max(1, t.tokens), tokens: t.tokens, ms })
          }
        }
      }
      let arith: ArithVersion | undefined
      try {
        arith = await arithOf(req.model.root)
      } catch (e) {
        throw new GatewayError(502, `cannot read the registration of model ${req.model.id}: ${(e as Error).message}`, { type: 'server_error', code: 'chain_unavailable', cause: e })
      }
      let transcript: Transcript
      try {
        const r = await requestJob({
          clients: o.clients, deployment: o.deployment, offers: timed, modelRoot: req.model.root, prompt: req.promptTokens, params: req.params,
          seed: req.seed, nonces: o.nonces, book: o.book, maxTries: o.maxTries, stallMs: o.stallMs, signal: req.signal, arith,
          onText: (s) => {
            firstTextAt ??= performance.now()
            onText(s)
          },
        })
        learn(r.tries)
        transcript = r.transcript
      } catch (e) {
        if (req.signal.aborted) throw req.signal.reason
        if (e instanceof JobFailedError || e instanceof AnswerMismatchError) {
          learn(e.tries)
          throw new GatewayError(502, `no provider gave a verified answer: ${e.message}`, { type: 'server_error', code: 'providers_failed', cause: e })
        }
        throw e
      }
      const t = transcript
      return {
        outputTokens: t.output,
        text: t.text,
        stopReason: t.stopReason,
        usage: { promptTokens: t.prompt.length, completionTokens: t.output.length },
        bundle: {
          receipt: t.receipt, receiptSignature: t.receiptSignature, provider: t.request.provider, requestDigest: t.requestDigest,
          receiptDigest: receiptFieldsDigest(t.chainId, t.settlement, receiptFieldsOf(t.receipt, t.requestDigest)), jobFile: jobFileOf(t),
        },
      }
    },
  }
}
