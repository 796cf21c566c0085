/**
 * The provider's side of one job stream (`JOB_PROTOCOL`, docs/NETWORK.md "Jobs"): read the
 * client's request, check it in the documented order (each refusal one `{t:'error', code}`), start
 * the engine, stream the tokens as it samples them, sign and send the receipt, and wait (bounded)
 * for the client's delivery acknowledgement, which the claim needs.
 *
 * Latency: the checks before the engine starts are local (signature recovered once, the store's
 * nonces, the slots) or read from cached chain state: a `ProviderView` (the provider's stake, the
 * unclaimed wei, the latest block time) and a `ClientView` (each client's free escrow less what
 * this provider's jobs of it will reserve), both refreshed in the background. The chain's own check,
 * the `reserve` transaction, goes out only after `done`, so no JSON-RPC work shares the
 * thread with the tokens: a job whose reservation then fails (the client withdrew its escrow
 * meanwhile, or its nonce was spent elsewhere) keeps no acknowledgement and is never claimed, and
 * its client loses the deferral: its later jobs here reserve before the engine starts. So a
 * client costs a provider at most one job of unpaid work (and as many at once as `capacity`).
 *
 * Every receive has a timeout; a write waits for the stream to drain, and the engine computes the
 * next token only after the last write was handed to the stream (tokens go several to a write once
 * they come faster than `TOKEN_FLUSH_MS`), so a slow reader slows the engine instead of filling
 * memory. A `cancel` from the client or a dead stream stops generation between tokens. `serveJob`
 * (1.2.0: one job per stream) and `serveJobs` (1.3.0: jobs one after another on a stream) never
 * throw: whatever happens to one stream, the node serves the next, and the outcome says what happened.
 *
 * Shared across the streams of one provider: its `JobSlots` (jobs running, their reserved wei and
 * request keys, so two streams carrying the same request cannot both pass the replay check) and its
 * `JobBook` (persistence: src/node/store.ts implements it on classic-level, `memoryJobBook` here).
 */
import { type Address, getAddress, type Hex } from 'viem'
import { exposureOf, getStake } from '../chain/actions/settlement.js'
import { ContractRevertError, type Deployment, type Fees, read, receiptFieldsDigest, requestDigest, send, signReceipt } from '../chain/client.js'
import type { ChainClients } from '../chain/evm/clients.js'
import { isSignedBy, signHash } from '../chain/evm/secp.js'
import type { CheatKind } from '../dispute/cheats.js'
import type { DisputeModel } from '../dispute/model.js'
import { validateSampling } from '../engine/sample.js'
import { ARITH_VERSION, type ArithVersion, ENGINE_VERSION } from '../engine/version.js'
import { type FrameConn, FrameTimeoutError, ProtocolError } from '../p2p/frames.js'
import type { Model } from '../runtime/model.js'
import { runJob, StopState } from '../trace/job.js'
import { toHex } from '../trace/merkle.js'
import { type JobParams, paramsHash, type Receipt, RECEIPT_VERSION, tokensRoot } from '../trace/receipt.js'
import { cheatingTrace } from './cheat.js'
import {
  type AckMsg, type EndMsg, JOB_PROTOCOL, type JOB_PROTOCOL_1_3, type JobErrorCode, parseToProvider, type RequestMsg, type TokenMsg, type ToProvider,
} from './jobProtocol.js'
import {
  type CompactSignature, isAckOf, receiptFieldsOf, requestFromJson, type StopReason, type Transcript,
  TRANSCRIPT_VERSION,
} from './transcript.js'

/** Where a provider keeps its jobs (src/node/store.ts on classic-level; `memoryJobBook` for tests). */
export type JobBook = {
  /** Whether a job of `client` with `nonce` was stored (served or being served). */
  nonceSeen(client: Address, nonce: bigint): Promise<boolean>
  /** Stores (or replaces) the transcript of a request, by its digest. */
  putTranscript(t: Transcript): Promise<void>
  getTranscript(requestDigest: Hex): Promise<Transcript | undefined>
}

/** A JobBook in memory. */
export function memoryJobBook(): JobBook & { transcripts: Map<string, Transcript> } {
  const transcripts = new Map<string, Transcript>()
  const nonces = new Set<string>()
  return {
    transcripts,
    async nonceSeen(client, nonce) {
      return nonces.has(`${client.toLowerCase()}:${nonce}`)
    },
    async putTranscript(t) {
      transcripts.set(t.requestDigest.toLowerCase(), structuredClone(t))
      nonces.add(`${t.client.toLowerCase()}:${t.request.nonce}`)
    },
    async getTranscript(digest) {
      const t = transcripts.get(digest.toLowerCase())
      return t && structuredClone(t)
    },
  }
}

/**
 * The jobs one provider runs now, shared by all its streams.
 *
 * `requests`: every request key (client, nonce) accepted so far, with its expiry. A key stays used
 * after its job ends (done, cancelled or failed), so the same signed request cannot start a second
 * job even once the first is over; keys are dropped only after their request expired (the expiry
 * check refuses it then).
 *
 * `speculating`: the remote peers with a job running on a request whose signature has not yet
 * checked (1.4.0), at most one per peer and `maxSpeculative(capacity)` in all.
 *
 * `vouched`: for each remote peer (authenticated by the connection's Noise handshake), the clients
 * it has delivered a valid request signature for. Only those (peer, client) pairs speculate: a
 * stranger naming somebody else's address cannot run the engine unpaid, nor hold that client's
 * escrow in this provider's view; a peer whose signature then fails loses all its pairs.
 */
export type JobSlots = { active: number; reserved: bigint; requests: Map<string, bigint>; speculating: Set<string>; vouched: Map<string, Set<string>> }
export function createJobSlots(): JobSlots {
  return { active: 0, reserved: 0n, requests: new Map(), speculating: new Set(), vouched: new Map() }
}

/** Peers remembered in `JobSlots.vouched`; past it the longest-unseen peer is forgotten. */
const MAX_VOUCHED_PEERS = 4096

function vouch(slots: JobSlots, peer: string, client: Address): void {
  const clients = slots.vouched.get(peer) ?? new Set<string>()
  slots.vouched.delete(peer) // re-inserted last: the Map's order is the peers' last use
  slots.vouched.set(peer, clients.add(client.toLowerCase()))
  if (slots.vouched.size > MAX_VOUCHED_PEERS) slots.vouched.delete(slots.vouched.keys().next().value!)
}

/**
 * Jobs at once whose engine started before their signature checked: half the slots (at least
 * one), so requests that come signed always find the other half.
 */
export const maxSpeculative = (capacity: number): number => Math.max(1, Math.ceil(capacity / 2))

/** Keys kept before expired ones are swept. */
const MAX_LIVE_KEYS = 4096

export type ServedModel = {
  /** The engine, tokenizer and root of the model (runtime `loadModel`). */
  model: Pick<Model, 'transformer' | 'tokenizer' | 'modelRoot'>
  /** The lowest price per token (wei) this provider accepts for it. */
  pricePerToken: bigint
  /** The dispute view of the same file (`openDisputeModel`); needed only with `cheat`. */
  dispute?: DisputeModel
  /**
   * The arithmetic its jobs run under and receipts name: the model's on-chain registration's
   * (`ModelRegistry.arithOf`; default ARITH_VERSION, what new registrations use).
   */
  arith?: ArithVersion
}

export type JobTimeouts = {
  /** For the request, after the stream opens. */
  requestMs: number
  /** For the next request on a stream kept open after an acknowledged job (`serveJobs`, 1.3.0). */
  idleMs: number
  /** For the acknowledgement, after `done`. */
  ackMs: number
  /** For the whole job, reservation to acknowledgement. */
  jobMs: number
  /** 1.4.0: for the signature of a request sent without one (a client sends it a signing's time after the request). */
  signatureMs: number
}
export const DEFAULT_JOB_TIMEOUTS: JobTimeouts = { requestMs: 10_000, idleMs: 30_000, ackMs: 10_000, jobMs: 600_000, signatureMs: 2_000 }

/**
 * Tokens are written as they are sampled, but several to a write: a token waits until this long
 * has passed since the last write (since the engine started, for the first), or until
 * `MAX_TOKENS_PER_WRITE` wait, and the rest go with the end of the answer and its receipt. Each
 * write is a muxer frame, an encryption, a syscall and a wake-up of the client (~0.5 ms of the
 * provider's CPU on the project's machine, docs/BENCHMARKS.md "Seventh pass"): one per token was a
 * third of the job path's cost for a small model, while a reader cannot see a 5 ms delay. So an
 * answer the engine finishes within 5 ms goes out in one write, receipt included; a slower one
 * shows its first token at most 5 ms plus one engine step after the engine started.
 */
export const TOKEN_FLUSH_MS = 5
const MAX_TOKENS_PER_WRITE = 64
/**
 * Prompts up to this long (one prefill batch of runJob's, a few ms on a small model) get `accepted`
 * in the first token's write; longer ones get it before the prefill, so the client knows its job runs.
 */
const ACCEPTED_ALONE_AFTER = 64

export type ServeContext = {
  /** The provider's chain clients: its account signs receipts and sends `reserve`. */
  clients: ChainClients
  deployment: Deployment
  /** Served models by root (0x-hex, any case). */
  models: ReadonlyMap<string, ServedModel>
  /** Jobs at once; one more is refused `busy`. */
  capacity: number
  slots: JobSlots
  book: JobBook
  /**
   * Wei of jobs served and reserved but not yet claimed (the node's claims book): their exposure
   * will lock stake at the claim, so new work must leave room for it. Default: none.
   */
  unclaimed?: () => Promise<bigint>
  /** Refuse requests that expire within this many seconds of chain time (room to serve and claim; default 300). */
  minLifetimeS?: bigint
  timeouts?: Partial<JobTimeouts>
  /** `--cheat KIND`: commit this cheat instead of the honest trace (demonstrations and tests). */
  cheat?: CheatKind
  /** Stops the job between tokens (the node shutting down). */
  signal?: AbortSignal
  /**
   * The cached chain state the checks read (`createProviderView`). Default: one per context, made
   * at its first job, refreshed in the background while `signal` lives.
   */
  view?: ProviderView
  /** The clients' cached escrow (`createClientView`). Default: one per context, made at its first job. */
  clientView?: ClientView
}

/** What the checks before the engine starts read of the chain, cached. */
export type ChainFacts = { active: bigint; locked: bigint; unclaimed: bigint; blockTimestamp: bigint }

/**
 * A provider's cached chain state: its stake, its served-but-unclaimed wei and the latest block
 * time. `facts()` answers from the cache while it is younger than `maxAgeMs`, refreshing it in the
 * background once it is older than `refreshMs`, and waits for a read only when the cache is
 * older than `maxAgeMs` (or empty). `noteServed` adds a job's amount to the unclaimed wei at once
 * (the claims book's own count is read at the next refresh); `refresh()` reads now (on an event:
 * a claim, a slash, a stake change).
 */
export type ProviderView = {
  facts(): Promise<ChainFacts>
  refresh(): Promise<ChainFacts>
  noteServed(amount: bigint): void
}

export type ProviderViewOptions = { maxAgeMs?: number; refreshMs?: number; signal?: AbortSignal }

/** The view of `ctx`'s provider (see ProviderView); with `signal`, it also refreshes every `refreshMs` until the signal aborts. */
export function createProviderView(ctx: Pick<ServeContext, 'clients' | 'deployment' | 'unclaimed'>, o: ProviderViewOptions = {}): ProviderView {
  const maxAgeMs = o.maxAgeMs ?? 2_000
  const refreshMs = o.refreshMs ?? 500
  let cached: { facts: ChainFacts; at: number } | undefined
  let inflight: Promise<ChainFacts> | undefined
  // served since the read in flight (or the last one) began: not yet in the claims book's count it returns
  let extra = 0n
  const refresh = (): Promise<ChainFacts> => {
    inflight ??= (async () => {
      const before = extra
      const started = Date.now()
      try {
        const [stake, unclaimed, block] = await Promise.all([
          getStake(ctx.clients, ctx.deployment, ctx.clients.account.address), ctx.unclaimed?.() ?? Promise.resolve(0n), ctx.clients.public.getBlock(),
        ])
        extra -= before
        cached = { facts: { active: stake.active, locked: stake.locked, unclaimed, blockTimestamp: block.timestamp }, at: started }
        return cached.facts
      } finally {
        inflight = undefined
      }
    })()
    return inflight
  }
  const withExtra = (f: ChainFacts): ChainFacts => ({ ...f, unclaimed: f.unclaimed + extra })
  if (o.signal && !o.signal.aborted) {
    const timer = setInterval(() => void refresh().catch(() => {}), refreshMs)
    timer.unref()
    o.signal.addEventListener('abort', () => clearInterval(timer), { once: true })
  }
  return {
    async facts() {
      const age = cached ? Date.now() - cached.at : Number.POSITIVE_INFINITY
      if (age > maxAgeMs) return withExtra(await refresh())
      if (age > refreshMs) void refresh().catch(() => {})
      return withExtra(cached!.facts)
    },
    refresh: async () => withExtra(await refresh()),
    noteServed(amount) {
      extra += amount
    },
  }
}

const views = new WeakMap<ServeContext, ProviderView>()
function viewOf(ctx: ServeContext): ProviderView {
  if (ctx.view) return ctx.view
  let v = views.get(ctx)
  if (!v) views.set(ctx, (v = createProviderView(ctx, { signal: ctx.signal })))
  return v
}

/**
 * The clients' escrow as this provider last read it, less what its own jobs of each client will
 * take (`hold`) until a read shows their reservations mined; and the clients whose reservation
 * failed after their answer went out (`distrust`), whose jobs reserve before the engine starts.
 * `free(client, need)` answers from the cache while it is younger than `maxAgeMs` (default 30 s),
 * refreshing it in the background once older than `refreshMs` (default 5 s); a client's first job waits for a
 * read, and so does a job after a quiet half minute, and a job of `need` the cached escrow does not
 * cover once the cache is older than `recheckMs` (default 500 ms): a client that has just deposited
 * is not refused on a stale read, and such re-reads cost one per client per `recheckMs` at most. A longer `maxAgeMs` keeps chain reads off the
 * accept path of a busy provider (whose reads queue behind its reservations) without widening what
 * a client can take: escrow withdrawn meanwhile fails the reservation after the answer, which
 * `distrust`s the client, as with a fresh cache and a withdrawal just after the read.
 */
export type ClientView = {
  free(client: Address, need?: bigint): Promise<bigint>
  /** A job of `amount` accepted for `client`: held from its free escrow; `mined()` once its reservation is, `failed()` if it is not. */
  hold(client: Address, amount: bigint): { mined(): void; failed(): void }
  distrust(client: Address): void
  distrusted(client: Address): boolean
}

export function createClientView(ctx: Pick<ServeContext, 'clients' | 'deployment'>, o: { maxAgeMs?: number; refreshMs?: number; recheckMs?: number } = {}): ClientView {
  const maxAgeMs = o.maxAgeMs ?? 30_000
  const recheckMs = o.recheckMs ?? 500
  // a client's escrow changes only by its own deposits and withdrawals (this provider's jobs are
  // held locally): one read per client every 5 s at most, not one per job
  const refreshMs = o.refreshMs ?? 5_000
  // minedAt: when its reservation was seen mined; a read that began after that includes it
  type Held = { amount: bigint; minedAt?: number; failed?: boolean }
  type Entry = { escrow?: bigint; at: number; inflight?: Promise<void>; held: Held[] }
  const entries = new Map<string, Entry>()
  const distrust = new Set<string>()
  const entryOf = (client: Address) => {
    const k = client.toLowerCase()
    let e = entries.get(k)
    if (!e) entries.set(k, (e = { at: 0, held: [] }))
    return e
  }
  const refresh = (client: Address, e: Entry) => {
    e.inflight ??= (async () => {
      const started = Date.now()
      try {
        e.escrow = await read<bigint>(ctx.clients, ctx.deployment.settlement, 'Settlement', 'escrowOf', [client])
        e.at = started
        e.held = e.held.filter((h) => !h.failed && !(h.minedAt !== undefined && h.minedAt < started))
      } finally {
        e.inflight = undefined
      }
    })()
    return e.inflight
  }
  return {
    async free(client, need = 0n) {
      const e = entryOf(client)
      const age = e.escrow === undefined ? Number.POSITIVE_INFINITY : Date.now() - e.at
      if (age > maxAgeMs) await refresh(client, e)
      else if (age > refreshMs) void refresh(client, e).catch(() => {})
      const freeNow = () => {
        let held = 0n
        // a reservation mined while the last read ran may be counted twice: the safe side
        for (const h of e.held) if (!h.failed && !(h.minedAt !== undefined && h.minedAt < e.at)) held += h.amount
        return e.escrow! - held
      }
      if (freeNow() < need && Date.now() - e.at > recheckMs) await refresh(client, e)
      return freeNow()
    },
    hold(client, amount) {
      const h: Held = { amount }
      entryOf(client).held.push(h)
      return {
        mined: () => void (h.minedAt = Date.now()),
        failed: () => void (h.failed = true),
      }
    },
    distrust: (client) => void distrust.add(client.toLowerCase()),
    distrusted: (client) => distrust.has(client.toLowerCase()),
  }
}

const clientViews = new WeakMap<ServeContext, ClientView>()
function clientViewOf(ctx: ServeContext): ClientView {
  if (ctx.clientView) return ctx.clientView
  let v = clientViews.get(ctx)
  if (!v) clientViews.set(ctx, (v = createClientView(ctx)))
  return v
}

export type ServeOutcome =
  /** Answered and reserved on chain: claimable once `acked`. */
  | { outcome: 'served'; transcript: Transcript; acked: boolean }
  /** Refused by the checks or by the chain (`reserve`), before or after the answer went out: never claimable. */
  | { outcome: 'refused'; code: JobErrorCode; message: string }
  | { outcome: 'cancelled'; requestDigest: Hex; tokens: number; why: string }
  | { outcome: 'failed'; requestDigest?: Hex; tokens: number; error: Error }
  /** The stream closed or timed out before a request came. */
  | { outcome: 'closed' }

/** The models map of a list, keyed as `ServeContext.models` expects. */
export function modelsByRoot(list: readonly ServedModel[]): Map<string, ServedModel> {
  return new Map(list.map((m) => [`0x${toHex(m.model.modelRoot)}`, m]))
}

class Refusal extends Error {
  constructor(readonly code: JobErrorCode, message: string) {
    super(message)
  }
}

/**
 * The time `reserve` and the claim will be mined at, at the earliest: the latest block's, or the
 * clock's when that block is older (a quiet chain mines no block for a while).
 */
export function chainNow(latestBlockTimestamp: bigint): bigint {
  const wall = BigInt(Math.floor(Date.now() / 1000))
  return latestBlockTimestamp > wall ? latestBlockTimestamp : wall
}

/** The jobs to stop when a context's signal aborts: one listener per signal, however many jobs run at once. */
const abortHandlers = new WeakMap<AbortSignal, Set<() => void>>()

/** Calls `fn` when `signal` aborts (at once if it has); returns the unsubscribe. */
function onAbortOf(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn()
    return () => {}
  }
  let set = abortHandlers.get(signal)
  if (!set) {
    const handlers = new Set<() => void>()
    abortHandlers.set(signal, (set = handlers))
    signal.addEventListener('abort', () => {
      for (const h of handlers) h()
      handlers.clear()
    }, { once: true })
  }
  set.add(fn)
  return () => void set.delete(fn)
}

const keyOf = (client: Address, nonce: bigint) => `${client.toLowerCase()}:${nonce}`
const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Serves one job stream to its end (`/tessera/job/1.2.0`: one job per stream). Resolves with what
 * happened; never rejects.
 *
 * @example
 *   host.handle(JOB_PROTOCOL_1_2, (conn) => serveJob(conn, ctx))
 */
export function serveJob(conn: FrameConn, ctx: ServeContext): Promise<ServeOutcome> {
  return serveOne(conn, ctx, {})
}

/**
 * Serves a `/tessera/job/1.3.0` stream: jobs one after another, each as in `serveJob` plus the
 * `end` message before the receipt; once a job's acknowledgement is in, the stream waits (up to
 * `JobTimeouts.idleMs`) for the client's next request while the job's reservation and bookkeeping
 * finish beside it. `onOutcome` gets each job's outcome (a stream that ends idle gives `closed`).
 * Resolves when the stream is done and every job on it has ended; never rejects.
 *
 * @example
 *   host.handle(JOB_PROTOCOL, (conn) => serveJobs(conn, ctx, (o) => console.log(o.outcome)))
 */
export async function serveJobs(
  conn: FrameConn, ctx: ServeContext, onOutcome: (o: ServeOutcome) => void | Promise<void>, protocol: typeof JOB_PROTOCOL | typeof JOB_PROTOCOL_1_3 = JOB_PROTOCOL,
): Promise<void> {
  const running = new Set<Promise<void>>()
  const signatureAfter = protocol === JOB_PROTOCOL
  for (let later = false; !ctx.signal?.aborted; later = true) {
    let free: (again: boolean) => void = () => {}
    const freed = new Promise<boolean>((resolve) => (free = resolve))
    const job: Promise<void> = serveOne(conn, ctx, { later, end: true, signatureAfter, onFree: () => free(true) })
      .then(async (o) => {
        free(false)
        await onOutcome(o)
      })
      .catch(() => free(false))
      .finally(() => running.delete(job))
    running.add(job)
    if (!(await freed)) break
  }
  await Promise.all(running)
}

type ServeMode = {
  /** A later job on a kept stream: the wait for its request is `idleMs`, and running out of it closes the stream quietly. */
  later?: boolean
  /** 1.3.0: `end` goes out with the last tokens, before the receipt is signed. */
  end?: boolean
  /** 1.3.0: called once a valid acknowledgement is in; the stream is then the caller's again (not closed). */
  onFree?: () => void
  /** 1.4.0: a request may come without its signature, which follows in a `signature` message. */
  signatureAfter?: boolean
}

async function serveOne(conn: FrameConn, ctx: ServeContext, mode: ServeMode): Promise<ServeOutcome> {
  const t = { ...DEFAULT_JOB_TIMEOUTS, ...ctx.timeouts }
  let raw: unknown
  try {
    raw = await conn.recv(mode.later ? t.idleMs : t.requestMs)
  } catch (e) {
    // a malformed frame leaves the stream usable: say why; an oversized one already killed it
    if (e instanceof ProtocolError) return refuse(conn, 'bad-message', e.message)
    if (mode.later && e instanceof FrameTimeoutError) await conn.close().catch(() => {})
    else conn.abort(e as Error)
    return { outcome: 'closed' }
  }
  if (raw === undefined) return { outcome: 'closed' }
  let msg: RequestMsg
  try {
    const m = parseToProvider(raw)
    if (m.t !== 'request') throw new ProtocolError(`expected a request, got ${m.t}`)
    if (m.signature === undefined && !mode.signatureAfter) throw new ProtocolError('a request without its signature (only 1.4.0 sends it after the request)')
    msg = m
  } catch (e) {
    return refuse(conn, 'bad-message', (e as Error).message)
  }

  // 1.4.0, a request without its signature: the engine starts before the signature checks when
  // this peer has signed for this client before (vouched), has no other such job, and fewer than
  // maxSpeculative(capacity) run; else (and for a client whose reservation failed before) the
  // signature is awaited here, holding nothing
  const peer = conn.remotePeer
  let speculative = false
  if (msg.signature === undefined) {
    const known = ctx.slots.vouched.get(peer)?.has(msg.client.toLowerCase()) === true
    if (known && !ctx.slots.speculating.has(peer) && ctx.slots.speculating.size < maxSpeculative(ctx.capacity) && !clientViewOf(ctx).distrusted(msg.client)) {
      ctx.slots.speculating.add(peer)
      speculative = true
    } else {
      const got = await signatureOf(conn, t.signatureMs)
      if ('refused' in got) return refuse(conn, 'bad-message', got.refused)
      if ('closed' in got) return { outcome: 'closed' }
      msg.signature = got.signature
    }
  }
  let accepted: Accepted
  try {
    accepted = await accept(ctx, msg)
  } catch (e) {
    if (speculative) ctx.slots.speculating.delete(peer)
    if (e instanceof Refusal) return refuse(conn, e.code, e.message)
    return refuse(conn, 'internal', (e as Error).message)
  }
  // from here the job holds a slot and its reservation counts against the provider's stake
  if (!speculative) vouch(ctx.slots, peer, accepted.client) // accept checked the signature
  try {
    const o = await serveAccepted(conn, ctx, t, msg, accepted, mode, speculative ? peer : undefined)
    // an acknowledged job goes to the claims book, whose count the view reads at its next refresh
    if (o.outcome === 'served' && o.acked) viewOf(ctx).noteServed(accepted.amount)
    return o
  } finally {
    if (!accepted.slotFreed) ctx.slots.active--
    ctx.slots.reserved -= accepted.amount
    accepted.unhold()
  }
}

/** The `signature` message that must follow a request sent without one. */
async function signatureOf(conn: FrameConn, ms: number): Promise<{ signature: CompactSignature } | { refused: string } | { closed: true }> {
  let raw: unknown
  try {
    raw = await conn.recv(ms)
  } catch (e) {
    if (e instanceof ProtocolError) return { refused: e.message }
    if (e instanceof FrameTimeoutError) return { refused: `no signature within ${ms} ms of the request` }
    conn.abort(e as Error)
    return { closed: true }
  }
  if (raw === undefined) return { closed: true }
  try {
    const m = parseToProvider(raw)
    if (m.t !== 'signature') throw new ProtocolError(`expected the request's signature, got ${m.t}`)
    return { signature: m.signature }
  } catch (e) {
    return { refused: (e as Error).message }
  }
}

async function refuse(conn: FrameConn, code: JobErrorCode, message: string): Promise<ServeOutcome> {
  try {
    await conn.send({ t: 'error', code, message: message.slice(0, 500) })
    await conn.close()
  } catch {
    // the remote is gone: nothing to tell it
  }
  return { outcome: 'refused', code, message }
}

/**
 * `slotFreed`: the engine's slot was given back at `done` (the amount stays reserved until the job ends).
 * `reserve()` sends the reservation once (after `done`, or in `accept` for a distrusted client) and
 * resolves with its transaction hash, or rejects with the chain's refusal. `unhold()`: the job ended
 * without sending it (cancelled, failed), so its amount no longer counts against the client's escrow.
 */
type Accepted = { digest: Hex; key: string; client: Address; served: ServedModel; amount: bigint; reserve(): Promise<Hex>; unhold(): void; slotFreed?: boolean }

/**
 * The checks of docs/NETWORK.md "Jobs", in its order, against local state and the cached chain
 * facts, then the slot; the chain's own check (`reserve`) starts here and finishes while the
 * engine runs, or after `done`.
 */
async function accept(ctx: ServeContext, msg: RequestMsg): Promise<Accepted> {
  const d = ctx.deployment
  const me = ctx.clients.account.address
  const req = requestFromJson(msg.request)
  const client = getAddress(msg.client)
  // the store's nonce read and the cached chain facts are awaited below: started first, they
  // overlap the CPU-bound checks (a request that fails those leaves only a read behind)
  const clients = clientViewOf(ctx)
  const amount = BigInt(req.maxTokens) * req.pricePerToken
  const lookups = Promise.all([ctx.book.nonceSeen(client, req.nonce), viewOf(ctx).facts(), clients.free(client, amount)])
  lookups.catch(() => {})
  // the digest once: the signature is checked on it, the transcript and the claim name it
  const digest = requestDigest(d.chainId, d.settlement, req)
  // checked against the named client, by its cached key after its first jobs (src/chain/evm/secp.ts);
  // 1.4.0 without the signature: checked when it comes, while the engine runs (serveAccepted)
  if (msg.signature !== undefined && !isSignedBy(digest, msg.signature, client)) throw new Refusal('bad-signature', `the request signature is not ${client}'s`)
  if (getAddress(req.provider) !== me) throw new Refusal('wrong-provider', `the request names provider ${req.provider}, this is ${me}`)
  const served = ctx.models.get(req.modelRoot.toLowerCase())
  if (!served) throw new Refusal('unknown-model', `model ${req.modelRoot} is not served here`)
  if (`0x${toHex(tokensRoot(msg.prompt))}` !== req.promptRoot.toLowerCase()) throw new Refusal('prompt-mismatch', "the prompt tokens do not hash to the request's promptRoot")
  if (`0x${toHex(paramsHash(msg.params))}` !== req.paramsHash.toLowerCase()) throw new Refusal('params-mismatch', "the params do not hash to the request's paramsHash")
  // the claim bills prompt + output tokens under maxTokens: an answer the request cannot pay for is refused now
  if (msg.prompt.length + msg.params.maxTokens > req.maxTokens) {
    throw new Refusal('params-mismatch', `prompt (${msg.prompt.length}) + max output (${msg.params.maxTokens}) tokens exceed the request's maxTokens ${req.maxTokens}`)
  }
  checkRunnable(served.model.transformer.config, msg.prompt, msg.params, req.seed)

  const key = keyOf(client, req.nonce)
  const [seen, facts, escrow] = await lookups
  // synchronous from here to taking the slot: two streams with one request cannot both pass
  if (seen || ctx.slots.requests.has(key)) throw new Refusal('replayed', `nonce ${req.nonce} of ${client} was already used`)
  const minLife = ctx.minLifetimeS ?? 300n
  const now = chainNow(facts.blockTimestamp)
  if (req.expiry <= now + minLife) throw new Refusal('expired', `the request expires at ${req.expiry}, before ${now} + ${minLife} s`)
  if (req.pricePerToken < served.pricePerToken) throw new Refusal('price-too-low', `price ${req.pricePerToken} is below this provider's ${served.pricePerToken} wei per token`)
  if (ctx.slots.active >= ctx.capacity) throw new Refusal('busy', `all ${ctx.capacity} job slots are taken`)
  const sp = d.params.settlement
  const needed = exposureOf(ctx.slots.reserved + facts.unclaimed + amount, { auditBps: Number(sp.auditBps), rewardBps: Number(sp.rewardBps), collusionBps: Number(sp.collusionBps ?? 0) })
  const free = facts.active - facts.locked
  if (free < needed) throw new Refusal('stake-too-low', `unlocked stake ${free} does not cover the exposure ${needed} of the jobs in flight and this one`)
  if (escrow < amount) throw new Refusal('escrow-too-low', `the client's free escrow ${escrow} (less this provider's jobs of it not yet reserved) does not cover ${amount}`)
  const held = clients.hold(client, amount)
  ctx.slots.active++
  ctx.slots.reserved += amount
  if (ctx.slots.requests.size >= MAX_LIVE_KEYS) for (const [k, expiry] of ctx.slots.requests) if (expiry <= now) ctx.slots.requests.delete(k)
  ctx.slots.requests.set(key, req.expiry)
  // the chain's check: the reservation of the client's escrow (reverts on escrow, on a nonce
  // reserved or paid before, e.g. a job this store does not know, on expiry)
  let sent: Promise<Hex> | undefined
  const reserveOnce = () => {
    const sig = msg.signature
    if (sig === undefined) {
      held.failed()
      return Promise.reject(new Refusal('internal', 'no reservation without the request signature'))
    }
    sent ??= reserveFast(ctx, { req, r: sig.r, vs: sig.vs }).then(
      (hash) => {
        held.mined()
        return hash
      },
      (e: unknown) => {
        held.failed()
        clients.distrust(client)
        throw reserveRefusal(e)
      },
    )
    return sent
  }
  const a: Accepted = { digest, key, client, served, amount, reserve: reserveOnce, unhold: () => void (sent ?? held.failed()) }
  if (clients.distrusted(client)) {
    // this client's reservation failed after an answer once: its jobs wait for the chain first
    try {
      await reserveOnce()
    } catch (e) {
      ctx.slots.active--
      ctx.slots.reserved -= amount
      throw e
    }
  }
  return a
}

/**
 * EIP-1559 fees for `reserve`, per chain clients: the latest base fee doubled plus the node's
 * suggested tip (what a wallet would offer; doubling covers six full blocks of base fee rises),
 * read at most every FEES_REFRESH_MS in the background and waited for only when older than
 * FEES_MAX_AGE_MS. Saves a reservation two of its three reads (block, tip; the nonce stays a read,
 * as other transactions of the account go out beside it); a refused fee drops the cache.
 */
const feeCache = new WeakMap<ChainClients, { fees?: Fees; at: number; inflight?: Promise<Fees> }>()
const FEES_REFRESH_MS = 2_000
const FEES_MAX_AGE_MS = 30_000

function feesOf(c: ChainClients): Promise<Fees> {
  let e = feeCache.get(c)
  if (!e) feeCache.set(c, (e = { at: 0 }))
  const entry = e
  const read = () => {
    entry.inflight ??= (async () => {
      const started = Date.now()
      try {
        const [block, tip] = await Promise.all([c.public.getBlock(), c.public.estimateMaxPriorityFeePerGas()])
        const fees = { maxFeePerGas: (block.baseFeePerGas ?? 0n) * 2n + tip, maxPriorityFeePerGas: tip }
        entry.fees = fees
        entry.at = started
        return fees
      } finally {
        entry.inflight = undefined
      }
    })()
    return entry.inflight
  }
  const age = entry.fees ? Date.now() - entry.at : Number.POSITIVE_INFINITY
  if (age > FEES_MAX_AGE_MS) return read()
  if (age > FEES_REFRESH_MS) void read().catch(() => {})
  return Promise.resolve(entry.fees!)
}

/** `reserve`'s gas limit per settlement contract, from the first reservation's use (see reserveFast). */
const reserveGas = new Map<string, bigint>()

/**
 * Sends `reserve`: the first of a process through the simulating `send`, whose gas used sets the
 * limit of every later one (with margin), which then go out without simulation and estimate.
 * A later one that runs out of gas anyway (never seen: a reservation's storage writes are the same
 * each time) is sent again the simulating way.
 */
async function reserveFast(ctx: ServeContext, a: { req: ReturnType<typeof requestFromJson>; r: Hex; vs: Hex }): Promise<Hex> {
  const key = `${ctx.deployment.chainId}:${ctx.deployment.settlement.toLowerCase()}`
  const gas = reserveGas.get(key)
  const args = [a.req, a.r, a.vs]
  if (gas !== undefined) {
    // cached fees: the transaction's own reads are then only its nonce (one sender at a time per account)
    const fees = await feesOf(ctx.clients).catch(() => undefined)
    try {
      return (await send(ctx.clients, ctx.deployment.settlement, 'Settlement', 'reserve', args, undefined, { gas, fees })).receipt.transactionHash
    } catch (e) {
      if (e instanceof ContractRevertError && e.errorName !== 'OutOfGas') throw e
      // out of gas, or not a revert (fees the chain refused: dropped, read afresh below)
      if (!(e instanceof ContractRevertError)) {
        if (fees === undefined) throw e
        feeCache.delete(ctx.clients)
      }
    }
  }
  const r = await send(ctx.clients, ctx.deployment.settlement, 'Settlement', 'reserve', args)
  reserveGas.set(key, (r.gasUsed * 3n) / 2n + 20_000n)
  return r.receipt.transactionHash
}

/** What the engine would refuse at its first step (runJob's validation), refused before reserving. */
function checkRunnable(config: { vocabSize: number; contextLength: number }, prompt: readonly number[], params: JobParams, seed: bigint): void {
  try {
    const { maxTokens: _m, stop: _s, ...sampling } = params
    validateSampling({ ...sampling, seed })
  } catch (e) {
    throw new Refusal('bad-message', (e as Error).message)
  }
  if (prompt.length > config.contextLength - 1) throw new Refusal('bad-message', `a prompt of ${prompt.length} tokens does not fit the context of ${config.contextLength}`)
  if (prompt.some((id) => id >= config.vocabSize)) throw new Refusal('bad-message', `prompt token ids must be below ${config.vocabSize}`)
}

function reserveRefusal(e: unknown): Refusal {
  const name = e instanceof ContractRevertError ? e.errorName : ''
  const code: JobErrorCode =
    name === 'InsufficientEscrow' ? 'escrow-too-low'
    : name === 'JobAlreadyClaimed' || name === 'AlreadyReserved' ? 'replayed'
    : name === 'RequestExpired' ? 'expired'
    : name === 'BadSignature' ? 'bad-signature'
    : name === 'NotTheProvider' ? 'wrong-provider'
    : 'internal'
  return new Refusal(code, `reserve failed: ${name || (e as Error).message}`)
}

/** A token to stream, with the text it adds. */
type Step = { token: number; text: string }
type AnswerEnd = { output: number[]; text: string; stopReason: StopReason; receipt: Receipt }
type Answer = { steps: Iterator<Step, AnswerEnd> }

/** The honest engine's answer, token by token (runJob), or a precomputed cheat's. */
function answerOf(ctx: ServeContext, served: ServedModel, msg: RequestMsg, digest: Hex): Answer {
  const m = served.model
  const seed = BigInt(msg.request.seed)
  if (!ctx.cheat) {
    const it = runJob(m.transformer, m.tokenizer, m.modelRoot, { promptTokens: msg.prompt, params: msg.params, seed, arith: served.arith })
    return {
      steps: {
        next() {
          const r = it.next()
          return r.done ? { done: true, value: { output: r.value.outputTokens, text: r.value.text, stopReason: r.value.stopReason, receipt: r.value.receipt } } : r
        },
      },
    }
  }
  if (!served.dispute) throw new Error(`the cheat ${ctx.cheat} needs the model's dispute view`)
  const c = cheatingTrace(served.dispute, { prompt: msg.prompt, params: msg.params, seed, requestDigest: digest }, ctx.cheat)
  const output = c.trace.outputs
  // the text of every token (the machine knows no stop strings), ending where the cheat's answer ends
  const stop = new StopState(m.tokenizer, { ...msg.params, stop: [], maxTokens: output.length })
  const last = output.at(-1)!
  const receipt: Receipt = {
    version: RECEIPT_VERSION, arith: served.arith ?? ARITH_VERSION, engine: ENGINE_VERSION, modelRoot: toHex(m.modelRoot), promptRoot: toHex(tokensRoot(msg.prompt)),
    paramsHash: toHex(paramsHash(msg.params)), outputRoot: toHex(tokensRoot(output)), traceRoot: toHex(c.provider.traceTree().root),
    params: msg.params, seed: String(seed), nPrompt: msg.prompt.length, nOutput: output.length, nLayer: m.transformer.config.nLayer,
  }
  let i = 0
  let text = ''
  return {
    steps: {
      next() {
        if (i < output.length) {
          const token = output[i++]
          const piece = stop.push(token, i)
          text += piece
          return { done: false, value: { token, text: piece } }
        }
        return { done: true, value: { output, text, stopReason: m.tokenizer.eogTokens.has(last) ? 'eog' : 'length', receipt } }
      },
    },
  }
}

/**
 * Runs an accepted job. `speculativePeer` (1.4.0, a request sent without its signature): the
 * engine runs while the signature is awaited; `accepted` and the tokens are held until it checks
 * (at most MAX_TOKENS_PER_WRITE of them: then the engine waits too), the receipt is signed only
 * after; a bad signature, or none within `signatureMs`, stops the engine and refuses the job
 * (`bad-signature`) with nothing of the answer sent, and frees its request key.
 */
async function serveAccepted(conn: FrameConn, ctx: ServeContext, t: JobTimeouts, msg: RequestMsg, a: Accepted, mode: ServeMode, speculativePeer?: string): Promise<ServeOutcome> {
  const d = ctx.deployment
  const deadline = Date.now() + t.jobMs
  const stop = new AbortController()
  // the signature's verdict: true at once for a signed request
  let verified = msg.signature !== undefined
  let badSignature: string | undefined
  let settle: (ok: boolean) => void = () => {}
  const verdict = new Promise<boolean>((resolve) => (settle = resolve))
  const unspeculate = () => void (speculativePeer !== undefined && ctx.slots.speculating.delete(speculativePeer))
  const signatureTimer = verified ? undefined : setTimeout(() => rejectSignature(`no signature within ${t.signatureMs} ms of the request`), t.signatureMs)
  function rejectSignature(why: string) {
    if (verified || badSignature !== undefined) return
    badSignature = why
    if (speculativePeer !== undefined) ctx.slots.vouched.delete(speculativePeer)
    clearTimeout(signatureTimer)
    unspeculate()
    settle(false)
    stop.abort(new Error(why))
  }
  if (verified) settle(true)
  // why generation stops early: a cancel (the client's, or the node shutting down) or a dead stream
  let cancel: string | undefined
  const onOuterAbort = () => {
    cancel ??= 'the provider is shutting down'
    stop.abort(new Error(cancel))
  }
  const offShutdown = ctx.signal ? onAbortOf(ctx.signal, onOuterAbort) : () => {}
  let tokens = 0
  let readerDone = false
  // The one reader of this stream: a cancel or a dead stream stops generation; after `done` it takes the ack.
  let ackResolve: (m: AckMsg | undefined) => void = () => {}
  const ack = new Promise<AckMsg | undefined>((resolve) => (ackResolve = resolve))
  const endReading = (why: unknown) => {
    stop.abort(why)
    ackResolve(undefined)
    clearTimeout(signatureTimer)
    settle(false)
  }
  const reader = (async () => {
    while (!readerDone) {
      let m: unknown
      try {
        // short polls, so the reader notices the end of the job without waiting out a long timeout
        m = await conn.recv(Math.max(1, Math.min(250, deadline - Date.now())))
      } catch (e) {
        if (e instanceof FrameTimeoutError && Date.now() < deadline) continue
        return endReading(e)
      }
      if (m === undefined) return endReading(new Error('the client closed the stream'))
      let parsed: ToProvider
      try {
        parsed = parseToProvider(m)
      } catch (e) {
        return endReading(e)
      }
      if (parsed.t === 'ack') return ackResolve(parsed)
      if (parsed.t === 'signature' && !verified && badSignature === undefined) {
        // checked here, between the engine's steps (by the client's cached key after its first
        // jobs; on this thread: the thread pool's round trip took longer than the engine's steps
        // on a small model, docs/BENCHMARKS.md "Seventh pass")
        if (!isSignedBy(a.digest, parsed.signature, a.client)) {
          rejectSignature(`the request signature is not ${a.client}'s`)
          return
        }
        msg.signature = parsed.signature
        verified = true
        if (speculativePeer !== undefined) vouch(ctx.slots, speculativePeer, a.client)
        clearTimeout(signatureTimer)
        unspeculate()
        settle(true)
        continue
      }
      if (parsed.t === 'cancel' || parsed.t === 'error') cancel ??= parsed.t === 'cancel' ? 'the client cancelled' : `the client sent error ${parsed.code}`
      return endReading(new Error(cancel ?? `unexpected ${parsed.t} message`))
    }
  })()

  // a bad signature: the engine stopped, nothing of the answer went out
  const refuseSignature = async (): Promise<ServeOutcome> => {
    ctx.slots.requests.delete(a.key)
    return refuse(conn, 'bad-signature', badSignature ?? 'the request signature did not check')
  }
  try {
    // `accepted` goes out with the first write of tokens (one frame less each way), or on its own
    // before a prefill of more than one batch, which can take a while; 1.4.0 without the
    // signature: with the first write once the signature checked
    let acceptedSent = false
    if (verified && msg.prompt.length > ACCEPTED_ALONE_AFTER) {
      await conn.send({ t: 'accepted' })
      acceptedSent = true
    }
    const answer = answerOf(ctx, a.served, msg, a.digest)
    let result: AnswerEnd
    // sampled, not yet written (TOKEN_FLUSH_MS); `tokens` counts the written ones
    const pending: TokenMsg[] = []
    // a token is written once TOKEN_FLUSH_MS have passed since the last write (or since the engine
    // started): an answer that comes within that time goes out whole, with its receipt, in one write
    const startedAt = performance.now()
    let wroteAt: number | undefined
    const due = () => pending.length >= MAX_TOKENS_PER_WRITE || performance.now() - (wroteAt ?? startedAt) >= TOKEN_FLUSH_MS
    const write = async (extra: unknown[] = []) => {
      const head = acceptedSent ? [] : [{ t: 'accepted' }]
      const n = pending.length
      const batch = [...head, ...pending.splice(0), ...extra]
      if (batch.length === 0) return
      // sendMany resolves once the stream takes the frames (it waits to drain when full): the
      // engine stays at most one batch ahead of what the transport accepted
      await conn.sendMany(batch)
      acceptedSent = true
      tokens += n
      wroteAt = performance.now()
    }
    for (;;) {
      if (stop.signal.aborted) return badSignature !== undefined ? refuseSignature() : stopped(conn, a, tokens, cancel, stop.signal.reason)
      if (Date.now() > deadline) throw new Error(`the job ran past ${t.jobMs} ms`)
      // the signature checked while tokens were held (1.4.0, speculative): those due go out now, not after one more step
      if (verified && pending.length > 0 && due()) await write()
      const r = answer.steps.next()
      if (r.done) {
        result = r.value
        break
      }
      pending.push({ t: 'token', i: tokens + pending.length, id: r.value.token, text: r.value.text })
      if (!verified) {
        // speculation is bounded: a full batch held waits for the signature's verdict
        if (pending.length >= MAX_TOKENS_PER_WRITE) await verdict
      } else if (due()) await write()
      await tick()
    }
    // the answer is complete: nothing of it (nor the receipt) goes out before the signature checks
    if (!(await verdict)) return badSignature !== undefined ? refuseSignature() : stopped(conn, a, tokens, cancel, stop.signal.reason)
    // the receipt goes out before the reservation: nothing is claimed without both the reservation
    // and the client's acknowledgement
    // a local account signs the digest (the bytes signReceipt's signTypedData hashes, computed faster: chain/typedDigest.ts)
    const fields = receiptFieldsOf(result.receipt, a.digest)
    const account = ctx.clients.account
    const receiptSignature = account.sign
      ? await signHash(account, receiptFieldsDigest(d.chainId, d.settlement, fields))
      : await signReceipt(ctx.clients.wallet, d.chainId, d.settlement, fields)
    const transcript: Transcript = {
      v: TRANSCRIPT_VERSION, chainId: d.chainId, settlement: d.settlement, request: msg.request, requestDigest: a.digest,
      requestSignature: msg.signature!, client: a.client, prompt: msg.prompt, params: msg.params, output: result.output,
      text: result.text, stopReason: result.stopReason, receipt: result.receipt, receiptSignature,
    }
    // the last tokens, `end` (1.3.0) and the receipt in one write: one frame and one wake-up of the
    // client less than writing the receipt after them
    const end = mode.end ? [{ t: 'end', n: tokens + pending.length, stopReason: result.stopReason } satisfies EndMsg] : []
    await write([...end, { t: 'done', receipt: result.receipt, receiptSignature, stopReason: result.stopReason }])
    let refused: Refusal | undefined
    // the engine is done: its slot is free for the client's next job while this one waits for the ack
    ctx.slots.active--
    a.slotFreed = true
    // stored once the reservation and the ack are in (one write; meanwhile the slots hold its nonce,
    // and a replay after a crash here is refused by the chain: the reservation went out with it)
    const timeLeft = (ms: number) => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), Math.max(0, ms)).unref())
    // 1.3.0: a valid acknowledgement hands the stream back for the next request at once; the
    // reservation and the store write finish beside it
    let freed = false
    const acked = Promise.race([ack, timeLeft(t.ackMs)]).then((m) => {
      const valid = m !== undefined && ackIsValid(transcript, m.delivery)
      if (valid && mode.onFree) {
        freed = true
        mode.onFree()
      }
      return valid ? m : undefined
    })
    // the chain's work only now, off the tokens' thread time: the reservation, sent once, after the
    // acknowledgement (or its timeout): its JSON-RPC requests (several writes and reads each) would
    // otherwise share the CPU with the client's receipt check, which the client's answer waits for
    const reserving = acked.then(() => a.reserve())
    reserving.catch((e: unknown) => void (refused = e instanceof Refusal ? e : new Refusal('internal', (e as Error).message)))
    const [m, reservation] = await Promise.all([acked, Promise.race([reserving.catch(() => undefined), timeLeft(deadline - Date.now())])])
    readerDone = true
    const closeUnlessFreed = async () => {
      if (!freed) await conn.close().catch(() => {})
    }
    if (reservation === undefined) {
      // the chain refused the job after the answer went out: served unpaid, its acknowledgement
      // is not kept, so nothing of it is ever claimed
      await ctx.book.putTranscript(transcript)
      await closeUnlessFreed()
      await reader
      const r = refused ?? new Refusal('internal', `the reservation was not mined within ${t.jobMs} ms`)
      return { outcome: 'refused', code: r.code, message: `after the answer was delivered: ${r.message}` }
    }
    transcript.reservation = reservation
    let acknowledged = false
    if (m) {
      transcript.ack = m.delivery
      acknowledged = true
    }
    await ctx.book.putTranscript(transcript)
    await closeUnlessFreed()
    await reader
    return { outcome: 'served', transcript, acked: acknowledged }
  } catch (e) {
    if (cancel) return stopped(conn, a, tokens, cancel, e)
    conn.abort(e as Error)
    return { outcome: 'failed', requestDigest: a.digest, tokens, error: e as Error }
  } finally {
    readerDone = true
    clearTimeout(signatureTimer)
    unspeculate()
    offShutdown()
    stop.abort(new Error('job over'))
  }
}

/** Generation stopped early: cancelled (with `cancel`'s reason), else the stream failed. */
async function stopped(conn: FrameConn, a: Accepted, tokens: number, cancel: string | undefined, reason: unknown): Promise<ServeOutcome> {
  if (cancel === undefined) {
    const error = reason instanceof Error ? reason : new Error(String(reason))
    conn.abort(error)
    return { outcome: 'failed', requestDigest: a.digest, tokens, error }
  }
  const why = cancel
  try {
    await conn.send({ t: 'cancel' })
    await conn.close()
  } catch {
    // the stream is already gone
  }
  return { outcome: 'cancelled', requestDigest: a.digest, tokens, why }
}

/** The client signed it, for this request, and it acknowledges a prefix of the answer (what the claim needs). */
function ackIsValid(t: Transcript, ack: NonNullable<Transcript['ack']>): boolean {
  if (!(ack.nOutput >= 1 && ack.nOutput <= t.output.length)) return false
  if (`0x${toHex(tokensRoot(t.output.slice(0, ack.nOutput)))}` !== ack.outputRoot.toLowerCase()) return false
  return isAckOf(t, ack)
}
