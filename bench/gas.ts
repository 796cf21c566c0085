/**
 * Gas table for Tessera's contracts on the embedded chain: `npm run bench:gas`. Prints the table
 * and writes it into docs/BENCHMARKS.md under "## Gas" (other sections are kept).
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { type Hex, parseEther } from 'viem'
import { traceLeafCount, treeDepth, roundsFor, LOG_K } from '../src/chain/bisection.js'
import {
  type ClaimItem, claimBatch, claimTimeout, deposit, expandLevel, finalizeBatch, openDispute, registerModel, revealChildren,
  chooseChild, revealPre, reserve, stake, expandElement, expandTensor, oneStepFold,
} from '../src/chain/client.js'
import { connectClients } from '../src/chain/evm/clients.js'
import { claimJob, createDevnet, descendTo, fakeModel, h, makeItem, makeRequest } from '../src/chain/devnet.js'
import { expansionOf, playBoundTrace, rowScenario } from '../src/chain/boundTrace.js'
import { LAYER_OPS } from '../src/chain/opTable.js'
import { openRealModel } from '../src/chain/realModel.js'

const rows: [string, string, string][] = []
const row = (what: string, gas: bigint | number | string, note = '') => {
  rows.push([what, typeof gas === 'string' ? gas : gas.toLocaleString('en-US'), note])
}

const net = await createDevnet()
const { d, provider, client, challenger, deployer } = net
const reg = await registerModel(deployer, d, { ...fakeModel('bench-model', 32), arithVersion: h('a') })
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
// The provider reserves each request when it accepts it (one transaction per request), and the
// claim then draws from the reservation (clearing its two slots) instead of the free escrow.
{
  const items: ClaimItem[] = []
  let reserveGas = 0n
  for (let i = 0; i < 100; i++) {
    const req = makeRequest(net, { nonce: nonce++ })
    const it = await makeItem(net, client, req)
    reserveGas += (await reserve(provider, d, { req, r: it.r, vs: it.vs })).gasUsed
    items.push(it)
  }
  row('reserve a request (provider, on accepting it)', reserveGas / 100n, 'per request')
  const r = await claimBatch(provider, d, { items })
  row('claim batch of 100 reserved requests (one client)', r.gasUsed, `${(r.gasUsed / 100n).toLocaleString('en-US')} gas/job`)
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

// Disputes on a real weight row (boundTrace.ts's row scenario: blk.0.ffn_down.weight of a
// synthesized tiny Q8_0 model, 512 columns = one 544-byte chunk per row; a step carries and hashes
// only the ~2 KiB chunk holding its block, so wide rows cost about the same: docs/CHAIN.md "Gas").
// The toy trace has 12 leaves (nPrompt 3, nOutput 2, the tiny model's 2 layers); the disputed leaf is 3.
const m = openRealModel('q8_0', 3)
let nonce2 = 1n
async function rowGame(badAt?: number) {
  const sc = rowScenario(m, badAt)
  const bn = await createDevnet()
  const job = await claimJob(bn, sc.t.l0.root, { nonce: nonce2++ }, m.tree)
  const open = await openDispute(bn.challenger, bn.d, { batchId: job.batchId, jobIndex: 0n, item: job.item, client: bn.client.account.address, proof: job.proof, bond: 10n ** 17n })
  return { sc, bn, job, gameId: open.gameId, open }
}
try {
  {
    const { sc, bn, job, gameId, open } = await rowGame()
    const { t } = sc
    const pd = bn.d, pv = bn.provider
    row('dispute: open', open.gasUsed)
    const top = t.l0.children(0, 0n, 4)
    row('dispute round: reveal 16 children', (await revealChildren(pv, pd, { gameId, children: top })).gasUsed)
    row('dispute round: choose a child', (await chooseChild(bn.challenger, pd, { gameId, children: top, choice: BigInt(t.traceLeaf >> (t.l0.depth - 4)) })).gasUsed)
    await descendTo(bn, gameId, t.l0, t.traceLeaf)
    row('dispute: reveal pre-state (proof)', (await revealPre(pv, pd, { gameId, preLeaf: t.l0.leaves[t.traceLeaf - 1], proof: t.l0.proof(t.traceLeaf - 1) })).gasUsed)
    row('dispute: expand a trace leaf into its 15 ops', (await expandLevel(pv, pd, { gameId, ...expansionOf(t.l1) })).gasUsed)
    const ops = t.l1.children(0, 0n, 4)
    await revealChildren(pv, pd, { gameId, children: ops })
    row('dispute round: first choice of a level (adds the depth bond)', (await chooseChild(bn.challenger, pd, { gameId, children: ops, choice: BigInt(t.opLeaf), bond: BigInt(pd.params.game.depthBond) })).gasUsed)
    await revealPre(pv, pd, { gameId, preLeaf: t.l1.leaves[t.opLeaf - 1], proof: t.l1.proof(t.opLeaf - 1) })
    row('dispute: enter a matmul op (tensor leaf proven by name to the model root)', (await expandTensor(pv, pd, { gameId, expansion: expansionOf(t.l2), tensor: t.tensor! })).gasUsed)
    await descendTo(bn, gameId, t.l2, t.elemLeaf)
    await revealPre(pv, pd, { gameId, preLeaf: t.l2.leaves[t.elemLeaf - 1], proof: t.l2.proof(t.elemLeaf - 1) })
    row('dispute: enter an element (element state opened)', (await expandElement(pv, pd, { gameId, expansion: expansionOf(t.l3), element: t.element! })).gasUsed)
    await descendTo(bn, gameId, t.l3, 10)
    await revealPre(pv, pd, { gameId, preLeaf: t.l3.leaves[9], proof: t.l3.proof(9) })
    row('dispute: one-step BLOCK_TERM, provider wins (chunk proven to the bound tensor, activation block to the agreed activation state)', (await sc.oneStep(bn, gameId, 9)).gasUsed, 'target < 300,000')
    await bn.warp(86400)
    row('finalize a batch', (await finalizeBatch(pv, pd, { batchId: job.batchId })).gasUsed)
    await bn.close()
  }
  {
    const { sc, bn, gameId } = await rowGame(9)
    await playBoundTrace(bn, gameId, sc.t, 10)
    row('dispute: one-step BLOCK_TERM, provider loses (incl. the slash settlement: refund, slash, payouts)', (await sc.oneStep(bn, gameId, 9)).gasUsed)
    await bn.close()
  }
  {
    const { sc, bn, gameId } = await rowGame()
    await playBoundTrace(bn, gameId, sc.t, sc.steps.length + 1)
    row('dispute: one-step fold (SUM8 of the last lanes = the element value)', (await oneStepFold(bn.provider, bn.d, { gameId, last: sc.steps.at(-1)! })).gasUsed, 'target < 300,000')
    await bn.close()
  }
  {
    const { sc, bn, gameId } = await rowGame()
    const t = { ...sc.t, opLeaf: 13 }
    await descendTo(bn, gameId, t.l0, t.traceLeaf)
    await revealPre(bn.provider, bn.d, { gameId, preLeaf: t.l0.leaves[t.traceLeaf - 1], proof: t.l0.proof(t.traceLeaf - 1) })
    await expandLevel(bn.provider, bn.d, { gameId, ...expansionOf(t.l1) })
    const ops = t.l1.children(0, 0n, 4)
    await revealChildren(bn.provider, bn.d, { gameId, children: ops })
    row('dispute: choose an op the judge cannot check yet (provider upheld)', (await chooseChild(bn.challenger, bn.d, { gameId, children: ops, choice: 13n, bond: BigInt(bn.d.params.game.depthBond) })).gasUsed)
    await bn.close()
  }
  {
    const { bn, gameId } = await rowGame()
    await bn.warp(86401)
    row('dispute: timeout (provider silent, slashed)', (await claimTimeout(bn.client, bn.d, { gameId })).gasUsed)
    await bn.close()
  }
} finally {
  m.close()
}
// BLOCK_TERM on 11,008-column rows (Llama-2-7B's ffn_down width) of the three weight types, as an
// extra tensor of 16 rows in place of blk.1.ffn_down.weight (a real 4,096-row tensor adds 8 levels to the row
// path: about +5,000 gas); block 60 opens the second ~2 KiB chunk for Q8_0, a middle one otherwise.
for (const [type, ggmlType, block] of [['q8_0', 8, 60], ['q4_k', 12, 20], ['q6_k', 14, 20]] as const) {
  const wide = openRealModel(type, 5, { name: 'blk.1.ffn_down.weight', ggmlType, cols: 11008, rows: 16 })
  try {
    const sc = rowScenario(wide, undefined, 'blk.1.ffn_down.weight', 3)
    const bn = await createDevnet()
    const job = await claimJob(bn, sc.t.l0.root, { nonce: 1n }, wide.tree)
    const { gameId } = await openDispute(bn.challenger, bn.d, { batchId: job.batchId, jobIndex: 0n, item: job.item, client: bn.client.account.address, proof: job.proof, bond: 10n ** 17n })
    await playBoundTrace(bn, gameId, sc.t, block + 1)
    row(`dispute: one-step BLOCK_TERM, 11,008-column ${type.toUpperCase()} row, block ${block}`, (await sc.oneStep(bn, gameId, block)).gasUsed, 'target < 300,000')
    await bn.close()
  } finally {
    wide.close()
  }
}
await net.close()

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
