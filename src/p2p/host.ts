/**
 * A node's libp2p host behind a small interface (`Host`), so the node never touches raw libp2p:
 * framed protocol handlers and dials (`FrameConn`), gossip publish/subscribe, DHT provide/find.
 *
 * The stack: TCP, Noise, Yamux; identify and ping; a Kademlia DHT on Tessera's own protocol id
 * (`/tessera/kad/1.0.0`, so it never joins the public IPFS DHT) in server mode, keeping private
 * and loopback addresses (kad-dht drops them by default, which would make a LAN or a loopback
 * test network invisible to itself); gossipsub (`@libp2p/gossipsub`: `@chainsafe/libp2p-gossipsub`
 * 14 silently delivers nothing with libp2p 3); the circuit relay v2 transport, and its server
 * when `relay: true` so a provider can relay for peers behind NAT; DCUtR to upgrade relayed
 * connections to direct ones; AutoNAT (v1) so peers dial our public addresses back and tell us
 * whether we are reachable (`Host.reachability()`); bootstrap discovery when bootstrap addresses
 * are given.
 *
 * Gossip is unsigned at the gossipsub layer (`StrictNoSign`, message id = SHA-256 of the data):
 * every Tessera topic carries payloads signed by their author (offers), so gossipsub's own
 * secp256k1 signature per message (signed by the publisher, checked by every receiver, plus a
 * PeerId key decompression each) was a second signature over the same bytes and most of the CPU
 * an offer costs a node. A new topic must sign its own payloads too.
 *
 * A protocol handler that throws, or reads a malformed or oversized frame, only loses its stream:
 * the error is logged, a protocol error is answered with `{t:'error', code}`, the stream is reset.
 */
import './polyfill.js'
import { noise } from '@chainsafe/libp2p-noise'
import { autoNAT } from '@libp2p/autonat'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { StrictNoSign, type TopicValidatorResult, gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { Connection, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { CID } from 'multiformats/cid'
import { BaseError } from '../errors.js'
import { type FrameConn, frameConn, MAX_FRAME, ProtocolError } from './frames.js'
import { joinTcpWrites } from './tcpWrites.js'
import { installYamuxWindowPolicy } from './yamuxWindow.js'

/** The DHT's protocol id: Tessera's own network, never the public IPFS one. */
export const DHT_PROTOCOL = '/tessera/kad/1.0.0'

/** A node with fewer peers than this redials its bootstrap nodes. */
const MIN_PEERS = 3
/** First and longest wait between bootstrap redials, ms (doubling in between). */
const BOOTSTRAP_RETRY_MS = [1_000, 30_000] as const

/** How often the gossip link check runs, ms. */
const GOSSIP_CHECK_MS = 5_000
/** Least time between two reconnects of the same peer for a stuck gossip link, ms. */
const GOSSIP_RETRY_MS = 60_000

/** How long a stream answered with a protocol error may linger before it is reset. */
const PROTOCOL_ERROR_GRACE_MS = 2_000

export type HostLimits = {
  /** Connections kept before libp2p prunes the least valuable ones. */
  maxConnections: number
  /** Inbound connections still upgrading (noise, yamux) at once. */
  maxIncomingPendingConnections: number
  /** Inbound connections one IP may open per second; in-process test networks share 127.0.0.1, so raise it there. */
  inboundConnectionThreshold: number
  /** How long one dial may take, ms. */
  dialTimeoutMs: number
  /**
   * Least time libp2p's connection monitor (a ping on every connection every 10 s) waits for an
   * answer before it aborts the connection, ms; it adapts upwards from here to 60 s. libp2p's 5 s
   * cut healthy connections whenever either side's event loop stalled for a few seconds (a busy
   * node verifying a burst of offers), and every cut costs a redial and a handshake: on a loaded
   * machine the network fell apart (docs/BENCHMARKS.md "Network").
   */
  pingTimeoutMs: number
  /**
   * A direct connection this old with no gossipsub stream in one direction is closed and redialled,
   * ms (`keepGossipLinked`). Gossipsub opens its streams one connection at a time, so on a busy node
   * with many new connections a healthy one can wait many seconds for its turn: at 10 s a loaded
   * 50-node bench redialled hundreds of connections, most of whose handshakes then timed out.
   */
  gossipStuckMs: number
}

/**
 * What a relay lets one relayed connection carry before it closes it. Relay v2's defaults (128 KiB,
 * 2 minutes) would cut a long job stream or a client's connection kept across jobs; job traffic
 * is small (a request, a frame per token, a receipt), so these allow many jobs per connection.
 */
export const RELAY_LIMITS = { durationMs: 10 * 60_000, dataBytes: 16n << 20n } as const

export const DEFAULT_LIMITS: HostLimits = { maxConnections: 64, maxIncomingPendingConnections: 16, inboundConnectionThreshold: 5, dialTimeoutMs: 10_000, pingTimeoutMs: 20_000, gossipStuckMs: 30_000 }

export type HostOptions = {
  /** The node's key in libp2p form (`identityFromKey(key).libp2pKey`). */
  privateKey: PrivateKey
  listen?: string[]
  bootstrap?: string[]
  /** Serve as a circuit relay for peers that cannot be dialled directly (each relayed connection limited to `RELAY_LIMITS`). */
  relay?: boolean
  /**
   * What this relay lets one relayed connection carry (`relay: true` only; default `RELAY_LIMITS`):
   * the data limit counts both directions together, the duration runs from the connection's open.
   * Lower ones serve tests of a relayed connection cut mid-job (test/network/nat.test.ts).
   */
  relayLimits?: { durationMs?: number; dataBytes?: bigint }
  /** Addresses to announce instead of the listening ones (a public IP behind port forwarding). */
  announce?: string[]
  limits?: Partial<HostLimits>
  /**
   * Taken as `reachability()` instead of AutoNAT's verdicts: an operator who knows the node is (or
   * is not) reachable from outside, and loopback tests, where AutoNAT never tests an address.
   */
  reachability?: Reachability
  /**
   * When `reachability()` is 'private' and the node holds no relayed address, look among connected
   * peers for a circuit relay (one that speaks relay v2's hop protocol, found by identify and the
   * DHT's random walk) and take a reservation on it, so peers can dial the node through it; its
   * `/p2p-circuit` address then joins `addrs()` (and the offers). Default true.
   */
  autoRelay?: boolean
}

/** How often the node checks whether it should look for a relay (reachability 'private', no relayed address), ms. */
const AUTO_RELAY_CHECK_MS = 2_000

export type HandleOptions = {
  /** Streams of this protocol open at once per connection. */
  maxInbound?: number
  /** Frame bound for this protocol (default `MAX_FRAME`). */
  maxBytes?: number
}

export type DialOptions = { maxBytes?: number; signal?: AbortSignal }

/**
 * How long a stream handed back by `FrameConn.release()` is kept for the next dial of the same peer
 * and protocol before it is closed, ms. Kept streams save libp2p's stream open (a yamux stream and
 * a multistream-select round trip, 3-7 ms on loopback); the job protocol's provider waits longer
 * than this for the next request (`JobTimeouts.idleMs`), so the client is the one that closes.
 */
export const KEEP_IDLE_MS = 20_000
/** Streams kept per peer and protocol. */
const KEEP_PER_KEY = 4

export type GossipVerdict = 'accept' | 'reject' | 'ignore'
export type GossipValidator = (data: Uint8Array, from: string) => GossipVerdict | Promise<GossipVerdict>

export type ProviderInfo = { peerId: string; addrs: string[] }

/**
 * Whether peers can dial this node, as AutoNAT found: 'public' once peers dialled one of its public
 * addresses back, 'private' once they tried and failed (and none succeeded), 'unknown' before any
 * verdict, or when it has no public address to test (libp2p's AutoNAT skips private and loopback
 * addresses, and addresses given by `announce`, which libp2p trusts as given).
 */
export type Reachability = 'public' | 'private' | 'unknown'

export type HostConnection = { peerId: string; remoteAddr: string; relayed: boolean; direction: 'inbound' | 'outbound' }

export type Host = {
  readonly peerId: string
  /** Addresses others can dial, each ending in `/p2p/<peerId>` (relayed ones once a reservation is held). */
  addrs(): string[]
  /** Serve `protocol`: each inbound stream becomes a `FrameConn` passed to `handler`, closed after it returns. */
  handle(protocol: string, handler: (conn: FrameConn) => Promise<void>, options?: HandleOptions): Promise<void>
  unhandle(protocol: string): Promise<void>
  /** Open a stream to a peer (its id, or a multiaddr that ends in `/p2p/<id>`) on `protocol`. */
  dial(peerOrAddr: string, protocol: string, options?: DialOptions): Promise<FrameConn>
  publish(topic: string, data: Uint8Array): Promise<void>
  /**
   * Subscribe to a gossip topic; returns the unsubscribe function. `from` is the peer that
   * forwarded the message to us (gossip is unsigned: the author is whoever signed the payload).
   * `validate` (one per topic) runs before a message is delivered or forwarded: 'reject' stops it
   * spreading and lowers the sender's score, 'ignore' just drops it.
   */
  subscribe(topic: string, handler: (data: Uint8Array, from: string) => void, options?: { validate?: GossipValidator }): () => void
  /** Announce on the DHT that this node provides `key`. */
  provide(key: CID, options?: { timeoutMs?: number }): Promise<void>
  /** Other peers that provide `key`, as found on the DHT within `timeoutMs` (`dial` by their id then uses the addresses found). */
  findProviders(key: CID, options?: { timeoutMs?: number; limit?: number }): Promise<ProviderInfo[]>
  /** Peers currently connected. */
  peers(): string[]
  /** Open connections: `relayed` when through a circuit relay (limited), else direct. */
  connections(): HostConnection[]
  /**
   * Call `listener` with `addrs()` each time they change (a relay reservation made or lost, a
   * listener opened or closed, an observed address confirmed); returns the function that stops it.
   */
  onAddrsChange(listener: (addrs: string[]) => void): () => void
  /** What AutoNAT found about dialling this node from outside (see `Reachability`). */
  reachability(): Reachability
  /**
   * AutoNAT's last verdict on each public direct address it tested (without `/p2p/<id>`): `ok` when
   * peers dialled it back, false when they tried and could not; a failed address is left out of
   * `addrs()`. Empty before any verdict; AutoNAT keeps testing when `reachability` is given.
   */
  dialBacks(): { addr: string; ok: boolean }[]
  /**
   * What the node listens on (without `/p2p/<id>`), including the public addresses libp2p keeps out
   * of `addrs()` until a peer has dialled them back (AutoNAT).
   */
  listenAddrs(): string[]
  /** Round-trip time to a peer (its id) in ms, by libp2p ping over a connection (dialled if needed); throws DialError. */
  ping(peer: string, options?: { timeoutMs?: number }): Promise<number>
  /** Peers in the gossip mesh or fanout for a topic's subscribers. */
  topicPeers(topic: string): string[]
  stop(): Promise<void>
}

/** The libp2p node behind a `Host`, for tests and diagnostics that must reach what `Host` hides. */
export const LIBP2P: unique symbol = Symbol('tessera.libp2p')

/** A dial that failed: unreachable, refused the protocol, or timed out. */
export class DialError extends BaseError {
  override name = 'DialError'
  constructor(target: string, protocol: string, cause: unknown) {
    super(`cannot open ${protocol} to ${target}`, { details: cause instanceof Error ? cause.message : String(cause), cause })
  }
}

/**
 * Start a host.
 *
 * @example
 * const host = await createHost({ privateKey: identityFromKey(key).libp2pKey })
 * await host.handle('/tessera/offer/1.0.0', async (conn) => { await conn.recv(); await conn.send(signed) })
 */
export async function createHost(options: HostOptions): Promise<Host> {
  // receive credit once half a window is used, not a window-update frame per message (yamuxWindow.ts)
  installYamuxWindowPolicy()
  const limits = { ...DEFAULT_LIMITS, ...options.limits }
  const listen = [...(options.listen ?? ['/ip4/127.0.0.1/tcp/0'])]
  const bootstrapList = options.bootstrap ?? []
  const services = {
    identify: identify(),
    // libp2p's connection monitor pings too: room for it beside Host.ping's latency probes
    ping: ping({ maxOutboundStreams: 4, maxInboundStreams: 4 }),
    dht: kadDHT({ protocol: DHT_PROTOCOL, clientMode: false, peerInfoMapper: passthroughMapper }),
    pubsub: gossipsub({
      allowPublishToZeroTopicPeers: true,
      floodPublish: true,
      emitSelf: false,
      globalSignaturePolicy: StrictNoSign,
      // Peer scoring penalises more than 10 peers behind one IP (a Sybil defence); peers on this
      // machine all share the loopback address, and without this a loopback network of more than
      // ~11 nodes scores itself negative and stops delivering.
      scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']) },
    }),
    dcutr: dcutr(),
    autoNAT: autoNAT(),
    ...(options.relay === true
      ? {
          relay: circuitRelayServer({
            reservations: {
              maxReservations: 128,
              defaultDurationLimit: options.relayLimits?.durationMs ?? RELAY_LIMITS.durationMs,
              defaultDataLimit: options.relayLimits?.dataBytes ?? RELAY_LIMITS.dataBytes,
            },
          }),
        }
      : {}),
  }
  const node = await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen, ...(options.announce === undefined ? {} : { announce: options.announce }) },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: bootstrapList.length > 0 ? [bootstrap({ list: bootstrapList, timeout: 50 })] : [],
    connectionManager: {
      maxConnections: limits.maxConnections,
      maxIncomingPendingConnections: limits.maxIncomingPendingConnections,
      inboundConnectionThreshold: limits.inboundConnectionThreshold,
      dialTimeout: limits.dialTimeoutMs,
    },
    connectionMonitor: { pingTimeout: { minTimeout: limits.pingTimeoutMs } },
    services,
  })
  await node.services.dht.setMode('server')
  return wrap(node as unknown as Libp2p<TesseraServices>, bootstrapList, limits, { reachability: options.reachability, autoRelay: options.autoRelay ?? true })
}

type TesseraServices = {
  dht: import('@libp2p/kad-dht').KadDHT
  pubsub: import('@libp2p/gossipsub').GossipSub
  ping: import('@libp2p/ping').Ping
}

function wrap(node: Libp2p<TesseraServices>, bootstrapList: string[], limits: HostLimits, o: { reachability?: Reachability; autoRelay: boolean }): Host {
  const log = node.logger.forComponent('tessera:p2p')
  const self = node.peerId.toString()
  const stopKeeper = keepBootstrapped(node, bootstrapList, log)
  const verdicts = recordDialBackVerdicts(node)
  const stopGossipCheck = keepGossipLinked(node, limits.gossipStuckMs, log)
  const topicHandlers = new Map<string, Set<(data: Uint8Array, from: string) => void>>()
  // streams handed back by `release()`, by peer and protocol, each with the timer that closes it and
  // whether its connection is limited (relayed)
  // (`after`: the releasing caller's last write, awaited before the stream is handed out again)
  const kept = new Map<string, { conn: FrameConn; timer: NodeJS.Timeout; limited: boolean; after?: Promise<boolean> }[]>()
  const keptKey = (peer: string, protocol: string, maxBytes: number) => `${peer} ${protocol} ${maxBytes}`
  const takeKept = async (peer: string | undefined, protocol: string, maxBytes: number): Promise<FrameConn | undefined> => {
    if (peer === undefined) return undefined
    const list = kept.get(keptKey(peer, protocol, maxBytes))
    while (list !== undefined && list.length > 0) {
      const k = list.pop()!
      clearTimeout(k.timer)
      if (k.after !== undefined && !(await k.after)) {
        k.conn.abort(new Error("the kept stream's last write failed"))
        continue
      }
      // A stream on a relayed connection is left once there is a direct one (DCUtR, or the peer
      // dialled us): the relay's limits (RELAY_LIMITS) would cut it mid-job, the direct one has none.
      if (k.limited && k.conn.idle() && hasUnlimited(peer)) {
        void k.conn.close().catch(() => {})
        continue
      }
      if (k.conn.idle()) return k.conn
      k.conn.abort(new Error('a kept stream was closed or sent data while idle'))
    }
    return undefined
  }
  const hasUnlimited = (peer: string): boolean => node.getConnections(peerIdFromString(peer)).some((c) => c.status === 'open' && c.limits === undefined)
  /** `conn` with `release()` (back into `kept`) and `reused`. */
  const keepable = (conn: FrameConn, peer: string, protocol: string, maxBytes: number, reused: boolean, limited: boolean): FrameConn => {
    let released = false
    return {
      remotePeer: conn.remotePeer,
      send: (msg) => conn.send(msg),
      sendMany: (msgs) => conn.sendMany(msgs),
      recv: (timeoutMs) => conn.recv(timeoutMs),
      close: () => conn.close(),
      abort: (err) => conn.abort(err),
      idle: () => conn.idle(),
      reused,
      release(after) {
        if (released) return
        released = true
        const close = () => void conn.close().catch(() => {})
        if (!conn.idle()) return after ? void after.then(close) : close()
        const key = keptKey(peer, protocol, maxBytes)
        const list = kept.get(key) ?? []
        kept.set(key, list)
        if (list.length >= KEEP_PER_KEY) return after ? void after.then(close) : close()
        const entry = {
          conn: keepable(conn, peer, protocol, maxBytes, true, limited),
          limited,
          after,
          timer: setTimeout(() => {
            const i = list.indexOf(entry)
            if (i >= 0) list.splice(i, 1)
            if (list.length === 0 && kept.get(key) === list) kept.delete(key)
            void conn.close().catch(() => {})
          }, KEEP_IDLE_MS).unref(),
        }
        list.push(entry)
      },
    }
  }

  // one socket write per Noise message on TCP connections (tcpWrites.ts)
  node.addEventListener('connection:open', (evt) => joinTcpWrites(evt.detail))
  node.services.pubsub.addEventListener('gossipsub:message', (evt) => {
    const { msg, propagationSource } = evt.detail
    const handlers = topicHandlers.get(msg.topic)
    if (handlers === undefined) return
    const from = propagationSource.toString()
    for (const h of handlers) {
      try {
        h(msg.data, from)
      } catch (err) {
        log.error('gossip handler for %s threw: %e', msg.topic, err)
      }
    }
  })

  const runHandler = async (protocol: string, handler: (conn: FrameConn) => Promise<void>, maxBytes: number, stream: Stream, connection: Connection): Promise<void> => {
    const conn = frameConn(stream, { maxBytes, remotePeer: connection.remotePeer.toString() })
    try {
      await handler(conn)
      await conn.close()
    } catch (err) {
      log('%s handler for %s failed: %e', protocol, conn.remotePeer, err)
      const error = err instanceof Error ? err : new Error(String(err))
      if (err instanceof ProtocolError) {
        // Tell the remote why, close gracefully so the answer is not discarded, and reset the
        // stream shortly after in case the remote keeps it open.
        const told = await conn
          .send({ t: 'error', code: err.code, message: err.shortMessage })
          .then(() => conn.close())
          .then(() => true)
          .catch(() => false)
        if (told) {
          setTimeout(() => conn.abort(error), PROTOCOL_ERROR_GRACE_MS).unref()
          return
        }
      }
      conn.abort(error)
    }
  }

  const host: Host & { [LIBP2P]: Libp2p<TesseraServices> } = {
    [LIBP2P]: node,
    peerId: self,

    addrs: () => node.getMultiaddrs().map((ma) => ma.toString()),

    async handle(protocol, handler, options = {}) {
      const maxBytes = options.maxBytes ?? MAX_FRAME
      await node.handle(
        protocol,
        (stream, connection) => {
          // libp2p awaits nothing from us: the handler runs detached and must never reject.
          void runHandler(protocol, handler, maxBytes, stream, connection)
        },
        { maxInboundStreams: options.maxInbound ?? 32, runOnLimitedConnection: true },
      )
    },

    async unhandle(protocol) {
      await node.unhandle(protocol)
    },

    async dial(peerOrAddr, protocol, options = {}) {
      // the last /p2p/ of an address is the target (a relayed one names the relay first)
      const peer = peerOrAddr.startsWith('/') ? /\/p2p\/([^/]+)\/?$/.exec(peerOrAddr)?.[1] : peerOrAddr
      const reusable = await takeKept(peer, protocol, options.maxBytes ?? MAX_FRAME)
      if (reusable !== undefined) return reusable
      let connection: Connection
      let stream: Stream
      try {
        const target = peerOrAddr.startsWith('/') ? multiaddr(peerOrAddr) : peerIdFromString(peerOrAddr)
        connection = await node.dial(target, { signal: options.signal })
        stream = await connection.newStream(protocol, { signal: options.signal, runOnLimitedConnection: true })
      } catch (err) {
        throw new DialError(peerOrAddr, protocol, err)
      }
      const remote = connection.remotePeer.toString()
      const maxBytes = options.maxBytes ?? MAX_FRAME
      return keepable(frameConn(stream, { maxBytes, remotePeer: remote }), remote, protocol, maxBytes, false, connection.limits !== undefined)
    },

    async publish(topic, data) {
      await node.services.pubsub.publish(topic, data)
    },

    subscribe(topic, handler, options = {}) {
      const validate = options.validate
      if (validate !== undefined) {
        node.services.pubsub.topicValidators.set(topic, async (from, msg) => {
          try {
            return (await validate(msg.data, from.toString())) as TopicValidatorResult
          } catch (err) {
            log('gossip validator for %s threw: %e', topic, err)
            return 'reject' as TopicValidatorResult
          }
        })
      }
      let handlers = topicHandlers.get(topic)
      if (handlers === undefined) {
        handlers = new Set()
        topicHandlers.set(topic, handlers)
        node.services.pubsub.subscribe(topic)
      }
      handlers.add(handler)
      return () => {
        const hs = topicHandlers.get(topic)
        if (hs === undefined || !hs.delete(handler) || hs.size > 0) return
        topicHandlers.delete(topic)
        node.services.pubsub.topicValidators.delete(topic)
        node.services.pubsub.unsubscribe(topic)
      }
    },

    async provide(key, options = {}) {
      const signal = AbortSignal.timeout(options.timeoutMs ?? 30_000)
      for await (const _ of node.services.dht.provide(key, { signal })) {
        // drain the query's progress events
      }
    },

    async findProviders(key, options = {}) {
      const limit = options.limit ?? 20
      const found = new Map<string, ProviderInfo>()
      const ac = new AbortController()
      const timer = setTimeout(() => ac.abort(), options.timeoutMs ?? 10_000)
      try {
        for await (const evt of node.services.dht.findProviders(key, { signal: ac.signal })) {
          if (evt.name !== 'PROVIDER') continue
          for (const p of evt.providers) {
            const id = p.id.toString()
            if (id === self || found.has(id)) continue
            found.set(id, { peerId: id, addrs: [...new Set(p.multiaddrs.map((ma) => ma.toString()))] })
            // so that dialling the provider by its id finds these addresses
            if (p.multiaddrs.length > 0) await node.peerStore.merge(p.id, { multiaddrs: p.multiaddrs }).catch(() => {})
          }
          if (found.size >= limit) break
        }
      } catch (err) {
        // A timeout ends the search with what was found so far; anything else is real.
        if (!ac.signal.aborted) throw err
      } finally {
        clearTimeout(timer)
      }
      return [...found.values()]
    },

    peers: () => node.getPeers().map((p: PeerId) => p.toString()),

    connections: () =>
      node.getConnections().map((c) => ({
        peerId: c.remotePeer.toString(),
        remoteAddr: c.remoteAddr.toString(),
        relayed: c.remoteAddr.getComponents().some((x) => x.name === 'p2p-circuit'),
        direction: c.direction,
      })),

    onAddrsChange(listener) {
      let last = node.getMultiaddrs().map((ma) => ma.toString())
      const onUpdate = (): void => {
        const now = node.getMultiaddrs().map((ma) => ma.toString())
        // self:peer:update also fires for protocol and metadata changes: only address changes count
        if (sameSet(now, last)) return
        last = now
        try {
          listener(now)
        } catch (err) {
          log.error('address change listener threw: %e', err)
        }
      }
      node.addEventListener('self:peer:update', onUpdate)
      return () => node.removeEventListener('self:peer:update', onUpdate)
    },

    reachability() {
      if (o.reachability !== undefined) return o.reachability
      const v = [...verdicts.values()]
      return v.includes(true) ? 'public' : v.includes(false) ? 'private' : 'unknown'
    },

    dialBacks: () => [...verdicts].map(([addr, ok]) => ({ addr, ok })),

    listenAddrs: () =>
      (node as unknown as { components: { transportManager: { getAddrs(): Multiaddr[] } } }).components.transportManager.getAddrs().map((ma) => ma.toString()),

    async ping(peer, options = {}) {
      try {
        return await node.services.ping.ping(peerIdFromString(peer), { signal: AbortSignal.timeout(options.timeoutMs ?? 5_000) })
      } catch (e) {
        throw new DialError(peer, 'ping', e)
      }
    },

    topicPeers: (topic) => node.services.pubsub.getSubscribers(topic).map((p) => p.toString()),

    async stop() {
      stopAutoRelay()
      for (const list of kept.values()) for (const k of list) clearTimeout(k.timer)
      kept.clear()
      stopKeeper()
      stopGossipCheck()
      await node.stop()
    },
  }
  const stopAutoRelay = o.autoRelay ? keepRelayedWhenPrivate(node, () => host.reachability(), log) : () => {}
  return host
}

/**
 * A node AutoNAT found unreachable from outside takes a relay reservation by itself: while
 * `reachability()` says 'private' and no `/p2p-circuit` address is held, it listens on the bare
 * `/p2p-circuit` address, which makes the circuit relay transport search the peers it knows for
 * relays (peers whose identify lists the hop protocol, and those the DHT's random walk finds) and
 * reserve a slot on one; once granted, the relayed address joins the node's addresses (and its
 * offers, which follow `onAddrsChange`). The transport keeps looking when the relay goes away.
 * Started once per host; returns the function that stops the checks.
 */
function keepRelayedWhenPrivate(node: Libp2p<TesseraServices>, reachability: () => Reachability, log: (fmt: string, ...args: unknown[]) => void): () => void {
  type Tm = { listen(addrs: Multiaddr[]): Promise<void>; getAddrs(): Multiaddr[] }
  const tm = (node as unknown as { components: { transportManager: Tm } }).components.transportManager
  let searching = false
  const relayed = () => node.getMultiaddrs().some((ma) => ma.getComponents().some((c) => c.name === 'p2p-circuit'))
  const check = (): void => {
    if (searching || node.status !== 'started' || reachability() !== 'private' || relayed()) return
    searching = true
    log('reachability is private and no relay reservation is held: searching for a relay')
    tm.listen([multiaddr('/p2p-circuit')]).catch((err: unknown) => {
      // nothing to listen on yet (no relay known): try again at a later check
      log('relay search failed: %e', err)
      searching = false
    })
  }
  const timer = setInterval(check, AUTO_RELAY_CHECK_MS).unref()
  queueMicrotask(check)
  return () => clearInterval(timer)
}

/**
 * Gossipsub exchanges topic subscriptions once per connection, over the stream each side opens
 * when it learns (identify) that the other speaks gossipsub; if that stream fails to open (a
 * busy peer, a timed-out negotiation), gossipsub never retries, and for as long as the connection
 * lives neither side learns the other's subscriptions: in the 50-node bench a node connected to
 * three peers heard nobody on the offer topic and nobody heard its offer (docs/BENCHMARKS.md
 * "Network"). This finds direct connections at least `stuckMs` old to a peer that speaks
 * gossipsub (or whose identify never completed) but that gossipsub lacks a stream to or from, and
 * closes and redials one per check, which replays identify and the subscription exchange; at most
 * once per GOSSIP_RETRY_MS per peer. Relayed connections are left alone (gossipsub does not run on
 * them). Returns the function that stops it.
 */
function keepGossipLinked(node: Libp2p<TesseraServices>, stuckMs: number, log: (fmt: string, ...args: unknown[]) => void): () => void {
  // the gossipsub class's public fields, which its exported interface type leaves out
  type Links = { peers: Map<string, unknown>; streamsOutbound: Map<string, unknown>; streamsInbound: Map<string, unknown>; protocols: string[] }
  const pubsub = node.services.pubsub as unknown as Links
  const lastRetry = new Map<string, number>()
  let stopped = false
  const check = async (): Promise<void> => {
    const now = Date.now()
    for (const c of node.getConnections()) {
      if (stopped) return
      const id = c.remotePeer.toString()
      if (c.status !== 'open' || c.limits !== undefined || now - c.timeline.open < stuckMs) continue
      if (pubsub.peers.has(id) && pubsub.streamsOutbound.has(id) && pubsub.streamsInbound.has(id)) continue
      // hanging up would kill a job or transcript stream in flight: wait until the connection is idle
      if (c.streams.some((s) => s.protocol?.startsWith('/tessera/') && !s.protocol.startsWith('/tessera/kad/'))) continue
      if (now - (lastRetry.get(id) ?? 0) < GOSSIP_RETRY_MS) continue
      const protocols = await node.peerStore.get(c.remotePeer).then((p) => p.protocols, () => [] as string[])
      if (protocols.length > 0 && !protocols.some((p) => pubsub.protocols.includes(p))) continue
      lastRetry.set(id, now)
      log('gossip link to %s has no stream in one direction: reconnecting', id)
      try {
        await node.hangUp(c.remotePeer)
        await node.dial(c.remotePeer, { signal: AbortSignal.timeout(10_000) })
      } catch (err) {
        log('gossip reconnect to %s failed: %e', id, err)
      }
      // one per check: a burst of redials' handshakes would starve a busy node further
      break
    }
    for (const [id, t] of lastRetry) if (now - t > GOSSIP_RETRY_MS) lastRetry.delete(id)
  }
  let running = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    void check().finally(() => {
      running = false
    })
  }, GOSSIP_CHECK_MS).unref()
  return () => {
    stopped = true
    clearInterval(timer)
  }
}

/**
 * AutoNAT reports its verdicts only by calling the address manager: `confirmObservedAddr` when
 * peers dialled an address back, `removeObservedAddr` when they could not (libp2p 3 emits no event
 * for a failure, and a failed observed address just disappears). This records both, per public
 * direct address, so `reachability()` can tell "tested and unreachable" from "not tested yet".
 * The circuit relay listener calls the same methods for its /p2p-circuit addresses: those say
 * nothing about direct reachability and are skipped.
 */
function recordDialBackVerdicts(node: Libp2p<TesseraServices>): Map<string, boolean> {
  const verdicts = new Map<string, boolean>()
  // Both take an options argument in libp2p 3 that its interface type leaves out: pass it along.
  type Verdict = (ma: Multiaddr, ...rest: unknown[]) => void
  const am = (node as unknown as { components: { addressManager: { confirmObservedAddr: Verdict; removeObservedAddr: Verdict } } }).components.addressManager
  const counts = (ma: Multiaddr): boolean => {
    const parts = ma.getComponents()
    const ip = parts.find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
    return ip !== undefined && !parts.some((c) => c.name === 'p2p-circuit') && !isPrivateIp(ip)
  }
  const confirm = am.confirmObservedAddr.bind(am)
  const remove = am.removeObservedAddr.bind(am)
  am.confirmObservedAddr = (ma, ...rest) => {
    if (counts(ma)) verdicts.set(ma.decapsulateCode(421).toString(), true)
    confirm(ma, ...rest)
  }
  am.removeObservedAddr = (ma, ...rest) => {
    if (counts(ma)) verdicts.set(ma.decapsulateCode(421).toString(), false)
    remove(ma, ...rest)
  }
  return verdicts
}

/** Loopback, link-local, RFC 1918, CGNAT and unique-local addresses: AutoNAT never tests these. */
const isPrivateIp = (ip: string): boolean =>
  /^(127\.|10\.|192\.168\.|169\.254\.|172\.(1[6-9]|2\d|3[01])\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.|0\.)/.test(ip) || /^(::1?$|f[cd]|fe80:)/i.test(ip)

const sameSet = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x) => b.includes(x))

/**
 * libp2p's bootstrap discovery dials each bootstrap node once; if that dial fails (the bootstrap
 * node is busy or restarting), nothing retries and the node stays alone. This redials the
 * bootstrap addresses not connected, with doubling back-off, while the node has fewer than
 * MIN_PEERS peers. Returns the function that stops it.
 */
function keepBootstrapped(node: Libp2p<TesseraServices>, list: string[], log: (fmt: string, ...args: unknown[]) => void): () => void {
  if (list.length === 0) return () => {}
  const targets = list.map((a) => multiaddr(a))
  let delay: number = BOOTSTRAP_RETRY_MS[0]
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const tick = async (): Promise<void> => {
    if (stopped) return
    if (node.getPeers().length < MIN_PEERS) {
      const connected = new Set(node.getPeers().map((p) => p.toString()))
      await Promise.all(
        targets
          .filter((ma) => !connected.has(ma.getComponents().filter((c) => c.name === 'p2p').pop()?.value ?? ''))
          .map((ma) => node.dial(ma, { signal: AbortSignal.timeout(10_000) }).catch((err) => log('bootstrap redial %s failed: %e', ma.toString(), err))),
      )
      delay = Math.min(delay * 2, BOOTSTRAP_RETRY_MS[1])
    } else delay = BOOTSTRAP_RETRY_MS[0]
    if (!stopped) timer = setTimeout(() => void tick(), delay).unref()
  }
  timer = setTimeout(() => void tick(), delay).unref()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}
