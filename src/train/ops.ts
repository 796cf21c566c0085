/**
 * The training kernels: every forward and backward op of the trained model, in the canonical
 * arithmetic (docs/ARITHMETIC.md; the training orders are in docs/TRAINING.md "Model and
 * arithmetic"). `referenceTrainOps` is the readable twin: plain loops, one `Math.fround` per
 * binary32 step, every reduction a SUM8/DOT8 over a contiguous vector. The native AVX2 ops
 * (src/runtime/native/train.cc, loaded by src/runtime/native/train.ts) implement the same interface
 * bit for bit at any thread count.
 *
 * Legend: N = tokens in the batch (B sequences of C positions, token n = b·C + t at position t),
 * dim = model width, nh/nkv = query/kv heads, hd = head dim, V = vocab.
 * Matrices are row-major; "rows of K" means a matrix of rows each K contiguous values.
 */
import { dot8, exp, f, log, silu, sum8 } from '../engine/math/canonical.js'

/** AdamW constants of one step (binary32 values; docs/TRAINING.md "AdamW"). */
export type AdamHyper = {
  /** Gradient scale from global-norm clipping (1 when not clipping). */
  clipScale: number
  lr: number
  beta1: number
  beta2: number
  /** 1 ⊖ beta1, 1 ⊖ beta2. */
  oneMinusBeta1: number
  oneMinusBeta2: number
  /** Bias corrections 1 ⊖ beta^t. */
  bc1: number
  bc2: number
  eps: number
  /** Weight decay (0 for tensors that are not decayed). */
  weightDecay: number
}

/** Shape of an attention call over B sequences of C positions. */
export type AttnShape = { B: number; C: number; nh: number; nkv: number; hd: number }

export interface TrainOps {
  readonly kind: 'reference' | 'native'
  /** c[i·N + j] = DOT8(a[i·K ..], b[j·K ..], K) for i < M, j < N (c = a · bᵀ). */
  mm(c: Float32Array, a: Float32Array, b: Float32Array, M: number, N: number, K: number): void
  /** out[i] = DOT8(a[i·K ..], b[i·K ..], K) for i < rows. */
  rowDot(out: Float32Array, a: Float32Array, b: Float32Array, rows: number, K: number): void
  /** dst[j·rows + i] = src[i·cols + j] (exact copy). */
  transpose(dst: Float32Array, src: Float32Array, rows: number, cols: number): void
  /** y = RMSNorm(x) ⊗ w per row (the engine's order); s[t] = the row's 1 ⊘ √(ss ⊘ dim ⊕ eps); xhat[t][i] = x ⊗ s. */
  rmsnorm(y: Float32Array, xhat: Float32Array, s: Float32Array, x: Float32Array, w: Float32Array, n: number, dim: number, eps: number): void
  /** dx[t][i] ⊕= (g_i ⊗ s) ⊖ (x_i ⊗ r), g_i = dy_i ⊗ w_i, r = (DOT8(g, x) ⊗ ((s ⊗ s) ⊗ s)) ⊘ i2f(dim). */
  rmsnormBack(dx: Float32Array, dy: Float32Array, x: Float32Array, s: Float32Array, w: Float32Array, n: number, dim: number): void
  /**
   * RoPE (llama pairs (2i, 2i+1)) on n rows of `heads` heads of hd, row n at position n mod C, with
   * the tables cos/sin [C][hd/2]. Forward: x0' = (x0 ⊗ c) ⊖ (x1 ⊗ s), x1' = (x0 ⊗ s) ⊕ (x1 ⊗ c);
   * back (the transpose): d0' = (d0 ⊗ c) ⊕ (d1 ⊗ s), d1' = (d1 ⊗ c) ⊖ (d0 ⊗ s).
   */
  rope(x: Float32Array, n: number, heads: number, hd: number, C: number, cos: Float32Array, sin: Float32Array, back: boolean): void
  /**
   * Causal attention, the engine's order: o (N, nh·hd); e [B][nh][C][C] = EXP(s_u ⊖ max) for u ≤ t
   * (+0 beyond); inv [B][nh][C] = 1 ⊘ SUM8(e_0..e_t).
   */
  attention(o: Float32Array, e: Float32Array, inv: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, shape: AttnShape): void
  /** Gradients of attention (docs/TRAINING.md "Attention backward"); dq (N, nh·hd), dk and dv (N, nkv·hd) are written. */
  attentionBack(dq: Float32Array, dk: Float32Array, dv: Float32Array, dO: Float32Array, o: Float32Array, e: Float32Array, inv: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, shape: AttnShape): void
  /** h[i] = SILU(g[i]) ⊗ u[i]. */
  siluMul(h: Float32Array, g: Float32Array, u: Float32Array, n: number): void
  /** du = dh ⊗ SILU(g); dg = (dh ⊗ u) ⊗ (σ ⊗ (1 ⊕ (g ⊗ (1 ⊖ σ)))), σ = 1 ⊘ (1 ⊕ EXP(0 ⊖ g)). */
  siluMulBack(dg: Float32Array, du: Float32Array, dh: Float32Array, g: Float32Array, u: Float32Array, n: number): void
  /** x[i] = x[i] ⊕ y[i]. */
  add(x: Float32Array, y: Float32Array, n: number): void
  /**
   * Cross-entropy per row of logits z (N, V) with targets: loss[t] = (m ⊕ LOG(S)) ⊖ z_target; z is
   * replaced by its gradient dz_v = (p_v ⊖ [v = target]) ⊗ invN, p_v = EXP(z_v ⊖ m) ⊗ (1 ⊘ S).
   * With `grad` false z is left as it was.
   */
  crossEntropy(z: Float32Array, loss: Float32Array, targets: Int32Array, N: number, V: number, invN: number, grad: boolean): void
  /** One AdamW update of n values (docs/TRAINING.md "AdamW"). */
  adamw(p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, n: number, h: AdamHyper): void
}

/** The scores' scale 1 ⊘ √hd (the engine's). */
export function attnScale(hd: number): number {
  return f(1 / f(Math.sqrt(hd)))
}

export const referenceTrainOps: TrainOps = {
  kind: 'reference',
  mm(c, a, b, M, N, K) {
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) c[i * N + j] = dot8(a, i * K, b, j * K, K)
  },
  rowDot(out, a, b, rows, K) {
    for (let i = 0; i < rows; i++) out[i] = dot8(a, i * K, b, i * K, K)
  },
  transpose(dst, src, rows, cols) {
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) dst[j * rows + i] = src[i * cols + j]
  },
  rmsnorm(y, xhat, s, x, w, n, dim, eps) {
    for (let t = 0; t < n; t++) {
      const o = t * dim
      const ss = dot8(x, o, x, o, dim)
      const st = f(1 / f(Math.sqrt(f(f(ss / dim) + eps))))
      s[t] = st
      for (let i = 0; i < dim; i++) {
        const xh = f(x[o + i] * st)
        xhat[o + i] = xh
        y[o + i] = f(xh * w[i])
      }
    }
  },
  rmsnormBack(dx, dy, x, s, w, n, dim) {
    const g = new Float32Array(dim)
    for (let t = 0; t < n; t++) {
      const o = t * dim
      const st = s[t]
      for (let i = 0; i < dim; i++) g[i] = f(dy[o + i] * w[i])
      const c = dot8(g, 0, x, o, dim)
      const r = f(f(c * f(f(st * st) * st)) / dim)
      for (let i = 0; i < dim; i++) dx[o + i] = f(dx[o + i] + f(f(g[i] * st) - f(x[o + i] * r)))
    }
  },
  rope(x, n, heads, hd, C, cs, sn, back) {
    const half = hd / 2
    for (let r = 0; r < n; r++) {
      const to = (r % C) * half
      for (let h = 0; h < heads; h++) {
        const base = (r * heads + h) * hd
        for (let i = 0; i < half; i++) {
          const a = base + 2 * i
          const x0 = x[a], x1 = x[a + 1], c = cs[to + i], s = sn[to + i]
          if (back) {
            x[a] = f(f(x0 * c) + f(x1 * s))
            x[a + 1] = f(f(x1 * c) - f(x0 * s))
          } else {
            x[a] = f(f(x0 * c) - f(x1 * s))
            x[a + 1] = f(f(x0 * s) + f(x1 * c))
          }
        }
      }
    }
  },
  attention(o, e, inv, q, k, v, { B, C, nh, nkv, hd }) {
    const qDim = nh * hd, kvDim = nkv * hd, group = nh / nkv
    const scale = attnScale(hd)
    const acc = new Float32Array(hd)
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < nh; h++) {
        const ko = Math.floor(h / group) * hd
        for (let t = 0; t < C; t++) {
          const qo = (b * C + t) * qDim + h * hd
          const eo = ((b * nh + h) * C + t) * C
          // s_u = DOT8(q, k_u) ⊗ scale; m = max_u s_u; e_u = EXP(s_u ⊖ m); inv = 1 ⊘ SUM8(e_0..e_t)
          let m = -Infinity
          for (let u = 0; u <= t; u++) {
            const s = f(dot8(q, qo, k, (b * C + u) * kvDim + ko, hd) * scale)
            e[eo + u] = s
            if (s > m) m = s
          }
          for (let u = 0; u <= t; u++) e[eo + u] = exp(f(e[eo + u] - m))
          for (let u = t + 1; u < C; u++) e[eo + u] = 0
          const iv = f(1 / sum8(e, eo, eo + t + 1))
          inv[(b * nh + h) * C + t] = iv
          // o_d = (Σ_u e_u ⊗ v_u[d]) ⊗ inv, Σ sequential in u
          acc.fill(0)
          for (let u = 0; u <= t; u++) {
            const eu = e[eo + u]
            const vo = (b * C + u) * kvDim + ko
            for (let d = 0; d < hd; d++) acc[d] = acc[d] + f(eu * v[vo + d])
          }
          for (let d = 0; d < hd; d++) o[qo + d] = f(acc[d] * iv)
        }
      }
    }
  },
  attentionBack(dq, dk, dv, dO, o, e, inv, q, k, v, { B, C, nh, nkv, hd }) {
    const qDim = nh * hd, kvDim = nkv * hd, group = nh / nkv
    const scale = attnScale(hd)
    const GC = group * C
    const dS = new Float32Array(GC * C) // [hl][t][u]
    const P = new Float32Array(GC * C) // [hl][t][u]
    const dST = new Float32Array(C * GC) // [u][hl·C + t]
    const PT = new Float32Array(C * GC)
    const KT = new Float32Array(hd * C) // [d][u]
    const QT = new Float32Array(hd * GC) // [d][hl·C + t]
    const dOT = new Float32Array(hd * GC)
    for (let b = 0; b < B; b++) {
      for (let g = 0; g < nkv; g++) {
        const ko = g * hd
        for (let u = 0; u < C; u++) for (let d = 0; d < hd; d++) KT[d * C + u] = k[(b * C + u) * kvDim + ko + d]
        for (let hl = 0; hl < group; hl++) {
          const h = g * group + hl
          for (let t = 0; t < C; t++) {
            const qo = (b * C + t) * qDim + h * hd
            const row = (hl * C + t) * C
            const eo = ((b * nh + h) * C + t) * C
            const iv = inv[(b * nh + h) * C + t]
            // D = DOT8(dO_t, o_t); p_u = e_u ⊗ inv; dP_u = DOT8(dO_t, v_u); dS_u = (p_u ⊗ (dP_u ⊖ D)) ⊗ scale
            const D = dot8(dO, qo, o, qo, hd)
            for (let u = 0; u <= t; u++) {
              const p = f(e[eo + u] * iv)
              const dp = dot8(dO, qo, v, (b * C + u) * kvDim + ko, hd)
              P[row + u] = p
              dS[row + u] = f(f(p * f(dp - D)) * scale)
            }
            for (let u = t + 1; u < C; u++) {
              P[row + u] = 0
              dS[row + u] = 0
            }
            // dq_d = DOT8 over u < C of (dS_u, k_u[d])
            for (let d = 0; d < hd; d++) dq[qo + d] = dot8(dS, row, KT, d * C, C)
            for (let d = 0; d < hd; d++) {
              QT[d * GC + hl * C + t] = q[qo + d]
              dOT[d * GC + hl * C + t] = dO[qo + d]
            }
          }
        }
        for (let j = 0; j < GC; j++) {
          for (let u = 0; u < C; u++) {
            dST[u * GC + j] = dS[j * C + u]
            PT[u * GC + j] = P[j * C + u]
          }
        }
        // dk_u[d] = DOT8 over j = hl·C + t of (dS, q); dv_u[d] = DOT8 over j of (p, dO)
        for (let u = 0; u < C; u++) {
          const ro = (b * C + u) * kvDim + ko
          for (let d = 0; d < hd; d++) {
            dk[ro + d] = dot8(dST, u * GC, QT, d * GC, GC)
            dv[ro + d] = dot8(PT, u * GC, dOT, d * GC, GC)
          }
        }
      }
    }
  },
  siluMul(h, g, u, n) {
    for (let i = 0; i < n; i++) h[i] = f(silu(g[i]) * u[i])
  },
  siluMulBack(dg, du, dh, g, u, n) {
    for (let i = 0; i < n; i++) {
      const x = g[i]
      const den = f(1 + exp(f(0 - x)))
      const sig = f(1 / den)
      du[i] = f(dh[i] * f(x / den))
      dg[i] = f(f(dh[i] * u[i]) * f(sig * f(1 + f(x * f(1 - sig)))))
    }
  },
  add(x, y, n) {
    for (let i = 0; i < n; i++) x[i] = f(x[i] + y[i])
  },
  crossEntropy(z, loss, targets, N, V, invN, grad) {
    const e = new Float32Array(V)
    for (let t = 0; t < N; t++) {
      const o = t * V
      let m = -Infinity
      for (let j = 0; j < V; j++) if (z[o + j] > m) m = z[o + j]
      for (let j = 0; j < V; j++) e[j] = exp(f(z[o + j] - m))
      const S = sum8(e, 0, V)
      const tg = targets[t]
      loss[t] = f(f(m + log(S)) - z[o + tg])
      if (!grad) continue
      const iS = f(1 / S)
      for (let j = 0; j < V; j++) {
        const p = f(e[j] * iS)
        z[o + j] = j === tg ? f(f(p - 1) * invN) : f(p * invN)
      }
    }
  },
  adamw(p, m, v, g, n, h) {
    const { clipScale, lr, beta1, beta2, oneMinusBeta1, oneMinusBeta2, bc1, bc2, eps, weightDecay } = h
    for (let i = 0; i < n; i++) {
      const gi = f(g[i] * clipScale)
      const mi = f(f(beta1 * m[i]) + f(oneMinusBeta1 * gi))
      const vi = f(f(beta2 * v[i]) + f(f(oneMinusBeta2 * gi) * gi))
      m[i] = mi
      v[i] = vi
      const mh = f(mi / bc1)
      const vh = f(vi / bc2)
      let upd = f(mh / f(f(Math.sqrt(vh)) + eps))
      if (weightDecay !== 0) upd = f(upd + f(weightDecay * p[i]))
      p[i] = f(p[i] - f(lr * upd))
    }
  },
}
