/**
 * The optional native secp256k1 (src/runtime/native/secp.cc, built by scripts/build/20-native.mjs
 * into build/native/): ECDSA signing with RFC 6979 nonces, public-key recovery and the check
 * against a known key, with libsecp256k1 (its C source from the npm package secp256k1, compiled into
 * the addon), and Keccak-256 (the addon's own, for the EIP-712 digests), giving the same bytes and
 * answers as viem and @noble/curves; the three secp256k1 operations each also in an asynchronous
 * form that runs on libuv's thread pool (UV_THREADPOOL_SIZE threads, 4 by default, shared with fs,
 * dns.lookup, zlib and node:crypto's asynchronous calls) and resolves a Promise, so the JS thread
 * does other work meanwhile. The
 * chain layer cannot import the runtime's addons (test/layers.test.ts), so the node and the CLI
 * install it into src/chain/evm/secp.ts:
 *
 * @example
 *   useNativeSecp(loadNativeSecp()) // undefined when absent: viem/noble stay the path
 */
import { addonLoader } from './addon.js'

export type NativeSecp = {
  /** ECDSA of a 32-byte hash with a 32-byte key: r ‖ s ‖ v (v 27/28, low s) into out (65 bytes), as viem's `sign`; throws on a key not in [1, n). */
  sign(hash: Uint8Array, key: Uint8Array, out: Uint8Array): void
  /** ecrecover: the 65-byte uncompressed key into out, false when none recovers (noble's `recoverPublicKey` throws). */
  recover(hash: Uint8Array, rs: Uint8Array, parity: number, out: Uint8Array): boolean
  /** Whether `recover` would give `pub` (65 bytes, uncompressed; an off-curve key throws a TypeError). */
  verify(hash: Uint8Array, rs: Uint8Array, parity: number, pub: Uint8Array): boolean
  /**
   * `sign` on libuv's thread pool: resolves to a new 65-byte r ‖ s ‖ v, the same bytes; rejects with
   * sign's message on a key not in [1, n). The arguments are copied at the call (the buffers may
   * change afterwards); wrong types or sizes throw a TypeError there, as `sign` does.
   */
  signAsync(hash: Uint8Array, key: Uint8Array): Promise<Uint8Array>
  /** `recover` on the pool: the 65-byte key, or undefined when none recovers. Arguments as `signAsync`'s. */
  recoverAsync(hash: Uint8Array, rs: Uint8Array, parity: number): Promise<Uint8Array | undefined>
  /** `verify` on the pool: the same answer. `pub` is parsed at the call (an off-curve key throws a TypeError there). */
  verifyAsync(hash: Uint8Array, rs: Uint8Array, parity: number, pub: Uint8Array): Promise<boolean>
  /**
   * Ethereum's Keccak-256 of `data` (any length, a view at any offset) into `out` (32 bytes; it may
   * overlap `data`), viem's `keccak256`: original Keccak padding (0x01 ... 0x80), not SHA3-256's.
   * Synchronous only; wrong types or sizes throw a TypeError.
   */
  keccak256(data: Uint8Array, out: Uint8Array): void
}

const addon = addonLoader<NativeSecp>('tessera_secp', 'native secp256k1')

/** The addon, loaded once per thread; undefined when it is not built or cannot run here. */
export const loadNativeSecp = addon.load

/** Why loadNativeSecp returned undefined (undefined when it loaded). */
export const nativeSecpUnavailable = addon.unavailable
