/** Messages and shared counters between `hashWorkers.ts` (the loader's thread) and `hashWorker.ts`. */

/** Int32 slots of the pool's SharedArrayBuffer. */
export const Sync = {
  /** Workers that have started (each adds 1 once its port listens). */
  STARTED: 0,
  /** Replies posted so far (bumped and notified after each reply is posted). */
  REPLIES: 1,
  LENGTH: 2,
} as const

/**
 * `rows`: whole rows of one tensor to commit to. `root`: the Merkle root over `rows` packed
 * 32-byte row commitments (a tensor's row root). `bytes` is transferred.
 */
export type HashJob =
  | { id: number; kind: 'rows'; type: number; cols: number; bytes: Uint8Array }
  | { id: number; kind: 'root'; rows: number; bytes: Uint8Array }

/** The rows' commitments (32 bytes each in row order) or the root, or the error that stopped the job. */
export type HashReply = { id: number; hashes?: Uint8Array; error?: string }
