/**
 * Gas table for Tessera's contracts on the embedded chain: `npm run bench:gas`. Prints the table
 * and writes it into docs/BENCHMARKS.md under "## Gas" (other sections are kept).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Hex, parseEther, toHex } from 'viem'
import { LOG_K, roundsFor, traceLeafCount, treeDepth } from '../src/chain/bisection.js'
import { claimBatch, deposit, finalizeBatch, reserve, stake } from '../src/chain/actions/settlement.js'
import { registerDataset, registerTrainedModel, withdrawData } from '../src/chain/actions/datasets.js'
import { registerModel } from '../src/chain/actions/registry.js'
import type { ClaimItem } from '../src/chain/client.js'
import { connectClients } from '../src/chain/evm/clients.js'
import { LLAMA2_7B_DEPTHS } from '../src/chain/weights.js'
import { createDevnet, fakeModel, h, makeItem, makeRequest } from '../src/chain/devnet.js'
import { attackJob } from '../src/dispute/attack.js'
import type { CheatKind } from '../src/dispute/cheats.js'
import { transitionOps } from '../src/dispute/machine/program.js'
import { type DisputeModel, openDisputeModel } from '../src/dispute/model.js'
import { encodeGguf } from '../src/engine/gguf/write.js'
import type { ModelConfig } from '../src/engine/model/config.js'
import { synthModel } from '../src/engine/model/synth.js'
import { ARITH_VERSION } from '../src/engine/version.js'
import { writeGgufFile } from '../src/runtime/ggufFile.js'
import type { JobParams } from '../src/trace/receipt.js'
import { tinyDisputeModel, tinyWidePreset } from '../test/support/disputeJobs.js'
import { benchArgs } from './util.js'

benchArgs({
  summary: 'Gas table of the contracts on the embedded chain; prints it and rewrites the "Gas" section of docs/BENCHMARKS.md.',
  usage: 'npm run bench:gas   (node --import tsx bench/gas.ts)',
})

const rows: [string, string, string][] = []
const row = (what: string, gas: bigint | number | string, note = '') => {
  rows.push([what, typeof gas === 'string' ? gas : gas.toLocaleString('en-US'), note])
}

const net = await createDevnet()
const { d, provider, client, deployer } = net
const reg = await registerModel(deployer, d, { ...fakeModel('bench-model', 32), arithVersion: toHex('tessera-arith/1', { size: 32 }) })
row('register a model', reg.gasUsed)
row('stake (first bond)', (await stake(net.auditor, d, { role: 'auditor', amount: parseEther('1') })).gasUsed)
row('deposit into escrow', (await deposit(client, d, { amount: parseEther('100') })).gasUsed)

let nonce = 1000n
async function batchOf(n: number, signers = [client]) {
  const items: ClaimItem[] = []
  for (let i = 0; i < n; i++) items.push(await makeItem(net, signers[i % signers.length], makeRequest(net, { nonce: nonce++ })))
  return claimBatch(provider, d, { items })
}
let firstBatch = -1n
for (const n of [1, 10, 100]) {
  const r = await batchOf(n)
  if (firstBatch < 0n) firstBatch = r.batchId
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
// Data provenance (docs/CHAIN.md "Data provenance"): two datasets, a model with its training
// record, claims on it (each job gives dataBps of its price to the model's contributors, credited
// once per batch), a contributor's withdrawal.
{
  const [c1, c2] = [net.at(5), net.challenger]
  const contributors = [{ address: c1.account.address, shareBps: 6000 }, { address: c2.account.address, shareBps: 4000 }]
  const ds = await registerDataset(deployer, d, { root: h('bench-dataset-a'), manifestHash: h('bench-manifest-a'), licence: 'CC0-1.0', contributors })
  row('register a dataset (2 contributors)', ds.gasUsed)
  await registerDataset(deployer, d, { root: h('bench-dataset-b'), manifestHash: h('bench-manifest-b'), licence: 'CC0-1.0', contributors: contributors.slice(1).map((x) => ({ ...x, shareBps: 10_000 })) })
  const trained = fakeModel('bench-trained', 32)
  const record = { manifestHash: h('bench-train-manifest'), runRoot: h('bench-run'), datasets: [{ root: h('bench-dataset-a'), weightBps: 7000 }, { root: h('bench-dataset-b'), weightBps: 3000 }] }
  row('register a model with a training record (2 datasets)', (await registerTrainedModel(deployer, d, { ...trained, arithVersion: toHex('tessera-arith/1', { size: 32 }), record })).gasUsed)
  for (const n of [1, 100]) {
    const items: ClaimItem[] = []
    for (let i = 0; i < n; i++) items.push(await makeItem(net, client, makeRequest(net, { nonce: nonce++, modelRoot: trained.modelRoot }), { nLayer: 32 }))
    const r = await claimBatch(provider, d, { items })
    row(`claim batch of ${n} on a trained model (one client)`, r.gasUsed, `${(r.gasUsed / BigInt(n)).toLocaleString('en-US')} gas/job; dataBps ${d.params.settlement.dataBps} of each job credited to the model`)
  }
  row("withdraw a contributor's data share (one dataset)", (await withdrawData(c1, d, { modelRoot: trained.modelRoot, datasetIndex: 0 })).gasUsed)
}

await net.warp(BigInt(d.params.settlement.challengeWindow) + 1n)
row('finalize a batch (one job)', (await finalizeBatch(provider, d, { batchId: firstBatch })).gasUsed)

// Disputes: whole machine games on real jobs of a synthesized tiny model (2 layers, Q8_0), played
// by the project's own players (src/dispute): a cheater at each op kind (the provider loses at its
// falsified element's micro-step) and lying challengers (the honest provider wins the step).
// Steps on wide rows and long windows are measured directly on the machine: docs/MACHINE.md "Gas".
await net.close()
const dir = mkdtempSync(join(tmpdir(), 'tessera-gas-'))
const modelPath = join(dir, 'tiny-q8_0.gguf')
writeGgufFile(modelPath, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 3 })))
const model = await openDisputeModel(modelPath)
const params: JobParams = { temperature: 0, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, repeatLastN: 64, maxTokens: 3, stop: [] }
const prompt = [5, 17, 42]
const moveGas = new Map<string, bigint[]>()
let maxStep = 0n
const cheatToSlash: number[] = []
async function game(what: string, a: { cheat?: CheatKind; lyingChallenger?: boolean; seed: number; microOp?: string; on?: DisputeModel }) {
  const gn = await createDevnet()
  try {
    const t0 = performance.now()
    const { on, ...rest } = a
    const r = await attackJob({ net: gn, model: on ?? model, job: { prompt, params, seed: 0n }, ...rest, nonce: 0n })
    // the tiny model's games only (a wide model's replay is slower; not the same measurement)
    if (a.cheat && !on && r.winner === 'challenger') cheatToSlash.push(performance.now() - t0)
    if (r.disputed) moveGas.set('open', [...(moveGas.get('open') ?? []), r.gas.open])
    const g = r.game
    if (!g) return
    for (const m of g.moves) {
      const kind = m.move.split(' ')[0]
      moveGas.set(kind, [...(moveGas.get(kind) ?? []), m.gasUsed])
    }
    const last = g.moves.filter((m) => m.side === 'provider').at(-1)
    if (last && /^step/.test(last.move)) {
      if (last.gasUsed > maxStep) maxStep = last.gasUsed
      const side = g.providerWon ? 'provider wins' : 'provider loses (incl. the slash settlement)'
      const at = `trace leaf ${g.at.traceLeaf}, op ${g.at.op}${r.cheat?.opName ? ` (${r.cheat.opName})` : ''}${g.at.step >= 0 ? `, step ${g.at.step}` : ''}`
      row(`dispute: ${last.move} — ${what}, ${side}`, last.gasUsed, `${r.honestWon ? 'target <= 300,000' : 'THE HONEST SIDE LOST'}; ${at}`)
    }
  } finally {
    await gn.close()
  }
}
try {
  for (const k of ['embed', 'rms_scale', 'norm', 'quant32', 'q', 'freq', 'rotcs', 'qr', 'score', 'max', 'exps', 'zinv', 'att', 'res', 'silu', 'down', 'logits', 'argmax', 'prompt', 'sample'] as const) {
    await game(`cheat ${k}`, { cheat: k, seed: 2 })
  }
  for (let seed = 1; seed <= 6; seed++) await game(`lying challenger, seed ${seed}`, { lyingChallenger: true, seed })
  // The widest rows: the tiny preset with ffDim 11,008 (Llama-2-7B's ffn_down width). A cheat that
  // falsifies a middle micro-state of a DOWN element ends at one of its BLOCK terms (the heaviest
  // read: a 2 KB weight chunk); a lying challenger (seed 1) that lands in DOWN loses at one.
  for (const type of ['q6_k', 'q4_k', 'q8_0']) {
    const wide = await tinyDisputeModel(tinyWidePreset(), type, 3)
    try {
      await game(`11,008-column ${type.toUpperCase()} ffn_down row, micro-state cheat in DOWN`, { cheat: 'micro', microOp: 'down', seed: 2, on: wide })
      if (type === 'q6_k') for (const seed of [1, 5]) await game(`11,008-column Q6_K row, lying challenger seed ${seed}`, { lyingChallenger: true, seed, on: wide })
    } finally {
      wide.close()
    }
  }
  // The same rows with Llama-2-7B's proof depths: the model tree padded with ZERO leaves to a 7B
  // model's tensor path (9 levels) and row paths (ffn_down 12): src/chain/weights.ts LLAMA2_7B_DEPTHS.
  for (const type of ['q6_k', 'q4_k', 'q8_0']) {
    const wide = await tinyDisputeModel(tinyWidePreset(), type, 3, LLAMA2_7B_DEPTHS)
    try {
      await game(`11,008-column ${type.toUpperCase()} ffn_down row at 7B proof depths, micro-state cheat in DOWN`, { cheat: 'micro', microOp: 'down', seed: 2, on: wide })
      if (type === 'q6_k') await game('11,008-column Q6_K row at 7B proof depths, lying challenger seed 5', { lyingChallenger: true, seed: 5, on: wide })
    } finally {
      wide.close()
    }
  }
} finally {
  model.close()
  rmSync(dir, { recursive: true, force: true })
}
cheatToSlash.sort((x, y) => x - y)
row('cheat-to-slash wall time: request, answer, claim, audit replay, whole game, slash (tiny model, embedded chain)', `${Math.round(cheatToSlash[Math.floor(cheatToSlash.length / 2)])} ms`, `median of ${cheatToSlash.length} cheats (min ${Math.round(cheatToSlash[0])}, max ${Math.round(cheatToSlash.at(-1) ?? 0)}); wall time, this machine, load ${loadavg()[0].toFixed(1)} at the end`)
const median = (xs: bigint[]) => [...xs].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))[Math.floor(xs.length / 2)]
for (const [kind, xs] of [...moveGas].sort()) {
  if (kind.startsWith('step')) continue
  row(`dispute move: ${kind} (median of ${xs.length})`, median(xs), kind === 'expandOps' ? 'config and params checked against registry and request' : '')
}

// Rounds and the honest side's gas for a 1,024-token answer of a 32-layer model (Llama-2-7B
// shape: dim 4096, 32 heads of 128, ff 11008, vocab 32000, Q8_0), k = 2^LOG_K children per round:
// the trace, the ops of the widest transition, naming the element (one move), the micro-steps of
// its longest program.
const big: ModelConfig = { ...model.config, arch: 'llama', nLayer: 32, dim: 4096, nHead: 32, nKvHead: 32, headDim: 128, ffDim: 11008, vocabSize: 32000, contextLength: 4096 }
const shape = (name: string) => name.includes('norm') ? { type: 0, rows: 1, cols: 4096 } : ({ type: 8, rows: name.includes('ffn_down') ? 4096 : name.includes('ffn_') ? 11008 : name.startsWith('output') || name.startsWith('token_embd') ? 32000 : 4096, cols: name.includes('ffn_down') ? 11008 : 4096 })
const ctx = (layer: number, temperature: number) => ({ config: big, arith: ARITH_VERSION, window: 0, shape, pos: 1023, layer, nPrompt: 1, sampling: { temperature, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1.1, repeatLastN: 64, seed: 0n } })
let opCount = 0
let maxSteps = 0
let maxChunks = 0
for (const c of [ctx(31, 0), ctx(32, 0), ctx(32, 0.8)]) {
  const ops = transitionOps(c as never)
  opCount = Math.max(opCount, ops.length)
  for (const op of ops) {
    if (!op.program || op.length === 0) continue
    maxChunks = Math.max(maxChunks, op.block ? op.length : Math.ceil(op.length / 256))
    // the longest element of each op is its first or last (programs grow with the index at most linearly)
    for (const j of [0, op.length - 1]) maxSteps = Math.max(maxSteps, op.program(j).steps)
  }
}
const traceRounds = roundsFor(treeDepth(traceLeafCount(1, 1024, 32)))
const opRounds = roundsFor(treeDepth(BigInt(opCount) + 1n))
const slotRounds = roundsFor(treeDepth(BigInt(maxChunks)))
const stepRounds = roundsFor(treeDepth(BigInt(maxSteps) + 1n))
const total = traceRounds + opRounds + slotRounds + stepRounds
row(`rounds, 1,024 tokens x 32 layers (k = ${1 << LOG_K})`, String(total), `at most: trace ${traceRounds} + ops ${opRounds} (${opCount} ops) + slot ${slotRounds} (${maxChunks} chunks) + steps ${stepRounds} (${maxSteps} steps), plus the chunk reveal and the naming; target <= 16`)
const m = (k: string) => median(moveGas.get(k) ?? [0n])
const honestProvider = BigInt(total) * m('reveal') + 3n * m('revealPre') + m('expandOps') + m('enterOp') + m('revealChunk') + m('expandElement') + maxStep
const honestChallenger = m('open') + BigInt(total) * m('choose') + m('nameElement')
row('whole game, 1,024 x 32: honest provider (reveals, pre-states, expansions, the step)', honestProvider, 'target <= 4,000,000; estimated from the median moves above and the heaviest step')
row('whole game, 1,024 x 32: honest challenger (the open, choices, naming)', honestChallenger, 'estimated the same way')

const table = ['| action | gas | note |', '|---|---:|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')
console.log(table)
const section = `## Gas\n\nMeasured by \`npm run bench:gas\` (bench/gas.ts) on the embedded EDR chain (Prague rules, solc 0.8.37, optimizer 200 runs), ${new Date().toISOString().slice(0, 10)}.\nEvery row is whole-transaction gas (including the 21,000 base); gas/job divides a batch by its size.\n\n${table}\n`
const file = 'docs/BENCHMARKS.md'
let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n'
const re = /## Gas\n[\s\S]*?(?=\n## |$)/
doc = re.test(doc) ? doc.replace(re, section) : `${doc.trimEnd()}\n\n${section}`
writeFileSync(file, doc)
console.log(`wrote the Gas section of ${file}`)
