/**
 * Who may read a job's transcript over `/tessera/transcript/1.0.0` (docs/NETWORK.md "Transcripts"):
 * the job's client, or the auditor Audits currently has drawn for that job, nobody else.
 *
 * The requester signs an access request (EIP-712 `TranscriptAccess`, domain "Tessera" v1 at the
 * Settlement contract) naming the request digest, the provider it asks, the job's place on chain
 * (batch id, index in the batch) and the time it signed. The provider checks, in this order, each
 * refusal one named code:
 *
 *   bad-message    not `{t:'get', request, access}` of the right shapes
 *   bad-signature  the signature does not recover to the stream's peer (its account) or names another provider
 *   stale          signed more than ACCESS_MAX_AGE_S ago, or more than ACCESS_MAX_SKEW_S in the future
 *   replayed       this exact signed request was already used (kept until it goes stale anyway)
 *   unknown-job    the provider holds no transcript for the digest
 *   wrong-job      (not the client) the job at (batch, index) is not this provider's, or its request is another digest
 *   not-drawn      (not the client) the assignment of (batch, index) names another auditor (a no-show replaced
 *                  by a redraw is not drawn any more), or none, or its audit is over
 *
 * Why the peer must be the signer: a signed request lifted from one stream cannot be replayed by
 * another node within its freshness window. Why the chain, not the provider's books, binds
 * (batch, index) to the digest: the claim's calldata is what the auditor audits, and a provider's
 * batch record may merge recovered claims out of order. Both chain reads are cached (a claimed
 * job's digest never changes); the assignment is read at every request, since a redraw moves it.
 */
import { type Address, getAddress, type Hex, recoverTypedDataAddress } from 'viem'
import { AUDIT, assignmentOf } from '../chain/actions/audits.js'
import { type Deployment, requestDigest } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import { claimedItem, claimedJob } from './chainWatch.js'
import type { Transcript } from './transcript.js'

/** What the requester signs. `batchId` and `index` are 0 when the client asks (it may not know the batch). */
export type TranscriptAccess = { requestDigest: Hex; provider: Address; batchId: bigint; index: number; issuedAt: number }
/** The access request on the wire (decimal batch id). */
export type AccessJson = { batchId: string; index: number; issuedAt: number; signature: Hex }

export const ACCESS_MAX_AGE_S = 60
export const ACCESS_MAX_SKEW_S = 30

/** `forbidden`: the test-only withholding fault; `unavailable`: the node could not read the chain to decide (node.ts). */
export type AccessRefusal = 'bad-message' | 'bad-signature' | 'stale' | 'replayed' | 'unknown-job' | 'wrong-job' | 'not-drawn' | 'forbidden' | 'unavailable'
export type AccessVerdict = { ok: true; transcript: Transcript; as: 'client' | 'auditor' } | { ok: false; code: AccessRefusal; message: string }

const ACCESS_TYPES = {
  TranscriptAccess: [
    { name: 'requestDigest', type: 'bytes32' }, { name: 'provider', type: 'address' }, { name: 'batchId', type: 'uint256' },
    { name: 'index', type: 'uint32' }, { name: 'issuedAt', type: 'uint64' },
  ],
} as const

const domain = (d: Pick<Deployment, 'chainId' | 'settlement'>) => ({ name: 'Tessera', version: '1', chainId: d.chainId, verifyingContract: d.settlement }) as const
const message = (a: TranscriptAccess) => ({ ...a, issuedAt: BigInt(a.issuedAt) })

/**
 * The requester (`c.account`) signs access to a job's transcript at `provider`.
 *
 * @example
 *   const access = await signTranscriptAccess(auditor, d, { requestDigest, provider, batchId: 3n, index: 0, issuedAt: Math.floor(Date.now() / 1000) })
 */
export async function signTranscriptAccess(c: ChainClients, d: Pick<Deployment, 'chainId' | 'settlement'>, a: TranscriptAccess): Promise<AccessJson> {
  const signature = await c.wallet.signTypedData({ domain: domain(d), types: ACCESS_TYPES, primaryType: 'TranscriptAccess', message: message(a) })
  return { batchId: a.batchId.toString(), index: a.index, issuedAt: a.issuedAt, signature }
}

export type TranscriptGateInit = {
  /** The provider's clients (reads only). */
  clients: ChainClients
  deployment: Pick<Deployment, 'chainId' | 'settlement' | 'audits' | 'disputeGame' | 'deployedAtBlock'>
  /** The provider's stored transcript of a request digest. */
  transcriptOf: (requestDigest: Hex) => Promise<Transcript | undefined>
  /** Test-only fault (`--cheat withhold`): nobody but the client gets a transcript. */
  withhold?: boolean
  /** Unix seconds (default: the wall clock). */
  clock?: () => number
  /** Used access requests remembered at most (default 10,000); past that the oldest are dropped first, and they are stale soon after anyway. */
  maxRemembered?: number
}

export type TranscriptGate = {
  /** The verdict on `msg` from the stream's peer account `peer`. Never throws on bad input (a chain read may throw). */
  check(msg: unknown, peer: Address): Promise<AccessVerdict>
}

const HEX32 = /^0x[0-9a-fA-F]{64}$/
const SIG = /^0x[0-9a-fA-F]{130}$/

/** The provider's gate on `/tessera/transcript/1.0.0` (see the file's comment for the rule and its codes). */
export function createTranscriptGate(init: TranscriptGateInit): TranscriptGate {
  const { clients: c, deployment: d } = init
  const me = getAddress(c.account.address)
  const clock = init.clock ?? (() => Math.floor(Date.now() / 1000))
  const maxRemembered = init.maxRemembered ?? 10_000
  /** Used signatures (lowercase) -> the time they go stale; insertion order is age order. */
  const used = new Map<string, number>()
  /** `batchId:index` -> the request digest claimed there by this provider, or null: not this provider's job. */
  const claimed = new Map<string, Hex | null>()
  const refuse = (code: AccessRefusal, message: string): AccessVerdict => ({ ok: false, code, message })

  const forget = (now: number) => {
    for (const [sig, until] of used) {
      if (until >= now && used.size <= maxRemembered) break
      used.delete(sig)
    }
  }

  /** The digest of this provider's job (batchId, index) on chain; null when the job is another provider's. */
  async function digestAt(batchId: bigint, index: number): Promise<Hex | null> {
    const key = `${batchId}:${index}`
    if (claimed.has(key)) return claimed.get(key)!
    let digest: Hex | null
    try {
      const j = await claimedJob(c, d, { batchId, index })
      digest = getAddress(j.provider) !== me ? null : requestDigest(d.chainId, d.settlement, (await claimedItem(c, d, { tx: j.tx, index, client: j.client, leaf: j.leaf })).req)
    } catch (e) {
      if (e instanceof RangeError) return null // no such job (yet): not cached, it may be claimed later
      throw e
    }
    if (claimed.size >= 4096) claimed.delete(claimed.keys().next().value as string)
    claimed.set(key, digest)
    return digest
  }

  return {
    async check(msg, peer) {
      const m = msg as { t?: unknown; request?: unknown; access?: Partial<Record<keyof AccessJson, unknown>> } | undefined
      const a = m?.access
      if (
        m?.t !== 'get' || typeof m.request !== 'string' || !HEX32.test(m.request) || typeof a !== 'object' || a === null ||
        typeof a.batchId !== 'string' || !/^\d{1,78}$/.test(a.batchId) || !Number.isSafeInteger(a.index) || (a.index as number) < 0 || (a.index as number) >= 2 ** 32 ||
        !Number.isSafeInteger(a.issuedAt) || (a.issuedAt as number) < 0 || typeof a.signature !== 'string' || !SIG.test(a.signature)
      ) {
        return refuse('bad-message', 'expected {t:"get", request: 0x digest, access: {batchId, index, issuedAt, signature}}')
      }
      const digest = m.request.toLowerCase() as Hex
      const access: TranscriptAccess = { requestDigest: digest, provider: me, batchId: BigInt(a.batchId), index: a.index as number, issuedAt: a.issuedAt as number }
      const signature = a.signature as Hex
      let signer: Address
      try {
        signer = await recoverTypedDataAddress({ domain: domain(d), types: ACCESS_TYPES, primaryType: 'TranscriptAccess', message: message(access), signature })
      } catch {
        return refuse('bad-signature', 'the access signature does not recover')
      }
      if (getAddress(signer) !== getAddress(peer)) return refuse('bad-signature', `the access is not signed by the asking peer's account ${getAddress(peer)} (for this provider and job)`)
      const now = clock()
      if (access.issuedAt < now - ACCESS_MAX_AGE_S || access.issuedAt > now + ACCESS_MAX_SKEW_S) {
        return refuse('stale', `the access was signed at ${access.issuedAt}, now is ${now} (at most ${ACCESS_MAX_AGE_S} s old)`)
      }
      forget(now)
      const sigKey = signature.toLowerCase()
      if (used.has(sigKey)) return refuse('replayed', 'this access request was already used')
      used.set(sigKey, access.issuedAt + ACCESS_MAX_AGE_S)
      const t = await init.transcriptOf(digest)
      if (!t) return refuse('unknown-job', `no transcript of ${digest}`)
      if (getAddress(t.client) === getAddress(signer)) return { ok: true, transcript: t, as: 'client' }
      if (init.withhold) return refuse('forbidden', 'this provider gives transcripts to their clients only (--cheat withhold)')
      if (!d.audits) return refuse('not-drawn', 'no Audits on this deployment: only the client reads a transcript')
      const at = await digestAt(access.batchId, access.index)
      if (at === null || at.toLowerCase() !== digest) return refuse('wrong-job', `job ${access.index} of batch ${access.batchId} is not this provider's request ${digest}`)
      const as = await assignmentOf(c, d, { batchId: access.batchId, index: BigInt(access.index) })
      if (getAddress(as.auditor) !== getAddress(signer) || (as.status !== AUDIT.DRAWN && as.status !== AUDIT.COMMITTED)) {
        return refuse('not-drawn', `${getAddress(signer)} is not the auditor drawn for job ${access.index} of batch ${access.batchId} now`)
      }
      return { ok: true, transcript: t, as: 'auditor' }
    },
  }
}
