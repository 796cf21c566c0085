// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CanonMath} from "../lib/CanonMath.sol";

/// @title CanonMathHarness
/// @notice Test-only batch entry points over CanonMath for differential fuzzing with eth_call
///         (src/chain/onestep/canonmath.evm.test.ts). Each returns results and the gas of each
///         library call (a gasleft() delta: what a contract importing CanonMath pays for the call,
///         without calldata or ABI decoding). Memory a case allocates is released before the next
///         one, so a large batch does not pay for memory expansion.
contract CanonMathHarness {
    /// @notice op: 0 exp, 1 log, 2 sin, 3 cos, 4 silu, 5 roundHalf (h2f ∘ f2h), 6 neg.
    function unary(uint8 op, uint32[] calldata x) external view returns (uint32[] memory r, uint256[] memory g) {
        r = new uint32[](x.length);
        g = new uint256[](x.length);
        for (uint256 i; i < x.length; ++i) {
            (r[i], g[i]) = one(op, x[i]);
        }
    }

    function one(uint8 op, uint32 x) private view returns (uint32 z, uint256 g) {
        g = gasleft();
        if (op == 0) z = CanonMath.exp(x);
        else if (op == 1) z = CanonMath.log(x);
        else if (op == 2) z = CanonMath.sin(x);
        else if (op == 3) z = CanonMath.cos(x);
        else if (op == 4) z = CanonMath.silu(x);
        else if (op == 5) z = CanonMath.roundHalf(x);
        else z = CanonMath.neg(x);
        g -= gasleft();
    }

    /// @notice f2h over a batch.
    function f2h(uint32[] calldata x) external view returns (uint16[] memory r, uint256[] memory g) {
        r = new uint16[](x.length);
        g = new uint256[](x.length);
        for (uint256 i; i < x.length; ++i) {
            uint256 g0 = gasleft();
            r[i] = CanonMath.f2h(x[i]);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice For each pair: bit 0 gt, bit 1 ge, bit 2 lt, bit 3 le; g = gas of gt.
    function compare(uint32[] calldata a, uint32[] calldata b) external view returns (uint8[] memory r, uint256[] memory g) {
        r = new uint8[](a.length);
        g = new uint256[](a.length);
        for (uint256 i; i < a.length; ++i) {
            uint256 g0 = gasleft();
            bool isGt = CanonMath.gt(a[i], b[i]);
            g[i] = g0 - gasleft();
            r[i] = (isGt ? 1 : 0) | (CanonMath.ge(a[i], b[i]) ? 2 : 0) | (CanonMath.lt(a[i], b[i]) ? 4 : 0)
                | (CanonMath.le(a[i], b[i]) ? 8 : 0);
        }
    }

    /// @notice op 0 floor, 1 trunc.
    function toInt(uint8 op, uint32[] calldata x) external view returns (int256[] memory r, uint256[] memory g) {
        r = new int256[](x.length);
        g = new uint256[](x.length);
        for (uint256 i; i < x.length; ++i) {
            uint256 g0 = gasleft();
            r[i] = op == 0 ? CanonMath.floor(x[i]) : CanonMath.trunc(x[i]);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice i2f over a batch of integers.
    function i2f(int256[] calldata n) external view returns (uint32[] memory r, uint256[] memory g) {
        r = new uint32[](n.length);
        g = new uint256[](n.length);
        for (uint256 i; i < n.length; ++i) {
            uint256 g0 = gasleft();
            r[i] = CanonMath.i2f(n[i]);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice fold8 of consecutive groups of 8 in `a`.
    function fold8(uint32[] calldata a) external view returns (uint32[] memory r, uint256[] memory g) {
        uint256 n = a.length / 8;
        r = new uint32[](n);
        g = new uint256[](n);
        uint256 fmp = freePointer();
        for (uint256 i; i < n; ++i) {
            uint32[8] memory v;
            for (uint256 l; l < 8; ++l) v[l] = a[8 * i + l];
            uint256 g0 = gasleft();
            r[i] = CanonMath.fold8(v);
            g[i] = g0 - gasleft();
            setFreePointer(fmp);
        }
    }

    /// @notice DOT8 of consecutive groups of 8 pairs; gStep = gas of the dot8Step, gFold of fold8.
    function dot8(uint32[] calldata a, uint32[] calldata b)
        external
        view
        returns (uint32[] memory r, uint256[] memory gStep, uint256[] memory gFold)
    {
        uint256 n = a.length / 8;
        r = new uint32[](n);
        gStep = new uint256[](n);
        gFold = new uint256[](n);
        uint256 fmp = freePointer();
        for (uint256 i; i < n; ++i) {
            uint32[8] memory x;
            uint32[8] memory y;
            uint32[8] memory acc;
            for (uint256 l; l < 8; ++l) {
                x[l] = a[8 * i + l];
                y[l] = b[8 * i + l];
            }
            uint256 g0 = gasleft();
            acc = CanonMath.dot8Step(acc, 0, x, y, 8);
            gStep[i] = g0 - gasleft();
            g0 = gasleft();
            r[i] = CanonMath.fold8(acc);
            gFold[i] = g0 - gasleft();
            if (i % 4 == 0 && r[i] != CanonMath.dot8(x, y)) revert("dot8 != fold8(dot8Step)");
            setFreePointer(fmp);
        }
    }

    /// @notice SUM8 (dot = false) or DOT8 (dot = true) of whole vectors by the 8-lane steps and
    ///         one fold: vector k is a[off_k .. off_k + len[k]) (and the same range of b), read in
    ///         pieces that end at multiples of 8 counted from `start[k]` (as the machine reads the
    ///         aligned groups of a vector that starts at word start[k]), so steps may begin mid-lane.
    function chain(bool dot, uint32[] calldata a, uint32[] calldata b, uint256[] calldata len, uint256[] calldata start)
        external
        pure
        returns (uint32[] memory r)
    {
        r = new uint32[](len.length);
        uint256 off;
        for (uint256 k; k < len.length; ++k) {
            r[k] = vector(dot, a[off:off + len[k]], dot ? b[off:off + len[k]] : b[0:0], start[k]);
            off += len[k];
        }
    }

    function vector(bool dot, uint32[] calldata a, uint32[] calldata b, uint256 start) private pure returns (uint32) {
        uint32[8] memory acc;
        uint256 i;
        while (i < a.length) {
            // the piece ends at the next multiple of 8 of the absolute word index start + i
            uint256 end = ((start + i) / 8 + 1) * 8 - start;
            if (end > a.length) end = a.length;
            uint32[8] memory x;
            uint32[8] memory y;
            for (uint256 l; l < end - i; ++l) {
                x[l] = a[i + l];
                if (dot) y[l] = b[i + l];
            }
            acc = dot ? CanonMath.dot8Step(acc, i, x, y, end - i) : CanonMath.sum8Step(acc, i, x, end - i);
            i = end;
        }
        return CanonMath.fold8(acc);
    }

    /// @notice rmsScale over a batch.
    function rmsScale(uint32[] calldata ss, int32[] calldata n, uint32[] calldata eps)
        external
        view
        returns (uint32[] memory r, uint256[] memory g)
    {
        r = new uint32[](ss.length);
        g = new uint256[](ss.length);
        for (uint256 i; i < ss.length; ++i) {
            uint256 g0 = gasleft();
            r[i] = CanonMath.rmsScale(ss[i], n[i], eps[i]);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice amax32 of consecutive groups of 32 in x, each from its own acc.
    function amax32(uint32[] calldata acc, uint32[] calldata x) external view returns (uint32[] memory r, uint256[] memory g) {
        r = new uint32[](acc.length);
        g = new uint256[](acc.length);
        uint256 fmp = freePointer();
        for (uint256 i; i < acc.length; ++i) {
            uint32[32] memory v = load32(x, 32 * i);
            uint256 g0 = gasleft();
            r[i] = CanonMath.amax32(acc[i], v);
            g[i] = g0 - gasleft();
            setFreePointer(fmp);
        }
    }

    /// @notice blockScale over a batch of amax values.
    function blockScale(uint32[] calldata amax, bool b32)
        external
        view
        returns (uint32[] memory d, uint32[] memory id, uint32[] memory da, uint256[] memory g)
    {
        uint256 n = amax.length;
        d = new uint32[](n);
        id = new uint32[](n);
        da = new uint32[](n);
        g = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            uint256 g0 = gasleft();
            (d[i], id[i], da[i]) = CanonMath.blockScale(amax[i], b32);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice quantize32Packed (what the machine's QUANT32 step stores) of consecutive groups of
    ///         32 in x with id[i], and its gas gP; every 4th group also through quantize32 (int8[32]),
    ///         which must agree byte for byte, with its gas in gA (0 for the other groups).
    function quantize32(uint32[] calldata x, uint32[] calldata id)
        external
        view
        returns (bytes32[] memory q, uint256[] memory gP, uint256[] memory gA)
    {
        q = new bytes32[](id.length);
        gP = new uint256[](id.length);
        gA = new uint256[](id.length);
        uint256 fmp = freePointer();
        for (uint256 i; i < id.length; ++i) {
            uint32[32] memory v = load32(x, 32 * i);
            uint256 g0 = gasleft();
            q[i] = CanonMath.quantize32Packed(v, id[i]);
            gP[i] = g0 - gasleft();
            if (i % 4 == 0) {
                g0 = gasleft();
                int8[32] memory qi = CanonMath.quantize32(v, id[i]);
                gA[i] = g0 - gasleft();
                uint256 packed;
                for (uint256 l; l < 32; ++l) packed |= uint256(uint8(qi[l])) << (8 * (31 - l));
                if (bytes32(packed) != q[i]) revert("quantize32 differs from quantize32Packed");
            }
            setFreePointer(fmp);
        }
    }

    /// @notice Whole blocks of B = 32 or 256 by the machine's steps (B/32 × amax32, blockScale,
    ///         B/32 × quantize32): block k's stored scale da[k] and its B bytes of q.
    function quantizeBlocks(uint32[] calldata x, uint256 blockSize)
        external
        pure
        returns (uint32[] memory da, bytes memory q)
    {
        uint256 nb = x.length / blockSize;
        da = new uint32[](nb);
        q = new bytes(x.length);
        for (uint256 k; k < nb; ++k) {
            uint32 amax;
            for (uint256 c; c < blockSize; c += 32) amax = CanonMath.amax32(amax, load32(x, k * blockSize + c));
            uint32 id;
            (, id, da[k]) = CanonMath.blockScale(amax, blockSize == 32);
            for (uint256 c; c < blockSize; c += 32) {
                int8[32] memory qi = CanonMath.quantize32(load32(x, k * blockSize + c), id);
                for (uint256 l; l < 32; ++l) q[k * blockSize + c + l] = bytes1(uint8(qi[l]));
            }
        }
    }

    function load32(uint32[] calldata x, uint256 off) private pure returns (uint32[32] memory v) {
        for (uint256 l; l < 32; ++l) v[l] = x[off + l];
    }

    function freePointer() private pure returns (uint256 p) {
        assembly {
            p := mload(0x40)
        }
    }

    function setFreePointer(uint256 p) private pure {
        assembly {
            mstore(0x40, p)
        }
    }
}
