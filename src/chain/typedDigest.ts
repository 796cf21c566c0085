/**
 * EIP-712 digests of flat structs (static fields only: address, bytes32, uintN) without viem's
 * generic `hashTypedData`, which re-derives the domain separator, the type string and its hash,
 * and ABI-encodes through its general encoder on every call (~1 ms of CPU each on the project's
 * machine; a network job computes five on its critical path). Here the type hash and each
 * (chain, contract) domain separator are computed once, and a message is 32-byte words hashed
 * once: the same bytes `hashTypedData` hashes, so the same digest (src/chain/typedDigest.test.ts
 * compares them on random messages). A value this path does not take as is (a mixed-case address,
 * a bytes32 of another length, an integer out of range, any other field type) goes to
 * `hashTypedData`, which validates it and throws its own error or hashes it. A message's two
 * Keccak-256 calls go through `keccak256Bytes` (src/chain/evm/secp.ts): the native addon's when
 * installed (`useNativeSecp`), else viem's; the cached domain and type hashes are viem's.
 */
import { type Address, bytesToHex, type Hex, hashTypedData, isAddress, keccak256, toBytes } from 'viem'
import { keccak256Bytes } from './evm/secp.js'

export type FlatField = { readonly name: string; readonly type: string }

/** The `domain(chainId, contract)` the project signs under: name "Tessera", version "1". */
const NAME = 'Tessera'
const VERSION = '1'

const DOMAIN_TYPE_HASH = keccak256(toBytes('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'), 'bytes')
const NAME_HASH = keccak256(toBytes(NAME), 'bytes')
const VERSION_HASH = keccak256(toBytes(VERSION), 'bytes')

const separators = new Map<string, Uint8Array>()
const MAX_SEPARATORS = 64

/** keccak256(encodeData(EIP712Domain)) of the project's domain at (chainId, contract); undefined when the address is not plain hex. */
function domainSeparator(chainId: number, contract: Address): Uint8Array | undefined {
  const key = `${chainId}:${contract.toLowerCase()}`
  let s = separators.get(key)
  if (s) return s
  if (!Number.isSafeInteger(chainId) || chainId < 0 || !plainAddress(contract)) return undefined
  const buf = new Uint8Array(5 * 32)
  buf.set(DOMAIN_TYPE_HASH, 0)
  buf.set(NAME_HASH, 32)
  buf.set(VERSION_HASH, 64)
  putUint(buf, 96, BigInt(chainId))
  putHex(buf, 128 + 12, contract)
  s = keccak256(buf, 'bytes')
  if (separators.size >= MAX_SEPARATORS) separators.delete(separators.keys().next().value as string)
  separators.set(key, s)
  return s
}

const typeHashes = new Map<string, Uint8Array>()

function typeHashOf(primaryType: string, fields: readonly FlatField[]): Uint8Array {
  const key = `${primaryType}(${fields.map((f) => `${f.type} ${f.name}`).join(',')})`
  let h = typeHashes.get(key)
  if (!h) typeHashes.set(key, (h = keccak256(toBytes(key), 'bytes')))
  return h
}

const HEX40 = /^0x[0-9a-fA-F]{40}$/
const HEX64 = /^0x[0-9a-fA-F]{64}$/
/** A well-formed address viem accepts: lower case (no checksum to check) or a valid checksum (viem's `isAddress`, which caches). */
const plainAddress = (a: unknown): a is Address => typeof a === 'string' && HEX40.test(a) && (a === a.toLowerCase() || isAddress(a))

/** The value of a hex digit's char code (the callers' regexes admit only [0-9a-fA-F]). */
const nibble = (c: number) => (c <= 57 ? c - 48 : (c | 32) - 87)

function putHex(buf: Uint8Array, at: number, hex: string): void {
  for (let i = 2, j = at; i < hex.length; i += 2, j++) buf[j] = (nibble(hex.charCodeAt(i)) << 4) | nibble(hex.charCodeAt(i + 1))
}

function putUint(buf: Uint8Array, at: number, v: bigint): void {
  for (let j = at + 31; v > 0n; j--, v >>= 8n) buf[j] = Number(v & 0xffn)
}

/** The field's 32-byte word into `buf` at `at`; false when this path does not take the value. */
function putField(buf: Uint8Array, at: number, type: string, v: unknown): boolean {
  if (type === 'address') {
    if (!plainAddress(v)) return false
    putHex(buf, at + 12, v)
    return true
  }
  if (type === 'bytes32') {
    if (typeof v !== 'string' || !HEX64.test(v)) return false
    putHex(buf, at, v)
    return true
  }
  const m = /^uint(\d+)$/.exec(type)
  if (m) {
    const bits = Number(m[1])
    if (!(bits >= 8 && bits <= 256 && bits % 8 === 0)) return false
    let x: bigint
    if (typeof v === 'bigint') x = v
    else if (typeof v === 'number' && Number.isSafeInteger(v)) x = BigInt(v)
    else return false
    if (x < 0n || x >= 1n << BigInt(bits)) return false
    putUint(buf, at, x)
    return true
  }
  return false
}

/**
 * The EIP-712 digest of `message` as `primaryType` (fields in order) under the project's domain
 * at (chainId, contract): equal to viem's `hashTypedData` for the same arguments.
 */
export function flatTypedDigest(chainId: number, contract: Address, primaryType: string, fields: readonly FlatField[], message: Record<string, unknown>): Hex {
  const sep = domainSeparator(chainId, contract)
  const data = new Uint8Array(32 * (fields.length + 1))
  let ok = sep !== undefined
  for (let i = 0; ok && i < fields.length; i++) ok = putField(data, 32 * (i + 1), fields[i].type, message[fields[i].name])
  if (!ok) {
    return hashTypedData({
      domain: { name: NAME, version: VERSION, chainId, verifyingContract: contract }, types: { [primaryType]: fields } as never, primaryType, message,
    } as never)
  }
  data.set(typeHashOf(primaryType, fields), 0)
  const out = new Uint8Array(66)
  out[0] = 0x19
  out[1] = 0x01
  out.set(sep!, 2)
  out.set(keccak256Bytes(data), 34)
  return bytesToHex(keccak256Bytes(out))
}
