/**
 * The trained model's shape: its configuration, the parameter tensors (GGUF names and ne0-first
 * dims, the llama layout the engine loads), deterministic initialization from the config's seed,
 * and the canonical bytes of a training state (docs/TRAINING.md "Model and arithmetic").
 *
 * Legend: V = vocabSize, dim = model width, hd = dim / nHead, kvDim = nKvHead * hd, ff = ffDim.
 * A matrix with GGUF dims [cols, rows] is stored row-major as `rows` rows of `cols` values: the
 * engine's `y = W x` (y_r = DOT8(W_r, x)).
 */
import { BaseError } from '../errors.js'
import { f } from '../engine/math/canonical.js'

export type TrainConfig = {
  vocabSize: number
  dim: number
  nLayer: number
  nHead: number
  nKvHead: number
  ffDim: number
  /** Tokens per training sequence. */
  context: number
  ropeBase: number
  rmsEps: number
  /** Logits use token_embd (no output.weight). */
  tiedEmbeddings: boolean
  /** Sequences per optimizer step. */
  batch: number
  /** Linear warmup to `peak` over `warmupSteps`, then linear decay to `min` at `totalSteps` (binary32; docs/TRAINING.md). */
  lr: { peak: number; warmupSteps: number; totalSteps: number; min: number }
  adam: { beta1: number; beta2: number; eps: number; weightDecay: number }
  /** Global-norm gradient clip; 0 = off. */
  gradClip: number
  /** Decimal u64; the initialization derives from it. */
  seed: string
}

export type TrainState = {
  /** Optimizer steps done. */
  step: number
  /** GGUF tensor names, llama layout, GGUF ne0-first shapes (see paramShapes). */
  params: Map<string, Float32Array>
  /** AdamW first moments, same names and sizes. */
  m: Map<string, Float32Array>
  /** AdamW second moments, same names and sizes. */
  v: Map<string, Float32Array>
}

/** A training configuration that cannot describe a model (names the field and why). */
export class TrainConfigError extends BaseError {
  override name = 'TrainConfigError'
  constructor(message: string) {
    super(message, { docs: 'docs/TRAINING.md' })
  }
}

/** A state or token buffer that does not fit the configuration. */
export class TrainStateError extends BaseError {
  override name = 'TrainStateError'
  constructor(message: string) {
    super(message, { docs: 'docs/TRAINING.md' })
  }
}

const U64_MAX = (1n << 64n) - 1n

/** Throws TrainConfigError naming the first field that is out of range. */
export function validateConfig(c: TrainConfig): void {
  const posInt = (name: string, v: unknown, max = 1 << 24) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new TrainConfigError(`config.${name} = ${JSON.stringify(v)}: expected an integer in 1..${max}`)
  }
  const num = (name: string, v: unknown, lo: number, hi: number, loOpen = false) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (loOpen && v === lo)) {
      throw new TrainConfigError(`config.${name} = ${JSON.stringify(v)}: expected a number in ${loOpen ? '(' : '['}${lo}, ${hi}]`)
    }
  }
  if (typeof c !== 'object' || c === null) throw new TrainConfigError('config: expected an object')
  posInt('vocabSize', c.vocabSize)
  posInt('dim', c.dim, 1 << 16)
  posInt('nLayer', c.nLayer, 1024)
  posInt('nHead', c.nHead, 1024)
  posInt('nKvHead', c.nKvHead, 1024)
  posInt('ffDim', c.ffDim, 1 << 18)
  posInt('context', c.context, 1 << 16)
  posInt('batch', c.batch, 1 << 16)
  if (c.dim % c.nHead !== 0) throw new TrainConfigError(`config.dim = ${c.dim} is not a multiple of nHead = ${c.nHead}`)
  if (c.nHead % c.nKvHead !== 0) throw new TrainConfigError(`config.nHead = ${c.nHead} is not a multiple of nKvHead = ${c.nKvHead}`)
  if ((c.dim / c.nHead) % 2 !== 0) throw new TrainConfigError(`config: head dim ${c.dim / c.nHead} is odd (RoPE rotates pairs)`)
  num('ropeBase', c.ropeBase, 1, 1e9, true)
  num('rmsEps', c.rmsEps, 0, 1, true)
  if (typeof c.tiedEmbeddings !== 'boolean') throw new TrainConfigError(`config.tiedEmbeddings = ${JSON.stringify(c.tiedEmbeddings)}: expected true or false`)
  if (typeof c.lr !== 'object' || c.lr === null) throw new TrainConfigError('config.lr: expected { peak, warmupSteps, totalSteps, min }')
  num('lr.peak', c.lr.peak, 0, 10)
  num('lr.min', c.lr.min, 0, 10)
  if (!Number.isInteger(c.lr.warmupSteps) || c.lr.warmupSteps < 0) throw new TrainConfigError(`config.lr.warmupSteps = ${JSON.stringify(c.lr.warmupSteps)}: expected an integer >= 0`)
  if (!Number.isInteger(c.lr.totalSteps) || c.lr.totalSteps < 1 || c.lr.totalSteps > 2 ** 31 - 1) throw new TrainConfigError(`config.lr.totalSteps = ${JSON.stringify(c.lr.totalSteps)}: expected an integer >= 1`)
  if (c.lr.warmupSteps > c.lr.totalSteps) throw new TrainConfigError(`config.lr.warmupSteps = ${c.lr.warmupSteps} exceeds totalSteps = ${c.lr.totalSteps}`)
  if (typeof c.adam !== 'object' || c.adam === null) throw new TrainConfigError('config.adam: expected { beta1, beta2, eps, weightDecay }')
  num('adam.beta1', c.adam.beta1, 0, 1)
  num('adam.beta2', c.adam.beta2, 0, 1)
  if (c.adam.beta1 >= 1 || c.adam.beta2 >= 1) throw new TrainConfigError('config.adam: beta1 and beta2 must be below 1')
  num('adam.eps', c.adam.eps, 0, 1, true)
  num('adam.weightDecay', c.adam.weightDecay, 0, 1)
  num('gradClip', c.gradClip, 0, 1e9)
  if (typeof c.seed !== 'string' || !/^[0-9]{1,20}$/.test(c.seed) || BigInt(c.seed) > U64_MAX) throw new TrainConfigError(`config.seed = ${JSON.stringify(c.seed)}: expected a decimal u64 string`)
}

/** One parameter tensor: GGUF name, ne0-first dims, element count, and whether AdamW decays it. */
export type ParamInfo = { name: string; dims: number[]; size: number; decay: boolean }

/** The parameter tensors in canonical order (token_embd, then per layer, then output_norm[, output]). */
export function paramList(c: TrainConfig): ParamInfo[] {
  const hd = c.dim / c.nHead
  const qDim = c.nHead * hd
  const kvDim = c.nKvHead * hd
  const out: ParamInfo[] = []
  const add = (name: string, dims: number[]) => out.push({ name, dims, size: dims.reduce((a, b) => a * b, 1), decay: dims.length === 2 })
  add('token_embd.weight', [c.dim, c.vocabSize])
  for (let l = 0; l < c.nLayer; l++) {
    const b = `blk.${l}.`
    add(`${b}attn_norm.weight`, [c.dim])
    add(`${b}attn_q.weight`, [c.dim, qDim])
    add(`${b}attn_k.weight`, [c.dim, kvDim])
    add(`${b}attn_v.weight`, [c.dim, kvDim])
    add(`${b}attn_output.weight`, [qDim, c.dim])
    add(`${b}ffn_norm.weight`, [c.dim])
    add(`${b}ffn_gate.weight`, [c.dim, c.ffDim])
    add(`${b}ffn_up.weight`, [c.dim, c.ffDim])
    add(`${b}ffn_down.weight`, [c.ffDim, c.dim])
  }
  add('output_norm.weight', [c.dim])
  if (!c.tiedEmbeddings) add('output.weight', [c.dim, c.vocabSize])
  return out
}

/** GGUF dims (ne0 first) per tensor, in canonical order. */
export function paramShapes(c: TrainConfig): Map<string, number[]> {
  validateConfig(c)
  return new Map(paramList(c).map((p) => [p.name, p.dims]))
}

/** Total parameter count. */
export function paramCount(c: TrainConfig): number {
  return paramList(c).reduce((a, p) => a + p.size, 0)
}

// ---- deterministic initialization -------------------------------------------------------------
//
// Element j of the k-th tensor (canonical order), counting all tensors' elements before it as
// `offset`, draws u = RAND(seed, offset + j) (docs/ARITHMETIC.md RAND: SplitMix64, 24 bits) and is
// w = ((2 ⊗ u) ⊖ 1) ⊗ a: uniform in [-a, a) with std a/√3. Norm weights are 1 (they draw nothing
// but still count their elements). Scales a = √3·std, std per tensor:
//   token_embd, output:          0.02
//   attn_q, attn_k, attn_v, ffn_gate, ffn_up: 1/√fan_in
//   attn_output, ffn_down:       1/√fan_in / √(2·nLayer)   (residual branches, GPT-2 style)
// Each `a` is computed in binary64 and rounded once to binary32 (a constant of the config).

/** The init scale a (binary32) of a tensor; 0 for norm weights (which are 1). */
export function initScale(c: TrainConfig, p: ParamInfo): number {
  if (p.dims.length === 1) return 0
  const fanIn = p.dims[0]
  let std: number
  if (p.name === 'token_embd.weight' || p.name === 'output.weight') std = 0.02
  else if (p.name.endsWith('attn_output.weight') || p.name.endsWith('ffn_down.weight')) std = 1 / Math.sqrt(fanIn) / Math.sqrt(2 * c.nLayer)
  else std = 1 / Math.sqrt(fanIn)
  return f(Math.sqrt(3) * std)
}

const M32 = 0xffffffff
const GOLDEN_HI = 0x9e3779b9, GOLDEN_LO = 0x7f4a7c15

/** (hi, lo) u32 pair product mod 2^64 of (ah, al) and (bh, bl). */
function mul64(ah: number, al: number, bh: number, bl: number): [number, number] {
  // lo 32x32 -> 64 via 16-bit halves, exact in doubles
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1
  const mid = p01 + p10 // < 2^33
  const lowFull = p00 + (mid % 65536) * 65536 // < 2^49
  const lo = lowFull % 4294967296
  const carry = Math.floor(lowFull / 4294967296) + Math.floor(mid / 65536) + p11
  const hi = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0
  return [hi, lo >>> 0]
}

/**
 * RAND(seed, k) of docs/ARITHMETIC.md computed on u32 pairs (no BigInt per draw): equals
 * `rand(seed, k)` of src/engine/math/rand.ts for every k < 2^53 (tested).
 */
export function randFast(seedHi: number, seedLo: number, k: number): number {
  const k1 = k + 1
  const kHi = Math.floor(k1 / 4294967296) >>> 0, kLo = k1 >>> 0
  let [zh, zl] = mul64(kHi, kLo, GOLDEN_HI, GOLDEN_LO)
  // z = seed + (k+1)*golden
  const lo = zl + seedLo
  zl = lo >>> 0
  zh = (zh + seedHi + (lo > M32 ? 1 : 0)) >>> 0
  // z ^= z >> 30; z *= 0xbf58476d1ce4e5b9
  ;[zh, zl] = mul64(zh ^ (zh >>> 30), (zl ^ ((zl >>> 30) | (zh << 2))) >>> 0, 0xbf58476d, 0x1ce4e5b9)
  // z ^= z >> 27; z *= 0x94d049bb133111eb
  ;[zh, zl] = mul64(zh ^ (zh >>> 27), (zl ^ ((zl >>> 27) | (zh << 5))) >>> 0, 0x94d049bb, 0x133111eb)
  // z ^= z >> 31; top 24 bits
  zh = (zh ^ (zh >>> 31)) >>> 0
  return (zh >>> 8) * 2 ** -24
}

/** A fresh state (step 0, zero moments) with parameters drawn from config.seed. */
export function initState(c: TrainConfig): TrainState {
  validateConfig(c)
  const seed = BigInt(c.seed)
  const seedHi = Number(seed >> 32n) >>> 0, seedLo = Number(seed & 0xffffffffn) >>> 0
  const params = new Map<string, Float32Array>()
  const m = new Map<string, Float32Array>()
  const v = new Map<string, Float32Array>()
  let offset = 0
  for (const p of paramList(c)) {
    const w = new Float32Array(p.size)
    const a = initScale(c, p)
    if (a === 0) w.fill(1)
    else for (let j = 0; j < p.size; j++) w[j] = f(f(f(2 * randFast(seedHi, seedLo, offset + j)) - 1) * a)
    offset += p.size
    params.set(p.name, w)
    m.set(p.name, new Float32Array(p.size))
    v.set(p.name, new Float32Array(p.size))
  }
  return { step: 0, params, m, v }
}

/** Throws TrainStateError unless `s` holds every tensor of `c` with its size. */
export function checkState(c: TrainConfig, s: TrainState): void {
  if (!Number.isInteger(s.step) || s.step < 0 || s.step > 2 ** 31 - 1) throw new TrainStateError(`state.step = ${s.step}: expected an integer in 0..2^31-1`)
  for (const p of paramList(c)) {
    for (const [what, map] of [['params', s.params], ['m', s.m], ['v', s.v]] as const) {
      const a = map.get(p.name)
      if (!a) throw new TrainStateError(`state.${what} lacks ${p.name}`)
      if (a.length !== p.size) throw new TrainStateError(`state.${what} ${p.name} has ${a.length} values, expected ${p.size}`)
    }
  }
}

const le = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1
const STATE_MAGIC = 0x54525354 // "TSRT" little-endian u32 tag, then version 1

/**
 * Canonical bytes: u32 magic, u32 version 1, u32 step, u32 total f32 count per section, then
 * params, m, v, each the tensors in canonical order as little-endian f32.
 */
export function encodeState(c: TrainConfig, s: TrainState): Uint8Array {
  validateConfig(c)
  checkState(c, s)
  const list = paramList(c)
  const n = list.reduce((a, p) => a + p.size, 0)
  const out = new Uint8Array(16 + 12 * n)
  const dv = new DataView(out.buffer)
  dv.setUint32(0, STATE_MAGIC, true)
  dv.setUint32(4, 1, true)
  dv.setUint32(8, s.step, true)
  dv.setUint32(12, n, true)
  let at = 16
  for (const map of [s.params, s.m, s.v]) {
    for (const p of list) {
      const a = map.get(p.name) as Float32Array
      if (le) out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at)
      else for (let i = 0; i < a.length; i++) dv.setFloat32(at + 4 * i, a[i], true)
      at += 4 * a.length
    }
  }
  return out
}

/** The state whose canonical bytes are `bytes` (throws TrainStateError when they do not fit `c`). */
export function decodeState(c: TrainConfig, bytes: Uint8Array): TrainState {
  validateConfig(c)
  const list = paramList(c)
  const n = list.reduce((a, p) => a + p.size, 0)
  if (bytes.length < 16) throw new TrainStateError(`state bytes: ${bytes.length} bytes is too short`)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (dv.getUint32(0, true) !== STATE_MAGIC || dv.getUint32(4, true) !== 1) throw new TrainStateError('state bytes: not a version-1 training state')
  if (dv.getUint32(12, true) !== n || bytes.length !== 16 + 12 * n) throw new TrainStateError(`state bytes: ${dv.getUint32(12, true)} values per section (${bytes.length} bytes), the config needs ${n}`)
  const step = dv.getUint32(8, true)
  const maps = [new Map<string, Float32Array>(), new Map<string, Float32Array>(), new Map<string, Float32Array>()]
  let at = 16
  for (const map of maps) {
    for (const p of list) {
      let a: Float32Array
      // Copy through ArrayBuffer.slice: a Node Buffer's own slice() is a view over its whole pool.
      if (le) a = new Float32Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + 4 * p.size))
      else {
        a = new Float32Array(p.size)
        for (let i = 0; i < p.size; i++) a[i] = dv.getFloat32(at + 4 * i, true)
      }
      at += 4 * p.size
      map.set(p.name, a)
    }
  }
  return { step, params: maps[0], m: maps[1], v: maps[2] }
}
