/**
 * GGUF v3 encoder. The header is built in memory (it holds the tokenizer, a few MB at most); tensor
 * data is pulled from each tensor's `data()` generator only when the consumer reaches it, so a
 * multi-GB file streams to disk without ever being held whole. Layout and key types follow
 * llama.cpp / gguf-py: little-endian, tensor offsets relative to the data section and aligned to
 * `general.alignment` (default 32), every tensor's data padded with zeros to the alignment.
 */
import { GgufFormatError, GgufTensorDataError, UnsupportedTensorTypeError } from './errors.js'
import { DEFAULT_ALIGNMENT, GGUF_MAGIC, SUPPORTED_TENSOR_TYPES, alignUp } from './read.js'
import { BLOCK, GGUFValueType, type GgufArrayItem, type GgufMetadata, type GgufScalarType, type GgufValue, ggmlTypeName, tensorBytes } from './types.js'

/** A tensor to write: its header fields and a generator of its raw bytes (in row order). */
export type GgufTensorSpec = {
  name: string
  /** ne0-first: dims[0] = elements per row. */
  dims: number[]
  type: number
  data: () => Iterable<Uint8Array>
}

/** Everything needed to write a GGUF file. */
export type GgufSpec = {
  metadata: GgufMetadata
  tensors: GgufTensorSpec[]
}

/** The encoded file: iterate it for the bytes; `byteLength` is known before any data is produced. */
export type GgufEncoding = Iterable<Uint8Array> & {
  readonly byteLength: number
  /** Absolute file offset of each tensor's data, by name. */
  readonly tensorOffsets: ReadonlyMap<string, number>
}

const TYPE_IDS: Record<GgufScalarType | 'array', number> = {
  uint8: GGUFValueType.UINT8,
  int8: GGUFValueType.INT8,
  uint16: GGUFValueType.UINT16,
  int16: GGUFValueType.INT16,
  uint32: GGUFValueType.UINT32,
  int32: GGUFValueType.INT32,
  float32: GGUFValueType.FLOAT32,
  bool: GGUFValueType.BOOL,
  string: GGUFValueType.STRING,
  array: GGUFValueType.ARRAY,
  uint64: GGUFValueType.UINT64,
  int64: GGUFValueType.INT64,
  float64: GGUFValueType.FLOAT64,
}

/** A growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16)
  private view = new DataView(this.buf.buffer)
  length = 0
  private readonly encoder = new TextEncoder()

  private grow(n: number): void {
    if (this.length + n <= this.buf.length) return
    let cap = this.buf.length * 2
    while (cap < this.length + n) cap *= 2
    const next = new Uint8Array(cap)
    next.set(this.buf.subarray(0, this.length))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  u8(v: number): void { this.grow(1); this.view.setUint8(this.length, v); this.length += 1 }
  i8(v: number): void { this.grow(1); this.view.setInt8(this.length, v); this.length += 1 }
  u16(v: number): void { this.grow(2); this.view.setUint16(this.length, v, true); this.length += 2 }
  i16(v: number): void { this.grow(2); this.view.setInt16(this.length, v, true); this.length += 2 }
  u32(v: number): void { this.grow(4); this.view.setUint32(this.length, v, true); this.length += 4 }
  i32(v: number): void { this.grow(4); this.view.setInt32(this.length, v, true); this.length += 4 }
  f32(v: number): void { this.grow(4); this.view.setFloat32(this.length, v, true); this.length += 4 }
  f64(v: number): void { this.grow(8); this.view.setFloat64(this.length, v, true); this.length += 8 }
  u64(v: bigint): void { this.grow(8); this.view.setBigUint64(this.length, v, true); this.length += 8 }
  i64(v: bigint): void { this.grow(8); this.view.setBigInt64(this.length, v, true); this.length += 8 }
  string(s: string): void {
    const b = this.encoder.encode(s)
    this.u64(BigInt(b.length))
    this.grow(b.length)
    this.buf.set(b, this.length)
    this.length += b.length
  }
  zeros(n: number): void { this.grow(n); this.buf.fill(0, this.length, this.length + n); this.length += n }
  bytes(): Uint8Array { return this.buf.slice(0, this.length) }
}

function checkInt(key: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new GgufFormatError(`cannot encode metadata ${key}: ${String(v)} is not an integer in [${lo}, ${hi}]`)
  }
  return v
}

function writeScalar(w: ByteWriter, key: string, tag: GgufScalarType, v: GgufArrayItem): void {
  switch (tag) {
    case 'uint8': return w.u8(checkInt(key, v, 0, 0xff))
    case 'int8': return w.i8(checkInt(key, v, -0x80, 0x7f))
    case 'uint16': return w.u16(checkInt(key, v, 0, 0xffff))
    case 'int16': return w.i16(checkInt(key, v, -0x8000, 0x7fff))
    case 'uint32': return w.u32(checkInt(key, v, 0, 0xffffffff))
    case 'int32': return w.i32(checkInt(key, v, -0x80000000, 0x7fffffff))
    case 'float32':
    case 'float64':
      if (typeof v !== 'number') throw new GgufFormatError(`cannot encode metadata ${key}: ${String(v)} is not a number`)
      return tag === 'float32' ? w.f32(v) : w.f64(v)
    case 'uint64':
    case 'int64':
      if (typeof v !== 'bigint') throw new GgufFormatError(`cannot encode metadata ${key}: 64-bit integers must be bigint`)
      return tag === 'uint64' ? w.u64(v) : w.i64(v)
    case 'bool':
      if (typeof v !== 'boolean') throw new GgufFormatError(`cannot encode metadata ${key}: ${String(v)} is not a boolean`)
      return w.u8(v ? 1 : 0)
    case 'string':
      if (typeof v !== 'string') throw new GgufFormatError(`cannot encode metadata ${key}: ${String(v)} is not a string`)
      return w.string(v)
  }
}

function writeArray(w: ByteWriter, key: string, itemType: GgufScalarType | 'array', items: readonly GgufArrayItem[]): void {
  w.u32(TYPE_IDS[itemType])
  w.u64(BigInt(items.length))
  if (itemType === 'array') {
    // Nested arrays carry their own item type; GGUF readers infer it from the first item's values,
    // so we require homogeneous nested items and take the tag from their JS type.
    for (const it of items) {
      if (!Array.isArray(it)) throw new GgufFormatError(`cannot encode metadata ${key}: nested array item is not an array`)
      writeArray(w, key, inferTag(key, it), it)
    }
  } else for (const it of items) writeScalar(w, key, itemType, it)
}

function inferTag(key: string, items: readonly GgufArrayItem[]): GgufScalarType | 'array' {
  const first = items[0]
  if (first === undefined || typeof first === 'string') return 'string'
  if (typeof first === 'boolean') return 'bool'
  if (typeof first === 'bigint') return 'int64'
  if (Array.isArray(first)) return 'array'
  if (typeof first === 'number') return items.every((x) => Number.isInteger(x)) ? 'int32' : 'float32'
  throw new GgufFormatError(`cannot encode metadata ${key}: unsupported nested item`)
}

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  w.u32(TYPE_IDS[v.type])
  if (v.type === 'array') writeArray(w, key, v.itemType, v.value)
  else writeScalar(w, key, v.type, v.value)
}

/**
 * Encodes `spec` as a GGUF v3 file. Nothing is generated until the result is iterated; each
 * tensor's `data()` is called once, when the writer reaches it, and must yield exactly
 * `rowBytes(type, dims[0]) * rows` bytes (checked: `GgufTensorDataError` otherwise).
 *
 * @example
 *   const enc = encodeGguf({ metadata: new Map([['general.architecture', gv.str('llama')]]), tensors: [] })
 *   for (const chunk of enc) out.write(chunk)
 */
export function encodeGguf(spec: GgufSpec): GgufEncoding {
  const alignV = spec.metadata.get('general.alignment')
  const alignment = alignV?.type === 'uint32' ? alignV.value : DEFAULT_ALIGNMENT
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) throw new GgufFormatError(`general.alignment ${alignment} is not a power of two`)

  const w = new ByteWriter()
  w.u32(GGUF_MAGIC)
  w.u32(3)
  w.u64(BigInt(spec.tensors.length))
  w.u64(BigInt(spec.metadata.size))
  for (const [key, value] of spec.metadata) {
    w.string(key)
    writeValue(w, key, value)
  }
  // Offsets are relative to the data section: each tensor starts aligned, padded after its data.
  let rel = 0
  const sizes: number[] = []
  const names = new Set<string>()
  for (const t of spec.tensors) {
    const block = BLOCK[t.type]
    if (!block) throw new UnsupportedTensorTypeError(t.name, ggmlTypeName(t.type), SUPPORTED_TENSOR_TYPES)
    if (names.has(t.name)) throw new GgufTensorDataError(`tensor ${t.name} is listed twice`)
    names.add(t.name)
    if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new GgufTensorDataError(`tensor ${t.name} has invalid dims [${t.dims.join(', ')}]`)
    }
    if (t.dims[0] % block.size !== 0) {
      throw new GgufTensorDataError(`tensor ${t.name}: row length ${t.dims[0]} is not a multiple of the ${block.name} block size ${block.size}`)
    }
    w.string(t.name)
    w.u32(t.dims.length)
    for (const d of t.dims) w.u64(BigInt(d))
    w.u32(t.type)
    w.u64(BigInt(rel))
    const size = tensorBytes(t.type, t.dims)
    sizes.push(size)
    rel = alignUp(rel + size, alignment)
  }
  w.zeros(alignUp(w.length, alignment) - w.length)
  const header = w.bytes()
  const tensorOffsets = new Map<string, number>()
  {
    let off = header.length
    spec.tensors.forEach((t, i) => {
      tensorOffsets.set(t.name, off)
      off += alignUp(sizes[i], alignment)
    })
  }

  function* chunks(): Generator<Uint8Array> {
    yield header
    for (let i = 0; i < spec.tensors.length; i++) {
      const t = spec.tensors[i]
      let written = 0
      for (const chunk of t.data()) {
        written += chunk.length
        if (written > sizes[i]) break
        yield chunk
      }
      if (written !== sizes[i]) {
        throw new GgufTensorDataError(`tensor ${t.name}: data() produced ${written > sizes[i] ? 'more than' : written} bytes, expected ${sizes[i]}`)
      }
      const pad = alignUp(sizes[i], alignment) - sizes[i]
      if (pad) yield new Uint8Array(pad)
    }
  }

  return {
    byteLength: header.length + rel,
    tensorOffsets,
    [Symbol.iterator]: chunks,
  }
}
