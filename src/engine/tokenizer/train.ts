/**
 * A small, deterministic BPE trainer: repeatedly merge the most frequent adjacent symbol pair over a
 * bag of words (Sennrich et al. 2016, as GPT-2 and SentencePiece-BPE train). Used only to build
 * synthetic vocabularies, so it favours clarity and speed over features: no dropout, no
 * normalization. Ties are broken by the pair's first appearance order (symbol ids are assigned in
 * order of first appearance), so the result depends only on the input.
 */

/** One learned merge: `left + right` became a symbol (which may already have existed). */
export type Merge = { left: string; right: string; result: string; isNew: boolean }

/** Max-heap of (count, key) with lazy deletion: stale entries are skipped when popped. */
class PairHeap {
  private counts: number[] = []
  private keys: number[] = []

  get size(): number { return this.counts.length }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i], cj = this.counts[j]
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j])
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]; this.counts[i] = this.counts[j]; this.counts[j] = c
    const k = this.keys[i]; this.keys[i] = this.keys[j]; this.keys[j] = k
  }

  push(count: number, key: number): void {
    this.counts.push(count)
    this.keys.push(key)
    let i = this.counts.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.above(i, p)) break
      this.swap(i, p)
      i = p
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] }
    const lastC = this.counts.pop()!
    const lastK = this.keys.pop()!
    if (this.counts.length > 0) {
      this.counts[0] = lastC
      this.keys[0] = lastK
      let i = 0
      const n = this.counts.length
      for (;;) {
        const l = 2 * i + 1, r = l + 1
        let m = i
        if (l < n && this.above(l, m)) m = l
        if (r < n && this.above(r, m)) m = r
        if (m === i) break
        this.swap(i, m)
        i = m
      }
    }
    return top
  }
}

/** Pair keys pack two symbol ids; ids stay below 2^21, keys below 2^42 (exact in a double). */
const KEY = 2 ** 21

/**
 * Learn merges from `words` (each a list of initial symbols, with its frequency) until `maxNew` new
 * symbols exist or no pair occurs `minCount` times. `isAllowed` can veto a merge result.
 *
 * @example learnMerges([{ symbols: ['a', 'b', 'a', 'b'], count: 3 }], 2).map((m) => m.result) // ['ab', 'abab']
 */
export function learnMerges(
  words: readonly { symbols: readonly string[]; count: number }[],
  maxNew: number,
  opts: { minCount?: number; isAllowed?: (result: string) => boolean; known?: Iterable<string> } = {},
): Merge[] {
  const minCount = opts.minCount ?? 1
  const ids = new Map<string, number>()
  const strs: string[] = []
  const intern = (s: string): number => {
    let id = ids.get(s)
    if (id === undefined) {
      id = strs.length
      ids.set(s, id)
      strs.push(s)
    }
    return id
  }
  const known = new Set<string>(opts.known ?? [])

  const seqs: number[][] = []
  const freq: number[] = []
  for (const w of words) {
    if (w.symbols.length < 2) continue
    seqs.push(w.symbols.map(intern))
    freq.push(w.count)
  }
  if (strs.length >= KEY) throw new RangeError('too many distinct symbols for the trainer')

  const pairCount = new Map<number, number>()
  const pairWords = new Map<number, number[]>()
  const heap = new PairHeap()
  const bump = (key: number, delta: number, w: number): void => {
    const c = (pairCount.get(key) ?? 0) + delta
    pairCount.set(key, c)
    if (delta > 0) {
      let list = pairWords.get(key)
      if (list === undefined) pairWords.set(key, (list = []))
      if (list[list.length - 1] !== w) list.push(w)
    }
    if (c > 0) heap.push(c, key)
  }
  // Initial counts: one heap entry per pair, not per occurrence.
  for (let w = 0; w < seqs.length; w++) {
    const s = seqs[w]
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i] * KEY + s[i + 1]
      pairCount.set(key, (pairCount.get(key) ?? 0) + freq[w])
      let list = pairWords.get(key)
      if (list === undefined) pairWords.set(key, (list = []))
      if (list[list.length - 1] !== w) list.push(w)
    }
  }
  for (const [key, c] of pairCount) heap.push(c, key)

  const merges: Merge[] = []
  let created = 0
  const banned = new Set<number>()
  while (created < maxNew && heap.size > 0) {
    const { count, key } = heap.pop()
    if (pairCount.get(key) !== count || banned.has(key)) continue // stale entry
    if (count < minCount) break
    const a = Math.floor(key / KEY)
    const b = key - a * KEY
    const result = strs[a] + strs[b]
    if (opts.isAllowed && !opts.isAllowed(result)) {
      banned.add(key)
      continue
    }
    const isNew = !known.has(result) && !ids.has(result)
    const c = intern(result)
    if (strs.length >= KEY) throw new RangeError('too many distinct symbols for the trainer')
    known.add(result)
    merges.push({ left: strs[a], right: strs[b], result, isNew })
    if (isNew) created++

    for (const w of pairWords.get(key) ?? []) {
      const s = seqs[w]
      let has = false
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) { has = true; break }
      if (!has) continue
      const f = freq[w]
      for (let i = 0; i + 1 < s.length; i++) bump(s[i] * KEY + s[i + 1], -f, w)
      const next: number[] = []
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { next.push(c); i++ } else next.push(s[i])
      }
      seqs[w] = next
      for (let i = 0; i + 1 < next.length; i++) bump(next[i] * KEY + next[i + 1], f, w)
    }
    pairCount.set(key, 0)
  }
  return merges
}
