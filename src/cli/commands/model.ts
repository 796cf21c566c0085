/**
 * `tessera model synth` writes a synthetic GGUF model (docs/GGUF.md); `tessera model info`
 * describes a GGUF file and computes its model root without loading it into a backend.
 */
import { statSync } from 'node:fs'
import { computeGgufModelRoot } from '../../engine/gguf/modelRoot.js'
import { readGguf } from '../../engine/gguf/read.js'
import { ggmlTypeName } from '../../engine/gguf/types.js'
import { encodeGguf } from '../../engine/gguf/write.js'
import { modelConfigFromGguf } from '../../engine/model/config.js'
import { PRESETS } from '../../engine/model/presets.js'
import { SYNTH_TYPES, synthModel } from '../../engine/model/synth.js'
import { toHex } from '../../trace/merkle.js'
import { openGgufSource, writeGgufFileAsync } from '../../runtime/ggufFile.js'
import { type Command, UsageError } from '../args.js'
import { checkInputFile, checkOutPath } from '../files.js'

const synth: Command = {
  name: 'model synth',
  summary: 'Write a synthetic GGUF model with real shapes and seeded random weights',
  usage: 'model synth --preset NAME --type TYPE [--seed N] --out FILE.gguf [--force]',
  flags: {
    preset: { type: 'string', description: `model shape: ${Object.keys(PRESETS).join(', ')}`, default: 'tiny' },
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
    const spec = synthModel({ preset: a.flags.preset as string, type: a.flags.type as string, seed: a.flags.seed as number })
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
  summary: 'Show a GGUF model: architecture, shapes, tensor types, size, model root',
  usage: 'model info FILE.gguf [--json]',
  positionals: 1,
  flags: {
    json: { type: 'boolean', description: 'print JSON' },
  },
  async run(a) {
    const path = a.positionals[0]
    if (!path) throw new UsageError('model info needs a FILE.gguf')
    checkInputFile(path)
    const src = openGgufSource(path)
    try {
      const gguf = readGguf(src)
      const config = modelConfigFromGguf(gguf.metadata, gguf.tensors)
      const { modelRoot } = computeGgufModelRoot(src, gguf, config)
      const types: Record<string, number> = {}
      for (const t of gguf.tensors) types[ggmlTypeName(t.type)] = (types[ggmlTypeName(t.type)] ?? 0) + 1
      const name = gguf.metadata.get('general.name')
      const tok = gguf.metadata.get('tokenizer.ggml.model')
      const params = gguf.tensors.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0)
      const result = {
        path,
        name: name?.type === 'string' ? name.value : null,
        ggufVersion: gguf.version,
        fileBytes: statSync(path).size,
        parameters: params,
        config,
        tokenizer: tok?.type === 'string' ? tok.value : null,
        tensorCount: gguf.tensors.length,
        tensorTypes: types,
        modelRoot: `0x${toHex(modelRoot)}`,
      }
      if (a.flags.json) {
        console.log(JSON.stringify(result, null, 2))
        return 0
      }
      const c = config
      console.log(
        [
          `file          ${path} (${(result.fileBytes / 1e6).toFixed(1)} MB, GGUF v${gguf.version})`,
          `name          ${result.name ?? '-'}`,
          `architecture  ${c.arch}${c.hasQkvBias ? ' (q/k/v biases)' : ''}${c.tiedEmbeddings ? ', tied embeddings' : ''}`,
          `shape         dim ${c.dim}, ${c.nLayer} layers, ${c.nHead} heads / ${c.nKvHead} kv heads (head ${c.headDim}), ffn ${c.ffDim}`,
          `vocab         ${c.vocabSize} (${result.tokenizer ?? 'no tokenizer'}), context ${c.contextLength}`,
          `rope / eps    base ${c.ropeBase}, rms eps ${c.rmsEps}`,
          `parameters    ${(params / 1e6).toFixed(1)} M in ${gguf.tensors.length} tensors: ${Object.entries(types)
            .map(([k, v]) => `${k} x${v}`)
            .join(', ')}`,
          `model root    ${result.modelRoot}`,
        ].join('\n'),
      )
      return 0
    } finally {
      src.close()
    }
  },
}

export const modelCommands: Command[] = [synth, info]
