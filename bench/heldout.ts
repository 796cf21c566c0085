/**
 * The held-out evaluation (issue 12, docs/DATA.md): bits per byte on Moby-Dick's chapters 10, 20,
 * ..., 130, which training never sees, for the compressors and baselines a model is read against,
 * and for a model when given one.
 *
 * Columns (each pooled over the 13 chapters as total bits / total bytes; per chapter with --verbose):
 * - gzip -9 (node:zlib, level 9) and xz -9 (the `xz` binary, if present), each chapter alone;
 * - the same "primed": the compressor given the Moby-Dick training text first, counting only what
 *   the chapter adds, C(train + chapter) - C(train): the compressor's analogue of having trained
 *   (gzip's 32 KiB window sees little of it; xz -9's 64 MiB dictionary sees all of it);
 * - Kneser-Ney byte 7-grams (src/data/ngram.ts) trained on the Moby-Dick training documents alone
 *   and on all the training documents (Moby-Dick and the State of the Union addresses), each
 *   chapter scored as one window (the n-gram's own context is 6 bytes);
 * - with --model FILE.gguf: the model, each chapter tokenized alone and scored in non-overlapping
 *   windows of its context minus BOS (src/data/bpb.ts, modelScore.ts).
 * The last row compresses the 13 chapters concatenated (one stream), for comparison.
 *
 * Usage: node --import tsx bench/heldout.ts [--model FILE.gguf] [--window W] [--order 7]
 *        [--threads N] [--verbose] [--no-primed]
 */
import { spawnSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { gzipSync } from 'node:zlib'
import { pooled, scoreTokens, type TextScore } from '../src/data/bpb.js'
import { heldOutMobyDick, mobyDickTraining, trainingDocuments } from '../src/data/corpus.js'
import { modelWindow, tokenizeForScoring, transformerLogProbs } from '../src/data/modelScore.js'
import { trainKneserNey } from '../src/data/ngram.js'
import { loadModel } from '../src/runtime/model.js'
import { arg, benchArgs } from './util.js'

benchArgs({
  summary: "Bits per byte on Moby-Dick's held-out chapters for gzip, xz, n-gram baselines and (--model) a model. Prints a table; writes nothing.",
  usage: 'node --import tsx bench/heldout.ts [flags]',
  flags: {
    model: { value: 'FILE.gguf', help: 'also score this model' },
    window: { value: 'W', help: "scoring window in tokens (default: the model's context)" },
    order: { value: 'N', help: 'n-gram order (default 7)' },
    threads: { value: 'N', help: "the model's threads (default 1)" },
    verbose: { help: 'a row per chapter' },
    'no-primed': { help: 'skip the primed compressor columns' },
  },
})

const verbose = process.argv.includes('--verbose')
const primed = !process.argv.includes('--no-primed')
const order = Number(arg('order', '7'))
const modelPath = arg('model', '')

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)))
}

const gzipBytes = (b: Uint8Array) => gzipSync(b, { level: 9 }).length

const hasXz = spawnSync('xz', ['--version']).status === 0
function xzBytes(b: Uint8Array): number {
  const r = spawnSync('xz', ['-9', '-c'], { input: b, maxBuffer: 1 << 30 })
  if (r.status !== 0) throw new Error(`xz -9 failed: ${r.stderr}`)
  return r.stdout.length
}

type Row = { name: string; bytes: number; cols: Record<string, number | undefined> }

const t0 = Date.now()
const load0 = loadavg()[0]
const held = heldOutMobyDick()
const mobyTrain = concat(mobyDickTraining().map((d) => d.bytes))
const all = trainingDocuments()
console.log(`held-out: ${held.length} chapters, ${held.reduce((n, d) => n + d.bytes.length, 0)} bytes; Moby-Dick training text ${mobyTrain.length} bytes; all training documents ${all.reduce((n, d) => n + d.bytes.length, 0)} bytes`)
if (!hasXz) console.log('xz: the `xz` binary is not installed: the xz columns are left empty')

const columns: string[] = ['gzip -9', 'xz -9']
if (primed) columns.push('gzip -9 primed', 'xz -9 primed')
const knCols = [`KN-${order} Moby-Dick`, `KN-${order} all training`]
columns.push(...knCols)

const rows: Row[] = held.map((d) => ({ name: d.name.replace('moby-dick/', ''), bytes: d.bytes.length, cols: {} }))
const scores: Record<string, TextScore[]> = {}
const put = (col: string, i: number, s: TextScore) => {
  rows[i].cols[col] = s.bpb
  scores[col] ??= []
  scores[col][i] = s
}
const byteScore = (bytes: number, compressed: number): TextScore => ({ bytes, tokens: bytes, windows: 1, bits: 8 * compressed, bpb: (8 * compressed) / bytes })

// compressors
const gzTrain = primed ? gzipBytes(mobyTrain) : 0
const xzTrain = primed && hasXz ? xzBytes(mobyTrain) : 0
held.forEach((d, i) => {
  put('gzip -9', i, byteScore(d.bytes.length, gzipBytes(d.bytes)))
  if (hasXz) put('xz -9', i, byteScore(d.bytes.length, xzBytes(d.bytes)))
  if (primed) {
    put('gzip -9 primed', i, byteScore(d.bytes.length, gzipBytes(concat([mobyTrain, d.bytes])) - gzTrain))
    if (hasXz) put('xz -9 primed', i, byteScore(d.bytes.length, xzBytes(concat([mobyTrain, d.bytes])) - xzTrain))
  }
})
console.log(`compressors done in ${((Date.now() - t0) / 1000).toFixed(1)} s`)

// Kneser-Ney baselines
for (const [col, docs] of [
  [knCols[0], mobyDickTraining()],
  [knCols[1], all],
] as const) {
  const t = Date.now()
  const kn = trainKneserNey(
    docs.map((d) => d.bytes),
    order,
  )
  const tTrain = (Date.now() - t) / 1000
  for (let i = 0; i < held.length; i++) {
    const b = held[i].bytes
    put(col, i, await scoreTokens(Array.from(b), b.length, b.length, (w) => kn.logProbs(w)))
  }
  console.log(`${col}: counted in ${tTrain.toFixed(1)} s, scored in ${((Date.now() - t) / 1000 - tTrain).toFixed(1)} s`)
}

// the model
if (modelPath) {
  const t = Date.now()
  const model = await loadModel(modelPath, { threads: Number(arg('threads', '1')) })
  try {
    const window = Number(arg('window', String(modelWindow(model.transformer))))
    const scorer = transformerLogProbs(model.transformer, { bos: model.tokenizer.bos })
    const col = `model (W=${window})`
    columns.push(col)
    const dec = new TextDecoder('utf-8', { fatal: true })
    let tokens = 0
    for (let i = 0; i < held.length; i++) {
      const ids = tokenizeForScoring(model.tokenizer, dec.decode(held[i].bytes))
      tokens += ids.length
      put(col, i, await scoreTokens(ids, held[i].bytes.length, window, scorer))
    }
    console.log(`model ${modelPath}: ${tokens} tokens (${(pooled(scores[col]).bytes / tokens).toFixed(2)} bytes/token) scored in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  } finally {
    model.close()
  }
}

const fmt = (x: number | undefined) => (x === undefined ? '' : x.toFixed(3))
const head = `| text | bytes | ${columns.join(' | ')} |`
const sep = `|---|--:|${columns.map(() => '--:').join('|')}|`
const lines = [head, sep]
if (verbose) for (const r of rows) lines.push(`| ${r.name} | ${r.bytes} | ${columns.map((c) => fmt(r.cols[c])).join(' | ')} |`)
const total = rows.reduce((n, r) => n + r.bytes, 0)
lines.push(`| **13 chapters, each alone** | ${total} | ${columns.map((c) => (scores[c] ? `**${fmt(pooled(scores[c]).bpb)}**` : '')).join(' | ')} |`)
const cat = concat(held.map((d) => d.bytes))
const catCols: Record<string, number | undefined> = { 'gzip -9': (8 * gzipBytes(cat)) / total, 'xz -9': hasXz ? (8 * xzBytes(cat)) / total : undefined }
if (primed) {
  catCols['gzip -9 primed'] = (8 * (gzipBytes(concat([mobyTrain, cat])) - gzTrain)) / total
  if (hasXz) catCols['xz -9 primed'] = (8 * (xzBytes(concat([mobyTrain, cat])) - xzTrain)) / total
}
lines.push(`| 13 chapters concatenated | ${total} | ${columns.map((c) => fmt(catCols[c])).join(' | ')} |`)
console.log(`\nbits per byte on the held-out chapters (lower is better)\n\n${lines.join('\n')}\n`)
console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s; load average ${load0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end`)
