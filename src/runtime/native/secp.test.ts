// The native secp256k1 (secp.cc) against its plain twins, viem and @noble/curves, answer for
// answer and byte for byte: signatures equal to viem's on random keys and hashes (RFC 6979, low s);
// recovery and the known-key check equal to noble's recovery on valid signatures and on every
// forgery a provider, client or challenger could try (tampered hash, r or s, s = 0, s >= n,
// r >= n, the high-s twin, the wrong parity, an r that is no point's x, a signature crafted to
// recover the point at infinity, key A's signature named as B's); then the same through
// src/chain/evm/secp.ts with the twin installed and without it.
// Skipped when the addon is not built (not x86-64, no compiler): then noble/viem are the path.
// TESSERA_SECP_CASES=N runs N random cases per property instead of the defaults (1000 signing,
// 40 forgery corpora): a longer property run.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, type Hex, hexToBytes, keccak256, recoverAddress, toHex } from 'viem'
import { privateKeyToAccount, sign } from 'viem/accounts'
import { isSignedBy, recoverSigner, rememberSigningKey, signHash, useNativeSecp } from '../../chain/evm/secp.js'
import { loadNativeSecp, nativeSecpUnavailable } from './secp.js'

const native = loadNativeSecp()
const skip = native ? false : `native secp256k1 absent: ${nativeSecpUnavailable()}`
const CASES = Number(process.env.TESSERA_SECP_CASES ?? 0)
const { Point, Signature } = secp256k1
const N = Point.Fn.ORDER
const be32 = (x: bigint) => hexToBytes(toHex(x, { size: 32 }))
const int = (b: Uint8Array) => BigInt(bytesToHex(b))
const rsOf = (r: bigint, s: bigint) => new Uint8Array([...be32(r), ...be32(s)])

/** noble's recovery: the 65-byte key, or undefined where it throws. */
function nobleRecover(hash: Uint8Array, r: bigint, s: bigint, parity: number): Uint8Array | undefined {
  try {
    return new Signature(r, s, parity).recoverPublicKey(hash).toBytes(false)
  } catch {
    return undefined
  }
}

function nativeRecover(hash: Uint8Array, r: bigint, s: bigint, parity: number): Uint8Array | undefined {
  const out = new Uint8Array(65)
  return native!.recover(hash, rsOf(r, s), parity, out) ? out : undefined
}

/** A valid signature of hash by key, from noble: r, s, parity. */
function nobleSign(hash: Uint8Array, key: Uint8Array) {
  const b = secp256k1.sign(hash, key, { prehash: false, lowS: true, format: 'recovered' })
  return { r: int(b.subarray(1, 33)), s: int(b.subarray(33, 65)), parity: b[0] }
}

/** The smallest x >= from that is no curve point's x-coordinate. */
function notAnX(from: bigint): bigint {
  for (let x = from; ; x++) {
    try {
      Point.fromBytes(new Uint8Array([2, ...be32(x)]))
    } catch {
      return x
    }
  }
}

/** A signature (r, s, parity) and hash for which recovery gives the point at infinity: R = kG, h = s·k. */
function zeroKeyCase(): { hash: Uint8Array; r: bigint; s: bigint; parity: number } {
  const k = int(secp256k1.utils.randomSecretKey())
  const R = Point.BASE.multiply(k).toAffine()
  const s = int(secp256k1.utils.randomSecretKey())
  return { hash: be32((s * k) % N), r: R.x, s, parity: Number(R.y & 1n) }
}

test('sign: the same 65 bytes as viem (RFC 6979, low s, v 27/28) on random keys and hashes', { skip }, async () => {
  const n = CASES || 1000
  for (let i = 0; i < n; i++) {
    const key = secp256k1.utils.randomSecretKey()
    // a few hashes >= n (h mod n in the nonce seed and in s)
    const hash = i % 97 === 0 ? be32(N + BigInt(i)) : randomBytes(32)
    const out = new Uint8Array(65)
    native!.sign(hash, key, out)
    assert.equal(bytesToHex(out), await sign({ hash: bytesToHex(hash), privateKey: bytesToHex(key), to: 'hex' }), `case ${i}`)
  }
  // keys viem refuses, native refuses
  for (const bad of [0n, N, N + 1n]) assert.throws(() => native!.sign(randomBytes(32), be32(bad), new Uint8Array(65)), /invalid private key/)
  assert.throws(() => native!.sign(randomBytes(31), randomBytes(32), new Uint8Array(65)), TypeError)
})

test('recover and verify: noble recovery\'s answer on valid signatures and every forgery', { skip }, () => {
  const n = CASES || 40
  const rNoX = notAnX(1n)
  for (let i = 0; i < n; i++) {
    const key = secp256k1.utils.randomSecretKey()
    const pub = secp256k1.getPublicKey(key, false)
    const other = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false)
    const hash = randomBytes(32)
    const { r, s, parity } = nobleSign(hash, key)
    const z = zeroKeyCase()
    const cases: [string, Uint8Array, bigint, bigint, number][] = [
      ['valid', hash, r, s, parity],
      ['tampered hash', randomBytes(32), r, s, parity],
      ['hash + n', be32(int(hash) + N < 1n << 256n ? int(hash) + N : int(hash)), r, s, parity],
      ['r + 1', hash, r + 1n, s, parity],
      ['s + 1', hash, r, s + 1n, parity],
      ['wrong parity', hash, r, s, 1 - parity],
      ['high-s twin', hash, r, N - s, 1 - parity],
      ['high-s, same parity', hash, r, N - s, parity],
      ['s = 0', hash, r, 0n, parity],
      ['s = n', hash, r, N, parity],
      ['s = 2^256 - 1', hash, r, (1n << 256n) - 1n, parity],
      ['r = 0', hash, 0n, s, parity],
      ['r = n', hash, N, s, parity],
      ['r = n + r', hash, r + N < 1n << 256n ? r + N : N, s, parity],
      ['r no point\'s x', hash, rNoX, s, parity],
      ['recovers the point at infinity', z.hash, z.r, z.s, z.parity],
    ]
    for (const [name, h, rr, ss, p] of cases) {
      const want = nobleRecover(h, rr, ss, p)
      const got = nativeRecover(h, rr, ss, p)
      assert.equal(got && bytesToHex(got), want && bytesToHex(want), `case ${i}: recover, ${name}`)
      for (const [who, P] of [['signer', pub], ['another key', other]] as const) {
        const expect = want !== undefined && bytesToHex(want) === bytesToHex(P)
        assert.equal(native!.verify(h, rsOf(rr, ss), p, P), expect, `case ${i}: verify against ${who}, ${name}`)
      }
    }
    if (i === 0) assert.equal(nobleRecover(z.hash, z.r, z.s, z.parity), undefined, 'the crafted case does reach infinity')
  }
  // a key that is no curve point is refused, not checked
  const pub = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false)
  pub[64] ^= 1
  assert.throws(() => native!.verify(randomBytes(32), randomBytes(64), 0, pub), TypeError)
  assert.throws(() => native!.recover(randomBytes(32), randomBytes(64), 2, new Uint8Array(65)), TypeError)
})

test('through chain/evm/secp.ts: key A\'s signature never passes as B\'s, native or not, cold or cached; signHash gives viem\'s bytes', { skip }, async () => {
  const keys = [0, 1].map((i) => keccak256(toHex(`native secp test key ${i}`)))
  const [A, B] = keys.map((k) => privateKeyToAccount(k))
  rememberSigningKey(A, keys[0])
  try {
    for (const installed of [true, false, true]) {
      useNativeSecp(installed ? native : undefined)
      for (let round = 0; round < 3; round++) {
        const hash = keccak256(toHex(`job ${round} ${installed}`))
        const sigA = await signHash(A, hash)
        assert.equal(sigA, await A.sign({ hash }), 'signHash: the account\'s own bytes')
        const sigB = await B.sign({ hash })
        assert.equal(isSignedBy(hash, sigA, A.address), true)
        assert.equal(isSignedBy(hash, sigB, B.address), true)
        assert.equal(isSignedBy(hash, sigA, B.address), false, 'A\'s signature named as B\'s')
        assert.equal(isSignedBy(hash, sigB, A.address), false, 'B\'s signature named as A\'s')
        // the other parity: recovers someone else (viem's answer), never A
        const flipped = `${sigA.slice(0, 130)}${sigA.endsWith('1b') ? '1c' : '1b'}` as Hex
        assert.equal(isSignedBy(hash, flipped, A.address), false)
        assert.equal(recoverSigner(hash, flipped), await recoverAddress({ hash, signature: flipped }))
        assert.equal(recoverSigner(hash, sigA), A.address)
      }
      // a signature crafted to recover the point at infinity names nobody, on either path
      const z = zeroKeyCase()
      const sigZ = `${bytesToHex(rsOf(z.r, z.s))}${z.parity ? '1c' : '1b'}` as Hex
      assert.throws(() => recoverSigner(bytesToHex(z.hash), sigZ), installed ? { name: 'UnrecoverableSignatureError' } : /point at infini/)
      assert.equal(isSignedBy(bytesToHex(z.hash), sigZ, A.address), false)
    }
  } finally {
    useNativeSecp(undefined)
  }
})
