/**
 * Decode with and without the weights on transparent huge pages (wasmBackend.ts `hugePages`,
 * docs/KERNELS.md "Weights on huge pages"), A/B in one process: the same synthesized model is
 * loaded twice, once per setting, and untraced greedy decode runs alternate between the two, so
 * both see the same machine state. Reported per setting: the median process CPU ms per token (the
 * steady number on a shared machine) and wall tok/s, the huge pages the load gained
 * (/proc/self/smaps_rollup AnonHugePages) and the load's CPU seconds. Prints only; writes nothing.
 *
 * Usage: node --import tsx bench/hugePages.ts [--models tinyllama-1.1b --types q8_0,q5_k_m --threads 1 --runs 7]
 */
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { KVCache, Transformer } from '../src/engine/model/transformer.js'
import { argmax } from '../src/engine/sample.js'
import type { GgufMetadata } from '../src/engine/gguf/types.js'
import { BUILTIN_TEXT, createTokenizer } from '../src/engine/tokenizer/index.js'
import { loadWeightsAsync } from '../src/runtime/loadWeights.js'
import { createWasmBackend } from '../src/runtime/wasmBackend.js'
import { cpuSince, synthModelFile } from './llamacpp.js'
import { arg, benchArgs, median } from './util.js'

benchArgs({
  summary: 'Decode CPU ms per token with the weights on huge pages and without, interleaved in one process (wasmBackend hugePages). Prints only.',
  usage: 'node --import tsx bench/hugePages.ts [flags]',
  flags: {
    models: { value: 'LIST', help: 'synth presets (default tinyllama-1.1b)' },
    types: { value: 'LIST', help: 'quant types (default q8_0,q5_k_m)' },
    threads: { value: 'N', help: 'kernel threads (default 1)' },
    runs: { value: 'N', help: 'decode runs per setting, alternated; the median reported (default 7)' },
    steps: { value: 'N', help: 'decode steps per run (default 32)' },
  },
})

const CACHE = `${fileURLToPath(new URL('..', import.meta.url))}.tessera/bench`
const threads = Number(arg('threads', '1'))
const runs = Number(arg('runs', '7'))
const steps = Number(arg('steps', '32'))

/** This process's anonymous memory on huge pages, MiB. */
function anonHugeMiB(): number {
  const m = /^AnonHugePages:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))
  return m ? Number(m[1]) / 1024 : Number.NaN
}

type Setup = { hugePages: boolean; transformer: Transformer; metadata: GgufMetadata; close(): void; hugeMiB: number; loadCpu: number; cpu: number[]; tps: number[] }

async function setup(path: string, hugePages: boolean): Promise<Setup> {
  const before = anonHugeMiB()
  const c0 = process.cpuUsage()
  const backend = await createWasmBackend({ threads, hugePages })
  const w = await loadWeightsAsync(path, backend)
  const loadCpu = cpuSince(c0)
  return { hugePages, transformer: new Transformer(w, backend), metadata: w.metadata, close: () => backend.close(), hugeMiB: anonHugeMiB() - before, loadCpu, cpu: [], tps: [] }
}

/** One run of `steps` untraced greedy decode steps after `prompt`: [CPU s per token, tok/s]. */
function decode(t: Transformer, prompt: number[]): [number, number] {
  const cache = new KVCache(t.config, prompt.length + steps + 1)
  let logits = t.forward(prompt, cache, 1)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < steps; i++) logits = t.forward([argmax(logits)], cache, 1)
  return [cpuSince(c0) / steps, steps / ((performance.now() - t0) / 1000)]
}

for (const preset of arg('models', 'tinyllama-1.1b').split(',')) {
  for (const type of arg('types', 'q8_0,q5_k_m').split(',')) {
    const path = synthModelFile(CACHE, preset, type)
    const load0 = loadavg()[0]
    // Without first: a later advised load cannot lend it huge pages (khugepaged scans advised ranges only).
    const setups = [await setup(path, false), await setup(path, true)]
    try {
      const prompt = createTokenizer(setups[0].metadata).encode(BUILTIN_TEXT).slice(0, 16)
      for (const s of setups) decode(s.transformer, prompt) // warm-up
      for (let r = 0; r < runs; r++) {
        for (const s of r % 2 ? [...setups].reverse() : setups) {
          const [cpu, tps] = decode(s.transformer, prompt)
          s.cpu.push(cpu * 1000)
          s.tps.push(tps)
        }
      }
      console.log(`${preset} ${type}, ${threads} thread(s), ${runs} runs x ${steps} steps, load average ${load0.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`)
      for (const s of setups) {
        console.log(`  huge pages ${s.hugePages ? 'on ' : 'off'}: decode ${median(s.cpu).toFixed(2)} CPU ms/token (runs ${s.cpu.map((x) => x.toFixed(1)).join(' ')}), ${median(s.tps).toFixed(1)} tok/s wall; load ${s.loadCpu.toFixed(2)} CPU s, +${s.hugeMiB.toFixed(0)} MiB AnonHugePages`)
      }
      console.log(`  on / off, CPU ms per token: ${(median(setups[1].cpu) / median(setups[0].cpu)).toFixed(3)}`)
    } finally {
      for (const s of setups) s.close()
    }
  }
}
