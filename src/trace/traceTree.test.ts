import { test } from 'node:test'
import assert from 'node:assert/strict'
import { leafHash, toHex, ZERO } from './merkle.js'
import { headLeaf, headLeafData, headLeafOfRoot, layerLeaf, layerLeafData, logitsRoot, TraceTree, traceRoot, traceRootOnly, vectorRootInto } from './traceTree.js'
import { vectorRoot } from './vector.js'

/** Deterministic binary32 values with varied bit patterns (signs, exponents, a -0 and a NaN). */
function words(n: number, seed: number): Float32Array {
  const x = new Float32Array(n)
  for (let i = 0; i < n; i++) x[i] = Math.sin(seed * 1000 + i) * 2 ** ((i % 17) - 8)
  if (n > 3) x[3] = -0
  if (n > 5) x[5] = NaN
  return x
}

test('vectorRootInto is vectorRoot, at every chunk-count boundary and from an offset', () => {
  for (const n of [0, 1, 7, 255, 256, 257, 511, 512, 513, 576, 768, 1024, 1025, 2048, 4864]) {
    const x = words(n + 9, n)
    const out = new Uint8Array(40).fill(0xee)
    vectorRootInto(x, 9, n, out, 5)
    assert.equal(toHex(out.subarray(5, 37)), toHex(vectorRoot(x.subarray(9, 9 + n))), `n = ${n}`)
    assert.deepEqual([out[4], out[37]], [0xee, 0xee], 'writes exactly 32 bytes')
  }
})

test('layerLeaf and headLeaf are leafHash of the plain leaf data (smol-135m and tiny shapes)', () => {
  for (const [dim, kvDim] of [
    [576, 192],
    [64, 32],
    [2048, 256],
  ]) {
    const tokens = 3
    const residual = words(tokens * dim, dim)
    const k = words(tokens * kvDim, kvDim + 1)
    const v = words(tokens * kvDim, kvDim + 2)
    for (let t = 0; t < tokens; t++) {
      const fast = layerLeaf(10 + t, 4, residual, t * dim, dim, k, v, t * kvDim, kvDim)
      const plain = leafHash(layerLeafData(10 + t, 4, residual.subarray(t * dim, (t + 1) * dim), k.subarray(t * kvDim, (t + 1) * kvDim), v.subarray(t * kvDim, (t + 1) * kvDim)))
      assert.equal(toHex(fast), toHex(plain), `dim ${dim}, token ${t}`)
    }
  }
  const logits = words(49152, 3)
  assert.equal(toHex(headLeaf(7, 30, 1234, logits)), toHex(leafHash(headLeafData(7, 30, 1234, logits))))
  assert.equal(toHex(headLeaf(7, 30, 1234)), toHex(leafHash(headLeafData(7, 30, 1234))))
})

test('leaf data layout (docs/TRACE.md, trace format 2)', () => {
  const r = words(300, 1),
    k = words(20, 2),
    v = words(20, 3)
  const d = layerLeafData(0x01020304, 5, r, k, v)
  assert.equal(d.length, 8 + 96)
  assert.deepEqual([...d.subarray(0, 8)], [4, 3, 2, 1, 5, 0, 0, 0])
  assert.equal(toHex(d.subarray(8, 40)), toHex(vectorRoot(r)))
  assert.equal(toHex(d.subarray(72, 104)), toHex(vectorRoot(v)))
  const h = headLeafData(2, 30, 0xffffffff)
  assert.equal(toHex(h), `02000000${'1e000000'}ffffffff${toHex(ZERO)}`)
})

test('golden leaf hashes: a change here is a new trace format', () => {
  const r = new Float32Array(576).map((_, i) => i / 7)
  const k = new Float32Array(192).map((_, i) => -i)
  const v = new Float32Array(192).fill(0.5)
  assert.equal(toHex(layerLeaf(3, 1, r, 0, 576, k, v, 0, 192)), GOLDEN.layer)
  assert.equal(
    toHex(
      headLeaf(
        3,
        30,
        42,
        new Float32Array(600).map((_, i) => Math.fround(i * 0.01)),
      ),
    ),
    GOLDEN.head,
  )
  assert.equal(toHex(headLeaf(3, 30, 42)), GOLDEN.headNoLogits)
})

const GOLDEN = {
  layer: '3e6fd9f501abb13394793302edd0a1626a0106ecb0e4a85b0242611033b1ed0f',
  head: '6f4b3faaa8b9e1a981159169d4b28d3eaf656561184dcc1e8ab1cdf8f4365782',
  headNoLogits: '47bedd849bc7e54f620e5d35c67cc5c839fea3649ccc2b67a99353a6bb627464',
}

test('traceRootOnly is the root of traceRoot for every tree size and for malformed leaves', () => {
  const leaf = (i: number) => leafHash(Uint8Array.of(i & 255, i >> 8, 7))
  for (const n of [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 100, 2480]) {
    const leaves = Array.from({ length: n }, (_, i) => leaf(i))
    assert.equal(toHex(traceRootOnly(leaves)), toHex(traceRoot(leaves).root), `n = ${n}`)
  }
  // lengths other than 32 take the plain tree, so a 31 + 33 byte pair still hashes as it did
  const odd = [leaf(1).subarray(0, 31), new Uint8Array(33).fill(5), leaf(3)]
  assert.equal(toHex(traceRootOnly(odd)), toHex(traceRoot(odd).root))
})

test('headLeafOfRoot of logitsRoot is headLeaf of the logits, and setHeadRoot is setHead', () => {
  for (const n of [1, 256, 1000, 49152]) {
    const logits = words(n, n + 3)
    const root = logitsRoot(logits)
    assert.equal(toHex(root), toHex(vectorRoot(logits)))
    assert.equal(toHex(headLeafOfRoot(7, 30, 1234, root)), toHex(headLeaf(7, 30, 1234, logits)), `n = ${n}`)
    const a = new TraceTree(1, 4, 2)
    const b = new TraceTree(1, 4, 2)
    a.setHead(0, 9, logits)
    b.setHeadRoot(0, 9, root)
    a.observeLayer(0, 0, 1, words(4, 1), words(2, 2), words(2, 3))
    b.observeLayer(0, 0, 1, words(4, 1), words(2, 2), words(2, 3))
    assert.deepEqual(a.leafHashes(1).map(toHex), b.leafHashes(1).map(toHex))
  }
})
