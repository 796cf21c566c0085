// Native secp256k1 and Keccak-256 for the job path (src/runtime/native/secp.ts, installed into
// src/chain/evm/secp.ts): sign, recover and check against a known key with libsecp256k1 (Bitcoin
// Core's library; its C source ships in the npm package secp256k1@5.0.1, node_modules/secp256k1/
// src/secp256k1/, compiled into this addon by binding.gyp with the package's own defines but for
// ECMULT_WINDOW_SIZE 10 instead of 15: this version builds that table when the context is made, and
// 15's (1 MB) took ~7 ms at the addon's load for no measurable gain per operation, docs/BENCHMARKS.md
// "libsecp256k1 in the native addon"; the package's install script and JS are not used), answer for
// answer and byte for byte the same as @noble/curves / viem, its plain twins (secp.test.ts):
//
// - sign(hash, key, out65): ECDSA with RFC 6979 deterministic k (HMAC-SHA256, no extra entropy) and
//   low s, written as r ‖ s ‖ v with v = 27 + parity, viem's `sign` serialised. noble seeds RFC 6979
//   with int2octets(d) ‖ int2octets(h mod n); libsecp256k1's nonce function seeds with key32 ‖ msg32
//   as given and its retries (counter > 0) are RFC 6979 3.2 h.3's, so it is handed h mod n (the
//   signature equation reduces h mod n anyway): the same k, the same (r, s). libsecp256k1 negates a
//   high s and flips the recovery id itself. Secret-dependent work is libsecp256k1's constant-time
//   kG (blinded: the context is randomized once at load) and scalar inverse; it clears its nonce and
//   key scalars, and this file wipes the key copies it makes.
// - recover(hash, rs64, parity, out65): ecrecover as noble's `recoverPublicKey` (viem's
//   `recoverAddress`): r, s in [1, n) (parse_compact refuses ≥ n, sig_recover refuses 0), high s
//   accepted (libsecp256k1's recovery does not check s's half: Q = (sR - hG)/r), R the point of
//   x = r and y-parity `parity` (none: false), false when Q is the point at infinity; h = hash mod n.
// - verify(hash, rs64, parity, pub65): whether recover would give pub65, computed as exactly that:
//   recover, then compare the 65 uncompressed bytes (the parsed key's serialisation is its input,
//   x, y < p). An off-curve or non-04 pub65 is a TypeError (it never comes from recovery).
//
// - signAsync, recoverAsync, verifyAsync: the same three on libuv's thread pool, each resolving a
//   Promise (sign's 65 bytes, recover's key or undefined, verify's answer) with the same bytes and
//   answers; bad arguments throw a TypeError at the call, as the synchronous forms do (see "The
//   asynchronous forms" below for the copies, the thread safety and the secrets).
//
// - keccak256(data, out32): Ethereum's Keccak-256 of data into out (viem's `keccak256`), for the job
//   path's EIP-712 digests (src/chain/typedDigest.ts through src/chain/evm/secp.ts's
//   `keccak256Bytes`). Written here from the Keccak reference (FIPS 202 section 3 for
//   Keccak-f[1600]: theta, rho, pi, chi, iota over 24 rounds; the rotation offsets and round
//   constants derived at compile time from the spec's definitions, not tabulated): a sponge of
//   rate 136 bytes (capacity 512), padded with the original Keccak's pad10*1 (a 0x01 byte after
//   the message, 0x80 in the block's last byte), not SHA3-256's 0x06 domain bits. Synchronous only
//   (a few µs: the pool's hop would cost more than the hash).
//
// Recovery ids 2 and 3 (R.x ≥ n, probability ~2^-128 for an honest signature) are not produced by
// viem's serialisation and not accepted by secp.ts's parser; sign reports such a k as an error.
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mutex>
#include <new>
#include <random>

#include "common.h"
#include "secp256k1.h"
#include "secp256k1_recovery.h"

namespace {

// One context for the process, built once (std::call_once, in the module's init) with the signing
// and verification tables and randomized then; after that every call takes it as `const` (see "The
// asynchronous forms" for why threads may share it).
secp256k1_context* ctx = nullptr;
std::once_flag ctxOnce;

// memset that the compiler may not drop as a dead store (the buffers die right after).
void* (*const volatile wipeMemset)(void*, int, size_t) = memset;
void wipe(void* p, size_t n) { wipeMemset(p, 0, n); }

void initContext() {
  secp256k1_context* c = secp256k1_context_create(SECP256K1_CONTEXT_SIGN | SECP256K1_CONTEXT_VERIFY);
  if (!c) return;
  // Blinding for kG against side channels; it never changes a signature (libsecp256k1's header).
  // Without a random source the context stays unblinded: still correct, still constant-time code.
  uint8_t seed[32];
  bool seeded = false;
  try {
    std::random_device rd;
    for (int i = 0; i < 8; i++) {
      uint32_t w = rd();
      memcpy(seed + 4 * i, &w, 4);
    }
    seeded = true;
  } catch (...) {
  }
  if (seeded && !secp256k1_context_randomize(c, seed)) {
    secp256k1_context_destroy(c);
    c = nullptr;
  }
  wipe(seed, sizeof seed);
  ctx = c;
}

const char* const OOM = "secp256k1: out of memory";

// n, the group order, big-endian.
const uint8_t ORDER[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
                           0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

// h mod n as 32 bytes (noble's bits2int_modN for a 32-byte digest: h < 2^256 < 2n, one subtraction at
// most). The hash is public: branching on it leaks nothing.
void hashModN(const uint8_t hash[32], uint8_t out[32]) {
  if (memcmp(hash, ORDER, 32) < 0) {
    memcpy(out, hash, 32);
    return;
  }
  int borrow = 0;
  for (int i = 31; i >= 0; i--) {
    int d = hash[i] - ORDER[i] - borrow;
    borrow = d < 0;
    out[i] = (uint8_t)d;
  }
}

// ---- The three operations, plain C++ on copied bytes: the synchronous functions run them on the JS
// thread, the asynchronous ones on a libuv pool thread (one implementation, the same bytes).

// sign: r ‖ s ‖ v into out; nullptr, or why not (out untouched).
const char* signBytes(const uint8_t hash[32], const uint8_t key[32], uint8_t out[65]) {
  uint8_t m[32], rs[64];
  int recid = 0;
  secp256k1_ecdsa_recoverable_signature sig;
  hashModN(hash, m);
  // With the RFC 6979 nonce function (which never fails) signing fails only for a key not in [1, n).
  if (!secp256k1_ecdsa_sign_recoverable(ctx, &sig, m, key, secp256k1_nonce_function_rfc6979, nullptr)) return "invalid private key";
  secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, rs, &recid, &sig);
  if (recid > 1) return "secp256k1: R.x >= n (recovery id 2/3), not representable";
  memcpy(out, rs, 64);
  out[64] = (uint8_t)(27 + recid);
  return nullptr;
}

// recover: 1 with the key in out, 0 when none recovers.
int recoverBytes(const uint8_t hash[32], const uint8_t rs[64], int parity, uint8_t out[65]) {
  secp256k1_ecdsa_recoverable_signature sig;
  secp256k1_pubkey Q;
  size_t n = 65;
  // parse: r, s < n; recover: r, s ≠ 0, R exists, Q not at infinity (high s accepted, h reduced mod n)
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &sig, rs, parity) || !secp256k1_ecdsa_recover(ctx, &Q, &sig, hash))
    return 0;
  secp256k1_ec_pubkey_serialize(ctx, out, &n, &Q, SECP256K1_EC_UNCOMPRESSED);
  return 1;
}

// Whether pub (65 bytes) is an uncompressed secp256k1 point: 1, or 0 (a caller's TypeError). The 04
// prefix is checked here: libsecp256k1 also parses the hybrid 06/07 forms, which noble refuses.
int parsePub(const uint8_t pub[65]) {
  secp256k1_pubkey P;
  return pub[0] == 4 && secp256k1_ec_pubkey_parse(ctx, &P, pub, 65);
}

// verify against a parsed key's bytes: 1 when recover gives exactly pub, 0 when not.
int verifyBytes(const uint8_t hash[32], const uint8_t rs[64], int parity, const uint8_t pub[65]) {
  uint8_t Q[65];
  return recoverBytes(hash, rs, parity, Q) && memcmp(Q, pub, 65) == 0;
}

// ---- Keccak-256 (see the header): Keccak-f[1600] on 25 lanes a[x + 5y], little-endian, then the sponge.

// rho's offsets, FIPS 202 algorithm 2: r[0][0] = 0; from (x, y) = (1, 0), for t = 0..23 the lane
// (x, y) rotates by (t + 1)(t + 2)/2 mod 64, then (x, y) <- (y, (2x + 3y) mod 5).
struct Rho {
  int r[25] = {};
  constexpr Rho() {
    int x = 1, y = 0;
    for (int t = 0; t < 24; t++) {
      r[x + 5 * y] = ((t + 1) * (t + 2) / 2) % 64;
      int nx = y, ny = (2 * x + 3 * y) % 5;
      x = nx;
      y = ny;
    }
  }
};

// iota's round constants, FIPS 202 algorithms 5 and 6: rc(t) is the output of the LFSR of
// polynomial x^8 + x^6 + x^5 + x^4 + 1 started at 1; round i's constant has bit 2^j - 1 set to
// rc(j + 7i), j = 0..6. Bit 0 of the state is the spec's R[0]; a step shifts a 0 in at R[0] and
// folds the bit that left (R[8]) into R[0], R[4], R[5] and R[6] (0x171 = bits 0, 4, 5, 6, 8).
struct RoundConstants {
  uint64_t rc[24] = {};
  constexpr RoundConstants() {
    unsigned lfsr = 1;
    for (int i = 0; i < 24; i++) {
      for (int j = 0; j < 7; j++) {
        if (lfsr & 1) rc[i] |= (uint64_t)1 << ((1 << j) - 1);
        lfsr <<= 1;
        if (lfsr & 0x100) lfsr ^= 0x171;
      }
    }
  }
};

constexpr Rho RHO;
constexpr RoundConstants RC;

inline uint64_t rotl(uint64_t v, int n) { return (v << n) | (v >> ((64 - n) & 63)); }

void keccakF1600(uint64_t a[25]) {
  // every loop is unrolled (constant bounds): the indices and rotation counts become constants
  for (int round = 0; round < 24; round++) {
    // theta: each lane XORs the parities of the two neighbouring columns (one of them rotated by 1)
    uint64_t c[5], b[25];
#pragma GCC unroll 5
    for (int x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
#pragma GCC unroll 5
    for (int x = 0; x < 5; x++) {
      uint64_t d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
#pragma GCC unroll 5
      for (int y = 0; y < 25; y += 5) a[x + y] ^= d;
    }
    // rho and pi: lane (x, y), rotated by its offset, moves to (y, 2x + 3y)
#pragma GCC unroll 5
    for (int x = 0; x < 5; x++)
#pragma GCC unroll 5
      for (int y = 0; y < 5; y++) b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], RHO.r[x + 5 * y]);
    // chi: a = b ^ (~b[x + 1] & b[x + 2]) along each row
#pragma GCC unroll 5
    for (int y = 0; y < 25; y += 5)
#pragma GCC unroll 5
      for (int x = 0; x < 5; x++) a[x + y] = b[x + y] ^ (~b[(x + 1) % 5 + y] & b[(x + 2) % 5 + y]);
    // iota
    a[0] ^= RC.rc[round];
  }
}

const size_t KECCAK_RATE = 136;  // bytes: 1600 - 2 x 256 bits of capacity

// XORs a rate-sized block into the state's first 17 lanes (bytes little-endian in each lane).
void absorbBlock(uint64_t a[25], const uint8_t* p) {
  for (size_t i = 0; i < KECCAK_RATE / 8; i++) {
    uint64_t w = 0;
    for (int k = 7; k >= 0; k--) w = (w << 8) | p[8 * i + k];
    a[i] ^= w;
  }
}

// Keccak-256 of n bytes at data into out (32 bytes; may overlap data: it is written after the last read).
void keccak256Bytes(const uint8_t* data, size_t n, uint8_t out[32]) {
  uint64_t a[25] = {};
  for (; n >= KECCAK_RATE; data += KECCAK_RATE, n -= KECCAK_RATE) {
    absorbBlock(a, data);
    keccakF1600(a);
  }
  // the last block, always present (n < 136 here, 0 included): the message's tail, then pad10*1
  uint8_t last[KECCAK_RATE] = {};
  if (n) memcpy(last, data, n);
  last[n] ^= 0x01;
  last[KECCAK_RATE - 1] ^= 0x80;
  absorbBlock(a, last);
  keccakF1600(a);
  for (int i = 0; i < 32; i++) out[i] = (uint8_t)(a[i / 8] >> (8 * (i % 8)));
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

// Copies pub (65 bytes, a checked point) into P; throws (a TypeError for a non-point) and returns false otherwise.
bool pubArg(napi_env env, napi_value v, const char* fn, uint8_t P[65]) {
  const uint8_t* pub;
  size_t np;
  if (!getBytes(env, v, &pub, &np) || np != 65) return false;
  int ok = parsePub(pub);
  if (ok) memcpy(P, pub, 65);
  else {
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
  return boolean(env, recoverBytes(hash, rs, parity, out));
}

// verify(hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, pub: 65 bytes) -> boolean.
napi_value Verify(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t *hash, *rs;
  int parity;
  uint8_t P[65];
  if (argc != 4 || !sigArgs(env, argv, &hash, &rs, &parity) || !pubArg(env, argv[3], "verify", P)) {
    if (!pending(env)) napi_throw_type_error(env, nullptr, "verify takes (hash: 32 bytes, rs: 64 bytes, parity: 0 | 1, pub: 65 bytes)");
    return nullptr;
  }
  return boolean(env, verifyBytes(hash, rs, parity, P));
}

// keccak256(data: Uint8Array, out: 32 bytes) -> void.
napi_value Keccak256(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const uint8_t* data;
  uint8_t* out;
  size_t nd, no;
  if (argc != 2 || !getBytes(env, argv[0], &data, &nd) || !getBytes(env, argv[1], &out, &no) || no != 32) {
    napi_throw_type_error(env, nullptr, "keccak256 takes (data: Uint8Array, out: 32 bytes)");
    return nullptr;
  }
  keccak256Bytes(data, nd, out);
  return nullptr;
}

// ---- The asynchronous forms: signAsync, recoverAsync, verifyAsync.
//
// Each copies its arguments into a Job on the calling thread (the caller's buffers may change or be
// collected while the work waits or runs), runs the operation above on a libuv pool thread
// (napi_create_async_work), and settles its Promise on the JS thread in `complete`. The pool thread
// touches only the Job, its own stack and the shared context, read-only:
//
// Why sharing `ctx` between threads is safe: libsecp256k1's header (include/secp256k1.h, the
// context's doc) says "A constructed context can safely be used from multiple threads
// simultaneously, but API calls that take a non-const pointer to a context need exclusive access to
// it. In particular this is the case for secp256k1_context_destroy, secp256k1_context_preallocated_destroy,
// and secp256k1_context_randomize. Regarding randomization, either do it once at creation time (in
// which case you do not need any locking for the other calls), or use a read-write lock." Here the
// context is created and randomized once, in initContext under std::call_once, before any function
// exists; it is never destroyed (it lives as long as the process) nor randomized again; every call
// made on it afterwards (sign_recoverable, recoverable_signature_parse_compact / serialize_compact,
// recover, ec_pubkey_parse / serialize) takes `const secp256k1_context*`. Their temporaries are on
// the calling thread's stack.
// The concurrency tests (secp.test.ts: 64 and more operations in flight on the pool's threads, each
// answer checked against its synchronous twin) exercise this; they cannot prove there is no race.
//
// Secrets: sign's Job holds a copy of the key; the pool thread wipes it right after signing
// (libsecp256k1 clears its own nonce and key scalars), and the Job's destructor wipes it again on
// every path (a failed queueing included).

struct Job {
  enum Kind { SIGN, RECOVER, VERIFY } kind;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
  uint8_t hash[32], key[32], rs[64], out[65], pub[65];
  int parity = 0;
  const char* err = nullptr;
  int result = 0;
  explicit Job(Kind k) : kind(k) {}
  ~Job() { wipe(key, sizeof key); }
};

void execute(napi_env, void* data) {
  Job* j = (Job*)data;
  switch (j->kind) {
    case Job::SIGN:
      j->err = signBytes(j->hash, j->key, j->out);
      wipe(j->key, sizeof j->key);
      break;
    case Job::RECOVER:
      j->result = recoverBytes(j->hash, j->rs, j->parity, j->out);
      break;
    case Job::VERIFY:
      j->result = verifyBytes(j->hash, j->rs, j->parity, j->pub);
      break;
  }
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
  if (!j) {
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
  std::call_once(ctxOnce, initContext);
  if (!ctx) {
    napi_throw_error(env, nullptr, "tessera_secp: no libsecp256k1 context (out of memory); viem/noble stay the path");
    return nullptr;
  }
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {{"sign", Sign},           {"recover", Recover},           {"verify", Verify},
             {"signAsync", SignAsync}, {"recoverAsync", RecoverAsync}, {"verifyAsync", VerifyAsync}, {"keccak256", Keccak256}};
  for (const auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}
