/**
 * One secp256k1 key per node (docs/NETWORK.md "Identity and keys"): the chain account and the
 * libp2p identity, so a peer's id names its account. `addressOfPeer` reads the public key out of a
 * secp256k1 PeerId (it is inlined in the id) and derives the Ethereum address from it.
 */
import './polyfill.js'
import type { PeerId, Secp256k1PrivateKey } from '@libp2p/interface'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import type { Address, Hex } from 'viem'
import { privateKeyToAddress, publicKeyToAddress } from 'viem/accounts'
import { BaseError } from '../errors.js'
import { fromHex, toHex } from '../trace/merkle.js'

/** A key that is not a 32-byte secp256k1 private key, or a PeerId that holds no secp256k1 key. */
export class InvalidIdentityError extends BaseError {
  override name = 'InvalidIdentityError'
  constructor(what: string, details?: string) {
    super(`invalid ${what}`, { details })
  }
}

export type NodeIdentity = {
  /** The libp2p form of the key, for `createHost`. */
  readonly libp2pKey: Secp256k1PrivateKey
  readonly peerId: PeerId
  /** The chain account of the key (checksummed). */
  readonly address: Address
}

/**
 * The libp2p identity of a chain private key (0x-hex, 32 bytes).
 *
 * @example
 * const id = identityFromKey('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d')
 * addressOfPeer(id.peerId) === id.address // true
 */
export function identityFromKey(privateKey: Hex): NodeIdentity {
  let raw: Uint8Array
  try {
    raw = fromHex(privateKey)
  } catch (cause) {
    throw new InvalidIdentityError('private key', cause instanceof Error ? cause.message : undefined)
  }
  if (raw.length !== 32 || !secp256k1.utils.isValidSecretKey(raw)) throw new InvalidIdentityError('private key', 'expected 32 bytes in the secp256k1 range')
  const libp2pKey = privateKeyFromRaw(raw) as Secp256k1PrivateKey
  return { libp2pKey, peerId: peerIdFromPrivateKey(libp2pKey), address: privateKeyToAddress(privateKey) }
}

/**
 * The Ethereum address of a secp256k1 PeerId (or its string form). Throws `InvalidIdentityError`
 * for any other key type: only secp256k1 peers have an account.
 */
export function addressOfPeer(peer: PeerId | string): Address {
  const id = typeof peer === 'string' ? peer : peer.toString()
  const cached = addressCache.get(id)
  if (cached !== undefined) return cached
  const address = deriveAddress(peer)
  if (addressCache.size >= ADDRESS_CACHE_SIZE) addressCache.delete(addressCache.keys().next().value as string)
  addressCache.set(id, address)
  return address
}

/** Decompressing the key costs about a millisecond; offers from the same peers arrive again and again. */
const ADDRESS_CACHE_SIZE = 4096
const addressCache = new Map<string, Address>()

function deriveAddress(peer: PeerId | string): Address {
  let peerId: PeerId
  try {
    peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
  } catch (cause) {
    throw new InvalidIdentityError('peer id', cause instanceof Error ? cause.message : String(cause))
  }
  if (peerId.type !== 'secp256k1' || peerId.publicKey === undefined) throw new InvalidIdentityError('peer id', `a ${peerId.type} key has no chain account`)
  const uncompressed = secp256k1.Point.fromBytes(peerId.publicKey.raw).toBytes(false)
  return publicKeyToAddress(`0x${toHex(uncompressed)}` as Hex)
}
