// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SoftFloat} from "./SoftFloat.sol";

/// @notice A weight block or activation block whose length does not match its type.
error OneStepBadBlock(uint256 ggmlType, uint256 weightBytes, uint256 activationBytes);
/// @notice A GGML type without a block term in docs/ARITHMETIC.md (only Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
///         Q2_K, Q3_K, Q4_K, Q5_K, Q6_K).
error OneStepUnsupportedType(uint256 ggmlType);

/// @title BlockDot: one block term of a quantized weight-row dot product
/// @notice The `term_b` column of docs/ARITHMETIC.md's rowdot table for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
///         Q2_K, Q3_K, Q4_K, Q5_K and Q6_K:
///         the exact integer sums of one raw GGUF weight block against one int8 activation block,
///         then the binary32 steps through SoftFloat. Weight bytes are llama.cpp's block layouts
///         (little-endian f16 scales); activations are B two's-complement int8 bytes (B = 32 for
///         Q8_0/Q4_0/Q4_1/Q5_0/Q5_1, 256 for the K-quants); `da` is the activation block's scale as binary32 bits.
/// @dev Every integer sum is far below 2^31 in magnitude (|S| <= 128*32*128*256 < 2^28 even for
///      int8 -128 activations), so the int32 cast before i2f never truncates.
library BlockDot {
    /// @notice GGML type ids (ggml.h), frozen by the GGUF format.
    uint256 internal constant Q4_0 = 2;
    uint256 internal constant Q4_1 = 3;
    uint256 internal constant Q5_0 = 6;
    uint256 internal constant Q5_1 = 7;
    uint256 internal constant Q8_0 = 8;
    uint256 internal constant Q2_K = 10;
    uint256 internal constant Q3_K = 11;
    uint256 internal constant Q4_K = 12;
    uint256 internal constant Q5_K = 13;
    uint256 internal constant Q6_K = 14;

    /// @notice term_b of docs/ARITHMETIC.md for one block, as binary32 bits.
    /// @param ggmlType 2 (Q4_0), 3 (Q4_1), 6 (Q5_0), 7 (Q5_1), 8 (Q8_0), 10 (Q2_K), 11 (Q3_K), 12 (Q4_K),
    ///        13 (Q5_K) or 14 (Q6_K).
    /// @param w The block's raw bytes: 18, 20, 22, 24, 34, 84, 110, 144, 176 or 210 bytes.
    /// @param qa The activation block: 32 or 256 int8 values, one byte each.
    /// @param da The activation block scale (binary32 bits).
    function term(uint256 ggmlType, bytes memory w, bytes memory qa, uint32 da) internal pure returns (uint32) {
        (int256 s1, int256 s2) = sums(ggmlType, w, qa);
        if (ggmlType == Q2_K) return SoftFloat.sub(scaled(f16At(w, 80), da, s1), scaled(f16At(w, 82), da, s2));
        if (ggmlType == Q3_K) return scaled(f16At(w, 108), da, s1);
        if (ggmlType == Q4_K || ggmlType == Q5_K) {
            return SoftFloat.sub(scaled(f16At(w, 0), da, s1), scaled(f16At(w, 2), da, s2));
        }
        if (ggmlType == Q4_1 || ggmlType == Q5_1) {
            return SoftFloat.add(scaled(f16At(w, 0), da, s1), scaled(f16At(w, 2), da, s2));
        }
        // Q8_0, Q4_0 and Q5_0 keep d in bytes 0..1, Q6_K in bytes 208..209.
        return scaled(f16At(w, ggmlType == Q6_K ? 208 : 0), da, s1);
    }

    /// @notice The exact integer sums of a block: (S, 0) for Q8_0, Q4_0, Q5_0, Q6_K and (S1, S2) for
    ///         Q4_1, Q5_1 (S2 = Σ qa), Q2_K, Q4_K and Q5_K (docs/ARITHMETIC.md); Q3_K's S is (S, 0). Reverts OneStepBadBlock on a wrong length and
    ///         OneStepUnsupportedType on a type without a block term.
    /// @dev Bit-plane SWAR instead of a loop per element (about 2.5x less gas). For unsigned
    ///      weight values v_i < 2^bits and int8 activations a_i,
    ///        Σ v_i·a_i = Σ_b 2^b · Σ_{i: bit b of v_i set} a_i,
    ///      and each plane sum is a byte sum of (a_i + 128) masked by the plane, less 128 per
    ///      selected byte (128·Σ v_i over all planes). Byte sums of a 32-byte word come from two
    ///      masks and one multiply (`halves`). Signed weights are shifted to unsigned first
    ///      (Q8_0: w + 128; Q4_0: q; Q6_K: q) and the offsets subtracted with Σ a_i. All values are
    ///      two's complement in 256 bits; every true sum is below 2^28 in magnitude.
    function sums(uint256 ggmlType, bytes memory w, bytes memory qa) internal pure returns (int256 s1, int256 s2) {
        if (ggmlType == Q8_0) checkLengths(ggmlType, w, qa, 34, 32);
        else if (ggmlType == Q4_0) checkLengths(ggmlType, w, qa, 18, 32);
        else if (ggmlType == Q4_1) checkLengths(ggmlType, w, qa, 20, 32);
        else if (ggmlType == Q5_0) checkLengths(ggmlType, w, qa, 22, 32);
        else if (ggmlType == Q5_1) checkLengths(ggmlType, w, qa, 24, 32);
        else if (ggmlType == Q2_K) checkLengths(ggmlType, w, qa, 84, 256);
        else if (ggmlType == Q3_K) checkLengths(ggmlType, w, qa, 110, 256);
        else if (ggmlType == Q4_K) checkLengths(ggmlType, w, qa, 144, 256);
        else if (ggmlType == Q5_K) checkLengths(ggmlType, w, qa, 176, 256);
        else if (ggmlType == Q6_K) checkLengths(ggmlType, w, qa, 210, 256);
        // INVARIANT: only the ten quantized types of the arithmetic have block terms.
        else revert OneStepUnsupportedType(ggmlType);
        assembly {
            // Sums of the unsigned bytes 0..15 (hi) and 16..31 (lo) of x (byte 0 = most significant):
            // bytes pair up into sixteen 16-bit lanes, and one multiply by eight 1-lanes adds
            // lanes 8..15 into the top lane and lanes 0..7 into lane 7. Every lane sum is at most
            // 8·510 < 2^16, so no carry crosses lanes.
            function halves(x) -> hi, lo {
                let m := 0x00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF
                let p := mul(add(and(x, m), and(shr(8, x), m)), 0x00010001000100010001000100010001)
                hi := shr(240, p)
                lo := and(shr(112, p), 0xFFFF)
            }
            // Σ v_i·a_i over each half, for bytes v_i < 2^bits of v and int8 bytes a_i of av.
            function dot(v, av, bits) -> hi, lo {
                let a := xor(av, 0x8080808080808080808080808080808080808080808080808080808080808080)
                for { let b := 0 } lt(b, bits) { b := add(b, 1) } {
                    let h, l := halves(and(a, mul(and(shr(b, v), 0x0101010101010101010101010101010101010101010101010101010101010101), 0xFF)))
                    hi := add(hi, shl(b, h))
                    lo := add(lo, shl(b, l))
                }
                let vh, vl := halves(v)
                hi := sub(hi, shl(7, vh))
                lo := sub(lo, shl(7, vl))
            }
            // Σ a_i over each half of the int8 bytes of av.
            function asum(av) -> hi, lo {
                let h, l := halves(xor(av, 0x8080808080808080808080808080808080808080808080808080808080808080))
                hi := sub(h, 2048)
                lo := sub(l, 2048)
            }
            // Q4_K (q5 = 0) and Q5_K (q5 = 1): sub-block j (elements 32j..32j+31) is the low (j even)
            // or high (j odd) nibbles of the 32 bytes at qs + 32·(j/2) (qs = 16, or 48 for Q5_K);
            // Q5_K adds bit j of qh[l] (the 32 bytes at 16) as the 16s bit of element 32j + l.
            // Scale/min unpack as get_scale_min_k4 from the 12 bytes at 4.
            function kmin(wp, qp, q5) -> r1, r2 {
                let scw := mload(add(wp, 36))
                let qhw := mload(add(wp, 48))
                let qs := add(wp, add(48, shl(5, q5)))
                for { let j := 0 } lt(j, 8) { j := add(j, 1) } {
                    let sc
                    let m
                    switch lt(j, 4)
                    case 1 {
                        sc := and(byte(j, scw), 63)
                        m := and(byte(add(j, 4), scw), 63)
                    }
                    default {
                        sc := or(and(byte(add(j, 4), scw), 15), shl(4, shr(6, byte(sub(j, 4), scw))))
                        m := or(shr(4, byte(add(j, 4), scw)), shl(4, shr(6, byte(j, scw))))
                    }
                    let wv := mload(add(qs, shl(5, shr(1, j))))
                    let v := and(shr(shl(2, and(j, 1)), wv), 0x0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F)
                    if q5 { v := or(v, shl(4, and(shr(j, qhw), 0x0101010101010101010101010101010101010101010101010101010101010101))) }
                    let av := mload(add(qp, add(32, shl(5, j))))
                    let h, l := dot(v, av, add(4, q5))
                    let ah, al := asum(av)
                    r1 := add(r1, mul(sc, add(h, l)))
                    r2 := add(r2, mul(m, add(ah, al)))
                }
            }
            // The 32 values of a Q4_0/Q4_1/Q5_0/Q5_1 block, one per byte (element i = byte i): the
            // 16 nibble bytes at qs hold element i's nibble low (i < 16) or high (i - 16); with
            // qhOff != 0 the little-endian u32 at qhOff adds 16 to element i when its bit i is set.
            function vals32(wp, qs, qhOff) -> v {
                let wv := mload(add(wp, add(32, qs)))
                let nib := 0x0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F00000000000000000000000000000000
                v := or(and(wv, nib), shr(128, and(shr(4, wv), nib)))
                if qhOff {
                    let hw := mload(add(wp, add(32, qhOff)))
                    let qh := or(or(byte(0, hw), shl(8, byte(1, hw))), or(shl(16, byte(2, hw)), shl(24, byte(3, hw))))
                    for { let i := 0 } lt(i, 32) { i := add(i, 1) } {
                        // element i is byte i, counted from the most significant byte
                        v := or(v, shl(add(4, shl(3, sub(31, i))), and(shr(i, qh), 1)))
                    }
                }
            }
            // Q3_K's scale j (-32..31, two's complement) from the word of its 12 scale bytes.
            function q3scale(scw, j) -> sc {
                let lo := and(shr(shl(2, gt(j, 7)), byte(and(j, 7), scw)), 15)
                let hi := and(shr(shl(1, shr(2, j)), byte(add(8, and(j, 3)), scw)), 3)
                sc := sub(or(lo, shl(4, hi)), 32)
            }
            switch ggmlType
            case 8 {
                // Q8_0: q_i = u_i - 128 with u = q xor 0x80, so Σ q·a = Σ u·a - 128·Σ a.
                let av := mload(add(qa, 32))
                let h, l := dot(xor(mload(add(w, 34)), 0x8080808080808080808080808080808080808080808080808080808080808080), av, 8)
                let ah, al := asum(av)
                s1 := sub(add(h, l), shl(7, add(ah, al)))
            }
            case 2 {
                // Q4_0: bytes 2..17 hold element i's nibble low (i < 16) or high (i - 16); spread them
                // into one word of 32 values, then Σ (q - 8)·a = Σ q·a - 8·Σ a.
                let wv := mload(add(w, 34))
                let nib := 0x0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F00000000000000000000000000000000
                let v := or(and(wv, nib), shr(128, and(shr(4, wv), nib)))
                let av := mload(add(qa, 32))
                let h, l := dot(v, av, 4)
                let ah, al := asum(av)
                s1 := sub(add(h, l), shl(3, add(ah, al)))
            }
            case 3 {
                // Q4_1: d·q + m, so the term needs Σ q·a and Σ a.
                let av := mload(add(qa, 32))
                let h, l := dot(vals32(w, 4, 0), av, 4)
                let ah, al := asum(av)
                s1 := add(h, l)
                s2 := add(ah, al)
            }
            case 6 {
                // Q5_0: Σ (q - 16)·a = Σ q·a - 16·Σ a.
                let av := mload(add(qa, 32))
                let h, l := dot(vals32(w, 6, 2), av, 5)
                let ah, al := asum(av)
                s1 := sub(add(h, l), shl(4, add(ah, al)))
            }
            case 7 {
                // Q5_1: as Q4_1 with the 16s bits of qh at 4.
                let av := mload(add(qa, 32))
                let h, l := dot(vals32(w, 8, 4), av, 5)
                let ah, al := asum(av)
                s1 := add(h, l)
                s2 := add(ah, al)
            }
            case 10 {
                // Q2_K: element 128n + 32k + l is bits 2k, 2k+1 of qs[32n + l] (qs at 16); word g =
                // 4n + k holds sub-blocks 2g (bytes 0..15) and 2g + 1; scale byte j: sc low, m high.
                let scw := mload(add(w, 32))
                for { let g := 0 } lt(g, 8) { g := add(g, 1) } {
                    let qsw := mload(add(w, add(48, shl(5, shr(2, g)))))
                    let v := and(shr(shl(1, and(g, 3)), qsw), 0x0303030303030303030303030303030303030303030303030303030303030303)
                    let av := mload(add(qa, add(32, shl(5, g))))
                    let h, l := dot(v, av, 2)
                    let ah, al := asum(av)
                    let bh := byte(shl(1, g), scw)
                    let bl := byte(add(shl(1, g), 1), scw)
                    s1 := add(s1, add(mul(and(bh, 15), h), mul(and(bl, 15), l)))
                    s2 := add(s2, add(mul(shr(4, bh), ah), mul(shr(4, bl), al)))
                }
            }
            case 11 {
                // Q3_K: the Q2_K 2-bit values (qs at 32) plus 4 when bit 4n + k of hmask[l] (at 0) is
                // set, minus 4; 6-bit scales at 96 (low nibble of byte j % 8, high for j >= 8; top
                // bits 2(j/4).. of byte 8 + j % 4), minus 32. Σ (v - 4)·a = Σ v·a - 4·Σ a.
                let hmw := mload(add(w, 32))
                let scw := mload(add(w, 128))
                for { let g := 0 } lt(g, 8) { g := add(g, 1) } {
                    let k := and(g, 3)
                    let n := shr(2, g)
                    let qsw := mload(add(w, add(64, shl(5, n))))
                    let v := or(and(shr(shl(1, k), qsw), 0x0303030303030303030303030303030303030303030303030303030303030303),
                                shl(2, and(shr(add(shl(2, n), k), hmw), 0x0101010101010101010101010101010101010101010101010101010101010101)))
                    let av := mload(add(qa, add(32, shl(5, g))))
                    let h, l := dot(v, av, 3)
                    let ah, al := asum(av)
                    let j := shl(1, g)
                    s1 := add(s1, mul(q3scale(scw, j), sub(h, shl(2, ah))))
                    s1 := add(s1, mul(q3scale(scw, add(j, 1)), sub(l, shl(2, al))))
                }
            }
            case 12 { s1, s2 := kmin(w, qa, 0) }
            case 13 { s1, s2 := kmin(w, qa, 1) }
            default {
                // Q6_K: elements 128n + 32k + l (n < 2, k < 4, l < 32) take the nibble of
                // ql[64n + 32(k&1) + l] (low for k < 2) and bits 2k..2k+1 of qh[32n + l] on top;
                // l < 16 and l >= 16 are sub-blocks 8n + 2k and 8n + 2k + 1 with int8 scales at 192.
                let scw := mload(add(w, 224))
                for { let g := 0 } lt(g, 8) { g := add(g, 1) } {
                    let n := shr(2, g)
                    let k := and(g, 3)
                    let qlw := mload(add(w, add(32, add(shl(6, n), shl(5, and(k, 1))))))
                    let qhw := mload(add(w, add(160, shl(5, n))))
                    let v := or(and(shr(shl(2, shr(1, k)), qlw), 0x0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F), shl(4, and(shr(shl(1, k), qhw), 0x0303030303030303030303030303030303030303030303030303030303030303)))
                    let av := mload(add(qa, add(32, shl(5, g))))
                    let h, l := dot(v, av, 6)
                    let ah, al := asum(av)
                    // Σ (q - 32)·a = Σ q·a - 32·Σ a per 16-element sub-block.
                    let j := shl(1, g)
                    s1 := add(s1, mul(signextend(0, byte(j, scw)), sub(h, shl(5, ah))))
                    s1 := add(s1, mul(signextend(0, byte(add(j, 1), scw)), sub(l, shl(5, al))))
                }
            }
        }
    }

    /// @notice (h2f(d) ⊗ da) ⊗ i2f(s), the f32 tail shared by every block type.
    function scaled(uint16 d, uint32 da, int256 s) internal pure returns (uint32) {
        return SoftFloat.mul(SoftFloat.mul(SoftFloat.h2f(d), da), SoftFloat.i2f(int32(s)));
    }

    /// @notice The little-endian f16 at byte offset `off` of `w`.
    function f16At(bytes memory w, uint256 off) internal pure returns (uint16 h) {
        assembly {
            let v := mload(add(add(w, 32), off))
            h := or(byte(0, v), shl(8, byte(1, v)))
        }
    }

    function checkLengths(uint256 ggmlType, bytes memory w, bytes memory qa, uint256 wLen, uint256 aLen) private pure {
        // INVARIANT: the assembly loops read exactly these many bytes of each array.
        if (w.length != wLen || qa.length != aLen) revert OneStepBadBlock(ggmlType, w.length, qa.length);
    }
}
