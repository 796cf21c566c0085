// BlockDot.sol against the engine's own reference kernel (src/engine/kernels/reference.ts
// `blockTerm`, the code every honest node runs) on >= 10,000 random blocks per type, plus the
// integer sums against the engine's unpackers. NaN terms must be the canonical 0x7FC00000.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { toFunctionSelector, toHex as bytesToHex } from 'viem'
import { GGMLType } from '../../engine/gguf/types.js'
import { blockTerm, q2bitValues, q3kScales, q3kValues, q4kScaleMin, q4kValues, q5kValues, q6kValues, q32Values } from '../../engine/kernels/reference.js'
import * as sf from '../../../test/support/softfloat.js'
import { gasStats, startHarnesses, type HarnessChain } from '../../../test/support/harnessChain.js'
import { genF32, Rng, hexWord as hex } from '../../../test/support/onestepGen.js'

const SEED = Number(process.env.TESSERA_FUZZ_SEED ?? 0x0b10c001)
const N = Number(process.env.TESSERA_FUZZ_N ?? 2_048)
const BATCH = 64 // small batches: EDR costs grow faster than linearly with calldata size

let h: HarnessChain
before(async () => {
  h = await startHarnesses(['BlockDotHarness'])
})
after(async () => {
  await h?.close()
})

/** An f16 scale: mostly ordinary magnitudes, sometimes any bits (subnormal, Inf, NaN, zero). */
function genF16(rng: Rng): number {
  if (rng.int(8) === 0) return rng.u32() & 0xffff
  return ((rng.bool() ? 0x8000 : 0) | (rng.range(1, 20) << 10) | (rng.u32() & 0x3ff)) >>> 0
}

/** An activation scale: mostly a positive normal (amax/127 of real activations), sometimes anything. */
function genDa(rng: Rng): number {
  if (rng.int(8) === 0) return genF32(rng)
  return ((rng.range(100, 140) << 23) | (rng.u32() & 0x7fffff)) >>> 0
}

function genQa(rng: Rng, n: number): Int8Array {
  const q = new Int8Array(n)
  const mode = rng.int(4)
  for (let i = 0; i < n; i++) {
    if (mode === 0) q[i] = rng.pick([127, -127, -128]) // extremes (-128 never comes from Q8/B, but must not break)
    else q[i] = rng.u32() & 0xff
  }
  return q
}

const shapes = [
  { name: 'Q8_0', type: GGMLType.Q8_0, bytes: 34, B: 32, scales: [0] },
  { name: 'Q4_0', type: GGMLType.Q4_0, bytes: 18, B: 32, scales: [0] },
  { name: 'Q4_1', type: GGMLType.Q4_1, bytes: 20, B: 32, scales: [0, 2] },
  { name: 'Q5_0', type: GGMLType.Q5_0, bytes: 22, B: 32, scales: [0] },
  { name: 'Q5_1', type: GGMLType.Q5_1, bytes: 24, B: 32, scales: [0, 2] },
  { name: 'Q2_K', type: GGMLType.Q2_K, bytes: 84, B: 256, scales: [80, 82] },
  { name: 'Q3_K', type: GGMLType.Q3_K, bytes: 110, B: 256, scales: [108] },
  { name: 'Q4_K', type: GGMLType.Q4_K, bytes: 144, B: 256, scales: [0, 2] },
  { name: 'Q5_K', type: GGMLType.Q5_K, bytes: 176, B: 256, scales: [0, 2] },
  { name: 'Q6_K', type: GGMLType.Q6_K, bytes: 210, B: 256, scales: [208] },
] as const

/** The exact integer sums (S, 0) or (S1, S2), from the engine's unpacking helpers. */
function intSums(type: number, w: Uint8Array, qa: Int8Array): [bigint, bigint] {
  const q = new Int32Array(256)
  let s1 = 0
  let s2 = 0
  if (type === GGMLType.Q8_0) {
    for (let i = 0; i < 32; i++) s1 += ((w[2 + i] << 24) >> 24) * qa[i]
  } else if (type === GGMLType.Q4_0) {
    for (let i = 0; i < 32; i++) s1 += ((i < 16 ? w[2 + i] & 15 : w[2 + i - 16] >> 4) - 8) * qa[i]
  } else if (type === GGMLType.Q4_1 || type === GGMLType.Q5_0 || type === GGMLType.Q5_1) {
    q32Values(type, w, 0, q)
    for (let i = 0; i < 32; i++) {
      s1 += (type === GGMLType.Q5_0 ? q[i] - 16 : q[i]) * qa[i]
      if (type !== GGMLType.Q5_0) s2 += qa[i]
    }
  } else if (type === GGMLType.Q2_K) {
    q2bitValues(w, 16, q)
    for (let i = 0; i < 256; i++) {
      s1 += (w[i >> 4] & 15) * q[i] * qa[i]
      s2 += (w[i >> 4] >> 4) * qa[i]
    }
  } else if (type === GGMLType.Q3_K) {
    const sc = new Int32Array(16)
    q3kValues(w, 0, q)
    q3kScales(w, 0, sc)
    for (let i = 0; i < 256; i++) s1 += sc[i >> 4] * q[i] * qa[i]
  } else if (type === GGMLType.Q4_K || type === GGMLType.Q5_K) {
    const sc = new Int32Array(8)
    const m = new Int32Array(8)
    q4kScaleMin(w, 4, sc, m)
    if (type === GGMLType.Q4_K) q4kValues(w, 0, q)
    else q5kValues(w, 0, q)
    for (let i = 0; i < 256; i++) {
      s1 += sc[i >> 5] * q[i] * qa[i]
      s2 += m[i >> 5] * qa[i]
    }
  } else {
    q6kValues(w, 0, q)
    for (let i = 0; i < 256; i++) s1 += ((w[192 + (i >> 4)] << 24) >> 24) * q[i] * qa[i]
  }
  return [BigInt(s1), BigInt(s2)]
}

for (const shape of shapes) {
  test(`BlockDot.term(${shape.name}) equals the engine's blockTerm on ${N} random blocks`, async (t) => {
    const rng = new Rng(SEED + shape.type)
    const gas: bigint[] = []
    for (let done = 0; done < N; done += BATCH) {
      const ws: Uint8Array[] = []
      const qas: Int8Array[] = []
      const das: number[] = []
      for (let i = 0; i < BATCH; i++) {
        const w = rng.bytes(shape.bytes)
        for (const off of shape.scales) {
          const d = genF16(rng)
          w[off] = d & 0xff
          w[off + 1] = d >> 8
        }
        ws.push(w)
        qas.push(genQa(rng, shape.B))
        das.push(genDa(rng))
      }
      const [r, s1, s2, g] = await h.call<[readonly number[], readonly bigint[], readonly bigint[], readonly bigint[]]>(
        'BlockDotHarness', 'terms',
        [BigInt(shape.type), ws.map((w) => bytesToHex(w)), qas.map((q) => bytesToHex(new Uint8Array(q.buffer))), das],
      )
      for (let i = 0; i < BATCH; i++) {
        const ref = blockTerm(shape.type, ws[i], 0, qas[i], sf.fromBits(das[i]))
        const want = Number.isNaN(ref) ? sf.NAN : sf.toBits(ref)
        const where = `${shape.name} w=${bytesToHex(ws[i])} qa=${bytesToHex(new Uint8Array(qas[i].buffer))} da=${hex(das[i])} (seed ${hex(SEED + shape.type)})`
        assert.deepEqual([s1[i], s2[i]], intSums(shape.type, ws[i], qas[i]), `integer sums differ: ${where}`)
        if (r[i] !== want) assert.fail(`term: solidity ${hex(r[i])}, engine ${hex(want)}: ${where}`)
      }
      gas.push(...g)
    }
    t.diagnostic(`gas term ${shape.name} ${JSON.stringify(gasStats(gas))}`)
  })
}

test('BlockDot rejects wrong block lengths and unsupported types by custom error', async () => {
  const revertData = async (type: number, w: number, a: number): Promise<string> => {
    try {
      await h.call('BlockDotHarness', 'terms', [BigInt(type), [bytesToHex(new Uint8Array(w))], [bytesToHex(new Uint8Array(a))], [0]])
    } catch (err) {
      assert.equal((err as Error).name, 'RpcRequestError')
      return String((err as { data?: unknown }).data)
    }
    return 'no revert'
  }
  const badBlock = toFunctionSelector('OneStepBadBlock(uint256,uint256,uint256)')
  const unsupported = toFunctionSelector('OneStepUnsupportedType(uint256)')
  assert.equal((await revertData(GGMLType.Q8_0, 33, 32)).slice(0, 10), badBlock)
  assert.equal((await revertData(GGMLType.Q6_K, 210, 32)).slice(0, 10), badBlock)
  assert.equal((await revertData(GGMLType.Q5_K, 144, 256)).slice(0, 10), badBlock)
  assert.equal((await revertData(GGMLType.Q5_1, 22, 32)).slice(0, 10), badBlock)
  assert.equal((await revertData(GGMLType.Q4_1, 20, 256)).slice(0, 10), badBlock)
  assert.equal((await revertData(GGMLType.Q3_K, 84, 256)).slice(0, 10), badBlock)
  assert.equal((await revertData(GGMLType.Q8_K, 292, 256)).slice(0, 10), unsupported)
  assert.equal((await revertData(GGMLType.F32, 4, 1)).slice(0, 10), unsupported)
})
