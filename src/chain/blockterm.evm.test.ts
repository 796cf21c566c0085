// The BLOCK_TERM judge (OneStep.checkBlockTerm, weight proofs included) against the engine's own
// reference kernel on real rows of synthesized `tiny` models of every quantized type: >= 1,000
// honest steps must pass and the same steps with one lane bit flipped must fail.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { toFunctionSelector } from 'viem'
import { GGMLType } from '../engine/gguf/types.js'
import { rowdot, sum8 } from '../engine/kernels/reference.js'
import type { BlockStep, WeightProof } from './client.js'
import { startHarnesses, type HarnessChain } from './onestep/evm.js'
import { activation, openRealModel, rowDotSteps } from './realModel.js'

const BATCH = 48
let h: HarnessChain
before(async () => {
  h = await startHarnesses(['OneStepHarness'])
})
after(async () => {
  await h?.close()
})

const u32 = new Uint32Array(1)
const f32 = new Float32Array(u32.buffer)
const bitsToF32 = (b: number) => ((u32[0] = b), f32[0])

type Case = { pre: BlockStep; post: BlockStep; weight: WeightProof; expect: boolean }

test('checkBlockTerm equals the engine blockTerm + SUM8 lane on 1,000+ steps of real model rows', async () => {
  const cases: Record<string, Case[]> = {}
  const roots: Record<string, `0x${string}`> = {}
  const seen = new Set<number>()
  // Rows per model: enough that every model contributes; Q8_0/Q4_0 rows have 8-16 blocks, K-quants 1-2.
  const plan: [string, number][] = [['q8_0', 56], ['q4_0', 40], ['q4_k', 100], ['q6_k', 100]]
  for (const [type, nRows] of plan) {
    const m = openRealModel(type, 11)
    try {
      assert.equal(m.tree.modelRoot, m.engineRoot, `${type}: the tree's root is computeGgufModelRoot's`)
      roots[type] = m.tree.modelRoot
      const names = m.tree.names.filter((n) => {
        const t = m.tree.shape(n).type
        return t === GGMLType.Q8_0 || t === GGMLType.Q4_0 || t === GGMLType.Q4_K || t === GGMLType.Q6_K
      })
      const list: Case[] = (cases[type] = [])
      for (let i = 0; i < nRows; i++) {
        const name = names[i % names.length]
        const { rows, cols, type: tt } = m.tree.shape(name)
        seen.add(tt)
        const row = (i * 7919) % rows
        const { steps, weights, bytes, terms } = rowDotSteps(m.tree, name, row, i + 1)
        // The lanes folded by SUM8 are the engine's whole row dot product.
        const lanes = steps[steps.length - 1].acc.map(bitsToF32)
        const fold = Math.fround(Math.fround(Math.fround(lanes[0] + lanes[4]) + Math.fround(lanes[2] + lanes[6])) + Math.fround(Math.fround(lanes[1] + lanes[5]) + Math.fround(lanes[3] + lanes[7])))
        assert.equal(Object.is(fold, sum8(terms)), true)
        assert.equal(Object.is(fold, rowdot(tt, bytes, activation(cols, i + 1))), true)
        for (let b = 0; b < steps.length; b++) {
          const pre = b > 0 ? steps[b - 1] : steps[0]
          list.push({ pre, post: steps[b], weight: weights[b], expect: true })
          // Every third step also as a wrong claim: one bit of the updated lane flipped.
          if ((b + i) % 3 === 0) {
            const acc = [...steps[b].acc]
            acc[b & 7] = (acc[b & 7] ^ 1) >>> 0
            list.push({ pre, post: { ...steps[b], acc }, weight: weights[b], expect: false })
          }
        }
      }
    } finally {
      m.close()
    }
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), [GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q6_K].sort((a, b) => a - b))
  let honest = 0
  for (const [type, list] of Object.entries(cases)) {
    for (let o = 0; o < list.length; o += BATCH) {
      const part = list.slice(o, o + BATCH)
      const [ok] = await h.call<[readonly boolean[], readonly bigint[]]>('OneStepHarness', 'checkBlockTerms', [
        roots[type], part.map((c) => c.pre), part.map((c) => c.post), part.map((c) => c.weight.tensor), part.map((c) => c.weight.chunk),
      ])
      part.forEach((c, i) => assert.equal(ok[i], c.expect, `${type} case ${o + i}: row ${c.post.row} block ${c.post.blockIndex}`))
      honest += part.filter((c) => c.expect).length
    }
  }
  assert.ok(honest >= 1000, `${honest} honest steps`)
})

test('checkBlockTerm on 11,008-column rows: every chunk (the last one shorter) opens; a neighbouring chunk is refused', async () => {
  const cols = 11008
  for (const [type, ggmlType, perChunk] of [['q8_0', GGMLType.Q8_0, 60], ['q4_k', GGMLType.Q4_K, 14], ['q6_k', GGMLType.Q6_K, 9]] as const) {
    const name = 'zz.wide.weight'
    const m = openRealModel(type, 5, { name, ggmlType, cols, rows: 3 })
    try {
      assert.equal(m.tree.modelRoot, m.engineRoot, `${type}: the tree's root is computeGgufModelRoot's`)
      const { steps, weights, bytes, terms } = rowDotSteps(m.tree, name, 1, 3)
      const nBlocks = steps.length
      assert.equal(Object.is(sum8(terms), rowdot(ggmlType, bytes, activation(cols, 3))), true)
      // Blocks at both edges of every chunk, so each chunk index (and the short last chunk) is used.
      const blocks = [...new Set(steps.flatMap((_, b) => (b % perChunk === 0 || b % perChunk === perChunk - 1 || b === nBlocks - 1 ? [b] : [])))]
      assert.equal(weights[nBlocks - 1].chunk.chunkIndex, Math.ceil(nBlocks / perChunk) - 1)
      const cases: Case[] = blocks.flatMap((b) => {
        const pre = b > 0 ? steps[b - 1] : steps[0]
        const acc = [...steps[b].acc]
        acc[b & 7] = (acc[b & 7] ^ 1) >>> 0
        return [{ pre, post: steps[b], weight: weights[b], expect: true }, { pre, post: { ...steps[b], acc }, weight: weights[b], expect: false }]
      })
      const [ok] = await h.call<[readonly boolean[], readonly bigint[]]>('OneStepHarness', 'checkBlockTerms', [
        m.tree.modelRoot, cases.map((c) => c.pre), cases.map((c) => c.post), cases.map((c) => c.weight.tensor), cases.map((c) => c.weight.chunk),
      ])
      cases.forEach((c, i) => assert.equal(ok[i], c.expect, `${type} block ${c.post.blockIndex}`))
      // Block perChunk lies in chunk 1: chunk 0's (valid) proof, or chunk 0 relabelled as chunk 1, is refused.
      const b = perChunk
      for (const chunk of [weights[b - 1].chunk, { ...weights[b - 1].chunk, chunkIndex: 1 }]) {
        await assert.rejects(h.call('OneStepHarness', 'checkBlockTerms', [m.tree.modelRoot, [steps[b - 1]], [steps[b]], [weights[b].tensor], [chunk]]), (e: Error) => badRowProof(e))
      }
    } finally {
      m.close()
    }
  }
})

/** True when a rejected eth_call carries the BadRowProof(uint64) revert. */
function badRowProof(e: unknown): boolean {
  const selector = toFunctionSelector('BadRowProof(uint64)').slice(2)
  return JSON.stringify(e, Object.getOwnPropertyNames(e as object)).includes(selector)
}
