// The fast signature checks (secp.ts) against viem's recovery, from a forger's side: for every
// mutation of a valid signature (another signer, another hash, the other recovery bit, the high-s
// twin, out-of-range r or s, a bad v, the compact form), `isSignedBy` with the signer's key cached
// gives exactly the answer `recoverAddress(...) === signer` gives, and so does the cold path; the
// memo of checked signatures never answers for a signature it did not check. `isSignedByAsync` and
// `recoverSignerAsync` give the same answers on the same corpus, with the native twin installed (its
// thread-pool forms; skipped where the addon is not built) and without it.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Address, type Hex, keccak256, recoverAddress, serializeSignature, signatureToCompactSignature, toHex } from 'viem'
import { privateKeyToAccount, sign } from 'viem/accounts'
import { loadNativeSecp } from '../../runtime/native/secp.js'
import {
  isSignedBy,
  isSignedByAsync,
  keyCacheStats,
  nativeSecpInstalled,
  recoverSigner,
  recoverSignerAsync,
  rememberSigningKey,
  type SecpImpl,
  signHash,
  useNativeSecp,
} from './secp.js'

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const key = (i: number): Hex => keccak256(toHex(`secp test key ${i}`))
const hashOf = (i: number): Hex => keccak256(toHex(`message ${i}`))
const hex32 = (x: bigint): Hex => toHex(x, { size: 32 })

/** What viem says: the signature recovers `signer` (false when it cannot recover at all). */
async function viemSays(hash: Hex, sig: Hex, signer: Address): Promise<boolean> {
  try {
    return (await recoverAddress({ hash, signature: sig })) === signer
  } catch {
    return false
  }
}

/** A valid signature and its forgeries, as 65-byte hex. */
async function corpus(pk: Hex, hash: Hex): Promise<{ name: string; sig: Hex }[]> {
  const s = await sign({ hash, privateKey: pk })
  const r = BigInt(s.r)
  const sv = BigInt(s.s)
  const y = s.yParity ?? 0
  const ser = (rr: bigint, ss: bigint, yy: number, v?: number): Hex => {
    const base = `${hex32(rr)}${hex32(ss).slice(2)}` as Hex
    return `${base}${(v ?? 27 + yy).toString(16).padStart(2, '0')}` as Hex
  }
  const other = await sign({ hash, privateKey: key(99) })
  return [
    { name: 'valid', sig: serializeSignature(s) },
    { name: 'valid, v 0/1', sig: ser(r, sv, y, y) },
    { name: 'another signer', sig: serializeSignature(other) },
    { name: 'other recovery bit', sig: ser(r, sv, 1 - y) },
    { name: 'high-s twin', sig: ser(r, N - sv, 1 - y) },
    { name: 'high-s, same bit', sig: ser(r, N - sv, y) },
    { name: 'r + 1', sig: ser(r + 1n, sv, y) },
    { name: 's + 1', sig: ser(r, sv + 1n, y) },
    { name: 'r = 0', sig: ser(0n, sv, y) },
    { name: 's = 0', sig: ser(r, 0n, y) },
    { name: 'r = n', sig: ser(N, sv, y) },
    { name: 's = n', sig: ser(r, N, y) },
    { name: 'v = 29', sig: ser(r, sv, y, 29) },
  ]
}

test('isSignedBy agrees with viem recovery on valid signatures and every forgery, with the key cold and cached', async () => {
  for (let k = 0; k < 3; k++) {
    const pk = key(k)
    const signer = privateKeyToAccount(pk).address
    // three rounds: the first recovers (cold), the second caches the key, the third uses it
    for (let round = 0; round < 3; round++) {
      for (let m = 0; m < 4; m++) {
        const hash = hashOf(m)
        for (const { name, sig } of await corpus(pk, hash)) {
          const expected = await viemSays(hash, sig, signer)
          assert.equal(isSignedBy(hash, sig, signer), expected, `key ${k} round ${round} msg ${m}: ${name}`)
          // the right signature for another message is no signature of this one
          assert.equal(isSignedBy(hashOf(m + 100), sig, signer), await viemSays(hashOf(m + 100), sig, signer), `${name} on another hash`)
        }
      }
    }
    assert.equal(isSignedBy(hashOf(0), (await corpus(pk, hashOf(0)))[0].sig, signer), true, 'the valid signature passes')
  }
})

test('compact (EIP-2098) signatures: the same answers as their 65-byte form', async () => {
  const pk = key(5)
  const signer = privateKeyToAccount(pk).address
  for (let round = 0; round < 3; round++) {
    const hash = hashOf(round)
    const s = await sign({ hash, privateKey: pk })
    const c = signatureToCompactSignature(s)
    assert.equal(isSignedBy(hash, { r: c.r, vs: c.yParityAndS }, signer), true)
    // the other parity bit in vs
    const flipped = `0x${(BigInt(c.yParityAndS) ^ (1n << 255n)).toString(16).padStart(64, '0')}` as Hex
    assert.equal(isSignedBy(hash, { r: c.r, vs: flipped }, signer), false)
    assert.equal(recoverSigner(hash, { r: c.r, vs: c.yParityAndS }), signer)
    // checked signatures are remembered for recoverSigner: the flipped one must still recover someone else
    assert.equal(recoverSigner(hash, { r: c.r, vs: flipped }), await recoverAddress({ hash, signature: { r: c.r, s: s.s, yParity: 1 - (s.yParity ?? 0) } }))
    assert.notEqual(recoverSigner(hash, { r: c.r, vs: flipped }), signer)
  }
})

test('a signer named by someone else: a valid signature of key A does not pass as key B, cached or not', async () => {
  const [a, b] = [key(7), key(8)]
  const [A, B] = [privateKeyToAccount(a).address, privateKeyToAccount(b).address]
  for (let round = 0; round < 3; round++) {
    const hash = hashOf(round)
    const sigA = await sign({ hash, privateKey: a, to: 'hex' })
    const sigB = await sign({ hash, privateKey: b, to: 'hex' })
    assert.equal(isSignedBy(hash, sigA, A), true)
    assert.equal(isSignedBy(hash, sigB, B), true)
    assert.equal(isSignedBy(hash, sigA, B), false)
    assert.equal(isSignedBy(hash, sigB, A), false)
  }
})

test('malformed input: recoverSigner throws one line, isSignedBy says false', () => {
  const signer = privateKeyToAccount(key(1)).address
  assert.throws(() => recoverSigner(hashOf(0), '0x1234'), /65 bytes/)
  assert.throws(() => recoverSigner(hashOf(0), `0x${'11'.repeat(64)}1d`), /v must be 27 or 28/)
  assert.equal(isSignedBy(hashOf(0), '0x1234', signer), false)
  assert.equal(isSignedBy(hashOf(0), { r: '0x00', vs: '0x00' }, signer), false)
})

test('more regular signers than hot keys: the hot set keeps its keys (no table rebuilt per check), the rest check by recovery, answers unchanged', async () => {
  const { maxHot } = keyCacheStats()
  const signers = Array.from({ length: maxHot + 8 }, (_, i) => privateKeyToAccount(key(1000 + i)))
  const built0 = keyCacheStats().tablesBuilt
  // each signer seen round after round, in the same order: the pattern that makes an LRU cache thrash
  for (let round = 0; round < 4; round++) {
    for (const [i, a] of signers.entries()) {
      const hash = hashOf(round * 1000 + i)
      const sig = await a.sign({ hash })
      assert.equal(isSignedBy(hash, sig, a.address), true)
      assert.equal(isSignedBy(hash, sig, signers[(i + 1) % signers.length].address), false)
    }
  }
  const built = keyCacheStats().tablesBuilt - built0
  assert.ok(built <= maxHot, `${built} tables built for ${signers.length} signers over 4 rounds (an LRU would build one per check after the first rounds)`)
  assert.ok(keyCacheStats().hot <= maxHot)
})

test('signHash with no native twin installed: the account\'s own viem signature; an account that cannot sign a hash is refused by name', async () => {
  assert.equal(nativeSecpInstalled(), false)
  const a = privateKeyToAccount(key(3))
  rememberSigningKey(a, key(3))
  for (let i = 0; i < 3; i++) assert.equal(await signHash(a, hashOf(i)), await a.sign({ hash: hashOf(i) }))
  await assert.rejects(signHash({}, hashOf(0)), { name: 'NotLocalAccountError' })
})

/** viem's recovered address, or undefined where it throws. */
async function viemRecovers(hash: Hex, sig: Hex): Promise<Address | undefined> {
  try {
    return await recoverAddress({ hash, signature: sig })
  } catch {
    return undefined
  }
}

test('isSignedByAsync and recoverSignerAsync: viem\'s answers on valid signatures and every forgery, native twin on and off, cold and cached', async () => {
  const native = loadNativeSecp()
  const passes: [string, SecpImpl | undefined][] = native ? [['plain', undefined], ['native', native]] : [['plain', undefined]]
  try {
    for (const [pass, impl] of passes) {
      useNativeSecp(impl)
      // fresh signers per pass: round 0 checks by recovery, the later rounds by the remembered key
      for (const k of [0]) {
        const pk = key(300 + k + (impl ? 10 : 0))
        const signer = privateKeyToAccount(pk).address
        for (let round = 0; round < 3; round++) {
          const hash = hashOf(round + (impl ? 50 : 0))
          const sigs = await corpus(pk, hash)
          // the whole corpus in flight at once, then each answer against viem's
          const got = await Promise.all(sigs.map(({ sig }) => isSignedByAsync(hash, sig, signer)))
          for (const [i, { name, sig }] of sigs.entries()) {
            const expected = await viemSays(hash, sig, signer)
            assert.equal(got[i], expected, `${pass} key ${k} round ${round}: ${name}`)
            assert.equal(isSignedBy(hash, sig, signer), expected, `${pass} key ${k} round ${round}: ${name}, synchronous`)
            const who = await viemRecovers(hash, sig)
            if (who) assert.equal(await recoverSignerAsync(hash, sig), who, `${pass}: ${name} recovers viem's address`)
            else await assert.rejects(recoverSignerAsync(hash, sig), `${pass}: ${name} recovers nobody`)
          }
        }
      }
      assert.equal(await isSignedByAsync(hashOf(0), '0x1234', privateKeyToAccount(key(300)).address), false, 'malformed')
    }
  } finally {
    useNativeSecp(undefined)
  }
})
