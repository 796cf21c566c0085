/**
 * `tessera data add FILES...` builds a dataset (src/data/dataset.ts: a Merkle root over the files
 * and a manifest with licence, source, contributors and their shares), writes the manifest and
 * registers it in DatasetRegistry (docs/DATA.md "On chain"); `tessera data withdraw MODEL_ROOT`
 * withdraws a contributor's part of a trained model's data share. Like the other chain commands
 * they talk to the local devnet (`tessera chain start`) unless given --rpc and --key.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { basename, extname, join, relative, sep } from 'node:path'
import { InvalidParameterError } from '../../errors.js'
import { type Command, type ParsedArgs, stringList, UsageError } from '../args.js'
import { checkInputFile, checkOutPath } from '../files.js'
import { load } from '../lazy.js'
import { ChainError, connect, connFlags } from './chain.js'

/** `ADDR:SHARE`: SHARE in basis points (1..10000) or a percentage with up to two decimals (`60%`, `12.5%`). */
export function parseContributor(raw: string): { address: string; shareBps: number } {
  const m = /^(0x[0-9a-fA-F]{40}):(\d+(?:\.\d{1,2})?%|\d+)$/.exec(raw.trim())
  if (!m) throw new InvalidParameterError('contributor', raw, 'ADDRESS:SHARE, SHARE in basis points (1..10000) or a percentage such as 60%')
  const share = m[2].endsWith('%') ? Math.round(Number(m[2].slice(0, -1)) * 100) : Number(m[2])
  if (!(share >= 1 && share <= 10000)) throw new InvalidParameterError('contributor', raw, 'a share from 1 to 10000 basis points (0.01% to 100%)')
  return { address: m[1], shareBps: share }
}

/** The files of `paths` in order (a folder: its files, recursively, sorted by name), each named by its path with `/`. */
export function collectFiles(paths: readonly string[]): { name: string; path: string }[] {
  const out: { name: string; path: string }[] = []
  const walk = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false })
    if (st?.isDirectory()) {
      for (const e of readdirSync(p).sort()) walk(join(p, e))
      return
    }
    checkInputFile(p)
    const rel = relative(process.cwd(), p)
    const name = (rel.startsWith('..') ? p : rel).split(sep).join('/')
    out.push({ name, path: p })
  }
  for (const p of paths) walk(p)
  return out
}

const add: Command = {
  name: 'data add',
  summary: 'Build a dataset from files (Merkle root and manifest), write the manifest and register it on chain',
  usage: 'data add FILES... --licence ID --contributor ADDR:SHARE [--contributor ...] [--name N] [--source S] [--out FILE] [--offline] [--rpc URL --key FILE]',
  positionals: Number.POSITIVE_INFINITY,
  flags: {
    licence: { type: 'string', description: 'SPDX licence id or expression (e.g. CC-BY-4.0), or public-domain' },
    contributor: { type: 'string', multiple: true, description: 'ADDRESS:SHARE, the share in basis points or as a percentage (60%); all shares sum to 10000 (100%)' },
    name: { type: 'string', description: "the dataset's name (default: the first file's name without extension)" },
    source: { type: 'string', description: 'where the documents come from: a URL, a package@version, a description', default: 'local files' },
    out: { type: 'string', description: 'where to write the manifest (canonical JSON)', default: 'dataset.json' },
    force: { type: 'boolean', description: 'overwrite the --out file if it exists' },
    offline: { type: 'boolean', description: 'write the manifest only; register nothing' },
    ...connFlags,
  },
  async run(args, signal) {
    if (args.positionals.length === 0) throw new UsageError('data add needs FILES (files or folders)')
    const licence = args.flags.licence as string | undefined
    if (!licence) throw new UsageError('data add needs --licence ID (an SPDX licence id, or public-domain)')
    const contributors = stringList(args.flags.contributor).map(parseContributor)
    if (contributors.length === 0) throw new UsageError('data add needs at least one --contributor ADDR:SHARE')
    const out = String(args.flags.out)
    checkOutPath(out, args.flags.force === true)
    const files = collectFiles(args.positionals)
    if (files.length === 0) throw new UsageError(`no files in ${args.positionals.join(', ')}`)
    const offline = args.flags.offline === true
    const [{ buildDataset, encodeManifest, manifestHash }, { toHex0x }] = await load(signal, Promise.all([import('../../data/dataset.js'), import('../../engine/bytes.js')]))
    // Connect first (unless offline): the manifest names its builder, the signer.
    const c = offline ? undefined : await connect(args, signal)
    const name = (args.flags.name as string | undefined) ?? basename(files[0].name, extname(files[0].name))
    const docs = files.map((f) => ({ name: f.name, bytes: new Uint8Array(readFileSync(f.path)) }))
    const manifest = buildDataset(docs, {
      name,
      licence,
      source: String(args.flags.source),
      contributors: contributors.map((x) => ({ address: x.address as `0x${string}`, shareBps: x.shareBps })),
      createdBy: c?.account.address.toLowerCase() ?? 'tessera data add',
    })
    const hash = toHex0x(manifestHash(manifest))
    writeFileSync(out, encodeManifest(manifest))
    const bytes = docs.reduce((s, d) => s + d.bytes.length, 0)
    console.log(`dataset ${manifest.name}: ${docs.length} documents, ${bytes} bytes, licence ${manifest.licence}`)
    console.log(`  root           ${manifest.root}`)
    console.log(`  manifest hash  ${hash} (${out})`)
    for (const x of manifest.contributors) console.log(`  contributor    ${x.address} ${(x.shareBps / 100).toFixed(2)}%`)
    if (!c) {
      console.log('not registered (--offline)')
      return 0
    }
    const [{ loadDeployment }, { getDataset, registerDataset }] = await load(signal, Promise.all([import('../../chain/client.js'), import('../../chain/actions/datasets.js')]))
    const d = loadDeployment(String(args.flags.deployment), c.chain.id)
    const have = await getDataset(c, d, manifest.root)
    if (have) {
      if (have.manifestHash.toLowerCase() === hash) {
        console.log(`already registered with this manifest by ${have.registrant}`)
        return 0
      }
      throw new ChainError(`dataset root ${manifest.root} is registered already, by ${have.registrant} with another manifest (${have.manifestHash})`, {
        details: 'the first registration of a root stands (docs/CHAIN.md "Data provenance"); the same documents under other names or in another order make another root',
      })
    }
    const r = await registerDataset(c, d, { root: manifest.root, manifestHash: hash, licence: manifest.licence, contributors: manifest.contributors })
    console.log(`registered by ${c.account.address} in tx ${r.receipt.transactionHash} (${r.gasUsed} gas)`)
    return 0
  },
}

const withdraw: Command = {
  name: 'data withdraw',
  summary: "Withdraw the signer's part of a trained model's data share (every dataset it contributed to)",
  usage: 'data withdraw MODEL_ROOT [--rpc URL --key FILE]',
  positionals: 1,
  flags: { ...connFlags },
  async run(args: ParsedArgs, signal) {
    const root = args.positionals[0]
    if (!root) throw new UsageError('data withdraw needs a MODEL_ROOT')
    if (!/^0x[0-9a-fA-F]{64}$/.test(root)) throw new InvalidParameterError('model root', root, '0x and 64 hex digits')
    const [{ formatEther }, { loadDeployment }, { getTrainingRecord, withdrawAllData }] = await load(
      signal,
      Promise.all([import('viem'), import('../../chain/client.js'), import('../../chain/actions/datasets.js')]),
    )
    const c = await connect(args, signal)
    const d = loadDeployment(String(args.flags.deployment), c.chain.id)
    const modelRoot = root.toLowerCase() as `0x${string}`
    if (!(await getTrainingRecord(c, d, modelRoot))) throw new ChainError(`model ${modelRoot} has no training record: it pays no data share`)
    const got = await withdrawAllData(c, d, modelRoot)
    if (got.length === 0) {
      console.log(`nothing to withdraw for ${c.account.address} from model ${modelRoot}`)
      return 0
    }
    for (const g of got) console.log(`withdrew ${formatEther(g.amount)} from dataset ${g.datasetIndex} of model ${modelRoot}`)
    return 0
  },
}

export const dataCommands: Command[] = [add, withdraw]
