// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title SoftFloat: IEEE-754 binary32 arithmetic on bit patterns
/// @notice add, sub, mul, div, sqrt, i2f and h2f of docs/ARITHMETIC.md on `uint32` bit patterns,
///         rounding to nearest, ties to even, with subnormals (no flush to zero), signed zeros and
///         infinities as IEEE-754 prescribes. Every NaN result is the canonical quiet NaN
///         0x7FC00000, whatever the NaN inputs were (docs/ONESTEP.md).
/// @dev Method: a finite operand is `m * 2^(e - 150)` with `m` its 24-bit significand (hidden bit
///      included; a subnormal has e = 1 and no hidden bit). Each op builds its exact result, or a
///      stand-in that rounds identically, as an integer `m` times `2^k`, and `pack` rounds it once.
///      All intermediate integers stay below 2^128, so uint256 never overflows: `unchecked` is safe.
///      The TypeScript twin src/chain/onestep/softfloat.ts follows the same steps with BigInt.
library SoftFloat {
    /// @notice The canonical quiet NaN every NaN result is replaced by.
    uint32 internal constant NAN = 0x7FC00000;
    /// @notice +Infinity.
    uint32 internal constant INF = 0x7F800000;
    /// @notice The sign bit.
    uint32 internal constant SIGN = 0x80000000;

    /// @notice a ⊕ b.
    function add(uint32 a, uint32 b) internal pure returns (uint32) {
        unchecked {
            uint256 ea = (a >> 23) & 0xFF;
            uint256 eb = (b >> 23) & 0xFF;
            if (ea == 0xFF || eb == 0xFF) {
                if ((a & 0x7FFFFFFF) > INF || (b & 0x7FFFFFFF) > INF) return NAN;
                // Inf + Inf of opposite signs is invalid; any other sum with an Inf is that Inf.
                if (ea == 0xFF) return (eb == 0xFF && a != b) ? NAN : a;
                return b;
            }
            uint256 ma = a & 0x7FFFFF;
            uint256 mb = b & 0x7FFFFF;
            if (ea == 0 && ma == 0) {
                // -0 + -0 = -0; +0 + -0 = +0 under round-to-nearest; 0 + y = y exactly.
                return (eb == 0 && mb == 0) ? a & b : b;
            }
            if (eb == 0 && mb == 0) return a;
            if (ea == 0) ea = 1;
            else ma |= 0x800000;
            if (eb == 0) eb = 1;
            else mb |= 0x800000;
            uint256 sign = a & SIGN;
            if (ea < eb) {
                (ea, eb) = (eb, ea);
                (ma, mb) = (mb, ma);
                sign = b & SIGN;
            }
            // Align b to a exactly. When a is more than 64 binades above b (a is then normal), b
            // is far below a's rounding position: placed 64 binades down instead, it is still
            // under 2^-40 ulp(a) while the nearest rounding boundary is at least ulp(a)/4 away,
            // so every rounding decision is unchanged, and the sum stays below 2^89.
            uint256 d = ea - eb;
            if (d > 64) d = 64;
            uint256 x = ma << d;
            uint256 m;
            if ((a ^ b) & SIGN == 0) {
                m = x + mb;
            } else if (x >= mb) {
                m = x - mb;
                // INVARIANT: exact cancellation gives +0 under round-to-nearest.
                if (m == 0) return 0;
            } else {
                // Only when ea == eb: b is the larger magnitude and gives the sign.
                m = mb - x;
                sign ^= SIGN;
            }
            return pack(sign, int256(ea) - 150 - int256(d), m);
        }
    }

    /// @notice a ⊖ b, which IEEE-754 defines as a ⊕ (-b) (signed zeros included).
    function sub(uint32 a, uint32 b) internal pure returns (uint32) {
        return add(a, b ^ SIGN);
    }

    /// @notice a ⊗ b.
    function mul(uint32 a, uint32 b) internal pure returns (uint32) {
        unchecked {
            uint256 ea = (a >> 23) & 0xFF;
            uint256 eb = (b >> 23) & 0xFF;
            uint256 ma = a & 0x7FFFFF;
            uint256 mb = b & 0x7FFFFF;
            uint256 sign = (a ^ b) & SIGN;
            if (ea == 0xFF || eb == 0xFF) {
                if ((a & 0x7FFFFFFF) > INF || (b & 0x7FFFFFFF) > INF) return NAN;
                // Inf * 0 is invalid.
                if ((ea == 0 && ma == 0) || (eb == 0 && mb == 0)) return NAN;
                return uint32(sign) | INF;
            }
            if ((ea == 0 && ma == 0) || (eb == 0 && mb == 0)) return uint32(sign);
            if (ea == 0) ea = 1;
            else ma |= 0x800000;
            if (eb == 0) eb = 1;
            else mb |= 0x800000;
            // The product of two 24-bit significands is exact in 48 bits.
            return pack(sign, int256(ea) + int256(eb) - 300, ma * mb);
        }
    }

    /// @notice a ⊘ b.
    function div(uint32 a, uint32 b) internal pure returns (uint32) {
        unchecked {
            uint256 ea = (a >> 23) & 0xFF;
            uint256 eb = (b >> 23) & 0xFF;
            uint256 ma = a & 0x7FFFFF;
            uint256 mb = b & 0x7FFFFF;
            uint256 sign = (a ^ b) & SIGN;
            if (ea == 0xFF || eb == 0xFF) {
                if ((a & 0x7FFFFFFF) > INF || (b & 0x7FFFFFFF) > INF) return NAN;
                if (ea == 0xFF) return eb == 0xFF ? NAN : uint32(sign) | INF; // Inf/Inf is invalid
                return uint32(sign); // finite / Inf
            }
            bool za = ea == 0 && ma == 0;
            if (eb == 0 && mb == 0) return za ? NAN : uint32(sign) | INF; // 0/0 invalid, x/0 = Inf
            if (za) return uint32(sign);
            if (ea == 0) ea = 1;
            else ma |= 0x800000;
            if (eb == 0) eb = 1;
            else mb |= 0x800000;
            // 80 extra quotient bits leave at least 57 significant bits, so the rounding bit is
            // exact and the remainder only needs to survive as a sticky bit below it.
            uint256 n = ma << 80;
            uint256 q = n / mb;
            uint256 m = (q << 1) | (n % mb == 0 ? 0 : 1);
            return pack(sign, int256(ea) - int256(eb) - 81, m);
        }
    }

    /// @notice √a (√-0 = -0, √ of any other negative is NaN).
    function sqrt(uint32 a) internal pure returns (uint32) {
        unchecked {
            if (a & 0x7FFFFFFF == 0) return a;
            if (a & SIGN != 0) return NAN;
            uint256 e = (a >> 23) & 0xFF;
            uint256 m = a & 0x7FFFFF;
            if (e == 0xFF) return m == 0 ? a : NAN;
            if (e == 0) e = 1;
            else m |= 0x800000;
            // value = m * 2^(e-150); make the exponent even so the root's exponent is an integer.
            int256 k = int256(e) - 150;
            if (k & 1 != 0) {
                m <<= 1;
                k -= 1;
            }
            // sqrt(m * 2^80) has at least 40 bits; its remainder becomes the sticky bit (a binary32
            // square root is never exactly halfway, but the sticky bit keeps that out of the proof).
            uint256 n = m << 80;
            uint256 r = isqrt(n);
            return pack(0, k / 2 - 41, (r << 1) | (r * r == n ? 0 : 1));
        }
    }

    /// @notice int32 to binary32, round to nearest even.
    function i2f(int32 n) internal pure returns (uint32) {
        unchecked {
            if (n == 0) return 0;
            if (n < 0) return pack(SIGN, 0, uint256(-int256(n)));
            return pack(0, 0, uint256(int256(n)));
        }
    }

    /// @notice IEEE binary16 bits to binary32 bits (exact; a NaN gives the canonical NaN).
    function h2f(uint16 h) internal pure returns (uint32) {
        unchecked {
            uint256 sign = uint256(h & 0x8000) << 16;
            uint256 e = (h >> 10) & 0x1F;
            uint256 m = h & 0x3FF;
            if (e == 0x1F) return m == 0 ? uint32(sign) | INF : NAN;
            if (e == 0) return m == 0 ? uint32(sign) : pack(sign, -24, m);
            // Rebias 15 -> 127 and widen the fraction 10 -> 23 bits.
            return uint32(sign | ((e + 112) << 23) | (m << 13));
        }
    }

    /// @notice Rounds `m * 2^k` (m > 0, m < 2^128) to binary32 with sign bit `sign` (0 or SIGN).
    /// @dev Exactness contract for callers: either `m * 2^k` is the exact value, or m's lowest bit
    ///      is a sticky bit standing for a nonzero remainder below it and m carries at least two
    ///      bits more than the rounded significand keeps. Overflow gives ±Inf, underflow rounds
    ///      into the subnormals and to ±0.
    function pack(uint256 sign, int256 k, uint256 m) internal pure returns (uint32) {
        unchecked {
            int256 len = int256(bitLength(m));
            // Keep 24 bits, or fewer where the result is subnormal (exponent pinned at 2^-149).
            int256 shift = len - 24;
            if (shift < -(k + 149)) shift = -(k + 149);
            uint256 q;
            if (shift <= 0) {
                q = m << uint256(-shift);
            } else {
                // Everything is below half of the smallest subnormal: rounds to zero.
                if (shift > len) return uint32(sign);
                uint256 s = uint256(shift);
                q = m >> s;
                uint256 rest = m & ((1 << s) - 1);
                uint256 half = 1 << (s - 1);
                if (rest > half || (rest == half && q & 1 == 1)) q += 1;
            }
            // q carries the hidden bit, so adding it bumps the exponent field by one for normal
            // results, and a rounding carry to 2^24 moves to the next binade by itself.
            uint256 bits = (uint256(k + shift + 149) << 23) + q;
            if (bits >= INF) return uint32(sign) | INF;
            return uint32(sign | bits);
        }
    }

    /// @notice Number of significant bits of x (x < 2^128), 0 for 0; a branch-free binary search.
    function bitLength(uint256 x) internal pure returns (uint256 r) {
        assembly {
            r := shl(6, gt(x, 0xFFFFFFFFFFFFFFFF))
            r := or(r, shl(5, gt(shr(r, x), 0xFFFFFFFF)))
            r := or(r, shl(4, gt(shr(r, x), 0xFFFF)))
            r := or(r, shl(3, gt(shr(r, x), 0xFF)))
            r := or(r, shl(2, gt(shr(r, x), 0xF)))
            r := or(r, shl(1, gt(shr(r, x), 0x3)))
            r := or(r, gt(shr(r, x), 0x1))
            r := add(r, gt(x, 0))
        }
    }

    /// @notice floor(sqrt(n)) for 0 < n < 2^128.
    /// @dev Newton's iteration from 2^ceil(len/2) >= sqrt(n), within a factor 2 of it: the relative
    ///      error squares each step (1, 1/4, 1/40, 3e-4, 5e-8, 1e-15, 6e-31), so six steps reach
    ///      floor or floor+1 for any root below 2^64, and the last line picks floor.
    function isqrt(uint256 n) internal pure returns (uint256 x) {
        unchecked {
            x = 1 << ((bitLength(n) + 1) >> 1);
            x = (x + n / x) >> 1;
            x = (x + n / x) >> 1;
            x = (x + n / x) >> 1;
            x = (x + n / x) >> 1;
            x = (x + n / x) >> 1;
            x = (x + n / x) >> 1;
            if (x * x > n) x -= 1;
        }
    }
}
