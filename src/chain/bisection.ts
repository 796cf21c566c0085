/**
 * Position arithmetic of the dispute game (src/chain/contracts/DisputeGame.sol), in TypeScript
 * so that providers and challengers compute exactly what the contract checks. Fuzzed against the
 * contract in bisection.test.ts.
 */

/** log2 of the number of children revealed per descent round (k = 16). */
export const LOG_K = 4
/** Levels of the game: trace (position, layer), op, element, primitive step. */
export const LEVELS = 4

/** Depth of the padded binary tree over `n` leaves (0 for one leaf). */
export function treeDepth(n: bigint): number {
  let d = 0
  while (1n << BigInt(d) < n) d++
  return d
}

/** Trace leaves of a receipt: (nPrompt + nOutput - 1) positions times (nLayer + 1) leaves. */
export function traceLeafCount(nPrompt: number, nOutput: number, nLayer: number): bigint {
  let positions = BigInt(nPrompt) + BigInt(nOutput)
  if (positions > 1n) positions -= 1n
  return positions * (BigInt(nLayer) + 1n)
}

/** Trace leaf index of (position, layer); layer = nLayer is the head leaf (docs/TRACE.md). */
export function traceLeafIndex(position: number, layer: number, nLayer: number): bigint {
  return BigInt(position) * BigInt(nLayer + 1) + BigInt(layer)
}

/** Levels one descent round covers when `depthLeft` levels remain. */
export function stride(depthLeft: number): number {
  return Math.min(LOG_K, depthLeft)
}

export type DescentResult = { ok: true; index: bigint; depthLeft: number } | { ok: false }

/**
 * One choice: node `index` with `depthLeft` levels below picks child `choice` among 2^stride.
 * Fails (as the contract reverts BadChoice) when the choice is out of range or its subtree holds
 * no leaf in [minLeaf, lastLeaf].
 */
export function descend(index: bigint, depthLeft: number, choice: bigint, minLeaf: bigint, lastLeaf: bigint): DescentResult {
  const s = stride(depthLeft)
  if (choice >= 1n << BigInt(s)) return { ok: false }
  const next = (index << BigInt(s)) | choice
  const left = depthLeft - s
  const first = next << BigInt(left)
  const last = ((next + 1n) << BigInt(left)) - 1n
  if (last < minLeaf || first > lastLeaf) return { ok: false }
  return { ok: true, index: next, depthLeft: left }
}

/** Descent rounds (reveal + choose) needed for a tree of `depth` levels. */
export function roundsFor(depth: number): number {
  return Math.ceil(depth / LOG_K)
}
