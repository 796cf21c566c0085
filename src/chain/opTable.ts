/**
 * The op table of the dispute game (src/chain/contracts/OpTable.sol, docs/CHAIN.md "Op table"):
 * what each op-level leaf of a layer or head transition computes, and which weight tensor a matmul
 * op uses. Providers and challengers build their op-level sub-traces in this order; the contract
 * derives the same answers from the descent's indices. Checked against the contract in
 * opTable.test.ts.
 */

export type OpKind = 'other' | 'matmul' | 'sample'

/** Ops of a layer transition; leaf k (1-based) is the state after `LAYER_OPS[k - 1]`. */
export const LAYER_OPS = [
  { name: 'attention RMSNorm', kind: 'other' },
  { name: 'Q projection', kind: 'matmul', tensor: 'attn_q.weight' },
  { name: 'K projection', kind: 'matmul', tensor: 'attn_k.weight' },
  { name: 'V projection', kind: 'matmul', tensor: 'attn_v.weight' },
  { name: 'Q/K/V biases (identity without biases)', kind: 'other' },
  { name: 'RoPE on Q and K', kind: 'other' },
  { name: 'attention', kind: 'other' },
  { name: 'output projection', kind: 'matmul', tensor: 'attn_output.weight' },
  { name: 'residual add', kind: 'other' },
  { name: 'FFN RMSNorm', kind: 'other' },
  { name: 'gate projection', kind: 'matmul', tensor: 'ffn_gate.weight' },
  { name: 'up projection', kind: 'matmul', tensor: 'ffn_up.weight' },
  { name: 'SILU(gate) * up', kind: 'other' },
  { name: 'down projection', kind: 'matmul', tensor: 'ffn_down.weight' },
  { name: 'residual add', kind: 'other' },
] as const satisfies readonly { name: string; kind: OpKind; tensor?: string }[]

/** Ops of a head transition. */
export const HEAD_OPS = [
  { name: 'output RMSNorm', kind: 'other' },
  { name: 'logits', kind: 'matmul', tensor: 'output.weight' },
  { name: 'sampling', kind: 'sample' },
] as const satisfies readonly { name: string; kind: OpKind; tensor?: string }[]

/** The op-level leaf of a layer transition's op by its matmul tensor suffix (e.g. 'ffn_down.weight'). */
export function opLeafOf(tensorSuffix: string): number {
  const i = LAYER_OPS.findIndex((op) => 'tensor' in op && op.tensor === tensorSuffix)
  if (i < 0) throw new RangeError(`no layer op uses tensor ${tensorSuffix}`)
  return i + 1
}

/** The kind of op-level leaf `opLeaf` (1-based; 0 is the transition's input state). */
export function opKind(head: boolean, opLeaf: number): OpKind {
  const ops = head ? HEAD_OPS : LAYER_OPS
  return opLeaf >= 1 && opLeaf <= ops.length ? ops[opLeaf - 1].kind : 'other'
}

/**
 * The GGUF tensor names the contract accepts for op `opLeaf` of `layer` (none for non-matmul ops).
 * The head's logits accept `token_embd.weight` too (tied embeddings).
 */
export function tensorNamesOf(head: boolean, layer: number, opLeaf: number): string[] {
  if (opKind(head, opLeaf) !== 'matmul') return []
  if (head) return ['output.weight', 'token_embd.weight']
  const op = LAYER_OPS[opLeaf - 1]
  return 'tensor' in op ? [`blk.${layer}.${op.tensor}`] : []
}

/**
 * The op whose output matmul op `opLeaf` multiplies (its state is an activation state): Q, K, V
 * <- 1; attn_output <- 7; gate, up <- 10; down <- 13; the head's logits <- 1. 0 for other ops.
 */
export function actSource(head: boolean, opLeaf: number): number {
  if (head) return opLeaf === 2 ? 1 : 0
  return ({ 2: 1, 3: 1, 4: 1, 8: 7, 11: 10, 12: 10, 14: 13 } as Record<number, number>)[opLeaf] ?? 0
}

/** True when op `opLeaf`'s state is an activation state (some matmul multiplies its output). */
export function isActSource(head: boolean, opLeaf: number): boolean {
  return head ? opLeaf === 1 : [1, 7, 10, 13].includes(opLeaf)
}

/** The last op-level leaf of a transition: its number of ops. */
export function opCount(head: boolean): number {
  return head ? HEAD_OPS.length : LAYER_OPS.length
}
