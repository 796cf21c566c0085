/**
 * The names of every kind of cheat (src/dispute/cheats.ts builds them): a module of its own with
 * no imports, so the CLI can list and check `--cheat KIND` without loading the replay machinery.
 */

/**
 * Op kinds: the op table's ops by name (MATMUL by its weight: q, k, v, wo, gate, up, down, logits;
 * qwen3's per-head norms by row: qs, ks the scales, qn, kn the normed values).
 */
export const OP_KINDS = [
  'embed', 'rms_scale', 'norm', 'quant32', 'quant256', 'q', 'k', 'v', 'qb', 'kb', 'vb', 'qs', 'qn', 'ks', 'kn', 'freq', 'rotcs', 'qr', 'kr', 'score', 'max',
  'exps', 'zinv', 'att', 'wo', 'res', 'gate', 'up', 'silu', 'down', 'logits', 'penalty', 'argmax', 'rank', 'sort', 'tscale', 'texp',
  'tsum', 'prob', 'keep', 'draw',
] as const
export const GAME_KINDS = ['sample', 'prompt', 'no-compute', 'length', 'self-dispute', 'micro', 'deliver', 'arith', 'window'] as const
export type CheatKind = (typeof OP_KINDS)[number] | (typeof GAME_KINDS)[number]
/** Every kind `random` picks from, and the `--cheat` words (with `random`). */
export const CHEAT_KINDS: readonly CheatKind[] = [...OP_KINDS, ...GAME_KINDS]
