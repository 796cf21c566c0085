// The op table's own consistency, and the forward pass against it: every report point of a layer
// and of the head is reached once, in the table's order, with one output per slot it names, each
// of that slot's length. (The machine's slots equal these outputs bit for bit:
// src/dispute/machine/transition.test.ts; the contract's table equals this one:
// src/chain/onestep/opTable.test.ts.)
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { tinyModel } from '../../../test/support/machineModels.js'
import {
  HEAD_OP, HEAD_OP_SLOTS, HEAD_TABLE, LAYER_OP, LAYER_OP_SLOTS, LAYER_TABLE, OP_CODE, type OpRow, SLOT, TEACHER_FORCED_HEAD_TABLE, applicableRows,
  slotName,
} from './opTable.js'
import { KVCache } from './transformer.js'

const distinct = (xs: readonly number[]) => new Set(xs).size === xs.length

test('numbers: op codes 1 .. 32 and slots 0 .. 49, each once; report points 1 .. n in order', () => {
  const codes = Object.values(OP_CODE)
  assert.ok(distinct(codes))
  assert.deepEqual([...codes].sort((a, b) => a - b), Array.from({ length: 32 }, (_, i) => i + 1))
  const slots = Object.values(SLOT)
  assert.ok(distinct(slots))
  assert.deepEqual([...slots].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i))
  assert.deepEqual(Object.values(LAYER_OP), Array.from({ length: 16 }, (_, i) => i + 1))
  assert.deepEqual(Object.values(HEAD_OP), [1, 2])
  assert.equal(slotName(SLOT.XN2), 'XN2')
  assert.equal(slotName(99), 'slot 99')
})

test('every slot a report point names is written by a row of its table, the rows in report order', () => {
  const rowOf = (table: readonly OpRow[], slot: number) => table.findIndex((r) => r.slot === slot)
  for (const [table, slotsOf] of [[LAYER_TABLE, LAYER_OP_SLOTS], [HEAD_TABLE, HEAD_OP_SLOTS]] as const) {
    let last = -1
    for (const slots of Object.values(slotsOf)) {
      const rows = slots.map((s) => rowOf(table, s))
      for (const [i, r] of rows.entries()) assert.ok(r >= 0, `${slotName(slots[i])} is written by no row`)
      assert.ok(Math.min(...rows) > last, `${slots.map(slotName).join(', ')} after the report before`)
      last = Math.max(...rows)
    }
  }
  // row names are unique (the machine keys its programs by them), and each table ends in STORE
  for (const table of [LAYER_TABLE, HEAD_TABLE]) {
    assert.ok(new Set(table.map((r) => r.name)).size === table.length)
    assert.equal(table.at(-1)!.code, 'STORE')
  }
  assert.deepEqual(TEACHER_FORCED_HEAD_TABLE.map((r) => r.code), ['TOKEN'])
})

test('applicableRows: the ops of a llama layer above 0, a qwen2 layer 0, a greedy and a sampled head', () => {
  const names = (rows: OpRow[]) => rows.map((r) => r.name)
  const llama1 = names(applicableRows(LAYER_TABLE, new Set(['aboveLayer0'])))
  assert.equal(llama1.length, 33) // MachineTable.sol: 36 rows above layer 0, less llama's 3 biases
  assert.equal(llama1[0], 'LOAD X')
  assert.ok(!llama1.includes('QB') && !llama1.includes('EMBED'))
  const qwen0 = names(applicableRows(LAYER_TABLE, new Set(['layer0', 'qwen2'])))
  assert.equal(qwen0.length, 37) // 37 at layer 0 with the biases
  assert.deepEqual(qwen0.slice(0, 2), ['LOAD TOK', 'EMBED'])
  assert.ok(qwen0.includes('VB') && !qwen0.includes('LOAD X') && !qwen0.includes('QN'))
  const qwen3 = names(applicableRows(LAYER_TABLE, new Set(['aboveLayer0', 'qkNorm'])))
  assert.equal(qwen3.length, 37) // 33 + the per-head norms' 4
  assert.deepEqual(qwen3.slice(qwen3.indexOf('V'), qwen3.indexOf('QR') + 1), ['V', 'QS', 'QN', 'KS', 'KN', 'FREQ', 'ROTCS', 'QR'])
  assert.deepEqual(names(applicableRows(HEAD_TABLE, new Set(['greedy']))).slice(5), ['LOGITS', 'ARGMAX', 'STORE'])
  assert.deepEqual(names(applicableRows(HEAD_TABLE, new Set(['sampled', 'penalty']))).slice(5), ['LOGITS', 'PENALTY', 'RANK', 'SORT', 'TSCALE', 'TEXP', 'TSUM', 'PROB', 'KEEP', 'DRAW', 'STORE'])
})

for (const preset of ['tiny', 'tiny-qwen2', 'tiny-qwen3']) {
  test(`${preset}: the forward pass reports each point of the table once per layer and head, in order, one output per slot`, () => {
    const m = tinyModel(preset, 'q8_0', 1)
    const c = m.config
    const len: Record<number, number> = {
      [SLOT.XN1]: c.dim, [SLOT.Q]: c.nHead * c.headDim, [SLOT.K]: c.nKvHead * c.headDim, [SLOT.V]: c.nKvHead * c.headDim,
      [SLOT.QB]: c.nHead * c.headDim, [SLOT.KB]: c.nKvHead * c.headDim, [SLOT.VB]: c.nKvHead * c.headDim, [SLOT.QR]: c.nHead * c.headDim,
      [SLOT.KR]: c.nKvHead * c.headDim, [SLOT.O]: c.nHead * c.headDim, [SLOT.P]: c.dim, [SLOT.X2]: c.dim, [SLOT.XN2]: c.dim, [SLOT.G]: c.ffDim,
      [SLOT.U]: c.ffDim, [SLOT.H]: c.ffDim, [SLOT.D]: c.dim, [SLOT.X3]: c.dim, [SLOT.L]: c.vocabSize,
      [SLOT.QN]: c.nHead * c.headDim, [SLOT.KN]: c.nKvHead * c.headDim,
    }
    const seen: string[] = []
    const T = 3
    m.tf.forward([1, 2, 3], new KVCache(c, 8), 1, undefined, (layer, op, _start, nTok, outs) => {
      const slots = layer === c.nLayer ? HEAD_OP_SLOTS[op as 1 | 2] : LAYER_OP_SLOTS[op as 1]
      assert.ok(slots, `layer ${layer} reports op ${op}, which the table does not have`)
      assert.equal(outs.length, slots.length, `layer ${layer} op ${op}: outputs`)
      outs.forEach((o, i) => assert.equal(o.length, nTok * len[slots[i]], `layer ${layer} op ${op}: ${slotName(slots[i])} length`))
      assert.equal(nTok, layer === c.nLayer ? 1 : T)
      seen.push(`${layer}.${op}`)
    })
    const want = Array.from({ length: c.nLayer }, (_, l) => Object.values(LAYER_OP).map((op) => `${l}.${op}`)).flat()
    want.push(...Object.values(HEAD_OP).map((op) => `${c.nLayer}.${op}`))
    assert.deepEqual(seen, want)
  })
}
