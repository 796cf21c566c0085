/**
 * `tessera demo` (what `npm start` runs): the main job end to end on the embedded defaults —
 * synthesize a SmolLM2-shaped model, answer a prompt with a receipt, and replay the job to
 * verify it bit for bit.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { encodeGguf } from '../../engine/gguf/write.js'
import { synthModel } from '../../engine/model/synth.js'
import { writeGgufFile } from '../../runtime/ggufFile.js'
import { generate, loadModel, verify } from '../../runtime/model.js'
import type { Command } from '../args.js'

const demo: Command = {
  name: 'demo',
  summary: 'Synthesize a model, answer a prompt with a receipt, verify it by replay',
  usage: 'demo [--dir DIR] [--preset NAME] [--type TYPE] [--prompt TEXT] [--threads T]',
  flags: {
    dir: { type: 'string', description: 'where the model file is kept', default: '.tessera/demo' },
    preset: { type: 'string', description: 'model preset to synthesize', default: 'smol-135m' },
    type: { type: 'string', description: 'tensor type', default: 'q8_0' },
    prompt: { type: 'string', description: 'prompt text', default: 'Call me Ishmael. Some years ago' },
    'max-tokens': { type: 'number', description: 'tokens to generate', default: 32 },
    threads: { type: 'number', description: 'kernel threads', default: 2 },
  },
  async run(a) {
    const dir = a.flags.dir as string
    const preset = a.flags.preset as string
    const type = a.flags.type as string
    const path = join(dir, `${preset}-${type}.gguf`)
    if (!existsSync(path)) {
      mkdirSync(dir, { recursive: true })
      console.error(`1/3 synthesizing ${preset} (${type}) into ${path} ...`)
      const spec = synthModel({ preset, type, seed: 1 })
      const bytes = writeGgufFile(path, encodeGguf(spec))
      console.error(`    ${(bytes / 1e6).toFixed(1)} MB written`)
    } else console.error(`1/3 using ${path}`)

    console.error(`2/3 loading and generating (greedy, ${a.flags.threads} threads)`)
    const model = await loadModel(path, { threads: a.flags.threads as number })
    try {
      const prompt = a.flags.prompt as string
      process.stdout.write(`\n${prompt}`)
      const r = generate(model, { prompt, maxTokens: a.flags['max-tokens'] as number, temperature: 0, onText: (t) => process.stdout.write(t) })
      process.stdout.write('\n\n')
      console.log('receipt:', JSON.stringify(r.receipt, null, 2))

      console.error('3/3 verifying by teacher-forced replay')
      const v = verify(model, { receipt: r.receipt, promptTokens: r.promptTokens, outputTokens: r.outputTokens, leaves: r.leaves })
      console.log(v.valid ? `verified: ${r.outputTokens.length} tokens, trace root ${r.receipt.traceRoot}` : `NOT verified: ${v.problems.join('; ')}`)
      return v.valid ? 0 : 1
    } finally {
      model.close()
    }
  },
}

export const demoCommands: Command[] = [demo]
