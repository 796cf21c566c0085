/**
 * The receipt (docs/TRACE.md, "Receipt"): what a provider signs about one inference job. A format
 * is frozen once released: field names and the digest encoding never change; a new format is a
 * new version. Version 2 commits to the prompt and output tokens as vector roots (src/trace/vector.ts),
 * so a dispute can open any single token, and is signed by the provider with EIP-712 (`Receipt`,
 * docs/CHAIN.md "Formats"; the signing lives in src/chain/client.ts). Version 1 (flat SHA-256
 * hashes, the SHA-256 digest below) is kept only to read old receipts' digests.
 */
import { ARITH_VERSION, type ArithVersion } from '../engine/version.js'
import { canonicalJson } from '../engine/gguf/modelRoot.js'
import type { SamplingParams } from '../engine/sample.js'
import { f32ToBits } from '../engine/bytes.js'
import { fromHex, type Hash, sha256, toHex } from './merkle.js'
import { vectorRoot } from './vector.js'

export const RECEIPT_VERSION = 2

/**
 * Parameters that decide the output. `paramsHash` commits to them in the shape the dispute game
 * opens (`IMachine.Sampling`, docs/MACHINE.md "Sampling params on chain").
 */
export type JobParams = Omit<SamplingParams, 'seed'> & { maxTokens: number; stop: string[] }

/** Receipt format 2. */
export type Receipt = {
  version: 2
  /** The arithmetic the job ran under: tessera-arith/1 or tessera-arith/2 (docs/ARITHMETIC.md). */
  arith: string
  engine: string
  /** Hex SHA-256 roots and hashes, no 0x prefix. */
  modelRoot: string
  /** Vector root of the prompt token ids as u32 (`tokensRoot`): the JobRequest's `promptRoot`. */
  promptRoot: string
  paramsHash: string
  /** Vector root of the output token ids as u32, the end-of-generation token included when it ended the answer. */
  outputRoot: string
  traceRoot: string
  params: JobParams
  /** uint64 as a decimal string (JSON has no 64-bit integers). */
  seed: string
  nPrompt: number
  nOutput: number
  nLayer: number
}

/** Receipt format 1 (frozen): flat SHA-256 hashes of the token ids instead of vector roots, unsigned. */
export type ReceiptV1 = Omit<Receipt, 'version' | 'promptRoot' | 'outputRoot'> & { version: 1; inputHash: string; outputHash: string }

/** Vector root of token ids as u32 words (src/trace/vector.ts): the commitment receipts v2 and requests carry. */
export function tokensRoot(tokens: readonly number[]): Hash {
  return vectorRoot(Uint32Array.from(tokens))
}

/** SHA-256 of token ids as little-endian uint32 (receipt v1's inputHash/outputHash). */
export function tokensHash(tokens: readonly number[]): Hash {
  const b = new Uint8Array(tokens.length * 4)
  const dv = new DataView(b.buffer)
  tokens.forEach((t, i) => dv.setUint32(i * 4, t, true))
  return sha256(b)
}

/**
 * `sha256(abi.encode(IMachine.Sampling))`: eight 32-byte words (temperature, top-p, min-p and the
 * repetition penalty as binary32 bits; top-k, repeatLastN and maxTokens as integers; then
 * `stopHash` = SHA-256 of the canonical JSON list of stop strings, which only clients check).
 */
export function paramsHash(p: JobParams): Hash {
  const stopHash = sha256(new TextEncoder().encode(canonicalJson(p.stop)))
  // binary32 bits of the float parameters, as the sampler uses them (Math.fround of the number)
  const ints = [f32ToBits(p.temperature), p.topK, f32ToBits(p.topP), f32ToBits(p.minP), f32ToBits(p.repeatPenalty), p.repeatLastN, p.maxTokens]
  const buf = new Uint8Array(32 * 8)
  ints.forEach((v, i) => buf.set(word(BigInt(v >>> 0)), 32 * i))
  buf.set(stopHash, 32 * 7)
  return sha256(buf)
}

/**
 * Receipt digest v1 (frozen): SHA-256 over ten 32-byte big-endian words, i.e. Solidity's
 * `sha256(abi.encode(version, modelRoot, inputHash, paramsHash, seed, outputHash, traceRoot,
 * nPrompt, nOutput, nLayer))`. Version 2's digest is EIP-712 (`receiptFieldsDigest`, src/chain/client.ts).
 */
export function receiptDigestV1(r: ReceiptV1): Hash {
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

/**
 * Execution id of a model under an arithmetic (default ARITH_VERSION): SHA-256(arith || 0x00 || modelRoot).
 * @example executionId(root, 'tessera-arith/2')
 */
export function executionId(modelRoot: Uint8Array, arith: ArithVersion = ARITH_VERSION): Hash {
  return sha256(new TextEncoder().encode(arith), Uint8Array.of(0), modelRoot)
}

export { canonicalJson, toHex }
