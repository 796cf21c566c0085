/**
 * `tessera devnet` as a library: a whole Tessera network on 127.0.0.1 from one call. The embedded
 * chain (journaled in DIR/chain, so the next start resumes its balances and contracts) with the
 * contracts deployed under demo audit parameters, the devnet beacon served over drand's HTTP
 * paths, and nodes on funded development accounts: N providers, K cheating providers (`--cheat`),
 * M auditors, and a gateway (an in-process client node with the OpenAI-compatible HTTP API on the
 * network backend, started as `tessera node start --role client,gateway` starts it:
 * src/node/gateway/networkGateway.ts).
 *
 * Providers, cheaters and auditors are child processes of `tessera node start`, not in-process
 * nodes: the engine's token loop and the auditor's replays block their event loop, so in one
 * process a replay would stall every stream and the gateway; as processes they run like separate
 * machines (their own keystore, store, libp2p host and log, reaching the chain over JSON-RPC and
 * each other over TCP), and a stop is a signal to each PID. Cost: each child's start (about 4 s
 * to ready with compiled JS on an idle 2-core machine, tens of seconds through tsx under load),
 * paid in parallel. The devnet itself holds DIR/devnet.pid (one devnet per folder) and
 * DIR/children.json (the nodes' PIDs, so a devnet killed hard has its nodes stopped at the next
 * start).
 *
 * Layout of DIR: chain/ (journal), deployment.json, passphrase (the devnet's, public), model/
 * (the synthesized default model), nodes/NAME/ (keystore.json, store, status.json, node.log).
 * Accounts: the development accounts (src/chain/evm/edr.ts devAccount), fixed per node name so a
 * restart keeps each node's account: 0 deploys, 1 the gateway, 2-11 provider-1..10, 12-16
 * cheater-1..5, 17-21 auditor-1..5, 22 the contributor of the served model's datasets (registered
 * with its training record when one lies beside the file: registerDevnetModel).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { basename, dirname, join, resolve } from 'node:path'
import { type Address, type Hex, toHex } from 'viem'
import { getDataset, registerDataset, registerTrainedModel } from '../chain/actions/datasets.js'
import { isModelRegistered, registerModel } from '../chain/actions/registry.js'
import { deposit, getBalances, getStake } from '../chain/actions/settlement.js'
import { createDevBeacon, type BeaconServer, serveBeacon } from '../chain/beacon.js'
import { DEV_BEACON_SEED, type Deployment, deployTessera, loadDeployment, saveDeployment } from '../chain/client.js'
import { type ChainClients, connectClients } from '../chain/evm/clients.js'
import { createEmbeddedChain, devAccount, type EmbeddedChain } from '../chain/evm/edr.js'
import { serveJsonRpc } from '../chain/evm/server.js'
import type { CheatKind } from '../dispute/cheats.js'
import { buildDataset, type DatasetDocument, manifestHash } from '../data/dataset.js'
import { CorpusMissingError } from '../data/errors.js'
import { type CorpusName, trainingCorpus } from '../data/corpus.js'
import { openDisputeModel } from '../dispute/model.js'
import { toHex0x } from '../engine/bytes.js'
import { encodeGguf } from '../engine/gguf/write.js'
import { sha256 } from '../engine/hash/merkle.js'
import { synthModel } from '../engine/model/synth.js'
import { ARITH_VERSION } from '../engine/version.js'
import { BaseError, InvalidParameterError } from '../errors.js'
import { DEFAULT_MODEL_PATH } from '../runtime/defaultModel.js'
import { writeGgufFile } from '../runtime/ggufFile.js'
import { loadModel, type Model } from '../runtime/model.js'
import { gatewayModelOf, type GatewayModel } from './gateway/backend.js'
import { type NetworkGateway, offersOf, startNetworkGateway } from './gateway/networkGateway.js'
import { Router } from './gateway/routing.js'
import { startNode, type TesseraNode } from './node.js'
import { type NodeStatus, readStatus } from './status.js'

const COIN = 10n ** 18n
/** The devnet's keystore passphrase: public, like the development keys it protects. */
export const DEVNET_PASSPHRASE = 'tessera-devnet'
export const MAX_PROVIDERS = 10
export const MAX_CHEATERS = 5
export const MAX_AUDITORS = 5
const ACCOUNTS = 24
/** Wei per token an honest devnet provider asks, and a cheater (half: it wins the routing until slashed). */
export const PRICE = 10n ** 9n
export const CHEATER_PRICE = PRICE / 2n

export type DevnetRole = 'provider' | 'cheater' | 'auditor'

export type DevnetOptions = {
  dataDir: string
  providers?: number
  auditors?: number
  cheaters?: number
  /** The cheaters' `--cheat` kind (default silu: honest tokens under a false trace). */
  cheat?: CheatKind
  /** GGUF file every provider serves; none: the shipped default model (DEFAULT_MODEL_PATH). */
  model?: string
  /** The gateway's port on 127.0.0.1 (0: a free one). */
  port?: number
  /** The argv that runs the `tessera` CLI (node, its flags, the entry script): children are `[...cli, 'node', 'start', ...]`. */
  cli: string[]
  /** A share of jobs the on-chain audit draw picks, in basis points (default 5000: every other job, visibly). */
  auditBps?: number
  /** Longest wait for the nodes to be up and their offers seen (default 120 s). */
  readyTimeoutMs?: number
  /** Progress and events, one line each. */
  log?: (line: string) => void
  signal?: AbortSignal
}

export type DevnetNode = { name: string; role: DevnetRole; address: Address; dir: string; logFile: string; pid: number }

export type RunningDevnet = {
  /** The OpenAI-compatible base URL (ends in /v1). */
  gatewayUrl: string
  /** The explorer the gateway's node serves (src/node/explorer/). */
  explorerUrl?: string
  rpcUrl: string
  beaconUrl: string
  chainId: number
  dataDir: string
  deploymentFile: string
  deployment: Deployment
  /** Journal entries replayed at start: 0 for a fresh chain. */
  replayed: number
  /** `shipped`: the default model (DEFAULT_MODEL_PATH), not a file the user named. */
  model: { id: string; name: string; path: string; shipped: boolean }
  gatewayAddress: Address
  nodes: DevnetNode[]
  /** Stops the children (SIGTERM, then SIGKILL after a grace), the gateway, the beacon and the chain (idempotent). */
  stop(): Promise<void>
}

/** The devnet cannot start: one line a person can act on. */
export class DevnetError extends BaseError {
  override name = 'DevnetError'
}

const LOCK_FILE = 'devnet.pid'
const CHILDREN_FILE = 'children.json'

/** The command line of a running process (Linux /proc), or undefined. */
function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
  } catch {
    return undefined
  }
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * One devnet per data directory (two would append to one chain journal): DIR/devnet.pid holds the
 * running one's PID; a file left by a process that is gone is taken over. Returns the release.
 */
function lockDataDir(dir: string): () => void {
  const file = join(dir, LOCK_FILE)
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
      return () => {
        if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true })
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const pid = Number(readFileSync(file, 'utf8').trim())
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) && (cmdlineOf(pid) ?? 'devnet').includes('devnet')) {
        throw new DevnetError(`another devnet (pid ${pid}) runs on ${dir}: stop it first, or use another folder`)
      }
      rmSync(file, { force: true })
    }
  }
  throw new DevnetError(`cannot lock ${file}`)
}

/**
 * Nodes a devnet that died without stopping them (killed hard) left running: each PID recorded in
 * DIR/children.json that still runs `node start` on its folder gets SIGTERM, then SIGKILL after
 * 5 s; a PID now used by anything else is left alone.
 */
async function stopLeftovers(dir: string, log: (l: string) => void): Promise<void> {
  let list: { name: string; pid: number }[]
  try {
    list = JSON.parse(readFileSync(join(dir, CHILDREN_FILE), 'utf8'))
  } catch {
    return
  }
  for (const { name, pid } of list) {
    const cmd = cmdlineOf(pid)
    if (!isAlive(pid) || !cmd?.includes(join(dir, 'nodes', name))) continue
    log(`stopping ${name} (pid ${pid}), left running by an earlier devnet`)
    process.kill(pid, 'SIGTERM')
    for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(100)
    if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  }
  rmSync(join(dir, CHILDREN_FILE), { force: true })
}

function portError(port: number, e: NodeJS.ErrnoException): Error {
  if (e.code === 'EADDRINUSE') return new DevnetError(`port ${port} is in use (another devnet or gateway running?)`, { cause: e })
  if (e.code === 'EACCES') return new DevnetError(`port ${port} needs more privileges (ports above 1023 do not)`, { cause: e })
  return e
}

/** Fails if nothing can listen on 127.0.0.1:`port` now. */
function checkPortFree(port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (e: NodeJS.ErrnoException) => reject(portError(port, e)))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()))
  })
}

/** Development account index of a devnet node (stable across restarts). */
export function devnetAccountIndex(role: DevnetRole | 'gateway', i = 1): number {
  if (role === 'gateway') return 1
  if (role === 'provider') return 1 + i
  if (role === 'cheater') return 11 + i
  return 16 + i
}

/** Synthesizes a tiny random-weight model into `dir` once (text is nonsense, receipts are real): for tests that need a second model. */
export function defaultDevnetModel(dir: string): string {
  const path = join(dir, 'tiny-q8_0.gguf')
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true })
    const tmp = `${path}.${process.pid}.tmp`
    writeGgufFile(tmp, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 1 })))
    // renamed into place: a killed start never leaves half a model
    renameSync(tmp, path)
  }
  return path
}

/** The development account paid the data share of the datasets a devnet registers (the record beside a served model). */
export const DATA_CONTRIBUTOR_ACCOUNT = 22

/** Licences of the corpora a training run can name (src/data/corpus.ts): both texts are in the public domain. */
const CORPUS_LICENCE: Record<CorpusName, string> = { 'moby-dick': 'public-domain', sotu: 'public-domain' }

/**
 * The fields of a training run's manifest (train/run.ts RunManifest) the devnet reads: its sources
 * as configured and as recorded, in the same order. Spelled out here because node may not import
 * train (test/layers.test.ts); readRunRecord checks the shape it relies on.
 */
type ManifestLineage = {
  spec: { data: { sources: ({ corpus: CorpusName } | { name: string; files: string[] })[] } }
  data: { name: string; weight: number; origin: string; root: string }[]
}

/** A model's training record as `tessera train` leaves it beside its exports: run.json names the file, manifest.json is the run's manifest. */
type RunRecord = { manifestHash: Hex; runRoot: Hex; manifest: ManifestLineage }

/**
 * The training record beside `modelPath` (DIR/run.json listing this file with this model root, and
 * DIR/manifest.json whose SHA-256 is run.json's manifest hash, as models/default ships them), or a
 * reason there is none. A record that contradicts itself is an error: the devnet would register a
 * lineage that is not the model's.
 */
export function readRunRecord(modelPath: string, modelRoot: Hex): RunRecord | string {
  const dir = dirname(modelPath)
  const runFile = join(dir, 'run.json')
  const manifestFile = join(dir, 'manifest.json')
  if (!existsSync(runFile) || !existsSync(manifestFile)) return `no run.json and manifest.json beside ${modelPath}`
  let run: { manifestHash?: unknown; runRoot?: unknown; models?: { file?: unknown; modelRoot?: unknown }[] }
  let manifest: ManifestLineage
  const bytes = new Uint8Array(readFileSync(manifestFile))
  try {
    run = JSON.parse(readFileSync(runFile, 'utf8'))
    manifest = JSON.parse(new TextDecoder().decode(bytes))
  } catch (e) {
    throw new DevnetError(`${runFile} or ${manifestFile} is not JSON: ${(e as Error).message}`)
  }
  const entry = Array.isArray(run.models) ? run.models.find((m) => m?.file === basename(modelPath)) : undefined
  if (!entry) return `${runFile} does not list ${basename(modelPath)}`
  if (String(entry.modelRoot).toLowerCase() !== modelRoot.toLowerCase()) throw new DevnetError(`${runFile} gives ${basename(modelPath)} the model root ${entry.modelRoot}, the file's is ${modelRoot}`)
  const hash = toHex0x(sha256(bytes))
  if (String(run.manifestHash).toLowerCase() !== hash) throw new DevnetError(`${runFile} names the manifest hash ${run.manifestHash}, ${manifestFile} hashes to ${hash}`)
  if (typeof run.runRoot !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(run.runRoot)) throw new DevnetError(`${runFile} has no run root (0x and 64 hex digits)`)
  const data = manifest.data
  if (!Array.isArray(data) || !Array.isArray(manifest.spec?.data?.sources) || manifest.spec.data.sources.length !== data.length || data.some((x) => typeof x?.root !== 'string'))
    throw new DevnetError(`${manifestFile} is not a training run manifest (its data and spec.data.sources do not match)`)
  return { manifestHash: hash, runRoot: run.runRoot.toLowerCase() as Hex, manifest }
}

/** Source weights as basis points summing to exactly 10,000 (largest remainders take the rounding). */
export function weightsBps(weights: readonly number[]): number[] {
  const total = weights.reduce((s, w) => s + w, 0)
  if (!(total > 0) || weights.some((w) => !(w > 0))) throw new DevnetError(`training source weights ${weights.join(', ')}: each must be > 0`)
  const exact = weights.map((w) => (w * 10_000) / total)
  const out = exact.map(Math.floor)
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i)
  for (let k = 0, left = 10_000 - out.reduce((s, x) => s + x, 0); left > 0; k++, left--) out[order[k].i]++
  return out
}

/**
 * Registers the model the devnet serves, once, with the lineage `tessera model lineage` reads: when
 * a training record lies beside the file (readRunRecord; models/default ships one), each training
 * source is registered in DatasetRegistry as `tessera data add` registers it (the data layer's
 * buildDataset over the run's own documents, whose root must be the one the run recorded; public
 * domain, the devnet's data account DATA_CONTRIBUTOR_ACCOUNT the one contributor), then the model
 * with its training record (ModelRegistry.registerTrained, as `tessera model register --dataset`:
 * the run's weights, manifest hash and run root). Otherwise, or when a corpus the run names is not
 * installed (the corpora are development dependencies), the model alone, as before. Returns what it did.
 */
export async function registerDevnetModel(
  c: ChainClients,
  d: Deployment,
  model: { path: string; root: Hex; name: string },
  log: (line: string) => void,
): Promise<'registered' | 'trained' | 'already'> {
  if (await isModelRegistered(c, d, model.root)) return 'already'
  const rec = readRunRecord(model.path, model.root)
  const datasets: { root: Hex; weightBps: number }[] = []
  let why = typeof rec === 'string' ? rec : ''
  if (typeof rec !== 'string') {
    const sources = rec.manifest.spec.data.sources
    const bps = weightsBps(rec.manifest.data.map((x) => x.weight))
    const contributor = devAccount(DATA_CONTRIBUTOR_ACCOUNT).address.toLowerCase() as Hex
    for (const [i, s] of sources.entries()) {
      const recorded = rec.manifest.data[i]
      if (!('corpus' in s)) {
        why = `training source ${recorded.name} is files, not a corpus the devnet can load`
        break
      }
      let docs: DatasetDocument[]
      try {
        docs = trainingCorpus(s.corpus).documents
      } catch (e) {
        if (!(e instanceof CorpusMissingError)) throw e
        why = `${e.message} (a development dependency)`
        break
      }
      const m = buildDataset(docs, { name: recorded.name, licence: CORPUS_LICENCE[s.corpus], source: recorded.origin, contributors: [{ address: contributor, shareBps: 10_000 }], createdBy: 'tessera devnet' })
      if (m.root !== recorded.root.toLowerCase()) throw new DevnetError(`dataset ${recorded.name}: the installed corpus has the root ${m.root}, the training run recorded ${recorded.root} (another corpus version?)`)
      const hash = toHex0x(manifestHash(m))
      const have = await getDataset(c, d, m.root)
      if (!have) {
        await registerDataset(c, d, { root: m.root, manifestHash: hash, licence: m.licence, contributors: m.contributors })
        log(`registered the dataset ${m.name} (${m.documents.length} documents, root ${m.root.slice(0, 18)}...)`)
      } else if (have.manifestHash.toLowerCase() !== hash) log(`dataset ${m.name} (${m.root.slice(0, 18)}...) was registered already, by ${have.registrant} with another manifest: that registration stands`)
      datasets.push({ root: m.root, weightBps: bps[i] })
    }
  }
  const dm = await openDisputeModel(model.path)
  try {
    const base = { modelRoot: model.root, ...dm.tree.proveConfig(), arithVersion: toHex(ARITH_VERSION, { size: 32 }) }
    if (typeof rec !== 'string' && !why) {
      await registerTrainedModel(c, d, { ...base, record: { manifestHash: rec.manifestHash, runRoot: rec.runRoot, datasets } })
      log(`registered the model ${model.name} (${model.root.slice(0, 18)}...) with its training record (run root ${rec.runRoot.slice(0, 18)}..., ${datasets.length} datasets)`)
      return 'trained'
    }
    await registerModel(c, d, base)
    log(`registered the model ${model.name} (${model.root.slice(0, 18)}...) without a training record: ${why}`)
    return 'registered'
  } finally {
    dm.close()
  }
}

function count(name: string, v: number | undefined, dflt: number, max: number): number {
  const n = v ?? dflt
  if (!Number.isInteger(n) || n < 0 || n > max) throw new InvalidParameterError(name, n, `a whole number from 0 to ${max}`)
  return n
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Starts a devnet; resolves once every node is up and the gateway sees every provider's offer.
 *
 * @example
 *   const net = await startDevnet({ dataDir: '.tessera/devnet', cli: [process.execPath, ...process.execArgv, process.argv[1]], log: console.log })
 *   // POST `${net.gatewayUrl}/chat/completions` ...
 *   await net.stop()
 */
export async function startDevnet(opts: DevnetOptions): Promise<RunningDevnet> {
  const log = opts.log ?? (() => {})
  const nProviders = count('providers', opts.providers, 2, MAX_PROVIDERS)
  const nAuditors = count('auditors', opts.auditors, 1, MAX_AUDITORS)
  const nCheaters = count('cheaters', opts.cheaters, 0, MAX_CHEATERS)
  if (nProviders + nCheaters === 0) throw new InvalidParameterError('providers', 0, 'at least one provider or cheater')
  const auditBps = opts.auditBps ?? 5000
  if (!Number.isInteger(auditBps) || auditBps < 1 || auditBps > 10_000) throw new InvalidParameterError('audit-bps', auditBps, 'a whole number from 1 to 10000')
  const dataDir = resolve(opts.dataDir)
  const readyBy = Date.now() + (opts.readyTimeoutMs ?? 120_000)
  mkdirSync(join(dataDir, 'nodes'), { recursive: true })
  const releaseLock = lockDataDir(dataDir)
  try {
    await stopLeftovers(dataDir, log)
    // before anything starts: a busy port found after the nodes are up wastes their start
    if ((opts.port ?? 8080) !== 0) await checkPortFree(opts.port ?? 8080)
  } catch (e) {
    releaseLock()
    throw e
  }
  const passFile = join(dataDir, 'passphrase')
  if (!existsSync(passFile)) writeFileSync(passFile, `${DEVNET_PASSPHRASE}\n`, { mode: 0o600 })

  // Everything started so far, stopped in reverse on failure or stop().
  const children: { node: DevnetNode; child: ChildProcess; exited: Promise<void> }[] = []
  let chain: EmbeddedChain | undefined
  let rpc: { url: string; close(): Promise<void> } | undefined
  let beaconSrv: BeaconServer | undefined
  let gwNode: TesseraNode | undefined
  let gateway: NetworkGateway | undefined
  let engine: Model | undefined
  const watch = new AbortController()
  let watcher: Promise<void> | undefined
  let heartbeat: Promise<void> | undefined
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      watch.abort()
      await watcher
      await heartbeat
      await gateway?.close().catch(() => {})
      await stopChildren(children, log)
      await gwNode?.stop().catch(() => {})
      engine?.close()
      await beaconSrv?.close().catch(() => {})
      await rpc?.close().catch(() => {})
      await chain?.close().catch(() => {})
      rmSync(join(dataDir, CHILDREN_FILE), { force: true })
      releaseLock()
    })()
    return stopping
  }

  try {
    // ---- model
    const modelPath = opts.model ? resolve(opts.model) : DEFAULT_MODEL_PATH
    if (!existsSync(modelPath)) throw new InvalidParameterError('model', modelPath, 'an existing GGUF file')
    engine = await loadModel(modelPath, { hugePages: true })
    const gm: GatewayModel = gatewayModelOf(engine)

    // ---- chain, contracts, beacon
    chain = await createEmbeddedChain({ dataDir: join(dataDir, 'chain'), accounts: ACCOUNTS })
    const depFile = join(dataDir, 'deployment.json')
    let deployment: Deployment
    const deployer = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[0].privateKey })
    if (chain.replayed > 0 && existsSync(depFile)) {
      deployment = loadDeployment(depFile, chain.chainId)
      // The replayed blocks keep their times; the chain's clock then catches up with the time it was off.
      const behind = Math.floor(Date.now() / 1000) - (await latestBlockTime(chain))
      if (behind > 0) {
        await chain.provider.request({ method: 'evm_setNextBlockTimestamp', params: [toHex(Math.floor(Date.now() / 1000))] })
        await chain.provider.request({ method: 'evm_mine' })
      }
      log(`chain resumed from ${join(dataDir, 'chain')} (${chain.replayed} journal entries replayed${behind > 0 ? `; its clock moved ${behind} s on to now` : ''})`)
    } else {
      log('deploying the contracts on the embedded chain ...')
      // Demo audit parameters: a draw 3 s (one beacon round) after each claim, half the jobs drawn, a 10% audit premium.
      deployment = await deployTessera(deployer, { settlement: { auditBps, premiumBps: 1000 }, audits: { beaconDelay: 3n } })
      saveDeployment(depFile, deployment)
    }
    // Registered here, once: providers starting together would each see it unregistered and race.
    await registerDevnetModel(deployer, deployment, { path: modelPath, root: gm.root, name: gm.name }, log)
    rpc = await serveJsonRpc(chain.provider, { port: 0 })
    heartbeat = mineWhenIdle(chain, watch.signal)
    const b = deployment.params.beacon
    if (!b?.genesisTime || !b.period) throw new DevnetError(`${depFile} names no devnet beacon (deployed before beacons?): remove ${dataDir} to start afresh`)
    beaconSrv = await serveBeacon(createDevBeacon({ seed: DEV_BEACON_SEED, genesisTime: Number(b.genesisTime), period: Number(b.period) }), { port: 0 })
    log(`chain ${rpc.url} (id ${chain.chainId}), beacon ${beaconSrv.url}`)

    // ---- the gateway's node (in this process: it hosts the HTTP API) and its escrow
    const gwKey = devAccount(devnetAccountIndex('gateway')).privateKey
    gwNode = await startNode({
      dataDir: join(dataDir, 'nodes', 'gateway'), roles: new Set(['client']), models: [], rpc: rpc.url, deployment,
      listen: ['/ip4/127.0.0.1/tcp/0'], passphrase: DEVNET_PASSPHRASE, importKey: gwKey, explorerPort: 0,
      log: (l) => appendFileSync(join(dataDir, 'nodes', 'gateway', 'node.log'), `${new Date().toISOString()} ${l}\n`),
    })
    const bootstrap = gwNode.addrs()[0] ?? ''
    const gwClients = connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: gwKey })
    await topUpEscrow(gwClients, deployment, log)

    // ---- providers, cheaters, auditors as child processes
    const specs: { name: string; role: DevnetRole; index: number }[] = [
      ...Array.from({ length: nProviders }, (_, i) => ({ name: `provider-${i + 1}`, role: 'provider' as const, index: devnetAccountIndex('provider', i + 1) })),
      ...Array.from({ length: nCheaters }, (_, i) => ({ name: `cheater-${i + 1}`, role: 'cheater' as const, index: devnetAccountIndex('cheater', i + 1) })),
      ...Array.from({ length: nAuditors }, (_, i) => ({ name: `auditor-${i + 1}`, role: 'auditor' as const, index: devnetAccountIndex('auditor', i + 1) })),
    ]
    log(`starting ${specs.map((s) => s.name).join(', ')} ...`)
    const ready = specs.map((s) => {
      const dir = join(dataDir, 'nodes', s.name)
      mkdirSync(dir, { recursive: true })
      const args = [
        'node', 'start', '--data', dir, '--role', s.role === 'auditor' ? 'auditor' : 'provider', '--model', modelPath, '--rpc', rpc!.url, '--deployment', depFile,
        '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', bootstrap, '--passphrase-file', passFile, '--poll', '250', '--claim-after', '5', '--offer-refresh', '10',
        '--stake', s.role === 'auditor' ? '1' : '10', '--beacon', beaconSrv!.url,
      ]
      // A cheater undercuts the honest price, so the router sends it jobs first, until it is slashed.
      args.push('--price', String(s.role === 'cheater' ? CHEATER_PRICE : PRICE))
      if (s.role === 'cheater') args.push('--cheat', opts.cheat ?? 'silu')
      if (!existsSync(join(dir, 'keystore.json'))) {
        const keyFile = join(dir, 'devnet-account.key')
        writeFileSync(keyFile, `${devAccount(s.index).privateKey}\n`, { mode: 0o600 })
        args.push('--import-key', keyFile)
      }
      const logFile = join(dir, 'node.log')
      const out = createWriteStream(logFile, { flags: 'a' })
      const child = spawn(opts.cli[0], [...opts.cli.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TESSERA_PASSPHRASE: undefined } })
      const node: DevnetNode = { name: s.name, role: s.role, address: devAccount(s.index).address, dir, logFile, pid: child.pid ?? -1 }
      const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
      children.push({ node, child, exited })
      writeFileSync(join(dataDir, CHILDREN_FILE), `${JSON.stringify(children.map((c) => ({ name: c.node.name, pid: c.node.pid })))}\n`)
      let tail = ''
      return new Promise<DevnetNode>((ok, fail) => {
        const onLine = (line: string) => {
          out.write(`${line}\n`)
          tail = `${tail}\n${line}`.slice(-600)
          if (/ ready: /.test(line)) {
            log(`${s.name} ready (${node.address}, pid ${node.pid})`)
            ok(node)
          } else if (/tick failed|a job failed|cannot stake/.test(line)) log(`${s.name}: ${line.replace(/^\S+ /, '')}`)
        }
        for (const stream of [child.stdout!, child.stderr!]) {
          let buf = ''
          stream.setEncoding('utf8').on('data', (d: string) => {
            buf += d
            for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
              onLine(buf.slice(0, i))
              buf = buf.slice(i + 1)
            }
          })
        }
        child.once('exit', (code, sig) => {
          out.end()
          fail(new DevnetError(`${s.name} exited (${sig ?? `code ${code}`}) before it was ready: ${tail.trim().split('\n').at(-1) ?? ''} (see ${logFile})`))
        })
        child.once('error', (e) => fail(new DevnetError(`cannot start ${s.name}: ${e.message}`, { cause: e })))
      })
    })
    const abort = new Promise<never>((_, fail) => {
      const t = setTimeout(() => fail(new DevnetError(`the nodes were not up within ${Math.round((opts.readyTimeoutMs ?? 120_000) / 1000)} s (logs in ${join(dataDir, 'nodes')})`)), Math.max(0, readyBy - Date.now()))
      t.unref()
      opts.signal?.addEventListener('abort', () => fail(opts.signal!.reason), { once: true })
    })
    abort.catch(() => {})
    const nodes = await Promise.race([Promise.all(ready), abort])

    // ---- wait until the gateway sees every provider's offer
    const servers = nodes.filter((n) => n.role !== 'auditor').length
    for (let seen = -1; ; ) {
      const now = offersOf(gwNode, gm.root).length
      if (now !== seen) log(`gateway sees ${now}/${servers} provider offers`)
      seen = now
      if (now >= servers) break
      opts.signal?.throwIfAborted()
      if (Date.now() > readyBy) throw new DevnetError(`the gateway saw ${now} of ${servers} provider offers within the start bound (logs in ${join(dataDir, 'nodes')})`)
      await sleep(200)
    }

    // ---- the gateway, as the gateway role starts it (its router first learns the slashes and audit verdicts of earlier runs)
    // A devnet explores more than the default 10%, so each provider gets measured (and audited) soon.
    const router = new Router({ exploration: 0.25 })
    let started = false
    const onSlash = (who: Address, amount: bigint) => {
      const earlier = !started
      const name = nodes.find((n) => n.address.toLowerCase() === who.toLowerCase())?.name ?? who
      void getStake(gwClients, deployment, who).then(
        (s) => log(`${name} was slashed${earlier ? ' before this start' : ''}: ${formatCoin(amount)} coin (stake now ${formatCoin(s.active)}); the gateway routes no more jobs to it`),
        () => log(`${name} was slashed${earlier ? ' before this start' : ''}: ${formatCoin(amount)} coin; the gateway routes no more jobs to it`),
      )
    }
    gateway = await startNetworkGateway({ node: gwNode, clients: gwClients, deployment, models: [gm], router, port: opts.port ?? 8080, onSlash, log }).catch((e: NodeJS.ErrnoException) => {
      throw portError(opts.port ?? 8080, e)
    })
    started = true
    for (const w of gateway.gateway.warnings) log(w)
    watcher = watchNetwork({ nodes, clients: gwClients, deployment, log, signal: watch.signal })

    return {
      gatewayUrl: `${gateway.url}/v1`, explorerUrl: gwNode.explorerUrl, rpcUrl: rpc.url, beaconUrl: beaconSrv.url, chainId: chain.chainId, dataDir, deploymentFile: depFile, deployment,
      replayed: chain.replayed, model: { id: gm.id, name: gm.name, path: modelPath, shipped: modelPath === DEFAULT_MODEL_PATH }, gatewayAddress: gwClients.account.address, nodes, stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}

async function latestBlockTime(chain: EmbeddedChain): Promise<number> {
  const b = (await chain.provider.request({ method: 'eth_getBlockByNumber', params: ['latest', false] })) as { timestamp: Hex }
  return Number(BigInt(b.timestamp))
}

/**
 * The embedded chain mines on each transaction only, so a quiet chain's latest block grows old,
 * and calls (which run against it) see an old block.timestamp: a beacon round or deadline due by
 * the clock is not due there. Like a real chain's block production, an empty block is mined
 * whenever the latest is 2 s old or more (through the journal, so a replay keeps every block).
 */
async function mineWhenIdle(chain: EmbeddedChain, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      if (Date.now() / 1000 - (await latestBlockTime(chain)) >= 2) await chain.provider.request({ method: 'evm_mine' })
    } catch {
      // the chain is closing
    }
    await sleepUnless(1000, signal)
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((r) => {
    if (signal.aborted) return r()
    const done = () => {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      r()
    }
    const t = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** Keeps the gateway's escrow at 50 coins or more (its jobs' reservations come out of it). */
async function topUpEscrow(c: ChainClients, d: Deployment, log: (l: string) => void): Promise<void> {
  const { escrow } = await getBalances(c, d, c.account.address)
  if (escrow >= 50n * COIN) return
  await deposit(c, d, { amount: 100n * COIN - escrow })
  log(`gateway ${c.account.address} deposited ${(100n * COIN - escrow) / COIN} coin of escrow`)
}

/**
 * Every 2 s until `signal`: tops up the gateway's escrow and logs what changed in the nodes'
 * status files (jobs served, claims, audits, disputes). Slashes are followed by the gateway
 * (startNetworkGateway's onSlash logs them).
 */
async function watchNetwork(o: { nodes: DevnetNode[]; clients: ChainClients; deployment: Deployment; log: (l: string) => void; signal: AbortSignal }): Promise<void> {
  const shown = new Map<string, string>()
  while (!o.signal.aborted) {
    try {
      await topUpEscrow(o.clients, o.deployment, o.log)
      for (const n of o.nodes) {
        let st: NodeStatus
        try {
          st = readStatus(n.dir)
        } catch {
          continue
        }
        const kv = (r: Record<string, number>) =>
          Object.entries(r)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')
        const parts = [
          n.role !== 'auditor' ? `served ${st.jobs.served}` : '',
          st.claims && st.claims.claimed > 0 ? `claimed ${st.claims.claimed}` : '',
          Object.keys(st.audits).length ? `audits: ${kv(st.audits)}` : '',
          Object.keys(st.disputes).length ? `disputes: ${kv(st.disputes)}` : '',
        ].filter(Boolean)
        const line = parts.join('; ')
        if (line && shown.get(n.name) !== line && !(shown.get(n.name) === undefined && line === 'served 0')) o.log(`${n.name}: ${line}`)
        shown.set(n.name, line)
      }
    } catch (e) {
      if (!o.signal.aborted) o.log(`watch: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`)
    }
    await sleepUnless(2000, o.signal)
  }
}

const formatCoin = (wei: bigint) => (Number(wei / 10n ** 14n) / 1e4).toString()

/** SIGTERM to every child by PID, SIGKILL to any still there after 5 s. */
async function stopChildren(children: { node: DevnetNode; child: ChildProcess; exited: Promise<void> }[], log: (l: string) => void): Promise<void> {
  const running = children.filter((c) => c.child.exitCode === null && c.child.signalCode === null)
  for (const c of running) c.child.kill('SIGTERM')
  await Promise.all(
    running.map(async (c) => {
      const late = await Promise.race([c.exited.then(() => false), sleep(5000).then(() => true)])
      if (late) {
        log(`${c.node.name} (pid ${c.node.pid}) did not stop within 5 s: killed`)
        c.child.kill('SIGKILL')
        await c.exited
      }
    }),
  )
}
