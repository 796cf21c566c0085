/**
 * `tessera node start` runs a node (provider, auditor and/or client: src/node/node.ts) until
 * Ctrl-C or SIGTERM; `tessera node status` reads the state the running node writes every few
 * seconds (src/node/status.ts) and says, for a provider, why it may get no work.
 */
import { readFileSync } from 'node:fs'
import type { Hex } from 'viem'
import { CHEAT_KINDS, type CheatKind } from '../../dispute/cheatKinds.js'
import { FileNotFoundError, InvalidParameterError } from '../../errors.js'
import type { Role } from '../../node/node.js'
import { isLive, type NodeStatus, readStatus } from '../../node/status.js'
import { type Command, type ParsedArgs, stringList, UsageError } from '../args.js'
import { load } from '../lazy.js'
import { checkInputFile } from '../files.js'
import { GATEWAY_FLAGS, gatewayConfigOf, startGatewayRole } from './gatewayRole.js'

export const DEFAULT_RPC = 'http://127.0.0.1:8545'
export const DEFAULT_DEPLOYMENT = '.tessera/chain/deployment.json'

function need(a: ParsedArgs, name: string): string {
  const v = a.flags[name]
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing --${name}`, { details: 'see --help' })
  return v
}

/** `--name` as a non-negative amount of coins, in wei. */
export function coinsFlag(a: ParsedArgs, name: string, parseEther: (coins: string) => bigint): bigint | undefined {
  const raw = a.flags[name]
  if (raw === undefined) return undefined
  try {
    const v = parseEther(String(raw))
    if (v < 0n) throw new Error()
    return v
  } catch {
    throw new InvalidParameterError(name, raw, 'an amount in coins, e.g. 1.5')
  }
}

/** `--name` as a whole number of wei. */
export function weiFlag(a: ParsedArgs, name: string): bigint | undefined {
  const raw = a.flags[name]
  if (raw === undefined) return undefined
  if (!/^\d+$/.test(String(raw))) throw new InvalidParameterError(name, raw, 'a whole number of wei')
  return BigInt(String(raw))
}

/** Reads a file holding a hex private key. */
export function keyFile(path: string, flag: string): Hex {
  let k: string
  try {
    k = readFileSync(path, 'utf8').trim()
  } catch (e) {
    throw new FileNotFoundError(path, e)
  }
  const hex = (k.startsWith('0x') ? k : `0x${k}`) as Hex
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new InvalidParameterError(flag, path, 'a file holding a 32-byte hex private key')
  return hex
}

function rolesOf(raw: string, ROLES: readonly Role[]): Set<Role> {
  const out = new Set<Role>()
  for (const r of raw.split(',').map((s) => s.trim())) {
    if (!ROLES.includes(r as Role)) throw new InvalidParameterError('role', raw, `a comma-separated list of ${ROLES.join(', ')}`)
    out.add(r as Role)
  }
  return out
}

const start: Command = {
  name: 'node start',
  summary: 'Run a node: serve jobs (provider), audit claims (auditor) or follow offers (client)',
  usage:
    'node start --data DIR [--role provider,auditor,client] [--model FILE ...] [--rpc URL] [--deployment FILE] [--listen MULTIADDR|none ...] [--bootstrap MULTIADDR ...] [--relay] [--relay-via MULTIADDR ...] [--reachability private|public] [--price WEI_PER_TOKEN] [--stake COINS] [--capacity N] [--cheat KIND] [--beacon URL] [--explorer-port PORT] [--passphrase-file F] [--gateway-port P] [--api-key KEY ...] [--rate-limit N/min] [--chat-template FILE]',
  flags: {
    data: { type: 'string', description: "the node's folder (keystore.json, store, status.json)" },
    role: { type: 'string', description: 'roles, comma-separated: provider, auditor, client, gateway (an OpenAI-compatible API)', default: 'client' },
    model: { type: 'string', short: 'm', description: 'GGUF model to serve or audit', multiple: true },
    rpc: { type: 'string', description: 'JSON-RPC endpoint', default: DEFAULT_RPC },
    deployment: { type: 'string', description: 'deployment file with contract addresses', default: DEFAULT_DEPLOYMENT },
    listen: { type: 'string', description: 'libp2p listen address (none: no direct listener, reachable only through --relay-via)', default: '/ip4/127.0.0.1/tcp/0', multiple: true },
    relay: { type: 'boolean', description: 'serve as a circuit relay v2 for nodes behind NAT (a provider can be a relay)' },
    'relay-via': {
      type: 'string',
      description: 'behind NAT: take a reservation on this relay (multiaddr ending in /p2p/ID) and advertise the /p2p-circuit address in the offer',
      multiple: true,
    },
    reachability: {
      type: 'string',
      description:
        "whether peers can dial this node, instead of AutoNAT's verdict: private (behind NAT: take a reservation on a relay among the peers and advertise it) or public; default: AutoNAT decides",
    },
    bootstrap: { type: 'string', description: 'a peer to join the network through (a multiaddr ending in /p2p/ID)', multiple: true },
    price: { type: 'string', description: 'provider: wei per token asked', default: '1000000000' },
    stake: { type: 'string', description: "bring the role's active stake up to this many coins at start" },
    capacity: { type: 'number', description: 'provider: jobs at once', default: 4 },
    cheat: { type: 'string', description: `provider: commit a wrong trace (${CHEAT_KINDS.join(', ')}), or withhold (test-only: no transcript to auditors)` },
    beacon: { type: 'string', description: 'auditor: drand-compatible beacon URL for the audit draws (default: the devnet beacon, signed locally)' },
    poll: { type: 'number', description: "ms between two ticks of a role's loop", default: 1000 },
    'claim-after': { type: 'number', description: 'provider: claim a job once it waited this many seconds', default: 300 },
    'offer-refresh': { type: 'number', description: 'provider: seconds between two signed offers', default: 30 },
    'explorer-port': { type: 'number', description: 'serve the explorer at http://127.0.0.1:PORT/explorer/ (0: any free port)' },
    'passphrase-file': { type: 'string', description: 'file holding the keystore passphrase (else TESSERA_PASSPHRASE, else a prompt)' },
    'import-key': { type: 'string', description: 'first start only: keep this hex private key (a file) in the new keystore instead of a fresh one' },
    ...GATEWAY_FLAGS,
  },
  async run(args, signal) {
    const [{ parseEther }, { loadDeployment }, { passphraseFrom }, { ROLES, startNode }] = await load(
      signal,
      Promise.all([import('viem'), import('../../chain/client.js'), import('../../node/keystore.js'), import('../../node/node.js')]),
    )
    const dataDir = need(args, 'data')
    const roleWords = String(args.flags.role)
      .split(',')
      .map((s) => s.trim())
    const gatewayRole = roleWords.includes('gateway')
    const roles = rolesOf(roleWords.filter((r) => r !== 'gateway').join(',') || 'client', ROLES)
    if (gatewayRole) roles.add('client')
    const gatewayConfig = gatewayConfigOf(args, gatewayRole)
    const models = stringList(args.flags.model)
    for (const m of models) checkInputFile(m)
    const capacity = Number(args.flags.capacity)
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1024) throw new InvalidParameterError('capacity', capacity, 'a whole number from 1 to 1024')
    const poll = Number(args.flags.poll)
    if (!(poll >= 10 && poll <= 60_000)) throw new InvalidParameterError('poll', poll, 'ms from 10 to 60000')
    const cheatFlag = args.flags.cheat as string | undefined
    const withhold = cheatFlag === 'withhold'
    const cheat = withhold ? undefined : cheatFlag
    if (cheat !== undefined && !CHEAT_KINDS.includes(cheat as CheatKind)) throw new InvalidParameterError('cheat', cheat, [...CHEAT_KINDS, 'withhold'].join(', '))
    if (withhold && !roles.has('provider')) throw new UsageError('--cheat is for a provider (--role provider)')
    if (cheat !== undefined && !roles.has('provider')) throw new UsageError('--cheat is for a provider (--role provider)')
    if (roles.has('provider') && models.length === 0) throw new UsageError('a provider needs --model FILE')
    const explorerPort = args.flags['explorer-port'] === undefined ? undefined : Number(args.flags['explorer-port'])
    const badPort = explorerPort !== undefined && !(Number.isInteger(explorerPort) && explorerPort >= 0 && explorerPort <= 65535)
    if (badPort) throw new InvalidParameterError('explorer-port', explorerPort, 'a port from 0 to 65535')
    const listen = stringList(args.flags.listen)
    const relayVia = stringList(args.flags['relay-via'])
    for (const r of relayVia) if (!/\/p2p\/[^/]+$/.test(r)) throw new InvalidParameterError('relay-via', r, 'a relay multiaddr ending in /p2p/<peer id>')
    if (listen.includes('none') && listen.length > 1) throw new UsageError('--listen none cannot be combined with other --listen addresses')
    if (listen.includes('none') && relayVia.length === 0) throw new UsageError('--listen none needs --relay-via MULTIADDR (else nothing can reach the node)')
    const reachability = args.flags.reachability as string | undefined
    if (reachability !== undefined && reachability !== 'private' && reachability !== 'public') throw new InvalidParameterError('reachability', reachability, 'private or public')
    const price = weiFlag(args, 'price')
    const stake = coinsFlag(args, 'stake', parseEther)
    const importKey = args.flags['import-key'] ? keyFile(String(args.flags['import-key']), 'import-key') : undefined
    const deployment = loadDeployment(String(args.flags.deployment))
    const passphrase = await passphraseFrom({ file: args.flags['passphrase-file'] as string | undefined })
    signal.throwIfAborted()
    const log = (line: string) => console.log(`${new Date().toISOString().slice(11, 23)} ${line}`)
    const node = await startNode({
      dataDir,
      roles,
      models: roles.has('provider') || roles.has('auditor') ? models : [],
      rpc: String(args.flags.rpc),
      deployment,
      listen: listen.length === 1 && listen[0] === 'none' ? [] : listen,
      relay: args.flags.relay === true,
      relayVia,
      reachability,
      bootstrap: stringList(args.flags.bootstrap),
      price,
      stake,
      capacity,
      cheat: cheat as CheatKind | undefined,
      withhold,
      beaconUrl: args.flags.beacon as string | undefined,
      pollMs: poll,
      passphrase,
      importKey,
      claimAfterSec: Number(args.flags['claim-after']),
      offerRefreshSec: Number(args.flags['offer-refresh']),
      explorerPort,
      log,
    })
    const gateway = gatewayConfig
      ? await startGatewayRole({ node, dataDir, passphrase, rpc: String(args.flags.rpc), deployment, models, config: gatewayConfig, log }).catch(async (e) => {
          await node.stop()
          throw e
        })
      : undefined
    log(`ready: ${node.addrs()[0] ?? node.peerId}`)
    // Runs until Ctrl-C (the command's signal) or SIGTERM, then withdraws the offer and closes.
    await new Promise<void>((resolve) => {
      if (signal.aborted) return resolve()
      signal.addEventListener('abort', () => resolve(), { once: true })
      process.once('SIGTERM', () => resolve())
    })
    log('stopping')
    await Promise.race([(async () => (await gateway?.close(), await node.stop()))(), new Promise((r) => setTimeout(r, 2_000).unref())])
    log('stopped')
    return 0
  },
}

function statusLines(s: NodeStatus, live: boolean, formatEther: (wei: bigint) => string): string[] {
  const ago = Math.round((Date.now() - s.updatedAt) / 1000)
  const role = ['none', 'provider', 'auditor'][s.stake?.role ?? 0] ?? 'unknown'
  const lines = [
    `node ${s.address} (${s.roles.join(', ')}): ${live ? 'running' : `not running (last seen ${ago} s ago${s.state === 'stopped' ? ', stopped' : ''})`}`,
    `  peer       ${s.peerId}`,
    `  addresses  ${s.addrs.join(' ') || '-'}`,
    `  peers      ${s.peers}${s.relay ? ' (serving as a relay)' : ''}`,
    `  wallet     ${s.wallet ? formatEther(BigInt(s.wallet)) : '?'}`,
    `  stake      ${s.stake ? `${formatEther(BigInt(s.stake.active))} (${role}), locked ${formatEther(BigInt(s.stake.locked))}` : '?'}`,
    `  offers     ${s.offersSeen.length} seen${s.offersSeen.map((o) => `\n    ${o.provider} ${o.models.map((m) => `${m.root.slice(0, 10)}… @ ${m.pricePerToken} wei`).join(', ')} (capacity ${o.capacity})`).join('')}`,
    `  jobs       served ${s.jobs.served}, refused ${Object.values(s.jobs.refused).reduce((a, b) => a + b, 0)}${
      Object.keys(s.jobs.refused).length
        ? ` (${Object.entries(s.jobs.refused)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')})`
        : ''
    }, cancelled ${s.jobs.cancelled}, failed ${s.jobs.failed}`,
  ]
  if (s.claims) {
    const c = s.claims
    lines.push(
      `  claims     pending ${c.pending} (${formatEther(BigInt(c.pendingWei))}), claimed ${c.claimed}, open batches ${c.openBatches}, finalized ${c.finalized}, earned ${formatEther(BigInt(c.earned))}${c.blocked ? `; blocked: ${c.blocked}` : ''}`,
    )
  }
  const kv = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none'
  lines.push(`  audits     ${kv(s.audits)}`, `  disputes   ${kv(s.disputes)}`)
  if (s.jobs.lastError) lines.push(`  last error ${s.jobs.lastError}`)
  if (s.roles.includes('provider'))
    lines.push(
      s.whyNoWork.length
        ? `  no work?   ${[...s.whyNoWork, '(as far as this node can tell: it sees the dial-backs of AutoNAT, not the failed dials of peers or what clients choose)'].join('\n             ')}`
        : '  no work?   nothing this node can see stops clients from using it',
    )
  return lines
}

const status: Command = {
  name: 'node status',
  summary: "Show a node's peers, offers, jobs, claims, audits and disputes",
  usage: 'node status --data DIR [--json]',
  flags: {
    data: { type: 'string', description: "the node's folder" },
    json: { type: 'boolean', description: 'print the status as JSON' },
  },
  async run(args) {
    const s = readStatus(need(args, 'data'))
    const live = isLive(s)
    if (args.flags.json) console.log(JSON.stringify({ ...s, live }, null, 2))
    else console.log(statusLines(s, live, (await import('viem')).formatEther).join('\n'))
    return 0
  },
}

export const nodeCommands: Command[] = [start, status]
