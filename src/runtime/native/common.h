// What the native addons (q8.cc, attention.cc, train.cc, secp.cc) share: the load-time CPU check,
// the N-API integer and byte-array argument readers, and the one canonical EXP twin (canonical.ts `exp`, scalar
// and on 8 AVX2 lanes, bit-identical to it and to layer.ts `expf4`).
//
// Everything here is `inline` in namespace `tn` (each addon is one translation unit, so nothing
// is defined twice). The AVX2 code is enabled by target attributes only: the load-time code stays
// plain x86-64, so on a CPU without AVX2 `cpuOk` says so and `require` fails with one clear line.
#pragma once
#include <node_api.h>
#include <immintrin.h>
#include <cpuid.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

namespace tn {

// Whether this CPU and OS run the AVX2 kernels (and, with f16c, the F16C conversions): AVX and
// OSXSAVE in CPUID.1, the OS saving xmm and ymm state (XCR0 bits 1 and 2), AVX2 in CPUID.7.
inline bool cpuOk(bool f16c) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), hasF16c = c & (1u << 29);
  if (!(osxsave && avx) || (f16c && !hasF16c)) return false;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 6) != 6) return false;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  return b & (1u << 5);
}

// A JS number that is a non-negative integer no larger than 2^53 - 1; false otherwise.
inline bool getInt(napi_env env, napi_value v, int64_t* out) {
  double x;
  if (napi_get_value_double(env, v, &x) != napi_ok) return false;
  if (!(x >= 0 && x <= 9007199254740991.0) || x != (double)(int64_t)x) return false;
  *out = (int64_t)x;
  return true;
}

// A Uint8Array argument's bytes and length (false for anything else).
inline bool getBytes(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type t;
  void* d;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, len, &d, &ab, &off) != napi_ok || t != napi_uint8_array) return false;
  *data = (uint8_t*)d;
  return true;
}
inline bool getBytes(napi_env env, napi_value v, const uint8_t** data, size_t* len) {
  uint8_t* d;
  if (!getBytes(env, v, &d, len)) return false;
  *data = d;
  return true;
}

inline float bitsF(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

// 2^k from its bits, -126 <= k <= 127.
inline float pow2(int k) {
  return bitsF((uint32_t)(k + 127) << 23);
}

// canonical.ts `exp` constants (their binary32 values: the bits are those of the TS `f(...)`).
const float LOG2E = bitsF(0x3fb8aa3b), LN2_HI = bitsF(0x3f318000), LN2_LO = bitsF(0xb95e8083),
            EXP_MAX = bitsF(0x42b17218), EXP_MIN = bitsF(0xc2aeac4f), E0 = bitsF(0x39506967), E1 = bitsF(0x3ab743ce),
            E2 = bitsF(0x3c088908), E3 = bitsF(0x3d2aa9c1), E4 = bitsF(0x3e2aaaaa), E5 = bitsF(0x3f000000);

// EXP, one value: canonical.ts `exp` line by line (NaN in gives the quiet NaN, as the TS twin
// stores it).
inline float expScalar(float x) {
  if (x != x) return NAN;
  if (x >= EXP_MAX) return INFINITY;
  if (x <= EXP_MIN) return 0.0f;
  const float kf = floorf(x * LOG2E + 0.5f);
  const int k = (int)kf;
  const float r = (x - kf * LN2_HI) - kf * LN2_LO;
  float p = E0 * r + E1;
  p = p * r + E2;
  p = p * r + E3;
  p = p * r + E4;
  p = p * r + E5;
  p = (p * (r * r) + r) + 1.0f;
  return k <= 127 ? p * pow2(k) : (p * pow2(127)) * 2.0f;
}

// EXP of 8 lanes, each lane exactly expScalar: the general path on every lane (floor is vroundps,
// exact; 2^k from its bits, k = 128 as 2^127 ⊗ 2), then the clamp and NaN results selected
// (NaN over x >= EXP_MAX over x <= EXP_MIN, the branches' order).
__attribute__((target("avx2"))) inline __m256 exp8(__m256 x) {
  const __m256 kf = _mm256_round_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _mm256_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m256i k = _mm256_cvttps_epi32(kf);
  const __m256 r = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(kf, _mm256_set1_ps(LN2_HI))), _mm256_mul_ps(kf, _mm256_set1_ps(LN2_LO)));
  __m256 p = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(E0), r), _mm256_set1_ps(E1));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(E2));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(E3));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(E4));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(E5));
  p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f));
  const __m256i big = _mm256_cmpgt_epi32(k, _mm256_set1_epi32(127));
  const __m256i k1 = _mm256_blendv_epi8(k, _mm256_set1_epi32(127), big);
  const __m256 two = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, _mm256_set1_epi32(127)), 23));
  __m256 y = _mm256_mul_ps(p, two);
  y = _mm256_blendv_ps(y, _mm256_mul_ps(y, _mm256_set1_ps(2.0f)), _mm256_castsi256_ps(big));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(EXP_MIN), _CMP_LE_OQ));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(EXP_MAX), _CMP_GE_OQ));
  return _mm256_blendv_ps(y, _mm256_set1_ps(NAN), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

}  // namespace tn
