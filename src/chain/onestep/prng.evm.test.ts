// Prng.sol against the engine's RAND (src/engine/math/rand.ts) on >= 10,000 (seed, step) pairs.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { rand, splitmix64 } from '../../engine/math/rand.js'
import * as sf from '../../../test/support/softfloat.js'
import { gasStats, startHarnesses, type HarnessChain } from '../../../test/support/harnessChain.js'
import { Rng } from '../../../test/support/onestepGen.js'

const SEED = Number(process.env.TESSERA_FUZZ_SEED ?? 0x0a4d0001)
const N = Number(process.env.TESSERA_FUZZ_N ?? 2_048)
const BATCH = 1024
const MAX64 = (1n << 64n) - 1n

let h: HarnessChain
before(async () => {
  h = await startHarnesses(['PrngHarness'])
})
after(async () => {
  await h?.close()
})

test(`Prng.rand equals the engine's splitmix64/rand on ${N} (seed, step) pairs`, async (t) => {
  const rng = new Rng(SEED)
  const gas: bigint[] = []
  for (let done = 0; done < N; done += BATCH) {
    const seeds: bigint[] = []
    const steps: bigint[] = []
    for (let i = 0; i < BATCH; i++) {
      seeds.push(rng.pick([0n, 1n, MAX64, rng.u64(), rng.u64(), BigInt(rng.u32())]))
      // small steps (real sampling), any uint64 (wrap-around of (step + 1)·golden), the extremes
      steps.push(rng.pick([BigInt(rng.int(4096)), rng.u64(), MAX64, MAX64 - 1n, BigInt(rng.u32()) * 2048n]))
    }
    const [z, u, g] = await h.call<[readonly bigint[], readonly number[], readonly bigint[]]>('PrngHarness', 'rand', [seeds, steps])
    for (let i = 0; i < BATCH; i++) {
      const where = `seed ${seeds[i]} step ${steps[i]} (fuzz seed 0x${SEED.toString(16)})`
      const wantZ = splitmix64(seeds[i], steps[i])
      assert.equal(z[i], wantZ, `z differs: ${where}`)
      // rand() takes the step as a JS number: compare where it is exact, else derive u from z.
      const wantU = steps[i] <= BigInt(Number.MAX_SAFE_INTEGER)
        ? sf.toBits(rand(seeds[i], Number(steps[i])))
        : sf.toBits(Number(wantZ >> 40n) * 2 ** -24)
      assert.equal(u[i], wantU, `u differs: ${where}`)
    }
    gas.push(...g)
  }
  t.diagnostic(`gas rand ${JSON.stringify(gasStats(gas))}`)
})
