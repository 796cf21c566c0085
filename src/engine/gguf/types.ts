/**
 * GGML tensor types and GGUF value types, with the numeric ids the GGUF format freezes
 * (gguf-py `constants.py`). Only the tensor types Tessera's canonical arithmetic defines are listed
 * as supported; others are recognised by id so errors can name them.
 */
export const GGMLType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  BF16: 30,
} as const
export type GGMLType = (typeof GGMLType)[keyof typeof GGMLType]

/**
 * Names of every ggml tensor type id (ggml.h `enum ggml_type`), supported or not, so an error can
 * say "Q5_K" instead of "13". Ids 4 and 5 (Q4_2, Q4_3) were removed from ggml long ago.
 */
export const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1',
  10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K',
  16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S',
  23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16',
  34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
}

/** A readable name for a ggml type id, e.g. `Q5_K` or `type 99`. */
export function ggmlTypeName(type: number): string {
  return GGML_TYPE_NAMES[type] ?? `type ${type}`
}

/** Elements per block and bytes per block of each supported tensor type (llama.cpp's layouts). */
export const BLOCK: Record<number, { size: number; bytes: number; name: string }> = {
  [GGMLType.F32]: { size: 1, bytes: 4, name: 'F32' },
  [GGMLType.F16]: { size: 1, bytes: 2, name: 'F16' },
  [GGMLType.BF16]: { size: 1, bytes: 2, name: 'BF16' },
  [GGMLType.Q8_0]: { size: 32, bytes: 34, name: 'Q8_0' },
  [GGMLType.Q4_0]: { size: 32, bytes: 18, name: 'Q4_0' },
  [GGMLType.Q4_1]: { size: 32, bytes: 20, name: 'Q4_1' },
  [GGMLType.Q5_0]: { size: 32, bytes: 22, name: 'Q5_0' },
  [GGMLType.Q5_1]: { size: 32, bytes: 24, name: 'Q5_1' },
  [GGMLType.Q2_K]: { size: 256, bytes: 84, name: 'Q2_K' },
  [GGMLType.Q3_K]: { size: 256, bytes: 110, name: 'Q3_K' },
  [GGMLType.Q4_K]: { size: 256, bytes: 144, name: 'Q4_K' },
  [GGMLType.Q5_K]: { size: 256, bytes: 176, name: 'Q5_K' },
  [GGMLType.Q6_K]: { size: 256, bytes: 210, name: 'Q6_K' },
}

/** Bytes taken by `n` elements of `type` (n a multiple of the block size). */
export function rowBytes(type: number, n: number): number {
  const b = BLOCK[type]
  return (n / b.size) * b.bytes
}

/** GGUF metadata value type ids (gguf-py `GGUFValueType`), frozen by the format. */
export const GGUFValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const
export type GGUFValueType = (typeof GGUFValueType)[keyof typeof GGUFValueType]

/** Scalar kinds as lower-case tags; arrays carry their item tag. */
export type GgufScalarType =
  | 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64'
  | 'uint64' | 'int64' | 'bool' | 'string'

/**
 * One metadata value with its exact GGUF type, so a file round-trips bit for bit and llama.cpp's
 * strict type checks pass (it rejects e.g. `context_length` stored as INT32 instead of UINT32).
 * 64-bit integers are `bigint`; every other number is a JS number (float32 values are the exact
 * binary32 value widened).
 */
export type GgufValue =
  | { type: 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64'; value: number }
  | { type: 'uint64' | 'int64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: GgufScalarType | 'array'; value: readonly GgufArrayItem[] }

export type GgufArrayItem = number | bigint | boolean | string | readonly GgufArrayItem[]

/** Metadata in file order (a `Map` keeps the writer's key order, which llama.cpp does not need but tools show). */
export type GgufMetadata = Map<string, GgufValue>

/** Tensor descriptor as stored in the GGUF header. `dims` are ne0-first: dims[0] = elements per row. */
export type GgufTensorInfo = {
  name: string
  dims: number[]
  type: number
  /** Byte offset relative to the start of the data section. */
  offset: number
}

/** Convenience constructors for typed metadata values. */
export const gv = {
  u8: (value: number): GgufValue => ({ type: 'uint8', value }),
  i8: (value: number): GgufValue => ({ type: 'int8', value }),
  u16: (value: number): GgufValue => ({ type: 'uint16', value }),
  i16: (value: number): GgufValue => ({ type: 'int16', value }),
  u32: (value: number): GgufValue => ({ type: 'uint32', value }),
  i32: (value: number): GgufValue => ({ type: 'int32', value }),
  f32: (value: number): GgufValue => ({ type: 'float32', value }),
  f64: (value: number): GgufValue => ({ type: 'float64', value }),
  u64: (value: bigint): GgufValue => ({ type: 'uint64', value }),
  i64: (value: bigint): GgufValue => ({ type: 'int64', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  arr: (itemType: GgufScalarType | 'array', value: readonly GgufArrayItem[]): GgufValue => ({ type: 'array', itemType, value }),
}

/** Total elements of a tensor. */
export function tensorElements(dims: readonly number[]): number {
  let n = 1
  for (const d of dims) n *= d
  return n
}

/** Bytes of a whole tensor's data. */
export function tensorBytes(type: number, dims: readonly number[]): number {
  return rowBytes(type, tensorElements(dims))
}
