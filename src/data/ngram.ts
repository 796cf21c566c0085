/**
 * A byte-level n-gram baseline: interpolated modified Kneser-Ney (Chen & Goodman 1998, "An
 * empirical study of smoothing techniques for language modeling", section 3.4), order 1 to 7, over
 * the alphabet of 256 byte values. It is the yardstick a trained model's bits per byte is read
 * against (docs/DATA.md "Baselines"). Pure: no I/O, no clock; arithmetic in binary64 in a fixed order,
 * logarithms with the canonical LOG.
 *
 * For a history h (the last order-1 bytes before the scored byte; fewer at a document's start) and
 * byte w, with p_0(w) = 1/256 and h_k the last k-1 bytes of h:
 *
 *   p_k(w | h_k) = (c_k(h_k w) - D_k(c_k(h_k w))) / T_k(h_k) + gamma_k(h_k) * p_{k-1}(w | h_{k-1})
 *   gamma_k(h)   = (D_k1 * N1(h) + D_k2 * N2(h) + D_k3 * N3+(h)) / T_k(h)
 *
 * where c_k is the raw count at the highest order and the continuation count (number of distinct
 * bytes seen just before the k-gram, a document's start counting as one more) below it; T_k(h)
 * the sum of c_k(h x) over x; N1/N2/N3+(h) the number of bytes x with c_k(h x) = 1, 2, >= 3;
 * D_k(0) = 0, D_k(1) = D_k1, D_k(2) = D_k2, D_k(c >= 3) = D_k3, estimated per order from n_i, the
 * number of k-grams with count i:  Y = n1 / (n1 + 2 n2),  D_k1 = 1 - 2Y n2/n1,  D_k2 = 2 - 3Y n3/n2,
 * D_k3 = 3 - 4Y n4/n3, each clamped to [0.1, i] (and 0.5, 1, 1.5 when some n_i is 0). A context
 * never seen at order k is never seen at a higher order either: the recursion stops there.
 * No n-gram crosses a document boundary.
 *
 * Counting sorts each order's k-grams as 64-bit keys (the k bytes big-endian in the low 8k bits),
 * so 12 MB of training text takes seconds and a few hundred MB, not a map per context.
 */
import { f, log } from '../engine/math/canonical.js'
import { InvalidParameterError } from '../errors.js'

/** The highest order this implementation counts (a 7-gram key is 56 bits; its context, 48, is exact in a double). */
export const MAX_ORDER = 7

const ALPHABET = 256

/** The counts of one order k: contexts (k-1 bytes as a number) sorted, each with its next bytes and counts. */
type Level = {
  /** Sorted distinct contexts, the k-1 bytes big-endian as an integer (< 2^48). */
  ctx: Float64Array
  /** Context i's next bytes are next[start[i] .. start[i+1]), ascending. */
  start: Uint32Array
  next: Uint8Array
  count: Uint32Array
  /** Per context: T(h) and gamma(h). */
  total: Float64Array
  gamma: Float64Array
  /** D(1), D(2), D(3+). */
  discount: [number, number, number]
}

/** A trained interpolated modified Kneser-Ney byte model. */
export class KneserNey {
  constructor(
    readonly order: number,
    private readonly levels: readonly Level[],
  ) {}

  /** The discounts D(1), D(2), D(3+) of order k (1..order). */
  discounts(k: number): readonly [number, number, number] {
    return this.levels[k - 1].discount
  }

  /** p(w | the bytes hist[0 .. end)), using at most the last order-1 of them. */
  prob(hist: Uint8Array, end: number, w: number): number {
    let p = 1 / ALPHABET
    let ctx = 0 // the last k-1 bytes before `end`, big-endian
    let scale = 1 // 256^(k-1)
    const top = Math.min(this.order, end + 1)
    for (let k = 1; k <= top; k++) {
      if (k > 1) {
        ctx += hist[end - k + 1] * scale
        scale *= 256
      }
      const L = this.levels[k - 1]
      const i = findContext(L.ctx, ctx)
      if (i < 0) break
      const c = findCount(L, i, w)
      const d = c === 0 ? 0 : c === 1 ? L.discount[0] : c === 2 ? L.discount[1] : L.discount[2]
      p = (c - d) / L.total[i] + L.gamma[i] * p
    }
    return p
  }

  /** p(x | hist[0 .. end)) for every byte value x. */
  distribution(hist: Uint8Array, end: number): Float64Array {
    const out = new Float64Array(ALPHABET)
    for (let x = 0; x < ALPHABET; x++) out[x] = this.prob(hist, end, x)
    return out
  }

  /**
   * ln p of each byte of `bytes` given the bytes before it in `bytes` (the first has none): the
   * log-probabilities `bpb.ts` scores, each `logProb(p)` (LOG of binary32(p) in the canonical arithmetic).
   */
  logProbs(bytes: ArrayLike<number>): Float32Array {
    const b = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes)
    const out = new Float32Array(b.length)
    for (let i = 0; i < b.length; i++) out[i] = logProb(this.prob(b, i, b[i]))
    return out
  }
}

/**
 * Counts the documents and returns the model of `order` (1..7).
 *
 * @example
 * const kn = trainKneserNey([new TextEncoder().encode('abracadabra')], 3)
 * kn.prob(new TextEncoder().encode('ab'), 2, 0x72) // p('r' | 'ab')
 */
export function trainKneserNey(docs: readonly Uint8Array[], order: number): KneserNey {
  if (!Number.isInteger(order) || order < 1 || order > MAX_ORDER) throw new InvalidParameterError('order', order, `an integer from 1 to ${MAX_ORDER}`)
  const levels: Level[] = new Array(order)
  // the highest order: raw counts of every order-gram inside a document
  let keys = sortedKeys(docs, order)
  let counted = runLengths(keys)
  levels[order - 1] = buildLevel(counted.keys, counted.counts)
  // below it: continuation counts, from the distinct (k+1)-grams with their first byte dropped,
  // and one more for a k-gram that starts a document
  for (let k = order - 1; k >= 1; k--) {
    const starts = docStarts(docs, k)
    const n = counted.keys.length
    keys = new BigUint64Array(n + starts.length)
    const src = new Uint32Array(counted.keys.buffer, counted.keys.byteOffset, 2 * n)
    const dst = new Uint32Array(keys.buffer)
    // keep the low 8k bits of each (k+1)-byte key
    const loMask = k >= 4 ? 0xffffffff : 2 ** (8 * k) - 1
    const hiMask = k >= 4 ? 2 ** (8 * k - 32) - 1 : 0
    for (let i = 0; i < n; i++) {
      dst[2 * i] = (src[2 * i] & loMask) >>> 0
      dst[2 * i + 1] = (src[2 * i + 1] & hiMask) >>> 0
    }
    for (let j = 0; j < starts.length; j++) {
      dst[2 * (n + j)] = starts[j] % 2 ** 32
      dst[2 * (n + j) + 1] = Math.floor(starts[j] / 2 ** 32)
    }
    keys.sort()
    counted = runLengths(keys)
    levels[k - 1] = buildLevel(counted.keys, counted.counts)
  }
  return new KneserNey(order, levels)
}

/** Every k-gram inside a document as a 64-bit key (little-endian word order in the buffer), sorted. */
function sortedKeys(docs: readonly Uint8Array[], k: number): BigUint64Array {
  let n = 0
  for (const d of docs) n += Math.max(0, d.length - k + 1)
  const keys = new BigUint64Array(n)
  const w = new Uint32Array(keys.buffer)
  let at = 0
  for (const d of docs) {
    for (let i = 0; i + k <= d.length; i++) {
      let hi = 0
      let lo = 0
      for (let j = 0; j < k; j++) {
        hi = ((hi << 8) | (lo >>> 24)) >>> 0
        lo = ((lo << 8) | d[i + j]) >>> 0
      }
      w[2 * at] = lo
      w[2 * at + 1] = hi
      at++
    }
  }
  keys.sort()
  return keys
}

/** The distinct k-grams that begin a document, as numbers (k <= 6, so exact), ascending. */
function docStarts(docs: readonly Uint8Array[], k: number): number[] {
  const set = new Set<number>()
  for (const d of docs) {
    if (d.length < k) continue
    let v = 0
    for (let j = 0; j < k; j++) v = v * 256 + d[j]
    set.add(v)
  }
  return [...set].sort((a, b) => a - b)
}

/** Distinct keys of a sorted array and how often each occurs. */
function runLengths(sorted: BigUint64Array): { keys: BigUint64Array; counts: Uint32Array } {
  const w = new Uint32Array(sorted.buffer, sorted.byteOffset, 2 * sorted.length)
  let n = 0
  for (let i = 0; i < sorted.length; i++) if (i === 0 || w[2 * i] !== w[2 * i - 2] || w[2 * i + 1] !== w[2 * i - 1]) n++
  const keys = new BigUint64Array(n)
  const kw = new Uint32Array(keys.buffer)
  const counts = new Uint32Array(n)
  let j = -1
  for (let i = 0; i < sorted.length; i++) {
    if (i === 0 || w[2 * i] !== w[2 * i - 2] || w[2 * i + 1] !== w[2 * i - 1]) {
      j++
      kw[2 * j] = w[2 * i]
      kw[2 * j + 1] = w[2 * i + 1]
    }
    counts[j]++
  }
  return { keys, counts }
}

/** The least discount: a context keeps some mass for the bytes it has not seen followed by. */
export const MIN_DISCOUNT = 0.1

/**
 * Modified Kneser-Ney discounts from the count-of-counts n1..n4 (Chen & Goodman eq. 26), each
 * clamped to [MIN_DISCOUNT, i]. Counts whose distribution is far from natural text (a corpus
 * repeated, so that most k-grams occur 4 times or more) drive the estimate of D(3+) to 0 or below;
 * with every discount 0 a context would give its unseen bytes no probability at all.
 */
export function discountsOf(n1: number, n2: number, n3: number, n4: number): [number, number, number] {
  if (n1 === 0 || n2 === 0 || n3 === 0) return [0.5, 1, 1.5]
  const y = n1 / (n1 + 2 * n2)
  const clamp = (x: number, hi: number) => Math.min(hi, Math.max(MIN_DISCOUNT, x))
  return [clamp(1 - (2 * y * n2) / n1, 1), clamp(2 - (3 * y * n3) / n2, 2), clamp(3 - (4 * y * n4) / n3, 3)]
}

const LN2 = f(0.6931471805599453)
const SCALE = 2 ** 100

/**
 * LOG(p) for a probability in (0, 1] held in binary64: below 2^-100 (near binary32's smallest
 * normal, 2^-126, where LOG is not defined) p is first scaled by 2^100, k times, and k * 100 * LN2
 * subtracted, each step in binary32.
 */
export function logProb(p: number): number {
  if (!(p > 0 && p <= 1)) throw new RangeError(`logProb: ${p} is not a probability above 0`)
  let k = 0
  while (p < 2 ** -100) {
    p *= SCALE
    k += 100
  }
  const l = log(f(p))
  return k === 0 ? l : f(l - f(k * LN2))
}

function buildLevel(keys: BigUint64Array, counts: Uint32Array): Level {
  const n = keys.length
  const w = new Uint32Array(keys.buffer, keys.byteOffset, 2 * n)
  const nn = [0, 0, 0, 0, 0]
  for (let i = 0; i < n; i++) if (counts[i] <= 4) nn[counts[i]]++
  const discount = discountsOf(nn[1], nn[2], nn[3], nn[4])
  const next = new Uint8Array(n)
  const ctxOf = new Float64Array(n)
  let contexts = 0
  for (let i = 0; i < n; i++) {
    next[i] = w[2 * i] & 0xff
    ctxOf[i] = w[2 * i + 1] * 2 ** 24 + (w[2 * i] >>> 8)
    if (i === 0 || ctxOf[i] !== ctxOf[i - 1]) contexts++
  }
  const ctx = new Float64Array(contexts)
  const start = new Uint32Array(contexts + 1)
  const total = new Float64Array(contexts)
  const gamma = new Float64Array(contexts)
  let c = -1
  const n123 = [0, 0, 0]
  const flush = () => {
    if (c >= 0) gamma[c] = (discount[0] * n123[0] + discount[1] * n123[1] + discount[2] * n123[2]) / total[c]
  }
  for (let i = 0; i < n; i++) {
    if (i === 0 || ctxOf[i] !== ctxOf[i - 1]) {
      flush()
      c++
      ctx[c] = ctxOf[i]
      start[c] = i
      n123[0] = n123[1] = n123[2] = 0
    }
    total[c] += counts[i]
    n123[Math.min(counts[i], 3) - 1]++
  }
  flush()
  start[contexts] = n
  return { ctx, start, next, count: counts, total, gamma, discount }
}

function findContext(ctx: Float64Array, v: number): number {
  let lo = 0
  let hi = ctx.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const x = ctx[mid]
    if (x === v) return mid
    if (x < v) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}

function findCount(L: Level, i: number, w: number): number {
  let lo = L.start[i]
  let hi = L.start[i + 1] - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const x = L.next[mid]
    if (x === w) return L.count[mid]
    if (x < w) lo = mid + 1
    else hi = mid - 1
  }
  return 0
}
