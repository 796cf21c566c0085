// The op table (what each op-level leaf computes, which tensor a matmul uses) is the same in
// TypeScript (opTable.ts) and in the contract (OpTable.sol).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Hex, toHex } from 'viem'
import { HEAD_OPS, LAYER_OPS, opCount, opKind, tensorNamesOf } from './opTable.js'
import { startHarnesses, type HarnessChain } from './onestep/evm.js'

let h: HarnessChain
before(async () => {
  h = await startHarnesses(['OpTableHarness'])
})
after(async () => {
  await h?.close()
})

const KIND = { other: 0, matmul: 1, sample: 2 } as const

test('op counts: 15 ops per layer, 3 per head', async () => {
  const [layer, head] = await h.call<[bigint, bigint]>('OpTableHarness', 'lastLeaves', [])
  assert.equal(layer, BigInt(opCount(false)))
  assert.equal(head, BigInt(opCount(true)))
  assert.equal(LAYER_OPS.length, 15)
  assert.equal(HEAD_OPS.length, 3)
})

test('op kinds and tensor names agree with the contract for layers 0..120, every op leaf and near-miss names', async () => {
  const heads: boolean[] = [], layers: bigint[] = [], ops: bigint[] = [], names: Hex[] = []
  const expect: number[] = []
  const suffixes = [...LAYER_OPS.flatMap((o) => ('tensor' in o ? [o.tensor] : [])), 'attn_norm.weight', 'ffn_down.bias']
  for (let layer = 0; layer <= 120; layer += layer < 12 ? 1 : 9) {
    for (const head of [false, true]) {
      for (let op = 0; op <= 17; op++) {
        const candidates = [
          ...suffixes.map((s) => `blk.${layer}.${s}`),
          `blk.${layer + 1}.ffn_down.weight`, `blk.0${layer}.attn_q.weight`, `blk.${layer}.ffn_down.weight `,
          'output.weight', 'token_embd.weight', 'output_norm.weight', '',
        ]
        for (const name of candidates) {
          heads.push(head); layers.push(BigInt(layer)); ops.push(BigInt(op)); names.push(toHex(name))
          expect.push((KIND[opKind(head, op)] << 8) | (tensorNamesOf(head, layer, op).includes(name) ? 1 : 0))
        }
      }
    }
  }
  let matches = 0
  for (let i = 0; i < heads.length; i += 2000) {
    const out = await h.call<readonly bigint[]>('OpTableHarness', 'probe', [heads.slice(i, i + 2000), layers.slice(i, i + 2000), ops.slice(i, i + 2000), names.slice(i, i + 2000)])
    out.forEach((v, j) => {
      assert.equal(Number(v), expect[i + j], `case ${i + j}: head ${heads[i + j]} layer ${layers[i + j]} op ${ops[i + j]} name ${names[i + j]}`)
      if (Number(v) & 1) matches++
    })
  }
  // Every layer's 7 matmuls and both head names were accepted somewhere, and nothing else.
  assert.ok(heads.length > 10_000, `${heads.length} cases`)
  assert.ok(matches > 0)
})
