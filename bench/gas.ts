/**
 * Gas table for Tessera's contracts on the embedded chain: `npm run bench:gas`. Prints the table
 * and writes it into docs/BENCHMARKS.md under "## Gas" (other sections are kept).
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { type Hex, parseEther } from 'viem'
import { traceLeafCount, treeDepth, roundsFor, LOG_K } from '../src/chain/bisection.js'
import {
  type ClaimItem, type MicroStep, OPCODE, batchLeaf, batchTree, claimBatch, claimTimeout, deposit, expandLevel,
  finalizeBatch, microStepLeaf, oneStep, openDispute, registerModel, revealChildren, chooseChild, revealPre, stake,
  expandElement, expandTensor, oneStepBlockTerm, oneStepFold, oneStepRand, randStepLeaf,
} from '../src/chain/client.js'
import { connectClients } from '../src/chain/evm/clients.js'
import { Tree, claimJob, createDevnet, descendTo, h, makeItem, makeRequest } from '../src/chain/devnet.js'
import { expansionOf, playBoundTrace, randTrace, rowTrace } from '../src/chain/boundTrace.js'
import { LAYER_OPS } from '../src/chain/opTable.js'
import { activation, f32Bits, openRealModel, rowDotSteps } from '../src/chain/realModel.js'
import { fold } from '../src/engine/math/canonical.js'
import { rand } from '../src/engine/math/rand.js'

const rows: [string, string, string][] = []
const row = (what: string, gas: bigint | number | string, note = '') => {
  rows.push([what, typeof gas === 'string' ? gas : gas.toLocaleString('en-US'), note])
}

const net = await createDevnet()
const { d, provider, client, challenger, deployer } = net
const reg = await registerModel(deployer, d, { modelRoot: h('bench-model'), configHash: h('c'), tokenizerHash: h('t'), arithVersion: h('a'), nLayer: 32 })
row('register a model', reg.gasUsed)
row('stake (first bond)', (await stake(net.auditor, d, { role: 'auditor', amount: parseEther('1') })).gasUsed)
row('deposit into escrow', (await deposit(client, d, { amount: parseEther('100') })).gasUsed)

let nonce = 1000n
async function batchOf(n: number, signers = [client]) {
  const items: ClaimItem[] = []
  for (let i = 0; i < n; i++) items.push(await makeItem(net, signers[i % signers.length], makeRequest(net, { nonce: nonce++ })))
  return claimBatch(provider, d, { items })
}
for (const n of [1, 10, 100]) {
  const r = await batchOf(n)
  row(`claim batch of ${n} (one client)`, r.gasUsed, `${(r.gasUsed / BigInt(n)).toLocaleString('en-US')} gas/job`)
}
// 100 jobs from 10 different clients (fresh nonce words and escrow slots per client).
const clients = []
for (let i = 0; i < 10; i++) {
  const pk = `0x${(i + 1).toString(16).padStart(64, '0')}` as Hex
  const c = connectClients({ transport: net.chain.provider, chainId: net.chain.chainId, privateKey: pk })
  await deployer.wallet.sendTransaction({ to: c.account.address, value: parseEther('2') })
  await deposit(c, d, { amount: parseEther('1') })
  clients.push(c)
}
{
  const r = await batchOf(100, clients)
  row('claim batch of 100 (10 clients)', r.gasUsed, `${(r.gasUsed / 100n).toLocaleString('en-US')} gas/job`)
}

// Dispute: one full game down to the one-step, on a toy trace of 20 leaves (nPrompt 3, nOutput 2,
// 4 layers): trace leaf 7 (position 1, layer 2), op 13 (SILU(gate) * up, a scalar op), element 1,
// micro-step 2 (a chained binary32 division).
const m1: MicroStep = { opcode: OPCODE.F32_ADD, chain: 0, a: 0x3f800000, b: 0x40000000, result: 0x40400000 }
const m2: MicroStep = { opcode: OPCODE.F32_DIV, chain: 1, a: 0x40400000, b: 0x40e00000, result: 0x3edb6db7 }
const leaves = Array.from({ length: 20 }, (_, i) => h(`leaf${i}`))
const ops = Array.from({ length: 14 }, (_, i) => h(`op${i + 1}`))
const l0 = new Tree(leaves), l1 = new Tree([leaves[6], ...ops, leaves[7]]), l3 = new Tree([ops[11], microStepLeaf(m1), microStepLeaf(m2)])
const l2 = new Tree([ops[11], l3.leaves[2], ops[12]])
const item = await makeItem(net, client, makeRequest(net, { nonce: nonce++ }), { traceRoot: l0.root, nPrompt: 3, nOutput: 2, nLayer: 4 })
const { batchId } = await claimBatch(provider, d, { items: [item] })
const proof = batchTree([batchLeaf(net.chain.chainId, d.settlement, item, client.account.address)]).proof(0)
const open = await openDispute(challenger, d, { batchId, jobIndex: 0n, item, client: client.account.address, proof, bond: 10n ** 17n })
row('dispute: open', open.gasUsed)
const gameId = open.gameId
const depthBond = BigInt(d.params.game.depthBond)
const rv = await revealChildren(provider, d, { gameId, children: l0.children(0, 0n, 4) })
row('dispute round: reveal 16 children', rv.gasUsed)
const ch = await chooseChild(challenger, d, { gameId, children: l0.children(0, 0n, 4), choice: 3n })
row('dispute round: choose a child', ch.gasUsed)
await revealChildren(provider, d, { gameId, children: l0.children(4, 3n, 1) })
await chooseChild(challenger, d, { gameId, children: l0.children(4, 3n, 1), choice: 1n })
row('dispute: reveal pre-state (proof)', (await revealPre(provider, d, { gameId, preLeaf: leaves[6], proof: l0.proof(6) })).gasUsed)
row('dispute: expand a trace leaf into its 15 ops', (await expandLevel(provider, d, { gameId, ...expansionOf(l1) })).gasUsed)
await revealChildren(provider, d, { gameId, children: l1.children(0, 0n, 4) })
row('dispute round: first choice of a level (adds the depth bond)', (await chooseChild(challenger, d, { gameId, children: l1.children(0, 0n, 4), choice: 13n, bond: depthBond })).gasUsed)
await revealPre(provider, d, { gameId, preLeaf: ops[11], proof: l1.proof(12) })
await expandLevel(provider, d, { gameId, ...expansionOf(l2) })
await revealChildren(provider, d, { gameId, children: l2.children(0, 0n, 2) })
await chooseChild(challenger, d, { gameId, children: l2.children(0, 0n, 2), choice: 1n, bond: depthBond })
await expandLevel(provider, d, { gameId, ...expansionOf(l3) })
await revealChildren(provider, d, { gameId, children: l3.children(0, 0n, 2) })
await chooseChild(challenger, d, { gameId, children: l3.children(0, 0n, 2), choice: 2n, bond: depthBond })
await revealPre(provider, d, { gameId, preLeaf: l3.leaves[1], proof: l3.proof(1) })
const st = await oneStep(provider, d, { gameId, pre: m1, post: m2 })
row('dispute: one-step (binary32 div, chained) + settlement', st.gasUsed, 'target < 300,000')
await net.warp(86400)
row('finalize a batch', (await finalizeBatch(provider, d, { batchId })).gasUsed)
{
  const it2 = await makeItem(net, client, makeRequest(net, { nonce: nonce++ }), { traceRoot: l0.root, nPrompt: 3, nOutput: 2, nLayer: 4 })
  const b2 = await claimBatch(provider, d, { items: [it2] })
  const p2 = batchTree([batchLeaf(net.chain.chainId, d.settlement, it2, client.account.address)]).proof(0)
  const g2 = await openDispute(challenger, d, { batchId: b2.batchId, jobIndex: 0n, item: it2, client: client.account.address, proof: p2, bond: 10n ** 17n })
  await net.warp(86401)
  row('dispute: timeout (provider silent, slashed)', (await claimTimeout(client, d, { gameId: g2.gameId })).gasUsed)
}
await net.close()

// The one-steps that check real weights and randomness, on a row of a synthesized tiny Q8_0 model
// (blk.0.ffn_down.weight: 256 rows of 512 columns, one 544-byte chunk per row; the step carries and
// hashes only the ~2 KiB chunk holding the block, so wide rows cost about the same: docs/CHAIN.md
// "Gas"): entering the matmul op (tensor proven by name), entering the element, BLOCK_TERM, the
// fold, and RAND with the request's seed.
{
  const m = openRealModel('q8_0', 3)
  try {
    const TENSOR = 'blk.0.ffn_down.weight'
    const { steps } = rowDotSteps(m.tree, TENSOR, 5, 99)
    const x = activation(m.tree.shape(TENSOR).cols, 99)
    const a = steps[steps.length - 1].acc.map((x) => new Float32Array(new Uint32Array([x]).buffer)[0])
    const value = f32Bits(fold(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]))
    const t = rowTrace(m.tree.proveTensor(TENSOR), TENSOR, 5, x, steps, value, 32)
    // A provider whose lane 1 went wrong at block 9 (and stayed consistent after it): it loses the step.
    const bad = steps.map((st, b) => (b < 9 ? st : { ...st, acc: st.acc.map((v, i) => (i === 1 ? (v + 0x10) >>> 0 : v)) }))
    const tBad = rowTrace(m.tree.proveTensor(TENSOR), TENSOR, 5, x, bad, value, 32)
    for (const [target, tr, st] of [[10, t, steps], [steps.length + 1, t, steps], [10, tBad, bad]] as const) {
      const t = tr, steps = st
      const bn = await createDevnet()
      const job = await claimJob(bn, t.l0.root, { modelRoot: m.tree.modelRoot, nonce: 1n })
      const g = await openDispute(bn.challenger, bn.d, { batchId: job.batchId, jobIndex: 0n, item: job.item, client: bn.client.account.address, proof: job.proof, bond: 10n ** 17n })
      // Down to the element level, then each bound expansion timed on its own.
      await descendTo(bn, g.gameId, t.l0, t.traceLeaf)
      await revealPre(bn.provider, bn.d, { gameId: g.gameId, preLeaf: t.l0.leaves[t.traceLeaf - 1], proof: t.l0.proof(t.traceLeaf - 1) })
      await expandLevel(bn.provider, bn.d, { gameId: g.gameId, ...expansionOf(t.l1) })
      await descendTo(bn, g.gameId, t.l1, t.opLeaf)
      await revealPre(bn.provider, bn.d, { gameId: g.gameId, preLeaf: t.l1.leaves[t.opLeaf - 1], proof: t.l1.proof(t.opLeaf - 1) })
      const et = await expandTensor(bn.provider, bn.d, { gameId: g.gameId, expansion: expansionOf(t.l2), tensor: t.tensor! })
      await descendTo(bn, g.gameId, t.l2, t.elemLeaf)
      await revealPre(bn.provider, bn.d, { gameId: g.gameId, preLeaf: t.l2.leaves[t.elemLeaf - 1], proof: t.l2.proof(t.elemLeaf - 1) })
      const ee = await expandElement(bn.provider, bn.d, { gameId: g.gameId, expansion: expansionOf(t.l3), element: t.element! })
      await descendTo(bn, g.gameId, t.l3, target)
      await revealPre(bn.provider, bn.d, { gameId: g.gameId, preLeaf: t.l3.leaves[target - 1], proof: t.l3.proof(target - 1) })
      if (steps === bad) {
        const r = await oneStepBlockTerm(bn.provider, bn.d, { gameId: g.gameId, pre: steps[8], post: steps[9], chunk: m.tree.proveChunk(TENSOR, 5, 9), act: t.act!, actPath: t.actPath!(9) })
        row('dispute: one-step BLOCK_TERM that the provider loses, incl. the slash settlement (refund, slash, payouts)', r.gasUsed)
      } else if (target === 10) {
        row('dispute: enter a matmul op (tensor leaf proven by name to the model root)', et.gasUsed)
        row('dispute: enter an element (element state opened)', ee.gasUsed)
        const r = await oneStepBlockTerm(bn.provider, bn.d, { gameId: g.gameId, pre: steps[8], post: steps[9], chunk: m.tree.proveChunk(TENSOR, 5, 9), act: t.act!, actPath: t.actPath!(9) })
        row('dispute: one-step BLOCK_TERM (Q8_0 row of 512: chunk proven to the bound tensor, activation block to the agreed activation state)', r.gasUsed, 'target < 300,000')
      } else {
        const r = await oneStepFold(bn.provider, bn.d, { gameId: g.gameId, last: steps[steps.length - 1] })
        row('dispute: one-step fold (SUM8 of the last lanes = the element value)', r.gasUsed, 'target < 300,000')
      }
      await bn.close()
    }
  } finally {
    m.close()
  }
  const rn = await createDevnet()
  const seed = 0x1234_5678_9abc_def0n
  const post = { step: 1n, u: f32Bits(rand(seed, 1)) }
  const t = randTrace(randStepLeaf(post))
  const job = await claimJob(rn, t.l0.root, { seed, nonce: 2n })
  const g = await openDispute(rn.challenger, rn.d, { batchId: job.batchId, jobIndex: 0n, item: job.item, client: rn.client.account.address, proof: job.proof, bond: 10n ** 17n })
  await playBoundTrace(rn, g.gameId, t, 1)
  row('dispute: one-step RAND (seed from the signed request, step from the position)', (await oneStepRand(rn.provider, rn.d, { gameId: g.gameId, post })).gasUsed, 'target < 300,000')
  await rn.close()
}

// Rounds for a 1,024-token answer of a 32-layer model (Llama-2-7B shape: dim 4096, ff 11008,
// vocab 32000, Q8_0), with k = 2^LOG_K children per round.
const traceDepth = treeDepth(traceLeafCount(1, 1024, 32))
const opDepth = treeDepth(BigInt(LAYER_OPS.length) + 1n) // docs/CHAIN.md "Op table"
const elemDepth = treeDepth(32000n + 1n) // widest op output: the logits, one element leaf per row
const primDepth = treeDepth(11008n / 32n + 2n) // down projection row (Q8_0): 344 block states + the element
const rounds = [traceDepth, opDepth, elemDepth, primDepth].map(roundsFor)
const total = rounds.reduce((a, b) => a + b, 0)
row(`rounds, 1,024 tokens x 32 layers (k = ${1 << LOG_K})`, String(total), `trace ${rounds[0]} + op ${rounds[1]} + element ${rounds[2]} + primitive ${rounds[3]}; target <= 16`)

const table = ['| action | gas | note |', '|---|---:|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')
console.log(table)
const section = `## Gas\n\nMeasured by \`npm run bench:gas\` (bench/gas.ts) on the embedded EDR chain (Prague rules, solc 0.8.37, optimizer 200 runs), ${new Date().toISOString().slice(0, 10)}.\nEvery row is whole-transaction gas (including the 21,000 base); gas/job divides a batch by its size.\n\n${table}\n`
const file = 'docs/BENCHMARKS.md'
let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n'
const re = /## Gas\n[\s\S]*?(?=\n## |$)/
doc = re.test(doc) ? doc.replace(re, section) : `${doc.trimEnd()}\n\n${section}`
writeFileSync(file, doc)
console.log(`wrote the Gas section of ${file}`)
