/**
 * Token sampling in the canonical arithmetic (docs/ARITHMETIC.md, "Sampling"): repetition
 * penalty, greedy or top-k -> temperature -> softmax -> top-p -> min-p -> draw with RAND(seed,
 * step). Given the same logits, parameters, history and (seed, step), every node picks the same
 * token, so a sampled answer can be replayed and checked like a greedy one.
 */
import { InvalidParameterError } from '../errors.js'
import { exp, f, sum8 } from './math/canonical.js'
import { rand } from './math/rand.js'

export type SamplingParams = {
  /** 0 = greedy. */
  temperature: number
  /** 0 = no top-k cut. */
  topK: number
  /** 1 = no nucleus cut. */
  topP: number
  /** 0 = no min-p cut. */
  minP: number
  /** 1 = no penalty. */
  repeatPenalty: number
  repeatLastN: number
  seed: bigint
}

export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  repeatLastN: 64,
  seed: 0n,
}

/** Throws InvalidParameterError naming the first parameter out of range. */
export function validateSampling(p: SamplingParams): void {
  if (!(p.temperature >= 0) || !Number.isFinite(p.temperature)) throw new InvalidParameterError('temperature', p.temperature, 'a finite number >= 0')
  if (!Number.isInteger(p.topK) || p.topK < 0) throw new InvalidParameterError('top-k', p.topK, 'an integer >= 0 (0 = off)')
  if (!(p.topP > 0 && p.topP <= 1)) throw new InvalidParameterError('top-p', p.topP, 'a number in (0, 1]')
  if (!(p.minP >= 0 && p.minP < 1)) throw new InvalidParameterError('min-p', p.minP, 'a number in [0, 1)')
  if (!(p.repeatPenalty > 0) || !Number.isFinite(p.repeatPenalty)) throw new InvalidParameterError('repeat-penalty', p.repeatPenalty, 'a finite number > 0')
  if (!Number.isInteger(p.repeatLastN) || p.repeatLastN < 0) throw new InvalidParameterError('repeat-last-n', p.repeatLastN, 'an integer >= 0')
  if (p.seed < 0n || p.seed >= 1n << 64n) throw new InvalidParameterError('seed', p.seed.toString(), 'an integer in [0, 2^64)')
}

/**
 * Picks the next token from `logits` (modified in place by the penalty). `history` is the prompt
 * and the output so far; `step` counts generated tokens from 0.
 */
export function sampleToken(logits: Float32Array, p: SamplingParams, history: readonly number[], step: number): number {
  if (p.repeatPenalty !== 1 && p.repeatLastN > 0) {
    const pen = f(p.repeatPenalty)
    const seen = new Set(history.slice(Math.max(0, history.length - p.repeatLastN)))
    for (const id of seen) {
      const l = logits[id]
      logits[id] = l > 0 ? f(l / pen) : f(l * pen)
    }
  }
  if (p.temperature === 0) return argmax(logits)

  // candidates sorted by (logit desc, id asc), cut to top-k
  let ids = Array.from(logits.keys())
  if (p.topK > 0 && p.topK < ids.length) ids = topKIds(logits, p.topK)
  else ids.sort((a, b) => logits[b] - logits[a] || a - b)

  // temperature and softmax in sorted order
  const temp = f(p.temperature)
  const scaled = ids.map((id) => f(logits[id] / temp))
  const m = scaled[0]
  const e = scaled.map((l) => exp(f(l - m)))
  const s = sum8(e)
  const probs = e.map((v) => f(v / s))

  // top-p: shortest prefix whose running sum reaches top-p
  let keep = probs.length
  if (p.topP < 1) {
    const tp = f(p.topP)
    let c = 0
    for (let i = 0; i < probs.length; i++) {
      c = f(c + probs[i])
      if (c >= tp) {
        keep = i + 1
        break
      }
    }
  }
  // min-p: drop candidates below min-p times the best
  if (p.minP > 0) {
    const floor = f(f(p.minP) * probs[0])
    let k = 1
    while (k < keep && probs[k] >= floor) k++
    keep = k
  }

  // draw
  let total = 0
  for (let i = 0; i < keep; i++) total = f(total + probs[i])
  const target = f(rand(p.seed, step) * total)
  let c = 0
  for (let i = 0; i < keep; i++) {
    c = f(c + probs[i])
    if (target < c) return ids[i]
  }
  return ids[keep - 1]
}

/** Index of the largest logit, the lowest id on ties. */
export function argmax(logits: Float32Array): number {
  let best = 0
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i
  return best
}

/** The k best ids in (logit desc, id asc) order, without sorting the whole vocabulary. */
function topKIds(logits: Float32Array, k: number): number[] {
  const better = (a: number, b: number) => logits[a] > logits[b] || (logits[a] === logits[b] && a < b)
  const top: number[] = []
  for (let id = 0; id < logits.length; id++) {
    if (top.length === k && !better(id, top[k - 1])) continue
    let i = top.length === k ? k - 1 : top.length
    if (top.length < k) top.push(id)
    while (i > 0 && better(id, top[i - 1])) {
      top[i] = top[i - 1]
      i--
    }
    top[i] = id
  }
  return top
}
