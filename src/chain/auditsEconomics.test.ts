/**
 * Audit economics on the embedded chain (docs/CHAIN.md "Audits": "Premium", "Forced audits",
 * "Collusion"): the premium deployTessera picks and the unpaid-audit deployment it refuses; forced
 * audits that bring their own fee, so the pool pays random audits only from premiums; and the claim
 * lock and slash that grow with the tolerated share of colluding auditors, against a provider
 * whose stake would have covered its job without them.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Address, type Hex, parseEventLogs } from 'viem'
import type { auditsAbi } from '#abi'
import { getArtifact } from './artifacts.js'
import {
  AUDIT, type JobProof, WHY_AUDITED, assignmentOf, auditCommitment, auditDeadlines, auditFeeOf, auditTotals,
  challengeAvailability, claimWithholding, commitAudit, designatedRound, draw, drawForced, getAuditParams, isAuditConserved,
  jobProof, leafIndexOf, registerAuditor, requestAudit, revealValid, settleAudit,
} from './actions/audits.js'
import { claimBatch, deposit, exposureOf, getBalances, getStake, getTotals, premiumOf, stake } from './actions/settlement.js'
import { createDevBeacon, type DevBeacon, toContractSig } from './beacon.js'
import {
  type AuditParams, type ClaimItem, DEFAULT_SETTLEMENT_PARAMS, DEV_BEACON_SEED, type JobRequest, type SettlementParams,
  deployTessera, read, requestDigest,
} from './client.js'
import { deployContract, type ChainClients } from './evm/clients.js'
import { type Devnet, Tree, createDevnet, h, isConserved, makeItem, makeRequest } from './devnet.js'

const ETH = 10n ** 18n
const PRICE = 10n ** 12n
/** Every job: 5 tokens (nPrompt 3, nOutput 2) of the devnet's 4-layer model: 4 positions x 5 leaves. */
const N_LEAVES = 20
const TRACE = new Tree(Array.from({ length: N_LEAVES }, (_, i) => h(`leaf${i}`)))

async function rejectsWith(p: Promise<unknown>, errorName: string, args?: readonly unknown[]) {
  await assert.rejects(p, (e: { name: string; errorName?: string; args?: readonly unknown[] }) => {
    assert.equal(e.name, 'ContractRevertError', String(e))
    assert.equal(e.errorName, errorName)
    if (args) assert.deepEqual(e.args, args)
    return true
  })
}

type Net = Devnet & { beacon: DevBeacon; byAddress(a: Address): ChainClients; params: AuditParams }
type Claimed = { batchId: bigint; items: { item: ClaimItem; client: Address }[] }

/** A devnet with these settlement and audit parameters, auditors 4 and 5 staked 1 coin and registered. */
async function econNet(settlement: Partial<SettlementParams>, audits: Partial<AuditParams> = {}, providerStake?: bigint): Promise<Net> {
  const net = await createDevnet({ settlement, audits, providerStake, accounts: 8 } as Parameters<typeof createDevnet>[0])
  const b = net.d.params.beacon
  assert.ok(b?.devSeed === DEV_BEACON_SEED)
  const beacon = createDevBeacon({ seed: DEV_BEACON_SEED, genesisTime: Number(b.genesisTime), period: Number(b.period) })
  for (const a of [net.auditor, net.at(5)]) {
    await stake(a, net.d, { role: 'auditor', amount: ETH })
    await registerAuditor(a, net.d)
  }
  await deposit(net.client, net.d, { amount: 10n * ETH })
  await net.warp(1)
  const all = [net.deployer, net.provider, net.client, net.challenger, net.auditor, net.at(5), net.at(6), net.at(7)]
  const byAddress = (a: Address) => {
    const c = all.find((x) => x.account.address.toLowerCase() === a.toLowerCase())
    if (!c) throw new Error(`no devnet account ${a}`)
    return c
  }
  return { ...net, beacon, byAddress, params: await getAuditParams(net.deployer, net.d) }
}

let nonce = 1n
async function claim(net: Net, n: number, over: (i: number) => Partial<JobRequest> = () => ({})): Promise<Claimed> {
  const items: Claimed['items'] = []
  for (let i = 0; i < n; i++) {
    const req = makeRequest(net, { nonce: nonce++, ...over(i) })
    items.push({ item: await makeItem(net, net.client, req, { traceRoot: TRACE.root, nPrompt: 3, nOutput: 2, nLayer: 4 }), client: net.client.account.address })
  }
  const { batchId } = await claimBatch(net.provider, net.d, { items: items.map((x) => x.item) })
  return { batchId, items }
}
async function warpPast(net: Devnet, time: bigint) {
  const t = (await net.provider.public.getBlock()).timestamp
  if (t <= time) await net.warp(time - t + 1n)
}
async function drawBatch(net: Net, batchId: bigint) {
  const round = await designatedRound(net.deployer, net.d, { batchId })
  await warpPast(net, BigInt(net.beacon.info.genesis_time) + (round - 1n) * BigInt(net.beacon.info.period))
  return draw(net.deployer, net.d, { batchId, round, sig: toContractSig(net.beacon.sign(Number(round)).signature) })
}
const proofOf = (net: Net, c: Claimed, i: number): JobProof => jobProof(net.chain.chainId, net.d.settlement, c.items, i)
const settlementParams = (net: Net) => read<SettlementParams>(net.deployer, net.d.settlement, 'Settlement', 'getParams', [])
async function assertBooks(net: Net) {
  assert.ok(isConserved(await getTotals(net.deployer, net.d)), 'Settlement and DisputeGame books balance')
  assert.ok(isAuditConserved(await auditTotals(net.deployer, net.d)), 'Audits books balance')
}

test('deployment: the premium follows p unless given (an audit pays the job price); premium 0 is refused unless unpaid audits are asked for; a 100% colluding share is refused', async () => {
  const net = await createDevnet()
  try {
    const c = net.deployer
    const onChain = (d: { settlement: Address }) => read<SettlementParams>(c, d.settlement, 'Settlement', 'getParams', [])
    const d = await deployTessera(c)
    const sp = await onChain(d)
    assert.deepEqual([sp.auditBps, sp.premiumBps, sp.collusionBps], [500, 500, 2000])
    assert.equal(auditFeeOf(10n ** 15n, sp), 10n ** 15n, 'at the defaults an audit is paid the job price')
    // The lock and slash at the defaults: price / (p (1 - r) (1 - c)) = 50 x the price (the contract and the client agree).
    assert.equal(await read<bigint>(c, d.settlement, 'Settlement', 'exposureOf', [10n ** 15n]), 50n * 10n ** 15n)
    assert.equal(exposureOf(10n ** 15n, sp), 50n * 10n ** 15n)
    assert.equal((await onChain(await deployTessera(c, { settlement: { auditBps: 1000 } }))).premiumBps, 1000, 'the premium follows a deployment\'s own p')
    // ... up to half the price: a chain auditing every job still pays its providers.
    assert.equal((await onChain(await deployTessera(c, { settlement: { auditBps: 10_000 } }))).premiumBps, 5000)
    // A deployer that sets no premium would have auditors replay for nothing: refused, in one line that says why.
    await assert.rejects(deployTessera(c, { settlement: { premiumBps: 0 } }), (e: Error) => {
      assert.equal(e.name, 'DeploymentError')
      assert.match(e.message, /^premiumBps 0 with auditBps 500: drawn auditors would replay jobs unpaid/)
      assert.ok(!e.message.includes('\n'))
      return true
    })
    assert.equal((await onChain(await deployTessera(c, { settlement: { premiumBps: 0 }, unpaidAudits: true }))).premiumBps, 0)
    // No audit catches anything if every auditor colludes: refused by the client and by the constructor.
    await assert.rejects(deployTessera(c, { settlement: { collusionBps: 10_000 } }), /collusionBps must be 0\.\.9999/)
    await assert.rejects(deployContract(c, { name: 'Settlement', args: [d.registry, { ...DEFAULT_SETTLEMENT_PARAMS, collusionBps: 10_000 }] }))
    await deployContract(c, { name: 'Settlement', args: [d.registry, { ...DEFAULT_SETTLEMENT_PARAMS, collusionBps: 9_999 }] })
  } finally {
    await net.close()
  }
})

test('a forced audit brings its own fee: forcing one for less is refused; across random and forced audits every fee is paid in full and the pool keeps the premiums less the random audits\' fees', async (t) => {
  // p = 25%, premium 5%: a fee is 20% of the job. Jobs 0-3 cost 3x (at the value threshold), jobs 4-5 are requested.
  const net = await econNet({ auditBps: 2500, premiumBps: 500 }, { valueThreshold: 5n * 3n * PRICE })
  try {
    const sp = await settlementParams(net)
    const c = await claim(net, 12, (i) => ({ pricePerToken: i < 4 ? 3n * PRICE : PRICE }))
    const { batchId } = c
    const amounts = c.items.map((_, i) => proofOf(net, c, i).amount)
    const premiums = amounts.reduce((s, a) => s + premiumOf(a, sp).premium, 0n)
    assert.equal((await auditTotals(net.deployer, net.d)).pool, premiums, 'each claim pays its premium in')
    for (const i of [4, 5]) await requestAudit(net.client, net.d, { requestDigest: requestDigest(net.chain.chainId, net.d.settlement, c.items[i].item.req) })
    await drawBatch(net, batchId)
    const status = async (i: number) => assignmentOf(net.deployer, net.d, { batchId, index: BigInt(i) })
    const atRate: number[] = []
    for (let i = 0; i < 12; i++) if ((await status(i)).status === AUDIT.DRAWN) atRate.push(i)
    const forced = [0, 1, 2, 3, 4, 5].filter((i) => !atRate.includes(i))
    t.diagnostic(`drawn at rate: ${atRate.join(', ')}; forced: ${forced.join(', ')}`)
    assert.ok(forced.length >= 2 && forced.some((i) => i < 4) && forced.some((i) => i >= 4), 'this run forces a threshold job and a requested one')

    // The attacker (the client here; anyone may call) forces an audit without paying its fee, with one
    // wei less, or with the job's premium only (what the pool got for it): each would be paid by the pool.
    const f0 = forced[0]
    const fee0 = auditFeeOf(amounts[f0], sp)
    for (const value of [0n, fee0 - 1n, premiumOf(amounts[f0], sp).premium]) {
      await rejectsWith(drawForced(net.client, net.d, { batchId, index: BigInt(f0), job: proofOf(net, c, f0), fee: value }), 'WrongBond', [value, fee0])
    }
    await rejectsWith(drawForced(net.client, net.d, { batchId, index: BigInt(f0), job: proofOf(net, c, f0), fee: fee0 + 1n }), 'WrongBond', [fee0 + 1n, fee0])
    let forcedFees = 0n
    for (const i of forced) {
      const r = await drawForced(i >= 4 ? net.client : net.challenger, net.d, { batchId, index: BigInt(i), job: proofOf(net, c, i) })
      const funded = parseEventLogs({ abi: getArtifact('Audits').abi as typeof auditsAbi, logs: r.receipt.logs, eventName: 'PoolFunded' })
      assert.deepEqual(funded.map((e) => e.args.amount), [auditFeeOf(amounts[i], sp)])
      assert.equal((await status(i)).why, i < 4 ? WHY_AUDITED.VALUE : WHY_AUDITED.REQUEST)
      forcedFees += auditFeeOf(amounts[i], sp)
      t.diagnostic(`drawForced of job ${i} (why ${i < 4 ? 'value' : 'request'}): ${r.gasUsed} gas`)
    }
    // Before this rule the pool paid forced audits from premiums: together they need more than it ever got.
    const allFees = [...atRate, ...forced].reduce((s, i) => s + auditFeeOf(amounts[i], sp), 0n)
    assert.ok(allFees > premiums, `all fees ${allFees} > premiums ${premiums}: paid from premiums alone, the pool would run dry`)

    // Every drawn auditor replays, commits the claimed root and proves its drawn leaf; all are paid.
    const salt = h('salt')
    for (const i of [...atRate, ...forced]) {
      const a = await status(i)
      const auditor = net.byAddress(a.auditor)
      await commitAudit(auditor, net.d, { batchId, index: BigInt(i), commitment: auditCommitment(TRACE.root, salt, a.auditor), bond: net.params.auditorBond })
      const li = Number(await leafIndexOf(net.deployer, net.d, { batchId, index: BigInt(i), nLeaves: BigInt(N_LEAVES) }))
      await revealValid(auditor, net.d, { batchId, index: BigInt(i), job: proofOf(net, c, i), salt, leaf: TRACE.leaves[li], leafProof: TRACE.proof(li) })
    }
    await warpPast(net, auditDeadlines(await status(f0), net.params).canary)
    let paid = 0n
    for (const i of [...atRate, ...forced]) {
      const r = await settleAudit(net.deployer, net.d, { batchId, index: BigInt(i) })
      const [e] = parseEventLogs({ abi: getArtifact('Audits').abi as typeof auditsAbi, logs: r.receipt.logs, eventName: 'AuditSettled' })
      assert.equal(e.args.fee, auditFeeOf(amounts[i], sp), `job ${i} (${atRate.includes(i) ? 'random' : 'forced'}) paid its full fee, not a pool-capped one`)
      paid += e.args.fee
    }
    const rateFees = atRate.reduce((s, i) => s + auditFeeOf(amounts[i], sp), 0n)
    const pool = (await auditTotals(net.deployer, net.d)).pool
    t.diagnostic(`premiums ${premiums}, random fees ${rateFees}, forced fees ${forcedFees} (paid in by their callers), pool left ${pool}`)
    assert.equal(paid, rateFees + forcedFees)
    assert.equal(pool, premiums - rateFees, 'forced audits cost the pool nothing: it holds the premiums less the random audits\' fees')
    await assertBooks(net)
  } finally {
    await net.close()
  }
})

test('collusion: a provider staked for price / (p (1 - r)) but not for price / (p (1 - r) (1 - c)) cannot take the job; caught with its sock-puppet challenger, it still burns price / (p (1 - c))', async () => {
  // p = 5%, reward r = 50%, tolerated colluding auditor share c = 20%: the lock is 50x the price
  // (40x without c). A job of 0.225 coin needs 11.25 coin; the provider has 10 (9 would do at c = 0).
  const net = await econNet({ auditBps: 500, rewardBps: 5000, collusionBps: 2000 })
  try {
    const sp = await settlementParams(net)
    const me = net.provider.account.address
    const price = (225n * ETH) / 1000n / 5n
    const amount = 5n * price
    assert.equal(exposureOf(amount, { ...sp, collusionBps: 0 }), 9n * ETH, 'without the collusion factor the stake would cover it')
    const need = exposureOf(amount, sp)
    assert.equal(need, (1125n * ETH) / 100n)
    await rejectsWith(claim(net, 1, () => ({ pricePerToken: price })), 'StakeLocked', [me, 10n * ETH, need])
    // Staked for it, the provider takes the job, and the job locks the whole exposure.
    await stake(net.provider, net.d, { role: 'provider', amount: (125n * ETH) / 100n })
    const c = await claim(net, 1, () => ({ pricePerToken: price }))
    assert.equal((await getStake(net.provider, net.d, me)).locked, need)

    // The provider cheated and withholds the transcript; its own puppet (account 6) challenges first
    // and collects the reward share of the slash. What burns must still deter auditors' collusion:
    // caught with probability p (1 - c), the cheat loses burned * p * (1 - c) >= its price.
    const puppet = net.at(6)
    const before = await getBalances(puppet, net.d, puppet.account.address)
    await challengeAvailability(puppet, net.d, { batchId: c.batchId, index: 0n, job: proofOf(net, c, 0), bond: net.params.challengeBond })
    await net.warp(net.params.answerWindow + 1n)
    await claimWithholding(puppet, net.d, { batchId: c.batchId, index: 0n })
    const s = await getStake(net.provider, net.d, me)
    const slashed = 10n * ETH + (125n * ETH) / 100n - s.active
    assert.equal(slashed, need)
    const after = await getBalances(puppet, net.d, puppet.account.address)
    const puppetGot = after.owed - before.owed
    assert.equal(puppetGot, need / 2n)
    const burned = slashed - puppetGot
    assert.ok((burned * BigInt(sp.auditBps) * (10_000n - BigInt(sp.collusionBps))) / 10n ** 8n >= amount, `burned ${burned}: expected loss below the price ${amount}`)
    assert.equal(s.locked, 0n)
    assert.ok(isConserved(await getTotals(net.deployer, net.d)))
  } finally {
    await net.close()
  }
})
