/**
 * `tessera model synth` writes a synthetic GGUF model (docs/GGUF.md); `tessera model info`
 * describes a GGUF file and computes its model root without loading it into a backend;
 * `tessera model pull URL` downloads one over HTTP(S) with resume (src/runtime/pull.ts).
 */
import { statSync } from 'node:fs'
import { BaseError } from '../../errors.js'
// The presets' and types' names for the help (small engine modules); readers, writers and the
// runtime are loaded inside each command's run.
import { SUPPORTED_ARCHITECTURES } from '../../engine/model/config.js'
import { PRESETS } from '../../engine/model/presets.js'
import { SYNTH_TYPES } from '../../engine/model/synth.js'
import type { PullProgress } from '../../runtime/pull.js'
import { type Command, UsageError } from '../args.js'
import { checkInputFile, checkOutPath } from '../files.js'
import { load } from '../lazy.js'

const synth: Command = {
  name: 'model synth',
  summary: 'Write a synthetic GGUF model with real shapes and seeded random weights',
  usage: 'model synth --preset NAME --type TYPE [--seed N] [--arch ARCH] [--sliding-window W] --out FILE.gguf [--force]',
  flags: {
    preset: { type: 'string', description: `model shape: ${Object.keys(PRESETS).join(', ')}`, default: 'tiny' },
    arch: { type: 'string', description: `architecture instead of the preset's: ${SUPPORTED_ARCHITECTURES.join(', ')} (qwen3: per-head q/k norms)` },
    'sliding-window': { type: 'number', description: 'attention over the last W positions ({arch}.attention.sliding_window)' },
    type: { type: 'string', description: `weight type: ${SYNTH_TYPES.join(', ')}`, default: 'q8_0' },
    seed: { type: 'number', description: 'weight seed (non-negative integer)', default: 1 },
    out: { type: 'string', description: 'output .gguf path' },
    force: { type: 'boolean', description: 'overwrite the --out file if it exists' },
    quiet: { type: 'boolean', description: 'no progress lines' },
  },
  async run(a, signal) {
    const out = a.flags.out as string | undefined
    if (!out) throw new UsageError('model synth needs --out FILE.gguf')
    checkOutPath(out, a.flags.force === true)
    const [{ synthModel }, { encodeGguf }, { writeGgufFileAsync }] = await load(
      signal,
      Promise.all([import('../../engine/model/synth.js'), import('../../engine/gguf/write.js'), import('../../runtime/ggufFile.js')]),
    )
    const spec = synthModel({
      preset: a.flags.preset as string,
      type: a.flags.type as string,
      seed: a.flags.seed as number,
      arch: a.flags.arch as string | undefined,
      slidingWindow: a.flags['sliding-window'] as number | undefined,
    })
    const enc = encodeGguf(spec)
    const total = enc.byteLength
    const t0 = Date.now()
    let lastReport = 0
    const progress =
      a.flags.quiet || total < 64e6
        ? undefined
        : (written: number) => {
            // One line per ~5% of the file: enough to see it move without flooding a log.
            if (written - lastReport < total / 20 && written !== total) return
            lastReport = written
            process.stderr.write(`  ${(written / 1e6).toFixed(0)} / ${(total / 1e6).toFixed(0)} MB (${Math.round((100 * written) / total)}%)\n`)
          }
    const bytes = await writeGgufFileAsync(out, enc, progress, signal)
    const secs = (Date.now() - t0) / 1000
    console.log(`wrote ${out}: ${a.flags.preset} ${a.flags.type} seed ${a.flags.seed}, ${spec.tensors.length} tensors, ${(bytes / 1e6).toFixed(1)} MB in ${secs.toFixed(1)} s`)
    return 0
  },
}

const info: Command = {
  name: 'model info',
  summary: 'Show a GGUF model: architecture, shapes, tensor types, size, model root (a file the engine cannot run: what it is and why not)',
  usage: 'model info FILE.gguf [--json]',
  positionals: 1,
  flags: {
    json: { type: 'boolean', description: 'print JSON' },
  },
  async run(a) {
    const path = a.positionals[0]
    if (!path) throw new UsageError('model info needs a FILE.gguf')
    checkInputFile(path)
    const [{ openGgufSource }, { readGguf }, { modelConfigFromGguf }, { computeGgufModelRoot }, { ggmlTypeName }, { toHex }] = await Promise.all([
      import('../../runtime/ggufFile.js'),
      import('../../engine/gguf/read.js'),
      import('../../engine/model/config.js'),
      import('../../engine/gguf/modelRoot.js'),
      import('../../engine/gguf/types.js'),
      import('../../trace/merkle.js'),
    ])
    const src = openGgufSource(path)
    try {
      const gguf = readGguf(src)
      // A file the engine cannot run (another architecture, a shape or feature it lacks) is still
      // described; `unsupported` says why, and there is no config or model root.
      let config: ReturnType<typeof modelConfigFromGguf> | null = null
      let unsupported: string | null = null
      try {
        config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
      } catch (e) {
        if (!(e instanceof BaseError)) throw e
        unsupported = e.message
      }
      const modelRoot = config ? computeGgufModelRoot(src, gguf, config).modelRoot : null
      const types: Record<string, number> = {}
      for (const t of gguf.tensors) types[ggmlTypeName(t.type)] = (types[ggmlTypeName(t.type)] ?? 0) + 1
      const name = gguf.metadata.get('general.name')
      const archV = gguf.metadata.get('general.architecture')
      const arch = archV?.type === 'string' ? archV.value : null
      const tok = gguf.metadata.get('tokenizer.ggml.model')
      const params = gguf.tensors.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0)
      const result = {
        path,
        name: name?.type === 'string' ? name.value : null,
        ggufVersion: gguf.version,
        fileBytes: statSync(path).size,
        parameters: params,
        architecture: arch,
        supported: config !== null,
        unsupported,
        config,
        tokenizer: tok?.type === 'string' ? tok.value : null,
        tensorCount: gguf.tensors.length,
        tensorTypes: types,
        modelRoot: modelRoot ? `0x${toHex(modelRoot)}` : null,
      }
      if (a.flags.json) {
        console.log(JSON.stringify(result, null, 2))
        return 0
      }
      const c = config
      const tensorsLine = `parameters    ${(params / 1e6).toFixed(1)} M in ${gguf.tensors.length} tensors: ${Object.entries(types)
        .map(([k, v]) => `${k} x${v}`)
        .join(', ')}`
      const head = [`file          ${path} (${(result.fileBytes / 1e6).toFixed(1)} MB, GGUF v${gguf.version})`, `name          ${result.name ?? '-'}`]
      if (!c) {
        console.log(
          [
            ...head,
            `architecture  ${arch ?? '-'}`,
            `tokenizer     ${result.tokenizer ?? 'none'}`,
            tensorsLine,
            `unsupported   ${unsupported}`,
            'model root    - (the engine cannot run this file)',
          ].join('\n'),
        )
        return 0
      }
      const features = [c.hasQkvBias ? ' (q/k/v biases)' : '', c.hasQkNorm ? ' (per-head q/k norms)' : '', c.tiedEmbeddings ? ', tied embeddings' : ''].join('')
      console.log(
        [
          ...head,
          `architecture  ${c.arch}${features}`,
          `shape         dim ${c.dim}, ${c.nLayer} layers, ${c.nHead} heads / ${c.nKvHead} kv heads (head ${c.headDim}), ffn ${c.ffDim}`,
          `vocab         ${c.vocabSize} (${result.tokenizer ?? 'no tokenizer'}), context ${c.contextLength}${c.slidingWindow ? `, sliding window ${c.slidingWindow}` : ''}`,
          `rope / eps    base ${c.ropeBase}, rms eps ${c.rmsEps}`,
          tensorsLine,
          `model root    ${result.modelRoot}`,
        ].join('\n'),
      )
      return 0
    } finally {
      src.close()
    }
  },
}

/** The file name a URL names (its last path segment), for `model pull` without --out. */
export function fileNameOfUrl(url: string): string {
  let path: string
  try {
    path = new URL(url).pathname
  } catch {
    throw new UsageError(`not a URL: ${url}`, { details: 'give an http:// or https:// URL' })
  }
  const name = decodeURIComponent(path.split('/').pop() ?? '')
  if (!name || name === '.' || name === '..') throw new UsageError(`${url} names no file`, { details: 'give --out FILE.gguf' })
  return name
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`

/** Progress on stderr: a bar redrawn in place on a terminal, a plain line per 10% (or per 100 MB without a size) otherwise. */
function progressPrinter(tty: boolean): { update(p: PullProgress): void; end(): void } {
  const t0 = Date.now()
  let lastDraw = 0
  let lastStep = -1
  let drawn = false
  const rate = (p: PullProgress) => (p.received - p.resumedFrom) / Math.max(0.001, (Date.now() - t0) / 1000)
  return {
    update(p) {
      if (tty) {
        const now = Date.now()
        if (now - lastDraw < 100 && p.received !== p.total) return
        lastDraw = now
        const width = 30
        const frac = p.total ? Math.min(1, p.received / p.total) : 0
        const bar = p.total ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${(frac * 100).toFixed(0).padStart(3)}%` : '[downloading]'
        process.stderr.write(`\r${bar} ${mb(p.received)}${p.total ? ` / ${mb(p.total)}` : ''}  ${mb(rate(p))}/s   `)
        drawn = true
        return
      }
      const step = p.total ? Math.floor((10 * p.received) / p.total) : Math.floor(p.received / 100e6)
      if (step === lastStep) return
      lastStep = step
      process.stderr.write(`  ${mb(p.received)}${p.total ? ` / ${mb(p.total)} (${Math.floor((100 * p.received) / p.total)}%)` : ''}${p.resumedFrom ? `, resumed at ${mb(p.resumedFrom)}` : ''}\n`)
    },
    end() {
      if (drawn) process.stderr.write('\n')
      drawn = false
    },
  }
}

const pull: Command = {
  name: 'model pull',
  summary: 'Download a GGUF model over HTTP(S) (resumable) and print its model root',
  usage: 'model pull URL [--out FILE.gguf] [--force] [--quiet]   (HF_TOKEN: a Hugging Face token for gated models)',
  positionals: 1,
  flags: {
    out: { type: 'string', description: "where to save it (default: the URL's file name); FILE.part holds an unfinished download" },
    force: { type: 'boolean', description: 'overwrite the --out file if it exists' },
    quiet: { type: 'boolean', description: 'no progress' },
  },
  async run(a, signal) {
    const url = a.positionals[0]
    if (!url) throw new UsageError('model pull needs a URL')
    if (!/^https?:\/\//i.test(url)) throw new UsageError(`not an http(s) URL: ${url}`)
    const out = (a.flags.out as string | undefined) ?? fileNameOfUrl(url)
    checkOutPath(out, a.flags.force === true)
    const { pullModel } = await load(signal, import('../../runtime/pull.js'))
    const progress = a.flags.quiet ? undefined : progressPrinter(process.stderr.isTTY === true)
    const t0 = Date.now()
    try {
      // HF_TOKEN opens gated Hugging Face models; it goes to huggingface.co only
      const token = /^https:\/\/huggingface\.co\//i.test(url) ? process.env.HF_TOKEN || undefined : undefined
      const r = await pullModel({ url, out, signal, onProgress: progress?.update, token })
      progress?.end()
      const secs = (Date.now() - t0) / 1000
      console.log(`saved ${r.path}: ${r.name ?? 'unnamed'}, ${mb(r.bytes)}${r.resumedFrom ? ` (resumed at ${mb(r.resumedFrom)})` : ''} in ${secs.toFixed(1)} s`)
      console.log(`model root ${r.modelRoot}`)
      return 0
    } catch (e) {
      progress?.end()
      if (signal.aborted) process.stderr.write(`interrupted: ${out}.part kept; run the same command again to resume\n`)
      throw e
    }
  },
}

export const modelCommands: Command[] = [synth, info, pull]
