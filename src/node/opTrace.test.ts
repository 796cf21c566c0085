// Disputes over a REAL engine job, played to the one-step on the embedded chain: the provider's
// and the challenger's sub-traces come from replaying the job through the engine (opTrace.ts) in
// the shapes the judge derives from the op table. A provider that falsified one output element of
// one matmul loses to an auditor that only compares its own replay; an honest provider wins
// against a challenger that disputes a correct block.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Hex } from 'viem'
import { expansionOf } from '../chain/boundTrace.js'
import {
  PHASE, batchLeaf, batchTree, claimBatch, deposit, expandElement, expandLevel, expandTensor, getGame, oneStepBlockTerm,
  oneStepFold, openDispute, revealPre,
} from '../chain/client.js'
import { type Devnet, Tree, createDevnet, descendTo, makeItem, makeRequest } from '../chain/devnet.js'
import { actSource, tensorNamesOf } from '../chain/opTable.js'
import { openRealModel, type RealModel } from '../chain/realModel.js'
import { activationBlockSize } from '../engine/kernels/reference.js'
import { fold } from '../engine/math/canonical.js'
import type { OpObserver } from '../engine/model/transformer.js'
import { KVCache } from '../engine/model/transformer.js'
import { layerLeaf, TraceTree, traceRoot } from '../trace/traceTree.js'
import { type Model, loadModel } from '../runtime/model.js'
import { actStateOf, activationTree, elementChain, rowLeaves } from '../chain/gameStates.js'
import { captureOps, firstDifference, opLevelLeaves, opPreState, rowBlockSteps } from './opTrace.js'

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
const floatOf = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0]

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
    const a = steps.at(-1)!.acc.map(floatOf)
    assert.equal(bits(fold(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])), bits(cap.get(op)!.outs[0][row]), `${name} row ${row}`)
  }
  const ops = opLevelLeaves(cap, false, leaves[pos * 3], leaves[pos * 3 + 1])
  assert.equal(ops.length, 16)
  assert.equal(new Set(ops).size, 16, 'every op state differs')
})

/** Claims the job with `leaves` as its trace; returns the dispute's game id, opened by the challenger. */
async function claimAndOpen(net: Devnet, leaves: Hex[]): Promise<bigint> {
  const { d, provider, client, challenger } = net
  await deposit(client, d, { amount: 10n ** 18n })
  const receipt = { traceRoot: hex(traceRoot(leaves.map((x) => Uint8Array.from(Buffer.from(x.slice(2), 'hex')))).root), nPrompt: tokens.length, nOutput: 1, nLayer: model.transformer.config.nLayer }
  const item = await makeItem(net, client, makeRequest(net, { modelRoot: m.tree.modelRoot, nonce: 7n }), receipt)
  const { batchId } = await claimBatch(provider, d, { items: [item] })
  const proof = batchTree([batchLeaf(net.chain.chainId, d.settlement, item, client.account.address)]).proof(0)
  return (await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: 10n ** 17n })).gameId
}

/** What the provider answers with at each level, from its own (possibly tampered) replay. */
type Pick = (level: number, providerLeaves: Hex[]) => number

/** Plays the game: the provider builds every level from its replay; `pick` is the challenger's strategy. */
async function play(net: Devnet, gameId: bigint, leaves: Hex[], tamper: OpObserver | undefined, pick: Pick): Promise<void> {
  const { d, provider } = net
  const nLayer = model.transformer.config.nLayer
  const descend = async (tree: Tree, level: number, first: number) => {
    const target = pick(level, tree.leaves)
    await descendTo(net, gameId, tree, target)
    if (target > first) await revealPre(provider, d, { gameId, preLeaf: tree.leaves[target - 1], proof: tree.proof(target - 1) })
    return target
  }
  const t0 = new Tree(leaves)
  const leaf = await descend(t0, 0, 0)
  const pos = Math.floor(leaf / (nLayer + 1)), layer = leaf % (nLayer + 1)
  assert.notEqual(layer, nLayer, 'these scenarios dispute a layer, not a head')
  const cap = captureOps(model.transformer, tokens, pos, layer, tamper)
  const t1 = new Tree(opLevelLeaves(cap, false, leaves[leaf - 1], leaves[leaf]))
  await expandLevel(provider, d, { gameId, ...expansionOf(t1) })
  const op = await descend(t1, 1, 1)
  const name = tensorNamesOf(false, layer, op)[0]
  assert.ok(name, `op ${op} is a matmul`)
  const src = actSource(false, op)
  const chain = elementChain(t1.leaves[op - 1], cap.get(op)!.outs[0], t1.leaves[src])
  const t2 = new Tree(chain.leaves)
  await expandTensor(provider, d, { gameId, expansion: expansionOf(t2), tensor: m.tree.proveTensor(name), opPre: opPreState(cap, false, t1.leaves, op) })
  const elem = await descend(t2, 2, 1)
  const row = elem - 1
  const steps = rowBlockSteps(m.tree, name, row, cap.get(op)!.input!)
  const t3 = new Tree(rowLeaves(steps, chain.leaves[row], chain.leaves[row + 1]))
  await expandElement(provider, d, { gameId, expansion: expansionOf(t3), element: chain.states[row] })
  const prim = await descend(t3, 3, 1)
  if (prim === t3.leaves.length - 1) await oneStepFold(provider, d, { gameId, last: steps.at(-1)! })
  else {
    const x = cap.get(src)!.outs[0]
    const B = activationBlockSize(m.tree.shape(name).type) as 32 | 256
    await oneStepBlockTerm(provider, d, {
      gameId, pre: steps[Math.max(0, prim - 2)], post: steps[prim - 1], chunk: m.tree.proveChunk(name, row, prim - 1),
      act: actStateOf(src, cap.get(src)!.outs).state, actPath: activationTree(x, B)!.path(prim - 1),
    })
  }
}

test('a provider that falsified one element of one matmul loses to an auditor comparing its own replay', async () => {
  const c = model.transformer.config
  const tamper = falsify(3, 1, 14, 7) // ffn_down of layer 1 at position 3, output row 7
  const honest = traceOf()
  const cheat = traceOf(tamper)
  assert.notEqual(firstDifference(honest, cheat), -1)
  const net = await createDevnet()
  try {
    const gameId = await claimAndOpen(net, cheat)
    // The auditor replays honestly and disputes the first leaf where the provider differs from it.
    const own = new Map<number, Hex[]>()
    const pick: Pick = (level, theirs) => {
      if (level === 0) own.set(0, honest)
      else if (level === 1) own.set(1, opLevelLeaves(captureOps(model.transformer, tokens, 3, 1), false, honest[3 * (c.nLayer + 1)], honest[3 * (c.nLayer + 1) + 1]))
      else if (level === 2) own.set(2, elementChain(own.get(1)![13], captureOps(model.transformer, tokens, 3, 1).get(14)!.outs[0], own.get(1)![13]).leaves)
      else {
        const cap = captureOps(model.transformer, tokens, 3, 1)
        const e = own.get(2)!
        own.set(3, rowLeaves(rowBlockSteps(m.tree, 'blk.1.ffn_down.weight', 7, cap.get(14)!.input!), e[7], e[8]))
      }
      return firstDifference(own.get(level)!, theirs)
    }
    await play(net, gameId, cheat, tamper, pick)
    const g = await getGame(net.provider, net.d, gameId)
    // The descent found the falsified element: trace leaf (3, 1), op 14, row 7, and its fold.
    assert.deepEqual([g.traceLeaf, g.opLeaf, g.elemLeaf], [BigInt(3 * (c.nLayer + 1) + 1), 14n, 8n])
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
    const picks = [12, 12, 301, 6]
    await play(net, gameId, honest, undefined, (level) => picks[level])
    assert.equal((await getGame(net.provider, net.d, gameId)).phase, PHASE.PROVIDER_WON)
  } finally {
    await net.close()
  }
})
