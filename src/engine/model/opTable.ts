/**
 * The op table: one numbering of a transformer layer's and the head's values and ops, shared by
 * the forward pass (its op observer, transformer.ts), the dispute machine's TypeScript twin
 * (src/dispute/machine/program.ts builds its op lists from the rows below) and the judge
 * (src/chain/contracts/lib/MachineTable.sol, whose numbers and rows a test checks against this
 * file: src/chain/onestep/opTable.test.ts). docs/MACHINE.md "Slots", "The layer transition" and
 * "The head transition" describe the same table in prose.
 *
 * Three numberings live here:
 * - SLOT: the named vectors of a transition (X, XN1, Q, ...), as the machine's frames hold them;
 * - OP_CODE: the kinds of op the machine executes (LOAD, NORM, MATMUL, ...);
 * - LAYER_OP / HEAD_OP: the points where the forward pass reports its values (`observeOp`), each
 *   with the slots its outputs are (LAYER_OP_SLOTS / HEAD_OP_SLOTS).
 * and the op table proper: LAYER_TABLE and HEAD_TABLE, the ops of a transition in order.
 */

/** Slot numbers of the machine's frames; the layer and head transitions share the numbering. */
export const SLOT = {
  TOK: 0, X: 1, RS1: 2, XN1: 3, A1_32: 4, A1_256: 5, Q: 6, K: 7, V: 8, QB: 9, KB: 10, VB: 11,
  FR: 12, CS: 13, QR: 14, KR: 15, S: 16, M: 17, E: 18, Z: 19, O: 20, A2_32: 21, A2_256: 22, P: 23,
  X2: 24, RS2: 25, XN2: 26, A3_32: 27, A3_256: 28, G: 29, U: 30, H: 31, A4_32: 32, A4_256: 33, D: 34,
  X3: 35,
  // head: X, RS1, XN1, A1_32, A1_256 as above, then
  L: 36, PL: 37, NEXT: 38,
  // temperature sampling: rank of each id, ids by rank, scaled logits, exps, their sum, probabilities, kept count
  RK: 39, ID: 40, TL: 41, TE: 42, TZ: 43, PR: 44, KEEP: 45,
  // qwen3's per-head q/k RMSNorm: the heads' scales and the normed vectors (layer)
  QS: 46, QN: 47, KS: 48, KN: 49,
} as const

export type SlotName = keyof typeof SLOT

/** The slot's name (`slot N` for a number that names none), for messages and docs. */
export function slotName(slot: number): string {
  return Object.keys(SLOT).find((k) => SLOT[k as SlotName] === slot) ?? `slot ${slot}`
}

/** The machine's op codes, numbered as the judge numbers them. */
export const OP_CODE = {
  LOAD: 1, EMBED: 2, RMS_SCALE: 3, NORM: 4, QUANT32: 5, QUANT256: 6, MATMUL: 7, BIAS: 8, FREQ: 9, ROTCS: 10,
  ROPE: 11, SCORE: 12, MAX: 13, EXPS: 14, ZINV: 15, ATT: 16, RES: 17, SILU: 18, PENALTY: 19, ARGMAX: 20,
  STORE: 21, TOKEN: 22, RANK: 23, SORT: 24, TSCALE: 25, TEXP: 26, TSUM: 27, PROB: 28, KEEP: 29, DRAW: 30,
  HEAD_RMS: 31, HEAD_NORM: 32,
} as const

export type OpCode = keyof typeof OP_CODE

/**
 * When a row of a table is an op: only at layer 0 / only above it, only for qwen2 (QKV biases),
 * only for qwen3 (`qkNorm`: per-head q/k RMSNorm), only when the request penalizes repeats, only
 * for greedy / temperature sampling. A row with no condition is always an op.
 */
export type OpCondition = 'layer0' | 'aboveLayer0' | 'qwen2' | 'qkNorm' | 'penalty' | 'greedy' | 'sampled'

/**
 * One row of a transition's op table: the op's code, the slot it writes (-1 for STORE and TOKEN,
 * which write none) and when it applies. `name` is the row's name (the op's name in the machine,
 * but for the NORM rows, which the machine names by their full weight tensor).
 */
export type OpRow = { readonly name: string; readonly code: OpCode; readonly slot: number; readonly when?: OpCondition }

const row = (name: string, code: OpCode, slot: number, when?: OpCondition): OpRow => (when ? { name, code, slot, when } : { name, code, slot })

/** RMS_SCALE, NORM and both quantizations of the residual `src` into rs, xn, a32, a32 + 1. */
const normRows = (src: SlotName, rs: SlotName, xn: SlotName, a32: SlotName, a256: SlotName, norm: string): OpRow[] => [
  row(`RMS_SCALE ${src}`, 'RMS_SCALE', SLOT[rs]), row(`NORM ${norm}`, 'NORM', SLOT[xn]), ...quantRows(xn, a32, a256),
]
const quantRows = (src: SlotName, a32: SlotName, a256: SlotName): OpRow[] => [row(`QUANT32 ${src}`, 'QUANT32', SLOT[a32]), row(`QUANT256 ${src}`, 'QUANT256', SLOT[a256])]

/**
 * The layer transition's rows in order (MachineTable.sol `layerEntry`); op k of a transition is
 * the k-th row that applies.
 */
export const LAYER_TABLE: readonly OpRow[] = [
  row('LOAD TOK', 'LOAD', SLOT.TOK, 'layer0'),
  row('EMBED', 'EMBED', SLOT.X, 'layer0'),
  row('LOAD X', 'LOAD', SLOT.X, 'aboveLayer0'),
  // attention block
  ...normRows('X', 'RS1', 'XN1', 'A1_32', 'A1_256', 'attn_norm'),
  row('Q', 'MATMUL', SLOT.Q), row('K', 'MATMUL', SLOT.K), row('V', 'MATMUL', SLOT.V),
  row('QB', 'BIAS', SLOT.QB, 'qwen2'), row('KB', 'BIAS', SLOT.KB, 'qwen2'), row('VB', 'BIAS', SLOT.VB, 'qwen2'),
  // qwen3: each head of Q and K RMS-normalized (a scale per head, then the normed values)
  row('QS', 'HEAD_RMS', SLOT.QS, 'qkNorm'), row('QN', 'HEAD_NORM', SLOT.QN, 'qkNorm'),
  row('KS', 'HEAD_RMS', SLOT.KS, 'qkNorm'), row('KN', 'HEAD_NORM', SLOT.KN, 'qkNorm'),
  row('FREQ', 'FREQ', SLOT.FR), row('ROTCS', 'ROTCS', SLOT.CS),
  row('QR', 'ROPE', SLOT.QR), row('KR', 'ROPE', SLOT.KR),
  row('SCORE', 'SCORE', SLOT.S), row('MAX', 'MAX', SLOT.M), row('EXPS', 'EXPS', SLOT.E), row('ZINV', 'ZINV', SLOT.Z),
  row('ATT', 'ATT', SLOT.O),
  ...quantRows('O', 'A2_32', 'A2_256'),
  row('WO', 'MATMUL', SLOT.P),
  row('RES X2', 'RES', SLOT.X2),
  // FFN block
  ...normRows('X2', 'RS2', 'XN2', 'A3_32', 'A3_256', 'ffn_norm'),
  row('GATE', 'MATMUL', SLOT.G), row('UP', 'MATMUL', SLOT.U),
  row('SILU', 'SILU', SLOT.H),
  ...quantRows('H', 'A4_32', 'A4_256'),
  row('DOWN', 'MATMUL', SLOT.D),
  row('RES X3', 'RES', SLOT.X3),
  row('STORE', 'STORE', -1),
]

/**
 * The head transition's rows in order (MachineTable.sol `headEntry`) for a sampled position;
 * a teacher-forced position (p < nPrompt - 1) has TEACHER_FORCED_HEAD_TABLE instead.
 */
export const HEAD_TABLE: readonly OpRow[] = [
  row('LOAD X', 'LOAD', SLOT.X),
  ...normRows('X', 'RS1', 'XN1', 'A1_32', 'A1_256', 'output_norm'),
  row('LOGITS', 'MATMUL', SLOT.L),
  row('PENALTY', 'PENALTY', SLOT.PL, 'penalty'),
  row('ARGMAX', 'ARGMAX', SLOT.NEXT, 'greedy'),
  row('RANK', 'RANK', SLOT.RK, 'sampled'), row('SORT', 'SORT', SLOT.ID, 'sampled'), row('TSCALE', 'TSCALE', SLOT.TL, 'sampled'),
  row('TEXP', 'TEXP', SLOT.TE, 'sampled'), row('TSUM', 'TSUM', SLOT.TZ, 'sampled'), row('PROB', 'PROB', SLOT.PR, 'sampled'),
  row('KEEP', 'KEEP', SLOT.KEEP, 'sampled'), row('DRAW', 'DRAW', SLOT.NEXT, 'sampled'),
  row('STORE', 'STORE', -1),
]

/** The head at a teacher-forced position: one op, TOKEN (the next prompt token). */
export const TEACHER_FORCED_HEAD_TABLE: readonly OpRow[] = [row('TOKEN', 'TOKEN', -1)]

/** The rows of `table` that are ops under `facts` (the conditions that hold), in order. */
export function applicableRows(table: readonly OpRow[], facts: ReadonlySet<OpCondition>): OpRow[] {
  return table.filter((r) => r.when === undefined || facts.has(r.when))
}

/**
 * The forward pass's report points in a layer (`OpObserver`'s `op` for layer < nLayer), in the
 * order the pass reaches them.
 */
export const LAYER_OP = {
  ATTN_NORM: 1, Q: 2, K: 3, V: 4, QKV_BIAS: 5, QK_NORM: 6, ROPE: 7, ATTENTION: 8, ATTN_OUTPUT: 9, ATTN_RESIDUAL: 10,
  FFN_NORM: 11, GATE: 12, UP: 13, SILU_MUL: 14, DOWN: 15, FFN_RESIDUAL: 16,
} as const

/** The forward pass's report points in the head (`OpObserver`'s `op` for layer = nLayer). */
export const HEAD_OP = { OUTPUT_NORM: 1, LOGITS: 2 } as const

/**
 * The slots a layer report point's outputs are, in the order of its `outs`. QKV_BIAS reports Q, K
 * and V after the biases: QB, KB, VB for qwen2; a llama layer has no biases, and there they are
 * still Q, K, V. QK_NORM reports Q and K after qwen3's per-head norms: QN, KN; without the norms
 * they are Q, K (qwen2: QB, KB) unchanged.
 */
export const LAYER_OP_SLOTS: Readonly<Record<(typeof LAYER_OP)[keyof typeof LAYER_OP], readonly number[]>> = {
  [LAYER_OP.ATTN_NORM]: [SLOT.XN1],
  [LAYER_OP.Q]: [SLOT.Q],
  [LAYER_OP.K]: [SLOT.K],
  [LAYER_OP.V]: [SLOT.V],
  [LAYER_OP.QKV_BIAS]: [SLOT.QB, SLOT.KB, SLOT.VB],
  [LAYER_OP.QK_NORM]: [SLOT.QN, SLOT.KN],
  [LAYER_OP.ROPE]: [SLOT.QR, SLOT.KR],
  [LAYER_OP.ATTENTION]: [SLOT.O],
  [LAYER_OP.ATTN_OUTPUT]: [SLOT.P],
  [LAYER_OP.ATTN_RESIDUAL]: [SLOT.X2],
  [LAYER_OP.FFN_NORM]: [SLOT.XN2],
  [LAYER_OP.GATE]: [SLOT.G],
  [LAYER_OP.UP]: [SLOT.U],
  [LAYER_OP.SILU_MUL]: [SLOT.H],
  [LAYER_OP.DOWN]: [SLOT.D],
  [LAYER_OP.FFN_RESIDUAL]: [SLOT.X3],
}

/** The slots a head report point's outputs are. */
export const HEAD_OP_SLOTS: Readonly<Record<(typeof HEAD_OP)[keyof typeof HEAD_OP], readonly number[]>> = {
  [HEAD_OP.OUTPUT_NORM]: [SLOT.XN1],
  [HEAD_OP.LOGITS]: [SLOT.L],
}
