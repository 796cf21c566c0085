// MerkleProof.sol against src/trace/merkle.ts on random trees: >= 10,000 proofs, valid and
// tampered (sibling, leaf, root, index, length), plus leaf and node hashing.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { type Hex, toHex } from 'viem'
import { buildLevels, leafHash, merkleProof, nodeHash, verifyProof } from '../../trace/merkle.js'
import { gasStats, startHarnesses, type HarnessChain } from '../../../test/support/harnessChain.js'
import { Rng } from '../../../test/support/onestepGen.js'

const SEED = Number(process.env.TESSERA_FUZZ_SEED ?? 0x3e4c0001)
const N = Number(process.env.TESSERA_FUZZ_N ?? 2_048)
const BATCH = 128

let h: HarnessChain
before(async () => {
  h = await startHarnesses(['MerkleProofHarness'])
})
after(async () => {
  await h?.close()
})

type Case = { root: Uint8Array; leaf: Uint8Array; index: number; proof: Uint8Array[]; kind: string }

function flipBit(rng: Rng, b: Uint8Array): Uint8Array {
  const c = b.slice()
  c[rng.int(c.length)] ^= 1 << rng.int(8)
  return c
}

/** A random tree (1..200 leaves), one leaf's proof, and with probability 1/2 one tampering. */
function genCase(rng: Rng): Case {
  const n = rng.pick([1, 2, 3, rng.range(1, 200)])
  const leaves = Array.from({ length: n }, () => leafHash(rng.bytes(rng.int(80))))
  const levels = buildLevels(leaves)
  const root = levels[levels.length - 1][0]
  // indexes in the padding are provable too (their leaf is ZERO)
  const index = rng.int(levels[0].length)
  const c: Case = { root, leaf: levels[0][index], index, proof: merkleProof(levels, index), kind: 'valid' }
  if (rng.bool()) return c
  switch (rng.int(6)) {
    case 0:
      if (c.proof.length === 0) return { ...c, kind: 'valid' }
      return { ...c, proof: c.proof.map((s, i) => (i === rng.int(c.proof.length) ? flipBit(rng, s) : s)), kind: 'sibling' }
    case 1:
      return { ...c, leaf: flipBit(rng, c.leaf), kind: 'leaf' }
    case 2:
      return { ...c, root: flipBit(rng, c.root), kind: 'root' }
    case 3:
      return { ...c, index: c.index ^ (1 << rng.int(Math.max(c.proof.length, 1))), kind: 'index' }
    case 4:
      return { ...c, index: c.index + (1 << c.proof.length) * rng.range(1, 3), kind: 'index-overflow' }
    default:
      return rng.bool() ? { ...c, proof: c.proof.slice(0, -1), kind: 'short' } : { ...c, proof: [...c.proof, rng.bytes(32)], kind: 'long' }
  }
}

test(`MerkleProof.verify equals merkle.ts verifyProof on ${N} random proofs`, async (t) => {
  const rng = new Rng(SEED)
  const gas: bigint[] = []
  const seen = { valid: 0, rejected: 0 }
  for (let done = 0; done < N; done += BATCH) {
    const cases = Array.from({ length: BATCH }, () => genCase(rng))
    const [ok, g] = await h.call<[readonly boolean[], readonly bigint[]]>('MerkleProofHarness', 'verify', [
      cases.map((c) => toHex(c.root)), cases.map((c) => toHex(c.leaf)), cases.map((c) => BigInt(c.index)),
      cases.map((c) => c.proof.map((s) => toHex(s))),
    ])
    for (let i = 0; i < BATCH; i++) {
      const c = cases[i]
      const want = verifyProof(c.root, c.leaf, c.index, c.proof)
      if (c.kind === 'valid') assert.ok(want, 'an untampered proof must verify in merkle.ts')
      assert.equal(ok[i], want, `${c.kind} case index ${c.index} depth ${c.proof.length} root ${toHex(c.root)} (seed 0x${SEED.toString(16)})`)
      seen[want ? 'valid' : 'rejected']++
      if (want) gas.push(g[i])
    }
  }
  assert.ok(seen.valid > N / 3 && seen.rejected > N / 5, `both outcomes exercised: ${JSON.stringify(seen)}`)
  t.diagnostic(`gas verify (valid proofs, depth 0..8) ${JSON.stringify(gasStats(gas))}`)
})

test('MerkleProof leaf and node hashes equal merkle.ts', async () => {
  const rng = new Rng(SEED + 1)
  const data = Array.from({ length: 200 }, (_, i) => rng.bytes(i))
  const leaves = await h.call<readonly Hex[]>('MerkleProofHarness', 'leafHashes', [data.map((d) => toHex(d))])
  assert.deepEqual(leaves, data.map((d) => toHex(leafHash(d))))
  const l = Array.from({ length: 200 }, () => rng.bytes(32))
  const r = Array.from({ length: 200 }, () => rng.bytes(32))
  const nodes = await h.call<readonly Hex[]>('MerkleProofHarness', 'nodeHashes', [l.map((x) => toHex(x)), r.map((x) => toHex(x))])
  assert.deepEqual(nodes, l.map((x, i) => toHex(nodeHash(x, r[i]))))
})

test('MerkleProof verifies a depth-32 proof for a leaf index above 2^31', async (t) => {
  // A sparse tree: the leaf's path hashes up through random siblings (no need to build 2^32 leaves).
  const rng = new Rng(SEED + 2)
  const leaf = leafHash(rng.bytes(40))
  const proof = Array.from({ length: 32 }, () => rng.bytes(32))
  const index = 0xdeadbeef
  let root: Uint8Array = leaf
  for (let i = 0, ix = index; i < 32; i++, ix = Math.floor(ix / 2)) root = ix % 2 ? nodeHash(proof[i], root) : nodeHash(root, proof[i])
  const [ok, g] = await h.call<[readonly boolean[], readonly bigint[]]>('MerkleProofHarness', 'verify', [
    [toHex(root), toHex(root)], [toHex(leaf), toHex(leaf)], [BigInt(index), BigInt(index) + (1n << 32n)],
    [proof.map((s) => toHex(s)), proof.map((s) => toHex(s))],
  ])
  assert.deepEqual(ok, [true, false])
  t.diagnostic(`gas verify depth 32 ${g[0]}`)
})
