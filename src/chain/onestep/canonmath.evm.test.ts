// CanonMath.sol against the engine's own reference code (src/engine/math/canonical.ts,
// src/engine/math/half.ts, quantizeQ8 in src/engine/kernels/reference.ts) on the embedded EVM:
// >= 10,240 seeded cases per function, in batches through eth_call. Prints the median gas per
// call as a diagnostic (the table in docs/ONESTEP.md, "Canonical math on chain").
//
// The references work on JS numbers; results are compared as binary32 bits, every NaN as the
// judge's canonical 0x7FC00000 (docs/ARITHMETIC.md "Notation"). LOG on a NaN is unspecified by
// the spec, so there the expected result is the judge's NaN rule, not the engine's.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { bytesToHex, hexToBytes } from 'viem'
import * as canon from '../../engine/math/canonical.js'
import { f2h as refF2h, h2f as refH2f } from '../../engine/math/half.js'
import { quantizeQ8 } from '../../engine/kernels/reference.js'
import * as sf from '../../../test/support/softfloat.js'
import { startHarnesses, type HarnessChain } from '../../../test/support/harnessChain.js'
import { genF32, genInt32, Rng, SPECIALS, hexWord as hex } from '../../../test/support/onestepGen.js'

const SEED = Number(process.env.TESSERA_FUZZ_SEED ?? 0xca70_0001)
const N = Number(process.env.TESSERA_FUZZ_N ?? 2_048)
const BATCH = 512
const f = Math.fround
const { fromBits, SIGN, NAN } = sf

/** Bits of a reference result, every NaN canonical. */
const bits = (v: number): number => (Number.isNaN(v) ? NAN : sf.toBits(v))
const isNaNBits = (x: number): boolean => (x & 0x7fffffff) > 0x7f800000

/** Median of gas samples (the table reports min / median / max). */
function gasSummary(samples: readonly bigint[]): string {
  const s = samples.map(Number).sort((a, b) => a - b)
  return JSON.stringify({ min: s[0], median: s[s.length >> 1], max: s[s.length - 1], n: s.length })
}

let h: HarnessChain
before(async () => {
  h = await startHarnesses(['CanonMathHarness'])
})
after(async () => {
  await h?.close()
})

// ------------------------------------------------------------------ generators

/** x moved by a few ulps (sign kept, clamped to finite). */
function ulps(rng: Rng, x: number, spread = 4): number {
  const y = Math.min(Math.max((x & 0x7fffffff) + rng.range(-spread, spread), 0), 0x7f7fffff)
  return ((x & SIGN) | y) >>> 0
}
const uniform = (rng: Rng, lo: number, hi: number): number => sf.toBits(f(lo + (rng.u32() / 2 ** 32) * (hi - lo)))
const withExp = (rng: Rng, e: number, neg = rng.bool()): number => ((neg ? SIGN : 0) | (e << 23) | (rng.u32() & 0x7fffff)) >>> 0

const EXP_MAX = sf.toBits(f(88.72283935546875))
const EXP_MIN = sf.toBits(f(-87.33654022216797))
const LOG2E = f(1.44269502162933349609375)

function genExpArg(rng: Rng): number {
  switch (rng.int(9)) {
    case 0: return genF32(rng)
    case 1: return rng.pick(SPECIALS)
    case 2: return ulps(rng, rng.pick([EXP_MAX, EXP_MIN]), 8) // the range ends, both sides
    case 3: {
      // (x ⊗ log2e) ⊕ 0.5 near an integer: k changes there, r is at its extremes
      const n = rng.range(-126, 128)
      return ulps(rng, sf.toBits(f((n - 0.5) / LOG2E)), 6)
    }
    case 4: return uniform(rng, -30, 0) // softmax: s - m <= 0
    case 5: return withExp(rng, rng.range(0, 126)) // |x| < 1, subnormals included
    case 6: return uniform(rng, 80, 88.8) // k = 127, 128
    case 7: return uniform(rng, -87.4, -80) // results near and in the subnormals
    default: return uniform(rng, -90, 90)
  }
}

const SQRTH_FRAC = sf.toBits(f(0.70710677)) & 0x7fffff
function genLogArg(rng: Rng): number {
  switch (rng.int(7)) {
    case 0: return genF32(rng) // any bits: zero, negative, subnormal, Inf, NaN
    case 1: return withExp(rng, rng.range(1, 254), false) // positive normals
    case 2: return ulps(rng, 0x3f800000, 64) // near 1
    case 3: return ((rng.range(1, 254) << 23) | ((SQRTH_FRAC + rng.range(-3, 3)) & 0x7fffff)) >>> 0 // m near √½
    case 4: return sf.toBits(f(rng.pick([10000, 500000, 1000000, 1e4 + rng.range(-100, 100), 8e6, 2e5]))) // RoPE bases
    case 5: return rng.pick(SPECIALS)
    default: return uniform(rng, 1, 1e7)
  }
}

const FOPI = f(1.27323954473516)
/** RoPE angles i2f(p) ⊗ freq_i exactly as the engine forms them, and the reduction's edges. */
function genAngle(rng: Rng): number {
  switch (rng.int(9)) {
    case 0: return genF32(rng)
    case 1: return rng.pick(SPECIALS)
    case 2: {
      const hd = rng.pick([64, 128, 80, 96])
      const base = f(rng.pick([10000, 500000, 1000000]))
      const i = rng.int(hd / 2)
      const freq = canon.exp(f(f(f(-2 * i) / hd) * canon.log(base)))
      return sf.toBits(f(f(rng.range(0, 8192)) * freq))
    }
    case 3: return sf.toBits(f(rng.range(0, 8192))) // freq_0 = 1: integer angles up to 8192
    case 4: {
      // x ⊗ 4/π near an integer: the octant changes there and r is near ±π/4
      const n = rng.range(0, 10432)
      return ulps(rng, sf.toBits(f(n / FOPI)), 6)
    }
    case 5: return uniform(rng, 0, 8192)
    case 6: return withExp(rng, rng.range(0, 126), rng.int(8) === 0) // tiny angles, some negative
    case 7: return uniform(rng, -8192, 0) // outside the spec's domain: the engine's steps still hold
    default: return withExp(rng, rng.range(127, 160), false) // large angles up to 2^33
  }
}

function genSiluArg(rng: Rng): number {
  switch (rng.int(6)) {
    case 0: return genF32(rng)
    case 1: return rng.pick(SPECIALS)
    case 2: return ulps(rng, (rng.pick([EXP_MAX, EXP_MIN]) ^ SIGN) >>> 0, 8) // EXP(0 ⊖ x) at its range ends
    case 3: return uniform(rng, -20, 20)
    case 4: return withExp(rng, rng.range(0, 126))
    default: return uniform(rng, -100, 100)
  }
}

/** binary32 values at the binary16 rounding edges: ties, overflow, the binary16 subnormals. */
function genF2hArg(rng: Rng): number {
  const sign = rng.bool() ? SIGN : 0
  switch (rng.int(7)) {
    case 0: return genF32(rng)
    case 1: {
      // normal binary16 range, low 13 bits a tie (0x1000) or one away from it
      const e = rng.range(113, 142)
      const man = ((rng.u32() & 0x7fe000) | 0x1000) + rng.range(-1, 1)
      return (sign | (e << 23) | (man & 0x7fffff)) >>> 0
    }
    case 2: {
      // binary16 subnormal range (2^-25 .. 2^-14): tie at the shifted position
      const e = rng.range(101, 112)
      const shift = 14 - (e - 112)
      const man = ((rng.u32() & 0x7fffff) & ~((1 << shift) - 1)) | (1 << (shift - 1))
      return (sign | (e << 23) | ((man + rng.range(-1, 1)) & 0x7fffff)) >>> 0
    }
    case 3: return (sign | ulps(rng, sf.toBits(rng.pick([65504, 65520, 6.103515625e-5, 5.960464477539063e-8, 2.9802322387695312e-8])), 3)) >>> 0
    case 4: return rng.pick(SPECIALS)
    case 5: return withExp(rng, rng.range(95, 145))
    default: return sf.toBits(f(f(rng.u32() / 2 ** 26) / 127)) // activation scales amax ⊘ 127
  }
}

/** Activation-like values: the mixes quantization sees, plus its edge cases. */
function genActivation(rng: Rng, n: number): number[] {
  const kind = rng.int(10)
  const scale = 2 ** rng.range(-20, 20)
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    switch (kind) {
      case 0: out.push(genF32(rng)); break // anything, NaN and Inf included
      case 1: out.push(0); break // all zero: d = 0, id = 0
      case 2: {
        // ties: amax = 127·2^s gives d = 2^s, id = 2^-s, so (k + ½)·2^s lands on k + ½ exactly
        const s = rng.range(-20, 20)
        out.push(sf.toBits(f((i === 0 ? 127 : (rng.range(-127, 126) + 0.5)) * 2 ** s)))
        break
      }
      case 3: out.push(withExp(rng, rng.range(0, 3))); break // subnormal blocks: d rounds to 0 or id overflows
      case 4: out.push(withExp(rng, rng.range(240, 254))); break // huge
      case 5: out.push(rng.int(16) === 0 ? rng.pick([0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001]) : uniform(rng, -scale, scale)); break
      default: out.push(uniform(rng, -scale, scale))
    }
  }
  return out
}

// ------------------------------------------------------------------ unary functions

type Unary = [name: string, op: number, gen: (r: Rng) => number, ref: (x: number) => number]
const unaries: Unary[] = [
  ['exp', 0, genExpArg, (x) => bits(canon.exp(fromBits(x)))],
  ['log', 1, genLogArg, (x) => (isNaNBits(x) ? NAN : bits(canon.log(fromBits(x))))],
  ['sin', 2, genAngle, (x) => bits(canon.sin(fromBits(x)))],
  ['cos', 3, genAngle, (x) => bits(canon.cos(fromBits(x)))],
  ['silu', 4, genSiluArg, (x) => bits(canon.silu(fromBits(x)))],
  ['roundHalf', 5, genF2hArg, (x) => bits(refH2f(refF2h(fromBits(x))))],
  ['neg', 6, genF32, (x) => (isNaNBits(x) ? NAN : (x ^ SIGN) >>> 0)],
]

for (const [name, op, gen, ref] of unaries) {
  test(`CanonMath.${name} equals the engine on ${N} cases`, async (t) => {
    const seed = SEED + op
    const rng = new Rng(seed)
    const gas: bigint[] = []
    for (let done = 0; done < N; done += BATCH) {
      const x = Array.from({ length: BATCH }, () => gen(rng))
      const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('CanonMathHarness', 'unary', [op, x])
      for (let i = 0; i < BATCH; i++) {
        const want = ref(x[i])
        if (r[i] !== want) assert.fail(`${name}(${hex(x[i])} = ${fromBits(x[i])}): solidity ${hex(r[i])}, engine ${hex(want)} (seed ${hex(seed)})`)
      }
      gas.push(...g)
    }
    t.diagnostic(`gas ${name} ${gasSummary(gas)}`)
  })
}

test(`CanonMath.f2h equals half.ts f2h on ${N} cases`, async (t) => {
  const seed = SEED + 10
  const rng = new Rng(seed)
  const gas: bigint[] = []
  for (let done = 0; done < N; done += BATCH) {
    const x = Array.from({ length: BATCH }, () => genF2hArg(rng))
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('CanonMathHarness', 'f2h', [x])
    for (let i = 0; i < BATCH; i++) {
      // A JS number does not carry a NaN's sign reliably: for NaN inputs the engine's result is
      // its rule spelled on the bits (sign kept, quiet binary16 NaN).
      const want = isNaNBits(x[i]) ? ((x[i] >>> 16) & 0x8000) | 0x7e00 : refF2h(fromBits(x[i]))
      if (r[i] !== want) assert.fail(`f2h(${hex(x[i])}): solidity ${hex(r[i])}, engine ${hex(want)} (seed ${hex(seed)})`)
    }
    gas.push(...g)
  }
  t.diagnostic(`gas f2h ${gasSummary(gas)}`)
})

/**
 * R(x) = h2f(f2h(x)), the rounding tessera-arith/2 applies to every cached K and V value attention
 * reads (DOT8 of SCORE, ACC of ATT; docs/ONESTEP.md "R"), at its edges, each with the bits it must
 * give written out (not only half.ts's): a wrong tie rule, a flushed subnormal, a missed overflow
 * or a NaN that is not canonical fails here whatever the fuzz above draws.
 */
test('R = roundHalf at its edges: ±0, binary16 subnormals and their ties, the normal ties, 65504 and overflow to Inf, NaN', async () => {
  const cases: [string, number, number][] = [
    ['+0', 0x00000000, 0x00000000],
    ['-0', 0x80000000, 0x80000000],
    ['2^-24, the least subnormal', 0x33800000, 0x33800000],
    ['2^-25, a tie between 0 and 2^-24: to the even 0', 0x33000000, 0x00000000],
    ['-2^-25: -0', 0xb3000000, 0x80000000],
    ['2^-25 + 1 ulp: up to 2^-24', 0x33000001, 0x33800000],
    ['3·2^-25, a tie between 2^-24 and 2^-23: to the even 2^-23', 0x33c00000, 0x34000000],
    ['5·2^-25, a tie between 2·2^-24 and 3·2^-24: to the even 2·2^-24', 0x34200000, 0x34000000],
    ['2^-26, under half the least subnormal: 0', 0x32800000, 0x00000000],
    ['1023·2^-24, the greatest subnormal', 0x387fc000, 0x387fc000],
    ['2^-14, the least normal', 0x38800000, 0x38800000],
    ['2^-14 − 2^-25, a tie between the greatest subnormal and 2^-14: to the even 2^-14', 0x387fe000, 0x38800000],
    ['1 + 2^-11, a tie between 1 and 1 + 2^-10: to the even 1', 0x3f801000, 0x3f800000],
    ['1 + 3·2^-11, a tie: to the even 1 + 2^-9', 0x3f803000, 0x3f804000],
    ['1 + 2^-11 + 2^-23, past the tie: up', 0x3f801001, 0x3f802000],
    ['-(1 + 2^-11 − 2^-23), below the tie: down', 0xbf800fff, 0xbf800000],
    ['65504, the greatest binary16', 0x477fe000, 0x477fe000],
    ['65519, under the tie: 65504', 0x477fef00, 0x477fe000],
    ['65520, the tie above 65504: to the even, Inf', 0x477ff000, 0x7f800000],
    ['-1e10: -Inf', 0xd01502f9, 0xff800000],
    ['+Inf', 0x7f800000, 0x7f800000],
    ['-Inf', 0xff800000, 0xff800000],
    ['quiet NaN', 0x7fc00000, NAN],
    ['signalling NaN with a payload', 0x7f800001, NAN],
    ['negative NaN', 0xffc00000, NAN],
    ['NaN with high payload bits', 0x7fbfe000, NAN],
  ]
  const [r] = await h.call<[readonly number[], readonly bigint[]]>('CanonMathHarness', 'unary', [5, cases.map((c) => c[1])])
  cases.forEach(([what, x, want], i) => {
    assert.equal(hex(r[i]), hex(want), `R(${what}) on chain`)
    assert.equal(hex(bits(refH2f(refF2h(fromBits(x))))), hex(want), `R(${what}) in half.ts`)
  })
})

// ------------------------------------------------------------------ comparisons, integers

test(`CanonMath.gt/ge/lt/le equal IEEE comparisons on ${N} pairs`, async (t) => {
  const seed = SEED + 11
  const rng = new Rng(seed)
  const gas: bigint[] = []
  for (let done = 0; done < N; done += BATCH) {
    const a: number[] = []
    const b: number[] = []
    for (let i = 0; i < BATCH; i++) {
      const x = genF32(rng)
      const k = rng.int(4)
      a.push(x)
      b.push(k === 0 ? x : k === 1 ? ulps(rng, x, 2) : k === 2 ? (rng.bool() ? (x ^ SIGN) >>> 0 : rng.pick([0, SIGN])) : genF32(rng))
    }
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('CanonMathHarness', 'compare', [a, b])
    for (let i = 0; i < BATCH; i++) {
      const x = fromBits(a[i]), y = fromBits(b[i])
      const want = (x > y ? 1 : 0) | (x >= y ? 2 : 0) | (x < y ? 4 : 0) | (x <= y ? 8 : 0)
      if (r[i] !== want) assert.fail(`compare(${hex(a[i])}, ${hex(b[i])}): solidity ${r[i]}, IEEE ${want} (seed ${hex(seed)})`)
    }
    gas.push(...g)
  }
  t.diagnostic(`gas gt ${gasSummary(gas)}`)
})

const INT256_MAX = (1n << 255n) - 1n
for (const [name, op, ref] of [['floor', 0, Math.floor], ['trunc', 1, Math.trunc]] as const) {
  test(`CanonMath.${name} equals Math.${name} on ${N} cases`, async (t) => {
    const seed = SEED + 12 + op
    const rng = new Rng(seed)
    const gas: bigint[] = []
    for (let done = 0; done < N; done += BATCH) {
      const x = Array.from({ length: BATCH }, () => {
        switch (rng.int(4)) {
          case 0: return genF32(rng)
          case 1: return sf.toBits(f(rng.range(-1000, 1000) + rng.pick([0, 0.5, 0.25, 0.75, 1e-3])))
          case 2: return withExp(rng, rng.range(120, 160))
          default: return ulps(rng, sf.toBits(rng.range(-200, 200)), 2)
        }
      })
      const [r, g] = await h.call<[readonly bigint[], readonly bigint[]]>('CanonMathHarness', 'toInt', [op, x])
      for (let i = 0; i < BATCH; i++) {
        const v = fromBits(x[i])
        // non-finite inputs: the documented 0 / int256 extremes
        const want = Number.isNaN(v) ? 0n : v === Infinity ? INT256_MAX : v === -Infinity ? -INT256_MAX - 1n : BigInt(ref(v))
        if (r[i] !== want) assert.fail(`${name}(${hex(x[i])} = ${v}): solidity ${r[i]}, JS ${want} (seed ${hex(seed)})`)
      }
      gas.push(...g)
    }
    t.diagnostic(`gas ${name} ${gasSummary(gas)}`)
  })
}

test(`CanonMath.i2f equals round-to-nearest-even on ${N} integers (int32 and up to 2^127)`, async (t) => {
  const seed = SEED + 14
  const rng = new Rng(seed)
  const gas: bigint[] = []
  for (let done = 0; done < N; done += BATCH) {
    const n: bigint[] = Array.from({ length: BATCH }, () => {
      if (rng.bool()) return BigInt(genInt32(rng))
      const e = BigInt(rng.range(24, 126))
      const base = (1n << e) + ((rng.u64() << 64n) | rng.u64()) % (1n << e)
      // exact ties above 2^24: the bits below the kept 24 are 100..0
      const v = rng.int(3) === 0 ? (base >> (e - 23n) << (e - 23n)) | (1n << (e - 24n)) : base
      return rng.bool() ? -v : v
    })
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('CanonMathHarness', 'i2f', [n])
    for (let i = 0; i < BATCH; i++) {
      const v = n[i]
      const want = v === 0n ? 0 : v < 0n ? sf.pack(SIGN, 0, -v) : sf.pack(0, 0, v)
      if (v >= -(2n ** 31n) && v < 2n ** 31n) assert.equal(want, sf.toBits(f(Number(v))), 'TS pack vs fround')
      if (r[i] !== want) assert.fail(`i2f(${v}): solidity ${hex(r[i])}, ts ${hex(want)} (seed ${hex(seed)})`)
    }
    gas.push(...g)
  }
  t.diagnostic(`gas i2f ${gasSummary(gas)}`)
})

// ------------------------------------------------------------------ SUM8 / DOT8, RMS scale

/** 8 lanes or values for the reductions: mostly ordinary magnitudes, some specials and cancellation. */
function genLane(rng: Rng, prev: number): number {
  switch (rng.int(6)) {
    case 0: return genF32(rng)
    case 1: return (ulps(rng, prev, 2) ^ (rng.bool() ? SIGN : 0)) >>> 0 // cancels its neighbour
    default: return uniform(rng, -4, 4)
  }
}
const gen8 = (rng: Rng): number[] => {
  const out: number[] = []
  for (let l = 0; l < 8; l++) out.push(genLane(rng, out[l - 1] ?? 0x3f800000))
  return out
}

test(`CanonMath.fold8 equals canonical.fold on ${N} cases`, async (t) => {
  const seed = SEED + 15
  const rng = new Rng(seed)
  const gas: bigint[] = []
  for (let done = 0; done < N; done += BATCH) {
    const groups = Array.from({ length: BATCH }, () => gen8(rng))
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('CanonMathHarness', 'fold8', [groups.flat()])
    for (let i = 0; i < BATCH; i++) {
      const v = groups[i].map(fromBits)
      const want = bits(canon.fold(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]))
      if (r[i] !== want) assert.fail(`fold8(${groups[i].map(hex)}): solidity ${hex(r[i])}, engine ${hex(want)} (seed ${hex(seed)})`)
    }
    gas.push(...g)
  }
  t.diagnostic(`gas fold8 ${gasSummary(gas)}`)
})

test(`CanonMath.dot8Step + fold8 (= dot8) equal canonical.dot8 on ${N} groups of 8`, async (t) => {
  const seed = SEED + 16
  const rng = new Rng(seed)
  const gStep: bigint[] = []
  const gFold: bigint[] = []
  for (let done = 0; done < N; done += BATCH) {
    const a = Array.from({ length: BATCH }, () => gen8(rng))
    const b = Array.from({ length: BATCH }, () => gen8(rng))
    const [r, gs, gf] = await h.call<[readonly number[], readonly bigint[], readonly bigint[]]>('CanonMathHarness', 'dot8', [a.flat(), b.flat()])
    for (let i = 0; i < BATCH; i++) {
      const want = bits(canon.dot8(a[i].map(fromBits), 0, b[i].map(fromBits), 0, 8))
      if (r[i] !== want) assert.fail(`dot8(${a[i].map(hex)}, ${b[i].map(hex)}): solidity ${hex(r[i])}, engine ${hex(want)} (seed ${hex(seed)})`)
    }
    gStep.push(...gs)
    gFold.push(...gf)
  }
  t.diagnostic(`gas dot8Step ${gasSummary(gStep)}`)
  t.diagnostic(`gas fold8(after dot8Step) ${gasSummary(gFold)}`)
})

for (const dot of [false, true]) {
  const name = dot ? 'DOT8' : 'SUM8'
  // Compositions of the steps tested above, over whole vectors: N / 5 vectors (~7 steps each)
  // keep the EVM time of the file near a minute.
  const vectors = Math.ceil(N / 5)
  test(`CanonMath ${name} by 8-lane steps equals canonical.${dot ? 'dot8' : 'sum8'} on ${vectors} vectors of length 0..100`, async () => {
    const seed = SEED + 17 + Number(dot)
    const rng = new Rng(seed)
    const PER = 128
    for (let done = 0; done < vectors; done += PER) {
      const len = Array.from({ length: PER }, () => rng.int(101))
      const a: number[] = []
      const b: number[] = []
      for (const n of len) {
        for (let i = 0; i < n; i++) {
          a.push(rng.int(16) === 0 ? genF32(rng) : uniform(rng, -8, 8))
          b.push(rng.int(16) === 0 ? genF32(rng) : uniform(rng, -8, 8))
        }
      }
      // the vector's first word sits at start (mod 8 matters): the steps then start mid-lane
      const start = len.map(() => BigInt(rng.int(16)))
      const r = await h.call<readonly number[]>('CanonMathHarness', 'chain', [dot, a, dot ? b : [], len.map(BigInt), start])
      let off = 0
      for (let k = 0; k < PER; k++) {
        const av = a.slice(off, off + len[k]).map(fromBits)
        const bv = b.slice(off, off + len[k]).map(fromBits)
        const want = bits(dot ? canon.dot8(av, 0, bv, 0, len[k]) : canon.sum8(av))
        if (r[k] !== want) assert.fail(`${name} of length ${len[k]} at offset ${off}: solidity ${hex(r[k])}, engine ${hex(want)} (seed ${hex(seed)})`)
        off += len[k]
      }
    }
  })
}

test(`CanonMath.rmsScale equals canonical.rmsnorm's scale on ${N} cases`, async (t) => {
  const seed = SEED + 19
  const rng = new Rng(seed)
  const gas: bigint[] = []
  for (let done = 0; done < N; done += BATCH) {
    const ss: number[] = []
    const n: number[] = []
    const eps: number[] = []
    const want: number[] = []
    for (let i = 0; i < BATCH; i++) {
      const e = f(rng.pick([1e-5, 1e-6, 1e-5, 0, fromBits(genF32(rng))]))
      if (rng.int(4) !== 0) {
        // the engine's own rmsnorm with x_0 = 1 and w = 1: out_0 = 1 ⊗ s ⊗ 1 = s exactly
        const len = rng.range(1, 96)
        const x = new Float32Array(len)
        const scale = 2 ** rng.range(-30, 30)
        x[0] = 1
        for (let k = 1; k < len; k++) x[k] = fromBits(uniform(rng, -scale, scale))
        const out = new Float32Array(len)
        canon.rmsnorm(out, 0, x, 0, new Float32Array(len).fill(1), len, e)
        ss.push(sf.toBits(canon.dot8(x, 0, x, 0, len)))
        n.push(len)
        want.push(bits(out[0]))
      } else {
        // any ss and n: the same line of rmsnorm, 1 ⊘ √((ss ⊘ i2f(n)) ⊕ eps)
        const s = genF32(rng)
        const len = rng.range(1, 1 << 20)
        ss.push(s)
        n.push(len)
        want.push(bits(f(1 / f(Math.sqrt(f(f(fromBits(s) / len) + e))))))
      }
      eps.push(sf.toBits(e))
    }
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('CanonMathHarness', 'rmsScale', [ss, n, eps])
    for (let i = 0; i < BATCH; i++) {
      if (r[i] !== want[i]) assert.fail(`rmsScale(${hex(ss[i])}, ${n[i]}, ${hex(eps[i])}): solidity ${hex(r[i])}, engine ${hex(want[i])} (seed ${hex(seed)})`)
    }
    gas.push(...g)
  }
  t.diagnostic(`gas rmsScale ${gasSummary(gas)}`)
})

// ------------------------------------------------------------------ activation quantization

test(`CanonMath.amax32 equals the engine's running Math.max(|x|) on ${N} cases`, async (t) => {
  const seed = SEED + 20
  const rng = new Rng(seed)
  const gas: bigint[] = []
  for (let done = 0; done < N; done += BATCH) {
    const acc = Array.from({ length: BATCH }, () => (rng.bool() ? 0 : (genF32(rng) & 0x7fffffff) >>> 0))
    const x = Array.from({ length: BATCH }, () => genActivation(rng, 32))
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('CanonMathHarness', 'amax32', [acc, x.flat()])
    for (let i = 0; i < BATCH; i++) {
      // quantizeQ8's loop: amax = Math.max(amax, Math.abs(x_i))
      let m = fromBits(acc[i])
      for (const v of x[i]) m = Math.max(m, Math.abs(fromBits(v)))
      if (r[i] !== bits(m)) assert.fail(`amax32(${hex(acc[i])}, ${x[i].map(hex)}): solidity ${hex(r[i])}, engine ${hex(bits(m))} (seed ${hex(seed)})`)
    }
    gas.push(...g)
  }
  t.diagnostic(`gas amax32 ${gasSummary(gas)}`)
})

for (const b32 of [true, false]) {
  test(`CanonMath.blockScale (B = ${b32 ? 32 : 256}) equals quantizeQ8's d, id, d_a on ${N} cases`, async (t) => {
    const seed = SEED + 21 + Number(b32)
    const rng = new Rng(seed)
    const gas: bigint[] = []
    for (let done = 0; done < N; done += BATCH) {
      const amax = Array.from({ length: BATCH }, () => {
        switch (rng.int(4)) {
          case 0: return (genF32(rng) & 0x7fffffff) >>> 0
          case 1: return (genF2hArg(rng) & 0x7fffffff) >>> 0
          case 2: return withExp(rng, rng.range(0, 8), false) // d subnormal or 0, 1 ⊘ d overflows
          default: return uniform(rng, 0, 100)
        }
      })
      const [d, id, da, g] = await h.call<[readonly number[], readonly number[], readonly number[], readonly bigint[]]>(
        'CanonMathHarness', 'blockScale', [amax, b32])
      for (let i = 0; i < BATCH; i++) {
        // quantizeQ8's lines, for a block whose amax is given
        const db = f(fromBits(amax[i]) / 127)
        const wantId = db === 0 ? 0 : f(1 / db)
        const wantDa = b32 ? refH2f(refF2h(db)) : db
        const got = [d[i], id[i], da[i]]
        const want = [bits(db), bits(wantId), bits(wantDa)]
        if (got.join() !== want.join()) assert.fail(`blockScale(${hex(amax[i])}): solidity ${got.map(hex)}, engine ${want.map(hex)} (seed ${hex(seed)})`)
      }
      gas.push(...g)
    }
    t.diagnostic(`gas blockScale B=${b32 ? 32 : 256} ${gasSummary(gas)}`)
  })
}

test(`CanonMath.quantize32Packed (and quantize32 on every 4th) equal quantizeQ8's rounding on ${N} groups of 32 with any id`, async (t) => {
  const seed = SEED + 23
  const rng = new Rng(seed)
  const gasP: bigint[] = []
  const gasA: bigint[] = []
  const PER = 256
  for (let done = 0; done < N; done += PER) {
    const x = Array.from({ length: PER }, () => genActivation(rng, 32))
    const id = x.map((xs) => {
      if (rng.int(4) === 0) return genF32(rng)
      let m = 0
      for (const v of xs) m = Math.max(m, Math.abs(fromBits(v)))
      const d = f(m / 127)
      return bits(d === 0 ? 0 : f(1 / d))
    })
    const [q, gp, ga] = await h.call<[readonly `0x${string}`[], readonly bigint[], readonly bigint[]]>('CanonMathHarness', 'quantize32', [x.flat(), id])
    for (let i = 0; i < PER; i++) {
      // quantizeQ8's inner loop, for a given id
      const want = new Int8Array(32)
      for (let l = 0; l < 32; l++) {
        const v = f(fromBits(x[i][l]) * fromBits(id[i]))
        const r = Math.sign(v) * Math.floor(Math.abs(v) + 0.5)
        want[l] = Math.min(127, Math.max(-127, r))
      }
      const got = new Int8Array(hexToBytes(q[i]).buffer)
      if (got.join() !== want.join()) assert.fail(`quantize32(${x[i].map(hex)}, ${hex(id[i])}): solidity ${got}, engine ${want} (seed ${hex(seed)})`)
    }
    gasP.push(...gp)
    gasA.push(...ga.filter((g) => g > 0n))
  }
  t.diagnostic(`gas quantize32Packed ${gasSummary(gasP)}`)
  t.diagnostic(`gas quantize32 ${gasSummary(gasA)}`)
})

// The steps above composed into whole blocks against the engine's quantizeQ8 itself (each step
// also has its own N cases): N / 2 blocks of 32 and N / 16 blocks of 256 (~5 and ~40 step calls).
for (const B of [32, 256]) {
  const blocks = Math.ceil(B === 32 ? N / 2 : N / 16)
  test(`CanonMath quantization steps equal quantizeQ8(x, ${B}) on ${blocks} blocks`, async () => {
    const seed = SEED + 24 + B
    const rng = new Rng(seed)
    const PER = B === 32 ? 256 : 32
    for (let done = 0; done < blocks; done += PER) {
      const x = Array.from({ length: PER }, () => {
        // a B = 256 block mixes chunks of different kinds, so one chunk decides its amax
        const v: number[] = []
        for (let c = 0; c < B; c += 32) v.push(...genActivation(rng, 32))
        return v
      }).flat()
      const [da, q] = await h.call<[readonly number[], `0x${string}`]>('CanonMathHarness', 'quantizeBlocks', [x, BigInt(B)])
      const ref = quantizeQ8(x.map(fromBits), B)
      const got = new Int8Array(hexToBytes(q).buffer)
      for (let k = 0; k < PER; k++) {
        const where = `block ${done + k} (seed ${hex(seed)}): ${bytesToHex(new Uint8Array(new Uint32Array(x.slice(k * B, k * B + B)).buffer))}`
        if (da[k] !== bits(ref.d[k])) assert.fail(`d_a: solidity ${hex(da[k])}, engine ${hex(bits(ref.d[k]))}, ${where}`)
        for (let i = k * B; i < k * B + B; i++) {
          if (got[i] !== ref.q[i]) assert.fail(`q[${i - k * B}]: solidity ${got[i]}, engine ${ref.q[i]}, ${where}`)
        }
      }
    }
  })
}
