/**
 * Training speed (docs/BENCHMARKS.md "Training"): optimizer steps of the default-sized model
 * (fwd + bwd + AdamW) on the native kernels at 1 and 2 threads and on the TypeScript reference
 * (one step of a single sequence, scaled), as training tokens/s and GFLOP/s of model arithmetic.
 *
 *   node --import tsx bench/train.ts [--layers 4] [--dim 128] [--ff 384] [--vocab 2048] [--context 128] [--batch 8] [--steps 4] [--profile] [--no-reference]
 *
 * --profile prints where a native step's time goes, per kernel.
 */
import { loadavg } from 'node:os'
import { createTrainer, initState, paramCount, type TrainConfig, TrainModel, selectOps } from '../src/train/trainer.js'
import type { TrainOps } from '../src/train/ops.js'
import { benchArgs } from './util.js'

benchArgs({
  summary: 'Training speed: optimizer steps of the default-sized model on the native kernels (1 and 2 threads) and the TypeScript reference. Prints a table; writes nothing.',
  usage: 'node --import tsx bench/train.ts [flags]',
  flags: {
    layers: { value: 'N', help: 'layers (default 4)' },
    dim: { value: 'N', help: 'model width (default 128)' },
    heads: { value: 'N', help: 'attention heads (default 4)' },
    'kv-heads': { value: 'N', help: 'KV heads (default 4)' },
    ff: { value: 'N', help: 'feed-forward width (default 384)' },
    vocab: { value: 'N', help: 'vocabulary (default 2048)' },
    context: { value: 'N', help: 'sequence length (default 128)' },
    batch: { value: 'N', help: 'sequences per step (default 8)' },
    steps: { value: 'N', help: 'timed steps (default 4)' },
    profile: { help: "where a native step's time goes, per kernel" },
    'no-reference': { help: 'skip the TypeScript reference step' },
  },
})

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
const flag = (name: string) => process.argv.includes(`--${name}`)

const config: TrainConfig = {
  vocabSize: arg('vocab', 2048), dim: arg('dim', 128), nLayer: arg('layers', 4), nHead: arg('heads', 4), nKvHead: arg('kv-heads', 4), ffDim: arg('ff', 384),
  context: arg('context', 128), ropeBase: 10000, rmsEps: 1e-5, tiedEmbeddings: true, batch: arg('batch', 8),
  lr: { peak: 3e-3, warmupSteps: 10, totalSteps: 1000, min: 3e-4 }, adam: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }, gradClip: 1, seed: '1',
}
const steps = arg('steps', 4)

/** Model FLOPs per training token: 6 per matmul weight use (fwd, dX, dW) plus causal attention (QKᵀ and PV, fwd and 2x bwd). */
function flopsPerToken(c: TrainConfig): number {
  const hd = c.dim / c.nHead
  const perLayer = c.dim * c.nHead * hd * 2 + c.dim * c.nKvHead * hd * 2 + 3 * c.dim * c.ffDim
  const matmul = c.nLayer * perLayer + c.vocabSize * c.dim
  const attn = c.nLayer * 2 * c.nHead * hd * ((c.context + 1) / 2)
  return 6 * matmul + 6 * attn
}

function tokens(c: TrainConfig, nSeq: number, salt: number): Int32Array {
  const t = new Int32Array(nSeq * (c.context + 1))
  let x = 12345 + salt
  for (let i = 0; i < t.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    t[i] = (x >>> 8) % c.vocabSize
  }
  return t
}

function profiled(ops: TrainOps, times: Map<string, number>): TrainOps {
  const out: Record<string, unknown> = { kind: ops.kind }
  for (const k of Object.keys(ops) as (keyof TrainOps)[]) {
    const fn = ops[k]
    if (typeof fn !== 'function') continue
    out[k] = (...a: unknown[]) => {
      const s = process.cpuUsage()
      ;(fn as (...x: unknown[]) => void)(...a)
      const d = process.cpuUsage(s)
      times.set(k, (times.get(k) ?? 0) + (d.user + d.system) / 1000)
    }
  }
  return out as unknown as TrainOps
}

const fpt = flopsPerToken(config)
console.log(`config: V ${config.vocabSize}, dim ${config.dim}, layers ${config.nLayer}, heads ${config.nHead}/${config.nKvHead}, ff ${config.ffDim}, context ${config.context}, batch ${config.batch}; ${paramCount(config)} params; ${(fpt / 1e6).toFixed(2)} MFLOP per training token; load ${loadavg()[0].toFixed(2)}`)
const tokPerStep = config.batch * config.context
for (const threads of [1, 2]) {
  const trainer = await createTrainer(config, { backend: 'native', threads })
  const state = initState(config)
  await trainer.step(state, tokens(config, config.batch, 0)) // warm-up
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  let loss = 0
  for (let i = 0; i < steps; i++) loss = (await trainer.step(state, tokens(config, config.batch, i + 1))).loss
  const s = (performance.now() - t0) / 1000 / steps
  const cu = process.cpuUsage(c0)
  const cpu = (cu.user + cu.system) / 1e6 / steps
  console.log(
    `native ${threads} thread${threads > 1 ? 's' : ''}: ${(s * 1000).toFixed(0)} ms/step (CPU ${(cpu * 1000).toFixed(0)} ms), ${(tokPerStep / s).toFixed(0)} tokens/s, ${((fpt * tokPerStep) / s / 1e9).toFixed(1)} GFLOP/s (loss ${loss.toFixed(3)}); 1e7 tokens in ${(1e7 / (tokPerStep / s) / 3600).toFixed(2)} h; load ${loadavg()[0].toFixed(2)}`,
  )
  if (flag('profile')) {
    const times = new Map<string, number>()
    const model = new TrainModel(config, profiled(selectOps({ backend: 'native', threads }), times))
    model.step(state, tokens(config, config.batch, 98)) // first step allocates the reused buffers
    times.clear()
    const t1 = process.cpuUsage()
    model.step(state, tokens(config, config.batch, 99))
    const d = process.cpuUsage(t1)
    const all = (d.user + d.system) / 1000
    const rows = [...times].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(0)}`)
    console.log(`  CPU profile (ms of ${all.toFixed(0)}, all threads): ${rows.join(', ')}, rest ${(all - [...times.values()].reduce((a, b) => a + b, 0)).toFixed(0)}`)
  }
}
if (!flag('no-reference')) {
  const one = { ...config, batch: 1 }
  const trainer = await createTrainer(one, { backend: 'reference' })
  const state = initState(one)
  const t0 = performance.now()
  await trainer.step(state, tokens(one, 1, 0))
  const s = (performance.now() - t0) / 1000
  console.log(`reference: ${(s * 1000).toFixed(0)} ms/step of 1 sequence, ${(one.context / s).toFixed(0)} tokens/s, ${((fpt * one.context) / s / 1e9).toFixed(2)} GFLOP/s`)
}
