import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { bls12_381 as bls } from '@noble/curves/bls12-381.js'
import { type Hex, bytesToHex, sha256 } from 'viem'
import {
  beaconArgs, checkBeaconRound, deployBeacon, getBeaconRoundAt, getRecordedRandomness, readBeaconRandomness, recordBeaconRound,
} from './actions/beacon.js'
import {
  BEACON_DST, type BeaconRound, DRAND_QUICKNET, beaconChainHash, createDevBeacon, fetchChainInfo, fetchRound, randomnessOf, roundAt, serveBeacon,
  timeOfRound, toContractPublicKey, toContractSig, verifyBeaconRound,
} from './beacon.js'
import { ContractRevertError } from './client.js'
import { type ChainClients, connectClients, deployContract } from './evm/clients.js'
import { type EmbeddedChain, createEmbeddedChain } from './evm/edr.js'

// A real quicknet round (drand's League of Entropy chain 52db9ba7...): the signature and randomness
// as api.drand.sh publishes them (the vector drand-verify's Python binding documents).
const QUICKNET_657413: BeaconRound = {
  round: 657413,
  signature: 'b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be41076862b98fad56e91a6b85b89cd97b',
  randomness: 'fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587',
}
// Another chain of the same scheme (drand-client's test vector for `bls-unchained-g1-rfc9380`, a
// drand test network "walkthrough"): another key, so quicknet must refuse its signatures.
const WALKTHROUGH = {
  public_key: '81d320f220ee9c79e60e19dedc838c31e3ab919b15481e9feb52f643628c4f6a13fdc52129493875a818109d767272ca0541cbcdcea9335f2870d781b39b845ba8cbd44fdfe4967781cf72ca5917fc9398bcf97ca0548ed5a709016c4b1ff0f3',
  genesis_time: 1687506816,
  period: 3,
}
const WALKTHROUGH_38: BeaconRound = {
  round: 38,
  signature: '95c93585c513ebbcb4777ff15599b3140e5ec0295faa0e483f3deadd88fa6d43f0d3703e3a4ce106e8fd6c6987f32126',
  randomness: 'b2fc21325a24904a6a9e81a6c63f65f6cec3f0b2400df3f4a56b214770e9ccca',
}

const P = bls.fields.Fp.ORDER
const fp64 = (x: bigint) => x.toString(16).padStart(128, '0')
const g1 = (x: bigint, y: bigint) => `0x${fp64(x)}${fp64(y)}` as Hex
const coords = (sig: Hex) => ({ x: BigInt(`0x${sig.slice(2, 130)}`), y: BigInt(`0x${sig.slice(130)}`) })

/** Expects a contract read to revert with the custom error `name`; returns its arguments. */
async function revertsWith(p: Promise<unknown>, name: string): Promise<readonly unknown[]> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof ContractRevertError, `expected a ContractRevertError, got ${err}`)
    assert.equal(err.errorName, name)
    return err.args
  }
  assert.fail(`expected a revert ${name}`)
}

describe('Beacon on the embedded chain', () => {
  let chain: EmbeddedChain
  let c: ChainClients
  let now: number // the chain's clock (seconds)
  let quicknet: { beacon: Hex }
  const dev = () => createDevBeacon({ seed: 'beacon-test', genesisTime: now - 300, period: 3 })
  let devnet: { beacon: Hex }

  before(async () => {
    chain = await createEmbeddedChain({ accounts: 1 })
    c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    now = Number((await c.public.getBlock()).timestamp)
    quicknet = await deployBeacon(c, DRAND_QUICKNET)
    devnet = await deployBeacon(c, dev().info)
  })
  after(async () => {
    await chain.close()
  })

  test('a real drand quicknet round verifies in TypeScript and on chain, with drand\'s randomness', async () => {
    assert.ok(verifyBeaconRound(DRAND_QUICKNET.public_key, QUICKNET_657413))
    assert.equal(randomnessOf(QUICKNET_657413.signature), QUICKNET_657413.randomness)
    const args = beaconArgs(QUICKNET_657413)
    assert.equal(await checkBeaconRound(c, quicknet, args), true)
    assert.equal(await readBeaconRandomness(c, quicknet, args), `0x${QUICKNET_657413.randomness}`)
    // Another chain of the same scheme verifies under its own key, and only there.
    assert.ok(verifyBeaconRound(WALKTHROUGH.public_key, WALKTHROUGH_38))
    const walkthrough = await deployBeacon(c, WALKTHROUGH)
    assert.equal(await readBeaconRandomness(c, walkthrough, beaconArgs(WALKTHROUGH_38)), `0x${WALKTHROUGH_38.randomness}`)
    assert.equal(verifyBeaconRound(DRAND_QUICKNET.public_key, WALKTHROUGH_38), false)
    assert.equal(await checkBeaconRound(c, quicknet, beaconArgs(WALKTHROUGH_38)), false)
    assert.deepEqual(await revertsWith(readBeaconRandomness(c, quicknet, beaconArgs(WALKTHROUGH_38)), 'BadBeaconSignature'), [38n])
  })

  test('verify costs under 160k gas; record stores the randomness once for cheap reads', async (t) => {
    const args = beaconArgs(QUICKNET_657413)
    const abi = (await import('./artifacts.js')).getArtifact('Beacon').abi
    const gas = await c.public.estimateContractGas({ address: quicknet.beacon, abi, functionName: 'verify', args: [args.round, args.sig], account: c.account } as never)
    t.diagnostic(`Beacon.verify: ${gas} gas (a transaction calling it alone, 21k base included)`)
    assert.ok(gas < 160_000n, `verify took ${gas} gas`)
    assert.equal(await getRecordedRandomness(c, quicknet, args.round), `0x${'0'.repeat(64)}`)
    const first = await recordBeaconRound(c, quicknet, args)
    t.diagnostic(`Beacon.record: ${first.gasUsed} gas`)
    assert.equal(first.receipt.logs.length, 1)
    assert.equal(await getRecordedRandomness(c, quicknet, args.round), `0x${QUICKNET_657413.randomness}`)
    const again = await recordBeaconRound(c, quicknet, args)
    assert.equal(again.receipt.logs.length, 0, 'a second record changes nothing and logs nothing')
    await revertsWith(recordBeaconRound(c, quicknet, beaconArgs({ ...QUICKNET_657413, round: 657414 })), 'BadBeaconSignature')
  })

  test('the devnet beacon is deterministic from its seed, and its rounds verify on chain with the TypeScript randomness', async () => {
    const a = dev()
    const b = dev()
    assert.equal(a.info.public_key, b.info.public_key)
    assert.equal(a.info.hash, beaconChainHash(a.info))
    assert.notEqual(createDevBeacon({ seed: 'other', genesisTime: now, period: 3 }).info.public_key, a.info.public_key)
    // Golden: the seed's derivation and drand's wire form are frozen.
    assert.equal(createDevBeacon({ seed: 'golden', genesisTime: 0, period: 3 }).sign(1).randomness, GOLDEN_ROUND_1)
    assert.throws(() => a.sign(0), { name: 'InvalidParameterError' })
    assert.throws(() => createDevBeacon({ secretKey: `0x${'00'.repeat(32)}`, genesisTime: 0, period: 3 }), (err: Error) => err.name === 'InvalidParameterError' && !err.message.includes('00'.repeat(32)))
    assert.equal(createDevBeacon({ secretKey: `0x${'00'.repeat(31)}07`, genesisTime: 0, period: 3 }).info.public_key, bytesToHex(bls.G2.Point.BASE.multiply(7n).toBytes(true)).slice(2))
    for (const round of [1, 2, a.roundAt(now)]) {
      const r = a.sign(round)
      assert.deepEqual(b.sign(round), r)
      assert.ok(verifyBeaconRound(a.info.public_key, r))
      assert.equal(await checkBeaconRound(c, devnet, beaconArgs(r)), true)
      assert.equal(await readBeaconRandomness(c, devnet, beaconArgs(r)), `0x${r.randomness}`)
    }
  })

  test('attacker: another round\'s signature, another key\'s signature, round 0 and a doctored randomness are refused', async () => {
    const beacon = dev()
    const r = beacon.sign(10)
    // The signature of round 11 offered as round 10.
    const shifted = { ...beacon.sign(11), round: 10 }
    assert.equal(verifyBeaconRound(beacon.info.public_key, shifted), false)
    assert.equal(await checkBeaconRound(c, devnet, beaconArgs(shifted)), false)
    assert.deepEqual(await revertsWith(readBeaconRandomness(c, devnet, beaconArgs(shifted)), 'BadBeaconSignature'), [10n])
    // Another key's signature of the very round.
    const forged = createDevBeacon({ seed: 'attacker', genesisTime: now - 300, period: 3 }).sign(10)
    assert.equal(verifyBeaconRound(beacon.info.public_key, forged), false)
    assert.equal(await checkBeaconRound(c, devnet, beaconArgs(forged)), false)
    await revertsWith(readBeaconRandomness(c, devnet, beaconArgs(forged)), 'BadBeaconSignature')
    // Round 0 is never signed by drand; refused even if the key signs its message.
    await revertsWith(readBeaconRandomness(c, devnet, { round: 0n, sig: toContractSig(r.signature) }), 'BadBeaconSignature')
    // The TypeScript check also binds the randomness to the signature.
    assert.equal(verifyBeaconRound(beacon.info.public_key, { ...r, randomness: 'ff'.repeat(32) }), false)
  })

  test('attacker: malformed points are refused (wrong length, off the curve, non-canonical, infinity, outside the subgroup, negated)', async () => {
    const r = dev().sign(12)
    const good = toContractSig(r.signature)
    const { x, y } = coords(good)
    const cases: Record<string, Hex> = {
      'compressed form as is (48 bytes)': `0x${r.signature}`,
      'one byte short': good.slice(0, -2) as Hex,
      'one byte long': `${good}00`,
      empty: '0x',
      'off the curve (y + 1)': g1(x, (y + 1n) % P),
      'x not canonical (x + p)': g1(x + P, y),
      'y not canonical (y + p)': g1(x, y + P),
      'point at infinity': g1(0n, 0n),
      'on the curve, outside the prime-order subgroup': g1(0n, 2n),
      'negated signature (x, p - y)': g1(x, P - y),
      'nonzero high padding': `0x01${good.slice(4)}` as Hex,
    }
    for (const [name, sig] of Object.entries(cases)) {
      assert.equal(await checkBeaconRound(c, devnet, { round: 12n, sig }), false, name)
      await revertsWith(readBeaconRandomness(c, devnet, { round: 12n, sig }), 'BadBeaconSignature')
    }
    assert.equal(await checkBeaconRound(c, devnet, { round: 12n, sig: good }), true)
    // The TypeScript side refuses the same inputs before they reach a transaction.
    assert.throws(() => toContractSig('00'.repeat(48)), { name: 'BadBeaconPointError' })
    assert.throws(() => toContractSig(r.signature.slice(0, -2)), { name: 'BadBeaconPointError' })
    assert.throws(() => toContractPublicKey(r.signature), { name: 'BadBeaconPointError' })
  })

  test('attacker: a round that is not due yet is refused, even correctly signed, until its time comes', async () => {
    const beacon = dev()
    const latest = await getBeaconRoundAt(c, devnet, BigInt((await c.public.getBlock()).timestamp))
    const future = beacon.sign(Number(latest) + 20)
    assert.equal(await checkBeaconRound(c, devnet, beaconArgs(future)), false)
    const [round, dueAt] = await revertsWith(readBeaconRandomness(c, devnet, beaconArgs(future)), 'BeaconRoundNotYet')
    assert.equal(round, BigInt(future.round))
    assert.equal(dueAt, BigInt(timeOfRound(beacon.info, future.round)))
    await c.public.request({ method: 'evm_increaseTime', params: [61] } as never)
    await c.public.request({ method: 'evm_mine', params: [] } as never)
    assert.equal(await checkBeaconRound(c, devnet, beaconArgs(future)), true)
    assert.equal(await readBeaconRandomness(c, devnet, beaconArgs(future)), `0x${future.randomness}`)
  })

  test('roundAt and timeOf agree between TypeScript and the contract (drand\'s formulas)', async () => {
    const info = dev().info
    for (const t of [0, info.genesis_time - 1, info.genesis_time, info.genesis_time + 2, info.genesis_time + 3, info.genesis_time + 301]) {
      assert.equal(await getBeaconRoundAt(c, devnet, BigInt(t)), BigInt(roundAt(info, t)), `roundAt(${t})`)
    }
    assert.equal(roundAt(info, info.genesis_time - 1), 0)
    assert.equal(roundAt(info, info.genesis_time), 1)
    assert.equal(roundAt(info, info.genesis_time + 3), 2)
    assert.equal(timeOfRound(info, roundAt(info, info.genesis_time + 7)), info.genesis_time + 6)
  })

  test('the constructor refuses a key that is not a G2 point, the point at infinity and a zero period', async () => {
    const key = dev().publicKeyForContract()
    const offCurve = `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}` as Hex
    for (const [name, args] of [
      ['infinity', [`0x${'00'.repeat(256)}`, 1n, 3n]],
      ['off the curve', [offCurve, 1n, 3n]],
      ['wrong length', [key.slice(0, -2), 1n, 3n]],
      ['zero period', [key, 1n, 0n]],
    ] as const) {
      await assert.rejects(deployContract(c, { name: 'Beacon', args }), name)
    }
    await deployContract(c, { name: 'Beacon', args: [key, 1n, 3n] })
  })
})

describe('Bls12381.sol against @noble/curves (differential)', () => {
  test('hash-to-G1, compression and the curve equation agree on seeded random inputs', async () => {
    const chain = await createEmbeddedChain({ accounts: 1 })
    try {
      const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
      const { address } = await deployContract(c, { name: 'Bls12381BeaconHarness' })
      const abi = (await import('./artifacts.js')).getArtifact('Bls12381BeaconHarness').abi
      const call = <T>(functionName: string, args: unknown[]) => c.public.readContract({ address, abi, functionName, args } as never) as Promise<T>
      let counter = 0
      const rand = (n: number) => {
        const out = new Uint8Array(n)
        for (let i = 0; i < n; i += 32) out.set(sha256(`0x${(counter++).toString(16).padStart(8, '0')}`, 'bytes').slice(0, n - i), i)
        return out
      }
      const affine = (pt: ReturnType<typeof bls.G1.Point.fromAffine>) => pt.toAffine()
      // RFC 9380 hash_to_curve: quicknet's DST and another, messages of 0..200 bytes.
      for (const dst of [BEACON_DST, 'QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_']) {
        const messages = [0, 1, 31, 32, 33, 64, 200].map((n) => rand(n))
        const got = await call<Hex[]>('hashToG1', [messages.map((m) => bytesToHex(m)), bytesToHex(new TextEncoder().encode(dst))])
        messages.forEach((m, i) => {
          const { x, y } = affine(bls.G1.hashToCurve(m, { DST: dst }) as never)
          assert.equal(got[i], g1(x, y), `hashToG1 of ${m.length} bytes under ${dst}`)
        })
      }
      // Compression (both sign flags occur among 16 random points) and the curve equation.
      const points = Array.from({ length: 16 }, () => affine(bls.G1.Point.BASE.multiply((BigInt(bytesToHex(rand(32))) % (bls.fields.Fr.ORDER - 1n)) + 1n)))
      const compressed = await call<Hex[]>('compressG1', [points.map((p) => g1(p.x, p.y))])
      points.forEach((p, i) => assert.equal(compressed[i], bytesToHex(bls.G1.Point.fromAffine(p).toBytes(true))))
      assert.ok(new Set(compressed.map((h) => Number.parseInt(h.slice(2, 4), 16) & 0x20)).size === 2, 'both sign flags were tested')
      // x = p - 1 makes x^3 + 4 wrap past p (the reduction branch). No curve point takes that branch
      // (x^3 = -1 is the only cube among -1..-4, and 3 is not a square), so it must answer false.
      assert.throws(() => bls.fields.Fp.sqrt(3n))
      const y3 = 1n
      const cases = [...points.map((p) => [p.x, p.y]), ...points.map((p) => [p.x, (p.y + 1n) % P]), [P - 1n, y3], [P - 1n, (y3 + 1n) % P], [0n, 2n], [0n, 3n]]
      const onCurve = await call<boolean[]>('isOnCurveG1', [cases.map(([x, y]) => g1(x, y))])
      const expected = cases.map(([x, y]) => (y * y - x * x * x - 4n) % P === 0n)
      assert.deepEqual(onCurve, expected)
      assert.equal(expected.filter(Boolean).length >= 17, true)
    } finally {
      await chain.close()
    }
  })
})

// The randomness of round 1 of createDevBeacon({ seed: 'golden' }).
const GOLDEN_ROUND_1 = '8fae5de638c1f3b307759cde2cfbe23d92406524101b22003e4bd59971994983'

describe('drand\'s HTTP API', () => {
  test('drand\'s chain hash formula gives quicknet\'s hash', () => {
    assert.equal(beaconChainHash(DRAND_QUICKNET), DRAND_QUICKNET.hash)
  })

  test('serveBeacon serves due rounds at drand\'s paths; fetchRound reads and verifies them; a round not yet due is 425', async () => {
    let clock = 1_700_000_000_000
    const beacon = createDevBeacon({ seed: 'http', genesisTime: 1_700_000_000 - 30, period: 3 })
    const server = await serveBeacon(beacon, { port: 0, now: () => clock })
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      const opts = { timeoutMs: 2000, publicKey: beacon.info.public_key }
      assert.deepEqual(await fetchRound(server.url, 5, opts), beacon.sign(5))
      const latest = await fetchRound(server.url, 'latest', opts)
      assert.equal(latest.round, 11)
      assert.deepEqual(await fetchChainInfo(server.url, { timeoutMs: 2000 }), beacon.info)
      // drand also serves every chain under its hash.
      assert.deepEqual(await fetchRound(`${server.url}/${beacon.info.hash}/`, 7, opts), beacon.sign(7))
      await assert.rejects(fetchRound(server.url, 12, opts), (err: Error & { status?: number }) => err.name === 'BeaconFetchError' && err.status === 425)
      clock += 3000
      assert.equal((await fetchRound(server.url, 12, opts)).round, 12)
      // A round checked against another key is refused.
      const other = createDevBeacon({ seed: 'other', genesisTime: 0, period: 3 })
      await assert.rejects(fetchRound(server.url, 5, { timeoutMs: 2000, publicKey: other.info.public_key }), { name: 'BadBeaconRoundError' })
      await assert.rejects(fetchRound(`${server.url}/nope`, 5, opts), { name: 'BeaconFetchError' })
    } finally {
      await server.close()
    }
  })

  test('attacker: an endpoint that lies, answers garbage, answers too much or never answers fails with one clear error', async () => {
    const beacon = createDevBeacon({ seed: 'http', genesisTime: 0, period: 3 })
    const r5 = beacon.sign(5)
    const answers: Record<string, (res: import('node:http').ServerResponse) => void> = {
      '/lie/public/5': (res) => res.end(JSON.stringify({ ...beacon.sign(6), round: 5 })),
      '/otherround/public/5': (res) => res.end(JSON.stringify(beacon.sign(6))),
      '/garbage/public/5': (res) => res.end('<html>'),
      '/shape/public/5': (res) => res.end(JSON.stringify({ round: '5', signature: r5.signature })),
      '/huge/public/5': (res) => res.end(JSON.stringify({ ...r5, pad: 'x'.repeat(100_000) })),
      '/hang/public/5': () => {},
    }
    const server = createServer((req, res) => (answers[req.url ?? ''] ?? ((r) => r.writeHead(404).end()))(res))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const opts = { timeoutMs: 500, publicKey: beacon.info.public_key }
      await assert.rejects(fetchRound(`${base}/lie`, 5, opts), { name: 'BadBeaconRoundError' })
      await assert.rejects(fetchRound(`${base}/otherround`, 5, opts), { name: 'BadBeaconRoundError' })
      await assert.rejects(fetchRound(`${base}/garbage`, 5, opts), { name: 'BeaconFetchError' })
      await assert.rejects(fetchRound(`${base}/shape`, 5, opts), { name: 'BeaconFetchError' })
      await assert.rejects(fetchRound(`${base}/huge`, 5, opts), { name: 'BeaconFetchError' })
      const started = Date.now()
      await assert.rejects(fetchRound(`${base}/hang`, 5, opts), { name: 'BeaconFetchError' })
      assert.ok(Date.now() - started < 3000, 'the timeout bounds a silent endpoint')
      await assert.rejects(fetchRound(base, 0, opts), { name: 'InvalidParameterError' })
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })

  test('a round served over HTTP is accepted on chain unchanged (the devnet path end to end)', async () => {
    const chain = await createEmbeddedChain({ accounts: 1 })
    let server: Awaited<ReturnType<typeof serveBeacon>> | undefined
    try {
      const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
      const now = Number((await c.public.getBlock()).timestamp)
      const beacon = createDevBeacon({ seed: 'e2e', genesisTime: now - 60, period: 3 })
      server = await serveBeacon(beacon, { port: 0, now: () => now * 1000 })
      const info = await fetchChainInfo(server.url, { timeoutMs: 2000 })
      const d = await deployBeacon(c, info)
      const r = await fetchRound(server.url, 'latest', { timeoutMs: 2000, publicKey: info.public_key })
      assert.equal(r.round, roundAt(info, now))
      assert.equal(await readBeaconRandomness(c, d, beaconArgs(r)), `0x${r.randomness}`)
    } finally {
      await server?.close()
      await chain.close()
    }
  })
})
