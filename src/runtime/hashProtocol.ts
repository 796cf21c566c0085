/** Messages and shared counters between `hashWorkers.ts` (the loader's thread) and `hashWorker.ts`. */

/** Int32 slots of the pool's SharedArrayBuffer. */
export const Sync = {
  /** Workers that have started (each adds 1 once its port listens). */
  STARTED: 0,
  /** Replies posted so far (bumped and notified after each reply is posted). */
  REPLIES: 1,
  LENGTH: 2,
} as const

/** Whole rows of one tensor to commit to (`bytes` is transferred). */
export type HashJob = { id: number; type: number; cols: number; bytes: Uint8Array }

/** The rows' commitments, 32 bytes each in row order, or the error that stopped the job. */
export type HashReply = { id: number; commitments?: Uint8Array; error?: string }
