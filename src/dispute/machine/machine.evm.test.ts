// Machine.sol against the TypeScript twin (src/dispute/machine/), on real tiny-model transitions:
// for llama Q8_0 (greedy), qwen2 Q4_K_M (penalized, NEOX RoPE, biases, tied embeddings, Q6_K rows),
// qwen3 Q8_0 (per-head q/k norms, head 128 beside width 256)
// and llama F16 (penalized), at several (position, layer) and heads (teacher forced, greedy,
// penalized, temperature sampling), every op's table entry, and for the first, a middle and the
// last element the first, a middle and the last step: `step` with openings built by openings.ts
// returns exactly the TS post-state leaf, `element` the TS step count and initial leaf, `result`
// accepts the true final state and refuses another, `oneStep` accepts the true LOAD / STORE /
// TOKEN and refuses a falsified post. Attacks: forged read bits, a weight of another tensor, row
// or layer, K/V of another position, a missing opening. Then a seeded fuzz over random steps
// (TESSERA_MACHINE_FUZZ_N, default 300; TESSERA_MACHINE_FUZZ_SEED).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Abi, type Hex, decodeErrorResult, encodeFunctionData, toHex } from 'viem'
import { registerModel } from '../../chain/actions/registry.js'
import { getArtifact } from '../../chain/artifacts.js'
import { connectClients, deployContract, type ChainClients } from '../../chain/evm/clients.js'
import { createEmbeddedChain, type EmbeddedChain } from '../../chain/evm/edr.js'
import type { ModelTree } from '../../chain/weights.js'
import { activation, openRealModel } from '../../../test/support/realModel.js'
import { quantize } from '../../engine/gguf/quantize.js'
import { dequantizeRow, quantizeQ8 } from '../../engine/kernels/reference.js'
import type { ModelConfig } from '../../engine/model/config.js'
import { ARITH_V1, ARITH_V2, type ArithVersion } from '../../engine/version.js'
import { Rng } from '../../../test/support/onestepGen.js'
import { type Hash, buildLevels, merkleProof, ZERO } from '../../trace/merkle.js'
import { type CtxArg, type OpeningSource, type TraceSource, ctxOf, microStateArg, oneStepProof, openStep, resultOpening, traceSource, weightOpening, weightTypeArgs } from './openings.js'
import { type MachineSampling, type OpDef, SLOT, attentionWindow, bits, executeStep, nextStep, transitionOps } from './program.js'
import { type MicroState, type SlotValue, frameProof, frameRoot, headLeafV2, layerLeafV2, microLeaf, microState, slotRoot } from './state.js'
import { type Replay, type Transition, computeTransition } from './transition.js'

const FUZZ_N = Number(process.env.TESSERA_MACHINE_FUZZ_N ?? 300)
const FUZZ_SEED = Number(process.env.TESSERA_MACHINE_FUZZ_SEED ?? 0x6d61636e)
const hx = (b: Uint8Array): Hex => toHex(b)

// ---- tiny models and jobs (as transition.test.ts) ---------------------------------------------------

import { job as replayedJob, tinyModel, type Tiny } from '../../../test/support/machineModels.js'

type Job = { tokens: number[]; replay: Replay; logitsAt(p: number): Float32Array; trace: TraceSource; prompt: number[]; sampling: MachineSampling }

function job(m: Tiny, prompt: number[], nOut: number, sampling: MachineSampling): Job {
  const { tokens, replay, logitsAt } = replayedJob(m, prompt, nOut, sampling)
  const trace = traceSource({ config: m.config, tokens, nPrompt: prompt.length, replay, logits: logitsAt, positions: tokens.length })
  return { tokens, replay, logitsAt, trace, prompt, sampling }
}

// ---- the chain --------------------------------------------------------------------------------------

let chain: EmbeddedChain
let cl: ChainClients
let machine: Hex
let harness: Hex
let registry: Hex
const abi = [...getArtifact('Machine').abi, ...getArtifact('MachineStepsA').abi, ...getArtifact('MachineStepsB').abi] as Abi
const machineAbi = getArtifact('Machine').abi as Abi

before(async () => {
  chain = await createEmbeddedChain({ accounts: 1 })
  cl = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
  const math = (await deployContract(cl, { name: 'MachineMath' })).address
  const a = (await deployContract(cl, { name: 'MachineStepsA', args: [math] })).address
  registry = (await deployContract(cl, { name: 'ModelRegistry' })).address
  const b = (await deployContract(cl, { name: 'MachineStepsB', args: [math, registry] })).address
  machine = (await deployContract(cl, { name: 'Machine', args: [a, b] })).address
  harness = (await deployContract(cl, { name: 'MachineHarness' })).address
})
after(async () => {
  await chain?.close()
})

async function read<T>(fn: string, args: readonly unknown[]): Promise<T> {
  return (await cl.public.readContract({ address: machine, abi: machineAbi, functionName: fn, args } as never)) as T
}

/** The name of a revert's custom error (and its args), from raw revert data. */
function errorOf(data: Hex): { name: string; args: readonly unknown[] } {
  const d = decodeErrorResult({ abi, data })
  return { name: d.errorName, args: (d.args ?? []) as readonly unknown[] }
}

/** The revert of a failed readContract call, decoded. */
async function revertOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (e) {
    const data = findData(e)
    if (data) return errorOf(data).name
    throw e
  }
  assert.fail('the call did not revert')
}
function findData(e: unknown): Hex | undefined {
  for (let x = e as { data?: unknown; cause?: unknown } | undefined; x; x = x.cause as typeof x) {
    if (typeof x.data === 'string' && x.data.startsWith('0x')) return x.data as Hex
    if (x.data && typeof (x.data as { data?: unknown }).data === 'string') return (x.data as { data: Hex }).data
  }
  return undefined
}

const proven = new Set<string>()
/**
 * Registers the model under `arith` (its jobs' arithmetic, which SCORE's DOT8 and ATT's ACC read
 * from the registry) unless `arith` is null, and proves the type of every 2-D tensor (what the
 * provider does once per model).
 */
async function proveTypes(tree: ModelTree, arith: ArithVersion | null = ARITH_V1) {
  if (proven.has(tree.modelRoot)) return
  proven.add(tree.modelRoot)
  if (arith) await registerModel(cl, { registry }, { modelRoot: tree.modelRoot, ...tree.proveConfig(), arithVersion: toHex(arith, { size: 32 }) })
  for (const name of tree.names) {
    if (tree.shape(name).rows < 2) continue
    const hash = await cl.wallet.writeContract({ address: machine, abi: machineAbi, functionName: 'proveWeightType', args: weightTypeArgs(tree, name) } as never)
    const r = await cl.public.waitForTransactionReceipt({ hash })
    assert.equal(r.status, 'success')
  }
}

type StepCase = { frame: Hex; pre: MicroState; reads: Hex[] }
type StepOut = { leaf: Hex; err?: Hex; gas: bigint }

/** Calldata gas of a transaction calling Machine.step with these arguments (EIP-2028: 16 / 4). */
function calldataGas(ctx: CtxArg, c: StepCase): { gas: number; bytes: number } {
  const data = encodeFunctionData({ abi: machineAbi, functionName: 'step', args: [ctx, c.frame, microStateArg(c.pre), c.reads] } as never)
  const b = Buffer.from(data.slice(2), 'hex')
  let gas = 0
  for (const x of b) gas += x === 0 ? 4 : 16
  return { gas, bytes: b.length }
}

/** Per step kind, the widest case measured: external call gas + calldata gas of its openings. */
const gasByKind = new Map<string, { exec: number; calldata: number; bytes: number; what: string }>()
function recordGas(kind: string, what: string, ctx: CtxArg, c: StepCase, exec: bigint) {
  const cd = calldataGas(ctx, c)
  const prev = gasByKind.get(kind)
  if (!prev || prev.exec + prev.calldata < Number(exec) + cd.gas) gasByKind.set(kind, { exec: Number(exec), calldata: cd.gas, bytes: cd.bytes, what })
}

/** Machine.step of every case through the harness (one eth_call per batch of 16). */
async function steps(ctx: CtxArg, cases: readonly StepCase[]): Promise<StepOut[]> {
  const out: StepOut[] = []
  const hAbi = getArtifact('MachineHarness').abi as Abi
  for (let i = 0; i < cases.length; i += 16) {
    const b = cases.slice(i, i + 16)
    const [leaves, errs, gas] = (await cl.public.readContract({
      address: harness, abi: hAbi, functionName: 'steps', gas: 1_000_000_000n,
      args: [machine, ctx, b.map((c) => c.frame), b.map((c) => microStateArg(c.pre)), b.map((c) => c.reads)],
    } as never)) as [Hex[], Hex[], bigint[]]
    leaves.forEach((leaf, k) => out.push({ leaf, err: errs[k] === '0x' ? undefined : errs[k], gas: gas[k] }))
  }
  return out
}

// ---- one transition ---------------------------------------------------------------------------------

type Setup = { m: Tiny; j: Job; t: Transition; src: OpeningSource; ctx: CtxArg; pos: number; layer: number }

function setup(m: Tiny, j: Job, pos: number, layer: number, arith: ArithVersion = ARITH_V1): Setup {
  const t = computeTransition({
    config: m.config, arith, window: attentionWindow(m.config), weights: m.weights, tokens: j.tokens, nPrompt: j.prompt.length, sampling: j.sampling, pos, layer, replay: j.replay, pre: ZERO, sortDirect: true,
  })
  const src: OpeningSource = { t, tree: m.tree, trace: j.trace, prompt: j.prompt, pos, layer }
  return { m, j, t, src, ctx: ctxOf({ tree: m.tree, traceRoot: j.trace.root, prompt: j.prompt, pos, layer, sampling: j.sampling }), pos, layer }
}

const pick3 = (n: number) => [...new Set([0, n >> 1, n - 1])].filter((x) => x >= 0)

/** The step cases of an element: the first, a middle and the last step, and one of each kind. */
function elementCases(s: Setup, k: number, elem: number): { cases: StepCase[]; want: Hex[] } {
  const states = s.t.elementStates(k, elem)
  const n = states.length - 1
  const cases: StepCase[] = []
  const want: Hex[] = []
  // the first, a middle and the last step, and the first step of every other kind in the program
  const chosen = new Set([1, Math.max(1, n >> 1), n])
  const kinds = new Set<string>()
  for (let st = 1; st <= n; st++) {
    const name = nextStep(s.t.ops, states[st - 1]).name
    if (!kinds.has(name)) chosen.add(st)
    kinds.add(name)
  }
  for (const st of [...chosen].sort((a, b) => a - b)) {
    const pre = states[st - 1]
    cases.push({ frame: hx(s.t.frames[k - 1]), pre, reads: openStep(s.src, pre) })
    want.push(hx(microLeaf(states[st])))
  }
  return { cases, want }
}

/** The pre trace leaf of the transition (op-level leaf 0) and the post. */
function preLeaf(s: Setup): Hex {
  const { pos: p, layer: l, j } = s
  if (l > 0) {
    const x = j.trace.layer(p, l - 1)
    return hx(layerLeafOf(p, l - 1, x))
  }
  if (p >= j.prompt.length) {
    const h = j.trace.head(p - 1)
    return hx(headLeafOf(p - 1, s.m.config.nLayer, h))
  }
  return hx(ZERO)
}
const layerLeafOf = (p: number, l: number, x: { x: Uint8Array; k: Uint8Array; v: Uint8Array }) => layerLeafV2(p, l, x.x, x.k, x.v)
const headLeafOf = (p: number, nl: number, h: { token: number; logitsRoot: Uint8Array }) => headLeafV2(p, nl, h.token, h.logitsRoot)

/** Step kinds checked on chain so far (the last test asserts every kind of docs/MACHINE.md was). */
const covered = new Set<string>()
const ALL_STEPS = [
  'SQ8', 'RMS_FINAL', 'NORM', 'AMAX32', 'SCALE', 'QUANT32', 'BLOCK', 'FDOT8', 'FOLD', 'BIAS', 'FREQ', 'ROTCS', 'ROPE', 'DOT8', 'FOLD_SCALE',
  'MAX8', 'EXP', 'SUM8', 'FOLD_INV', 'ACC', 'ATT_SCALE', 'RES', 'SILU', 'TOKEN', 'DEQ', 'SCAN', 'APPLY', 'ARGMAX8', 'LOGIT', 'RANK8', 'FIND8',
  'ID', 'SCALE_T', 'PROB', 'TOPP8', 'MINP_FLOOR', 'MINP8', 'MINP_END', 'KEEP_LOAD', 'TOTAL8', 'TARGET', 'PICK8', 'PICK_ID', 'HNORM',
]
const ALL_ONE_STEPS = ['LOAD TOK', 'LOAD X', 'STORE layer', 'STORE head', 'TOKEN']

const flip = (h: Hex): Hex => `0x${(BigInt(h) ^ 1n).toString(16).padStart(64, '0')}` as Hex

/** Every op of the transition against the TS twin (table, elements, steps, results, one-steps). */
async function checkTransition(s: Setup): Promise<number> {
  const { t, ctx } = s
  assert.equal(Number(await read<bigint>('opCount', [ctx])), t.ops.length, 'opCount')
  let nSteps = 0
  const allCases: StepCase[] = []
  const allWant: Hex[] = []
  const what: string[] = []
  for (const op of t.ops) {
    const [one, slot, isBlock, length] = await read<[boolean, number, boolean, bigint]>('op', [ctx, BigInt(op.op)])
    const oneStep = !op.program
    assert.deepEqual([one, slot, isBlock, Number(length)], [oneStep, op.slot < 0 ? 255 : op.slot, op.block, op.length], `op ${op.op} ${op.name}`)
    if (oneStep) {
      const proof = oneStepProof(s.src, op.op)
      const pre = op.code === 'LOAD' ? preLeaf(s) : hx(t.frames[op.op - 1] ?? ZERO)
      const post = hx(op.code === 'LOAD' ? t.frames[op.op] : t.post)
      assert.equal(await read<boolean>('oneStep', [ctx, BigInt(op.op), pre, post, proof]), true, `${op.name} accepts the true post`)
      assert.equal(await read<boolean>('oneStep', [ctx, BigInt(op.op), pre, flip(post), proof]), false, `${op.name} refuses another post`)
      covered.add(op.code === 'STORE' ? `STORE ${s.layer === s.m.config.nLayer ? 'head' : 'layer'}` : op.code === 'LOAD' ? op.name : op.code)
      continue
    }
    for (const elem of pick3(op.length)) {
      const states = t.elementStates(op.op, elem)
      const [steps, init] = await read<[bigint, Hex]>('element', [ctx, BigInt(op.op), BigInt(elem)])
      assert.deepEqual([Number(steps), init], [states.length - 1, hx(microLeaf(states[0]))], `${op.name} element ${elem}`)
      const last = states.at(-1)!
      const { slotRoot, opening } = resultOpening(s.src, op.op, elem)
      assert.equal(await read<boolean>('result', [ctx, BigInt(op.op), slotRoot, microStateArg(last), opening]), true, `${op.name} ${elem} result`)
      const other = { ...last, r: last.r.slice() }
      other.r[0] ^= 1
      assert.equal(await read<boolean>('result', [ctx, BigInt(op.op), slotRoot, microStateArg(other), opening]), false, `${op.name} ${elem} refuses another result`)
      if (states.length === 1) continue
      const { cases, want } = elementCases(s, op.op, elem)
      allCases.push(...cases)
      allWant.push(...want)
      for (const c of cases) what.push(`${op.name} elem ${elem} step ${c.pre.step + 1} (${nextStep(t.ops, c.pre).name})`)
    }
  }
  const outs = await steps(ctx, allCases)
  outs.forEach((o, i) => {
    if (o.err) assert.fail(`${what[i]}: reverted ${errorOf(o.err).name} ${errorOf(o.err).args.join(',')}`)
    assert.equal(o.leaf, allWant[i], what[i])
    covered.add(nextStep(t.ops, allCases[i].pre).name)
    recordGas(nextStep(t.ops, allCases[i].pre).name, what[i], ctx, allCases[i], o.gas)
  })
  nSteps += outs.length
  return nSteps
}

// ---- the tests -----------------------------------------------------------------------------------------

const GREEDY: MachineSampling = { temperature: 0, repeatPenalty: 1, repeatLastN: 64 }
const PENALIZED: MachineSampling = { temperature: 0, repeatPenalty: 1.5, repeatLastN: 3 }
const models = new Map<string, Tiny>()
const tiny = (preset: string, type: string, seed: number) => {
  const key = `${preset}/${type}/${seed}`
  if (!models.has(key)) models.set(key, tinyModel(preset, type, seed))
  return models.get(key)!
}

for (const [preset, type, sampling] of [['tiny', 'q8_0', GREEDY], ['tiny-qwen2', 'q4_k_m', PENALIZED], ['tiny', 'f16', PENALIZED], ['tiny-qwen3', 'q8_0', GREEDY]] as const) {
  test(`${preset} ${type}: Machine.step, element, op, result and oneStep equal the TypeScript twin`, async (tc) => {
    const m = tiny(preset, type, 3)
    await proveTypes(m.tree)
    const j = job(m, [11, 250, 3], 3, sampling) // positions 0 .. 4: prompt 0 .. 2, outputs at 3, 4
    let n = 0
    for (const [pos, layer] of [[0, 0], [2, 1], [4, 0], [4, 1]]) n += await checkTransition(setup(m, j, pos, layer))
    for (const pos of [1, 2, 4]) n += await checkTransition(setup(m, j, pos, m.config.nLayer))
    assert.ok(n > 100, `${n} steps`)
    tc.diagnostic(`${n} steps checked`)
  })
}

const SAMPLED: MachineSampling[] = [
  { temperature: 0.8, topK: 40, topP: 0.9, minP: 0.05, seed: 42n, repeatPenalty: 1.1, repeatLastN: 4 },
  { temperature: 1.5, topK: 0, topP: 1, minP: 0, seed: 7n, repeatPenalty: 1, repeatLastN: 64 },
]
for (const sampling of SAMPLED) {
  test(`temperature sampling (topK ${sampling.topK}, topP ${sampling.topP}, minP ${sampling.minP}): every head op equals the twin`, async (tc) => {
    const m = tiny('tiny', 'q8_0', 2)
    await proveTypes(m.tree)
    const j = job(m, [40, 41, 42], 4, sampling)
    let n = 0
    for (const pos of [2, 4]) n += await checkTransition(setup(m, j, pos, m.config.nLayer))
    tc.diagnostic(`${n} steps checked`)
  })
}

test('attacks: forged bits and blocks, another tensor / row / layer, K/V of another position or layer, a missing opening, no next step, a false weight type', async () => {
  const m = tiny('tiny', 'q8_0', 3)
  await proveTypes(m.tree)
  const j = job(m, [11, 250, 3], 3, GREEDY)
  const s = setup(m, j, 4, 1)
  const { t, ctx } = s
  const opNamed = (name: string) => t.ops.find((o) => o.name === name)!
  const stepOf = (name: string, elem: number, st: number): StepCase => {
    const states = t.elementStates(opNamed(name).op, elem)
    return { frame: hx(t.frames[opNamed(name).op - 1]), pre: states[st - 1], reads: openStep(s.src, states[st - 1]) }
  }
  const expectErr = async (c: StepCase, name: string, what: string) => {
    const [o] = await steps(ctx, [c])
    assert.ok(o.err, `${what}: reverts`)
    assert.equal(errorOf(o.err!).name, name, what)
    return errorOf(o.err!)
  }
  // a forged read value: the RES step's X word with one bit flipped in its chunk (valid shape, wrong bits)
  const res = stepOf('RES X2', 5, 1)
  const forged = res.reads.slice()
  // WordsOpening: offset, 5 head words, framePath (length + 6), chunk length, then the chunk: word 5 at +20
  const chunkByte = (h: Hex, at: number): Hex => {
    const b = Buffer.from(h.slice(2), 'hex')
    b[at] ^= 0x40
    return `0x${b.toString('hex')}`
  }
  forged[0] = chunkByte(res.reads[0], 32 * 14 + 4 * 5 + 1)
  const e1 = await expectErr({ ...res, reads: forged }, 'BadReadProof', 'forged X word')
  assert.equal(e1.args[0], 0n)
  // a weight of another tensor (blk.1.attn_k for attn_q), another row, another layer
  const q = stepOf('Q', 3, 2)
  for (const [tensor, row, what] of [['blk.1.attn_k.weight', 3, 'another tensor'], ['blk.1.attn_q.weight', 4, 'another row'], ['blk.0.attn_q.weight', 3, 'another layer']] as const) {
    const reads = q.reads.slice()
    reads[0] = weightOpening(m.tree, tensor, row, 1)
    await expectErr({ ...q, reads }, 'BadReadProof', what)
  }
  // a matmul's tensor leaf is checked against the leaf proveWeightType recorded (its honest opening
  // above carries no path); any other op's weight read still proves its leaf by the path: a norm
  // weight opened without one is refused
  const nrm = opNamed('NORM blk.1.ffn_norm.weight') ? stepOf('NORM blk.1.ffn_norm.weight', 5, 1) : undefined
  assert.ok(nrm, 'the layer has its ffn norm op')
  const wi = nextStep(t.ops, nrm.pre).reads.findIndex((r) => r.kind === 'weight')
  assert.ok(wi >= 0, 'NORM step 1 reads its weight')
  const wr = nextStep(t.ops, nrm.pre).reads[wi]
  if (wr?.kind !== 'weight') throw new Error('unreachable')
  const noPath = nrm.reads.slice()
  noPath[wi] = weightOpening(m.tree, wr.tensor, wr.row, wr.start, true)
  await expectErr({ ...nrm, reads: noPath }, 'BadReadProof', 'a norm weight without its tensor path')
  // K/V of another position: ACC over u = 1 with the V of leaf (2, 1)
  const att = opNamed('ATT')
  const elem = 1 * m.config.headDim + 5
  const acc = stepOf('ATT', elem, 2)
  assert.equal(nextStep(t.ops, acc.pre).name, 'ACC')
  const other: Setup = { ...s }
  const kvReads = openStep(other.src, t.elementStates(att.op, elem)[2]) // step 3 reads V of leaf (2, 1)
  const e2 = await expectErr({ ...acc, reads: [acc.reads[0], kvReads[1]] }, 'BadReadProof', 'V of another position')
  assert.equal(e2.args[0], 1n)
  // K/V of the same position in another layer: leaf (1, 0) offered for leaf (1, 1)
  const otherLayer = setup(m, j, 4, 0)
  const accL0 = openStep(otherLayer.src, otherLayer.t.elementStates(otherLayer.t.ops.find((o) => o.name === 'ATT')!.op, elem)[1])
  const e3 = await expectErr({ ...acc, reads: [acc.reads[0], accL0[1]] }, 'BadReadProof', 'V of another layer')
  assert.equal(e3.args[0], 1n)
  // a forged activation block (one int8 changed) for a BLOCK step
  const qb = stepOf('Q', 3, 2)
  assert.equal(nextStep(t.ops, qb.pre).name, 'BLOCK')
  const blk = qb.reads.slice()
  // BlockOpening: offset, 5 head words, framePath (length + 6), qa length, then qa: int8 3 at +3
  blk[1] = chunkByte(qb.reads[1], 32 * 14 + 3)
  const e4 = await expectErr({ ...qb, reads: blk }, 'BadReadProof', 'forged activation block')
  assert.equal(e4.args[0], 1n)
  // a missing opening
  await expectErr({ ...acc, reads: [acc.reads[0]] }, 'BadReadProof', 'missing opening')
  // the head STORE's stop rule: had the token consumed at p = 4 been an end-of-generation token, STORE is refused
  const head = setup(m, j, 4, m.config.nLayer)
  const store = head.t.ops.at(-1)!
  const storeArgs = (c: CtxArg) => [c, BigInt(store.op), hx(head.t.frames[store.op - 1]), hx(head.t.post), oneStepProof(head.src, store.op)]
  assert.equal(await read<boolean>('oneStep', storeArgs(head.ctx)), true)
  const eogCtx = { ...head.ctx, config: { ...head.ctx.config, eogTokens: [j.tokens[4]] } }
  assert.equal(await read<boolean>('oneStep', storeArgs(eogCtx)), false, 'STORE after an end-of-generation token')
  // weight types: known once proven; a tensor leaf that is not under the root is refused
  const [known, wt] = await read<[boolean, number]>('weightType', [m.tree.modelRoot, toHex(new TextEncoder().encode('blk.1.attn_q.weight'))])
  assert.deepEqual([known, wt], [true, m.tree.shape('blk.1.attn_q.weight').type])
  const args = [...weightTypeArgs(m.tree, 'blk.1.attn_q.weight')]
  args[3] = 12 // claim Q4_K for a Q8_0 tensor
  assert.equal(await revertOf(cl.public.simulateContract({ address: machine, abi: machineAbi, functionName: 'proveWeightType', args, account: cl.account } as never)), 'BadTensorProof')
  // the final state has no step
  const states = t.elementStates(att.op, elem)
  await expectErr({ frame: hx(t.frames[att.op - 1]), pre: states.at(-1)!, reads: [] }, 'NoSuchStep', 'after the last step')
  // a post one ulp off is not what the judge returns
  const [ok] = await steps(ctx, [acc])
  const off = { ...states[2], r: states[2].r.slice() }
  off.r[0] += 1
  assert.equal(ok.leaf, hx(microLeaf(states[2])))
  assert.notEqual(ok.leaf, hx(microLeaf(off)))
  // an unproven matmul type: element of another model root reverts UnknownWeightType
  const c2 = { ...ctx, modelRoot: flip(ctx.modelRoot) }
  assert.equal(await revertOf(read('element', [c2, BigInt(opNamed('Q').op), 0n])), 'UnknownWeightType')
  // the wrong pre frame: the step's slot openings no longer verify
  const [wrongFrame] = await steps(ctx, [{ ...res, frame: flip(res.frame) }])
  assert.equal(errorOf(wrongFrame.err!).name, 'BadReadProof')
})

// tessera-arith/2 differs from v1 in two steps only: SCORE's DOT8 and ATT's ACC read each cached
// K / V value rounded to binary16. The model's registration decides which the judge runs: the same
// transition (one replay's words) under v1 on a v1 model and under v2 on a v2 model, every DOT8
// and ACC step of a few elements, cached positions from the trace (u < p) and the frame (u = p).
test('the arithmetic: DOT8 and ACC equal the twin under the registered arithmetic (v1 and v2); a provider that computed the other one loses those steps; a root registered under none reverts UnknownArith', async (tc) => {
  const models = [[tiny('tiny', 'q8_0', 3), ARITH_V1, ARITH_V2], [tiny('tiny', 'q8_0', 6), ARITH_V2, ARITH_V1]] as const
  for (const [m, arith, other] of models) {
    await proveTypes(m.tree, arith)
    const j = job(m, [11, 250, 3], 3, GREEDY)
    let differs = 0, n = 0
    for (const [pos, layer] of [[0, 0], [4, 1]]) {
      const s = setup(m, j, pos, layer, arith)
      // the provider that computed the other arithmetic, stepping from the same agreed pre-state
      const wrong = transitionOps({ config: m.config, arith: other, window: 0, shape: (t) => m.weights(t), pos, layer, nPrompt: j.prompt.length, sampling: GREEDY })
      const cases: StepCase[] = [], want: Hex[] = [], bad: Hex[] = [], what: string[] = []
      for (const name of ['SCORE', 'ATT']) {
        const op = s.t.ops.find((o) => o.name === name)!
        for (const elem of pick3(op.length)) {
          const states = s.t.elementStates(op.op, elem)
          for (let st = 1; st < states.length; st++) {
            const step = nextStep(s.t.ops, states[st - 1])
            if (step.name !== 'DOT8' && step.name !== 'ACC') continue
            const values = step.reads.map((r) => s.t.read(op.op, r))
            cases.push({ frame: hx(s.t.frames[op.op - 1]), pre: states[st - 1], reads: openStep(s.src, states[st - 1]) })
            want.push(hx(microLeaf(states[st])))
            bad.push(hx(microLeaf(executeStep(wrong, states[st - 1], values))))
            what.push(`${arith} (${pos}, ${layer}) ${name} elem ${elem} step ${st} (${step.name})`)
          }
        }
      }
      const outs = await steps(s.ctx, cases)
      outs.forEach((o, i) => {
        if (o.err) assert.fail(`${what[i]}: reverted ${errorOf(o.err).name}`)
        assert.equal(o.leaf, want[i], what[i])
        if (bad[i] !== want[i]) {
          differs++
          assert.notEqual(o.leaf, bad[i], `${what[i]}: the judge refuses the other arithmetic's post-state`)
        }
        if (arith === ARITH_V2) recordGas(`${nextStep(s.t.ops, cases[i].pre).name} (tessera-arith/2)`, what[i], s.ctx, cases[i], o.gas)
      })
      n += outs.length
      if (arith === ARITH_V2 && pos === 4) {
        // a model root registered under no arithmetic: its DOT8 / ACC steps revert, never judged as v1
        const unregistered = { ...s.ctx, modelRoot: flip(s.ctx.modelRoot) }
        const [o] = await steps(unregistered, [cases[0], cases.at(-1)!])
        assert.ok(o.err, 'an unregistered root reverts')
        assert.deepEqual(errorOf(o.err).name, 'UnknownArith')
      }
    }
    // rounding to binary16 changes almost every product: the two arithmetics are told apart
    assert.ok(differs > n / 2, `${arith}: ${differs} of ${n} DOT8/ACC post-states differ from the other arithmetic's`)
    tc.diagnostic(`${arith}: ${n} DOT8/ACC steps, ${differs} of them decided against the other arithmetic`)
  }
})

// A sliding-window model (config leaf tessera-config/3+window, registered with W): the machine reads
// W from the registry and runs SCORE, MAX, EXPS, ZINV and ATT over the last n_u = min(p + 1, W)
// positions, p + 1 − n_u .. p. W = 3 on a job of positions 0 .. 4: at p = 1 (< W) two positions, at
// p = 4 three, SCORE / ATT element 0 reading K / V of trace leaf (2, l), the last the frame.
test('sliding window W = 3: op lengths, elements, results and steps of SCORE, MAX, EXPS, ZINV and ATT equal the twin at p < W and p >= W; a provider that ignored the window is refused', async (tc) => {
  const key = 'tiny/q8_0/3/W3'
  if (!models.has(key)) models.set(key, tinyModel('tiny', 'q8_0', 3, 3))
  const m = models.get(key)!
  assert.equal(attentionWindow(m.config), 3)
  await proveTypes(m.tree)
  const j = job(m, [11, 250, 3], 3, GREEDY)
  let n = 0
  for (const [pos, layer] of [[1, 0], [4, 1]]) {
    const s = setup(m, j, pos, layer)
    n += await checkTransition(s)
    const [, , , scoreLen] = await read<[boolean, number, boolean, bigint]>('op', [s.ctx, BigInt(s.t.ops.find((o) => o.name === 'SCORE')!.op)])
    assert.equal(Number(scoreLen), m.config.nHead * Math.min(pos + 1, 3), `(${pos}, ${layer}): n_u`)
    if (pos < 3) continue
    // the provider that ignored the window: full attention over positions 0 .. p
    const full = transitionOps({ config: { ...m.config, slidingWindow: undefined }, arith: ARITH_V1, window: 0, shape: (t) => m.weights(t), pos, layer, nPrompt: j.prompt.length, sampling: GREEDY })
    assert.equal(full.find((o) => o.name === 'SCORE')!.length, m.config.nHead * (pos + 1))
    // ATT element 0, its first ACC: the judge reads V of position p − 2 (trace leaf), the full-attention program V of position 0
    const att = s.t.ops.find((o) => o.name === 'ATT')!
    const pre = s.t.elementStates(att.op, 0)[0]
    const mineRead = nextStep(s.t.ops, pre).reads[1]
    const theirRead = nextStep(full, pre).reads[1]
    assert.deepEqual([mineRead.kind, (mineRead as { pos: number }).pos, (theirRead as { pos: number }).pos], ['kv', pos - 2, 0])
    const [o] = await steps(s.ctx, [{ frame: hx(s.t.frames[att.op - 1]), pre, reads: openStep(s.src, pre) }])
    assert.equal(o.err, undefined)
    assert.equal(o.leaf, hx(microLeaf(s.t.elementStates(att.op, 0)[1])))
    const theirs = executeStep(full, pre, nextStep(full, pre).reads.map((r) => s.t.read(att.op, r)))
    assert.notEqual(o.leaf, hx(microLeaf(theirs)), 'the full-attention step is not the judge\'s')
  }
  tc.diagnostic(`${n} steps checked`)
})

test(`seeded fuzz: ${FUZZ_N} random steps of random elements equal the twin`, async () => {
  const rng = new Rng(FUZZ_SEED)
  const m1 = tiny('tiny', 'q8_0', 3)
  const m2 = tiny('tiny-qwen2', 'q4_k_m', 3)
  const m3 = tiny('tiny', 'f16', 3)
  const m4 = tiny('tiny', 'q8_0', 2)
  const m5 = tiny('tiny', 'q4_0', 3)
  const m6 = tiny('tiny', 'bf16', 3)
  for (const m of [m1, m2, m3, m4, m5, m6]) await proveTypes(m.tree)
  const j1 = job(m1, [11, 250, 3], 3, GREEDY)
  const j2 = job(m2, [11, 250, 3], 3, PENALIZED)
  const j3 = job(m3, [11, 250, 3], 3, PENALIZED)
  const j4 = job(m4, [40, 41, 42], 4, SAMPLED[0])
  const setups = [
    ...[[0, 0], [3, 1], [4, 1], [4, 2]].flatMap(([p, l]) => [setup(m1, j1, p, l), setup(m2, j2, p, l), setup(m3, j3, p, l)]),
    setup(m4, j4, 3, 2), setup(m4, j4, 5, 2),
    ...[[3, 0], [4, 1]].flatMap(([p, l]) => [setup(m5, job(m5, [11, 250, 3], 3, GREEDY), p, l), setup(m6, job(m6, [11, 250, 3], 3, GREEDY), p, l)]),
  ]
  let done = 0
  while (done < FUZZ_N) {
    const s = setups[rng.int(setups.length)]
    const ops = s.t.ops.filter((o) => o.program && o.length > 0)
    const cases: StepCase[] = []
    const want: Hex[] = []
    for (let i = 0; i < 16 && done + i < FUZZ_N; i++) {
      const op = ops[rng.int(ops.length)]
      const elem = rng.int(op.length)
      const states = s.t.elementStates(op.op, elem)
      if (states.length < 2) continue
      const st = 1 + rng.int(states.length - 1)
      cases.push({ frame: hx(s.t.frames[op.op - 1]), pre: states[st - 1], reads: openStep(s.src, states[st - 1]) })
      want.push(hx(microLeaf(states[st])))
    }
    const outs = await steps(s.ctx, cases)
    outs.forEach((o, i) => {
      if (o.err) assert.fail(`fuzz case ${done + i}: reverted ${errorOf(o.err).name}`)
      assert.equal(o.leaf, want[i], `fuzz case ${done + i} (op ${cases[i].pre.op} elem ${cases[i].pre.elem} step ${cases[i].pre.step + 1})`)
    })
    done += Math.max(cases.length, 1)
  }
})

test('MachineMath.dequant equals dequantizeRow for every weight type (DEQ of any embedding type)', async () => {
  const math = (await deployContract(cl, { name: 'MachineMath' })).address
  const mAbi = getArtifact('MachineMath').abi as Abi
  const rng = new Rng(FUZZ_SEED ^ 0x5a5a)
  for (const type of [0, 1, 30, 2, 8, 12, 14]) {
    const size = type === 12 || type === 14 ? 256 : type === 2 || type === 8 ? 32 : 1
    const bytesPer = { 0: 4, 1: 2, 30: 2, 2: 18, 8: 34, 12: 144, 14: 210 }[type]!
    for (let t = 0; t < 3; t++) {
      const row = quantize(type, activation(size, 100 * type + t))
      assert.equal(row.length, bytesPer)
      const want = new Float32Array(size)
      dequantizeRow(type, row, want)
      for (let n = 0; n < Math.min(size, 24); n++) {
        const i = size === 1 ? 0 : rng.int(size)
        const got = (await cl.public.readContract({ address: math, abi: mAbi, functionName: 'dequant', args: [type, hx(row), BigInt(i)] } as never)) as number
        assert.equal(got, bits(want[i]), `type ${type} value ${i}`)
      }
    }
  }
})

test('coverage: every step kind and one-step op of docs/MACHINE.md was checked on chain', () => {
  const missing = [...ALL_STEPS, ...ALL_ONE_STEPS].filter((n) => !covered.has(n))
  assert.deepEqual(missing, [], `not checked: ${missing.join(', ')}`)
})

// ---- gas -----------------------------------------------------------------------------------------------

/** A stand-in transition holding only the given slots (for steps far wider than a tiny model's). */
function sparseSource(ops: OpDef[], slots: Map<number, SlotValue>, tree: ModelTree, trace: TraceSource, prompt: number[], pos: number, layer: number): { src: OpeningSource; frame: Hash } {
  const roots: (Hash | undefined)[] = new Array(64).fill(undefined)
  const all: (SlotValue | undefined)[] = new Array(64).fill(undefined)
  for (const [k, v] of slots) {
    roots[k] = slotRoot(v)
    all[k] = v
  }
  const t = { ops, slots: all, frameProof: (_k: number, slot: number) => frameProof(roots, slot) } as unknown as Transition
  return { src: { t, tree, trace, prompt, pos, layer }, frame: frameRoot(roots) }
}

/** The trace of `trace` padded to `positions` positions: the same leaves, a deeper tree (a long job's path length). */
function deepTrace(trace: TraceSource, known: number, positions: number): TraceSource {
  const L = trace.nLayer
  const leaves: Hash[] = new Array(positions * (L + 1)).fill(ZERO)
  for (let u = 0; u < known; u++) {
    for (let l = 0; l < L; l++) leaves[u * (L + 1) + l] = layerLeafOf(u, l, trace.layer(u, l))
    leaves[u * (L + 1) + L] = headLeafOf(u, L, trace.head(u))
  }
  const levels = buildLevels(leaves)
  return {
    root: levels.at(-1)![0], nLayer: L,
    layer: (u, l) => ({ ...trace.layer(u, l), path: merkleProof(levels, u * (L + 1) + l) }),
    head: (u) => ({ ...trace.head(u), path: merkleProof(levels, u * (L + 1) + L) }),
  }
}

test('gas: every step kind at its widest (BLOCK on 11,008-column rows, ACC/DOT8 with a depth-16 trace path)', async (tc) => {
  // BLOCK: the last block of row 0 of an 11,008-column ffn_down (Q8_0, Q4_K, Q6_K), read against A4
  for (const [type, ggmlType] of [['q8_0', 8], ['q4_k', 12], ['q6_k', 14]] as const) {
    const rm = openRealModel(type, 5, { name: 'blk.1.ffn_down.weight', ggmlType, cols: 11008, rows: 256 })
    try {
      const tree = rm.tree
      await proveTypes(tree, null)
      const base = tree.proveConfig().config
      const config: ModelConfig = { ...tiny('tiny', 'q8_0', 3).config, ffDim: 11008 }
      const shape = (n: string) => tree.shape(n)
      const ops = transitionOps({ config, arith: ARITH_V1, window: 0, shape, pos: 0, layer: 1, nPrompt: 1, sampling: GREEDY })
      const down = ops.find((o) => o.name === 'DOWN')!
      const h = activation(11008, 9)
      const slots = new Map<number, SlotValue>([[SLOT.H, { kind: 'words', words: new Uint32Array(h.buffer) }]])
      for (const [slot, B] of [[SLOT.A4_32, 32], [SLOT.A4_256, 256]] as const) {
        const q = quantizeQ8(h, B)
        slots.set(slot, { kind: 'blocks', blocks: Array.from(q.d, (d, b) => ({ da: bits(d), qa: new Uint8Array(q.q.buffer, b * B, B) })) })
      }
      const trace: TraceSource = { root: ZERO, nLayer: 2, layer: () => assert.fail('no K/V read'), head: () => assert.fail('no head read') }
      const { src, frame } = sparseSource(ops, slots, tree, trace, [1], 0, 1)
      const nb = down.program!(0).steps - 1
      const pre = microState(down.op, 0, nb - 1)
      const ctx = { ...ctxOf({ tree, traceRoot: ZERO, prompt: [1], pos: 0, layer: 1, sampling: GREEDY }), config: { ...base, ffDim: 11008 } }
      const c: StepCase = { frame: hx(frame), pre, reads: openStep(src, pre) }
      const [o] = await steps(ctx, [c])
      assert.equal(o.err, undefined, `BLOCK ${type} reverted ${o.err && errorOf(o.err).name}`)
      recordGas(`BLOCK ${type.toUpperCase()} 11,008 cols`, `ffn_down row 0 block ${nb - 1}`, ctx, c, o.gas)
    } finally {
      rm.close()
    }
  }
  // ACC and DOT8 reading K/V of an earlier leaf with the path of a 1,024-position, 2-layer trace,
  // one step per call as a game's stepMicro makes it (the registry read cold), under either arithmetic
  for (const [m, arith, tag] of [[tiny('tiny', 'q8_0', 3), ARITH_V1, ''], [tiny('tiny', 'q8_0', 6), ARITH_V2, ', tessera-arith/2']] as const) {
    await proveTypes(m.tree, arith)
    const j = job(m, [11, 250, 3], 3, GREEDY)
    const deep = deepTrace(j.trace, j.tokens.length, 1024 * 32 / 3)
    const s = setup(m, { ...j, trace: deep }, 4, 1, arith)
    const ctx = { ...s.ctx, traceRoot: hx(deep.root) }
    for (const [name, elem, st, label] of [['ATT', m.config.headDim + 5, 1, 'ACC (trace leaf V, depth-16 path'], ['SCORE', 1, 1, 'DOT8 (trace leaf K, depth-16 path']] as const) {
      const op = s.t.ops.find((o) => o.name === name)!
      const pre = s.t.elementStates(op.op, elem)[st - 1]
      const c: StepCase = { frame: hx(s.t.frames[op.op - 1]), pre, reads: openStep(s.src, pre) }
      const [o] = await steps(ctx, [c])
      assert.equal(o.err, undefined)
      assert.equal(o.leaf, hx(microLeaf(s.t.elementStates(op.op, elem)[st])))
      recordGas(`${label}${tag})`, `${name} elem ${elem} step ${st}`, ctx, c, o.gas)
    }
  }
  const rows = [...gasByKind].sort((a, b) => b[1].exec + b[1].calldata - (a[1].exec + a[1].calldata))
  for (const [kind, g] of rows) {
    tc.diagnostic(`| ${kind} | ${g.exec.toLocaleString('en')} | ${g.calldata.toLocaleString('en')} (${g.bytes.toLocaleString('en')} B) | ${(g.exec + g.calldata).toLocaleString('en')} | ${g.what} |`)
  }
  // every step leaves the game's ~80k of overhead under 300,000
  for (const [kind, g] of rows) assert.ok(g.exec + g.calldata <= 220_000, `${kind}: ${g.exec + g.calldata} gas`)
})
