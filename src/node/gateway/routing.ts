/**
 * Which provider serves a job, and in what order the others are tried when it fails: a `Router`
 * scores each offer by measured price, time to first token, throughput, uptime and audit
 * reputation, all fed by the gateway (`record` after each job, `setReputation` from the audits).
 *
 * Score of an offer (higher is better), docs/GATEWAY.md "Routing":
 *
 *   score = uptime^2 * reputation / (price / cheapest) / (time / fastest)
 *
 *   uptime     = (ok + 1) / (ok + failed + 2), counts decayed with a half-life (default 10 min),
 *                so an unknown provider starts at 1/2 and old failures fade
 *   reputation = the audit score in [0, 1] (default 1); slashed, or below `minReputation`
 *                (default 0.5): excluded from routing altogether
 *   price      = pricePerToken + 1 wei, over the cheapest offer's (so a free offer does not divide by 0)
 *   time       = ttft + refTokens / throughput, the expected seconds for a `refTokens`-token answer
 *                (default 256) from moving averages of the provider's jobs; a provider not yet
 *                measured is given the median of those measured (neither favoured nor punished)
 *
 * Then the order: a provider whose last job failed, less than `cooldownMs` ago (default 60 s), goes
 * behind every other (still a failover candidate); and with probability `exploration` (default
 * 0.1) a provider with fewer than `minSamples` jobs (default 3) is tried first, so a new provider
 * gets measured instead of never being picked. The draw uses `rng`, so tests are deterministic.
 */

/** What the router needs of an offer (src/p2p/offers.ts carries more). */
export type RouteOffer = { provider: string; pricePerToken: bigint }

/** How one job went: served (time to first token, output tokens, total time) or failed. */
export type JobOutcome = { ok: true; ttftMs: number; tokens: number; ms: number } | { ok: false }

export type RouterOptions = {
  exploration?: number
  minSamples?: number
  cooldownMs?: number
  halfLifeMs?: number
  refTokens?: number
  minReputation?: number
  /** Uniform in [0, 1) (default Math.random). */
  rng?: () => number
  /** Milliseconds (default Date.now). */
  now?: () => number
}

/** What the router knows of one provider. */
export type ProviderStats = {
  ok: number
  failed: number
  /** Moving averages over its served jobs; undefined until one is measured. */
  ttftMs?: number
  tokensPerSec?: number
  lastFailureAt?: number
  /** Whether its last job failed. */
  lastFailed: boolean
  reputation: number
  slashed: boolean
  /** When the counts were last decayed. */
  at: number
}

/** Weight of the newest measurement in the moving averages. */
const EWMA = 0.3

export class Router {
  private readonly stats = new Map<string, ProviderStats>()
  private readonly o: Required<RouterOptions>

  constructor(opts: RouterOptions = {}) {
    this.o = {
      exploration: 0.1, minSamples: 3, cooldownMs: 60_000, halfLifeMs: 600_000, refTokens: 256, minReputation: 0.5,
      rng: Math.random, now: Date.now, ...opts,
    }
  }

  /** The provider's stats, decayed to now (a fresh record for an unknown provider). Addresses match in any letter case. */
  statsOf(provider: string): ProviderStats {
    const now = this.o.now()
    const key = provider.toLowerCase()
    let s = this.stats.get(key)
    if (!s) {
      s = { ok: 0, failed: 0, lastFailed: false, reputation: 1, slashed: false, at: now }
      this.stats.set(key, s)
    }
    const k = 0.5 ** (Math.max(0, now - s.at) / this.o.halfLifeMs)
    s.ok *= k
    s.failed *= k
    s.at = now
    return s
  }

  /** Feeds the outcome of one job (the gateway calls it after each). */
  record(provider: string, outcome: JobOutcome): void {
    const s = this.statsOf(provider)
    if (!outcome.ok) {
      s.failed += 1
      s.lastFailureAt = s.at
      s.lastFailed = true
      return
    }
    s.ok += 1
    s.lastFailed = false
    const decodeMs = Math.max(1, outcome.ms - outcome.ttftMs)
    const tps = outcome.tokens > 1 ? ((outcome.tokens - 1) * 1000) / decodeMs : undefined
    s.ttftMs = s.ttftMs === undefined ? outcome.ttftMs : s.ttftMs + EWMA * (outcome.ttftMs - s.ttftMs)
    if (tps !== undefined) s.tokensPerSec = s.tokensPerSec === undefined ? tps : s.tokensPerSec + EWMA * (tps - s.tokensPerSec)
  }

  /** Sets the audit reputation (in [0, 1]) and whether the provider was slashed. */
  setReputation(provider: string, reputation: number, slashed = false): void {
    const s = this.statsOf(provider)
    s.reputation = Math.min(1, Math.max(0, reputation))
    s.slashed = slashed
  }

  /** Whether a provider may be routed to at all. */
  eligible(provider: string): boolean {
    const s = this.statsOf(provider)
    return !s.slashed && s.reputation >= this.o.minReputation
  }

  /** Expected seconds for a `refTokens` answer, when measured. */
  private expectedTime(s: ProviderStats): number | undefined {
    if (s.ttftMs === undefined || s.tokensPerSec === undefined) return undefined
    return s.ttftMs / 1000 + this.o.refTokens / s.tokensPerSec
  }

  /** The score of each offer among `offers` (module comment); excluded providers are absent. */
  scores(offers: readonly RouteOffer[]): Map<RouteOffer, number> {
    const ok = offers.filter((x) => this.eligible(x.provider))
    const times = ok.map((x) => this.expectedTime(this.statsOf(x.provider)))
    const known = times.filter((t): t is number => t !== undefined).sort((a, b) => a - b)
    const median = known.length ? known[Math.floor(known.length / 2)] : 1
    const time = times.map((t) => t ?? median)
    const fastest = Math.min(...time)
    const cheapest = ok.reduce((m, x) => (x.pricePerToken < m ? x.pricePerToken : m), ok[0]?.pricePerToken ?? 0n)
    const out = new Map<RouteOffer, number>()
    ok.forEach((x, i) => {
      const s = this.statsOf(x.provider)
      const uptime = (s.ok + 1) / (s.ok + s.failed + 2)
      const price = Number(x.pricePerToken + 1n) / Number(cheapest + 1n)
      out.set(x, (uptime * uptime * s.reputation) / price / (time[i] / fastest))
    })
    return out
  }

  /**
   * The failover order for one job: the first is asked first, the next when it fails, and so on.
   * Excluded providers (slashed, bad audits) are not in it.
   */
  order(offers: readonly RouteOffer[]): RouteOffer[] {
    const now = this.o.now()
    const scored = this.scores(offers)
    const recentFailure = (x: RouteOffer) => {
      const s = this.statsOf(x.provider)
      return s.lastFailed && s.lastFailureAt !== undefined && now - s.lastFailureAt < this.o.cooldownMs
    }
    const byScore = [...scored.keys()].sort((a, b) => scored.get(b)! - scored.get(a)! || (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0))
    const healthy = byScore.filter((x) => !recentFailure(x))
    const cooling = byScore.filter(recentFailure)
    const fresh = healthy.filter((x) => {
      const s = this.statsOf(x.provider)
      return s.ok + s.failed < this.o.minSamples
    })
    if (fresh.length && this.o.rng() < this.o.exploration) {
      const pick = fresh[Math.floor(this.o.rng() * fresh.length)]
      healthy.splice(healthy.indexOf(pick), 1)
      healthy.unshift(pick)
    }
    return [...healthy, ...cooling]
  }
}
