/**
 * The op tables of docs/MACHINE.md as data: for the layer transition (position p, layer l) and the
 * head transition (position p), the list of ops in order, each with its number k, name, output
 * slot, element count and, for every element j, the element's program: its step count, initial
 * micro-state, and for every step the exact values it reads and a pure step function. The judge
 * executes one step; the provider (src/dispute/machine/transition.ts) runs all of them.
 *
 * Every step function uses only the canonical arithmetic (docs/ARITHMETIC.md): one Math.fround per
 * binary32 step in the spec's order, EXP/LOG/SIN/COS/SILU/fold of src/engine/math/canonical.ts,
 * and the BLOCK_TERM / dequantization / activation rounding of src/engine/kernels/reference.ts.
 * A step does at most ~64 binary32 operations or one block term, which is what a Solidity softfloat
 * step affords: dot products advance 8 columns (or one weight block) per step, quantization 32
 * values, attention one cached position.
 *
 * Reads never cross a 256-word chunk: a range read lies inside one aligned group of 8 words (32
 * for QUANT), which is why MAX and ZINV step through the aligned groups of the score vector (a
 * head's scores start at h·n_u, not at a multiple of 8) and SUM8 lanes are numbered by the index
 * within the reduced sequence, not within the group.
 *
 * Legend: dim model width, hd head dim, nh/nkv query/kv heads, kvDim = nkv·hd, ff FFN width,
 * V vocab, n_u = p + 1 cached positions (a sliding window W: min(p + 1, W), positions
 * lo .. p with lo = p + 1 − n_u), B activation block size (32 or 256).
 */
import { BaseError } from '../../errors.js'
import { bitsToF32, f32ToBits } from '../../engine/bytes.js'
import { BLOCK } from '../../engine/gguf/types.js'
import { activationBlockSize, blockTerm, dequantizeRow, isFloatType } from '../../engine/kernels/reference.js'
import { cos, exp, f, fold, log, silu, sin } from '../../engine/math/canonical.js'
import { f2h, h2f } from '../../engine/math/half.js'
import { rand } from '../../engine/math/rand.js'
import type { ModelConfig } from '../../engine/model/config.js'
import { type ArithVersion, isArithVersion, roundsKv } from '../../engine/version.js'
import { HEAD_TABLE, LAYER_TABLE, type OpCode, type OpCondition, type OpRow, SLOT, TEACHER_FORCED_HEAD_TABLE, applicableRows } from '../../engine/model/opTable.js'
import { type Block, type MicroState, microState } from './state.js'

// The slot and op-code numbering and the order of ops are the engine's op table; re-exported so
// the machine's users import one module.
export { type OpCode, SLOT, slotName } from '../../engine/model/opTable.js'

/**
 * A value a step reads, each bound to an agreed commitment (docs/MACHINE.md "What the judge
 * reads"):
 * - `words`: words [start, start + count) of word slot `slot` of the op's pre-frame;
 * - `block`: block `index` of block slot `slot` of the pre-frame;
 * - `weight`: `count` GGUF blocks from block `start` of row `row` of tensor `tensor` (for float
 *   types a block is one element), raw bytes, under the model root;
 * - `kv`: words [start, start + count) of K (after RoPE) or V of trace leaf (pos, layer), lo <= pos < p;
 * - `prompt`: token `index` of the request's prompt;
 * - `headToken`: the nextToken of head leaf `pos` (the token consumed at pos + 1), pos < p.
 */
export type Read =
  | { kind: 'words'; slot: number; start: number; count: number }
  | { kind: 'block'; slot: number; index: number }
  | { kind: 'weight'; tensor: string; row: number; start: number; count: number }
  | { kind: 'kv'; which: 'k' | 'v'; pos: number; layer: number; start: number; count: number }
  | { kind: 'prompt'; index: number }
  | { kind: 'headToken'; pos: number }

/** The value of a read: words as uint32 bits, a block, weight bytes, or a token id. */
export type ReadValue = Uint32Array | Block | Uint8Array | number

/** One micro-step: its name, what it reads (given the pre-state), and the pure transition. */
export type Step = {
  name: string
  reads: Read[]
  /** The post-state from the pre-state and the values of `reads`, in order. */
  run(pre: MicroState, values: readonly ReadValue[]): MicroState
}

/** The program of element `elem` of op `op`: states 0 .. steps, state 0 = `init`. */
export type ElementProgram = {
  op: number
  elem: number
  steps: number
  init: MicroState
  /** Step s (1 .. steps), which takes state s - 1 (`pre`) to state s. */
  step(s: number, pre: MicroState): Step
}

/** One op of a transition. `program` is absent for the one-step ops LOAD, STORE and TOKEN. */
export type OpDef = {
  /** k: the op's 1-based number in its transition (op-level leaf index; MicroState.op). */
  op: number
  code: OpCode
  /** Readable name, e.g. `Q`, `QUANT32 XN1`. */
  name: string
  /** The slot it writes, -1 for STORE and TOKEN. */
  slot: number
  /** Whether the slot is a block vector (results are actBlockLeaf(r[0], data)). */
  block: boolean
  /** Elements of the slot (for LOAD the slot's length; 0 for STORE, TOKEN and empty block vectors). */
  length: number
  /** The weight tensor the op reads, if any. */
  tensor?: string
  program?: (j: number) => ElementProgram
}

/** A tensor's ggml type and shape (the model root's tensor leaf). */
export type TensorShape = { type: number; rows: number; cols: number }

/**
 * The sampling parameters of the client's signed request (src/engine/sample.ts SamplingParams);
 * topK, topP, minP and seed matter only when temperature > 0.
 */
export type MachineSampling = {
  temperature: number
  repeatPenalty: number
  repeatLastN: number
  topK?: number
  topP?: number
  minP?: number
  seed?: bigint
}

/**
 * What the op tables depend on: config, weight shapes, the position and layer, the request, and
 * the job's arithmetic (its model's registered one; docs/MACHINE.md "Which arithmetic").
 */
export type ProgramContext = {
  config: ModelConfig
  /** tessera-arith/2 rounds each cached K and V value SCORE's DOT8 and ATT's ACC read to binary16. */
  arith: ArithVersion
  /**
   * The model's attention window W, 0 for full attention: what its config leaf commits to
   * (`tessera-config/3+window`) and its registration records (`ModelRegistry.windowOf`); must be
   * the config's (`attentionWindow(config)`). SCORE, MAX, EXPS, ZINV and ATT run over the last
   * n_u = min(p + 1, W) positions.
   */
  window: number
  shape(tensor: string): TensorShape
  pos: number
  /** 0 .. nLayer - 1, or nLayer for the head transition. */
  layer: number
  nPrompt: number
  sampling: MachineSampling
}

/** A model shape or tensor type the machine's programs do not cover (the message names it). */
export class UnsupportedShapeError extends BaseError {
  override name = 'UnsupportedShapeError'
  constructor(message: string) {
    super(message, { docs: 'docs/MACHINE.md' })
  }
}

/**
 * An arithmetic the machine's programs do not implement: a context without one is never judged as
 * v1 by default (the contract reverts `UnknownArith` alike; docs/MACHINE.md "Which arithmetic").
 */
export class UnknownArithError extends BaseError {
  override name = 'UnknownArithError'
  constructor(arith: unknown) {
    super(`the dispute machine does not implement the arithmetic ${JSON.stringify(arith)} (tessera-arith/1 and /2 only)`, { docs: 'docs/MACHINE.md' })
  }
}

/** A context whose attention window is not the model config's (docs/MACHINE.md "Sliding window"). */
export class WindowMismatchError extends BaseError {
  override name = 'WindowMismatchError'
  constructor(window: unknown, config: ModelConfig) {
    super(`the context's attention window ${JSON.stringify(window)} is not the model's (${attentionWindow(config)}; 0 = full attention)`, { docs: 'docs/MACHINE.md' })
  }
}

/**
 * The attention window a model config commits to (its config leaf's W), 0 for full attention:
 * what `ProgramContext.window` must be.
 *
 * @example
 *   layerOps({ config, arith, window: attentionWindow(config), shape, pos, layer, nPrompt, sampling })
 */
export function attentionWindow(config: ModelConfig): number {
  return config.slidingWindow ?? 0
}

/** The cached positions attention reads at ctx.pos: n_u of them, from lo = p + 1 − n_u. */
function cachedPositions(ctx: ProgramContext): { nu: number; lo: number } {
  const nu = ctx.window > 0 ? Math.min(ctx.pos + 1, ctx.window) : ctx.pos + 1
  return { nu, lo: ctx.pos + 1 - nu }
}

// ---- binary32 bits <-> values -------------------------------------------------------------------

/** binary32 bits of a binary32 value. */
export function bits(x: number): number {
  // Every NaN result is the canonical quiet NaN, as the judge writes it (docs/ARITHMETIC.md
  // "Notation"); x86 and V8 would otherwise store 0xFFC00000 for some invalid operations.
  if (x !== x) return 0x7fc00000
  return f32ToBits(x)
}
/** The binary32 value of bits. */
export const val: (b: number) => number = bitsToF32
const NEG_INF = 0xff800000

function f32s(w: Uint32Array): Float32Array {
  return new Float32Array(w.buffer, w.byteOffset, w.length)
}

/** State `pre.step + 1` of the same element with registers `r` and data (default: pre's). */
function next(pre: MicroState, r: ArrayLike<number>, data: Uint8Array = pre.data): MicroState {
  return microState(pre.op, pre.elem, pre.step + 1, r, data)
}

/** The aligned 8-word groups that cover [start, end): [a, b) pieces, in order. */
function groups8(start: number, end: number): [number, number][] {
  const out: [number, number][] = []
  for (let a = start; a < end; ) {
    const b = Math.min(end, (Math.floor(a / 8) + 1) * 8)
    out.push([a, b])
    a = b
  }
  return out
}

/** SUM8 lanes after adding x_i at lane (first + i) mod 8, for i < xs.length. */
function addLanes(r: Uint32Array, first: number, xs: ArrayLike<number>): Uint32Array {
  const out = r.slice()
  for (let i = 0; i < xs.length; i++) {
    const l = (first + i) & 7
    out[l] = bits(f(val(out[l]) + xs[i]))
  }
  return out
}

function foldRegs(r: Uint32Array): number {
  return fold(val(r[0]), val(r[1]), val(r[2]), val(r[3]), val(r[4]), val(r[5]), val(r[6]), val(r[7]))
}

/** The binary32 values of `n` elements of a float-type row piece (exact). */
function floatValues(type: number, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n)
  dequantizeRow(type, bytes, out)
  return out
}

function words(slot: number, start: number, count: number): Read {
  return { kind: 'words', slot, start, count }
}

/** A program whose steps are given by a function of s (and of pre for data-driven reads). */
function program(op: number, elem: number, steps: number, init: ArrayLike<number>, step: (s: number, pre: MicroState) => Step): ElementProgram {
  return { op, elem, steps, init: microState(op, elem, 0, init), step: (s, pre) => {
    if (!(Number.isInteger(s) && s >= 1 && s <= steps)) throw new RangeError(`op ${op} element ${elem} has steps 1 .. ${steps}, not ${s}`)
    return step(s, pre)
  } }
}

// ---- element programs, one builder per op kind ---------------------------------------------------

/** RMS_SCALE: ceil(n/8) × SQ8 (lanes ⊕= x_i ⊗ x_i), then RMS_FINAL `1 ⊘ √((fold ⊘ i2f(n)) ⊕ eps)`. */
function rmsScale(op: number, src: number, n: number, eps: number) {
  const gs = groups8(0, n)
  return (j: number) => program(op, j, gs.length + 1, [], (s) => {
    if (s <= gs.length) {
      const [a, b] = gs[s - 1]
      return { name: 'SQ8', reads: [words(src, a, b - a)], run: (pre, [x]) => {
        const xs = f32s(x as Uint32Array)
        return next(pre, addLanes(pre.r, a, Array.from(xs, (v) => f(v * v))))
      } }
    }
    return { name: 'RMS_FINAL', reads: [], run: (pre) => next(pre, [bits(f(1 / f(Math.sqrt(f(f(foldRegs(pre.r) / n) + eps)))))]) }
  })
}

/** NORM: `(x_j ⊗ s) ⊗ w_j`, one step. */
function norm(op: number, src: number, rs: number, tensor: string, shape: TensorShape) {
  floatRow(tensor, shape)
  return (j: number) => program(op, j, 1, [], () => ({
    name: 'NORM', reads: [words(src, j, 1), words(rs, 0, 1), { kind: 'weight', tensor, row: 0, start: j, count: 1 }],
    run: (pre, [x, s, w]) => next(pre, [bits(f(f(val((x as Uint32Array)[0]) * val((s as Uint32Array)[0])) * floatValues(shape.type, w as Uint8Array, 1)[0]))]),
  }))
}

/**
 * QUANT B of block b: B/32 × AMAX32 (r1 = max |x|), SCALE (r0 = d_a, r2 = id), B/32 × QUANT32
 * (32 int8 appended to data), exactly `quantizeQ8` of src/engine/kernels/reference.ts.
 */
function quant(op: number, src: number, B: 32 | 256) {
  const g = B / 32
  return (b: number) => program(op, b, 2 * g + 1, [], (s) => {
    if (s <= g) {
      return { name: 'AMAX32', reads: [words(src, b * B + 32 * (s - 1), 32)], run: (pre, [x]) => {
        let amax = val(pre.r[1])
        for (const v of f32s(x as Uint32Array)) amax = Math.max(amax, Math.abs(v))
        const r = pre.r.slice()
        r[1] = bits(amax)
        return next(pre, r)
      } }
    }
    if (s === g + 1) {
      return { name: 'SCALE', reads: [], run: (pre) => {
        const d = f(val(pre.r[1]) / 127)
        const id = d === 0 ? 0 : f(1 / d)
        // blocks of 32 keep the scale rounded to binary16 (llama.cpp's block_q8_0); q uses id of the unrounded d
        return next(pre, [bits(B === 32 ? h2f(f2h(d)) : d), pre.r[1], bits(id)])
      } }
    }
    return { name: 'QUANT32', reads: [words(src, b * B + 32 * (s - g - 2), 32)], run: (pre, [x]) => {
      const id = val(pre.r[2])
      const q = new Int8Array(32)
      f32s(x as Uint32Array).forEach((v, i) => {
        const t = f(v * id)
        // |t| + 0.5 is exact in a double: floor gives round-half-away-from-zero; NaN stores 0
        q[i] = Math.min(127, Math.max(-127, Math.sign(t) * Math.floor(Math.abs(t) + 0.5)))
      })
      const data = new Uint8Array(pre.data.length + 32)
      data.set(pre.data)
      data.set(new Uint8Array(q.buffer), pre.data.length)
      return next(pre, pre.r, data)
    } }
  })
}

/**
 * MATMUL row j of `tensor`: quantized weights nb × BLOCK (lane b mod 8 ⊕= BLOCK_TERM of weight
 * block b and activation block b of the B-slot), float weights ceil(cols/8) × FDOT8 (8 weights, 8
 * words of the f32 activation); then FOLD.
 */
function matmul(op: number, tensor: string, shape: TensorShape, f32Src: number, act32: number, act256: number) {
  const B = activationBlockSize(shape.type)
  if (B === 0) {
    const gs = groups8(0, shape.cols)
    return (j: number) => program(op, j, gs.length + 1, [], (s) => {
      if (s > gs.length) return foldStep()
      const [a, b] = gs[s - 1]
      return { name: 'FDOT8', reads: [{ kind: 'weight', tensor, row: j, start: a, count: b - a }, words(f32Src, a, b - a)], run: (pre, [w, x]) => {
        const wv = floatValues(shape.type, w as Uint8Array, b - a)
        const xv = f32s(x as Uint32Array)
        return next(pre, addLanes(pre.r, a, Array.from(wv, (v, i) => f(v * xv[i]))))
      } }
    })
  }
  const nb = shape.cols / B
  const act = B === 32 ? act32 : act256
  return (j: number) => program(op, j, nb + 1, [], (s) => {
    if (s > nb) return foldStep()
    const b = s - 1
    return { name: 'BLOCK', reads: [{ kind: 'weight', tensor, row: j, start: b, count: 1 }, { kind: 'block', slot: act, index: b }], run: (pre, [w, a]) => {
      const blk = a as Block
      const term = blockTerm(shape.type, w as Uint8Array, 0, new Int8Array(blk.qa.buffer, blk.qa.byteOffset, blk.qa.length), val(blk.da))
      return next(pre, addLanes(pre.r, b, [term]))
    } }
  })
}

function foldStep(): Step {
  return { name: 'FOLD', reads: [], run: (pre) => next(pre, [bits(foldRegs(pre.r))]) }
}

/** BIAS: `y_j ⊕ bias_j`. */
function bias(op: number, src: number, tensor: string, shape: TensorShape) {
  floatRow(tensor, shape)
  return (j: number) => program(op, j, 1, [], () => ({
    name: 'BIAS', reads: [words(src, j, 1), { kind: 'weight', tensor, row: 0, start: j, count: 1 }],
    run: (pre, [y, w]) => next(pre, [bits(f(val((y as Uint32Array)[0]) + floatValues(shape.type, w as Uint8Array, 1)[0]))]),
  }))
}

/**
 * HEAD_RMS of head h (qwen3's q/k norms): hd/8 × SQ8 over the head's words [h·hd, (h+1)·hd) of
 * src (lane i mod 8), then RMS_FINAL `1 ⊘ √((fold ⊘ i2f(hd)) ⊕ eps)`: RMS_SCALE over one head.
 */
function headRms(op: number, src: number, hd: number, eps: number) {
  const gs = groups8(0, hd)
  return (h: number) => program(op, h, gs.length + 1, [], (s) => {
    if (s <= gs.length) {
      const [a, b] = gs[s - 1]
      return { name: 'SQ8', reads: [words(src, h * hd + a, b - a)], run: (pre, [x]) => {
        const xs = f32s(x as Uint32Array)
        return next(pre, addLanes(pre.r, a, Array.from(xs, (v) => f(v * v))))
      } }
    }
    return { name: 'RMS_FINAL', reads: [], run: (pre) => next(pre, [bits(f(1 / f(Math.sqrt(f(f(foldRegs(pre.r) / hd) + eps)))))]) }
  })
}

/** HEAD_NORM j = h·hd + d: `(x_j ⊗ s_h) ⊗ w_d`, w the layer's `attn_q_norm` / `attn_k_norm` (hd values). */
function headNorm(op: number, src: number, scales: number, hd: number, tensor: string, shape: TensorShape) {
  floatRow(tensor, shape)
  return (j: number) => program(op, j, 1, [], () => ({
    name: 'HNORM', reads: [words(src, j, 1), words(scales, Math.floor(j / hd), 1), { kind: 'weight', tensor, row: 0, start: j % hd, count: 1 }],
    run: (pre, [x, s, w]) => next(pre, [bits(f(f(val((x as Uint32Array)[0]) * val((s as Uint32Array)[0])) * floatValues(shape.type, w as Uint8Array, 1)[0]))]),
  }))
}

/** FREQ: `EXP((i2f(-2j) ⊘ i2f(hd)) ⊗ LOG(base))`, no reads (base is the config's binary32). */
function freq(op: number, hd: number, base: number) {
  return (j: number) => program(op, j, 1, [], () => ({
    name: 'FREQ', reads: [], run: (pre) => next(pre, [bits(exp(f(f(f(-2 * j) / hd) * log(f(base)))))]),
  }))
}

/** ROTCS: j = 2i: `COS(i2f(p) ⊗ FR_i)`, j = 2i + 1: `SIN(i2f(p) ⊗ FR_i)`. */
function rotcs(op: number, pos: number) {
  return (j: number) => program(op, j, 1, [], () => ({
    name: 'ROTCS', reads: [words(SLOT.FR, j >> 1, 1)], run: (pre, [fr]) => {
      const a = f(f(pos) * val((fr as Uint32Array)[0]))
      return next(pre, [bits(j & 1 ? sin(a) : cos(a))])
    },
  }))
}

/**
 * ROPE of element j of src: its pair (llama (2i, 2i+1), qwen2 (i, i + hd/2)) within its head and
 * (c, s) = CS[2i], CS[2i+1]: first member `(x0 ⊗ c) ⊖ (x1 ⊗ s)`, second `(x0 ⊗ s) ⊕ (x1 ⊗ c)`.
 */
function rope(op: number, src: number, hd: number, neox: boolean) {
  return (j: number) => {
    const base = j - (j % hd)
    const d = j % hd
    const i = neox ? d % (hd / 2) : d >> 1
    const a = neox ? base + i : base + 2 * i
    const b = neox ? a + hd / 2 : a + 1
    const second = j === b
    return program(op, j, 1, [], () => ({
      name: 'ROPE', reads: [words(src, a, 1), words(src, b, 1), words(SLOT.CS, 2 * i, 2)], run: (pre, [w0, w1, cs]) => {
        const x0 = val((w0 as Uint32Array)[0]), x1 = val((w1 as Uint32Array)[0])
        const c = val((cs as Uint32Array)[0]), s = val((cs as Uint32Array)[1])
        return next(pre, [bits(second ? f(f(x0 * s) + f(x1 * c)) : f(f(x0 * c) - f(x1 * s)))])
      },
    }))
  }
}

/**
 * The value attention reads of a cached K or V word under the job's arithmetic: itself (v1), or
 * R(x) = h2f(f2h(x)), rounded to binary16 (v2; docs/ARITHMETIC.md step 4). Trace leaves and frame
 * slots keep the unrounded words; only these two reads round.
 */
function kvValue(arith: ArithVersion): (x: number) => number {
  return roundsKv(arith) ? (x) => h2f(f2h(x)) : (x) => x
}

/**
 * Read of `count` words from `start` of K or V at cached position u (0 .. n_u − 1), which is
 * position lo + u: a trace leaf before p, the frame at p.
 */
function kvRead(which: 'k' | 'v', u: number, ctx: ProgramContext, slot: number, start: number, count: number): Read {
  const pos = cachedPositions(ctx).lo + u
  return pos < ctx.pos ? { kind: 'kv', which, pos, layer: ctx.layer, start, count } : words(slot, start, count)
}

/**
 * SCORE j = h·n_u + u: hd/8 × DOT8 (8 of q_h, 8 of k_u, each k read as `kvValue`), FOLD_SCALE
 * `fold ⊗ (1 ⊘ √(i2f(hd)))`.
 */
function score(op: number, ctx: ProgramContext, hd: number, group: number) {
  const { nu } = cachedPositions(ctx)
  const gs = groups8(0, hd)
  const kr = kvValue(ctx.arith)
  return (j: number) => {
    const h = Math.floor(j / nu), u = j % nu
    const kvh = Math.floor(h / group)
    return program(op, j, gs.length + 1, [], (s) => {
      if (s > gs.length) {
        return { name: 'FOLD_SCALE', reads: [], run: (pre) => next(pre, [bits(f(foldRegs(pre.r) * f(1 / f(Math.sqrt(hd)))))]) }
      }
      const [a, b] = gs[s - 1]
      return { name: 'DOT8', reads: [words(SLOT.QR, h * hd + a, b - a), kvRead('k', u, ctx, SLOT.KR, kvh * hd + a, b - a)], run: (pre, [q, k]) => {
        const qv = f32s(q as Uint32Array), kv = f32s(k as Uint32Array)
        return next(pre, addLanes(pre.r, a, Array.from(qv, (v, i) => f(v * kr(kv[i])))))
      } }
    })
  }
}

/** MAX of head h: the aligned groups of S[h·n_u ..), `s > m` replaces (m starts at -inf). */
function max(op: number, nu: number) {
  return (h: number) => {
    const gs = groups8(h * nu, (h + 1) * nu)
    return program(op, h, gs.length, [NEG_INF], (s) => {
      const [a, b] = gs[s - 1]
      return { name: 'MAX8', reads: [words(SLOT.S, a, b - a)], run: (pre, [x]) => {
        let m = val(pre.r[0])
        for (const v of f32s(x as Uint32Array)) if (v > m) m = v
        return next(pre, [bits(m)])
      } }
    })
  }
}

/** EXPS j = h·n_u + u: `EXP(s_j ⊖ m_h)`. */
function exps(op: number, nu: number) {
  return (j: number) => program(op, j, 1, [], () => ({
    name: 'EXP', reads: [words(SLOT.S, j, 1), words(SLOT.M, Math.floor(j / nu), 1)],
    run: (pre, [s, m]) => next(pre, [bits(exp(f(val((s as Uint32Array)[0]) - val((m as Uint32Array)[0]))))]),
  }))
}

/** ZINV of head h: SUM8 of E[h·n_u ..) over its aligned groups (lane u mod 8), FOLD_INV `1 ⊘ fold`. */
function zinv(op: number, nu: number) {
  return (h: number) => {
    const gs = groups8(h * nu, (h + 1) * nu)
    return program(op, h, gs.length + 1, [], (s) => {
      if (s > gs.length) return { name: 'FOLD_INV', reads: [], run: (pre) => next(pre, [bits(f(1 / foldRegs(pre.r)))]) }
      const [a, b] = gs[s - 1]
      return { name: 'SUM8', reads: [words(SLOT.E, a, b - a)], run: (pre, [e]) => next(pre, addLanes(pre.r, a - h * nu, f32s(e as Uint32Array))) }
    })
  }
}

/** ATT j = h·hd + d: n_u × ACC (`acc ⊕ (e_u ⊗ v_u[d])`, v read as `kvValue`, u in order), ATT_SCALE `acc ⊗ z_h`. */
function att(op: number, ctx: ProgramContext, hd: number, group: number, vSlot: number) {
  const { nu } = cachedPositions(ctx)
  const vr = kvValue(ctx.arith)
  return (j: number) => {
    const h = Math.floor(j / hd), d = j % hd
    const kvh = Math.floor(h / group)
    return program(op, j, nu + 1, [], (s) => {
      if (s > nu) {
        return { name: 'ATT_SCALE', reads: [words(SLOT.Z, h, 1)], run: (pre, [z]) => next(pre, [bits(f(val(pre.r[0]) * val((z as Uint32Array)[0])))]) }
      }
      const u = s - 1
      return { name: 'ACC', reads: [words(SLOT.E, h * nu + u, 1), kvRead('v', u, ctx, vSlot, kvh * hd + d, 1)], run: (pre, [e, v]) =>
        next(pre, [bits(f(val(pre.r[0]) + f(val((e as Uint32Array)[0]) * vr(val((v as Uint32Array)[0])))))]) }
    })
  }
}

/** RES: `a_j ⊕ b_j`. */
function res(op: number, a: number, b: number) {
  return (j: number) => program(op, j, 1, [], () => ({
    name: 'RES', reads: [words(a, j, 1), words(b, j, 1)],
    run: (pre, [x, y]) => next(pre, [bits(f(val((x as Uint32Array)[0]) + val((y as Uint32Array)[0])))]),
  }))
}

/** SILU: `SILU(g_j) ⊗ u_j`. */
function siluMul(op: number) {
  return (j: number) => program(op, j, 1, [], () => ({
    name: 'SILU', reads: [words(SLOT.G, j, 1), words(SLOT.U, j, 1)],
    run: (pre, [g, u]) => next(pre, [bits(f(silu(val((g as Uint32Array)[0])) * val((u as Uint32Array)[0])))]),
  }))
}

/** EMBED: TOKEN (r1 = TOK[0]), then DEQ: value j of row r1 of the embedding, dequantized. */
function embed(op: number, tensor: string, shape: TensorShape) {
  const bs = BLOCK[shape.type].size
  return (j: number) => program(op, j, 2, [], (s, pre) => {
    if (s === 1) return { name: 'TOKEN', reads: [words(SLOT.TOK, 0, 1)], run: (p, [t]) => next(p, [0, (t as Uint32Array)[0]]) }
    const blk = Math.floor(j / bs)
    return { name: 'DEQ', reads: [{ kind: 'weight', tensor, row: pre.r[1], start: blk, count: 1 }], run: (p, [w]) => {
      const out = new Float32Array(bs)
      dequantizeRow(shape.type, w as Uint8Array, out)
      return next(p, [bits(out[j - blk * bs])])
    } }
  })
}

/** The read of the token consumed at position u: the prompt's, or the head leaf (u - 1)'s nextToken. */
export function tokenRead(u: number, nPrompt: number): Read {
  return u < nPrompt ? { kind: 'prompt', index: u } : { kind: 'headToken', pos: u - 1 }
}

/**
 * PENALTY j: one SCAN step per token of the last min(N, p + 1) positions (r1 = 1 when one is j),
 * then APPLY: `flag ? (l > 0 ? l ⊘ pen : l ⊗ pen) : l`.
 */
function penalty(op: number, ctx: ProgramContext) {
  const n = Math.min(ctx.sampling.repeatLastN, ctx.pos + 1)
  const first = ctx.pos + 1 - n
  const pen = f(ctx.sampling.repeatPenalty)
  return (j: number) => program(op, j, n + 1, [], (s) => {
    if (s <= n) return { name: 'SCAN', reads: [tokenRead(first + s - 1, ctx.nPrompt)], run: (pre, [t]) => next(pre, [0, pre.r[1] | (t === j ? 1 : 0)]) }
    return { name: 'APPLY', reads: [words(SLOT.L, j, 1)], run: (pre, [l]) => {
      const x = val((l as Uint32Array)[0])
      return next(pre, [bits(pre.r[1] ? (x > 0 ? f(x / pen) : f(x * pen)) : x)])
    } }
  })
}

/** ARGMAX (one element): ceil(V/8) × ARGMAX8 (r0 = best id, r1 = best value; ties keep the lower id). */
function argmax(op: number, src: number, n: number) {
  const gs = groups8(0, n)
  return (j: number) => program(op, j, gs.length, [0, NEG_INF], (s) => {
    const [a, b] = gs[s - 1]
    return { name: 'ARGMAX8', reads: [words(src, a, b - a)], run: (pre, [x]) => {
      let id = pre.r[0], best = val(pre.r[1])
      f32s(x as Uint32Array).forEach((v, i) => {
        if (v > best) {
          best = v
          id = a + i
        }
      })
      return next(pre, [id, bits(best)])
    } }
  })
}

// ---- temperature sampling (docs/ARITHMETIC.md "Sampling" steps 3-6) --------------------------------

/** Whether id a is better than id b: higher logit, then lower id (the engine's sort order). */
function better(la: number, a: number, lb: number, b: number): boolean {
  return la > lb || (la === lb && a < b)
}

/** RANK i: r1 = l_i (LOGIT), then ceil(V/8) × RANK8 counting the ids better than i (r0). */
function rank(op: number, src: number, V: number) {
  const gs = groups8(0, V)
  return (i: number) => program(op, i, gs.length + 1, [], (s) => {
    if (s === 1) return { name: 'LOGIT', reads: [words(src, i, 1)], run: (pre, [l]) => next(pre, [0, (l as Uint32Array)[0]]) }
    const [a, b] = gs[s - 2]
    return { name: 'RANK8', reads: [words(src, a, b - a)], run: (pre, [x]) => {
      const li = val(pre.r[1])
      let n = pre.r[0]
      f32s(x as Uint32Array).forEach((v, k) => {
        if (better(v, a + k, li, i)) n++
      })
      return next(pre, [n, pre.r[1]])
    } }
  })
}

/** SORT r: ceil(V/8) × FIND8 over RK: r0 = the id whose rank is r (ranks are a permutation). */
function sortIds(op: number, V: number) {
  const gs = groups8(0, V)
  return (r: number) => program(op, r, gs.length, [], (s) => {
    const [a, b] = gs[s - 1]
    return { name: 'FIND8', reads: [words(SLOT.RK, a, b - a)], run: (pre, [x]) => {
      let id = pre.r[0]
      ;(x as Uint32Array).forEach((rk, k) => {
        if (rk === r) id = a + k
      })
      return next(pre, [id])
    } }
  })
}

/** TSCALE r: ID (r1 = ID[r]), then SCALE_T: `l_{r1} ⊘ temperature`. */
function tscale(op: number, src: number, temp: number) {
  return (r: number) => program(op, r, 2, [], (s, pre) => {
    if (s === 1) return { name: 'ID', reads: [words(SLOT.ID, r, 1)], run: (p, [id]) => next(p, [0, (id as Uint32Array)[0]]) }
    return { name: 'SCALE_T', reads: [words(src, pre.r[1], 1)], run: (p, [l]) => next(p, [bits(f(val((l as Uint32Array)[0]) / temp))]) }
  })
}

/** TEXP r: `EXP(tl_r ⊖ tl_0)` (tl_0 is the maximum: rank 0). */
function texp(op: number) {
  return (r: number) => program(op, r, 1, [], () => ({
    name: 'EXP', reads: [words(SLOT.TL, r, 1), words(SLOT.TL, 0, 1)],
    run: (pre, [x, m]) => next(pre, [bits(exp(f(val((x as Uint32Array)[0]) - val((m as Uint32Array)[0]))))]),
  }))
}

/** TSUM: SUM8 of TE over the K candidates in rank order, FOLD. */
function tsum(op: number, K: number) {
  const gs = groups8(0, K)
  return (j: number) => program(op, j, gs.length + 1, [], (s) => {
    if (s > gs.length) return foldStep()
    const [a, b] = gs[s - 1]
    return { name: 'SUM8', reads: [words(SLOT.TE, a, b - a)], run: (pre, [e]) => next(pre, addLanes(pre.r, a, f32s(e as Uint32Array))) }
  })
}

/** PROB r: `te_r ⊘ S`. */
function prob(op: number) {
  return (r: number) => program(op, r, 1, [], () => ({
    name: 'PROB', reads: [words(SLOT.TE, r, 1), words(SLOT.TZ, 0, 1)],
    run: (pre, [e, z]) => next(pre, [bits(f(val((e as Uint32Array)[0]) / val((z as Uint32Array)[0])))]),
  }))
}

/**
 * KEEP (one element): r0 = kept count. Top-p (topP < 1): ceil(K/8) × TOPP8 (r1 = running sum
 * c ⊕ p_i, the first i with c >= topP sets r0 = i + 1 and r2 = done). Min-p (minP > 0): MINP_FLOOR
 * (r3 = minP ⊗ p_0, r4 = 1 the count so far), ceil(K/8) × MINP8 (while i < r0 and p_i >= r3:
 * r4 = i + 1; the first failure sets r5 = stopped), then MINP_END (r0 = r4).
 */
function keep(op: number, K: number, topP: number, minP: number) {
  const gs = groups8(0, K)
  const tp = f(topP), mp = f(minP)
  type S = (pre: MicroState) => Step
  const steps: S[] = []
  if (topP < 1) {
    for (const [a, b] of gs) steps.push(() => ({ name: 'TOPP8', reads: [words(SLOT.PR, a, b - a)], run: (pre, [x]) => {
      const r = pre.r.slice()
      f32s(x as Uint32Array).forEach((p, k) => {
        if (r[2]) return
        r[1] = bits(f(val(r[1]) + p))
        if (val(r[1]) >= tp) {
          r[0] = a + k + 1
          r[2] = 1
        }
      })
      return next(pre, r)
    } }))
  }
  if (minP > 0) {
    steps.push(() => ({ name: 'MINP_FLOOR', reads: [words(SLOT.PR, 0, 1)], run: (pre, [p0]) => {
      const r = pre.r.slice()
      r[3] = bits(f(mp * val((p0 as Uint32Array)[0])))
      r[4] = 1
      return next(pre, r)
    } }))
    for (const [a, b] of gs) steps.push(() => ({ name: 'MINP8', reads: [words(SLOT.PR, a, b - a)], run: (pre, [x]) => {
      const r = pre.r.slice()
      f32s(x as Uint32Array).forEach((p, k) => {
        const i = a + k
        if (i === 0 || r[5] || i >= r[0]) return
        if (p >= val(r[3])) r[4] = i + 1
        else r[5] = 1
      })
      return next(pre, r)
    } }))
    steps.push(() => ({ name: 'MINP_END', reads: [], run: (pre) => next(pre, [pre.r[4]]) }))
  }
  return (j: number) => program(op, j, steps.length, [K], (s, pre) => steps[s - 1](pre))
}

/**
 * DRAW (one element) into NEXT: KEEP_LOAD (r2 = kept count), ceil(K/8) × TOTAL8 (r1 = sequential
 * sum of p_i, i < kept), TARGET (r3 = RAND(seed, step) ⊗ r1), ceil(K/8) × PICK8 (r4 = running
 * c ⊕ p_i; the first i < kept with r3 < c sets r0 = i and r5 = found), PICK_ID (r0 = ID[found ?
 * r0 : kept - 1]).
 */
function draw(op: number, K: number, seed: bigint, step: number) {
  const gs = groups8(0, K)
  return (j: number) => program(op, j, 2 * gs.length + 3, [], (s, pre) => {
    if (s === 1) return { name: 'KEEP_LOAD', reads: [words(SLOT.KEEP, 0, 1)], run: (p, [k]) => next(p, [0, 0, (k as Uint32Array)[0]]) }
    if (s <= gs.length + 1) {
      const [a, b] = gs[s - 2]
      return { name: 'TOTAL8', reads: [words(SLOT.PR, a, b - a)], run: (p, [x]) => {
        const r = p.r.slice()
        f32s(x as Uint32Array).forEach((v, k) => {
          if (a + k < r[2]) r[1] = bits(f(val(r[1]) + v))
        })
        return next(p, r)
      } }
    }
    if (s === gs.length + 2) {
      return { name: 'TARGET', reads: [], run: (p) => {
        const r = p.r.slice()
        r[3] = bits(f(rand(seed, step) * val(r[1])))
        return next(p, r)
      } }
    }
    if (s <= 2 * gs.length + 2) {
      const [a, b] = gs[s - gs.length - 3]
      return { name: 'PICK8', reads: [words(SLOT.PR, a, b - a)], run: (p, [x]) => {
        const r = p.r.slice()
        f32s(x as Uint32Array).forEach((v, k) => {
          if (r[5] || a + k >= r[2]) return
          r[4] = bits(f(val(r[4]) + v))
          if (val(r[3]) < val(r[4])) {
            r[0] = a + k
            r[5] = 1
          }
        })
        return next(p, r)
      } }
    }
    const idx = pre.r[5] ? pre.r[0] : pre.r[2] - 1
    return { name: 'PICK_ID', reads: [words(SLOT.ID, idx, 1)], run: (p, [id]) => next(p, [(id as Uint32Array)[0]]) }
  })
}

function floatRow(tensor: string, shape: TensorShape): void {
  if (!isFloatType(shape.type)) throw new UnsupportedShapeError(`the machine reads ${tensor} as floats; its type ${shape.type} is quantized`)
}

// ---- the op tables ----------------------------------------------------------------------------------

/**
 * What the machine adds to a row of the engine's op table (opTable.ts): the op's length, its
 * element programs, the tensor it reads, and its name where it is not the row's.
 */
type OpBody = { name?: string; block?: boolean; length: number; tensor?: string; program?: (op: number) => (j: number) => ElementProgram }

/**
 * The ops of the table rows that apply, in the table's order, each completed by `body(row)`: the
 * order, codes and slots are the engine's table, the programs this file's.
 */
function fromTable(table: readonly OpRow[], facts: ReadonlySet<OpCondition>, body: (row: OpRow) => OpBody): OpDef[] {
  return applicableRows(table, facts).map((r, i) => {
    const op = i + 1
    const b = body(r)
    const d: OpDef = { op, code: r.code, name: b.name ?? r.name, slot: r.slot, block: b.block ?? false, length: b.length }
    if (b.tensor) d.tensor = b.tensor
    if (b.program) d.program = b.program(op)
    return d
  })
}

/** A body keyed by row name; a row the table has and this list lacks is a bug, named. */
function bodyOf(bodies: Record<string, () => OpBody>, r: OpRow): OpBody {
  const b = bodies[r.name]
  if (!b) throw new RangeError(`the machine has no program for op table row ${r.name}`)
  return b()
}

/** RMS_SCALE, NORM and both QUANT bodies of the residual `src` (n words), keyed by their rows' names. */
function normBodies(c: ModelConfig, ctx: ProgramContext, src: number, rs: number, xn: number, tensor: string, srcName: string, xnName: string, normRow: string): Record<string, () => OpBody> {
  const n = c.dim
  return {
    [`RMS_SCALE ${srcName}`]: () => ({ length: 1, program: (op) => rmsScale(op, src, n, c.rmsEps) }),
    [`NORM ${normRow}`]: () => {
      const sh = ctx.shape(tensor)
      return { name: `NORM ${tensor}`, length: n, tensor, program: (op) => norm(op, src, rs, tensor, sh) }
    },
    ...quantBodies(xn, xnName, n),
  }
}

function quantBodies(src: number, srcName: string, n: number): Record<string, () => OpBody> {
  return {
    [`QUANT32 ${srcName}`]: () => ({ block: true, length: n % 32 === 0 ? n / 32 : 0, program: (op) => quant(op, src, 32) }),
    [`QUANT256 ${srcName}`]: () => ({ block: true, length: n % 256 === 0 ? n / 256 : 0, program: (op) => quant(op, src, 256) }),
  }
}

function mm(ctx: ProgramContext, tensor: string, f32Src: number, a32: number, a256: number, cols: number): OpBody {
  const sh = ctx.shape(tensor)
  if (sh.cols !== cols) throw new UnsupportedShapeError(`${tensor} has ${sh.cols} columns, the activation ${cols}`)
  const B = activationBlockSize(sh.type)
  if (B !== 0 && cols % B !== 0) throw new UnsupportedShapeError(`${tensor}: ${cols} columns are not whole blocks of ${B}`)
  return { length: sh.rows, tensor, program: (op) => matmul(op, tensor, sh, f32Src, a32, a256) }
}

function checkContext(ctx: ProgramContext): void {
  if (!isArithVersion(ctx.arith)) throw new UnknownArithError(ctx.arith)
  // INVARIANT: the machine's window is the model's own (never a default of full attention).
  if (ctx.window !== attentionWindow(ctx.config)) throw new WindowMismatchError(ctx.window, ctx.config)
  checkShapes(ctx.config)
}

function checkShapes(c: ModelConfig): void {
  const kvDim = c.nKvHead * c.headDim
  for (const [what, n] of [['dim', c.dim], ['headDim', c.headDim], ['ffDim', c.ffDim], ['kvDim', kvDim]] as const) {
    // reads of 8 (DOT8, SQ8) and of 32 (QUANT) must stay inside one aligned group of the vector
    if (n % 8 !== 0) throw new UnsupportedShapeError(`${what} = ${n} is not a multiple of 8`)
  }
  if (c.nHead % c.nKvHead !== 0) throw new UnsupportedShapeError(`${c.nHead} heads are not a multiple of ${c.nKvHead} kv heads`)
}

/**
 * The ops of the layer transition (ctx.layer < nLayer) in order: the rows of the engine's
 * LAYER_TABLE that apply (LOAD, [EMBED], the attention block, the FFN block, STORE;
 * docs/MACHINE.md "The layer transition"), each with its programs.
 *
 * @example
 *   const ops = layerOps({ config, arith: ARITH_V2, window: attentionWindow(config), shape, pos: 3, layer: 1, nPrompt: 4, sampling })
 *   const prog = ops.find((o) => o.name === 'K')!.program!(5)   // row 5 of attn_k
 */
export function layerOps(ctx: ProgramContext): OpDef[] {
  const c = ctx.config
  checkContext(ctx)
  const l = ctx.layer
  if (!(Number.isInteger(l) && l >= 0 && l < c.nLayer)) throw new RangeError(`layer ${l} of ${c.nLayer}`)
  const { dim, headDim: hd, nHead: nh, nKvHead: nkv, ffDim: ff } = c
  const kvDim = nkv * hd
  const group = nh / nkv
  const qwen = c.arch === 'qwen2'
  const neox = c.arch === 'qwen2' || c.arch === 'qwen3'
  const qkNorm = c.hasQkNorm
  const { nu } = cachedPositions(ctx)
  // what RoPE rotates: Q and K after the biases (qwen2) or the per-head norms (qwen3)
  const qSrc = qkNorm ? SLOT.QN : qwen ? SLOT.QB : SLOT.Q
  const kSrc = qkNorm ? SLOT.KN : qwen ? SLOT.KB : SLOT.K
  const w = (t: string) => `blk.${l}.${t}`
  const biasBody = (src: number, t: string, n: number) => (): OpBody => {
    const sh = ctx.shape(w(t))
    return { length: n, tensor: w(t), program: (op) => bias(op, src, w(t), sh) }
  }
  const normBody = (src: number, scales: number, t: string, n: number): OpBody => {
    const sh = ctx.shape(w(t))
    if (sh.cols !== hd) throw new UnsupportedShapeError(`${w(t)} has ${sh.cols} values, the head ${hd}`)
    return { length: n, tensor: w(t), program: (op) => headNorm(op, src, scales, hd, w(t), sh) }
  }
  const bodies: Record<string, () => OpBody> = {
    'LOAD TOK': () => ({ length: 1 }),
    EMBED: () => ({ length: dim, tensor: 'token_embd.weight', program: (op) => embed(op, 'token_embd.weight', ctx.shape('token_embd.weight')) }),
    'LOAD X': () => ({ length: dim }),
    // attention block
    ...normBodies(c, ctx, SLOT.X, SLOT.RS1, SLOT.XN1, w('attn_norm.weight'), 'X', 'XN1', 'attn_norm'),
    Q: () => mm(ctx, w('attn_q.weight'), SLOT.XN1, SLOT.A1_32, SLOT.A1_256, dim),
    K: () => mm(ctx, w('attn_k.weight'), SLOT.XN1, SLOT.A1_32, SLOT.A1_256, dim),
    V: () => mm(ctx, w('attn_v.weight'), SLOT.XN1, SLOT.A1_32, SLOT.A1_256, dim),
    QB: biasBody(SLOT.Q, 'attn_q.bias', nh * hd),
    KB: biasBody(SLOT.K, 'attn_k.bias', kvDim),
    VB: biasBody(SLOT.V, 'attn_v.bias', kvDim),
    QS: () => ({ length: nh, program: (op) => headRms(op, SLOT.Q, hd, c.rmsEps) }),
    QN: () => normBody(SLOT.Q, SLOT.QS, 'attn_q_norm.weight', nh * hd),
    KS: () => ({ length: nkv, program: (op) => headRms(op, SLOT.K, hd, c.rmsEps) }),
    KN: () => normBody(SLOT.K, SLOT.KS, 'attn_k_norm.weight', kvDim),
    FREQ: () => ({ length: hd / 2, program: (op) => freq(op, hd, c.ropeBase) }),
    ROTCS: () => ({ length: hd, program: (op) => rotcs(op, ctx.pos) }),
    QR: () => ({ length: nh * hd, program: (op) => rope(op, qSrc, hd, neox) }),
    KR: () => ({ length: kvDim, program: (op) => rope(op, kSrc, hd, neox) }),
    SCORE: () => ({ length: nh * nu, program: (op) => score(op, ctx, hd, group) }),
    MAX: () => ({ length: nh, program: (op) => max(op, nu) }),
    EXPS: () => ({ length: nh * nu, program: (op) => exps(op, nu) }),
    ZINV: () => ({ length: nh, program: (op) => zinv(op, nu) }),
    ATT: () => ({ length: nh * hd, program: (op) => att(op, ctx, hd, group, qwen ? SLOT.VB : SLOT.V) }),
    ...quantBodies(SLOT.O, 'O', nh * hd),
    WO: () => mm(ctx, w('attn_output.weight'), SLOT.O, SLOT.A2_32, SLOT.A2_256, nh * hd),
    'RES X2': () => ({ length: dim, program: (op) => res(op, SLOT.X, SLOT.P) }),
    // FFN block
    ...normBodies(c, ctx, SLOT.X2, SLOT.RS2, SLOT.XN2, w('ffn_norm.weight'), 'X2', 'XN2', 'ffn_norm'),
    GATE: () => mm(ctx, w('ffn_gate.weight'), SLOT.XN2, SLOT.A3_32, SLOT.A3_256, dim),
    UP: () => mm(ctx, w('ffn_up.weight'), SLOT.XN2, SLOT.A3_32, SLOT.A3_256, dim),
    SILU: () => ({ length: ff, program: (op) => siluMul(op) }),
    ...quantBodies(SLOT.H, 'H', ff),
    DOWN: () => mm(ctx, w('ffn_down.weight'), SLOT.H, SLOT.A4_32, SLOT.A4_256, ff),
    'RES X3': () => ({ length: dim, program: (op) => res(op, SLOT.X2, SLOT.D) }),
    STORE: () => ({ length: 0 }),
  }
  const facts = new Set<OpCondition>([l === 0 ? 'layer0' : 'aboveLayer0'])
  if (qwen) facts.add('qwen2')
  if (qkNorm) facts.add('qkNorm')
  return fromTable(LAYER_TABLE, facts, (r) => bodyOf(bodies, r))
}

/**
 * The ops of the head transition at ctx.pos (docs/MACHINE.md "The head transition"): TOKEN alone
 * for teacher-forced positions (p < nPrompt - 1); otherwise the rows of the engine's HEAD_TABLE
 * that apply: LOAD, the output norm, LOGITS, [PENALTY], then ARGMAX (temperature 0) or RANK,
 * SORT, TSCALE, TEXP, TSUM, PROB, KEEP, DRAW, then STORE.
 */
export function headOps(ctx: ProgramContext): OpDef[] {
  const c = ctx.config
  checkContext(ctx)
  if (ctx.layer !== c.nLayer) throw new RangeError(`the head transition is layer ${c.nLayer}, not ${ctx.layer}`)
  if (ctx.pos < ctx.nPrompt - 1) return fromTable(TEACHER_FORCED_HEAD_TABLE, new Set(), () => ({ length: 0 }))
  const s = ctx.sampling
  const out = c.tiedEmbeddings ? 'token_embd.weight' : 'output.weight'
  const V = c.vocabSize
  const penalize = s.repeatPenalty !== 1 && s.repeatLastN > 0
  const src = penalize ? SLOT.PL : SLOT.L
  const topK = s.topK ?? 0
  const K = topK > 0 && topK < V ? topK : V
  const bodies: Record<string, () => OpBody> = {
    'LOAD X': () => ({ length: c.dim }),
    ...normBodies(c, ctx, SLOT.X, SLOT.RS1, SLOT.XN1, 'output_norm.weight', 'X', 'XN1', 'output_norm'),
    LOGITS: () => mm(ctx, out, SLOT.XN1, SLOT.A1_32, SLOT.A1_256, c.dim),
    PENALTY: () => ({ length: V, program: (op) => penalty(op, ctx) }),
    ARGMAX: () => ({ length: 1, program: (op) => argmax(op, src, V) }),
    // temperature sampling over the (penalized) logits
    RANK: () => ({ length: V, program: (op) => rank(op, src, V) }),
    SORT: () => ({ length: K, program: (op) => sortIds(op, V) }),
    TSCALE: () => ({ length: K, program: (op) => tscale(op, src, f(s.temperature)) }),
    TEXP: () => ({ length: K, program: (op) => texp(op) }),
    TSUM: () => ({ length: 1, program: (op) => tsum(op, K) }),
    PROB: () => ({ length: K, program: (op) => prob(op) }),
    KEEP: () => ({ length: 1, program: (op) => keep(op, K, s.topP ?? 1, s.minP ?? 0) }),
    DRAW: () => ({ length: 1, program: (op) => draw(op, K, s.seed ?? 0n, ctx.pos - (ctx.nPrompt - 1)) }),
    STORE: () => ({ length: 0 }),
  }
  const facts = new Set<OpCondition>([s.temperature === 0 ? 'greedy' : 'sampled'])
  if (penalize) facts.add('penalty')
  return fromTable(HEAD_TABLE, facts, (r) => bodyOf(bodies, r))
}

/** The ops of the transition ctx names: `headOps` for layer = nLayer, else `layerOps`. */
export function transitionOps(ctx: ProgramContext): OpDef[] {
  return ctx.layer === ctx.config.nLayer ? headOps(ctx) : layerOps(ctx)
}

/**
 * The judge's rule in TypeScript: the initial micro-state of element `elem` of op k (what the
 * contract computes itself, step 0 of the element tree).
 *
 * @example
 *   const s0 = initialState(layerOps(ctx), 5, 17)
 */
export function initialState(ops: readonly OpDef[], k: number, elem: number): MicroState {
  return programOf(ops, k, elem).init
}

/**
 * The step that follows `pre` (its name and the reads the judge opens for it); throws when `pre`
 * is already the element's final state.
 */
export function nextStep(ops: readonly OpDef[], pre: MicroState): Step {
  const prog = programOf(ops, pre.op, pre.elem)
  if (!(Number.isInteger(pre.step) && pre.step >= 0 && pre.step < prog.steps)) throw new RangeError(`op ${pre.op} element ${pre.elem} has no step after state ${pre.step} (of ${prog.steps})`)
  return prog.step(pre.step + 1, pre)
}

/**
 * The judge's one step: the post-state of `pre` given the values of `nextStep(ops, pre).reads`
 * (opened and checked by the caller). A committed post-state whose leaf differs loses.
 *
 * @example
 *   const post = executeStep(ops, pre, nextStep(ops, pre).reads.map(open))
 *   microLeaf(post) === committed[pre.step + 1]
 */
export function executeStep(ops: readonly OpDef[], pre: MicroState, values: readonly ReadValue[]): MicroState {
  const step = nextStep(ops, pre)
  if (values.length !== step.reads.length) throw new RangeError(`step ${step.name} reads ${step.reads.length} values, not ${values.length}`)
  return step.run(pre, values)
}

function programOf(ops: readonly OpDef[], k: number, elem: number): ElementProgram {
  const op = ops[k - 1]
  if (!op?.program) throw new RangeError(`op ${k} has no element programs`)
  if (!(Number.isInteger(elem) && elem >= 0 && elem < op.length)) throw new RangeError(`op ${k} (${op.name}) has elements 0 .. ${op.length - 1}, not ${elem}`)
  return op.program(elem)
}
