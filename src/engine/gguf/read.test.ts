import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type ByteSource, bufferSource, readGguf } from './read.js'
import { type GgufSpec, encodeGguf } from './write.js'
import { BLOCK, GGMLType, type GgufMetadata, gv } from './types.js'

function bytesOf(spec: GgufSpec): Uint8Array {
  const enc = encodeGguf(spec)
  const out = new Uint8Array(enc.byteLength)
  let o = 0
  for (const c of enc) {
    out.set(c, o)
    o += c.length
  }
  assert.equal(o, enc.byteLength)
  return out
}

/** One key of every metadata type, including nested and empty arrays and non-ASCII strings. */
function allTypesMetadata(): GgufMetadata {
  return new Map([
    ['general.architecture', gv.str('llama')],
    ['t.u8', gv.u8(255)],
    ['t.i8', gv.i8(-128)],
    ['t.u16', gv.u16(65535)],
    ['t.i16', gv.i16(-32768)],
    ['t.u32', gv.u32(0xffffffff)],
    ['t.i32', gv.i32(-0x80000000)],
    ['t.f32', gv.f32(Math.fround(1e-5))],
    ['t.f64', gv.f64(0.1)],
    ['t.u64', gv.u64(0xffffffffffffffffn)],
    ['t.i64', gv.i64(-0x8000000000000000n)],
    ['t.bool', gv.bool(true)],
    ['t.str', gv.str('héllo ▁wörld ✓')],
    ['t.empty', gv.str('')],
    ['t.arr.str', gv.arr('string', ['a', '', 'Ġb'])],
    ['t.arr.f32', gv.arr('float32', [0, -1.5, Math.fround(0.1)])],
    ['t.arr.i32', gv.arr('int32', [1, -2, 3])],
    ['t.arr.u8', gv.arr('uint8', [0, 7, 255])],
    ['t.arr.bool', gv.arr('bool', [true, false])],
    ['t.arr.u64', gv.arr('uint64', [1n, 2n ** 63n])],
    ['t.arr.empty', gv.arr('int32', [])],
    ['t.arr.nested', gv.arr('array', [['x', 'y'], ['z']])],
  ])
}

function withTensor(type: number, dims: number[], fill = 7): GgufSpec {
  const bytes = type === GGMLType.F32 ? dims.reduce((a, b) => a * b) * 4 : dims.reduce((a, b) => a * b) * 34 / 32
  return {
    metadata: new Map([['general.architecture', gv.str('llama')]]),
    tensors: [
      { name: 'a.weight', dims, type, data: () => [new Uint8Array(bytes).fill(fill)] },
      { name: 'b.weight', dims: [3], type: GGMLType.F32, data: () => [new Uint8Array(12).fill(1)] },
    ],
  }
}

describe('GGUF write/read round trip', () => {
  it('keeps every metadata type and value', () => {
    const md = allTypesMetadata()
    const file = readGguf(bufferSource(bytesOf({ metadata: md, tensors: [] })))
    assert.equal(file.version, 3)
    assert.deepEqual([...file.metadata.keys()], [...md.keys()])
    for (const [k, v] of md) assert.deepEqual(file.metadata.get(k), v, k)
  })

  it('locates tensors at aligned offsets with their bytes', () => {
    const bytes = bytesOf(withTensor(GGMLType.Q8_0, [64, 3]))
    const file = readGguf(bufferSource(bytes))
    assert.equal(file.alignment, 32)
    assert.equal(file.dataOffset % 32, 0)
    const [a, b] = file.tensors
    assert.deepEqual([a.name, a.dims, a.type, a.byteLength], ['a.weight', [64, 3], GGMLType.Q8_0, 204])
    assert.equal(b.offset, 224) // 204 rounded up to 32
    assert.ok(bytes.subarray(a.fileOffset, a.fileOffset + a.byteLength).every((x) => x === 7))
    assert.ok(bytes.subarray(b.fileOffset, b.fileOffset + 12).every((x) => x === 1))
    assert.equal(bytes.length, b.fileOffset + 32)
  })

  it('honours general.alignment', () => {
    const spec = withTensor(GGMLType.F32, [5])
    spec.metadata.set('general.alignment', gv.u32(64))
    const file = readGguf(bufferSource(bytesOf(spec)))
    assert.equal(file.alignment, 64)
    assert.equal(file.dataOffset % 64, 0)
    assert.equal(file.tensors[1].offset, 64)
  })

  it('reads through small read windows (a file source returns what it is asked)', () => {
    const bytes = bytesOf({ metadata: allTypesMetadata(), tensors: withTensor(GGMLType.F32, [4, 2]).tensors })
    let calls = 0
    const src: ByteSource = { size: bytes.length, read: (o, n) => (calls++, bytes.slice(o, Math.min(o + n, bytes.length))) }
    const file = readGguf(src)
    assert.equal(file.tensors.length, 2)
    assert.ok(calls >= 1 && calls <= 3, `one window covers the header (${calls} reads)`)
  })

  it('rejects tensor data of the wrong length from the generator', () => {
    const spec = withTensor(GGMLType.F32, [4])
    spec.tensors[0].data = () => [new Uint8Array(15)]
    assert.throws(() => bytesOf(spec), { name: 'GgufTensorDataError' })
  })

  it('rejects a row length that is not a whole number of blocks when writing', () => {
    assert.throws(() => encodeGguf(withTensor(GGMLType.Q8_0, [48, 2])), { name: 'GgufTensorDataError' })
  })
})

describe('GGUF reader errors', () => {
  const good = bytesOf(withTensor(GGMLType.Q8_0, [64, 3]))

  it('names a file that is not GGUF', () => {
    const bad = good.slice()
    bad.set([0x7f, 0x45, 0x4c, 0x46], 0)
    assert.throws(() => readGguf(bufferSource(bad)), (e: Error) => e.name === 'GgufFormatError' && /not a GGUF file/.test(e.message))
    assert.throws(() => readGguf(bufferSource(new Uint8Array([1, 2, 3, 4, 5]))), { name: 'GgufFormatError' })
    assert.throws(() => readGguf(bufferSource(new Uint8Array(0))), { name: 'GgufFormatError' })
  })

  it('rejects unsupported versions', () => {
    const bad = good.slice()
    bad[4] = 1
    assert.throws(() => readGguf(bufferSource(bad)), { name: 'GgufFormatError' })
  })

  it('reports truncation at every cut through the header and the data', () => {
    const file = readGguf(bufferSource(good))
    const cuts = [8, 20, 30, 60, file.dataOffset - 10, file.dataOffset, file.tensors[0].fileOffset + 100, file.tensors[1].fileOffset + 11]
    for (const cut of cuts) {
      assert.throws(() => readGguf(bufferSource(good.subarray(0, cut))), (e: Error) => e.name === 'GgufFormatError' && /truncated GGUF/.test(e.message), `cut at ${cut}`)
    }
  })

  it('says how many tensors the header promised', () => {
    const file = readGguf(bufferSource(good))
    const cut = file.dataOffset - 20 // inside the last tensor info
    assert.throws(() => readGguf(bufferSource(good.subarray(0, cut))), (e: Error) => /header says 2 tensors/.test(e.message))
  })

  it('names an unsupported tensor type', () => {
    const bad = good.slice()
    const file = readGguf(bufferSource(bad))
    // The type id sits 12 bytes before the end of the first tensor info (u32 type, u64 offset).
    const nameAt = findAscii(bad, 'a.weight')
    const typeAt = nameAt + 8 + 4 + 16
    assert.equal(bad[typeAt], GGMLType.Q8_0)
    bad[typeAt] = GGMLType.Q8_K
    assert.ok(file.tensors.length === 2)
    assert.throws(() => readGguf(bufferSource(bad)), (e: Error) => e.name === 'UnsupportedTensorTypeError' && /a\.weight/.test(e.message) && /Q8_K/.test(e.message))
  })

  it('rejects a misaligned tensor offset and an absurd string length', () => {
    const bad = good.slice()
    const nameAt = findAscii(bad, 'b.weight')
    const offsetAt = nameAt + 8 + 4 + 8 + 4
    bad[offsetAt] += 4
    assert.throws(() => readGguf(bufferSource(bad)), { name: 'GgufFormatError' })
    const bad2 = good.slice()
    // The first key's length (u64 at byte 24): make it huge.
    bad2[24 + 6] = 0x7f
    assert.throws(() => readGguf(bufferSource(bad2)), { name: 'GgufFormatError' })
  })

  it('rejects an unknown metadata value type', () => {
    const bad = good.slice()
    const keyAt = findAscii(bad, 'general.architecture')
    bad[keyAt + 20] = 99
    assert.throws(() => readGguf(bufferSource(bad)), { name: 'GgufFormatError' })
  })
})

// The block formats added after Q4_K/Q6_K (issue #10): each reads back with its llama.cpp block
// size, and a truncated file or a row that is not whole blocks fails with one line naming it.
const NEW_TYPES = [GGMLType.Q5_K, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K]

describe('GGUF reader: the newer block types', () => {
  for (const type of NEW_TYPES) {
    const blk = BLOCK[type]
    const spec = (cols: number): GgufSpec => ({
      metadata: new Map([['general.architecture', gv.str('llama')]]),
      tensors: [
        { name: 'a.weight', dims: [cols, 3], type, data: () => [new Uint8Array((3 * cols / blk.size) * blk.bytes).fill(0x5a)] },
        { name: 'b.weight', dims: [3], type: GGMLType.F32, data: () => [new Uint8Array(12).fill(1)] },
      ],
    })
    it(`${blk.name}: reads ${blk.bytes}-byte blocks of ${blk.size} and rejects truncated and misshapen files in one line`, () => {
      const good = bytesOf(spec(2 * blk.size))
      const file = readGguf(bufferSource(good))
      assert.deepEqual([file.tensors[0].type, file.tensors[0].byteLength], [type, 3 * 2 * blk.bytes])
      for (const cut of [file.dataOffset - 5, file.tensors[0].fileOffset + blk.bytes - 1, file.tensors[0].fileOffset + 5 * blk.bytes + 3]) {
        assert.throws(() => readGguf(bufferSource(good.subarray(0, cut))), (e: Error) =>
          e.name === 'GgufFormatError' && /truncated GGUF/.test(e.message) && !e.message.includes('\n'), `cut at ${cut}`)
      }
      // rows of a block and a half: not whole blocks (the encoder does not check; patch dims[0])
      const bad = good.slice()
      const dimAt = findAscii(bad, 'a.weight') + 8 + 4
      new DataView(bad.buffer).setUint32(dimAt, blk.size + blk.size / 2, true)
      assert.throws(() => readGguf(bufferSource(bad)), (e: Error) =>
        e.name === 'GgufFormatError' && new RegExp(`a\\.weight has rows of ${blk.size + blk.size / 2} elements, not a multiple of the ${blk.name} block size`).test(e.message))
    })
  }
})

function findAscii(bytes: Uint8Array, s: string): number {
  const needle = new TextEncoder().encode(s)
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer
    return i
  }
  throw new Error(`${s} not found`)
}
