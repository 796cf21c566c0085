// The job protocol (docs/NETWORK.md "Jobs") end to end on the embedded chain with a real tiny model:
// the client (requestJob) and the provider (serveJob) over an in-memory FrameConn pair. The happy
// path is checked as far as a claim on chain and `tessera verify`'s checks of the job file; then,
// from the attacker's side, every refusal of the provider (each sent as raw protocol messages or
// through requestJob), cancellation, a provider killed mid-stream (the client completes with a
// second provider, same text), and providers whose tokens or receipt do not check out.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type Hex, keccak256, toHex as viemHex } from 'viem'
import { claimBatch, deposit, getBalances, getReservation, stake, unstake, withdrawEscrow } from '../chain/actions/settlement.js'
import { type ContractRevertError, type Deployment, requestDigest, send, signJobRequest, signReceipt } from '../chain/client.js'
import { type Devnet, createDevnet, registerTree } from '../chain/devnet.js'
import type { ChainClients } from '../chain/evm/clients.js'
import type { DisputeModel } from '../dispute/model.js'
import { readJobFile } from '../cli/commands/run.js'
import { checkSignature } from '../cli/commands/signedReceipt.js'
import { type FrameConn, framePair } from '../p2p/frames.js'
import { addressOfPeer, } from '../p2p/identity.js'
import { generate, loadModel, type Model, verify } from '../runtime/model.js'
import { toHex } from '../trace/merkle.js'
import { type JobParams, paramsHash, tokensRoot } from '../trace/receipt.js'
import { tinyDisputeModel } from '../../test/support/disputeJobs.js'
import { jobHosts } from '../../test/support/jobHosts.js'
import { killAfterTokens, perMessage } from '../../test/support/faultyConn.js'
import { ARITH_V1, ARITH_V2 } from '../engine/version.js'
import { cheatingTrace, cheatingTraceRoot, servedTraceProvider } from './cheat.js'
import { JOB_PROTOCOL, JOB_PROTOCOL_1_2, type RequestMsg } from './jobProtocol.js'
import { type AnswerMismatchError, type JobFailedError, type JobOffer, type NonceSource, requestJob } from './requestJob.js'
import { type ClientView, type JobSlots, type ServeContext, type ServeOutcome, createClientView, createJobSlots, createProviderView, memoryJobBook, modelsByRoot, serveJob, serveJobs } from './serveJob.js'
import { claimItemOf, jobFileOf, receiptFieldsOf, requestFromJson, requestToJson, transcriptProblems, verifyTranscript } from './transcript.js'
import { problemsText } from '../trace/job.js'

const COIN = 10n ** 18n
const PRICE = 10n ** 9n
const PROMPT = [1, 15, 7, 22]
const SAMPLED: JobParams = { temperature: 0.9, topK: 20, topP: 0.9, minP: 0.02, repeatPenalty: 1, repeatLastN: 64, maxTokens: 12, stop: [] }
const SEED = 7n

let nonceCounter = 1000n
const nonces: NonceSource = { next: async () => nonceCounter++ }
const fixedNonce = (n: bigint): NonceSource => ({ next: async () => n })

describe('job protocol over an in-memory pair', () => {
  let net: Devnet
  let dm: DisputeModel
  let model: Model
  let d: Deployment
  let providerB: ChainClients
  let reference: { text: string; tokens: number[] }
  const books = new Map<string, ReturnType<typeof memoryJobBook>>()
  const slots = new Map<string, JobSlots>()

  before(async () => {
    ;[net, dm] = await Promise.all([createDevnet({ accounts: 8 }), tinyDisputeModel('tiny', 'q8_0', 3)])
    d = net.d
    model = await loadModel(dm.path)
    providerB = net.at(5)
    await stake(providerB, d, { role: 'provider', amount: 10n * COIN })
    await deposit(net.client, d, { amount: COIN })
    await registerTree(net, dm.tree)
    const r = generate(model, { prompt: PROMPT, seed: SEED, ...SAMPLED })
    reference = { text: r.text, tokens: r.outputTokens }
  })
  after(async () => {
    model?.close()
    dm?.close()
    await net?.close()
  })

  /** The serve context of a provider; books and slots persist per provider across streams. */
  const ctxOf = (clients: ChainClients, over: Partial<ServeContext> = {}): ServeContext => {
    const me = clients.account.address
    if (!books.has(me)) books.set(me, memoryJobBook())
    if (!slots.has(me)) slots.set(me, createJobSlots())
    return {
      clients, deployment: d, models: modelsByRoot([{ model, pricePerToken: PRICE, dispute: dm }]), capacity: 4, slots: slots.get(me)!, book: books.get(me)!,
      timeouts: { ackMs: 2000, requestMs: 2000 }, ...over,
    }
  }

  /** An offer served by `serveJob` over a fresh in-memory pair per connection; `wrap` sits on the provider's end. */
  const offerOf = (ctx: ServeContext, outcomes: ServeOutcome[], wrap?: (c: FrameConn) => FrameConn, price = PRICE): JobOffer & { served: Promise<void>[] } => {
    const served: Promise<void>[] = []
    return {
      provider: ctx.clients.account.address, pricePerToken: price, served,
      async connect() {
        const [c, p] = framePair()
        served.push(serveJob(wrap ? wrap(p) : p, ctx).then((o) => void outcomes.push(o)))
        return c
      },
    }
  }

  const ask = (offers: JobOffer[], over: Partial<Parameters<typeof requestJob>[0]> = {}) =>
    requestJob({ clients: net.client, deployment: d, offers, modelRoot: `0x${toHex(model.modelRoot)}`, prompt: PROMPT, params: SAMPLED, seed: SEED, nonces, maxTries: 1, ...over })

  /** A signed request message as the client would send it, with overrides. */
  const requestMsg = async (o: { provider?: Hex; price?: bigint; nonce?: bigint; expiryIn?: bigint; prompt?: number[]; params?: JobParams; signer?: ChainClients } = {}): Promise<RequestMsg> => {
    const block = await net.client.public.getBlock()
    const params = o.params ?? SAMPLED
    const req = {
      provider: o.provider ?? net.provider.account.address, modelRoot: `0x${toHex(model.modelRoot)}` as Hex, promptRoot: `0x${toHex(tokensRoot(PROMPT))}` as Hex,
      paramsHash: `0x${toHex(paramsHash(SAMPLED))}` as Hex, seed: SEED, nonce: o.nonce ?? nonceCounter++, expiry: block.timestamp + (o.expiryIn ?? 3600n),
      maxTokens: PROMPT.length + SAMPLED.maxTokens, pricePerToken: o.price ?? PRICE,
    }
    const signature = await signJobRequest(o.signer ?? net.client, d.settlement, req)
    return { t: 'request', request: requestToJson(req), signature, client: net.client.account.address, prompt: o.prompt ?? PROMPT, params }
  }

  /** Sends raw messages to a provider; returns its first reply and its outcome. */
  const raw = async (ctx: ServeContext, msgs: unknown[]): Promise<{ reply: unknown; outcome: ServeOutcome }> => {
    const [c, p] = framePair()
    const serving = serveJob(p, ctx)
    for (const m of msgs) await c.send(m)
    const reply = await c.recv(5000)
    await c.close() // a client that leaves: an accepted job stops at once
    return { reply, outcome: await serving }
  }

  test('happy path: streamed, verified, acknowledged, stored by both sides, claimable, and what `tessera verify` accepts', async () => {
    const outcomes: ServeOutcome[] = []
    const ctx = ctxOf(net.provider)
    const shown: string[] = []
    const clientBook = memoryJobBook()
    const { transcript, tries, acked } = await ask([offerOf(ctx, outcomes)], { onText: (s) => shown.push(s), book: clientBook })
    assert.equal(tries.length, 1)
    assert.deepEqual(transcript.output, reference.tokens, 'the tokens are the engine run locally')
    assert.equal(transcript.text, reference.text)
    assert.equal(shown.join(''), reference.text, 'every piece of text shown once, in order')
    assert.equal((await verifyTranscript(transcript)).ok, true)
    // the answer is returned first; the acknowledgement and the store write follow
    assert.equal(await acked, true)
    assert.ok(transcript.ack, 'the client acknowledged')
    assert.deepEqual(await clientBook.getTranscript(transcript.requestDigest), transcript, 'the client stored its transcript')

    await offerOfSettled(outcomes, 1)
    const o = outcomes[0]
    assert.equal(o.outcome, 'served')
    assert.ok(o.outcome === 'served' && o.acked)
    const stored = await ctx.book.getTranscript(transcript.requestDigest)
    assert.ok(stored?.ack, 'the provider stored the acknowledgement')
    assert.equal(stored.receipt.traceRoot, transcript.receipt.traceRoot)
    assert.equal((await verifyTranscript(stored)).ok, true)
    assert.equal(ctx.slots.active, 0, 'the slot is free again')
    assert.ok((await getReservation(net.deployer, d, transcript.requestDigest)).amount > 0n, 'the price was reserved on chain')

    // the provider's defender replays the same trace root
    const mine = servedTraceProvider(dm, { ...transcript, seed: SEED })
    assert.equal(toHex(mine.traceTree().root), transcript.receipt.traceRoot)

    // the claim the provider can make with it
    const claim = await claimBatch(net.provider, d, { items: [claimItemOf({ ...stored, ack: stored.ack })] })
    assert.ok(claim.batchId >= 0n)

    // `tessera verify --receipt FILE`: the file reads, the signature names the provider, the replay agrees
    const dir = mkdtempSync(join(tmpdir(), 'tessera-job-'))
    try {
      const file = join(dir, 'job.json')
      writeFileSync(file, JSON.stringify(jobFileOf(transcript)))
      const job = readJobFile(file)
      const sig = await checkSignature(job.receipt, job.signed)
      assert.deepEqual(sig, { ok: true, signer: net.provider.account.address })
      const v = verify(model, { receipt: job.receipt, promptTokens: job.promptTokens, outputTokens: job.tokens, text: job.text })
      assert.equal(v.valid, true, problemsText(v))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  /** Waits until `n` outcomes are in (bounded). */
  async function offerOfSettled(outcomes: ServeOutcome[], n: number) {
    for (let i = 0; i < 200 && outcomes.length < n; i++) await new Promise((r) => setTimeout(r, 10))
    assert.ok(outcomes.length >= n, `${n} outcomes expected, got ${outcomes.length}`)
  }

  test('a replayed request (same nonce) is refused `replayed`, also when sent again byte for byte', async () => {
    const ctx = ctxOf(net.provider)
    const outcomes: ServeOutcome[] = []
    await ask([offerOf(ctx, outcomes)], { nonces: fixedNonce(5n) })
    await assert.rejects(ask([offerOf(ctx, outcomes)], { nonces: fixedNonce(5n) }), (e: JobFailedError) => e.name === 'JobFailedError' && e.tries[0].code === 'replayed')
    // a provider that lost its book sees the nonce used only on chain, where `reserve` (sent after
    // `done`) reverts: that one answer is unpaid and never claimed, and the client loses the
    // deferral, so its next replay is refused before the engine starts
    const lost = ctxOf(net.provider, { book: memoryJobBook(), slots: createJobSlots() })
    const lostOutcomes: ServeOutcome[] = []
    await ask([offerOf(lost, lostOutcomes)], { nonces: fixedNonce(5n) })
    await offerOfSettled(lostOutcomes, 1)
    assert.deepEqual(pick2(lostOutcomes[0]), { outcome: 'refused', code: 'replayed' })
    const sent: string[] = []
    const seeing = (c: FrameConn) => tamperSend(c, (m) => (sent.push(m.t as string), m))
    await assert.rejects(ask([offerOf(lost, outcomes, seeing)], { nonces: fixedNonce(5n) }), (e: JobFailedError) => e.tries[0].code === 'replayed')
    assert.deepEqual(sent, ['error'], 'refused before the engine: no token of the replay went out')
    // the same message twice at once: one is served, the other refused
    const m = await requestMsg()
    const both = await Promise.all([raw(ctx, [m]), raw(ctx, [m])])
    const codes = both.map((b) => (b.reply as { t: string; code?: string }).code ?? (b.reply as { t: string }).t).sort()
    assert.deepEqual(codes, ['accepted', 'replayed'])
  })

  test('a bad signature is refused `bad-signature`: signed by another key, or malformed', async () => {
    const ctx = ctxOf(net.provider)
    // the client's key is cached by now (its jobs above): these go through the fast check (src/chain/evm/secp.ts)
    const other = await requestMsg({ signer: net.at(6) })
    assert.deepEqual(pick((await raw(ctx, [other])).reply), { t: 'error', code: 'bad-signature' })
    const m = await requestMsg()
    const broken = { ...m, signature: { r: `0x${'00'.repeat(32)}`, vs: m.signature!.vs } }
    assert.deepEqual(pick((await raw(ctx, [broken])).reply), { t: 'error', code: 'bad-signature' })
    // a field changed after signing: the signature recovers someone else
    const tampered = { ...m, request: { ...m.request, pricePerToken: String(PRICE * 2n) } }
    assert.deepEqual(pick((await raw(ctx, [tampered])).reply), { t: 'error', code: 'bad-signature' })
  })

  test('requests the provider must not serve: another provider, another prompt, other params, too cheap, expired', async () => {
    const ctx = ctxOf(net.provider)
    const cases: [string, Promise<RequestMsg>][] = [
      ['wrong-provider', requestMsg({ provider: providerB.account.address })],
      ['prompt-mismatch', requestMsg({ prompt: [1, 15, 7, 23] })],
      ['params-mismatch', requestMsg({ params: { ...SAMPLED, temperature: 0.5 } })],
      ['price-too-low', requestMsg({ price: PRICE - 1n })],
      ['expired', requestMsg({ expiryIn: 10n })],
    ]
    for (const [code, m] of cases) {
      const { reply, outcome } = await raw(ctx, [await m])
      assert.deepEqual(pick(reply), { t: 'error', code }, code)
      assert.equal(outcome.outcome, 'refused')
    }
    assert.equal(ctx.slots.active, 0)
  })

  test('capacity full: the second of two jobs at once is refused `busy`', async () => {
    const ctx = ctxOf(net.provider, { capacity: 1 })
    const outcomes: ServeOutcome[] = []
    const results = await Promise.allSettled([ask([offerOf(ctx, outcomes)]), ask([offerOf(ctx, outcomes)])])
    const ok = results.filter((r) => r.status === 'fulfilled')
    const busy = results.filter((r) => r.status === 'rejected' && (r.reason as JobFailedError).tries?.[0].code === 'busy')
    assert.equal(ok.length, 1)
    assert.equal(busy.length, 1)
  })

  test("stake too low: a job whose exposure exceeds the provider's unlocked stake is refused before reserving", async () => {
    const ctx = ctxOf(net.provider)
    // 16 tokens at 0.1 coin is 1.6 coin; its exposure at p = 5%, r = 50% is 40x that: above 10 staked
    await assert.rejects(ask([offerOf(ctx, [], undefined, COIN / 10n)]), (e: JobFailedError) => e.tries[0].code === 'stake-too-low')
    // served jobs not yet claimed count too: 0.25 coin of them lock all 10 staked (x40) at their claim
    const full = ctxOf(net.provider, { unclaimed: async () => COIN / 4n })
    await assert.rejects(ask([offerOf(full, [])]), (e: JobFailedError) => e.tries[0].code === 'stake-too-low')
    await ask([offerOf(ctxOf(net.provider, { unclaimed: async () => COIN / 100n }), [])])
  })

  test('escrow too low: refused from the cached escrow before the engine starts, and nothing is reserved', async () => {
    const ctx = ctxOf(net.provider)
    const poor = net.at(7) // never deposited
    const m = { ...(await requestMsg({ signer: poor })), client: poor.account.address }
    const { reply, outcome } = await raw(ctx, [m])
    assert.deepEqual(pick(reply), { t: 'error', code: 'escrow-too-low' })
    assert.equal(outcome.outcome, 'refused')
    assert.equal((await getReservation(net.deployer, d, requestDigest(d.chainId, d.settlement, requestFromJson(m.request)))).amount, 0n)
    // the jobs this provider accepted but has not reserved yet count against the cached escrow: a
    // client with escrow for one job cannot start two at once here
    const one = net.at(6)
    await deposit(one, d, { amount: PRICE * BigInt(PROMPT.length + SAMPLED.maxTokens) })
    const fresh = ctxOf(net.provider, { slots: createJobSlots() })
    const [a, b] = await Promise.all([requestMsg({ signer: one }), requestMsg({ signer: one })])
    const [c1, p1] = framePair()
    let go = () => {}
    const serving = serveJob(holdTokens(p1, new Promise<void>((r) => (go = r))), fresh)
    await c1.send({ ...a, client: one.account.address })
    assert.deepEqual(pick(await c1.recv(5000)), { t: 'accepted' })
    const second = await raw(fresh, [{ ...b, client: one.account.address }])
    assert.deepEqual(pick(second.reply), { t: 'error', code: 'escrow-too-low' })
    await c1.close()
    go()
    await serving
    await withdrawEscrow(one, d, { amount: (await getBalances(one, d, one.account.address)).escrow })
  })

  test('a deposit after the cached read: the job the stale escrow does not cover re-reads it once (recheckMs) and is accepted; without the re-read it is refused', async () => {
    const late = net.at(7)
    const amount = PRICE * BigInt(PROMPT.length + SAMPLED.maxTokens)
    const views = { recheck: createClientView({ clients: net.provider, deployment: d }, { recheckMs: 50 }), stale: createClientView({ clients: net.provider, deployment: d }, { recheckMs: 600_000 }) }
    for (const clientView of Object.values(views)) {
      const m = { ...(await requestMsg({ signer: late })), client: late.account.address }
      assert.deepEqual(pick((await raw(ctxOf(net.provider, { clientView }), [m])).reply), { t: 'error', code: 'escrow-too-low' }, 'nothing deposited yet')
    }
    await deposit(late, d, { amount })
    await new Promise((r) => setTimeout(r, 100))
    try {
      const ask7 = async (clientView: ClientView) => pick((await raw(ctxOf(net.provider, { clientView, slots: createJobSlots() }), [{ ...(await requestMsg({ signer: late })), client: late.account.address }])).reply)
      assert.deepEqual(await ask7(views.recheck), { t: 'accepted' }, 'the deposit is seen')
      assert.deepEqual(await ask7(views.stale), { t: 'error', code: 'escrow-too-low' }, 'the cache alone still says nothing was deposited')
    } finally {
      await withdrawEscrow(late, d, { amount: (await getBalances(late, d, late.account.address)).escrow })
    }
  })

  test('a client whose escrow never covers its jobs cannot turn each request into a chain read: one re-read per client per recheckMs', async () => {
    let reads = 0
    const counted: ChainClients = {
      ...net.provider,
      public: new Proxy(net.provider.public, {
        get: (t, prop, r) => (prop === 'readContract' ? (...a: unknown[]) => (reads++, (t.readContract as (...x: unknown[]) => unknown)(...a)) : Reflect.get(t, prop, r)),
      }),
    }
    const view = createClientView({ clients: counted, deployment: d }, { recheckMs: 60_000 })
    const poor = net.at(7).account.address // nothing deposited
    for (let i = 0; i < 20; i++) assert.equal(await view.free(poor, 1n), 0n)
    assert.equal(reads, 1, 'the first read only: the re-read waits recheckMs')
    const soon = createClientView({ clients: counted, deployment: d }, { recheckMs: 1_000 })
    reads = 0
    for (let i = 0; i < 20; i++) await Promise.all([soon.free(poor, 1n), soon.free(poor, 1n)])
    assert.equal(reads, 1, '40 asks within recheckMs: one read')
    await new Promise((r) => setTimeout(r, 1_100))
    await Promise.all([soon.free(poor, 1n), soon.free(poor, 1n), soon.free(poor, 1n)])
    assert.equal(reads, 2, 'past recheckMs: one more read, shared by the asks at once')
  })

  test('the reservation fails after `done` (`reserve` is sent only then): the client has a verified answer, the provider keeps no acknowledgement, never claims, and reserves first for that client afterwards', async () => {
    // the attacker: a client that passes the cached escrow check, then withdraws its escrow before `reserve`
    const chain = watchedReserve(net.provider, { hold: true })
    // a view that never refreshes: the second try below sees the escrow as it was before the withdrawal
    const clientView = createClientView({ clients: net.provider, deployment: d }, { maxAgeMs: 600_000, refreshMs: 600_000, recheckMs: 600_000 })
    const ctx = ctxOf(net.provider, { clients: chain.clients, clientView })
    const thief = net.at(7)
    await deposit(thief, d, { amount: COIN / 1000n })
    const outcomes: ServeOutcome[] = []
    let callsAtDone = -1
    const atDone = (c: FrameConn) => tamperSend(c, (m) => (m.t === 'done' && (callsAtDone = chain.calls()), m))
    const { transcript, acked } = await ask([offerOf(ctx, outcomes, atDone)], { clients: thief })
    assert.equal(await acked, true)
    assert.equal((await verifyTranscript(transcript)).ok, true, 'receipt and acknowledgement check out for the client')
    assert.ok(transcript.ack)
    assert.equal(outcomes.length, 0, 'the provider still waits for its reservation')
    assert.equal(callsAtDone, 0, 'nothing sent to the chain before `done`')
    await withdrawEscrow(thief, d, { amount: COIN / 1000n })
    chain.release()
    await offerOfSettled(outcomes, 1)
    const o = outcomes[0]
    assert.equal(o.outcome, 'refused', 'an unreserved job is not served-and-claimable')
    assert.equal((o as { code: string }).code, 'escrow-too-low')
    assert.match((o as { message: string }).message, /after the answer was delivered/)
    const stored = await ctx.book.getTranscript(transcript.requestDigest)
    assert.ok(stored, 'the request stays known (its nonce is used here)')
    assert.equal(stored.ack, undefined, 'no acknowledgement kept: nothing to claim with')
    assert.equal(stored.reservation, undefined)
    assert.equal((await getReservation(net.deployer, d, transcript.requestDigest)).amount, 0n, 'nothing reserved on chain')
    assert.equal(ctx.slots.active, 0)
    assert.equal(ctx.slots.reserved, 0n)
    // the same trick again: the cached escrow still shows the deposit, but this client's jobs now
    // reserve before the engine starts, so the second answer is never computed
    const sent: string[] = []
    await assert.rejects(
      ask([offerOf(ctx, outcomes, (c) => tamperSend(c, (m) => (sent.push(m.t as string), m)))], { clients: thief }),
      (e: JobFailedError) => e.tries[0].code === 'escrow-too-low',
    )
    assert.deepEqual(sent, ['error'])
  })

  test("`send` with a fixed gas limit (the provider's `reserve` after its first): no simulation, yet a revert still decodes by name, and too little gas is named", async () => {
    const c = net.at(6)
    let simulated = 0
    const counted: ChainClients = {
      ...c,
      public: new Proxy(c.public, {
        get: (t, prop, r) => (prop === 'simulateContract' ? (...a: unknown[]) => (simulated++, (t.simulateContract as (...x: unknown[]) => unknown)(...a)) : Reflect.get(t, prop, r)),
      }),
    }
    await send(counted, d.settlement, 'Settlement', 'deposit', [], 1n, { gas: 200_000n })
    assert.equal(simulated, 0, 'a call that succeeds is sent without simulation')
    await assert.rejects(send(counted, d.settlement, 'Settlement', 'withdrawEscrow', [10n ** 30n], undefined, { gas: 200_000n }), (e: ContractRevertError) => e.errorName === 'InsufficientEscrow')
    assert.equal(simulated, 1, 'a reverted one is simulated once, after the fact, for its reason')
    await assert.rejects(send(counted, d.settlement, 'Settlement', 'deposit', [], 1n, { gas: 22_000n }), (e: ContractRevertError) => e.errorName === 'OutOfGas')
  })

  test('stake read from the cached view: a stake change is seen after a refresh, and jobs are then refused `stake-too-low`', async () => {
    const p6 = net.at(6)
    await stake(p6, d, { role: 'provider', amount: 10n * COIN })
    const view = createProviderView({ clients: p6, deployment: d }, { maxAgeMs: 60_000 })
    const ctx = ctxOf(p6, { view })
    await ask([offerOf(ctx, [])])
    const before = await view.facts()
    assert.ok(before.active >= 10n * COIN)
    // the view sees the unstake request only at its refresh; the job after it is refused
    await unstake(p6, d, { amount: before.active })
    assert.equal((await view.facts()).active, before.active, 'cached until refreshed')
    await view.refresh()
    await assert.rejects(ask([offerOf(ctx, [])]), (e: JobFailedError) => e.tries[0].code === 'stake-too-low')
  })

  test('malformed and unknown messages are refused `bad-message`, and the provider serves the next stream', async () => {
    const ctx = ctxOf(net.provider)
    const m = await requestMsg()
    for (const bad of [{ t: 'hello' }, { t: 'request' }, { ...m, prompt: 'tokens' }, { ...m, params: { ...SAMPLED, maxTokens: -1 } }, [1, 2], { ...m, request: { ...m.request, seed: '1e9' } }]) {
      const { reply, outcome } = await raw(ctx, [bad])
      assert.deepEqual(pick(reply), { t: 'error', code: 'bad-message' })
      assert.equal(outcome.outcome, 'refused')
    }
    // an oversized frame kills only its stream (the pair's own bound here; over libp2p in host.test below)
    const [c, p] = framePair({ maxBytes: 1024 })
    const serving = serveJob(p, ctx)
    await assert.rejects(c.send({ t: 'request', pad: 'x'.repeat(2000) }), { name: 'FrameTooLargeError' })
    assert.equal((await serving).outcome, 'closed')
    const { transcript } = await ask([offerOf(ctx, [])])
    assert.deepEqual(transcript.output, reference.tokens)
  })

  test('the client cancels mid-stream: generation stops at once', async () => {
    const ctx = ctxOf(net.provider)
    const outcomes: ServeOutcome[] = []
    const stop = new AbortController()
    const long = { ...SAMPLED, maxTokens: 200 }
    const full = generate(model, { prompt: PROMPT, seed: SEED, ...long }).outputTokens.length
    assert.ok(full > 20, `the uncancelled answer is long (${full} tokens)`)
    await assert.rejects(ask([offerOf(ctx, outcomes)], { params: long, signal: stop.signal, onText: () => stop.abort() }), { name: 'JobAbortedError' })
    await offerOfSettled(outcomes, 1)
    const o = outcomes[0]
    assert.equal(o.outcome, 'cancelled')
    // the first write holds the tokens of TOKEN_FLUSH_MS (a dozen or so on the tiny model); the cancel lands a step or two after it
    assert.ok(o.outcome === 'cancelled' && o.tokens < 50, `stopped after ${o.outcome === 'cancelled' ? o.tokens : '?'} of ${full} tokens`)
    assert.equal(ctx.slots.active, 0)
  })

  test('a provider killed mid-stream: the client completes with a second provider and shows the same text once', async () => {
    const outcomes: ServeOutcome[] = []
    const dies = offerOf(ctxOf(net.provider), outcomes, (c) => killAfterTokens(c, 4))
    const second = offerOf(ctxOf(providerB), outcomes)
    const shown: string[] = []
    const { transcript, tries } = await ask([dies, second], { maxTries: 3, onText: (s) => shown.push(s) })
    assert.deepEqual(tries.map((t) => [t.provider, t.outcome]), [[net.provider.account.address, 'failed'], [providerB.account.address, 'done']])
    assert.equal(tries[0].tokens, 4)
    assert.notEqual(tries[0].nonce, tries[1].nonce, 'a fresh nonce for the retry')
    assert.equal(transcript.request.provider, providerB.account.address)
    assert.equal(transcript.text, reference.text, 'the same answer as one provider gives')
    assert.equal(shown.join(''), reference.text, 'the text already shown is not shown again')
    assert.equal((await verifyTranscript(transcript)).ok, true)
    await offerOfSettled(outcomes, 2)
    assert.deepEqual(outcomes.map((o) => o.outcome).sort(), ['failed', 'served'])
  })

  test('a provider shutting down mid-stream cancels the job; the client completes with the next provider', async () => {
    const outcomes: ServeOutcome[] = []
    const shutdown = new AbortController()
    let sent = 0
    const stopping = offerOf(ctxOf(net.provider, { signal: shutdown.signal }), outcomes, (c) =>
      perMessage(c, async (m) => {
        // at the first token (of the first write: a long answer takes several)
        if ((m as { t: string }).t === 'token' && ++sent === 1) shutdown.abort()
        return c.send(m)
      }),
    )
    const shown: string[] = []
    const long = { ...SAMPLED, maxTokens: 200 }
    const full = generate(model, { prompt: PROMPT, seed: SEED, ...long })
    const { transcript, tries } = await ask([stopping, offerOf(ctxOf(providerB), outcomes)], { maxTries: 2, params: long, onText: (s) => shown.push(s) })
    assert.deepEqual(tries.map((t) => t.code), ['cancelled', 'ok'])
    assert.ok(tries[0].tokens < full.outputTokens.length, 'the first try ended mid-answer')
    assert.equal(transcript.text, full.text)
    assert.equal(shown.join(''), full.text)
    await offerOfSettled(outcomes, 2)
    assert.equal(outcomes[0].outcome, 'cancelled')
  })

  test('a second provider whose answer does not start with the tokens shown is named', async () => {
    const dies = offerOf(ctxOf(net.provider), [], (c) => killAfterTokens(c, 4))
    const liar = offerOf(ctxOf(providerB), [], (c) => tamperSend(c, (m) => (m.t === 'token' && m.i === 2 ? { ...m, id: (m.id as number) + 1 } : m)))
    await assert.rejects(ask([dies, liar], { maxTries: 3 }), (e: AnswerMismatchError) => e.name === 'AnswerMismatchError' && e.provider === providerB.account.address && e.index === 2)
  })

  test('a provider that sends a wrong token, signs a receipt with a wrong outputRoot, or garbles its messages is rejected', async () => {
    const wrongToken = offerOf(ctxOf(net.provider), [], (c) => tamperSend(c, (m) => (m.t === 'token' && m.i === 3 ? { ...m, id: (m.id as number) + 1 } : m)))
    await assert.rejects(ask([wrongToken]), (e: JobFailedError) => e.tries[0].code === 'bad-receipt' && /outputRoot/.test(e.tries[0].message))
    const wrongRoot = offerOf(ctxOf(net.provider), [], (c) =>
      tamperSendAsync(c, async (m, self) => {
        if (m.t !== 'done') return m
        const receipt = { ...(m.receipt as object), outputRoot: keccak256(viemHex('other')).slice(2) } as never
        const rd = requestDigest(d.chainId, d.settlement, lastRequest(self))
        return { ...m, receipt, receiptSignature: await signReceipt(net.provider.wallet, d.chainId, d.settlement, receiptFieldsOf(receipt, rd)) }
      }),
    )
    await assert.rejects(ask([wrongRoot]), (e: JobFailedError) => e.tries[0].code === 'bad-receipt' && /outputRoot/.test(e.tries[0].message))
    // malformed or out-of-order tokens end the try at once
    const garbled = offerOf(ctxOf(net.provider), [], (c) => tamperSend(c, (m) => (m.t === 'token' && m.i === 1 ? { ...m, id: 'x' } : m)))
    await assert.rejects(ask([garbled]), (e: JobFailedError) => e.tries[0].code === 'bad-message')
    const skipped = offerOf(ctxOf(net.provider), [], (c) => tamperSend(c, (m) => (m.t === 'token' && m.i === 1 ? { ...m, i: 2 } : m)))
    await assert.rejects(ask([skipped]), (e: JobFailedError) => e.tries[0].code === 'bad-token')
  })

  test('a provider serving under another arithmetic than the registration the client names: its receipt is refused, the next provider completes', async () => {
    const underV1 = (c: ChainClients) => ctxOf(c, { models: modelsByRoot([{ model, pricePerToken: PRICE, dispute: dm, arith: ARITH_V1 }]) })
    const { transcript, tries } = await ask([offerOf(underV1(net.provider), []), offerOf(ctxOf(providerB), [])], { maxTries: 2, arith: ARITH_V2 })
    assert.deepEqual(tries.map((t) => t.code), ['bad-receipt', 'ok'])
    assert.match(tries[0].message, /tessera-arith\/1.*registered under tessera-arith\/2/)
    assert.equal(transcript.receipt.arith, ARITH_V2)
    // the same v1 answer is taken when v1 is what the client was told the model is registered under
    const v1 = await ask([offerOf(underV1(net.provider), [])], { arith: ARITH_V1 })
    assert.equal(v1.transcript.receipt.arith, ARITH_V1)
  })

  test('--cheat: an op cheat streams the honest tokens under a false trace root that the defender reproduces; a sampling cheat streams its own', async () => {
    const outcomes: ServeOutcome[] = []
    const ctx = ctxOf(net.provider, { cheat: 'silu' })
    const greedy = { ...SAMPLED, temperature: 0, maxTokens: 4 }
    const { transcript } = await ask([offerOf(ctx, outcomes)], { params: greedy })
    const honest = generate(model, { prompt: PROMPT, seed: SEED, ...greedy })
    assert.equal((await verifyTranscript(transcript)).ok, true, 'the client cannot tell')
    assert.notEqual(transcript.receipt.traceRoot, honest.receipt.traceRoot, 'the trace root is a lie')
    const job = { prompt: PROMPT, params: greedy, seed: SEED, requestDigest: transcript.requestDigest, output: transcript.output }
    assert.equal(cheatingTraceRoot(dm, job, 'silu'), transcript.receipt.traceRoot, 'deterministic from the request')
    assert.equal(toHex(servedTraceProvider(dm, job, 'silu').traceTree().root), transcript.receipt.traceRoot)

    // a cheat that changes tokens streams its own answer, under a receipt the client accepts
    const sampling = await ask([offerOf(ctxOf(net.provider, { cheat: 'sample' }), outcomes)], { params: greedy })
    assert.equal((await verifyTranscript(sampling.transcript)).ok, true)
    const lie = cheatingTrace(dm, { ...job, requestDigest: sampling.transcript.requestDigest }, 'sample')
    assert.deepEqual(sampling.transcript.output, lie.trace.outputs)
    assert.notDeepEqual(sampling.transcript.output, honest.outputTokens, 'another answer than the honest one')
  })

  test('transcripts from elsewhere: each inconsistency is a typed problem', async () => {
    const { transcript: t, acked } = await ask([offerOf(ctxOf(net.provider), [])])
    assert.equal(await acked, true)
    assert.deepEqual(transcriptProblems(t), [])
    const codes = async (x: unknown) => {
      const v = await verifyTranscript(x)
      return v.ok ? [] : [...new Set(v.problems.map((p) => p.code))]
    }
    assert.deepEqual(await codes({ ...t, prompt: [1, 2, 3, 4] }), ['prompt'])
    assert.deepEqual(await codes({ ...t, output: [...t.output.slice(0, -1), t.output.at(-1)! + 1] }), ['output', 'ack'], 'the ack was of the other tokens')
    assert.deepEqual(await codes({ ...t, params: { ...t.params, topK: 3 } }), ['params'])
    assert.deepEqual(await codes({ ...t, client: net.at(6).account.address }), ['request-signature', 'ack'])
    assert.deepEqual(await codes({ ...t, receiptSignature: await signReceipt(net.at(6).wallet, d.chainId, d.settlement, receiptFieldsOf(t.receipt, t.requestDigest)) }), ['receipt-signature'])
    assert.deepEqual(await codes({ ...t, receipt: { ...t.receipt, traceRoot: '00'.repeat(32) } }), ['receipt-signature'])
    assert.deepEqual(await codes({ ...t, requestDigest: keccak256('0x01') }), ['request-digest'])
    assert.deepEqual(await codes({ ...t, receipt: { ...t.receipt, version: 1 } }), ['shape'])
    assert.deepEqual(await codes({ ...t, ack: { ...t.ack!, nOutput: t.output.length + 1 } }), ['ack'])
    assert.deepEqual(await codes('nonsense'), ['shape'])
  })

  test('a kept stream the provider closed meanwhile: the request goes again on a new stream, in the same try', async () => {
    const ctx = ctxOf(net.provider)
    const outcomes: ServeOutcome[] = []
    let dials = 0
    const offer: JobOffer = {
      provider: ctx.clients.account.address, pricePerToken: PRICE,
      async connect() {
        const [c, p] = framePair()
        if (dials++ === 0) {
          // handed out as kept, but its provider end is gone (an idle timeout, a restart)
          p.abort(new Error('gone'))
          return { ...c, reused: true }
        }
        void serveJobs(p, ctx, (o) => void outcomes.push(o))
        return c
      },
    }
    const { transcript, tries } = await ask([offer])
    assert.deepEqual(transcript.output, reference.tokens)
    assert.deepEqual(tries.map((t) => t.outcome), ['done'])
    assert.equal(dials, 2)
    // a stream opened for this job (not kept) that fails is a failed try, as before
    const fresh: JobOffer = {
      provider: ctx.clients.account.address, pricePerToken: PRICE,
      async connect() {
        const [c, p] = framePair()
        p.abort(new Error('gone'))
        return c
      },
    }
    await assert.rejects(ask([fresh]), (e: JobFailedError) => e.tries[0].code === 'closed')
  })

  test('the engine waits for each write of tokens: while the stream holds one, no token is computed and none written', async () => {
    // a provider end whose writes complete only when the test says so: a reader that does not read
    const outcomes: ServeOutcome[] = []
    const gate: { open?: () => void } = {}
    const writes: string[][] = []
    const slow = offerOf(ctxOf(net.provider), outcomes, (c) => ({
      ...c,
      remotePeer: c.remotePeer,
      async sendMany(ms) {
        const kinds = ms.map((m) => (m as { t: string }).t)
        writes.push(kinds)
        if (kinds.includes('token') && writes.filter((w) => w.includes('token')).length === 2) await new Promise<void>((r) => (gate.open = r))
        return c.sendMany(ms)
      },
    }))
    const steps = { n: 0 }
    // a long answer: several writes of tokens (an answer the engine finishes within TOKEN_FLUSH_MS is one write)
    const long = { ...SAMPLED, maxTokens: 200 }
    const full = generate(model, { prompt: PROMPT, seed: SEED, ...long })
    const job = ask([slow], { params: long, onText: () => void steps.n++ })
    for (let i = 0; i < 200 && !gate.open; i++) await new Promise((r) => setTimeout(r, 10))
    assert.ok(gate.open, 'the second write of tokens is held')
    const held = writes.length
    await new Promise((r) => setTimeout(r, 200))
    assert.equal(writes.length, held, 'no write past the held one')
    assert.equal(outcomes.length, 0, 'the job waits')
    gate.open()
    const { transcript } = await job
    assert.deepEqual(transcript.output, full.outputTokens)
    // `accepted` with the first tokens (a short prompt: one frame for both); at most TOKEN_FLUSH_MS of tokens to a write
    assert.equal(writes[0][0], 'accepted')
    assert.ok(writes[0].length > 1 && writes[0].slice(1).every((t) => t === 'token'), `the first write: ${writes[0].join(',')}`)
    assert.equal(writes.flat().filter((t) => t === 'token').length, full.outputTokens.length)
    const last = writes.at(-1)!
    assert.ok(last.at(-1) === 'done' && last.length > 1, `the receipt in one write with the last tokens (or \`end\`): ${last.join(',')}`)
  })

  test('`accepted` before the prefill of a prompt longer than one batch, with the first token for a short one', async () => {
    const kindsOf = (writes: unknown[][]) => writes.map((w) => w.map((m) => (m as { t: string }).t))
    const recorded = (writes: unknown[][]) => (c: FrameConn): FrameConn => ({
      ...c, remotePeer: c.remotePeer,
      send(m) {
        writes.push([m])
        return c.send(m)
      },
      sendMany(ms) {
        writes.push([...ms])
        return c.sendMany(ms)
      },
    })
    const long = Array.from({ length: 70 }, (_, i) => (i * 7 + 3) % 50)
    for (const prompt of [long, PROMPT]) {
      const writes: unknown[][] = []
      const { transcript } = await ask([offerOf(ctxOf(net.provider), [], recorded(writes))], { prompt, params: { ...SAMPLED, maxTokens: 3 } })
      assert.equal(transcript.output.length, 3)
      const kinds = kindsOf(writes)
      // a long prompt: `accepted` in a write of its own, before the engine's first token; a short one: in the first write of tokens
      if (prompt === long) assert.deepEqual([kinds[0], kinds[1][0]], [['accepted'], 'token'])
      else assert.deepEqual(kinds[0].slice(0, 2), ['accepted', 'token'])
    }
  })

  test('over two real libp2p hosts: an oversized frame kills only its stream, then a job is served; the stream names the client', async () => {
    const [hp, hc] = await jobHosts(net)
    try {
      const ctx = ctxOf(net.provider)
      const outcomes: { outcome: ServeOutcome; from: string; v: string }[] = []
      const streams = { '1.3': 0, '1.2': 0 }
      await hp.handle(JOB_PROTOCOL, async (conn) => {
        streams['1.3']++
        await serveJobs(conn, ctx, (o) => void outcomes.push({ outcome: o, from: addressOfPeer(conn.remotePeer), v: '1.3' }))
      })
      await hp.handle(JOB_PROTOCOL_1_2, async (conn) => {
        streams['1.2']++
        outcomes.push({ outcome: await serveJob(conn, ctx), from: addressOfPeer(conn.remotePeer), v: '1.2' })
      })
      const addr = hp.addrs()[0]
      // a client that allows itself 2 MiB frames sends 1.2 MiB: the provider's 1 MiB bound resets the stream
      const big = await hc.dial(addr, JOB_PROTOCOL, { maxBytes: 2 << 20 })
      await big.send({ t: 'request', pad: 'x'.repeat(1_200_000) }).catch(() => {})
      await assert.rejects(big.recv(5000))
      for (let i = 0; i < 200 && outcomes.length < 1; i++) await new Promise((r) => setTimeout(r, 10))
      assert.equal(outcomes[0]?.outcome.outcome, 'closed')
      streams['1.3'] = 0

      // 1.3.0: three jobs, one stream: the second and third reuse the first's
      const reused: boolean[] = []
      const offerOn = (protocol: string): JobOffer => ({
        provider: net.provider.account.address, pricePerToken: PRICE,
        connect: async (signal) => {
          const c = await hc.dial(addr, protocol, { signal })
          reused.push(c.reused === true)
          return c
        },
      })
      for (let job = 0; job < 3; job++) {
        const shown: string[] = []
        const { transcript } = await ask([offerOn(JOB_PROTOCOL)], { onText: (s) => shown.push(s) })
        assert.deepEqual(transcript.output, reference.tokens)
        assert.equal(shown.join(''), reference.text)
        assert.equal((await verifyTranscript(transcript)).ok, true)
      }
      for (let i = 0; i < 300 && outcomes.length < 4; i++) await new Promise((r) => setTimeout(r, 10))
      assert.deepEqual(reused, [false, true, true])
      assert.equal(streams['1.3'], 1, 'one stream carried the three jobs')
      assert.deepEqual(outcomes.slice(1).map((o) => [o.outcome.outcome, o.outcome.outcome === 'served' && o.outcome.acked, o.v]), [['served', true, '1.3'], ['served', true, '1.3'], ['served', true, '1.3']])
      assert.equal(outcomes[1].from, net.client.account.address, "the stream's peer id is the client's account")
      // a replay on the kept stream is refused as on a new one
      const replay = await hc.dial(addr, JOB_PROTOCOL)
      assert.equal(replay.reused, true)
      const last = outcomes.at(-1)!.outcome
      assert.ok(last.outcome === 'served')
      await replay.send(await requestMsg({ nonce: BigInt(last.transcript.request.nonce) }))
      const answer = (await replay.recv(5000)) as { t: string; code?: string }
      assert.deepEqual([answer.t, answer.code], ['error', 'replayed'])

      // 1.2.0, still served: one job per stream (a stream handed back is closed by the provider, so the next job opens a new one)
      reused.length = 0
      for (let job = 0; job < 2; job++) {
        const { transcript } = await ask([offerOn(JOB_PROTOCOL_1_2)])
        assert.deepEqual(transcript.output, reference.tokens)
        await new Promise((r) => setTimeout(r, 50))
      }
      for (let i = 0; i < 300 && outcomes.filter((o) => o.v === '1.2').length < 2; i++) await new Promise((r) => setTimeout(r, 10))
      assert.equal(streams['1.2'], 2)
      assert.deepEqual(outcomes.filter((o) => o.v === '1.2').map((o) => o.outcome.outcome), ['served', 'served'])
    } finally {
      await Promise.all([hp.stop(), hc.stop()])
    }
  })
})

/**
 * The provider's chain clients with its `reserve` observed: `calls()` counts the chain calls it
 * started (simulation or send); with `hold`, they wait for `release()`.
 */
function watchedReserve(c: ChainClients, o: { hold?: boolean } = {}): { clients: ChainClients; calls(): number; release(): void } {
  let release = () => {}
  const gate = o.hold ? new Promise<void>((r) => (release = r)) : Promise.resolve()
  let calls = 0
  const gated = <T extends object>(target: T, method: string): T =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const v = Reflect.get(t, prop, receiver)
        if (prop !== method) return v
        return async (...args: unknown[]) => {
          calls++
          await gate
          return (v as (...a: unknown[]) => Promise<unknown>).apply(t, args)
        }
      },
    })
  return { clients: { ...c, public: gated(c.public, 'simulateContract'), wallet: gated(c.wallet, 'writeContract') }, calls: () => calls, release: () => release() }
}

/** The provider's end, whose tokens wait for `until` (the job stays running meanwhile). */
function holdTokens(c: FrameConn, until: Promise<void>): FrameConn {
  return {
    ...c,
    remotePeer: c.remotePeer,
    async send(m) {
      if ((m as { t: string }).t === 'token') await until
      return c.send(m)
    },
  }
}

/** `{outcome, code}` of a provider's outcome. */
function pick2(o: ServeOutcome): { outcome: string; code?: string } {
  return o.outcome === 'refused' ? { outcome: o.outcome, code: o.code } : { outcome: o.outcome }
}

/** `{t, code}` of a reply. */
function pick(reply: unknown): { t: unknown; code?: unknown } {
  const r = reply as { t: unknown; code?: unknown }
  return r.t === 'error' ? { t: r.t, code: r.code } : { t: r.t }
}

/** The provider's end of a stream that dies (reset) after `n` tokens, as a killed process's would. */
/** `c` with `send` replaced, and `sendMany` as one such `send` per message: the wrapper sees every message, in order. */
const requests = new WeakMap<FrameConn, RequestMsg>()
/** The provider's end with its outgoing messages rewritten (and its incoming request remembered). */
function tamperSendAsync(c: FrameConn, f: (m: Record<string, unknown>, self: FrameConn) => Promise<unknown>): FrameConn {
  const w: FrameConn = {
    remotePeer: c.remotePeer,
    send: async (m) => c.send(await f(m as Record<string, unknown>, w)),
    async sendMany(ms) {
      const out: unknown[] = []
      for (const m of ms) out.push(await f(m as Record<string, unknown>, w))
      await c.sendMany(out)
    },
    idle: () => c.idle(),
    async recv(ms) {
      const m = await c.recv(ms)
      if ((m as { t?: string })?.t === 'request') requests.set(w, m as RequestMsg)
      return m
    },
    close: () => c.close(),
    abort: (e) => c.abort(e),
  }
  return w
}
function tamperSend(c: FrameConn, f: (m: Record<string, unknown>) => unknown): FrameConn {
  return tamperSendAsync(c, async (m) => f(m))
}
function lastRequest(c: FrameConn) {
  const m = requests.get(c)
  if (!m) throw new Error('no request seen')
  return requestFromJson(m.request)
}
