// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SoftFloat} from "./lib/SoftFloat.sol";
import {CanonMath} from "./lib/CanonMath.sol";
import {BlockDot} from "./lib/BlockDot.sol";

/// @title MachineMath: the dispute machine's heavy scalar steps, deployed beside Machine
/// @notice The step effects that need the long canonical functions (EXP, LOG, SIN, COS, SILU), a
///         weight block term, or a dequantized weight value (docs/MACHINE.md "Programs"). They
///         live in their own contract so that `Machine` (op tables, read openings, the cheap
///         steps) stays under EIP-170's 24 KB; Machine calls them with STATICCALL. Every function
///         is pure and takes binary32 bits.
contract MachineMath {
    using SoftFloat for uint32;

    /// @notice EXP(a ⊖ b): the EXP step of EXPS (s_j, m_h) and TEXP (tl_r, tl_0).
    function expDiff(uint32 a, uint32 b) external pure returns (uint32) {
        return CanonMath.exp(a.sub(b));
    }

    /// @notice FREQ j: `EXP((i2f(−2j) ⊘ i2f(hd)) ⊗ LOG(base))`.
    function freq(uint64 j, uint32 hd, uint32 baseBits) external pure returns (uint32) {
        uint32 e = CanonMath.i2f(-2 * int256(uint256(j))).div(CanonMath.i2f(int256(uint256(hd))));
        return CanonMath.exp(e.mul(CanonMath.log(baseBits)));
    }

    /// @notice ROTCS: a = i2f(pos) ⊗ fr; SIN(a) for odd j, COS(a) for even j.
    function rotcs(uint32 pos, uint32 fr, bool odd) external pure returns (uint32) {
        uint32 a = CanonMath.i2f(int256(uint256(pos))).mul(fr);
        return odd ? CanonMath.sin(a) : CanonMath.cos(a);
    }

    /// @notice SILU(g) ⊗ u.
    function siluMul(uint32 g, uint32 u) external pure returns (uint32) {
        return CanonMath.silu(g).mul(u);
    }

    /// @notice BLOCK_TERM of one raw weight block against one activation block (BlockDot.term).
    function blockTerm(uint32 ggmlType, bytes calldata w, bytes calldata qa, uint32 da) external pure returns (uint32) {
        return BlockDot.term(ggmlType, w, qa, da);
    }

    /// @notice Value i of one raw GGUF block `blk` of `ggmlType`, dequantized as
    ///         src/engine/kernels/reference.ts dequantizeRow does (docs/ARITHMETIC.md "Dequantized
    ///         rows"). Float types are one element per block.
    function dequant(uint32 ggmlType, bytes calldata blk, uint256 i) external pure returns (uint32) {
        if (ggmlType == 0) return CanonMath.isNaN(le32(blk, 0)) ? CanonMath.NAN : le32(blk, 0);
        if (ggmlType == 1) return SoftFloat.h2f(le16(blk, 0));
        if (ggmlType == 30) {
            uint32 b = uint32(le16(blk, 0)) << 16;
            return CanonMath.isNaN(b) ? CanonMath.NAN : b;
        }
        if (ggmlType == BlockDot.Q8_0) {
            return SoftFloat.h2f(le16(blk, 0)).mul(i2f(int8(uint8(blk[2 + i]))));
        }
        if (ggmlType == BlockDot.Q4_0) {
            uint8 by = uint8(blk[2 + (i & 15)]);
            int256 q = int256(uint256(i < 16 ? by & 15 : by >> 4)) - 8;
            return SoftFloat.h2f(le16(blk, 0)).mul(i2f(q));
        }
        if (ggmlType == BlockDot.Q4_1 || ggmlType == BlockDot.Q5_0 || ggmlType == BlockDot.Q5_1) return q32(ggmlType, blk, i);
        if (ggmlType == BlockDot.Q2_K) return q2k(blk, i);
        if (ggmlType == BlockDot.Q3_K) return q3k(blk, i);
        if (ggmlType == BlockDot.Q4_K) return q4k(blk, i);
        if (ggmlType == BlockDot.Q5_K) return q5k(blk, i);
        if (ggmlType == BlockDot.Q6_K) return q6k(blk, i);
        // INVARIANT: the arithmetic defines dequantization for these types only.
        revert BlockDotUnsupported(ggmlType);
    }

    /// @notice A type the arithmetic cannot dequantize.
    error BlockDotUnsupported(uint32 ggmlType);

    /// @dev Q4_K value i: ((d ⊗ sc_j) ⊗ q_i) ⊖ (dmin ⊗ m_j), j = i / 32 (get_scale_min_k4).
    function q4k(bytes calldata b, uint256 i) private pure returns (uint32) {
        uint256 j = i >> 5;
        uint256 sc;
        uint256 m;
        if (j < 4) {
            sc = uint8(b[4 + j]) & 63;
            m = uint8(b[8 + j]) & 63;
        } else {
            sc = (uint8(b[8 + j]) & 15) | ((uint8(b[j]) >> 6) << 4);
            m = (uint8(b[8 + j]) >> 4) | ((uint8(b[4 + j]) >> 6) << 4);
        }
        // element i: 64-value chunk k = i / 64; low nibbles for i mod 64 < 32
        uint8 by = uint8(b[16 + 32 * (i >> 6) + (i & 31)]);
        uint256 q = (i & 32) == 0 ? by & 15 : by >> 4;
        uint32 d = SoftFloat.h2f(le16(b, 0));
        uint32 dmin = SoftFloat.h2f(le16(b, 2));
        return d.mul(i2f(int256(sc))).mul(i2f(int256(q))).sub(dmin.mul(i2f(int256(m))));
    }

    /// @dev Q4_1 / Q5_1 value i: (d ⊗ q) ⊕ m; Q5_0: d ⊗ (q − 16). q is the nibble of qs[i % 16]
    ///      (low for i < 16; qs at 4, 6, 8) plus 16 when bit i of the u32 qh before qs is set.
    function q32(uint32 t, bytes calldata b, uint256 i) private pure returns (uint32) {
        uint256 qs = t == BlockDot.Q4_1 ? 4 : t == BlockDot.Q5_0 ? 6 : 8;
        uint8 by = uint8(b[qs + (i & 15)]);
        uint256 q = i < 16 ? by & 15 : by >> 4;
        if (t != BlockDot.Q4_1) q |= ((uint256(uint8(b[qs - 4 + (i >> 3)])) >> (i & 7)) & 1) << 4;
        uint32 d = SoftFloat.h2f(le16(b, 0));
        if (t == BlockDot.Q5_0) return d.mul(i2f(int256(q) - 16));
        return d.mul(i2f(int256(q))).add(SoftFloat.h2f(le16(b, 2)));
    }

    /// @dev Q2_K value i = 128n + 32k + l: ((d ⊗ sc) ⊗ q) ⊖ (dmin ⊗ m), q = bits 2k.. of qs[32n + l]
    ///      (qs at 16), sc/m = low/high nibble of scales[i / 16].
    function q2k(bytes calldata b, uint256 i) private pure returns (uint32) {
        uint256 q = (uint256(uint8(b[16 + 32 * (i >> 7) + (i & 31)])) >> (2 * ((i >> 5) & 3))) & 3;
        uint8 sm = uint8(b[i >> 4]);
        uint32 d = SoftFloat.h2f(le16(b, 80));
        uint32 dmin = SoftFloat.h2f(le16(b, 82));
        return d.mul(i2f(int256(uint256(sm & 15)))).mul(i2f(int256(q))).sub(dmin.mul(i2f(int256(uint256(sm >> 4)))));
    }

    /// @dev Q3_K value i = 128n + 32k + l: (d ⊗ (sc − 32)) ⊗ q, q = bits 2k.. of qs[32n + l] (qs at 32)
    ///      minus 4 unless bit 4n + k of hmask[l] is set; sc as llama.cpp's kmask unpacking (scales at 96).
    function q3k(bytes calldata b, uint256 i) private pure returns (uint32) {
        uint256 k = (i >> 5) & 3;
        int256 q = int256((uint256(uint8(b[32 + 32 * (i >> 7) + (i & 31)])) >> (2 * k)) & 3);
        if ((uint256(uint8(b[i & 31])) >> (4 * (i >> 7) + k)) & 1 == 0) q -= 4;
        uint256 j = i >> 4;
        uint256 lo = (uint256(uint8(b[96 + (j & 7)])) >> (j < 8 ? 0 : 4)) & 15;
        uint256 hi = (uint256(uint8(b[104 + (j & 3)])) >> (2 * (j >> 2))) & 3;
        uint32 d = SoftFloat.h2f(le16(b, 108));
        return d.mul(i2f(int256(lo | (hi << 4)) - 32)).mul(i2f(q));
    }

    /// @dev Q5_K value i: as Q4_K with the nibbles at 48 and bit j of qh[i mod 32] (the 32 bytes
    ///      at 16) as the 16s bit: ((d ⊗ sc_j) ⊗ q_i) ⊖ (dmin ⊗ m_j), j = i / 32.
    function q5k(bytes calldata b, uint256 i) private pure returns (uint32) {
        uint256 j = i >> 5;
        (uint256 sc, uint256 m) = scaleMinK4(b, j);
        uint8 by = uint8(b[48 + 32 * (i >> 6) + (i & 31)]);
        uint256 q = ((i & 32) == 0 ? by & 15 : by >> 4) | (((uint256(uint8(b[16 + (i & 31)])) >> j) & 1) << 4);
        uint32 d = SoftFloat.h2f(le16(b, 0));
        uint32 dmin = SoftFloat.h2f(le16(b, 2));
        return d.mul(i2f(int256(sc))).mul(i2f(int256(q))).sub(dmin.mul(i2f(int256(m))));
    }

    /// @dev llama.cpp's get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 bytes at 4.
    function scaleMinK4(bytes calldata b, uint256 j) private pure returns (uint256 sc, uint256 m) {
        if (j < 4) {
            sc = uint8(b[4 + j]) & 63;
            m = uint8(b[8 + j]) & 63;
        } else {
            sc = (uint8(b[8 + j]) & 15) | ((uint8(b[j]) >> 6) << 4);
            m = (uint8(b[8 + j]) >> 4) | ((uint8(b[4 + j]) >> 6) << 4);
        }
    }

    /// @dev Q6_K value i = 128n + 32k + l: (d ⊗ sc_{i/16}) ⊗ (q − 32).
    function q6k(bytes calldata b, uint256 i) private pure returns (uint32) {
        uint256 n = i >> 7;
        uint256 k = (i >> 5) & 3;
        uint256 l = i & 31;
        uint8 ql = uint8(b[64 * n + l + 32 * (k & 1)]);
        uint8 qh = uint8(b[128 + 32 * n + l]);
        uint256 lo = k < 2 ? ql & 15 : ql >> 4;
        int256 q = int256(lo | (((uint256(qh) >> (2 * k)) & 3) << 4)) - 32;
        int256 sc = int8(uint8(b[192 + (i >> 4)]));
        uint32 d = SoftFloat.h2f(le16(b, 208));
        return d.mul(i2f(sc)).mul(i2f(q));
    }

    function i2f(int256 n) private pure returns (uint32) {
        return CanonMath.i2f(n);
    }

    function le16(bytes calldata b, uint256 o) private pure returns (uint16) {
        return uint16(uint8(b[o])) | (uint16(uint8(b[o + 1])) << 8);
    }

    function le32(bytes calldata b, uint256 o) private pure returns (uint32) {
        return uint32(le16(b, o)) | (uint32(le16(b, o + 2)) << 16);
    }
}
