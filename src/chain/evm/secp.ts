/**
 * Checking secp256k1 signatures on the job path (request, receipt, delivery acknowledgement)
 * faster than viem's `recoverAddress` (~2.2 ms of CPU each on the project's machine): recovery
 * with @noble/curves 2 (~1.5 ms), and, for an expected signer whose public key was recovered
 * before, a check against that key with precomputed multiples (~0.5 ms).
 *
 * Why the key cache is sound: a recoverable signature (r, s, v) of hash h recovers P exactly when
 * R = (h/s)G + (r/s)P is the point of x-coordinate r and y-parity v (recovery computes
 * P = (sR - hG)/r from that R; the two equations are the same one). So once a signer's public key
 * is known (from an earlier recovery that named its address), computing R with P's precomputed
 * multiples and comparing x and parity accepts exactly the signatures recovery would attribute to
 * that address, at a fraction of the cost. Keys are remembered only after a successful recovery,
 * and precomputed only for signers seen again (`HOT_KEYS` at most, least recently used dropped),
 * so a stream of fresh keys costs a recovery each, as before, and bounded memory.
 *
 * A native twin (src/runtime/native/secp.cc, libsecp256k1 compiled in), installed with
 * `useNativeSecp` by the node and the CLI (the chain layer cannot import the runtime's addons),
 * takes over recovery, the cached-key check (every remembered key, no tables), a local
 * account's signing (`signHash`) and keccak-256 (`keccak256Bytes`, the EIP-712 digests' and the
 * recovered addresses' hash): the same answers and bytes (secp.test.ts,
 * src/runtime/native/secp.test.ts), ~25x faster recovery, ~10x faster checks and ~8x faster
 * signing than noble/viem (docs/BENCHMARKS.md "libsecp256k1 in the native addon").
 *
 * The twin's asynchronous forms run on libuv's thread pool, so the JS thread can overlap them with
 * other work: `isSignedByAsync` / `recoverSignerAsync` give
 * `isSignedBy`'s / `recoverSigner`'s answers with the check or the recovery there (without a twin,
 * the synchronous path, wrapped). Same bytes, same answers, same key-cache rules. The job path
 * uses the synchronous forms: on libsecp256k1 an operation costs ~40-70 µs, about what the pool's
 * round trip adds, and awaited at once the pool's wake-ups made a job slower (docs/BENCHMARKS.md
 * "Seventh pass").
 */
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { BaseError } from '../../errors.js'
import { type Address, bytesToHex, getAddress, type Hex, hexToBytes, keccak256, numberToBytes } from 'viem'

const { Point, Signature } = secp256k1
const Fn = Point.Fn

/** A 65-byte signature r ‖ s ‖ v (v 27/28 or 0/1), or an EIP-2098 compact one. */
export type SignatureLike = Hex | { r: Hex; vs: Hex }

const HIGH_BIT = 1n << 255n

/** r, s and the y-parity of a signature; throws on a malformed one. */
function partsOf(sig: SignatureLike): { r: bigint; s: bigint; yParity: 0 | 1 } {
  if (typeof sig === 'string') {
    if (!/^0x[0-9a-fA-F]{130}$/.test(sig)) throw new Error('a signature is 65 bytes of hex')
    const v = Number.parseInt(sig.slice(130), 16)
    const yParity = v === 27 || v === 0 ? 0 : v === 28 || v === 1 ? 1 : -1
    if (yParity < 0) throw new Error(`signature v must be 27 or 28, got ${v}`)
    return { r: BigInt(sig.slice(0, 66)), s: BigInt(`0x${sig.slice(66, 130)}`), yParity: yParity as 0 | 1 }
  }
  const vs = BigInt(sig.vs)
  return { r: BigInt(sig.r), s: vs & (HIGH_BIT - 1n), yParity: vs & HIGH_BIT ? 1 : 0 }
}

/** The address of an uncompressed public key (65 bytes). */
const addressOf = (pub: Uint8Array): Address => getAddress(bytesToHex(keccak256Bytes(pub.subarray(1)).subarray(12)))

/** r ‖ s as 64 bytes (each < 2^256 by construction; the range checks are the checker's). */
function rsBytes(sig: SignatureLike, r: bigint, s: bigint): Uint8Array {
  if (typeof sig === 'string') return hexToBytes(sig.slice(0, 130) as Hex)
  const out = new Uint8Array(64)
  out.set(numberToBytes(r, { size: 32 }), 0)
  out.set(numberToBytes(s, { size: 32 }), 32)
  return out
}

// ------------------------------------------------------------------ the native twin

/** A signature from which no public key recovers (r no point's x, or the point at infinity). */
export class UnrecoverableSignatureError extends BaseError {
  override name = 'UnrecoverableSignatureError'
}

/** `signHash` was given an account that cannot sign a bare hash (a JSON-RPC one) and has no remembered key. */
export class NotLocalAccountError extends BaseError {
  override name = 'NotLocalAccountError'
}

/**
 * src/runtime/native/secp.ts's addon (its `NativeSecp`): the same answers and bytes as noble/viem.
 * The asynchronous forms are optional: where one is missing, its synchronous twin is used.
 */
export type SecpImpl = {
  sign(hash: Uint8Array, key: Uint8Array, out: Uint8Array): void
  recover(hash: Uint8Array, rs: Uint8Array, parity: number, out: Uint8Array): boolean
  verify(hash: Uint8Array, rs: Uint8Array, parity: number, pub: Uint8Array): boolean
  signAsync?(hash: Uint8Array, key: Uint8Array): Promise<Uint8Array>
  recoverAsync?(hash: Uint8Array, rs: Uint8Array, parity: number): Promise<Uint8Array | undefined>
  verifyAsync?(hash: Uint8Array, rs: Uint8Array, parity: number, pub: Uint8Array): Promise<boolean>
  /** Keccak-256 of data into out (32 bytes), viem's `keccak256`: `keccak256Bytes`'s fast path. */
  keccak256?(data: Uint8Array, out: Uint8Array): void
}
let native: SecpImpl | undefined

/**
 * Keccak-256 of `data` as 32 new bytes, viem's `keccak256(data, 'bytes')`: by the installed twin
 * when it has `keccak256` (0.5-1.4 µs hot for 64-288 bytes, against 11-30 µs for viem's JS:
 * docs/BENCHMARKS.md "Native keccak-256"), else viem's. The job path's EIP-712 digests (src/chain/typedDigest.ts) use it.
 *
 * @example
 *   const digest = bytesToHex(keccak256Bytes(message))
 */
export function keccak256Bytes(data: Uint8Array): Uint8Array {
  const impl = native
  if (!impl?.keccak256) return keccak256(data, 'bytes')
  const out = new Uint8Array(32)
  impl.keccak256(data, out)
  return out
}

/**
 * Routes recovery, cached-key checks, local signing and `keccak256Bytes` (when `impl` has
 * `keccak256`) to `impl` (undefined: back to noble/viem).
 * Remembered keys stay valid across the switch (they are public keys either way).
 *
 * @example
 *   useNativeSecp(loadNativeSecp())
 */
export function useNativeSecp(impl: SecpImpl | undefined): void {
  native = impl
}

/** Whether a native twin is installed. */
export function nativeSecpInstalled(): boolean {
  return native !== undefined
}

/** Private keys of local accounts (connectClients), for native signing: the account object already holds its key. */
const signingKeys = new WeakMap<object, Uint8Array>()

/** Lets `signHash` sign for `account` natively (viem's `privateKeyToAccount(privateKey)`). */
export function rememberSigningKey(account: object, privateKey: Hex): void {
  signingKeys.set(account, hexToBytes(privateKey))
}

/**
 * A local account's signature of a 32-byte hash, as its `sign({ hash })` gives it (65 bytes,
 * v 27/28, low s, RFC 6979): native when installed and the account's key was remembered, else viem.
 *
 * @example
 *   const sig = await signHash(c.account, requestDigest(c.chain.id, settlement, req))
 */
export async function signHash(account: { sign?: (a: { hash: Hex }) => Promise<Hex> }, hash: Hex): Promise<Hex> {
  const impl = native
  const key = impl && signingKeys.get(account)
  if (impl && key) {
    const out = new Uint8Array(65)
    impl.sign(hexToBytes(hash), key, out)
    return bytesToHex(out)
  }
  if (!account.sign) throw new NotLocalAccountError('signHash needs a local account (one with sign)')
  return account.sign({ hash })
}

// ------------------------------------------------------------------ the key cache

/** Signers whose key was recovered once (a point each), least recently used first. */
const SEEN_KEYS = 1024
/** Signers seen at least twice, with precomputed multiples (window 6: ~10 ms to build, once, and ~200 KB each). */
const HOT_KEYS = 32
const WINDOW = 6
/** A remembered public key: its 65 bytes, and for a hot key (noble's path) the point with its table. */
type Key = { bytes: Uint8Array; point?: InstanceType<typeof Point> }
const seen = new Map<string, Key>()
const hot = new Map<string, Key>()
/** When each hot key was last used (ms); see `remember`. */
const hotUsed = new Map<string, number>()
/**
 * A full hot set admits a new key only in place of one unused this long: a working set larger than
 * HOT_KEYS (a provider with more regular clients) keeps the keys it has, checked fast, and checks
 * the rest by recovery, instead of rebuilding a table (~10 ms) at every check of every key (LRU
 * thrash: the throughput bench's 33 signers spent 4.6 ms a job building tables).
 */
const HOT_IDLE_MS = 10_000
let tablesBuilt = 0

/** The key cache's counts (tests): signers with a table, and tables made so far. */
export function keyCacheStats(): { hot: number; tablesBuilt: number; maxHot: number } {
  return { hot: hot.size, tablesBuilt, maxHot: HOT_KEYS }
}

function touch<V>(m: Map<string, V>, k: string, v: V, max: number): void {
  m.delete(k)
  m.set(k, v)
  if (m.size > max) m.delete(m.keys().next().value as string)
}

function remember(address: Address, pub: Uint8Array): void {
  const k = address.toLowerCase()
  if (hot.has(k)) {
    hotUsed.set(k, Date.now())
    return touch(hot, k, hot.get(k)!, HOT_KEYS)
  }
  // the native check needs no table: every seen key is checked by its bytes
  if (seen.has(k) && !native) {
    if (hot.size >= HOT_KEYS) {
      const oldest = hot.keys().next().value as string
      if (Date.now() - (hotUsed.get(oldest) ?? 0) < HOT_IDLE_MS) return touch(seen, k, { bytes: pub }, SEEN_KEYS)
      hot.delete(oldest)
      hotUsed.delete(oldest)
    }
    seen.delete(k)
    hotUsed.set(k, Date.now())
    tablesBuilt++
    // precomputed lazily, at its next multiplication
    return touch(hot, k, { bytes: pub, point: Point.fromBytes(pub).precompute(WINDOW) }, HOT_KEYS)
  }
  touch(seen, k, { bytes: pub }, SEEN_KEYS)
}

/**
 * Signatures already checked, by hash and signature bytes, with their signer: the same signed
 * request is checked by the provider's job path, then again by its claims book; the second time
 * costs a map lookup. Only a successful check writes here, and the answer is a pure function of the key.
 */
const VERIFIED = 4096
const verified = new Map<string, Address>()
const verifiedKey = (hash: Hex, sig: SignatureLike) => (typeof sig === 'string' ? `${hash}:${sig}` : `${hash}:${sig.r}:${sig.vs}`).toLowerCase()

/** The 65-byte public key that signed `hash` (throws when none recovers, as noble does). */
function recoverKey(hash: Hex, sig: SignatureLike): Uint8Array {
  const { r, s, yParity } = partsOf(sig)
  if (!native) return new Signature(r, s, yParity).recoverPublicKey(hexToBytes(hash)).toBytes(false)
  const out = new Uint8Array(65)
  if (!native.recover(hexToBytes(hash), rsBytes(sig, r, s), yParity, out)) throw new UnrecoverableSignatureError('invalid signature: no public key recovers from it')
  return out
}

/** The address of `pub`, which recovery gave for `sig`: its key remembered, the signature memoised. */
function recovered(hash: Hex, sig: SignatureLike, pub: Uint8Array): Address {
  const a = addressOf(pub)
  remember(a, pub)
  touch(verified, verifiedKey(hash, sig), a, VERIFIED)
  return a
}

/** The address that signed `hash` (throws on a malformed signature, as viem's `recoverAddress`). */
export function recoverSigner(hash: Hex, sig: SignatureLike): Address {
  return verified.get(verifiedKey(hash, sig)) ?? recovered(hash, sig, recoverKey(hash, sig))
}

/**
 * `recoverSigner` with the recovery on the thread pool when the installed twin has `recoverAsync`
 * (else the synchronous path): the same address, or a rejection where `recoverSigner` throws.
 *
 * @example
 *   const client = await recoverSignerAsync(requestDigest(chainId, settlement, req), req.signature)
 */
export async function recoverSignerAsync(hash: Hex, sig: SignatureLike): Promise<Address> {
  const impl = native
  const known = verified.get(verifiedKey(hash, sig))
  if (known || !impl?.recoverAsync) return known ?? recoverSigner(hash, sig)
  const { r, s, yParity } = partsOf(sig)
  const pub = await impl.recoverAsync(hexToBytes(hash), rsBytes(sig, r, s), yParity)
  if (!pub) throw new UnrecoverableSignatureError('invalid signature: no public key recovers from it')
  return recovered(hash, sig, pub)
}

/** The remembered key to check `signer` (lower-case) against, marked as used; undefined: recovery decides. */
function keyToCheck(k: string): Key | undefined {
  const hotKey = hot.get(k)
  // with the twin, every seen key qualifies (checked by its bytes); without it, only a hot one (its table)
  const key = hotKey ?? (native ? seen.get(k) : undefined)
  if (hotKey) {
    touch(hot, k, hotKey, HOT_KEYS)
    hotUsed.set(k, Date.now())
  } else if (key) touch(seen, k, key, SEEN_KEYS)
  return key
}

/**
 * Whether `signer` signed `hash` (the same answer as `recoverSigner(hash, sig) === signer`, false
 * on a malformed signature): by the signer's cached key when it has one, else by recovery.
 */
export function isSignedBy(hash: Hex, sig: SignatureLike, signer: Address): boolean {
  try {
    const key = keyToCheck(signer.toLowerCase())
    if (!key) return recoverSigner(hash, sig) === getAddress(signer)
    const { r, s, yParity } = partsOf(sig)
    if (native) {
      // the same rule, in secp.cc's `verify`
      if (!native.verify(hexToBytes(hash), rsBytes(sig, r, s), yParity, key.bytes)) return false
    } else {
      const P = key.point ?? Point.fromBytes(key.bytes)
      new Signature(r, s) // range checks: 0 < r, s < n, as recovery does
      const is = Fn.inv(s)
      const h = Fn.create(BigInt(hash))
      const R = Point.BASE.multiplyUnsafe(Fn.create(h * is)).add(P.multiplyUnsafe(Fn.create(r * is)))
      if (R.is0()) return false
      const q = R.toAffine()
      if (q.x !== r || Number(q.y & 1n) !== yParity) return false
    }
    touch(verified, verifiedKey(hash, sig), getAddress(signer), VERIFIED)
    return true
  } catch {
    return false
  }
}

/**
 * `isSignedBy`'s answer, with the check on the thread pool: against the signer's remembered key by
 * the twin's `verifyAsync`, else by recovery (`recoverSignerAsync`, which remembers the key as
 * `recoverSigner` does). Without a twin that has `verifyAsync`, `isSignedBy` itself, wrapped.
 *
 * @example
 *   const checked = isSignedByAsync(digest, req.signature, req.client) // the prefill runs meanwhile
 *   if (!(await checked)) throw new Error('bad request signature')
 */
export async function isSignedByAsync(hash: Hex, sig: SignatureLike, signer: Address): Promise<boolean> {
  const impl = native
  if (!impl?.verifyAsync) return isSignedBy(hash, sig, signer)
  try {
    const key = keyToCheck(signer.toLowerCase())
    if (!key) return (await recoverSignerAsync(hash, sig)) === getAddress(signer)
    const { r, s, yParity } = partsOf(sig)
    if (!(await impl.verifyAsync(hexToBytes(hash), rsBytes(sig, r, s), yParity, key.bytes))) return false
    touch(verified, verifiedKey(hash, sig), getAddress(signer), VERIFIED)
    return true
  } catch {
    return false
  }
}
