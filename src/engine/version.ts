/**
 * Version strings that change the bits: any change to docs/ARITHMETIC.md is a new arithmetic,
 * which changes every execution id and receipt.
 *
 * `tessera-arith/1` is the v1 arithmetic; `tessera-arith/2` is v1 with the cached K and V values
 * that attention reads rounded to binary16 (docs/ARITHMETIC.md, "tessera-arith/2"). A model's
 * on-chain registration names the arithmetic its jobs are judged under; `ARITH_VERSION` is the
 * default for new registrations and jobs.
 */
// (typed as their literal types, so they stay literal inside object literals)
export const ARITH_V1: 'tessera-arith/1' = 'tessera-arith/1'
export const ARITH_V2: 'tessera-arith/2' = 'tessera-arith/2'
/** One of the arithmetics this engine computes. */
export type ArithVersion = typeof ARITH_V1 | typeof ARITH_V2
/**
 * The arithmetic of new registrations and jobs: tessera-arith/2 since the one-step judge decides
 * v2 jobs (models registered under v1 keep v1: a job follows its model's registration).
 */
export const ARITH_VERSION: ArithVersion = ARITH_V2
export const ENGINE_VERSION = 'tessera/0.1.0'

/**
 * Whether `s` names an arithmetic this engine computes.
 * @example isArithVersion('tessera-arith/2') // true
 */
export function isArithVersion(s: unknown): s is ArithVersion {
  return s === ARITH_V1 || s === ARITH_V2
}

/**
 * Whether the arithmetic rounds every cached K and V value attention reads to binary16
 * (R(x) = h2f(f2h(x)), docs/ARITHMETIC.md step 4).
 * @example roundsKv(ARITH_V2) // true
 */
export function roundsKv(arith: ArithVersion): boolean {
  return arith === ARITH_V2
}
