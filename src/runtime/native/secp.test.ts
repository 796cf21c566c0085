// The native secp256k1 (secp.cc) against its plain twins, viem and @noble/curves, answer for
// answer and byte for byte: signatures equal to viem's on random keys and hashes (RFC 6979, low s);
// recovery and the known-key check equal to noble's recovery on valid signatures and on every
// forgery a provider, client or challenger could try (tampered hash, r or s, s = 0, s >= n,
// r >= n, the high-s twin, the wrong parity, an r that is no point's x, a signature crafted to
// recover the point at infinity, key A's signature named as B's); then the same through
// src/chain/evm/secp.ts with the twin installed and without it. The asynchronous forms (libuv's
// thread pool) against the synchronous ones: the same bytes and answers, with 64 and more
// operations in flight at once, the caller's buffers overwritten right after each call, bad
// arguments thrown at the call, and the threads' own CPU (Linux) showing the work ran elsewhere.
// keccak256 against viem's: the standard vectors, every length 0..600, the rate's boundaries
// (135/136/137, 271/272/273), views at offsets, out inside the input, bad arguments; and
// chain/evm/secp.ts's keccak256Bytes, through the twin when installed and viem's when not.
// Skipped when the addon is not built (not x86-64, no compiler): then noble/viem are the path.
// TESSERA_SECP_CASES=N runs N random cases per property instead of the defaults (1000 signing,
// 256 asynchronous signing, 40 forgery corpora, 8 of them asynchronous): a longer property run.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { cpuUsage } from 'node:process'
import { test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, type Hex, hexToBytes, keccak256, recoverAddress, toHex } from 'viem'
import { privateKeyToAccount, sign } from 'viem/accounts'
import { isSignedBy, isSignedByAsync, keccak256Bytes, recoverSigner, recoverSignerAsync, rememberSigningKey, signHash, useNativeSecp } from '../../chain/evm/secp.js'
import { makeRng } from '../../../test/support/testData.js'
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

let rNoX: bigint | undefined
type Forgery = [name: string, hash: Uint8Array, r: bigint, s: bigint, parity: number]

/** A fresh key's valid signature and every forgery of it, with the signer's and another key. */
function forgeries(): { pub: Uint8Array; other: Uint8Array; cases: Forgery[]; zero: Forgery } {
  rNoX ??= notAnX(1n)
  const key = secp256k1.utils.randomSecretKey()
  const pub = secp256k1.getPublicKey(key, false)
  const other = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false)
  const hash = randomBytes(32)
  const { r, s, parity } = nobleSign(hash, key)
  // a hash above the group order (n < h < 2^256, a 2^-128 chance for a digest): signed and recovered as h mod n
  const hashHi = be32(N + int(randomBytes(16)))
  const hi = nobleSign(hashHi, key)
  const z = zeroKeyCase()
  const zero: Forgery = ['recovers the point at infinity', z.hash, z.r, z.s, z.parity]
  return {
    pub,
    other,
    zero,
    cases: [
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
      ['hash >= n, valid', hashHi, hi.r, hi.s, hi.parity],
      ['hash >= n, named as hash - n', be32(int(hashHi) - N), hi.r, hi.s, hi.parity],
      ['hash >= n, high-s twin', hashHi, hi.r, N - hi.s, 1 - hi.parity],
      zero,
    ],
  }
}

test('recover and verify: noble recovery\'s answer on valid signatures and every forgery', { skip }, () => {
  const n = CASES || 40
  for (let i = 0; i < n; i++) {
    const { pub, other, cases, zero } = forgeries()
    for (const [name, h, rr, ss, p] of cases) {
      const want = nobleRecover(h, rr, ss, p)
      const got = nativeRecover(h, rr, ss, p)
      assert.equal(got && bytesToHex(got), want && bytesToHex(want), `case ${i}: recover, ${name}`)
      if (name.startsWith('hash >= n')) assert.equal(want && bytesToHex(want), bytesToHex(pub), `case ${i}: ${name} recovers the signer (h mod n)`)
      for (const [who, P] of [['signer', pub], ['another key', other]] as const) {
        const expect = want !== undefined && bytesToHex(want) === bytesToHex(P)
        assert.equal(native!.verify(h, rsOf(rr, ss), p, P), expect, `case ${i}: verify against ${who}, ${name}`)
      }
    }
    if (i === 0) assert.equal(nobleRecover(zero[1], zero[2], zero[3], zero[4]), undefined, 'the crafted case does reach infinity')
  }
  // a key that is no curve point is refused, not checked
  const pub = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false)
  // nor one in the hybrid form (prefix 06/07 with y's parity: libsecp256k1 parses it, noble refuses it)
  const hybrid = Uint8Array.of(6 | (pub[64] & 1), ...pub.subarray(1))
  assert.throws(() => Point.fromBytes(hybrid))
  assert.throws(() => native!.verify(randomBytes(32), randomBytes(64), 0, hybrid), TypeError)
  pub[64] ^= 1
  assert.throws(() => native!.verify(randomBytes(32), randomBytes(64), 0, pub), TypeError)
  assert.throws(() => native!.recover(randomBytes(32), randomBytes(64), 2, new Uint8Array(65)), TypeError)
})

test('signAsync: sign\'s bytes (and viem\'s) on random keys and hashes, 64 in flight at a time; the inputs are copied at the call', { skip }, async () => {
  const n = CASES || 256
  for (let batch = 0; batch < n; batch += 64) {
    const jobs = Array.from({ length: Math.min(64, n - batch) }, (_, j) => {
      const i = batch + j
      const key = secp256k1.utils.randomSecretKey()
      const hash = i % 97 === 0 ? be32(N + BigInt(i)) : randomBytes(32)
      const want = new Uint8Array(65)
      native!.sign(hash, key, want)
      const got = native!.signAsync(hash, key)
      // the caller reuses its buffers at once: the work must have copied them
      const [h, k] = [Uint8Array.from(hash), Uint8Array.from(key)] // (a Buffer's slice is a view)
      hash.fill(0xa5)
      key.fill(0x5a)
      return { i, h, k, want, got }
    })
    for (const { i, h, k, want, got } of jobs) {
      const sig = await got
      assert.ok(sig instanceof Uint8Array && sig.length === 65)
      assert.equal(bytesToHex(sig), bytesToHex(want), `case ${i}`)
      if (i % 16 === 0) assert.equal(bytesToHex(sig), await sign({ hash: bytesToHex(h), privateKey: bytesToHex(k), to: 'hex' }), `case ${i}: viem`)
    }
  }
})

test('recoverAsync and verifyAsync: recover\'s and verify\'s answers on valid signatures and every forgery, all in flight at once', { skip }, async () => {
  const n = CASES || 8
  const checks: Promise<void>[] = []
  for (let i = 0; i < n; i++) {
    const { pub, other, cases } = forgeries()
    for (const [name, h, rr, ss, p] of cases) {
      const rs = rsOf(rr, ss)
      const want = nativeRecover(h, rr, ss, p)
      checks.push(
        native!.recoverAsync(h, rs, p).then((got) => assert.equal(got && bytesToHex(got), want && bytesToHex(want), `case ${i}: recoverAsync, ${name}`)),
      )
      for (const [who, P] of [['signer', pub], ['another key', other]] as const) {
        const expect = native!.verify(h, rs, p, P)
        const got = native!.verifyAsync(h, rs, p, P)
        rs.fill(0)
        checks.push(got.then((v) => assert.equal(v, expect, `case ${i}: verifyAsync against ${who}, ${name}`)))
        rs.set(rsOf(rr, ss))
      }
    }
  }
  assert.ok(checks.length >= 64, `${checks.length} operations in flight`)
  await Promise.all(checks)
})

test('64 mixed operations in flight at once on the pool: each the synchronous twin\'s answer', { skip }, async () => {
  const ops = Array.from({ length: 64 }, (_, i) => {
    const key = secp256k1.utils.randomSecretKey()
    const hash = randomBytes(32)
    const sig = new Uint8Array(65)
    native!.sign(hash, key, sig)
    const [rs, p] = [sig.subarray(0, 64), sig[64] - 27]
    const pub = secp256k1.getPublicKey(key, false)
    switch (i % 4) {
      case 0:
        return native!.signAsync(hash, key).then((v) => assert.equal(bytesToHex(v), bytesToHex(sig), `op ${i}: sign`))
      case 1:
        return native!.recoverAsync(hash, rs, p).then((v) => assert.equal(v && bytesToHex(v), bytesToHex(pub), `op ${i}: recover`))
      case 2:
        return native!.verifyAsync(hash, rs, p, pub).then((v) => assert.equal(v, true, `op ${i}: verify, valid`))
      default:
        return native!.verifyAsync(hash, rs, 1 - p, pub).then((v) => assert.equal(v, false, `op ${i}: verify, wrong parity`))
    }
  })
  await Promise.all(ops)
})

/**
 * On-CPU ns of this process's threads other than the JS thread (Linux's per-thread schedstat);
 * undefined where there is none. A thread's schedstat is brought up to date when it is scheduled out,
 * so it is exact for the pool's threads once they wait again, but lags by up to a scheduler tick for
 * the thread that reads it: the JS thread's share is taken as the process's CPU (getrusage, exact)
 * minus this.
 */
function otherThreadsNs(): number | undefined {
  try {
    let ns = 0
    for (const tid of readdirSync('/proc/self/task')) {
      if (Number(tid) === process.pid) continue
      try {
        ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0])
      } catch {} // a thread that ended meanwhile
    }
    return ns
  } catch {
    return undefined
  }
}

const processNs = () => {
  const u = cpuUsage()
  return (u.user + u.system) * 1e3
}

// With libsecp256k1 a signature is ~50 µs, and the pool hop itself costs the JS thread ~15-35 µs
// (docs/BENCHMARKS.md, "libsecp256k1 in the native addon"): the JS thread's saving is no longer
// "well under half", so the test asserts where the work ran, and that the JS thread still pays less
// than signing itself.
test('the work runs off the JS thread: 128 signatures by signAsync run on other threads and cost the JS thread less than 128 by sign do', { skip: skip || (otherThreadsNs() === undefined && 'no per-thread CPU clock here') }, async () => {
  const jobs = Array.from({ length: 128 }, () => ({ hash: randomBytes(32), key: secp256k1.utils.randomSecretKey() }))
  const out = new Uint8Array(65)
  await Promise.all(jobs.map(({ hash, key }) => native!.signAsync(hash, key))) // warm
  const p0 = processNs()
  for (const { hash, key } of jobs) native!.sign(hash, key, out)
  const [p1, o1] = [processNs(), otherThreadsNs()!]
  await Promise.all(jobs.map(({ hash, key }) => native!.signAsync(hash, key)))
  await new Promise((r) => setTimeout(r, 20)) // the pool's threads go back to waiting (their schedstat catches up)
  const [p2, o2] = [processNs(), otherThreadsNs()!]
  const syncMs = (p1 - p0) / 1e6
  const [offMs, jsMs] = [(o2 - o1) / 1e6, (p2 - p1 - (o2 - o1)) / 1e6]
  const msg = `sign: ${syncMs.toFixed(2)} ms; signAsync: ${offMs.toFixed(2)} ms on other threads, ${jsMs.toFixed(2)} ms on the JS thread`
  assert.ok(offMs > syncMs / 2, msg)
  assert.ok(jsMs < syncMs, msg)
})

test('the asynchronous forms: bad arguments throw a TypeError at the call; a key out of range rejects with sign\'s message', { skip }, async () => {
  const [h, rs, pub] = [randomBytes(32), randomBytes(64), secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false)]
  const a = native!
  const calls: [string, () => unknown][] = [
    ['signAsync: 31-byte hash', () => a.signAsync(randomBytes(31), randomBytes(32))],
    ['signAsync: 33-byte key', () => a.signAsync(h, randomBytes(33))],
    ['signAsync: a string key', () => a.signAsync(h, 'key' as unknown as Uint8Array)],
    ['signAsync: a Uint16Array', () => a.signAsync(h, new Uint16Array(16) as unknown as Uint8Array)],
    ['signAsync: an out buffer too', () => (a.signAsync as (...x: unknown[]) => unknown)(h, randomBytes(32), new Uint8Array(65))],
    ['recoverAsync: 63-byte rs', () => a.recoverAsync(h, randomBytes(63), 0)],
    ['recoverAsync: parity 2', () => a.recoverAsync(h, rs, 2)],
    ['recoverAsync: parity 27', () => a.recoverAsync(h, rs, 27)],
    ['verifyAsync: 64-byte pub', () => a.verifyAsync(h, rs, 0, pub.subarray(1))],
    ['verifyAsync: compressed-prefix pub', () => a.verifyAsync(h, rs, 0, Uint8Array.of(2, ...pub.subarray(1)))],
    ['verifyAsync: hybrid-prefix pub', () => a.verifyAsync(h, rs, 0, Uint8Array.of(6 | (pub[64] & 1), ...pub.subarray(1)))],
    ['verifyAsync: off-curve pub', () => a.verifyAsync(h, rs, 0, Uint8Array.of(...pub.subarray(0, 64), pub[64] ^ 1))],
    ['verifyAsync: parity -1', () => a.verifyAsync(h, rs, -1, pub)],
    ['verifyAsync: no pub', () => (a.verifyAsync as (...x: unknown[]) => unknown)(h, rs, 0)],
  ]
  for (const [name, call] of calls) assert.throws(call, TypeError, name)
  for (const bad of [0n, N, N + 1n, (1n << 256n) - 1n]) await assert.rejects(a.signAsync(h, be32(bad)), { name: 'Error', message: 'invalid private key' })
})

test('through chain/evm/secp.ts: key A\'s signature never passes as B\'s, native or not, cold or cached; signHash gives viem\'s bytes', { skip }, async () => {
  const keys = [0, 1].map((i) => keccak256(toHex(`native secp test key ${i}`)))
  const [A, B] = keys.map((k) => privateKeyToAccount(k))
  rememberSigningKey(A, keys[0])
  try {
    for (const installed of [true, false, true]) {
      useNativeSecp(installed ? native : undefined)
      for (let round = 0; round < 3; round++) {
        // on the pool first (a fresh hash, no memo): by recovery in round 0, by the remembered keys after
        const hash2 = keccak256(toHex(`job ${round} ${installed} async`))
        const [sigA2, sigB2] = [await signHash(A, hash2), await B.sign({ hash: hash2 })]
        const answers = await Promise.all([
          isSignedByAsync(hash2, sigA2, B.address),
          isSignedByAsync(hash2, sigB2, A.address),
          isSignedByAsync(hash2, sigA2, A.address),
          isSignedByAsync(hash2, sigB2, B.address),
        ])
        assert.deepEqual(answers, [false, false, true, true], `round ${round}: A's as B's, B's as A's, then each its own`)
        assert.equal(await recoverSignerAsync(hash2, sigA2), A.address)
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
      assert.equal(await isSignedByAsync(bytesToHex(z.hash), sigZ, A.address), false)
      await assert.rejects(recoverSignerAsync(bytesToHex(z.hash), sigZ), installed ? { name: 'UnrecoverableSignatureError' } : /point at infini/)
    }
  } finally {
    useNativeSecp(undefined)
  }
})

// ---- keccak256: Ethereum's Keccak-256 (original padding 0x01 ... 0x80), viem's `keccak256` byte for byte

const utf8 = (s: string) => new TextEncoder().encode(s)
const nativeKeccak = (data: Uint8Array) => {
  const out = new Uint8Array(32)
  native!.keccak256(data, out)
  return bytesToHex(out)
}

test('keccak256: the standard vectors and viem\'s hash on every length 0..600 (random bytes, fixed seed) and the rate\'s boundaries', { skip }, () => {
  assert.equal(nativeKeccak(new Uint8Array(0)), '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470')
  assert.equal(nativeKeccak(utf8('abc')), '0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45')
  assert.equal(nativeKeccak(utf8('The quick brown fox jumps over the lazy dog')), '0x4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15')
  const rng = makeRng(0x6b656363)
  for (let n = 0; n <= 600; n++) {
    const data = Uint8Array.from({ length: n }, () => rng() & 0xff)
    assert.equal(nativeKeccak(data), keccak256(data), `length ${n}`)
  }
  // the rate is 136 bytes: a message of 135 puts 0x01 and 0x80 in one byte (0x81), 136 needs a block of padding alone
  for (const n of [135, 136, 137, 271, 272, 273]) {
    for (const fill of [0x00, 0x01, 0x80, 0xff]) {
      const data = new Uint8Array(n).fill(fill)
      assert.equal(nativeKeccak(data), keccak256(data), `length ${n} of 0x${fill.toString(16)}`)
    }
  }
})

test('keccak256: views at offsets in and out, out overlapping the input, the input untouched, the bytes around out untouched', { skip }, () => {
  const rng = makeRng(77)
  const big = Uint8Array.from({ length: 700 }, () => rng() & 0xff)
  const copy = big.slice()
  for (const [at, n] of [[1, 0], [3, 64], [5, 135], [7, 136], [9, 160], [11, 288], [13, 273], [100, 600]]) {
    const view = big.subarray(at, at + n)
    const outBuf = new Uint8Array(48).fill(0xa5)
    native!.keccak256(view, outBuf.subarray(7, 39))
    assert.equal(bytesToHex(outBuf.subarray(7, 39)), keccak256(big.slice(at, at + n)), `data at ${at}, length ${n}`)
    assert.ok(outBuf.subarray(0, 7).every((b) => b === 0xa5) && outBuf.subarray(39).every((b) => b === 0xa5), 'only out\'s 32 bytes are written')
    assert.deepEqual(big, copy, 'the input is not written')
  }
  // out inside data (in place): the hash of the data as it was
  for (const n of [32, 136, 300]) {
    const data = Uint8Array.from({ length: n }, () => rng() & 0xff)
    const want = keccak256(data)
    native!.keccak256(data, data.subarray(n - 32))
    assert.equal(bytesToHex(data.subarray(n - 32)), want, `in place, length ${n}`)
  }
  // a Node Buffer is a Uint8Array
  assert.equal(nativeKeccak(Buffer.from('abc')), keccak256(utf8('abc')))
})

test('keccak256: bad arguments throw a TypeError at the call', { skip }, () => {
  const k = native!.keccak256 as (...x: unknown[]) => unknown
  const data = utf8('abc')
  const calls: [string, () => unknown][] = [
    ['out of 31 bytes', () => k(data, new Uint8Array(31))],
    ['out of 33 bytes', () => k(data, new Uint8Array(33))],
    ['no out', () => k(data)],
    ['no arguments', () => k()],
    ['a string', () => k('abc', new Uint8Array(32))],
    ['an ArrayBuffer', () => k(data.buffer, new Uint8Array(32))],
    ['a Uint16Array', () => k(new Uint16Array(4), new Uint8Array(32))],
    ['a DataView', () => k(new DataView(new ArrayBuffer(4)), new Uint8Array(32))],
    ['a Uint8ClampedArray out', () => k(data, new Uint8ClampedArray(32))],
    ['an extra argument', () => k(data, new Uint8Array(32), 1)],
  ]
  for (const [name, call] of calls) assert.throws(call, TypeError, name)
})

test('keccak256Bytes (chain/evm/secp.ts): the addon\'s when installed, viem\'s when not, the same bytes', { skip }, () => {
  let calls = 0
  const counted = { ...native!, keccak256: (d: Uint8Array, o: Uint8Array) => (calls++, native!.keccak256(d, o)) }
  const rng = makeRng(5)
  try {
    for (const impl of [counted, undefined, { ...native!, keccak256: undefined }]) {
      useNativeSecp(impl)
      const before = calls
      for (const n of [0, 64, 136, 160, 288]) {
        const data = Uint8Array.from({ length: n }, () => rng() & 0xff)
        const h = keccak256Bytes(data)
        assert.ok(h instanceof Uint8Array && h.length === 32)
        assert.equal(bytesToHex(h), keccak256(data))
      }
      assert.equal(calls - before, impl === counted ? 5 : 0, 'the twin hashes exactly when installed with keccak256')
    }
  } finally {
    useNativeSecp(undefined)
  }
})
