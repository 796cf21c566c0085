/**
 * GGUF reader (format versions 2 and 3, little-endian), following the layout of ggml's
 * `docs/gguf.md` / gguf-py:
 *
 *   u32 magic "GGUF" | u32 version | u64 tensorCount | u64 kvCount
 *   kvCount x (string key | u32 valueType | value)
 *   tensorCount x (string name | u32 nDims | u64 dims[nDims] | u32 ggmlType | u64 offset)
 *   padding to `general.alignment` (default 32) | tensor data
 *
 * A string is `u64 length | UTF-8 bytes`; an array is `u32 itemType | u64 count | items`.
 * The reader pulls bytes through a `ByteSource`, so a multi-GB file is parsed by reading only its
 * header; tensor data is located (offset, byte length), never loaded here.
 */
import { GgufFormatError, UnsupportedTensorTypeError } from './errors.js'
import {
  BLOCK,
  GGUFValueType,
  type GgufArrayItem,
  type GgufMetadata,
  type GgufScalarType,
  type GgufTensorInfo,
  type GgufValue,
  ggmlTypeName,
  tensorBytes,
  tensorElements,
} from './types.js'

/** Random-access bytes: a file, or an in-memory buffer. `read` may return fewer bytes only at the end. */
export interface ByteSource {
  readonly size: number
  read(offset: number, length: number): Uint8Array
}

/** A `ByteSource` over bytes already in memory (tests, small files). */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: (offset, length) => bytes.subarray(offset, Math.min(offset + length, bytes.length)) }
}

/** A parsed GGUF header; `tensors[i].offset + dataOffset` is the absolute file offset of its data. */
export type GgufFile = {
  version: number
  metadata: GgufMetadata
  tensors: GgufTensorWithData[]
  alignment: number
  /** Absolute file offset where the data section starts. */
  dataOffset: number
  /** File size in bytes. */
  size: number
}

/** A tensor descriptor plus where its bytes lie in the file. */
export type GgufTensorWithData = GgufTensorInfo & {
  /** Absolute file offset of the tensor's first byte. */
  fileOffset: number
  byteLength: number
}

export const GGUF_MAGIC = 0x46554747 // "GGUF" read as a little-endian u32
export const DEFAULT_ALIGNMENT = 32

const SCALAR_TAGS: Record<number, GgufScalarType | 'array'> = {
  [GGUFValueType.UINT8]: 'uint8',
  [GGUFValueType.INT8]: 'int8',
  [GGUFValueType.UINT16]: 'uint16',
  [GGUFValueType.INT16]: 'int16',
  [GGUFValueType.UINT32]: 'uint32',
  [GGUFValueType.INT32]: 'int32',
  [GGUFValueType.FLOAT32]: 'float32',
  [GGUFValueType.BOOL]: 'bool',
  [GGUFValueType.STRING]: 'string',
  [GGUFValueType.ARRAY]: 'array',
  [GGUFValueType.UINT64]: 'uint64',
  [GGUFValueType.INT64]: 'int64',
  [GGUFValueType.FLOAT64]: 'float64',
}

/** Smallest encoded size of one value of each type, used to reject absurd counts before allocating. */
const MIN_SIZE: Record<string, number> = {
  uint8: 1, int8: 1, bool: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4,
  uint64: 8, int64: 8, float64: 8, string: 8, array: 12,
}

/**
 * A forward cursor over a ByteSource with a sliding window, so reading a header with 150k
 * tokenizer strings costs a handful of `read` calls.
 */
class Cursor {
  pos = 0
  private buf: Uint8Array = new Uint8Array(0)
  private view: DataView = new DataView(this.buf.buffer)
  private bufStart = 0
  /** Describes what is being read, for the truncation message. */
  context = 'the header'
  private readonly decoder = new TextDecoder('utf-8', { fatal: true })

  constructor(private readonly src: ByteSource) {}

  private ensure(n: number): number {
    const end = this.pos + n
    if (end <= this.bufStart + this.buf.length) return this.pos - this.bufStart
    if (end > this.src.size) throw new GgufFormatError(`truncated GGUF: ${this.context} but the file ends at byte ${this.src.size}`)
    const want = Math.min(Math.max(n, 1 << 20), this.src.size - this.pos)
    const got = this.src.read(this.pos, want)
    if (got.length < n) throw new GgufFormatError(`truncated GGUF: ${this.context} but the file ends at byte ${this.pos + got.length}`)
    this.buf = got
    this.view = new DataView(got.buffer, got.byteOffset, got.byteLength)
    this.bufStart = this.pos
    return 0
  }

  /** Bytes left between the cursor and the end of the file. */
  remaining(): number {
    return this.src.size - this.pos
  }

  u8(): number { const o = this.ensure(1); this.pos += 1; return this.view.getUint8(o) }
  i8(): number { const o = this.ensure(1); this.pos += 1; return this.view.getInt8(o) }
  u16(): number { const o = this.ensure(2); this.pos += 2; return this.view.getUint16(o, true) }
  i16(): number { const o = this.ensure(2); this.pos += 2; return this.view.getInt16(o, true) }
  u32(): number { const o = this.ensure(4); this.pos += 4; return this.view.getUint32(o, true) }
  i32(): number { const o = this.ensure(4); this.pos += 4; return this.view.getInt32(o, true) }
  f32(): number { const o = this.ensure(4); this.pos += 4; return this.view.getFloat32(o, true) }
  f64(): number { const o = this.ensure(8); this.pos += 8; return this.view.getFloat64(o, true) }
  u64(): bigint { const o = this.ensure(8); this.pos += 8; return this.view.getBigUint64(o, true) }
  i64(): bigint { const o = this.ensure(8); this.pos += 8; return this.view.getBigInt64(o, true) }

  /** A u64 that must fit a JS safe integer (counts, lengths, offsets). */
  size(what: string): number {
    const v = this.u64()
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError(`corrupt GGUF: ${what} ${v} is too large`)
    return Number(v)
  }

  string(): string {
    const n = this.size('string length')
    if (n > this.remaining()) throw new GgufFormatError(`truncated GGUF: ${this.context} but the file ends at byte ${this.src.size}`, { details: `a string of ${n} bytes starts at byte ${this.pos}` })
    const o = this.ensure(n)
    this.pos += n
    try {
      return this.decoder.decode(this.buf.subarray(o, o + n))
    } catch (cause) {
      throw new GgufFormatError(`corrupt GGUF: invalid UTF-8 string at byte ${this.pos - n}`, { cause })
    }
  }
}

function readScalar(c: Cursor, tag: GgufScalarType): number | bigint | boolean | string {
  switch (tag) {
    case 'uint8': return c.u8()
    case 'int8': return c.i8()
    case 'uint16': return c.u16()
    case 'int16': return c.i16()
    case 'uint32': return c.u32()
    case 'int32': return c.i32()
    case 'float32': return c.f32()
    case 'float64': return c.f64()
    case 'uint64': return c.u64()
    case 'int64': return c.i64()
    case 'string': return c.string()
    case 'bool': {
      const b = c.u8()
      if (b > 1) throw new GgufFormatError(`corrupt GGUF: bool value ${b} at byte ${c.pos - 1}`)
      return b === 1
    }
  }
}

function typeTag(id: number, at: number): GgufScalarType | 'array' {
  const tag = SCALAR_TAGS[id]
  if (tag === undefined) throw new GgufFormatError(`corrupt GGUF: unknown metadata value type ${id} at byte ${at}`)
  return tag
}

function readArrayItems(c: Cursor, depth: number): { itemType: GgufScalarType | 'array'; value: GgufArrayItem[] } {
  const itemType = typeTag(c.u32(), c.pos - 4)
  const count = c.size('array length')
  if (count * MIN_SIZE[itemType] > c.remaining()) {
    throw new GgufFormatError(`truncated GGUF: ${c.context} but the file ends at byte ${c.pos + c.remaining()}`, { details: `an array of ${count} ${itemType} items starts at byte ${c.pos}` })
  }
  const value: GgufArrayItem[] = new Array(count)
  if (itemType === 'array') {
    if (depth > 8) throw new GgufFormatError('corrupt GGUF: arrays nested more than 8 deep')
    for (let i = 0; i < count; i++) value[i] = readArrayItems(c, depth + 1).value
  } else {
    for (let i = 0; i < count; i++) value[i] = readScalar(c, itemType)
  }
  return { itemType, value }
}

function readValue(c: Cursor, id: number, at: number): GgufValue {
  const tag = typeTag(id, at)
  if (tag === 'array') return { type: 'array', ...readArrayItems(c, 0) }
  return { type: tag, value: readScalar(c, tag) } as GgufValue
}

/** Names of the tensor types the reader accepts, for error messages. */
export const SUPPORTED_TENSOR_TYPES: readonly string[] = Object.values(BLOCK).map((b) => b.name)

/**
 * Parses a GGUF header from `src` and locates every tensor's data. Throws `GgufFormatError` for
 * a wrong magic, an unsupported version, a truncated or inconsistent header, misaligned tensor
 * offsets or data running past the end of the file, and `UnsupportedTensorTypeError` naming the
 * first tensor stored in a type Tessera cannot compute with (e.g. IQ2_XS).
 *
 * @example
 *   const gguf = readGguf(bufferSource(bytes))
 *   gguf.metadata.get('general.architecture') // { type: 'string', value: 'llama' }
 */
export function readGguf(src: ByteSource): GgufFile {
  const c = new Cursor(src)
  if (src.size < 24) {
    if (src.size >= 4 && readMagic(src) !== GGUF_MAGIC) throw notGguf(src)
    throw new GgufFormatError(`truncated GGUF: the file has ${src.size} bytes, fewer than a GGUF header (24)`)
  }
  if (c.u32() !== GGUF_MAGIC) throw notGguf(src)
  const version = c.u32()
  if (version !== 2 && version !== 3) {
    throw new GgufFormatError(`unsupported GGUF version ${version}`, { details: 'versions 2 and 3 are supported' })
  }
  const tensorCount = c.size('tensor count')
  const kvCount = c.size('metadata key count')

  const metadata: GgufMetadata = new Map()
  for (let i = 0; i < kvCount; i++) {
    c.context = `header says ${kvCount} metadata keys (reading key ${i})`
    const key = c.string()
    c.context = `header says ${kvCount} metadata keys (reading ${key})`
    const at = c.pos
    const value = readValue(c, c.u32(), at)
    if (metadata.has(key)) throw new GgufFormatError(`corrupt GGUF: metadata key ${key} appears twice`)
    metadata.set(key, value)
  }

  const alignment = readAlignment(metadata)
  const infos: GgufTensorInfo[] = []
  const names = new Set<string>()
  for (let i = 0; i < tensorCount; i++) {
    c.context = `header says ${tensorCount} tensors (reading tensor ${i})`
    const name = c.string()
    const nDims = c.u32()
    if (nDims < 1 || nDims > 4) throw new GgufFormatError(`corrupt GGUF: tensor ${name} has ${nDims} dimensions`)
    const dims: number[] = []
    for (let d = 0; d < nDims; d++) dims.push(c.size(`dimension of tensor ${name}`))
    const type = c.u32()
    const offset = c.size(`offset of tensor ${name}`)
    if (names.has(name)) throw new GgufFormatError(`corrupt GGUF: tensor ${name} appears twice`)
    names.add(name)
    infos.push({ name, dims, type, offset })
  }
  const dataOffset = alignUp(c.pos, alignment)

  const tensors: GgufTensorWithData[] = infos.map((t) => {
    const block = BLOCK[t.type]
    if (!block) throw new UnsupportedTensorTypeError(t.name, ggmlTypeName(t.type), SUPPORTED_TENSOR_TYPES)
    if (t.dims[0] % block.size !== 0) {
      throw new GgufFormatError(`corrupt GGUF: tensor ${t.name} has rows of ${t.dims[0]} elements, not a multiple of the ${block.name} block size ${block.size}`)
    }
    if (t.offset % alignment !== 0) throw new GgufFormatError(`corrupt GGUF: tensor ${t.name} data offset ${t.offset} is not aligned to ${alignment}`)
    const byteLength = tensorBytes(t.type, t.dims)
    const fileOffset = dataOffset + t.offset
    if (!Number.isSafeInteger(tensorElements(t.dims)) || fileOffset + byteLength > src.size) {
      throw new GgufFormatError(`truncated GGUF: tensor ${t.name} data ends at byte ${fileOffset + byteLength} but the file ends at byte ${src.size}`)
    }
    return { ...t, fileOffset, byteLength }
  })
  return { version, metadata, tensors, alignment, dataOffset, size: src.size }
}

function readMagic(src: ByteSource): number {
  const b = src.read(0, 4)
  return b[0] | (b[1] << 8) | (b[2] << 16) | ((b[3] << 24) >>> 0)
}

function notGguf(src: ByteSource): GgufFormatError {
  const b = src.read(0, 4)
  const shown = Array.from(b, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, '0')}`)).join('')
  return new GgufFormatError(`not a GGUF file (magic "${shown}", expected "GGUF")`)
}

function readAlignment(metadata: GgufMetadata): number {
  const v = metadata.get('general.alignment')
  if (v === undefined) return DEFAULT_ALIGNMENT
  if (v.type !== 'uint32') throw new GgufFormatError(`corrupt GGUF: general.alignment has type ${v.type}, expected uint32`)
  const a = v.value
  if (a === 0 || (a & (a - 1)) !== 0) throw new GgufFormatError(`corrupt GGUF: general.alignment ${a} is not a power of two`)
  return a
}

/** Rounds `n` up to a multiple of `alignment` (a power of two). */
export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment
}
