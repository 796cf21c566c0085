/**
 * The model root's row hashing on worker threads, so that loading a model hashes its weights
 * beside the file reads and `backend.writeRows` instead of after them (docs/TRACE.md, "Model
 * root"; docs/BENCHMARKS.md, "Model load"). Each worker runs `rowCommitmentsInto`, the same code
 * as the single-thread path, on whole rows it is handed; only the placement of the work changes,
 * never a hash.
 *
 * The pool is synchronous to its caller (`loadWeights` is): buffers go to the workers by
 * transfer (no copy), results come back on MessagePorts read with `receiveMessageOnPort`, and the
 * main thread blocks in `Atomics.wait` on a shared counter the workers bump after each reply.
 * A tensor's row root (a Merkle tree over its row commitments) is a job too, sent as soon as the
 * last of its rows is hashed, so the loading thread does no hashing at all.
 * At most MAX_IN_FLIGHT bytes wait in the workers' queues, so a slow worker never makes the
 * loader hold the whole file.
 *
 * @example
 *   const pool = createHashPool({ workers: 2 })
 *   try {
 *     pool.hash(type, cols, bytes, commits, 0)   // bytes is handed over: do not use it afterwards
 *     pool.rowRoot(commits, rows, (root) => { rowRoot = root })   // commits is handed over too
 *     pool.drain()                               // rowRoot is set
 *   } finally { pool.close() }
 */
import { availableParallelism } from 'node:os'
import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads'
import { spawnWorker } from './spawnWorker.js'
import { BaseError } from '../errors.js'
import type { Hash } from '../trace/merkle.js'
import { type HashJob, type HashReply, Sync } from './hashProtocol.js'

/** A hash worker failed (its error is the cause) or stopped answering. */
export class HashWorkerError extends BaseError {
  override name = 'HashWorkerError'
  constructor(shortMessage: string, cause?: unknown) {
    super(shortMessage, { cause, details: 'the model root could not be computed', docs: 'docs/TRACE.md#model-root' })
  }
}

/** Bytes handed to workers and not yet answered, beyond which `hash` waits for replies. */
const MAX_IN_FLIGHT = 64 << 20
/** A worker that has not started after this long, or a pool with no reply for this long, is broken. */
const START_MS = 60_000
const STALL_MS = 120_000

export type HashPoolOptions = {
  /** Worker threads (default: the CPU count, at most 4). */
  workers?: number
  /** Bytes handed out and not yet answered before `hash` waits (default 64 MiB). */
  maxInFlight?: number
}

export type HashPool = {
  readonly workers: number
  /**
   * Queues the commitments of the whole rows in `bytes` (a tensor of `type` with `cols`
   * columns) to be written 32 bytes each into `out` from byte `at`. Takes `bytes` over: its
   * buffer is transferred to a worker when `bytes` spans all of it (copied otherwise).
   */
  hash(type: number, cols: number, bytes: Uint8Array, out: Uint8Array, at: number): void
  /**
   * Once every `hash` job into `commitments` is in, computes `merkleRootPacked(commitments, rows)`
   * on a worker and calls `done` with it (from within `hash`, `rowRoot` or `drain`). Takes
   * `commitments` over like `hash` takes `bytes`: no more `hash` calls into it.
   */
  rowRoot(commitments: Uint8Array, rows: number, done: (root: Hash) => void): void
  /** Blocks until every queued job is done (outs written, roots delivered); throws `HashWorkerError` on a failure. */
  drain(): void
  /** Stops the workers (pending jobs are dropped). */
  close(): void
}

/** The default worker count for hashing: every core (the loader's own thread mostly waits on I/O and copies). */
export function defaultHashWorkers(): number {
  return Math.min(4, Math.max(1, availableParallelism()))
}

type Slot = { worker: Worker; port: MessagePort; inFlight: number; error?: unknown }
type Pending = { bytes: number; slot: Slot } & ({ out: Uint8Array; at: number } | { done: (root: Hash) => void })

/** `bytes` itself when it owns its whole (non-shared) buffer, so it can be transferred; else a copy. */
function transferable(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && !(bytes.buffer instanceof SharedArrayBuffer) ? bytes : bytes.slice()
}

function startWorker(sync: SharedArrayBuffer, port: MessagePort): Worker {
  return spawnWorker('hashWorker', { workerData: { sync, port }, transferList: [port] })
}

/** Starts `workers` hash threads (synchronously; they boot while the caller reads the file). */
export function createHashPool(options: HashPoolOptions = {}): HashPool {
  const n = options.workers ?? defaultHashWorkers()
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError(`createHashPool: workers must be an integer from 1 to 64, not ${n}`)
  const maxInFlight = options.maxInFlight ?? MAX_IN_FLIGHT
  const sync = new SharedArrayBuffer(Sync.LENGTH * 4)
  const flags = new Int32Array(sync)
  const slots: Slot[] = []
  for (let i = 0; i < n; i++) {
    const { port1, port2 } = new MessageChannel()
    const worker = startWorker(sync, port2)
    const slot: Slot = { worker, port: port1, inFlight: 0 }
    // Seen only once the caller's event loop runs; a worker dying mid-load shows up as a stall.
    worker.on('error', (e) => { slot.error = e })
    worker.unref()
    slots.push(slot)
  }
  const pending = new Map<number, Pending>()
  // Per commitments buffer: `hash` jobs not yet answered, and a row root waiting for them.
  const unanswered = new Map<Uint8Array, number>()
  const rootWaiting = new Map<Uint8Array, { rows: number; done: (root: Hash) => void }>()
  let nextId = 0
  let inFlight = 0
  let closed = false
  const created = performance.now()
  let lastReply = created

  function send(job: HashJob, p: Pending): void {
    pending.set(job.id, p)
    p.slot.inFlight += p.bytes
    inFlight += p.bytes
    p.slot.port.postMessage(job, [job.bytes.buffer as ArrayBuffer])
  }

  function leastBusy(): Slot {
    let slot = slots[0]
    for (const s of slots) if (s.inFlight < slot.inFlight) slot = s
    return slot
  }

  function sendRoot(commitments: Uint8Array, rows: number, done: (root: Hash) => void): void {
    const bytes = transferable(commitments)
    send({ id: nextId++, kind: 'root', rows, bytes }, { bytes: bytes.length, slot: leastBusy(), done })
  }

  function take(reply: HashReply): void {
    const p = pending.get(reply.id)
    if (!p) return
    pending.delete(reply.id)
    p.slot.inFlight -= p.bytes
    inFlight -= p.bytes
    lastReply = performance.now()
    if (reply.error !== undefined) throw new HashWorkerError(`a hash worker failed: ${reply.error}`)
    if ('done' in p) return p.done(reply.hashes!)
    p.out.set(reply.hashes!, p.at)
    const left = unanswered.get(p.out)! - 1
    if (left > 0) return void unanswered.set(p.out, left)
    unanswered.delete(p.out)
    const r = rootWaiting.get(p.out)
    if (r) {
      rootWaiting.delete(p.out)
      sendRoot(p.out, r.rows, r.done)
    }
  }

  /** Takes every reply already queued; returns how many. */
  function poll(): number {
    let got = 0
    for (const s of slots) {
      for (let m = receiveMessageOnPort(s.port); m; m = receiveMessageOnPort(s.port)) {
        take(m.message as HashReply)
        got++
      }
    }
    return got
  }

  /** Blocks until at least one reply arrives (or none is pending). */
  function waitForReply(): void {
    for (;;) {
      if (pending.size === 0) return
      const seen = Atomics.load(flags, Sync.REPLIES)
      // Workers post before they bump REPLIES, so a reply posted after this poll wakes the wait.
      if (poll() > 0) return
      if (Atomics.wait(flags, Sync.REPLIES, seen, 1000) !== 'timed-out') continue
      const now = performance.now()
      if (Atomics.load(flags, Sync.STARTED) < slots.length && now - created > START_MS) {
        throw new HashWorkerError(`hash workers did not start within ${START_MS / 1000} s`, slots.find((s) => s.error)?.error)
      }
      if (now - lastReply > STALL_MS) throw new HashWorkerError(`hash workers stopped answering (${pending.size} jobs pending)`, slots.find((s) => s.error)?.error)
    }
  }

  function open(): void {
    if (closed) throw new HashWorkerError('the hash pool is closed')
  }

  return {
    workers: n,
    hash(type, cols, bytes, out, at) {
      open()
      if (rootWaiting.has(out)) throw new RangeError('hash: the row root of these commitments is already requested')
      poll()
      while (inFlight > 0 && inFlight + bytes.length > maxInFlight) waitForReply()
      const owned = transferable(bytes)
      unanswered.set(out, (unanswered.get(out) ?? 0) + 1)
      send({ id: nextId++, kind: 'rows', type, cols, bytes: owned }, { bytes: owned.length, slot: leastBusy(), out, at })
    },
    rowRoot(commitments, rows, done) {
      open()
      if (unanswered.has(commitments)) rootWaiting.set(commitments, { rows, done })
      else sendRoot(commitments, rows, done)
    },
    drain() {
      open()
      while (pending.size > 0) waitForReply()
    },
    close() {
      if (closed) return
      closed = true
      pending.clear()
      unanswered.clear()
      rootWaiting.clear()
      for (const s of slots) {
        s.port.close()
        void s.worker.terminate()
      }
    },
  }
}
