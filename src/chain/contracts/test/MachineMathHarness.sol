// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MachineMath} from "../MachineMath.sol";

/// @title MachineMathHarness
/// @notice Test-only batches over a deployed MachineMath (the dispute machine's heavy scalar
///         steps) for the differential fuzz against the TypeScript twin's step functions
///         (src/chain/onestep/machinemath.evm.test.ts). Each returns the results and the gas of
///         each external call as Machine pays it (STATICCALL and ABI included).
contract MachineMathHarness {
    /// @notice EXP(a ⊖ b) (EXPS, TEXP) for each pair.
    function expDiff(MachineMath m, uint32[] calldata a, uint32[] calldata b)
        external
        view
        returns (uint32[] memory r, uint256[] memory g)
    {
        r = new uint32[](a.length);
        g = new uint256[](a.length);
        for (uint256 i; i < a.length; ++i) {
            uint256 g0 = gasleft();
            r[i] = m.expDiff(a[i], b[i]);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice SILU(g) ⊗ u for each pair.
    function siluMul(MachineMath m, uint32[] calldata x, uint32[] calldata u)
        external
        view
        returns (uint32[] memory r, uint256[] memory g)
    {
        r = new uint32[](x.length);
        g = new uint256[](x.length);
        for (uint256 i; i < x.length; ++i) {
            uint256 g0 = gasleft();
            r[i] = m.siluMul(x[i], u[i]);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice FREQ element j[i] for head dim hd[i] and RoPE base bits base[i].
    function freq(MachineMath m, uint64[] calldata j, uint32[] calldata hd, uint32[] calldata base)
        external
        view
        returns (uint32[] memory r, uint256[] memory g)
    {
        r = new uint32[](j.length);
        g = new uint256[](j.length);
        for (uint256 i; i < j.length; ++i) {
            uint256 g0 = gasleft();
            r[i] = m.freq(j[i], hd[i], base[i]);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice ROTCS at position pos[i] of frequency fr[i] (SIN for odd[i], COS otherwise).
    function rotcs(MachineMath m, uint32[] calldata pos, uint32[] calldata fr, bool[] calldata odd)
        external
        view
        returns (uint32[] memory r, uint256[] memory g)
    {
        r = new uint32[](pos.length);
        g = new uint256[](pos.length);
        for (uint256 i; i < pos.length; ++i) {
            uint256 g0 = gasleft();
            r[i] = m.rotcs(pos[i], fr[i], odd[i]);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice Value idx[i] of the raw GGUF block blk[i] of type t, dequantized (EMBED's DEQ).
    function dequant(MachineMath m, uint32 t, bytes[] calldata blk, uint256[] calldata idx)
        external
        view
        returns (uint32[] memory r, uint256[] memory g)
    {
        r = new uint32[](blk.length);
        g = new uint256[](blk.length);
        for (uint256 i; i < blk.length; ++i) {
            uint256 g0 = gasleft();
            r[i] = m.dequant(t, blk[i], idx[i]);
            g[i] = g0 - gasleft();
        }
    }
}
