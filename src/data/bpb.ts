/**
 * Bits per byte: how well a model predicts a text, in a unit that does not depend on its
 * tokenizer (docs/DATA.md "Bits per byte"). Pure: the model comes in as a function.
 *
 * Definition. A text of B UTF-8 bytes is tokenized once into tokens t_0 .. t_{n-1} (for a byte
 * model the tokens are the bytes). The tokens are cut into consecutive non-overlapping windows of
 * W tokens (the last one shorter): [0, W), [W, 2W), .... Within a window each token is scored given
 * the tokens before it in the same window only, ln p(t_i | t_s .. t_{i-1}) for a window starting
 * at s; the scorer conditions the window's first token on its own start (a model on BOS). Then
 *
 *   bits = -(sum over all tokens of ln p) * log2(e)       bpb = bits / B
 *
 * For a model of context C that starts each window with BOS, W = C - 1: every window fits its
 * context. The sum is binary64, token by token in text order, then multiplied once by log2(e) as
 * a binary64 constant, so the same log-probabilities give the same bits on every machine.
 * Several texts (the held-out chapters) are scored each on its own and pooled as total bits over
 * total bytes, so a long chapter weighs by its length.
 */
import { BaseError, InvalidParameterError } from '../errors.js'

/** log2(e) = 1/ln 2 as the nearest binary64. */
export const LOG2E = 1.4426950408889634

/**
 * ln p(window[i] | window[0 .. i)) for each i of one window (natural logarithm, <= 0): a model,
 * an n-gram or a trainer's forward pass behind one shape.
 */
export type LogProbFn = (window: readonly number[]) => ArrayLike<number> | Promise<ArrayLike<number>>

export type TextScore = {
  /** UTF-8 bytes of the text. */
  bytes: number
  tokens: number
  windows: number
  /** -sum of log2 p over the tokens. */
  bits: number
  /** bits / bytes. */
  bpb: number
}

/** A scorer's answer that cannot be a log-probability (wrong length, NaN, infinite or clearly positive). */
export class ScorerError extends BaseError {
  override name = 'ScorerError'
  constructor(problem: string) {
    super(`bits per byte: the scorer ${problem}`, { docs: 'docs/DATA.md' })
  }
}

/** The [start, end) token ranges of the windows of `window` tokens over `n` tokens. */
export function windowsOf(n: number, window: number): [number, number][] {
  if (!Number.isSafeInteger(window) || window < 1) throw new InvalidParameterError('window', window, 'a positive number of tokens')
  const out: [number, number][] = []
  for (let s = 0; s < n; s += window) out.push([s, Math.min(n, s + window)])
  return out
}

/**
 * Scores `tokens` (the tokenization of a text of `bytes` UTF-8 bytes) in windows of `window`
 * tokens. The log-probabilities may be binary32 rounding of values <= 0; a value above 1e-4 is
 * refused as no log-probability at all.
 *
 * @example
 * const kn = trainKneserNey(trainingBytes, 7)
 * const s = await scoreTokens(Array.from(text), text.length, text.length, (w) => kn.logProbs(w))
 * s.bpb
 */
export async function scoreTokens(tokens: readonly number[], bytes: number, window: number, logProbs: LogProbFn): Promise<TextScore> {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new InvalidParameterError('bytes', bytes, 'a byte count')
  const windows = windowsOf(tokens.length, window)
  let nats = 0
  for (const [s, e] of windows) {
    const w = tokens.slice(s, e)
    const lp = await logProbs(w)
    if (lp.length !== w.length) throw new ScorerError(`gave ${lp.length} log-probabilities for a window of ${w.length} tokens (tokens ${s}..${e})`)
    for (let i = 0; i < w.length; i++) {
      const x = lp[i]
      if (!Number.isFinite(x) || x > 1e-4) throw new ScorerError(`gave ${x} for token ${s + i} (id ${w[i]}), not a log-probability`)
      nats -= x
    }
  }
  const bits = nats * LOG2E
  return { bytes, tokens: tokens.length, windows: windows.length, bits, bpb: bytes === 0 ? 0 : bits / bytes }
}

/** Several texts pooled: total bits over total bytes. */
export function pooled(scores: readonly TextScore[]): TextScore {
  let bytes = 0
  let tokens = 0
  let windows = 0
  let bits = 0
  for (const s of scores) {
    bytes += s.bytes
    tokens += s.tokens
    windows += s.windows
    bits += s.bits
  }
  return { bytes, tokens, windows, bits, bpb: bytes === 0 ? 0 : bits / bytes }
}
