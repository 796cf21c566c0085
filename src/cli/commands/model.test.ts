import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it, mock } from 'node:test'
import { parseArgs } from '../args.js'
import { modelCommands } from './model.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-model-'))
after(() => rmSync(dir, { recursive: true, force: true }))

function cmd(name: string) {
  const c = modelCommands.find((x) => x.name === name)
  assert.ok(c, name)
  return c
}

async function runCaptured(name: string, argv: string[]): Promise<{ code: number; out: string }> {
  const c = cmd(name)
  const lines: string[] = []
  const spy = mock.method(console, 'log', (...args: unknown[]) => void lines.push(args.join(' ')))
  try {
    const code = await c.run(parseArgs(argv, c.flags), new AbortController().signal)
    return { code, out: lines.join('\n') }
  } finally {
    spy.mock.restore()
  }
}

describe('tessera model', () => {
  it('synth writes a file that info describes, with the golden root', async () => {
    const out = join(dir, 'tiny.gguf')
    const s = await runCaptured('model synth', ['--preset', 'tiny', '--type', 'q4_k_m', '--seed', '1', '--out', out])
    assert.equal(s.code, 0)
    const r = await runCaptured('model info', [out, '--json'])
    const j = JSON.parse(r.out)
    assert.equal(j.config.arch, 'llama')
    // 2 layers: both are use_more_bits layers, so attn_v and ffn_down of each plus output are Q6_K.
    assert.deepEqual(j.tensorTypes, { Q4_K: 11, F32: 5, Q6_K: 5 })
    assert.equal(j.modelRoot, '0x1b361d4fdde0eb39b90cb0888252932d29cbc6874c0b71adad70299cc2a667c7')
    const text = await runCaptured('model info', [out])
    assert.match(text.out, /model root +0x1b361d4f/)
  })

  it('synth --arch qwen3 --sliding-window: info names the per-head norms and the window', async () => {
    const out = join(dir, 'q3.gguf')
    assert.equal((await runCaptured('model synth', ['--preset', 'tiny', '--arch', 'qwen3', '--sliding-window', '64', '--out', out])).code, 0)
    const j = JSON.parse((await runCaptured('model info', [out, '--json'])).out)
    assert.deepEqual([j.config.arch, j.config.hasQkNorm, j.config.slidingWindow, j.supported], ['qwen3', true, 64, true])
    assert.match((await runCaptured('model info', [out])).out, /qwen3 \(per-head q\/k norms\)[\s\S]*sliding window 64/)
  })

  it('info describes a file of an unsupported architecture, with why and no model root', async () => {
    const { synthModel } = await import('../../engine/model/synth.js')
    const { encodeGguf } = await import('../../engine/gguf/write.js')
    const { gv } = await import('../../engine/gguf/types.js')
    const { writeGgufFile } = await import('../../runtime/ggufFile.js')
    const spec = synthModel({ preset: 'tiny', type: 'q8_0', seed: 1 })
    spec.metadata.set('general.architecture', gv.str('mamba'))
    const out = join(dir, 'mamba.gguf')
    writeGgufFile(out, encodeGguf(spec))
    const r = await runCaptured('model info', [out, '--json'])
    assert.equal(r.code, 0)
    const j = JSON.parse(r.out)
    assert.deepEqual([j.architecture, j.supported, j.config, j.modelRoot, j.tensorCount], ['mamba', false, null, null, spec.tensors.length])
    assert.match(j.unsupported, /unsupported model architecture "mamba".*qwen3/)
    const text = (await runCaptured('model info', [out])).out
    assert.match(text, /architecture {2}mamba\n/)
    assert.match(text, /unsupported {3}unsupported model architecture "mamba"/)
  })

  it('rejects unknown presets and types, listing the valid ones', async () => {
    await assert.rejects(runCaptured('model synth', ['--preset', 'nope', '--out', join(dir, 'x.gguf')]), (e: Error) => e.name === 'UnknownPresetError' && /smol-135m/.test(e.message))
    await assert.rejects(runCaptured('model synth', ['--type', 'q9_k', '--out', join(dir, 'x.gguf')]), (e: Error) => e.name === 'UnknownWeightTypeError' && /q6_k/.test(e.message))
    await assert.rejects(runCaptured('model synth', []), { name: 'UsageError' })
    await assert.rejects(runCaptured('model synth', ['--arch', 'gpt2', '--out', join(dir, 'x.gguf')]), (e: Error) => e.name === 'UnknownArchitectureOptionError' && /qwen3/.test(e.message))
    await assert.rejects(runCaptured('model info', [join(dir, 'missing.gguf')]), { name: 'FileNotFoundError' })
  })
})
