/**
 * The audit protocol on the embedded chain (docs/CHAIN.md "Audits"), with the real Beacon contract
 * verifying the devnet beacon's BLS rounds and real signed claims (made-up trace trees of the
 * right leaf count, as the dispute tests use): the draw rate and stake weights, forced audits,
 * rejected draws, commit/reveal and its lazy approver, redraws, canaries, availability challenges.
 * Both contracts' books balance after each test.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Address, type Hex, encodeAbiParameters, parseEventLogs, sha256 } from 'viem'
import type { auditsAbi } from '#abi'
import { getArtifact } from './artifacts.js'
import {
  AUDIT, CHALLENGE, type JobProof, type Sampling, WHY_AUDITED, answerAvailability, assignmentOf, auditCommitment,
  auditDeadlines, auditEvents, auditOwedTo, auditTotals, canaryCommitment, challengeAvailability, challengeOf, claimWithholding,
  commitAudit, designatedRound, draw, drawForced, getAuditParams, getAuditors, getDraw, isAuditConserved, isDrawnAtRate,
  deregisterAuditor, jobProof, leafIndexOf, pendingAuditsOf, plantCanary, pruneAuditor, redraw, redrawRound, registerAuditor, requestAudit, revealCanary,
  revealInvalid, revealValid, settleAudit,
} from './actions/audits.js'
import { openGame } from './actions/disputeGame.js'
import { claimBatch, deposit, getBalances, getBatch, getStake, getTotals, premiumOf, stake, unstake } from './actions/settlement.js'
import { createDevBeacon, type DevBeacon, toContractSig } from './beacon.js'
import { type AuditParams, type ClaimItem, DEFAULT_GAME_PARAMS, DEV_BEACON_SEED, type JobRequest, type SettlementParams, deployTessera, requestDigest } from './client.js'
import type { ChainClients } from './evm/clients.js'
import { type Devnet, Tree, createDevnet, h, isConserved, makeItem, makeRequest } from './devnet.js'
import { toHex as bytesHex } from '../trace/merkle.js'
import { vectorRoot } from '../trace/vector.js'

const ETH = 10n ** 18n
const PRICE = 10n ** 12n
/** Every job: 5 tokens (nPrompt 3, nOutput 2) of the devnet's 4-layer model: 4 positions x 5 leaves. */
const N_LEAVES = 20
const TRACE = new Tree(Array.from({ length: N_LEAVES }, (_, i) => h(`leaf${i}`)))
const PROMPT = [17, 4, 99]
const SAMPLING: Sampling = { temperatureBits: 0, topK: 1, topPBits: 0x3f800000, minPBits: 0, repeatPenaltyBits: 0x3f800000, repeatLastN: 64, maxTokens: 2, stopHash: h('stop') }
const PROMPT_ROOT = `0x${bytesHex(vectorRoot(Uint32Array.from(PROMPT)))}` as Hex
const PARAMS_HASH = sha256(encodeAbiParameters([{ type: 'tuple', components: [
  { name: 'temperatureBits', type: 'uint32' }, { name: 'topK', type: 'uint32' }, { name: 'topPBits', type: 'uint32' }, { name: 'minPBits', type: 'uint32' },
  { name: 'repeatPenaltyBits', type: 'uint32' }, { name: 'repeatLastN', type: 'uint32' }, { name: 'maxTokens', type: 'uint32' }, { name: 'stopHash', type: 'bytes32' },
] }], [SAMPLING]))

type Revert = { name: string; errorName?: string }
async function rejectsWith(p: Promise<unknown>, errorName: string) {
  await assert.rejects(p, (e: Revert) => {
    assert.equal(e.name, 'ContractRevertError', String(e))
    assert.equal(e.errorName, errorName)
    return true
  })
}

type AuditNet = Devnet & { beacon: DevBeacon; auditors: ChainClients[]; byAddress(a: Address): ChainClients; params: AuditParams }
type Claimed = { batchId: bigint; items: { item: ClaimItem; client: Address }[] }

/**
 * A devnet with audits: `auditBps`, `premiumBps`, two auditors staked `stakes` (accounts 4, 5),
 * registered a second before anything is claimed, and the devnet beacon's key to sign rounds.
 */
async function auditNet(o: { auditBps: number; premiumBps: number; audits?: Partial<AuditParams>; stakes?: [bigint, bigint]; register?: boolean }): Promise<AuditNet> {
  const opts: Parameters<typeof createDevnet>[0] & { audits?: Partial<AuditParams> } = {
    settlement: { auditBps: o.auditBps, premiumBps: o.premiumBps } as Partial<SettlementParams>, audits: o.audits, accounts: 8,
  }
  const net = await createDevnet(opts)
  const b = net.d.params.beacon
  assert.ok(b?.devSeed === DEV_BEACON_SEED)
  const beacon = createDevBeacon({ seed: DEV_BEACON_SEED, genesisTime: Number(b.genesisTime), period: Number(b.period) })
  const auditors = [net.auditor, net.at(5)]
  const stakes = o.stakes ?? [ETH, ETH]
  for (let i = 0; i < 2; i++) {
    await stake(auditors[i], net.d, { role: 'auditor', amount: stakes[i] })
    if (o.register !== false) await registerAuditor(auditors[i], net.d)
  }
  await deposit(net.client, net.d, { amount: ETH })
  await net.warp(1)
  const all = [net.deployer, net.provider, net.client, net.challenger, ...auditors, net.at(6), net.at(7)]
  const byAddress = (a: Address) => {
    const c = all.find((x) => x.account.address.toLowerCase() === a.toLowerCase())
    if (!c) throw new Error(`no devnet account ${a}`)
    return c
  }
  return { ...net, beacon, auditors, byAddress, params: await getAuditParams(net.deployer, net.d) }
}

let nonce = 1n
/** Claims `n` signed 5-token jobs from the devnet's client in one batch (request overrides per job). */
async function claim(net: AuditNet, n: number, over: (i: number) => Partial<JobRequest> = () => ({})): Promise<Claimed> {
  const items: Claimed['items'] = []
  for (let i = 0; i < n; i++) {
    const req = makeRequest(net, { nonce: nonce++, promptRoot: PROMPT_ROOT, paramsHash: PARAMS_HASH, ...over(i) })
    items.push({ item: await makeItem(net, net.client, req, { traceRoot: TRACE.root, nPrompt: 3, nOutput: 2, nLayer: 4 }), client: net.client.account.address })
  }
  const { batchId } = await claimBatch(net.provider, net.d, { items: items.map((x) => x.item) })
  return { batchId, items }
}

async function now(net: Devnet): Promise<bigint> {
  return (await net.provider.public.getBlock()).timestamp
}
/** Warps until `time` has passed (the next block's timestamp is later). */
async function warpPast(net: Devnet, time: bigint) {
  const t = await now(net)
  if (t <= time) await net.warp(time - t + 1n)
}
function sigOf(net: AuditNet, round: bigint): Hex {
  return toContractSig(net.beacon.sign(Number(round)).signature)
}
/** Draws a batch with its designated round, once that round is due. */
async function drawBatch(net: AuditNet, batchId: bigint) {
  const round = await designatedRound(net.deployer, net.d, { batchId })
  await warpPast(net, BigInt(net.beacon.info.genesis_time) + (round - 1n) * BigInt(net.beacon.info.period))
  return draw(net.deployer, net.d, { batchId, round, sig: sigOf(net, round) })
}
function proofOf(net: AuditNet, c: Claimed, i: number): JobProof {
  return jobProof(net.chain.chainId, net.d.settlement, c.items, i)
}
async function assertBooks(net: AuditNet) {
  assert.ok(isConserved(await getTotals(net.deployer, net.d)), 'Settlement and DisputeGame books balance')
  assert.ok(isAuditConserved(await auditTotals(net.deployer, net.d)), 'Audits books balance')
}
const fee = (net: AuditNet, amount: bigint) => (amount * BigInt(net.d.params.settlement.premiumBps)) / BigInt(net.d.params.settlement.auditBps)

test('the draw: rate p over 400 jobs within a binomial bound, stake-weighted auditors 1:3; the wrong round, a bad signature, a second draw are refused', async (t) => {
  const net = await auditNet({ auditBps: 2000, premiumBps: 100, stakes: [ETH, 3n * ETH] })
  try {
    const batches: Claimed[] = []
    for (let b = 0; b < 4; b++) batches.push(await claim(net, 100))
    // The premiums left for the pool at claim: 1% of each job.
    assert.equal((await auditTotals(net.deployer, net.d)).pool, 400n * ((5n * PRICE) / 100n))
    const b0 = batches[0].batchId
    const round = await designatedRound(net.deployer, net.d, { batchId: b0 })
    await warpPast(net, BigInt(net.beacon.info.genesis_time) + round * BigInt(net.beacon.info.period))
    await rejectsWith(draw(net.deployer, net.d, { batchId: b0, round: round + 1n, sig: sigOf(net, round + 1n) }), 'WrongRound')
    await rejectsWith(draw(net.deployer, net.d, { batchId: b0, round, sig: sigOf(net, round + 1n) }), 'BadBeaconSignature')
    const other = createDevBeacon({ seed: 'not the devnet', genesisTime: net.beacon.info.genesis_time, period: net.beacon.info.period })
    await rejectsWith(draw(net.deployer, net.d, { batchId: b0, round, sig: toContractSig(other.sign(Number(round)).signature) }), 'BadBeaconSignature')

    let audited = 0
    const count = new Map<string, number>()
    for (const c of batches) {
      const r = await drawBatch(net, c.batchId)
      const drawn = parseEventLogs({ abi: getArtifact('Audits').abi as typeof auditsAbi, logs: r.receipt.logs, eventName: 'AuditorDrawn' })
      t.diagnostic(`draw of 100 jobs: ${r.gasUsed} gas, ${drawn.length} audited`)
      assert.equal((await getDraw(net.deployer, net.d, c)).audited, drawn.length)
      for (const e of drawn) {
        assert.equal(e.args.why, WHY_AUDITED.RATE)
        count.set(e.args.auditor, (count.get(e.args.auditor) ?? 0) + 1)
      }
      audited += drawn.length
      // The events are the contract's state: spot-check the first ten jobs of each batch.
      const picked = new Set(drawn.map((e) => e.args.index))
      for (let i = 0n; i < 10n; i++) {
        const a = await assignmentOf(net.deployer, net.d, { batchId: c.batchId, index: i })
        assert.equal(a.status === AUDIT.DRAWN, picked.has(i))
        assert.equal(await isDrawnAtRate(net.deployer, net.d, { batchId: c.batchId, index: i }), picked.has(i))
      }
    }
    await rejectsWith(drawBatch(net, b0), 'AlreadyDrawn')
    // Binomial(400, 0.2): mean 80, sd 8; 4 sd either side.
    t.diagnostic(`audited ${audited} of 400 at p = 0.2`)
    assert.ok(audited >= 48 && audited <= 112, `audited ${audited}`)
    // Auditor B holds 3/4 of the stake: its share of ~80 picks has sd ~0.05; 4 sd either side.
    const shareB = (count.get(net.auditors[1].account.address) ?? 0) / audited
    t.diagnostic(`auditor weights ${JSON.stringify(await getAuditors(net.deployer, net.d), (_, v) => (typeof v === 'bigint' ? String(v) : v))}; B's share ${shareB.toFixed(3)}`)
    assert.ok(shareB > 0.55 && shareB < 0.95, `share of the 3x auditor ${shareB}`)
    const pending = await pendingAuditsOf(net.deployer, net.d, { auditor: net.auditors[1].account.address })
    assert.equal(pending.length, count.get(net.auditors[1].account.address))
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('jobs at the value threshold and jobs whose client asked before the draw are always audited; others, and late requests, are not forced', async () => {
  const net = await auditNet({ auditBps: 1, premiumBps: 100, audits: { valueThreshold: 5n * 2n * PRICE } })
  try {
    // Job 0 costs 5 x 2 x PRICE (at the threshold), job 1 is asked for by its client, jobs 2 and 3 neither.
    const c = await claim(net, 4, (i) => ({ pricePerToken: i === 0 ? 2n * PRICE : PRICE }))
    const rd = (i: number) => requestDigest(net.chain.chainId, net.d.settlement, c.items[i].item.req)
    await requestAudit(net.client, net.d, { requestDigest: rd(1) })
    await requestAudit(net.challenger, net.d, { requestDigest: rd(1) }) // cannot overwrite the client's request
    // Someone else's request for job 2 does not count: only the job's client asks.
    await requestAudit(net.challenger, net.d, { requestDigest: rd(2) })
    await rejectsWith(drawForced(net.deployer, net.d, { batchId: c.batchId, index: 0n, job: proofOf(net, c, 0) }), 'NotDrawn')
    await drawBatch(net, c.batchId)
    await requestAudit(net.client, net.d, { requestDigest: rd(3) }) // after the draw: too late
    for (let i = 0; i < 4; i++) assert.equal((await assignmentOf(net.deployer, net.d, { batchId: c.batchId, index: BigInt(i) })).status, AUDIT.NONE, 'p = 0.01%: none drawn at rate')
    await drawForced(net.deployer, net.d, { batchId: c.batchId, index: 0n, job: proofOf(net, c, 0) })
    await drawForced(net.auditor, net.d, { batchId: c.batchId, index: 1n, job: proofOf(net, c, 1) })
    assert.equal((await assignmentOf(net.deployer, net.d, { batchId: c.batchId, index: 0n })).why, WHY_AUDITED.VALUE)
    assert.equal((await assignmentOf(net.deployer, net.d, { batchId: c.batchId, index: 1n })).why, WHY_AUDITED.REQUEST)
    await rejectsWith(drawForced(net.deployer, net.d, { batchId: c.batchId, index: 1n, job: proofOf(net, c, 1) }), 'NotForced')
    await rejectsWith(drawForced(net.deployer, net.d, { batchId: c.batchId, index: 2n, job: proofOf(net, c, 2) }), 'NotForced')
    await rejectsWith(drawForced(net.deployer, net.d, { batchId: c.batchId, index: 3n, job: proofOf(net, c, 3) }), 'NotForced')
    // A proof of job 2's leaf at index 3 names no job of the batch.
    await rejectsWith(drawForced(net.deployer, net.d, { batchId: c.batchId, index: 3n, job: proofOf(net, c, 2) }), 'NotInBatch')
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('commit/reveal: "valid" with the drawn leaf is paid premium / p and its bond; a lazy approver without the leaf is refused and forfeits; "invalid" needs its own game; a no-show is redrawn', async (t) => {
  const net = await auditNet({ auditBps: 5000, premiumBps: 500 })
  try {
    const c = await claim(net, 16)
    const drawn = await drawBatch(net, c.batchId)
    const jobs: { index: bigint; auditor: ChainClients }[] = []
    for (let i = 0; i < 16; i++) {
      const a = await assignmentOf(net.deployer, net.d, { batchId: c.batchId, index: BigInt(i) })
      if (a.status === AUDIT.DRAWN) jobs.push({ index: BigInt(i), auditor: net.byAddress(a.auditor) })
    }
    assert.ok(jobs.length >= 4, `need 4 audited jobs of 16 at p = 0.5, got ${jobs.length}`)
    const [honest, lazy, noShow, dissent] = jobs
    const bond = net.params.auditorBond
    const salt = h('salt')
    const { batchId } = c

    // Honest: commits its own root (the claimed one), then proves the leaf drawn after the commitment.
    const hc = await commitAudit(honest.auditor, net.d, { batchId, index: honest.index, commitment: auditCommitment(TRACE.root, salt, honest.auditor.account.address), bond })
    await rejectsWith(commitAudit(honest.auditor, net.d, { batchId, index: honest.index, commitment: salt, bond }), 'WrongAuditState')
    const li = Number(await leafIndexOf(net.deployer, net.d, { batchId, index: honest.index, nLeaves: BigInt(N_LEAVES) }))
    const job = proofOf(net, c, Number(honest.index))
    await rejectsWith(revealValid(honest.auditor, net.d, { batchId, index: honest.index, job, salt, leaf: TRACE.leaves[(li + 1) % N_LEAVES], leafProof: TRACE.proof(li) }), 'BadLeafProof')
    await rejectsWith(revealValid(honest.auditor, net.d, { batchId, index: honest.index, job, salt: h('other'), leaf: TRACE.leaves[li], leafProof: TRACE.proof(li) }), 'BadCommitment')
    const hr = await revealValid(honest.auditor, net.d, { batchId, index: honest.index, job, salt, leaf: TRACE.leaves[li], leafProof: TRACE.proof(li) })

    // Lazy: commits the claimed root without replaying; it has no leaf, so no reveal gets through.
    const lz = proofOf(net, c, Number(lazy.index))
    await commitAudit(lazy.auditor, net.d, { batchId, index: lazy.index, commitment: auditCommitment(TRACE.root, salt, lazy.auditor.account.address), bond })
    await rejectsWith(revealValid(lazy.auditor, net.d, { batchId, index: lazy.index, job: lz, salt, leaf: TRACE.root, leafProof: [] }), 'BadLeafProof')
    await rejectsWith(revealValid(lazy.auditor, net.d, { batchId, index: lazy.index, job: lz, salt, leaf: h('made up'), leafProof: TRACE.proof(0) }), 'BadLeafProof')
    // Someone else cannot reveal for it.
    const stranger = lazy.auditor === net.auditors[0] ? net.auditors[1] : net.auditors[0]
    await rejectsWith(revealValid(stranger, net.d, { batchId, index: lazy.index, job: lz, salt, leaf: TRACE.root, leafProof: [] }), 'NotTheAuditor')

    // Dissent: its replay gave another root; "invalid" stands only with its own game on the job.
    const mine = h('my root')
    await commitAudit(dissent.auditor, net.d, { batchId, index: dissent.index, commitment: auditCommitment(mine, salt, dissent.auditor.account.address), bond })
    const dj = proofOf(net, c, Number(dissent.index))
    const other = await openGame(net.challenger, net.d, { batchId, jobIndex: dissent.index, item: dj.item, client: dj.client, proof: dj.proof, bond: DEFAULT_GAME_PARAMS.challengerBond })
    await rejectsWith(revealInvalid(dissent.auditor, net.d, { batchId, index: dissent.index, traceRoot: mine, salt, gameId: other.gameId }), 'NotYourGame')
    const own = await openGame(dissent.auditor, net.d, { batchId, jobIndex: dissent.index, item: dj.item, client: dj.client, proof: dj.proof, bond: DEFAULT_GAME_PARAMS.challengerBond })
    const ir = await revealInvalid(dissent.auditor, net.d, { batchId, index: dissent.index, traceRoot: mine, salt, gameId: own.gameId })

    // No-show: past its commit deadline the job is redrawn with the round that deadline fixes.
    const a0 = await assignmentOf(net.deployer, net.d, { batchId, index: noShow.index })
    const dl = auditDeadlines(a0, net.params)
    const rr = await redrawRound(net.deployer, net.d, { batchId, index: noShow.index })
    await rejectsWith(redraw(net.deployer, net.d, { batchId, index: noShow.index, round: rr, sig: sigOf(net, rr) }), 'AuditDeadline')
    await warpPast(net, dl.commit)
    await rejectsWith(commitAudit(noShow.auditor, net.d, { batchId, index: noShow.index, commitment: salt, bond }), 'AuditDeadline')
    await rejectsWith(redraw(net.deployer, net.d, { batchId, index: noShow.index, round: rr - 1n, sig: sigOf(net, rr - 1n) }), 'WrongRound')
    await warpPast(net, BigInt(net.beacon.info.genesis_time) + (rr - 1n) * BigInt(net.beacon.info.period))
    await redraw(net.deployer, net.d, { batchId, index: noShow.index, round: rr, sig: sigOf(net, rr) })
    const a1 = await assignmentOf(net.deployer, net.d, { batchId, index: noShow.index })
    assert.equal(a1.attempt, 1)
    assert.equal(a1.status, AUDIT.DRAWN)
    assert.ok(a1.start > dl.commit, 'the redraw starts after the missed deadline')
    await commitAudit(net.byAddress(a1.auditor), net.d, { batchId, index: noShow.index, commitment: auditCommitment(TRACE.root, salt, a1.auditor), bond })

    // Past the reveal deadline the lazy bond is forfeited (burned); past the canary window the honest are paid.
    await rejectsWith(settleAudit(net.deployer, net.d, { batchId, index: honest.index }), 'AuditDeadline')
    await warpPast(net, dl.reveal)
    await settleAudit(net.deployer, net.d, { batchId, index: lazy.index })
    assert.equal((await assignmentOf(net.deployer, net.d, { batchId, index: lazy.index })).status, AUDIT.FORFEITED)
    assert.equal((await auditTotals(net.deployer, net.d)).burned, bond)
    await warpPast(net, dl.canary)
    const before = await auditOwedTo(net.deployer, net.d, { account: honest.auditor.account.address })
    const sr = await settleAudit(net.deployer, net.d, { batchId, index: honest.index })
    const amount = job.amount
    assert.equal(await auditOwedTo(net.deployer, net.d, { account: honest.auditor.account.address }), before + fee(net, amount) + bond, 'fee premium / p and the bond')
    assert.equal(fee(net, amount), amount / 10n, 'premium 5% at p = 50%: a tenth of the job')
    await settleAudit(net.deployer, net.d, { batchId, index: dissent.index })
    assert.equal((await assignmentOf(net.deployer, net.d, { batchId, index: dissent.index })).status, AUDIT.PAID)
    await rejectsWith(settleAudit(net.deployer, net.d, { batchId, index: honest.index }), 'WrongAuditState')
    t.diagnostic(`gas: draw of 16 jobs (${jobs.length} audited) ${drawn.gasUsed}, commit ${hc.gasUsed}, revealValid ${hr.gasUsed}, revealInvalid ${ir.gasUsed}, settle ${sr.gasUsed}`)
    assert.ok((await auditEvents(net.deployer, net.d)).some((e) => e.eventName === 'AuditSettled'))
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('a canary planted before the claim catches a lazy approver (bond taken, the planter gets at most the premium); one planted after the claim catches nothing', async () => {
  const net = await auditNet({ auditBps: 10_000, premiumBps: 500 })
  try {
    const salt = h('canary salt')
    const reqs = [0, 1].map(() => makeRequest(net, { nonce: nonce++, promptRoot: PROMPT_ROOT, paramsHash: PARAMS_HASH }))
    const rd = reqs.map((r) => requestDigest(net.chain.chainId, net.d.settlement, r))
    const planter = net.client.account.address
    await plantCanary(net.client, net.d, { commitment: canaryCommitment(rd[0], salt, planter) })
    await rejectsWith(plantCanary(net.client, net.d, { commitment: canaryCommitment(rd[0], salt, planter) }), 'CanaryExists')
    await net.warp(1)
    const items = await Promise.all(reqs.map(async (req) => ({ item: await makeItem(net, net.client, req, { traceRoot: TRACE.root, nPrompt: 3, nOutput: 2, nLayer: 4 }), client: planter })))
    const { batchId } = await claimBatch(net.provider, net.d, { items: items.map((x) => x.item) })
    const c = { batchId, items }
    await net.warp(1)
    await plantCanary(net.client, net.d, { commitment: canaryCommitment(rd[1], salt, planter) }) // after the claim
    await drawBatch(net, batchId)
    const bond = net.params.auditorBond
    // Both auditors approve without replaying; the canary's provider hands out the drawn leaf.
    for (const index of [0n, 1n]) {
      const a = await assignmentOf(net.deployer, net.d, { batchId, index })
      const auditor = net.byAddress(a.auditor)
      const s = h(`lazy ${index}`)
      await commitAudit(auditor, net.d, { batchId, index, commitment: auditCommitment(TRACE.root, s, a.auditor), bond })
      const li = Number(await leafIndexOf(net.deployer, net.d, { batchId, index, nLeaves: BigInt(N_LEAVES) }))
      await revealValid(auditor, net.d, { batchId, index, job: proofOf(net, c, Number(index)), salt: s, leaf: TRACE.leaves[li], leafProof: TRACE.proof(li) })
    }
    // Only the job's client can reveal its canary, with the right salt.
    await rejectsWith(revealCanary(net.challenger, net.d, { batchId, index: 0n, job: proofOf(net, c, 0), salt }), 'NoCanary')
    await rejectsWith(revealCanary(net.client, net.d, { batchId, index: 0n, job: proofOf(net, c, 0), salt: h('wrong') }), 'NoCanary')
    await revealCanary(net.client, net.d, { batchId, index: 0n, job: proofOf(net, c, 0), salt })
    await rejectsWith(revealCanary(net.client, net.d, { batchId, index: 1n, job: proofOf(net, c, 1), salt }), 'NoCanary')
    const premium = (proofOf(net, c, 0).amount * 500n) / 10_000n
    assert.equal(await auditOwedTo(net.deployer, net.d, { account: planter }), premium, 'the planter gets the premium, no more')
    const totals = await auditTotals(net.deployer, net.d)
    assert.equal(totals.burned, bond - premium, 'the rest of the lazy bond is burned')
    const a0 = await assignmentOf(net.deployer, net.d, { batchId, index: 0n })
    assert.equal(a0.status, AUDIT.CAUGHT)
    await warpPast(net, auditDeadlines(a0, net.params).canary)
    await rejectsWith(settleAudit(net.deployer, net.d, { batchId, index: 0n }), 'WrongAuditState')
    await settleAudit(net.deployer, net.d, { batchId, index: 1n }) // the post-claim "canary" caught nothing
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('availability: an unanswered challenge slashes the provider and pays the challenger; a wrong transcript is refused; the right one closes the challenge and is emitted', async (t) => {
  const net = await auditNet({ auditBps: 500, premiumBps: 100 })
  try {
    const c = await claim(net, 3)
    const { batchId } = c
    const bond = net.params.challengeBond
    // Job 2 is under a game: its challenge cannot settle it.
    const j2 = proofOf(net, c, 2)
    await challengeAvailability(net.challenger, net.d, { batchId, index: 2n, job: j2, bond })
    await openGame(net.auditor, net.d, { batchId, jobIndex: 2n, item: j2.item, client: j2.client, proof: j2.proof, bond: DEFAULT_GAME_PARAMS.challengerBond })
    const provider = net.provider.account.address
    const stakeBefore = await getStake(net.deployer, net.d, provider)
    const escrowBefore = (await getBalances(net.deployer, net.d, net.client.account.address)).escrow

    await rejectsWith(challengeAvailability(net.challenger, net.d, { batchId, index: 0n, job: proofOf(net, c, 0), bond: 0n }), 'WrongBond')
    const cr = await challengeAvailability(net.challenger, net.d, { batchId, index: 0n, job: proofOf(net, c, 0), bond })
    await challengeAvailability(net.challenger, net.d, { batchId, index: 1n, job: proofOf(net, c, 1), bond })
    await rejectsWith(challengeAvailability(net.challenger, net.d, { batchId, index: 1n, job: proofOf(net, c, 1), bond }), 'ChallengeState')
    // Job 1: a wrong prompt, wrong params, then the signed transcript.
    await rejectsWith(answerAvailability(net.provider, net.d, { batchId, index: 1n, prompt: [17, 4, 98], sampling: SAMPLING }), 'TranscriptMismatch')
    await rejectsWith(answerAvailability(net.provider, net.d, { batchId, index: 1n, prompt: PROMPT, sampling: { ...SAMPLING, topK: 2 } }), 'TranscriptMismatch')
    const ar = await answerAvailability(net.provider, net.d, { batchId, index: 1n, prompt: PROMPT, sampling: SAMPLING })
    assert.equal((await challengeOf(net.deployer, net.d, { batchId, index: 1n })).status, CHALLENGE.ANSWERED)
    const posted = (await auditEvents(net.deployer, net.d)).find((e) => e.eventName === 'TranscriptPosted')
    assert.ok(posted && posted.eventName === 'TranscriptPosted')
    assert.equal(posted.args.prompt, '0x110000000400000063000000')
    assert.equal(await auditOwedTo(net.deployer, net.d, { account: provider }), bond, 'the answerer gets the bond')
    await rejectsWith(claimWithholding(net.challenger, net.d, { batchId, index: 1n }), 'ChallengeState')

    // Job 0: nobody answers.
    await rejectsWith(claimWithholding(net.challenger, net.d, { batchId, index: 0n }), 'AuditDeadline')
    await warpPast(net, (await challengeOf(net.deployer, net.d, { batchId, index: 0n })).deadline)
    await rejectsWith(answerAvailability(net.provider, net.d, { batchId, index: 0n, prompt: PROMPT, sampling: SAMPLING }), 'AuditDeadline')
    await rejectsWith(claimWithholding(net.deployer, net.d, { batchId, index: 2n }), 'JobUnderDispute')
    const wr = await claimWithholding(net.deployer, net.d, { batchId, index: 0n })
    const job0 = proofOf(net, c, 0)
    const { net: net0 } = premiumOf(job0.amount, { premiumBps: net.d.params.settlement.premiumBps })
    const stakeAfter = await getStake(net.deployer, net.d, provider)
    const slashed = stakeBefore.active - stakeAfter.active
    assert.ok(slashed >= BigInt(net.d.params.settlement.minProviderStake), `slashed ${slashed}: at least the provider minimum, as a lost dispute`)
    assert.equal((await getBalances(net.deployer, net.d, net.challenger.account.address)).owed, slashed / 2n, 'the challenger gets the reward share')
    assert.equal(await auditOwedTo(net.deployer, net.d, { account: net.challenger.account.address }), bond, 'and its bond back')
    assert.equal((await getBalances(net.deployer, net.d, net.client.account.address)).escrow, escrowBefore + net0, 'the client is refunded the job less its premium')
    assert.equal((await getBatch(net.deployer, net.d, batchId)).amount, 2n * net0)
    assert.equal((await getBatch(net.deployer, net.d, batchId)).disputed, net0, 'job 2, under its game, is held back as before')
    // The faulted job is settled: no second slash, no game.
    await rejectsWith(claimWithholding(net.challenger, net.d, { batchId, index: 0n }), 'ChallengeState')
    await rejectsWith(openGame(net.challenger, net.d, { batchId, jobIndex: 0n, item: job0.item, client: job0.client, proof: job0.proof, bond: DEFAULT_GAME_PARAMS.challengerBond }), 'JobFaulted')
    t.diagnostic(`gas: challengeAvailability ${cr.gasUsed}, answerAvailability (3 tokens) ${ar.gasUsed}, claimWithholding ${wr.gasUsed}`)
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('with no auditor registered before the round the jobs are still drawn; the redraw picks one registered before its own round', async () => {
  const net = await auditNet({ auditBps: 10_000, premiumBps: 100, register: false })
  try {
    const c = await claim(net, 2)
    await drawBatch(net, c.batchId)
    const a0 = await assignmentOf(net.deployer, net.d, { batchId: c.batchId, index: 0n })
    assert.equal(a0.status, AUDIT.DRAWN)
    assert.equal(a0.auditor, '0x0000000000000000000000000000000000000000')
    await rejectsWith(commitAudit(net.auditor, net.d, { batchId: c.batchId, index: 0n, commitment: h('x'), bond: net.params.auditorBond }), 'NotTheAuditor')
    await registerAuditor(net.auditor, net.d)
    await warpPast(net, auditDeadlines(a0, net.params).commit)
    const rr = await redrawRound(net.deployer, net.d, { batchId: c.batchId, index: 0n })
    await warpPast(net, BigInt(net.beacon.info.genesis_time) + (rr - 1n) * BigInt(net.beacon.info.period))
    await redraw(net.deployer, net.d, { batchId: c.batchId, index: 0n, round: rr, sig: sigOf(net, rr) })
    assert.equal((await assignmentOf(net.deployer, net.d, { batchId: c.batchId, index: 0n })).auditor, net.auditor.account.address)
    // Its weight was a snapshot: once it unbonds its stake it can no longer commit (nor be paid).
    await unstake(net.auditor, net.d, { amount: ETH })
    await rejectsWith(commitAudit(net.auditor, net.d, { batchId: c.batchId, index: 0n, commitment: h('x'), bond: net.params.auditorBond }), 'AuditorList')
    await pruneAuditor(net.client, net.d, { account: net.auditor.account.address })
    assert.equal((await getAuditors(net.deployer, net.d)).length, 0)
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('the auditor list: only staked auditors register, a staked one cannot be pruned, one that left can; windows past the challenge window are refused at deployment', async () => {
  const net = await auditNet({ auditBps: 500, premiumBps: 0 })
  try {
    await rejectsWith(registerAuditor(net.client, net.d), 'AuditorList')
    await rejectsWith(pruneAuditor(net.client, net.d, { account: net.auditor.account.address }), 'AuditorList')
    await deregisterAuditor(net.auditor, net.d)
    assert.deepEqual((await getAuditors(net.deployer, net.d)).map((a) => a.account), [net.auditors[1].account.address])
    await rejectsWith(deregisterAuditor(net.auditor, net.d), 'AuditorList')
    // Re-registering refreshes the weight in place.
    await stake(net.auditors[1], net.d, { role: 'auditor', amount: ETH })
    await registerAuditor(net.auditors[1], net.d)
    assert.deepEqual((await getAuditors(net.deployer, net.d)).map((a) => a.weightGwei), [2n * 10n ** 9n])
    const [deployer] = [net.deployer]
    await assert.rejects(deployTessera(deployer, { audits: { commitWindow: 86_400n } }), (e: Error) => e.name === 'DeploymentError')
    await assert.rejects(deployTessera(deployer, { audits: { beaconDelay: 1n } }), (e: Error) => e.name === 'DeploymentError')
  } finally {
    await net.close()
  }
})
