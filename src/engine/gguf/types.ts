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

/** Elements per block and bytes per block of each supported tensor type (llama.cpp's layouts). */
export const BLOCK: Record<number, { size: number; bytes: number; name: string }> = {
  [GGMLType.F32]: { size: 1, bytes: 4, name: 'F32' },
  [GGMLType.F16]: { size: 1, bytes: 2, name: 'F16' },
  [GGMLType.BF16]: { size: 1, bytes: 2, name: 'BF16' },
  [GGMLType.Q8_0]: { size: 32, bytes: 34, name: 'Q8_0' },
  [GGMLType.Q4_0]: { size: 32, bytes: 18, name: 'Q4_0' },
  [GGMLType.Q4_K]: { size: 256, bytes: 144, name: 'Q4_K' },
  [GGMLType.Q6_K]: { size: 256, bytes: 210, name: 'Q6_K' },
}

/** Bytes taken by `n` elements of `type` (n a multiple of the block size). */
export function rowBytes(type: number, n: number): number {
  const b = BLOCK[type]
  return (n / b.size) * b.bytes
}
