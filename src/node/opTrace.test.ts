// Disputes over a REAL engine job, played to the one-step on the embedded chain by the two dispute
// agents (disputeAgent.ts): each side's sub-traces come from its own replay of the job through the
// engine (opTrace.ts) in the shapes the judge derives from the op table. A provider that falsified
// one output element of one matmul loses to an auditor that follows the first divergence; an
// honest provider wins against a challenger that disputes a correct block, or whose replay is wrong.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Hex } from 'viem'
import { PHASE, batchLeaf, batchTree, claimBatch, deposit, getGame, openDispute } from '../chain/client.js'
import { type Devnet, createDevnet, makeItem, makeRequest, registerTree } from '../chain/devnet.js'
import { foldLanes, rowBlockSteps } from '../chain/gameStates.js'
import { tensorNamesOf } from '../chain/opTable.js'
import { openRealModel, type RealModel } from '../chain/realModel.js'
import type { OpObserver } from '../engine/model/transformer.js'
import { KVCache } from '../engine/model/transformer.js'
import { layerLeaf, TraceTree, traceRoot } from '../trace/traceTree.js'
import { type Model, loadModel } from '../runtime/model.js'
import { DisputeChallenger, DisputeDefender, type JobReplay, playOut } from './disputeAgent.js'
import { captureOps, firstDifference, opLevelLeaves } from './opTrace.js'

let m: RealModel
let model: Model
let tokens: number[]
before(async () => {
  m = openRealModel('q8_0', 5)
  model = await loadModel(m.path)
  tokens = model.tokenizer.encode('Call me Ishmael. Some years ago, never mind').slice(0, 6)
})
after(() => {
  model?.close()
  m?.close()
})

const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString('hex')}`
const bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]

/** The job's trace leaves: the prompt `tokens` prefilled in one batch, then one greedy output token. */
function traceOf(tamper?: OpObserver): Hex[] {
  const c = model.transformer.config
  const tree = new TraceTree(c.nLayer, c.dim, c.nKvHead * c.headDim)
  const logits = model.transformer.forward(tokens, new KVCache(c), 1, tree.observeLayer, tamper)
  let next = 0
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[next]) next = i
  tokens.forEach((_, pos) => (pos + 1 < tokens.length ? tree.setHead(pos, tokens[pos + 1]) : tree.setHead(pos, next, logits)))
  return tree.leafHashes(tokens.length).map(hex)
}

/**
 * A cheater's fault: output row `row` of op `op` of (position, layer) 0.25 higher (big enough to
 * survive the residual add; a 1-ulp change is usually absorbed and changes no trace leaf).
 */
function falsify(position: number, layer: number, op: number, row: number): OpObserver {
  return (l, o, start, nTok, outs) => {
    if (l !== layer || o !== op || position < start || position >= start + nTok) return
    const y = outs[0]
    const i = (position - start) * (y.length / nTok) + row
    y[i] = Math.fround(y[i] + 0.25)
  }
}

test('captured ops reproduce the trace leaf, and a matmul element is the fold of its block states', () => {
  const c = model.transformer.config
  const leaves = traceOf()
  const pos = 3, layer = 1, kvDim = c.nKvHead * c.headDim
  const cap = captureOps(model.transformer, tokens, pos, layer)
  // The layer's output residual, K after RoPE and V are exactly what the trace leaf committed.
  assert.equal(hex(layerLeaf(pos, layer, cap.get(15)!.outs[0], 0, c.dim, cap.get(6)!.outs[1], cap.get(5)!.outs[2], 0, kvDim)), leaves[pos * (c.nLayer + 1) + layer])
  for (const [op, row] of [[14, 7], [2, 0], [11, 511]] as const) {
    const name = tensorNamesOf(false, layer, op)[0]
    const steps = rowBlockSteps(m.tree, name, row, cap.get(op)!.input!)
    assert.equal(foldLanes(steps.at(-1)!.acc), bits(cap.get(op)!.outs[0][row]), `${name} row ${row}`)
  }
  const ops = opLevelLeaves(cap, false, leaves[pos * 3], leaves[pos * 3 + 1])
  assert.equal(ops.length, 16)
  assert.equal(new Set(ops).size, 16, 'every op state differs')
})

/** Claims the job with `leaves` as its trace; returns the dispute's game id, opened by the challenger. */
async function claimAndOpen(net: Devnet, leaves: Hex[]): Promise<bigint> {
  const { d, provider, client, challenger } = net
  await registerTree(net, m.tree)
  await deposit(client, d, { amount: 10n ** 18n })
  const receipt = { traceRoot: hex(traceRoot(leaves.map((x) => Uint8Array.from(Buffer.from(x.slice(2), 'hex')))).root), nPrompt: tokens.length, nOutput: 1, nLayer: model.transformer.config.nLayer }
  const item = await makeItem(net, client, makeRequest(net, { modelRoot: m.tree.modelRoot, nonce: 7n }), receipt)
  const { batchId } = await claimBatch(provider, d, { items: [item] })
  const proof = batchTree([batchLeaf(net.chain.chainId, d.settlement, item, client.account.address)]).proof(0)
  return (await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: 10n ** 17n })).gameId
}

/** The provider's and the auditor's replays of the job (each with its own trace leaves). */
const replay = (leaves: Hex[], tamper?: OpObserver): JobReplay => ({ tf: model.transformer, tokens, leaves, weights: m.tree, tamper })

test('a provider that falsified one element of one matmul loses to an auditor that follows the first divergence', async () => {
  const c = model.transformer.config
  const tamper = falsify(3, 1, 14, 7) // ffn_down of layer 1 at position 3, output row 7
  const honest = traceOf()
  const cheat = traceOf(tamper)
  assert.notEqual(firstDifference(honest, cheat), -1)
  const net = await createDevnet()
  try {
    const gameId = await claimAndOpen(net, cheat)
    const defender = new DisputeDefender(net.provider, net.d, gameId, replay(cheat, tamper))
    const auditor = new DisputeChallenger(net.challenger, net.d, gameId, replay(honest))
    assert.ok(await playOut(defender, auditor))
    const g = await getGame(net.provider, net.d, gameId)
    // The descent found the falsified element: trace leaf (3, 1), op 14, row 7, and its fold.
    assert.deepEqual([g.traceLeaf, g.opLeaf, g.elemLeaf, g.index], [BigInt(3 * (c.nLayer + 1) + 1), 14n, 8n, g.lastLeaf])
    assert.equal(g.phase, PHASE.CHALLENGER_WON)
  } finally {
    await net.close()
  }
})

test('an honest provider wins against a challenger that disputes a correct block of a real job', async () => {
  const honest = traceOf()
  const net = await createDevnet()
  try {
    const gameId = await claimAndOpen(net, honest)
    // A wrong challenger: position 4, layer 0 (leaf 12); op 12 (ffn_up, whose pre-state is the
    // gate's last element state, opened to name the activation); row 300; block 5.
    const defender = new DisputeDefender(net.provider, net.d, gameId, replay(honest))
    const wrong = new DisputeChallenger(net.challenger, net.d, gameId, replay(honest), [12, 12, 301, 6])
    assert.ok(await playOut(defender, wrong))
    const g = await getGame(net.provider, net.d, gameId)
    assert.deepEqual([g.traceLeaf, g.opLeaf, g.elemLeaf, g.index], [12n, 12n, 301n, 6n])
    assert.equal(g.phase, PHASE.PROVIDER_WON)
  } finally {
    await net.close()
  }
})

test('an auditor whose own replay is wrong loses its challenge at the fold', async () => {
  const honest = traceOf()
  const wrongTamper = falsify(2, 0, 11, 9) // the auditor's own ffn_gate row 9 at (2, 0) is off
  const net = await createDevnet()
  try {
    const gameId = await claimAndOpen(net, honest)
    const defender = new DisputeDefender(net.provider, net.d, gameId, replay(honest))
    const auditor = new DisputeChallenger(net.challenger, net.d, gameId, replay(traceOf(wrongTamper), wrongTamper))
    assert.ok(await playOut(defender, auditor))
    const g = await getGame(net.provider, net.d, gameId)
    assert.deepEqual([g.opLeaf, g.elemLeaf, g.index === g.lastLeaf], [11n, 10n, true])
    assert.equal(g.phase, PHASE.PROVIDER_WON)
  } finally {
    await net.close()
  }
})
