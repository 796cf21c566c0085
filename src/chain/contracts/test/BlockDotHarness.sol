// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BlockDot} from "../lib/BlockDot.sol";

/// @title BlockDotHarness
/// @notice Test-only batch entry point over BlockDot for differential fuzzing with eth_call:
///         block terms, the integer sums behind them, and the gas of each `BlockDot.term` call.
contract BlockDotHarness {
    /// @notice For every case i: term bits, integer sums (S1, S2) and the gas `term` used.
    function terms(uint256 ggmlType, bytes[] calldata w, bytes[] calldata qa, uint32[] calldata da)
        external
        view
        returns (uint32[] memory r, int256[] memory s1, int256[] memory s2, uint256[] memory g)
    {
        uint256 n = w.length;
        r = new uint32[](n);
        s1 = new int256[](n);
        s2 = new int256[](n);
        g = new uint256[](n);
        uint256 fmp;
        assembly {
            fmp := mload(0x40)
        }
        for (uint256 i; i < n; ++i) {
            (r[i], s1[i], s2[i], g[i]) = one(ggmlType, w[i], qa[i], da[i]);
            // Each case's memory copies are dead after the call: reuse the space, so memory (and
            // the embedded EVM's per-step tracing cost) stays small however large the batch.
            assembly {
                mstore(0x40, fmp)
            }
        }
    }

    function one(uint256 ggmlType, bytes memory w, bytes memory qa, uint32 da)
        private
        view
        returns (uint32 r, int256 s1, int256 s2, uint256 g)
    {
        g = gasleft();
        r = BlockDot.term(ggmlType, w, qa, da);
        g -= gasleft();
        (s1, s2) = BlockDot.sums(ggmlType, w, qa);
    }
}
