// The integer-only softfloat twin against the host's IEEE hardware (Math.fround on doubles, which
// is exact for one binary32 op: docs/ARITHMETIC.md). NaN results must be the canonical 0x7FC00000.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { h2f as halfToNumber } from '../../engine/math/half.js'
import * as sf from '../../../test/support/softfloat.js'
import { genAddPair, genDivPair, genInt32, genMulPair, genSqrtArg, Rng, hexWord as hex } from '../../../test/support/onestepGen.js'

const SEED = 0x5eed0001
const N = 20_000

/** The hardware result's bits, or the canonical NaN where the hardware gives any NaN. */
function hw(x: number): number {
  return Number.isNaN(x) ? sf.NAN : sf.toBits(Math.fround(x))
}

function check(name: string, got: number, want: number, args: number[], seed: number) {
  if (got !== want) {
    assert.fail(`${name}(${args.map(hex).join(', ')}) = ${hex(got)}, hardware ${hex(want)} (seed ${hex(seed)})`)
  }
}

const binary: [string, (a: number, b: number) => number, (x: number, y: number) => number, (r: Rng) => [number, number]][] = [
  ['add', sf.add, (x, y) => x + y, genAddPair],
  ['sub', sf.sub, (x, y) => x - y, genAddPair],
  ['mul', sf.mul, (x, y) => x * y, genMulPair],
  ['div', sf.div, (x, y) => x / y, genDivPair],
]

for (const [name, soft, hard, gen] of binary) {
  test(`softfloat ${name} matches hardware binary32 on ${N} biased cases`, () => {
    const rng = new Rng(SEED)
    for (let i = 0; i < N; i++) {
      const [a, b] = gen(rng)
      check(name, soft(a, b), hw(hard(sf.fromBits(a), sf.fromBits(b))), [a, b], SEED)
    }
  })
}

test(`softfloat sqrt matches hardware binary32 on ${N} biased cases`, () => {
  const rng = new Rng(SEED)
  for (let i = 0; i < N; i++) {
    const a = genSqrtArg(rng)
    check('sqrt', sf.sqrt(a), hw(Math.sqrt(sf.fromBits(a))), [a], SEED)
  }
})

test('softfloat sqrt is exact on every binary32 perfect square of a 12-bit integer', () => {
  for (let n = 1; n < 4096; n++) assert.equal(sf.sqrt(sf.i2f(n * n)), sf.i2f(n))
})

test('softfloat i2f matches Math.fround on biased int32 cases', () => {
  const rng = new Rng(SEED)
  for (let i = 0; i < N; i++) {
    const n = genInt32(rng)
    check('i2f', sf.i2f(n), hw(n), [n], SEED)
  }
})

test('softfloat h2f matches the engine h2f on all 65536 binary16 patterns', () => {
  for (let h = 0; h < 0x10000; h++) check('h2f', sf.h2f(h), hw(halfToNumber(h)), [h], 0)
})

test('softfloat handles the IEEE special cases exactly', () => {
  const { add, sub, mul, div, sqrt, NAN } = sf
  assert.equal(add(0x00000000, 0x80000000), 0x00000000) // +0 + -0 = +0
  assert.equal(add(0x80000000, 0x80000000), 0x80000000) // -0 + -0 = -0
  assert.equal(sub(0x3f800000, 0x3f800000), 0x00000000) // 1 - 1 = +0
  assert.equal(add(0x7f800000, 0xff800000), NAN) // Inf - Inf
  assert.equal(mul(0x7f800000, 0x80000000), NAN) // Inf * -0
  assert.equal(mul(0x80000000, 0x3f800000), 0x80000000) // -0 * 1 = -0
  assert.equal(div(0x00000000, 0x00000000), NAN)
  assert.equal(div(0x3f800000, 0x80000000), 0xff800000) // 1 / -0 = -Inf
  assert.equal(div(0xff800000, 0x7f800000), NAN)
  assert.equal(sqrt(0x80000000), 0x80000000) // sqrt(-0) = -0
  assert.equal(sqrt(0xbf800000), NAN)
  assert.equal(sqrt(0xff800000), NAN)
  assert.equal(sqrt(0x7f800000), 0x7f800000)
  assert.equal(add(0x7fa00000, 0x3f800000), NAN) // signalling NaN in, canonical NaN out
  assert.equal(mul(0x7f7fffff, 0x40000000), 0x7f800000) // overflow to +Inf
  assert.equal(mul(0x00000001, 0x3f000000), 0x00000000) // 2^-150: a tie, rounds to even (0)
  assert.equal(mul(0x00000003, 0x3f000000), 0x00000002) // 1.5 * 2^-149: a tie, rounds to even (2)
  assert.equal(add(0x4b800000, 0x3f800000), 0x4b800000) // 2^24 + 1: tie, stays even
  assert.equal(add(0x4b800001, 0x3f800000), 0x4b800002) // (2^24 + 2) + 1: tie, rounds up to even
})
