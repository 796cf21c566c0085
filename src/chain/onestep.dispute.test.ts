// Disputes that end in the BLOCK_TERM and RAND one-steps, on the embedded chain: the weight row
// comes from a real synthesized model whose root the signed request names, and the RAND seed is
// the request's.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { toHex } from 'viem'
import { rand } from '../engine/math/rand.js'
import {
  type BlockStep, PHASE, blockStepLeaf, getBalances, getGame, getTotals, oneStep, oneStepBlockTerm, oneStepRand, openDispute,
  randStepLeaf,
} from './client.js'
import { claimJob, createDevnet, isConserved, microTrace, playMicroTrace } from './devnet.js'
import { f32Bits, openRealModel, type RealModel, rowDotSteps } from './realModel.js'

const BOND = 10n ** 17n
const TENSOR = 'blk.0.ffn_down.weight' // Q8_0, 512 columns: 16 blocks, so lanes wrap around
const ROW = 5
const rejectsWith = (p: Promise<unknown>, errorName: string) => assert.rejects(p, (e: { errorName?: string }) => e.errorName === errorName)

let m: RealModel
before(() => {
  m = openRealModel('q8_0', 3)
})
after(() => m?.close())

/** The honest steps of the row, or a provider's that went wrong at block `badAt` (and stayed consistent after it). */
function blockSteps(badAt?: number): BlockStep[] {
  const { steps } = rowDotSteps(m.tree, TENSOR, ROW, 99)
  if (badAt === undefined) return steps
  const out = steps.map((s) => ({ ...s, acc: [...s.acc] }))
  const lane = badAt & 7
  for (let b = badAt; b < out.length; b++) out[b].acc[lane] = (out[badAt].acc[lane] + 0x10) >>> 0
  return out
}

async function blockGame(steps: BlockStep[], target: number) {
  const net = await createDevnet()
  const t = microTrace(steps.map(blockStepLeaf))
  const { batchId, item, proof } = await claimJob(net, t.l0.root, { modelRoot: m.tree.modelRoot, nonce: 1n })
  const { gameId } = await openDispute(net.challenger, net.d, { batchId, jobIndex: 0n, item, client: net.client.account.address, proof, bond: BOND })
  assert.equal((await getGame(net.provider, net.d, gameId)).modelRoot, m.tree.modelRoot)
  await playMicroTrace(net, gameId, t, target)
  assert.equal((await getGame(net.provider, net.d, gameId)).phase, PHASE.STEP)
  return { net, gameId }
}

test('the model tree of a synthesized tiny GGUF has computeGgufModelRoot\'s root', () => {
  assert.equal(m.tree.modelRoot, m.engineRoot)
  assert.equal(m.tree.shape(TENSOR).cols, 512)
})

test('BLOCK_TERM: a wrong accumulator loses to the challenger, whatever row the provider shows', async () => {
  const steps = blockSteps(9)
  const { net, gameId } = await blockGame(steps, 10) // primitive leaf b + 1 is block b
  try {
    const { proof: weight } = m.tree.proveBlock(TENSOR, ROW, 9)
    // Another (validly proven) row is not the one the micro-state names.
    await rejectsWith(oneStepBlockTerm(net.provider, net.d, { gameId, pre: steps[8], post: steps[9], weight: m.tree.proveBlock(TENSOR, ROW + 1, 9).proof }), 'BadRowProof')
    const r = await oneStepBlockTerm(net.provider, net.d, { gameId, pre: steps[8], post: steps[9], weight })
    assert.ok(r.gasUsed < 300_000n, `one-step gas ${r.gasUsed}`)
    assert.equal((await getGame(net.provider, net.d, gameId)).phase, PHASE.CHALLENGER_WON)
    assert.equal((await getBalances(net.provider, net.d, net.provider.account.address)).stake.active, 9n * 10n ** 18n)
    assert.ok(isConserved(await getTotals(net.client, net.d)))
  } finally {
    await net.close()
  }
})

test('BLOCK_TERM: a right accumulator wins; forged rows, wrong tensor paths and other opcodes are refused by name', async () => {
  const steps = blockSteps()
  const { net, gameId } = await blockGame(steps, 10)
  try {
    const { proof: weight } = m.tree.proveBlock(TENSOR, ROW, 9)
    const p = (w: typeof weight, pre = steps[8], post = steps[9]) => oneStepBlockTerm(net.provider, net.d, { gameId, pre, post, weight: w })
    // One byte of the chunk changed (inside the disputed block; the row is one 16-block chunk).
    assert.equal(weight.chunkIndex, 0)
    const forged = Buffer.from(weight.chunk.slice(2), 'hex')
    forged[9 * 34 + 5] ^= 1
    await rejectsWith(p({ ...weight, chunk: toHex(forged) }), 'BadRowProof')
    // A chunk index the chunk path does not bind, a chunk cut short before the block.
    await rejectsWith(p({ ...weight, chunkIndex: 1 }), 'BadRowProof')
    await rejectsWith(p({ ...weight, chunk: toHex(forged.subarray(0, 9 * 34)) }), 'BadRowProof')
    // The tensor path of another tensor, a renamed tensor, a changed shape.
    await rejectsWith(p({ ...weight, tensorPath: m.tree.proveBlock('blk.0.attn_q.weight', ROW, 0).proof.tensorPath }), 'BadTensorProof')
    await rejectsWith(p({ ...weight, name: toHex('blk.1.ffn_down.weight') }), 'BadTensorProof')
    await rejectsWith(p({ ...weight, cols: 256n }), 'BadTensorProof')
    // The agreed pre-state is block 8's; block 7's does not open it, nor does a forged post-state.
    await rejectsWith(p(weight, steps[7]), 'BadPreimage')
    await rejectsWith(p(weight, steps[8], { ...steps[9], da: steps[9].da ^ 1 }), 'BadPreimage')
    await rejectsWith(oneStep(net.provider, net.d, { gameId, pre: { opcode: 1, chain: 0, a: 0, b: 0, result: 0 }, post: { opcode: 1, chain: 0, a: 0, b: 0, result: 0 } }), 'BadPreimage')
    await p(weight)
    assert.equal((await getGame(net.provider, net.d, gameId)).phase, PHASE.PROVIDER_WON)
    assert.ok(isConserved(await getTotals(net.client, net.d)))
  } finally {
    await net.close()
  }
})

test('BLOCK_TERM: block 0 starts from zero lanes (no pre-state needed)', async () => {
  const steps = blockSteps()
  const { net, gameId } = await blockGame(steps, 1)
  try {
    const { proof: weight } = m.tree.proveBlock(TENSOR, ROW, 0)
    await oneStepBlockTerm(net.provider, net.d, { gameId, pre: steps[5], post: steps[0], weight })
    assert.equal((await getGame(net.provider, net.d, gameId)).phase, PHASE.PROVIDER_WON)
  } finally {
    await net.close()
  }
})

async function randGame(u: number, seed: bigint) {
  const net = await createDevnet()
  const post = { step: 3n, u }
  const t = microTrace([randStepLeaf(post)])
  const { batchId, item, proof } = await claimJob(net, t.l0.root, { seed, nonce: 2n })
  const { gameId } = await openDispute(net.challenger, net.d, { batchId, jobIndex: 0n, item, client: net.client.account.address, proof, bond: BOND })
  await playMicroTrace(net, gameId, t, 1)
  return { net, gameId, post }
}

test('RAND: u drawn with the request\'s seed wins, u from another seed loses, a forged preimage is refused', async () => {
  const seed = 0x1234_5678_9abc_def0n
  const good = await randGame(f32Bits(rand(seed, 3)), seed)
  try {
    await rejectsWith(oneStepRand(good.net.provider, good.net.d, { gameId: good.gameId, post: { ...good.post, step: 4n } }), 'BadPreimage')
    await oneStepRand(good.net.provider, good.net.d, { gameId: good.gameId, post: good.post })
    assert.equal((await getGame(good.net.provider, good.net.d, good.gameId)).phase, PHASE.PROVIDER_WON)
  } finally {
    await good.net.close()
  }
  const bad = await randGame(f32Bits(rand(seed + 1n, 3)), seed)
  try {
    await oneStepRand(bad.net.provider, bad.net.d, { gameId: bad.gameId, post: bad.post })
    assert.equal((await getGame(bad.net.provider, bad.net.d, bad.gameId)).phase, PHASE.CHALLENGER_WON)
  } finally {
    await bad.net.close()
  }
})

