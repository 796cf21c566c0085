/**
 * The running node's state for `tessera node status`: LevelDB lets one process open the store, so
 * the node writes `DIR/status.json` every few seconds (and a last time, `stopped`, on shutdown)
 * and the status command reads that file. Written beside and renamed into place, so a reader
 * never sees half a file.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Address } from 'viem'
import { BaseError } from '../errors.js'

export const STATUS_FILE = 'status.json'

/** The node's job and loop counters (`jobs` in status.json). */
export type NodeCounters = {
  served: number
  refused: Record<string, number>
  cancelled: number
  failed: number
  transcriptsGiven: number
  transcriptsRefused: number
  /** Transcript requests refused, by code (node/transcriptAccess.ts: not-drawn, stale, replayed, ...). */
  transcriptRefusals?: Record<string, number>
  tickErrors: Record<string, number>
  lastError?: string
}

/** status.json: amounts are wei as decimal strings, times unix ms. */
export type NodeStatus = {
  v: 1
  pid: number
  updatedAt: number
  state: 'running' | 'stopping' | 'stopped'
  address: Address
  peerId: string
  addrs: string[]
  roles: string[]
  peers: number
  wallet?: string
  stake?: { role: number; active: string; locked: string }
  offersSeen: { provider: string; peerId: string; models: { root: string; pricePerToken: string }[]; capacity: number; expiresAt: number; latencyMs?: number }[]
  offerProblems: Record<string, number>
  ownOffer?: { seq: number; expiresAt: number }
  jobs: NodeCounters
  claims?: { pending: number; pendingWei: string; claimed: number; openBatches: number; finalized: number; earned: string; withdrawn: string; blocked?: string }
  /** Audit records by state, disputes by `role:state`. */
  audits: Record<string, number>
  disputes: Record<string, number>
  /** A provider's reasons it may get no work, as far as the node can tell. */
  whyNoWork: string[]
  /** Whether the node serves as a circuit relay (`--relay`). */
  relay?: boolean
}

/** No status file in the folder: no node ever ran there. */
export class NoNodeStatusError extends BaseError {
  override name = 'NoNodeStatusError'
  constructor(dir: string, cause?: unknown) {
    super(`no node status in ${dir}: no node has run with this data folder`, { cause })
  }
}

export function writeStatus(dir: string, s: NodeStatus): void {
  const file = join(dir, STATUS_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`)
  renameSync(tmp, file)
}

export function readStatus(dir: string): NodeStatus {
  let text: string
  try {
    text = readFileSync(join(dir, STATUS_FILE), 'utf8')
  } catch (e) {
    throw new NoNodeStatusError(dir, e)
  }
  return JSON.parse(text) as NodeStatus
}

/** Whether the process that wrote `s` still runs and wrote it recently (within `staleMs`). */
export function isLive(s: NodeStatus, staleMs = 15_000): boolean {
  if (s.state === 'stopped') return false
  try {
    process.kill(s.pid, 0)
  } catch {
    return false
  }
  return Date.now() - s.updatedAt < staleMs
}

/** The IP of a multiaddr's first `/ip4` or `/ip6` part (for a relayed address: the relay's). */
function ipOf(addr: string): string | undefined {
  return /^\/ip[46]\/([^/]+)/.exec(addr)?.[1]
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1'
const isPrivate = (ip: string) =>
  isLoopback(ip) || /^(10\.|192\.168\.|169\.254\.|172\.(1[6-9]|2\d|3[01])\.)/.test(ip) || /^(f[cd]|fe80:)/i.test(ip)
/** An address without its trailing `/p2p/<id>` (AutoNAT's verdicts and listen addresses name none). */
const bare = (addr: string) => addr.replace(/\/p2p\/[^/]+$/, '')
/** A direct (not relayed) address on a public IP: the only kind AutoNAT tests, and that libp2p offers only once tested. */
const isPublicDirect = (addr: string) => {
  const ip = ipOf(addr)
  return ip !== undefined && !isPrivate(ip) && !addr.includes('/p2p-circuit')
}
const list = (addrs: readonly string[]) => addrs.join(', ')

/**
 * Why a provider may be unreachable, as far as it can tell from its own addresses and AutoNAT's
 * verdicts (docs/NETWORK.md "NAT", "What node status can tell"): nothing to dial, a `--relay-via`
 * relay that holds no reservation, addresses only other programs on this machine (loopback) or this
 * private network can dial, public addresses that AutoNAT peers failed to dial back (named; libp2p
 * then leaves them out of the offer), public listen addresses not offered because no peer has
 * dialled them back yet, or no peer that follows the offer topic. It cannot see peers' own failed
 * dials (nothing reports them to the node) nor a firewall in front of an address AutoNAT has not
 * tested: an empty answer only means none of these.
 */
export function unreachableReasons(s: {
  /** The addresses the node offers (Host.addrs(): each ends in /p2p/<id>). */
  addrs: readonly string[]
  relayVia: readonly string[]
  peers: number
  offerTopicPeers: number
  /** AutoNAT's verdict (Host.reachability()), or the operator's `--reachability`. */
  reachability?: 'public' | 'private' | 'unknown'
  /** What the node listens on (Host.listenAddrs()): a public one is offered only once peers dialled it back. */
  listening?: readonly string[]
  /** AutoNAT's last verdict per public direct address (Host.dialBacks()); undefined: not known to the caller. */
  dialBacks?: readonly { addr: string; ok: boolean }[]
}): string[] {
  const out: string[] = []
  const relayed = s.addrs.filter((a) => a.includes('/p2p-circuit'))
  const failed = (s.dialBacks ?? []).filter((v) => !v.ok).map((v) => v.addr)
  const dialledBack = (s.dialBacks ?? []).filter((v) => v.ok).map((v) => v.addr)
  const offered = new Set(s.addrs.map(bare))
  const tested = new Set((s.dialBacks ?? []).map((v) => v.addr))
  // public listen addresses libp2p keeps out of the offer until a peer dials one back (AutoNAT)
  const untested = [...new Set((s.listening ?? []).map(bare))].filter((a) => isPublicDirect(a) && !offered.has(a) && !tested.has(a))
  const notDialled = failed.length > 0 ? `AutoNAT peers could not dial back ${list(failed)}` : undefined
  const waiting = untested.length > 0 ? `no peer has dialled back ${list(untested)} yet (AutoNAT asks peers on other networks; a public address is offered once one did)` : undefined
  if (s.addrs.length === 0) {
    if (notDialled || waiting)
      out.push(`unreachable: no address offered: ${[notDialled, waiting].filter(Boolean).join('; ')} (forward the port, or take a relay reservation with --relay-via MULTIADDR)`)
    else out.push('unreachable: no listen address and no relay reservation (listen, or take one with --relay-via MULTIADDR)')
  } else if (s.relayVia.length > 0 && relayed.length === 0) out.push(`unreachable through a relay: no reservation held on ${s.relayVia.join(', ')} yet`)
  const ips = s.addrs.map(ipOf).filter((ip): ip is string => ip !== undefined)
  if (ips.length > 0 && ips.every(isLoopback)) out.push(`reachable from this machine only: every address (a relay's too) is loopback${notDialled ? `; ${notDialled}` : ''}`)
  // AutoNAT's verdict first: it tested the NAT's address that a node with only private ones never sees
  else if (s.addrs.length > 0 && s.reachability === 'private' && relayed.length === 0) {
    const why =
      notDialled ??
      (s.dialBacks === undefined
        ? 'AutoNAT peers could not dial any public address back'
        : 'reachability private (--reachability private: no public address tested)')
    out.push(`unreachable from outside: ${why} and no relay reservation is held (forward the port, or take a reservation with --relay-via MULTIADDR)`)
  } else if (ips.length > 0 && ips.every(isPrivate) && relayed.length === 0)
    // AutoNAT v1 calls an address private only after failed dial-backs from peers in 8 distinct /8
    // networks: on a small network a node behind NAT stays 'unknown' and takes no relay by itself
    out.push(
      `maybe unreachable from outside this network: only private addresses and no relay reservation${waiting ? `; ${waiting}` : ''} (behind NAT? start with --reachability private to reserve a slot on a relay among the peers, or take one with --relay-via MULTIADDR)`,
    )
  // reachable by some public address: the ones peers cannot dial are named (left out of the offer)
  else if (s.addrs.length > 0 && relayed.length === 0 && dialledBack.length > 0 && (notDialled || waiting))
    out.push(`partly reachable: peers dialled back ${list(dialledBack)}; ${[notDialled && `${notDialled} (left out of the offer)`, waiting].filter(Boolean).join('; ')}`)
  if (s.peers > 0 && s.offerTopicPeers === 0) out.push('no connected peer follows the offer topic: the offer reaches others only through the DHT')
  return out
}
