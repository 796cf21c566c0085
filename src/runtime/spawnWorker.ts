/**
 * Starts a worker thread on one of the runtime's worker entries (`./NAME.ts` from source, `./NAME.js`
 * from dist, beside this file). From source (tests, tsx) the worker registers tsx's loader before it
 * imports the .ts entry: Node 20 does not pass a parent's `--import tsx` hooks to a worker's entry.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads'

export function spawnWorker(name: string, options: WorkerOptions): Worker {
  const here = import.meta.url
  const fromSource = here.endsWith('.ts')
  const url = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, here)
  if (!fromSource) return new Worker(url, options)
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'))
  return new Worker(`import(${tsx}).then((api) => { api.register(); return import(${JSON.stringify(url.href)}) })`, { ...options, eval: true })
}
