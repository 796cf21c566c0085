// Native (x86-64 AVX2) twins of the training kernels of src/train/ops.ts (`referenceTrainOps`),
// bit-identical to them at every thread count (docs/TRAINING.md "Model and arithmetic", "Speed").
//
// Why the bits are the same: every binary32 step is one IEEE SSE/AVX instruction in the order the
// reference writes (this file is compiled with -ffp-contract=off and without fast-math, so nothing
// is fused or reassociated; scalar float code on x86-64 is SSE, rounded per operation). DOT8 is one
// 8-lane ymm accumulator: element i of the vector goes to lane i mod 8 (a vmulps then a vaddps per
// 8 elements), the tail continues the lane pattern in scalar code, and the fold is the spec's tree
// ((a0 ⊕ a4) ⊕ (a2 ⊕ a6)) ⊕ ((a1 ⊕ a5) ⊕ (a3 ⊕ a7)). The matrix kernel register-blocks 4 rows of A
// against 3 rows of B (12 independent accumulators), which changes which outputs are computed
// together, never the order inside one output. Threads split output elements (rows of C,
// attention heads, token rows), so no value ever depends on the thread count.
//
// The kernels are compiled for AVX2 by target attributes only; the module's load-time code is
// plain x86-64, so on a CPU without AVX2 `require` fails with one clear error instead of SIGILL.
#include <stdio.h>

#include <thread>
#include <vector>

#include "common.h"

namespace {

// ---- canonical scalar functions (src/engine/math/canonical.ts), constants rounded from double ----

// EXP (scalar and 8 lanes) is common.h's canonical twin; LOG's reduction uses its LN2 constants.
using tn::LN2_HI;
using tn::LN2_LO;
using tn::exp8;
using tn::expScalar;

const float SQRTH = (float)0.70710677;
const float LC[9] = {(float)7.0376836292e-2, (float)-1.1514610310e-1, (float)1.1676998740e-1, (float)-1.2420140846e-1, (float)1.4249322787e-1,
                     (float)-1.6668057665e-1, (float)2.0000714765e-1, (float)-2.4999993993e-1, (float)3.3333331174e-1};

inline float clog(float x) {
  uint32_t bits;
  memcpy(&bits, &x, 4);
  int e = (int)((bits >> 23) & 0xff) - 126;
  uint32_t mb = (bits & 0x807fffffu) | (126u << 23);
  float m;
  memcpy(&m, &mb, 4);
  if (m < SQRTH) {
    e -= 1;
    m = m + m;
  }
  const float fx = m - 1.0f;
  const float z = fx * fx;
  float y = LC[0];
  for (int i = 1; i < 9; i++) y = y * fx + LC[i];
  y = (y * fx) * z;
  const float ef = (float)e;
  y = y + ef * LN2_LO;
  y = y - z * 0.5f;
  return (fx + y) + ef * LN2_HI;
}

inline float fold8(const float* a) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }

// SUM8 of x[0..n) (scalar: cheap sums only)
inline float sum8(const float* x, int64_t n) {
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; i++) a[i & 7] = a[i & 7] + x[i];
  return fold8(a);
}

// SUM8 with one ymm accumulator (same lanes and fold as sum8).
__attribute__((target("avx2"))) inline float sum8v(const float* x, int64_t n) {
  const int64_t n8 = n & ~(int64_t)7;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n8; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
  alignas(32) float l[8];
  _mm256_store_ps(l, acc);
  for (int64_t i = n8; i < n; i++) l[i - n8] = l[i - n8] + x[i];
  return fold8(l);
}

// ---- DOT8 and the blocked matrix kernel -----------------------------------------------------------

__attribute__((target("avx2"))) inline float foldTail(__m256 acc, const float* a, const float* b, int64_t k8, int64_t K) {
  alignas(32) float l[8];
  _mm256_store_ps(l, acc);
  for (int64_t i = k8; i < K; i++) l[i - k8] = l[i - k8] + a[i] * b[i];
  return fold8(l);
}

__attribute__((target("avx2"))) inline float dot8(const float* a, const float* b, int64_t K) {
  const int64_t k8 = K & ~(int64_t)7;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < k8; i += 8) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  return foldTail(acc, a, b, k8, K);
}

// The SUM8 folds of four 8-lane accumulators at once (no tail): per accumulator s_l = a_l ⊕ a_{l+4}
// (high half onto low half), then across the four, t0 = s0 ⊕ s2, t1 = s1 ⊕ s3, t0 ⊕ t1: the same
// additions as fold8, four outputs per vector instruction.
__attribute__((target("avx2"))) inline __m128 fold4(__m256 a, __m256 b, __m256 c, __m256 d) {
  __m128 sa = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  __m128 sb = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
  __m128 sc = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
  __m128 sd = _mm_add_ps(_mm256_castps256_ps128(d), _mm256_extractf128_ps(d, 1));
  _MM_TRANSPOSE4_PS(sa, sb, sc, sd);  // sa = lane 0 of each, sb lane 1, sc lane 2, sd lane 3
  return _mm_add_ps(_mm_add_ps(sa, sc), _mm_add_ps(sb, sd));
}

// c[i·N + j] = DOT8(a_i, b_j) for rows i in [i0, i1), columns j in [j0, j1).
__attribute__((target("avx2"))) void mmTile(float* c, const float* a, const float* b, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t N, int64_t K) {
  const int64_t k8 = K & ~(int64_t)7;
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4) {
    const float* a0 = a + i * K;
    const float* a1 = a0 + K;
    const float* a2 = a1 + K;
    const float* a3 = a2 + K;
    int64_t j = j0;
    for (; j + 3 <= j1; j += 3) {
      const float* b0 = b + j * K;
      const float* b1 = b0 + K;
      const float* b2 = b1 + K;
      __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
      __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
      __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
      __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
      for (int64_t k = 0; k < k8; k += 8) {
        const __m256 y0 = _mm256_loadu_ps(b0 + k), y1 = _mm256_loadu_ps(b1 + k), y2 = _mm256_loadu_ps(b2 + k);
        __m256 x = _mm256_loadu_ps(a0 + k);
        c00 = _mm256_add_ps(c00, _mm256_mul_ps(x, y0));
        c01 = _mm256_add_ps(c01, _mm256_mul_ps(x, y1));
        c02 = _mm256_add_ps(c02, _mm256_mul_ps(x, y2));
        x = _mm256_loadu_ps(a1 + k);
        c10 = _mm256_add_ps(c10, _mm256_mul_ps(x, y0));
        c11 = _mm256_add_ps(c11, _mm256_mul_ps(x, y1));
        c12 = _mm256_add_ps(c12, _mm256_mul_ps(x, y2));
        x = _mm256_loadu_ps(a2 + k);
        c20 = _mm256_add_ps(c20, _mm256_mul_ps(x, y0));
        c21 = _mm256_add_ps(c21, _mm256_mul_ps(x, y1));
        c22 = _mm256_add_ps(c22, _mm256_mul_ps(x, y2));
        x = _mm256_loadu_ps(a3 + k);
        c30 = _mm256_add_ps(c30, _mm256_mul_ps(x, y0));
        c31 = _mm256_add_ps(c31, _mm256_mul_ps(x, y1));
        c32 = _mm256_add_ps(c32, _mm256_mul_ps(x, y2));
      }
      float* r0 = c + i * N + j;
      if (k8 == K) {
        alignas(16) float r[12];
        _mm_store_ps(r, fold4(c00, c10, c20, c30));
        _mm_store_ps(r + 4, fold4(c01, c11, c21, c31));
        _mm_store_ps(r + 8, fold4(c02, c12, c22, c32));
        for (int q = 0; q < 3; q++)
          for (int w = 0; w < 4; w++) r0[w * N + q] = r[4 * q + w];
        continue;
      }
      r0[0] = foldTail(c00, a0, b0, k8, K);
      r0[1] = foldTail(c01, a0, b1, k8, K);
      r0[2] = foldTail(c02, a0, b2, k8, K);
      float* r1 = r0 + N;
      r1[0] = foldTail(c10, a1, b0, k8, K);
      r1[1] = foldTail(c11, a1, b1, k8, K);
      r1[2] = foldTail(c12, a1, b2, k8, K);
      float* r2 = r1 + N;
      r2[0] = foldTail(c20, a2, b0, k8, K);
      r2[1] = foldTail(c21, a2, b1, k8, K);
      r2[2] = foldTail(c22, a2, b2, k8, K);
      float* r3 = r2 + N;
      r3[0] = foldTail(c30, a3, b0, k8, K);
      r3[1] = foldTail(c31, a3, b1, k8, K);
      r3[2] = foldTail(c32, a3, b2, k8, K);
    }
    for (; j < j1; j++) {
      const float* bj = b + j * K;
      c[i * N + j] = dot8(a0, bj, K);
      c[(i + 1) * N + j] = dot8(a1, bj, K);
      c[(i + 2) * N + j] = dot8(a2, bj, K);
      c[(i + 3) * N + j] = dot8(a3, bj, K);
    }
  }
  for (; i < i1; i++)
    for (int64_t j = j0; j < j1; j++) c[i * N + j] = dot8(a + i * K, b + j * K, K);
}

// c[i·N + j] = DOT8(a_i, b_j) for rows i in [i0, i1), all j < N, in tiles of B rows (~96 KiB, a
// multiple of 3 rows) so a tile stays in L2 while every row block of A passes over it.
void mmRows(float* c, const float* a, const float* b, int64_t i0, int64_t i1, int64_t N, int64_t K) {
  int64_t jb = K > 0 ? 24576 / K / 3 * 3 : N;
  if (jb < 3) jb = 3;
  for (int64_t j0 = 0; j0 < N; j0 += jb) mmTile(c, a, b, i0, i1, j0, j0 + jb < N ? j0 + jb : N, N, K);
}

// The binary32 environment the arithmetic assumes, on every thread that computes: round to nearest
// even, subnormals kept (no flush-to-zero, no denormals-are-zero), exceptions masked (MXCSR
// 0x1F80). Node leaves it so, but another addon in the process could change it; each call sets
// it and restores the caller's on return.
struct CanonicalFp {
  unsigned saved;
  CanonicalFp() : saved(_mm_getcsr()) { _mm_setcsr(0x1F80); }
  ~CanonicalFp() { _mm_setcsr(saved); }
};

// Runs fn(lo, hi) over [0, n) split into `threads` contiguous parts (the caller's thread takes the
// first); each index is computed by exactly one call, so results never depend on the split.
template <typename Fn>
void parallel(int threads, int64_t n, int64_t grain, Fn fn) {
  int64_t parts = threads;
  if (grain < 1) grain = 1;
  if (parts > (n + grain - 1) / grain) parts = (n + grain - 1) / grain;
  if (parts <= 1) {
    if (n > 0) fn((int64_t)0, n);
    return;
  }
  // part p covers [p·n/parts, (p+1)·n/parts) rounded to multiples of grain
  auto bound = [&](int64_t p) {
    int64_t x = (n * p / parts + grain - 1) / grain * grain;
    return x > n ? n : x;
  };
  std::vector<std::thread> ts;
  ts.reserve(parts - 1);
  for (int64_t p = 1; p < parts; p++)
    ts.emplace_back([=]() {
      CanonicalFp fp;
      fn(bound(p), bound(p + 1));
    });
  fn(bound(0), bound(1));
  for (auto& t : ts) t.join();
}

// ---- the ops ----------------------------------------------------------------------------------

// dst[j·rows + i] = src[i·cols + j]: 8x8 blocks through registers (8 source lines, 8 destination
// lines at a time, so power-of-two strides do not thrash L1), scalar edges. A pure copy.
// Rows [i0, i1) of the source (the whole transpose is every row once).
__attribute__((target("avx2"))) void transposeRows(float* dst, const float* src, int64_t rows, int64_t cols, int64_t i0, int64_t i1) {
  const int64_t c8 = cols & ~(int64_t)7;
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    for (int64_t j = 0; j < c8; j += 8) {
      const float* s0 = src + i * cols + j;
      __m256 a0 = _mm256_loadu_ps(s0), a1 = _mm256_loadu_ps(s0 + cols), a2 = _mm256_loadu_ps(s0 + 2 * cols), a3 = _mm256_loadu_ps(s0 + 3 * cols);
      __m256 a4 = _mm256_loadu_ps(s0 + 4 * cols), a5 = _mm256_loadu_ps(s0 + 5 * cols), a6 = _mm256_loadu_ps(s0 + 6 * cols), a7 = _mm256_loadu_ps(s0 + 7 * cols);
      __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1), t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
      __m256 t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5), t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
      __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE), u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* d0 = dst + j * rows + i;
      _mm256_storeu_ps(d0, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d0 + rows, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d0 + 2 * rows, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d0 + 3 * rows, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d0 + 4 * rows, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d0 + 5 * rows, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d0 + 6 * rows, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d0 + 7 * rows, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (int64_t j = c8; j < cols; j++)
      for (int64_t ii = i; ii < i + 8; ii++) dst[j * rows + ii] = src[ii * cols + j];
  }
  for (; i < i1; i++)
    for (int64_t j = 0; j < cols; j++) dst[j * rows + i] = src[i * cols + j];
}

void transpose(float* dst, const float* src, int64_t rows, int64_t cols) { transposeRows(dst, src, rows, cols, 0, rows); }

void rmsnorm(float* y, float* xhat, float* s, const float* x, const float* w, int64_t n, int64_t dim, float eps) {
  for (int64_t t = 0; t < n; t++) {
    const float* xr = x + t * dim;
    const float ss = dot8(xr, xr, dim);
    const float st = 1.0f / sqrtf(ss / (float)dim + eps);
    s[t] = st;
    for (int64_t i = 0; i < dim; i++) {
      const float xh = xr[i] * st;
      xhat[t * dim + i] = xh;
      y[t * dim + i] = xh * w[i];
    }
  }
}

void rmsnormBack(float* dx, const float* dy, const float* x, const float* s, const float* w, int64_t n, int64_t dim) {
  std::vector<float> g(dim);
  for (int64_t t = 0; t < n; t++) {
    const int64_t o = t * dim;
    const float st = s[t];
    for (int64_t i = 0; i < dim; i++) g[i] = dy[o + i] * w[i];
    const float c = dot8(g.data(), x + o, dim);
    const float r = (c * ((st * st) * st)) / (float)dim;
    for (int64_t i = 0; i < dim; i++) dx[o + i] = dx[o + i] + ((g[i] * st) - (x[o + i] * r));
  }
}

void rope(float* x, int64_t n, int64_t heads, int64_t hd, int64_t C, const float* cs, const float* sn, bool back) {
  const int64_t half = hd / 2;
  for (int64_t r = 0; r < n; r++) {
    const int64_t to = (r % C) * half;
    for (int64_t h = 0; h < heads; h++) {
      float* base = x + (r * heads + h) * hd;
      for (int64_t i = 0; i < half; i++) {
        const float x0 = base[2 * i], x1 = base[2 * i + 1], c = cs[to + i], s = sn[to + i];
        if (back) {
          base[2 * i] = x0 * c + x1 * s;
          base[2 * i + 1] = x1 * c - x0 * s;
        } else {
          base[2 * i] = x0 * c - x1 * s;
          base[2 * i + 1] = x0 * s + x1 * c;
        }
      }
    }
  }
}

inline float attnScale(int64_t hd) { return 1.0f / sqrtf((float)hd); }

// One attention output row: acc_d = acc_d ⊕ (e_u ⊗ v_u[d]) for u = 0..t in order, then acc_d ⊗ inv,
// with the hd = 8·H8 accumulators held in registers.
template <int H8>
__attribute__((target("avx2"))) inline void accumulateRow(float* orow, const float* er, const float* v0, int64_t kvDim, int64_t t, float iv) {
  __m256 acc[H8];
  for (int q = 0; q < H8; q++) acc[q] = _mm256_setzero_ps();
  for (int64_t u = 0; u <= t; u++) {
    const __m256 ev = _mm256_set1_ps(er[u]);
    const float* vr = v0 + u * kvDim;
    for (int q = 0; q < H8; q++) acc[q] = _mm256_add_ps(acc[q], _mm256_mul_ps(ev, _mm256_loadu_ps(vr + 8 * q)));
  }
  const __m256 ivv = _mm256_set1_ps(iv);
  for (int q = 0; q < H8; q++) _mm256_storeu_ps(orow + 8 * q, _mm256_mul_ps(acc[q], ivv));
}

// One (sequence, head) of the causal attention forward, the engine's order.
__attribute__((target("avx2"))) void attentionHead(float* o, float* e, float* inv, const float* q, const float* k, const float* v, int64_t b, int64_t h,
                                                   int64_t C, int64_t nh, int64_t nkv, int64_t hd) {
  const int64_t qDim = nh * hd, kvDim = nkv * hd, group = nh / nkv;
  const int64_t ko = (h / group) * hd;
  const float scale = attnScale(hd);
  std::vector<float> acc(hd);
  const int64_t hd8 = hd & ~(int64_t)7;
  for (int64_t t = 0; t < C; t++) {
    const float* qr = q + (b * C + t) * qDim + h * hd;
    float* er = e + ((b * nh + h) * C + t) * C;
    float m = -INFINITY;
    int64_t u0 = 0;
    if ((hd & 7) == 0) {
      // four keys at a time: four DOT8 accumulators, folded together (fold4), then ⊗ scale
      const __m128 sc = _mm_set1_ps(scale);
      for (; u0 + 4 <= t + 1; u0 += 4) {
        const float* k0 = k + (b * C + u0) * kvDim + ko;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (int64_t d = 0; d < hd; d += 8) {
          const __m256 x = _mm256_loadu_ps(qr + d);
          a0 = _mm256_add_ps(a0, _mm256_mul_ps(x, _mm256_loadu_ps(k0 + d)));
          a1 = _mm256_add_ps(a1, _mm256_mul_ps(x, _mm256_loadu_ps(k0 + kvDim + d)));
          a2 = _mm256_add_ps(a2, _mm256_mul_ps(x, _mm256_loadu_ps(k0 + 2 * kvDim + d)));
          a3 = _mm256_add_ps(a3, _mm256_mul_ps(x, _mm256_loadu_ps(k0 + 3 * kvDim + d)));
        }
        _mm_storeu_ps(er + u0, _mm_mul_ps(fold4(a0, a1, a2, a3), sc));
      }
      for (int64_t u = 0; u < u0; u++)
        if (er[u] > m) m = er[u];
    }
    for (int64_t u = u0; u <= t; u++) {
      const float s = dot8(qr, k + (b * C + u) * kvDim + ko, hd) * scale;
      er[u] = s;
      if (s > m) m = s;
    }
    const __m256 mv = _mm256_set1_ps(m);
    int64_t u = 0;
    for (; u + 8 <= t + 1; u += 8) _mm256_storeu_ps(er + u, exp8(_mm256_sub_ps(_mm256_loadu_ps(er + u), mv)));
    for (; u <= t; u++) er[u] = expScalar(er[u] - m);
    for (u = t + 1; u < C; u++) er[u] = 0.0f;
    const float iv = 1.0f / sum8v(er, t + 1);
    inv[(b * nh + h) * C + t] = iv;
    float* orow = o + (b * C + t) * qDim + h * hd;
    const float* v0 = v + b * C * kvDim + ko;
    // o_d = (Σ_u e_u ⊗ v_u[d]) ⊗ inv, Σ sequential in u: accumulators in registers for hd = 8..64
    switch (hd) {
      case 8: accumulateRow<1>(orow, er, v0, kvDim, t, iv); continue;
      case 16: accumulateRow<2>(orow, er, v0, kvDim, t, iv); continue;
      case 24: accumulateRow<3>(orow, er, v0, kvDim, t, iv); continue;
      case 32: accumulateRow<4>(orow, er, v0, kvDim, t, iv); continue;
      case 40: accumulateRow<5>(orow, er, v0, kvDim, t, iv); continue;
      case 48: accumulateRow<6>(orow, er, v0, kvDim, t, iv); continue;
      case 56: accumulateRow<7>(orow, er, v0, kvDim, t, iv); continue;
      case 64: accumulateRow<8>(orow, er, v0, kvDim, t, iv); continue;
      default: break;
    }
    for (int64_t d = 0; d < hd; d++) acc[d] = 0.0f;
    for (int64_t u = 0; u <= t; u++) {
      const float eu = er[u];
      const float* vr = v0 + u * kvDim;
      const __m256 ev = _mm256_set1_ps(eu);
      for (int64_t d = 0; d < hd8; d += 8) _mm256_storeu_ps(&acc[d], _mm256_add_ps(_mm256_loadu_ps(&acc[d]), _mm256_mul_ps(ev, _mm256_loadu_ps(vr + d))));
      for (int64_t d = hd8; d < hd; d++) acc[d] = acc[d] + eu * vr[d];
    }
    for (int64_t d = 0; d < hd; d++) orow[d] = acc[d] * iv;
  }
}

// One (sequence, kv head) of the attention backward (docs/TRAINING.md "Attention backward").
void attentionBackGroup(float* dq, float* dk, float* dv, const float* dO, const float* o, const float* e, const float* inv, const float* q, const float* k,
                        const float* v, int64_t b, int64_t g, int64_t C, int64_t nh, int64_t nkv, int64_t hd) {
  const int64_t qDim = nh * hd, kvDim = nkv * hd, group = nh / nkv, GC = group * C;
  const int64_t ko = g * hd;
  const float scale = attnScale(hd);
  // per-thread scratch, grown once and reused (every value read below is written first)
  static thread_local std::vector<float> scratch;
  const int64_t need = 4 * GC * C + 3 * hd * GC + 5 * C * hd + C * C;
  if ((int64_t)scratch.size() < need) scratch.resize(need);
  float* at = scratch.data();
  auto take = [&](int64_t n) {
    float* r = at;
    at += n;
    return r;
  };
  float *dS = take(GC * C), *P = take(GC * C), *dST = take(C * GC), *PT = take(C * GC), *KT = take(hd * C), *QT = take(hd * GC), *dOT = take(hd * GC);
  float *Vg = take(C * hd), *dOh = take(C * hd), *dP = take(C * C), *dqh = take(C * hd), *res = take(C * hd);
  for (int64_t u = 0; u < C; u++)
    for (int64_t d = 0; d < hd; d++) {
      KT[d * C + u] = k[(b * C + u) * kvDim + ko + d];
      Vg[u * hd + d] = v[(b * C + u) * kvDim + ko + d];
    }
  for (int64_t hl = 0; hl < group; hl++) {
    const int64_t h = g * group + hl;
    for (int64_t t = 0; t < C; t++) {
      const float* src = dO + (b * C + t) * qDim + h * hd;
      for (int64_t d = 0; d < hd; d++) dOh[t * hd + d] = src[d];
    }
    // dP[t][u] = DOT8(dO_t, v_u), only where it is read (u <= t): rows in blocks of 4, columns up to
    // the block's last row (rounded up to the kernel's 3 columns)
    for (int64_t i = 0; i < C; i += 4) {
      const int64_t i1 = i + 4 < C ? i + 4 : C;
      const int64_t j1 = (i1 + 2) / 3 * 3 < C ? (i1 + 2) / 3 * 3 : C;
      mmTile(dP, dOh, Vg, i, i1, 0, j1, C, hd);
    }
    for (int64_t t = 0; t < C; t++) {
      const int64_t qo = (b * C + t) * qDim + h * hd;
      const int64_t row = (hl * C + t) * C;
      const float* er = e + ((b * nh + h) * C + t) * C;
      const float iv = inv[(b * nh + h) * C + t];
      const float D = dot8(dO + qo, o + qo, hd);
      for (int64_t u = 0; u <= t; u++) {
        const float p = er[u] * iv;
        P[row + u] = p;
        dS[row + u] = (p * (dP[t * C + u] - D)) * scale;
      }
      for (int64_t u = t + 1; u < C; u++) {
        P[row + u] = 0.0f;
        dS[row + u] = 0.0f;
      }
      for (int64_t d = 0; d < hd; d++) {
        QT[d * GC + hl * C + t] = q[qo + d];
        dOT[d * GC + hl * C + t] = dO[qo + d];
      }
    }
    // dq_t[d] = DOT8 over u < C of (dS[t][u], k_u[d])
    mmRows(dqh, dS + hl * C * C, KT, 0, C, hd, C);
    for (int64_t t = 0; t < C; t++) {
      float* dst = dq + (b * C + t) * qDim + h * hd;
      for (int64_t d = 0; d < hd; d++) dst[d] = dqh[t * hd + d];
    }
  }
  transpose(dST, dS, GC, C);
  transpose(PT, P, GC, C);
  mmRows(res, dST, QT, 0, C, hd, GC);
  for (int64_t u = 0; u < C; u++)
    for (int64_t d = 0; d < hd; d++) dk[(b * C + u) * kvDim + ko + d] = res[u * hd + d];
  mmRows(res, PT, dOT, 0, C, hd, GC);
  for (int64_t u = 0; u < C; u++)
    for (int64_t d = 0; d < hd; d++) dv[(b * C + u) * kvDim + ko + d] = res[u * hd + d];
}

inline float silu(float x) { return x / (1.0f + expScalar(0.0f - x)); }

// h = SILU(g) ⊗ u on [i0, i1): 8 lanes of the scalar sequence, scalar tail.
__attribute__((target("avx2"))) void siluRange(float* h, const float* g, const float* u, int64_t i0, int64_t i1) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    const __m256 den = _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, x)));
    _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_div_ps(x, den), _mm256_loadu_ps(u + i)));
  }
  for (; i < i1; i++) h[i] = silu(g[i]) * u[i];
}

// du = dh ⊗ (x ⊘ den); dg = (dh ⊗ u) ⊗ (σ ⊗ (1 ⊕ (x ⊗ (1 ⊖ σ)))), den = 1 ⊕ EXP(0 ⊖ x), σ = 1 ⊘ den.
__attribute__((target("avx2"))) void siluBackRange(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t i0, int64_t i1) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i), d = _mm256_loadu_ps(dh + i);
    const __m256 den = _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, x)));
    const __m256 sig = _mm256_div_ps(one, den);
    _mm256_storeu_ps(du + i, _mm256_mul_ps(d, _mm256_div_ps(x, den)));
    const __m256 ds = _mm256_mul_ps(sig, _mm256_add_ps(one, _mm256_mul_ps(x, _mm256_sub_ps(one, sig))));
    _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(u + i)), ds));
  }
  for (; i < i1; i++) {
    const float x = g[i];
    const float den = 1.0f + expScalar(0.0f - x);
    const float sig = 1.0f / den;
    du[i] = dh[i] * (x / den);
    dg[i] = (dh[i] * u[i]) * (sig * (1.0f + x * (1.0f - sig)));
  }
}

__attribute__((target("avx2"))) void crossEntropyRows(float* z, float* loss, const int32_t* targets, int64_t t0, int64_t t1, int64_t V, float invN, bool grad) {
  std::vector<float> e(V);
  for (int64_t t = t0; t < t1; t++) {
    float* zr = z + t * V;
    float m = -INFINITY;
    for (int64_t j = 0; j < V; j++)
      if (zr[j] > m) m = zr[j];
    const __m256 mv = _mm256_set1_ps(m);
    int64_t j = 0;
    for (; j + 8 <= V; j += 8) _mm256_storeu_ps(&e[j], exp8(_mm256_sub_ps(_mm256_loadu_ps(zr + j), mv)));
    for (; j < V; j++) e[j] = expScalar(zr[j] - m);
    const float S = sum8v(e.data(), V);
    const int32_t tg = targets[t];
    loss[t] = (m + clog(S)) - zr[tg];
    if (!grad) continue;
    const float iS = 1.0f / S;
    const __m256 is = _mm256_set1_ps(iS), inv = _mm256_set1_ps(invN);
    for (j = 0; j + 8 <= V; j += 8) _mm256_storeu_ps(zr + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(&e[j]), is), inv));
    for (; j < V; j++) zr[j] = (e[j] * iS) * invN;
    zr[tg] = (e[tg] * iS - 1.0f) * invN;
  }
}

void adamw(float* p, float* m, float* v, const float* g, int64_t n, const float* h) {
  const float clipScale = h[0], lr = h[1], beta1 = h[2], beta2 = h[3], omb1 = h[4], omb2 = h[5], bc1 = h[6], bc2 = h[7], eps = h[8], wd = h[9];
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i] * clipScale;
    const float mi = beta1 * m[i] + omb1 * gi;
    const float vi = beta2 * v[i] + (omb2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    const float mh = mi / bc1;
    const float vh = vi / bc2;
    float upd = mh / (sqrtf(vh) + eps);
    if (wd != 0.0f) upd = upd + wd * p[i];
    p[i] = p[i] - lr * upd;
  }
}

// ---- N-API glue ---------------------------------------------------------------------------------

struct Args {
  CanonicalFp fp;  // for the whole call on the calling thread
  napi_env env;
  napi_value argv[20];
  size_t argc = 20;
  bool ok = true;
  const char* fn;
  Args(napi_env e, napi_callback_info info, const char* name) : env(e), fn(name) { napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr); }
  void fail(const char* what) {
    if (!ok) return;
    ok = false;
    char msg[200];
    snprintf(msg, sizeof msg, "tessera_train.%s: %s", fn, what);
    napi_throw_range_error(env, nullptr, msg);
  }
  // a Float32Array argument with at least `need` values (need is checked by the caller via len)
  float* f32(size_t i, int64_t need) {
    if (!ok) return nullptr;
    napi_typedarray_type t;
    size_t len = 0, off = 0;
    void* d = nullptr;
    napi_value ab;
    if (i >= argc || napi_get_typedarray_info(env, argv[i], &t, &len, &d, &ab, &off) != napi_ok || t != napi_float32_array) {
      fail("expected a Float32Array argument");
      return nullptr;
    }
    if (need < 0 || (int64_t)len < need) {
      char msg[120];
      snprintf(msg, sizeof msg, "argument %zu has %zu values, needs %lld", i, len, (long long)need);
      fail(msg);
      return nullptr;
    }
    return (float*)d;
  }
  int32_t* i32(size_t i, int64_t need) {
    if (!ok) return nullptr;
    napi_typedarray_type t;
    size_t len = 0, off = 0;
    void* d = nullptr;
    napi_value ab;
    if (i >= argc || napi_get_typedarray_info(env, argv[i], &t, &len, &d, &ab, &off) != napi_ok || t != napi_int32_array || (int64_t)len < need) {
      fail("expected an Int32Array argument long enough");
      return nullptr;
    }
    return (int32_t*)d;
  }
  int64_t num(size_t i) {
    if (!ok) return 0;
    double x;
    if (i >= argc || napi_get_value_double(env, argv[i], &x) != napi_ok || x != floor(x) || x < 0 || x > 9007199254740991.0) {
      fail("expected a non-negative integer argument");
      return 0;
    }
    return (int64_t)x;
  }
  float fl(size_t i) {
    if (!ok) return 0;
    double x;
    if (i >= argc || napi_get_value_double(env, argv[i], &x) != napi_ok) {
      fail("expected a number argument");
      return 0;
    }
    return (float)x;
  }
  bool boolean(size_t i) {
    if (!ok) return false;
    bool b;
    if (i >= argc || napi_get_value_bool(env, argv[i], &b) != napi_ok) {
      fail("expected a boolean argument");
      return false;
    }
    return b;
  }
  // an optional trailing thread count (1 when absent)
  int threadsOpt(size_t i) {
    napi_valuetype t = napi_undefined;
    if (i >= argc || napi_typeof(env, argv[i], &t) != napi_ok || t == napi_undefined) return 1;
    return threads(i);
  }
  int threads(size_t i) {
    int64_t t = num(i);
    if (ok && (t < 1 || t > 256)) fail("threads must be in 1..256");
    return (int)t;
  }
};

napi_value Mm(napi_env env, napi_callback_info info) {
  Args a(env, info, "mm");
  const int th = a.threads(0);
  const int64_t M = a.num(4), N = a.num(5), K = a.num(6);
  float* c = a.f32(1, M * N);
  const float* x = a.f32(2, M * K);
  const float* y = a.f32(3, N * K);
  if (!a.ok) return nullptr;
  parallel(th, M, 4, [=](int64_t i0, int64_t i1) { mmRows(c, x, y, i0, i1, N, K); });
  return nullptr;
}

napi_value RowDot(napi_env env, napi_callback_info info) {
  Args a(env, info, "rowDot");
  const int th = a.threads(0);
  const int64_t rows = a.num(4), K = a.num(5);
  float* out = a.f32(1, rows);
  const float* x = a.f32(2, rows * K);
  const float* y = a.f32(3, rows * K);
  if (!a.ok) return nullptr;
  parallel(th, rows, 1, [=](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) out[i] = dot8(x + i * K, y + i * K, K);
  });
  return nullptr;
}

napi_value Transpose(napi_env env, napi_callback_info info) {
  Args a(env, info, "transpose");
  const int64_t rows = a.num(2), cols = a.num(3);
  float* dst = a.f32(0, rows * cols);
  const float* src = a.f32(1, rows * cols);
  // below ~1M values a second thread costs more than it saves
  const int th = rows * cols >= (1 << 20) ? a.threadsOpt(4) : 1;
  if (!a.ok) return nullptr;
  parallel(th, rows, 8, [=](int64_t i0, int64_t i1) { transposeRows(dst, src, rows, cols, i0, i1); });
  return nullptr;
}

napi_value Rmsnorm(napi_env env, napi_callback_info info) {
  Args a(env, info, "rmsnorm");
  const int64_t n = a.num(5), dim = a.num(6);
  const float eps = a.fl(7);
  float* y = a.f32(0, n * dim);
  float* xhat = a.f32(1, n * dim);
  float* s = a.f32(2, n);
  const float* x = a.f32(3, n * dim);
  const float* w = a.f32(4, dim);
  const int th = n * dim >= (1 << 18) ? a.threadsOpt(8) : 1;
  if (!a.ok) return nullptr;
  parallel(th, n, 16, [=](int64_t t0, int64_t t1) { rmsnorm(y + t0 * dim, xhat + t0 * dim, s + t0, x + t0 * dim, w, t1 - t0, dim, eps); });
  return nullptr;
}

napi_value RmsnormBack(napi_env env, napi_callback_info info) {
  Args a(env, info, "rmsnormBack");
  const int64_t n = a.num(5), dim = a.num(6);
  float* dx = a.f32(0, n * dim);
  const float* dy = a.f32(1, n * dim);
  const float* x = a.f32(2, n * dim);
  const float* s = a.f32(3, n);
  const float* w = a.f32(4, dim);
  const int th = n * dim >= (1 << 18) ? a.threadsOpt(7) : 1;
  if (!a.ok) return nullptr;
  parallel(th, n, 16, [=](int64_t t0, int64_t t1) { rmsnormBack(dx + t0 * dim, dy + t0 * dim, x + t0 * dim, s + t0, w, t1 - t0, dim); });
  return nullptr;
}

napi_value Rope(napi_env env, napi_callback_info info) {
  Args a(env, info, "rope");
  const int64_t n = a.num(1), heads = a.num(2), hd = a.num(3), C = a.num(4);
  const bool back = a.boolean(7);
  if (a.ok && (C < 1 || hd % 2 != 0)) a.fail("C must be >= 1 and hd even");
  float* x = a.f32(0, n * heads * hd);
  const float* cs = a.f32(5, C * (hd / 2));
  const float* sn = a.f32(6, C * (hd / 2));
  if (!a.ok) return nullptr;
  rope(x, n, heads, hd, C, cs, sn, back);
  return nullptr;
}

bool attnShape(Args& a, size_t at, int64_t* B, int64_t* C, int64_t* nh, int64_t* nkv, int64_t* hd) {
  *B = a.num(at), *C = a.num(at + 1), *nh = a.num(at + 2), *nkv = a.num(at + 3), *hd = a.num(at + 4);
  if (a.ok && (*nkv < 1 || *nh % *nkv != 0 || *hd < 1 || *C < 1)) a.fail("bad attention shape");
  return a.ok;
}

napi_value Attention(napi_env env, napi_callback_info info) {
  Args a(env, info, "attention");
  const int th = a.threads(0);
  int64_t B, C, nh, nkv, hd;
  if (!attnShape(a, 7, &B, &C, &nh, &nkv, &hd)) return nullptr;
  const int64_t N = B * C;
  float* o = a.f32(1, N * nh * hd);
  float* e = a.f32(2, B * nh * C * C);
  float* inv = a.f32(3, B * nh * C);
  const float* q = a.f32(4, N * nh * hd);
  const float* k = a.f32(5, N * nkv * hd);
  const float* v = a.f32(6, N * nkv * hd);
  if (!a.ok) return nullptr;
  parallel(th, B * nh, 1, [=](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) attentionHead(o, e, inv, q, k, v, i / nh, i % nh, C, nh, nkv, hd);
  });
  return nullptr;
}

napi_value AttentionBack(napi_env env, napi_callback_info info) {
  Args a(env, info, "attentionBack");
  const int th = a.threads(0);
  int64_t B, C, nh, nkv, hd;
  if (!attnShape(a, 11, &B, &C, &nh, &nkv, &hd)) return nullptr;
  const int64_t N = B * C;
  float* dq = a.f32(1, N * nh * hd);
  float* dk = a.f32(2, N * nkv * hd);
  float* dv = a.f32(3, N * nkv * hd);
  const float* dO = a.f32(4, N * nh * hd);
  const float* o = a.f32(5, N * nh * hd);
  const float* e = a.f32(6, B * nh * C * C);
  const float* inv = a.f32(7, B * nh * C);
  const float* q = a.f32(8, N * nh * hd);
  const float* k = a.f32(9, N * nkv * hd);
  const float* v = a.f32(10, N * nkv * hd);
  if (!a.ok) return nullptr;
  parallel(th, B * nkv, 1, [=](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) attentionBackGroup(dq, dk, dv, dO, o, e, inv, q, k, v, i / nkv, i % nkv, C, nh, nkv, hd);
  });
  return nullptr;
}

napi_value SiluMul(napi_env env, napi_callback_info info) {
  Args a(env, info, "siluMul");
  const int th = a.threads(0);
  const int64_t n = a.num(4);
  float* h = a.f32(1, n);
  const float* g = a.f32(2, n);
  const float* u = a.f32(3, n);
  if (!a.ok) return nullptr;
  parallel(th, n, 1024, [=](int64_t i0, int64_t i1) { siluRange(h, g, u, i0, i1); });
  return nullptr;
}

napi_value SiluMulBack(napi_env env, napi_callback_info info) {
  Args a(env, info, "siluMulBack");
  const int th = a.threads(0);
  const int64_t n = a.num(6);
  float* dg = a.f32(1, n);
  float* du = a.f32(2, n);
  const float* dh = a.f32(3, n);
  const float* g = a.f32(4, n);
  const float* u = a.f32(5, n);
  if (!a.ok) return nullptr;
  parallel(th, n, 1024, [=](int64_t i0, int64_t i1) { siluBackRange(dg, du, dh, g, u, i0, i1); });
  return nullptr;
}

napi_value Add(napi_env env, napi_callback_info info) {
  Args a(env, info, "add");
  const int64_t n = a.num(2);
  float* x = a.f32(0, n);
  const float* y = a.f32(1, n);
  if (!a.ok) return nullptr;
  for (int64_t i = 0; i < n; i++) x[i] = x[i] + y[i];
  return nullptr;
}

napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  Args a(env, info, "crossEntropy");
  const int th = a.threads(0);
  const int64_t N = a.num(4), V = a.num(5);
  const float invN = a.fl(6);
  const bool grad = a.boolean(7);
  float* z = a.f32(1, N * V);
  float* loss = a.f32(2, N);
  const int32_t* tg = a.i32(3, N);
  if (a.ok) {
    for (int64_t t = 0; t < N; t++)
      if (tg[t] < 0 || tg[t] >= V) {
        a.fail("target outside the vocabulary");
        break;
      }
  }
  if (!a.ok) return nullptr;
  parallel(th, N, 1, [=](int64_t t0, int64_t t1) { crossEntropyRows(z, loss, tg, t0, t1, V, invN, grad); });
  return nullptr;
}

napi_value Adamw(napi_env env, napi_callback_info info) {
  Args a(env, info, "adamw");
  const int64_t n = a.num(4);
  float* p = a.f32(0, n);
  float* m = a.f32(1, n);
  float* v = a.f32(2, n);
  const float* g = a.f32(3, n);
  const float* h = a.f32(5, 10);
  const int th = n >= (1 << 17) ? a.threadsOpt(6) : 1;
  if (!a.ok) return nullptr;
  parallel(th, n, 4096, [=](int64_t i0, int64_t i1) { adamw(p + i0, m + i0, v + i0, g + i0, i1 - i0, h); });
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  if (!tn::cpuOk(false)) {
    napi_throw_error(env, nullptr, "tessera_train: this CPU lacks AVX2; the TypeScript reference stays the path");
    return nullptr;
  }
  struct {
    const char* name;
    napi_callback cb;
  } fns[] = {{"mm", Mm}, {"rowDot", RowDot}, {"transpose", Transpose}, {"rmsnorm", Rmsnorm}, {"rmsnormBack", RmsnormBack}, {"rope", Rope},
             {"attention", Attention}, {"attentionBack", AttentionBack}, {"siluMul", SiluMul}, {"siluMulBack", SiluMulBack}, {"add", Add},
             {"crossEntropy", CrossEntropy}, {"adamw", Adamw}};
  for (auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
