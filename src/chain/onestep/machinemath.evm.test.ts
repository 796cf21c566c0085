// The dispute machine's heavy scalar steps (src/chain/contracts/MachineMath.sol, built on
// CanonMath) against the TypeScript twin's own step functions (src/dispute/machine/program.ts,
// reached through layerOps and each element program's `step(s).run`), on the embedded EVM:
// >= 10,240 seeded cases per step kind (EXPS, SILU, FREQ, ROTCS, EMBED's DEQ per weight type).
// The machine's end-to-end test opens reads and checks leaves for a few cases per kind; this one
// drives the arithmetic of each kind through many values, the edge cases included.
//
// Results are compared as the judge's bits, every NaN canonical (docs/ARITHMETIC.md "Notation").
// Where the twin's raw bits hold a different NaN (a sign or payload the judge drops), the test
// counts it as a diagnostic: an honest trace never holds a NaN, but a twin state with such a NaN
// would not hash like the judge's.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { bytesToHex } from 'viem'
import { type OpDef, type ProgramContext, layerOps } from '../../dispute/machine/program.js'
import { ARITH_V1 } from '../../engine/version.js'
import type { MicroState } from '../../dispute/machine/state.js'
import { BLOCK, GGMLType } from '../../engine/gguf/types.js'
import * as canon from '../../engine/math/canonical.js'
import type { ModelConfig } from '../../engine/model/config.js'
import * as sf from '../../../test/support/softfloat.js'
import { startHarnesses, type HarnessChain } from '../../../test/support/harnessChain.js'
import { genF32, Rng, SPECIALS, hexWord as hex } from '../../../test/support/onestepGen.js'

const SEED = Number(process.env.TESSERA_FUZZ_SEED ?? 0x3a7e_0001)
const N = Number(process.env.TESSERA_FUZZ_N ?? 2_048)
const BATCH = 512
const f = Math.fround
const { fromBits, NAN, SIGN } = sf
const isNaNBits = (x: number): boolean => (x & 0x7fffffff) > 0x7f800000
const canonical = (x: number): number => (isNaNBits(x) ? NAN : x >>> 0)

function gasSummary(samples: readonly bigint[]): string {
  const s = samples.map(Number).sort((a, b) => a - b)
  return JSON.stringify({ min: s[0], median: s[s.length >> 1], max: s[s.length - 1], n: s.length })
}

let h: HarnessChain
let math: `0x${string}`
before(async () => {
  h = await startHarnesses(['MachineMathHarness', 'MachineMath'])
  // startHarnesses installs the i-th name at 0x7e5·2^16 + i
  math = `0x${(0x7e5 * 0x10000 + 1).toString(16).padStart(40, '0')}`
})
after(async () => {
  await h?.close()
})

// ------------------------------------------------------------------ the twin's step functions

type Shape = { hd?: number; ropeBase?: number; pos?: number; layer?: number; embType?: number }

/** A small llama-shaped context (Q8_0 matrices, F32 norms) whose op tables hold every kind tested. */
function context({ hd = 64, ropeBase = 10000, pos = 0, layer = 1, embType = GGMLType.F32 }: Shape): ProgramContext {
  const nh = 4, nkv = 2, dim = 256, ff = 512
  const config: ModelConfig = {
    arch: 'llama', dim, nLayer: 2, nHead: nh, nKvHead: nkv, headDim: hd, ffDim: ff, vocabSize: 16,
    contextLength: 16384, ropeBase, rmsEps: f(1e-5), hasQkvBias: false, hasQkNorm: false, tiedEmbeddings: false,
  }
  const q8 = GGMLType.Q8_0
  const shapes: Record<string, { type: number; rows: number; cols: number }> = {
    'token_embd.weight': { type: embType, rows: 16, cols: dim },
    'attn_norm.weight': { type: GGMLType.F32, rows: 1, cols: dim },
    'ffn_norm.weight': { type: GGMLType.F32, rows: 1, cols: dim },
    'attn_q.weight': { type: q8, rows: nh * hd, cols: dim },
    'attn_k.weight': { type: q8, rows: nkv * hd, cols: dim },
    'attn_v.weight': { type: q8, rows: nkv * hd, cols: dim },
    'attn_output.weight': { type: q8, rows: dim, cols: nh * hd },
    'ffn_gate.weight': { type: q8, rows: ff, cols: dim },
    'ffn_up.weight': { type: q8, rows: ff, cols: dim },
    'ffn_down.weight': { type: q8, rows: dim, cols: ff },
  }
  return {
    config, arith: ARITH_V1, window: 0, pos, layer, nPrompt: 1, sampling: { temperature: 0, repeatPenalty: 1, repeatLastN: 0 },
    shape: (t) => {
      const s = shapes[t.replace(/^blk\.\d+\./, '')]
      if (!s) throw new Error(`no tensor ${t}`)
      return s
    },
  }
}

/** Runs steps 1 .. upTo of element j of the op with `code`, giving step s the reads values(s). */
function run(ops: OpDef[], code: string, j: number, values: (s: number) => unknown[], upTo = 1): MicroState {
  const op = ops.find((o) => o.code === code)
  if (!op?.program) throw new Error(`no ${code} op`)
  const prog = op.program(j)
  let s = prog.init
  for (let k = 1; k <= upTo; k++) s = prog.step(k, s).run(s, values(k) as never)
  return s
}
const w1 = (x: number): Uint32Array => Uint32Array.of(x)

// One table per shape is enough for the kinds whose values come in through reads.
const opsPlain = layerOps(context({}))

// ------------------------------------------------------------------ generators

const uniform = (rng: Rng, lo: number, hi: number): number => sf.toBits(f(lo + (rng.u32() / 2 ** 32) * (hi - lo)))
function ulps(rng: Rng, x: number, spread: number): number {
  const y = Math.min(Math.max((x & 0x7fffffff) + rng.range(-spread, spread), 0), 0x7f7fffff)
  return ((x & SIGN) | y) >>> 0
}
const EXP_EDGES = [sf.toBits(f(88.72283935546875)), sf.toBits(f(-87.33654022216797))]

/** Attention scores and their head maximum: mostly s ≤ m as in softmax, and the EXP range ends. */
function genScorePair(rng: Rng): [number, number] {
  switch (rng.int(5)) {
    case 0: return [genF32(rng), genF32(rng)]
    case 1: {
      const m = uniform(rng, -50, 50)
      return [m, m] // the maximum itself: EXP(+0) = 1
    }
    case 2: {
      // s ⊖ m at the EXP range ends
      const d = ulps(rng, rng.pick(EXP_EDGES), 8)
      return [d, 0]
    }
    default: {
      const m = uniform(rng, -20, 40)
      return [sf.toBits(f(fromBits(m) - fromBits(uniform(rng, 0, 40)))), m]
    }
  }
}

function genSiluPair(rng: Rng): [number, number] {
  const g = rng.int(4) === 0 ? genF32(rng) : rng.int(4) === 0 ? (ulps(rng, rng.pick(EXP_EDGES), 8) ^ SIGN) >>> 0 : uniform(rng, -30, 30)
  const u = rng.int(4) === 0 ? genF32(rng) : uniform(rng, -10, 10)
  return [g, u]
}

function genF16(rng: Rng): number {
  if (rng.int(8) === 0) return rng.u32() & 0xffff
  return ((rng.bool() ? 0x8000 : 0) | (rng.range(1, 20) << 10) | (rng.u32() & 0x3ff)) >>> 0
}

/** A raw GGUF block of `type`, its f16 scales drawn to be mostly ordinary. */
function genBlock(rng: Rng, type: number): Uint8Array {
  const b = rng.bytes(BLOCK[type].bytes)
  const put16 = (off: number, v: number) => {
    b[off] = v & 0xff
    b[off + 1] = v >> 8
  }
  if (type === GGMLType.F32) new DataView(b.buffer).setUint32(0, rng.bool() ? genF32(rng) : uniform(rng, -2, 2), true)
  if (type === GGMLType.F16) put16(0, genF16(rng))
  if (type === GGMLType.Q8_0 || type === GGMLType.Q4_0 || type === GGMLType.Q5_0) put16(0, genF16(rng))
  if (type === GGMLType.Q4_1 || type === GGMLType.Q5_1) {
    put16(0, genF16(rng))
    put16(2, genF16(rng))
  }
  if (type === GGMLType.Q4_K || type === GGMLType.Q5_K) {
    put16(0, genF16(rng))
    put16(2, genF16(rng))
  }
  if (type === GGMLType.Q6_K) put16(208, genF16(rng))
  if (type === GGMLType.Q3_K) put16(108, genF16(rng))
  if (type === GGMLType.Q2_K) {
    put16(80, genF16(rng))
    put16(82, genF16(rng))
  }
  return b
}

// ------------------------------------------------------------------ tests

/** Compares judge bits with the twin's: canonical equality must hold; raw NaN differences are counted. */
function check(kind: string, got: readonly number[], want: readonly number[], where: (i: number) => string): number {
  let nanDiffs = 0
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== canonical(want[i])) assert.fail(`${kind}: solidity ${hex(got[i])}, twin ${hex(want[i])}: ${where(i)}`)
    if (got[i] !== want[i] >>> 0) nanDiffs++
  }
  return nanDiffs
}

test(`MachineMath.expDiff equals the twin's EXPS step on ${N} cases`, async (t) => {
  const seed = SEED
  const rng = new Rng(seed)
  const gas: bigint[] = []
  let nanDiffs = 0
  for (let done = 0; done < N; done += BATCH) {
    const pairs = Array.from({ length: BATCH }, () => genScorePair(rng))
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('MachineMathHarness', 'expDiff', [math, pairs.map((p) => p[0]), pairs.map((p) => p[1])])
    const want = pairs.map(([s, m]) => run(opsPlain, 'EXPS', 0, () => [w1(s), w1(m)]).r[0])
    nanDiffs += check('EXPS', r, want, (i) => `s ${hex(pairs[i][0])}, m ${hex(pairs[i][1])} (seed ${hex(seed)})`)
    gas.push(...g)
  }
  t.diagnostic(`gas MachineMath.expDiff ${gasSummary(gas)}; twin NaN bits differing from the canonical NaN: ${nanDiffs}`)
})

test(`MachineMath.siluMul equals the twin's SILU step on ${N} cases`, async (t) => {
  const seed = SEED + 1
  const rng = new Rng(seed)
  const gas: bigint[] = []
  let nanDiffs = 0
  for (let done = 0; done < N; done += BATCH) {
    const pairs = Array.from({ length: BATCH }, () => genSiluPair(rng))
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('MachineMathHarness', 'siluMul', [math, pairs.map((p) => p[0]), pairs.map((p) => p[1])])
    const want = pairs.map(([gv, u]) => run(opsPlain, 'SILU', 0, () => [w1(gv), w1(u)]).r[0])
    nanDiffs += check('SILU', r, want, (i) => `g ${hex(pairs[i][0])}, u ${hex(pairs[i][1])} (seed ${hex(seed)})`)
    gas.push(...g)
  }
  t.diagnostic(`gas MachineMath.siluMul ${gasSummary(gas)}; twin NaN bits differing from the canonical NaN: ${nanDiffs}`)
})

test(`MachineMath.freq equals the twin's FREQ step on ${N} cases (any base and head dim)`, async (t) => {
  const seed = SEED + 2
  const rng = new Rng(seed)
  const gas: bigint[] = []
  let nanDiffs = 0
  for (let done = 0; done < N; done += BATCH) {
    const cases = Array.from({ length: BATCH }, () => {
      const hd = rng.pick([64, 80, 96, 128, 256, 8])
      const base = rng.int(4) === 0
        ? sf.toBits(f(rng.pick([10000, 500000, 1000000, 1e4 + rng.range(-50, 50), 8e6])))
        : rng.int(3) === 0 ? genF32(rng) : uniform(rng, 1, 2e7)
      return { j: rng.int(hd / 2), hd, base }
    })
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('MachineMathHarness', 'freq', [
      math, cases.map((c) => BigInt(c.j)), cases.map((c) => c.hd), cases.map((c) => c.base)])
    // the twin reads base from the config (a JS number): a NaN base's bits are not carried, so the
    // judge's rule (LOG of NaN is NaN) gives the expected value there
    const want = cases.map((c) => (isNaNBits(c.base) ? NAN : run(layerOps(context({ hd: c.hd, ropeBase: fromBits(c.base) })), 'FREQ', c.j, () => []).r[0]))
    nanDiffs += check('FREQ', r, want, (i) => `j ${cases[i].j}, hd ${cases[i].hd}, base ${hex(cases[i].base)} (seed ${hex(seed)})`)
    gas.push(...g)
  }
  t.diagnostic(`gas MachineMath.freq ${gasSummary(gas)}; twin NaN bits differing from the canonical NaN: ${nanDiffs}`)
})

test(`MachineMath.rotcs equals the twin's ROTCS step on ${N} cases (positions to 16383)`, async (t) => {
  const seed = SEED + 3
  const rng = new Rng(seed)
  const gas: bigint[] = []
  let nanDiffs = 0
  const tables = new Map<number, OpDef[]>()
  const opsAt = (pos: number): OpDef[] => {
    let o = tables.get(pos)
    if (!o) tables.set(pos, (o = layerOps(context({ pos }))))
    return o
  }
  for (let done = 0; done < N; done += BATCH) {
    const cases = Array.from({ length: BATCH }, () => {
      const pos = rng.int(3) === 0 ? rng.pick([0, 1, 8191, 8192, 16383]) : rng.int(16384)
      const i = rng.int(32)
      const fr = rng.int(4) === 0
        ? (rng.int(3) === 0 ? rng.pick(SPECIALS) : genF32(rng))
        : sf.toBits(canon.exp(f(f(f(-2 * i) / 64) * canon.log(f(rng.pick([10000, 500000, 1000000]))))))
      return { pos: rng.int(64) === 0 ? rng.int(64) : pos, j: 2 * i + rng.int(2), fr }
    })
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('MachineMathHarness', 'rotcs', [
      math, cases.map((c) => c.pos), cases.map((c) => c.fr), cases.map((c) => (c.j & 1) === 1)])
    const want = cases.map((c) => run(opsAt(c.pos), 'ROTCS', c.j, () => [w1(c.fr)]).r[0])
    nanDiffs += check('ROTCS', r, want, (i) => `pos ${cases[i].pos}, j ${cases[i].j}, fr ${hex(cases[i].fr)} (seed ${hex(seed)})`)
    gas.push(...g)
  }
  t.diagnostic(`gas MachineMath.rotcs ${gasSummary(gas)}; twin NaN bits differing from the canonical NaN: ${nanDiffs}`)
})

const TYPES: [string, number][] = [['F32', GGMLType.F32], ['F16', GGMLType.F16], ['BF16', GGMLType.BF16], ['Q8_0', GGMLType.Q8_0], ['Q4_0', GGMLType.Q4_0], ['Q4_1', GGMLType.Q4_1], ['Q5_0', GGMLType.Q5_0], ['Q5_1', GGMLType.Q5_1], ['Q2_K', GGMLType.Q2_K], ['Q3_K', GGMLType.Q3_K], ['Q4_K', GGMLType.Q4_K], ['Q5_K', GGMLType.Q5_K], ['Q6_K', GGMLType.Q6_K]]
for (const [name, type] of TYPES) {
  test(`MachineMath.dequant(${name}) equals the twin's EMBED DEQ step on ${N} values`, async (t) => {
    const seed = SEED + 16 + type
    const rng = new Rng(seed)
    const ops = layerOps(context({ layer: 0, embType: type }))
    const bs = BLOCK[type].size
    const gas: bigint[] = []
    let nanDiffs = 0
    const per = BLOCK[type].bytes > 100 ? 256 : BATCH
    for (let done = 0; done < N; done += per) {
      const cases = Array.from({ length: per }, () => ({ blk: genBlock(rng, type), j: rng.int(256), tok: rng.int(16) }))
      const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('MachineMathHarness', 'dequant', [
        math, type, cases.map((c) => bytesToHex(c.blk)), cases.map((c) => BigInt(c.j % bs))])
      // EMBED element j: TOKEN (reads TOK[0]), then DEQ (reads block floor(j / bs) of that row)
      const want = cases.map((c) => run(ops, 'EMBED', c.j, (s) => (s === 1 ? [w1(c.tok)] : [c.blk]), 2).r[0])
      nanDiffs += check(`DEQ ${name}`, r, want, (i) => `block ${bytesToHex(cases[i].blk)}, value ${cases[i].j % bs} (seed ${hex(seed)})`)
      gas.push(...g)
    }
    t.diagnostic(`gas MachineMath.dequant ${name} ${gasSummary(gas)}; twin NaN bits differing from the canonical NaN: ${nanDiffs}`)
  })
}
