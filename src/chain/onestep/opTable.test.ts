// The judge's op table (src/chain/contracts/lib/MachineTable.sol) against the engine's
// (src/engine/model/opTable.ts), read from the contract's source: every op code and slot constant
// has the engine's number, and every template row of `layerEntry` / `headEntry` writes the engine
// row's code into its slot, under the same condition. The machine's TypeScript twin builds its op
// lists from the engine's table, and machine.evm.test.ts runs the contract's `opCount` / `op`
// against that twin; this test names the row when the two tables drift apart in the source.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { HEAD_TABLE, LAYER_TABLE, OP_CODE, type OpCondition, type OpRow, SLOT, TEACHER_FORCED_HEAD_TABLE } from '../../engine/model/opTable.js'

const SOURCE = readFileSync(new URL('../contracts/lib/MachineTable.sol', import.meta.url), 'utf8')

/** `uint8 internal constant NAME = N;` of the library. */
function constants(sol: string): Map<string, number> {
  return new Map([...sol.matchAll(/uint8 internal constant (\w+) = (\d+);/g)].map((m) => [m[1], Number(m[2])]))
}

/** The body of `function name(` up to its closing brace at the function's indentation. */
function body(sol: string, name: string): string {
  const start = sol.indexOf(`function ${name}(`)
  assert.ok(start >= 0, `MachineTable.sol has no function ${name}`)
  const end = sol.indexOf('\n    }\n', start)
  return sol.slice(start, end)
}

/** The template rows of an entry function: row t's code and slot, in order. */
function entryRows(sol: string, fn: string, consts: Map<string, number>): { code: string; slot: number }[] {
  const slotOf = (tok: string): number => {
    if (tok === 'NONE') return -1
    if (/^\d+$/.test(tok)) return Number(tok)
    const v = consts.get(tok)
    assert.ok(v !== undefined, `${fn}: unknown slot ${tok}`)
    return v
  }
  const rows: { code: string; slot: number }[] = []
  for (const line of body(sol, fn).split('\n')) {
    const m = /^\s*(?:if \(t == (\d+)\) )?return (.*);$/.exec(line)
    if (!m) continue
    const expr = m[2]
    const q = /\bquant\(d, (\w+), (\w+),/.exec(expr)
    const mm = /\bmatmul\(d, (\w+),/.exec(expr)
    const o = /\bop\((\w+), (\w+),/.exec(expr)
    const row = q ? { code: q[1], slot: slotOf(q[2]) } : mm ? { code: 'MATMUL', slot: slotOf(mm[1]) } : o ? { code: o[1], slot: slotOf(o[2]) } : undefined
    assert.ok(row, `${fn}: cannot read the row ${line.trim()}`)
    if (m[1] !== undefined) assert.equal(Number(m[1]), rows.length, `${fn}: rows in order, t = ${rows.length} next`)
    rows.push(row)
  }
  return rows
}

/** The head rows' conditions as `headApplies` states them. */
function headConditions(sol: string, n: number): (OpCondition | undefined)[] {
  const when: (OpCondition | undefined)[] = Array(n).fill(undefined)
  const cond = (not: string, fn: string): OpCondition => {
    if (fn === 'penalize' && !not) return 'penalty'
    if (fn === 'greedy') return not ? 'sampled' : 'greedy'
    assert.fail(`headApplies: unknown condition ${not}${fn}`)
  }
  const b = body(sol, 'headApplies')
  for (const m of b.matchAll(/if \(t == (\d+)\) return (!?)(\w+)\(c\);/g)) when[Number(m[1])] = cond(m[2], m[3])
  for (const m of b.matchAll(/if \(t >= (\d+) && t <= (\d+)\) return (!?)(\w+)\(c\);/g)) {
    for (let t = Number(m[1]); t <= Number(m[2]); t++) when[t] = cond(m[3], m[4])
  }
  return when
}

/** Every way the contract's source differs from the engine's table, one line each. */
function differences(sol: string): string[] {
  const out: string[] = []
  const consts = constants(sol)
  for (const [name, n] of Object.entries(OP_CODE)) if (consts.get(name) !== n) out.push(`op code ${name}: contract ${consts.get(name)}, table ${n}`)
  // the contract's op-code block: no code the table lacks
  const block = /\/\/ op codes[^\n]*\n((?:\s*uint8 internal constant \w+ = \d+;\n)+)/.exec(sol)
  if (!block) out.push('no op-code block (`// op codes` then the constants)')
  else for (const m of block[1].matchAll(/constant (\w+) = /g)) if (!(m[1] in OP_CODE)) out.push(`op code ${m[1]}: not in the table`)
  for (const [name, n] of consts) {
    if (!name.startsWith('S_')) continue
    const want = SLOT[name.slice(2) as keyof typeof SLOT]
    if (want !== n) out.push(`slot ${name}: contract ${n}, table ${want ?? 'none'}`)
  }
  const compare = (what: string, got: { code: string; slot: number }[], want: readonly OpRow[]) => {
    if (got.length !== want.length) out.push(`${what}: ${got.length} rows, table ${want.length}`)
    for (let t = 0; t < Math.min(got.length, want.length); t++) {
      if (got[t].code !== want[t].code || got[t].slot !== want[t].slot) {
        out.push(`${what} row ${t} (${want[t].name}): contract ${got[t].code} into slot ${got[t].slot}, table ${want[t].code} into ${want[t].slot}`)
      }
    }
  }
  compare('layerEntry', entryRows(sol, 'layerEntry', consts), LAYER_TABLE)
  compare('headEntry', entryRows(sol, 'headEntry', consts), HEAD_TABLE)
  headConditions(sol, HEAD_TABLE.length).forEach((w, t) => {
    if (w !== HEAD_TABLE[t].when) out.push(`headApplies row ${t} (${HEAD_TABLE[t].name}): contract ${w ?? 'always'}, table ${HEAD_TABLE[t].when ?? 'always'}`)
  })
  // a teacher-forced head is TOKEN alone
  if (!/if \(k == 1\) o\.code = TOKEN;/.test(sol) || TEACHER_FORCED_HEAD_TABLE.map((r) => r.code).join() !== 'TOKEN') out.push('teacher-forced head: not TOKEN alone')
  return out
}

test('MachineTable.sol numbers op codes and slots as the engine op table does, and its template rows are the table rows', () => {
  assert.ok(constants(SOURCE).size > 60, 'the constants are read')
  assert.deepEqual(differences(SOURCE), [])
})

test('a contract that drifts from the table is caught, naming the row: a renumbered code, a moved slot, a lost row, a changed condition', () => {
  const cases: [string, string, RegExp][] = [
    ['uint8 internal constant MATMUL = 7;', 'uint8 internal constant MATMUL = 31;', /op code MATMUL: contract 31, table 7/],
    ['uint8 internal constant S_QR = 14;', 'uint8 internal constant S_QR = 15;', /slot S_QR: contract 15, table 14/],
    ['if (t == 8) return matmul(d, S_K,', 'if (t == 8) return matmul(d, S_V,', /layerEntry row 8 \(K\): contract MATMUL into slot 8, table MATMUL into 7/],
    ['if (t == 29) return srcs(op(RES, S_X2,', 'if (t == 29) return srcs(op(SILU, S_X2,', /layerEntry row 29 \(RES X2\): contract SILU/],
    ['        if (t == 15) return op(DRAW, S_NEXT, 1);\n', '', /headEntry: 16 rows, table 17/],
    ['if (t == 6) return penalize(c);', 'if (t == 6) return greedy(c);', /headApplies row 6 \(PENALTY\): contract greedy, table penalty/],
    ['if (k == 1) o.code = TOKEN;', 'if (k == 1) o.code = STORE;', /teacher-forced head/],
  ]
  for (const [from, to, want] of cases) {
    assert.ok(SOURCE.includes(from), `the contract has ${JSON.stringify(from)}`)
    const diffs = differences(SOURCE.replace(from, to))
    assert.ok(diffs.some((d) => want.test(d)), `${to || 'a deleted row'}: ${diffs.join('; ') || 'not caught'}`)
  }
})
