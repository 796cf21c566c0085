// flatTypedDigest (src/chain/typedDigest.ts) against viem's hashTypedData: the three structs the
// job path signs, on random messages and domains, bit for bit; values the fast path does not take
// (a bad checksum, a short bytes32, an integer out of range) give viem's answer or viem's error.
// Each test runs twice: with viem's keccak-256 and with the native addon's installed
// (`useNativeSecp`, src/runtime/native/secp.cc; that half skipped when the addon is not built).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { type Address, getAddress, type Hex, hashTypedData, parseSignature, signatureToCompactSignature } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { deliveryDigest, receiptFieldsDigest, requestDigest, signDelivery, signJobRequest } from './client.js'
import { loadNativeSecp, nativeSecpUnavailable } from '../runtime/native/secp.js'
import { connectClients } from './evm/clients.js'
import { type SecpImpl, useNativeSecp } from './evm/secp.js'
import { type FlatField, flatTypedDigest } from './typedDigest.js'

const hex = (n: number) => `0x${randomBytes(n).toString('hex')}` as Hex
const uint = (bits: number) => BigInt(hex(bits / 8))
const REQUEST: FlatField[] = [
  { name: 'provider', type: 'address' }, { name: 'modelRoot', type: 'bytes32' }, { name: 'promptRoot', type: 'bytes32' },
  { name: 'paramsHash', type: 'bytes32' }, { name: 'seed', type: 'uint64' }, { name: 'nonce', type: 'uint64' },
  { name: 'expiry', type: 'uint64' }, { name: 'maxTokens', type: 'uint32' }, { name: 'pricePerToken', type: 'uint128' },
]
const viem = (chainId: number, contract: Address, primaryType: string, fields: FlatField[], message: Record<string, unknown>) =>
  hashTypedData({ domain: { name: 'Tessera', version: '1', chainId, verifyingContract: contract }, types: { [primaryType]: fields }, primaryType, message } as never)

const randomRequest = () => ({
  provider: Math.random() < 0.5 ? getAddress(hex(20)) : (hex(20) as Address), modelRoot: hex(32), promptRoot: hex(32), paramsHash: hex(32),
  seed: uint(64), nonce: uint(64), expiry: Math.random() < 0.5 ? uint(64) : 0n, maxTokens: Number(uint(32)), pricePerToken: uint(128),
})

const native = loadNativeSecp()
/** The addon with its keccak256 calls counted (the native half checks that they ran). */
let nativeHashes = 0
const counted: SecpImpl | undefined = native && { ...native, keccak256: (d, o) => (nativeHashes++, native.keccak256(d, o)) }

/** `body` as a test with viem's keccak-256, then as one with the native twin installed. */
function bothWays(name: string, body: () => void | Promise<void>): void {
  test(`${name} (viem's keccak-256)`, async () => {
    useNativeSecp(undefined)
    await body()
  })
  test(`${name} (native keccak-256)`, { skip: counted ? false : `native secp256k1 absent: ${nativeSecpUnavailable()}` }, async () => {
    const before = nativeHashes
    useNativeSecp(counted)
    try {
      await body()
    } finally {
      useNativeSecp(undefined)
    }
    assert.ok(nativeHashes > before, 'the digests went through the native keccak256')
  })
}

bothWays('the job request, receipt and delivery digests are viem hashTypedData bit for bit', () => {
  for (let i = 0; i < 200; i++) {
    const chainId = i % 3 === 0 ? 31337 : Number(uint(32))
    const contract = i % 2 === 0 ? getAddress(hex(20)) : (hex(20) as Address)
    const req = randomRequest()
    assert.equal(flatTypedDigest(chainId, contract, 'JobRequest', REQUEST, req), viem(chainId, contract, 'JobRequest', REQUEST, req))
    // the project's own functions, which use it
    assert.equal(requestDigest(chainId, contract, req), viem(chainId, contract, 'JobRequest', REQUEST, req))
    const f = { request: hex(32), outputRoot: hex(32), traceRoot: hex(32), nPrompt: Number(uint(32)), nOutput: i, nLayer: 22 }
    const RECEIPT: FlatField[] = [
      { name: 'request', type: 'bytes32' }, { name: 'outputRoot', type: 'bytes32' }, { name: 'traceRoot', type: 'bytes32' },
      { name: 'nPrompt', type: 'uint32' }, { name: 'nOutput', type: 'uint32' }, { name: 'nLayer', type: 'uint32' },
    ]
    assert.equal(receiptFieldsDigest(chainId, contract, f), viem(chainId, contract, 'Receipt', RECEIPT, f))
    const a = { request: hex(32), nOutput: Number(uint(32)), outputRoot: hex(32) }
    const DELIVERY: FlatField[] = [{ name: 'request', type: 'bytes32' }, { name: 'nOutput', type: 'uint32' }, { name: 'outputRoot', type: 'bytes32' }]
    assert.equal(deliveryDigest(chainId, contract, a), viem(chainId, contract, 'Delivery', DELIVERY, a))
  }
})

bothWays("values the fast path does not take get viem's answer or viem's error", () => {
  const contract = getAddress(hex(20))
  const good = randomRequest()
  const same = (m: Record<string, unknown>, c: Address = contract) => {
    let mine: unknown
    let theirs: unknown
    try {
      mine = flatTypedDigest(1, c, 'JobRequest', REQUEST, m)
    } catch (e) {
      mine = (e as Error).name
    }
    try {
      theirs = viem(1, c, 'JobRequest', REQUEST, m)
    } catch (e) {
      theirs = (e as Error).name
    }
    assert.equal(mine, theirs)
    return mine
  }
  const badChecksum = `0x${getAddress(hex(20)).slice(2).replace(/[a-f]/, (x) => x.toUpperCase()).replace(/[A-F]/, (x) => x.toLowerCase())}` as Address
  const bad = [
    { ...good, provider: badChecksum }, { ...good, provider: good.provider.toUpperCase().replace('0X', '0x') }, { ...good, modelRoot: hex(31) },
    { ...good, seed: 1n << 64n }, { ...good, maxTokens: -1 }, { ...good, nonce: undefined }, { ...good, pricePerToken: 1n << 128n },
  ]
  for (const m of bad) same(m as never)
  assert.match(String(same({ ...good, seed: 1n << 64n })), /Error/, 'out of range is an error')
  same(good, badChecksum)
  assert.match(same({ ...good, maxTokens: 2 ** 32 - 1 }) as string, /^0x[0-9a-f]{64}$/)
})

bothWays('signJobRequest and signDelivery give the signatures signTypedData gives (RFC 6979: same digest, same signature)', async () => {
  const key = hex(32)
  const c = connectClients({ transport: 'http://127.0.0.1:9', chainId: 31337, privateKey: key })
  const account = privateKeyToAccount(key)
  const settlement = getAddress(hex(20))
  const dom = { name: 'Tessera', version: '1', chainId: 31337, verifyingContract: settlement } as const
  for (let i = 0; i < 5; i++) {
    const req = randomRequest()
    const compact = (sig: Hex) => {
      const s = signatureToCompactSignature(parseSignature(sig))
      return { r: s.r, vs: s.yParityAndS }
    }
    assert.deepEqual(await signJobRequest(c, settlement, req), compact(await account.signTypedData({ domain: dom, types: { JobRequest: REQUEST }, primaryType: 'JobRequest', message: req } as never)))
    const a = { request: hex(32), nOutput: i + 1, outputRoot: hex(32) }
    const DELIVERY: FlatField[] = [{ name: 'request', type: 'bytes32' }, { name: 'nOutput', type: 'uint32' }, { name: 'outputRoot', type: 'bytes32' }]
    const d = await signDelivery(c, settlement, a)
    assert.deepEqual({ r: d.r, vs: d.vs }, compact(await account.signTypedData({ domain: dom, types: { Delivery: DELIVERY }, primaryType: 'Delivery', message: a } as never)))
  }
})
