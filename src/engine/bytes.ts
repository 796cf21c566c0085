/**
 * The one set of byte helpers every layer uses: hex text of bytes (bare, as receipts and trace
 * files write it, or 0x-prefixed, as the chain does), bytes of hex text, byte arrays joined and
 * compared, and the bits of a binary32 value and back. Pure: no I/O, no clock.
 */

/** A 0x-prefixed hex string (the same type as viem's `Hex`). */
export type Hex0x = `0x${string}`

/** Lowercase hex of `b`, no prefix (receipts, trace files, model roots in text). */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

/** `0x` + lowercase hex of `b` (what the chain and its ABI encoders take). */
export function toHex0x(b: Uint8Array): Hex0x {
  return `0x${toHex(b)}`
}

/**
 * The bytes of hex text, with or without a `0x` prefix; throws a TypeError naming the text when it
 * is not whole bytes of hex digits.
 */
export function fromHex(s: string): Uint8Array {
  const h = s.startsWith('0x') ? s.slice(2) : s
  if (!/^([0-9a-fA-F]{2})*$/.test(h)) throw new TypeError(`not a hex string: ${s.slice(0, 20)}`)
  return new Uint8Array(Buffer.from(h, 'hex'))
}

/** The parts one after another in a new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

// One scratch word viewed both ways: a write through one view and a read through the other is the
// bit cast (a DataView or a fresh array per call would allocate on hot paths like EXP and DEQ).
const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/**
 * The binary32 bits of `x` (rounded to binary32 first) as an unsigned integer. A NaN keeps the
 * payload the platform stores; the dispute machine canonicalizes NaN itself (program.ts `bits`).
 */
export function f32ToBits(x: number): number {
  f32[0] = x
  return u32[0]
}

/** The binary32 value whose bits are the low 32 bits of `b`. */
export function bitsToF32(b: number): number {
  u32[0] = b
  return f32[0]
}
