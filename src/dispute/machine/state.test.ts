// Golden vectors of the machine's formats (docs/MACHINE.md "Formats"), written out byte by byte so
// that the Solidity twin (MachineState.sol) and this file can be checked against the same hashes.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { concatBytes, leafHash, toHex, ZERO } from '../../trace/merkle.js'
import { vectorRoot } from '../../trace/vector.js'
import { actBlockLeaf, frameProof, frameRoot, headLeafV2, layerLeafV2, microLeaf, microState, slotRoot, stateResult } from './state.js'

/** A 32-byte big-endian ABI word of a small integer. */
function word(n: number | bigint): Uint8Array {
  const w = new Uint8Array(32)
  let x = BigInt(n)
  for (let i = 31; x > 0n; i--, x >>= 8n) w[i] = Number(x & 0xffn)
  return w
}

test('micro-state leaf = sha256(0x00 || abi.encode(uint8 12, uint32 op, uint64 elem, uint64 step, uint32[8] r, bytes data))', () => {
  const data = Uint8Array.from({ length: 40 }, (_, i) => i + 1)
  const s = microState(7, 300, 12, [0x3f800000, 1, 2, 3, 4, 5, 6, 0xffffffff], data)
  // head: 5 static words + 8 words of r + the offset of data (13 words in) ; tail: length, data padded to 64 bytes
  const enc = concatBytes(word(12), word(7), word(300), word(12), ...Array.from(s.r, word), word(13 * 32), word(40), data, new Uint8Array(24))
  assert.equal(toHex(microLeaf(s)), toHex(leafHash(enc)))
  // empty data: offset, then a zero length and nothing else
  const e = microState(1, 0, 0)
  assert.equal(toHex(microLeaf(e)), toHex(leafHash(concatBytes(word(12), word(1), word(0), word(0), ...Array.from({ length: 8 }, () => word(0)), word(13 * 32), word(0)))))
  // golden hashes for the Solidity twin's tests
  assert.equal(toHex(microLeaf(s)), '70601f356f40ad4c0e71d45aa806273c0bae9d0061ec29ebdf2e0ea036206132')
  assert.equal(toHex(microLeaf(e)), '270bc548400e41795d65e4e51be46bcce14ec400fb82098e7e2ba5c51bdbdc16')
})

test('results, slot roots and frames', () => {
  const qa = Uint8Array.from({ length: 32 }, (_, i) => (i * 5 - 80) & 0xff)
  const s = microState(4, 2, 9, [0x3c000000], qa)
  assert.deepEqual(stateResult(s, false), { word: 0x3c000000 })
  const blockLeaf = leafHash(concatBytes(word(0x3c000000), word(64), word(32), qa))
  assert.equal(toHex((stateResult(s, true) as { leaf: Uint8Array }).leaf), toHex(blockLeaf))
  assert.equal(toHex(actBlockLeaf(0x3c000000, qa)), toHex(blockLeaf))
  assert.equal(toHex(slotRoot({ kind: 'blocks', blocks: [] })), toHex(ZERO))
  assert.equal(toHex(slotRoot({ kind: 'words', words: Uint32Array.of(1, 2) })), toHex(vectorRoot(Uint32Array.of(1, 2))))
  const roots = [leafHash(Uint8Array.of(1)), undefined, leafHash(Uint8Array.of(2))]
  const path = frameProof(roots, 2)
  assert.equal(path.length, 6)
  assert.equal(toHex(frameRoot(roots)), toHex(frameRoot([roots[0], ZERO, roots[2], ...new Array(61).fill(ZERO)])))
})

test('trace leaves v2: u32 LE header then the roots', () => {
  const a = leafHash(Uint8Array.of(1)), b = leafHash(Uint8Array.of(2)), c = leafHash(Uint8Array.of(3))
  assert.equal(toHex(layerLeafV2(0x01020304, 5, a, b, c)), toHex(leafHash(concatBytes(Uint8Array.of(4, 3, 2, 1, 5, 0, 0, 0), a, b, c))))
  assert.equal(toHex(headLeafV2(9, 2, 0x1234, a)), toHex(leafHash(concatBytes(Uint8Array.of(9, 0, 0, 0, 2, 0, 0, 0, 0x34, 0x12, 0, 0), a))))
})
