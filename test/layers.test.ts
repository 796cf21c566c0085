/**
 * The layers only point down (README "Layout", STYLE.md): engine <- trace <- runtime, chain <-
 * node, dispute <- cli. A file may import its own layer or a lower one, never a higher one nor a
 * sibling on its level (runtime, the files and threads around the engine, and chain, the settlement
 * layer, are independent; node may use dispute), and no two layer folders may import each other,
 * directly or around a loop. src/errors.ts is below every layer; src/index.ts (the package entry)
 * above them. Test files are not product code and may reach up to drive what they test. A
 * violation fails this test, naming the import.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'

const src = resolve(import.meta.dirname, '../src')

/** Layer of each folder under src/ (higher may import lower). */
const LAYERS: Record<string, number> = { engine: 0, trace: 1, runtime: 2, chain: 2, p2p: 2, data: 2, node: 3, dispute: 3, train: 3, cli: 4 }
const ROOT_FILES: Record<string, number> = { 'errors.ts': -1, 'index.ts': 5 }
/** Imports between two folders on the same level that the design allows. */
const SIBLING_IMPORTS = new Set(['node -> dispute'])

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return name === 'assembly' ? [] : files(p)
    return name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts') ? [p] : []
  })
}

/** Relative import specifiers of a TypeScript file: static, re-exports, side-effect and dynamic imports. */
function importsOf(code: string): string[] {
  const out: string[] = []
  const patterns = [/\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g]
  for (const re of patterns) for (const m of code.matchAll(re)) if (m[1].startsWith('.')) out.push(m[1])
  return out
}

function layerOf(rel: string): { name: string; level: number } {
  const top = rel.split('/')[0]
  if (rel === top) {
    assert.ok(top in ROOT_FILES, `src/${rel}: a file at src/'s top level that is in no layer; add it to ROOT_FILES in test/layers.test.ts`)
    return { name: top, level: ROOT_FILES[top] }
  }
  assert.ok(top in LAYERS, `src/${top}/ is in no layer: add it to LAYERS in test/layers.test.ts (and the README's layout)`)
  return { name: top, level: LAYERS[top] }
}

function importGraph(): { from: string; to: string }[] {
  const edges: { from: string; to: string }[] = []
  for (const file of files(src)) {
    const code = readFileSync(file, 'utf8')
    for (const spec of importsOf(code)) {
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts')
      edges.push({ from: relative(src, file), to: relative(src, target) })
    }
  }
  return edges
}

/** The imports that point up or sideways (or out of src/), each with the rule it breaks. */
function violations(edges: readonly { from: string; to: string }[]): string[] {
  const out: string[] = []
  for (const e of edges) {
    const a = layerOf(e.from)
    if (e.to.startsWith('..')) {
      out.push(`${e.from} -> ${e.to} (outside src/)`)
      continue
    }
    const b = layerOf(e.to)
    if (b.level > a.level || (b.level === a.level && a.name !== b.name && !SIBLING_IMPORTS.has(`${a.name} -> ${b.name}`))) {
      out.push(`${e.from} -> ${e.to} (${a.name} may not import ${b.name})`)
    }
  }
  return out
}

test('no layer imports a higher one or a sibling', () => {
  const edges = importGraph()
  assert.ok(edges.length > 100, 'the import scan finds the imports')
  const upward = violations(edges)
  assert.deepEqual(upward, [], `upward imports:\n  ${upward.join('\n  ')}`)
})

test('the rule catches each way around it: up a layer, sideways, out of src/; and allows down, within, node -> dispute', () => {
  const bad = [
    { from: 'engine/gguf/modelRoot.ts', to: 'trace/merkle.ts' },
    { from: 'chain/weights.ts', to: 'runtime/ggufFile.ts' },
    { from: 'trace/job.ts', to: 'index.ts' },
    { from: 'dispute/model.ts', to: 'node/node.ts' },
    { from: 'engine/bytes.ts', to: '../test/support/testData.ts' },
  ]
  assert.equal(violations(bad).length, bad.length)
  const good = [
    { from: 'trace/merkle.ts', to: 'engine/hash/merkle.ts' },
    { from: 'chain/weights.ts', to: 'engine/bytes.ts' },
    { from: 'node/node.ts', to: 'dispute/model.ts' },
    { from: 'engine/math/half.ts', to: 'engine/bytes.ts' },
    { from: 'engine/bytes.ts', to: 'errors.ts' },
    { from: 'index.ts', to: 'cli/main.ts' },
  ]
  assert.deepEqual(violations(good), [])
})

test('no cycle between layer folders', () => {
  const graph = new Map<string, Set<string>>()
  for (const e of importGraph()) {
    if (e.to.startsWith('..')) continue
    const a = layerOf(e.from).name
    const b = layerOf(e.to).name
    if (a === b) continue
    if (!graph.has(a)) graph.set(a, new Set())
    graph.get(a)!.add(b)
  }
  // Depth-first search for a back edge; report the loop it closes.
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (n: string): string[] | undefined => {
    state.set(n, 'open')
    path.push(n)
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') return [...path.slice(path.indexOf(m)), m]
      if (!state.has(m)) {
        const loop = visit(m)
        if (loop) return loop
      }
    }
    path.pop()
    state.set(n, 'done')
    return undefined
  }
  for (const n of graph.keys()) {
    if (state.has(n)) continue
    const loop = visit(n)
    assert.equal(loop, undefined, `layer folders import each other: ${loop?.join(' -> ')}`)
  }
})

test('the scanner sees every import form', () => {
  const code = [
    "import { a } from './a.js'",
    "import type { B } from '../b/b.js'",
    "export { c } from './c.js'",
    "export * from './d.js'",
    "import './e.js'",
    "const f = await import('./f.js')",
    'import {\n  g,\n  h,\n} from "./g.js"',
    "import { x } from 'node:fs'",
  ].join('\n')
  assert.deepEqual(importsOf(code).sort(), ['../b/b.js', './a.js', './c.js', './d.js', './e.js', './f.js', './g.js'])
})

/**
 * Lines of library code that put a command-line flag (`--threads`) into an error: the library
 * names its parameter (`threads`, InvalidParameterError's `param`) and the CLI maps it to its flag
 * (src/cli/main.ts), so the library reads right for callers that have no flags.
 */
function cliWordingInErrors(code: string): string[] {
  return code.split('\n').filter((line) => /Error\(|\b(details|shortMessage)\s*:/.test(line) && /['"`][^'"`]*(?<![\w-])--[a-z]/.test(line))
}

test('library errors name no CLI flag (engine, trace, runtime, chain, p2p, node)', () => {
  const libraries = new Set(['engine', 'trace', 'runtime', 'chain', 'p2p', 'node'])
  const found: string[] = []
  for (const file of files(src)) {
    const rel = relative(src, file)
    if (!libraries.has(rel.split('/')[0])) continue
    for (const line of cliWordingInErrors(readFileSync(file, 'utf8'))) found.push(`${rel}: ${line.trim()}`)
  }
  assert.deepEqual(found, [])
})

test('the CLI-wording check sees a flag in a message, in details and in a template, and passes parameter names and decrements', () => {
  const bad = [
    "throw new RangeError('invalid --threads 0')",
    "  throw new InvalidParameterError('x', v, 'use --max-tokens')",
    "super(`prompt too long`, { details: 'or lower --max-tokens' })",
    '    throw new NodeStartError(`a provider needs --model FILE`)',
  ]
  for (const line of bad) assert.equal(cliWordingInErrors(line).length, 1, line)
  const good = [
    "throw new InvalidParameterError('threads', threads, 'an integer from 1 to 64')",
    'throw new RangeError(`layer ${l - 1} of ${n}`)',
    "const argv = ['node', 'start', '--data', dir]",
    'for (let i = n; i > 0; i--) x[i] = 0',
  ]
  for (const line of good) assert.deepEqual(cliWordingInErrors(line), [], line)
})
