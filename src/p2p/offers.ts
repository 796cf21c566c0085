/**
 * Signed offers (docs/NETWORK.md "Offers"): what a provider serves, at what price, signed by its
 * node key. Providers publish them on the gossip topic `tessera/offers/1`, answer
 * `/tessera/offer/1.0.0` with the current one, and provide `cidOfModel(root)` on the DHT for each
 * model; clients keep what they hear in an `OfferBook`, which holds only the newest valid offer per
 * provider: the signature recovers `provider`, the PeerId names the same account, it has not
 * expired and its `seq` is above the last one kept (so a replayed older offer, or one that a
 * withdrawal replaced, never comes back). Offers are version 2: each model names the arithmetic its
 * jobs are computed under; a version 1 offer (an older node's) is refused as `version`, not read
 * (docs/NETWORK.md "Offers").
 */
import { create as createDigest } from 'multiformats/hashes/digest'
import { CID } from 'multiformats/cid'
import { type Address, getAddress, type Hex, isAddress, keccak256, recoverMessageAddress, toBytes } from 'viem'
import { privateKeyToAddress, signMessage } from 'viem/accounts'
import { fromHex, sha256 } from '../trace/merkle.js'
import { canonicalJson } from '../trace/receipt.js'
import { type FrameConn, ProtocolError } from './frames.js'
import type { Host } from './host.js'
import { addressOfPeer } from './identity.js'

export const OFFER_TOPIC = 'tessera/offers/1'
export const OFFER_PROTOCOL = '/tessera/offer/1.0.0'
/** Default seconds between re-signed offers; an offer lives 3 refreshes. */
export const DEFAULT_REFRESH_SEC = 30
/** Largest offer accepted, as canonical JSON bytes (gossip carries whole offers). */
export const MAX_OFFER_BYTES = 16 * 1024
const MAX_MODELS = 64
const MAX_ADDRS = 16
/** An offer may claim to be issued this far in the future (clock skew between nodes). */
const MAX_SKEW_SEC = 300
/** An offer may not live longer than this: a provider must keep re-signing. */
const MAX_LIFETIME_SEC = 24 * 3600

/** The offer format this node writes and reads (docs/NETWORK.md "Offers"). */
export const OFFER_VERSION = 2

/**
 * A served model: its root, its price, and the arithmetic its jobs are computed (and judged) under,
 * its on-chain registration's (ARITH_VERSION strings, e.g. `tessera-arith/2`).
 */
export type OfferModel = { root: Hex; pricePerToken: string; arith: string }

export type Offer = {
  v: typeof OFFER_VERSION
  provider: Address
  peerId: string
  addrs: string[]
  models: OfferModel[]
  /** Jobs at once. */
  capacity: number
  /** ENGINE_VERSION. */
  engine: string
  /** The provider's active stake when signed (wei); users check it on chain. */
  stake: string
  /** Grows with each new offer; unix seconds below. */
  seq: number
  issuedAt: number
  expiresAt: number
  /** A withdrawal: same provider, higher seq, no models. */
  withdrawn?: true
}

export type SignedOffer = { offer: Offer; signature: Hex }

export type OfferProblem = 'malformed' | 'version' | 'bad-signature' | 'peer-mismatch' | 'expired' | 'future' | 'replayed' | 'full'

export type OfferCheck = { ok: true; signed: SignedOffer } | { ok: false; problem: OfferProblem; details: string }

/** The message a provider signs (EIP-191 personal_sign): "tessera-offer:" + keccak256(canonical JSON). */
export function offerMessage(offer: Offer): string {
  return `tessera-offer:${keccak256(toBytes(canonicalJson(offer)))}`
}

/**
 * Sign an offer with the provider's node key.
 *
 * @example
 * const signed = await signOffer({ ...terms, provider: privateKeyToAddress(key), seq: 1, issuedAt, expiresAt }, key)
 */
export async function signOffer(offer: Offer, privateKey: Hex): Promise<SignedOffer> {
  return { offer, signature: await signMessage({ message: offerMessage(offer), privateKey }) }
}

const HEX32 = /^0x[0-9a-fA-F]{64}$/
const DECIMAL = /^(0|[1-9][0-9]{0,77})$/
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/
const OFFER_KEYS = new Set(['v', 'provider', 'peerId', 'addrs', 'models', 'capacity', 'engine', 'stake', 'seq', 'issuedAt', 'expiresAt', 'withdrawn'])
const MODEL_KEYS = ['arith', 'pricePerToken', 'root']

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
const isShortString = (x: unknown, max = 256): x is string => typeof x === 'string' && x.length > 0 && x.length <= max

/**
 * Why `x` is a version 1 offer this node does not read, or undefined when it is not one. A v1
 * offer named its models' arithmetic in one `arith` field, comma-joined (in served order,
 * duplicates dropped) when they differed, which does not say which model is computed under which.
 */
function oldVersion(x: unknown): string | undefined {
  if (!isRecord(x) || !isRecord(x.offer) || x.offer.v !== 1) return undefined
  return `offer version 1 (an older node's): its arith does not say which model is computed under which; this node reads version ${OFFER_VERSION}`
}

/** Why `x` is not a well-formed SignedOffer, or undefined when it is. */
function malformation(x: unknown): string | undefined {
  if (!isRecord(x) || !isRecord(x.offer) || typeof x.signature !== 'string') return 'not {offer, signature}'
  if (!SIGNATURE.test(x.signature)) return 'signature is not 65 bytes of hex'
  const o = x.offer
  for (const k of Object.keys(o)) if (!OFFER_KEYS.has(k)) return `unknown field ${k}`
  if (o.v !== OFFER_VERSION) return `v is not ${OFFER_VERSION}`
  if (typeof o.provider !== 'string' || !isAddress(o.provider, { strict: false })) return 'provider is not an address'
  if (!isShortString(o.peerId, 128)) return 'peerId is not a string'
  if (!Array.isArray(o.addrs) || o.addrs.length > MAX_ADDRS || !o.addrs.every((a) => isShortString(a, 512))) return 'addrs'
  if (!Array.isArray(o.models) || o.models.length > MAX_MODELS) return 'models'
  for (const m of o.models) {
    if (!isRecord(m) || Object.keys(m).sort().join() !== MODEL_KEYS.join()) return 'a model is not {root, pricePerToken, arith}'
    if (typeof m.root !== 'string' || !HEX32.test(m.root) || typeof m.pricePerToken !== 'string' || !DECIMAL.test(m.pricePerToken) || !isShortString(m.arith, 64)) return 'a model is not {root, pricePerToken, arith}'
  }
  if (!isCount(o.capacity)) return 'capacity'
  if (!isShortString(o.engine)) return 'engine'
  if (typeof o.stake !== 'string' || !DECIMAL.test(o.stake)) return 'stake is not a decimal string'
  if (!isCount(o.seq) || !isCount(o.issuedAt) || !isCount(o.expiresAt)) return 'seq, issuedAt or expiresAt'
  if (o.expiresAt <= o.issuedAt || o.expiresAt - o.issuedAt > MAX_LIFETIME_SEC) return 'lifetime'
  if (o.withdrawn !== undefined && (o.withdrawn !== true || o.models.length > 0)) return 'a withdrawal lists models'
  if (canonicalJson(x).length > MAX_OFFER_BYTES) return 'too large'
  return undefined
}

/**
 * Check a received offer: well formed, signed by `provider`, its PeerId names the same account,
 * issued (allowing clock skew) and not expired at `nowSec`. The seq rule needs history, so it
 * lives in `OfferBook`.
 */
export async function verifyOffer(signed: unknown, nowSec: number): Promise<OfferCheck> {
  const old = oldVersion(signed)
  if (old !== undefined) return { ok: false, problem: 'version', details: old }
  const bad = malformation(signed)
  if (bad !== undefined) return { ok: false, problem: 'malformed', details: bad }
  const s = signed as SignedOffer
  const o = s.offer
  let signer: Address
  try {
    signer = await recoverMessageAddress({ message: offerMessage(o), signature: s.signature })
  } catch (err) {
    return { ok: false, problem: 'bad-signature', details: err instanceof Error ? err.message.split('\n')[0] : String(err) }
  }
  if (signer !== getAddress(o.provider)) return { ok: false, problem: 'bad-signature', details: `signed by ${signer}, not ${o.provider}` }
  let peerAccount: Address
  try {
    peerAccount = addressOfPeer(o.peerId)
  } catch (err) {
    return { ok: false, problem: 'peer-mismatch', details: err instanceof Error ? err.message : String(err) }
  }
  if (peerAccount !== signer) return { ok: false, problem: 'peer-mismatch', details: `peer ${o.peerId} is ${peerAccount}, not ${signer}` }
  if (o.expiresAt <= nowSec) return { ok: false, problem: 'expired', details: `expired at ${o.expiresAt}, now ${nowSec}` }
  if (o.issuedAt > nowSec + MAX_SKEW_SEC) return { ok: false, problem: 'future', details: `issued at ${o.issuedAt}, now ${nowSec}` }
  return { ok: true, signed: s }
}

/**
 * The DHT key under which providers of a model announce themselves: a CIDv1 (raw codec) whose
 * sha2-256 multihash is SHA-256("tessera-model:" || root), so it cannot be confused with the CID
 * of any content.
 */
export function cidOfModel(root: Hex): CID {
  const bytes = fromHex(root)
  if (bytes.length !== 32) throw new ProtocolError('model root is not 32 bytes', { code: 'bad-message' })
  return CID.createV1(0x55, createDigest(0x12, sha256(new TextEncoder().encode('tessera-model:'), bytes)))
}

export type AddResult = { kept: true; withdrawn: boolean } | { kept: false; problem: OfferProblem | 'duplicate'; details: string }

const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/**
 * The newest valid offer per provider. Keeps the last seq of every provider it has heard from
 * (also after a withdrawal or expiry) so older offers cannot be replayed; `problems` counts what
 * was refused, for `tessera node status`.
 */
export class OfferBook {
  readonly problems: Record<OfferProblem, number> = { malformed: 0, version: 0, 'bad-signature': 0, 'peer-mismatch': 0, expired: 0, future: 0, replayed: 0, full: 0 }
  private readonly offers = new Map<Address, SignedOffer>()
  private readonly lastSeq = new Map<Address, { seq: number; signature: Hex; issuedAt: number }>()
  private readonly now: () => number
  private readonly maxProviders: number

  constructor(options: { now?: () => number; maxProviders?: number } = {}) {
    this.now = options.now ?? nowSeconds
    this.maxProviders = options.maxProviders ?? 10_000
  }

  /** Verify and keep an offer or apply a withdrawal. */
  async add(signed: unknown): Promise<AddResult> {
    // A replay is refused before the signature is checked: re-sent old offers cost no ecrecover.
    const early = malformation(signed) === undefined ? this.staleness(signed as SignedOffer) : undefined
    if (early !== undefined) return early
    const check = await verifyOffer(signed, this.now())
    if (!check.ok) {
      this.problems[check.problem]++
      return { kept: false, problem: check.problem, details: check.details }
    }
    const { offer, signature } = check.signed
    const provider = getAddress(offer.provider)
    // checked again: another add for this provider may have finished while we verified
    const stale = this.staleness(check.signed)
    if (stale !== undefined) return stale
    const last = this.lastSeq.get(provider)
    if (last === undefined && this.lastSeq.size >= this.maxProviders) {
      this.prune()
      if (this.lastSeq.size >= this.maxProviders) {
        this.problems.full++
        return { kept: false, problem: 'full', details: `${this.maxProviders} providers known` }
      }
    }
    this.lastSeq.set(provider, { seq: offer.seq, signature, issuedAt: offer.issuedAt })
    if (offer.withdrawn === true) {
      this.offers.delete(provider)
      return { kept: true, withdrawn: true }
    }
    this.offers.set(provider, check.signed)
    return { kept: true, withdrawn: false }
  }

  private staleness({ offer, signature }: SignedOffer): AddResult | undefined {
    const last = this.lastSeq.get(getAddress(offer.provider))
    if (last === undefined || offer.seq > last.seq) return undefined
    if (offer.seq === last.seq && signature === last.signature) return { kept: false, problem: 'duplicate', details: `seq ${offer.seq} already kept` }
    this.problems.replayed++
    return { kept: false, problem: 'replayed', details: `seq ${offer.seq} is not above ${last.seq}` }
  }

  /** Current offers that serve `root`, cheapest first (ties: larger capacity first). */
  offersFor(root: Hex): SignedOffer[] {
    const key = root.toLowerCase()
    const price = (s: SignedOffer): bigint => BigInt(s.offer.models.find((m) => m.root.toLowerCase() === key)?.pricePerToken ?? '0')
    return this.all()
      .filter((s) => s.offer.models.some((m) => m.root.toLowerCase() === key))
      .sort((a, b) => {
        const d = price(a) - price(b)
        return d < 0n ? -1 : d > 0n ? 1 : b.offer.capacity - a.offer.capacity
      })
  }

  /** Every current offer (expired ones are dropped here). */
  all(): SignedOffer[] {
    this.dropExpired()
    return [...this.offers.values()]
  }

  get(provider: Address): SignedOffer | undefined {
    this.dropExpired()
    return this.offers.get(getAddress(provider))
  }

  get size(): number {
    this.dropExpired()
    return this.offers.size
  }

  private dropExpired(): void {
    const now = this.now()
    for (const [p, s] of this.offers) if (s.offer.expiresAt <= now) this.offers.delete(p)
  }

  /**
   * Forget providers with no current offer whose every older offer must have expired: an honest
   * provider issued those before its last one, and no offer lives longer than MAX_LIFETIME_SEC.
   */
  private prune(): void {
    this.dropExpired()
    const now = this.now()
    for (const [p, last] of this.lastSeq) if (!this.offers.has(p) && last.issuedAt + MAX_LIFETIME_SEC + MAX_SKEW_SEC <= now) this.lastSeq.delete(p)
  }
}

/** What a provider offers; the publisher adds identity, addresses, seq and times. */
export type OfferTerms = Pick<Offer, 'models' | 'capacity' | 'engine' | 'stake'>

export type OfferPublisherOptions = {
  host: Host
  /** The node key (0x-hex): signs the offers; its PeerId must be the host's. */
  privateKey: Hex
  terms: OfferTerms
  refreshSec?: number
  /** First seq (default: the clock in ms, so a restarted node outbids its old offers). */
  seq?: number
  now?: () => number
  /** Called with errors of background refreshes (publish/provide); they never throw. */
  onError?: (err: unknown) => void
  /**
   * How long after the host's addresses change the offer is re-signed, ms (default 500): changes
   * come in bursts (a reservation, then identify's observed address), one offer covers a burst.
   */
  addrsSettleMs?: number
}

/** Fewest ms between two offers that an address change triggers: a flapping relay must not flood the topic. */
const MIN_ADDRS_REPUBLISH_MS = 2_000

/**
 * Publishes a provider's offer: gossip on `tessera/offers/1` and a DHT provider record per model,
 * re-signed every `refreshSec` and soon after the host's addresses change (a relay reservation
 * made or lost: clients must not wait a whole refresh to learn how to reach it); serves
 * `/tessera/offer/1.0.0`; a signed withdrawal on `stop`.
 */
export class OfferPublisher {
  private signed: SignedOffer | undefined
  private seq: number
  private terms: OfferTerms
  private timer: NodeJS.Timeout | undefined
  private stopAddrs: (() => void) | undefined
  private addrsTimer: NodeJS.Timeout | undefined
  private lastAddrsRepublish = 0
  private provided = new Set<string>()
  private providing: Promise<void> | undefined
  private readonly refreshSec: number
  private readonly now: () => number
  private readonly provider: Address

  constructor(private readonly options: OfferPublisherOptions) {
    this.refreshSec = options.refreshSec ?? DEFAULT_REFRESH_SEC
    this.now = options.now ?? nowSeconds
    this.seq = options.seq ?? Date.now()
    this.terms = options.terms
    this.provider = privateKeyToAddress(options.privateKey)
    if (addressOfPeer(options.host.peerId) !== this.provider) throw new ProtocolError('the offer key is not the host key', { code: 'internal' })
  }

  /** The offer being served now. */
  current(): SignedOffer | undefined {
    return this.signed
  }

  async start(): Promise<SignedOffer> {
    const { host } = this.options
    await host.handle(OFFER_PROTOCOL, (conn) => this.serve(conn), { maxInbound: 8, maxBytes: 1024 })
    const signed = await this.refresh()
    this.timer = setInterval(() => void this.refresh().catch((err) => this.options.onError?.(err)), this.refreshSec * 1000)
    this.timer.unref()
    this.stopAddrs = host.onAddrsChange(() => this.addrsChanged())
    // a change while the first offer was being signed and published: checked once, sent if real
    this.addrsChanged()
    return signed
  }

  /** Schedule one republish for a burst of address changes, at most one per MIN_ADDRS_REPUBLISH_MS. */
  private addrsChanged(): void {
    if (this.addrsTimer !== undefined || this.timer === undefined) return
    const settle = this.options.addrsSettleMs ?? 500
    const wait = Math.max(settle, this.lastAddrsRepublish + MIN_ADDRS_REPUBLISH_MS - Date.now())
    this.addrsTimer = setTimeout(() => {
      this.addrsTimer = undefined
      if (this.timer === undefined) return
      // the burst may have ended where it began (a reservation lost and made again)
      const addrs = this.options.host.addrs().slice(0, MAX_ADDRS)
      const signed = this.signed?.offer.addrs ?? []
      if (addrs.length === signed.length && addrs.every((a) => signed.includes(a))) return
      this.lastAddrsRepublish = Date.now()
      this.refresh().catch((err) => this.options.onError?.(err))
    }, wait)
    this.addrsTimer.unref()
  }

  /** Change the terms (a model added, a new price, a new stake) and publish at once. */
  async update(terms: OfferTerms): Promise<SignedOffer> {
    this.terms = terms
    return this.refresh()
  }

  /** Re-sign with the next seq, publish, and provide any model not provided yet. */
  async refresh(): Promise<SignedOffer> {
    const { host } = this.options
    const issuedAt = this.now()
    const offer: Offer = {
      v: OFFER_VERSION,
      provider: this.provider,
      peerId: host.peerId,
      addrs: host.addrs().slice(0, MAX_ADDRS),
      ...this.terms,
      seq: this.nextSeq(),
      issuedAt,
      expiresAt: issuedAt + 3 * this.refreshSec,
    }
    const signed = await signOffer(offer, this.options.privateKey)
    this.signed = signed
    await host.publish(OFFER_TOPIC, encodeOffer(signed))
    if (this.providing === undefined) this.providing = this.provideModels().finally(() => (this.providing = undefined))
    return signed
  }

  /**
   * Provide each model not provided yet, in the background: a node with no DHT peers yet would
   * otherwise hold up its first offer. The DHT re-provides records itself; a failure here is
   * retried at the next refresh.
   */
  private async provideModels(): Promise<void> {
    for (const m of this.terms.models) {
      if (this.provided.has(m.root)) continue
      await this.options.host
        .provide(cidOfModel(m.root), { timeoutMs: 10_000 })
        .then(() => this.provided.add(m.root))
        .catch((err) => this.options.onError?.(err))
    }
  }

  /** Stop refreshing, stop serving, publish a signed withdrawal. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.stopAddrs?.()
    this.stopAddrs = undefined
    clearTimeout(this.addrsTimer)
    this.addrsTimer = undefined
    await this.options.host.unhandle(OFFER_PROTOCOL)
    const issuedAt = this.now()
    const withdrawal: Offer = {
      v: OFFER_VERSION,
      provider: this.provider,
      peerId: this.options.host.peerId,
      addrs: [],
      models: [],
      capacity: 0,
      engine: this.terms.engine,
      stake: this.terms.stake,
      seq: this.nextSeq(),
      issuedAt,
      expiresAt: issuedAt + 3 * this.refreshSec,
      withdrawn: true,
    }
    this.signed = undefined
    await this.providing
    await this.options.host.publish(OFFER_TOPIC, encodeOffer(await signOffer(withdrawal, this.options.privateKey))).catch((err) => this.options.onError?.(err))
  }

  private nextSeq(): number {
    this.seq = Math.max(this.seq + 1, Date.now())
    return this.seq
  }

  private async serve(conn: FrameConn): Promise<void> {
    const msg = await conn.recv(5_000)
    if (msg === undefined) return
    if (!isRecord(msg) || msg.t !== 'get') throw new ProtocolError('expected {t:"get"}')
    if (this.signed === undefined) {
      await conn.send({ t: 'error', code: 'unavailable', message: 'no current offer' })
      return
    }
    await conn.send({ t: 'offer', offer: this.signed })
  }
}

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

export function encodeOffer(signed: SignedOffer): Uint8Array {
  return utf8.encode(JSON.stringify(signed))
}

/** Parse gossip bytes as JSON (not yet checked: hand the result to `OfferBook.add`). */
export function decodeOffer(data: Uint8Array): unknown {
  if (data.length > MAX_OFFER_BYTES) return undefined
  try {
    return JSON.parse(utf8Strict.decode(data))
  } catch {
    return undefined
  }
}

/** Ask a peer for its current offer over `/tessera/offer/1.0.0` (unverified: pass it to `OfferBook.add`). */
export async function fetchOffer(host: Host, peerOrAddr: string, options: { timeoutMs?: number } = {}): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? 5_000
  const conn = await host.dial(peerOrAddr, OFFER_PROTOCOL, { maxBytes: MAX_OFFER_BYTES + 1024, signal: AbortSignal.timeout(timeoutMs) })
  try {
    await conn.send({ t: 'get' })
    const reply = await conn.recv(timeoutMs)
    await conn.close()
    if (!isRecord(reply) || reply.t !== 'offer') throw new ProtocolError('expected {t:"offer"}', { details: isRecord(reply) ? `got t=${String(reply.t)}` : 'got no reply' })
    return reply.offer
  } catch (err) {
    conn.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

export type OfferDiscoveryOptions = { host: Host; book?: OfferBook }

/**
 * A client's view of the offers: everything gossiped on `tessera/offers/1` goes through the book
 * (bad offers are rejected at the gossip validator, so they do not spread), and `findOffers`
 * looks a model up on the DHT and asks each provider found for its offer.
 */
export class OfferDiscovery {
  readonly book: OfferBook
  private unsubscribe: (() => void) | undefined
  private readonly host: Host

  constructor(options: OfferDiscoveryOptions) {
    this.host = options.host
    this.book = options.book ?? new OfferBook()
  }

  start(): void {
    if (this.unsubscribe !== undefined) return
    this.unsubscribe = this.host.subscribe(
      OFFER_TOPIC,
      () => {
        // the validator already took the offer into the book
      },
      {
        validate: async (data) => {
          const r = await this.book.add(decodeOffer(data))
          if (r.kept) return 'accept'
          // an older node's offer (`version`) is not forwarded, but its forwarder is not penalised
          return r.problem === 'malformed' || r.problem === 'bad-signature' || r.problem === 'peer-mismatch' ? 'reject' : 'ignore'
        },
      },
    )
  }

  stop(): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }

  /** Providers of `root` on the DHT, each asked for its offer (at most `limit`, within `timeoutMs`); the book's offers for `root` after. */
  async findOffers(root: Hex, options: { timeoutMs?: number; limit?: number } = {}): Promise<SignedOffer[]> {
    const timeoutMs = options.timeoutMs ?? 10_000
    const providers = await this.host.findProviders(cidOfModel(root), { timeoutMs, limit: options.limit ?? 20 })
    await Promise.all(
      providers.map(async (p) => {
        try {
          const signed = await fetchOffer(this.host, p.peerId, { timeoutMs: Math.min(timeoutMs, 5_000) })
          // An offer fetched from one peer must be that peer's own.
          if (!isRecord(signed) || !isRecord(signed.offer) || signed.offer.peerId !== p.peerId) {
            this.book.problems['peer-mismatch']++
            return
          }
          await this.book.add(signed)
        } catch {
          // unreachable or misbehaving provider: skip it
        }
      }),
    )
    return this.book.offersFor(root)
  }
}
