// Bad moves get named reverts: one real game (a tiny llama job whose provider falsified one
// attention output) is played by the players to its end, and at every phase the wrong moves are
// tried first through the typed actions (src/chain/actions/disputeGame.ts): the wrong mover, the
// wrong phase, a wrong bond, children that do not hash to the node, a choice outside the tree, a
// pre-leaf with a wrong proof, an expansion of the wrong size or with the wrong config, a slot with
// the wrong path, an element outside the slot, a micro-state that is not the agreed one, and a
// move after the mover's clock ran out. Each reverts with its custom error's name and changes
// nothing: the game still ends with the cheater's loss.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Hex, toHex } from 'viem'
import { stride } from '../../chain/bisection.js'
import {
  PHASE, choose, enterOp, expandElement, expandOps, getGame, nameElement, openGame, resolution, reveal, revealChunk, revealPre, revealedChildren, stepMicro, stepOp, timeout,
} from '../../chain/actions/disputeGame.js'
import { claimBatch, deposit, reserve } from '../../chain/actions/settlement.js'
import { ContractRevertError, batchLeaf, batchTree, requestDigest, signDelivery, signJobRequest } from '../../chain/client.js'
import { registerTree } from '../../chain/devnet.js'
import { paramsHash, tokensRoot } from '../../trace/receipt.js'
import { createDisputeDevnet } from '../../../test/support/disputeDevnet.js'
import { GREEDY, tinyDisputeModel } from '../../../test/support/disputeJobs.js'
import { jobSpecOf } from '../attack.js'
import { makeCheat } from '../cheats.js'
import type { DisputeModel } from '../model.js'
import { replayJob } from '../replay.js'
import { createReplayTraceProvider } from '../traceProvider.js'
import { expansionOf, hex } from '../tree.js'
import { createChallenger } from './challenger.js'
import { createDefender, gameCfg, levelOf, microStateArg } from './defender.js'

let model: DisputeModel
let net: Awaited<ReturnType<typeof createDisputeDevnet>>
before(async () => {
  model = await tinyDisputeModel('tiny', 'q8_0', 3)
  net = await createDisputeDevnet()
})
after(async () => {
  await net?.close()
  model?.close()
})

async function reverts(p: Promise<unknown>, errorName: string, what: string) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ContractRevertError, `${what}: ${String(e)}`)
    assert.equal(e.errorName, errorName, what)
    return true
  })
}

test('every bad move reverts by name and the game still ends with the cheater\'s loss', async () => {
  const { d, provider, client, auditor } = net
  const params = { ...GREEDY, maxTokens: 3, stop: [] }
  const job = { prompt: [11, 250, 3], params, seed: 0n }
  const spec = jobSpecOf(model, job)
  const honest = replayJob(model.tf, spec)
  const cheat = makeCheat(model, spec, honest, 'att', 3)
  const mine = cheat.provider
  const theirs = createReplayTraceProvider(model, replayJob(model.tf, spec, { forced: cheat.trace.outputs }))
  await registerTree(net, model.tree)

  const price = 10n ** 12n
  const req = {
    provider: provider.account.address, modelRoot: model.tree.modelRoot, promptRoot: toHex(tokensRoot(job.prompt)), paramsHash: toHex(paramsHash(params)),
    seed: 0n, nonce: 0n, expiry: 2n ** 40n, maxTokens: job.prompt.length + params.maxTokens, pricePerToken: price,
  }
  await deposit(client, d, { amount: price * BigInt(req.maxTokens) })
  const sig = await signJobRequest(client, d.settlement, req)
  await reserve(provider, d, { req, ...sig })
  const outputRoot = toHex(tokensRoot(cheat.trace.outputs))
  const ack = await signDelivery(client, d.settlement, { request: requestDigest(net.chain.chainId, d.settlement, req), nOutput: cheat.trace.outputs.length, outputRoot })
  const item = { req, ...sig, outputRoot, traceRoot: hex(mine.traceTree().root), nPrompt: 3, nOutput: cheat.trace.outputs.length, nLayer: model.config.nLayer, ack }
  const { batchId } = await claimBatch(provider, d, { items: [item] })
  const proof = batchTree([batchLeaf(net.chain.chainId, d.settlement, item, client.account.address)]).proof(0)
  const bond = BigInt(d.params.game.challengerBond)
  const depthBond = BigInt(d.params.game.depthBond)
  const open = { batchId, jobIndex: 0n, item, client: client.account.address, proof }
  await reverts(openGame(auditor, d, { ...open, bond: bond - 1n }), 'BondMismatch', 'open with the wrong bond')
  const { gameId } = await openGame(auditor, d, { ...open, bond })

  const cfg = gameCfg(model, params)
  const defender = createDefender({ clients: provider, deployment: d, gameId, trace: mine, cfg })
  const challenger = createChallenger({ clients: auditor, deployment: d, gameId, trace: theirs, depthBond })
  const seen = new Set<string>()
  const once = (key: string) => !seen.has(key) && seen.add(key)
  const zero: Hex = `0x${'0'.repeat(64)}`

  for (let i = 0; i < 100; i++) {
    const g = await getGame(provider, d, { gameId })
    if (g.phase === PHASE.PROVIDER_WON || g.phase === PHASE.CHALLENGER_WON) break
    const tree = levelOf(mine, g)
    if (g.phase === PHASE.REVEAL && once(`reveal${g.level}`)) {
      const children = tree.children(tree.depth - g.depthLeft, g.index, stride(g.depthLeft)).map(hex)
      await reverts(reveal(auditor, d, { gameId, children }), 'NotYourTurn', 'the challenger reveals')
      await reverts(reveal(provider, d, { gameId, children: [...children.slice(1), children[0]] }), 'BadReveal', 'children in another order')
      await reverts(choose(auditor, d, { gameId, children, choice: 0n }), 'WrongPhase', 'a choice before the reveal')
    } else if (g.phase === PHASE.CHOOSE && once(`choose${g.level}`)) {
      const children = await revealedChildren(auditor, d, { gameId })
      const due = g.level > g.bondedLevel ? depthBond : 0n
      await reverts(choose(auditor, d, { gameId, children, choice: 0n, bond: due + 1n }), 'BondMismatch', `level ${g.level}: a wrong bond`)
      await reverts(choose(auditor, d, { gameId, children, choice: BigInt(children.length), bond: due || undefined }), 'BadChoice', 'a child outside the reveal')
      await reverts(choose(provider, d, { gameId, children, choice: 0n, bond: due || undefined }), 'NotYourTurn', 'the provider chooses')
    } else if (g.phase === PHASE.REVEAL_PRE && once(`pre${g.level}`)) {
      const j = Number(g.index) - 1
      await reverts(revealPre(provider, d, { gameId, preLeaf: hex(tree.leaves[j]), proof: tree.proof(j + 1).map(hex) }), 'BadProof', 'a pre-leaf with another leaf\'s path')
    } else if (g.phase === PHASE.EXPAND && g.level === 0 && once('expandOps')) {
      const e = expansionOf(mine.transition(Number(g.index)).opTree())
      await reverts(expandOps(provider, d, { gameId, cfg, expansion: { ...e, lastLeaf: e.lastLeaf - 1n, proofLast: e.proofFirst } }), 'WrongLeafCount', 'one op too few')
      const other = { ...cfg, sampling: { ...cfg.sampling, repeatLastN: cfg.sampling.repeatLastN + 1 } }
      await reverts(expandOps(provider, d, { gameId, cfg: other, expansion: e }), 'BadPreimage', 'sampling the client did not sign')
      await reverts(expandOps(provider, d, { gameId, cfg, expansion: { ...e, root: zero } }), 'BadProof', 'a root its leaves do not prove')
    } else if (g.phase === PHASE.EXPAND && g.level === 1 && g.elemCount === 0n && once('enterOp')) {
      const slot = mine.transition(Number(g.traceLeaf)).slot(Number(g.index))
      await reverts(enterOp(provider, d, { gameId, cfg, slotRoot: hex(slot.root), path: slot.path.map(() => zero) }), 'BadProof', 'a slot with a wrong frame path')
      await reverts(stepOp(provider, d, { gameId, cfg, proof: '0x' }), 'WrongStepKind', 'a one-step proof for an op with elements')
    } else if (g.phase === PHASE.CHUNK && once('chunk')) {
      await reverts(revealChunk(provider, d, { gameId, chunk: '0x00000000' }), 'BadPreimage', 'a chunk that is not the reached leaf')
      await reverts(revealChunk(auditor, d, { gameId, chunk: '0x00000000' }), 'NotYourTurn', 'the challenger reveals a chunk')
    } else if (g.phase === PHASE.NAME && once('name')) {
      const due = g.level > g.bondedLevel ? depthBond : 0n
      await reverts(nameElement(auditor, d, { gameId, elem: g.elemCount, bond: due }), 'BadChoice', 'an element outside the slot')
      const inside = g.slotIsBlock ? g.index : g.index * 256n
      await reverts(nameElement(auditor, d, { gameId, elem: inside, bond: due + 1n }), 'BondMismatch', 'naming with a wrong bond')
      if (!g.slotIsBlock && g.index * 256n + 256n < g.elemCount) {
        await reverts(nameElement(auditor, d, { gameId, elem: g.index * 256n + 256n, bond: due }), 'BadChoice', 'an element of another chunk')
      }
    } else if (g.phase === PHASE.EXPAND && g.level === 2 && once('expandElement')) {
      const v = mine.transition(Number(g.traceLeaf))
      const k = Number(g.opK), j = Number(g.elem)
      const e = expansionOf(v.elementTree(k, j))
      const last = microStateArg(v.elementStates(k, j).at(-1)!)
      await reverts(expandElement(provider, d, { gameId, cfg, expansion: { ...e, lastLeaf: e.lastLeaf + 1n }, last, opening: v.openings.result(k, j) }), 'WrongLeafCount', 'one micro-step too many')
    } else if (g.phase === PHASE.STEP && once('step')) {
      const v = mine.transition(Number(g.traceLeaf))
      const states = v.elementStates(Number(g.opK), Number(g.elem))
      const s = Number(g.index)
      const wrong = states[s === 1 ? 1 : s - 2]
      await reverts(stepMicro(provider, d, { gameId, cfg, pre: microStateArg(wrong), reads: v.openings.step(wrong) }), 'BadPreimage', 'a pre-state that is not the agreed one')
      // late: after the provider's whole clock no move is accepted, and anyone ends the game
      await net.warp(BigInt(d.params.game.clock) + 1n)
      await reverts(stepMicro(provider, d, { gameId, cfg, pre: microStateArg(states[s - 1]), reads: v.openings.step(states[s - 1]) }), 'ClockExpired', 'a move after the clock ran out')
      await timeout(client, d, { gameId })
      break
    }
    const moved = (await defender.act()) ?? (await challenger.act())
    assert.ok(moved, `someone moves in phase ${g.phase}`)
  }
  for (const k of ['reveal0', 'choose0', 'expandOps', 'reveal1', 'choose1', 'enterOp', 'name', 'expandElement', 'reveal3', 'choose3', 'step']) assert.ok(seen.has(k), `tried the bad moves of ${k}`)
  const r = await resolution(client, d, { gameId })
  assert.deepEqual(r, { providerWon: false, why: 2 }, 'the cheater ran out of clock at its last step')
  await reverts(timeout(client, d, { gameId }), 'GameOver', 'a finished game')
})
