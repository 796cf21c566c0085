import { after, before, test } from 'node:test'
import { BLOCK, GGMLType } from '../engine/gguf/types.js'
import type { Backend } from '../engine/kernels/backend.js'
import { createReferenceBackend } from '../engine/kernels/reference.js'
import { extremeActivations, makeRng, randomActivations, randomRows } from '../../test/support/testData.js'
import { createWasmBackend } from './wasmBackend.js'
import { sameBits } from '../../test/support/bits.js'

// The multi-token WASM kernels of Q2_K, Q3_K (kernels.ts blockK2) and Q4_1, Q5_0, Q5_1 (block32), 8
// then 4 tokens per weight pass, against the TS reference and against the one-token kernel, bit for bit: every batch size 1..9 and 13 (passes of 8 and 4 plus a remainder of 0-3
// one-token tokens), token tiles that end mid-pass, odd row counts (a partial last row group), 1-3
// threads, and weights and activations at the integer extremes. The WASM kernels alone (native: false).

const TYPES = [['Q2_K', GGMLType.Q2_K], ['Q3_K', GGMLType.Q3_K], ['Q4_1', GGMLType.Q4_1], ['Q5_0', GGMLType.Q5_0], ['Q5_1', GGMLType.Q5_1]] as const

const ref = createReferenceBackend()
const wasm: Backend[] = []
before(async () => {
  for (const threads of [1, 2, 3]) wasm.push(await createWasmBackend({ threads, spinMs: 1, native: false }))
})
after(() => {
  for (const b of wasm) b.close()
})

/** Offsets of the f16 scale fields in one GGUF block of `type`. */
function scaleFields(type: number): number[] {
  switch (type) {
    case GGMLType.Q2_K: return [80, 82]
    case GGMLType.Q3_K: return [108]
    case GGMLType.Q4_1: case GGMLType.Q5_1: return [0, 2]
    default: return [0] // Q5_0
  }
}

/**
 * Rows at the integer edges: per block, every quant/scale/mask byte 0xff (Q2_K q = 3, sc = m = 15;
 * Q3_K q = 3, sc = 31; Q5 q = 31), all 0x00 (Q3_K q = -4, sc = -32: the largest |q·sc|; Q5_0 q - 16
 * = -16), or random; f16 scales from the smallest subnormal to the largest finite, either sign.
 */
function extremeRows(type: number, rows: number, cols: number, seed: number): Uint8Array {
  const rng = makeRng(seed)
  const data = randomRows(type, rows, cols, seed)
  const blk = BLOCK[type]
  const fields = scaleFields(type)
  const scales = [0x0001, 0x03ff, 0x0400, 0x1234, 0x3c00, 0x7bff, 0x8001, 0xfbff]
  for (let o = 0; o < data.length; o += blk.bytes) {
    const mode = rng() % 3
    if (mode < 2) {
      for (let i = 0; i < blk.bytes; i++) {
        if (!fields.some((f) => i === f || i === f + 1)) data[o + i] = mode === 0 ? 0xff : 0
      }
    }
    for (const f of fields) {
      if (rng() % 2 === 0) continue
      const h = scales[rng() % scales.length]
      data[o + f] = h & 0xff
      data[o + f + 1] = h >> 8
    }
  }
  return data
}

function check(type: number, data: Uint8Array, rows: number, cols: number, tokens: number[], acts: (n: number) => Float32Array, what: string): void {
  const r = ref.allocMatrix('w', type, rows, cols)
  ref.writeRows(r, 0, data)
  const ms = wasm.map((b) => {
    const m = b.allocMatrix('w', type, rows, cols)
    b.writeRows(m, 0, data)
    return m
  })
  for (const nTok of tokens) {
    const x = acts(nTok * cols)
    const want = ref.matmul(r, x, nTok)
    wasm.forEach((b, i) => sameBits(b.matmul(ms[i], x, nTok), want, `${what} ${rows}x${cols} nTok ${nTok} threads ${b.threads}`))
  }
}

const ALL = [1, 2, 3, 4, 5, 6, 7, 8, 9]

for (const [name, type] of TYPES) {
  const bs = BLOCK[type].size
  test(`${name}: batched WASM equals the reference at every batch size 1..9 and 13, rows 1/5/9, 1-3 threads`, () => {
    // 256-value types: 1 and 9 blocks (the SUM8 lanes wrap); 32-value types: 1, 9 and 33 blocks.
    const colsList = bs === 256 ? [256, 2304] : [32, 288, 1056]
    let seed = 100 + type
    for (const cols of colsList) {
      for (const rows of [1, 5, 9]) {
        const s = seed++
        check(type, randomRows(type, rows, cols, s), rows, cols, [...ALL, 13], (n) => randomActivations(n, s * 7 + n), name)
      }
    }
  })

  test(`${name}: batched WASM equals the reference with quants, scales and activations at their extremes`, () => {
    const cols = bs === 256 ? 768 : 96
    for (const rows of [3, 8]) {
      const data = extremeRows(type, rows, cols, 300 + type + rows)
      check(type, data, rows, cols, [1, 4, 5, 8, 11], (n) => extremeActivations(n, 9 + n), `${name} extremes`)
    }
  })

  test(`${name}: a token alone equals the same token inside a batch (multi-token pass vs one-token kernel)`, () => {
    const rows = 7, cols = bs === 256 ? 512 : 160
    const data = randomRows(type, rows, cols, 77 + type)
    const x = randomActivations(9 * cols, 78 + type)
    for (const b of wasm) {
      const m = b.allocMatrix('w', type, rows, cols)
      b.writeRows(m, 0, data)
      const batch = b.matmul(m, x, 9)
      for (let t = 0; t < 9; t++) {
        sameBits(b.matmul(m, x.subarray(t * cols, (t + 1) * cols), 1), batch.subarray(t * rows, (t + 1) * rows), `${name} token ${t} threads ${b.threads}`)
      }
    }
  })
}

test('token tiles that end mid-pass: wide rows (tiles of 24 and 7 tokens) with 30 and 9 tokens', () => {
  // A 4096-column record is ~8.5 KiB: a 256 KiB tile holds 24 tokens, so 30 tokens are 24 (3 passes
  // of 8) + 6 (a pass of 4 and 2 singles). At 16384 columns (~34 KiB) a tile is 7 tokens: one pass
  // of 4 and 3 singles per tile. Q2_K's per-16 sums are refilled for every tile.
  for (const [name, type] of TYPES) {
    check(type, randomRows(type, 5, 4096, 500 + type), 5, 4096, [30], (n) => randomActivations(n, 501 + type), `${name} tiles`)
    check(type, randomRows(type, 2, 16384, 600 + type), 2, 16384, [9], (n) => randomActivations(n, 601 + type), `${name} tiles`)
  }
})
