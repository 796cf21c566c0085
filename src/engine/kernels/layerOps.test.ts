import { test } from 'node:test'
import assert from 'node:assert/strict'
import { referenceLayerOps as ops } from './layerOps.js'

const F = (a: number[]) => new Float32Array(a)

test('attention of the first position returns its V row exactly (softmax of one score is 1)', () => {
  const q = F([0.3, -1.5, 2, 0.25])
  const k = F([4, 5, 6, 7])
  const v = F([1.5, -2.25, 3, 1e-3])
  const out = new Float32Array(4)
  ops.attention(out, q, k, v, { start: 0, nTok: 1, nHead: 1, nKvHead: 1, headDim: 4 })
  assert.deepEqual([...out], [...v])
})

test('attention with equal scores averages V rows; GQA maps query heads to kv heads by floor(h / group)', () => {
  // 2 query heads share 1 kv head; q = 0 makes every score 0, so o = mean of the V rows.
  const hd = 2
  const k = F([1, 2, 3, 4, 5, 6])
  const v = F([1, 10, 3, 20, 5, 60])
  const q = new Float32Array(2 * hd)
  const out = new Float32Array(2 * hd)
  ops.attention(out, q, k, v, { start: 2, nTok: 1, nHead: 2, nKvHead: 1, headDim: hd })
  const third = Math.fround(1 / 3)
  const o0 = Math.fround(Math.fround(Math.fround(1 + 3) + 5) * third)
  const o1 = Math.fround(Math.fround(Math.fround(10 + 20) + 60) * third)
  assert.deepEqual([...out], [o0, o1, o0, o1])
})

test('a batch of tokens attends causally: token t sees positions <= start + t', () => {
  const v = F([7, 9])
  const k = F([1, 1])
  const out = new Float32Array(2)
  ops.attention(out, F([1, 1]), k, v, { start: 0, nTok: 2, nHead: 1, nKvHead: 1, headDim: 1 })
  assert.equal(out[0], 7) // token 0 sees only position 0
  assert.equal(out[1], Math.fround(Math.fround(7 + 9) * 0.5))
})

test('rmsnorm, siluMul and add follow the spec formulas', () => {
  const x = F([3, 4])
  const out = new Float32Array(2)
  ops.rmsnorm(out, x, F([1, 2]), 1, 2, 0)
  const s = Math.fround(1 / Math.fround(Math.sqrt(12.5)))
  assert.deepEqual([...out], [Math.fround(3 * s), Math.fround(Math.fround(4 * s) * 2)])
  const g = F([0, 2])
  ops.siluMul(g, F([5, 3]), 2)
  assert.equal(g[0], 0)
  assert.ok(Math.abs(g[1] - 3 * 2 / (1 + Math.exp(-2))) < 1e-5)
  const a = F([1, 2, 3])
  ops.add(a, F([0.5, 0.5, 0.5]), 2)
  assert.deepEqual([...a], [1.5, 2.5, 3])
})

test('shape errors are KernelShapeError', () => {
  const z = new Float32Array(4)
  assert.throws(() => ops.attention(z, z, z, z, { start: 4, nTok: 1, nHead: 1, nKvHead: 1, headDim: 4 }), { name: 'KernelShapeError' })
  assert.throws(() => ops.attention(z, z, z, z, { start: 0, nTok: 1, nHead: 3, nKvHead: 2, headDim: 1 }), { name: 'KernelShapeError' })
  assert.throws(() => ops.add(z, new Float32Array(2), 4), { name: 'KernelShapeError' })
  assert.throws(() => ops.rmsnorm(z, z, new Float32Array(1), 2, 2, 0), { name: 'KernelShapeError' })
})
