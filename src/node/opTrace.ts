/**
 * The sub-traces a provider commits (and an auditor compares) below one trace leaf in a dispute,
 * computed from the real forward pass in the shapes the judge derives (docs/CHAIN.md "Op table"):
 *
 *   op level       states after each op of (position, layer); leaf 0 = the previous trace leaf,
 *                  the last = the trace leaf itself
 *   element level  under a matmul op: element states chained over the output rows, so the op's
 *                  state is the last element state
 *   primitive      under a quantized row: the SUM8 block states of the row's dot product, then
 *                  the element state
 *
 * The state after an op whose output feeds matmuls (ops 1, 7, 10, 13; the head's 1) is an
 * activation state (OneStep.ActState: roots of the output's quantized blocks for B = 32 and 256);
 * other non-matmul states are `sha256(0x00 || abi.encode(uint8 10, uint64 op, bytes32
 * sha256(outputs)))` (outputs = the op's output vectors for the position, f32 little-endian),
 * which the judge does not open yet. Everything is recomputed by replaying the job's tokens, so any
 * backend (all are bit-identical) gives the same states.
 */
import type { Hex } from 'viem'
import type { ElementState } from '../chain/client.js'
import { actStateOf, elementChain, opStateOf } from '../chain/gameStates.js'
import { actSource, isActSource, opCount, opKind } from '../chain/opTable.js'
import { KVCache, type OpObserver, type Transformer } from '../engine/model/transformer.js'

/** One op's outputs for the disputed position and, for a matmul, its input (copies). */
export type OpCapture = { outs: Float32Array[]; input?: Float32Array }

/**
 * Replays `tokens[0 .. position]` (a prefill of the earlier positions, then `position` alone) and
 * returns the ops of `layer` (layer = nLayer: the head) at `position`. `tamper` is passed to the
 * forward pass too, for tests that play a cheating provider.
 */
export function captureOps(tf: Transformer, tokens: readonly number[], position: number, layer: number, tamper?: OpObserver): Map<number, OpCapture> {
  if (!(position >= 0 && position < tokens.length)) throw new RangeError(`position ${position} is outside the ${tokens.length} tokens`)
  const cache = new KVCache(tf.config)
  if (position > 0) tf.forward(tokens.slice(0, position), cache, 0, undefined, tamper)
  const out = new Map<number, OpCapture>()
  const observe: OpObserver = (l, op, start, nTok, outs, input) => {
    tamper?.(l, op, start, nTok, outs, input)
    if (l === layer) out.set(op, { outs: outs.map((o) => o.slice()), input: input?.slice() })
  }
  tf.forward([tokens[position]], cache, 1, undefined, observe)
  return out
}

/**
 * The op-level leaves of a transition: `pre` (the previous trace leaf), the state after each op,
 * and `post` (the trace leaf) as the last. A matmul op's state is its element chain's last leaf.
 */
export function opLevelLeaves(captures: Map<number, OpCapture>, head: boolean, pre: Hex, post: Hex): Hex[] {
  const n = opCount(head)
  const leaves: Hex[] = [pre]
  for (let op = 1; op < n; op++) {
    const c = captures.get(op)
    if (!c) throw new RangeError(`op ${op} of the transition was not captured`)
    if (opKind(head, op) === 'matmul') leaves.push(elementChain(leaves[op - 1], c.outs[0], leaves[actSource(head, op)]).leaves.at(-1)!)
    else if (isActSource(head, op)) leaves.push(actStateOf(op, c.outs).leaf)
    else leaves.push(opStateOf(op, c.outs))
  }
  leaves.push(post)
  return leaves
}

/**
 * What `expandTensor` opens for matmul op `op` whose pre-state is the previous matmul's last
 * element state (K, V, up); undefined for the others (their pre-state is the activation state).
 */
export function opPreState(captures: Map<number, OpCapture>, head: boolean, opLeaves: readonly Hex[], op: number): ElementState | undefined {
  const src = actSource(head, op)
  if (src === 0 || src === op - 1) return undefined
  return elementChain(opLeaves[op - 2], captures.get(op - 1)!.outs[0], opLeaves[src]).states.at(-1)
}

/** The first index where two leaf lists differ (what a challenger disputes), or -1. */
export function firstDifference(mine: readonly Hex[], theirs: readonly Hex[]): number {
  const n = Math.min(mine.length, theirs.length)
  for (let i = 0; i < n; i++) if (mine[i] !== theirs[i]) return i
  return mine.length === theirs.length ? -1 : n
}
