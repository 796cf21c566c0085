import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Abi, Address } from 'viem'
import { getArtifact } from './artifacts.js'
import { descend, traceLeafCount, treeDepth } from './bisection.js'
import { connectClients, deployContract } from './evm/clients.js'
import { createEmbeddedChain } from './evm/edr.js'

// Deterministic xorshift so failures replay.
function rng(seed: bigint) {
  let s = seed
  return (bits: number): bigint => {
    s ^= (s << 13n) & 0xffffffffffffffffn
    s ^= s >> 7n
    s ^= (s << 17n) & 0xffffffffffffffffn
    return s & ((1n << BigInt(bits)) - 1n)
  }
}

test('bisection position arithmetic: TypeScript and Solidity agree on 12,000 random cases', async () => {
  const chain = await createEmbeddedChain({ accounts: 1 })
  try {
    const c = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    const { address } = await deployContract(c, { name: 'BisectionHarness' })
    const abi = getArtifact('BisectionHarness').abi as Abi
    const r = rng(0x9e3779b97f4a7c15n)
    const N = 2000
    for (let batch = 0; batch < 5; batch++) {
      const idx: bigint[] = [], dl: number[] = [], ch: bigint[] = [], mn: bigint[] = [], mx: bigint[] = []
      for (let i = 0; i < N; i++) {
        const depth = Number(r(6) % 40n)
        const dLeft = Number(r(6)) % (depth + 1)
        const above = depth - dLeft
        idx.push(above === 0 ? 0n : r(above))
        dl.push(dLeft)
        ch.push(r(5)) // sometimes past 2^stride, to exercise the refusal
        const lo = r(Math.max(1, depth)), hi = r(Math.max(1, depth))
        mn.push(lo < hi ? lo : hi)
        mx.push(lo < hi ? hi : lo)
      }
      const out = (await c.public.readContract({ address: address as Address, abi, functionName: 'descendMany', args: [idx, dl, ch, mn, mx] })) as bigint[]
      for (let i = 0; i < N; i++) {
        const ts = descend(idx[i], dl[i], ch[i], mn[i], mx[i])
        const want = ts.ok ? (1n << 72n) | (BigInt(ts.depthLeft) << 64n) | ts.index : 0n
        assert.equal(out[i], want, `case ${batch}/${i}: descend(${idx[i]}, ${dl[i]}, ${ch[i]}, ${mn[i]}, ${mx[i]})`)
      }
    }
    const np: number[] = [], no: number[] = [], nl: number[] = []
    for (let i = 0; i < N; i++) {
      np.push(Number(r(i % 3 === 0 ? 4 : 17)))
      no.push(Number(r(i % 5 === 0 ? 2 : 16)))
      nl.push(Number(r(7)))
    }
    const out = (await c.public.readContract({ address: address as Address, abi, functionName: 'leavesMany', args: [np, no, nl] })) as bigint[]
    for (let i = 0; i < N; i++) {
      const n = traceLeafCount(np[i], no[i], nl[i])
      assert.equal(out[i], (BigInt(treeDepth(n)) << 64n) | n, `leaves(${np[i]}, ${no[i]}, ${nl[i]})`)
    }
  } finally {
    await chain.close()
  }
})

test('a 1,024-token answer of a 32-layer model needs 4 trace-level rounds', () => {
  const n = traceLeafCount(1, 1024, 32)
  assert.equal(n, 1024n * 33n)
  assert.equal(treeDepth(n), 16)
})
