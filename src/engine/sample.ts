/**
 * Token sampling in the canonical arithmetic (docs/ARITHMETIC.md, "Sampling"): repetition
 * penalty, greedy or top-k -> temperature -> softmax -> top-p -> min-p -> draw with RAND(seed,
 * step). Given the same logits, parameters, history and (seed, step), every node picks the same
 * token, so a sampled answer can be replayed and checked like a greedy one.
 */
import { InvalidParameterError } from '../errors.js'
import { f32ToBits } from './bytes.js'
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
 *
 * The result is bit-for-bit `sampleTokenReference`'s (the spec written out plainly), but the
 * vocabulary is never sorted: top-k is a bounded heap selection, only the k kept candidates are
 * exponentiated and sorted, and the working arrays are reused between calls. Without a top-k cut
 * only the candidates whose EXP is not 0 are sorted (see `drawFull`).
 */
export function sampleToken(logits: Float32Array, p: SamplingParams, history: readonly number[], step: number): number {
  applyPenalty(logits, p, history)
  if (p.temperature === 0) return argmax(logits)
  return drawFast(logits, p, step)
}

/**
 * The canonical sampler written out as docs/ARITHMETIC.md states it: the readable twin of
 * `sampleToken`, which tests compare against it over many logits vectors.
 */
export function sampleTokenReference(logits: Float32Array, p: SamplingParams, history: readonly number[], step: number): number {
  applyPenalty(logits, p, history)
  if (p.temperature === 0) return argmax(logits)
  return drawReference(logits, p, step)
}

function applyPenalty(logits: Float32Array, p: SamplingParams, history: readonly number[]): void {
  if (p.repeatPenalty === 1 || !(p.repeatLastN > 0)) return
  const pen = f(p.repeatPenalty)
  const seen = new Set<number>()
  for (let i = Math.max(0, history.length - p.repeatLastN); i < history.length; i++) seen.add(history[i])
  for (const id of seen) {
    const l = logits[id]
    logits[id] = l > 0 ? f(l / pen) : f(l * pen)
  }
}

function drawReference(logits: Float32Array, p: SamplingParams, step: number): number {
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

/** Sort keys pack (logit, id) into one exact double: ids must stay below 2^21. */
const ID_SPAN = 2 ** 21
/** The full-vocabulary sort is an LSD radix sort on 32-bit keys in 3 passes of 11 bits. */
const RADIX_BITS = 11
const RADIX_BUCKETS = 1 << RADIX_BITS

/**
 * Working arrays reused by every call (sampling is synchronous, so one set serves all callers);
 * they grow to the largest vocabulary seen and are never shrunk.
 */
let heap = new Int32Array(64)
let keys = new Float64Array(64)
let ids = new Int32Array(64)
let probs = new Float32Array(64)
let expById = new Float32Array(64)
let radixKeys = [new Uint32Array(64), new Uint32Array(64)]
let radixIds = [new Int32Array(64), new Int32Array(64)]
const radixCounts = new Int32Array(RADIX_BUCKETS)

function ensureScratch(n: number): void {
  if (ids.length >= n) return
  heap = new Int32Array(n)
  keys = new Float64Array(n)
  ids = new Int32Array(n)
  probs = new Float32Array(n)
  expById = new Float32Array(n)
  radixKeys = [new Uint32Array(n), new Uint32Array(n)]
  radixIds = [new Int32Array(n), new Int32Array(n)]
}

/**
 * A uint32 that orders like "logit descending" under `<`: the float bits made monotonic
 * (negative numbers flipped) after -0 is made +0 (the spec compares -0 and +0 as equal), then
 * reversed.
 */
function descendingBits(logit: number): number {
  const u = f32ToBits(logit + 0)
  const monotonic = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0
  return 0xffffffff - monotonic
}

/**
 * A double that orders like (logit descending, id ascending) under `<`: the id fills the low 21
 * bits, and (2^32 - 1) * 2^21 + 2^21 - 1 < 2^53 is exact.
 */
function sortKey(logit: number, id: number): number {
  return descendingBits(logit) * ID_SPAN + id
}

/**
 * Sorts the first `n` entries of radixKeys[0] / radixIds[0] by key into `ids`. LSD radix sort is
 * stable, so ids that entered in ascending order stay ascending among equal logits: exactly the
 * spec's tie-break.
 */
function radixSortToIds(n: number): void {
  let from = 0
  for (let shift = 0; shift < 32; shift += RADIX_BITS) {
    const k = radixKeys[from], d = radixIds[from], k2 = radixKeys[from ^ 1], d2 = radixIds[from ^ 1]
    radixCounts.fill(0)
    for (let i = 0; i < n; i++) radixCounts[(k[i] >>> shift) & (RADIX_BUCKETS - 1)]++
    let sum = 0
    for (let b = 0; b < RADIX_BUCKETS; b++) {
      const c = radixCounts[b]
      radixCounts[b] = sum
      sum += c
    }
    for (let i = 0; i < n; i++) {
      const at = radixCounts[(k[i] >>> shift) & (RADIX_BUCKETS - 1)]++
      k2[at] = k[i]
      d2[at] = d[i]
    }
    from ^= 1
  }
  ids.set(radixIds[from].subarray(0, n))
}

/** Puts the first `n` keys in order and decodes their ids into `ids`. */
function sortKeysToIds(n: number): void {
  const k = keys.subarray(0, n)
  k.sort()
  for (let i = 0; i < n; i++) ids[i] = k[i] % ID_SPAN
}

function drawFast(logits: Float32Array, p: SamplingParams, step: number): number {
  const V = logits.length
  // NaN and +Infinity logits make the spec's comparisons and EXP ill-behaved in ways the
  // shortcuts below do not reproduce; such vectors (and vocabularies too large for the sort keys)
  // take the reference path, which keeps the two bit-identical on every input. The passes below
  // spot a NaN where it would matter; a +Infinity is always the best logit, so it shows as an
  // infinite scaled maximum. -Infinity needs nothing: it orders and exponentiates (to 0) like the
  // spec.
  if (V === 0 || V > ID_SPAN) return drawReference(logits, p, step)
  ensureScratch(V)
  const temp = f(p.temperature)
  if (p.topK > 0 && p.topK < V) {
    if (!selectTopK(logits, p.topK)) return drawReference(logits, p, step)
    const k = p.topK
    for (let i = 0; i < k; i++) keys[i] = sortKey(logits[heap[i]], heap[i])
    sortKeysToIds(k)
    const m = f(logits[ids[0]] / temp)
    if (!Number.isFinite(m)) return drawReference(logits, p, step)
    for (let i = 0; i < k; i++) probs[i] = exp(f(f(logits[ids[i]] / temp) - m))
    return drawFrom(p, step, k, k, ids[k - 1])
  }
  return drawFull(logits, p, step, temp)
}

/**
 * The k best ids (in no order) into `heap[0 .. k)`: a max-heap on "worse" whose root is the
 * worst id kept. Ids arrive in ascending order, so a newcomer whose logit only equals the root's
 * is worse than it (higher id): the one test `logit > threshold` decides admission. Returns
 * false, leaving the heap unfinished, on a NaN among the first k logits.
 */
function selectTopK(logits: Float32Array, k: number): boolean {
  const worse = (a: number, b: number) => logits[a] < logits[b] || (logits[a] === logits[b] && a > b)
  for (let i = 0; i < k; i++) {
    if (logits[i] !== logits[i]) return false
    let c = i
    while (c > 0) {
      const parent = (c - 1) >> 1
      if (!worse(i, heap[parent])) break
      heap[c] = heap[parent]
      c = parent
    }
    heap[c] = i
  }
  let threshold = logits[heap[0]]
  // A NaN past the first k fails `>` and is skipped, as the spec's order (and the twin) skip it.
  for (let id = k; id < logits.length; id++) {
    if (!(logits[id] > threshold)) continue
    let c = 0
    for (;;) {
      const l = 2 * c + 1
      if (l >= k) break
      const w = l + 1 < k && worse(heap[l + 1], heap[l]) ? l + 1 : l
      if (!worse(heap[w], id)) break
      heap[c] = heap[w]
      c = w
    }
    heap[c] = id
    threshold = logits[heap[0]]
  }
  return true
}

/**
 * No top-k cut: every token is a candidate, but EXP is 0 exactly for arguments <= EXP_MIN and
 * positive above, and the arguments fall along the sorted order, so the tokens with a zero EXP
 * are a tail of it. Zeros change no sum, no top-p prefix and no draw, so only the candidates
 * with a positive EXP are sorted; of the tail only its last id can matter (the spec's fallback
 * pick when no draw matches, which is the lowest logit with the highest id).
 */
function drawFull(logits: Float32Array, p: SamplingParams, step: number, temp: number): number {
  const V = logits.length
  let best = 0
  let last = 0
  for (let i = 0; i < V; i++) {
    const x = logits[i]
    if (x !== x) return drawReference(logits, p, step)
    if (x > logits[best]) best = i
    if (x <= logits[last]) last = i
  }
  const m = f(logits[best] / temp)
  if (!Number.isFinite(m)) return drawReference(logits, p, step)
  let n = 0
  const [rk, ri] = [radixKeys[0], radixIds[0]]
  for (let i = 0; i < V; i++) {
    const e = exp(f(f(logits[i] / temp) - m))
    if (e > 0) {
      expById[i] = e
      rk[n] = descendingBits(logits[i])
      ri[n++] = i
    }
  }
  radixSortToIds(n)
  for (let i = 0; i < n; i++) probs[i] = expById[ids[i]]
  return drawFrom(p, step, n, V, last)
}

/**
 * Softmax, top-p, min-p and the draw over `count` sorted candidates whose EXP values are in
 * `probs[0 .. n)`; candidates n .. count-1 have EXP 0 and `lastId` is candidate count-1.
 */
function drawFrom(p: SamplingParams, step: number, n: number, count: number, lastId: number): number {
  const s = sum8(probs, 0, n)
  for (let i = 0; i < n; i++) probs[i] = f(probs[i] / s)

  let keep = count
  if (p.topP < 1) {
    const tp = f(p.topP)
    let c = 0
    for (let i = 0; i < n; i++) {
      c = f(c + probs[i])
      if (c >= tp) {
        keep = i + 1
        break
      }
    }
  }
  if (p.minP > 0) {
    const floor = f(f(p.minP) * probs[0])
    let k = 1
    while (k < keep && k < n && probs[k] >= floor) k++
    // past n every probability is 0, which passes only a floor of 0
    if (k === n && floor === 0) k = keep
    keep = k
  }

  const kept = Math.min(keep, n)
  let total = 0
  for (let i = 0; i < kept; i++) total = f(total + probs[i])
  const target = f(rand(p.seed, step) * total)
  let c = 0
  for (let i = 0; i < kept; i++) {
    c = f(c + probs[i])
    if (target < c) return ids[i]
  }
  return keep <= n ? ids[keep - 1] : lastId
}

/** Index of the largest logit, the lowest id on ties. */
export function argmax(logits: Float32Array): number {
  let best = 0
  let top = logits[0]
  for (let i = 1; i < logits.length; i++) {
    const v = logits[i]
    if (v > top) {
      best = i
      top = v
    }
  }
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
