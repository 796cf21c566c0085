/**
 * The engine's op outputs at one (position, layer) of a job, through the forward pass's op
 * observer (`Transformer.forward`'s `observeOp`): what the dispute machine's slots are checked
 * against bit for bit (src/dispute/machine/transition.test.ts).
 */
import { KVCache, type OpObserver, type Transformer } from '../../src/engine/model/transformer.js'
import { ARITH_V1, type ArithVersion } from '../../src/engine/version.js'

/** One op's outputs for the position and, for a matmul, its input (copies). */
export type OpCapture = { outs: Float32Array[]; input?: Float32Array }

/**
 * Replays `tokens[0 .. position]` (a prefill of the earlier positions, then `position` alone) and
 * returns the ops of `layer` (layer = nLayer: the head) at `position` under `arith` (its KV cache), by the engine's report point
 * (LAYER_OP / HEAD_OP of src/engine/model/opTable.ts).
 */
export function captureOps(tf: Transformer, tokens: readonly number[], position: number, layer: number, arith: ArithVersion = ARITH_V1): Map<number, OpCapture> {
  if (!(position >= 0 && position < tokens.length)) throw new RangeError(`position ${position} is outside the ${tokens.length} tokens`)
  const cache = new KVCache(tf.config, tf.config.contextLength, arith)
  if (position > 0) tf.forward(tokens.slice(0, position), cache, 0)
  const out = new Map<number, OpCapture>()
  const observe: OpObserver = (l, op, _start, _nTok, outs, input) => {
    if (l === layer) out.set(op, { outs: outs.map((o) => o.slice()), input: input?.slice() })
  }
  tf.forward([tokens[position]], cache, 1, undefined, observe)
  return out
}
