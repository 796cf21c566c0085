/**
 * Real tiny jobs for dispute tests: a synthesized model written to a temporary GGUF file and
 * opened for disputes (engine, weights, model tree), and job specs that end where a test needs
 * them to (an answer that stops at an end-of-generation token, for the `length` cheat).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { PRESETS } from '../../src/engine/model/presets.js'
import { synthModel } from '../../src/engine/model/synth.js'
import type { TreeDepths } from '../../src/chain/weights.js'
import type { SamplingParams } from '../../src/engine/sample.js'
import { type DisputeModel, openDisputeModel } from '../../src/dispute/model.js'
import type { JobSpec } from '../../src/dispute/replay.js'
import { writeGgufFile } from '../../src/runtime/ggufFile.js'

/**
 * A synthesized `preset` model of ggml `type` on disk, opened for disputes; close() removes the
 * file. `depths` pads its model tree to a bigger model's path depths (src/chain/weights.ts
 * TreeDepths, e.g. LLAMA2_7B_DEPTHS: gas measurement); `slidingWindow` gives it an attention window.
 */
export async function tinyDisputeModel(preset: string, type: string, seed = 3, depths?: TreeDepths, slidingWindow?: number): Promise<DisputeModel> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-dispute-'))
  const path = join(dir, `${preset}-${type}.gguf`)
  writeGgufFile(path, encodeGguf(synthModel({ preset, type, seed, slidingWindow })))
  const m = await openDisputeModel(path, { depths })
  return {
    ...m,
    close() {
      m.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatLastN: 64, seed: 0n }

/** A short greedy job. */
export function tinySpec(m: DisputeModel, prompt: number[], maxTokens = 3, sampling: SamplingParams = GREEDY): JobSpec {
  return { prompt, sampling, maxTokens, eogTokens: m.eogTokens, arith: m.arith }
}

/**
 * The tiny llama preset with Llama-2-7B's feed-forward width (ffDim 11,008): `blk.*.ffn_down` rows
 * have 11,008 columns, the widest rows the gas targets are measured on (bench/gas.ts,
 * src/dispute/stepGas.test.ts). Registered on first use; returns its preset name.
 */
export function tinyWidePreset(): string {
  PRESETS['tiny-wide'] ??= { ...PRESETS.tiny, name: 'tiny-wide', description: 'llama, 2 layers, width 256, ff 11,008 (gas of the widest rows)', ffDim: 11008 }
  return 'tiny-wide'
}
