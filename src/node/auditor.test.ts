// The auditor's service against real jobs on the embedded chain (a tiny llama Q8_0 model, 2
// layers): an honest job is found valid and never disputed; cheating providers (an op cheat, a
// sampled-token cheat, another prompt's answer) are disputed and slashed with the auditor's
// service and the provider's defence (node/defence.ts) driven by alternating ticks; both services
// dropped mid-game and rebuilt on the same store folders finish the same game (no second game, no
// second bond); an auditor killed between its open transaction and its record adopts the game it
// opened; a provider that stops defending is timed out by the auditor; a withheld transcript is
// `unavailable` and one of another prompt is `bad-transcript`, never replayed as valid. Transcripts
// are handed over in-process (no p2p).
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type Hex, toHex } from 'viem'
import { createDisputeDevnet } from '../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../test/support/disputeJobs.js'
import { WHY, getGame, isOver } from '../chain/actions/disputeGame.js'
import {
  AUDIT, CHALLENGE, assignmentOf, auditOwedTo, challengeOf, deregisterAuditor, getAuditParams, getDraw, registerAuditor,
} from '../chain/actions/audits.js'
import { getBalances, getStake, getTotals, stake } from '../chain/actions/settlement.js'
import { type DevBeacon, createDevBeacon, toContractSig } from '../chain/beacon.js'
import { DEV_BEACON_SEED, type JobRequest, type SettlementParams, read, requestDigest } from '../chain/client.js'
import { type Devnet, createDevnet } from '../chain/devnet.js'
import { type ServedJob, serveJob } from '../dispute/attack.js'
import type { CheatKind } from '../dispute/cheats.js'
import type { DisputeModel } from '../dispute/model.js'
import { type JobParams, paramsHash, tokensRoot } from '../trace/receipt.js'
import { type AuditRecord, type Auditor, type ClaimedJob, type JobTranscript, createAuditor } from './auditor.js'
import { cheatSeedOf } from './cheat.js'
import { type Defence, createDefence } from './defence.js'
import { type Store, openStore, sortableKey } from './store.js'

const PROMPT = [11, 250, 3]
const { seed: _seed, ...greedy } = GREEDY
const PARAMS: JobParams = { ...greedy, repeatPenalty: 1.3, repeatLastN: 4, maxTokens: 3, stop: [] }
const SEED = 5n
const COIN = 10n ** 18n

describe('auditor service: replays claimed jobs, disputes the cheats, resumes after a restart', () => {
  let model: DisputeModel
  let net: Awaited<ReturnType<typeof createDisputeDevnet>>
  let nonce = 0n
  const dirs: string[] = []
  const open: Store[] = []
  // every transcript a provider or client holds, by request digest
  const transcripts = new Map<Hex, JobTranscript>()
  before(async () => {
    model = await tinyDisputeModel('tiny', 'q8_0', 3)
    net = await createDisputeDevnet()
  })
  after(async () => {
    for (const s of open) await s.close()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
    await net?.close()
    model?.close()
  })
  const models = () => new Map([[model.tree.modelRoot, model]])
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'tessera-auditor-'))
    dirs.push(d)
    return d
  }
  const storeAt = async (dir: string) => {
    const s = await openStore(dir)
    open.push(s)
    return s
  }
  const closeStore = async (s: Store) => {
    await s.close()
    open.splice(open.indexOf(s), 1)
  }

  /** The provider serves one job (cheating by `kind`, seeded from the request digest as a `--cheat` node does) and claims it. */
  async function serve(kind?: CheatKind): Promise<{ j: ServedJob; digest: Hex; transcript: JobTranscript }> {
    await net.topUp()
    const n = nonce++
    const req: JobRequest = {
      provider: net.provider.account.address, modelRoot: model.tree.modelRoot, promptRoot: toHex(tokensRoot(PROMPT)), paramsHash: toHex(paramsHash(PARAMS)),
      seed: SEED, nonce: n, expiry: 2n ** 40n, maxTokens: PROMPT.length + PARAMS.maxTokens, pricePerToken: 10n ** 12n,
    }
    const digest = requestDigest(net.chain.chainId, net.d.settlement, req)
    const j = await serveJob({ net, model, job: { prompt: PROMPT, params: PARAMS, seed: SEED }, cheat: kind, seed: cheatSeedOf(digest), nonce: n })
    assert.equal(requestDigest(net.chain.chainId, net.d.settlement, j.item.req), digest, 'the request the test predicted')
    const transcript: JobTranscript = { prompt: PROMPT, params: PARAMS, output: j.served.outputs, requestDigest: digest }
    transcripts.set(digest, transcript)
    return { j, digest, transcript }
  }

  const auditorOn = (store: Store, batchId: bigint, fetch?: (job: ClaimedJob) => Promise<JobTranscript | undefined>): Auditor =>
    createAuditor({
      clients: net.auditor, deployment: net.d, store, models: models(), shouldAudit: (job) => job.batchId === batchId,
      transcripts: fetch ?? (async () => [...transcripts.values()].at(-1)),
    })
  const defenceOn = (store: Store, cheat?: CheatKind): Defence =>
    createDefence({ clients: net.provider, deployment: net.d, store, models: models(), transcriptOf: async (digest) => transcripts.get(digest), cheat })

  const gameCount = () => read<bigint>(net.deployer, net.d.disputeGame, 'DisputeGame', 'gameCount')
  const books = async () => {
    const p = await getBalances(net.deployer, net.d, net.provider.account.address)
    const a = await getBalances(net.deployer, net.d, net.auditor.account.address)
    return { stake: p.stake.active + p.stake.unbonding, auditorOwed: a.owed, auditorByGame: a.owedByGame }
  }

  /** Alternating ticks until `done` (bounded). */
  async function drive(services: { tick(): Promise<unknown> }[], done: () => Promise<boolean>, max = 300): Promise<number> {
    for (let i = 1; i <= max; i++) {
      for (const s of services) await s.tick()
      if (await done()) return i
    }
    throw new Error(`no end within ${max} rounds`)
  }

  test('an honest job: the audit is valid, no game is opened', async () => {
    const { j } = await serve()
    const games = await gameCount()
    const auditor = auditorOn(await storeAt(newDir()), j.batchId)
    const r = await auditor.tick()
    assert.equal(r.audited, 1)
    const a = await auditor.audit(j.batchId, 0)
    assert.equal(a?.state, 'valid')
    assert.equal(a?.ownRoot, a?.claimedRoot)
    assert.equal(a?.claimedRoot, j.item.traceRoot.toLowerCase())
    await auditor.tick()
    assert.equal(await gameCount(), games, 'no game')
  })

  for (const kind of ['silu', 'sample', 'prompt'] as const) {
    test(`a provider cheating by ${kind}: the auditor disputes, the defence loses, the provider is slashed and the auditor paid`, async () => {
      const { j } = await serve(kind)
      const games = await gameCount()
      const before = await books()
      const auditor = auditorOn(await storeAt(newDir()), j.batchId)
      const defence = defenceOn(await storeAt(newDir()), kind)
      await drive([auditor, defence], async () => ['won', 'lost'].includes((await auditor.audit(j.batchId, 0))?.state ?? ''))
      const a = (await auditor.audit(j.batchId, 0))!
      assert.equal(a.state, 'won', JSON.stringify(a))
      assert.notEqual(a.ownRoot, a.claimedRoot)
      assert.equal(await gameCount(), games + 1n, 'exactly one game')
      const g = await getGame(net.deployer, net.d, { gameId: BigInt(a.gameId!) })
      assert.equal(g.provider, net.provider.account.address)
      // the defence saw its end too (its next tick records it)
      await defence.tick()
      const dRec = await defence.dispute(BigInt(a.gameId!))
      assert.equal(dRec?.state, 'lost')
      assert.notEqual(dRec?.result?.why, WHY.TIMED_OUT, `the machine decided (${dRec?.stuck ?? ''})`)
      const after = await books()
      assert.ok(after.stake < before.stake, 'the cheater is slashed')
      assert.ok(after.auditorOwed > before.auditorOwed, 'the auditor is paid the slash reward')
      assert.ok(after.auditorByGame - before.auditorByGame >= BigInt(net.d.params.game.challengerBond), 'and gets its bond back')
      const mine = await auditor.dispute(BigInt(a.gameId!))
      assert.equal(mine?.state, 'won')
      assert.equal(BigInt(mine!.result!.reward), after.auditorOwed - before.auditorOwed, 'the recorded reward is what the settlement owes it')
    })
  }

  test('restart during a dispute: both services dropped after a few moves and rebuilt on their store folders finish the same game', async () => {
    const { j } = await serve('att')
    const games = await gameCount()
    const before = await books()
    const aDir = newDir()
    const dDir = newDir()
    let aStore = await storeAt(aDir)
    let dStore = await storeAt(dDir)
    let auditor = auditorOn(aStore, j.batchId)
    let defence = defenceOn(dStore, 'att')
    let moves = 0
    for (let i = 0; i < 50 && moves < 6; i++) {
      moves += (await auditor.tick()).moves
      moves += (await defence.tick()).moves
    }
    const a0 = (await auditor.audit(j.batchId, 0))!
    assert.equal(a0.state, 'disputed')
    const gameId = BigInt(a0.gameId!)
    assert.ok(moves >= 6, `${moves} moves made`)
    assert.ok(!isOver(await getGame(net.deployer, net.d, { gameId })), 'mid-game')

    // both processes die; new ones open the same folders
    await closeStore(aStore)
    await closeStore(dStore)
    aStore = await storeAt(aDir)
    dStore = await storeAt(dDir)
    auditor = auditorOn(aStore, j.batchId)
    defence = defenceOn(dStore, 'att')
    assert.equal((await auditor.audit(j.batchId, 0))?.gameId, gameId.toString(), 'the game is in the store')
    await drive([auditor, defence], async () => ['won', 'lost'].includes((await auditor.audit(j.batchId, 0))?.state ?? ''))
    assert.equal((await auditor.audit(j.batchId, 0))?.state, 'won')
    await defence.tick()
    assert.equal((await defence.dispute(gameId))?.state, 'lost')
    assert.equal(await gameCount(), games + 1n, 'no second game')
    const after = await books()
    assert.ok(after.stake < before.stake, 'the cheater is slashed')
    assert.ok(after.auditorOwed > before.auditorOwed, 'the auditor is paid')
  })

  test('killed between its open transaction and the record: the restarted auditor adopts the game it opened, no second bond', async () => {
    const { j } = await serve('silu')
    const games = await gameCount()
    const dir = newDir()
    let store = await storeAt(dir)
    await auditorOn(store, j.batchId).tick()
    const audits = store.sublevel<AuditRecord>('audits')
    const opened = (await audits.get(`${j.batchId}:0`))!
    assert.equal(opened.state, 'disputed')
    assert.equal(await gameCount(), games + 1n)
    // the crash: the transaction is mined, the record still says `opening`, the dispute is not written
    await audits.put(`${j.batchId}:0`, { ...opened, state: 'opening', gameId: undefined })
    await store.sublevel('disputes').del(sortableKey(BigInt(opened.gameId!)))
    await closeStore(store)
    store = await storeAt(dir)
    const auditor = auditorOn(store, j.batchId)
    const bonds = (await getTotals(net.deployer, net.d)).bonds
    await auditor.tick()
    const a = (await auditor.audit(j.batchId, 0))!
    assert.equal(a.state, 'disputed')
    assert.equal(a.gameId, opened.gameId, 'the same game')
    assert.equal(await gameCount(), games + 1n, 'no second game')
    assert.equal((await getTotals(net.deployer, net.d)).bonds, bonds, 'no second bond paid')
    assert.equal((await auditor.dispute(BigInt(a.gameId!)))?.state, 'open', 'the dispute record is written again')
    // play it out so that later tests' defences find no open game
    await drive([auditor, defenceOn(await storeAt(newDir()), 'silu')], async () => (await auditor.audit(j.batchId, 0))?.state === 'won')
  })

  test('a provider that stops defending is timed out by the auditor once its clock has run out', async () => {
    const { j } = await serve('silu')
    const before = await books()
    const auditor = auditorOn(await storeAt(newDir()), j.batchId)
    await auditor.tick()
    const a = (await auditor.audit(j.batchId, 0))!
    assert.equal(a.state, 'disputed')
    const gameId = BigInt(a.gameId!)
    let r = await auditor.tick()
    assert.equal(r.moves, 0, "the provider's turn: nothing to do while its clock runs")
    await net.warp(BigInt(net.d.params.game.clock) + 1n)
    r = await auditor.tick()
    assert.equal(r.moves, 1, 'timeout')
    await auditor.tick()
    const rec = await auditor.dispute(gameId)
    assert.equal(rec?.state, 'won')
    assert.equal(rec?.result?.why, WHY.TIMED_OUT)
    assert.equal((await auditor.audit(j.batchId, 0))?.state, 'won')
    const after = await books()
    assert.ok(after.stake < before.stake, 'slashed')
    assert.equal(BigInt(rec!.result!.reward), after.auditorOwed - before.auditorOwed)
  })

  test("the auditor never audits its own provider's jobs", async () => {
    const { j } = await serve('silu')
    let asked = 0
    const self = createAuditor({
      clients: net.provider, deployment: net.d, store: await storeAt(newDir()), models: models(), shouldAudit: (job) => job.batchId === j.batchId,
      transcripts: async () => {
        asked++
        return undefined
      },
    })
    await self.tick()
    assert.equal(await self.audit(j.batchId, 0), undefined)
    assert.equal(asked, 0)
  })

  test('a withheld transcript is recorded unavailable; nothing is opened', async () => {
    const { j } = await serve('silu')
    const games = await gameCount()
    let asked = 0
    const auditor = auditorOn(await storeAt(newDir()), j.batchId, async (job) => {
      asked++
      assert.equal(job.provider, net.provider.account.address)
      assert.equal(job.requestDigest, requestDigest(net.chain.chainId, net.d.settlement, j.item.req), 'asked by the request digest')
      return undefined
    })
    await auditor.tick()
    await auditor.tick()
    assert.equal(asked, 1, 'asked once; the verdict is final')
    assert.equal((await auditor.audit(j.batchId, 0))?.state, 'unavailable')
    assert.equal(await gameCount(), games)
  })

  test('a transcript that is not the claimed job (another prompt, outputs, params or request) is refused, not replayed', async () => {
    const { j, transcript, digest } = await serve()
    const games = await gameCount()
    const other = [7, 250, 3]
    const forged: [string, JobTranscript][] = [
      ['prompt', { ...transcript, prompt: other }],
      ['prompt', { ...transcript, prompt: [...PROMPT, 9] }],
      ['output', { ...transcript, output: [...transcript.output.slice(0, -1), (transcript.output.at(-1)! + 1) % 256] }],
      ['params', { ...transcript, params: { ...PARAMS, repeatPenalty: 1 } }],
      ['request', { ...transcript, requestDigest: `0x${'11'.repeat(32)}` as Hex }],
    ]
    for (const [what, t] of forged) {
      const auditor = auditorOn(await storeAt(newDir()), j.batchId, async () => t)
      await auditor.tick()
      const a = (await auditor.audit(j.batchId, 0))!
      assert.equal(a.state, 'bad-transcript', what)
      assert.match(a.reason ?? '', new RegExp(what), what)
      assert.equal(a.ownRoot, undefined, `${what}: not replayed`)
    }
    assert.equal(await gameCount(), games)
    assert.equal(digest, transcript.requestDigest)
  })
})

describe('drawn audits (Audits.sol): the auditor draws, commits, reveals, disputes and settles by itself', () => {
  let model: DisputeModel
  let net: Devnet
  let beacon: DevBeacon
  let nonce = 0n
  const dirs: string[] = []
  const open: Store[] = []
  const transcripts = new Map<Hex, JobTranscript>()
  before(async () => {
    model = await tinyDisputeModel('tiny', 'q8_0', 3)
    // every job drawn (p = 1), a premium that pays audits
    net = await createDevnet({ settlement: { auditBps: 10_000, premiumBps: 1_000 } as Partial<SettlementParams> })
    const b = net.d.params.beacon!
    beacon = createDevBeacon({ seed: DEV_BEACON_SEED, genesisTime: Number(b.genesisTime), period: Number(b.period) })
    await stake(net.auditor, net.d, { role: 'auditor', amount: COIN })
    await registerAuditor(net.auditor, net.d)
    await net.warp(1)
  })
  after(async () => {
    for (const s of open) await s.close()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
    await net?.close()
    model?.close()
  })
  const storeAt = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-auditor-'))
    dirs.push(dir)
    const s = await openStore(dir)
    open.push(s)
    return s
  }
  // each test's auditor follows the chain from its own job's claim on (a node's fresh store would catch up on every earlier draw)
  let since = 0n
  const auditorOn = (store: Store, fetch?: () => Promise<JobTranscript | undefined>) =>
    createAuditor({
      clients: net.auditor, deployment: net.d, store, models: new Map([[model.tree.modelRoot, model]]), since,
      transcripts: fetch ?? (async () => [...transcripts.values()].at(-1)),
      beaconRound: async (round) => toContractSig(beacon.sign(Number(round)).signature),
    })
  const defenceOn = async (cheat?: CheatKind) =>
    createDefence({ clients: net.provider, deployment: net.d, store: await storeAt(), models: new Map([[model.tree.modelRoot, model]]), transcriptOf: async (digest) => transcripts.get(digest), cheat })

  async function serve(kind?: CheatKind): Promise<ServedJob> {
    since = (await net.deployer.public.getBlockNumber()) + 1n
    const n = nonce++
    const req: JobRequest = {
      provider: net.provider.account.address, modelRoot: model.tree.modelRoot, promptRoot: toHex(tokensRoot(PROMPT)), paramsHash: toHex(paramsHash(PARAMS)),
      seed: SEED, nonce: n, expiry: 2n ** 40n, maxTokens: PROMPT.length + PARAMS.maxTokens, pricePerToken: 10n ** 12n,
    }
    const digest = requestDigest(net.chain.chainId, net.d.settlement, req)
    const j = await serveJob({ net, model, job: { prompt: PROMPT, params: PARAMS, seed: SEED }, cheat: kind, seed: cheatSeedOf(digest), nonce: n })
    transcripts.set(digest, { prompt: PROMPT, params: PARAMS, output: j.served.outputs, requestDigest: digest })
    return j
  }

  /** Ticks the auditor (and the defence) until the job's audit record satisfies `ok` (bounded). */
  async function until(services: { tick(): Promise<unknown> }[], auditor: Auditor, j: ServedJob, ok: (a: AuditRecord) => boolean, max = 300) {
    for (let i = 0; i < max; i++) {
      for (const s of services) {
        const r = (await s.tick()) as { errors?: { error: unknown }[] }
        assert.deepEqual(r.errors ?? [], [], 'no step failed')
      }
      const a = await auditor.audit(j.batchId, 0)
      if (a && ok(a)) return a
    }
    throw new Error(`audit of batch ${j.batchId} not there within ${max} rounds: ${JSON.stringify(await auditor.audit(j.batchId, 0))}`)
  }
  const params = () => getAuditParams(net.deployer, net.d)
  const paid = () => auditOwedTo(net.deployer, net.d, { account: net.auditor.account.address })
  const stakeOf = async () => {
    const s = await getStake(net.deployer, net.d, net.provider.account.address)
    return s.active + s.unbonding
  }

  test('an honest job: drawn when its beacon round is out, committed, revealed valid with the drawn leaf, settled and paid', async () => {
    const j = await serve()
    const auditor = auditorOn(await storeAt())
    await auditor.tick()
    assert.equal((await getDraw(net.deployer, net.d, { batchId: j.batchId })).drawnAt, 0n, 'the round is not out yet: no draw')
    const p = await params()
    await net.warp(p.beaconDelay + BigInt(net.d.params.beacon!.period))
    const a = await until([auditor], auditor, j, (r) => r.duty?.step === 'settle')
    assert.equal(a.state, 'valid')
    const as = await assignmentOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })
    assert.equal(as.status, AUDIT.VALID)
    assert.equal(as.auditor, net.auditor.account.address)
    const before = await paid()
    await net.warp(p.commitWindow + p.revealWindow + p.canaryWindow)
    const done = await until([auditor], auditor, j, (r) => r.duty?.step === 'done')
    assert.ok(BigInt(done.duty!.fee!) > 0n, 'a fee')
    assert.equal(await paid(), before + BigInt(done.duty!.fee!) + p.auditorBond, 'fee and bond owed to the auditor')
  })

  test('a cheating job: committed, disputed, revealed invalid with the game, won with the provider slashed, and the audit paid', async () => {
    const j = await serve('silu')
    const before = await stakeOf()
    const auditor = auditorOn(await storeAt())
    const defence = await defenceOn('silu')
    const p = await params()
    await auditor.tick()
    await net.warp(p.beaconDelay + BigInt(net.d.params.beacon!.period))
    const a = await until([auditor, defence], auditor, j, (r) => r.state === 'won' || r.state === 'lost')
    assert.equal(a.state, 'won')
    assert.equal((await assignmentOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })).status, AUDIT.INVALID)
    assert.ok((await stakeOf()) < before, 'slashed')
    await net.warp(p.commitWindow + p.revealWindow + p.canaryWindow)
    const done = await until([auditor], auditor, j, (r) => r.duty?.step === 'done')
    assert.ok(BigInt(done.duty!.fee!) > 0n)
  })

  test('a withheld transcript: the drawn auditor challenges availability, and the silent provider is slashed', async () => {
    const j = await serve()
    const before = await stakeOf()
    const auditor = auditorOn(await storeAt(), async () => undefined)
    const p = await params()
    await auditor.tick()
    await net.warp(p.beaconDelay + BigInt(net.d.params.beacon!.period))
    await until([auditor], auditor, j, (r) => r.state === 'challenged')
    assert.equal((await challengeOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })).status, CHALLENGE.OPEN)
    await net.warp(p.answerWindow + 1n)
    await until([auditor], auditor, j, (r) => r.state === 'withheld')
    assert.equal((await assignmentOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })).status, AUDIT.DRAWN, 'nothing replayed, nothing committed')
    assert.equal((await until([auditor], auditor, j, (r) => r.duty?.step === 'missed')).duty?.reason, 'nothing replayed (withheld)')
    assert.equal((await challengeOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })).status, CHALLENGE.SLASHED)
    assert.ok((await stakeOf()) < before, 'the withholding provider is slashed')
  })

  test("an availability challenge answered by the provider's defence: the transcript is posted, the auditor fetches it again and audits", async () => {
    const j = await serve()
    const before = await stakeOf()
    let asks = 0
    const auditor = auditorOn(await storeAt(), async () => (asks++ === 0 ? undefined : [...transcripts.values()].at(-1)))
    const defence = await defenceOn()
    const p = await params()
    await auditor.tick()
    await net.warp(p.beaconDelay + BigInt(net.d.params.beacon!.period))
    await until([auditor], auditor, j, (r) => r.state === 'challenged')
    const r = await defence.tick()
    assert.equal(r.answered, 1, 'the defence posted the transcript')
    assert.equal((await challengeOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })).status, CHALLENGE.ANSWERED)
    const a = await until([auditor, defence], auditor, j, (x) => x.duty?.step === 'settle')
    assert.equal(a.state, 'valid')
    assert.equal(asks, 2)
    assert.equal(await stakeOf(), before, 'an answered challenge costs the honest provider nothing')
  })

  test('a drawn auditor that does not show up: the running auditor redraws the job after the commit deadline', async () => {
    // the only listed auditor from here on is account 5, which never commits
    const lazy = net.at(5)
    await stake(lazy, net.d, { role: 'auditor', amount: COIN })
    await registerAuditor(lazy, net.d)
    await deregisterAuditor(net.auditor, net.d)
    await net.warp(1)
    const j = await serve()
    const auditor = auditorOn(await storeAt())
    const p = await params()
    await auditor.tick()
    await net.warp(p.beaconDelay + BigInt(net.d.params.beacon!.period))
    await auditor.tick()
    await auditor.tick()
    const first = await assignmentOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })
    assert.equal(first.auditor, lazy.account.address)
    assert.equal(first.attempt, 0)
    assert.equal(await auditor.audit(j.batchId, 0), undefined, 'not drawn for this auditor: nothing to audit')
    assert.equal((await auditor.tick()).audits, 0, 'no redraw before the deadline')
    await net.warp(p.commitWindow + p.beaconDelay + BigInt(net.d.params.beacon!.period))
    const r = await auditor.tick()
    assert.deepEqual(r.errors, [])
    assert.equal(r.audits, 1, 'the redraw')
    const second = await assignmentOf(net.deployer, net.d, { batchId: j.batchId, index: 0n })
    assert.equal(second.attempt, 1)
    assert.equal(second.status, AUDIT.DRAWN)
  })
})
