// Native (x86-64 AVX2) twin of build/layer.wasm's `attention` (src/engine/kernels/assembly/layer.ts)
// and of `referenceLayerOps.attention` (docs/ARITHMETIC.md op 4), bit-identical to both
// (docs/KERNELS.md "Native attention"). The K/V caches are binary32 (tessera-arith/1) or binary16
// bits (tessera-arith/2): every kernel below is a template on the cache element E, and a binary16
// value is widened by F16C `vcvtph2ps`, which is exact (h2f), so the f32 steps are the same.
// `toHalf` writes a binary16 cache's rows with `vcvtps2ph` (round to nearest even, subnormals
// kept, overflow to ±Inf: half.ts `f2h`), NaN lanes then set to `sign | 0x7E00` (F16C would keep
// the payload's top bits; half.ts drops it).
//
// Per query (token t at position start+t, query head h, kv head h / (nh/nkv)) over u < n = start+t+1:
//   s_u = DOT8(q_h, k_u) ⊗ scale, m = max s_u, e_u = EXP(s_u ⊖ m), inv = 1 ⊘ SUM8(e),
//   o_d = (Σ_u e_u ⊗ v_u[d], sequential in u from +0) ⊗ inv.
//
// Why the bits are the same, step by step (every f32 step is one binary32 AVX instruction; the file
// is compiled with -ffp-contract=off and no fast-math, so nothing is fused or reassociated):
// * DOT8 puts element i in lane i mod 8: one ymm holds exactly the 8 lanes, so per 8 elements one
//   vmulps + vaddps is the spec's per-lane step. Eight keys are summed side by side (independent
//   accumulators) and folded together: (a_l ⊕ a_{l+4}) is one vaddps of the two 128-bit halves, a
//   4x4 transpose puts lane l of key j in lane j, then (b0 ⊕ b2) ⊕ (b1 ⊕ b3): the SUM8 tree.
// * max: lane-wise `s > m ? s : m` (vmaxps with m second returns m for NaN s and for equal/zero
//   pairs), then the lanes in any order. The result can differ from the spec's first-maximum scan
//   only in the sign of a zero maximum (+0 vs -0), and m is used only in s_u ⊖ m: s ⊖ (+0) and
//   s ⊖ (-0) are equal for every s except s = ±0, where both give ±0 and EXP(+0) = EXP(-0) = 1.
//   (All s NaN or -inf: m = -inf either way.) So every e_u is the spec's.
// * EXP is canonical.ts `exp` line by line on 8 lanes (as layer.ts `expf4` on 4): floor is
//   vroundps (exact), 2^k from its bits, the clamps selected after the general path.
// * SUM8 over u: element u in lane u mod 8, so 8 consecutive e's are one vaddps; the tail (fewer
//   than 8) is added to lanes 0.. only (masked blend), then the fold.
// * The V sum runs 8 (or 64) d's at once, each lane its own sequential sum in u from +0. Rows are
//   taken in blocks so each V row is read once for all the queries (query heads, GQA groups,
//   tokens of a batch); a query's partial sums are parked in `out` between blocks (f32, exact) and
//   resumed in the same u order. K rows likewise, 8 at a time: the caches stream in row order.
//
// Memory: the arguments are byte offsets into `mem` (a Uint8Array over the layer ops' shared
// WebAssembly.Memory, from byte 0), exactly the WASM export's arguments; `scores` is accepted for
// the same signature but unused (this kernel keeps its scores in a per-thread buffer).
// The kernel is compiled for AVX2 by a target attribute only; on a CPU without it `require`
// fails with one clear error line and the WASM attention stays the path.
#include <stdio.h>

#include <vector>

#include "common.h"

namespace {

using tn::exp8;
using tn::expScalar;
using tn::getInt;

// AVX2 and F16C (every AVX2 CPU has F16C; NAPI_MODULE_INIT checks both).
#define AVX2 __attribute__((target("avx2,f16c")))

// Eight cache values at p as binary32: a load, or the exact F16C widening of binary16 bits.
AVX2 inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
AVX2 inline __m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
// One cache value at p as binary32.
AVX2 inline float load1(const float* p) { return *p; }
AVX2 inline float load1(const uint16_t* p) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(*p))); }

// Lanes 0 .. n-1 set (n in 0..8), as a blend mask.
AVX2 inline __m256 laneMask(int n) {
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

// The SUM8 fold of one ymm of lanes a0..a7: ((a0 ⊕ a4) ⊕ (a2 ⊕ a6)) ⊕ ((a1 ⊕ a5) ⊕ (a3 ⊕ a7)).
AVX2 inline float fold8(__m256 a) {
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  alignas(16) float l[4];
  _mm_store_ps(l, b);
  return (l[0] + l[2]) + (l[1] + l[3]);
}

// The spec's DOT8 of n values, any n (the tail continues the lane pattern: element i in lane i mod 8).
template <typename E>
AVX2 float dot8Scalar(const float* a, const E* b, int n) {
  float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < n; i++) l[i & 7] = l[i & 7] + a[i] * load1(b + i);
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

// DOT8(q, k_j) ⊗ scale for the 8 keys k[0..7] (hd a multiple of 8): lane j of the result is key j.
template <typename E>
AVX2 inline __m256 scores8(const float* q, const E* const* k, int hd, __m256 scale) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (int c = 0; c < hd; c += 8) {
    const __m256 qc = _mm256_loadu_ps(q + c);
    a0 = _mm256_add_ps(a0, _mm256_mul_ps(qc, load8(k[0] + c)));
    a1 = _mm256_add_ps(a1, _mm256_mul_ps(qc, load8(k[1] + c)));
    a2 = _mm256_add_ps(a2, _mm256_mul_ps(qc, load8(k[2] + c)));
    a3 = _mm256_add_ps(a3, _mm256_mul_ps(qc, load8(k[3] + c)));
    a4 = _mm256_add_ps(a4, _mm256_mul_ps(qc, load8(k[4] + c)));
    a5 = _mm256_add_ps(a5, _mm256_mul_ps(qc, load8(k[5] + c)));
    a6 = _mm256_add_ps(a6, _mm256_mul_ps(qc, load8(k[6] + c)));
    a7 = _mm256_add_ps(a7, _mm256_mul_ps(qc, load8(k[7] + c)));
  }
  // u_j = [b(key j) | b(key j+4)] with b_l = a_l ⊕ a_{l+4}
  const __m256 u0 = _mm256_add_ps(_mm256_permute2f128_ps(a0, a4, 0x20), _mm256_permute2f128_ps(a0, a4, 0x31));
  const __m256 u1 = _mm256_add_ps(_mm256_permute2f128_ps(a1, a5, 0x20), _mm256_permute2f128_ps(a1, a5, 0x31));
  const __m256 u2 = _mm256_add_ps(_mm256_permute2f128_ps(a2, a6, 0x20), _mm256_permute2f128_ps(a2, a6, 0x31));
  const __m256 u3 = _mm256_add_ps(_mm256_permute2f128_ps(a3, a7, 0x20), _mm256_permute2f128_ps(a3, a7, 0x31));
  // 4x4 transpose in each 128-bit half: B_l's lane j = b_l of key j (keys 0-3 low, 4-7 high)
  const __m256 t0 = _mm256_unpacklo_ps(u0, u1), t1 = _mm256_unpacklo_ps(u2, u3);
  const __m256 t2 = _mm256_unpackhi_ps(u0, u1), t3 = _mm256_unpackhi_ps(u2, u3);
  const __m256 b0 = _mm256_shuffle_ps(t0, t1, 0x44), b1 = _mm256_shuffle_ps(t0, t1, 0xEE);
  const __m256 b2 = _mm256_shuffle_ps(t2, t3, 0x44), b3 = _mm256_shuffle_ps(t2, t3, 0xEE);
  return _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(b0, b2), _mm256_add_ps(b1, b3)), scale);
}

// acc[d..d+8C) (parked in o) ⊕= e_u ⊗ v_u[d..d+8C) for u in [u0, u1), sequential in u.
template <int C, typename E>
AVX2 inline void vsum(float* o, const float* e, const E* v, int64_t kvDim, int u0, int u1, bool fresh) {
  __m256 a[C];
#pragma GCC unroll 8
  for (int i = 0; i < C; i++) a[i] = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(o + 8 * i);
  const E* vr = v + (int64_t)u0 * kvDim;
  for (int u = u0; u < u1; u++, vr += kvDim) {
    const __m256 eu = _mm256_broadcast_ss(e + u);
#pragma GCC unroll 8
    for (int i = 0; i < C; i++) a[i] = _mm256_add_ps(a[i], _mm256_mul_ps(eu, load8(vr + 8 * i)));
  }
#pragma GCC unroll 8
  for (int i = 0; i < C; i++) _mm256_storeu_ps(o + 8 * i, a[i]);
}

constexpr int VBLOCK = 64;          // V rows per block (64 rows of a 64-wide head: 16 KiB)
constexpr int64_t SCORE_FLOATS = 1 << 18;  // scores kept per pass (1 MiB): bounds the queries per pass
// A pass of at least this many queries over a binary16 cache widens each block of rows once into
// binary32 scratch (exact) instead of every query widening the values it reads.
constexpr int WIDEN_QUERIES = 8;

thread_local std::vector<float> scoreBuf;
thread_local std::vector<float> widenBuf;

// dst[0..n) = the n cache values at src as binary32 (h2f, exact; a binary32 cache is copied).
AVX2 inline void widen(const float* src, float* dst, int64_t n) { memcpy(dst, src, n * sizeof(float)); }
AVX2 inline void widen(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(src + i));
  for (; i < n; i++) dst[i] = load1(src + i);
}

struct Query {
  const float* q;
  float* o;
  int n;       // causal length
  int64_t kv;  // offset of its kv head in a cache row (floats)
};

// One pass over the queries qs (K/V caches at kb, vb), maxN rows. The rows are walked once per
// phase for all the queries, whichever kv heads they read, so the caches stream in row order.
// acc[0..hd) (parked in o) ⊕= e_u ⊗ v_u[0..hd) for u in [u0, u1), v_u = vh + u * kvDim.
template <typename E>
AVX2 inline void vrange(float* o, const float* e, const E* vh, int64_t kvDim, int hd, int u0, int u1, bool fresh) {
  int d = 0;
  for (; d + 64 <= hd; d += 64) vsum<8>(o + d, e, vh + d, kvDim, u0, u1, fresh);
  for (; d + 8 <= hd; d += 8) vsum<1>(o + d, e, vh + d, kvDim, u0, u1, fresh);
  for (; d < hd; d++) {
    float a = fresh ? 0.0f : o[d];
    for (int u = u0; u < u1; u++) a = a + e[u] * load1(vh + (int64_t)u * kvDim + d);
    o[d] = a;
  }
}

template <typename E>
AVX2 void attendRows(const Query* qs, int nq, const E* kb, const E* vb, int64_t kvDim, int hd, int maxN, float scale) {
  const int64_t stride = ((int64_t)maxN + 15) & ~int64_t(7);
  float* sc = scoreBuf.data();
  const __m256 scalev = _mm256_set1_ps(scale);
  // binary16 rows shared by many queries are widened once per block (exact: the same values)
  const bool wide = sizeof(E) == 2 && nq >= WIDEN_QUERIES;
  float* scratch = nullptr;
  if (wide) {
    if ((int64_t)widenBuf.size() < VBLOCK * kvDim) widenBuf.resize(VBLOCK * kvDim);
    scratch = widenBuf.data();
  }
  // 1. scores, 8 keys at a time, each block of keys shared by every query that reaches it
  if ((hd & 7) == 0) {
    for (int u0 = 0; u0 < maxN; u0 += 8) {
      if (wide) {
        const int nr = maxN - u0 < 8 ? maxN - u0 : 8;
        widen(kb + (int64_t)u0 * kvDim, scratch, (int64_t)nr * kvDim);
        const float* rows[8];
        for (int j = 0; j < 8; j++) rows[j] = scratch + (int64_t)(j < nr ? j : nr - 1) * kvDim;
        for (int i = 0; i < nq; i++) {
          if (qs[i].n <= u0) continue;
          const int64_t kv = qs[i].kv;
          const float* k[8] = {rows[0] + kv, rows[1] + kv, rows[2] + kv, rows[3] + kv, rows[4] + kv, rows[5] + kv, rows[6] + kv, rows[7] + kv};
          _mm256_storeu_ps(sc + i * stride + u0, scores8(qs[i].q, k, hd, scalev));
        }
        continue;
      }
      const E* rows[8];
      for (int j = 0; j < 8; j++) rows[j] = kb + (int64_t)(u0 + j < maxN ? u0 + j : maxN - 1) * kvDim;
      for (int i = 0; i < nq; i++) {
        if (qs[i].n <= u0) continue;
        const int64_t kv = qs[i].kv;
        const E* k[8] = {rows[0] + kv, rows[1] + kv, rows[2] + kv, rows[3] + kv, rows[4] + kv, rows[5] + kv, rows[6] + kv, rows[7] + kv};
        _mm256_storeu_ps(sc + i * stride + u0, scores8(qs[i].q, k, hd, scalev));
      }
    }
  } else {
    for (int i = 0; i < nq; i++) {
      for (int u = 0; u < qs[i].n; u++) sc[i * stride + u] = dot8Scalar(qs[i].q, kb + (int64_t)u * kvDim + qs[i].kv, hd) * scale;
    }
  }
  // 2. per query: m, e_u = EXP(s_u ⊖ m) in place, inv = 1 ⊘ SUM8(e)
  std::vector<float> inv(nq);
  for (int i = 0; i < nq; i++) {
    float* s = sc + i * stride;
    const int n = qs[i].n;
    const int full = n & ~7;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (int u = 0; u < full; u += 8) mv = _mm256_max_ps(_mm256_loadu_ps(s + u), mv);
    alignas(32) float ml[8];
    _mm256_store_ps(ml, mv);
    float m = -INFINITY;
    for (int l = 0; l < 8; l++)
      if (ml[l] > m) m = ml[l];
    for (int u = full; u < n; u++)
      if (s[u] > m) m = s[u];
    const __m256 m8 = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    int u = 0;
    for (; u < full; u += 8) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + u), m8));
      _mm256_storeu_ps(s + u, e);
      sum = _mm256_add_ps(sum, e);
    }
    if (u < n) {
      // the tail block: lanes past n hold other keys' (or stale) scores, computed and ignored
      const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + u), m8));
      _mm256_storeu_ps(s + u, e);
      sum = _mm256_blendv_ps(sum, _mm256_add_ps(sum, e), laneMask(n - u));
    }
    inv[i] = 1.0f / fold8(sum);
  }
  // 3. V, in blocks of rows shared by the queries; partial sums parked in the outputs
  for (int u0 = 0; u0 < maxN; u0 += VBLOCK) {
    const int nr = maxN - u0 < VBLOCK ? maxN - u0 : VBLOCK;
    if (wide) widen(vb + (int64_t)u0 * kvDim, scratch, (int64_t)nr * kvDim);
    for (int i = 0; i < nq; i++) {
      const int n = qs[i].n;
      if (n <= u0) continue;
      const int u1 = n < u0 + VBLOCK ? n : u0 + VBLOCK;
      const float* e = sc + i * stride;
      // the widened block holds rows u0.. from its start: the same values, the same u order
      if (wide) vrange(qs[i].o, e + u0, scratch + qs[i].kv, kvDim, hd, 0, u1 - u0, u0 == 0);
      else vrange(qs[i].o, e, vb + qs[i].kv, kvDim, hd, u0, u1, u0 == 0);
    }
  }
  for (int i = 0; i < nq; i++) {
    float* o = qs[i].o;
    const __m256 iv = _mm256_set1_ps(inv[i]);
    int d = 0;
    for (; d + 8 <= hd; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), iv));
    for (; d < hd; d++) o[d] = o[d] * inv[i];
  }
}

// The WASM export's arguments (byte offsets into mem), query heads h0 <= h < h1, caches of E.
template <typename E>
AVX2 void attention(uint8_t* mem, int64_t out, int64_t q, int64_t kc, int64_t vc, int start, int nTok, int nh, int nkv, int hd,
                    int h0, int h1) {
  const int64_t kvDim = (int64_t)nkv * hd;
  const int group = nh / nkv;
  const float scale = 1.0f / sqrtf((float)hd);
  const int maxN = start + nTok;
  const int64_t stride = ((int64_t)maxN + 15) & ~int64_t(7);
  // queries per pass: all of a kv head's (tokens x its heads in h0..h1) unless their scores
  // would pass SCORE_FLOATS
  const int64_t perPass = SCORE_FLOATS / stride > 0 ? SCORE_FLOATS / stride : 1;
  // by kv head, then token, then query head: a pass that cannot hold every query holds those of
  // one kv head (they share its K/V rows, 4·hd bytes each, where a pass mixing heads would pull
  // whole rows for fewer queries per head); one that can (decode) reads each whole row once
  std::vector<Query> qs;
  for (int g = h0 / group; g < nkv && g * group < h1; g++) {
    const int ha = h0 > g * group ? h0 : g * group;
    const int hb = h1 < (g + 1) * group ? h1 : (g + 1) * group;
    for (int t = 0; t < nTok; t++) {
      for (int h = ha; h < hb; h++) {
        const int64_t off = ((int64_t)t * nh + h) * hd;
        qs.push_back({(const float*)(mem + q) + off, (float*)(mem + out) + off, start + t + 1, (int64_t)g * hd});
      }
    }
  }
  const E* kb = (const E*)(mem + kc);
  const E* vb = (const E*)(mem + vc);
  for (size_t i = 0; i < qs.size(); i += perPass) {
    const int nq = (int)(qs.size() - i < (size_t)perPass ? qs.size() - i : perPass);
    // rows this pass reads: up to the longest causal length among its queries
    int rows = 0;
    for (int j = 0; j < nq; j++) rows = qs[i + j].n > rows ? qs[i + j].n : rows;
    if ((int64_t)scoreBuf.size() < nq * stride) scoreBuf.resize(nq * stride);
    attendRows(qs.data() + i, nq, kb, vb, kvDim, hd, rows, scale);
  }
}

// dst[i] = f2h(src[i]): vcvtps2ph rounding to nearest even, then every NaN lane (|h| > 0x7C00)
// to sign | 0x7E00, half.ts's rule.
AVX2 inline __m128i toHalf8(__m256 x) {
  const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m128i mag = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
  const __m128i nan = _mm_cmpgt_epi16(mag, _mm_set1_epi16(0x7c00));
  const __m128i canon = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16((short)0x8000)), _mm_set1_epi16(0x7e00));
  return _mm_blendv_epi8(h, canon, nan);
}

AVX2 void toHalf(uint8_t* mem, int64_t dst, int64_t src, int64_t n) {
  uint16_t* d = (uint16_t*)(mem + dst);
  const float* s = (const float*)(mem + src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i*)(d + i), toHalf8(_mm256_loadu_ps(s + i)));
  if (i < n) {
    alignas(32) float x[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    alignas(16) uint16_t h[8];
    for (int64_t j = i; j < n; j++) x[j - i] = s[j];
    _mm_store_si128((__m128i*)h, toHalf8(_mm256_load_ps(x)));
    for (int64_t j = i; j < n; j++) d[j] = h[j - i];
  }
}

AVX2 void fromHalf(uint8_t* mem, int64_t out, int64_t hp, int64_t n) {
  float* o = (float*)(mem + out);
  const uint16_t* h = (const uint16_t*)(mem + hp);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, load8(h + i));
  for (; i < n; i++) o[i] = load1(h + i);
}

AVX2 void expMany(uint8_t* mem, int64_t out, int64_t x, int64_t n) {
  float* o = (float*)(mem + out);
  const float* xi = (const float*)(mem + x);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, exp8(_mm256_loadu_ps(xi + i)));
  for (; i < n; i++) o[i] = expScalar(xi[i]);
}

// Reads argv[0] as a Uint8Array and argv[1..argc) as non-negative integers (`want` of them, or
// `want - optional` with the rest 0); throws (one line) and returns false otherwise.
bool readArgs(napi_env env, napi_callback_info info, const char* name, const char* const* names, size_t want, uint8_t** mem,
              size_t* len, int64_t* v, size_t optional = 0) {
  size_t argc = 16;
  napi_value argv[16];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  char msg[200];
  if (argc > want || argc + optional < want) {
    snprintf(msg, sizeof msg, "%s takes %zu arguments", name, want);
    napi_throw_type_error(env, nullptr, msg);
    return false;
  }
  napi_typedarray_type type;
  void* data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[0], &type, len, &data, &ab, &off) != napi_ok || type != napi_uint8_array) {
    snprintf(msg, sizeof msg, "%s: mem must be a Uint8Array", name);
    napi_throw_type_error(env, nullptr, msg);
    return false;
  }
  *mem = (uint8_t*)data;
  for (size_t i = argc; i < want; i++) v[i] = 0;
  for (size_t i = 1; i < argc; i++) {
    if (!getInt(env, argv[i], &v[i])) {
      snprintf(msg, sizeof msg, "%s: %s must be a non-negative integer", name, names[i]);
      napi_throw_range_error(env, nullptr, msg);
      return false;
    }
  }
  return true;
}

napi_value Attention(napi_env env, napi_callback_info info) {
  static const char* const names[14] = {"mem", "out", "q", "k", "v", "scores", "start", "nTok", "nh", "nkv", "hd", "h0", "h1", "half"};
  uint8_t* mem;
  size_t len;
  int64_t v[14];
  if (!readArgs(env, info, "attention", names, 14, &mem, &len, v, 1)) return nullptr;
  const int64_t out = v[1], q = v[2], kc = v[3], vc = v[4], start = v[6], nTok = v[7], nh = v[8], nkv = v[9], hd = v[10],
                h0 = v[11], h1 = v[12], half = v[13];
  const int64_t L = (int64_t)len;
  const bool shapeOk = nTok >= 1 && nkv >= 1 && nh >= nkv && nh % nkv == 0 && hd >= 1 && nh <= 65536 && hd <= 65536 &&
                       start + nTok <= (1 << 24) && h0 <= h1 && h1 <= nh && half <= 1 && ((out | q) & 3) == 0 &&
                       ((kc | vc) & (half ? 1 : 3)) == 0;
  if (!shapeOk) {
    napi_throw_range_error(env, nullptr, "attention: shape out of range (start, nTok, nh, nkv, hd, h0, h1) or a misaligned array");
    return nullptr;
  }
  const int64_t qBytes = nTok * nh * hd * 4, kvBytes = (start + nTok) * nkv * hd * (half ? 2 : 4);
  if (out + qBytes > L || q + qBytes > L || kc + kvBytes > L || vc + kvBytes > L) {
    napi_throw_range_error(env, nullptr, "attention: out, q, k or v reaches past the end of mem");
    return nullptr;
  }
  if (h0 < h1 && half) attention<uint16_t>(mem, out, q, kc, vc, (int)start, (int)nTok, (int)nh, (int)nkv, (int)hd, (int)h0, (int)h1);
  else if (h0 < h1) attention<float>(mem, out, q, kc, vc, (int)start, (int)nTok, (int)nh, (int)nkv, (int)hd, (int)h0, (int)h1);
  return nullptr;
}

// toHalf(mem, dst, src, n) and fromHalf(mem, out, h, n): the binary16 conversions on byte offsets.
napi_value Convert(napi_env env, napi_callback_info info, bool narrow) {
  static const char* const names[4] = {"mem", "dst", "src", "n"};
  const char* name = narrow ? "toHalf" : "fromHalf";
  uint8_t* mem;
  size_t len;
  int64_t v[4];
  if (!readArgs(env, info, name, names, 4, &mem, &len, v)) return nullptr;
  const int64_t dst = v[1], src = v[2], n = v[3];
  const int64_t dstBytes = n * (narrow ? 2 : 4), srcBytes = n * (narrow ? 4 : 2);
  if (((dst | src) & 1) != 0 || ((narrow ? src : dst) & 3) != 0 || dst + dstBytes > (int64_t)len || src + srcBytes > (int64_t)len) {
    napi_throw_range_error(env, nullptr, "toHalf/fromHalf: dst or src misaligned or past the end of mem");
    return nullptr;
  }
  if (narrow) toHalf(mem, dst, src, n);
  else fromHalf(mem, dst, src, n);
  return nullptr;
}

napi_value ToHalf(napi_env env, napi_callback_info info) { return Convert(env, info, true); }
napi_value FromHalf(napi_env env, napi_callback_info info) { return Convert(env, info, false); }

napi_value ExpMany(napi_env env, napi_callback_info info) {
  static const char* const names[4] = {"mem", "out", "x", "n"};
  uint8_t* mem;
  size_t len;
  int64_t v[4];
  if (!readArgs(env, info, "expMany", names, 4, &mem, &len, v)) return nullptr;
  const int64_t out = v[1], x = v[2], n = v[3];
  if (((out | x) & 3) != 0 || out + 4 * n > (int64_t)len || x + 4 * n > (int64_t)len) {
    napi_throw_range_error(env, nullptr, "expMany: out or x misaligned or past the end of mem");
    return nullptr;
  }
  expMany(mem, out, x, n);
  return nullptr;
}

}  // namespace

NAPI_MODULE_INIT() {
  if (!tn::cpuOk(true)) {
    napi_throw_error(env, nullptr, "tessera_attention: this CPU lacks AVX2 or F16C; the WASM attention stays the path");
    return nullptr;
  }
  napi_value f;
  napi_create_function(env, "attention", NAPI_AUTO_LENGTH, Attention, nullptr, &f);
  napi_set_named_property(env, exports, "attention", f);
  napi_create_function(env, "expMany", NAPI_AUTO_LENGTH, ExpMany, nullptr, &f);
  napi_set_named_property(env, exports, "expMany", f);
  napi_create_function(env, "toHalf", NAPI_AUTO_LENGTH, ToHalf, nullptr, &f);
  napi_set_named_property(env, exports, "toHalf", f);
  napi_create_function(env, "fromHalf", NAPI_AUTO_LENGTH, FromHalf, nullptr, &f);
  napi_set_named_property(env, exports, "fromHalf", f);
  return exports;
}
