/**
 * Audits of real jobs (docs/CHAIN.md "Audits"): a tiny synthesized llama serves jobs through
 * request, reservation, delivery acknowledgement and claim (src/dispute/attack.ts `serveJob`); the
 * drawn auditor replays each job itself (src/dispute/replay.ts) and so holds the trace leaf the
 * seed picks after its commitment: an honest job is revealed "valid" with the real leaf and paid
 * premium / p, a cheated one "invalid" with its own game; the provider answers an availability
 * challenge with the real prompt and sampling params.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Hex, toHex } from 'viem'
import {
  AUDIT, CHALLENGE, answerAvailability, assignmentOf, auditCommitment, auditDeadlines, auditOwedTo, auditTotals,
  challengeAvailability, challengeOf, commitAudit, designatedRound, draw, getAuditParams, isAuditConserved, leafIndexOf,
  registerAuditor, revealInvalid, revealValid, settleAudit,
} from './actions/audits.js'
import { openGame } from './actions/disputeGame.js'
import { getTotals, stake } from './actions/settlement.js'
import { createDevBeacon, toContractSig } from './beacon.js'
import { type AuditParams, DEFAULT_GAME_PARAMS, DEV_BEACON_SEED, type SettlementParams, jobAmount } from './client.js'
import { type Devnet, createDevnet, isConserved } from './devnet.js'
import { type ServedJob, serveJob } from '../dispute/attack.js'
import type { DisputeModel } from '../dispute/model.js'
import { replayJob } from '../dispute/replay.js'
import { createReplayTraceProvider } from '../dispute/traceProvider.js'
import { GREEDY, tinyDisputeModel } from '../../test/support/disputeJobs.js'

const ETH = 10n ** 18n
let model: DisputeModel
let net: Devnet
before(async () => {
  model = await tinyDisputeModel('tiny', 'q8_0')
  const opts: Parameters<typeof createDevnet>[0] & { audits?: Partial<AuditParams> } = { settlement: { auditBps: 10_000, premiumBps: 1000 } as Partial<SettlementParams> }
  net = await createDevnet(opts)
  await stake(net.auditor, net.d, { role: 'auditor', amount: ETH })
  await registerAuditor(net.auditor, net.d)
  await net.warp(1)
})
after(async () => {
  await net?.close()
  model?.close()
})

const params = { ...GREEDY, repeatLastN: 4, maxTokens: 3, stop: [] }
let nonce = 1n
async function drawn(j: ServedJob) {
  const b = net.d.params.beacon
  assert.ok(b?.devSeed === DEV_BEACON_SEED)
  const beacon = createDevBeacon({ seed: DEV_BEACON_SEED, genesisTime: Number(b.genesisTime), period: Number(b.period) })
  const round = await designatedRound(net.deployer, net.d, { batchId: j.batchId })
  await net.warp(BigInt(b.period) * 2n + (await getAuditParams(net.deployer, net.d)).beaconDelay)
  await draw(net.deployer, net.d, { batchId: j.batchId, round, sig: toContractSig(beacon.sign(Number(round)).signature) })
  const a = await assignmentOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })
  assert.equal(a.status, AUDIT.DRAWN, 'p = 100%: every job is audited')
  assert.equal(a.auditor, net.auditor.account.address)
  return a
}
const hex = (b: Uint8Array): Hex => toHex(b)

test('an honest real job: the auditor replays, commits its root, proves the drawn leaf and is paid premium / p', async () => {
  const j = await serveJob({ net, model, job: { prompt: [1, 15, 7], params, seed: 0n }, seed: 0, nonce: nonce++ })
  const a = await drawn(j)
  // The auditor's own replay, not the provider's trace.
  const mine = createReplayTraceProvider(model, replayJob(model.tf, j.spec)).traceTree()
  assert.equal(hex(mine.root), j.item.traceRoot, 'the honest replay reproduces the claimed trace root')
  const salt = toHex('salt', { size: 32 })
  const bond = (await getAuditParams(net.deployer, net.d)).auditorBond
  await commitAudit(net.auditor, net.d, { batchId: j.batchId, index: 0n, commitment: auditCommitment(hex(mine.root), salt, net.auditor.account.address), bond })
  const li = Number(await leafIndexOf(net.deployer, net.d, { batchId: j.batchId, index: 0n, nLeaves: BigInt(mine.leaves.length) }))
  const job = { item: j.item, client: j.open.client, amount: jobAmount(j.item), proof: j.open.proof }
  await revealValid(net.auditor, net.d, { batchId: j.batchId, index: 0n, job, salt, leaf: hex(mine.leaves[li]), leafProof: mine.proof(li).map(hex) })
  await net.warp(auditDeadlines(a, await getAuditParams(net.deployer, net.d)).canary - a.start + 1n)
  const before = await auditOwedTo(net.deployer, net.d, { account: net.auditor.account.address })
  await settleAudit(net.deployer, net.d, { batchId: j.batchId, index: 0n })
  // premium 10% at p = 100%: the fee is the premium itself.
  assert.equal(await auditOwedTo(net.deployer, net.d, { account: net.auditor.account.address }), before + jobAmount(j.item) / 10n + bond)
  assert.ok(isConserved(await getTotals(net.deployer, net.d)))
  assert.ok(isAuditConserved(await auditTotals(net.deployer, net.d)))
})

test('a cheated real job: the replay gives another root; "invalid" stands with the auditor\'s own game; the transcript challenge is answered with the real prompt', async () => {
  const j = await serveJob({ net, model, job: { prompt: [1, 9, 4, 2], params, seed: 0n }, cheat: 'silu', seed: 1, nonce: nonce++ })
  await drawn(j)
  const mine = createReplayTraceProvider(model, replayJob(model.tf, j.spec)).traceTree()
  assert.notEqual(hex(mine.root), j.item.traceRoot, 'the cheat changed the committed trace')
  const salt = toHex('salt2', { size: 32 })
  const bond = (await getAuditParams(net.deployer, net.d)).auditorBond
  await commitAudit(net.auditor, net.d, { batchId: j.batchId, index: 0n, commitment: auditCommitment(hex(mine.root), salt, net.auditor.account.address), bond })
  // The drawn auditor asks for the transcript on chain (no bond); the provider posts the signed one.
  const job = { item: j.item, client: j.open.client, amount: jobAmount(j.item), proof: j.open.proof }
  await challengeAvailability(net.auditor, net.d, { batchId: j.batchId, index: 0n, job, bond: 0n })
  await answerAvailability(net.provider, net.d, { batchId: j.batchId, index: 0n, prompt: j.spec.prompt, sampling: j.cfg.sampling })
  const { status } = await challengeOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })
  assert.equal(status, CHALLENGE.ANSWERED)
  const { gameId } = await openGame(net.auditor, net.d, { ...j.open, bond: DEFAULT_GAME_PARAMS.challengerBond })
  await revealInvalid(net.auditor, net.d, { batchId: j.batchId, index: 0n, traceRoot: hex(mine.root), salt, gameId })
  assert.equal((await assignmentOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })).status, AUDIT.INVALID)
  assert.ok(isConserved(await getTotals(net.deployer, net.d)))
  assert.ok(isAuditConserved(await auditTotals(net.deployer, net.d)))
})
