/**
 * Network job benchmarks (issue 8), with real nodes (`startNode`, src/node/node.ts) in this
 * process on an embedded chain served over JSON-RPC on 127.0.0.1 and a tiny synthesized model:
 *
 * latency: one job over the p2p job path (requestJob -> libp2p, job protocol 1.4.0 on the stream
 *   kept from the client's previous job -> serveJobs: request signature, local checks, the engine,
 *   tokens several to a write, `end` and the signed receipt (with the tokens, for an answer within
 *   TOKEN_FLUSH_MS), the client's check of the receipt; the call returns there, the
 *   acknowledgement and `reserve` follow) against the same job as a direct engine call
 *   (`generate`); the overhead is the difference of the medians. The client's marks say where the time goes. `--fresh-stream`: every
 *   job opens its own stream (the first job to a provider, or one more than 20 s after the last).
 * throughput: jobs per second with 32 concurrent clients (32 accounts, one host each) on one
 *   provider of capacity 32.
 * slash: wall time from a job served by a `--cheat silu` provider to its stake being slashed,
 *   with a provider node and an auditor node ticking every 100 ms (claim after 1 s, the audit draw
 *   from the devnet beacon, the replay, the whole game).
 *
 * By default everything shares one Node thread (provider, clients, auditor, chain), so these are
 * upper bounds for the protocol's own cost on one core; with `--chain process` the chain runs in a
 * process of its own (bench/chainProcess.ts), as a remote JSON-RPC node would; with `--provider
 * process` (latency only) the provider node does too (bench/providerProcess.ts), as deployed: the
 * client's and the provider's CPU no longer add up on one thread. `--gap-ms N` waits N ms between
 * jobs; `--profile FILE` writes a CPU profile of the measured latency runs (this process's),
 * `--profile-provider FILE` the provider process's (with `--provider process`).
 * `--ab signature-after|transport|secp`: two variants in turn, job by job, each with its own overhead and
 * marks (abVariants; `secp`: the native secp256k1 on and off, in this process and the provider's). `--protocol 1.3.0`: the client dials the previous job protocol (the request's signature checked
 * before the engine starts) instead of 1.4.0 (the signature follows the request, the engine starts
 * on its content; with a local key the client still signs first unless `--signature-after`).
 * Usage: node --import tsx bench/networkJobs.ts [--only latency,throughput,slash --runs 20 --chain inline|process --provider inline|process --gap-ms 0 --fresh-stream --protocol 1.3.0|ab --ab signature-after|transport|secp --signature-after --rounds 3 --profile FILE]
 */
import '../src/p2p/polyfill.js'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Hex } from 'viem'
import { registerAuditor } from '../src/chain/actions/audits.js'
import { deposit, getStake, stake } from '../src/chain/actions/settlement.js'
import { type Deployment, deployTessera, saveDeployment } from '../src/chain/client.js'
import { type ChainClients, connectClients } from '../src/chain/evm/clients.js'
import { createEmbeddedChain } from '../src/chain/evm/edr.js'
import { useNativeSecp } from '../src/chain/evm/secp.js'
import { serveJsonRpc } from '../src/chain/evm/server.js'
import { encodeGguf } from '../src/engine/gguf/write.js'
import { synthModel } from '../src/engine/model/synth.js'
import { jobOfferOf } from '../src/cli/commands/request.js'
import { JOB_PROTOCOL_1_3 } from '../src/node/jobProtocol.js'
import { type TesseraNode, startNode } from '../src/node/node.js'
import { type JobOffer, randomNonces, requestJob } from '../src/node/requestJob.js'
import { createHost, type Host } from '../src/p2p/host.js'
import { identityFromKey } from '../src/p2p/identity.js'
import { tcpWriteJoin } from '../src/p2p/tcpWrites.js'
import { yamuxWindowPolicy } from '../src/p2p/yamuxWindow.js'
import { writeGgufFile } from '../src/runtime/ggufFile.js'
import { generate, jobParams, loadModel } from '../src/runtime/model.js'
import { loadNativeSecp, nativeSecpUnavailable } from '../src/runtime/native/secp.js'
import { toHex } from '../src/trace/merkle.js'
import { arg, median } from './util.js'

const COIN = 10n ** 18n
// the clients sign and check as `tessera request` does: with the native secp256k1 when it is built
useNativeSecp(loadNativeSecp())
const PROMPT = [1, 15, 7, 22]
const PARAMS = jobParams({ maxTokens: 8 })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const rpcCalls = new Map<string, number>()

type Net = { rpc: string; d: Deployment; at(i: number): ChainClients; keys: Hex[]; dir: string; modelPath: string; root: Hex; close(): Promise<void> }

async function network(accounts: number): Promise<Net> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-net-'))
  const modelPath = join(dir, 'tiny.gguf')
  writeGgufFile(modelPath, encodeGguf(synthModel({ preset: 'tiny', type: 'q8_0', seed: 3 })))
  const m = await loadModel(modelPath)
  const root = `0x${toHex(m.modelRoot)}` as Hex
  m.close()
  const deploy = (c: ChainClients) =>
    deployTessera(c, {
      settlement: { challengeWindow: 600n, auditBps: 10_000, premiumBps: 500 },
      audits: { beaconDelay: 3n, commitWindow: 120n, revealWindow: 120n, canaryWindow: 30n, answerWindow: 120n },
    })
  if (arg('chain', 'inline') === 'process') {
    // the chain on its own process (bench/chainProcess.ts), as a remote JSON-RPC node would be: its
    // execution and HTTP serving are not on the nodes' thread
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'chainProcess.ts'), String(accounts)], { stdio: ['pipe', 'pipe', 'inherit'] })
    const line = await new Promise<string>((resolve, reject) => {
      let buf = ''
      child.stdout.on('data', (b: Buffer) => {
        buf += b.toString()
        if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')))
      })
      child.once('exit', (code) => reject(new Error(`the chain process exited with ${code}`)))
    })
    const { rpc, chainId, keys } = JSON.parse(line) as { rpc: string; chainId: number; keys: Hex[] }
    const at = (i: number) => connectClients({ transport: rpc, chainId, privateKey: keys[i] })
    const d = await deploy(at(0))
    return {
      rpc, d, at, keys, dir, modelPath, root,
      async close() {
        child.stdin.end()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }
  const chain = await createEmbeddedChain({ accounts })
  const at = (i: number) => connectClients({ transport: chain.provider, chainId: chain.chainId, privateKey: chain.accounts[i].privateKey })
  const d = await deploy(at(0))
  // JSON-RPC requests served, by method (the inline chain only): what the nodes ask of the chain per job
  const counted = {
    request: (a: { method: string; params?: unknown }) => {
      rpcCalls.set(a.method, (rpcCalls.get(a.method) ?? 0) + 1)
      return chain.provider.request(a as never)
    },
  }
  const srv = await serveJsonRpc(counted as typeof chain.provider, { port: 0 })
  // blocks keep coming (chain time follows the clock, as on a real chain)
  const miner = setInterval(() => void chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => {}), 1000)
  return {
    rpc: srv.url, d, at, keys: chain.accounts.map((a) => a.privateKey), dir, modelPath, root,
    async close() {
      clearInterval(miner)
      await srv.close()
      await chain.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A provider node; `pollMs` 100 (its chain loops 10 times a second) where the bench waits on them (slash), else the node's default. */
async function provider(net: Net, i: number, over: { cheat?: 'silu'; capacity?: number; pollMs?: number } = {}): Promise<TesseraNode> {
  return startNode({
    dataDir: join(net.dir, `node${i}`), roles: new Set(['provider']), models: [net.modelPath], rpc: net.rpc, deployment: net.d, passphrase: 'bench',
    importKey: net.keys[i], stake: 1000n * COIN, price: 1000n, capacity: over.capacity ?? 32, cheat: over.cheat, pollMs: over.pollMs, claimAfterSec: 1,
  })
}

async function clientHost(net: Net, i: number, bootstrap: string[]): Promise<{ host: Host; c: ChainClients }> {
  const c = net.at(i)
  await deposit(c, net.d, { amount: COIN })
  const host = await createHost({ privateKey: identityFromKey(net.keys[i]).libp2pKey, bootstrap, limits: { inboundConnectionThreshold: 10_000 } })
  return { host, c }
}

/** The provider as the client sees it: in this process (a TesseraNode) or in its own (bench/providerProcess.ts). */
type ProviderHandle = { address: Hex; peerId: string; addrs(): string[]; stop(): Promise<void>; cpuMs?(): Promise<number>; command?(line: string): Promise<void> }

/** A provider node in a child process (bench/providerProcess.ts), staked and serving like `provider(net, i)`. */
async function providerProcess(net: Net, i: number): Promise<ProviderHandle> {
  const deploymentFile = join(net.dir, 'deployment.json')
  saveDeployment(deploymentFile, net.d)
  const opts = { dataDir: join(net.dir, `node${i}`), model: net.modelPath, rpc: net.rpc, deploymentFile, key: net.keys[i], capacity: 32, stake: String(1000n * COIN), price: '1000' }
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'providerProcess.ts'), JSON.stringify(opts)], { stdio: ['pipe', 'pipe', 'inherit'] })
  // one JSON line per answer, in order
  const waiting: ((line: string) => void)[] = []
  let buf = ''
  child.stdout.on('data', (b: Buffer) => {
    buf += b.toString()
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      waiting.shift()?.(line)
    }
  })
  const next = () => new Promise<string>((resolve) => waiting.push(resolve))
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the provider process exited with ${code}`))))
  exited.catch(() => {})
  const hello = JSON.parse(await Promise.race([next(), exited])) as { address: Hex; peerId: string; addrs: string[] }
  return {
    ...hello,
    addrs: () => hello.addrs,
    async command(line) {
      const answer = next()
      child.stdin.write(`${line}\n`)
      await Promise.race([answer, exited])
    },
    async cpuMs() {
      const answer = next()
      child.stdin.write('cpu\n')
      return (JSON.parse(await Promise.race([answer, exited])) as { cpuMs: number }).cpuMs
    },
    async stop() {
      const gone = new Promise((r) => child.once('exit', r))
      child.stdin.end()
      await gone
    },
  }
}

/** Where one job's time goes, client side (ms since the call): stream open, each message received, the end. */
type Marks = { variant?: string; dial?: number; open?: number; accepted?: number; first?: number; last?: number; done?: number; end?: number }
const marks: Marks[] = []

/** One job's settings in an A/B run: which protocol the client dials, whether it sends the signature after the request. */
type Variant = { label: string; protocol: string; signatureAfter?: boolean }
const defaultVariant = (): Variant => ({
  label: 'default', protocol: arg('protocol', '1.4.0'),
  // --signature-after: on 1.4.0 the request goes before its signature even with a local key (requestJob's default: only for wallets)
  signatureAfter: process.argv.includes('--signature-after') ? true : undefined,
})

/**
 * The variants a latency run takes in turn: one (the flags' settings), or with `--protocol ab`
 * 1.4.0 and 1.3.0, with `--ab signature-after` the 1.4.0 request signed before it is sent and sent
 * before it is signed, with `--ab transport` (the provider in this process: both ends of the
 * connection are) this process's libp2p with and without src/p2p's transport changes (yamux window
 * updates once half a window is used, one socket write per Noise message), with `--ab secp` the
 * native secp256k1 (src/runtime/native/secp.cc) on and off at both ends (the client here, the provider
 * here or by its process's `secp on|off`).
 */
function abVariants(p: ProviderHandle, providerElsewhere: boolean): (Variant & { before?(): void | Promise<void>; after?(): void })[] {
  const d = defaultVariant()
  const ab = arg('ab', '')
  if (arg('protocol', '1.4.0') === 'ab') return [{ ...d, label: 'protocol 1.4.0', protocol: '1.4.0' }, { ...d, label: 'protocol 1.3.0', protocol: '1.3.0' }]
  if (ab === 'signature-after') return [{ ...d, label: 'signed first', signatureAfter: false }, { ...d, label: 'signature after', signatureAfter: true }]
  if (ab === 'transport') {
    if (providerElsewhere) throw new Error('--ab transport switches this process\'s libp2p: run it with the provider inline (no --provider process)')
    const set = (on: boolean) => () => void (yamuxWindowPolicy.enabled = tcpWriteJoin.enabled = on)
    return [{ ...d, label: 'transport changes on', before: set(true), after: set(true) }, { ...d, label: 'transport changes off', before: set(false), after: set(true) }]
  }
  if (ab === 'secp') {
    const native = loadNativeSecp()
    if (!native) throw new Error(`--ab secp needs the native secp256k1: ${nativeSecpUnavailable()}`)
    const set = (on: boolean) => async () => {
      useNativeSecp(on ? native : undefined)
      if (providerElsewhere) await p.command!(`secp ${on ? 'on' : 'off'}`)
    }
    return [{ ...d, label: 'native secp256k1', before: set(true), after: () => void set(true)() }, { ...d, label: 'viem/noble secp256k1', before: set(false), after: () => void set(true)() }]
  }
  if (ab !== '') throw new Error(`--ab takes signature-after, transport or secp, not ${ab}`)
  return [d]
}

const ask = async (net: Net, p: ProviderHandle, cl: { host: Host; c: ChainClients }, seed: bigint, mark = false, v: Variant = defaultVariant()) => {
  const protocol = v.protocol
  const offer = { offer: { provider: p.address, peerId: p.peerId, addrs: p.addrs(), models: [{ root: net.root, pricePerToken: '1000' }] } }
  const dialled = jobOfferOf(cl.host, offer as never, net.root)
  // --protocol 1.3.0: the previous version (the signature in the request, checked before the engine starts)
  const target = offer.offer.addrs.find((a) => a.endsWith(`/p2p/${p.peerId}`)) ?? p.peerId
  const o: JobOffer = protocol === '1.3.0' ? { ...dialled, connect: (signal) => cl.host.dial(target, JOB_PROTOCOL_1_3, { signal }) } : dialled
  const t0 = performance.now()
  const m: Marks = {}
  const fresh = process.argv.includes('--fresh-stream')
  const traced: JobOffer = !mark && !fresh ? o : {
    ...o,
    async connect(signal) {
      m.dial = performance.now() - t0
      const conn = await o.connect(signal)
      m.open = performance.now() - t0
      return {
        ...conn, remotePeer: conn.remotePeer, send: (x) => conn.send(x), close: () => conn.close(), abort: (e) => conn.abort(e),
        // --fresh-stream: not handed back, so the next job opens a new stream
        release: fresh ? undefined : conn.release,
        async recv(ms) {
          const x = (await conn.recv(ms)) as { t?: string } | undefined
          const at = performance.now() - t0
          if (x?.t === 'accepted') m.accepted = at
          else if (x?.t === 'token') m.first ??= at
          else if (x?.t === 'end') m.last = at
          else if (x?.t === 'done') m.done = at
          return x
        },
      }
    },
  }
  const r = await requestJob({ clients: cl.c, deployment: net.d, offers: [traced], modelRoot: net.root, prompt: PROMPT, params: PARAMS, seed, nonces: randomNonces(), maxTries: 1, signatureAfter: v.signatureAfter })
  if (mark) marks.push({ ...m, variant: v.label, end: performance.now() - t0 })
  return r
}

/** Starts V8's CPU profiler on this thread; `stop()` returns the profile. */
async function startProfile(): Promise<{ stop(): Promise<object> }> {
  const session = new Session()
  session.connect()
  const post = (method: string, params?: object) =>
    new Promise<{ profile?: object }>((resolve, reject) => session.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r as { profile?: object }))))
  await post('Profiler.enable')
  await post('Profiler.setSamplingInterval', { interval: 200 })
  await post('Profiler.start')
  return {
    async stop() {
      const { profile } = await post('Profiler.stop')
      session.disconnect()
      return profile ?? {}
    },
  }
}

/** CPU time of this process (all its threads: the chain's included), ms. */
const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

async function benchLatency(): Promise<void> {
  const runs = Number(arg('runs', '20'))
  // ms between one job's return and the next call: with 0 the provider's work after `done` (the
  // reservation mined, the ack checked and stored) runs into the next job, as for a client that
  // sends jobs back to back
  const gapMs = Number(arg('gap-ms', '0'))
  const net = await network(4)
  const separate = arg('provider', 'inline') === 'process'
  const p: ProviderHandle = separate ? await providerProcess(net, 1) : await provider(net, 1)
  const cl = await clientHost(net, 2, p.addrs())
  const model = await loadModel(net.modelPath)
  try {
    const direct: number[] = []
    const p2p: number[] = []
    const cpu = { direct: [] as number[], p2p: [] as number[] }
    for (let i = 0; i < 3; i++) await ask(net, p, cl, 0n).catch(() => {}) // warm up: connection, JIT, the signers' cached keys
    // the node's own background (its chain polling every pollMs, the view's refresh, blocks mined) with no job running
    await sleep(1000)
    const idle0 = cpuMs()
    const providerIdle0 = await p.cpuMs?.()
    const idleAt = performance.now()
    await sleep(2000)
    const idleRate = (cpuMs() - idle0) / 2000
    const providerIdleRate = providerIdle0 === undefined ? undefined : ((await p.cpuMs!()) - providerIdle0) / (performance.now() - idleAt)
    const load0 = loadavg()[0]
    const runsAt = performance.now()
    // --profile FILE: a V8 CPU profile of the measured runs only (open in Chrome DevTools)
    const profile = arg('profile', '') ? await startProfile() : undefined
    // --profile-provider FILE (with --provider process): the provider process's CPU profile of the same runs
    const providerProfile = arg('profile-provider', '')
    if (providerProfile) await p.command!('profile-start')
    const providerCpu0 = await p.cpuMs?.()
    const variants = abVariants(p, separate)
    const variantOf: string[] = []
    for (let i = 0; i < runs; i++) {
      let c = cpuMs()
      let t = performance.now()
      generate(model, { prompt: PROMPT, seed: 0n, ...PARAMS })
      direct.push(performance.now() - t)
      cpu.direct.push(cpuMs() - c)
      if (gapMs > 0) await sleep(gapMs)
      c = cpuMs()
      t = performance.now()
      // A/B (--protocol ab, --ab): the variants in turn, so each sees the same machine load
      const v = variants[i % variants.length]
      await v.before?.()
      await ask(net, p, cl, 0n, true, v)
      p2p.push(performance.now() - t)
      cpu.p2p.push(cpuMs() - c)
      variantOf.push(v.label)
      if (gapMs > 0) await sleep(gapMs)
    }
    const runsMs = performance.now() - runsAt
    const providerCpu = providerCpu0 === undefined ? undefined : ((await p.cpuMs!()) - providerCpu0) / runs
    if (providerProfile) await p.command!(`profile-stop ${providerProfile}`)
    if (profile) writeFileSync(arg('profile', ''), JSON.stringify(await profile.stop()))
    const [md, mp] = [median(direct), median(p2p)]
    const where = `provider ${separate ? 'in its own process' : 'in this process'}, chain ${arg('chain', 'inline') === 'process' ? 'in its own process' : 'in this process'}`
    console.log(`| ${PARAMS.maxTokens} tokens, ${runs} runs, gap ${gapMs} ms, ${where}, protocol ${arg('protocol', '1.4.0')}, load ${load0.toFixed(1)}-${loadavg()[0].toFixed(1)} | direct engine ${md.toFixed(1)} ms | p2p job ${mp.toFixed(1)} ms | overhead ${(mp - md).toFixed(1)} ms (median) |`)
    const [cd, cp] = [median(cpu.direct), median(cpu.p2p)]
    console.log(`| CPU time during the call (median, this process's threads) | direct engine ${cd.toFixed(1)} ms | p2p job ${cp.toFixed(1)} ms | overhead ${(cp - cd).toFixed(1)} ms | with no job: ${(idleRate * 100).toFixed(1)} ms per 100 ms |`)
    if (providerCpu !== undefined) {
      // less what the provider burns with no job (chain polling, the view's refresh) over the runs' wall time
      const idle = ((providerIdleRate ?? 0) * runsMs) / runs
      console.log(`| provider process CPU per job (mean over the runs) | ${providerCpu.toFixed(1)} ms | less its idle rate (${((providerIdleRate ?? 0) * 100).toFixed(1)} ms per 100 ms) | ${(providerCpu - idle).toFixed(1)} ms | |`)
    }
    for (const v of variants) {
      const ms = marks.filter((x) => x.variant === v.label)
      const at = (k: Exclude<keyof Marks, 'variant'>) => median(ms.map((x) => x[k] ?? Number.NaN)).toFixed(1)
      const label = variants.length === 1 ? '' : `, ${v.label} (${ms.length} interleaved runs)`
      if (variants.length > 1) {
        // each variant's jobs against the direct engine calls made just before them
        const mine = (xs: number[]) => xs.filter((_, i) => variantOf[i] === v.label)
        const [vd, vp, vcd, vcp] = [median(mine(direct)), median(mine(p2p)), median(mine(cpu.direct)), median(mine(cpu.p2p))]
        console.log(`| ${v.label} | direct engine ${vd.toFixed(1)} ms | p2p job ${vp.toFixed(1)} ms | overhead ${(vp - vd).toFixed(1)} ms (median) | CPU over the engine's ${(vcp - vcd).toFixed(1)} ms |`)
      }
      console.log(`| client's marks (median ms since the call${label}) | dial starts ${at('dial')} | stream open ${at('open')} | accepted ${at('accepted')} | first token ${at('first')} | end ${at('last')} | done ${at('done')} | returned ${at('end')} |`)
    }
    for (const v of variants) v.after?.()
    // where the overhead goes: one chain read and one transaction over the same JSON-RPC (the provider does several reads and one reserve per job)
    const rpcClient = connectClients({ transport: net.rpc, chainId: net.d.chainId, privateKey: net.keys[2] })
    const reads: number[] = []
    const txs: number[] = []
    for (let i = 0; i < runs; i++) {
      let t = performance.now()
      await getStake(rpcClient, net.d, p.address)
      reads.push(performance.now() - t)
      t = performance.now()
      await deposit(rpcClient, net.d, { amount: 1n })
      txs.push(performance.now() - t)
    }
    console.log(`| for scale | one chain read ${median(reads).toFixed(1)} ms | one transaction (sent + receipt) ${median(txs).toFixed(1)} ms | |`)
  } finally {
    model.close()
    await cl.host.stop()
    await p.stop()
    await net.close()
  }
}

async function benchThroughput(): Promise<void> {
  const rounds = Number(arg('rounds', '3'))
  const clients = Number(arg('clients', '32'))
  const net = await network(clients + 3)
  const p = await provider(net, 1, { capacity: clients })
  // no bootstrap list: each job dials the provider's address, and 32 hosts in one process would
  // each re-check their peers on a timer (libp2p's getPeers re-parses every peer id: a square root
  // per peer), background work of 32 machines billed to this one
  const cls = await Promise.all(Array.from({ length: clients }, (_, i) => clientHost(net, i + 2, [])))
  try {
    // warm up one by one: each client's connection is open before the concurrent part (a provider
    // takes at most 16 inbound connections still upgrading at once: host.ts DEFAULT_LIMITS)
    // twice: the second job's checks build the signers' precomputed keys (src/chain/evm/secp.ts), once per signer, not per job
    for (const cl of cls) for (let w = 0; w < 2; w++) await ask(net, p, cl, 0n).catch(() => {})
    let failed = 0
    marks.length = 0
    const load0 = loadavg()[0]
    const served0 = (await p.status()).jobs.served
    rpcCalls.clear()
    const profile = arg('profile', '') ? await startProfile() : undefined
    const cpu0 = cpuMs()
    const t = performance.now()
    let done = 0
    await Promise.all(cls.map(async (cl) => {
      for (let r = 0; r < rounds; r++) {
        await ask(net, p, cl, BigInt(r), true).then(
          () => done++,
          (e) => {
            failed++
            if (failed === 1) console.log(`first failure: ${e.details ?? e.message}`)
          },
        )
      }
    }))
    const s = (performance.now() - t) / 1000
    // the provider reserves after each acknowledgement: wait (bounded) until every job is served
    // (reservation mined, transcript stored), so its chain work is in the CPU and the settled rate
    for (let i = 0; i < 3000 && (await p.status()).jobs.served < served0 + done; i++) await sleep(10)
    const settledS = (performance.now() - t) / 1000
    const settled = (await p.status()).jobs.served - served0
    if (profile) writeFileSync(arg('profile', ''), JSON.stringify(await profile.stop()))
    const cpuPerJob = (cpuMs() - cpu0) / Math.max(1, done)
    const where = arg('chain', 'inline') === 'process' ? 'chain in its own process' : 'chain in this process'
    console.log(`| ${clients} concurrent clients x ${rounds} jobs of ${PARAMS.maxTokens} tokens, ${where} | ${done} jobs in ${s.toFixed(1)} s (${failed} failed) | ${(done / s).toFixed(1)} jobs/s answered; ${settled} served (reserved, stored) in ${settledS.toFixed(1)} s: ${(settled / settledS).toFixed(1)} jobs/s | CPU ${cpuPerJob.toFixed(1)} ms per job until served (this process: clients, provider${arg('chain', 'inline') === 'process' ? '' : ', chain'}) | load ${load0.toFixed(1)}-${loadavg()[0].toFixed(1)} |`)
    const at = (k: Exclude<keyof Marks, 'variant'>) => median(marks.map((x) => x[k] ?? Number.NaN)).toFixed(1)
    console.log(`| client's marks (median ms since the call) | accepted ${at('accepted')} | end ${at('last')} | done ${at('done')} | returned ${at('end')} |`)
    if (rpcCalls.size > 0) {
      const per = [...rpcCalls].sort((a, b) => b[1] - a[1]).map(([m, n]) => `${m} ${(n / Math.max(1, settled)).toFixed(2)}`)
      console.log(`| JSON-RPC requests per served job (inline chain; all nodes) | ${per.join(', ')} |`)
    }
  } finally {
    await Promise.all(cls.map((cl) => cl.host.stop()))
    await p.stop()
    await net.close()
  }
}

async function benchSlash(): Promise<void> {
  const net = await network(5)
  const cheater = await provider(net, 1, { cheat: 'silu', pollMs: 100 })
  const a = net.at(3)
  await stake(a, net.d, { role: 'auditor', amount: COIN })
  await registerAuditor(a, net.d)
  const auditor = await startNode({
    dataDir: join(net.dir, 'auditor'), roles: new Set(['auditor']), models: [net.modelPath], rpc: net.rpc, deployment: net.d, passphrase: 'bench',
    importKey: net.keys[3], pollMs: 100, bootstrap: cheater.addrs(),
  })
  const cl = await clientHost(net, 2, cheater.addrs())
  try {
    const before = await getStake(net.at(0), net.d, cheater.address)
    const t = performance.now()
    await ask(net, cheater, cl, 0n)
    const served = performance.now() - t
    for (let i = 0; i < 3000; i++) {
      const s = await getStake(net.at(0), net.d, cheater.address)
      if (s.active < before.active) break
      await sleep(100)
    }
    const s = await getStake(net.at(0), net.d, cheater.address)
    const total = (performance.now() - t) / 1000
    console.log(`| cheated job served in ${served.toFixed(0)} ms | slashed ${s.active < before.active ? 'yes' : 'NO (timed out)'} ${total.toFixed(1)} s after the request (claim after 1 s, beacon delay 3 s, ticks every 100 ms) |`)
  } finally {
    await cl.host.stop()
    await auditor.stop()
    await cheater.stop()
    await net.close()
  }
}

const SECTIONS = [
  { name: 'latency', what: 'p2p job path vs a direct engine call', run: benchLatency },
  { name: 'throughput', what: 'jobs per second with 32 concurrent clients', run: benchThroughput },
  { name: 'slash', what: 'wall time from a cheated job to the slash', run: benchSlash },
]
const only = arg('only', SECTIONS.map((s) => s.name).join(',')).split(',')
console.log(`network job bench, ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`)
for (const s of SECTIONS.filter((x) => only.includes(x.name))) {
  console.log(`\n## ${s.name}: ${s.what}`)
  await s.run()
}
process.exit(0)
