// Transcript access on the embedded chain with real Audits draws (every job drawn, two auditors
// registered): the drawn auditor reads the job's transcript and the client reads its own; an
// undrawn staked auditor, a replayed request, a stale one, a forged signature, a signature from
// another account than the asking peer, the drawn auditor asking for another job (by its own
// place on chain or the other job's), and a no-show auditor after the redraw are each refused with
// their code, and the gate keeps answering. The transcripts are made-up records keyed by digest:
// the gate reads only their client.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Address, Hex } from 'viem'
import { AUDIT, assignmentOf, deregisterAuditor, designatedRound, draw, getAuditParams, redraw, redrawRound, registerAuditor } from '../chain/actions/audits.js'
import { stake } from '../chain/actions/settlement.js'
import { type DevBeacon, createDevBeacon, toContractSig } from '../chain/beacon.js'
import { DEV_BEACON_SEED, type SettlementParams, requestDigest } from '../chain/client.js'
import { type Devnet, claimJob, createDevnet, h } from '../chain/devnet.js'
import type { ChainClients } from '../chain/evm/clients.js'
import type { Transcript } from './transcript.js'
import { ACCESS_MAX_AGE_S, type AccessJson, createTranscriptGate, signTranscriptAccess, type TranscriptGate } from './transcriptAccess.js'

const COIN = 10n ** 18n

describe('transcript access: the client and the auditor drawn now, nobody else', () => {
  let net: Devnet
  let beacon: DevBeacon
  let gate: TranscriptGate
  let now = 0
  const transcripts = new Map<string, Transcript>()
  // job A (batch a, drawn) and job B (batch b, claimed, not drawn yet)
  const A = { digest: '0x' as Hex, batchId: 0n }
  const B = { digest: '0x' as Hex, batchId: 0n }
  let drawn: ChainClients
  let undrawn: ChainClients

  const claim = async (nonce: bigint) => {
    const j = await claimJob(net, h(`trace ${nonce}`), { nonce })
    const digest = requestDigest(net.chain.chainId, net.d.settlement, j.item.req).toLowerCase() as Hex
    // only the client field matters to the gate
    transcripts.set(digest, { requestDigest: digest, client: net.client.account.address } as Transcript)
    return { digest, batchId: j.batchId }
  }
  const sign = (who: ChainClients, job: { digest: Hex; batchId: bigint }, over: { index?: number; issuedAt?: number; provider?: Address } = {}) =>
    signTranscriptAccess(who, net.d, { requestDigest: job.digest, provider: over.provider ?? net.provider.account.address, batchId: job.batchId, index: over.index ?? 0, issuedAt: over.issuedAt ?? now })
  const ask = async (peer: ChainClients, digest: Hex, access: AccessJson) => gate.check({ t: 'get', request: digest, access }, peer.account.address)
  const code = async (peer: ChainClients, digest: Hex, access: AccessJson) => {
    const v = await ask(peer, digest, access)
    return v.ok ? `ok:${v.as}` : v.code
  }

  before(async () => {
    net = await createDevnet({ settlement: { auditBps: 10_000, premiumBps: 1_000 } as Partial<SettlementParams>, accounts: 7 })
    const b = net.d.params.beacon!
    beacon = createDevBeacon({ seed: DEV_BEACON_SEED, genesisTime: Number(b.genesisTime), period: Number(b.period) })
    for (const a of [net.auditor, net.at(5)]) {
      await stake(a, net.d, { role: 'auditor', amount: COIN })
      await registerAuditor(a, net.d)
    }
    await net.warp(1)
    Object.assign(A, await claim(1n))
    const p = await getAuditParams(net.deployer, net.d)
    await net.warp(p.beaconDelay + BigInt(b.period))
    const round = await designatedRound(net.deployer, net.d, { batchId: A.batchId })
    await draw(net.deployer, net.d, { batchId: A.batchId, round, sig: toContractSig(beacon.sign(Number(round)).signature) })
    const as = await assignmentOf(net.deployer, net.d, { batchId: A.batchId, index: 0n })
    assert.equal(as.status, AUDIT.DRAWN)
    ;[drawn, undrawn] = as.auditor === net.auditor.account.address ? [net.auditor, net.at(5)] : [net.at(5), net.auditor]
    Object.assign(B, await claim(2n))
    now = Math.floor(Date.now() / 1000)
    gate = createTranscriptGate({ clients: net.provider, deployment: net.d, transcriptOf: async (d) => transcripts.get(d.toLowerCase()), clock: () => now })
  })
  after(async () => {
    await net?.close()
  })

  test('the drawn auditor reads the job it is drawn for; the client reads its own job without naming a batch', async () => {
    assert.equal(await code(drawn, A.digest, await sign(drawn, A)), 'ok:auditor')
    assert.equal(await code(net.client, B.digest, await sign(net.client, { digest: B.digest, batchId: 0n })), 'ok:client')
  })

  test('an undrawn staked auditor is refused not-drawn', async () => {
    const v = await ask(undrawn, A.digest, await sign(undrawn, A))
    assert.deepEqual(v.ok ? 'ok' : v.code, 'not-drawn')
    assert.match(v.ok ? '' : v.message, /is not the auditor drawn for job 0 of batch/)
  })

  test('the same signed request twice: the second is refused replayed', async () => {
    const access = await sign(drawn, A, { issuedAt: now - 1 })
    assert.equal(await code(drawn, A.digest, access), 'ok:auditor')
    assert.equal(await code(drawn, A.digest, access), 'replayed')
  })

  test('an old request (signed before the freshness window) and one from the future are refused stale', async () => {
    assert.equal(await code(drawn, A.digest, await sign(drawn, A, { issuedAt: now - ACCESS_MAX_AGE_S - 1 })), 'stale')
    assert.equal(await code(drawn, A.digest, await sign(drawn, A, { issuedAt: now + 3600 })), 'stale')
  })

  test('forged: signed by another key than the asking peer, or for other fields than those sent, or garbage: bad-signature', async () => {
    // the undrawn auditor's stream presents the drawn auditor's signature it lifted: the peer is not the signer
    assert.equal(await code(undrawn, A.digest, await sign(drawn, A, { issuedAt: now - 2 })), 'bad-signature')
    // the drawn auditor's peer with a signature made by the undrawn key
    assert.equal(await code(drawn, A.digest, await sign(undrawn, A, { issuedAt: now - 3 })), 'bad-signature')
    // signed for another provider: the provider recovers another address from its own fields
    assert.equal(await code(drawn, A.digest, await sign(drawn, A, { issuedAt: now - 4, provider: net.client.account.address })), 'bad-signature')
    const bogus = { ...(await sign(drawn, A, { issuedAt: now - 5 })), signature: `0x${'11'.repeat(65)}` as Hex }
    assert.equal(await code(drawn, A.digest, bogus), 'bad-signature')
  })

  test("the drawn auditor asking for another job: by its own job's place (wrong-job) or by the other job's (not-drawn)", async () => {
    assert.equal(await code(drawn, B.digest, await sign(drawn, { digest: B.digest, batchId: A.batchId })), 'wrong-job')
    assert.equal(await code(drawn, B.digest, await sign(drawn, B)), 'not-drawn')
    // a place with no job at all
    assert.equal(await code(drawn, A.digest, await sign(drawn, A, { index: 7 })), 'wrong-job')
  })

  test('malformed messages and unknown digests are refused; the gate keeps answering', async () => {
    for (const m of [undefined, { t: 'get', request: A.digest }, { t: 'get', request: 'nope', access: {} }, { t: 'x' }]) {
      const v = await gate.check(m, drawn.account.address)
      assert.equal(v.ok ? 'ok' : v.code, 'bad-message')
    }
    const unknown = h('no such job')
    assert.equal(await code(drawn, unknown, await signTranscriptAccess(drawn, net.d, { requestDigest: unknown, provider: net.provider.account.address, batchId: A.batchId, index: 0, issuedAt: now - 6 })), 'unknown-job')
    assert.equal(await code(drawn, A.digest, await sign(drawn, A, { issuedAt: now - 7 })), 'ok:auditor', 'still serving')
  })

  test('a no-show replaced by a redraw loses access; the redrawn auditor gets it', async () => {
    const p = await getAuditParams(net.deployer, net.d)
    // the drawn auditor leaves the list, so the redraw can only pick the other one
    await deregisterAuditor(drawn, net.d)
    await net.warp(p.commitWindow + p.beaconDelay + BigInt(net.d.params.beacon!.period))
    const at = { batchId: A.batchId, index: 0n }
    const round = await redrawRound(net.deployer, net.d, at)
    await redraw(net.deployer, net.d, { ...at, round, sig: toContractSig(beacon.sign(Number(round)).signature) })
    const as = await assignmentOf(net.deployer, net.d, at)
    assert.equal(as.auditor, undrawn.account.address)
    assert.equal(as.attempt, 1)
    assert.equal(await code(drawn, A.digest, await sign(drawn, A, { issuedAt: now - 8 })), 'not-drawn')
    assert.equal(await code(undrawn, A.digest, await sign(undrawn, A, { issuedAt: now - 8 })), 'ok:auditor')
  })

  test('a withholding provider (the test-only fault) refuses the drawn auditor forbidden, and still serves the client', async () => {
    const withholding = createTranscriptGate({ clients: net.provider, deployment: net.d, transcriptOf: async (d) => transcripts.get(d.toLowerCase()), clock: () => now, withhold: true })
    const v = await withholding.check({ t: 'get', request: B.digest, access: await sign(net.client, { digest: B.digest, batchId: 0n }, { issuedAt: now - 9 }) }, net.client.account.address)
    assert.ok(v.ok)
    const w = await withholding.check({ t: 'get', request: A.digest, access: await sign(undrawn, A, { issuedAt: now - 9 }) }, undrawn.account.address)
    assert.equal(w.ok ? 'ok' : w.code, 'forbidden')
  })
})
