import assert from 'node:assert/strict'
import { test } from 'node:test'
import { toHex } from '../trace/merkle.js'
import { headLeaf, layerLeaf, useTraceHasher } from '../trace/traceTree.js'
import { vectorRoot } from '../trace/vector.js'
import { loadNativeQ8, nativeQ8Unavailable } from './native/q8.js'

const native = loadNativeQ8()
const skip = native ? false : `native addon unavailable: ${nativeQ8Unavailable()}`

function words(n: number, seed: number): Float32Array {
  return new Float32Array(n).map((_, i) => Math.sin(seed + i * 1.37) * 2 ** ((i % 13) - 6))
}

test('native vectorRoot equals vector.ts vectorRoot at every chunk-count boundary, from any offset', { skip }, () => {
  const out = new Uint8Array(48).fill(0xee)
  for (const n of [0, 1, 7, 255, 256, 257, 511, 512, 513, 576, 1023, 1024, 1025, 2048, 4864, 32000, 49152, 151936]) {
    const x = words(n + 5, n)
    const part = x.subarray(5)
    native!.vectorRoot(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), out, 9)
    assert.equal(toHex(out.subarray(9, 41)), toHex(vectorRoot(part)), `n = ${n}`)
    assert.deepEqual([out[8], out[41]], [0xee, 0xee], 'writes exactly 32 bytes')
  }
  assert.throws(() => native!.vectorRoot(new Uint8Array(4), new Uint8Array(32), 1), TypeError)
})

test('trace leaves are the same bytes with the native hasher installed and without it (offsets, u32 extremes, empty vectors)', { skip }, () => {
  const r = words(3 * 576, 1), k = words(3 * 192, 2), v = words(3 * 192, 3), logits = words(49152, 4)
  const leaves = () => [0, 1, 2].map((t) => toHex(layerLeaf(t, 5, r, t * 576, 576, k, v, t * 192, 192))).concat(toHex(layerLeaf(0x01020304, 0xfffffffe, r, 0, 576, k, v, 0, 192)), toHex(layerLeaf(1, 0, r, 0, 0, k, v, 0, 0)), toHex(headLeaf(2, 30, 9, logits)), toHex(headLeaf(2, 30, 9)))
  useTraceHasher(native!)
  const fast = leaves()
  useTraceHasher(undefined)
  assert.deepEqual(fast, leaves())
  useTraceHasher(native!)
})
