// Job protocol 1.4.0 (docs/NETWORK.md "Jobs"): a request sent without its signature starts the
// provider's engine while the client signs; `accepted` and every token are held until the
// signature (the next message) checks. From the attacker's side: a signature by another key, a
// malformed one, one for a changed request, none at all: refused `bad-signature` with nothing of
// the answer sent, and the request key is free again for its real owner; a flood of unsigned
// requests runs at most one speculative job per peer and maxSpeculative(capacity) in all, holds no
// slot while it waits, and signed requests are still served; only a peer that signed for the
// client before speculates (a stranger naming a client holds neither a slot nor its escrow), and a
// failed signature ends that; replays are refused; 1.3.0 refuses a
// request without a signature; `dialJob` falls back to 1.3.0 on a provider without 1.4.0.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Hex } from 'viem'
import { deposit } from '../chain/actions/settlement.js'
import { type Deployment, signJobRequest } from '../chain/client.js'
import { type Devnet, createDevnet, registerTree } from '../chain/devnet.js'
import type { ChainClients } from '../chain/evm/clients.js'
import type { DisputeModel } from '../dispute/model.js'
import { type FrameConn, FrameTimeoutError, framePair } from '../p2p/frames.js'
import { generate, loadModel, type Model } from '../runtime/model.js'
import { toHex } from '../trace/merkle.js'
import { type JobParams, paramsHash, tokensRoot } from '../trace/receipt.js'
import { tinyDisputeModel } from '../../test/support/disputeJobs.js'
import { jobHosts } from '../../test/support/jobHosts.js'
import { dialJob, JOB_PROTOCOL, JOB_PROTOCOL_1_3, type RequestMsg } from './jobProtocol.js'
import { type JobOffer, type NonceSource, requestJob } from './requestJob.js'
import { createClientView, createJobSlots, maxSpeculative, memoryJobBook, modelsByRoot, type ServeContext, type ServeOutcome, serveJobs } from './serveJob.js'
import { requestToJson, verifyTranscript } from './transcript.js'

const COIN = 10n ** 18n
const PRICE = 10n ** 9n
const PROMPT = [1, 15, 7, 22]
const PARAMS: JobParams = { temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, repeatPenalty: 1, repeatLastN: 64, maxTokens: 12, stop: [] }
const SEED = 7n
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let nonceCounter = 5000n
const nonces: NonceSource = { next: async () => nonceCounter++ }

describe('job protocol 1.4.0: the signature after the request', () => {
  let net: Devnet
  let dm: DisputeModel
  let model: Model
  let d: Deployment
  let reference: number[]

  before(async () => {
    ;[net, dm] = await Promise.all([createDevnet({ accounts: 8 }), tinyDisputeModel('tiny', 'q8_0', 3)])
    d = net.d
    model = await loadModel(dm.path)
    await deposit(net.client, d, { amount: COIN })
    await registerTree(net, dm.tree)
    reference = generate(model, { prompt: PROMPT, seed: SEED, ...PARAMS }).outputTokens
  })
  after(async () => {
    model?.close()
    dm?.close()
    await net?.close()
  })

  const ctxOf = (over: Partial<ServeContext> = {}): ServeContext => ({
    clients: net.provider, deployment: d, models: modelsByRoot([{ model, pricePerToken: PRICE }]), capacity: 4, slots: createJobSlots(), book: memoryJobBook(),
    timeouts: { ackMs: 2000, requestMs: 2000, signatureMs: 1000 }, ...over,
  })

  /** A 1.4.0 stream served by serveJobs: the client's end (tagged with the protocol, as dialJob does) and the outcomes. */
  const stream = (ctx: ServeContext, peer = 'peer-client', protocol: typeof JOB_PROTOCOL | typeof JOB_PROTOCOL_1_3 = JOB_PROTOCOL) => {
    const [c, p] = framePair({ a: peer })
    const outcomes: ServeOutcome[] = []
    const served = serveJobs(p, ctx, (o) => void outcomes.push(o), protocol)
    return { c: { ...c, protocol } as FrameConn, outcomes, served }
  }

  /** A request (its message without the signature) and the signature, by `signer` (default the client). */
  const request = async (o: { nonce?: bigint; provider?: Hex; signer?: ChainClients } = {}): Promise<{ msg: RequestMsg; signature: { r: Hex; vs: Hex } }> => {
    const block = await net.client.public.getBlock()
    const req = {
      provider: o.provider ?? net.provider.account.address, modelRoot: `0x${toHex(model.modelRoot)}` as Hex, promptRoot: `0x${toHex(tokensRoot(PROMPT))}` as Hex,
      paramsHash: `0x${toHex(paramsHash(PARAMS))}` as Hex, seed: SEED, nonce: o.nonce ?? nonceCounter++, expiry: block.timestamp + 3600n,
      maxTokens: PROMPT.length + PARAMS.maxTokens, pricePerToken: PRICE,
    }
    const signature = await signJobRequest(o.signer ?? net.client, d.settlement, req)
    return { msg: { t: 'request', request: requestToJson(req), client: net.client.account.address, prompt: PROMPT, params: PARAMS }, signature }
  }

  /** Every message until the stream ends (or `ms` passes without one). */
  const drain = async (c: FrameConn, ms = 3000): Promise<{ t: string; code?: string }[]> => {
    const got: { t: string; code?: string }[] = []
    for (let i = 0; i < 100; i++) {
      let m: unknown
      try {
        m = await c.recv(ms)
      } catch (e) {
        if (e instanceof FrameTimeoutError) break
        break
      }
      if (m === undefined) break
      got.push(m as { t: string; code?: string })
      if (got.at(-1)!.t === 'error' || got.at(-1)!.t === 'done') break
    }
    return got
  }

  /** One signed job from `peer` to its end: the provider then knows the peer signs for the client (JobSlots.vouched). */
  const vouchFor = async (ctx: ServeContext, peer = 'peer-client') => {
    const s = stream(ctx, peer)
    const { msg, signature } = await request()
    await s.c.send({ ...msg, signature })
    assert.equal((await drain(s.c)).at(-1)!.t, 'done', `${peer}'s signed job`)
    await s.c.close()
    await s.served
    assert.ok(ctx.slots.vouched.get(peer)?.has(net.client.account.address.toLowerCase()), `${peer} vouched for the client`)
  }

  const offer = (ctx: ServeContext, peer?: string): JobOffer & { outcomes: ServeOutcome[] } => {
    const outcomes: ServeOutcome[] = []
    return {
      provider: ctx.clients.account.address, pricePerToken: PRICE, outcomes,
      async connect() {
        const s = stream(ctx, peer)
        s.served.then(() => outcomes.push(...s.outcomes))
        return s.c
      },
    }
  }
  const ask = (offers: JobOffer[], over: { signatureAfter?: boolean } = { signatureAfter: true }) =>
    requestJob({ clients: net.client, deployment: d, offers, modelRoot: `0x${toHex(model.modelRoot)}`, prompt: PROMPT, params: PARAMS, seed: SEED, nonces, maxTries: 1, ...over })
  /** What a client sends: each message's type, `+sig` where it carries a signature. */
  const tagOf = (m: unknown) => (m as { t: string }).t + ('signature' in (m as object) ? '+sig' : '')

  test('requestJob on 1.4.0 (signatureAfter): the answer, receipt and acknowledgement as on 1.3.0; the signature follows the request', async () => {
    const ctx = ctxOf()
    const o = offer(ctx)
    const sent: string[] = []
    const seeing: JobOffer = {
      ...o,
      async connect(signal) {
        const c = await o.connect(signal)
        return { ...c, send: (m) => (sent.push(tagOf(m)), c.send(m)) }
      },
    }
    const { transcript, acked } = await ask([seeing])
    assert.equal(await acked, true)
    assert.deepEqual(sent, ['request', 'signature+sig', 'ack'], 'the request without its signature, then the signature')
    assert.deepEqual(transcript.output, reference)
    assert.equal((await verifyTranscript(transcript)).ok, true)
    assert.ok(transcript.ack)
    for (let i = 0; i < 300 && o.outcomes.length < 1; i++) await sleep(10)
    const served = o.outcomes.find((x) => x.outcome === 'served')
    assert.ok(served?.outcome === 'served' && served.acked, 'served and acknowledged')
    assert.deepEqual(served.transcript.requestSignature, transcript.requestSignature, 'the provider keeps the signature that came after the request')
    assert.equal(ctx.slots.speculating.size, 0)
    assert.equal(ctx.slots.active, 0)
  })

  test('the engine runs before the signature comes; accepted and tokens are held until it checks', async () => {
    const ctx = ctxOf()
    await vouchFor(ctx)
    const s = stream(ctx)
    const { msg, signature } = await request()
    await s.c.send(msg)
    // no signature yet: the job holds a slot (the engine runs) and is counted as speculative, and nothing comes back
    await assert.rejects(s.c.recv(300), FrameTimeoutError)
    assert.equal(ctx.slots.active, 1)
    assert.ok(ctx.slots.speculating.has('peer-client'))
    await s.c.send({ t: 'signature', signature })
    const got = await drain(s.c)
    assert.equal(got[0].t, 'accepted')
    assert.equal(got.filter((m) => m.t === 'token').length, reference.length)
    assert.equal(got.at(-1)!.t, 'done')
    assert.equal(ctx.slots.speculating.size, 0, 'verified: no longer speculative')
    await s.c.close()
    await s.served
  })

  test('a bad signature gets no token and no receipt: by another key, malformed, for a changed request, none at all; the key is free again', async () => {
    const ctx = ctxOf()
    const { msg, signature } = await request()
    const other = await request({ nonce: BigInt(msg.request.nonce), signer: net.at(6) })
    const changed = await request({ signer: net.client })
    const cases: [string, unknown | undefined][] = [
      ['another key', other.signature],
      ['malformed', { r: `0x${'00'.repeat(32)}`, vs: signature.vs }],
      ["another request's", changed.signature],
      ['none', undefined],
    ]
    for (const [what, sig] of cases) {
      await vouchFor(ctx) // a failed signature costs the peer its standing: each case starts vouched
      const s = stream(ctx)
      await s.c.send(msg)
      await sleep(50)
      assert.ok(ctx.slots.speculating.has('peer-client'), `${what}: speculative`)
      if (sig !== undefined) await s.c.send({ t: 'signature', signature: sig })
      const got = await drain(s.c)
      assert.deepEqual(got.map((m) => m.code ?? m.t), ['bad-signature'], `${what}: one refusal, nothing before it`)
      await s.served
      assert.equal(s.outcomes[0].outcome, 'refused', what)
      assert.equal(ctx.slots.active, 0, `${what}: the slot is free`)
      assert.equal(ctx.slots.speculating.size, 0, `${what}: no longer speculative`)
      assert.equal(ctx.slots.vouched.has('peer-client'), false, `${what}: the peer no longer speculates`)
    }
    // the request's real owner is not locked out of its nonce by the refused attempts
    const s = stream(ctx)
    await s.c.send(msg)
    await s.c.send({ t: 'signature', signature })
    const got = await drain(s.c)
    assert.equal(got[0].t, 'accepted')
    assert.equal(got.at(-1)!.t, 'done')
    await s.c.close()
    await s.served
    // a replay of it, signed or speculative, is refused
    for (const m of [msg, { ...msg, signature }]) {
      const r = stream(ctx)
      await r.c.send(m)
      if (!('signature' in m)) await r.c.send({ t: 'signature', signature })
      assert.deepEqual((await drain(r.c)).map((x) => x.code ?? x.t), ['replayed'])
      await r.served
    }
  })

  test('a request for another provider is refused before its engine starts', async () => {
    const ctx = ctxOf()
    await vouchFor(ctx)
    const { msg, signature } = await request({ provider: net.at(5).account.address })
    const s = stream(ctx)
    await s.c.send(msg)
    assert.deepEqual((await drain(s.c)).map((m) => m.code ?? m.t), ['wrong-provider'])
    await s.c.send({ t: 'signature', signature }).catch(() => {})
    await s.served
    assert.equal(ctx.slots.speculating.size, 0)
  })

  test('a flood of unsigned requests: one speculative job per peer, maxSpeculative(capacity) in all, no slot held while waiting; signed requests still served', async () => {
    const ctx = ctxOf({ capacity: 4, timeouts: { ackMs: 2000, requestMs: 2000, signatureMs: 1500 } })
    assert.equal(maxSpeculative(4), 2)
    // peers that once signed for the client (the strongest attacker: a stranger never speculates)
    for (const peer of ['attacker-1', 'attacker-2', 'attacker-3', 'attacker-4']) await vouchFor(ctx, peer)
    const flood: ReturnType<typeof stream>[] = []
    // 3 streams of one peer, then 1 each of 3 other peers: never signed
    for (const peer of ['attacker-1', 'attacker-1', 'attacker-1', 'attacker-2', 'attacker-3', 'attacker-4']) {
      const s = stream(ctx, peer)
      await s.c.send((await request()).msg)
      flood.push(s)
    }
    await sleep(100)
    assert.equal(ctx.slots.speculating.size, 2, 'two speculative jobs: one peer each, half the capacity')
    assert.equal(ctx.slots.active, 2, 'the others wait for their signature without a slot')
    // a signed request (in the request message) and a 1.4.0 one with its signature: both served meanwhile
    const signed = await request()
    const s1 = stream(ctx, 'honest-1')
    await s1.c.send({ ...signed.msg, signature: signed.signature })
    const late = await request()
    const s2 = stream(ctx, 'honest-2')
    await s2.c.send(late.msg)
    await s2.c.send({ t: 'signature', signature: late.signature })
    for (const s of [s1, s2]) {
      const got = await drain(s.c)
      assert.equal(got[0].t, 'accepted')
      assert.equal(got.at(-1)!.t, 'done')
      await s.c.close()
      await s.served
    }
    // the flood ends in refusals (no signature in time) with nothing of any answer sent
    for (const s of flood) {
      const got = await drain(s.c, 4000)
      assert.ok(got.length === 1 && got[0].t === 'error', `one refusal, got ${JSON.stringify(got)}`)
      await s.served
    }
    assert.equal(ctx.slots.active, 0)
    assert.equal(ctx.slots.speculating.size, 0)
  })

  test("a stranger naming a client it never signed for does not speculate: no slot, no hold on the client's escrow until the signature checks; a failed signature ends a peer's standing", async () => {
    const clientView = createClientView({ clients: net.provider, deployment: d })
    const ctx = ctxOf({ clientView })
    const me = net.client.account.address
    const free = await clientView.free(me)
    const s = stream(ctx, 'stranger')
    const first = await request()
    await s.c.send(first.msg)
    await sleep(200)
    assert.equal(ctx.slots.active, 0, 'no slot: the engine waits for the signature')
    assert.equal(ctx.slots.speculating.size, 0)
    assert.equal(await clientView.free(me), free, "the client's escrow is not held for a stranger's unsigned request")
    await s.c.send({ t: 'signature', signature: first.signature })
    assert.equal((await drain(s.c)).at(-1)!.t, 'done', 'signed: served')
    await s.c.close()
    await s.served
    // now vouched: its next unsigned request speculates; a bad signature ends that
    const t = stream(ctx, 'stranger')
    const second = await request()
    await t.c.send(second.msg)
    await sleep(50)
    assert.ok(ctx.slots.speculating.has('stranger'), 'vouched: speculative')
    await t.c.send({ t: 'signature', signature: (await request({ signer: net.at(6) })).signature })
    assert.deepEqual((await drain(t.c)).map((m) => m.code ?? m.t), ['bad-signature'])
    await t.served
    const u = stream(ctx, 'stranger')
    const third = await request()
    await u.c.send(third.msg)
    await sleep(200)
    assert.equal(ctx.slots.active, 0, 'after a failed signature the peer waits for its signature again')
    await u.c.send({ t: 'signature', signature: third.signature })
    assert.equal((await drain(u.c)).at(-1)!.t, 'done')
    await u.c.close()
    await u.served
  })

  test('1.3.0 refuses a request without its signature', async () => {
    const ctx = ctxOf()
    const s = stream(ctx, 'old', JOB_PROTOCOL_1_3)
    await s.c.send((await request()).msg)
    assert.deepEqual((await drain(s.c)).map((m) => m.code ?? m.t), ['bad-message'])
    await s.served
  })

  test('dialJob: 1.4.0 where the provider serves it, else 1.3.0; requestJob works on both', async () => {
    const [hp, hc] = await jobHosts(net)
    try {
      const ctx = ctxOf()
      const addr = hp.addrs()[0]
      await hp.handle(JOB_PROTOCOL_1_3, (conn) => serveJobs(conn, ctx, () => {}, JOB_PROTOCOL_1_3))
      const protocols: (string | undefined)[] = []
      const sent: string[] = []
      const o: JobOffer = {
        provider: net.provider.account.address, pricePerToken: PRICE,
        connect: async (signal) => {
          const c = await dialJob(hc, addr, signal)
          protocols.push(c.protocol)
          return { ...c, send: (m) => (sent.push(tagOf(m)), c.send(m)) }
        },
      }
      assert.deepEqual((await ask([o])).transcript.output, reference)
      await hp.handle(JOB_PROTOCOL, (conn) => serveJobs(conn, ctx, () => {}))
      const before = await ask([o])
      assert.deepEqual(before.transcript.output, reference)
      assert.equal(await before.acked, true)
      // a local key on 1.4.0 by default: the signature in the request (the provider accepts both)
      sent.length = 0
      const after = await ask([o], {})
      assert.deepEqual(after.transcript.output, reference)
      assert.equal(await after.acked, true)
      assert.deepEqual(sent, ['request+sig', 'ack'])
      assert.deepEqual(protocols, [JOB_PROTOCOL_1_3, JOB_PROTOCOL, JOB_PROTOCOL])
    } finally {
      await Promise.all([hp.stop(), hc.stop()])
    }
  })
})
