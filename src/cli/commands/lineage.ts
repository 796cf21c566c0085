/**
 * `tessera model register FILE.gguf --dataset ROOT:WEIGHT ...` registers a model with its training
 * record (the only moment it can have one: a registry entry never changes). `tessera model lineage ROOT_OR_FILE` prints a model's chain of provenance from the chain's state
 * and events: dataset(s) -> training run -> model -> jobs served, and checks each link it can: the
 * model root against the file, the model's registration and training record, each dataset's
 * registration (and its manifest, given one), the training manifest's hash (given the file) and
 * the GGUF's own training keys against the record, and that every job claimed on the model (read
 * from the claims' calldata) credited its data share. It says plainly which links it could not
 * check (docs/DATA.md "On chain"). Exit 1 when a link it checked does not hold.
 */
import { readFileSync } from 'node:fs'
import type { Hex } from 'viem'
import { InvalidParameterError } from '../../errors.js'
import { type Command, stringList, UsageError } from '../args.js'
import { checkInputFile } from '../files.js'
import { load } from '../lazy.js'
import { ChainError, connect, connFlags } from './chain.js'

/** A link of the lineage and what became of checking it. */
export type LinkCheck = { status: 'ok' | 'fail' | 'unchecked'; what: string }

/** GGUF keys a Tessera training run writes into its exports (src/train/export.ts). */
const RUN_ROOT_KEY = 'tessera.train.run_root'
const MANIFEST_HASH_KEY = 'tessera.train.manifest_hash'

/** The model root of `arg`: given as 0x + 64 hex digits, or computed from a GGUF file (with its training keys, if any). */
async function modelOf(arg: string, signal: AbortSignal): Promise<{ root: Hex; file?: string; runRoot?: string; manifestHash?: string }> {
  if (/^0x[0-9a-fA-F]{64}$/.test(arg)) return { root: arg.toLowerCase() as Hex }
  if (/^0x[0-9a-fA-F]*$/.test(arg)) throw new InvalidParameterError('model', arg, 'a model root (0x and 64 hex digits) or a GGUF file')
  checkInputFile(arg)
  const [{ openGgufSource }, { readGguf }, { modelConfigFromGguf }, { computeGgufModelRoot }, { toHex }] = await load(
    signal,
    Promise.all([
      import('../../runtime/ggufFile.js'),
      import('../../engine/gguf/read.js'),
      import('../../engine/model/config.js'),
      import('../../engine/gguf/modelRoot.js'),
      import('../../trace/merkle.js'),
    ]),
  )
  const src = openGgufSource(arg)
  try {
    const gguf = readGguf(src)
    const { modelRoot } = computeGgufModelRoot(src, gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors))
    const str = (k: string) => {
      const v = gguf.metadata.get(k)
      return v?.type === 'string' ? v.value.toLowerCase() : undefined
    }
    return { root: `0x${toHex(modelRoot)}` as Hex, file: arg, runRoot: str(RUN_ROOT_KEY), manifestHash: str(MANIFEST_HASH_KEY) }
  } finally {
    src.close()
  }
}

const lineage: Command = {
  name: 'model lineage',
  summary: "Print a model's lineage from the chain (datasets -> training run -> model -> jobs served), checking each link it can",
  usage: 'model lineage ROOT_OR_FILE [--dataset-manifest FILE ...] [--training-manifest FILE] [--rpc URL]',
  positionals: 1,
  flags: {
    'dataset-manifest': { type: 'string', multiple: true, description: "a dataset manifest (tessera data add's --out): checked against the registered root and manifest hash" },
    'training-manifest': { type: 'string', description: "the training run's manifest.json: its SHA-256 checked against the record's manifest hash" },
    ...connFlags,
  },
  async run(args, signal) {
    const arg = args.positionals[0]
    if (!arg) throw new UsageError('model lineage needs a model root (0x...) or a GGUF file')
    const dsFiles = stringList(args.flags['dataset-manifest'])
    for (const f of dsFiles) checkInputFile(f)
    const tmFile = args.flags['training-manifest'] as string | undefined
    if (tmFile) checkInputFile(tmFile)
    const m = await modelOf(arg, signal)
    const [{ formatEther }, { loadDeployment }, { isModelRegistered }, ds, { parseManifest, manifestHash }, { sha256 }, { toHex0x }] = await load(
      signal,
      Promise.all([
        import('viem'),
        import('../../chain/client.js'),
        import('../../chain/actions/registry.js'),
        import('../../chain/actions/datasets.js'),
        import('../../data/dataset.js'),
        import('../../engine/hash/merkle.js'),
        import('../../engine/bytes.js'),
      ]),
    )
    const c = await connect(args, signal)
    const d = loadDeployment(String(args.flags.deployment), c.chain.id)
    const checks: LinkCheck[] = []
    const check = (ok: boolean, what: string) => checks.push({ status: ok ? 'ok' : 'fail', what })
    const unchecked = (what: string) => checks.push({ status: 'unchecked', what })
    const pct = (bps: number) => `${(bps / 100).toFixed(2)}%`
    // Printed in lineage order: datasets -> training run -> model -> jobs served, then the links.
    const [data, run, model, jobsOut]: string[][] = [[], [], [], []]

    // model
    model.push(`model ${m.root}${m.file ? ` (${m.file})` : ''}`)
    if (m.file) check(true, `model root ${m.root} computed from ${m.file}`)
    else unchecked('model root against the weights: no GGUF file given (pass the file instead of the root)')
    const registered = await isModelRegistered(c, d, m.root)
    check(registered, registered ? 'model registered in ModelRegistry' : 'model is not registered in ModelRegistry')
    const ev = await ds.lineageEvents(c, d, m.root)
    if (ev.model) model.push(`  registered     by ${ev.model.registrant} at block ${ev.model.block} (${ev.model.nLayer} layers, tx ${ev.model.tx})`)
    const rec = registered ? await ds.getTrainingRecord(c, d, m.root) : null
    if (!rec) {
      model.push('  training record: none')
      if (registered) unchecked('datasets and training run: the model was registered without a training record')
    } else {
      if (ev.record) check(ev.record.manifestHash === rec.manifestHash && ev.record.runRoot === rec.runRoot, "training record's event matches the registry's state")
      // datasets
      const manifests = dsFiles.map((f) => {
        const text = readFileSync(f, 'utf8')
        let parsed: ReturnType<typeof parseManifest>
        try {
          parsed = parseManifest(JSON.parse(text))
        } catch (e) {
          if (e instanceof SyntaxError) throw new InvalidParameterError('dataset-manifest', f, 'a dataset manifest (JSON)')
          throw e
        }
        return { file: f, manifest: parsed, hash: toHex0x(manifestHash(parsed)) }
      })
      for (const [i, x] of rec.datasets.entries()) {
        const on = await ds.getDataset(c, d, x.root)
        data.push(`dataset ${i} ${x.root}, weight ${pct(x.weightBps)}`)
        if (!on) {
          check(false, `dataset ${i} ${x.root} is not registered`)
          continue
        }
        check(true, `dataset ${i} registered (licence ${on.licence})`)
        data.push(`  registered     by ${on.registrant}, licence ${on.licence}, manifest ${on.manifestHash}`)
        data.push(`  contributors   ${on.contributors.map((k) => `${k.address} ${pct(k.shareBps)}`).join(', ')}`)
        const given = manifests.find((f) => f.manifest.root === x.root.toLowerCase())
        if (given)
          check(
            given.hash === on.manifestHash.toLowerCase(),
            `dataset ${i} manifest ${given.file}: hash ${given.hash} ${given.hash === on.manifestHash.toLowerCase() ? 'is' : 'is NOT'} the registered one`,
          )
        else unchecked(`dataset ${i}'s documents and manifest: no --dataset-manifest with root ${x.root}`)
      }
      for (const f of manifests)
        if (!rec.datasets.some((x) => x.root.toLowerCase() === f.manifest.root)) check(false, `${f.file} (root ${f.manifest.root}) is not a dataset of this model's training record`)
      // training run
      run.push('training run')
      run.push(`  manifest hash  ${rec.manifestHash}`)
      run.push(`  run root       ${rec.runRoot}`)
      if (tmFile) {
        const h = toHex0x(sha256(new Uint8Array(readFileSync(tmFile))))
        check(h === rec.manifestHash.toLowerCase(), `training manifest ${tmFile}: SHA-256 ${h} ${h === rec.manifestHash.toLowerCase() ? 'is' : 'is NOT'} the record's manifest hash`)
      } else unchecked("the training manifest's content: no --training-manifest given")
      if (m.manifestHash !== undefined)
        check(m.manifestHash === rec.manifestHash.toLowerCase(), `the GGUF's ${MANIFEST_HASH_KEY} ${m.manifestHash === rec.manifestHash.toLowerCase() ? 'matches' : 'does NOT match'} the record`)
      if (m.runRoot !== undefined) check(m.runRoot === rec.runRoot.toLowerCase(), `the GGUF's ${RUN_ROOT_KEY} ${m.runRoot === rec.runRoot.toLowerCase() ? 'matches' : 'does NOT match'} the record`)
      else if (m.file) unchecked(`the run root against the file: ${m.file} carries no ${RUN_ROOT_KEY}`)
      unchecked('that these weights are what the run produced: replay the run (tessera train verify DIR), the chain cannot')
    }
    // jobs served: from the claims' calldata (every model), and the data share events (trained models)
    const served = registered ? await ds.jobsOfModel(c, d, m.root) : { batches: [], jobs: 0, billed: 0n, dataShare: 0n, undecoded: 0 }
    jobsOut.push('jobs served')
    jobsOut.push(`  ${served.jobs} jobs claimed in ${served.batches.length} batches, billed ${formatEther(served.billed)} (from the claims' calldata)`)
    if (served.undecoded > 0) unchecked(`jobs in ${served.undecoded} claim transactions sent through another contract (their calldata is not a claimBatch call)`)
    if (rec) {
      const jobs = ev.credits.reduce((s, x) => s + x.jobs, 0)
      const credited = ev.credits.reduce((s, x) => s + x.amount, 0n)
      const withdrawn = ev.withdrawals.reduce((s, x) => s + x.amount, 0n)
      jobsOut.push(`  data share credited ${formatEther(credited)} in ${ev.credits.length} credits, withdrawn by contributors ${formatEther(withdrawn)}`)
      const earned = await ds.dataEarned(c, d, m.root)
      check(earned === credited, `DataCredited events sum to the model's dataEarned (${formatEther(earned)})`)
      if (served.undecoded === 0) {
        check(
          jobs === served.jobs && credited === served.dataShare,
          `every claimed job credited its data share (${jobs} of ${served.jobs} jobs, ${formatEther(credited)} of ${formatEther(served.dataShare)})`,
        )
      }
    }
    for (const line of [...data, ...run, ...model, ...jobsOut]) console.log(line)
    console.log('links')
    const mark = { ok: 'ok         ', fail: 'FAILED     ', unchecked: 'not checked' } as const
    for (const k of checks) console.log(`  ${mark[k.status]} ${k.what}`)
    return checks.some((k) => k.status === 'fail') ? 1 : 0
  },
}

/** `ROOT:WEIGHT`: a dataset root and its weight in basis points (1..10000) or as a percentage (`70%`). */
export function parseDatasetWeight(raw: string): { root: Hex; weightBps: number } {
  const m = /^(0x[0-9a-fA-F]{64}):(\d+(?:\.\d{1,2})?%|\d+)$/.exec(raw.trim())
  if (!m) throw new InvalidParameterError('dataset', raw, 'ROOT:WEIGHT, ROOT a dataset root (0x and 64 hex digits), WEIGHT in basis points or a percentage such as 70%')
  const w = m[2].endsWith('%') ? Math.round(Number(m[2].slice(0, -1)) * 100) : Number(m[2])
  if (!(w >= 1 && w <= 10000)) throw new InvalidParameterError('dataset', raw, 'a weight from 1 to 10000 basis points (0.01% to 100%)')
  return { root: m[1].toLowerCase() as Hex, weightBps: w }
}

const HEX32 = /^0x[0-9a-fA-F]{64}$/

const register: Command = {
  name: 'model register',
  summary: 'Register a GGUF model on chain by its root, with its training record (datasets and weights, manifest hash, run root)',
  usage: 'model register FILE.gguf [--dataset ROOT:WEIGHT ...] [--run-root HEX] [--manifest-hash HEX | --training-manifest FILE] [--rpc URL --key FILE]',
  positionals: 1,
  flags: {
    dataset: { type: 'string', multiple: true, description: 'a registered dataset the model was trained on and its weight (basis points or %); weights sum to 10000 (100%). None: no training record' },
    'run-root': { type: 'string', description: `the training run's root (default: the GGUF's ${RUN_ROOT_KEY})` },
    'manifest-hash': { type: 'string', description: `SHA-256 of the training manifest (default: the GGUF's ${MANIFEST_HASH_KEY})` },
    'training-manifest': { type: 'string', description: "the training run's manifest.json: its SHA-256 is the manifest hash" },
    ...connFlags,
  },
  async run(args, signal) {
    const file = args.positionals[0]
    if (!file) throw new UsageError('model register needs a FILE.gguf')
    checkInputFile(file)
    const datasets = stringList(args.flags.dataset).map(parseDatasetWeight)
    const tm = args.flags['training-manifest'] as string | undefined
    if (tm) checkInputFile(tm)
    if (tm && args.flags['manifest-hash'] !== undefined) throw new UsageError('give --manifest-hash or --training-manifest, not both')
    for (const f of ['run-root', 'manifest-hash'] as const) {
      const v = args.flags[f]
      if (v !== undefined && !HEX32.test(String(v))) throw new InvalidParameterError(f, v, '0x and 64 hex digits')
    }
    const [
      { toHex },
      { loadDeployment },
      { isModelRegistered, registerModel },
      ds,
      { openGgufSource },
      { readGguf },
      { modelConfigFromGguf },
      { buildModelTree },
      { sha256 },
      { toHex0x },
      { ARITH_VERSION },
    ] = await load(
      signal,
      Promise.all([
        import('viem'),
        import('../../chain/client.js'),
        import('../../chain/actions/registry.js'),
        import('../../chain/actions/datasets.js'),
        import('../../runtime/ggufFile.js'),
        import('../../engine/gguf/read.js'),
        import('../../engine/model/config.js'),
        import('../../chain/weights.js'),
        import('../../engine/hash/merkle.js'),
        import('../../engine/bytes.js'),
        import('../../engine/version.js'),
      ]),
    )
    const src = openGgufSource(file)
    let tree: ReturnType<typeof buildModelTree>
    let keys: { runRoot?: string; manifestHash?: string }
    try {
      const gguf = readGguf(src)
      tree = buildModelTree(src, gguf, modelConfigFromGguf(gguf.metadata, gguf.tensors))
      const str = (k: string) => {
        const v = gguf.metadata.get(k)
        return v?.type === 'string' && HEX32.test(v.value) ? v.value.toLowerCase() : undefined
      }
      keys = { runRoot: str(RUN_ROOT_KEY), manifestHash: str(MANIFEST_HASH_KEY) }
    } finally {
      src.close()
    }
    const c = await connect(args, signal)
    const d = loadDeployment(String(args.flags.deployment), c.chain.id)
    const modelRoot = tree.modelRoot
    if (await isModelRegistered(c, d, modelRoot)) {
      const rec = await ds.getTrainingRecord(c, d, modelRoot)
      throw new ChainError(`model ${modelRoot} is registered already, ${rec ? `with a training record (run root ${rec.runRoot})` : 'without a training record'}`, {
        details: 'a registry entry never changes (first come): see tessera model lineage',
      })
    }
    const arithVersion = toHex(ARITH_VERSION, { size: 32 })
    const proof = tree.proveConfig()
    if (datasets.length === 0) {
      const r = await registerModel(c, d, { modelRoot, ...proof, arithVersion })
      console.log(`registered model ${modelRoot} without a training record (it pays no data share, and can never be given one) in tx ${r.receipt.transactionHash}`)
      return 0
    }
    const runRoot = (args.flags['run-root'] as string | undefined) ?? keys.runRoot
    const manifestHash = tm ? toHex0x(sha256(new Uint8Array(readFileSync(tm)))) : ((args.flags['manifest-hash'] as string | undefined) ?? keys.manifestHash)
    if (!runRoot) throw new UsageError(`--run-root is needed: ${file} carries no ${RUN_ROOT_KEY}`)
    if (!manifestHash) throw new UsageError(`--manifest-hash or --training-manifest is needed: ${file} carries no ${MANIFEST_HASH_KEY}`)
    const sum = datasets.reduce((s, x) => s + x.weightBps, 0)
    if (sum !== 10000) throw new InvalidParameterError('dataset', stringList(args.flags.dataset).join(' '), `weights summing to 10000 basis points (100%), not ${sum}`)
    for (const x of datasets) if (!(await ds.isDatasetRegistered(c, d, x.root))) throw new ChainError(`dataset ${x.root} is not registered`, { details: 'register it first: tessera data add' })
    const record = { manifestHash: manifestHash.toLowerCase() as Hex, runRoot: runRoot.toLowerCase() as Hex, datasets }
    const r = await ds.registerTrainedModel(c, d, { modelRoot, ...proof, arithVersion, record })
    console.log(`registered model ${modelRoot} with its training record in tx ${r.receipt.transactionHash} (${r.gasUsed} gas)`)
    console.log(`  manifest hash  ${record.manifestHash}`)
    console.log(`  run root       ${record.runRoot}`)
    for (const x of datasets) console.log(`  dataset        ${x.root} ${(x.weightBps / 100).toFixed(2)}%`)
    return 0
  },
}

export const lineageCommands: Command[] = [register, lineage]
