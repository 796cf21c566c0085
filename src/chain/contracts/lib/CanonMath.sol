// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SoftFloat} from "./SoftFloat.sol";

/// @title CanonMath: the scalar functions and small reductions of the canonical arithmetic
/// @notice EXP, LOG, SIN, COS, SILU, the SUM8 fold, 8-lane DOT8/SUM8 steps, RMSNorm's final
///         scale, IEEE comparisons, floor/trunc, f2h, and Q8/B activation quantization
///         (docs/ARITHMETIC.md), on `uint32` binary32 bit patterns, for the dispute machine's
///         micro-steps (docs/MACHINE.md). Every binary32 step is one SoftFloat op, in the order the
///         spec writes it, so each result equals src/engine/math/canonical.ts and
///         quantizeQ8 in src/engine/kernels/reference.ts bit for bit (differential fuzz:
///         src/chain/onestep/canonmath.evm.test.ts).
/// @dev NaN rule (docs/ARITHMETIC.md "Notation"): every NaN result is the canonical 0x7FC00000;
///      where the spec leaves an op on NaN inputs unspecified (LOG), the judge returns that NaN.
///      Constants are the binary32 values nearest the spec's decimal literals, written as bits;
///      the decimal is in the comment beside each.
library CanonMath {
    using SoftFloat for uint32;

    uint32 internal constant NAN = 0x7FC00000;
    uint32 internal constant INF = 0x7F800000;
    uint32 internal constant SIGN = 0x80000000;
    uint32 internal constant ABS = 0x7FFFFFFF;

    uint32 internal constant ONE = 0x3F800000; // 1
    uint32 internal constant TWO = 0x40000000; // 2
    uint32 internal constant HALF = 0x3F000000; // 0.5
    uint32 internal constant F127 = 0x42FE0000; // 127
    uint32 internal constant POW2_127 = 0x7F000000; // 2^127

    // EXP (docs/ARITHMETIC.md "EXP(x)")
    uint32 internal constant EXP_MAX = 0x42B17218; // 88.72283935546875
    uint32 internal constant EXP_MIN = 0xC2AEAC4F; // -87.33654022216797
    uint32 internal constant LOG2E = 0x3FB8AA3B; // 1.44269502162933349609375
    uint32 internal constant LN2_HI = 0x3F318000; // 0.693359375
    uint32 internal constant LN2_LO = 0xB95E8083; // -2.12194440e-4
    uint32 internal constant E0 = 0x39506967; // 1.9875691500e-4
    uint32 internal constant E1 = 0x3AB743CE; // 1.3981999507e-3
    uint32 internal constant E2 = 0x3C088908; // 8.3334519073e-3
    uint32 internal constant E3 = 0x3D2AA9C1; // 4.1665795894e-2
    uint32 internal constant E4 = 0x3E2AAAAA; // 1.6666665459e-1
    uint32 internal constant E5 = 0x3F000000; // 5.0000001201e-1 (rounds to 0.5)

    // LOG (docs/ARITHMETIC.md "LOG(x)"); the ⊖ terms are ⊕ of the negated constant, which IEEE
    // defines as the same operation.
    uint32 internal constant SQRTH = 0x3F3504F3; // 0.70710677
    uint32 internal constant L0 = 0x3D9021BB; // 7.0376836292e-2
    uint32 internal constant L1 = 0xBDEBD1B8; // -1.1514610310e-1
    uint32 internal constant L2 = 0x3DEF251A; // 1.1676998740e-1
    uint32 internal constant L3 = 0xBDFE5D4F; // -1.2420140846e-1
    uint32 internal constant L4 = 0x3E11E9BF; // 1.4249322787e-1
    uint32 internal constant L5 = 0xBE2AAE50; // -1.6668057665e-1
    uint32 internal constant L6 = 0x3E4CCEAC; // 2.0000714765e-1
    uint32 internal constant L7 = 0xBE7FFFFC; // -2.4999993993e-1
    uint32 internal constant L8 = 0x3EAAAAAA; // 3.3333331174e-1

    // SIN, COS (docs/ARITHMETIC.md "SIN(x), COS(x)")
    uint32 internal constant FOPI = 0x3FA2F983; // 1.27323954473516 (4/π)
    uint32 internal constant DP1 = 0x3F490000; // 0.78515625
    uint32 internal constant DP2 = 0x397DA000; // 2.4187564849853515625e-4
    uint32 internal constant DP3 = 0x33222169; // 3.77489497744594108e-8
    uint32 internal constant S0 = 0xB94CA1F9; // -1.9515295891e-4
    uint32 internal constant S1 = 0x3C08839E; // 8.3321608736e-3
    uint32 internal constant S2 = 0xBE2AAAA3; // -1.6666654611e-1
    uint32 internal constant C0 = 0x37CCF5CE; // 2.443315711809948e-5
    uint32 internal constant C1 = 0xBAB6061A; // -1.388731625493765e-3
    uint32 internal constant C2 = 0x3D2AAAA5; // 4.166664568298827e-2

    // ---------------------------------------------------------------- classification, comparison

    /// @notice Whether x is a NaN (any payload, either sign).
    function isNaN(uint32 x) internal pure returns (bool) {
        return x & ABS > INF;
    }

    /// @notice -x, except that a NaN stays the canonical NaN (the judge never emits a signed NaN).
    function neg(uint32 x) internal pure returns (uint32) {
        return x & ABS > INF ? NAN : x ^ SIGN;
    }

    /// @notice An integer with the order of the binary32 values it stands for (±0 both map to 0).
    /// @dev Sign-magnitude to two's complement; only meaningful for non-NaN x.
    function key(uint32 x) private pure returns (int256) {
        return x & SIGN != 0 ? -int256(uint256(x & ABS)) : int256(uint256(x));
    }

    /// @notice a > b as IEEE-754 orders them: false when either is NaN, and +0 > -0 is false.
    ///         The MAX op's `s > m replaces` and ARGMAX's strict `>` (ties keep the lower id).
    function gt(uint32 a, uint32 b) internal pure returns (bool) {
        if (a & ABS > INF || b & ABS > INF) return false;
        return key(a) > key(b);
    }

    /// @notice a ≥ b per IEEE-754 (false when either is NaN; +0 ≥ -0 is true).
    function ge(uint32 a, uint32 b) internal pure returns (bool) {
        if (a & ABS > INF || b & ABS > INF) return false;
        return key(a) >= key(b);
    }

    /// @notice a < b per IEEE-754 (false when either is NaN).
    function lt(uint32 a, uint32 b) internal pure returns (bool) {
        return gt(b, a);
    }

    /// @notice a ≤ b per IEEE-754 (false when either is NaN).
    function le(uint32 a, uint32 b) internal pure returns (bool) {
        return ge(b, a);
    }

    // ---------------------------------------------------------------- integer conversions

    /// @notice `i2f(n)` for any integer |n| < 2^128, round to nearest even (docs/ARITHMETIC.md
    ///         "Notation"; the spec's arguments are int32, for which this equals SoftFloat.i2f).
    ///         0 gives +0.
    function i2f(int256 n) internal pure returns (uint32) {
        unchecked {
            if (n == 0) return 0;
            if (n < 0) return SoftFloat.pack(SIGN, 0, uint256(-n));
            return SoftFloat.pack(0, 0, uint256(n));
        }
    }

    /// @notice floor(x) of a finite binary32 as an integer (|x| < 2^128 always fits int256).
    /// @dev Non-finite x is outside the spec's uses (EXP floors only inside its finite range):
    ///      NaN gives 0, ±Inf the int256 extremes.
    function floor(uint32 x) internal pure returns (int256) {
        unchecked {
            (uint256 q, bool inexact) = magnitude(x);
            if (x & ABS > INF) return 0;
            if (x & ABS == INF) return x & SIGN != 0 ? type(int256).min : type(int256).max;
            if (x & SIGN == 0) return int256(q);
            return -int256(q) - (inexact ? int256(1) : int256(0));
        }
    }

    /// @notice trunc(x) (towards zero) of a finite binary32 as an integer; non-finite as `floor`.
    function trunc(uint32 x) internal pure returns (int256) {
        unchecked {
            (uint256 q,) = magnitude(x);
            if (x & ABS > INF) return 0;
            if (x & ABS == INF) return x & SIGN != 0 ? type(int256).min : type(int256).max;
            return x & SIGN == 0 ? int256(q) : -int256(q);
        }
    }

    /// @notice floor(|x|) and whether |x| had a fraction, for finite x.
    function magnitude(uint32 x) private pure returns (uint256 q, bool inexact) {
        unchecked {
            uint256 e = (x >> 23) & 0xFF;
            uint256 m = x & 0x7FFFFF;
            if (e < 127) return (0, e != 0 || m != 0); // |x| < 1
            m |= 0x800000;
            // |x| = m * 2^(e - 150)
            if (e >= 150) return (m << (e - 150), false);
            uint256 s = 150 - e;
            return (m >> s, m & ((1 << s) - 1) != 0);
        }
    }

    // ---------------------------------------------------------------- EXP, LOG

    /// @notice EXP(x), docs/ARITHMETIC.md "EXP(x)": Cody-Waite reduction by ln 2 and Cephes'
    ///         degree-6 polynomial. No subnormal results: x ≤ EXP_MIN gives +0.
    function exp(uint32 x) internal pure returns (uint32) {
        unchecked {
            if (x & ABS > INF) return NAN; // "if x is NaN: NaN"
            if (ge(x, EXP_MAX)) return INF; // "if x ≥ 88.72283935546875: +Inf"
            if (le(x, EXP_MIN)) return 0; // "if x ≤ -87.33654022216797: +0"
            // k = floor((x ⊗ log2e) ⊕ 0.5), in [-126, 128] inside the range above
            int256 k = floor(x.mul(LOG2E).add(HALF));
            uint32 kf = i2f(k);
            // r = (x ⊖ (kf ⊗ ln2_hi)) ⊖ (kf ⊗ ln2_lo)
            uint32 r = x.sub(kf.mul(LN2_HI)).sub(kf.mul(LN2_LO));
            // Horner, left to right, then ((P ⊗ (r ⊗ r)) ⊕ r) ⊕ 1
            uint32 p = E0.mul(r).add(E1);
            p = p.mul(r).add(E2);
            p = p.mul(r).add(E3);
            p = p.mul(r).add(E4);
            p = p.mul(r).add(E5);
            p = p.mul(r.mul(r)).add(r).add(ONE);
            // p ⊗ 2^k with 2^k from its bits (k ≥ -126); k = 128 needs two steps: 2^128 overflows
            if (k <= 127) return p.mul(uint32(uint256(k + 127) << 23));
            return p.mul(POW2_127).mul(TWO);
        }
    }

    /// @notice LOG(x), docs/ARITHMETIC.md "LOG(x)" (Cephes logf), defined for positive normal x
    ///         (the RoPE base). Other non-NaN inputs follow the same bit steps as the engine
    ///         (canonical.ts `log`), so the judge agrees with it on any config; NaN gives NaN.
    function log(uint32 x) internal pure returns (uint32) {
        unchecked {
            if (x & ABS > INF) return NAN;
            // x = m·2^e with m in [0.5, 1): the exponent field rebased, the fraction given exponent -1
            int256 e = int256(uint256((x >> 23) & 0xFF)) - 126;
            uint32 m = (x & 0x807FFFFF) | (126 << 23);
            // "if m < 0.70710677: e = e-1, m = m ⊕ m"
            if (lt(m, SQRTH)) {
                e -= 1;
                m = m.add(m);
            }
            uint32 f = m.sub(ONE);
            uint32 z = f.mul(f);
            uint32 y = L0.mul(f).add(L1);
            y = y.mul(f).add(L2);
            y = y.mul(f).add(L3);
            y = y.mul(f).add(L4);
            y = y.mul(f).add(L5);
            y = y.mul(f).add(L6);
            y = y.mul(f).add(L7);
            y = y.mul(f).add(L8);
            y = y.mul(f).mul(z);
            uint32 ef = i2f(e);
            y = y.add(ef.mul(LN2_LO)); // y ⊕ (ef ⊗ -2.12194440e-4)
            y = y.sub(z.mul(HALF)); // y ⊖ (z ⊗ 0.5)
            return f.add(y).add(ef.mul(LN2_HI)); // (f ⊕ y) ⊕ (ef ⊗ 0.693359375)
        }
    }

    // ---------------------------------------------------------------- SIN, COS

    /// @notice SIN(x), docs/ARITHMETIC.md "SIN(x), COS(x)", for RoPE angles x ≥ 0.
    /// @dev Negative x follows the engine's steps too (trunc towards zero, two's-complement octant).
    function sin(uint32 x) internal pure returns (uint32) {
        (uint256 j, uint32 r, bool ok) = reduce(x);
        if (!ok) return NAN;
        // j ∈ {0,4}: Sp, j ∈ {2,6}: Cp, negated when j ≥ 4
        uint32 v = (j == 0 || j == 4) ? sinPoly(r) : cosPoly(r);
        return j >= 4 ? neg(v) : v;
    }

    /// @notice COS(x), docs/ARITHMETIC.md "SIN(x), COS(x)", for RoPE angles x ≥ 0.
    function cos(uint32 x) internal pure returns (uint32) {
        (uint256 j, uint32 r, bool ok) = reduce(x);
        if (!ok) return NAN;
        // cos = Cp, -Sp, -Cp, Sp for j = 0, 2, 4, 6
        uint32 v = (j == 0 || j == 4) ? cosPoly(r) : sinPoly(r);
        return (j == 2 || j == 4) ? neg(v) : v;
    }

    /// @notice The π/4-octant reduction: even octant j mod 8 and remainder r; ok = false when
    ///         x ⊗ 4/π is NaN or ±Inf (then the engine's remainder is ±Inf or NaN and both
    ///         polynomials end in Inf - Inf: the result is NaN).
    function reduce(uint32 x) private pure returns (uint256 j, uint32 r, bool ok) {
        unchecked {
            uint32 t = x.mul(FOPI);
            if (t & ABS >= INF) return (0, 0, false);
            // "j = trunc(x ⊗ 1.27323954473516); if j odd: j = j+1; y = i2f(j)"
            int256 jt = trunc(t);
            uint32 y;
            if (jt == 0) {
                // the engine's Math.trunc keeps the sign of a zero, and y = f(-0) = -0 changes
                // the sign of r = ±0 below
                y = t & SIGN;
            } else {
                if (jt & 1 != 0) jt += 1;
                y = i2f(jt);
            }
            // r = ((x ⊖ y ⊗ DP1) ⊖ y ⊗ DP2) ⊖ y ⊗ DP3
            r = x.sub(y.mul(DP1)).sub(y.mul(DP2)).sub(y.mul(DP3));
            // "j = j mod 8": two's complement keeps the residue for negative j as the engine's `& 7`
            j = uint256(jt) & 7;
            ok = true;
        }
    }

    /// @notice Sp(r) = (((S0 ⊗ z ⊕ S1) ⊗ z ⊕ S2) ⊗ z ⊗ r) ⊕ r, z = r ⊗ r.
    function sinPoly(uint32 r) private pure returns (uint32) {
        uint32 z = r.mul(r);
        return S0.mul(z).add(S1).mul(z).add(S2).mul(z).mul(r).add(r);
    }

    /// @notice Cp(r) = ((((C0 ⊗ z ⊕ C1) ⊗ z ⊕ C2) ⊗ z ⊗ z) ⊖ (0.5 ⊗ z)) ⊕ 1, z = r ⊗ r.
    function cosPoly(uint32 r) private pure returns (uint32) {
        uint32 z = r.mul(r);
        uint32 y = C0.mul(z).add(C1).mul(z).add(C2).mul(z).mul(z);
        return y.sub(HALF.mul(z)).add(ONE);
    }

    // ---------------------------------------------------------------- SILU, RMS scale

    /// @notice SILU(x) = x ⊘ (1 ⊕ EXP(0 ⊖ x)) (docs/ARITHMETIC.md "SILU(x)").
    function silu(uint32 x) internal pure returns (uint32) {
        return x.div(ONE.add(exp(uint32(0).sub(x))));
    }

    /// @notice RMSNorm's scale `1 ⊘ √((ss ⊘ i2f(n)) ⊕ eps)` from the folded sum of squares `ss`
    ///         (docs/ARITHMETIC.md "The ops", 1; docs/MACHINE.md RMS_FINAL).
    function rmsScale(uint32 ss, int32 n, uint32 eps) internal pure returns (uint32) {
        return ONE.div(ss.div(SoftFloat.i2f(n)).add(eps).sqrt());
    }

    // ---------------------------------------------------------------- SUM8 / DOT8

    /// @notice The tree that closes SUM8 (docs/ARITHMETIC.md "SUM8"): s_l = acc_l ⊕ acc_{l+4},
    ///         t0 = s0 ⊕ s2, t1 = s1 ⊕ s3, SUM8 = t0 ⊕ t1.
    function fold8(uint32[8] memory a) internal pure returns (uint32) {
        uint32 t0 = a[0].add(a[4]).add(a[2].add(a[6]));
        uint32 t1 = a[1].add(a[5]).add(a[3].add(a[7]));
        return t0.add(t1);
    }

    /// @notice One SUM8 step: element i < n of x is element `first + i` of the reduced sequence,
    ///         so it goes to lane (first + i) mod 8 (docs/ARITHMETIC.md "SUM8"). A step whose read
    ///         starts mid-sequence (an aligned group of a vector that does not start at a multiple
    ///         of 8, as ZINV's) wraps around the lanes. Requires n ≤ 8.
    function sum8Step(uint32[8] memory acc, uint256 first, uint32[8] memory x, uint256 n)
        internal
        pure
        returns (uint32[8] memory)
    {
        unchecked {
            for (uint256 i; i < n && i < 8; ++i) {
                uint256 l = (first + i) & 7;
                acc[l] = acc[l].add(x[i]);
            }
        }
        return acc;
    }

    /// @notice One DOT8 step: acc_l ⊕= a_i ⊗ b_i at lane l = (first + i) mod 8, i < n ≤ 8 (no fused
    ///         multiply-add: the product is rounded first).
    function dot8Step(uint32[8] memory acc, uint256 first, uint32[8] memory a, uint32[8] memory b, uint256 n)
        internal
        pure
        returns (uint32[8] memory)
    {
        unchecked {
            for (uint256 i; i < n && i < 8; ++i) {
                uint256 l = (first + i) & 7;
                acc[l] = acc[l].add(a[i].mul(b[i]));
            }
        }
        return acc;
    }

    /// @notice DOT8 of exactly 8 pairs: fold8 of one dot8Step from +0 lanes.
    function dot8(uint32[8] memory a, uint32[8] memory b) internal pure returns (uint32) {
        uint32[8] memory acc;
        return fold8(dot8Step(acc, 0, a, b, 8));
    }

    // ---------------------------------------------------------------- binary16, activation quantization

    /// @notice binary32 to IEEE binary16 bits, round to nearest even, subnormals kept, overflow to
    ///         ±Inf; a NaN gives the quiet binary16 NaN with its sign (src/engine/math/half.ts f2h).
    function f2h(uint32 x) internal pure returns (uint16) {
        unchecked {
            uint256 sign = (x >> 16) & 0x8000;
            uint256 ex = (x >> 23) & 0xFF;
            uint256 man = x & 0x7FFFFF;
            if (ex == 0xFF) return uint16(sign | 0x7C00 | (man != 0 ? 0x200 : 0));
            int256 e = int256(ex) - 127 + 15;
            if (e >= 31) return uint16(sign | 0x7C00);
            uint256 h;
            if (e <= 0) {
                // binary16 subnormal: keep 24 - shift bits of the significand (shift 14..24)
                if (e < -10) return uint16(sign);
                man |= 0x800000;
                uint256 shift = uint256(14 - e);
                uint256 half = 1 << (shift - 1);
                uint256 rest = man & ((1 << shift) - 1);
                h = man >> shift;
                if (rest > half || (rest == half && h & 1 == 1)) h++;
                return uint16(sign | h);
            }
            uint256 low = man & 0x1FFF;
            h = (uint256(e) << 10) | (man >> 13);
            // a carry out of the fraction bumps the exponent, up to Inf: still the right rounding
            if (low > 0x1000 || (low == 0x1000 && h & 1 == 1)) h++;
            return uint16(sign | h);
        }
    }

    /// @notice h2f(f2h(d)): d rounded to binary16 and back, the B = 32 block scale d_a
    ///         (docs/ARITHMETIC.md "Activation quantization", llama.cpp block_q8_0).
    function roundHalf(uint32 d) internal pure returns (uint32) {
        return SoftFloat.h2f(f2h(d));
    }

    /// @notice AMAX step: max(acc, |x_0|, .., |x_31|), a NaN anywhere giving NaN (the engine's
    ///         Math.max). Start a block with acc = +0; a B = 256 block takes 8 steps.
    /// @dev With the sign cleared, binary32 order is integer order, and every NaN pattern is above
    ///      +Inf, so an integer max propagates NaN by itself.
    function amax32(uint32 acc, uint32[32] memory x) internal pure returns (uint32) {
        uint256 m = acc & ABS;
        unchecked {
            for (uint256 i; i < 32; ++i) {
                uint256 a = x[i] & ABS;
                if (a > m) m = a;
            }
        }
        return m > INF ? NAN : uint32(m);
    }

    /// @notice SCALE step of a block: d = amax ⊘ 127, id = (d == 0) ? 0 : 1 ⊘ d, and the stored
    ///         scale d_a = h2f(f2h(d)) for B = 32, d for B = 256 (q always uses the unrounded d's id).
    function blockScale(uint32 amax, bool b32) internal pure returns (uint32 d, uint32 id, uint32 da) {
        d = amax.div(F127);
        id = d & ABS == 0 ? 0 : ONE.div(d);
        da = b32 ? roundHalf(d) : d;
    }

    /// @notice QUANT step: q_i = clamp(roundHalfAwayFromZero(x_i ⊗ id), -127, 127) for 32 values;
    ///         a NaN product (0 ⊗ ∞, NaN input) gives 0, as the engine's Int8Array store does.
    function quantize32(uint32[32] memory x, uint32 id) internal pure returns (int8[32] memory q) {
        unchecked {
            for (uint256 i; i < 32; ++i) {
                q[i] = roundClamp(x[i].mul(id));
            }
        }
    }

    /// @notice The same as `quantize32`, packed: byte i of the result is q_i (two's complement),
    ///         the layout of `qa` in an activation block leaf.
    function quantize32Packed(uint32[32] memory x, uint32 id) internal pure returns (bytes32 q) {
        uint256 acc;
        unchecked {
            for (uint256 i; i < 32; ++i) {
                acc = (acc << 8) | uint256(uint8(roundClamp(x[i].mul(id))));
            }
        }
        return bytes32(acc);
    }

    /// @notice roundHalfAwayFromZero(v) clamped to ±127; NaN gives 0.
    function roundClamp(uint32 v) internal pure returns (int8) {
        unchecked {
            uint256 a = v & ABS;
            if (a > INF) return 0;
            int256 n;
            if (a >= 0x43000000) {
                n = 127; // |v| ≥ 128 (Inf included) clamps
            } else if (a < 0x3F000000) {
                return 0; // |v| < 0.5 (±0 included)
            } else {
                // |v| = m·2^(e-150), e in [126, 134]: floor(|v| + 0.5) = (m + 2^(s-1)) >> s, s = 150 - e
                uint256 s = 150 - (a >> 23);
                n = int256((((a & 0x7FFFFF) | 0x800000) + (1 << (s - 1))) >> s);
                if (n > 127) n = 127;
            }
            return int8(v & SIGN != 0 ? -n : n);
        }
    }
}
