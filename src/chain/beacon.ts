/**
 * The randomness beacon off chain (docs/CHAIN.md "Beacon"): drand's `bls-unchained-g1-rfc9380`
 * scheme ("quicknet") in TypeScript, so that a node reads rounds from drand or from the devnet's
 * own beacon through one path and hands them to Beacon.sol unchanged.
 *
 * - A round r is a BLS signature on G1 of sha256(uint64 big-endian r) under a G2 public key
 *   (hash-to-curve with `BEACON_DST`); its randomness is sha256 of the 48-byte compressed signature.
 * - drand's wire forms: hex without 0x, signatures compressed (48 bytes), keys compressed (96).
 *   The contract takes uncompressed EIP-2537 encodings instead (`toContractSig`,
 *   `toContractPublicKey`): decompressing on chain would cost a square root per call.
 * - `createDevBeacon` is a one-key beacon for devnets and tests; `serveBeacon` serves it at drand's
 *   HTTP paths (`/info`, `/public/ROUND`, `/public/latest`), and `fetchRound` reads either.
 */
import { randomBytes } from 'node:crypto'
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { bls12_381 as bls } from '@noble/curves/bls12-381.js'
import { type Hex, bytesToHex, concat, hexToBytes, sha256 } from 'viem'
import { BaseError, InvalidParameterError } from '../errors.js'
import { fromHex, toHex } from '../trace/merkle.js'

/** drand's scheme id of this beacon: BLS signatures on G1, unchained, RFC 9380 hash-to-curve. */
export const BEACON_SCHEME = 'bls-unchained-g1-rfc9380'
/** The hash-to-curve domain separation tag of the scheme (also Beacon.sol's `DST`). */
export const BEACON_DST = 'BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_'

/** A drand chain's info, as `GET /info` serves it (field names are drand's). */
export type BeaconChainInfo = {
  public_key: string
  period: number
  genesis_time: number
  hash: string
  groupHash: string
  schemeID: string
  metadata: { beaconID: string }
}

/** One round as drand's HTTP API serves it (`GET /public/ROUND`): hex without 0x. */
export type BeaconRound = { round: number; randomness: string; signature: string }

/** drand's quicknet (League of Entropy), the production beacon: 3-second rounds since 2023-08-23. */
export const DRAND_QUICKNET: BeaconChainInfo = {
  public_key:
    '83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a',
  period: 3,
  genesis_time: 1692803367,
  hash: '52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971',
  groupHash: 'f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e',
  schemeID: BEACON_SCHEME,
  metadata: { beaconID: 'quicknet' },
}
/** One of drand's public HTTP endpoints for quicknet (any League of Entropy mirror serves the same). */
export const DRAND_QUICKNET_URL = `https://api.drand.sh/${DRAND_QUICKNET.hash}`

// ------------------------------------------------------------------ errors

/** A beacon endpoint did not answer, answered an HTTP error, or answered something not drand's shape. */
export class BeaconFetchError extends BaseError {
  override name = 'BeaconFetchError'
  /** The HTTP status, when the endpoint answered one (425: the round is not due yet). */
  readonly status?: number
  constructor(shortMessage: string, opts: { details?: string; cause?: unknown; status?: number } = {}) {
    super(shortMessage, { details: opts.details, cause: opts.cause, docs: 'docs/CHAIN.md#beacon' })
    this.status = opts.status
  }
}

/** A round whose signature is not the beacon's signature of that round, or whose randomness does not match it. */
export class BadBeaconRoundError extends BaseError {
  override name = 'BadBeaconRoundError'
}

/** Bytes that are not a valid compressed point (wrong length, off the curve, outside the subgroup). */
export class BadBeaconPointError extends BaseError {
  override name = 'BadBeaconPointError'
}

// ------------------------------------------------------------------ the scheme

type TimeInfo = Pick<BeaconChainInfo, 'genesis_time' | 'period'>

/** The latest round due at `timeSec` (drand's CurrentRound: (time - genesis) / period + 1); 0 before genesis. */
export function roundAt(info: TimeInfo, timeSec: number): number {
  if (timeSec < info.genesis_time) return 0
  return Math.floor((timeSec - info.genesis_time) / info.period) + 1
}

/** When `round` is due, in unix seconds (drand's TimeOfRound; round 0 maps to genesis). */
export function timeOfRound(info: TimeInfo, round: number): number {
  return round === 0 ? info.genesis_time : info.genesis_time + (round - 1) * info.period
}

/** The message a round signs: sha256(uint64 big-endian round). */
export function roundMessage(round: number | bigint): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(round))
  return sha256(b, 'bytes')
}

/** drand's randomness of a signature: sha256 of its bytes as published (compressed), hex without 0x. */
export function randomnessOf(signatureHex: string): string {
  return toHex(sha256(fromHex(signatureHex), 'bytes'))
}

/**
 * Whether `r` is the beacon's round: its signature is the key's signature of `r.round` and its
 * randomness is drand's. Malformed hex or points are simply not valid.
 *
 * @example
 *   verifyBeaconRound(DRAND_QUICKNET.public_key, await fetchRound(DRAND_QUICKNET_URL, 657413))  // true
 */
export function verifyBeaconRound(publicKeyHex: string, r: BeaconRound): boolean {
  try {
    if (!Number.isSafeInteger(r.round) || r.round < 1) return false
    if (r.randomness.toLowerCase() !== randomnessOf(r.signature)) return false
    const sig = bls.shortSignatures.Signature.fromBytes(fromHex(r.signature))
    const pk = bls.G2.Point.fromBytes(fromHex(publicKeyHex))
    return bls.shortSignatures.verify(sig, bls.shortSignatures.hash(roundMessage(r.round), BEACON_DST), pk)
  } catch {
    return false
  }
}

/** drand's chain hash: sha256(uint32 period || int64 genesis || public key || groupHash || beaconID unless "default"). */
export function beaconChainHash(info: Omit<BeaconChainInfo, 'hash' | 'schemeID'>): string {
  const head = new Uint8Array(12)
  const view = new DataView(head.buffer)
  view.setUint32(0, info.period)
  view.setBigInt64(4, BigInt(info.genesis_time))
  const id = info.metadata.beaconID && info.metadata.beaconID !== 'default' ? new TextEncoder().encode(info.metadata.beaconID) : new Uint8Array()
  return toHex(sha256(concat([head, fromHex(info.public_key), fromHex(info.groupHash), id]), 'bytes'))
}

// ------------------------------------------------------------------ the contract's encodings

const fp64 = (x: bigint) => x.toString(16).padStart(128, '0')

/**
 * The uncompressed EIP-2537 encoding (128 bytes: x || y, each 64 bytes big-endian) that Beacon.sol
 * takes, of a compressed G1 signature as drand publishes it.
 *
 * @example
 *   await beaconRandomness(c, { beacon, round: r.round, signature: toContractSig(r.signature) })
 */
export function toContractSig(compressedHex: string): Hex {
  let p: ReturnType<typeof bls.G1.Point.fromHex>
  try {
    p = bls.shortSignatures.Signature.fromBytes(fromHex(compressedHex))
  } catch (err) {
    throw new BadBeaconPointError('not a compressed G1 signature', { details: 'expected 48 bytes of a point in the prime-order subgroup', cause: err })
  }
  if (p.equals(bls.G1.Point.ZERO)) throw new BadBeaconPointError('the signature is the point at infinity')
  const a = p.toAffine()
  return `0x${fp64(a.x)}${fp64(a.y)}`
}

/** The uncompressed EIP-2537 encoding (256 bytes: x.c0 || x.c1 || y.c0 || y.c1) of a compressed G2 public key. */
export function toContractPublicKey(compressedHex: string): Hex {
  let p: ReturnType<typeof bls.G2.Point.fromHex>
  try {
    p = bls.G2.Point.fromBytes(fromHex(compressedHex))
  } catch (err) {
    throw new BadBeaconPointError('not a compressed G2 public key', { details: 'expected 96 bytes of a point in the prime-order subgroup', cause: err })
  }
  if (p.equals(bls.G2.Point.ZERO)) throw new BadBeaconPointError('the public key is the point at infinity')
  const a = p.toAffine()
  return `0x${fp64(a.x.c0)}${fp64(a.x.c1)}${fp64(a.y.c0)}${fp64(a.y.c1)}`
}

// ------------------------------------------------------------------ the devnet's beacon

/** A one-key beacon: the devnet's, or a test's. Signs any round, due or not: serving decides what is public. */
export type DevBeacon = {
  readonly info: BeaconChainInfo
  /** Round `round`'s signature and randomness, exactly as drand would publish them. */
  sign(round: number): BeaconRound
  /** The public key in the encoding Beacon.sol's constructor takes. */
  publicKeyForContract(): Hex
  /** The latest round due at `timeSec` (default now). */
  roundAt(timeSec?: number): number
}

const FR_ORDER = bls.fields.Fr.ORDER
const SIGNED_CACHE = 1024

function assertRound(round: number): void {
  if (!Number.isSafeInteger(round) || round < 1) throw new InvalidParameterError('beacon round', round, 'a whole number from 1')
}

/**
 * A beacon with one BLS key: `secretKey` (32 bytes big-endian, nonzero below the group order), or
 * one derived from `seed` (sha256("tessera-beacon:" + seed) mod (r - 1) + 1, so tests are
 * reproducible), or a fresh random key. `beaconID` names it in `/info` (default "tessera-devnet").
 *
 * @example
 *   const beacon = createDevBeacon({ seed: 'test', genesisTime: now, period: 3 })
 *   beacon.sign(1)  // { round: 1, randomness, signature }, as drand's /public/1
 */
export function createDevBeacon(opts: { secretKey?: Hex | Uint8Array; seed?: string; genesisTime: number; period: number; beaconID?: string }): DevBeacon {
  if (!Number.isSafeInteger(opts.period) || opts.period < 1) throw new InvalidParameterError('beacon period', opts.period, 'a positive whole number of seconds')
  if (!Number.isSafeInteger(opts.genesisTime) || opts.genesisTime < 0) throw new InvalidParameterError('beacon genesis time', opts.genesisTime, 'unix seconds')
  const secretKey = beaconSecretKey(opts)
  const publicKey = bls.shortSignatures.getPublicKey(secretKey)
  const publicKeyHex = toHex(publicKey.toBytes(true))
  const beaconID = opts.beaconID ?? 'tessera-devnet'
  // drand's group hash is the hash of its group file; a one-key beacon's "group" is its key.
  const groupHash = toHex(sha256(concat([new TextEncoder().encode('tessera-beacon-group:'), publicKey.toBytes(true)]), 'bytes'))
  const base = { public_key: publicKeyHex, period: opts.period, genesis_time: opts.genesisTime, groupHash, metadata: { beaconID } }
  const info: BeaconChainInfo = { ...base, hash: beaconChainHash(base), schemeID: BEACON_SCHEME }
  // Signing takes ~20 ms; a served beacon is asked for the same recent rounds again and again.
  const signed = new Map<number, BeaconRound>()
  return {
    info,
    sign(round) {
      assertRound(round)
      const hit = signed.get(round)
      if (hit) return { ...hit }
      const point = bls.shortSignatures.sign(bls.shortSignatures.hash(roundMessage(round), BEACON_DST), secretKey)
      const signature = bls.shortSignatures.Signature.toHex(point)
      const r = { round, randomness: randomnessOf(signature), signature }
      if (signed.size >= SIGNED_CACHE) signed.delete(signed.keys().next().value as number)
      signed.set(round, r)
      return { ...r }
    },
    publicKeyForContract: () => toContractPublicKey(publicKeyHex),
    roundAt: (timeSec = Math.floor(Date.now() / 1000)) => roundAt(info, timeSec),
  }
}

function beaconSecretKey(opts: { secretKey?: Hex | Uint8Array; seed?: string }): Uint8Array {
  let scalar: bigint
  if (opts.secretKey !== undefined) {
    const bytes = typeof opts.secretKey === 'string' ? hexToBytes(opts.secretKey) : opts.secretKey
    scalar = bytes.length === 32 ? BigInt(bytesToHex(bytes)) : 0n
    // The key itself never goes into the error.
    if (scalar === 0n || scalar >= FR_ORDER) throw new InvalidParameterError('beacon secret key', `(${bytes.length} bytes)`, '32 bytes big-endian, nonzero, below the group order')
  } else {
    const material = opts.seed !== undefined ? sha256(new TextEncoder().encode(`tessera-beacon:${opts.seed}`), 'bytes') : randomBytes(32)
    scalar = (BigInt(bytesToHex(material)) % (FR_ORDER - 1n)) + 1n
  }
  return hexToBytes(`0x${scalar.toString(16).padStart(64, '0')}`)
}

// ------------------------------------------------------------------ drand's HTTP API

const MAX_BODY = 64 * 1024

/**
 * Reads one round from a drand HTTP endpoint (drand itself, e.g. `DRAND_QUICKNET_URL`, or
 * `serveBeacon`): `GET ${baseUrl}/public/${round}`. With `publicKey`, the round must verify
 * against it (BadBeaconRoundError otherwise); a round that is not due yet is a BeaconFetchError
 * with status 425.
 *
 * @example
 *   const r = await fetchRound(server.url, 7, { publicKey: beacon.info.public_key, timeoutMs: 2000 })
 */
export async function fetchRound(
  baseUrl: string,
  round: number | 'latest',
  opts: { timeoutMs?: number; signal?: AbortSignal; publicKey?: string } = {},
): Promise<BeaconRound> {
  if (round !== 'latest') assertRound(round)
  const body = await getJson(`${trimSlash(baseUrl)}/public/${round}`, opts)
  const r = body as Partial<BeaconRound>
  if (typeof r !== 'object' || r === null || !Number.isSafeInteger(r.round) || !isHex(r.signature) || !isHex(r.randomness)) {
    throw new BeaconFetchError(`${baseUrl} answered something that is not a drand round`, { details: JSON.stringify(body).slice(0, 200) })
  }
  const out: BeaconRound = { round: r.round as number, randomness: (r.randomness as string).toLowerCase(), signature: (r.signature as string).toLowerCase() }
  if (round !== 'latest' && out.round !== round) throw new BadBeaconRoundError(`asked ${baseUrl} for round ${round}, got round ${out.round}`)
  if (opts.publicKey !== undefined && !verifyBeaconRound(opts.publicKey, out)) {
    throw new BadBeaconRoundError(`round ${out.round} from ${baseUrl} is not signed by the beacon's key`)
  }
  return out
}

/** Reads a drand endpoint's chain info (`GET ${baseUrl}/info`) and checks its hash against its fields. */
export async function fetchChainInfo(baseUrl: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<BeaconChainInfo> {
  const info = (await getJson(`${trimSlash(baseUrl)}/info`, opts)) as BeaconChainInfo
  if (typeof info !== 'object' || info === null || !isHex(info.public_key) || !isHex(info.groupHash) || !Number.isSafeInteger(info.period) || !Number.isSafeInteger(info.genesis_time) || typeof info.metadata?.beaconID !== 'string') {
    throw new BeaconFetchError(`${baseUrl} answered something that is not drand chain info`)
  }
  if (info.schemeID !== BEACON_SCHEME) throw new BeaconFetchError(`${baseUrl} serves scheme ${info.schemeID}, not ${BEACON_SCHEME}`)
  if (beaconChainHash(info) !== info.hash) throw new BeaconFetchError(`${baseUrl} serves chain info whose hash does not match its fields`)
  return info
}

async function getJson(url: string, opts: { timeoutMs?: number; signal?: AbortSignal }): Promise<unknown> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 10_000)
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout
  let res: Response
  let text: string
  try {
    res = await fetch(url, { signal, headers: { accept: 'application/json' } })
    text = await readBounded(res)
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason
    const why = timeout.aborted ? `no answer within ${opts.timeoutMs ?? 10_000} ms` : (err as Error).message
    throw new BeaconFetchError(`cannot read ${url}`, { details: why, cause: err })
  }
  if (!res.ok) throw new BeaconFetchError(`${url} answered HTTP ${res.status}`, { details: text.slice(0, 200), status: res.status })
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new BeaconFetchError(`${url} answered something that is not JSON`, { details: text.slice(0, 200), cause: err })
  }
}

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.length
    if (size > MAX_BODY) throw new Error(`answer larger than ${MAX_BODY} bytes`)
    chunks.push(chunk)
  }
  return new TextDecoder().decode(concat(chunks))
}

/** A running beacon HTTP server. */
export type BeaconServer = { readonly url: string; readonly port: number; close(): Promise<void> }

/**
 * Serves a dev beacon at drand's HTTP paths, so that nodes point `--beacon URL` at it or at drand
 * alike: `/info`, `/public/latest`, `/public/ROUND` (also under `/<chain hash>/`). Only rounds
 * whose time has come are served; a later one answers 425 (Too Early). Listens on 127.0.0.1 unless
 * told otherwise; `port` 0 picks a free one. `now` (ms) is the clock, for tests.
 *
 * @example
 *   const server = await serveBeacon(beacon, { port: 0 })
 *   await fetchRound(server.url, 'latest')
 *   await server.close()
 */
export async function serveBeacon(beacon: DevBeacon, opts: { port?: number; host?: string; now?: () => number } = {}): Promise<BeaconServer> {
  const host = opts.host ?? '127.0.0.1'
  const now = opts.now ?? Date.now
  const server = createServer((req, res) => handle(beacon, Math.floor(now() / 1000), req, res))
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function handle(beacon: DevBeacon, nowSec: number, req: IncomingMessage, res: ServerResponse): void {
  const reply = (status: number, body: unknown, cache = 'no-store') => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': cache })
    res.end(JSON.stringify(body))
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, { error: 'only GET' })
  const parts = new URL(req.url ?? '/', 'http://beacon').pathname.split('/').filter(Boolean)
  // drand serves its default chain at the root and every chain under /<chain hash>/.
  if (parts[0] === beacon.info.hash) parts.shift()
  if (parts.length === 1 && parts[0] === 'info') return reply(200, beacon.info)
  if (parts.length !== 2 || parts[0] !== 'public') return reply(404, { error: 'not found' })
  const latest = beacon.roundAt(nowSec)
  const round = parts[1] === 'latest' ? latest : /^[0-9]{1,15}$/.test(parts[1]) ? Number(parts[1]) : Number.NaN
  if (!Number.isSafeInteger(round) || round < 1) return reply(latest < 1 ? 425 : 400, { error: latest < 1 ? 'no round before genesis' : 'bad round' })
  if (round > latest) return reply(425, { error: `round ${round} is due at ${timeOfRound(beacon.info, round)}` })
  return reply(200, beacon.sign(round), parts[1] === 'latest' ? 'no-store' : 'public, max-age=31536000, immutable')
}

// ------------------------------------------------------------------ small helpers

function isHex(h: unknown): h is string {
  return typeof h === 'string' && h.length % 2 === 0 && /^(0x)?[0-9a-fA-F]*$/.test(h)
}
function trimSlash(u: string): string {
  return u.replace(/\/+$/, '')
}
