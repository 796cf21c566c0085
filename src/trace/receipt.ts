/**
 * The receipt (docs/TRACE.md, "Receipt"): what a provider signs about one inference job. Version 1
 * is frozen: field names and the digest encoding never change; a new format is a new version.
 */
import { ARITH_VERSION } from '../engine/version.js'
import { canonicalJson } from '../engine/gguf/modelRoot.js'
import type { SamplingParams } from '../engine/sample.js'
import { fromHex, type Hash, sha256, toHex } from './merkle.js'

export const RECEIPT_VERSION = 1

/** Parameters that decide the output, hashed into `paramsHash` as canonical JSON. */
export type JobParams = Omit<SamplingParams, 'seed'> & { maxTokens: number; stop: string[] }

export type Receipt = {
  version: 1
  arith: string
  engine: string
  /** Hex SHA-256 roots and hashes, no 0x prefix. */
  modelRoot: string
  inputHash: string
  paramsHash: string
  outputHash: string
  traceRoot: string
  params: JobParams
  /** uint64 as a decimal string (JSON has no 64-bit integers). */
  seed: string
  nPrompt: number
  nOutput: number
  nLayer: number
}

/** SHA-256 of token ids as little-endian uint32. */
export function tokensHash(tokens: readonly number[]): Hash {
  const b = new Uint8Array(tokens.length * 4)
  const dv = new DataView(b.buffer)
  tokens.forEach((t, i) => dv.setUint32(i * 4, t, true))
  return sha256(b)
}

export function paramsHash(p: JobParams): Hash {
  return sha256(new TextEncoder().encode(canonicalJson(p)))
}

/**
 * The 32-byte digest a provider signs and the chain recomputes: SHA-256 over ten 32-byte
 * big-endian words, i.e. Solidity's `sha256(abi.encode(version, modelRoot, inputHash,
 * paramsHash, seed, outputHash, traceRoot, nPrompt, nOutput, nLayer))`.
 */
export function receiptDigest(r: Receipt): Hash {
  const words = [
    word(BigInt(r.version)), fromHex(r.modelRoot), fromHex(r.inputHash), fromHex(r.paramsHash),
    word(BigInt(r.seed)), fromHex(r.outputHash), fromHex(r.traceRoot),
    word(BigInt(r.nPrompt)), word(BigInt(r.nOutput)), word(BigInt(r.nLayer)),
  ]
  const buf = new Uint8Array(32 * words.length)
  words.forEach((w, i) => buf.set(w, 32 * i))
  return sha256(buf)
}

function word(n: bigint): Uint8Array {
  const w = new Uint8Array(32)
  for (let i = 31; i >= 0 && n > 0n; i--, n >>= 8n) w[i] = Number(n & 0xffn)
  return w
}

/** Execution id of a model: SHA-256(ARITH_VERSION || 0x00 || modelRoot). */
export function executionId(modelRoot: Uint8Array): Hash {
  return sha256(new TextEncoder().encode(ARITH_VERSION), Uint8Array.of(0), modelRoot)
}

export { canonicalJson, toHex }
