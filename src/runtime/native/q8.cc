// Native (x86-64 AVX2 + F16C) twins of build/kernels.wasm's matmuls
// (src/engine/kernels/assembly/kernels.ts), bit-identical to them and to the TS reference
// (docs/ARITHMETIC.md "rowdot", docs/KERNELS.md "Native kernel" and the sections after it):
// `matmul_q8_0` first (below), then the K-quants (Q4_K, Q5_K, Q6_K, Q3_K, Q2_K), then Q4_1, Q5_0
// and Q5_1, then the trace's vector roots. The CPU check and argument reader are in common.h.
//
// Why the bits are the same: per group block b, row r and token t the integer sum
// isum = Σ_i w_r[i]·q_t[i] is exact in int32 (|isum| <= 32·128·127), so the order of the
// vpmaddwd/vpaddd steps is free. Every f32 step is one IEEE binary32 SSE/AVX instruction in the
// spec's order: term = (h2f(d_w) ⊗ d_a) ⊗ i2f(isum) (two vmulps, the file is compiled with
// -ffp-contract=off so nothing is fused), lane[b mod 8] ⊕= term, then the SUM8 fold
// ((a0 ⊕ a4) ⊕ (a2 ⊕ a6)) ⊕ ((a1 ⊕ a5) ⊕ (a3 ⊕ a7)). h2f is vcvtph2ps, exact for every binary16
// (subnormals included); i2f is vcvtdq2ps, exact for |isum| < 2^24 and correctly rounded (as
// f32.convert_i32_s) beyond.
//
// Memory: the arguments are byte offsets into `mem` (a Uint8Array over a thread's shared
// WebAssembly.Memory, starting at 0), exactly the WASM export's arguments. Weights: row groups of
// 4 rows; a group block is [4 x f16 d][16 column pairs x 4 rows x 2 int8] (136 bytes), byte
// 8 + 8·kp + 2·r + i = row r's weight 2·kp + i. Activations: one record of actStride bytes per
// token: i16 q[cols], f32 d[nb], i16 bsum[nb], padded to 16. Output: token t's 4 rows of group g
// at out + 4·(t·outStride + 4·g).
//
// The kernel is compiled for AVX2/F16C by target attributes only; the module's load-time code is
// plain x86-64, so on a CPU without them `require` fails with one clear error instead of SIGILL.
#include <stdio.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "common.h"
// OpenSSL inside node (its symbols are exported to addons). The low-level SHA256_Init/Update/
// Final: OpenSSL 3's one-shot SHA256() fetches the algorithm on every call, which cost more than
// hashing a 1 KiB chunk.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

namespace {

constexpr int GBB = 136;  // bytes of one Q8_0 group block (4 rows)
constexpr int TMAX = 12;   // tokens per weight pass


int64_t actStride(int64_t cols) {
  const int64_t nb = cols / 32;
  return (cols * 2 + nb * 4 + nb * 2 + 15) & ~int64_t(15);
}

// One row group, T tokens (token k's record at a[k]); writes out[k] (4 floats each).
// Integer part: the 16 bytes of columns 4j..4j+3 are reordered to
// [r0 c0c1, r0 c2c3, r1 c0c1, r1 c2c3, ...] (pshufb) and sign-extended to 16 x i16; the
// activation pairs (q[c],q[c+1]), (q[c+2],q[c+3]) broadcast as one i64 to every 64-bit lane, so
// vpmaddwd puts row r's partial sums in dword lanes 2r and 2r+1.
template <int T>
__attribute__((target("avx2,f16c"))) void groupQ8_0(const uint8_t* wg, int nb, const uint8_t* const* a,
                                                    int64_t dOff, float* const* out) {
  constexpr int P = (T + 1) / 2;  // token pairs (the last one half used when T is odd)
  alignas(32) float acc[P][8][8];
  memset(acc, 0, sizeof acc);
  const __m128i order = _mm_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
  for (int b = 0; b < nb; b++) {
    const uint8_t* wb = wg + (int64_t)b * GBB;
    const int64_t ab = (int64_t)b * 64;
    __m256i s[T];
#pragma GCC unroll 16
    for (int k = 0; k < T; k++) s[k] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      const __m128i raw = _mm_loadu_si128((const __m128i*)(wb + 8 + 16 * j));
      const __m256i w = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(raw, order));
#pragma GCC unroll 16
      for (int k = 0; k < T; k++) {
        int64_t q;
        memcpy(&q, a[k] + ab + 8 * j, 8);
        s[k] = _mm256_add_epi32(s[k], _mm256_madd_epi16(w, _mm256_set1_epi64x(q)));
        // Keeps s[k] a register accumulator: without it GCC reassociates the (exact) integer sums
        // into trees of all 64 products and spills them.
        __asm__("" : "+x"(s[k]));
      }
    }
    const __m128 dw = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)wb));
    const __m256 dw2 = _mm256_set_m128(dw, dw);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      const int kA = 2 * p, kB = 2 * p + 1 < T ? 2 * p + 1 : 2 * p;
      // hadd: [A r0, A r1, B r0, B r1 | A r2, A r3, B r2, B r3]; permute to [A r0..r3 | B r0..r3]
      const __m256i h = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s[kA], s[kB]), 0xD8);
      float daA, daB;
      memcpy(&daA, a[kA] + dOff + 4 * b, 4);
      memcpy(&daB, a[kB] + dOff + 4 * b, 4);
      const __m256 da = _mm256_set_m128(_mm_set1_ps(daB), _mm_set1_ps(daA));
      const __m256 term = _mm256_mul_ps(_mm256_mul_ps(dw2, da), _mm256_cvtepi32_ps(h));
      float* l = acc[p][b & 7];
      _mm256_store_ps(l, _mm256_add_ps(_mm256_load_ps(l), term));
    }
  }
  for (int p = 0; p < P; p++) {
    const __m256 s0 = _mm256_add_ps(_mm256_load_ps(acc[p][0]), _mm256_load_ps(acc[p][4]));
    const __m256 s1 = _mm256_add_ps(_mm256_load_ps(acc[p][1]), _mm256_load_ps(acc[p][5]));
    const __m256 s2 = _mm256_add_ps(_mm256_load_ps(acc[p][2]), _mm256_load_ps(acc[p][6]));
    const __m256 s3 = _mm256_add_ps(_mm256_load_ps(acc[p][3]), _mm256_load_ps(acc[p][7]));
    const __m256 r = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3));
    _mm_storeu_ps(out[2 * p], _mm256_castps256_ps128(r));
    if (2 * p + 1 < T) _mm_storeu_ps(out[2 * p + 1], _mm256_extractf128_ps(r, 1));
  }
}

using GroupFn = void (*)(const uint8_t*, int, const uint8_t* const*, int64_t, float* const*);
const GroupFn GROUP[TMAX + 1] = {nullptr, groupQ8_0<1>, groupQ8_0<2>, groupQ8_0<3>, groupQ8_0<4>,
                                 groupQ8_0<5>, groupQ8_0<6>, groupQ8_0<7>, groupQ8_0<8>,
                                 groupQ8_0<9>, groupQ8_0<10>, groupQ8_0<11>, groupQ8_0<12>};

// One token (decode): the i16 activations are narrowed once per call to int8 (exact: q is in
// [-127, 127]), cols bytes that stay in L1 while the weights stream past. Per 8 columns 8m..8m+7,
// their 8 bytes loaded and vpermd-broadcast to [a0 a0 a0 a0 | a1 a1 a1 a1] (a0 = q[8m..8m+3],
// a1 = q[8m+4..8m+7]) meet one 32-byte load of weights: a group block's 32 bytes at 8 + 32m (column
// pairs 4m..4m+3 of the 4 rows) reordered per 128-bit lane by vpshufb are [r0 c0 c1, r0 c2 c3, r1
// c0 c1, .. | r0 c4 c5, r0 c6 c7, ..]; vpmaddubsw(|w|, sign(a, w)) (as llama.cpp's AVX2 Q8_0 dot:
// |w| <= 128 unsigned, a·sign(w) in [-127, 127], so each i16 pair sum |.| <= 2·128·127 < 32767
// never saturates) then vpmaddwd with ones leaves row r's partial sums in dword lanes r and 4 + r.
// (Expanding the activations to 4 bytes per column once per call instead saves the vpermd but, at
// 5632 columns, the 22 KiB no longer stay in L1 beside the weight stream: slower from DRAM.)
// Two blocks per 256-bit epilogue as group32x1 (block b, even, low half; b+1 high half; acc[j] =
// [lane 2j | lane 2j+1]).
thread_local int8_t* q8x = nullptr;
thread_local int64_t q8xCap = 0;

// SUM8's fold of one token's lane accumulators, acc[j] = [lane 2j's 4 rows | lane 2j+1's]:
// [a0+a4 | a1+a5] + [a2+a6 | a3+a7], then the halves, stored to out[0..4).
__attribute__((target("avx2"))) inline void foldLanePairs(const float (*acc)[8], float* out) {
  const __m256 t = _mm256_add_ps(_mm256_add_ps(_mm256_load_ps(acc[0]), _mm256_load_ps(acc[2])),
                                 _mm256_add_ps(_mm256_load_ps(acc[1]), _mm256_load_ps(acc[3])));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
}

__attribute__((target("avx2,f16c"))) void matvecQ8_0(const uint8_t* mem, int64_t w, int ngroups, int nb, const uint8_t* rec, float* out) {
  const int64_t cols = (int64_t)nb * 32;
  if (q8xCap < cols) {
    delete[] q8x;
    q8xCap = cols;
    q8x = new int8_t[q8xCap];
  }
  const __m256i dup = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  for (int64_t m = 0; m < cols / 16; m++) {
    const __m128i v = _mm_loadu_si128((const __m128i*)(rec + 32 * m)), v2 = _mm_loadu_si128((const __m128i*)(rec + 32 * m + 16));
    _mm_storeu_si128((__m128i*)(q8x + 16 * m), _mm_packs_epi16(v, v2));
  }
  const float* dact = (const float*)(rec + cols * 2);
  const int64_t groupBytes = (int64_t)nb * GBB;
  const __m256i order = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,  //
                                         0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int g = 0; g < ngroups; g++) {
    const uint8_t* wg = mem + w + g * groupBytes;
    alignas(32) float acc[4][8];
    memset(acc, 0, sizeof acc);
    auto block = [&](int b) __attribute__((target("avx2"))) {
      const uint8_t* wb = wg + (int64_t)b * GBB;
      const int8_t* e = q8x + 32 * (int64_t)b;
      __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int m = 0; m < 4; m++) {
        const __m256i wv = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i*)(wb + 8 + 32 * m)), order);
        const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(_mm256_permutevar8x32_epi32(_mm256_castsi128_si256(_mm_loadl_epi64((const __m128i*)(e + 8 * m))), dup), wv));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
      }
      return s;
    };
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
      const __m256i s0 = block(b), s1 = block(b + 1);
      const __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(s0, s1, 0x20), _mm256_permute2x128_si256(s0, s1, 0x31));
      const uint8_t* wb0 = wg + (int64_t)b * GBB;
      const __m256 dw = _mm256_set_m128(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb0 + GBB))), _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)wb0)));
      const __m256 da = _mm256_set_m128(_mm_set1_ps(dact[b + 1]), _mm_set1_ps(dact[b]));
      const __m256 term = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(s));
      float* l = acc[(b & 7) >> 1];
      _mm256_store_ps(l, _mm256_add_ps(_mm256_load_ps(l), term));
    }
    if (b < nb) {
      const __m256i s2 = block(b);
      const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s2), _mm256_extracti128_si256(s2, 1));
      const __m128 term = _mm_mul_ps(_mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wg + (int64_t)b * GBB))), _mm_set1_ps(dact[b])),
                                     _mm_cvtepi32_ps(s));
      float* l = acc[(b & 7) >> 1];
      _mm_store_ps(l, _mm_add_ps(_mm_load_ps(l), term));
    }
    foldLanePairs(acc, out + 4 * (int64_t)g);
  }
}

// Tokens per tile of a batched matmul: as many as keep ~256 KiB of activations (`tokenBytes` each)
// hot in L2 while every row group passes over them, a multiple of the `tmax` tokens of one weight
// pass unless fewer fit (then at least 1).
inline int64_t tokensPerTile(int64_t tokenBytes, int64_t tmax) {
  const int64_t tile = (256 * 1024) / tokenBytes;
  return tile < tmax ? (tile < 1 ? 1 : tile) : tile - tile % tmax;
}

// The passes of a batched matmul, tile by tile (tokensPerTile of `tokenBytes`): for each tile,
// every row group g, and in it every run of n ≤ TM tokens from t: pass(g, t, n).
template <int TM, typename Pass>
inline void forPasses(int ntok, int ngroups, int64_t tokenBytes, Pass pass) {
  const int64_t tile = tokensPerTile(tokenBytes, TM);
  for (int t0 = 0; t0 < ntok; t0 += (int)tile) {
    const int t1 = (int)(t0 + tile < ntok ? t0 + tile : ntok);
    for (int g = 0; g < ngroups; g++) {
      for (int t = t0; t < t1; t += TM) pass(g, t, t1 - t < TM ? t1 - t : TM);
    }
  }
}

void matmulQ8_0(uint8_t* mem, int64_t w, int ngroups, int nb, int64_t act, int ntok, int64_t out, int64_t outStride) {
  if (ntok == 1) {
    matvecQ8_0(mem, w, ngroups, nb, mem + act, (float*)(mem + out));
    return;
  }
  const int64_t cols = (int64_t)nb * 32;
  const int64_t stride = actStride(cols);
  const int64_t dOff = cols * 2;
  const int64_t groupBytes = (int64_t)nb * GBB;
  // Tiles of ~256 KiB of activation records (stride bytes a token).
  const uint8_t* a[TMAX];
  float* o[TMAX];
  forPasses<TMAX>(ntok, ngroups, stride, [&](int g, int t, int n) {
    for (int k = 0; k < n; k++) {
      a[k] = mem + act + (int64_t)(t + k) * stride;
      o[k] = (float*)(mem + out + 4 * ((int64_t)(t + k) * outStride + 4 * (int64_t)g));
    }
    GROUP[n](mem + w + g * groupBytes, nb, a, dOff, o);
  });
}

// ---- K-quants (Q4_K, Q5_K, Q6_K): twins of build/kernels.wasm's matmul_q4_k / _q5_k / _q6_k ----
// Same packed group blocks as the WASM kernels (every GGUF field interleaved across the 4 rows):
// Q4_K [4 x f16 d][4 x f16 dmin][4 x 12 scale bytes][4 x 128 nibble bytes] (576 bytes),
// Q6_K [4 x 128 ql][4 x 64 qh][4 x 16 int8 scales][4 x f16 d] (840 bytes). Same activation records
// (activation block 256): i16 q[cols], f32 d[cols/256], i16 sum of q per 32 values.
//
// Why the bits are the same: a block's integer sums (Q4_K's S1 = Σ_j sc_j·Σ q·qa and S2 =
// Σ_j m_j·Σ qa, Q6_K's Σ_j sc_j·Σ (q-32)·qa) are exact in int32 (docs/ARITHMETIC.md bounds them),
// so any order of the integer steps gives the same integers; the f32 steps are those of the
// reference, one instruction each: Q4_K ((d ⊗ d_a) ⊗ i2f(S1)) ⊖ ((dmin ⊗ d_a) ⊗ i2f(S2)),
// Q6_K (d ⊗ d_a) ⊗ i2f(S), lane[b mod 8] ⊕= term, the SUM8 fold.
//
// The integer part uses vpmaddubsw (unsigned weight byte x signed activation byte, pairs summed
// into i16), which needs the activations as int8: each call first narrows the i16 records into a
// per-thread scratch (exact: q is in [-127, 127]). vpmaddubsw saturates its i16 pair sums, which
// never happens here: Q4_K's q ≤ 15 gives |pair| ≤ 2·15·127, Q6_K's unsigned q ≤ 63 gives
// |pair| ≤ 2·63·127 = 16,002. Q6_K's -32 offset is taken out after the scales:
// Σ_j sc_j·Σ_{i∈j} (q_i-32)·qa_i = Σ_j sc_j·Σ q_i·qa_i - 32·Σ_j sc_j·Σ_{i∈j} qa_i, with the sums of
// qa per 16 values made once per token in the same scratch pass.
constexpr int KTMAX = 8;  // tokens per weight pass: T accumulators + weights + scales fit 16 ymm

struct KAct {
  const int8_t* q;     // cols int8 activations
  const float* d;      // one scale per 256 values (in the record)
  const int16_t* s32;  // Σ q per 32 values (in the record)
  const int16_t* s16;  // Σ q per 16 values (scratch)
};

// Per thread: the narrowed activations of the tokens of one call, and their per-16 sums.
thread_local int8_t* kq8 = nullptr;
thread_local int16_t* ks16 = nullptr;
thread_local int64_t kcap = 0;

__attribute__((target("avx2"))) void narrowActs(const uint8_t* rec, int64_t cols, int8_t* q, int16_t* s16) {
  const int16_t* src = (const int16_t*)rec;
  for (int64_t i = 0; i < cols; i += 32) {
    const __m256i a = _mm256_loadu_si256((const __m256i*)(src + i));
    const __m256i b = _mm256_loadu_si256((const __m256i*)(src + i + 16));
    // packs works per 128-bit lane: [a0-7 b0-7 | a8-15 b8-15]; vpermq puts them in order
    _mm256_storeu_si256((__m256i*)(q + i), _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xD8));
    // Σ of a (values i..i+15) and of b (i+16..i+31): madd with 1 sums pairs; the first hadd gives
    // [a0-3 a4-7 b0-3 b4-7 | a8-11 a12-15 b8-11 b12-15], the second [a0-7 b0-7 .. | a8-15 b8-15 ..]
    const __m256i one = _mm256_set1_epi16(1);
    __m256i h = _mm256_hadd_epi32(_mm256_madd_epi16(a, one), _mm256_madd_epi16(b, one));
    h = _mm256_hadd_epi32(h, h);
    const int32_t aLo = _mm256_extract_epi32(h, 0), bLo = _mm256_extract_epi32(h, 1);
    const int32_t aHi = _mm256_extract_epi32(h, 4), bHi = _mm256_extract_epi32(h, 5);
    s16[i / 16] = (int16_t)(aLo + aHi);
    s16[i / 16 + 1] = (int16_t)(bLo + bHi);
  }
}

// This thread's scratch grown to hold `n` int8 activations and their per-16 sums.
inline void growScratch(int64_t n) {
  if (kcap >= n) return;
  delete[] kq8;
  delete[] ks16;
  kcap = n;
  kq8 = new int8_t[kcap];
  ks16 = new int16_t[kcap / 16];
}

// The `ntok` records at `recs` (`stride` bytes apart, `cols` values each) narrowed into the scratch:
// token t's int8 q at kq8 + t·cols, its per-16 sums at ks16 + t·cols/16.
inline void narrowTokens(const uint8_t* recs, int64_t stride, int64_t cols, int ntok) {
  growScratch(ntok * cols);
  for (int t = 0; t < ntok; t++) narrowActs(recs + t * stride, cols, kq8 + t * cols, ks16 + t * (cols / 16));
}

// [Σ x[0], Σ x[1], Σ x[2], Σ x[3]] of four i32x8: one token's row sums (exact integers: any order).
__attribute__((target("avx2"))) inline __m128i hsum4x8(const __m256i* x) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(x[0], x[1]), _mm256_hadd_epi32(x[2], x[3]));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// Two tokens' row sums at once: [A r0..r3 | B r0..r3], where A_r = Σ of the 8 lanes of a[r] and
// B_r of b[r] (exact integers: any order).
__attribute__((target("avx2"))) inline __m256i hsumPair(const __m256i* a, const __m256i* b) {
  const __m256i v01 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], b[0]), _mm256_hadd_epi32(a[1], b[1]));
  const __m256i v23 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[2], b[2]), _mm256_hadd_epi32(a[3], b[3]));
  // v01 = [A0 B0 A1 B1 partial (lanes 0-3) | the same over lanes 4-7], v23 likewise for rows 2, 3
  const __m256i t = _mm256_add_epi32(_mm256_permute2x128_si256(v01, v23, 0x20), _mm256_permute2x128_si256(v01, v23, 0x31));
  return _mm256_permutevar8x32_epi32(t, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
}

// SUM8's fold of a token pair's 8 lane accumulators (each [A rows | B rows]) into out[kA], out[kB].
__attribute__((target("avx2"))) inline void foldPair(const float (*acc)[8], float* outA, float* outB) {
  const __m256 s0 = _mm256_add_ps(_mm256_load_ps(acc[0]), _mm256_load_ps(acc[4]));
  const __m256 s1 = _mm256_add_ps(_mm256_load_ps(acc[1]), _mm256_load_ps(acc[5]));
  const __m256 s2 = _mm256_add_ps(_mm256_load_ps(acc[2]), _mm256_load_ps(acc[6]));
  const __m256 s3 = _mm256_add_ps(_mm256_load_ps(acc[3]), _mm256_load_ps(acc[7]));
  const __m256 r = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3));
  _mm_storeu_ps(outA, _mm256_castps256_ps128(r));
  if (outB) _mm_storeu_ps(outB, _mm256_extractf128_ps(r, 1));
}

// The 8 six-bit scales (bytes 0-7) and mins (bytes 8-15) of a Q4_K block's 12 scale bytes
// (llama.cpp get_scale_min_k4, four at a time; the WASM kernel's q4kScales).
inline void q4kScales(const uint8_t* p, uint8_t* sm) {
  uint32_t w0, w1, w2;
  memcpy(&w0, p, 4);
  memcpy(&w1, p + 4, 4);
  memcpy(&w2, p + 8, 4);
  const uint32_t v[4] = {w0 & 0x3f3f3f3fu, (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u), w1 & 0x3f3f3f3fu,
                         ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u)};
  memcpy(sm, v, 16);
}

// Q4_K, and with Q5 Q5_K: its group block is Q4_K's with the 4 rows' 32 high-bit bytes before the
// nibbles, [4 x f16 d][4 x f16 dmin][4 x 12 scale bytes][4 x 32 qh][4 x 128 nibble bytes] (704
// bytes); chunk c's low nibbles take bit 2c of qh[l] as their 16s bit, its high nibbles bit 2c+1.
// vpmaddubsw's pairs stay far from saturation with 5-bit values too (2·31·127).
template <int T, bool Q5>
__attribute__((target("avx2,f16c"))) void groupKMin(const uint8_t* wg, int nb, const KAct* a, float* const* out) {
  // The per-block epilogue (row sums, S2, the f32 term) runs on token pairs in 256-bit halves
  // [A | B], as groupQ8_0's; the last pair of an odd T repeats its token.
  constexpr int P = (T + 1) / 2;
  alignas(32) float acc[P][8][8];
  memset(acc, 0, sizeof acc);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m16 = _mm256_set1_epi8(0x10);
  constexpr int GB = Q5 ? 704 : 576, QS = Q5 ? 192 : 64;
  for (int b = 0; b < nb; b++) {
    const uint8_t* wb = wg + (int64_t)b * GB;
    const int64_t ab = (int64_t)b * 256;
    __m256i part[T][4];
    __m128i mins[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      alignas(16) uint8_t sm[16];
      q4kScales(wb + 16 + 12 * r, sm);
      const __m128i smv = _mm_load_si128((const __m128i*)sm);
      mins[r] = _mm_cvtepu8_epi16(_mm_srli_si128(smv, 8));
      // the 8 scales as i16 in both 128-bit halves; vpshufb broadcasts scale j to every lane
      const __m256i sc8 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(smv));
      const uint8_t* qs = wb + QS + 128 * r;
      const __m256i qh = Q5 ? _mm256_loadu_si256((const __m256i*)(wb + 64 + 32 * r)) : _mm256_setzero_si256();
      __m256i s[T];
#pragma GCC unroll 8
      for (int k = 0; k < T; k++) s[k] = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int c = 0; c < 4; c++) {
        const __m256i w = _mm256_loadu_si256((const __m256i*)(qs + 32 * c));
        __m256i lo = _mm256_and_si256(w, m4), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
        if constexpr (Q5) {
          // bits 2c, 2c+1 of each qh byte down to bits 0, 1 (16-bit shifts: a high byte's bits
          // reach the low byte's bits 8-2c.. only, never 0 or 1), then up to bit 4 and masked
          const __m256i h = _mm256_srli_epi16(qh, 2 * c);
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4), m16));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(h, 3), m16));
        }
        const __m256i scA = _mm256_shuffle_epi8(sc8, _mm256_set1_epi16((int16_t)(0x0100 + 0x0202 * (2 * c))));
        const __m256i scB = _mm256_shuffle_epi8(sc8, _mm256_set1_epi16((int16_t)(0x0100 + 0x0202 * (2 * c + 1))));
#pragma GCC unroll 8
        for (int k = 0; k < T; k++) {
          const int8_t* q = a[k].q + ab + 64 * c;
          const __m256i pA = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i*)q)), scA);
          const __m256i pB = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i*)(q + 32))), scB);
          s[k] = _mm256_add_epi32(s[k], _mm256_add_epi32(pA, pB));
          __asm__("" : "+x"(s[k]));  // keep the exact sums in registers (see groupQ8_0)
        }
      }
#pragma GCC unroll 8
      for (int k = 0; k < T; k++) part[k][r] = s[k];
    }
    const __m128 dw1 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)wb));
    const __m128 dmin1 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb + 8)));
    const __m256 dw = _mm256_set_m128(dw1, dw1), dmin = _mm256_set_m128(dmin1, dmin1);
    const __m256i m0 = _mm256_broadcastsi128_si256(mins[0]), m1 = _mm256_broadcastsi128_si256(mins[1]);
    const __m256i m2 = _mm256_broadcastsi128_si256(mins[2]), m3 = _mm256_broadcastsi128_si256(mins[3]);
    if constexpr (T == 1) {
      // decode: one token, 128-bit (the pair path would do every step twice)
      const __m128i bs = _mm_loadu_si128((const __m128i*)(a[0].s32 + 8 * (int64_t)b));
      const __m128i s2 = _mm_hadd_epi32(_mm_hadd_epi32(_mm_madd_epi16(mins[0], bs), _mm_madd_epi16(mins[1], bs)),
                                        _mm_hadd_epi32(_mm_madd_epi16(mins[2], bs), _mm_madd_epi16(mins[3], bs)));
      const __m128 da = _mm_set1_ps(a[0].d[b]);
      const __m128 t1 = _mm_mul_ps(_mm_mul_ps(dw1, da), _mm_cvtepi32_ps(hsum4x8(part[0])));
      const __m128 t2 = _mm_mul_ps(_mm_mul_ps(dmin1, da), _mm_cvtepi32_ps(s2));
      float* l = acc[0][b & 7];
      _mm_store_ps(l, _mm_add_ps(_mm_load_ps(l), _mm_sub_ps(t1, t2)));
      continue;
    }
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      const int kA = 2 * p, kB = 2 * p + 1 < T ? 2 * p + 1 : 2 * p;
      const __m256i s1 = hsumPair(part[kA], part[kB]);
      const __m256i bs = _mm256_set_m128i(_mm_loadu_si128((const __m128i*)(a[kB].s32 + 8 * (int64_t)b)),
                                          _mm_loadu_si128((const __m128i*)(a[kA].s32 + 8 * (int64_t)b)));
      const __m256i s2 = _mm256_hadd_epi32(_mm256_hadd_epi32(_mm256_madd_epi16(m0, bs), _mm256_madd_epi16(m1, bs)),
                                           _mm256_hadd_epi32(_mm256_madd_epi16(m2, bs), _mm256_madd_epi16(m3, bs)));
      const __m256 da = _mm256_set_m128(_mm_set1_ps(a[kB].d[b]), _mm_set1_ps(a[kA].d[b]));
      const __m256 t1 = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(s1));
      const __m256 t2 = _mm256_mul_ps(_mm256_mul_ps(dmin, da), _mm256_cvtepi32_ps(s2));
      float* l = acc[p][b & 7];
      _mm256_store_ps(l, _mm256_add_ps(_mm256_load_ps(l), _mm256_sub_ps(t1, t2)));
    }
  }
  for (int p = 0; p < P; p++) foldPair(acc[p], out[2 * p], 2 * p + 1 < T ? out[2 * p + 1] : nullptr);
}

// The 16-value sub-block scales j (values 0-15) and j + 1 (values 16-31) of a 32-value chunk as i16
// lanes, from a half's 8 scales widened to i16 (Q6_K's and Q3_K's sc07 / sc815).
__attribute__((target("avx2"), always_inline)) inline __m256i subBlockPairScales(__m256i sc8, int j) {
  return _mm256_shuffle_epi8(sc8, _mm256_set_m128i(_mm_set1_epi16((int16_t)(0x0100 + 0x0202 * (j + 1))), _mm_set1_epi16((int16_t)(0x0100 + 0x0202 * j))));
}

// ---- One token (decode) for Q4_K / Q5_K: groupKMin<1, Q5>'s integers and f32 steps with fewer
// instructions per weight byte, so the core keeps more of the DRAM stream in flight (the Q8_0
// one-token kernel's reasoning). Per 64-value chunk c of a row (sub-blocks 2c and 2c+1), the two
// 32-byte vectors are v1 = [values 0-15 | 32-47] and v2 = [16-31 | 48-63] of the chunk: each
// 128-bit half holds one sub-block, so the two vpmaddubsw results add in i16 (|sum| <= 4·31·127 =
// 15,748: no wrap) and one vpmaddwd by [sc_2c x8 | sc_2c+1 x8] applies both scales (the old form:
// two vpmaddwd and two scale shuffles per chunk). v1 is the chunk's 16 nibble bytes 0-15 broadcast
// to both halves, the high half shifted down 4 (vpsrlvd), masked; Q5_K's 16s bit comes from the
// row's qh bytes 0-15 (for v1; 16-31 for v2) broadcast likewise, bit 2c (low half) and 2c+1 (high
// half) moved to bit 4 by one vpsllvd/vpsrlvd with per-half counts (32-bit shifts by at most 4
// left or 3 right keep each byte's bit 4 from the same byte), masked, or-ed in. The activations
// are rearranged once per call to match ([0-15, 32-47, 16-31, 48-63] per 64 values). The 6-bit
// scales and mins of a row are unpacked in SSE (get_scale_min_k4's four u32 at once).
thread_local int8_t* k1q = nullptr;
thread_local int64_t k1cap = 0;

// The 8 scales (bytes 0-7) and 8 mins (bytes 8-15) of one row's 12 scale bytes at p, as q4kScales:
// x = [w0, w1, w2, -]; [v0, v2] = [w0, w1] & 0x3f; [v1, v3] = ([w2, w2 >> 4] & 0x0f) | ([w0, w1] >> 2 & 0x30).
// Reads 16 bytes (the 4 after the row's 12 are in the same block: the next row's scales or qh/qs).
__attribute__((target("avx2"), always_inline)) inline __m128i q4kScales4(const uint8_t* p) {
  const __m128i x = _mm_loadu_si128((const __m128i*)p);
  const __m128i v02 = _mm_and_si128(x, _mm_set1_epi8(0x3f));
  const __m128i w2 = _mm_srlv_epi32(_mm_shuffle_epi32(x, 0xAA), _mm_setr_epi32(0, 4, 0, 0));
  const __m128i v13 = _mm_or_si128(_mm_and_si128(w2, _mm_set1_epi8(0x0f)), _mm_and_si128(_mm_srli_epi32(x, 2), _mm_set1_epi8(0x30)));
  return _mm_unpacklo_epi32(v02, v13);
}

template <bool Q5>
__attribute__((target("avx2,f16c"))) void matvecKMin(const uint8_t* w, int ngroups, int nb, const KAct& a, float* out) {
  constexpr int GB = Q5 ? 704 : 576, QS = Q5 ? 192 : 64;
  const int64_t cols = (int64_t)nb * 256;
  if (k1cap < cols) {
    delete[] k1q;
    k1cap = cols;
    k1q = new int8_t[k1cap];
  }
  for (int64_t i = 0; i < cols; i += 64) {
    const __m256i lo = _mm256_loadu_si256((const __m256i*)(a.q + i)), hi = _mm256_loadu_si256((const __m256i*)(a.q + i + 32));
    _mm256_storeu_si256((__m256i*)(k1q + i), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256((__m256i*)(k1q + i + 32), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
  const __m256i m4 = _mm256_set1_epi8(0x0f), m16 = _mm256_set1_epi8(0x10), nib = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
  for (int g = 0; g < ngroups; g++) {
    const uint8_t* wg = w + (int64_t)g * nb * GB;
    alignas(32) float acc[8][4];
    memset(acc, 0, sizeof acc);
    for (int b = 0; b < nb; b++) {
      const uint8_t* wb = wg + (int64_t)b * GB;
      const int8_t* x = k1q + (int64_t)b * 256;
      __m256i part[4];
      __m128i mins[4];
#pragma GCC unroll 4
      for (int r = 0; r < 4; r++) {
        const __m128i sm = q4kScales4(wb + 16 + 12 * r);
        mins[r] = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
        const __m256i sc8 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const uint8_t* qs = wb + QS + 128 * r;
        __m256i qhA = _mm256_setzero_si256(), qhB = _mm256_setzero_si256();
        if constexpr (Q5) {
          qhA = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(wb + 64 + 32 * r)));
          qhB = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(wb + 64 + 32 * r + 16)));
        }
        __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
          __m256i v1 = _mm256_and_si256(_mm256_srlv_epi32(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(qs + 32 * c))), nib), m4);
          __m256i v2 = _mm256_and_si256(_mm256_srlv_epi32(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(qs + 32 * c + 16))), nib), m4);
          if constexpr (Q5) {
            // bit 2c (low half) and 2c+1 (high half) of each qh byte to bit 4
            const __m256i left = _mm256_setr_epi32(4 - 2 * c, 4 - 2 * c, 4 - 2 * c, 4 - 2 * c, 3 - 2 * c, 3 - 2 * c, 3 - 2 * c, 3 - 2 * c);
            const __m256i right = _mm256_setr_epi32(2 * c - 4, 2 * c - 4, 2 * c - 4, 2 * c - 4, 2 * c - 3, 2 * c - 3, 2 * c - 3, 2 * c - 3);
            const __m256i hA = c < 2 ? _mm256_sllv_epi32(qhA, left) : _mm256_srlv_epi32(qhA, right);
            const __m256i hB = c < 2 ? _mm256_sllv_epi32(qhB, left) : _mm256_srlv_epi32(qhB, right);
            v1 = _mm256_or_si256(v1, _mm256_and_si256(hA, m16));
            v2 = _mm256_or_si256(v2, _mm256_and_si256(hB, m16));
          }
          const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(v1, _mm256_loadu_si256((const __m256i*)(x + 64 * c))),
                                             _mm256_maddubs_epi16(v2, _mm256_loadu_si256((const __m256i*)(x + 64 * c + 32))));
          s = _mm256_add_epi32(s, _mm256_madd_epi16(p, subBlockPairScales(sc8, 2 * c)));
        }
        part[r] = s;
      }
      // groupKMin<1, Q5>'s epilogue: S2 = Σ_j m_j·Σ_32 qa per row, then the reference's f32 steps
      const __m128i bs = _mm_loadu_si128((const __m128i*)(a.s32 + 8 * (int64_t)b));
      const __m128i s2 = _mm_hadd_epi32(_mm_hadd_epi32(_mm_madd_epi16(mins[0], bs), _mm_madd_epi16(mins[1], bs)),
                                        _mm_hadd_epi32(_mm_madd_epi16(mins[2], bs), _mm_madd_epi16(mins[3], bs)));
      const __m128 da = _mm_set1_ps(a.d[b]);
      const __m128 t1 = _mm_mul_ps(_mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)wb)), da), _mm_cvtepi32_ps(hsum4x8(part)));
      const __m128 t2 = _mm_mul_ps(_mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb + 8))), da), _mm_cvtepi32_ps(s2));
      float* l = acc[b & 7];
      _mm_store_ps(l, _mm_add_ps(_mm_load_ps(l), _mm_sub_ps(t1, t2)));
    }
    const __m128 s0 = _mm_add_ps(_mm_load_ps(acc[0]), _mm_load_ps(acc[4])), s1 = _mm_add_ps(_mm_load_ps(acc[1]), _mm_load_ps(acc[5]));
    const __m128 s2 = _mm_add_ps(_mm_load_ps(acc[2]), _mm_load_ps(acc[6])), s3 = _mm_add_ps(_mm_load_ps(acc[3]), _mm_load_ps(acc[7]));
    _mm_storeu_ps(out + 4 * (int64_t)g, _mm_add_ps(_mm_add_ps(s0, s2), _mm_add_ps(s1, s3)));
  }
}

// s[k] += Σ over the chunk's 16-value sub-blocks of scale · Σ q·qa, for T tokens: 32 unsigned values
// q against each token's int8 activations at byte `off` (exact integers: pairs ≤ 2·63·127).
template <int T>
__attribute__((target("avx2"), always_inline)) inline void subBlockPairDot(__m256i* s, __m256i q, __m256i scv, const KAct* a, int64_t off) {
#pragma GCC unroll 8
  for (int k = 0; k < T; k++) {
    const __m256i x = _mm256_loadu_si256((const __m256i*)(a[k].q + off));
    s[k] = _mm256_add_epi32(s[k], _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), scv));
    __asm__("" : "+x"(s[k]));
  }
}

template <int T>
__attribute__((target("avx2,f16c"))) void groupQ6_K(const uint8_t* wg, int nb, const KAct* a, float* const* out) {
  constexpr int P = (T + 1) / 2;  // token pairs for the epilogue, as groupQ4_K
  alignas(32) float acc[P][8][8];
  memset(acc, 0, sizeof acc);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  for (int b = 0; b < nb; b++) {
    const uint8_t* wb = wg + (int64_t)b * 840;
    const int64_t ab = (int64_t)b * 256;
    __m256i part[T][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const uint8_t* ql = wb + 128 * r;
      const uint8_t* qh = wb + 512 + 64 * r;
      const int8_t* sc = (const int8_t*)(wb + 768 + 16 * r);
      __m256i s[T];
      // -32·Σ_j sc_j·(Σ qa over sub-block j), all 16 sub-blocks at once
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)sc));
      // scales 0-7 (and 8-15) as i16 in both 128-bit halves, for the vpshufb broadcasts below
      const __m256i sc07 = _mm256_permute4x64_epi64(sc16, 0x44), sc815 = _mm256_permute4x64_epi64(sc16, 0xEE);
#pragma GCC unroll 8
      for (int k = 0; k < T; k++) {
        const __m256i bs = _mm256_loadu_si256((const __m256i*)(a[k].s16 + 16 * (int64_t)b));
        s[k] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5));
      }
#pragma GCC unroll 2
      for (int n = 0; n < 2; n++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i*)(ql + 64 * n));
        const __m256i l1 = _mm256_loadu_si256((const __m256i*)(ql + 64 * n + 32));
        const __m256i h = _mm256_loadu_si256((const __m256i*)(qh + 32 * n));
#pragma GCC unroll 4
        for (int kk = 0; kk < 4; kk++) {
          // element 128n + 32kk + l: a nibble of ql (low for kk < 2) and bits 2kk, 2kk+1 of qh[l];
          // made here, not before the loop, so one unpacked vector is live (no spills at T = 8).
          // Values 0-15 of qv are sub-block 8n + 2kk, values 16-31 sub-block 8n + 2kk + 1.
          const __m256i lq = kk & 1 ? l1 : l0;
          const __m256i lo = kk < 2 ? _mm256_and_si256(lq, m4) : _mm256_and_si256(_mm256_srli_epi16(lq, 4), m4);
          const __m256i hi = kk == 0 ? _mm256_slli_epi16(h, 4) : kk == 1 ? _mm256_slli_epi16(h, 2) : kk == 2 ? h : _mm256_srli_epi16(h, 2);
          const __m256i qv = _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
          subBlockPairDot<T>(s, qv, subBlockPairScales(n == 0 ? sc07 : sc815, 2 * kk), a, ab + 128 * n + 32 * kk);
        }
      }
#pragma GCC unroll 8
      for (int k = 0; k < T; k++) part[k][r] = s[k];
    }
    const __m128 dw1 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb + 832)));
    const __m256 dw = _mm256_set_m128(dw1, dw1);
    if constexpr (T == 1) {
      const __m128 term = _mm_mul_ps(_mm_mul_ps(dw1, _mm_set1_ps(a[0].d[b])), _mm_cvtepi32_ps(hsum4x8(part[0])));
      float* l = acc[0][b & 7];
      _mm_store_ps(l, _mm_add_ps(_mm_load_ps(l), term));
      continue;
    }
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      const int kA = 2 * p, kB = 2 * p + 1 < T ? 2 * p + 1 : 2 * p;
      const __m256i sum = hsumPair(part[kA], part[kB]);
      const __m256 da = _mm256_set_m128(_mm_set1_ps(a[kB].d[b]), _mm_set1_ps(a[kA].d[b]));
      const __m256 term = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(sum));
      float* l = acc[p][b & 7];
      _mm256_store_ps(l, _mm256_add_ps(_mm256_load_ps(l), term));
    }
  }
  for (int p = 0; p < P; p++) foldPair(acc[p], out[2 * p], 2 * p + 1 < T ? out[2 * p + 1] : nullptr);
}

// ---- Q3_K and Q2_K: 16-value sub-blocks as Q6_K, 2-bit values (element 128n + 32k + l in bits
// 2k, 2k+1 of qs[32n + l]); twins of kernels.wasm's matmul_q3_k / matmul_q2_k.
// Q3_K group block [4 x 32 hmask][4 x 64 qs][4 x 12 scale bytes][4 x f16 d] (440 bytes): the value
// is v - 4 with v = 2 bits | hmask bit 4n + k << 2 (0..7, so vpmaddubsw pairs ≤ 2·7·127), and
// Σ_j sc_j·Σ (v-4)·qa = Σ_j sc_j·Σ v·qa - 4·Σ_j sc_j·Σ_{16} qa, as Q6_K's -32.
// Q2_K group block [4 x 16 scale bytes][4 x 64 qs][4 x f16 d][4 x f16 dmin] (336 bytes): sc_j, m_j
// = low, high nibble of scale byte j; S1 = Σ_j sc_j·Σ q·qa, S2 = Σ_j m_j·Σ_{16} qa (per-16 sums).
// 16-bit shifts: a high byte's bits reach the low byte only at bits 8 - shift and up, above the
// 1 or 2 bits kept.

// The 16 signed Q3_K scales (sc - 32) as int8 lanes, from the 12 bytes at p (llama.cpp's kmask
// unpacking, four bytes per u32).
inline __m128i q3kScales(const uint8_t* p) {
  uint32_t w0, w1, w2;
  memcpy(&w0, p, 4);
  memcpy(&w1, p + 4, 4);
  memcpy(&w2, p + 8, 4);
  const uint32_t k1 = 0x03030303u, k2 = 0x0f0f0f0fu;
  const __m128i v = _mm_setr_epi32((int)((w0 & k2) | ((w2 & k1) << 4)), (int)((w1 & k2) | (((w2 >> 2) & k1) << 4)),
                                   (int)(((w0 >> 4) & k2) | (((w2 >> 4) & k1) << 4)), (int)(((w1 >> 4) & k2) | (((w2 >> 6) & k1) << 4)));
  return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

template <int T, bool Q2>
__attribute__((target("avx2,f16c"))) void groupK2(const uint8_t* wg, int nb, const KAct* a, float* const* out) {
  constexpr int P = (T + 1) / 2;  // token pairs for the epilogue, as groupQ4_K
  constexpr int GB = Q2 ? 336 : 440;
  alignas(32) float acc[P][8][8];
  memset(acc, 0, sizeof acc);
  const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
  for (int b = 0; b < nb; b++) {
    const uint8_t* wb = wg + (int64_t)b * GB;
    const int64_t ab = (int64_t)b * 256;
    __m256i part[T][4];
    __m256i part2[Q2 ? T : 1][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const uint8_t* qs = wb + (Q2 ? 64 : 128) + 64 * r;
      __m256i sc16, s[T];
      if constexpr (Q2) {
        const __m128i sb = _mm_loadu_si128((const __m128i*)(wb + 16 * r));
        sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sb, _mm_set1_epi8(0x0f)));
        const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(0x0f)));
#pragma GCC unroll 8
        for (int k = 0; k < T; k++) {
          part2[k][r] = _mm256_madd_epi16(mn16, _mm256_loadu_si256((const __m256i*)(a[k].s16 + 16 * (int64_t)b)));
          s[k] = _mm256_setzero_si256();
        }
      } else {
        sc16 = _mm256_cvtepi8_epi16(q3kScales(wb + 384 + 12 * r));
#pragma GCC unroll 8
        for (int k = 0; k < T; k++) {
          const __m256i bs = _mm256_loadu_si256((const __m256i*)(a[k].s16 + 16 * (int64_t)b));
          s[k] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 2));
        }
      }
      const __m256i sc07 = _mm256_permute4x64_epi64(sc16, 0x44), sc815 = _mm256_permute4x64_epi64(sc16, 0xEE);
      const __m256i hm = Q2 ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i*)(wb + 32 * r));
#pragma GCC unroll 2
      for (int n = 0; n < 2; n++) {
        const __m256i q = _mm256_loadu_si256((const __m256i*)(qs + 32 * n));
#pragma GCC unroll 4
        for (int kk = 0; kk < 4; kk++) {
          __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * kk), m3);
          if constexpr (!Q2) {
            // hmask bit s = 4n + kk straight to bit 2 (one shift, none for s = 2): 16-bit shifts by
            // at most 5 keep each byte's bit 2 from that byte's bit s
            const int sh = 4 * n + kk;
            const __m256i hb = sh > 2 ? _mm256_srli_epi16(hm, sh - 2) : sh < 2 ? _mm256_slli_epi16(hm, 2 - sh) : hm;
            v = _mm256_or_si256(v, _mm256_and_si256(hb, m4));
          }
          // values 0-15 are sub-block 8n + 2kk, 16-31 sub-block 8n + 2kk + 1 (as Q6_K)
          subBlockPairDot<T>(s, v, subBlockPairScales(n == 0 ? sc07 : sc815, 2 * kk), a, ab + 128 * n + 32 * kk);
        }
      }
#pragma GCC unroll 8
      for (int k = 0; k < T; k++) part[k][r] = s[k];
    }
    const __m128 dw1 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb + (Q2 ? 320 : 432))));
    const __m128 dmin1 = Q2 ? _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb + 328))) : dw1;
    if constexpr (T == 1) {  // one token: 128-bit row sums and term (as groupQ6_K's)
      const __m128 da = _mm_set1_ps(a[0].d[b]);
      __m128 term = _mm_mul_ps(_mm_mul_ps(dw1, da), _mm_cvtepi32_ps(hsum4x8(part[0])));
      if constexpr (Q2) term = _mm_sub_ps(term, _mm_mul_ps(_mm_mul_ps(dmin1, da), _mm_cvtepi32_ps(hsum4x8(part2[0]))));
      float* l = acc[0][b & 7];
      _mm_store_ps(l, _mm_add_ps(_mm_load_ps(l), term));
      continue;
    }
    const __m256 dw = _mm256_set_m128(dw1, dw1), dmin = _mm256_set_m128(dmin1, dmin1);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      const int kA = 2 * p, kB = 2 * p + 1 < T ? 2 * p + 1 : 2 * p;
      const __m256 da = _mm256_set_m128(_mm_set1_ps(a[kB].d[b]), _mm_set1_ps(a[kA].d[b]));
      __m256 term = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(hsumPair(part[kA], part[kB])));
      if constexpr (Q2) term = _mm256_sub_ps(term, _mm256_mul_ps(_mm256_mul_ps(dmin, da), _mm256_cvtepi32_ps(hsumPair(part2[kA], part2[kB]))));
      float* l = acc[p][b & 7];
      _mm256_store_ps(l, _mm256_add_ps(_mm256_load_ps(l), term));
    }
  }
  for (int p = 0; p < P; p++) foldPair(acc[p], out[2 * p], 2 * p + 1 < T ? out[2 * p + 1] : nullptr);
}

using KGroupFn = void (*)(const uint8_t*, int, const KAct*, float* const*);
const KGroupFn GROUP_Q4_K[KTMAX + 1] = {nullptr, groupKMin<1, false>, groupKMin<2, false>, groupKMin<3, false>,
                                        groupKMin<4, false>, groupKMin<5, false>, groupKMin<6, false>,
                                        groupKMin<7, false>, groupKMin<8, false>};
const KGroupFn GROUP_Q5_K[KTMAX + 1] = {nullptr, groupKMin<1, true>, groupKMin<2, true>, groupKMin<3, true>,
                                        groupKMin<4, true>, groupKMin<5, true>, groupKMin<6, true>,
                                        groupKMin<7, true>, groupKMin<8, true>};
const KGroupFn GROUP_Q6_K[KTMAX + 1] = {nullptr, groupQ6_K<1>, groupQ6_K<2>, groupQ6_K<3>, groupQ6_K<4>,
                                        groupQ6_K<5>, groupQ6_K<6>, groupQ6_K<7>, groupQ6_K<8>};

const KGroupFn GROUP_Q2_K[KTMAX + 1] = {nullptr, groupK2<1, true>, groupK2<2, true>, groupK2<3, true>, groupK2<4, true>,
                                        groupK2<5, true>, groupK2<6, true>, groupK2<7, true>, groupK2<8, true>};
const KGroupFn GROUP_Q3_K[KTMAX + 1] = {nullptr, groupK2<1, false>, groupK2<2, false>, groupK2<3, false>, groupK2<4, false>,
                                        groupK2<5, false>, groupK2<6, false>, groupK2<7, false>, groupK2<8, false>};

int64_t actStrideK(int64_t cols) {
  const int64_t nb = cols / 256;
  return (cols * 2 + nb * 4 + (cols / 32) * 2 + 15) & ~int64_t(15);
}

// A type's one-token kernel (matvecKMin), where it has one: the whole matrix, out[4·ngroups].
using KOneFn = void (*)(const uint8_t* w, int ngroups, int nb, const KAct& a, float* out);

void matmulK(const KGroupFn* group, KOneFn one, int gbb, uint8_t* mem, int64_t w, int ngroups, int nb, int64_t act, int ntok,
             int64_t out, int64_t outStride) {
  const int64_t cols = (int64_t)nb * 256;
  const int64_t stride = actStrideK(cols);
  narrowTokens(mem + act, stride, cols, ntok);
  if (ntok == 1 && one) {
    const uint8_t* rec = mem + act;
    one(mem + w, ngroups, nb, {kq8, (const float*)(rec + cols * 2), (const int16_t*)(rec + cols * 2 + nb * 4), ks16}, (float*)(mem + out));
    return;
  }
  const int64_t groupBytes = (int64_t)nb * gbb;
  // Tiles of ~256 KiB of int8 activations (cols bytes a token).
  KAct a[KTMAX];
  float* o[KTMAX];
  forPasses<KTMAX>(ntok, ngroups, cols, [&](int g, int t, int n) {
    for (int k = 0; k < n; k++) {
      const uint8_t* rec = mem + act + (int64_t)(t + k) * stride;
      a[k] = {kq8 + (t + k) * cols, (const float*)(rec + cols * 2), (const int16_t*)(rec + cols * 2 + nb * 4),
              ks16 + (t + k) * (cols / 16)};
      o[k] = (float*)(mem + out + 4 * ((int64_t)(t + k) * outStride + 4 * (int64_t)g));
    }
    group[n](mem + w + g * groupBytes, nb, a, o);
  });
}

// ---- Q4_1, Q5_0, Q5_1 (32 values): twins of build/kernels.wasm's matmul_q4_1 / _q5_0 / _q5_1 ----
// Same packed group blocks as the WASM kernels: [4 x f16 d][4 x f16 m (Q4_1, Q5_1)][4 x u32 qh
// (Q5_0, Q5_1)][4 x 16 nibble bytes] (80, 88, 96 bytes); q_i = low nibble of byte i for i < 16,
// high nibble of byte i-16 otherwise, plus 16 when bit i of the row's qh is set. Same activation
// records as Q8_0's (block 32): i16 q[cols], f32 d[nb], i16 Σ q per block.
//
// Why the bits are the same: the block's integer sum S = Σ_i q_i·qa_i (Q5_0: Σ (q_i-16)·qa_i =
// Σ q_i·qa_i - 16·Σ qa_i, the record's block sum) is exact in int32, so any order of the integer
// steps gives the reference's integer; the f32 steps are the reference's, one instruction each:
// (d ⊗ d_a) ⊗ i2f(S), and for Q4_1/Q5_1 ⊕ (m ⊗ d_a) ⊗ i2f(Σ qa); lane[b mod 8] ⊕= term; SUM8's fold.
//
// Integer part: the activations narrowed to int8 (as the K-quants'), vpmaddubsw of the 32
// unsigned 4/5-bit weights of a row by the block's 32 int8 activations (pair sums ≤ 2·31·127), two
// vphaddw rounds putting the 4 rows side by side (each i16 then a sum of 8 products, ≤ 8·31·127 =
// 31,496 < 2^15: no wrap), one vpmaddwd by 1 to i32: [r0 r1 r2 r3] per 128-bit half.
enum Type32 { Q4_1 = 0, Q5_0 = 1, Q5_1 = 2 };

// The 32 weights q (bytes 0-31 = values 0-31) of row r of a block: the 16 nibble bytes in both
// 128-bit halves (a broadcast load), the high half's shifted down 4 (vpsrlvd), masked; with the
// 5-bit types, qh4 = the block's 4 rows' qh (16 bytes) in both halves: byte j <- byte j/8 of row
// r's qh (vpshufb), then 0x10 where its bit j mod 8 is set.
template <int TY>
__attribute__((target("avx2"))) inline __m256i row32(const uint8_t* qs, __m256i qh4, int r) {
  const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)qs));
  __m256i q = _mm256_and_si256(_mm256_srlv_epi32(raw, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0f));
  if constexpr (TY != Q4_1) {
    const char b0 = (char)(4 * r), b1 = (char)(4 * r + 1), b2 = (char)(4 * r + 2), b3 = (char)(4 * r + 3);
    const __m256i spread = _mm256_shuffle_epi8(qh4, _mm256_setr_epi8(b0, b0, b0, b0, b0, b0, b0, b0, b1, b1, b1, b1, b1, b1, b1, b1, b2, b2,
                                                                     b2, b2, b2, b2, b2, b2, b3, b3, b3, b3, b3, b3, b3, b3));
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    q = _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
  }
  return q;
}

// The 4 rows' weights of the block at wb.
template <int TY>
__attribute__((target("avx2"))) inline void rows32(const uint8_t* wb, __m256i* w) {
  constexpr int QS = TY == Q4_1 ? 16 : TY == Q5_0 ? 24 : 32, QH = TY == Q5_0 ? 8 : 16;
  const __m256i qh4 = TY == Q4_1 ? _mm256_setzero_si256() : _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(wb + QH)));
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) w[r] = row32<TY>(wb + QS + 16 * r, qh4, r);
}

// The 4 rows' sums Σ q·x of one block for one token, as [r0 r1 r2 r3 | r0 r1 r2 r3] i32 partials
// (low half: values 0-15, high half: values 16-31).
__attribute__((target("avx2"))) inline __m256i dot4rows(const __m256i* w, __m256i x) {
  const __m256i h01 = _mm256_hadd_epi16(_mm256_maddubs_epi16(w[0], x), _mm256_maddubs_epi16(w[1], x));
  const __m256i h23 = _mm256_hadd_epi16(_mm256_maddubs_epi16(w[2], x), _mm256_maddubs_epi16(w[3], x));
  return _mm256_madd_epi16(_mm256_hadd_epi16(h01, h23), _mm256_set1_epi16(1));
}

// One token: two blocks at a time, block b (even) in the low 128-bit half and b+1 in the high one,
// so the f32 epilogue runs 256 bits wide. acc[j] = [lane 2j's 4 rows | lane 2j+1's], so block b's
// term goes to lane b mod 8 as ever; a last odd block (b even) to the low half alone.
template <int TY>
__attribute__((target("avx2,f16c"))) void group32x1(const uint8_t* wg, int nb, const int8_t* q, const uint8_t* rec, int64_t dOff,
                                                    int64_t sOff, float* out) {
  constexpr int GB = TY == Q4_1 ? 80 : TY == Q5_0 ? 88 : 96;
  alignas(32) float acc[4][8];
  memset(acc, 0, sizeof acc);
  const int16_t* bsum = (const int16_t*)(rec + sOff);
  const float* dact = (const float*)(rec + dOff);
  int b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t* wb0 = wg + (int64_t)b * GB;
    const uint8_t* wb1 = wb0 + GB;
    __m256i w0[4], w1[4];
    rows32<TY>(wb0, w0);
    rows32<TY>(wb1, w1);
    const __m256i s0 = dot4rows(w0, _mm256_loadu_si256((const __m256i*)(q + 32 * b)));
    const __m256i s1 = dot4rows(w1, _mm256_loadu_si256((const __m256i*)(q + 32 * b + 32)));
    __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(s0, s1, 0x20), _mm256_permute2x128_si256(s0, s1, 0x31));
    const __m256i bs = _mm256_set_m128i(_mm_set1_epi32(bsum[b + 1]), _mm_set1_epi32(bsum[b]));
    if constexpr (TY == Q5_0) s = _mm256_sub_epi32(s, _mm256_slli_epi32(bs, 4));
    const __m256 da = _mm256_set_m128(_mm_set1_ps(dact[b + 1]), _mm_set1_ps(dact[b]));
    const __m256 dw = _mm256_set_m128(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)wb1)), _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)wb0)));
    __m256 term = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(s));
    if constexpr (TY != Q5_0) {
      const __m256 mw = _mm256_set_m128(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb1 + 8))),
                                        _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb0 + 8))));
      term = _mm256_add_ps(term, _mm256_mul_ps(_mm256_mul_ps(mw, da), _mm256_cvtepi32_ps(bs)));
    }
    float* l = acc[(b & 7) >> 1];
    _mm256_store_ps(l, _mm256_add_ps(_mm256_load_ps(l), term));
  }
  if (b < nb) {
    const uint8_t* wb = wg + (int64_t)b * GB;
    __m256i w[4];
    rows32<TY>(wb, w);
    const __m256i s2 = dot4rows(w, _mm256_loadu_si256((const __m256i*)(q + 32 * b)));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s2), _mm256_extracti128_si256(s2, 1));
    const __m128i bs = _mm_set1_epi32(bsum[b]);
    if constexpr (TY == Q5_0) s = _mm_sub_epi32(s, _mm_slli_epi32(bs, 4));
    const __m128 da = _mm_set1_ps(dact[b]);
    __m128 term = _mm_mul_ps(_mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)wb)), da), _mm_cvtepi32_ps(s));
    if constexpr (TY != Q5_0)
      term = _mm_add_ps(term, _mm_mul_ps(_mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb + 8))), da), _mm_cvtepi32_ps(bs)));
    float* l = acc[(b & 7) >> 1];
    _mm_store_ps(l, _mm_add_ps(_mm_load_ps(l), term));
  }
  foldLanePairs(acc, out);
}

template <int T, int TY>
__attribute__((target("avx2,f16c"))) void group32(const uint8_t* wg, int nb, const int8_t* const* q, const uint8_t* const* rec,
                                                  int64_t dOff, int64_t sOff, float* const* out) {
  if constexpr (T == 1) {
    group32x1<TY>(wg, nb, q[0], rec[0], dOff, sOff, out[0]);
    return;
  }
  constexpr int P = (T + 1) / 2;
  constexpr int GB = TY == Q4_1 ? 80 : TY == Q5_0 ? 88 : 96;
  alignas(32) float acc[P][8][8];
  memset(acc, 0, sizeof acc);
  for (int b = 0; b < nb; b++) {
    const uint8_t* wb = wg + (int64_t)b * GB;
    __m256i w[4];
    rows32<TY>(wb, w);
    const __m128 d1 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)wb));
    const __m256 dw = _mm256_set_m128(d1, d1);
    __m256 mw = dw;
    if constexpr (TY != Q5_0) {
      const __m128 m1 = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i*)(wb + 8)));
      mw = _mm256_set_m128(m1, m1);
    }
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
      const int kA = 2 * p, kB = 2 * p + 1 < T ? 2 * p + 1 : 2 * p;
      const __m256i sA = dot4rows(w, _mm256_loadu_si256((const __m256i*)(q[kA] + 32 * b)));
      const __m256i sB = kB == kA ? sA : dot4rows(w, _mm256_loadu_si256((const __m256i*)(q[kB] + 32 * b)));
      // the halves of each token added: [A r0..r3 | B r0..r3]
      __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(sA, sB, 0x20), _mm256_permute2x128_si256(sA, sB, 0x31));
      int16_t bsA, bsB;
      memcpy(&bsA, rec[kA] + sOff + 2 * b, 2);
      memcpy(&bsB, rec[kB] + sOff + 2 * b, 2);
      const __m256i bs = _mm256_set_m128i(_mm_set1_epi32(bsB), _mm_set1_epi32(bsA));
      if constexpr (TY == Q5_0) s = _mm256_sub_epi32(s, _mm256_slli_epi32(bs, 4));
      float daA, daB;
      memcpy(&daA, rec[kA] + dOff + 4 * b, 4);
      memcpy(&daB, rec[kB] + dOff + 4 * b, 4);
      const __m256 da = _mm256_set_m128(_mm_set1_ps(daB), _mm_set1_ps(daA));
      __m256 term = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(s));
      if constexpr (TY != Q5_0) term = _mm256_add_ps(term, _mm256_mul_ps(_mm256_mul_ps(mw, da), _mm256_cvtepi32_ps(bs)));
      float* l = acc[p][b & 7];
      _mm256_store_ps(l, _mm256_add_ps(_mm256_load_ps(l), term));
    }
  }
  for (int p = 0; p < P; p++) foldPair(acc[p], out[2 * p], 2 * p + 1 < T ? out[2 * p + 1] : nullptr);
}

using Group32Fn = void (*)(const uint8_t*, int, const int8_t* const*, const uint8_t* const*, int64_t, int64_t, float* const*);
template <int TY>
constexpr Group32Fn GROUP32[KTMAX + 1] = {nullptr,           group32<1, TY>, group32<2, TY>, group32<3, TY>, group32<4, TY>,
                                          group32<5, TY>,    group32<6, TY>, group32<7, TY>, group32<8, TY>};

template <int TY>
void matmul32(uint8_t* mem, int64_t w, int ngroups, int nb, int64_t act, int ntok, int64_t out, int64_t outStride) {
  constexpr int GB = TY == Q4_1 ? 80 : TY == Q5_0 ? 88 : 96;
  const int64_t cols = (int64_t)nb * 32;
  const int64_t stride = actStride(cols);
  narrowTokens(mem + act, stride, cols, ntok);
  const int64_t groupBytes = (int64_t)nb * GB;
  const int8_t* q[KTMAX];
  const uint8_t* rec[KTMAX];
  float* o[KTMAX];
  forPasses<KTMAX>(ntok, ngroups, cols, [&](int g, int t, int n) {
    for (int k = 0; k < n; k++) {
      q[k] = kq8 + (int64_t)(t + k) * cols;
      rec[k] = mem + act + (int64_t)(t + k) * stride;
      o[k] = (float*)(mem + out + 4 * ((int64_t)(t + k) * outStride + 4 * (int64_t)g));
    }
    GROUP32<TY>[n](mem + w + g * groupBytes, nb, q, rec, cols * 2, cols * 2 + nb * 4, o);
  });
}

using tn::getInt;

// The matmul kernels the addon exports, all with the WASM exports' 7 arguments after `mem`.
struct Kernel {
  const char* name;
  int gbb;  // bytes of one group block (4 rows)
  int bs;   // activation block size (values per weight block)
  int64_t (*stride)(int64_t cols);
  void (*run)(uint8_t* mem, int64_t w, int ngroups, int nb, int64_t act, int ntok, int64_t out, int64_t outStride);
};
const Kernel KERNELS[9] = {
    {"matmulQ8_0", GBB, 32, actStride, matmulQ8_0},
    {"matmulQ4_K", 576, 256, actStrideK,
     [](uint8_t* m, int64_t w, int g, int nb, int64_t a, int t, int64_t o, int64_t os) { matmulK(GROUP_Q4_K, matvecKMin<false>, 576, m, w, g, nb, a, t, o, os); }},
    {"matmulQ5_K", 704, 256, actStrideK,
     [](uint8_t* m, int64_t w, int g, int nb, int64_t a, int t, int64_t o, int64_t os) { matmulK(GROUP_Q5_K, matvecKMin<true>, 704, m, w, g, nb, a, t, o, os); }},
    {"matmulQ2_K", 336, 256, actStrideK,
     [](uint8_t* m, int64_t w, int g, int nb, int64_t a, int t, int64_t o, int64_t os) { matmulK(GROUP_Q2_K, nullptr, 336, m, w, g, nb, a, t, o, os); }},
    {"matmulQ3_K", 440, 256, actStrideK,
     [](uint8_t* m, int64_t w, int g, int nb, int64_t a, int t, int64_t o, int64_t os) { matmulK(GROUP_Q3_K, nullptr, 440, m, w, g, nb, a, t, o, os); }},
    {"matmulQ6_K", 840, 256, actStrideK,
     [](uint8_t* m, int64_t w, int g, int nb, int64_t a, int t, int64_t o, int64_t os) { matmulK(GROUP_Q6_K, nullptr, 840, m, w, g, nb, a, t, o, os); }},
    {"matmulQ4_1", 80, 32, actStride, matmul32<Q4_1>},
    {"matmulQ5_0", 88, 32, actStride, matmul32<Q5_0>},
    {"matmulQ5_1", 96, 32, actStride, matmul32<Q5_1>},
};

napi_value Matmul(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  void* data0;
  napi_get_cb_info(env, info, &argc, argv, nullptr, &data0);
  const Kernel& K = *(const Kernel*)data0;
  char msg[128];
  if (argc != 8) {
    snprintf(msg, sizeof msg, "%s takes 8 arguments (mem, w, ngroups, nb, act, ntok, out, outStride)", K.name);
    napi_throw_type_error(env, nullptr, msg);
    return nullptr;
  }
  napi_typedarray_type type;
  size_t len;
  void* data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[0], &type, &len, &data, &ab, &off) != napi_ok || type != napi_uint8_array) {
    snprintf(msg, sizeof msg, "%s: mem must be a Uint8Array", K.name);
    napi_throw_type_error(env, nullptr, msg);
    return nullptr;
  }
  static const char* const names[8] = {"mem", "w", "ngroups", "nb", "act", "ntok", "out", "outStride"};
  int64_t v[8];
  for (int i = 1; i < 8; i++) {
    if (!getInt(env, argv[i], &v[i])) {
      snprintf(msg, sizeof msg, "%s: %s must be a non-negative integer", K.name, names[i]);
      napi_throw_range_error(env, nullptr, msg);
      return nullptr;
    }
  }
  const int64_t w = v[1], ngroups = v[2], nb = v[3], act = v[4], ntok = v[5], out = v[6], outStride = v[7];
  if (ngroups > (1 << 28) || nb > (1 << 24) / (K.bs / 32) || ntok > (1 << 24) || outStride < 4 * ngroups || outStride > (1 << 28)) {
    snprintf(msg, sizeof msg, "%s: shape out of range (ngroups, nb, ntok, outStride)", K.name);
    napi_throw_range_error(env, nullptr, msg);
    return nullptr;
  }
  if (ngroups == 0 || nb == 0 || ntok == 0) return nullptr;
  const int64_t L = (int64_t)len;
  const bool fits = w + ngroups * nb * K.gbb <= L && act + ntok * K.stride(nb * K.bs) <= L &&
                    out + 4 * ((ntok - 1) * outStride + 4 * ngroups) <= L;
  if (!fits) {
    snprintf(msg, sizeof msg, "%s: weights, activations or output reach past the end of mem", K.name);
    napi_throw_range_error(env, nullptr, msg);
    return nullptr;
  }
  K.run((uint8_t*)data, w, (int)ngroups, (int)nb, act, (int)ntok, out, outStride);
  return nullptr;
}

// ---- vector roots (docs/MACHINE.md "Vector roots", the twin of src/trace/vector.ts vectorRoot):
// chunks of 1,024 bytes, leaf = SHA-256(0x00 || chunk), node = SHA-256(0x01 || l || r), padded to
// a power of two with zero leaves. One native call per vector instead of one per chunk and node:
// the trace hashes every layer's residual, K and V and every sampled position's logits.
uint8_t zeroRoots[40][32];  // zeroRoots[k]: the root of 2^k ZERO leaves
int zeroRootsReady = 0;

// SHA-256(tag || a[0 .. na) || b[0 .. nb)).
void sha256Tagged(uint8_t tag, const uint8_t* a, size_t na, const uint8_t* b, size_t nb, uint8_t* out) {
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, &tag, 1);
  SHA256_Update(&c, a, na);
  if (nb) SHA256_Update(&c, b, nb);
  SHA256_Final(out, &c);
}

void vectorRoot(const uint8_t* p, size_t n, uint8_t* out) {
  static const size_t CH = 1024;
  if (n == 0) {
    memset(out, 0, 32);
    return;
  }
  const size_t chunks = (n + CH - 1) / CH;
  if (chunks == 1) {
    sha256Tagged(0, p, n, nullptr, 0, out);
    return;
  }
  if (!zeroRootsReady) {
    memset(zeroRoots[0], 0, 32);
    for (int k = 1; k < 40; k++) sha256Tagged(1, zeroRoots[k - 1], 32, zeroRoots[k - 1], 32, zeroRoots[k]);
    zeroRootsReady = 1;
  }
  static thread_local uint8_t* level = nullptr;
  static thread_local size_t levelCap = 0;
  if (levelCap < chunks + 1) {
    delete[] level;
    levelCap = chunks + 1;
    level = new uint8_t[32 * levelCap];
  }
  for (size_t c = 0; c < chunks; c++) sha256Tagged(0, p + c * CH, c + 1 < chunks ? CH : n - c * CH, nullptr, 0, level + 32 * c);
  size_t live = chunks;
  for (int k = 0; live > 1; k++) {
    if (live & 1) memcpy(level + 32 * live, zeroRoots[k], 32);
    const size_t pairs = (live + 1) / 2;
    uint8_t node[64];
    for (size_t j = 0; j < pairs; j++) {
      memcpy(node, level + 64 * j, 64);  // the output overwrites pair j/2's slot, so read first
      sha256Tagged(1, node, 64, nullptr, 0, level + 32 * j);
    }
    live = pairs;
  }
  memcpy(out, level, 32);
}

// vectorRoot(bytes: Uint8Array, out: Uint8Array, at: number): writes the root to out[at .. at+32).
napi_value VectorRoot(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  napi_typedarray_type t0, t1;
  size_t n0, n1, off;
  void *d0, *d1;
  napi_value ab;
  int64_t at;
  if (argc != 3 || napi_get_typedarray_info(env, argv[0], &t0, &n0, &d0, &ab, &off) != napi_ok || t0 != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[1], &t1, &n1, &d1, &ab, &off) != napi_ok || t1 != napi_uint8_array || !getInt(env, argv[2], &at) ||
      at + 32 > (int64_t)n1) {
    napi_throw_type_error(env, nullptr, "vectorRoot takes (bytes: Uint8Array, out: Uint8Array, at: integer with at + 32 <= out.length)");
    return nullptr;
  }
  vectorRoot((const uint8_t*)d0, n0, (uint8_t*)d1 + at);
  return nullptr;
}

using tn::getBytes;

// layerLeaf(residual, k, v: Uint8Array, pos, layer: number, out: Uint8Array): the trace's layer
// leaf hash (docs/TRACE.md, format 2), leafHash(u32 pos || u32 layer || vecRoot(residual) ||
// vecRoot(k) || vecRoot(v)), written to out[0 .. 32): one call per leaf.
napi_value LayerLeaf(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t *r, *k, *v, *o;
  size_t nr, nk, nv, no;
  int64_t pos, layer;
  if (argc != 6 || !getBytes(env, argv[0], &r, &nr) || !getBytes(env, argv[1], &k, &nk) || !getBytes(env, argv[2], &v, &nv) ||
      !getInt(env, argv[3], &pos) || !getInt(env, argv[4], &layer) || pos > 0xffffffffLL || layer > 0xffffffffLL ||
      !getBytes(env, argv[5], &o, &no) || no < 32) {
    napi_throw_type_error(env, nullptr, "layerLeaf takes (residual, k, v: Uint8Array, pos, layer: u32, out: Uint8Array of 32+ bytes)");
    return nullptr;
  }
  uint8_t data[8 + 96];
  for (int i = 0; i < 4; i++) {
    data[i] = (uint8_t)(pos >> (8 * i));
    data[4 + i] = (uint8_t)(layer >> (8 * i));
  }
  vectorRoot(r, nr, data + 8);
  vectorRoot(k, nk, data + 40);
  vectorRoot(v, nv, data + 72);
  sha256Tagged(0, data, sizeof data, nullptr, 0, (uint8_t*)o);
  return nullptr;
}

// ---- Huge pages for the weights (docs/KERNELS.md "Weights on huge pages"). A one-token matvec
// streams every weight byte once from DRAM; on 4 KiB pages each page is a TLB miss and a page walk
// beside the stream, and the core keeps fewer line fills in flight (measured +25-50% on transparent
// huge pages, which are in `madvise` mode on this machine's kernel). The backend advises each
// newly grown range of a thread's WebAssembly.Memory before it writes weights there; a shared
// memory never moves (V8 reserves its maximum up front), so the advice stays with the range.
constexpr uint64_t HUGE_PAGE = 2u << 20;

// hugePageOffset(mem: Uint8Array): the offset in mem of its first 2 MiB-aligned byte.
napi_value HugePageOffset(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t* d;
  size_t n;
  if (argc != 1 || !getBytes(env, argv[0], &d, &n)) {
    napi_throw_type_error(env, nullptr, "hugePageOffset takes (mem: Uint8Array)");
    return nullptr;
  }
  napi_value r;
  napi_create_double(env, (double)((HUGE_PAGE - (uintptr_t)d % HUGE_PAGE) % HUGE_PAGE), &r);
  return r;
}

// adviseHugePages(mem: Uint8Array, from, to): madvise(MADV_HUGEPAGE) over the whole 4 KiB pages
// of mem[from .. to) (a wasm memory's pages are 64 KiB-aligned, so a grown range is whole pages);
// returns the bytes advised, 0 where the kernel has no transparent huge pages (not Linux, THP
// compiled out, or the call refused: the advice is only a hint, and changes no byte).
napi_value AdviseHugePages(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t* d;
  size_t n;
  int64_t from, to;
  if (argc != 3 || !getBytes(env, argv[0], &d, &n) || !getInt(env, argv[1], &from) || !getInt(env, argv[2], &to) || from > to ||
      to > (int64_t)n) {
    napi_throw_range_error(env, nullptr, "adviseHugePages takes (mem: Uint8Array, from, to) with 0 <= from <= to <= mem.length");
    return nullptr;
  }
  double advised = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t a = ((uintptr_t)d + from + 4095) & ~(uintptr_t)4095, b = ((uintptr_t)d + to) & ~(uintptr_t)4095;
  if (b > a && madvise((void*)a, b - a, MADV_HUGEPAGE) == 0) advised = (double)(b - a);
#endif
  napi_value r;
  napi_create_double(env, advised, &r);
  return r;
}

}  // namespace

NAPI_MODULE_INIT() {
  if (!tn::cpuOk(true)) {
    napi_throw_error(env, nullptr, "tessera_q8: this CPU lacks AVX2/F16C; the WASM kernels stay the path");
    return nullptr;
  }
  napi_value f;
  for (const Kernel& k : KERNELS) {
    napi_create_function(env, k.name, NAPI_AUTO_LENGTH, Matmul, (void*)&k, &f);
    napi_set_named_property(env, exports, k.name, f);
  }
  napi_create_function(env, "vectorRoot", NAPI_AUTO_LENGTH, VectorRoot, nullptr, &f);
  napi_set_named_property(env, exports, "vectorRoot", f);
  napi_create_function(env, "layerLeaf", NAPI_AUTO_LENGTH, LayerLeaf, nullptr, &f);
  napi_set_named_property(env, exports, "layerLeaf", f);
  napi_create_function(env, "hugePageOffset", NAPI_AUTO_LENGTH, HugePageOffset, nullptr, &f);
  napi_set_named_property(env, exports, "hugePageOffset", f);
  napi_create_function(env, "adviseHugePages", NAPI_AUTO_LENGTH, AdviseHugePages, nullptr, &f);
  napi_set_named_property(env, exports, "adviseHugePages", f);
  return exports;
}
