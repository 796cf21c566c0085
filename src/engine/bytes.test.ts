import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bitsToF32, concatBytes, equalBytes, f32ToBits, fromHex, toHex, toHex0x } from './bytes.js'

test('hex: bare and 0x forms round-trip; malformed text is refused naming it', () => {
  const b = Uint8Array.of(0, 10, 255, 0x7f)
  assert.equal(toHex(b), '000aff7f')
  assert.equal(toHex0x(b), '0x000aff7f')
  assert.deepEqual(fromHex('000aff7f'), b)
  assert.deepEqual(fromHex('0x000AFF7F'), b)
  assert.deepEqual(fromHex('0x'), new Uint8Array(0))
  // a view into a larger buffer: only its own bytes
  assert.equal(toHex(new Uint8Array(Uint8Array.of(1, 2, 3, 4).buffer, 1, 2)), '0203')
  for (const bad of ['0x0', 'abc', '0xzz', '0x12 34', '1x12']) assert.throws(() => fromHex(bad), { name: 'TypeError', message: new RegExp(`not a hex string: ${bad.slice(0, 4)}`) })
})

test('concatBytes and equalBytes', () => {
  assert.deepEqual(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)), Uint8Array.of(1, 2, 3))
  assert.ok(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2)))
  assert.ok(!equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3)))
  assert.ok(!equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)))
})

test('binary32 bits: known patterns, rounding to binary32, and every bit pattern round-trips', () => {
  assert.equal(f32ToBits(1), 0x3f800000)
  assert.equal(f32ToBits(-2), 0xc0000000)
  assert.equal(f32ToBits(-0), 0x80000000)
  assert.equal(f32ToBits(Infinity), 0x7f800000)
  assert.equal(f32ToBits(0.1), 0x3dcccccd) // rounded to the nearest binary32 first
  assert.equal(f32ToBits(2 ** -149), 1) // the smallest subnormal
  assert.equal(bitsToF32(0x3f800000), 1)
  assert.equal(bitsToF32(0x1_3f800000), 1) // only the low 32 bits count
  assert.ok(Number.isNaN(bitsToF32(0x7fc00000)))
  // a sample of non-NaN patterns across every exponent, both signs
  for (let e = 0; e < 255; e++) {
    for (const m of [0, 1, 0x2aaaaa, 0x7fffff]) {
      for (const s of [0, 1]) {
        const b = ((s << 31) | (e << 23) | m) >>> 0
        assert.equal(f32ToBits(bitsToF32(b)), b)
      }
    }
  }
})
