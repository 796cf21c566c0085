/**
 * Deterministic random weights and activations for the kernel tests and benchmarks (not used by the
 * engine): GGUF rows of any supported type with finite f16 scales, and activations with a large
 * dynamic range, zeros and negative zeros.
 */
import { BLOCK, GGMLType, rowBytes } from '../../src/engine/gguf/types.js'

/** xorshift32 stream; `seed` non-zero. */
export function makeRng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    return s
  }
}

/** A random finite binary16 in about [2^-14, 2^-4) with a random sign (typical quantization scales). */
function randomScale(rng: () => number): number {
  return ((rng() & 1) << 15) | ((1 + (rng() % 11)) << 10) | (rng() & 0x3ff)
}

function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff
  b[off + 1] = (v >> 8) & 0xff
}

/** `rows` GGUF rows of `type` with `cols` values: random quants, finite scales; floats finite, some zero. */
export function randomRows(type: number, rows: number, cols: number, seed: number): Uint8Array {
  const rng = makeRng(seed)
  const out = new Uint8Array(rows * rowBytes(type, cols))
  for (let i = 0; i < out.length; i++) out[i] = rng() & 0xff
  const blk = BLOCK[type]
  const nBlocks = (rows * cols) / blk.size
  for (let b = 0; b < nBlocks; b++) {
    const o = b * blk.bytes
    switch (type) {
      case GGMLType.Q8_0: case GGMLType.Q4_0: case GGMLType.Q5_0: put16(out, o, randomScale(rng)); break
      case GGMLType.Q4_1: case GGMLType.Q5_1: put16(out, o, randomScale(rng)); put16(out, o + 2, randomScale(rng)); break
      case GGMLType.Q4_K: case GGMLType.Q5_K: put16(out, o, randomScale(rng) & 0x7fff); put16(out, o + 2, randomScale(rng) & 0x7fff); break
      case GGMLType.Q6_K: put16(out, o + 208, randomScale(rng)); break
      case GGMLType.Q3_K: put16(out, o + 108, randomScale(rng)); break
      case GGMLType.Q2_K: put16(out, o + 80, randomScale(rng) & 0x7fff); put16(out, o + 82, randomScale(rng) & 0x7fff); break
      case GGMLType.F16: {
        // exponents 0..30 only (no inf/NaN); every 16th value a (signed) zero
        const r = rng()
        put16(out, o, (r & 15) === 0 ? r & 0x8000 : (r & 0x8000) | ((r >>> 4) % 31 << 10) | ((r >> 9) & 0x3ff))
        break
      }
      case GGMLType.BF16: {
        const r = rng()
        put16(out, o, (r & 15) === 0 ? r & 0x8000 : (r & 0x8000) | ((96 + ((r >>> 4) % 64)) << 7) | ((r >> 10) & 0x7f))
        break
      }
      case GGMLType.F32: {
        const r = rng()
        const bits = (r & 15) === 0 ? (r & 0x80000000) : ((r & 0x80000000) | ((107 + ((r >>> 4) % 40)) << 23) | (rng() & 0x7fffff))
        new DataView(out.buffer).setUint32(o, bits >>> 0, true)
        break
      }
    }
  }
  return out
}

/**
 * `n` activations: magnitudes over ~2^-20..2^20, with zeros, negative zeros, whole zero blocks of
 * 32, exact halves (ties for the rounding) and a few subnormals.
 */
export function randomActivations(n: number, seed: number): Float32Array {
  const rng = makeRng(seed)
  const x = new Float32Array(n)
  const zeroBlock = rng() % 97
  for (let i = 0; i < n; i++) {
    const r = rng()
    const kind = r % 23
    if ((i >> 5) % 97 === zeroBlock) x[i] = (r & 1) ? -0 : 0
    else if (kind === 0) x[i] = 0
    else if (kind === 1) x[i] = -0
    else if (kind === 2) x[i] = ((r >> 8) % 255 - 127) + 0.5
    else if (kind === 3) x[i] = (r & 2 ? -1 : 1) * 1e-40 * ((r >> 8) & 0xff)
    else x[i] = (r & 2 ? -1 : 1) * (1 + ((r >>> 8) & 0xffff) / 65536) * 2 ** (((r >>> 24) % 41) - 20)
  }
  return x
}

/**
 * Q8_0 rows at the int8 edges: each block is all -128, all 127, or a mix of -128/127/-127/0 and
 * random bytes, with f16 scales from the smallest subnormal to the largest finite value, so block
 * sums reach their extremes (32·128·127) and the sign extension must keep every bit.
 */
export function extremeQ8Rows(rng: () => number, rows: number, cols: number): Uint8Array {
  const scales = [0x0001, 0x03ff, 0x0400, 0x1234, 0x3c00, 0x8400, 0x7bff, 0xfbff]
  const extremes = [-128, 127, -127, 0]
  const data = new Uint8Array(rows * (cols / 32) * 34)
  for (let o = 0; o < data.length; o += 34) {
    const h = scales[rng() % scales.length]
    data[o] = h & 0xff
    data[o + 1] = h >> 8
    const mode = rng() % 3 // all -128, all 127, or a mix
    for (let i = 0; i < 32; i++) data[o + 2 + i] = (mode === 0 ? -128 : mode === 1 ? 127 : (rng() & 1 ? extremes[rng() % 4] : rng())) & 0xff
  }
  return data
}

/** Activations whose blocks quantize to ±127 everywhere (all +, all -, alternating) or stay random (every 4th block). */
export function extremeActivations(n: number, seed: number): Float32Array {
  const x = randomActivations(n, seed)
  for (let b = 0; b < n / 32; b++) {
    const mode = b % 4
    if (mode === 3) continue
    for (let i = 0; i < 32; i++) x[32 * b + i] = (mode === 0 ? 1 : mode === 1 ? -1 : (i & 1 ? -1 : 1)) * 3.5
  }
  return x
}
