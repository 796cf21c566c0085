import { after, before, beforeEach, afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Hex, toHex } from 'viem'
import type { settlementAbi } from '#abi'
import { getArtifact } from '../chain/artifacts.js'
import { claimBatch, deposit, getBalances, getBatch, reserve, stake } from '../chain/actions/settlement.js'
import { registerModel } from '../chain/actions/registry.js'
import { type ClaimItem, type Deployment, deployTessera, jobAmount, read, requestDigest, signDelivery, signJobRequest } from '../chain/client.js'
import { type ChainClients, connectClients } from '../chain/evm/clients.js'
import { createEmbeddedChain, type EmbeddedChain } from '../chain/evm/edr.js'
import { proveModelConfig } from '../dispute/model.js'
import { encodeGguf } from '../engine/gguf/write.js'
import { synthModel } from '../engine/model/synth.js'
import { writeGgufFile } from '../runtime/ggufFile.js'
import { generate, loadModel } from '../runtime/model.js'
import type { Receipt } from '../trace/receipt.js'
import { type Claimer, type ClaimerInit, createClaimer } from './claims.js'
import { requestFor } from './settleJob.js'
import { openStore, type Store } from './store.js'

// One embedded chain and one real receipt (the tiny synthetic model, as settleJob.test.ts) for the
// file; each test starts from a chain snapshot and a fresh data folder.
let chain: EmbeddedChain
let d: Deployment
let receipt: Receipt
let anyone: ChainClients
let provider: ChainClients
let client: ChainClients
let other: ChainClients
let modelDir: string
const PRICE = 10n ** 12n

before(async () => {
  modelDir = mkdtempSync(join(tmpdir(), 'tessera-claims-model-'))
  const path = join(modelDir, 'tiny.gguf')
  writeGgufFile(path, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 4 })))
  const model = await loadModel(path, { threads: 1 })
  try {
    receipt = generate(model, { prompt: 'Call me Ishmael.', maxTokens: 6, temperature: 0 }).receipt
    chain = await createEmbeddedChain({ accounts: 4 })
    const at = (i: number) => connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[i].privateKey })
    ;[anyone, provider, client, other] = [at(0), at(1), at(2), at(3)]
    d = await deployTessera(anyone, { settlement: { premiumBps: 0 }, unpaidAudits: true }) // counts the provider's exact pay
    const config = proveModelConfig(path, model.transformer.config, model.tokenizer)
    await registerModel(anyone, d, { modelRoot: `0x${receipt.modelRoot}`, ...config, arithVersion: toHex(receipt.arith, { size: 32 }) })
    await stake(provider, d, { role: 'provider', amount: 10n ** 18n })
    await deposit(client, d, { amount: 10n ** 18n })
  } finally {
    model.close()
  }
})
after(async () => {
  await chain?.close()
  rmSync(modelDir, { recursive: true, force: true })
})

let snapshot: unknown
let dir: string
let open: Store[] = []
beforeEach(async () => {
  snapshot = await chain.provider.request({ method: 'evm_snapshot', params: [] })
  dir = mkdtempSync(join(tmpdir(), 'tessera-claims-'))
})
afterEach(async () => {
  for (const s of open) await s.close()
  open = []
  await chain.provider.request({ method: 'evm_revert', params: [snapshot] })
  rmSync(dir, { recursive: true, force: true })
})

const now = 1_000_000
async function claimerAt(over: Partial<ClaimerInit> = {}): Promise<{ claimer: Claimer; store: Store }> {
  const store = await openStore(dir)
  open.push(store)
  return { store, claimer: createClaimer({ store, clients: provider, deployment: d, maxBatch: 3, maxAgeSec: 60, clock: () => now, ...over }) }
}
async function crash(store: Store) {
  await store.close()
  open = open.filter((s) => s !== store)
}

const chainNow = async () => (await anyone.public.getBlock()).timestamp
const batchCount = () => read<bigint>(anyone, d.settlement, 'Settlement', 'batchCount')
async function warp(seconds: bigint) {
  await chain.provider.request({ method: 'evm_increaseTime', params: [Number(seconds)] })
  await chain.provider.request({ method: 'evm_mine', params: [] })
}

/**
 * A served job with the real receipt's fields: the client's signed request of `nonce`, the
 * provider's reservation (unless `reserved: false`), the client's acknowledgement of every token
 * (signed by `acker`, default the client).
 */
async function job(nonce: bigint, o: { reserved?: boolean; expiry?: bigint; price?: bigint; acker?: ChainClients } = {}): Promise<ClaimItem> {
  const req = { ...requestFor(receipt, provider.account.address, o.price ?? PRICE, nonce), ...(o.expiry ? { expiry: o.expiry } : {}) }
  const { r, vs } = await signJobRequest(client, d.settlement, req)
  if (o.reserved !== false) await reserve(provider, d, { req, r, vs })
  const request = requestDigest(chain.chainId, d.settlement, req)
  const ack = await signDelivery(o.acker ?? client, d.settlement, { request, nOutput: receipt.nOutput, outputRoot: `0x${receipt.outputRoot}` })
  return { req, r, vs, outputRoot: `0x${receipt.outputRoot}`, traceRoot: `0x${receipt.traceRoot}`, nPrompt: receipt.nPrompt, nOutput: receipt.nOutput, nLayer: receipt.nLayer, ack }
}
const digestOf = (it: ClaimItem) => requestDigest(chain.chainId, d.settlement, it.req).toLowerCase() as Hex

test('size trigger: nothing is sent below maxBatch items; the maxBatch-th item sends one batch of all', async () => {
  const { claimer } = await claimerAt()
  const items = [await job(1n), await job(2n), await job(3n)]
  const before = await batchCount()
  await claimer.add(items[0])
  await claimer.add(items[1])
  const quiet = await claimer.tick()
  assert.deepEqual(quiet.claimed, [])
  assert.equal(await batchCount(), before)
  assert.equal((await claimer.status()).pending, 2)
  await claimer.add(items[2])
  const r = await claimer.tick()
  assert.equal(r.claimed.length, 1)
  assert.equal(r.claimed[0].count, 3)
  assert.equal(await batchCount(), before + 1n)
  const onChain = await getBatch(anyone, d, r.claimed[0].batchId)
  assert.equal(onChain.count, 3)
  assert.equal(onChain.amount, items.reduce((s, it) => s + jobAmount(it), 0n))
  const st = await claimer.status()
  assert.equal(st.pending, 0)
  assert.equal(st.claimed, 3)
  assert.equal(st.openBatches, 1)
  assert.deepEqual(await claimer.job(digestOf(items[1])), { state: 'claimed', batchId: r.claimed[0].batchId, at: now })
  // nothing left: a second tick sends nothing
  assert.deepEqual((await claimer.tick()).claimed, [])
  assert.equal(await batchCount(), before + 1n)
})

test('age trigger: one item waits until the oldest is maxAgeSec old', async () => {
  const { claimer } = await claimerAt({ maxBatch: 10, maxAgeSec: 60 })
  const t0 = now
  await claimer.add(await job(1n))
  assert.deepEqual((await claimer.tick(t0 + 59)).claimed, [])
  const r = await claimer.tick(t0 + 60)
  assert.equal(r.claimed.length, 1)
  assert.equal(r.claimed[0].count, 1)
})

test('an item about to expire is claimed at once, and an expired one is skipped with why, not sent', async () => {
  const { claimer } = await claimerAt({ maxBatch: 10, maxAgeSec: 10_000, expiryMarginSec: 600 })
  const soon = await job(1n, { expiry: (await chainNow()) + 300n })
  await claimer.add(soon)
  const r = await claimer.tick()
  assert.equal(r.claimed[0]?.count, 1)

  const late = await job(2n, { expiry: (await chainNow()) + 100n })
  await warp(200n)
  await claimer.add(late)
  const before = await batchCount()
  const r2 = await claimer.tick()
  assert.deepEqual(r2.claimed, [])
  assert.equal(r2.skipped.length, 1)
  assert.match(r2.skipped[0].reason, /expired/)
  assert.equal(await batchCount(), before)
  assert.equal((await claimer.job(digestOf(late)))?.state, 'skipped')
  assert.equal((await claimer.skipped())[0].digest, digestOf(late))
})

test('crash after the intent is written, before the transaction: the restarted node claims it once', async () => {
  const items = [await job(1n), await job(2n), await job(3n)]
  const before = await batchCount()
  const first = await claimerAt({ onIntent: async () => { throw new Error('killed') } })
  for (const it of items) await first.claimer.add(it)
  await assert.rejects(first.claimer.tick(), /killed/)
  assert.equal(await batchCount(), before)
  await crash(first.store)

  const { claimer } = await claimerAt()
  assert.equal((await claimer.status()).pending, 3, 'the intent still counts its items')
  const r = await claimer.tick()
  assert.equal(r.claimed.length, 1)
  assert.equal(r.claimed[0].count, 3)
  assert.equal(await batchCount(), before + 1n)
  assert.deepEqual((await claimer.tick()).claimed, [])
  assert.equal(await batchCount(), before + 1n)
  assert.equal((await claimer.status()).claimed, 3)
})

test('crash after the transaction, before the batch is recorded: the restarted node finds the batch and sends nothing', async () => {
  const items = [await job(1n), await job(2n), await job(3n)]
  let sentBatch: bigint | undefined
  const first = await claimerAt({
    onIntent: async (intent) => {
      sentBatch = (await claimBatch(provider, d, { items: intent.items.map((p) => p.item) })).batchId
      throw new Error('killed')
    },
  })
  for (const it of items) await first.claimer.add(it)
  await assert.rejects(first.claimer.tick(), /killed/)
  await crash(first.store)
  const after = await batchCount()
  assert.equal(after, (sentBatch ?? -1n) + 1n)

  const { claimer } = await claimerAt()
  const r = await claimer.tick()
  assert.deepEqual(r.claimed, [], 'nothing sent again')
  assert.equal(await batchCount(), after)
  assert.deepEqual(r.recovered.map((x) => x.batchId), [sentBatch, sentBatch, sentBatch])
  assert.deepEqual(new Set(r.recovered.map((x) => x.digest)), new Set(items.map(digestOf)))
  const st = await claimer.status()
  assert.equal(st.pending, 0)
  assert.equal(st.claimed, 3)
  assert.equal(st.openBatches, 1)
})

test('a claim sent before a crash and mined after the restart: never claimed twice, the first batch recorded', async () => {
  const items = [await job(1n), await job(2n), await job(3n)]
  const before = await batchCount()
  const me = provider.account.address
  const first = await claimerAt({
    onIntent: async (intent) => {
      // a real chain: the claim waits in the mempool while the node dies
      await chain.provider.request({ method: 'evm_setAutomine', params: [false] })
      await provider.wallet.writeContract({ address: d.settlement, abi: getArtifact('Settlement').abi as unknown as typeof settlementAbi, functionName: 'claimBatch', args: [intent.items.map((p) => p.item)] })
      throw new Error('killed')
    },
  })
  try {
    for (const it of items) await first.claimer.add(it)
    await assert.rejects(first.claimer.tick(), /killed/)
    await crash(first.store)
    const inFlight = (await provider.public.getTransactionCount({ address: me, blockTag: 'pending' })) - (await provider.public.getTransactionCount({ address: me, blockTag: 'latest' }))
    assert.equal(inFlight, 1)

    // The restarted node sees the items unclaimed (the first claim is not mined) and tries its own.
    // The embedded chain estimates gas against the pending block, so that claim is refused
    // (JobAlreadyClaimed) before it is sent and the items wait; a chain that sent it would mine it
    // after the first and revert it. Either way, once the first claim is mined, the next round
    // records its batch, the only one.
    const { claimer } = await claimerAt()
    let done = false
    const round = claimer.tick().finally(() => {
      done = true
    })
    for (let i = 0; i < 200 && !done; i++) {
      // mine only if the round waits on a sent transaction (the other way to order the two claims)
      if (i >= 100) await chain.provider.request({ method: 'evm_mine', params: [] })
      await new Promise((r) => setTimeout(r, 10))
    }
    const waited = await round
    await chain.provider.request({ method: 'evm_mine', params: [] })
    const reports = [waited, await claimer.tick()]
    assert.deepEqual(reports.flatMap((r) => r.claimed), [])
    assert.deepEqual(reports.flatMap((r) => r.skipped), [])
    assert.deepEqual(reports.flatMap((r) => r.recovered.map((x) => x.batchId)), [before, before, before])
    assert.equal(await batchCount(), before + 1n)
    const st = await claimer.status()
    assert.deepEqual([st.claimed, st.skipped, st.pending, st.openBatches], [3, 0, 0, 1])
    assert.equal(reports[1].blocked, undefined)
    assert.equal(st.blocked, undefined)
  } finally {
    await chain.provider.request({ method: 'evm_setAutomine', params: [true] })
  }
})

test('batches finalize after the challenge window; what is owed is withdrawn above the threshold', async () => {
  const items = [await job(1n), await job(2n), await job(3n)]
  const total = items.reduce((s, it) => s + jobAmount(it), 0n)
  const { claimer } = await claimerAt({ withdrawAbove: total + 1n })
  for (const it of items) await claimer.add(it)
  const { claimed: [b] } = await claimer.tick()
  assert.deepEqual((await claimer.tick()).finalized, [], 'the window is open')
  await warp(BigInt(d.params.settlement.challengeWindow) + 1n)
  const r = await claimer.tick()
  assert.deepEqual(r.finalized, [{ batchId: b.batchId, paid: total }])
  assert.equal(r.withdrawn, 0n, 'below the threshold')
  assert.equal((await getBalances(anyone, d, provider.account.address)).owed, total)
  let st = await claimer.status()
  assert.equal(st.finalized, 1)
  assert.equal(st.earned, total)
  assert.equal(st.openBatches, 0)
  assert.deepEqual((await claimer.tick()).finalized, [], 'finalized once')

  // a claimer with a lower threshold (same store, after a restart) withdraws
  await crash(open[0])
  const again = await claimerAt({ withdrawAbove: total })
  const wallet = (await getBalances(anyone, d, provider.account.address)).wallet
  const w = await again.claimer.tick()
  assert.equal(w.withdrawn, total)
  const after = await getBalances(anyone, d, provider.account.address)
  assert.equal(after.owed, 0n)
  assert.ok(after.wallet > wallet)
  st = await again.claimer.status()
  assert.equal(st.withdrawn, total)
  assert.equal(st.earned, total)
})

test('replays: an item already claimed is never sent again; another request with a used nonce is skipped with why', async () => {
  const items = [await job(1n), await job(2n), await job(3n)]
  const { claimer } = await claimerAt()
  for (const it of items) await claimer.add(it)
  const { claimed: [b] } = await claimer.tick()
  const before = await batchCount()
  // the same item again, to the same book: nothing to do
  for (const it of items) await claimer.add(it)
  assert.equal((await claimer.status()).pending, 0)
  assert.deepEqual((await claimer.tick()).claimed, [])
  assert.equal(await batchCount(), before)

  // a node that lost its store is handed the same items: the chain says they are claimed, in b
  await crash(open[0])
  rmSync(join(dir, 'store'), { recursive: true, force: true })
  const fresh = await claimerAt()
  for (const it of items) await fresh.claimer.add(it)
  const r = await fresh.claimer.tick()
  assert.deepEqual(r.claimed, [])
  assert.deepEqual(r.recovered.map((x) => x.batchId), [b.batchId, b.batchId, b.batchId])
  assert.equal(await batchCount(), before)

  // a second request with a nonce already used (a different price: another digest), not reserved
  const twin = await job(2n, { reserved: false, price: PRICE + 1n })
  await fresh.claimer.add(twin)
  await fresh.claimer.add(await job(4n))
  await fresh.claimer.add(await job(5n))
  const r2 = await fresh.claimer.tick()
  assert.deepEqual(r2.skipped.map((s) => s.digest), [digestOf(twin)])
  assert.match(r2.skipped[0].reason, /nonce already used/)
  assert.equal(r2.claimed.length, 1)
  assert.equal(r2.claimed[0].count, 2)
})

test('an item the contract refuses does not poison its batch: it is skipped with the revert, the rest are claimed', async () => {
  const { claimer } = await claimerAt()
  const good = [await job(1n), await job(3n)]
  const badAck = await job(2n, { acker: other }) // acknowledged by someone who is not the client
  for (const it of [good[0], badAck, good[1]]) await claimer.add(it)
  const r = await claimer.tick()
  assert.deepEqual(r.skipped.map((s) => s.digest), [digestOf(badAck)])
  assert.match(r.skipped[0].reason, /^NotAcknowledged/)
  assert.equal(r.claimed.length, 1)
  assert.equal(r.claimed[0].count, 2)
  assert.equal(r.claimed[0].amount, good.reduce((s, it) => s + jobAmount(it), 0n))
  assert.equal((await claimer.status()).skipped, 1)
})

test('jobs that fit alone but not together are claimed in smaller batches (escrow of unreserved jobs, stake exposure)', async () => {
  // two unreserved jobs of a client whose escrow pays one: halves, then the second is refused alone
  const { claimer } = await claimerAt({ maxBatch: 2 })
  await stake(provider, d, { role: 'provider', amount: 100n * 10n ** 18n }) // room for the exposure of both
  const escrow = (await getBalances(anyone, d, client.account.address)).escrow
  const tokens = BigInt(receipt.nPrompt + receipt.nOutput)
  const price = (escrow * 2n) / 3n / tokens // one job costs ~2/3 of the escrow
  const a = await job(1n, { reserved: false, price })
  const b = await job(2n, { reserved: false, price })
  await claimer.add(a)
  await claimer.add(b)
  const r = await claimer.tick()
  assert.deepEqual(r.claimed.map((x) => x.count), [1])
  assert.equal((await claimer.job(digestOf(a)))?.state, 'claimed')
  assert.deepEqual(r.skipped.map((s) => s.digest), [digestOf(b)])
  assert.match(r.skipped[0].reason, /^InsufficientEscrow/)
})

test('a batch is cut to what the unlocked stake covers; the rest waits for a finalized batch to unlock stake', async () => {
  const { claimer } = await claimerAt()
  await deposit(client, d, { amount: 10n ** 18n })
  // exposure = 50 x amount at the defaults (p = 5%, reward 50%, colluding share 20%): 1 coin of stake covers two jobs of 0.01 coin, not three
  const tokens = BigInt(receipt.nPrompt + receipt.nOutput)
  const price = 10n ** 16n / tokens
  const items = [await job(1n, { price }), await job(2n, { price }), await job(3n, { price })]
  for (const it of items) await claimer.add(it)
  const r = await claimer.tick()
  assert.deepEqual(r.claimed.map((x) => x.count), [2])
  assert.match(r.blocked ?? '', /stake/)
  assert.equal((await claimer.status()).pending, 1)
  assert.deepEqual((await claimer.tick()).claimed, [], 'still no room')
  await warp(BigInt(d.params.settlement.challengeWindow) + 1n)
  // the round finalizes the first batch, which unlocks the stake the last item (now due by age) needs
  const r2 = await claimer.tick(now + 60)
  assert.equal(r2.finalized.length, 1)
  assert.deepEqual(r2.claimed.map((x) => x.count), [1])
  assert.equal(r2.blocked, undefined)
  assert.equal((await claimer.status()).pending, 0)
})

test("add refuses another provider's job", async () => {
  const { claimer } = await claimerAt()
  const it = await job(1n)
  await assert.rejects(claimer.add({ ...it, req: { ...it.req, provider: other.account.address } }), { name: 'NotClaimableError' })
})
