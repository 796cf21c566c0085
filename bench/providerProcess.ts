/**
 * A provider node in a process of its own, for benches that measure the p2p job path as deployed
 * (the client and the provider never share a thread): starts `startNode` with the options given as
 * one JSON argument, prints one line of JSON, `{ address, peerId, addrs }`, once it serves, then
 * answers each line `cpu` on stdin with `{ cpuMs }` (this process's CPU time so far); `profile-start`
 * starts V8's CPU profiler and `profile-stop FILE` writes the profile to FILE, `secp on|off` installs or removes
 * the native secp256k1 (chain/evm/secp.ts useNativeSecp; startNode installs it), each answered `{ ok }`.
 * It stops the node when its stdin closes (its parent exited).
 * Usage: node --import tsx bench/providerProcess.ts '{"dataDir":..,"model":..,"rpc":..,"deploymentFile":..,"key":..,"capacity":32}'
 */
import '../src/p2p/polyfill.js'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { createInterface } from 'node:readline'
import type { Hex } from 'viem'
import { loadDeployment } from '../src/chain/client.js'
import { useNativeSecp } from '../src/chain/evm/secp.js'
import { startNode } from '../src/node/node.js'
import { loadNativeSecp } from '../src/runtime/native/secp.js'
import { benchArgs } from './util.js'

const positionals = benchArgs({
  summary: 'A provider node in a process of its own, for benches of the p2p job path: prints { address, peerId, addrs } once serving, answers cpu / profile-start / profile-stop FILE on stdin; stops when stdin closes.',
  usage: 'node --import tsx bench/providerProcess.ts \'{"dataDir":..,"model":..,"rpc":..,"deploymentFile":..,"key":..,"capacity":32}\'',
  positionals: 1,
})

type Options = { dataDir: string; model: string; rpc: string; deploymentFile: string; key: Hex; capacity: number; stake: string; price: string }
const o = JSON.parse(positionals[0] ?? '{}') as Options
for (const k of ['dataDir', 'model', 'rpc', 'deploymentFile', 'key'] as const) if (typeof o[k] !== 'string') throw new Error(`providerProcess: option ${k} is missing`)
const node = await startNode({
  dataDir: o.dataDir, roles: new Set(['provider']), models: [o.model], rpc: o.rpc, deployment: loadDeployment(o.deploymentFile), passphrase: 'bench',
  importKey: o.key, stake: BigInt(o.stake), price: BigInt(o.price), capacity: o.capacity, claimAfterSec: 1,
})
process.stdout.write(`${JSON.stringify({ address: node.address, peerId: node.peerId, addrs: node.addrs() })}\n`)
const session = new Session()
const post = (method: string, params: object = {}) =>
  new Promise<{ profile?: object }>((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r as { profile?: object }))))
const lines = createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  const [cmd, file] = line.trim().split(' ')
  if (cmd === 'cpu') {
    const u = process.cpuUsage()
    process.stdout.write(`${JSON.stringify({ cpuMs: (u.user + u.system) / 1000 })}\n`)
  } else if (cmd === 'profile-start') {
    session.connect()
    await post('Profiler.enable')
    await post('Profiler.setSamplingInterval', { interval: 200 })
    await post('Profiler.start')
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`)
  } else if (cmd === 'secp' && (file === 'on' || file === 'off')) {
    useNativeSecp(file === 'on' ? loadNativeSecp() : undefined)
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`)
  } else if (cmd === 'profile-stop' && file) {
    writeFileSync(file, JSON.stringify((await post('Profiler.stop')).profile ?? {}))
    session.disconnect()
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`)
  }
})
lines.on('close', async () => {
  await node.stop()
  process.exit(0)
})
