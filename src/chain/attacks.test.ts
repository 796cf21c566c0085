/**
 * Attacks on the payment and dispute-opening rules (issue 7, parts 2, 3 and 5), each played on the
 * embedded chain against the contracts, with value conservation checked after every scenario:
 * claims are checked against the request and the registry, escrow is reserved per request, a
 * provider bills only what the client acknowledged, and any number of challengers may dispute a
 * job, each in its own game, so a sock puppet blocks nobody; and a puppet that collects the slash
 * reward still leaves the caught provider a burned loss of at least price / p.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  claimBatch, deposit, exposureOf, finalizeBatch, getBalances, getBatch, getReservation, getStake,
  getTotals, release, reserve, stake, withdrawEscrow,
} from './actions/settlement.js'
import {
  type ClaimItem, DEFAULT_GAME_PARAMS, batchLeaf, batchTree, jobAmount, read,
  requestDigest, signDelivery, signJobRequest,
} from './client.js'
import { PHASE, getGame, openGame, reveal, timeout, withdraw } from './actions/disputeGame.js'
import type { ChainClients } from './evm/clients.js'
import { type Devnet, DEVNET_SETTLEMENT_PARAMS, Tree, createDevnet, h, isConserved, makeItem, makeRequest } from './devnet.js'

const ETH = 10n ** 18n
const BOND = DEFAULT_GAME_PARAMS.challengerBond
const DAY = 86400
const PRICE = 10n ** 15n
/** Jobs here are 5 tokens (nPrompt 3, nOutput 2) of the devnet's 4-layer model over one 20-leaf toy trace. */
const TRACE = new Tree(Array.from({ length: 20 }, (_, i) => h(`leaf${i}`)))
const JOB = { traceRoot: TRACE.root, nPrompt: 3, nOutput: 2, nLayer: 4 }

type Revert = { name: string; errorName?: string; args?: readonly unknown[] }
async function rejectsWith(p: Promise<unknown>, errorName: string, args?: readonly unknown[]) {
  await assert.rejects(p, (e: Revert) => {
    assert.equal(e.name, 'ContractRevertError', String(e))
    assert.equal(e.errorName, errorName, String(e))
    if (args) assert.deepEqual(e.args, args)
    return true
  })
}

async function assertConserved(net: Devnet) {
  const t = await getTotals(net.client, net.d)
  assert.ok(isConserved(t), JSON.stringify(t, (_, v) => (typeof v === 'bigint' ? v.toString() : v)))
}

async function withNet(fn: (net: Devnet) => Promise<void>, opts: Parameters<typeof createDevnet>[0] = {}) {
  const net = await createDevnet({ accounts: 8, ...opts })
  try {
    await fn(net)
    await assertConserved(net)
  } finally {
    await net.close()
  }
}

/** Opens a game on job `i` of a batch from `who`. */
async function dispute(net: Devnet, who: ChainClients, batchId: bigint, items: ClaimItem[], i: number) {
  const leaves = items.map((it) => batchLeaf(net.chain.chainId, net.d.settlement, it, net.client.account.address))
  const proof = batchTree(leaves).proof(i)
  return (await openGame(who, net.d, { batchId, jobIndex: BigInt(i), item: items[i], client: net.client.account.address, proof, bond: BOND })).gameId
}

// ------------------------------------------------------------------ part 5: payment both sides can trust

test('attack: the client withdraws its escrow right after its answer; the reserved claim still pays', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    const req = makeRequest(net, { nonce: 1n, maxTokens: 64, pricePerToken: PRICE })
    await deposit(client, d, { amount: 64n * PRICE })
    const { r, vs } = await signJobRequest(client, d.settlement, req)
    // The provider accepts the request: its maximum price leaves the client's free escrow.
    await reserve(provider, d, { req, r, vs })
    const rd = requestDigest(net.chain.chainId, d.settlement, req)
    assert.deepEqual(await getReservation(client, d, rd), { client: client.account.address, expiry: req.expiry, amount: 64n * PRICE })
    assert.equal((await getBalances(client, d, client.account.address)).escrow, 0n)
    // Served; the client tries to run with the money before the claim lands.
    await rejectsWith(withdrawEscrow(client, d, { amount: 64n * PRICE }), 'InsufficientEscrow')
    await rejectsWith(reserve(provider, d, { req, r, vs }), 'AlreadyReserved')
    const item = await makeItem(net, client, req, JOB)
    const { batchId } = await claimBatch(provider, d, { items: [item] })
    // The claim drew 5 tokens from the reservation and returned the other 59 to free escrow.
    assert.equal((await getBatch(provider, d, batchId)).amount, 5n * PRICE)
    assert.equal((await getReservation(client, d, rd)).amount, 0n)
    assert.equal((await getBalances(client, d, client.account.address)).escrow, 59n * PRICE)
    await withdrawEscrow(client, d, { amount: 59n * PRICE })
    await net.warp(DAY)
    await finalizeBatch(client, d, { batchId })
    assert.equal((await getBalances(provider, d, provider.account.address)).owed, 5n * PRICE)

    // Without a reservation the provider serves at its own risk: the same withdrawal leaves the claim unpaid.
    const bare = makeRequest(net, { nonce: 2n, maxTokens: 64, pricePerToken: PRICE })
    await deposit(client, d, { amount: 64n * PRICE })
    await withdrawEscrow(client, d, { amount: 64n * PRICE })
    await rejectsWith(claimBatch(provider, d, { items: [await makeItem(net, client, bare, JOB)] }), 'InsufficientEscrow')
  })
})

test('attack: one deposit backing two providers beyond its balance is refused at reservation; an expired reservation is released', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    const other = net.at(5)
    await stake(other, d, { role: 'provider', amount: 2n * ETH })
    await deposit(client, d, { amount: 100n * PRICE })
    const now = (await client.public.getBlock()).timestamp
    const a = makeRequest(net, { nonce: 10n, maxTokens: 64, pricePerToken: PRICE, expiry: now + 3600n })
    const b = makeRequest(net, { provider: other.account.address, nonce: 11n, maxTokens: 64, pricePerToken: PRICE })
    const sa = await signJobRequest(client, d.settlement, a)
    const sb = await signJobRequest(client, d.settlement, b)
    await reserve(provider, d, { req: a, ...sa })
    // 64 + 64 tokens of promises on a 100-token deposit: the second provider learns it before serving.
    await rejectsWith(reserve(other, d, { req: b, ...sb }), 'InsufficientEscrow', [client.account.address, 36n * PRICE, 64n * PRICE])
    // Only the named provider reserves.
    await rejectsWith(reserve(provider, d, { req: b, ...sb }), 'NotTheProvider')
    // Provider A never claims; after the expiry anyone returns the reservation to the client, who can then back B.
    const rd = requestDigest(net.chain.chainId, d.settlement, a)
    await rejectsWith(release(other, d, { requestDigest: rd }), 'ReservationActive')
    await net.warp(3601)
    await release(other, d, { requestDigest: rd })
    await rejectsWith(release(other, d, { requestDigest: rd }), 'NotReserved')
    await rejectsWith(claimBatch(provider, d, { items: [await makeItem(net, client, a, JOB)] }), 'RequestExpired')
    await reserve(other, d, { req: b, ...sb })
    assert.equal((await getBalances(client, d, client.account.address)).escrow, 36n * PRICE)
  })
})

test('attack: the client reuses a reserved request\'s nonce with another provider to void the reserved claim', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    const other = net.at(5)
    await stake(other, d, { role: 'provider', amount: 2n * ETH })
    await deposit(client, d, { amount: 200n * PRICE })
    const a = makeRequest(net, { nonce: 80n, maxTokens: 64, pricePerToken: PRICE })
    const sa = await signJobRequest(client, d.settlement, a)
    await reserve(provider, d, { req: a, ...sa })
    // The same nonce on a cheap request to a colluding provider: refused at reservation and at claim,
    // since the reservation consumed the nonce (otherwise B's claim would make A's revert JobAlreadyClaimed).
    const b = makeRequest(net, { provider: other.account.address, nonce: 80n, maxTokens: 8, pricePerToken: 1n })
    const sb = await signJobRequest(client, d.settlement, b)
    await rejectsWith(reserve(other, d, { req: b, ...sb }), 'JobAlreadyClaimed', [client.account.address, 80n])
    await rejectsWith(claimBatch(other, d, { items: [await makeItem(net, client, b, JOB)] }), 'JobAlreadyClaimed')
    const { batchId } = await claimBatch(provider, d, { items: [await makeItem(net, client, a, JOB)] })
    assert.equal((await getBatch(provider, d, batchId)).amount, 5n * PRICE)
    // And a reserved request is paid once.
    await rejectsWith(claimBatch(provider, d, { items: [await makeItem(net, client, a, JOB)] }), 'JobAlreadyClaimed')
  })
})

// A claim keeps each client's escrow and nonce bitmap word in memory over a run of its consecutive
// jobs and writes them once per run (docs/CHAIN.md "Gas"): a nonce used earlier in the same batch,
// or in an earlier one, in the current word or one the run left and came back to, is still
// refused, and a run its escrow cannot cover to the last job reverts the whole batch.
test('attack: a batch replays a nonce inside itself or from an earlier batch; a run whose escrow falls one job short', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    const other = net.at(5)
    const who = client.account.address
    const used = (c: ChainClients, nonce: bigint) => read<boolean>(c, d.settlement, 'Settlement', 'isClaimed', [c.account.address, nonce])
    const escrow = async (c: ChainClients) => (await getBalances(c, d, c.account.address)).escrow
    const job = (c: ChainClients, nonce: bigint, label = 'input') =>
      makeItem(net, c, makeRequest(net, { nonce, pricePerToken: PRICE, maxTokens: 64, promptRoot: h(label) }), JOB)
    await deposit(client, d, { amount: 100n * PRICE })

    // The same nonce twice in one batch, on two different requests (their digests differ): refused.
    await rejectsWith(claimBatch(provider, d, { items: [await job(client, 10n), await job(client, 11n), await job(client, 10n, 'another')] }), 'JobAlreadyClaimed', [who, 10n])
    // Also after the run left the nonce's bitmap word and came back to it (256 nonces a word).
    await rejectsWith(
      claimBatch(provider, d, { items: [await job(client, 10n), await job(client, 300n), await job(client, 10n, 'another')] }),
      'JobAlreadyClaimed', [who, 10n],
    )
    assert.equal(await used(client, 10n), false)
    assert.equal(await used(client, 300n), false)
    assert.equal(await escrow(client), 100n * PRICE)

    // Jobs across two words, back and forth: all paid, every nonce marked.
    const nonces = [10n, 300n, 11n, 301n, 12n]
    await claimBatch(provider, d, { items: await Promise.all(nonces.map((n) => job(client, n))) })
    for (const n of nonces) assert.equal(await used(client, n), true)
    assert.equal(await escrow(client), 75n * PRICE)
    // A nonce paid in an earlier batch, behind fresh ones of the same word and of another word: refused.
    await rejectsWith(claimBatch(provider, d, { items: [await job(client, 13n), await job(client, 302n), await job(client, 11n, 'another')] }), 'JobAlreadyClaimed', [who, 11n])
    await rejectsWith(claimBatch(provider, d, { items: [await job(client, 301n, 'another')] }), 'JobAlreadyClaimed', [who, 301n])
    assert.equal(await used(client, 13n), false)
    assert.equal(await used(client, 302n), false)

    // A run of 3 jobs (5 tokens each) whose client's escrow covers all but the last one, after
    // another client's job: the whole batch reverts, at the last job, and nothing moves.
    await withdrawEscrow(client, d, { amount: 75n * PRICE })
    await deposit(client, d, { amount: 15n * PRICE - 1n })
    await deposit(other, d, { amount: 5n * PRICE })
    const items = [await job(other, 1n), await job(client, 20n), await job(client, 21n), await job(client, 22n)]
    await rejectsWith(claimBatch(provider, d, { items }), 'InsufficientEscrow', [who, 5n * PRICE - 1n, 5n * PRICE])
    assert.equal(await escrow(client), 15n * PRICE - 1n)
    assert.equal(await escrow(other), 5n * PRICE)
    for (const n of [20n, 21n, 22n]) assert.equal(await used(client, n), false)
    assert.equal(await used(other, 1n), false)
    // One wei more and the same batch pays, leaving both escrows empty.
    await deposit(client, d, { amount: 1n })
    const { batchId } = await claimBatch(provider, d, { items })
    assert.equal((await getBatch(provider, d, batchId)).amount, 20n * PRICE)
    assert.equal(await escrow(client), 0n)
    assert.equal(await escrow(other), 0n)
  })
})

test('attack: the provider bills output tokens the client never acknowledged', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    await deposit(client, d, { amount: ETH })
    const req = makeRequest(net, { nonce: 20n, maxTokens: 64, pricePerToken: PRICE })
    const request = requestDigest(net.chain.chainId, d.settlement, req)
    const receipt = { ...JOB, nOutput: 20, outputRoot: h('twenty tokens') }
    // The client stopped acknowledging after 5 of the 20 tokens the provider says it sent.
    const ack5 = await signDelivery(client, d.settlement, { request, nOutput: 5, outputRoot: h('first five') })
    // The provider signs the acknowledgement of all 20 itself: not the client's signature.
    const forged = await signDelivery(provider, d.settlement, { request, nOutput: 20, outputRoot: receipt.outputRoot })
    await rejectsWith(claimBatch(provider, d, { items: [await makeItem(net, client, req, { ...receipt, ack: forged })] }), 'NotAcknowledged', [client.account.address])
    // An acknowledgement for more tokens than the receipt has, or for all of them under another root.
    const ack30 = await signDelivery(client, d.settlement, { request, nOutput: 30, outputRoot: h('thirty') })
    await rejectsWith(claimBatch(provider, d, { items: [await makeItem(net, client, req, { ...receipt, ack: ack30 })] }), 'DeliveryMismatch', [30, 20])
    const ackOther = await signDelivery(client, d.settlement, { request, nOutput: 20, outputRoot: h('other answer') })
    await rejectsWith(claimBatch(provider, d, { items: [await makeItem(net, client, req, { ...receipt, ack: ackOther })] }), 'DeliveryMismatch', [20, 20])
    // An acknowledgement of another request does not carry over.
    const elsewhere = await signDelivery(client, d.settlement, { request: h('another request'), nOutput: 5, outputRoot: h('first five') })
    await rejectsWith(claimBatch(provider, d, { items: [await makeItem(net, client, req, { ...receipt, ack: elsewhere })] }), 'NotAcknowledged')
    // With the client's last acknowledgement the claim bills the prompt and the 5 acknowledged tokens.
    const item = await makeItem(net, client, req, { ...receipt, ack: ack5 })
    const { batchId } = await claimBatch(provider, d, { items: [item] })
    assert.equal(jobAmount(item), 8n * PRICE)
    assert.equal((await getBatch(provider, d, batchId)).amount, 8n * PRICE)
    assert.equal((await getBalances(client, d, client.account.address)).escrow, ETH - 8n * PRICE)
  })
})

// ------------------------------------------------------------------ part 2: claims checked against the request and the registry

test('attack: claims with counts or a model the request and registry do not allow revert by name', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    await deposit(client, d, { amount: 100n * ETH })
    let nonce = 30n
    const claim = async (req: Partial<ReturnType<typeof makeRequest>>, receipt: Partial<ClaimItem>) =>
      claimBatch(provider, d, { items: [await makeItem(net, client, makeRequest(net, { nonce: nonce++, pricePerToken: PRICE, ...req }), { ...JOB, ...receipt })] })
    // 4,096 output tokens billed on a request that allowed 64.
    await rejectsWith(claim({ maxTokens: 64 }, { nOutput: 4096 }), 'TooManyTokens', [4099n, 64n])
    // 0 layers for the registered 4-layer model (the trace would be one head leaf per position).
    await rejectsWith(claim({}, { nLayer: 0 }), 'WrongLayerCount', [0, 4])
    await rejectsWith(claim({}, { nLayer: 5 }), 'WrongLayerCount', [5, 4])
    // An unregistered model root.
    await rejectsWith(claim({ modelRoot: h('no such model') }, {}), 'UnknownModel', [h('no such model')])
    // No prompt, no output.
    await rejectsWith(claim({}, { nPrompt: 0 }), 'EmptyPrompt')
    await rejectsWith(claim({}, { nOutput: 0 }), 'EmptyOutput')
    const ok = await claim({ maxTokens: 5 }, {})
    assert.equal((await getBatch(provider, d, ok.batchId)).count, 1)
  })
})

// ------------------------------------------------------------------ part 3: disputes nobody can block

test('attack: a sock puppet disputes the provider\'s own job and runs out its clocks; the auditor still opens its own game and wins (the provider is slashed once)', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    const puppet = net.at(6)
    const auditor = net.challenger
    await deposit(client, d, { amount: ETH })
    const items: ClaimItem[] = []
    for (let i = 0; i < 3; i++) items.push(await makeItem(net, client, makeRequest(net, { nonce: 40n + BigInt(i), pricePerToken: PRICE }), JOB))
    const { batchId } = await claimBatch(provider, d, { items })
    const stakeBefore = (await getStake(provider, d, provider.account.address)).active
    // Just before the window closes, the provider's second account disputes job 1 and both stall.
    await net.warp(DAY - 120)
    const puppetGame = await dispute(net, puppet, batchId, items, 1)
    // The window passes; the job stays open to disputes while a game on it is open.
    await net.warp(600)
    const auditorGame = await dispute(net, auditor, batchId, items, 1)
    // A job nobody disputed cannot be opened after the window.
    await rejectsWith(dispute(net, auditor, batchId, items, 0), 'ChallengeWindowClosed')
    // The rest of the batch is not frozen: finalize pays jobs 0 and 2 and holds job 1 back.
    await finalizeBatch(client, d, { batchId })
    let b = await getBatch(provider, d, batchId)
    assert.deepEqual([b.status, b.amount, b.disputed, b.openDisputes], [3, jobAmount(items[1]), jobAmount(items[1]), 2])
    assert.equal((await getBalances(provider, d, provider.account.address)).owed, jobAmount(items[0]) + jobAmount(items[2]))
    assert.equal((await getStake(provider, d, provider.account.address)).locked, exposureOf(jobAmount(items[1]), DEVNET_SETTLEMENT_PARAMS))
    // The provider cannot defend its false trace against the auditor: it stalls there too and loses on time.
    await net.warp(DAY + 1)
    await timeout(auditor, d, { gameId: auditorGame })
    assert.equal((await getGame(client, d, { gameId: auditorGame })).phase, PHASE.CHALLENGER_WON)
    // Slashed once: the 1-coin floor, half of it burned; the client refunded the job. The reward goes
    // to the game that flagged the job first, here the puppet's (docs/CHAIN.md: a puppet opened
    // ahead of time keeps the reward, the burned half is what deters; see the next test for the
    // reactive case).
    assert.equal((await getStake(provider, d, provider.account.address)).active, stakeBefore - ETH)
    assert.equal((await getBalances(puppet, d, puppet.account.address)).owed, ETH / 2n)
    assert.equal((await getBalances(auditor, d, auditor.account.address)).owed, 0n)
    assert.equal((await getBalances(auditor, d, auditor.account.address)).owedByGame, BOND)
    assert.equal((await getBalances(client, d, client.account.address)).escrow, ETH - jobAmount(items[0]) - jobAmount(items[1]) - jobAmount(items[2]) + jobAmount(items[1]))
    // The puppet's game is void: it gets its bond back and nothing else moves (no second slash or refund).
    const totals = await getTotals(client, d)
    await timeout(client, d, { gameId: puppetGame })
    const g = await getGame(client, d, { gameId: puppetGame })
    assert.equal(g.phase, PHASE.CHALLENGER_WON)
    assert.equal((await getBalances(puppet, d, puppet.account.address)).owedByGame, BOND)
    assert.equal((await getBalances(puppet, d, puppet.account.address)).owed, ETH / 2n)
    const after = await getTotals(client, d)
    assert.deepEqual([after.staked, after.escrow, after.burned, after.owed], [totals.staked, totals.escrow, totals.burned, totals.owed])
    b = await getBatch(provider, d, batchId)
    assert.deepEqual([b.status, b.amount, b.disputed, b.openDisputes], [2, 0n, 0n, 0])
    assert.deepEqual([(await getStake(provider, d, provider.account.address)).locked, (await getStake(provider, d, provider.account.address)).openDisputes], [0n, 0])
    // Never again once lost.
    await rejectsWith(dispute(net, net.at(7), batchId, items, 1), 'LeafAlreadyDisputed')
    await withdraw(puppet, d)
  })
})

test('attack: caught by an auditor, the provider loses to its own sock puppet first to take the reward; the reward still goes to the auditor', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    const puppet = net.at(6)
    const auditor = net.challenger
    await deposit(client, d, { amount: ETH })
    const items = [await makeItem(net, client, makeRequest(net, { nonce: 45n, pricePerToken: PRICE }), JOB)]
    const { batchId } = await claimBatch(provider, d, { items })
    const auditorGame = await dispute(net, auditor, batchId, items, 0)
    // The provider sees the auditor's game, opens one from its puppet and loses it at once (here:
    // by not answering while the puppet answers its moves in time).
    const puppetGame = await dispute(net, puppet, batchId, items, 0)
    await reveal(provider, d, { gameId: auditorGame, children: TRACE.children(0, 0n, 4) })
    await net.warp(DAY + 1)
    await timeout(client, d, { gameId: puppetGame })
    assert.equal((await getGame(client, d, { gameId: puppetGame })).phase, PHASE.CHALLENGER_WON)
    // The auditor flagged the job first: the slash reward is its, not the puppet's.
    assert.equal((await getBalances(auditor, d, auditor.account.address)).owed, ETH / 2n)
    assert.equal((await getBalances(puppet, d, puppet.account.address)).owed, 0n)
    // The auditor's game is then void: its bond back too.
    await timeout(client, d, { gameId: auditorGame })
    assert.equal((await getBalances(auditor, d, auditor.account.address)).owedByGame, BOND)
    assert.equal((await getBatch(provider, d, batchId)).openDisputes, 0)
  })
})

for (const settlement of [{}, { auditBps: 300, rewardBps: 3300 }] as const) {
  const sp = { ...DEVNET_SETTLEMENT_PARAMS, ...settlement }
  test(`attack: the provider opens a sock-puppet game on its own job ahead of any auditor and keeps the slash reward when caught; the burned share alone is still >= price / p (auditBps ${sp.auditBps}, rewardBps ${sp.rewardBps})`, async () => {
    await withNet(async (net) => {
      const { d, provider, client } = net
      const puppet = net.at(6)
      const auditor = net.challenger
      await deposit(client, d, { amount: ETH })
      // 5 tokens at just over 0.01 coin (odd, so the exposure rounds): a job whose slash is above the
      // 1-coin floor, so the exposure rule itself is what is measured.
      const items = [await makeItem(net, client, makeRequest(net, { nonce: 47n, pricePerToken: 10n ** 16n + 7n }), JOB)]
      const amount = jobAmount(items[0])
      assert.ok(exposureOf(amount, sp) > sp.minProviderStake)
      const { batchId } = await claimBatch(provider, d, { items })
      const me = provider.account.address
      const before = { stake: await getStake(provider, d, me), puppet: await getBalances(puppet, d, puppet.account.address), totals: await getTotals(client, d) }
      // Every job it cheats on, the provider disputes at once from its puppet, so that any later
      // auditor's game is not the first: if caught, the slash reward goes to the puppet.
      const puppetGame = await dispute(net, puppet, batchId, items, 0)
      const auditorGame = await dispute(net, auditor, batchId, items, 0)
      // It cannot defend the cheat: the auditor's game is lost on time (the puppet's too: voided).
      await net.warp(DAY + 1)
      await timeout(auditor, d, { gameId: auditorGame })
      assert.equal((await getGame(client, d, { gameId: auditorGame })).phase, PHASE.CHALLENGER_WON)
      await timeout(client, d, { gameId: puppetGame })
      const after = { stake: await getStake(provider, d, me), puppet: await getBalances(puppet, d, puppet.account.address), totals: await getTotals(client, d) }
      // The provider lost the exposure, 1 / (p (1 - r)) times the price, from its active stake.
      const lost = before.stake.active + before.stake.unbonding - after.stake.active - after.stake.unbonding
      assert.equal(lost, exposureOf(amount, sp))
      // Its puppet got the reward share and its bond back (its game voided): net of the bond it paid, the reward.
      const puppetNet = after.puppet.owed + after.puppet.owedByGame - before.puppet.owed - before.puppet.owedByGame - BOND
      assert.equal(puppetNet, (lost * BigInt(sp.rewardBps)) / 10_000n)
      assert.equal((await getBalances(auditor, d, auditor.account.address)).owed, 0n)
      // What the provider and its puppet lose together is the burned share, and it is at least price / p:
      // caught with probability p, a cheat loses at least its price in expectation, so cheating does not pay.
      assert.equal(after.totals.burned - before.totals.burned, lost - puppetNet)
      assert.ok(lost - puppetNet >= (amount * 10_000n) / BigInt(sp.auditBps), `burned ${lost - puppetNet} < price / p = ${(amount * 10_000n) / BigInt(sp.auditBps)}`)
      // (With the slash at price / p alone, the puppet would take back rewardBps of it: the burned
      // share would fall short of price / p by that much.)
      const oldSlash = (amount * 10_000n) / BigInt(sp.auditBps)
      assert.ok(oldSlash - (oldSlash * BigInt(sp.rewardBps)) / 10_000n < (amount * 10_000n) / BigInt(sp.auditBps))
      assert.deepEqual([after.stake.locked, after.stake.openDisputes], [0n, 0])
    }, { settlement })
  })
}

test('several challengers on one job: the first loss slashes once; the other games void, even if the provider plays on', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    const [c1, c2, c3] = [net.challenger, net.at(5), net.at(6)]
    await deposit(client, d, { amount: ETH })
    const items = [await makeItem(net, client, makeRequest(net, { nonce: 50n, pricePerToken: PRICE }), JOB)]
    const { batchId } = await claimBatch(provider, d, { items })
    const g1 = await dispute(net, c1, batchId, items, 0)
    const g2 = await dispute(net, c2, batchId, items, 0)
    const g3 = await dispute(net, c3, batchId, items, 0)
    // The provider answers g3 only, then stalls on g1.
    await reveal(provider, d, { gameId: g3, children: TRACE.children(0, 0n, 4) })
    await net.warp(DAY + 1)
    await timeout(c1, d, { gameId: g1 })
    const slashed = await getTotals(client, d)
    // g2 (the provider's turn) and g3 (the challenger's turn, its clock spent too) both void: bonds back.
    await timeout(client, d, { gameId: g2 })
    await timeout(client, d, { gameId: g3 })
    for (const [c, g] of [[c2, g2], [c3, g3]] as const) {
      assert.equal((await getGame(client, d, { gameId: g })).phase, PHASE.CHALLENGER_WON)
      assert.equal((await getBalances(c, d, c.account.address)).owedByGame, BOND)
    }
    const after = await getTotals(client, d)
    assert.deepEqual([after.staked, after.escrow, after.pending, after.burned], [slashed.staked, slashed.escrow, slashed.pending, slashed.burned])
    assert.equal((await getBalances(c1, d, c1.account.address)).owed, ETH / 2n)
    const b = await getBatch(provider, d, batchId)
    assert.deepEqual([b.amount, b.disputed, b.openDisputes], [0n, 0n, 0])
    await net.warp(DAY)
    await finalizeBatch(client, d, { batchId })
    assert.equal((await getBalances(provider, d, provider.account.address)).owed, 0n)
  })
})

test('a defended job held back at finalize is paid when its last game ends; a challenger may join while a game is open', async () => {
  await withNet(async (net) => {
    const { d, provider, client } = net
    await deposit(client, d, { amount: ETH })
    const items: ClaimItem[] = []
    for (let i = 0; i < 2; i++) items.push(await makeItem(net, client, makeRequest(net, { nonce: 60n + BigInt(i), pricePerToken: PRICE }), JOB))
    const { batchId } = await claimBatch(provider, d, { items })
    const g1 = await dispute(net, net.challenger, batchId, items, 0)
    await reveal(provider, d, { gameId: g1, children: TRACE.children(0, 0n, 4) })
    await net.warp(DAY)
    await finalizeBatch(client, d, { batchId })
    assert.equal((await getBalances(provider, d, provider.account.address)).owed, jobAmount(items[1]))
    // Past the window, a second challenger joins the open dispute on job 0.
    const g2 = await dispute(net, net.at(5), batchId, items, 0)
    await reveal(provider, d, { gameId: g2, children: TRACE.children(0, 0n, 4) })
    await net.warp(DAY + 1)
    await timeout(client, d, { gameId: g1 }) // the first challenger never chose: the provider wins
    let b = await getBatch(provider, d, batchId)
    assert.deepEqual([b.status, b.amount, b.disputed, b.openDisputes], [3, jobAmount(items[0]), jobAmount(items[0]), 1], 'still held: one game is open')
    await timeout(client, d, { gameId: g2 })
    b = await getBatch(provider, d, batchId)
    assert.deepEqual([b.status, b.amount, b.disputed, b.openDisputes], [2, 0n, 0n, 0])
    assert.equal((await getBalances(provider, d, provider.account.address)).owed, jobAmount(items[0]) + jobAmount(items[1]))
    assert.equal((await getStake(provider, d, provider.account.address)).locked, 0n)
    // The window closed with the last game: no new game on the job.
    await rejectsWith(dispute(net, net.at(6), batchId, items, 0), 'BatchNotPending')
  })
})

test('clocks: each move earns the increment, capped at the full clock', async () => {
  await withNet(
    async (net) => {
      const { d, provider, client } = net
      await deposit(client, d, { amount: ETH })
      const items = [await makeItem(net, client, makeRequest(net, { nonce: 70n, pricePerToken: PRICE }), JOB)]
      const { batchId } = await claimBatch(provider, d, { items })
      const gameId = await dispute(net, net.challenger, batchId, items, 0)
      const g0 = await getGame(client, d, { gameId: gameId })
      assert.deepEqual([g0.providerClock, g0.challengerClock], [1000n, 1000n])
      await net.warp(300)
      await reveal(provider, d, { gameId, children: TRACE.children(0, 0n, 4) })
      const g1 = await getGame(client, d, { gameId: gameId })
      const spent = g1.lastMove - g0.lastMove
      assert.equal(g1.providerClock, 1000n - spent + 100n)
    },
    { game: { clock: 1000n, increment: 100n } },
  )
})
