// The provider's defence against lying challengers on the embedded chain (a tiny llama Q8_0 model,
// 2 layers): a challenger that disputes correct positions (seeded picks, or a wrong replay of its
// own) loses to the honest provider's defence, also when the defence is dropped mid-game and
// rebuilt on its store folder; a challenger that stops moving is timed out by the defence; a game
// on another provider's job is none of its business; a provider that lost its transcript cannot
// defend, says so, and loses on the clock. The liar is the one challenger player with `lie`
// (src/dispute/players/challenger.ts), moved in-process between the defence's ticks.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Hex } from 'viem'
import { createDisputeDevnet } from '../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../test/support/disputeJobs.js'
import { WHY, getGame, isOver, openGame, timeout } from '../chain/actions/disputeGame.js'
import { claimBatch, deposit, getBalances, stake } from '../chain/actions/settlement.js'
import { batchLeaf, batchTree, requestDigest } from '../chain/client.js'
import { makeItem, makeRequest } from '../chain/devnet.js'
import { type ServedJob, jobSpecOf, serveJob } from '../dispute/attack.js'
import { type CheatKind, seededRng, wrongReplay } from '../dispute/cheats.js'
import type { DisputeModel } from '../dispute/model.js'
import { createChallenger } from '../dispute/players/challenger.js'
import type { Player } from '../dispute/players/defender.js'
import { replayJob } from '../dispute/replay.js'
import { createReplayTraceProvider } from '../dispute/traceProvider.js'
import type { JobParams } from '../trace/receipt.js'
import type { JobTranscript } from './auditor.js'
import { runEvery } from './chainWatch.js'
import { type Defence, createDefence } from './defence.js'
import { type Store, openStore } from './store.js'

const PROMPT = [11, 250, 3]
const { seed: _seed, ...greedy } = GREEDY
const PARAMS: JobParams = { ...greedy, repeatPenalty: 1.3, repeatLastN: 4, maxTokens: 3, stop: [] }
const COIN = 10n ** 18n

describe('defence service: the honest provider defends every game on its jobs', () => {
  let model: DisputeModel
  let net: Awaited<ReturnType<typeof createDisputeDevnet>>
  let nonce = 0n
  const dirs: string[] = []
  const open: Store[] = []
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
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'tessera-defence-'))
    dirs.push(d)
    return d
  }
  const storeAt = async (dir: string) => {
    const s = await openStore(dir)
    open.push(s)
    return s
  }
  const defenceOn = (store: Store, transcriptOf = async (digest: Hex) => transcripts.get(digest), cheat?: CheatKind): Defence =>
    createDefence({ clients: net.provider, deployment: net.d, store, models: new Map([[model.tree.modelRoot, model]]), transcriptOf, cheat })

  /** The honest provider serves and claims one job; its transcript is stored under the request digest. */
  async function serve(): Promise<ServedJob> {
    await net.topUp()
    const j = await serveJob({ net, model, job: { prompt: PROMPT, params: PARAMS, seed: 5n }, seed: 1, nonce: nonce++ })
    transcripts.set(requestDigest(net.chain.chainId, net.d.settlement, j.item.req), { prompt: PROMPT, params: PARAMS, output: j.served.outputs })
    return j
  }

  /** A challenger (account 3) opens a game on `j` and plays it lying: seeded picks, or its own wrong replay. */
  async function liar(j: ServedJob, how: 'picks' | 'replay', seed: number): Promise<Player> {
    const { gameId } = await openGame(net.challenger, net.d, { ...j.open, bond: BigInt(net.d.params.game.challengerBond) })
    const trace = how === 'replay'
      ? wrongReplay(model, j.spec, j.honest, j.served.outputs, seed)
      : createReplayTraceProvider(model, replayJob(model.tf, jobSpecOf(model, { prompt: PROMPT, params: PARAMS, seed: 5n }), { forced: j.served.outputs }))
    return createChallenger({
      clients: net.challenger, deployment: net.d, gameId, trace, depthBond: BigInt(net.d.params.game.depthBond),
      lie: how === 'picks' ? { rng: seededRng(seed * 31 + 7) } : undefined,
    })
  }

  /** The liar and the defence take turns until the game is over (bounded). */
  async function play(p: Player, defence: () => Defence, maxRounds = 200, stopAfter?: number): Promise<number> {
    let moves = 0
    for (let i = 0; i < maxRounds; i++) {
      if (await p.act()) moves++
      moves += (await defence().tick()).moves
      if (isOver(await getGame(net.deployer, net.d, { gameId: p.gameId }))) return moves
      if (stopAfter !== undefined && moves >= stopAfter) return moves
    }
    throw new Error(`game ${p.gameId} did not end within ${maxRounds} rounds`)
  }

  const stakeOf = async () => {
    const b = await getBalances(net.deployer, net.d, net.provider.account.address)
    return { stake: b.stake.active + b.stake.unbonding, byGame: b.owedByGame }
  }

  for (const [how, seed] of [['picks', 3], ['replay', 4]] as const) {
    test(`a lying challenger (${how}) loses to the honest provider's defence`, async () => {
      const j = await serve()
      const before = await stakeOf()
      const p = await liar(j, how, seed)
      const defence = defenceOn(await storeAt(newDir()))
      await play(p, () => defence)
      await defence.tick()
      const rec = await defence.dispute(p.gameId)
      assert.equal(rec?.role, 'provider')
      assert.equal(rec?.state, 'won', JSON.stringify(rec))
      assert.equal(rec?.result?.why, WHY.STEP_CHECKED, 'the machine confirmed the provider')
      const after = await stakeOf()
      assert.equal(after.stake, before.stake, 'the honest provider keeps its stake')
      assert.ok(after.byGame > before.byGame, "and earns a share of the liar's bond")
    })
  }

  test('a node restarted with --cheat still defends the honest job it served before: it plays the trace with the claimed root', async () => {
    const j = await serve()
    const p = await liar(j, 'picks', 11)
    const defence = defenceOn(await storeAt(newDir()), undefined, 'silu')
    await play(p, () => defence)
    await defence.tick()
    assert.equal((await defence.dispute(p.gameId))?.state, 'won')
  })

  test('the defence dropped mid-game and rebuilt on its store folder resumes and wins', async () => {
    const j = await serve()
    const dir = newDir()
    let store = await storeAt(dir)
    let defence = defenceOn(store)
    const p = await liar(j, 'picks', 9)
    const moves = await play(p, () => defence, 200, 8)
    assert.ok(moves >= 8 && !isOver(await getGame(net.deployer, net.d, { gameId: p.gameId })), 'mid-game')
    await store.close()
    open.splice(open.indexOf(store), 1)
    store = await storeAt(dir)
    defence = defenceOn(store)
    assert.equal((await defence.dispute(p.gameId))?.state, 'open', 'the game is in the store')
    await play(p, () => defence)
    await defence.tick()
    assert.equal((await defence.dispute(p.gameId))?.state, 'won')
  })

  test('a challenger that stops moving is timed out by the defence', async () => {
    const j = await serve()
    const { gameId } = await openGame(net.challenger, net.d, { ...j.open, bond: BigInt(net.d.params.game.challengerBond) })
    const defence = defenceOn(await storeAt(newDir()))
    assert.equal((await defence.tick()).moves, 1, 'the first reveal')
    assert.equal((await defence.tick()).moves, 0, "the challenger's turn, its clock running")
    await net.warp(BigInt(net.d.params.game.clock) + 1n)
    assert.equal((await defence.tick()).moves, 1, 'timeout')
    await defence.tick()
    const rec = await defence.dispute(gameId)
    assert.equal(rec?.state, 'won')
    assert.equal(rec?.result?.why, WHY.TIMED_OUT)
  })

  test("a game on another provider's job is not this defence's", async () => {
    const other = net.at(5)
    await stake(other, net.d, { role: 'provider', amount: 10n * COIN })
    await deposit(net.client, net.d, { amount: COIN })
    const item = await makeItem(net, net.client, makeRequest(net, { provider: other.account.address, nonce: 10_000n }), { nPrompt: 3, nOutput: 2 })
    const { batchId } = await claimBatch(other, net.d, { items: [item] })
    const proof = batchTree([batchLeaf(net.chain.chainId, net.d.settlement, item, net.client.account.address)]).proof(0)
    const { gameId } = await openGame(net.challenger, net.d, { batchId, jobIndex: 0n, item, client: net.client.account.address, proof, bond: BigInt(net.d.params.game.challengerBond) })
    const defence = defenceOn(await storeAt(newDir()))
    const r = await defence.tick()
    assert.ok(r.seen >= 1, 'it saw the game opened')
    assert.equal(await defence.dispute(gameId), undefined, 'and left it alone')
    assert.equal(r.moves, 0)
    // its own provider's clock ends it
    await net.warp(BigInt(net.d.params.game.clock) + 1n)
    await timeout(net.deployer, net.d, { gameId })
  })

  test('a provider without the transcript cannot defend: it records why and loses on the clock', async () => {
    const j = await serve()
    const { gameId } = await openGame(net.challenger, net.d, { ...j.open, bond: BigInt(net.d.params.game.challengerBond) })
    const defence = defenceOn(await storeAt(newDir()), async () => undefined)
    await defence.tick()
    assert.equal((await defence.dispute(gameId))?.stuck, 'no transcript')
    await net.warp(BigInt(net.d.params.game.clock) + 1n)
    await timeout(net.deployer, net.d, { gameId })
    await defence.tick()
    const rec = await defence.dispute(gameId)
    assert.equal(rec?.state, 'lost')
    assert.equal(rec?.result?.why, WHY.TIMED_OUT)
  })
})

test('runEvery: a role loop ticks every pollMs, survives a failing tick and stops on abort', async () => {
  const ac = new AbortController()
  let ticks = 0
  const errors: unknown[] = []
  const loop = runEvery(
    async () => {
      if (++ticks === 2) throw new Error('one bad tick')
    },
    { pollMs: 5, signal: ac.signal, onError: (e) => errors.push(e) },
  )
  await new Promise((r) => setTimeout(r, 60))
  ac.abort()
  const t0 = Date.now()
  await loop
  assert.ok(Date.now() - t0 < 50, 'stops at once')
  assert.ok(ticks >= 3, `${ticks} ticks`)
  assert.equal(errors.length, 1)
  const n = ticks
  await new Promise((r) => setTimeout(r, 20))
  assert.equal(ticks, n, 'no tick after the abort')
})
