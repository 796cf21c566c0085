/**
 * The trace a provider node commits for a job it served: the honest replay's, or, for a node
 * started with `--cheat KIND` (demonstrations and tests, docs/NETWORK.md), a cheat of that kind
 * built the way `tessera attack` builds it (src/dispute/cheats.ts `makeCheat` over the real
 * replay). The cheat is a pure function of the model, the request (prompt, params, seed) and the
 * request digest, which seeds it: the serving node and, after a restart, its dispute defender
 * (src/node/defence.ts) compute the same lie. A cheat that changes tokens (`sample`, `prompt`,
 * `no-compute`, `length`, or an op cheat whose value changes a later sample) changes the answer
 * the node streams; the others stream the honest tokens under a false trace root.
 *
 * Stop strings are invisible to the dispute machine (its stop rule is end-of-generation and
 * `maxTokens`), so a cheat's answer runs to those and ignores `params.stop`.
 */
import type { Hex } from 'viem'
import { type Cheat, type CheatKind, makeCheat } from '../dispute/cheats.js'
import type { DisputeModel } from '../dispute/model.js'
import { jobSpecOf } from '../dispute/attack.js'
import { replayJob } from '../dispute/replay.js'
import { createReplayTraceProvider, type TraceProvider } from '../dispute/traceProvider.js'
import { toHex } from '../trace/merkle.js'
import type { JobParams } from '../trace/receipt.js'

/** What fixes a job's cheat: the request's prompt, params, seed and digest. */
export type CheatJob = { prompt: readonly number[]; params: JobParams; seed: bigint; requestDigest: Hex }

/** The cheat seed of a request: its digest's first 32 bits. */
export function cheatSeedOf(requestDigest: Hex): number {
  return Number.parseInt(requestDigest.slice(2, 10), 16)
}

/**
 * The cheat of `kind` a `--cheat` provider commits for `job` (`seed`: default from the request
 * digest). `.trace.outputs` are the tokens it delivers, `.provider` the TraceProvider its defender
 * plays, `.where` what it falsified.
 *
 * @example
 *   const c = cheatingTrace(model, { prompt, params, seed: 0n, requestDigest }, 'silu')
 *   c.provider.traceTree().root   // what the receipt's traceRoot says
 */
export function cheatingTrace(model: DisputeModel, job: CheatJob, kind: CheatKind, seed = cheatSeedOf(job.requestDigest)): Cheat {
  const spec = jobSpecOf(model, job)
  return makeCheat(model, spec, replayJob(model.tf, spec), kind, seed)
}

/** The trace root (bare hex, as receipts carry it) a `--cheat KIND` provider signs for `job`. */
export function cheatingTraceRoot(model: DisputeModel, job: CheatJob, kind: CheatKind, seed?: number): string {
  return toHex(cheatingTrace(model, job, kind, seed).provider.traceTree().root)
}

/**
 * The TraceProvider a provider's defender plays for a job it served with `output`: the replay
 * following those tokens, or with `cheat`, the same cheat it committed when serving.
 */
export function servedTraceProvider(model: DisputeModel, job: CheatJob & { output: readonly number[] }, cheat?: CheatKind): TraceProvider {
  if (cheat) return cheatingTrace(model, job, cheat).provider
  return createReplayTraceProvider(model, replayJob(model.tf, jobSpecOf(model, job), { forced: job.output }))
}
