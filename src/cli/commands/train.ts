/**
 * `tessera train --config FILE.json --out DIR` trains a model in the canonical arithmetic and
 * commits the run as it goes (manifest before step 0, a checkpoint root and batch root every K
 * steps, a run root); `tessera train verify DIR` replays a range of it and checks every root.
 * docs/TRAINING.md ("Runs", "Verify", "Export").
 */
import { dirname, join, resolve } from 'node:path'
import { InvalidParameterError } from '../../errors.js'
import { type Command, type ParsedArgs, UsageError } from '../args.js'
import { checkInputFile } from '../files.js'
import { load } from '../lazy.js'

const BACKENDS = ['auto', 'native', 'reference']

const kernelFlags = {
  threads: { type: 'number', description: 'training threads (any count gives the same bits)', default: 1 },
  backend: { type: 'string', description: 'auto (native if built, else reference), native, or reference (plain TypeScript)', default: 'auto' },
  quiet: { type: 'boolean', description: 'no progress on stderr' },
} as const

function backendOf(a: ParsedArgs): 'auto' | 'native' | 'reference' {
  const b = a.flags.backend
  if (typeof b !== 'string' || !BACKENDS.includes(b)) throw new InvalidParameterError('backend', b, BACKENDS.join(', '))
  return b as 'auto' | 'native' | 'reference'
}

function threadsOf(a: ParsedArgs): number {
  const t = a.flags.threads
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 64) throw new InvalidParameterError('threads', t, 'an integer from 1 to 64')
  return t
}

/** `A..B`, `A..` or `..B` (optimizer steps, as the log counts them). */
export function parseSteps(v: string): { from?: number; to?: number } {
  const m = /^(\d*)\.\.(\d*)$/.exec(v)
  if (!m || (m[1] === '' && m[2] === '')) throw new InvalidParameterError('steps', v, 'A..B, A.. or ..B (step numbers)')
  const from = m[1] === '' ? undefined : Number(m[1])
  const to = m[2] === '' ? undefined : Number(m[2])
  if (from !== undefined && to !== undefined && from > to) throw new InvalidParameterError('steps', v, 'A <= B')
  return { from, to }
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?'
  const t = Math.round(s)
  const h = Math.floor(t / 3600)
  const m = Math.floor((t % 3600) / 60)
  const sec = t % 60
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`
}

type ProgressInfo = { step: number; total: number; loss: number; stepsThisRun: number; tokensPerStep: number }

/**
 * A progress bar on stderr: step, loss, tokens/s, ETA. Redrawn in place on a terminal (at most 10
 * times a second), else one line per 5% of the steps.
 */
function progressBar(label: string, signal: AbortSignal): { start(): void; update(p: ProgressInfo): void; end(): void } {
  const tty = process.stderr.isTTY === true
  let t0 = performance.now()
  let lastDraw = 0
  let lastLine = -1
  let open = false
  const end = () => {
    if (open) process.stderr.write('\n')
    open = false
  }
  signal.addEventListener('abort', end, { once: true })
  return {
    /** Rates count from here (after the data and tokenizer are ready). */
    start() {
      t0 = performance.now()
    },
    update(p) {
      const now = performance.now()
      const secs = (now - t0) / 1000
      const rate = (p.stepsThisRun * p.tokensPerStep) / Math.max(secs, 1e-3)
      const eta = ((p.total - p.step) * secs) / Math.max(p.stepsThisRun, 1)
      const frac = p.total ? p.step / p.total : 1
      const text = `${label} step ${p.step}/${p.total}  loss ${p.loss.toFixed(4)}  ${rate.toFixed(0)} tok/s  ETA ${duration(eta)}`
      if (tty) {
        if (now - lastDraw < 100 && p.step !== p.total) return
        lastDraw = now
        const width = 24
        process.stderr.write(`\r[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${text}   `)
        open = true
        if (p.step === p.total) end()
        return
      }
      const bucket = Math.floor(frac * 20)
      if (bucket === lastLine && p.step !== p.total) return
      lastLine = bucket
      process.stderr.write(`  ${text}\n`)
    },
    end,
  }
}

const train: Command = {
  name: 'train',
  summary: 'Train a model (or fine-tune one) in the canonical arithmetic, committing the run as it goes',
  usage: 'train --config FILE.json --out DIR [--init FILE.gguf] [--threads N] [--backend auto|native|reference] [--quiet]',
  flags: {
    config: { type: 'string', description: 'run config (JSON: name, data, tokenizer, train, checkpointEvery; docs/TRAINING.md)' },
    out: { type: 'string', description: 'run folder: manifest, log, checkpoints, model-f32.gguf, model-q8_0.gguf (the same command resumes it)' },
    init: { type: 'string', description: 'fine-tune this F32/Q8_0 llama GGUF (its tokenizer and shape are kept)' },
    ...kernelFlags,
  },
  async run(a, signal) {
    const config = a.flags.config
    const out = a.flags.out
    if (typeof config !== 'string' || config === '') throw new UsageError('missing --config', { details: 'see --help' })
    if (typeof out !== 'string' || out === '') throw new UsageError('missing --out', { details: 'see --help' })
    checkInputFile(config)
    const init = typeof a.flags.init === 'string' ? a.flags.init : undefined
    if (init !== undefined) checkInputFile(init)
    const backend = backendOf(a)
    const threads = threadsOf(a)
    const quiet = a.flags.quiet === true
    const run = await load(signal, import('../../train/run.js'))
    const spec = run.readRunSpec(config, init !== undefined)
    const bar = quiet ? undefined : progressBar('train', signal)
    let at = 0
    try {
      const r = await run.trainRun({
        spec,
        dir: out,
        baseDir: dirname(resolve(config)),
        init,
        backend,
        threads,
        signal,
        onStage: quiet ? undefined : (what) => process.stderr.write(`  ${what}\n`),
        onManifest: (hash, resumeAt) => {
          console.log(`manifest  ${hash} (${out}/manifest.json)`)
          bar?.start()
          if (resumeAt > 0 && !quiet) process.stderr.write(`  resuming at step ${resumeAt}\n`)
        },
        onProgress: (p) => {
          at = p.step
          bar?.update(p)
        },
      })
      bar?.end()
      const s = r.summary
      console.log(`run root  ${s.runRoot} (${s.steps} steps, final loss ${s.finalLoss.toFixed(4)})`)
      for (const m of s.models) console.log(`model     ${join(out, m.file)} (${(m.bytes / 1e6).toFixed(2)} MB, model root ${m.modelRoot})`)
      return 0
    } catch (e) {
      bar?.end()
      if (signal.aborted && at > 0) process.stderr.write(`stopped after step ${at}: run the same command again to resume\n`)
      throw e
    }
  },
}

const verify: Command = {
  name: 'train verify',
  summary: "Replay a training run's steps from its checkpoints and check every root in its log",
  usage: 'train verify DIR [--steps A..B] [--init FILE.gguf] [--data-dir DIR] [--threads N] [--backend auto|native|reference] [--quiet]',
  positionals: 1,
  flags: {
    steps: { type: 'string', description: 'replay only steps A..B (from the checkpoint at or before A to the first at or after B)' },
    init: { type: 'string', description: 'the model a fine-tuning run started from (default: the path it was trained with)' },
    'data-dir': { type: 'string', description: "folder the config's data files are relative to (default: where they were at training time)" },
    ...kernelFlags,
  },
  async run(a, signal) {
    const dir = a.positionals[0]
    if (!dir) throw new UsageError('train verify needs the run folder DIR')
    const range = typeof a.flags.steps === 'string' ? parseSteps(a.flags.steps) : {}
    const init = typeof a.flags.init === 'string' ? a.flags.init : undefined
    if (init !== undefined) checkInputFile(init)
    const backend = backendOf(a)
    const threads = threadsOf(a)
    const quiet = a.flags.quiet === true
    const run = await load(signal, import('../../train/run.js'))
    const bar = quiet ? undefined : progressBar('replay', signal)
    try {
      const r = await run.verifyRun({
        dir,
        baseDir: typeof a.flags['data-dir'] === 'string' ? a.flags['data-dir'] : undefined,
        init,
        ...range,
        backend,
        threads,
        signal,
        onStage: quiet
          ? undefined
          : (what) => {
              process.stderr.write(`  ${what}\n`)
              bar?.start()
            },
        onProgress: (p) => bar?.update(p),
      })
      bar?.end()
      console.log(`manifest  ${r.manifestHash}: data, tokenizer and config recomputed, equal`)
      console.log(`steps     ${r.from}..${r.to} replayed: every loss equal, ${r.checkpoints} checkpoint${r.checkpoints === 1 ? '' : 's'} reached (batch, state and file roots equal)`)
      if (r.exportsChecked) console.log('models    GGUF exports rebuilt from the final state: model roots equal')
      console.log(`run root  ${r.runRoot}${r.complete ? '' : ' (the run is not finished)'}`)
      console.log('valid')
      return 0
    } catch (e) {
      bar?.end()
      throw e
    }
  },
}

export const trainCommands: Command[] = [train, verify]
