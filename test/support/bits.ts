/**
 * Bit-for-bit comparison of Float32Arrays for the kernel tests: the canonical arithmetic promises the
 * same bits, so a difference in the last bit fails with the element, both values and both bit patterns.
 */
import assert from 'node:assert/strict'

function compare(got: Float32Array, want: Float32Array, what: string, anyNaN: boolean): void {
  assert.equal(got.length, want.length, `${what}: length`)
  const ug = new Uint32Array(got.buffer, got.byteOffset, got.length), uw = new Uint32Array(want.buffer, want.byteOffset, want.length)
  for (let i = 0; i < ug.length; i++) {
    if (ug[i] === uw[i] || (anyNaN && Number.isNaN(got[i]) && Number.isNaN(want[i]))) continue
    assert.fail(`${what}: element ${i}: ${got[i]} (0x${ug[i].toString(16)}) vs ${want[i]} (0x${uw[i].toString(16)})`)
  }
}

/** Equal bits, or both NaN (ARITHMETIC.md leaves NaN payloads unspecified). */
export function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  compare(got, want, what, true)
}

/** Equal bits everywhere, NaN payloads included (for outputs that must never be NaN). */
export function exactBits(got: Float32Array, want: Float32Array, what: string): void {
  compare(got, want, what, false)
}
