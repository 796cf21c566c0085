/**
 * Test fixture: a synthesized `tiny` GGUF written to a temporary file, with its model tree
 * (src/chain/weights.ts), for chain tests that need real weights under a registered model root.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Hex } from 'viem'
import { computeGgufModelRoot } from '../../src/engine/gguf/modelRoot.js'
import { readGguf } from '../../src/engine/gguf/read.js'
import { quantize } from '../../src/engine/gguf/quantize.js'
import { encodeGguf } from '../../src/engine/gguf/write.js'
import { modelConfigFromGguf } from '../../src/engine/model/config.js'
import { synthModel } from '../../src/engine/model/synth.js'
import { openGgufSource, writeGgufFile } from '../../src/runtime/ggufFile.js'
import { toHex as bytesToHex } from '../../src/trace/merkle.js'
import { type ModelTree, buildModelTree } from '../../src/chain/weights.js'

export type RealModel = {
  /** The GGUF file (removed by close). */
  path: string
  tree: ModelTree
  /** computeGgufModelRoot's root, for comparison with the tree's. */
  engineRoot: Hex
  close(): void
}

/** An extra weight tensor appended to the synthesized model (e.g. rows wider than `tiny` has). */
export type ExtraTensor = { name: string; ggmlType: number; cols: number; rows: number }

/**
 * Writes `synthModel({ preset: 'tiny', type, seed })` (plus `extra`, rows quantized from
 * `activation`) to a temp file and builds its tree.
 */
export function openRealModel(type: string, seed = 7, extra?: ExtraTensor): RealModel {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-onestep-'))
  const path = join(dir, 'tiny.gguf')
  const spec = synthModel({ preset: 'tiny', type, seed })
  // An extra tensor named like a model tensor replaces it (a wide row inside a real layer: the
  // model's config, and so its registered layer count, stays the preset's).
  const replaced = extra && spec.tensors.find((t) => t.name === extra.name)
  if (extra) {
    spec.tensors = spec.tensors.filter((t) => t.name !== extra.name)
    spec.tensors.push({
      name: extra.name, dims: [extra.cols, extra.rows], type: extra.ggmlType,
      data: function* () {
        for (let r = 0; r < extra.rows; r++) yield quantize(extra.ggmlType, activation(extra.cols, seed * 1000 + r))
      },
    })
  }
  writeGgufFile(path, encodeGguf(spec))
  const src = openGgufSource(path)
  const gguf = readGguf(src)
  // The extra tensor is no part of the llama forward pass, which modelConfigFromGguf checks: it
  // sees the replaced tensor's own shape, or no extra tensor at all.
  const infos = gguf.tensors.flatMap((t) => (t.name !== extra?.name ? [t] : replaced ? [{ ...t, dims: replaced.dims, type: replaced.type }] : []))
  const config = modelConfigFromGguf(gguf.metadata, infos)
  const tree = buildModelTree(src, gguf, config)
  const engineRoot = `0x${bytesToHex(computeGgufModelRoot(src, gguf, config).modelRoot)}` as Hex
  return {
    path, tree, engineRoot,
    close() {
      src.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A deterministic activation vector (LCG, values in about [-4, 4)) of length n. */
export function activation(n: number, seed: number): Float32Array {
  const x = new Float32Array(n)
  let s = (seed * 2654435761) >>> 0
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    x[i] = (s / 2 ** 32 - 0.5) * 8
  }
  return x
}
