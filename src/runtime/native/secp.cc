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
// - signAsync, recoverAsync, verifyAsync: the same three on libuv's thread pool, each resolving a
//   Promise (sign's 65 bytes, recover's key or undefined, verify's answer) with the same bytes and
//   answers; bad arguments throw a TypeError at the call, as the synchronous forms do (see "The
//   asynchronous forms" below for the copies, the thread safety and the secrets).
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
#include <stdio.h>
#include <string.h>

#include <mutex>
#include <new>

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

const char* const OOM = "secp256k1: out of memory";

// h mod n (noble's bits2int_modN for a 32-byte digest: h < 2^256 < 2n, one subtraction at most).
bool hashModN(const uint8_t* hash, BIGNUM* h) {
  if (!BN_bin2bn(hash, 32, h)) return false;
  return BN_cmp(h, order) < 0 || BN_sub(h, h, order);
}

// 0 < x < n.
bool inRange(const BIGNUM* x) {
  return !BN_is_zero(x) && BN_cmp(x, order) < 0;
}

// ---- The three operations, plain C++ on copied bytes: the synchronous functions run them on the JS
// thread, the asynchronous ones on a libuv pool thread (one implementation, the same bytes).

// sign: r ‖ s ‖ v into out; nullptr, or why not (out untouched).
const char* signBytes(const uint8_t hash[32], const uint8_t key[32], uint8_t out[65]) {
  Ctx ctx;
  Point R;
  if (!ctx.c || !R.p) return OOM;
  BIGNUM *d = BN_CTX_get(ctx.c), *m = BN_CTX_get(ctx.c), *k = BN_CTX_get(ctx.c), *ki = BN_CTX_get(ctx.c),
         *x = BN_CTX_get(ctx.c), *y = BN_CTX_get(ctx.c), *r = BN_CTX_get(ctx.c), *s = BN_CTX_get(ctx.c);
  if (!s) return OOM;
  const char* err = nullptr;
  uint8_t seed[64], T[32];
  int parity = -1;
  BN_set_flags(d, BN_FLG_CONSTTIME);
  BN_set_flags(k, BN_FLG_CONSTTIME);
  BN_set_flags(ki, BN_FLG_CONSTTIME);
  BN_set_flags(s, BN_FLG_CONSTTIME);
  if (!BN_bin2bn(key, 32, d) || !inRange(d)) err = "invalid private key";
  else if (!hashModN(hash, m)) err = "secp256k1: hash";
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
  BN_clear(d), BN_clear(k), BN_clear(ki);
  return err;
}

// recover: 1 with the key in out, 0 when none recovers, -1 out of memory.
int recoverBytes(const uint8_t hash[32], const uint8_t rs[64], int parity, uint8_t out[65]) {
  Ctx ctx;
  Point R, Q;
  if (!ctx.c || !R.p || !Q.p) return -1;
  BIGNUM *h = BN_CTX_get(ctx.c), *r = BN_CTX_get(ctx.c), *s = BN_CTX_get(ctx.c), *ir = BN_CTX_get(ctx.c),
         *u1 = BN_CTX_get(ctx.c), *u2 = BN_CTX_get(ctx.c);
  if (!u2) return -1;
  bool ok = BN_bin2bn(rs, 32, r) && BN_bin2bn(rs + 32, 32, s) && inRange(r) && inRange(s) && hashModN(hash, h);
  // R: x = r, the given y-parity (fails when r is no curve point's x)
  ok = ok && EC_POINT_set_compressed_coordinates(group, R.p, r, parity, ctx.c);
  // Q = u1 G + u2 R, u1 = -h/r, u2 = s/r
  ok = ok && BN_mod_inverse(ir, r, order, ctx.c) && BN_mod_mul(u1, h, ir, order, ctx.c) && BN_mod_sub(u1, order, u1, order, ctx.c) &&
       BN_mod_mul(u2, s, ir, order, ctx.c) && EC_POINT_mul(group, Q.p, u1, R.p, u2, ctx.c) && !EC_POINT_is_at_infinity(group, Q.p);
  ok = ok && EC_POINT_point2oct(group, Q.p, POINT_CONVERSION_UNCOMPRESSED, out, 65, ctx.c) == 65;
  return ok;
}

// pub (65 bytes, uncompressed) as a point: 1, 0 when it is none (a caller's TypeError), -1 out of memory.
int parsePub(const uint8_t pub[65], EC_POINT* P) {
  Ctx ctx;
  if (!ctx.c) return -1;
  return pub[0] == 4 && EC_POINT_oct2point(group, P, pub, 65, ctx.c);
}

// verify against a parsed key: 1 when recover would give P, 0 when not, -1 out of memory.
int verifyBytes(const uint8_t hash[32], const uint8_t rs[64], int parity, const EC_POINT* P) {
  Ctx ctx;
  Point R;
  if (!ctx.c || !R.p) return -1;
  BIGNUM *h = BN_CTX_get(ctx.c), *r = BN_CTX_get(ctx.c), *s = BN_CTX_get(ctx.c), *is = BN_CTX_get(ctx.c),
         *u1 = BN_CTX_get(ctx.c), *u2 = BN_CTX_get(ctx.c), *x = BN_CTX_get(ctx.c), *y = BN_CTX_get(ctx.c);
  if (!y) return -1;
  bool ok = BN_bin2bn(rs, 32, r) && BN_bin2bn(rs + 32, 32, s) && inRange(r) && inRange(s) && hashModN(hash, h);
  // R' = (h/s) G + (r/s) P
  ok = ok && BN_mod_inverse(is, s, order, ctx.c) && BN_mod_mul(u1, h, is, order, ctx.c) && BN_mod_mul(u2, r, is, order, ctx.c) &&
       EC_POINT_mul(group, R.p, u1, P, u2, ctx.c) && !EC_POINT_is_at_infinity(group, R.p) &&
       EC_POINT_get_affine_coordinates(group, R.p, x, y, ctx.c);
  return ok && BN_cmp(x, r) == 0 && BN_is_odd(y) == parity;
}

// ---- N-API: argument checks (a TypeError, thrown on the calling thread by both forms) and results.

using tn::getBytes;

napi_value boolean(napi_env env, bool b) {
  napi_value r;
  napi_get_boolean(env, b, &r);
  return r;
}

// A new Uint8Array holding a copy of n bytes.
napi_value bytesValue(napi_env env, const uint8_t* data, size_t n) {
  void* d;
  napi_value ab, ta;
  if (napi_create_arraybuffer(env, n, &d, &ab) != napi_ok || napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &ta) != napi_ok)
    return nullptr;
  memcpy(d, data, n);
  return ta;
}

// Reads hash, r ‖ s and the parity (0 or 1) of recover/verify; false on wrong types or sizes.
bool sigArgs(napi_env env, napi_value* argv, const uint8_t** hash, const uint8_t** rs, int* parity) {
  size_t nh, nrs;
  int32_t p;
  if (!getBytes(env, argv[0], hash, &nh) || nh != 32 || !getBytes(env, argv[1], rs, &nrs) || nrs != 64) return false;
  if (napi_get_value_int32(env, argv[2], &p) != napi_ok || (p != 0 && p != 1)) return false;
  *parity = p;
  return true;
}

// Reads pub (65 bytes) into P; throws (a TypeError for a non-point) and returns false otherwise.
bool pubArg(napi_env env, napi_value v, const char* fn, EC_POINT* P) {
  const uint8_t* pub;
  size_t np;
  if (!getBytes(env, v, &pub, &np) || np != 65) return false;
  int ok = P ? parsePub(pub, P) : -1;
  if (ok < 0) napi_throw_error(env, nullptr, OOM);
  if (ok == 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: pub is not an uncompressed secp256k1 point", fn);
    napi_throw_type_error(env, nullptr, msg);
  }
  return ok > 0;
}

// True after throwing when a pending exception exists (pubArg threw), so callers do not throw twice.
bool pending(napi_env env) {
  bool is = false;
  napi_is_exception_pending(env, &is);
  return is;
}

// sign(hash: 32 bytes, key: 32 bytes, out: 65 bytes) -> void; throws on a key not in [1, n).
napi_value Sign(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t *hash, *key;
  uint8_t* out;
  size_t nh, nk, no;
  if (argc != 3 || !getBytes(env, argv[0], &hash, &nh) || nh != 32 || !getBytes(env, argv[1], &key, &nk) || nk != 32 ||
      !getBytes(env, argv[2], &out, &no) || no != 65) {
    napi_throw_type_error(env, nullptr, "sign takes (hash: 32 bytes, key: 32 bytes, out: 65 bytes)");
    return nullptr;
  }
  if (const char* err = signBytes(hash, key, out)) napi_throw_error(env, nullptr, err);
  return nullptr;
}

// recover(hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, out: 65 bytes) -> boolean.
napi_value Recover(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t *hash, *rs;
  uint8_t* out;
  size_t no;
  int parity;
  if (argc != 4 || !sigArgs(env, argv, &hash, &rs, &parity) || !getBytes(env, argv[3], &out, &no) || no != 65) {
    napi_throw_type_error(env, nullptr, "recover takes (hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, out: 65 bytes)");
    return nullptr;
  }
  int ok = recoverBytes(hash, rs, parity, out);
  if (ok < 0) napi_throw_error(env, nullptr, OOM);
  return ok < 0 ? nullptr : boolean(env, ok);
}

// verify(hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, pub: 65 bytes) -> boolean.
napi_value Verify(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t *hash, *rs;
  int parity;
  Point P;
  if (argc != 4 || !sigArgs(env, argv, &hash, &rs, &parity) || !pubArg(env, argv[3], "verify", P.p)) {
    if (!pending(env)) napi_throw_type_error(env, nullptr, "verify takes (hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, pub: 65 bytes)");
    return nullptr;
  }
  int ok = verifyBytes(hash, rs, parity, P.p);
  if (ok < 0) napi_throw_error(env, nullptr, OOM);
  return ok < 0 ? nullptr : boolean(env, ok);
}

// ---- The asynchronous forms: signAsync, recoverAsync, verifyAsync.
//
// Each copies its arguments into a Job on the calling thread (the caller's buffers may change or be
// collected while the work waits or runs), runs the operation above on a libuv pool thread
// (napi_create_async_work), and settles its Promise on the JS thread in `complete`. The pool thread
// touches only the Job, its own BN_CTX and points, and the shared curve constants, read-only:
//
// Why sharing `group`, `order`, `halfOrder`, `orderMinus2` and `montN` between threads is safe
// (node 20.20.2 bundles OpenSSL 3.0.19; read 2026-12-06 in public copies, not 3.0.19's own tree:
// ec_lib.c of the 3.0 line in nodejs/node's deps/openssl, ec_mult.c of a later 3.x, bn_exp.c of
// 1.1.1 and 3.x, whose parts quoted here have not changed between those versions):
// - OpenSSL's rule (openssl-threads(7), 3.0): an object is safe for simultaneous use when the calls
//   made on it do not modify it, which its API marks by a const parameter. Every EC call here takes
//   `const EC_GROUP*` (EC_POINT_mul, EC_POINT_get_affine_coordinates, EC_POINT_set_compressed_coordinates,
//   EC_POINT_oct2point, EC_POINT_point2oct, EC_POINT_is_at_infinity, EC_GROUP_get0_order), and the
//   BIGNUM constants are passed as `const BIGNUM*`. The only writer of the group is
//   EC_GROUP_precompute_mult, run once in initGroup (std::call_once) before any function exists.
// - ec_lib.c: EC_POINT_mul dispatches to group->meth->mul (none for secp256k1's EC_GFp_mont_method)
//   or ossl_ec_wNAF_mul, with the caller's BN_CTX. ec_mult.c: ossl_ec_wNAF_mul sends a lone
//   generator multiple (sign's kG) to ossl_ec_scalar_mul_ladder, which copies group->generator into
//   a point of its own and keeps every temporary in the caller's BN_CTX and its own points; the
//   two-term u1 G + u2 P of recover and verify reads the generator's precomputed table
//   (`pre_comp = group->pre_comp.ec`) without writing it: no lazy build, no reference taken. The
//   ladder's blinding draws a random Z from the private DRBG, which 3.0 keeps per thread
//   (RAND_get0_private; from OpenSSL's 3.0 design, not re-read here).
// - BN_mod_exp_mont_consttime's BN_MONT_CTX argument is not const, but bn_exp.c only reads it when
//   given (`if (in_mont != NULL) mont = in_mont;`, building and freeing one of its own otherwise):
//   its N, RR and n0 feed the multiplications, nothing is stored back.
// - BN_CTX, EC_POINT and the HMAC/SHA256_CTX state are per call; OpenSSL's error queue is per thread.
// The concurrency tests (secp.test.ts: 64 and more operations in flight on the pool's threads, each
// answer checked against its synchronous twin) exercise this; they cannot prove there is no race.
//
// Secrets: sign's Job holds a copy of the key; the pool thread cleanses it right after signing
// (signBytes cleanses k, its inverse, d, the RFC 6979 and HMAC state as the synchronous sign does),
// and the Job's destructor cleanses it again on every path (a failed queueing included).

struct Job {
  enum Kind { SIGN, RECOVER, VERIFY } kind;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
  uint8_t hash[32], key[32], rs[64], out[65];
  int parity = 0;
  EC_POINT* pub = nullptr;
  const char* err = nullptr;
  int result = 0;
  explicit Job(Kind k) : kind(k) {}
  ~Job() {
    OPENSSL_cleanse(key, sizeof key);
    EC_POINT_free(pub);
  }
};

void execute(napi_env, void* data) {
  Job* j = (Job*)data;
  switch (j->kind) {
    case Job::SIGN:
      j->err = signBytes(j->hash, j->key, j->out);
      OPENSSL_cleanse(j->key, sizeof j->key);
      break;
    case Job::RECOVER:
      j->result = recoverBytes(j->hash, j->rs, j->parity, j->out);
      break;
    case Job::VERIFY:
      j->result = verifyBytes(j->hash, j->rs, j->parity, j->pub);
      break;
  }
  if (j->result < 0) j->err = OOM;
}

void settle(napi_env env, napi_deferred deferred, napi_value value, const char* err) {
  if (!err && value) {
    napi_resolve_deferred(env, deferred, value);
    return;
  }
  napi_value msg, error;
  napi_create_string_utf8(env, err ? err : OOM, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, nullptr, msg, &error);
  napi_reject_deferred(env, deferred, error);
}

void complete(napi_env env, napi_status status, void* data) {
  Job* j = (Job*)data;
  napi_value v = nullptr;
  if (status != napi_ok) {
    j->err = "secp256k1: the work was cancelled";
  } else if (!j->err) {
    if (j->kind == Job::SIGN || (j->kind == Job::RECOVER && j->result)) v = bytesValue(env, j->out, 65);
    else if (j->kind == Job::RECOVER) napi_get_undefined(env, &v);
    else v = boolean(env, j->result);
  }
  settle(env, j->deferred, v, j->err);
  napi_delete_async_work(env, j->work);
  delete j;
}

// Queues j and returns its Promise (rejected when the work cannot be queued); owns j from here.
napi_value queue(napi_env env, Job* j) {
  napi_value promise, name;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    delete j;
    napi_throw_error(env, nullptr, "secp256k1: cannot create a promise");
    return nullptr;
  }
  napi_create_string_utf8(env, "tessera_secp", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, nullptr, name, execute, complete, j, &j->work) != napi_ok) {
    settle(env, j->deferred, nullptr, "secp256k1: cannot create the work");
    delete j;
  } else if (napi_queue_async_work(env, j->work) != napi_ok) {
    settle(env, j->deferred, nullptr, "secp256k1: cannot queue the work");
    napi_delete_async_work(env, j->work);
    delete j;
  }
  return promise;
}

// signAsync(hash: 32 bytes, key: 32 bytes) -> Promise<Uint8Array(65)>: sign's bytes; rejects as sign throws.
napi_value SignAsync(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t *hash, *key;
  size_t nh, nk;
  if (argc != 2 || !getBytes(env, argv[0], &hash, &nh) || nh != 32 || !getBytes(env, argv[1], &key, &nk) || nk != 32) {
    napi_throw_type_error(env, nullptr, "signAsync takes (hash: 32 bytes, key: 32 bytes)");
    return nullptr;
  }
  Job* j = new (std::nothrow) Job(Job::SIGN);
  if (!j) {
    napi_throw_error(env, nullptr, OOM);
    return nullptr;
  }
  memcpy(j->hash, hash, 32);
  memcpy(j->key, key, 32);
  return queue(env, j);
}

// recoverAsync(hash: 32 bytes, rs: 64 bytes, parity: 0 | 1) -> Promise<Uint8Array(65) | undefined>.
napi_value RecoverAsync(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t *hash, *rs;
  int parity;
  if (argc != 3 || !sigArgs(env, argv, &hash, &rs, &parity)) {
    napi_throw_type_error(env, nullptr, "recoverAsync takes (hash: 32 bytes, rs: 64 bytes, parity: 0 | 1)");
    return nullptr;
  }
  Job* j = new (std::nothrow) Job(Job::RECOVER);
  if (!j) {
    napi_throw_error(env, nullptr, OOM);
    return nullptr;
  }
  memcpy(j->hash, hash, 32);
  memcpy(j->rs, rs, 64);
  j->parity = parity;
  return queue(env, j);
}

// verifyAsync(hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, pub: 65 bytes) -> Promise<boolean>; the key is
// parsed (and an off-curve one refused by a TypeError) here, on the calling thread.
napi_value VerifyAsync(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t *hash, *rs;
  int parity;
  Job* j = new (std::nothrow) Job(Job::VERIFY);
  if (!j || !(j->pub = EC_POINT_new(group))) {
    delete j;
    napi_throw_error(env, nullptr, OOM);
    return nullptr;
  }
  if (argc != 4 || !sigArgs(env, argv, &hash, &rs, &parity) || !pubArg(env, argv[3], "verifyAsync", j->pub)) {
    delete j;
    if (!pending(env)) napi_throw_type_error(env, nullptr, "verifyAsync takes (hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, pub: 65 bytes)");
    return nullptr;
  }
  memcpy(j->hash, hash, 32);
  memcpy(j->rs, rs, 64);
  j->parity = parity;
  return queue(env, j);
}

}  // namespace

NAPI_MODULE_INIT() {
  std::call_once(groupOnce, initGroup);
  if (!groupOk) {
    napi_throw_error(env, nullptr, "tessera_secp: node's OpenSSL has no secp256k1; viem/noble stay the path");
    return nullptr;
  }
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {{"sign", Sign},           {"recover", Recover},           {"verify", Verify},
             {"signAsync", SignAsync}, {"recoverAsync", RecoverAsync}, {"verifyAsync", VerifyAsync}};
  for (const auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}
