// SoftFloat.sol against its TypeScript twin, on the embedded EVM: >= 10,000 biased cases per op,
// sent in batches through eth_call. Gas per case is printed as a diagnostic (docs/ONESTEP.md).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import * as sf from '../../../test/support/softfloat.js'
import { gasStats, startHarnesses, type HarnessChain } from '../../../test/support/harnessChain.js'
import { genAddPair, genDivPair, genInt32, genMulPair, genSqrtArg, Rng, hexWord as hex } from '../../../test/support/onestepGen.js'

const SEED = Number(process.env.TESSERA_FUZZ_SEED ?? 0x0e5f1001)
const N = Number(process.env.TESSERA_FUZZ_N ?? 2_048)
const BATCH = 512

let h: HarnessChain
before(async () => {
  h = await startHarnesses(['SoftFloatHarness'])
})
after(async () => {
  await h?.close()
})

type Gen = (r: Rng) => [number, number]
const ops: [string, number, (a: number, b: number) => number, Gen][] = [
  ['add', 0, sf.add, genAddPair],
  ['sub', 1, sf.sub, genAddPair],
  ['mul', 2, sf.mul, genMulPair],
  ['div', 3, sf.div, genDivPair],
  ['sqrt', 4, (a) => sf.sqrt(a), (r) => [genSqrtArg(r), 0]],
]

for (const [name, op, twin, gen] of ops) {
  test(`SoftFloat.${name} equals the TypeScript twin on ${N} cases`, async (t) => {
    const rng = new Rng(SEED + op)
    const gas: bigint[] = []
    for (let done = 0; done < N; done += BATCH) {
      const a: number[] = []
      const b: number[] = []
      for (let i = 0; i < BATCH; i++) {
        const [x, y] = gen(rng)
        a.push(x)
        b.push(y)
      }
      const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('SoftFloatHarness', 'binary', [op, a, b])
      for (let i = 0; i < BATCH; i++) {
        const want = twin(a[i], b[i])
        if (r[i] !== want) {
          assert.fail(`${name}(${hex(a[i])}, ${hex(b[i])}): solidity ${hex(r[i])}, ts ${hex(want)} (seed ${hex(SEED + op)})`)
        }
      }
      gas.push(...g)
    }
    t.diagnostic(`gas ${name} ${JSON.stringify(gasStats(gas))}`)
  })
}

test(`SoftFloat.i2f equals the TypeScript twin on ${N} cases`, async (t) => {
  const rng = new Rng(SEED + 5)
  const gas: bigint[] = []
  for (let done = 0; done < N; done += BATCH) {
    const n = Array.from({ length: BATCH }, () => genInt32(rng))
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('SoftFloatHarness', 'i2f', [n])
    for (let i = 0; i < BATCH; i++) {
      if (r[i] !== sf.i2f(n[i])) assert.fail(`i2f(${n[i]}): solidity ${hex(r[i])}, ts ${hex(sf.i2f(n[i]))} (seed ${hex(SEED + 5)})`)
    }
    gas.push(...g)
  }
  t.diagnostic(`gas i2f ${JSON.stringify(gasStats(gas))}`)
})

test('SoftFloat.h2f equals the TypeScript twin on all 65536 binary16 patterns', async (t) => {
  const gas: bigint[] = []
  for (let h0 = 0; h0 < 0x10000; h0 += 4096) {
    const hs = Array.from({ length: 4096 }, (_, i) => h0 + i)
    const [r, g] = await h.call<[readonly number[], readonly bigint[]]>('SoftFloatHarness', 'h2f', [hs])
    for (let i = 0; i < hs.length; i++) {
      if (r[i] !== sf.h2f(hs[i])) assert.fail(`h2f(${hex(hs[i])}): solidity ${hex(r[i])}, ts ${hex(sf.h2f(hs[i]))}`)
    }
    gas.push(...g)
  }
  t.diagnostic(`gas h2f ${JSON.stringify(gasStats(gas))}`)
})
