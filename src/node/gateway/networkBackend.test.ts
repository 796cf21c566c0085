/**
 * The gateway on the network backend: the `openai` client streams through the gateway to
 * providers running `serveJob` on the embedded chain (in-memory frame pairs instead of libp2p
 * streams); a provider that dies mid-stream is replaced at the same seed without the client seeing
 * an error or a changed text, and the router learns it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import OpenAI, { APIError } from 'openai'
import type { Address } from 'viem'
import { deposit, stake } from '../../chain/actions/settlement.js'
import { createDevnet, type Devnet, registerTree } from '../../chain/devnet.js'
import type { ChainClients } from '../../chain/evm/clients.js'
import { checkSignature } from '../../cli/commands/signedReceipt.js'
import type { DisputeModel } from '../../dispute/model.js'
import { type FrameConn, framePair } from '../../p2p/frames.js'
import { generate, loadModel, type Model, verify } from '../../runtime/model.js'
import { tinyDisputeModel } from '../../../test/support/disputeJobs.js'
import { killAfterTokens } from '../../../test/support/faultyConn.js'
import type { JobOffer } from '../requestJob.js'
import { createJobSlots, memoryJobBook, modelsByRoot, type ServeContext, serveJob } from '../serveJob.js'
import { gatewayModelOf } from './backend.js'
import { networkBackend } from './networkBackend.js'
import { Router } from './routing.js'
import { type Gateway, startGateway } from './server.js'

const COIN = 10n ** 18n
const PRICE = 10n ** 9n

/** A provider end that dies (aborts its stream) when it is about to send output token `n`. */
describe('gateway on the network backend', () => {
  let net: Devnet
  let dm: DisputeModel
  let model: Model
  let providerB: ChainClients
  let gw: Gateway
  let openai: OpenAI
  const router = new Router({ exploration: 0 })
  let offers: JobOffer[] = []

  const ctxOf = (clients: ChainClients): ServeContext => ({
    clients, deployment: net.d, models: modelsByRoot([{ model, pricePerToken: PRICE, dispute: dm }]), capacity: 4, slots: createJobSlots(), book: memoryJobBook(),
    timeouts: { ackMs: 2000, requestMs: 2000 },
  })
  const offerOf = (clients: ChainClients, price: bigint, wrap?: (c: FrameConn) => FrameConn): JobOffer => {
    const ctx = ctxOf(clients)
    return {
      provider: clients.account.address, pricePerToken: price,
      async connect() {
        const [c, p] = framePair()
        void serveJob(wrap ? wrap(p) : p, ctx)
        return c
      },
    }
  }

  before(async () => {
    ;[net, dm] = await Promise.all([createDevnet({ accounts: 8 }), tinyDisputeModel('tiny', 'q8_0', 3)])
    model = await loadModel(dm.path)
    providerB = net.at(5)
    await stake(providerB, net.d, { role: 'provider', amount: 10n * COIN })
    await deposit(net.client, net.d, { amount: COIN })
    await registerTree(net, dm.tree)
    let nonce = 1n
    const backend = networkBackend({
      models: [gatewayModelOf(model, { name: 'tiny' })], offers: () => offers, router, clients: net.client, deployment: net.d,
      nonces: { next: async () => nonce++ }, maxTries: 2, stallMs: 5000,
    })
    gw = await startGateway({ backend })
    openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 })
  })
  after(async () => {
    await gw?.close()
    model?.close()
    dm?.close()
    await net?.close()
  })

  test('a provider dying mid-stream is replaced at the same seed: the client sees one answer, the engine\'s, and the router learns', async () => {
    const A = net.provider.account.address as Address
    // A is cheaper, so the router asks it first; it dies at its fifth token
    offers = [offerOf(net.provider, PRICE, (c) => killAfterTokens(c, 4)), offerOf(providerB, PRICE * 2n)]
    assert.equal(router.order(offers)[0].provider, A)
    const chunks: OpenAI.ChatCompletionChunk[] = []
    for await (const c of await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'The harbour' }], max_tokens: 16, seed: 9, temperature: 0.9, stream: true })) {
      chunks.push(c)
    }
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')
    const t = (chunks.at(-1) as unknown as { tessera: { provider: string; receipt: Parameters<typeof verify>[1]['receipt']; signed: Parameters<typeof checkSignature>[1]; prompt_tokens: number[]; output_tokens: number[] } }).tessera
    assert.equal(t.provider, providerB.account.address, 'B answered')
    const direct = generate(model, { prompt: t.prompt_tokens, seed: 9n, ...t.receipt.params })
    assert.equal(text, direct.text, "the streamed text is the engine's answer, shown once")
    assert.deepEqual(t.output_tokens, direct.outputTokens)
    assert.deepEqual(await checkSignature(t.receipt, t.signed), { ok: true, signer: providerB.account.address })
    assert.ok(verify(model, { receipt: t.receipt, promptTokens: t.prompt_tokens, outputTokens: t.output_tokens, text }).valid)
    // counts decay with time: one job each, moments ago
    assert.equal(Math.round(router.statsOf(A).failed), 1)
    assert.equal(Math.round(router.statsOf(providerB.account.address).ok), 1)
    assert.equal(router.order(offers)[0].provider, providerB.account.address, 'A now goes last')
  })

  test('no offer: 503; every provider failing before its first token: 502, in OpenAI shape', async () => {
    offers = []
    await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 4 }), (e) => e instanceof APIError && e.status === 503)
    offers = [offerOf(net.provider, PRICE, (c) => killAfterTokens(c, 0)), offerOf(providerB, PRICE, (c) => killAfterTokens(c, 0))]
    await assert.rejects(
      openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 4, stream: true }),
      (e) => e instanceof APIError && e.status === 502 && e.code === 'providers_failed',
    )
  })
})
