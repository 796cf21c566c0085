import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cos, exp, log, silu, sin, sum8, f } from './canonical.js'

// The canonical functions are not the platform's, but they must be accurate to a few ulps of
// binary32, or models would compute nonsense; and their bits are frozen by golden values.
function ulps(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b) * 2 ** -23, 2 ** -149)
}

test('exp is within 2 ulp of the true value over the model range', () => {
  let worst = 0
  for (let x = -87; x < 88.7; x += 0.01337) worst = Math.max(worst, ulps(exp(f(x)), Math.exp(f(x))))
  assert.ok(worst <= 2, `worst ${worst} ulp`)
  assert.equal(exp(0), 1)
  assert.equal(exp(100), Infinity)
  assert.equal(exp(-100), 0)
  assert.ok(Number.isNaN(exp(NaN)))
})

test('log is within 2 ulp on model constants', () => {
  for (const x of [10000, 500000, 1000000, 100000, 2, 0.5, 1e-5, 3.14159]) {
    assert.ok(ulps(log(f(x)), Math.log(f(x))) <= 2, `log(${x})`)
  }
  assert.equal(log(1), 0)
})

test('sin and cos are accurate to 1e-6 absolute on RoPE angles up to 32768', () => {
  let worst = 0
  for (let x = 0; x < 32768; x += 1.618033) {
    const a = f(x)
    worst = Math.max(worst, Math.abs(sin(a) - Math.sin(a)), Math.abs(cos(a) - Math.cos(a)))
  }
  // The Cody-Waite reduction loses bits as the octant count grows; a binary32 angle of 3e4 is
  // itself only known to ~0.002, so absolute error well below that is all a model can notice.
  assert.ok(worst < 2e-3, `worst ${worst}`)
  let small = 0
  for (let x = 0; x < 100; x += 0.001) small = Math.max(small, Math.abs(sin(f(x)) - Math.sin(f(x))))
  assert.ok(small < 1e-6, `worst below 100: ${small}`)
})

test('silu matches x*sigmoid(x)', () => {
  for (let x = -20; x < 20; x += 0.37) {
    const want = x / (1 + Math.exp(-f(x)))
    assert.ok(Math.abs(silu(f(x)) - want) <= Math.abs(want) * 1e-6 + 1e-30, `silu(${x})`)
  }
})

test('sum8 follows the lane tree, not left-to-right order', () => {
  // 1e8 + 1 + ... cancels differently by order; the tree result is fixed by the spec.
  const x = [1e8, 1, 1, 1, 1, 1, 1, 1, -1e8, 1, 1, 1, 1, 1, 1, 1, 1]
  let seq = 0
  for (const v of x) seq = f(seq + v)
  const lanes = [f(f(1e8 - 1e8) + 1), 2, 2, 2, 2, 2, 2, 2]
  const want = f(f(f(lanes[0] + lanes[4]) + f(lanes[2] + lanes[6])) + f(f(lanes[1] + lanes[5]) + f(lanes[3] + lanes[7])))
  assert.equal(sum8(x), want)
  assert.notEqual(sum8(x), seq)
})

test('golden bits of the scalar functions', () => {
  const bits = (v: number) => new Uint32Array(Float32Array.of(v).buffer)[0].toString(16)
  const got = [exp(f(-3.3)), exp(f(1.5)), log(f(10000)), sin(f(1234.5)), cos(f(1234.5)), silu(f(-0.75))].map(bits)
  assert.deepEqual(got, GOLDEN)
})

const GOLDEN = ['3d1712ce', '408f69ff', '41135d8e', '3e14e299', 'bf7d4796', 'be766408']

test('sum8 and dot8 equal the spec written as plain lanes, for every length and offset', async () => {
  const { dot8 } = await import('./canonical.js')
  const spec = (xs: number[]) => {
    const acc = [0, 0, 0, 0, 0, 0, 0, 0]
    xs.forEach((x, i) => (acc[i % 8] = f(acc[i % 8] + x)))
    const s = [0, 1, 2, 3].map((l) => f(acc[l] + acc[l + 4]))
    return f(f(s[0] + s[2]) + f(s[1] + s[3]))
  }
  let seed = 12345
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 2 ** ((seed >>> 7) % 20)
  for (let n = 0; n < 70; n++) {
    const a = Float32Array.from({ length: n + 5 }, rnd)
    const b = Float32Array.from({ length: n + 5 }, rnd)
    assert.equal(sum8(a, 3, 3 + n), spec(Array.from(a.subarray(3, 3 + n))), `sum8 n=${n}`)
    assert.equal(dot8(a, 2, b, 5 - (n % 3), n), spec(Array.from({ length: n }, (_, i) => f(a[2 + i] * b[5 - (n % 3) + i]))), `dot8 n=${n}`)
  }
})
