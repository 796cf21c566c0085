// Native secp256k1 for the job path's signatures (src/runtime/native/secp.ts, installed into
// src/chain/evm/secp.ts): sign, recover and check against a known key with node's own OpenSSL
// (its EC and BN symbols are exported to addons, as the SHA-256 ones q8.cc uses), answer for answer
// and byte for byte the same as @noble/curves / viem, its plain twins (secp.test.ts):
//
// - sign(hash, key, out65): ECDSA with RFC 6979 deterministic k (HMAC-SHA256, no extra entropy,
//   exactly noble's `prepSig`: seed int2octets(d) ‖ int2octets(h mod n), candidates retried while
//   k ∉ [1, n), r = 0 or s = 0) and low-s (s > n/2 becomes n - s, the y-parity flips), written as
//   r ‖ s ‖ v with v = 27 + parity, viem's `sign` serialised. Secret-dependent work: kG by OpenSSL's
//   Montgomery ladder (EC_POINT_mul with only the generator scalar always takes it), k⁻¹ by Fermat
//   with BN_mod_exp_mont_consttime, the products with BN_FLG_CONSTTIME (BN_div's fixed-top path);
//   the HMAC state, k, d and their BIGNUMs are cleansed before return. Branches are on public values
//   (r, s, the candidate's range check, whose failure has probability ~2^-128).
// - recover(hash, rs64, parity, out65): ecrecover as noble's `recoverPublicKey` (viem's
//   `recoverAddress`): 0 < r, s < n (high s accepted), R the curve point of x = r and y-parity
//   `parity` (none: false), Q = (-h/r)G + (s/r)R with h = hash mod n, false when Q is the point at
//   infinity; the 65-byte uncompressed Q otherwise.
// - verify(hash, rs64, parity, pub65): whether recover would give pub65, computed forwards as
//   src/chain/evm/secp.ts's cached-key check does: 0 < r, s < n, R' = (h/s)G + (r/s)P not at
//   infinity, R'.x = r exactly (not mod n) and R'.y's parity = parity. An off-curve pub65 is a
//   TypeError (it never comes from recovery).
//
// Recovery ids 2 and 3 (R.x ≥ n, probability ~2^-128 for an honest signature) are not produced by
// viem's serialisation and not accepted by secp.ts's parser; sign reports such a k as an error.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <node_api.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#include <mutex>

#include "common.h"

namespace {

// The curve, with the generator's precomputed multiples (read-only once built, shared by threads).
EC_GROUP* group = nullptr;
const BIGNUM* order = nullptr;
BIGNUM* halfOrder = nullptr;
BIGNUM* orderMinus2 = nullptr;
BN_MONT_CTX* montN = nullptr;
std::once_flag groupOnce;
bool groupOk = false;

void initGroup() {
  group = EC_GROUP_new_by_curve_name(NID_secp256k1);
  if (!group) return;
  BN_CTX* ctx = BN_CTX_new();
  if (!ctx || !EC_GROUP_precompute_mult(group, ctx)) return;
  order = EC_GROUP_get0_order(group);
  halfOrder = BN_dup(order);
  orderMinus2 = BN_dup(order);
  montN = BN_MONT_CTX_new();
  groupOk = halfOrder && orderMinus2 && montN && BN_rshift1(halfOrder, order) && BN_sub_word(orderMinus2, 2) &&
            BN_MONT_CTX_set(montN, order, ctx);
  BN_CTX_free(ctx);
}

// ---- HMAC-SHA256 over SHA256_CTX (the one-shot HMAC() of OpenSSL 3 fetches the algorithm on each call).
struct Hmac {
  SHA256_CTX inner, outer;
  void init(const uint8_t key[32]) {
    uint8_t pad[64];
    memset(pad, 0x36, 64);
    for (int i = 0; i < 32; i++) pad[i] ^= key[i];
    SHA256_Init(&inner);
    SHA256_Update(&inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] ^= 0x36 ^ 0x5c;
    SHA256_Init(&outer);
    SHA256_Update(&outer, pad, 64);
    OPENSSL_cleanse(pad, sizeof pad);
  }
  void update(const uint8_t* d, size_t n) { SHA256_Update(&inner, d, n); }
  void final(uint8_t out[32]) {
    uint8_t ih[32];
    SHA256_Final(ih, &inner);
    SHA256_Update(&outer, ih, 32);
    SHA256_Final(out, &outer);
    OPENSSL_cleanse(ih, sizeof ih);
  }
  ~Hmac() { OPENSSL_cleanse(this, sizeof *this); }
};

// RFC 6979 3.2's generator state (K, V), seeded with x ‖ h1 (steps b to g).
struct Rfc6979 {
  uint8_t K[32], V[32];
  void step(uint8_t sep, const uint8_t* seed, size_t n) {
    Hmac h;
    h.init(K);
    h.update(V, 32);
    h.update(&sep, 1);
    if (seed) h.update(seed, n);
    h.final(K);
    h.init(K);
    h.update(V, 32);
    h.final(V);
  }
  Rfc6979(const uint8_t seed[64]) {
    memset(V, 1, 32);
    memset(K, 0, 32);
    step(0, seed, 64);
    step(1, seed, 64);
  }
  // The next candidate T (step h: V = HMAC_K(V), qlen = hlen = 256 bits).
  void next(uint8_t T[32]) {
    Hmac h;
    h.init(K);
    h.update(V, 32);
    h.final(V);
    memcpy(T, V, 32);
  }
  // After a rejected candidate (step h.3).
  void reseed() { step(0, nullptr, 0); }
  ~Rfc6979() { OPENSSL_cleanse(this, sizeof *this); }
};

using tn::getBytes;

napi_value boolean(napi_env env, bool b) {
  napi_value r;
  napi_get_boolean(env, b, &r);
  return r;
}

// Frees a BN_CTX (its frame ended) on every return path.
struct Ctx {
  BN_CTX* c = BN_CTX_new();
  Ctx() {
    if (c) BN_CTX_start(c);
  }
  ~Ctx() {
    if (c) BN_CTX_end(c), BN_CTX_free(c);
  }
};

struct Point {
  EC_POINT* p = EC_POINT_new(group);
  ~Point() { EC_POINT_free(p); }
};

// h mod n (noble's bits2int_modN for a 32-byte digest: h < 2^256 < 2n, one subtraction at most).
bool hashModN(const uint8_t* hash, BIGNUM* h) {
  if (!BN_bin2bn(hash, 32, h)) return false;
  return BN_cmp(h, order) < 0 || BN_sub(h, h, order);
}

// 0 < x < n.
bool inRange(const BIGNUM* x) {
  return !BN_is_zero(x) && BN_cmp(x, order) < 0;
}

// sign(hash: 32 bytes, key: 32 bytes, out: 65 bytes) -> void; throws on a key not in [1, n).
napi_value Sign(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint8_t *hash, *key, *out;
  size_t nh, nk, no;
  if (argc != 3 || !getBytes(env, argv[0], &hash, &nh) || nh != 32 || !getBytes(env, argv[1], &key, &nk) || nk != 32 ||
      !getBytes(env, argv[2], &out, &no) || no != 65) {
    napi_throw_type_error(env, nullptr, "sign takes (hash: 32 bytes, key: 32 bytes, out: 65 bytes)");
    return nullptr;
  }
  Ctx ctx;
  Point R;
  if (!ctx.c || !R.p) {
    napi_throw_error(env, nullptr, "secp256k1: out of memory");
    return nullptr;
  }
  BIGNUM *d = BN_CTX_get(ctx.c), *m = BN_CTX_get(ctx.c), *k = BN_CTX_get(ctx.c), *ki = BN_CTX_get(ctx.c),
         *x = BN_CTX_get(ctx.c), *y = BN_CTX_get(ctx.c), *r = BN_CTX_get(ctx.c), *s = BN_CTX_get(ctx.c);
  const char* err = nullptr;
  uint8_t seed[64], T[32];
  int parity = -1;
  if (!s) {
    err = "secp256k1: out of memory";
  } else {
    BN_set_flags(d, BN_FLG_CONSTTIME);
    BN_set_flags(k, BN_FLG_CONSTTIME);
    BN_set_flags(ki, BN_FLG_CONSTTIME);
    BN_set_flags(s, BN_FLG_CONSTTIME);
    if (!BN_bin2bn(key, 32, d) || !inRange(d)) err = "invalid private key";
    else if (!hashModN(hash, m)) err = "secp256k1: hash";
  }
  if (!err) {
    memcpy(seed, key, 32);
    BN_bn2binpad(m, seed + 32, 32);
    Rfc6979 gen(seed);
    for (int tries = 0; parity < 0 && tries < 64; tries++) {
      if (tries) gen.reseed();
      gen.next(T);
      if (!BN_bin2bn(T, 32, k) || !inRange(k)) continue;
      // R = kG (the ladder), r = R.x mod n
      if (!EC_POINT_mul(group, R.p, k, nullptr, nullptr, ctx.c) || !EC_POINT_get_affine_coordinates(group, R.p, x, y, ctx.c))
        break;
      if (BN_cmp(x, order) >= 0) {
        err = "secp256k1: R.x >= n (recovery id 2/3), not representable";
        break;
      }
      if (!BN_copy(r, x) || BN_is_zero(r)) continue;
      // s = k^-1 (m + r d) mod n
      if (!BN_mod_exp_mont_consttime(ki, k, orderMinus2, order, ctx.c, montN) || !BN_mod_mul(s, r, d, order, ctx.c) ||
          !BN_mod_add(s, s, m, order, ctx.c) || !BN_mod_mul(s, s, ki, order, ctx.c))
        break;
      if (BN_is_zero(s)) continue;
      parity = BN_is_odd(y);
      if (BN_cmp(s, halfOrder) > 0) {
        if (!BN_sub(s, order, s)) break;
        parity ^= 1;
      }
    }
  }
  if (!err && parity >= 0) {
    BN_bn2binpad(r, out, 32);
    BN_bn2binpad(s, out + 32, 32);
    out[64] = (uint8_t)(27 + parity);
  } else if (!err) {
    err = "secp256k1: signing failed";
  }
  OPENSSL_cleanse(seed, sizeof seed);
  OPENSSL_cleanse(T, sizeof T);
  if (s) BN_clear(d), BN_clear(k), BN_clear(ki);
  if (err) napi_throw_error(env, nullptr, err);
  return nullptr;
}

// Reads hash, r ‖ s and the parity (0 or 1) of recover/verify; false on wrong types or sizes.
bool sigArgs(napi_env env, napi_value* argv, uint8_t** hash, uint8_t** rs, int* parity) {
  size_t nh, nrs;
  int32_t p;
  if (!getBytes(env, argv[0], hash, &nh) || nh != 32 || !getBytes(env, argv[1], rs, &nrs) || nrs != 64) return false;
  if (napi_get_value_int32(env, argv[2], &p) != napi_ok || (p != 0 && p != 1)) return false;
  *parity = p;
  return true;
}

// recover(hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, out: 65 bytes) -> boolean.
napi_value Recover(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint8_t *hash, *rs, *out;
  size_t no;
  int parity;
  if (argc != 4 || !sigArgs(env, argv, &hash, &rs, &parity) || !getBytes(env, argv[3], &out, &no) || no != 65) {
    napi_throw_type_error(env, nullptr, "recover takes (hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, out: 65 bytes)");
    return nullptr;
  }
  Ctx ctx;
  Point R, Q;
  if (!ctx.c || !R.p || !Q.p) {
    napi_throw_error(env, nullptr, "secp256k1: out of memory");
    return nullptr;
  }
  BIGNUM *h = BN_CTX_get(ctx.c), *r = BN_CTX_get(ctx.c), *s = BN_CTX_get(ctx.c), *ir = BN_CTX_get(ctx.c),
         *u1 = BN_CTX_get(ctx.c), *u2 = BN_CTX_get(ctx.c);
  if (!u2) {
    napi_throw_error(env, nullptr, "secp256k1: out of memory");
    return nullptr;
  }
  bool ok = BN_bin2bn(rs, 32, r) && BN_bin2bn(rs + 32, 32, s) && inRange(r) && inRange(s) && hashModN(hash, h);
  // R: x = r, the given y-parity (fails when r is no curve point's x)
  ok = ok && EC_POINT_set_compressed_coordinates(group, R.p, r, parity, ctx.c);
  // Q = u1 G + u2 R, u1 = -h/r, u2 = s/r
  ok = ok && BN_mod_inverse(ir, r, order, ctx.c) && BN_mod_mul(u1, h, ir, order, ctx.c) && BN_mod_sub(u1, order, u1, order, ctx.c) &&
       BN_mod_mul(u2, s, ir, order, ctx.c) && EC_POINT_mul(group, Q.p, u1, R.p, u2, ctx.c) && !EC_POINT_is_at_infinity(group, Q.p);
  ok = ok && EC_POINT_point2oct(group, Q.p, POINT_CONVERSION_UNCOMPRESSED, out, 65, ctx.c) == 65;
  return boolean(env, ok);
}

// verify(hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, pub: 65 bytes) -> boolean.
napi_value Verify(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint8_t *hash, *rs, *pub;
  size_t np;
  int parity;
  if (argc != 4 || !sigArgs(env, argv, &hash, &rs, &parity) || !getBytes(env, argv[3], &pub, &np) || np != 65) {
    napi_throw_type_error(env, nullptr, "verify takes (hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, pub: 65 bytes)");
    return nullptr;
  }
  Ctx ctx;
  Point P, R;
  if (!ctx.c || !P.p || !R.p) {
    napi_throw_error(env, nullptr, "secp256k1: out of memory");
    return nullptr;
  }
  BIGNUM *h = BN_CTX_get(ctx.c), *r = BN_CTX_get(ctx.c), *s = BN_CTX_get(ctx.c), *is = BN_CTX_get(ctx.c),
         *u1 = BN_CTX_get(ctx.c), *u2 = BN_CTX_get(ctx.c), *x = BN_CTX_get(ctx.c), *y = BN_CTX_get(ctx.c);
  if (!y) {
    napi_throw_error(env, nullptr, "secp256k1: out of memory");
    return nullptr;
  }
  if (pub[0] != 4 || !EC_POINT_oct2point(group, P.p, pub, 65, ctx.c)) {
    napi_throw_type_error(env, nullptr, "verify: pub is not an uncompressed secp256k1 point");
    return nullptr;
  }
  bool ok = BN_bin2bn(rs, 32, r) && BN_bin2bn(rs + 32, 32, s) && inRange(r) && inRange(s) && hashModN(hash, h);
  // R' = (h/s) G + (r/s) P
  ok = ok && BN_mod_inverse(is, s, order, ctx.c) && BN_mod_mul(u1, h, is, order, ctx.c) && BN_mod_mul(u2, r, is, order, ctx.c) &&
       EC_POINT_mul(group, R.p, u1, P.p, u2, ctx.c) && !EC_POINT_is_at_infinity(group, R.p) &&
       EC_POINT_get_affine_coordinates(group, R.p, x, y, ctx.c);
  return boolean(env, ok && BN_cmp(x, r) == 0 && BN_is_odd(y) == parity);
}

}  // namespace

NAPI_MODULE_INIT() {
  std::call_once(groupOnce, initGroup);
  if (!groupOk) {
    napi_throw_error(env, nullptr, "tessera_secp: node's OpenSSL has no secp256k1; viem/noble stay the path");
    return nullptr;
  }
  napi_value f;
  napi_create_function(env, "sign", NAPI_AUTO_LENGTH, Sign, nullptr, &f);
  napi_set_named_property(env, exports, "sign", f);
  napi_create_function(env, "recover", NAPI_AUTO_LENGTH, Recover, nullptr, &f);
  napi_set_named_property(env, exports, "recover", f);
  napi_create_function(env, "verify", NAPI_AUTO_LENGTH, Verify, nullptr, &f);
  napi_set_named_property(env, exports, "verify", f);
  return exports;
}
